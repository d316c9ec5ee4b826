//! The input `policy check` and `policy bench` evaluate a policy with, as
//! the controller would: a Service (a file, or a plain sample), the nodes
//! it may look up, and the plan the bundled default policy leaves for it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use k8s_openapi::api::core::v1::Service as KubeService;
use policy_sdk::{Plan, Service};
use svc_lb_host::policy::{
    DEFAULT_POLICY_NAME, DEFAULT_POLICY_WASM, Decision, LoadedPolicy, PolicyEngine, StaticNodes,
};
use svc_lb_host::service_input::policy_input;

use super::args::{policy_name_from_file, read_settings};

/// A Service of the class with nothing asked of the policies.
const SAMPLE_SERVICE: &str = "\
apiVersion: v1
kind: Service
metadata: {name: example, namespace: default, uid: 00000000-0000-4000-8000-000000000001}
spec:
  type: LoadBalancer
  loadBalancerClass: svc-lb.tailscale.iptables.sh/lb
  clusterIP: 10.96.0.10
  clusterIPs: [10.96.0.10]
  ipFamilies: [IPv4]
  ports: [{name: http, port: 80, protocol: TCP}]
";

/// Where the sample input comes from.
#[derive(Debug, Args)]
pub(super) struct SampleArgs {
    /// Settings file (JSON or YAML); `{}` when absent.
    #[arg(long, value_name = "FILE")]
    settings: Option<PathBuf>,
    /// The Service to evaluate (YAML or JSON); a plain Service of the class
    /// (`default/example`) when absent.
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    service: Option<PathBuf>,
    /// Nodes the policy may look up: a Node, a List, or several documents.
    #[arg(long, value_name = "FILE")]
    nodes: Option<PathBuf>,
    /// Start from an empty plan instead of the bundled default policy's.
    #[arg(long)]
    no_default_policy: bool,
}

/// One evaluation's input.
pub(super) struct Sample {
    pub service: Service,
    pub nodes: Arc<StaticNodes>,
    pub node_count: usize,
    pub plan: Plan,
}

impl SampleArgs {
    /// The settings JSON.
    pub fn settings(&self) -> anyhow::Result<String> {
        Ok(match &self.settings {
            Some(path) => read_settings(path)?.to_string(),
            None => "{}".to_string(),
        })
    }

    /// The Service, the nodes and the plan before the policy.
    pub fn sample(&self, engine: &PolicyEngine) -> anyhow::Result<Sample> {
        let text = match &self.service {
            Some(path) => read(path)?,
            None => SAMPLE_SERVICE.to_string(),
        };
        let service: KubeService = serde_yaml_ng::from_str(&text)
            .context("the Service file is not a Kubernetes Service")?;
        let class = service
            .spec
            .as_ref()
            .and_then(|spec| spec.load_balancer_class.clone())
            .unwrap_or_else(|| svc_lb_contract::DEFAULT_LOAD_BALANCER_CLASS.to_string());
        let service = policy_input(&service, &class)?;
        let nodes = match &self.nodes {
            Some(path) => policy_sdk::fixtures::nodes_from_yaml(&read(path)?)
                .with_context(|| format!("{} does not hold Nodes", path.display()))?,
            None => Vec::new(),
        };
        let node_count = nodes.len();
        let nodes = Arc::new(StaticNodes::new(nodes));
        let plan = if self.no_default_policy {
            Plan::default()
        } else {
            let default = engine.load(DEFAULT_POLICY_NAME, DEFAULT_POLICY_WASM, "{}")?;
            match engine
                .evaluate(&default, &service, &Plan::default(), nodes.clone())?
                .decision
            {
                Decision::Accept(plan) => *plan,
                Decision::Reject(reason) | Decision::DoNotServe(reason) => anyhow::bail!(
                    "the default policy refuses the sample Service ({reason}); \
                     pass --no-default-policy or another Service"
                ),
            }
        };
        Ok(Sample {
            service,
            nodes,
            node_count,
            plan,
        })
    }
}

/// The component's bytes and the policy's name, as `--policy` names it.
pub(super) fn read_component(wasm: &Path) -> anyhow::Result<(Vec<u8>, String)> {
    let bytes = std::fs::read(wasm).with_context(|| format!("cannot read {}", wasm.display()))?;
    let name =
        policy_name_from_file(wasm).with_context(|| format!("{}: no file name", wasm.display()))?;
    Ok((bytes, name))
}

/// One line saying what a decision was.
pub(super) fn describe_decision(
    policy: &LoadedPolicy,
    before: &Plan,
    decision: &Decision,
) -> String {
    match decision {
        Decision::Accept(plan) => {
            let changes = svc_lb_host::policy::describe_changes(before, plan);
            if changes.is_empty() {
                "accepted, plan unchanged".to_string()
            } else {
                format!("accepted: {}", changes.join("; "))
            }
        }
        Decision::Reject(reason) => format!("rejected by {}: {reason}", policy.name),
        Decision::DoNotServe(reason) => format!("do not serve ({}): {reason}", policy.name),
    }
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}
