//! A Service of our class gets its proxy objects, status and updates.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use kube::ResourceExt;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use svc_lb_contract::keys::{HOSTNAME_ANNOTATION, SERVICE_FINALIZER, TAGS_ANNOTATION};
use svc_lb_contract::{env, state};

use crate::harness::{Cluster, eventually};

/// The proxy container's environment of the Service's DaemonSet.
async fn proxy_env(cluster: &Cluster, service: &str) -> BTreeMap<String, String> {
    let ds = cluster.wait_for_daemonset(service).await;
    ds.spec.unwrap().template.spec.unwrap().containers[0]
        .env
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|e| Some((e.name, e.value?)))
        .collect()
}

/// Merges `data` into the state Secret, as the runtime does.
pub async fn write_state(cluster: &Cluster, service: &str, data: &[(&str, String)]) {
    let data: BTreeMap<&str, ByteString> = data
        .iter()
        .map(|(k, v)| (*k, ByteString(v.clone().into_bytes())))
        .collect();
    let params = PatchParams {
        field_manager: Some("runtime".into()),
        ..Default::default()
    };
    cluster
        .secrets()
        .patch(
            &cluster.names(service).state_secret,
            &params,
            &Patch::Merge(json!({ "data": data })),
        )
        .await
        .unwrap();
}

/// Writes what the runtime's leader reports once it is on the tailnet.
pub async fn report_address(cluster: &Cluster, service: &str, ip: &str) {
    cluster.wait_for_daemonset(service).await;
    write_state(
        cluster,
        service,
        &[
            (state::TS_IP, ip.to_string()),
            (
                state::DEVICE_IPS,
                format!(r#"["{ip}", "fd7a:115c:a1e0::7"]"#),
            ),
            (state::DEVICE_FQDN, format!("{service}.tail0000.ts.net")),
            (state::DEVICE_ID, "nTEST1234".to_string()),
            (state::LEADER_POD, "ts-pod-1".to_string()),
            (state::LEADER_NODE, "node-1".to_string()),
        ],
    )
    .await;
}

#[tokio::test]
async fn creating_a_service_applies_daemonset_secret_lease_and_rbac() {
    let cluster = Cluster::connect().await;
    let _controller = cluster.start_default();
    let annotations = json!({HOSTNAME_ANNOTATION: "shop-web", TAGS_ANNOTATION: "tag:web"});
    cluster.create_service("web", annotations).await;
    let ds = cluster.wait_for_daemonset("web").await;
    let selector = ds.spec.unwrap().template.spec.unwrap().node_selector;
    assert_eq!(
        selector.unwrap()[svc_lb_contract::keys::DEPLOY_NODE_LABEL],
        "true"
    );
    let env = proxy_env(&cluster, "web").await;
    assert_eq!(env[env::HOSTNAME], "shop-web");
    assert_eq!(env[env::TAGS], "tag:web");
    let names = cluster.names("web");
    assert_eq!(cluster.proxy_objects("web").await, [true; 6]);
    let service = cluster.services().get("web").await.unwrap();
    assert!(
        service
            .finalizers()
            .contains(&SERVICE_FINALIZER.to_string())
    );
    let note = cluster
        .wait_for_event(&cluster.apps, "web", "Normal", "ProxyCreated")
        .await;
    assert!(note.contains(&names.daemonset), "{note}");
    cluster.cleanup().await;
}

#[tokio::test]
async fn an_address_in_the_state_secret_reaches_the_service_status() {
    let cluster = Cluster::connect().await;
    let _controller = cluster.start_default();
    cluster.create_node("a", json!({})).await;
    cluster.create_service("web", json!({})).await;
    cluster.wait_for_condition("web", "WaitingForLeader").await;
    report_address(&cluster, "web", "100.64.0.7").await;
    let shown: Vec<_> = cluster
        .wait_for_ingress("web")
        .await
        .into_iter()
        .map(|i| (i.ip, i.hostname, i.ip_mode))
        .collect();
    let proxy = Some("Proxy".to_string());
    assert_eq!(
        shown,
        vec![
            (Some("100.64.0.7".into()), None, proxy.clone()),
            (Some("fd7a:115c:a1e0::7".into()), None, proxy),
            (None, Some("web.tail0000.ts.net".into()), None),
        ]
    );
    let ready = cluster.wait_for_condition("web", "Ready").await;
    assert_eq!(ready.status, "True");
    assert_eq!(ready.message, "leader ts-pod-1 on node node-1 forwards");
    cluster
        .wait_for_event(&cluster.apps, "web", "Normal", "AddressAssigned")
        .await;
    cluster.cleanup().await;
}

#[tokio::test]
async fn a_pending_login_is_shown_in_the_condition_without_its_url() {
    let cluster = Cluster::connect().await;
    let _controller = cluster.start_default();
    cluster.create_service("web", json!({})).await;
    cluster.wait_for_daemonset("web").await;
    let url = "https://login.tailscale.com/a/0123456789".to_string();
    let leader = (state::LEADER_POD, "ts-pod-1".to_string());
    write_state(&cluster, "web", &[(state::LOGIN_URL, url.clone()), leader]).await;
    let condition = cluster.wait_for_condition("web", "WaitingForLogin").await;
    // Whoever opens the URL owns the device: it stays out of the Service.
    assert!(!condition.message.contains(&url), "{}", condition.message);
    assert!(
        condition.message.contains("ts-pod-1"),
        "{}",
        condition.message
    );
    cluster.cleanup().await;
}

#[tokio::test]
async fn changing_an_annotation_updates_the_daemonset() {
    let cluster = Cluster::connect().await;
    let _controller = cluster.start_default();
    cluster
        .create_service("web", json!({HOSTNAME_ANNOTATION: "first"}))
        .await;
    assert_eq!(proxy_env(&cluster, "web").await[env::HOSTNAME], "first");
    let rename = json!({"metadata": {"annotations": {HOSTNAME_ANNOTATION: "second"}}});
    cluster
        .services()
        .patch("web", &PatchParams::default(), &Patch::Merge(rename))
        .await
        .unwrap();
    eventually("the DaemonSet carries the new hostname", || async {
        (proxy_env(&cluster, "web").await[env::HOSTNAME] == "second").then_some(())
    })
    .await;
    cluster
        .wait_for_event(&cluster.apps, "web", "Normal", "ProxyUpdated")
        .await;
    cluster.cleanup().await;
}

#[tokio::test]
async fn in_memory_only_an_unchanged_render_writes_nothing() {
    let cluster = Cluster::connect().await;
    let Some(sim) = cluster.sim.as_ref() else {
        return;
    };
    let controller = cluster.start_default();
    cluster.create_service("web", json!({})).await;
    let before = cluster.wait_for_daemonset("web").await;
    cluster.wait_for_condition("web", "NoMatchingNodes").await;
    let writes = || {
        let counts = sim.requests().snapshot();
        [
            "daemonsets",
            "secrets",
            "leases",
            "roles",
            "rolebindings",
            "serviceaccounts",
        ]
        .iter()
        .map(|r| counts.get(&format!("PATCH {r}")).copied().unwrap_or(0))
        .sum::<u64>()
    };
    let written = writes();
    // What makes the controller look again without changing the render: a
    // label on the Service, a restart of the controller, a new node. The
    // node also turns the condition from NoMatchingNodes to
    // WaitingForLeader, which shows that the restarted controller has
    // reconciled "web".
    let label = json!({"metadata": {"labels": {"team": "a"}}});
    cluster
        .services()
        .patch("web", &PatchParams::default(), &Patch::Merge(label))
        .await
        .unwrap();
    controller.stop().await;
    cluster.create_node("a", json!({})).await;
    let _restarted = cluster.start_default();
    cluster.wait_for_condition("web", "WaitingForLeader").await;
    assert_eq!(writes(), written, "no proxy object was written");
    let after = cluster.wait_for_daemonset("web").await;
    assert_eq!(after.resource_version(), before.resource_version());
    cluster.cleanup().await;
}

#[tokio::test]
async fn a_deleted_proxy_object_is_recreated() {
    let cluster = Cluster::connect().await;
    let _controller = cluster.start_default();
    cluster.create_service("web", json!({})).await;
    cluster.wait_for_daemonset("web").await;
    eventually("every proxy object exists", || async {
        (cluster.proxy_objects("web").await == [true; 6]).then_some(())
    })
    .await;
    let bindings = cluster.api::<k8s_openapi::api::rbac::v1::RoleBinding>(&cluster.system);
    let name = cluster.names("web").role_binding;
    bindings.delete(&name, &Default::default()).await.unwrap();
    eventually("the RoleBinding is back", || async {
        bindings.get_opt(&name).await.unwrap().map(|_| ())
    })
    .await;
    cluster.cleanup().await;
}

#[tokio::test]
async fn a_problem_the_proxy_reports_is_shown_on_the_service_in_actionable_words() {
    let cluster = Cluster::connect().await;
    let _controller = cluster.start_default();
    let deploy = svc_lb_contract::keys::DEPLOY_NODE_LABEL;
    cluster.create_node("a", json!({deploy: "true"})).await;
    cluster
        .create_service("web", json!({TAGS_ANNOTATION: "tag:web"}))
        .await;
    cluster.wait_for_daemonset("web").await;
    // What the runtime's leader writes when control refuses the tags.
    let refused = "backend error: requested tags [tag:web] are invalid or not permitted \
                   (pod ts-pod-1 on node node-1)";
    write_state(
        &cluster,
        "web",
        &[
            (
                state::PROBLEM,
                state::problem::TAGS_NOT_PERMITTED.to_string(),
            ),
            (state::PROBLEM_MESSAGE, refused.to_string()),
        ],
    )
    .await;
    let condition = cluster.wait_for_condition("web", "TagsNotPermitted").await;
    assert!(
        condition
            .message
            .starts_with("the tailnet refused the tags tag:web: ")
            && condition.message.ends_with(refused),
        "{}",
        condition.message
    );
    // Once it serves, the condition says so.
    report_address(&cluster, "web", "100.64.0.9").await;
    cluster.wait_for_condition("web", "Ready").await;
    cluster.cleanup().await;
}

#[tokio::test]
async fn a_daemonset_that_cannot_create_its_pods_is_shown_on_the_service() {
    let cluster = Cluster::connect().await;
    let _controller = cluster.start_default();
    let deploy = svc_lb_contract::keys::DEPLOY_NODE_LABEL;
    cluster.create_node("a", json!({deploy: "true"})).await;
    cluster.create_service("web", json!({})).await;
    let ds = cluster.wait_for_daemonset("web").await;
    // What the DaemonSet controller counts when admission (Pod Security,
    // a quota) refuses every pod: one wanted, none there.
    let status = json!({"status": {
        "desiredNumberScheduled": 1, "currentNumberScheduled": 0, "numberMisscheduled": 0,
        "numberReady": 0, "numberUnavailable": 1,
        "observedGeneration": ds.metadata.generation,
    }});
    cluster
        .daemonsets()
        .patch_status(
            &ds.name_any(),
            &PatchParams::default(),
            &Patch::Merge(status),
        )
        .await
        .unwrap();
    let condition = cluster.wait_for_condition("web", "PodsNotCreated").await;
    assert!(
        condition
            .message
            .contains("should run 1 pod(s) but none could be created")
            && condition.message.contains(&ds.name_any()),
        "{}",
        condition.message
    );
    cluster.cleanup().await;
}
