//! Native tests: the policy runs here as it runs inside the controller
//! (same settings parsing, same node look-ups), without building wasm.

use policy_sdk::fixtures::{nodes_from_yaml, service_from_yaml};
use policy_sdk::testing::{Testcase, validate_settings};
use policy_sdk::{Plan, Service};
use {{crate_name}}::{ENVIRONMENT_LABEL, ThisPolicy};

const SERVICE: &str = include_str!("fixtures/service.yaml");
const NODES: &str = include_str!("fixtures/nodes.yaml");
const SETTINGS: &str = include_str!("../settings.json");

/// The plan the bundled default policy leaves for the Service.
fn default_plan() -> Plan {
    let mut plan = Plan::default();
    plan.node_selector
        .insert("svc-lb.tailscale.iptables.sh/deploy".into(), "true".into());
    plan.hostname = "shop-web".into();
    plan
}

#[test]
fn the_shipped_settings_are_valid() {
    assert_eq!(validate_settings::<ThisPolicy>(SETTINGS), Ok(()));
}

#[test]
fn settings_that_are_not_a_dns_label_are_refused() {
    let err = validate_settings::<ThisPolicy>(r#"{"environment": "Dev Env"}"#).unwrap_err();
    assert!(err.contains("not a DNS label"), "{err}");
    let err = validate_settings::<ThisPolicy>(r#"{"environmnt": "dev"}"#).unwrap_err();
    assert!(err.contains("unknown field"), "{err}");
}

#[test]
fn proxy_pods_are_labelled_with_the_environment() {
    let outcome = Testcase::new(service_from_yaml(SERVICE).unwrap())
        .settings(SETTINGS)
        .plan(default_plan())
        .nodes(nodes_from_yaml(NODES).unwrap())
        .evaluate::<ThisPolicy>();
    let plan = outcome.result.unwrap();
    assert_eq!(plan.pod_labels[ENVIRONMENT_LABEL], "dev");
    assert_eq!(plan.node_selector, default_plan().node_selector);
}

#[test]
fn a_service_without_a_ready_node_is_refused_with_the_reason() {
    let no_ready_node = nodes_from_yaml(NODES)
        .unwrap()
        .into_iter()
        .filter(|node| node.name != "node-0")
        .collect();
    let outcome = Testcase::new(Service::new("shop", "web"))
        .settings(SETTINGS)
        .plan(default_plan())
        .nodes(no_ready_node)
        .evaluate::<ThisPolicy>();
    let rejection = outcome.result.unwrap_err();
    assert!(rejection.reason().contains("no ready node"), "{rejection:?}");

    let outcome = Testcase::new(Service::new("shop", "web"))
        .settings(r#"{"environment": "dev", "requireReadyNode": false}"#)
        .plan(default_plan())
        .evaluate::<ThisPolicy>();
    assert!(outcome.result.is_ok());
}
