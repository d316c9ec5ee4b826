//! Example policy: node pools.
//!
//! A Service picks a pool with the annotation
//! `svc-lb.tailscale.iptables.sh/pool: <pool>`. A node belongs to a pool when
//! it carries the label `<labelPrefix><pool>=true`, so one node can belong to
//! several pools. The policy replaces the node selector with the pool's
//! label, adds the pool's tolerations (pool nodes are often tainted), and
//! rejects unknown pools and, unless told otherwise, pools without a ready
//! node. Only a policy can do this: it needs the Service, the operator's pool
//! table and the live nodes together.
//!
//! Settings:
//!
//! ```json
//! {
//!   "labelPrefix": "pool.svc-lb.tailscale.iptables.sh/",
//!   "pools": {"edge": {"tolerations": [{"key": "dedicated", "value": "edge", "effect": "NoSchedule"}]}},
//!   "requireReadyNode": true
//! }
//! ```

#![no_std]

use policy_sdk::prelude::*;
use policy_sdk::syntax::{is_dns_label, is_dns_subdomain};
use policy_sdk::{LogLevel, Plan, Policy, Rejection, Request, Selector, Toleration};
use serde::Deserialize;

/// Service annotation naming the pool.
pub const POOL_ANNOTATION: &str = "svc-lb.tailscale.iptables.sh/pool";

/// The node-pools policy.
pub struct NodePools;

/// Settings of the node-pools policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    /// Prefix of the node labels that mark pool membership.
    #[serde(default = "default_prefix")]
    pub label_prefix: String,
    /// The pools Services may pick.
    pub pools: BTreeMap<String, Pool>,
    /// Reject a Service whose pool has no ready node.
    #[serde(default = "yes")]
    pub require_ready_node: bool,
}

/// One pool.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pool {
    /// Tolerations the proxies need on this pool's nodes.
    #[serde(default)]
    pub tolerations: Vec<Toleration>,
}

fn default_prefix() -> String {
    "pool.svc-lb.tailscale.iptables.sh/".to_string()
}

fn yes() -> bool {
    true
}

impl Policy for NodePools {
    type Settings = Settings;

    fn validate_settings(settings: &Settings) -> Result<(), String> {
        if settings.pools.is_empty() {
            return Err("pools must name at least one pool".into());
        }
        let Some(domain) = settings.label_prefix.strip_suffix('/') else {
            return Err("labelPrefix must end with '/'".into());
        };
        if !is_dns_subdomain(domain) {
            return Err(format!(
                "labelPrefix \"{}\" is not a DNS domain followed by '/'",
                settings.label_prefix
            ));
        }
        if let Some(bad) = settings.pools.keys().find(|name| !is_dns_label(name)) {
            return Err(format!(
                "pool name \"{bad}\" must be a DNS label (it becomes part of a label key)"
            ));
        }
        Ok(())
    }

    fn evaluate(request: &Request<'_, Settings>, mut plan: Plan) -> Result<Plan, Rejection> {
        let Some(pool_name) = request.service.annotation(POOL_ANNOTATION) else {
            return Ok(plan);
        };
        let settings = request.settings;
        let Some(pool) = settings.pools.get(pool_name) else {
            let known: Vec<&str> = settings.pools.keys().map(String::as_str).collect();
            return Err(Rejection::new(format!(
                "unknown node pool \"{pool_name}\"; known pools: {}",
                known.join(", ")
            )));
        };
        let label = format!("{}{pool_name}", settings.label_prefix);
        if settings.require_ready_node {
            let members = request
                .cluster
                .nodes(&Selector::label_equals(&label, "true"));
            let ready = members.iter().filter(|n| n.ready).count();
            request.cluster.log(
                LogLevel::Debug,
                format!("pool {pool_name}: {} nodes, {ready} ready", members.len()),
            );
            if ready == 0 {
                return Err(Rejection::new(format!(
                    "node pool \"{pool_name}\" has no ready node"
                )));
            }
        }
        plan.node_selector = BTreeMap::from([(label, "true".to_string())]);
        for toleration in &pool.tolerations {
            plan.add_toleration(toleration.clone());
        }
        Ok(plan)
    }
}

policy_sdk::export_policy!(NodePools);

#[cfg(test)]
mod tests {
    use policy_sdk::fixtures::{nodes_from_yaml, service_from_yaml};
    use policy_sdk::testing::{Testcase, validate_settings};
    use policy_sdk::{Labels, Node, Service};

    use super::*;

    const SETTINGS: &str = r#"{"pools": {"edge": {"tolerations": [{"key": "dedicated", "value": "edge", "effect": "NoSchedule"}]}, "core": {}}}"#;

    fn service(pool: &str) -> Service {
        service_from_yaml(&format!(
            "metadata: {{name: web, annotations: {{svc-lb.tailscale.iptables.sh/pool: {pool}}}}}"
        ))
        .unwrap()
    }

    fn nodes() -> Vec<Node> {
        nodes_from_yaml(
            r#"
kind: List
items:
- metadata: {name: n1, labels: {pool.svc-lb.tailscale.iptables.sh/edge: "true", pool.svc-lb.tailscale.iptables.sh/core: "true"}}
  status: {conditions: [{type: Ready, status: "True"}]}
- metadata: {name: n2, labels: {pool.svc-lb.tailscale.iptables.sh/gpu: "true"}}
  status: {conditions: [{type: Ready, status: "False"}]}
"#,
        )
        .unwrap()
    }

    #[test]
    fn a_service_in_a_pool_runs_on_that_pools_nodes_with_its_tolerations() {
        let outcome = Testcase::new(service("edge"))
            .settings(SETTINGS)
            .nodes(nodes())
            .evaluate::<NodePools>();
        let plan = outcome.result.unwrap();
        assert_eq!(
            plan.node_selector,
            Labels::from([(
                "pool.svc-lb.tailscale.iptables.sh/edge".into(),
                "true".into()
            )])
        );
        assert_eq!(plan.tolerations[0].value, "edge");
        assert_eq!(outcome.logs[0].1, "pool edge: 1 nodes, 1 ready");
    }

    #[test]
    fn a_node_may_belong_to_several_pools() {
        let plan = Testcase::new(service("core"))
            .settings(SETTINGS)
            .nodes(nodes())
            .evaluate::<NodePools>();
        assert!(plan.result.is_ok());
    }

    #[test]
    fn unknown_pools_and_pools_without_ready_nodes_are_rejected() {
        let err = Testcase::new(service("moon"))
            .settings(SETTINGS)
            .nodes(nodes())
            .evaluate::<NodePools>();
        assert_eq!(
            err.result.unwrap_err().reason(),
            "unknown node pool \"moon\"; known pools: core, edge"
        );
        let settings = r#"{"pools": {"gpu": {}}}"#;
        let err = Testcase::new(service("gpu"))
            .settings(settings)
            .nodes(nodes())
            .evaluate::<NodePools>();
        assert!(err.result.unwrap_err().reason().contains("no ready node"));
    }

    #[test]
    fn services_without_a_pool_keep_their_plan() {
        let plain = service_from_yaml("metadata: {name: web}").unwrap();
        let before = Plan {
            hostname: "x".into(),
            ..Plan::default()
        };
        let outcome = Testcase::new(plain)
            .settings(SETTINGS)
            .plan(before.clone())
            .evaluate::<NodePools>();
        assert_eq!(outcome.result.unwrap(), before);
    }

    #[test]
    fn settings_need_pools_with_valid_names_and_a_domain_prefix() {
        assert!(validate_settings::<NodePools>(SETTINGS).is_ok());
        assert!(validate_settings::<NodePools>(r#"{"pools": {}}"#).is_err());
        assert!(
            validate_settings::<NodePools>(r#"{"pools": {"a": {}}, "labelPrefix": "x"}"#).is_err()
        );
        let bad_prefix = r#"{"pools": {"a": {}}, "labelPrefix": "Not Valid/"}"#;
        assert!(validate_settings::<NodePools>(bad_prefix).is_err());
        assert!(validate_settings::<NodePools>(r#"{"pools": {"Bad Pool": {}}}"#).is_err());
    }
}
