//! Failover of the runtime against the in-repo API server (root, `ip`,
//! `nft`, `socat`; CI installs them): three runtime processes, each in the
//! network namespace of its "node", with the fake tailscaled. Throughout
//! every test a checker samples all nodes every 50 ms and records any moment
//! at which two of them forward; the fake tailnet records any moment at
//! which two tailscaleds run one device. Both must stay empty.

#[path = "../../../host/tests/support/controller_rbac.rs"]
mod controller_rbac;
mod harness;
#[path = "../support/oracle.rs"]
mod oracle;
#[path = "../support/procs.rs"]
mod procs;
#[path = "../support/relay.rs"]
mod relay;
mod with_controller;

use std::time::Duration;

use harness::Cluster;
use svc_lb_contract::state;

const KEY: Option<&str> = Some("tskey-auth-test");

/// Starts every runtime and waits for one to forward; returns the leader's
/// node index and the Tailscale IP.
async fn started(cluster: &mut Cluster) -> (usize, String) {
    for i in 0..cluster.nodes.len() {
        cluster.start_runtime(i);
    }
    let ip = cluster
        .wait_state(state::TS_IP, Duration::from_secs(20), |_| true)
        .await
        .expect("a leader reports its Tailscale IP");
    assert!(
        cluster.reaches_backend(&ip, Duration::from_secs(10)),
        "traffic flows to the backend"
    );
    let leader = cluster.leader().await;
    assert_eq!(
        cluster.forwarding_nodes(),
        vec![leader],
        "only the leader forwards"
    );
    (leader, ip)
}

#[test]
fn the_overlap_oracle_reads_intervals_from_coloured_logs() {
    let log = "\u{1b}[32m INFO\u{1b}[0m forwarding installed \u{1b}[3maddresses\u{1b}[0m\u{1b}[2m=\u{1b}[0m[] \u{1b}[3msince_ns\u{1b}[0m\u{1b}[2m=\u{1b}[0m100\n\
               INFO forwarding removed until_ns=200\n\
               INFO forwarding installed since_ns=300\n";
    assert_eq!(
        harness::forwarding_intervals(log, &[]),
        vec![(100, 200), (300, u64::MAX)]
    );
    assert_eq!(
        harness::forwarding_intervals(log, &[350]),
        vec![(100, 200), (300, 350)]
    );
    // The runtime killed with its node, and a new one in the same log once
    // the node came back: the first interval ended with the node.
    let restarted = "INFO forwarding installed since_ns=300\n\
                     INFO tailscale_svc_lb_runtime::run: starting backend=Nftables\n\
                     INFO forwarding installed since_ns=500\n\
                     INFO forwarding removed until_ns=600\n";
    assert_eq!(
        harness::forwarding_intervals(restarted, &[350]),
        vec![(300, 350), (500, 600)]
    );
}

/// What the controller does when the Service goes away: asks the leader,
/// through the state Secret, to log out; waits until it recorded that.
async fn deprovision(cluster: &Cluster) {
    let patch = serde_json::json!({"metadata": {"annotations": {
        svc_lb_contract::keys::DEPROVISION_ANNOTATION: "true"
    }}});
    cluster
        .secrets()
        .patch(
            harness::OBJECT,
            &Default::default(),
            &kube::api::Patch::Merge(patch),
        )
        .await
        .unwrap();
    cluster
        .wait_state(state::LOGGED_OUT, Duration::from_secs(15), |_| true)
        .await
        .expect("the leader records its logout");
}

/// Waits (up to 30 s) for `check` to give a value.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn assert_never_two_forwarders(cluster: &Cluster) {
    for node in &cluster.nodes {
        let log = std::fs::read_to_string(&node.log).unwrap_or_default();
        assert!(
            !log.contains("tskey-auth-test"),
            "the auth key is in {}",
            node.log.display()
        );
    }
    assert_eq!(
        *cluster.overlaps.lock().unwrap(),
        Vec::<String>::new(),
        "two nodes forwarded at once"
    );
    assert!(
        cluster.forwarding_intervals().iter().any(|i| !i.is_empty()),
        "the runtimes' logs show their forwarding"
    );
    assert_eq!(
        cluster.forwarding_overlaps(),
        Vec::<String>::new(),
        "the runtimes' own forwarding intervals overlap"
    );
    assert_eq!(
        cluster.tailnet_violations(),
        "",
        "two tailscaleds ran one device"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_loss_moves_the_same_device_to_a_standby_and_traffic_flows_again() {
    let mut cluster = Cluster::new("a", 3, KEY).await;
    let (leader, ip) = started(&mut cluster).await;
    let device = cluster.state(state::DEVICE_ID).await.unwrap();

    cluster.lose_node(leader);
    let new_leader_pod = cluster
        .wait_state(state::LEADER_POD, Duration::from_secs(20), |pod| {
            !pod.ends_with(&format!("pod{leader}"))
        })
        .await
        .expect("a standby takes over");
    assert!(
        cluster.reaches_backend(&ip, Duration::from_secs(10)),
        "traffic flows again at the same IP"
    );
    // Same device (state read from the Secret), not a new login.
    assert_eq!(cluster.state(state::DEVICE_ID).await.unwrap(), device);
    assert_eq!(cluster.state(state::TS_IP).await.unwrap(), ip);
    assert_eq!(
        cluster.tailnet_devices(),
        1,
        "{new_leader_pod} reused the device"
    );

    // The lost node comes back: its runtime removes the rules left by the
    // killed one and waits as a standby.
    assert!(
        harness::forwarding_in(&cluster.nodes[leader].ns),
        "rules left by SIGKILL"
    );
    cluster.restore_node(leader);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while harness::forwarding_in(&cluster.nodes[leader].ns) {
        assert!(
            std::time::Instant::now() < deadline,
            "leftover rules removed at start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(cluster.reaches_backend(&ip, Duration::from_secs(5)));
    assert_never_two_forwarders(&cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_hands_over_to_a_standby_and_leaves_no_rule_behind() {
    let mut cluster = Cluster::new("b", 3, KEY).await;
    let (leader, ip) = started(&mut cluster).await;

    let status = cluster.terminate(leader);
    assert!(status.success(), "the runtime exits cleanly: {status:?}");
    assert!(
        !harness::forwarding_in(&cluster.nodes[leader].ns),
        "its rules are gone"
    );
    let conntrack = harness::must(
        "ip",
        &[
            "netns",
            "exec",
            &cluster.nodes[leader].ns,
            "conntrack",
            "-L",
            "--orig-dst",
            &ip,
        ],
    );
    assert_eq!(conntrack.trim(), "", "no conntrack entry of ours is left");
    cluster
        .wait_state(state::LEADER_POD, Duration::from_secs(10), |pod| {
            !pod.ends_with(&format!("pod{leader}"))
        })
        .await
        .expect("a standby takes over");
    assert!(cluster.reaches_backend(&ip, Duration::from_secs(10)));
    assert_eq!(cluster.tailnet_devices(), 1);
    assert_never_two_forwarders(&cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deprovisioning_logs_the_device_out_and_no_standby_takes_over() {
    let mut cluster = Cluster::new("c", 2, KEY).await;
    let (leader, ip) = started(&mut cluster).await;
    assert_eq!(cluster.tailnet_devices(), 1);

    deprovision(&cluster).await;
    assert_eq!(cluster.tailnet_devices(), 0, "the device left the tailnet");
    assert_eq!(
        cluster.forwarding_nodes(),
        Vec::<usize>::new(),
        "nobody forwards"
    );
    assert_eq!(cluster.ask(&ip), None);

    // Even when the old leader's node is lost, the standby that takes the
    // Lease does not bring the device back: it sees the request and only
    // records the logout again.
    cluster.lose_node(leader);
    let standby = 1 - leader;
    let lease = kube::Api::<k8s_openapi::api::coordination::v1::Lease>::namespaced(
        cluster.sim.client(),
        harness::NAMESPACE,
    );
    eventually("the standby to take the Lease", || async {
        let holder = lease
            .get(harness::OBJECT)
            .await
            .ok()?
            .spec?
            .holder_identity?;
        holder.ends_with(&format!("pod{standby}")).then_some(())
    })
    .await;
    assert!(
        cluster.wait_ready(standby, Duration::from_secs(10)),
        "done deprovisioning is ready"
    );
    let log = std::fs::read_to_string(&cluster.nodes[standby].log).unwrap();
    assert!(
        log.contains("deprovisioning requested"),
        "the standby saw the request"
    );
    assert_eq!(cluster.forwarding_nodes(), Vec::<usize>::new());
    assert_eq!(cluster.tailnet_devices(), 0, "no new device was registered");
    assert_never_two_forwarders(&cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_auth_key_the_login_url_is_reported_and_nothing_forwards() {
    let mut cluster = Cluster::new("d", 1, None).await;
    cluster.start_runtime(0);
    let url = cluster
        .wait_state(state::LOGIN_URL, Duration::from_secs(15), |_| true)
        .await
        .expect("the login URL is reported");
    assert!(url.starts_with("https://login.fake.invalid/a/"), "{url}");
    assert_eq!(
        cluster.state(state::LEADER_POD).await.as_deref(),
        Some("ts-default-web-1a2b3c4d-pod0")
    );
    assert_eq!(cluster.state(state::TS_IP).await, None);
    assert!(cluster.forwarding_nodes().is_empty());
    assert_eq!(
        cluster.readyz(0),
        Some(503),
        "a leader waiting for login is not ready"
    );
    let log = std::fs::read_to_string(&cluster.nodes[0].log).unwrap();
    assert!(log.contains(&url), "the URL is in the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_the_api_server_stops_before_a_standby_takes_over() {
    let mut cluster = Cluster::new("e", 3, KEY).await;
    let (leader, ip) = started(&mut cluster).await;

    cluster.cut_off_api(leader);
    cluster
        .wait_state(state::LEADER_POD, Duration::from_secs(20), |pod| {
            !pod.ends_with(&format!("pod{leader}"))
        })
        .await
        .expect("a standby takes over once the lease expires");
    assert!(cluster.reaches_backend(&ip, Duration::from_secs(10)));
    // The cut-off runtime still runs, as a standby that forwards nothing.
    assert!(cluster.nodes[leader].runtime.is_some());
    assert!(!harness::forwarding_in(&cluster.nodes[leader].ns));
    assert_never_two_forwarders(&cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_that_is_pid_1_starts_tailscaled_and_forwards() {
    // In a container the runtime is PID 1: it must still start tailscaled.
    let mut cluster = Cluster::new("p", 1, KEY).await;
    cluster.pid_one = true;
    let (leader, ip) = started(&mut cluster).await;
    assert_eq!(cluster.runtime_pids(leader).1, 1, "the runtime is PID 1");
    let device = cluster.state(state::DEVICE_ID).await.unwrap();
    assert!(cluster.daemon_pid(&device).is_some(), "tailscaled runs");
    assert!(cluster.reaches_backend(&ip, Duration::from_secs(10)));
    assert_never_two_forwarders(&cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_health_port_answers_on_the_pod_ip_and_not_on_the_tailscale_address() {
    let mut cluster = Cluster::new("h", 1, KEY).await;
    let (leader, ip) = started(&mut cluster).await;
    assert_eq!(cluster.readyz(leader), Some(200), "the kubelet's probe");
    assert_eq!(
        harness::http_status(&cluster.client_ns, &ip, "/healthz"),
        None,
        "a tailnet device reaches no health endpoint on the device's address"
    );
    assert!(cluster.reaches_backend(&ip, Duration::from_secs(10)));
    assert_never_two_forwarders(&cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_served_again_during_teardown_gets_a_new_device() {
    let mut cluster = Cluster::new("r", 2, KEY).await;
    let (_, first_ip) = started(&mut cluster).await;
    deprovision(&cluster).await;
    let secrets = cluster.secrets();
    // What the controller does when the Service is served again before its
    // teardown finished: a fresh state Secret, metadata only.
    secrets
        .delete(harness::OBJECT, &Default::default())
        .await
        .unwrap();
    let fresh: k8s_openapi::api::core::v1::Secret =
        serde_json::from_value(serde_json::json!({"metadata": {"name": harness::OBJECT}})).unwrap();
    secrets.create(&Default::default(), &fresh).await.unwrap();
    let ip = cluster
        .wait_state(state::TS_IP, Duration::from_secs(20), |_| true)
        .await
        .expect("a leader serves again");
    assert_eq!(cluster.tailnet_devices(), 1, "one new device");
    assert!(cluster.reaches_backend(&ip, Duration::from_secs(10)));
    let _ = first_ip;
    assert_never_two_forwarders(&cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn granted_tags_other_than_the_requested_ones_cause_no_reauthentication_on_handover() {
    let mut cluster = Cluster::new("t", 2, KEY).await;
    cluster.grant_tags("tag:from-the-key");
    let (leader, ip) = started(&mut cluster).await;
    let device = cluster.state(state::DEVICE_ID).await.unwrap();
    cluster
        .wait_state(state::LOGIN_REQUEST, Duration::from_secs(10), |_| true)
        .await
        .expect("the login request is recorded");
    let status = cluster.terminate(leader);
    assert!(status.success(), "{status}");
    let standby = 1 - leader;
    eventually("the standby serves the same device", || async {
        (cluster.leader().await == standby && cluster.forwarding_nodes() == vec![standby])
            .then_some(())
    })
    .await;
    assert_eq!(cluster.state(state::DEVICE_ID).await.unwrap(), device);
    assert!(cluster.reaches_backend(&ip, Duration::from_secs(10)));
    assert_eq!(cluster.reauths(), 0, "no login was repeated");
    assert_never_two_forwarders(&cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tailscaled_whose_state_store_failed_is_restarted_until_it_has_its_state() {
    let mut cluster = Cluster::new("n", 1, KEY).await;
    let (leader, ip) = started(&mut cluster).await;
    let device = cluster.state(state::DEVICE_ID).await.unwrap();
    let first = cluster
        .daemon_pid(&device)
        .expect("tailscaled runs the device");
    // The next read of the state Secret (the restarted tailscaled's) is
    // refused, as the API server refuses a pod whose Role lacks it.
    let path = format!("/secrets/{}", harness::OBJECT);
    cluster
        .sim
        .faults()
        .fail_next(Some(kube_sim::Method::GET), &path, 1, 403);
    harness::must("kill", &["-KILL", &first.to_string()]);
    eventually("the device serves again from its stored state", || async {
        cluster
            .daemon_pid(&device)
            .filter(|pid| *pid != first)
            .filter(|_| cluster.ask(&ip).is_some())
    })
    .await;
    let log = std::fs::read_to_string(&cluster.nodes[leader].log).unwrap();
    assert!(
        log.contains("tailscaled has no state"),
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
    let mut cluster = Cluster::new("l", 2, KEY).await;
    for i in 0..2 {
        cluster.start_runtime(i);
    }
    let device = cluster
        .wait_state(state::DEVICE_ID, Duration::from_secs(20), |_| true)
        .await
        .expect("a first login");
    // SIGTERM as soon as the leader reports: its tailscaled is stopped
    // within half a second.
    let leader = cluster.leader().await;
    let status = cluster.terminate(leader);
    assert!(status.success(), "{status}");
    let standby = 1 - leader;
    eventually("the standby forwards", || async {
        (cluster.forwarding_nodes() == vec![standby]).then_some(())
    })
    .await;
    assert_eq!(
        cluster.state(state::DEVICE_ID).await.as_deref(),
        Some(device.as_str()),
        "the same device, from the stored state"
    );
    assert_eq!(cluster.tailnet_devices(), 1, "no second login");
    assert_never_two_forwarders(&cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_that_is_pid_1_reaps_the_orphans_of_a_killed_tailscaled() {
    let mut cluster = Cluster::new("o", 1, KEY).await;
    cluster.pid_one = true;
    let (leader, ip) = started(&mut cluster).await;
    let (runtime, _) = cluster.runtime_pids(leader);
    let tailscaled = harness::children_named(runtime, "tailscaled");
    assert_eq!(tailscaled.len(), 1, "one tailscaled under the runtime");
    // Killed with its helper still running (or already a zombie): the
    // helper is given to PID 1, the runtime.
    harness::must("kill", &["-KILL", &tailscaled[0].to_string()]);
    eventually("the device serves again", || async {
        cluster.ask(&ip).map(|_| ())
    })
    .await;
    // The helpers live a second; give them time to end and be reaped.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        harness::zombies_of(runtime),
        Vec::<u32>::new(),
        "no zombie left under PID 1"
    );
    assert_never_two_forwarders(&cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_tailscaled_is_restarted_by_the_same_leader() {
    let mut cluster = Cluster::new("f", 2, KEY).await;
    let (leader, ip) = started(&mut cluster).await;
    let device = cluster.state(state::DEVICE_ID).await.unwrap();
    let first = cluster
        .daemon_pid(&device)
        .expect("tailscaled runs the device");

    harness::must("kill", &["-KILL", &first.to_string()]);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while cluster.daemon_pid(&device).is_none_or(|pid| pid == first) {
        assert!(
            std::time::Instant::now() < deadline,
            "tailscaled is restarted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(cluster.reaches_backend(&ip, Duration::from_secs(10)));
    assert_eq!(cluster.leader().await, leader, "no failover was needed");
    assert_eq!(cluster.forwarding_nodes(), vec![leader]);
    assert_never_two_forwarders(&cluster);
}
