//! Merge patch, JSON patch, server-side apply, and the Service immutability
//! rule this project depends on.

use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

use crate::harness::{Cluster, status_of};

#[tokio::test]
async fn merge_and_json_patches_change_what_they_name() {
    let cluster = Cluster::connect().await;
    let api = cluster.api::<ConfigMap>();
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "p"}, "data": {"a": "1", "b": "2"}}))
            .unwrap();
    api.create(&PostParams::default(), &cm).await.unwrap();
    let merged = api
        .patch(
            "p",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"a": "9", "b": null}})),
        )
        .await
        .unwrap();
    assert_eq!(
        merged.data.unwrap(),
        [("a".to_string(), "9".to_string())].into()
    );
    let patched = api
        .patch(
            "p",
            &PatchParams::default(),
            &Patch::<()>::Json(
                serde_json::from_value(json!([{"op": "add", "path": "/data/c", "value": "3"}]))
                    .unwrap(),
            ),
        )
        .await
        .unwrap();
    assert_eq!(patched.data.unwrap()["c"], "3");
    cluster.cleanup().await;
}

#[tokio::test]
async fn apply_creates_sets_removes_its_own_fields_and_keeps_others() {
    let cluster = Cluster::connect().await;
    let api = cluster.api::<ConfigMap>();
    let params = PatchParams::apply("manager-a");
    let first = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "s"}, "data": {"a": "1", "b": "2"}});
    api.patch("s", &params, &Patch::Apply(first)).await.unwrap();
    api.patch(
        "s",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"other": "x"}})),
    )
    .await
    .unwrap();
    let second = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "s"}, "data": {"a": "3"}});
    let after = api
        .patch("s", &params, &Patch::Apply(second))
        .await
        .unwrap();
    let data = after.data.unwrap();
    assert_eq!(data.get("a").map(String::as_str), Some("3"));
    assert_eq!(
        data.get("b"),
        None,
        "the field the manager stopped applying is removed"
    );
    assert_eq!(
        data.get("other").map(String::as_str),
        Some("x"),
        "another writer's field is kept"
    );
    cluster.cleanup().await;
}

#[tokio::test]
async fn load_balancer_class_cannot_change_while_the_type_stays_load_balancer() {
    let cluster = Cluster::connect().await;
    let api = cluster.api::<Service>();
    let svc: Service = serde_json::from_value(json!({"metadata": {"name": "web"}, "spec": {
        "type": "LoadBalancer", "loadBalancerClass": "svc-lb.tailscale.iptables.sh/lb", "ports": [{"port": 80}]}}))
    .unwrap();
    api.create(&PostParams::default(), &svc).await.unwrap();
    let err = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"loadBalancerClass": "example.com/other"}})),
        )
        .await
        .unwrap_err();
    assert_eq!(status_of(err), (422, "Invalid".into()));
    cluster.cleanup().await;
}

#[tokio::test]
async fn strategic_merge_patch_merges_service_ports_by_port() {
    let cluster = Cluster::connect().await;
    let api = cluster.api::<Service>();
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "smp"},
        "spec": {"ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}]}
    }))
    .unwrap();
    api.create(&PostParams::default(), &svc).await.unwrap();
    let patched = api
        .patch(
            "smp",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"ports": [
                {"port": 443, "targetPort": 8443},
                {"port": 80, "$patch": "delete"}
            ]}})),
        )
        .await
        .unwrap();
    let ports = patched.spec.unwrap().ports.unwrap();
    assert_eq!(ports.len(), 1, "{ports:?}");
    assert_eq!(ports[0].name.as_deref(), Some("https"));
    assert_eq!(
        ports[0].target_port,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(8443))
    );
    cluster.cleanup().await;
}

#[tokio::test]
async fn apply_of_a_field_another_manager_owns_is_a_conflict_unless_forced() {
    let cluster = Cluster::connect().await;
    let api = cluster.api::<ConfigMap>();
    let holder = |who: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "lock"}, "data": {"holder": who}});
    api.patch("lock", &PatchParams::apply("a"), &Patch::Apply(holder("a")))
        .await
        .unwrap();
    let refused = api
        .patch("lock", &PatchParams::apply("b"), &Patch::Apply(holder("b")))
        .await
        .unwrap_err();
    assert_eq!(status_of(refused), (409, "Conflict".to_string()));
    // The same value is shared ownership, not a conflict.
    api.patch("lock", &PatchParams::apply("b"), &Patch::Apply(holder("a")))
        .await
        .unwrap();
    let forced = api
        .patch(
            "lock",
            &PatchParams::apply("c").force(),
            &Patch::Apply(holder("c")),
        )
        .await
        .unwrap();
    assert_eq!(forced.data.unwrap()["holder"], "c");
    // An update by another manager takes the field: the next apply by the
    // previous owner conflicts.
    api.patch(
        "lock",
        &PatchParams {
            field_manager: Some("d".into()),
            ..PatchParams::default()
        },
        &Patch::Merge(json!({"data": {"holder": "d"}})),
    )
    .await
    .unwrap();
    let refused = api
        .patch("lock", &PatchParams::apply("c"), &Patch::Apply(holder("c")))
        .await
        .unwrap_err();
    assert_eq!(status_of(refused).0, 409);
    cluster.cleanup().await;
}
