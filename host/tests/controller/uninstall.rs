//! `uninstall` (the chart's pre-delete hook): with the controller stopped,
//! every Service the installation serves is torn down by the controller's
//! own teardown (the leader logs out first), its finalizer goes and the
//! Service stays; it waits for a controller that still holds its Lease.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::ResourceExt;
use kube::api::PostParams;
use serde_json::json;
use svc_lb_host::controller::uninstall::{UninstallError, UninstallOptions, uninstall};

use crate::harness::Cluster;
use crate::provisioning::report_address;

fn options(cluster: &Cluster, timeout: Duration) -> UninstallOptions {
    let mut controller = cluster.options("uninstall");
    controller.timings.deprovision_timeout = Duration::from_secs(30);
    UninstallOptions {
        config: controller.config,
        timings: controller.timings,
        deployment: None,
        timeout,
        concurrency: 2,
    }
}

#[tokio::test]
async fn uninstall_releases_every_served_service_after_its_device_logged_out() {
    let cluster = Cluster::connect().await;
    let controller = cluster.start_default();
    for name in ["web", "api", "db"] {
        cluster.create_service(name, json!({})).await;
        cluster.wait_for_daemonset(name).await;
    }
    report_address(&cluster, "web", "100.64.0.9").await;
    cluster.wait_for_ingress("web").await;
    controller.stop().await;

    // Run as the controller's ServiceAccount, under the shipped RBAC.
    let run = tokio::spawn(uninstall(
        cluster.controller_client(),
        options(&cluster, Duration::from_secs(60)),
    ));
    // The joined device is asked to log out first; play its leader.
    crate::teardown::wait_for_logout_request(&cluster, "web").await;
    let held = cluster.services().get("web").await.unwrap();
    assert!(!held.finalizers().is_empty(), "held until the device left");
    crate::teardown::report_logged_out(&cluster, "web").await;
    let report = run.await.unwrap().unwrap();

    let apps = &cluster.apps;
    let mut expected: Vec<String> = ["api", "db", "web"]
        .iter()
        .map(|n| format!("{apps}/{n}"))
        .collect();
    expected.sort();
    assert_eq!(report.released, expected);
    assert!(report.unfinished.is_empty());
    for name in ["web", "api", "db"] {
        let service = cluster
            .services()
            .get(name)
            .await
            .expect("the Service stays");
        assert!(service.finalizers().is_empty(), "{name} released");
        assert_eq!(cluster.proxy_objects(name).await, [false; 6], "{name}");
        let ingress = service
            .status
            .and_then(|s| s.load_balancer)
            .and_then(|lb| lb.ingress)
            .unwrap_or_default();
        assert!(ingress.is_empty(), "{name}: no address left");
    }
    cluster.cleanup().await;
}

#[tokio::test]
async fn uninstall_waits_for_a_controller_that_still_holds_its_lease() {
    let cluster = Cluster::connect().await;
    let now = k8s_openapi::jiff::Timestamp::now();
    let lease: Lease = serde_json::from_value(json!({
        "metadata": {"name": svc_lb_host::controller::leader::CONTROLLER_LEASE},
        "spec": {"holderIdentity": "controller-0", "leaseDurationSeconds": 3600,
                 "renewTime": now.to_string(), "acquireTime": now.to_string()}
    }))
    .unwrap();
    cluster
        .api::<Lease>(&cluster.system)
        .create(&PostParams::default(), &lease)
        .await
        .unwrap();
    let mut options = options(&cluster, Duration::from_secs(2));
    // Scaling needs the hook's rights: run it as the cluster admin here.
    options.deployment = Some("tailscale-svc-lb".into());
    let error = uninstall(cluster.client.clone(), options)
        .await
        .unwrap_err();
    assert!(
        matches!(error, UninstallError::ControllerStillRunning(_)),
        "{error}"
    );
    cluster.cleanup().await;
}
