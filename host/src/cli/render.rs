//! `tailscale-svc-lb render`: the objects the controller would apply for a
//! Service, computed offline by the same code the controller runs.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use k8s_openapi::api::core::v1::Service;
use svc_lb_host::policy::{PolicyChain, PolicyEngine, StaticNodes};
use svc_lb_host::render::render_proxy;
use svc_lb_host::service_input::policy_input;
use svc_lb_host::validate::PlanRules;

use super::args::{ConfigArgs, EngineArgs, PolicyArgs};
use super::trace::write_trace;

#[derive(Debug, Args)]
pub(super) struct RenderArgs {
    /// The Service manifest (YAML or JSON); `-` reads standard input.
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    service: PathBuf,
    /// Nodes the policies may look up: a Node, a List, or several documents.
    #[arg(long, value_name = "FILE")]
    nodes: Option<PathBuf>,
    #[command(flatten)]
    policies: PolicyArgs,
    #[command(flatten)]
    engine: EngineArgs,
    #[command(flatten)]
    config: ConfigArgs,
}

fn read_input(path: &PathBuf) -> anyhow::Result<String> {
    if path.as_os_str() == "-" {
        return std::io::read_to_string(std::io::stdin()).context("cannot read standard input");
    }
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

pub(super) fn run(args: RenderArgs) -> anyhow::Result<()> {
    let config = args.config.to_config()?;
    let text = read_input(&args.service)?;
    let service: Service = serde_yaml_ng::from_str(&text)
        .with_context(|| format!("{} is not a Kubernetes Service", args.service.display()))?;
    let input = policy_input(&service, &config.load_balancer_class)?;
    let nodes = match &args.nodes {
        Some(path) => policy_sdk::fixtures::nodes_from_yaml(&read_input(path)?)
            .with_context(|| format!("{} does not hold Nodes", path.display()))?,
        None => Vec::new(),
    };

    let engine = Arc::new(PolicyEngine::new(args.engine.to_limits()?)?);
    let (set, dir) = args.policies.to_policy_set()?;
    let loaded = set.load(&engine, &dir)?;
    let rules = PlanRules {
        tag_allowlist: config.tag_allowlist.clone(),
        ..set.plan_rules.clone()
    };
    let chain = PolicyChain::new(engine, loaded, rules);
    let outcome = chain.evaluate(&input, Arc::new(StaticNodes::new(nodes)))?;

    write_trace(&mut std::io::stderr().lock(), &outcome.trace)?;
    let yaml = render_proxy(&input, &outcome.plan, &config).to_yaml()?;
    std::io::stdout().lock().write_all(yaml.as_bytes())?;
    Ok(())
}
