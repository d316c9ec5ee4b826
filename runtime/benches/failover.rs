//! Failover figures of the runtime (root; `ip`, `nft`, `socat`, `iperf3`):
//! the failover tests' cluster (kube-sim, one network namespace per node,
//! the fake tailscaled), measured per Lease timing profile.
//!
//! - node loss (SIGKILL of the leader's runtime, its node's link down) →
//!   the client's next TCP connection reaches the backend again;
//! - graceful handover (SIGTERM of the leader) → the same;
//! - API requests per second per Service, steady state, one leader and
//!   two standbys;
//! - runtime RSS, leader and standby, idle;
//! - TCP throughput through the DNAT path vs the routed path (iperf3).
//!
//! `cargo bench -p tailscale-svc-lb-runtime --bench failover [-- runs]
//! [failover] [throughput]` (default: 10 runs per profile, both sections).

#[path = "../tests/failover/harness.rs"]
mod harness;
#[path = "../tests/support/oracle.rs"]
mod oracle;

use std::time::{Duration, Instant};

use harness::{Cluster, IPERF_PORT};
use svc_lb_contract::{LeaseTimings, state};

const KEY: Option<&str> = Some("tskey-auth-bench");

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
fn until_served(cluster: &Cluster, ip: &str, since: Instant) -> Duration {
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

async fn start(tag: &str, nodes: usize, timings: LeaseTimings) -> (Cluster, String) {
    let mut cluster = Cluster::new(tag, nodes, KEY).await;
    cluster.timings = timings;
    for i in 0..nodes {
        cluster.start_runtime(i);
    }
    let ip = cluster
        .wait_state(state::TS_IP, Duration::from_secs(30), |_| true)
        .await
        .expect("a leader");
    assert!(cluster.reaches_backend(&ip, Duration::from_secs(10)));
    for i in 0..nodes {
        assert!(cluster.wait_ready(i, Duration::from_secs(10)));
    }
    (cluster, ip)
}

async fn failovers(
    tag: &str,
    timings: LeaseTimings,
    runs: usize,
) -> (Vec<Duration>, Vec<Duration>) {
    let (mut cluster, ip) = start(tag, 2, timings).await;
    let mut node_loss = Vec::new();
    for _ in 0..runs {
        let old = cluster.leader().await;
        let t0 = Instant::now();
        cluster.lose_node(old);
        node_loss.push(until_served(&cluster, &ip, t0));
        cluster.restore_node(old);
        assert!(cluster.wait_ready(old, Duration::from_secs(10)));
        // The new leader has reported itself before the next run.
        let _ = cluster
            .wait_state(state::LEADER_POD, Duration::from_secs(10), |p| {
                !p.ends_with(&format!("pod{old}"))
            })
            .await;
    }
    let mut handover = Vec::new();
    for _ in 0..runs {
        let old = cluster.leader().await;
        let t0 = Instant::now();
        let status = cluster.terminate(old);
        assert!(status.success());
        handover.push(until_served(&cluster, &ip, t0));
        cluster.start_runtime(old);
        assert!(cluster.wait_ready(old, Duration::from_secs(10)));
        let _ = cluster
            .wait_state(state::LEADER_POD, Duration::from_secs(10), |p| {
                !p.ends_with(&format!("pod{old}"))
            })
            .await;
    }
    assert_eq!(*cluster.overlaps.lock().unwrap(), Vec::<String>::new());
    assert_eq!(cluster.tailnet_violations(), "");
    (node_loss, handover)
}

/// Requests per second to the API server in steady state, and RSS.
async fn steady_state(tag: &str, timings: LeaseTimings, seconds: u64) {
    let (cluster, _ip) = start(tag, 3, timings).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = cluster.sim.requests().snapshot();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let after = cluster.sim.requests().snapshot();
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
    let leader = cluster.leader().await;
    for i in 0..3 {
        let role = if i == leader { "leader" } else { "standby" };
        let rss = cluster
            .runtime_pid(i)
            .and_then(kube_sim::rss_mib)
            .unwrap_or(f64::NAN);
        println!("  runtime RSS, {role} (node {i}): {rss:.1} MiB");
    }
}

fn iperf(cluster: &Cluster, target: &str) -> f64 {
    let out = harness::must(
        "ip",
        &[
            "netns",
            "exec",
            &cluster.client_ns,
            "iperf3",
            "-c",
            target,
            "-p",
            &IPERF_PORT.to_string(),
            "-t",
            "5",
            "-J",
        ],
    );
    let json: serde_json::Value = serde_json::from_str(&out).expect("iperf3 JSON");
    json["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .expect("throughput")
}

/// Pairs of throughput measurements.
const PAIRS: usize = 7;

/// DNAT (client → Tailscale IP → ClusterIP) vs routed (client → backend
/// address through the same node, no NAT).
async fn throughput() {
    let (mut cluster, ip) = start("t", 1, LeaseTimings::FAST).await;
    cluster.stop_checker();
    let mut server = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &cluster.backend_ns,
            "iperf3",
            "-s",
            "-p",
            &IPERF_PORT.to_string(),
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("iperf3 must be installed");
    harness::ip(
        &cluster.client_ns,
        &["route", "add", "10.200.0.0/24", "via", &ip],
    );
    harness::ip(
        &cluster.backend_ns,
        &["route", "add", "100.64.0.0/10", "via", "10.200.0.1"],
    );
    std::thread::sleep(Duration::from_millis(500));
    // Pairs in alternating order, so drift of the machine cancels out.
    let mut ratios = Vec::new();
    let (mut dnat, mut routed) = (Vec::new(), Vec::new());
    for pair in 0..PAIRS {
        let (d, r) = if pair % 2 == 0 {
            let d = iperf(&cluster, &ip);
            (d, iperf(&cluster, "10.200.0.2"))
        } else {
            let r = iperf(&cluster, "10.200.0.2");
            (iperf(&cluster, &ip), r)
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
    println!(
        "throughput (iperf3 TCP, 5 s each, {PAIRS} alternating pairs): DNAT {:.2} Gbit/s · routed {:.2} Gbit/s (medians) · DNAT/routed per pair: median {:.3}, min {:.3}, max {:.3}",
        median(&mut dnat) / 1e9,
        median(&mut routed) / 1e9,
        median(&mut ratios),
        ratios[0],
        ratios[ratios.len() - 1],
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
        for (name, timings, tag) in [
            ("fast", LeaseTimings::FAST, "x"),
            ("default", LeaseTimings::DEFAULT, "y"),
        ] {
            println!(
                "profile {name}: duration {:?}, renew deadline {:?}, retry period {:?}",
                timings.duration, timings.renew_deadline, timings.retry_period
            );
            let (node_loss, handover) = failovers(tag, timings, runs).await;
            summary("  node loss → forwarding again", node_loss);
            summary("  SIGTERM handover → forwarding again", handover);
            steady_state(&format!("{tag}s"), timings, 30).await;
        }
    }
    if wants("throughput") {
        throughput().await;
    }
}
