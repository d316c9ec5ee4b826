//! The failover behaviours of the runtime, with its pods run as deployed:
//! handover on pod deletion (SIGTERM from the kubelet), a leader cut off
//! from the API server, the login URL without an auth key, the health port,
//! a Service served again during teardown, granted tags, a failed state
//! store, a leader stopped right after its first login, and a killed
//! tailscaled (restarted by the same leader, its orphans reaped by PID 1).

use std::time::Duration;

use svc_lb_contract::state;

use crate::{assert_never_two_forwarders, http_port};
use playground::cluster::{NAMESPACE, Options, PodCluster, within};

fn one_node() -> Options {
    Options {
        nodes: 1,
        ..Options::default()
    }
}

/// A Service served by a leader: (the leader's node and pod, the IP).
async fn served(cluster: &PodCluster) -> ((usize, String), String) {
    cluster.create_service(http_port()).await;
    let ip = cluster.ingress(Duration::from_secs(60)).await;
    assert!(cluster.reaches_backend(&ip, Duration::from_secs(10)));
    let leader = within(Duration::from_secs(10), "the leader", || cluster.leader()).await;
    (leader, ip)
}

/// The proxy log of pod `pod`.
fn log_of(cluster: &PodCluster, pod: &str) -> String {
    cluster
        .pod_logs()
        .into_iter()
        .filter(|(name, _)| name.contains(&format!("_{pod}_")) && name.ends_with("/proxy.log"))
        .map(|(_, log)| log)
        .collect()
}

/// The host pids of the runtime of node `i` and of its tailscaled.
fn tailscaled_of(cluster: &PodCluster, i: usize) -> Option<(u32, u32)> {
    let (_, runtime) = cluster.proxies().into_iter().find(|(n, _)| *n == i)?;
    let daemons = crate::procs::children_named(runtime, "tailscaled");
    Some((runtime, *daemons.first()?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_leaders_pod_hands_over_to_a_standby_at_once() {
    let cluster = PodCluster::new("h", Options::default()).await;
    let ((_, pod), ip) = served(&cluster).await;
    cluster.all_ready(2, Duration::from_secs(20)).await;
    let device = cluster.state(state::DEVICE_ID).await.unwrap();
    let deleted = std::time::Instant::now();
    cluster.delete_pod(&pod).await;
    cluster.new_leader(&pod, Duration::from_secs(10)).await;
    assert!(cluster.reaches_backend(&ip, Duration::from_secs(10)));
    eprintln!(
        "served again {:?} after the pod was deleted",
        deleted.elapsed()
    );
    let log = log_of(&cluster, &pod);
    assert!(log.contains("released the lease"), "{log}");
    assert!(log.contains("forwarding removed"), "{log}");
    assert_eq!(cluster.state(state::DEVICE_ID).await.unwrap(), device);
    assert_eq!(cluster.tailnet_devices(), 1);
    assert_never_two_forwarders(&cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_runtimes_rules_are_removed_when_its_container_restarts() {
    // The kubelet's own first back-off: the standby leads before the
    // killed container is back.
    let options = Options {
        restart_backoff: Duration::from_secs(10),
        ..Options::default()
    };
    let mut cluster = PodCluster::new("x", options).await;
    let ((node, pod), ip) = served(&cluster).await;
    cluster.all_ready(2, Duration::from_secs(20)).await;
    let netns = cluster.kill_proxy(node, &pod).await;
    // Its tailscaled died with it (the container's PID namespace went), and
    // its TUN device and address with that; its rules are left.
    assert!(PodCluster::forwarding_in(&netns), "rules left by SIGKILL");
    cluster.new_leader(&pod, Duration::from_secs(20)).await;
    assert!(cluster.reaches_backend(&ip, Duration::from_secs(10)));
    within(
        Duration::from_secs(20),
        "the restarted runtime to remove them",
        || async {
            let restarted = log_of(&cluster, &pod).matches("::run: starting").count() == 2;
            (restarted && !PodCluster::forwarding_in(&netns)).then_some(())
        },
    )
    .await;
    cluster.all_ready(2, Duration::from_secs(20)).await;
    assert_eq!(cluster.tailnet_devices(), 1);
    assert_never_two_forwarders(&cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_the_api_server_stops_before_a_standby_takes_over() {
    let cluster = PodCluster::new("c", Options::default()).await;
    let ((node, pod), ip) = served(&cluster).await;
    cluster.cut_off_api(node);
    cluster.new_leader(&pod, Duration::from_secs(30)).await;
    assert!(cluster.reaches_backend(&ip, Duration::from_secs(10)));
    let log = log_of(&cluster, &pod);
    assert!(
        log.contains("forwarding removed"),
        "the cut-off leader stopped: {log}"
    );
    assert_never_two_forwarders(&cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_auth_key_the_login_url_is_reported_and_nothing_forwards() {
    let options = Options {
        auth_key: false,
        ..one_node()
    };
    let cluster = PodCluster::new("k", options).await;
    cluster.create_service(http_port()).await;
    let url = within(Duration::from_secs(30), "the login URL", || {
        cluster.state(state::LOGIN_URL)
    })
    .await;
    assert!(url.starts_with("https://login.fake.invalid/a/"), "{url}");
    let (_, pod) = cluster.leader().await.expect("the leader reports itself");
    assert!(
        log_of(&cluster, &pod).contains(&url),
        "the URL is in the log"
    );
    assert_eq!(cluster.state(state::TS_IP).await, None);
    // Two readiness periods: a leader waiting for a login is not ready.
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert_eq!(cluster.proxy_states().await, [(true, false)]);
    assert!(!log_of(&cluster, &pod).contains("forwarding installed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_health_port_answers_the_kubelet_on_the_pod_ip_and_not_the_tailnet() {
    let cluster = PodCluster::new("hp", one_node()).await;
    let (_, ip) = served(&cluster).await;
    // Ready: the kubelet's probe reached /readyz on the pod's IP.
    cluster.all_ready(1, Duration::from_secs(20)).await;
    let output = std::process::Command::new("ip")
        .args(["netns", "exec", &cluster.client_ns, "socat", "-T1", "-"])
        .arg(format!("TCP4:{ip}:9002,connect-timeout=1"))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        !output.status.success(),
        "nothing answers on the device's address"
    );
    assert_never_two_forwarders(&cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_served_again_during_teardown_gets_a_new_device() {
    let cluster = PodCluster::new("r", Options::default()).await;
    served(&cluster).await;
    cluster.delete_service(Duration::from_secs(30)).await;
    // Served again while the old pods may still be terminating.
    cluster.create_service(http_port()).await;
    let ip = cluster.ingress(Duration::from_secs(60)).await;
    assert!(cluster.reaches_backend(&ip, Duration::from_secs(20)));
    assert_eq!(cluster.logged_in_devices(), 1, "one new device");
    assert_never_two_forwarders(&cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn granted_tags_other_than_the_requested_ones_cause_no_reauthentication_on_handover() {
    let cluster = PodCluster::new("t", Options::default()).await;
    std::fs::write(
        cluster.dir.path().join("tailnet/granted-tags"),
        "tag:from-the-key",
    )
    .unwrap();
    let ((_, pod), ip) = served(&cluster).await;
    within(Duration::from_secs(10), "the login request", || {
        cluster.state(state::LOGIN_REQUEST)
    })
    .await;
    cluster.all_ready(2, Duration::from_secs(20)).await;
    cluster.delete_pod(&pod).await;
    cluster.new_leader(&pod, Duration::from_secs(10)).await;
    assert!(cluster.reaches_backend(&ip, Duration::from_secs(10)));
    let reauths =
        std::fs::read_to_string(cluster.dir.path().join("tailnet/reauths")).unwrap_or_default();
    assert_eq!(reauths, "", "no login was repeated");
    assert_never_two_forwarders(&cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tailscaled_whose_state_store_failed_is_restarted_until_it_has_its_state() {
    let cluster = PodCluster::new("n", one_node()).await;
    let ((_, pod), ip) = served(&cluster).await;
    let (_, daemon) = tailscaled_of(&cluster, 0).expect("tailscaled runs");
    // The restarted tailscaled's read of the state Secret is refused.
    let path = format!("/secrets/{}", PodCluster::names().state_secret);
    cluster
        .sim
        .faults()
        .fail_next(Some(kube_sim::Method::GET), &path, 1, 403);
    std::process::Command::new("kill")
        .args(["-KILL", &daemon.to_string()])
        .status()
        .unwrap();
    within(
        Duration::from_secs(30),
        "the device to serve again",
        || async {
            let (_, again) = tailscaled_of(&cluster, 0)?;
            (again != daemon && cluster.ask(&ip).is_some()).then_some(())
        },
    )
    .await;
    assert!(
        log_of(&cluster, &pod).contains("tailscaled has no state"),
        "the failure is named"
    );
    assert_eq!(
        cluster.tailnet_devices(),
        1,
        "the same device, not a new login"
    );
    assert_never_two_forwarders(&cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_stopped_right_after_its_first_login_leaves_a_state_the_next_one_uses() {
    let cluster = PodCluster::new("f", Options::default()).await;
    cluster.create_service(http_port()).await;
    let device = within(Duration::from_secs(30), "a first login", || {
        cluster.state(state::DEVICE_ID)
    })
    .await;
    let (_, pod) = cluster.leader().await.unwrap();
    cluster.delete_pod(&pod).await;
    cluster.new_leader(&pod, Duration::from_secs(20)).await;
    let ip = cluster.ingress(Duration::from_secs(30)).await;
    assert!(cluster.reaches_backend(&ip, Duration::from_secs(20)));
    assert_eq!(
        cluster.state(state::DEVICE_ID).await.unwrap(),
        device,
        "the stored device"
    );
    assert_eq!(cluster.tailnet_devices(), 1, "no second login");
    assert_never_two_forwarders(&cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_tailscaled_is_restarted_by_the_same_leader_which_reaps_its_orphans() {
    let cluster = PodCluster::new("o", Options::default()).await;
    let ((node, pod), ip) = served(&cluster).await;
    let (runtime, daemon) = tailscaled_of(&cluster, node).expect("tailscaled under the runtime");
    // Killed with its helper still running: the helper is given to PID 1
    // of the container, the runtime.
    std::process::Command::new("kill")
        .args(["-KILL", &daemon.to_string()])
        .status()
        .unwrap();
    within(Duration::from_secs(20), "a new tailscaled", || async {
        let (_, again) = tailscaled_of(&cluster, node)?;
        (again != daemon).then_some(())
    })
    .await;
    assert!(cluster.reaches_backend(&ip, Duration::from_secs(10)));
    assert_eq!(
        cluster.leader().await.map(|(_, p)| p),
        Some(pod),
        "no failover was needed"
    );
    // The helpers live a second; give them time to end and be reaped.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        crate::procs::zombies_of(runtime),
        Vec::<u32>::new(),
        "no zombie under PID 1"
    );
    assert_never_two_forwarders(&cluster);
    let _ = NAMESPACE;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_deprovisioning_a_standby_that_takes_the_lease_does_not_bring_the_device_back() {
    let mut cluster = PodCluster::new("d", Options::default()).await;
    let ((node, old), ip) = served(&cluster).await;
    cluster.all_ready(2, Duration::from_secs(20)).await;
    // The request the controller writes when the Service goes; the
    // controller then stops, as if the teardown stalled there (with the
    // Service still present it would otherwise serve it again).
    cluster.stop_controller();
    let patch = serde_json::json!({"metadata": {"annotations": {
        svc_lb_contract::keys::DEPROVISION_ANNOTATION: "true"
    }}});
    kube::Api::<k8s_openapi::api::core::v1::Secret>::namespaced(cluster.sim.client(), NAMESPACE)
        .patch(
            &PodCluster::names().state_secret,
            &Default::default(),
            &kube::api::Patch::Merge(patch),
        )
        .await
        .unwrap();
    within(Duration::from_secs(15), "the logout", || {
        cluster.state(state::LOGGED_OUT)
    })
    .await;
    assert_eq!(cluster.logged_in_devices(), 0, "the device logged out");
    assert_eq!(cluster.ask(&ip), None, "nothing answers on its address");

    // The old leader's node is lost: the standby takes the Lease, sees the
    // request and only records the logout again.
    cluster.lose_node(node);
    let leases = kube::Api::<k8s_openapi::api::coordination::v1::Lease>::namespaced(
        cluster.sim.client(),
        NAMESPACE,
    );
    within(
        Duration::from_secs(20),
        "the standby to take the Lease",
        || async {
            let lease = leases.get(&PodCluster::names().lease).await.ok()?;
            let holder = lease.spec?.holder_identity?;
            (holder != old).then_some(())
        },
    )
    .await;
    let saw_it = cluster
        .pod_logs()
        .into_iter()
        .filter(|(name, log)| {
            name.ends_with("/proxy.log") && log.contains("deprovisioning requested")
        })
        .count();
    assert_eq!(saw_it, 2, "both leaders saw the request");
    assert_eq!(
        cluster.logged_in_devices(),
        0,
        "the device did not come back"
    );
    assert_eq!(cluster.tailnet_devices(), 1, "no new device was registered");
    assert_eq!(cluster.ask(&ip), None);
    assert_never_two_forwarders(&cluster);
}
