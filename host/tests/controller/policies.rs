//! Policies: node changes re-run them, a failing policy leaves the proxy as
//! it was, and policy sets come from a ConfigMap, replaced without restart.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;

use crate::harness::{Cluster, eventually, policy_wasm};

const POOL: &str = "svc-lb.tailscale.iptables.sh/pool";

/// A node-pools set whose pool label is unique to this test.
fn pools_yaml(cluster: &Cluster) -> String {
    format!(
        "policies:\n- name: node-pools\n  file: node-pools.wasm\n  settings:\n    \
         labelPrefix: {}.e2e.example.com/\n    pools: {{edge: {{}}}}\n",
        cluster.system
    )
}

fn pool_label(cluster: &Cluster) -> String {
    format!("{}.e2e.example.com/edge", cluster.system)
}

async fn put_node_pools(cluster: &Cluster) {
    let files = [("node-pools.wasm", policy_wasm("node_pools"))];
    cluster.put_policies(&pools_yaml(cluster), &files).await;
}

async fn node_selector(cluster: &Cluster, service: &str) -> Option<BTreeMap<String, String>> {
    let name = cluster.names(service).daemonset;
    let ds = cluster.daemonsets().get_opt(&name).await.unwrap()?;
    ds.spec?.template.spec?.node_selector
}

/// Waits until the proxy of `service` is placed on the test's pool.
async fn placed_on_pool(cluster: &Cluster, service: &str) {
    eventually(&format!("{service} is placed on the pool"), || async {
        let selector = node_selector(cluster, service).await?;
        selector.get(&pool_label(cluster)).map(|_| ())
    })
    .await;
}

#[tokio::test]
async fn a_node_label_change_re_runs_the_policies() {
    let cluster = Cluster::connect().await;
    put_node_pools(&cluster).await;
    let _controller = cluster.start_default();
    let node = cluster.create_node("a", json!({})).await;
    cluster.create_service("web", json!({POOL: "edge"})).await;
    let note = cluster
        .wait_for_event(&cluster.apps, "web", "Warning", "PolicyFailed")
        .await;
    assert!(note.contains("no ready node"), "{note}");
    assert!(node_selector(&cluster, "web").await.is_none());
    let into_pool = json!({"metadata": {"labels": {pool_label(&cluster): "true"}}});
    let nodes: Api<Node> = Api::all(cluster.client.clone());
    nodes
        .patch(&node, &PatchParams::default(), &Patch::Merge(into_pool))
        .await
        .unwrap();
    placed_on_pool(&cluster, "web").await;
    cluster.cleanup().await;
}

#[tokio::test]
async fn a_trapping_policy_warns_and_leaves_the_proxy_as_it_was() {
    let cluster = Cluster::connect().await;
    let _controller = cluster.start_default();
    cluster.create_service("web", json!({})).await;
    let before = cluster.wait_for_daemonset("web").await;
    let files = [("buggy.wasm", policy_wasm("test_guest_panic"))];
    // A long panic message (about 9 KiB, which the SDK's `#![no_std]` panic
    // handler cuts to 1 KiB): the Event note, which adds the policy's name,
    // stays within the API's 1 KiB (kube-sim refuses a longer one, as the
    // real server does).
    let set = "policies:\n- name: buggy\n  file: buggy.wasm\n  settings: {repeat: 300}\n";
    cluster.put_policies(set, &files).await;
    let note = cluster
        .wait_for_event(&cluster.apps, "web", "Warning", "PolicyFailed")
        .await;
    assert!(
        note.starts_with("policy buggy: panicked at ")
            && note.contains(": policy bug while placing web; "),
        "the policy's own message leads: {note}"
    );
    assert!(note.len() <= 1024 && note.ends_with('…'), "{}", note.len());
    let condition = cluster.wait_for_condition("web", "PolicyFailed").await;
    assert!(condition.message.contains("policy buggy: panicked at "));
    assert!(!condition.message.contains("wasm function"), "no backtrace");
    let after = cluster.wait_for_daemonset("web").await;
    assert_eq!(
        after.metadata.resource_version,
        before.metadata.resource_version
    );
    cluster.cleanup().await;
}

#[tokio::test]
async fn a_new_policy_set_applies_without_restart_and_a_bad_one_is_refused() {
    let cluster = Cluster::connect().await;
    let _controller = cluster.start_default();
    cluster
        .create_node("a", json!({pool_label(&cluster): "true"}))
        .await;
    cluster.create_service("web", json!({POOL: "edge"})).await;
    let deploy = svc_lb_contract::keys::DEPLOY_NODE_LABEL;
    eventually("the default set alone ignores the pool", || async {
        node_selector(&cluster, "web")
            .await?
            .get(deploy)
            .map(|_| ())
    })
    .await;
    put_node_pools(&cluster).await;
    placed_on_pool(&cluster, "web").await;
    // Settings the policy refuses: the set is rejected, the previous stays.
    let files = [("node-pools.wasm", policy_wasm("node_pools"))];
    let bad = "policies:\n- name: node-pools\n  file: node-pools.wasm\n  settings: {pools: {'Not A Label': {}}}\n";
    cluster.put_policies(bad, &files).await;
    let note = cluster
        .wait_for_event(&cluster.system, "policies", "Warning", "PolicySetRefused")
        .await;
    assert!(note.contains("node-pools"), "{note}");
    cluster.create_service("api", json!({POOL: "edge"})).await;
    placed_on_pool(&cluster, "api").await;
    cluster.cleanup().await;
}

#[tokio::test]
async fn a_bad_set_at_start_serves_nothing_until_a_valid_one_appears() {
    let cluster = Cluster::connect().await;
    let missing = "policies:\n- name: missing\n  file: missing.wasm\n";
    cluster.put_policies(missing, &[]).await;
    let _controller = cluster.start_default();
    cluster.create_service("web", json!({})).await;
    let condition = cluster.wait_for_condition("web", "NoPolicySet").await;
    assert!(
        condition.message.contains("missing.wasm"),
        "{}",
        condition.message
    );
    assert!(
        node_selector(&cluster, "web").await.is_none(),
        "no fallback to the default policy alone"
    );
    cluster.put_policies("policies: []\n", &[]).await;
    cluster.wait_for_daemonset("web").await;
    cluster.cleanup().await;
}

#[tokio::test]
async fn deleting_the_policy_configmap_keeps_the_set_and_a_new_replica_serves_nothing() {
    let cluster = Cluster::connect().await;
    cluster
        .create_node("a", json!({pool_label(&cluster): "true"}))
        .await;
    put_node_pools(&cluster).await;
    let controller = cluster.start_default();
    cluster.create_service("web", json!({POOL: "edge"})).await;
    placed_on_pool(&cluster, "web").await;

    let config_maps: Api<k8s_openapi::api::core::v1::ConfigMap> = cluster.api(&cluster.system);
    config_maps
        .delete("policies", &Default::default())
        .await
        .unwrap();
    let note = cluster
        .wait_for_event(&cluster.system, "policies", "Warning", "PolicySetRefused")
        .await;
    assert!(
        note.contains("does not exist") && note.contains("the previous policy set stays active"),
        "{note}"
    );
    // A change to the Service is reconciled with the set still active, not
    // with the default policy alone (which would drop the pool).
    cluster.create_service("api", json!({POOL: "edge"})).await;
    placed_on_pool(&cluster, "api").await;
    placed_on_pool(&cluster, "web").await;

    // A replica that starts now (a restart, a standby taking over) has no
    // set: it says so and leaves the proxies as they are.
    drop(controller);
    let _replacement = cluster.start(cluster.options("replacement"));
    let condition = cluster.wait_for_condition("web", "NoPolicySet").await;
    assert!(
        condition.message.contains("does not exist")
            && condition.message.contains("no Service is reconciled"),
        "{}",
        condition.message
    );
    placed_on_pool(&cluster, "web").await;
    cluster.cleanup().await;
}
