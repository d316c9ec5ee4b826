//! Failover figures of the runtime, with its pods run as deployed (root;
//! `runc`, `ip`, `nft`, `socat`, `iperf3`): the pod tests' cluster —
//! kube-sim, the real controller, the node agent's DaemonSet controller and
//! kubelets running the proxy pods in runc containers, the fake tailscaled
//! — measured per Lease timing profile.
//!
//! - node loss (the leader's node dies: kubelet gone, containers SIGKILLed,
//!   pod network gone) → the client's next TCP connection reaches the
//!   backend again;
//! - handover (the leader's pod deleted: the kubelet's SIGTERM): the time
//!   no runtime forwards, from the old leader's removal of its rules to the
//!   new leader's installation (their own monotonic timestamps);
//! - API requests per second per Service in steady state (one leader, two
//!   standbys), counted for the pods' own ServiceAccount only;
//! - runtime RSS, leader and standby, idle;
//! - TCP throughput through the DNAT path vs the routed path (iperf3), both
//!   through the same pod.
//!
//! `cargo bench -p tailscale-svc-lb-runtime --bench failover [-- runs]
//! [failover] [throughput]` (default: 10 runs per profile, both sections).

use std::time::{Duration, Instant};

use playground::cluster::{NAMESPACE, Options, PodCluster};
use playground::tailnet::Tailnet;
use serde_json::json;
use svc_lb_contract::LeaseTimings;

/// Forwarded besides port 80, for throughput measurements.
const IPERF_PORT: u16 = 5201;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn summary(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{name}: runs {} · p50 {:.2} s · p90 {:.2} s · min {:.2} s · max {:.2} s",
        samples.len(),
        percentile(&samples, 0.5).as_secs_f64(),
        percentile(&samples, 0.9).as_secs_f64(),
        samples[0].as_secs_f64(),
        samples[samples.len() - 1].as_secs_f64(),
    );
}

/// Time until the client reaches the backend again (probes with a 0.2 s
/// connect timeout).
fn until_served(cluster: &PodCluster, ip: &str, since: Instant) -> Duration {
    loop {
        if cluster.ask_within(ip, "0.2").as_deref() == Some("backend") {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < Duration::from_secs(60),
            "never served again"
        );
    }
}

async fn start(
    tag: &str,
    nodes: usize,
    lease: LeaseTimings,
    tailnet: Tailnet,
) -> (PodCluster, String) {
    let options = Options {
        nodes,
        lease,
        tailnet,
        ..Options::default()
    };
    let cluster = PodCluster::new(tag, options).await;
    cluster
        .create_service(json!([
            {"name": "http", "port": 80, "protocol": "TCP"},
            {"name": "iperf", "port": IPERF_PORT, "protocol": "TCP"}]))
        .await;
    let ip = cluster.ingress(Duration::from_secs(60)).await;
    assert!(cluster.reaches_backend(&ip, Duration::from_secs(10)));
    cluster.all_ready(nodes, Duration::from_secs(30)).await;
    (cluster, ip)
}

/// Waits until a pod other than `old` leads and every pod is ready.
async fn settled(cluster: &PodCluster, old: &str, nodes: usize) {
    cluster.new_leader(old, Duration::from_secs(60)).await;
    cluster.all_ready(nodes, Duration::from_secs(60)).await;
}

/// The time no runtime forwarded between `old`'s last interval and the
/// next one's start (the runtimes' own monotonic timestamps: the kubelet's
/// and the client's latencies are not in it).
fn forwarding_gap(cluster: &PodCluster, old: &str) -> Duration {
    let intervals = cluster.forwarding_intervals();
    let until = intervals
        .iter()
        .filter(|(pod, _)| pod.contains(&format!("_{old}_")))
        .map(|(_, (_, until))| *until)
        .max()
        .expect("the old leader forwarded");
    let since = intervals
        .iter()
        .map(|(_, (since, _))| *since)
        .filter(|since| *since >= until)
        .min()
        .expect("a new leader forwards");
    Duration::from_nanos(since - until)
}

async fn failovers(tag: &str, lease: LeaseTimings, runs: usize) -> (Vec<Duration>, Vec<Duration>) {
    let (mut cluster, ip) = start(tag, 2, lease, Tailnet::Relay).await;
    let mut node_loss = Vec::new();
    for _ in 0..runs {
        let (node, pod) = cluster.leader().await.expect("a leader");
        let t0 = Instant::now();
        cluster.lose_node(node);
        node_loss.push(until_served(&cluster, &ip, t0));
        cluster.restore_node(node);
        settled(&cluster, &pod, 2).await;
    }
    let mut handover = Vec::new();
    for _ in 0..runs {
        let (_, pod) = cluster.leader().await.expect("a leader");
        cluster.delete_pod(&pod).await;
        settled(&cluster, &pod, 2).await;
        handover.push(forwarding_gap(&cluster, &pod));
        assert!(cluster.reaches_backend(&ip, Duration::from_secs(10)));
    }
    assert_eq!(cluster.forwarding_overlaps(), Vec::<String>::new());
    assert_eq!(cluster.tailnet_violations(), "");
    (node_loss, handover)
}

/// Requests per second of the pods to the API server in steady state, and
/// the runtimes' RSS.
async fn steady_state(tag: &str, lease: LeaseTimings, seconds: u64) {
    let (cluster, _ip) = start(tag, 3, lease, Tailnet::Relay).await;
    let account = format!(
        "system:serviceaccount:{NAMESPACE}:{}",
        PodCluster::names().service_account
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = cluster.sim.requests().snapshot_of(&account);
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let after = cluster.sim.requests().snapshot_of(&account);
    let mut total = 0;
    let mut parts = Vec::new();
    for (key, count) in &after {
        let delta = count - before.get(key).copied().unwrap_or(0);
        if delta > 0 {
            total += delta;
            parts.push(format!("{key} {:.2}/s", delta as f64 / seconds as f64));
        }
    }
    println!(
        "  API requests per Service (1 leader + 2 standbys, {seconds} s): {:.2}/s [{}]; each pod keeps 2 watches open (Lease, Secret)",
        total as f64 / seconds as f64,
        parts.join(", ")
    );
    let (leader, _) = cluster.leader().await.expect("a leader");
    for (node, pid) in cluster.proxies() {
        let role = if node == leader { "leader" } else { "standby" };
        let rss = kube_sim::rss_mib(pid).unwrap_or(f64::NAN);
        println!("  runtime RSS, {role} (node {node}): {rss:.1} MiB");
    }
}

fn iperf(cluster: &PodCluster, target: &str) -> f64 {
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &cluster.client_ns, "iperf3", "-c", target])
        .args(["-p", &IPERF_PORT.to_string(), "-t", "5", "-J"])
        .output()
        .expect("iperf3 must be installed");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("iperf3 JSON");
    json["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .expect("throughput")
}

/// An iperf3 server behind the ClusterIP (in the Service network).
fn iperf_server(cluster: &PodCluster) -> std::process::Child {
    std::process::Command::new("ip")
        .args(["netns", "exec", &cluster.service_ns, "iperf3", "-s"])
        .args(["-p", &IPERF_PORT.to_string()])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("iperf3 must be installed")
}

fn ip(ns: &str, args: &[&str]) {
    let mut all = vec!["-n", ns];
    all.extend_from_slice(args);
    playground::cluster::must("ip", &all);
}

/// Pairs of throughput measurements.
const PAIRS: usize = 7;

/// DNAT (client → Tailscale IP → ClusterIP) vs routed (client → the
/// Service network's address through the same pod and node, no NAT).
async fn throughput() {
    let (cluster, ts_ip) = start("t", 1, LeaseTimings::FAST, Tailnet::Bridge).await;
    let pods = cluster.pods().await;
    let pod_ip = pods[0]
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.clone())
        .expect("a pod IP");
    let mut server = iperf_server(&cluster);
    ip(
        &cluster.client_ns,
        &["route", "add", "10.201.0.0/24", "via", &ts_ip],
    );
    ip(
        &cluster.nodes[0].ns,
        &["route", "add", "100.64.0.0/10", "via", &pod_ip],
    );
    ip(
        &cluster.service_ns,
        &["route", "add", "100.64.0.0/10", "via", "10.201.0.1"],
    );
    std::thread::sleep(Duration::from_millis(500));
    // Pairs in alternating order, so drift of the machine cancels out.
    let mut ratios = Vec::new();
    let (mut dnat, mut routed) = (Vec::new(), Vec::new());
    for pair in 0..PAIRS {
        let (d, r) = if pair % 2 == 0 {
            let d = iperf(&cluster, &ts_ip);
            (d, iperf(&cluster, "10.201.0.2"))
        } else {
            let r = iperf(&cluster, "10.201.0.2");
            (iperf(&cluster, &ts_ip), r)
        };
        dnat.push(d);
        routed.push(r);
        ratios.push(d / r);
    }
    let _ = server.kill();
    let _ = server.wait();
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (min, max) = ratios
        .iter()
        .fold((f64::MAX, 0f64), |(lo, hi), r| (lo.min(*r), hi.max(*r)));
    println!(
        "throughput (iperf3 TCP, 5 s each, {PAIRS} alternating pairs): DNAT {:.2} Gbit/s · routed {:.2} Gbit/s (medians) · DNAT/routed per pair: median {:.3}, min {min:.3}, max {max:.3}",
        median(&mut dnat) / 1e9,
        median(&mut routed) / 1e9,
        median(&mut ratios),
    );
}

/// The fake tailnet's relay path, for reference (user space, UDP, two
/// hops): not the proxy's figure.
async fn relay_throughput() {
    let (cluster, ts_ip) = start("r", 1, LeaseTimings::FAST, Tailnet::Relay).await;
    let mut server = iperf_server(&cluster);
    std::thread::sleep(Duration::from_millis(500));
    let mut runs: Vec<f64> = (0..3).map(|_| iperf(&cluster, &ts_ip)).collect();
    let _ = server.kill();
    let _ = server.wait();
    runs.sort_by(f64::total_cmp);
    println!(
        "throughput through the fake tailnet's relay (iperf3 TCP, 5 s, 3 runs): median {:.3} Gbit/s",
        runs[1] / 1e9
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // Arguments: a number of runs (default 10), and sections to run
    // (`failover`, `throughput`; default both).
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let runs: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(10);
    let wants = |section: &str| {
        args.iter().all(|a| a.parse::<usize>().is_ok()) || args.iter().any(|a| a == section)
    };
    if wants("failover") {
        for (name, lease, tag) in [
            ("fast", LeaseTimings::FAST, "x"),
            ("default", LeaseTimings::DEFAULT, "y"),
        ] {
            println!(
                "profile {name}: duration {:?}, renew deadline {:?}, retry period {:?}",
                lease.duration, lease.renew_deadline, lease.retry_period
            );
            let (node_loss, handover) = failovers(tag, lease, runs).await;
            summary("  node loss → forwarding again", node_loss);
            summary("  pod deleted (SIGTERM): no runtime forwarding", handover);
            steady_state(&format!("{tag}s"), lease, 30).await;
        }
    }
    if wants("throughput") {
        throughput().await;
        relay_throughput().await;
    }
}
