//! What stops a proxy reaches its Service's owner: the runtime, in its
//! container, reports the control server's refusal into the state Secret
//! and the controller shows it as the Service's condition; once the cause
//! is fixed (in the tailnet, not the cluster) the proxy serves without
//! anyone touching the Service.

use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use kube::Api;
use serde_json::json;

use crate::{assert_never_two_forwarders, http_port};
use playground::cluster::{Options, PodCluster, within};

fn one_node() -> Options {
    Options {
        nodes: 1,
        ..Options::default()
    }
}

/// The Service's `TailscaleProxyReady` condition, once its reason is `reason`.
async fn condition(cluster: &PodCluster, reason: &str) -> String {
    let services: Api<Service> = Api::namespaced(cluster.sim.client(), "default");
    within(
        Duration::from_secs(60),
        &format!("the condition {reason}"),
        || async {
            let status = services.get("web").await.ok()?.status?;
            status
                .conditions?
                .into_iter()
                .find(|c| c.type_ == svc_lb_host::controller::PROXY_READY && c.reason == reason)
                .map(|c| c.message)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_the_tailnet_does_not_permit_are_shown_on_the_service_until_permitted() {
    let cluster = PodCluster::new("g", one_node()).await;
    let tailnet = cluster.dir.path().join("tailnet");
    std::fs::write(tailnet.join("permitted-tags"), "tag:other").unwrap();
    let tags = json!({svc_lb_contract::keys::TAGS_ANNOTATION: "tag:web"});
    cluster.create_service_annotated(http_port(), tags).await;
    let message = condition(&cluster, "TagsNotPermitted").await;
    assert!(
        message.starts_with("the tailnet refused the tags tag:web: ")
            && message.contains("requested tags [tag:web] are invalid or not permitted"),
        "{message}"
    );
    // The tailnet's admin permits the tag: the leader's next try succeeds.
    std::fs::write(tailnet.join("permitted-tags"), "tag:other,tag:web").unwrap();
    let ip = cluster.ingress(Duration::from_secs(90)).await;
    assert!(cluster.reaches_backend(&ip, Duration::from_secs(10)));
    condition(&cluster, "Ready").await;
    assert_never_two_forwarders(&cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_waiting_for_approval_is_shown_on_the_service_until_approved() {
    let cluster = PodCluster::new("v", one_node()).await;
    let tailnet = cluster.dir.path().join("tailnet");
    std::fs::write(tailnet.join("device-approval"), "").unwrap();
    cluster.create_service(http_port()).await;
    let message = condition(&cluster, "NeedsApproval").await;
    assert!(
        message.contains("approve it in the admin console"),
        "{message}"
    );
    std::fs::create_dir_all(tailnet.join("approved")).unwrap();
    std::fs::write(tailnet.join("approved/1"), "").unwrap();
    let ip = cluster.ingress(Duration::from_secs(60)).await;
    assert!(cluster.reaches_backend(&ip, Duration::from_secs(10)));
    assert_never_two_forwarders(&cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_oauth_client_the_proxy_logs_in_with_its_own_key_and_its_device_is_deleted_after_teardown()
 {
    let options = Options {
        nodes: 1,
        auth_key: false,
        oauth: true,
        ..Options::default()
    };
    let cluster = PodCluster::new("oa", options).await;
    // Device approval is on: the minted key is preauthorized, so the
    // device needs none.
    let tailnet = cluster.dir.path().join("tailnet");
    std::fs::write(tailnet.join("device-approval"), "").unwrap();
    let tags = json!({svc_lb_contract::keys::TAGS_ANNOTATION: "tag:web"});
    cluster.create_service_annotated(http_port(), tags).await;
    let ip = cluster.ingress(Duration::from_secs(60)).await;
    assert!(cluster.reaches_backend(&ip, Duration::from_secs(10)));
    let api = cluster.tailscale_api.as_ref().unwrap();
    let minted = api.state(|s| s.keys.clone());
    assert_eq!(minted.len(), 1);
    assert_eq!(minted[0].tags, vec!["tag:web".to_string()]);
    assert!(minted[0].preauthorized && !minted[0].reusable);
    let device = std::fs::read_dir(tailnet.join("devices"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name();
    assert_eq!(cluster.tailnet_devices(), 1);
    // The used key is gone from the state Secret, and from control.
    within(Duration::from_secs(10), "the used key removed", || async {
        cluster
            .state(svc_lb_contract::state::AUTH_KEY)
            .await
            .is_none()
            .then_some(())
    })
    .await;
    assert!(
        !tailnet.join("keys").join(&minted[0].key).exists(),
        "used up"
    );
    let logs: String = cluster.pod_logs().into_iter().map(|(_, log)| log).collect();
    assert!(
        !logs.contains(&minted[0].key),
        "the key reached a pod's log"
    );
    assert!(!logs.contains(playground::cluster::OAUTH_CLIENT_SECRET));

    cluster.delete_service(Duration::from_secs(60)).await;
    let id = format!("nFAKE{}CNTRL", device.to_string_lossy());
    assert_eq!(api.state(|s| s.deleted_devices.clone()), vec![id]);
    assert_eq!(cluster.tailnet_devices(), 0, "nothing left in the tailnet");
    assert_never_two_forwarders(&cluster);
}
