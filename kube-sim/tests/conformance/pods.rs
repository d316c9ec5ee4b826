//! Pods: graceful deletion (a pod bound to a node stays, terminating, until
//! its kubelet deletes it with grace 0; an unbound one goes at once) and
//! the `spec.nodeName` field selector kubelets list their pods with.

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};
use serde_json::json;

use crate::harness::{Cluster, status_of};

fn pod(name: &str, node: Option<&str>) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"nodeName": node, "terminationGracePeriodSeconds": 20,
                 "containers": [{"name": "c", "image": "registry.example/c:1"}]}
    }))
    .unwrap()
}

#[tokio::test]
async fn a_bound_pod_terminates_gracefully_until_deleted_with_grace_zero() {
    let cluster = Cluster::connect().await;
    let api: Api<Pod> = cluster.api();
    api.create(&PostParams::default(), &pod("bound", Some("node-x")))
        .await
        .unwrap();
    api.delete("bound", &DeleteParams::default()).await.unwrap();
    let terminating = api.get("bound").await.unwrap();
    assert!(terminating.metadata.deletion_timestamp.is_some());
    assert_eq!(terminating.metadata.deletion_grace_period_seconds, Some(20));
    // A longer grace period does not extend it; a shorter one shortens it.
    api.delete("bound", &DeleteParams::default().grace_period(30))
        .await
        .unwrap();
    let same = api.get("bound").await.unwrap();
    assert_eq!(same.metadata.deletion_grace_period_seconds, Some(20));
    api.delete("bound", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    assert_eq!(status_of(api.get("bound").await.unwrap_err()).0, 404);
    cluster.cleanup().await;
}

#[tokio::test]
async fn an_unbound_pod_is_deleted_at_once() {
    let cluster = Cluster::connect().await;
    let api: Api<Pod> = cluster.api();
    api.create(&PostParams::default(), &pod("unbound", None))
        .await
        .unwrap();
    api.delete("unbound", &DeleteParams::default())
        .await
        .unwrap();
    assert_eq!(status_of(api.get("unbound").await.unwrap_err()).0, 404);
    cluster.cleanup().await;
}

#[tokio::test]
async fn pods_are_listed_by_the_node_they_are_bound_to() {
    let cluster = Cluster::connect().await;
    let api: Api<Pod> = cluster.api();
    for (name, node) in [
        ("on-a", Some("node-a")),
        ("on-b", Some("node-b")),
        ("none", None),
    ] {
        api.create(&PostParams::default(), &pod(name, node))
            .await
            .unwrap();
    }
    let on_a = api
        .list(&ListParams::default().fields("spec.nodeName=node-a"))
        .await
        .unwrap();
    let names: Vec<_> = on_a
        .items
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    assert_eq!(names, ["on-a"]);
    for name in ["on-a", "on-b", "none"] {
        api.delete(name, &DeleteParams::default().grace_period(0))
            .await
            .unwrap();
    }
    cluster.cleanup().await;
}
