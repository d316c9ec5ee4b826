//! The proxy as it really deploys: the controller renders a Service's
//! DaemonSet, the node agent's DaemonSet controller makes its pods, and each
//! node's kubelet runs them in runc containers (root, `runc`, `ip`, `nft`,
//! `socat`, containers-common's seccomp profile; CI installs them). The
//! runtime is PID 1 of its container, makes `/dev/net/tun` itself, and
//! reaches the API server with its pod's own ServiceAccount token under the
//! rendered Role. Every test checks the runtimes' own forwarding intervals
//! for an overlap, and the fake tailnet for two daemons on one device.

mod chart;
mod failover;
mod problems;
#[path = "../support/procs.rs"]
mod procs;

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::time::Duration;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::rbac::v1::Role;
use kube::Api;
use kube::api::{Patch, PatchParams};
use node_agent::oci::devices::DeviceRules;
use playground::cluster::{NAMESPACE, Options, PodCluster, within};
use playground::oracle;
use serde_json::json;
use svc_lb_contract::ProxyNames;
use svc_lb_host::config::ProxyPrivileges;

pub fn http_port() -> serde_json::Value {
    json!([{"name": "http", "port": 80, "protocol": "TCP"}])
}

pub fn assert_never_two_forwarders(cluster: &PodCluster) {
    assert_eq!(cluster.forwarding_overlaps(), Vec::<String>::new());
    assert_eq!(cluster.tailnet_violations(), "");
}

/// `(group, resource, verb)` granted by a Role.
fn granted(role: &Role) -> Vec<(String, String, String)> {
    let mut all = Vec::new();
    for rule in role.rules.iter().flatten() {
        for group in rule.api_groups.iter().flatten() {
            for resource in rule.resources.iter().flatten() {
                for verb in &rule.verbs {
                    all.push((group.clone(), resource.clone(), verb.clone()));
                }
            }
        }
    }
    all
}

/// The runtime runs as PID 1 of its container, and `/dev/net/tun` in the
/// container is the TUN device.
fn assert_runtime_is_pid_one_with_a_tun_device(pid: u32) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let ns_pid = status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .unwrap();
    assert_eq!(
        ns_pid.split_whitespace().last(),
        Some("1"),
        "PID 1 in its namespace: {ns_pid}"
    );
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(
        cmdline.starts_with(b"tailscale-svc-lb-runtime\0"),
        "{cmdline:?}"
    );
    let tun = std::fs::metadata(format!("/proc/{pid}/root/dev/net/tun")).expect("/dev/net/tun");
    assert!(tun.file_type().is_char_device());
    assert_eq!(tun.rdev(), libc::makedev(10, 200));
}

/// Every request of the runtime and its tailscaled came with the pod's own
/// ServiceAccount token and was granted by the rendered Role.
async fn assert_pods_used_only_their_own_account(cluster: &PodCluster, names: &ProxyNames) {
    let account = format!(
        "system:serviceaccount:{NAMESPACE}:{}",
        names.service_account
    );
    let runtime_calls = cluster
        .sim
        .requests()
        .calls_by(&format!("{}/", svc_lb_contract::RUNTIME_BINARY));
    assert!(
        !runtime_calls.is_empty(),
        "the runtime's requests are recorded"
    );
    for call in &runtime_calls {
        assert_eq!(call.user, account, "{call:?}");
    }
    let role = Api::<Role>::namespaced(cluster.sim.client(), NAMESPACE)
        .get(&names.role)
        .await
        .unwrap();
    let grants = granted(&role);
    let pod_calls = cluster.sim.requests().calls_by("");
    let by_account: Vec<_> = pod_calls.iter().filter(|c| c.user == account).collect();
    assert!(
        by_account.len() > runtime_calls.len(),
        "tailscaled's requests too"
    );
    // tailscaled's state store checks its permissions with
    // SelfSubjectAccessReviews, as the real one does.
    assert!(
        by_account
            .iter()
            .any(|c| c.resource == "selfsubjectaccessreviews"),
        "SelfSubjectAccessReviews by {account}"
    );
    for call in by_account {
        let wanted = (call.group.clone(), call.resource.clone(), call.verb.clone());
        // SelfSubjectAccessReviews are granted to every user by the
        // bootstrap role system:basic-user.
        if call.resource != "selfsubjectaccessreviews" {
            assert!(
                grants.contains(&wanted),
                "{call:?} is not granted by {grants:?}"
            );
        }
    }
    assert_eq!(cluster.sim.requests().denials_of(&account), Vec::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_is_served_by_proxies_running_as_pid_one_in_containers_with_their_own_token() {
    let cluster = PodCluster::new("a", Options::default()).await;
    cluster.create_service(http_port()).await;
    let ip = cluster.ingress(Duration::from_secs(60)).await;
    assert!(
        cluster.reaches_backend(&ip, Duration::from_secs(10)),
        "traffic reaches the backend"
    );
    let names = ProxyNames::for_service("default", "web");

    let running = cluster.proxies();
    assert_eq!(
        running.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        [0, 1],
        "a proxy per node"
    );
    for (_, pid) in running {
        assert_runtime_is_pid_one_with_a_tun_device(pid);
    }
    assert_pods_used_only_their_own_account(&cluster, &names).await;

    // Deleting the Service logs the device out and removes everything:
    // the DaemonSet's pods terminate and their kubelets remove them.
    cluster.delete_service(Duration::from_secs(60)).await;
    assert_eq!(cluster.logged_in_devices(), 0, "the device logged out");
    assert_eq!(
        cluster.tailnet_devices(),
        1,
        "without an OAuth client the device stays listed in the tailnet"
    );
    let daemonsets: Api<DaemonSet> = Api::namespaced(cluster.sim.client(), NAMESPACE);
    assert!(
        daemonsets
            .get_opt(&names.daemonset)
            .await
            .unwrap()
            .is_none()
    );
    within(Duration::from_secs(60), "the pods to go", || async {
        cluster.pods().await.is_empty().then_some(())
    })
    .await;
    within(Duration::from_secs(10), "the containers to go", || async {
        cluster.proxies().is_empty().then_some(())
    })
    .await;
    // The pods handed the Lease on as they stopped; none that took it
    // brought the logged-out device back.
    let installs: usize = cluster
        .pod_logs()
        .iter()
        .map(|(_, log)| log.matches("forwarding installed").count())
        .sum();
    assert_eq!(installs, 1, "only the first leader ever forwarded");
    assert_never_two_forwarders(&cluster);
}

/// A line of `/proc/<pid>/status`.
fn status_field(pid: u32, field: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_default()
        .trim()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_minimal_proxy_runs_confined_and_makes_its_own_tun_device() {
    let options = Options {
        nodes: 1,
        privileges: ProxyPrivileges::Minimal,
        ..Options::default()
    };
    let cluster = PodCluster::new("m", options).await;
    cluster.create_service(http_port()).await;
    let ip = cluster.ingress(Duration::from_secs(60)).await;
    assert!(cluster.reaches_backend(&ip, Duration::from_secs(10)));
    let [(_, pid)] = cluster.proxies()[..] else {
        panic!("one proxy");
    };
    // NET_ADMIN (12), NET_RAW (13) and MKNOD (27) only, under seccomp, and
    // no device node given by the runtime: the TUN node is the runtime's.
    let effective = u64::from_str_radix(&status_field(pid, "CapEff"), 16).unwrap();
    assert_eq!(effective, (1 << 12) | (1 << 13) | (1 << 27));
    assert_eq!(
        status_field(pid, "Seccomp"),
        "2",
        "the RuntimeDefault filter"
    );
    let bundle = cluster.nodes[0].dir.join("pods");
    let pod_dir = std::fs::read_dir(&bundle)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(pod_dir.join("bundles/proxy/config.json")).unwrap())
            .unwrap();
    assert_eq!(config["linux"]["devices"], json!([]));
    assert_eq!(config["root"]["readonly"], true);
    assert_runtime_is_pid_one_with_a_tun_device(pid);
    within(Duration::from_secs(20), "the pod to be ready", || async {
        (cluster.proxy_states().await == [(true, true)]).then_some(())
    })
    .await;
    assert_never_two_forwarders(&cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_tun_device_rule_the_privileged_proxy_still_works() {
    let options = Options {
        nodes: 1,
        device_rules: DeviceRules::WithoutTun,
        ..Options::default()
    };
    let cluster = PodCluster::new("p", options).await;
    cluster.create_service(http_port()).await;
    let ip = cluster.ingress(Duration::from_secs(60)).await;
    assert!(cluster.reaches_backend(&ip, Duration::from_secs(10)));
    assert_never_two_forwarders(&cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_tun_device_rule_the_minimal_proxy_names_the_setting_and_stays_unready() {
    let options = Options {
        nodes: 1,
        device_rules: DeviceRules::WithoutTun,
        privileges: ProxyPrivileges::Minimal,
        ..Options::default()
    };
    let cluster = PodCluster::new("u", options).await;
    let services = cluster.create_service(http_port()).await;
    let proxy_log = || {
        cluster
            .pod_logs()
            .into_iter()
            .filter(|(name, _)| name.ends_with("/proxy.log"))
            .map(|(_, log)| log)
            .collect::<String>()
    };
    let line = within(Duration::from_secs(30), "the runtime's message", || async {
        proxy_log()
            .lines()
            .find(|l| l.contains("no TUN device"))
            .map(str::to_string)
    })
    .await;
    assert!(line.contains("--proxy-privileges=privileged"), "{line}");
    assert!(
        line.contains("Operation not permitted"),
        "the open failed: {line}"
    );
    // Two readiness periods (5 s each, as rendered): running, not ready.
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert_eq!(cluster.proxy_states().await, [(true, false)]);
    assert_eq!(proxy_log().matches("no TUN device").count(), 1, "said once");
    let status = services.get("web").await.unwrap().status;
    let ingress = status.and_then(|s| s.load_balancer).and_then(|l| l.ingress);
    assert!(
        ingress.unwrap_or_default().is_empty(),
        "no address without a device"
    );
    // The Service's owner reads why, with the setting that fixes it.
    let condition = services
        .get("web")
        .await
        .unwrap()
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == svc_lb_host::controller::PROXY_READY)
        .expect("the condition");
    assert_eq!(condition.reason, "NoTunDevice");
    assert!(
        condition.message.contains("--proxy-privileges privileged")
            && condition.message.contains("Operation not permitted"),
        "{}",
        condition.message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_surge_rollout_on_one_node_runs_two_pods_but_never_two_forwarders() {
    let options = Options {
        nodes: 1,
        ..Options::default()
    };
    let cluster = PodCluster::new("s", options).await;
    let services = cluster.create_service(http_port()).await;
    let ip = cluster.ingress(Duration::from_secs(60)).await;
    assert!(cluster.reaches_backend(&ip, Duration::from_secs(10)));
    let first = cluster.pods().await;
    assert_eq!(first.len(), 1);
    within(
        Duration::from_secs(20),
        "the first pod to be ready",
        || async { (cluster.proxy_states().await == [(true, true)]).then_some(()) },
    )
    .await;

    // A new port changes the pod template: the DaemonSet rolls with
    // maxSurge 1, so the new pod starts beside the old one.
    let ports = json!({"spec": {"ports": [
        {"name": "http", "port": 80, "protocol": "TCP"},
        {"name": "alt", "port": 8080, "targetPort": 80, "protocol": "TCP"}]}});
    services
        .patch("web", &PatchParams::default(), &Patch::Merge(&ports))
        .await
        .unwrap();
    let old = first[0].metadata.uid.clone();
    within(Duration::from_secs(30), "two pods on the node", || async {
        (cluster.pods().await.len() == 2).then_some(())
    })
    .await;
    within(Duration::from_secs(60), "the old pod to go", || async {
        let pods = cluster.pods().await;
        (pods.len() == 1 && pods[0].metadata.uid != old).then_some(())
    })
    .await;
    assert!(
        cluster.reaches_backend(&ip, Duration::from_secs(20)),
        "the same device serves on"
    );
    assert_eq!(cluster.tailnet_devices(), 1, "one device throughout");
    assert_never_two_forwarders(&cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_leaders_node_moves_the_device_to_the_other_node() {
    let mut cluster = PodCluster::new("l", Options::default()).await;
    cluster.create_service(http_port()).await;
    let ip = cluster.ingress(Duration::from_secs(60)).await;
    assert!(cluster.reaches_backend(&ip, Duration::from_secs(10)));
    let (leader, pod) = within(Duration::from_secs(10), "the leader", || cluster.leader()).await;
    let device = cluster
        .state(svc_lb_contract::state::DEVICE_ID)
        .await
        .unwrap();
    let lost = std::time::Instant::now();
    cluster.lose_node(leader);
    assert!(
        cluster.reaches_backend(&ip, Duration::from_secs(20)),
        "the other node took over"
    );
    eprintln!("served again {:?} after the node was lost", lost.elapsed());
    cluster.new_leader(&pod, Duration::from_secs(10)).await;
    assert_eq!(
        cluster
            .state(svc_lb_contract::state::DEVICE_ID)
            .await
            .unwrap(),
        device,
        "the same device, from its stored state"
    );
    assert_eq!(cluster.tailnet_devices(), 1, "no new login");
    // The node comes back: its kubelet runs its pod again, a standby.
    cluster.restore_node(leader);
    cluster.all_ready(2, Duration::from_secs(30)).await;
    assert!(cluster.reaches_backend(&ip, Duration::from_secs(5)));
    assert_never_two_forwarders(&cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_stops_matching_loses_its_pod_and_the_device_moves() {
    let cluster = PodCluster::new("m2", Options::default()).await;
    cluster.create_service(http_port()).await;
    let ip = cluster.ingress(Duration::from_secs(60)).await;
    cluster.all_ready(2, Duration::from_secs(20)).await;
    let (leader, pod) = within(Duration::from_secs(10), "the leader", || cluster.leader()).await;
    // The operator takes the deploy label off the leader's node.
    let unlabel = json!({"metadata": {"labels": {svc_lb_contract::keys::DEPLOY_NODE_LABEL: null}}});
    Api::<k8s_openapi::api::core::v1::Node>::all(cluster.sim.client())
        .patch(
            &format!("node-{leader}"),
            &PatchParams::default(),
            &Patch::Merge(&unlabel),
        )
        .await
        .unwrap();
    within(Duration::from_secs(30), "its pod to go", || async {
        let pods = cluster.pods().await;
        (pods.len() == 1 && pods[0].metadata.name.as_deref() != Some(pod.as_str())).then_some(())
    })
    .await;
    cluster.new_leader(&pod, Duration::from_secs(10)).await;
    assert!(cluster.reaches_backend(&ip, Duration::from_secs(10)));
    assert_eq!(cluster.tailnet_devices(), 1);
    assert_never_two_forwarders(&cluster);
}

#[test]
fn the_overlap_oracle_reads_intervals_from_coloured_logs() {
    let log = "\u{1b}[32m INFO\u{1b}[0m forwarding installed \u{1b}[3maddresses\u{1b}[0m\u{1b}[2m=\u{1b}[0m[] \u{1b}[3msince_ns\u{1b}[0m\u{1b}[2m=\u{1b}[0m100\n\
               INFO forwarding removed until_ns=200\n\
               INFO forwarding installed since_ns=300\n";
    assert_eq!(
        oracle::forwarding_intervals(log, &[]),
        vec![(100, 200), (300, u64::MAX)]
    );
    assert_eq!(
        oracle::forwarding_intervals(log, &[350]),
        vec![(100, 200), (300, 350)]
    );
    // The runtime killed with its node, and a new one in the same log once
    // the node came back: the first interval ended with the node.
    let restarted = "INFO forwarding installed since_ns=300\n\
                     INFO tailscale_svc_lb_runtime::run: starting backend=Nftables\n\
                     INFO forwarding installed since_ns=500\n\
                     INFO forwarding removed until_ns=600\n";
    assert_eq!(
        oracle::forwarding_intervals(restarted, &[350]),
        vec![(300, 350), (500, 600)]
    );
}
