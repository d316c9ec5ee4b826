//! The controller at scale, each part in a process of its own: the in-repo
//! API server (this bench re-executed with `--kube-sim-server`), the
//! controller (the `tailscale-svc-lb` binary) and this bench as the users.
//!
//! 500 nodes (half labelled for deployment), then 1 000 LoadBalancer
//! Services created at once (32 in flight). Measured:
//! - time until every DaemonSet exists;
//! - after the bench writes a Tailscale address into every state Secret (as
//!   the runtime leaders would), time until every Service shows it;
//! - reconcile p50/p99 (from the controller's own histogram);
//! - API requests the controller made per Service (the server counts every
//!   request; the bench's own are subtracted);
//! - resident memory of the controller process (current and peak).
//!
//! Run: `cargo bench -p tailscale-svc-lb --bench controller_scale`; with
//! `SVCLB_BENCH_CONTROLLER=dist/amd64/tailscale-svc-lb`, the controller
//! measured is that binary (the static musl build) instead of this build's.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Namespace, Node, Secret, Service};
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube_sim::{SimProcess, rss_mib};
use serde_json::json;
use svc_lb_contract::ProxyNames;

#[path = "../tests/support/controller_rbac.rs"]
mod controller_rbac;

const SERVICES: usize = 1_000;
const NODES: usize = 500;
const IN_FLIGHT: usize = 32;
const SYSTEM: &str = "tailscale-svc-lb";
const APPS: &str = "apps";

/// Requests the bench itself makes, to subtract from the server's counts.
#[derive(Default)]
struct OwnRequests(BTreeMap<String, u64>);

impl OwnRequests {
    fn add(&mut self, key: &str, n: usize) {
        *self.0.entry(key.to_string()).or_default() += n as u64;
    }
}

fn vm_kib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until `count` distinct objects matching `done` were seen by one
/// watch, re-watching after timeouts; counts its own requests.
async fn wait_for_all<K, F>(api: &Api<K>, own: &mut OwnRequests, kind: &str, done: F) -> Duration
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + 'static,
    F: Fn(&K) -> Option<String>,
{
    let started = Instant::now();
    let list = api.list(&ListParams::default()).await.unwrap();
    own.add(&format!("LIST {kind}"), 1);
    let mut seen: BTreeSet<String> = list.items.iter().filter_map(&done).collect();
    let mut version = list.metadata.resource_version.unwrap();
    while seen.len() < SERVICES {
        own.add(&format!("WATCH {kind}"), 1);
        let mut stream = api
            .watch(&WatchParams::default().timeout(30), &version)
            .await
            .unwrap()
            .boxed();
        while let Some(event) = stream.try_next().await.unwrap() {
            match event {
                WatchEvent::Added(o) | WatchEvent::Modified(o) => {
                    version = kube::ResourceExt::resource_version(&o).unwrap_or(version);
                    if let Some(name) = done(&o) {
                        seen.insert(name);
                    }
                }
                WatchEvent::Bookmark(b) => version = b.metadata.resource_version,
                _ => {}
            }
            if seen.len() >= SERVICES {
                break;
            }
        }
    }
    started.elapsed()
}

/// `(p50, p99)` upper bounds, in ms, from a Prometheus histogram's buckets.
fn quantiles(metrics: &str, name: &str) -> (f64, f64, u64) {
    let buckets: Vec<(f64, u64)> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{name}_bucket{{le=\"")))
        .filter_map(|l| {
            let (le, count) = l.split_once("\"} ")?;
            Some((
                le.parse().unwrap_or(f64::INFINITY),
                count.trim().parse().ok()?,
            ))
        })
        .collect();
    let total = buckets.last().map_or(0, |b| b.1);
    let at = |q: f64| {
        let wanted = (total as f64 * q).ceil() as u64;
        buckets
            .iter()
            .find(|(_, c)| *c >= wanted)
            .map_or(f64::NAN, |(le, _)| le * 1e3)
    };
    (at(0.5), at(0.99), total)
}

async fn run_bench() {
    let server = SimProcess::spawn(&std::env::current_exe().unwrap(), &["--kube-sim-server"])
        .expect("the API server process starts");
    let client = server.client();
    let mut own = OwnRequests::default();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for name in [SYSTEM, APPS] {
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        namespaces
            .create(&PostParams::default(), &ns)
            .await
            .unwrap();
    }
    own.add("CREATE namespaces", 2);
    let nodes: Api<Node> = Api::all(client.clone());
    futures::stream::iter(0..NODES)
        .map(|i| {
            let nodes = nodes.clone();
            async move {
                let node: Node = serde_json::from_value(json!({
                    "metadata": {"name": format!("node-{i:04}"), "labels": {
                        // What a kubelet sets, then what the test varies.
                        "kubernetes.io/os": "linux",
                        "svc-lb.tailscale.iptables.sh/deploy": if i % 2 == 0 { "true" } else { "false" },
                        "topology.kubernetes.io/zone": format!("zone-{}", i % 3)}},
                    "status": {"conditions": [{"type": "Ready", "status": "True"}]}
                }))
                .unwrap();
                nodes.create(&PostParams::default(), &node).await.unwrap();
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect::<Vec<_>>()
        .await;
    own.add("CREATE nodes", NODES);

    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    // The controller runs as its ServiceAccount under the shipped RBAC, so
    // every request it makes is authorized as in an installation.
    let target = controller_rbac::RbacTarget {
        namespace: SYSTEM.into(),
        cluster_name: "tailscale-svc-lb".into(),
        policy_configmap: "tailscale-svc-lb-policies".into(),
    };
    let documents = controller_rbac::adapt(&controller_rbac::shipped_rbac_yaml(), &target);
    let token = controller_rbac::install(&client, &documents).await;
    for document in &documents {
        let plural = format!("{}s", document["kind"].as_str().unwrap().to_lowercase());
        own.add(&format!("CREATE {plural}"), 1);
    }
    std::fs::write(
        &kubeconfig,
        kube_sim::kubeconfig(server.url(), server.ca_pem(), &token),
    )
    .unwrap();
    let metrics_port = free_port();
    // Another build of the controller (e.g. the static musl one of
    // scripts/build-images) can be measured against the same server.
    let binary = std::env::var_os("SVCLB_BENCH_CONTROLLER")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_tailscale-svc-lb").into());
    let controller: Child = Command::new(binary)
        .args(["controller", "--no-leader-election", "--kubeconfig"])
        .arg(&kubeconfig)
        .args(["--namespace", SYSTEM])
        // No policy ConfigMap: the bundled default policy alone.
        .args(["--policy-configmap", ""])
        .args(["--metrics-address", &format!("127.0.0.1:{metrics_port}")])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("the controller starts");
    let controller = KillOnDrop(controller);
    let pid = controller.0.id();
    let metrics_url = format!("http://127.0.0.1:{metrics_port}/metrics");
    // Ready once the node list and the policy set are loaded.
    let ready_url = format!("http://127.0.0.1:{metrics_port}/readyz");
    let mut waited = 0;
    while http_get(&ready_url).await.map(|(code, _)| code) != Some(200) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
        assert!(waited < 600, "the controller did not become ready");
    }
    let idle_rss = vm_kib(pid, "VmRSS:") / 1024.0;
    let before = server.requests().await.unwrap();

    let services: Api<Service> = Api::namespaced(client.clone(), APPS);
    let daemonsets: Api<DaemonSet> = Api::namespaced(client.clone(), SYSTEM);
    let created = Instant::now();
    futures::stream::iter(0..SERVICES)
        .map(|i| {
            let services = services.clone();
            async move {
                let svc: Service = serde_json::from_value(json!({
                    "metadata": {"name": format!("svc-{i:04}")},
                    "spec": {"type": "LoadBalancer", "loadBalancerClass": "svc-lb.tailscale.iptables.sh/lb",
                             "ports": [{"port": 80}, {"port": 53, "protocol": "UDP"}]}
                }))
                .unwrap();
                services.create(&PostParams::default(), &svc).await.unwrap();
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect::<Vec<_>>()
        .await;
    own.add("CREATE services", SERVICES);
    let creating = created.elapsed();
    wait_for_all(&daemonsets, &mut own, "daemonsets", |ds| {
        ds.metadata.name.clone()
    })
    .await;
    let all_applied = created.elapsed();

    let secrets: Api<Secret> = Api::namespaced(client.clone(), SYSTEM);
    let reported = Instant::now();
    futures::stream::iter(0..SERVICES)
        .map(|i| {
            let secrets = secrets.clone();
            async move {
                let name = ProxyNames::for_service(APPS, &format!("svc-{i:04}")).state_secret;
                let ip = format!("100.64.{}.{}", i / 250, i % 250 + 1);
                let data = json!({"data": {svc_lb_contract::state::TS_IP: k8s_openapi::ByteString(ip.into_bytes())}});
                secrets
                    .patch(&name, &PatchParams::default(), &Patch::Merge(data))
                    .await
                    .unwrap();
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect::<Vec<_>>()
        .await;
    own.add("PATCH secrets", SERVICES);
    wait_for_all(&services, &mut own, "services", |svc| {
        let ingress = svc
            .status
            .as_ref()?
            .load_balancer
            .as_ref()?
            .ingress
            .as_ref()?;
        (!ingress.is_empty()).then(|| svc.metadata.name.clone())?
    })
    .await;
    let all_addressed = reported.elapsed();
    // Let in-flight reconciles settle before counting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = server.requests().await.unwrap();
    let rss = vm_kib(pid, "VmRSS:") / 1024.0;
    let peak = vm_kib(pid, "VmHWM:") / 1024.0;
    let (_, metrics) = http_get(&metrics_url).await.expect("metrics");
    let (p50, p99, reconciles) = quantiles(&metrics, "svclb_reconcile_duration_seconds");

    println!(
        "{SERVICES} Services, {NODES} nodes, created {IN_FLIGHT} at a time in {:.2} s",
        creating.as_secs_f64()
    );
    println!(
        "every DaemonSet applied      {:>8.2} s after the first create",
        all_applied.as_secs_f64()
    );
    println!(
        "every status has its IP      {:>8.2} s after the Secrets were written",
        all_addressed.as_secs_f64()
    );
    println!(
        "reconciles                   {reconciles:>8}  p50 <= {p50:.1} ms  p99 <= {p99:.1} ms"
    );
    let mut total = 0;
    let mut rows = Vec::new();
    for (key, count) in &after {
        let delta = count - before.get(key).copied().unwrap_or(0);
        let controller_made = delta.saturating_sub(own.0.get(key).copied().unwrap_or(0));
        if controller_made > 0 {
            total += controller_made;
            rows.push(format!("{key} {controller_made}"));
        }
    }
    println!(
        "controller API requests      {total:>8}  = {:.1} per Service ({})",
        total as f64 / SERVICES as f64,
        rows.join(", ")
    );
    println!(
        "controller RSS               {idle_rss:>8.1} MiB ready and idle, {rss:.1} MiB after, {peak:.1} MiB peak"
    );
    println!(
        "API server RSS               {:>8.1} MiB",
        rss_mib(server.pid()).unwrap_or(f64::NAN)
    );
    let _ = controller;
}

/// GET over plain HTTP/1.1: `(status, body)`.
async fn http_get(url: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://")?;
    let (host, path) = rest.split_once('/')?;
    let mut stream = tokio::net::TcpStream::connect(host).await.ok()?;
    let request = format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    let code = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())?;
    Some((code, body))
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if std::env::args().nth(1).as_deref() == Some("--kube-sim-server") {
        let listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        runtime
            .block_on(kube_sim::serve_until_interrupted(listen, None))
            .unwrap();
        return;
    }
    runtime.block_on(run_bench());
}
