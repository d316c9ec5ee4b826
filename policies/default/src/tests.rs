use policy_sdk::fixtures::service_from_yaml;
use policy_sdk::testing::{Testcase, validate_settings};
use policy_sdk::{Plan, Service};

use super::*;

fn service(annotations: &str) -> Service {
    service_from_yaml(&format!(
        "metadata: {{name: web, namespace: shop, annotations: {{{annotations}}}}}\nspec: {{type: LoadBalancer}}"
    ))
    .unwrap()
}

fn evaluate(service: Service, settings: &str) -> Result<Plan, Rejection> {
    Testcase::new(service)
        .settings(settings)
        .evaluate::<DefaultPolicy>()
        .result
}

#[test]
fn without_annotations_selects_deploy_nodes_and_names_after_the_service() {
    let plan = evaluate(service(""), "{}").unwrap();
    assert_eq!(plan.node_selector, default_node_selector());
    assert_eq!(plan.hostname, "shop-web");
    assert!(plan.tags.is_empty());
}

#[test]
fn hostname_annotation_wins_and_an_invalid_one_is_rejected() {
    let plan = evaluate(
        service(r#"svc-lb.tailscale.iptables.sh/hostname: shopfront"#),
        "{}",
    )
    .unwrap();
    assert_eq!(plan.hostname, "shopfront");
    let err = evaluate(
        service(r#"svc-lb.tailscale.iptables.sh/hostname: Shop_Front"#),
        "{}",
    )
    .unwrap_err();
    assert!(err.reason().contains("not a DNS label"), "{err}");
}

#[test]
fn tags_come_from_the_annotation_else_from_settings() {
    let settings = r#"{"defaultTags": ["tag:k8s"]}"#;
    assert_eq!(
        evaluate(service(""), settings).unwrap().tags,
        vec!["tag:k8s"]
    );
    let plan = evaluate(
        service(r#"svc-lb.tailscale.iptables.sh/tags: "tag:a, tag:b""#),
        settings,
    )
    .unwrap();
    assert_eq!(plan.tags, vec!["tag:a", "tag:b"]);
    let err = evaluate(
        service(r#"svc-lb.tailscale.iptables.sh/tags: "prod""#),
        settings,
    )
    .unwrap_err();
    assert!(err.reason().contains("not a tag"), "{err}");
}

#[test]
fn allowed_tags_restrict_what_a_namespace_may_claim() {
    let settings = r#"{"allowedTags": {"shop": ["tag:shop"], "*": ["tag:shared"]}}"#;
    let ok = evaluate(
        service(r#"svc-lb.tailscale.iptables.sh/tags: "tag:shop,tag:shared""#),
        settings,
    );
    assert_eq!(ok.unwrap().tags, vec!["tag:shop", "tag:shared"]);
    let err = evaluate(
        service(r#"svc-lb.tailscale.iptables.sh/tags: "tag:prod""#),
        settings,
    )
    .unwrap_err();
    assert_eq!(
        err.reason(),
        "namespace shop may not use tag tag:prod; allowed: tag:shop, tag:shared"
    );
}

#[test]
fn settings_can_change_the_node_selector() {
    let settings = r#"{"nodeSelector": {"role": "edge"}}"#;
    let plan = evaluate(service(""), settings).unwrap();
    assert_eq!(
        plan.node_selector,
        Labels::from([("role".into(), "edge".into())])
    );
}

#[test]
fn settings_are_checked_at_load() {
    assert!(validate_settings::<DefaultPolicy>("{}").is_ok());
    assert!(validate_settings::<DefaultPolicy>(r#"{"nodeSelector": {}}"#).is_err());
    assert!(validate_settings::<DefaultPolicy>(r#"{"defaultTags": ["k8s"]}"#).is_err());
    assert!(validate_settings::<DefaultPolicy>(r#"{"allowedTags": {"a": ["tag:A"]}}"#).is_err());
    assert!(validate_settings::<DefaultPolicy>(r#"{"unknown": 1}"#).is_err());
}

#[test]
fn derived_hostnames_are_dns_labels() {
    assert_eq!(
        hostname_from_service_name("Team_A", "web..api"),
        "team-a-web-api"
    );
    let long = hostname_from_service_name(&"n".repeat(40), &"s".repeat(40));
    assert_eq!(long.len(), 63);
    assert!(is_dns_label(&long));
    let dash_at_cut = hostname_from_service_name(&"n".repeat(62), "s");
    assert!(is_dns_label(&dash_at_cut), "{dash_at_cut}");
}
