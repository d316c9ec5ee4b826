//! Deletion and type changes tear the proxy down; other classes are never
//! touched.

use k8s_openapi::api::core::v1::Service;
use kube::ResourceExt;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use svc_lb_contract::keys::DEPROVISION_ANNOTATION;
use svc_lb_contract::state;

use crate::harness::{Cluster, eventually};
use crate::provisioning::{report_address, write_state};

/// Whether every proxy object of `service` is gone.
async fn proxy_gone(cluster: &Cluster, service: &str) -> bool {
    cluster.proxy_objects(service).await == [false; 6]
}

pub async fn service_released(cluster: &Cluster, service: &str) {
    eventually(&format!("{service} is released"), || async {
        cluster
            .services()
            .get_opt(service)
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
}

/// Plays the runtime's leader: waits until teardown asks it to log out.
pub async fn wait_for_logout_request(cluster: &Cluster, service: &str) {
    let secret_name = cluster.names(service).state_secret;
    eventually("logout is requested", || async {
        let secret = cluster.secrets().get(&secret_name).await.unwrap();
        secret.annotations().get(DEPROVISION_ANNOTATION).cloned()
    })
    .await;
}

/// Plays the runtime's leader: reports the logout in the state Secret.
pub async fn report_logged_out(cluster: &Cluster, service: &str) {
    let logged_out = (state::LOGGED_OUT, "2026-01-01T00:00:00Z".to_string());
    write_state(cluster, service, &[logged_out]).await;
}

/// A served Service whose device has joined the tailnet.
async fn joined(cluster: &Cluster, service: &str) {
    cluster.create_service(service, json!({})).await;
    report_address(cluster, service, "100.64.0.9").await;
    cluster.wait_for_ingress(service).await;
}

#[tokio::test]
async fn deleting_a_service_logs_the_device_out_then_removes_everything() {
    let cluster = Cluster::connect().await;
    let mut options = cluster.options("e2e");
    options.timings.deprovision_timeout = std::time::Duration::from_secs(60);
    let _controller = cluster.start(options);
    joined(&cluster, "web").await;
    let services = cluster.services();
    services
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    wait_for_logout_request(&cluster, "web").await;
    let held = services.get_opt("web").await.unwrap().is_some();
    assert!(held, "the Service is held until the device has left");
    assert!(!proxy_gone(&cluster, "web").await);
    report_logged_out(&cluster, "web").await;
    service_released(&cluster, "web").await;
    assert!(proxy_gone(&cluster, "web").await);
    cluster.cleanup().await;
}

#[tokio::test]
async fn deleting_a_service_finishes_after_the_timeout_when_no_runtime_answers() {
    let cluster = Cluster::connect().await;
    let _controller = cluster.start_default(); // 2 s deprovision timeout
    joined(&cluster, "web").await;
    let services = cluster.services();
    services
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    service_released(&cluster, "web").await;
    assert!(proxy_gone(&cluster, "web").await);
    let note = cluster
        .wait_for_event(&cluster.apps, "web", "Warning", "DeprovisionTimedOut")
        .await;
    assert!(
        note.contains("nTEST1234"),
        "names the device left behind: {note}"
    );
    cluster.cleanup().await;
}

#[tokio::test]
async fn changing_the_type_away_from_load_balancer_tears_the_proxy_down() {
    let cluster = Cluster::connect().await;
    let _controller = cluster.start_default();
    cluster.create_service("web", json!({})).await;
    report_address(&cluster, "web", "100.64.0.3").await;
    cluster.wait_for_ingress("web").await;
    let to_cluster_ip = json!({"spec": {"type": "ClusterIP", "loadBalancerClass": null}});
    cluster
        .services()
        .patch("web", &PatchParams::default(), &Patch::Merge(to_cluster_ip))
        .await
        .unwrap();
    eventually("the proxy is gone", || async {
        proxy_gone(&cluster, "web").await.then_some(())
    })
    .await;
    eventually("finalizer, ingress and condition are cleared", || async {
        let service = cluster.services().get("web").await.unwrap();
        let status = service.status.clone().unwrap_or_default();
        let ingress = status.load_balancer.and_then(|lb| lb.ingress);
        let conditions = status.conditions.unwrap_or_default();
        (service.finalizers().is_empty()
            && ingress.unwrap_or_default().is_empty()
            && conditions.is_empty())
        .then_some(())
    })
    .await;
    cluster.cleanup().await;
}

#[tokio::test]
async fn a_service_of_another_class_is_untouched() {
    let cluster = Cluster::connect().await;
    let _controller = cluster.start_default();
    let other: Service = serde_json::from_value(json!({
        "metadata": {"name": "other"},
        "spec": {"type": "LoadBalancer", "loadBalancerClass": "example.com/other", "ports": [{"port": 80}]}
    }))
    .unwrap();
    let services = cluster.services();
    let created = services
        .create(&PostParams::default(), &other)
        .await
        .unwrap();
    // A Service of ours, created after, shows the controller is running.
    cluster.create_service("ours", json!({})).await;
    cluster.wait_for_condition("ours", "NoMatchingNodes").await;
    let after = services.get("other").await.unwrap();
    assert_eq!(after.resource_version(), created.resource_version());
    assert!(proxy_gone(&cluster, "other").await);
    assert!(cluster.events_for("other").await.is_empty());
    cluster.cleanup().await;
}

#[tokio::test]
async fn proxies_no_service_wants_are_removed_at_start_and_foreign_objects_kept() {
    let cluster = Cluster::connect().await;
    // A proxy whose Service is gone (its finalizer removed by hand while no
    // controller ran): made by a controller that then stops.
    let first = cluster.start_default();
    cluster.create_service("gone", json!({})).await;
    cluster.wait_for_daemonset("gone").await;
    first.stop().await;
    let unfinalized = json!({"metadata": {"finalizers": null}});
    let services = cluster.services();
    services
        .patch("gone", &PatchParams::default(), &Patch::Merge(unfinalized))
        .await
        .unwrap();
    services
        .delete("gone", &DeleteParams::default())
        .await
        .unwrap();
    // An object of the same kind and name pattern that is not ours.
    let foreign: k8s_openapi::api::core::v1::Secret = serde_json::from_value(json!({
        "metadata": {"name": cluster.names("stranger").state_secret,
                     "labels": {svc_lb_contract::keys::SERVICE_NAMESPACE_LABEL: cluster.apps,
                                svc_lb_contract::keys::SERVICE_NAME_LABEL: "stranger"}}
    }))
    .unwrap();
    cluster
        .secrets()
        .create(&PostParams::default(), &foreign)
        .await
        .unwrap();
    let _second = cluster.start_default();
    eventually("the orphaned proxy is removed", || async {
        proxy_gone(&cluster, "gone").await.then_some(())
    })
    .await;
    let stranger = cluster.names("stranger").state_secret;
    assert!(
        cluster
            .secrets()
            .get_opt(&stranger)
            .await
            .unwrap()
            .is_some()
    );
    cluster.cleanup().await;
}

#[tokio::test]
async fn two_installations_never_touch_each_others_services() {
    let cluster = Cluster::connect().await;
    let other = cluster.second_installation().await;
    let _ours = cluster.start_default();
    let mut options = other.options("other");
    options.timings.deprovision_timeout = std::time::Duration::from_secs(60);
    let _theirs = other.start(options);
    cluster.create_service("a", json!({})).await;
    other.create_service("b", json!({})).await;
    cluster.wait_for_daemonset("a").await;
    other.wait_for_daemonset("b").await;
    assert_eq!(
        cluster.proxy_objects("b").await,
        [false; 6],
        "not served by us"
    );
    // "b" leaves LoadBalancer: only its own installation tears it down,
    // waiting for the device to log out; ours must not release it early.
    report_address(&other, "b", "100.64.0.2").await;
    other.wait_for_ingress("b").await;
    let to_cluster_ip = json!({"spec": {"type": "ClusterIP", "loadBalancerClass": null}});
    let services = cluster.services();
    services
        .patch("b", &PatchParams::default(), &Patch::Merge(to_cluster_ip))
        .await
        .unwrap();
    wait_for_logout_request(&other, "b").await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let held = services.get("b").await.unwrap();
    assert!(!held.finalizers().is_empty(), "still held for the logout");
    report_logged_out(&other, "b").await;
    eventually("their proxy is gone and the finalizer released", || async {
        let service = services.get("b").await.unwrap();
        let gone = other.proxy_objects("b").await == [false; 6];
        (gone && service.finalizers().is_empty()).then_some(())
    })
    .await;
    assert_eq!(
        cluster.proxy_objects("a").await,
        [true; 6],
        "ours untouched"
    );
    other.cleanup().await;
    cluster.cleanup().await;
}

#[tokio::test]
async fn a_service_served_again_during_its_teardown_gets_a_fresh_proxy_state() {
    let cluster = Cluster::connect().await;
    let mut options = cluster.options("e2e");
    options.timings.deprovision_timeout = std::time::Duration::from_secs(60);
    let _controller = cluster.start(options);
    joined(&cluster, "web").await;
    let services = cluster.services();
    let away = json!({"spec": {"type": "ClusterIP", "loadBalancerClass": null}});
    services
        .patch("web", &PatchParams::default(), &Patch::Merge(away))
        .await
        .unwrap();
    let secret_name = cluster.names("web").state_secret;
    let asked = eventually("logout is requested", || async {
        let secret = cluster.secrets().get(&secret_name).await.unwrap();
        secret
            .annotations()
            .contains_key(DEPROVISION_ANNOTATION)
            .then_some(secret)
    })
    .await;
    let back = json!({"spec": {"type": "LoadBalancer", "loadBalancerClass": cluster.class}});
    services
        .patch("web", &PatchParams::default(), &Patch::Merge(back))
        .await
        .unwrap();
    eventually(
        "a fresh state Secret without the logout request",
        || async {
            let secret = cluster.secrets().get_opt(&secret_name).await.unwrap()?;
            let fresh = secret.metadata.uid != asked.metadata.uid
                && !secret.annotations().contains_key(DEPROVISION_ANNOTATION);
            fresh.then_some(())
        },
    )
    .await;
    cluster.cleanup().await;
}

/// Sets the opt-out policy's annotation on `service`.
async fn expose(cluster: &Cluster, service: &str, value: &str) {
    let patch = json!({"metadata": {"annotations": {"example.com/expose": value}}});
    cluster
        .services()
        .patch(service, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_policy_that_does_not_serve_a_service_logs_it_out_and_removes_its_proxy() {
    let cluster = Cluster::connect().await;
    let files = [(
        "opt-out.wasm",
        crate::harness::policy_wasm("test_guest_opt_out"),
    )];
    let set = "policies:\n- name: opt-out\n  file: opt-out.wasm\n";
    cluster.put_policies(set, &files).await;
    let mut options = cluster.options("e2e");
    options.timings.deprovision_timeout = std::time::Duration::from_secs(60);
    let _controller = cluster.start(options);
    joined(&cluster, "web").await;
    let before = cluster.wait_for_daemonset("web").await;

    // A typo is invalid input: the Service keeps its proxy.
    expose(&cluster, "web", "flase").await;
    let condition = cluster.wait_for_condition("web", "PolicyFailed").await;
    assert!(
        condition.message.contains("policy opt-out"),
        "{}",
        condition.message
    );
    let kept = cluster.wait_for_daemonset("web").await;
    assert_eq!(
        kept.metadata.resource_version,
        before.metadata.resource_version
    );
    assert!(!cluster.wait_for_ingress("web").await.is_empty());

    // "false": the device is logged out, the proxy removed, and the Service
    // says which policy decided and why.
    expose(&cluster, "web", "false").await;
    wait_for_logout_request(&cluster, "web").await;
    report_logged_out(&cluster, "web").await;
    eventually("the proxy is removed", || async {
        proxy_gone(&cluster, "web").await.then_some(())
    })
    .await;
    let condition = cluster.wait_for_condition("web", "NotServed").await;
    assert_eq!(
        condition.message,
        "policy opt-out does not serve this Service: its owner set example.com/expose=false"
    );
    let web = cluster.services().get("web").await.unwrap();
    let ingress = web
        .status
        .and_then(|s| s.load_balancer)
        .and_then(|lb| lb.ingress);
    assert!(ingress.unwrap_or_default().is_empty(), "no address shown");
    assert!(
        web.metadata.finalizers.unwrap_or_default().is_empty(),
        "released"
    );
    let note = cluster
        .wait_for_event(&cluster.apps, "web", "Normal", "ProxyRemoved")
        .await;
    assert!(
        note.contains("policy opt-out does not serve this Service"),
        "{note}"
    );

    // Served again when the owner changes their mind: a fresh proxy.
    expose(&cluster, "web", "true").await;
    cluster.wait_for_daemonset("web").await;
    // (No node carries the deploy label in this test.)
    cluster.wait_for_condition("web", "NoMatchingNodes").await;
    cluster.cleanup().await;
}

#[tokio::test]
async fn a_service_never_served_that_a_policy_does_not_serve_gets_no_proxy_and_no_finalizer() {
    let cluster = Cluster::connect().await;
    let files = [(
        "opt-out.wasm",
        crate::harness::policy_wasm("test_guest_opt_out"),
    )];
    let set = "policies:\n- name: opt-out\n  file: opt-out.wasm\n";
    cluster.put_policies(set, &files).await;
    let _controller = cluster.start_default();
    cluster
        .create_service("web", json!({"example.com/expose": "false"}))
        .await;
    cluster.wait_for_condition("web", "NotServed").await;
    let web = cluster.services().get("web").await.unwrap();
    assert!(web.metadata.finalizers.unwrap_or_default().is_empty());
    assert!(proxy_gone(&cluster, "web").await);
    cluster.cleanup().await;
}
