//! A small cluster for failover tests: kube-sim in this process, one network
//! namespace per "node" running a runtime with the fake tailscaled, a
//! "tailnet" (a bridge in the client's namespace that every node's
//! `tailscale0` plugs into) and a backend namespace holding the ClusterIP.
//!
//! ```text
//!  client ns: bridge tnet 100.64.255.1/10 ──┬── tailscale0 (node 0 ns) ── q0 ──┐
//!                                          ├── tailscale0 (node 1 ns) ── q1 ──┼── backend ns
//!                                          └── tailscale0 (node 2 ns) ── q2 ──┘   lo 10.96.0.10
//! ```
//!
//! Nodes reach the API server through a relay: socat in each node's
//! namespace listens on its loopback and connects to a Unix socket that
//! this process relays to kube-sim, so no traffic leaves the namespaces made
//! here. Everything is deleted on drop.

// Shared by the failover tests and the failover bench; each uses a part.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::Api;
use kube::api::PostParams;
use kube_sim::KubeSim;
use svc_lb_contract::{LeaseTimings, env, state};
use tokio::sync::watch;

pub const RUNTIME: &str = env!("CARGO_BIN_EXE_tailscale-svc-lb-runtime");
pub const FAKE: &str = env!("CARGO_BIN_EXE_fake-tailscale");
pub const NAMESPACE: &str = "tailscale-svc-lb";
pub const OBJECT: &str = "ts-default-web-1a2b3c4d";
/// Forwarded besides port 80, for throughput measurements.
pub const IPERF_PORT: u16 = 5201;
/// Port the nodes reach the API server on, on their loopback.
const API_PORT: &str = "6443";

pub fn must(program: &str, args: &[&str]) -> String {
    let output: Output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} must be installed (CI installs it): {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn secs(d: Duration) -> String {
    d.as_secs().to_string()
}

pub fn ip(ns: &str, args: &[&str]) {
    let mut all = vec!["-n", ns];
    all.extend_from_slice(args);
    must("ip", &all);
}

pub use crate::oracle::{forwarding_intervals, monotonic_ns};
pub use crate::procs::{children_named, zombies_of};

/// The "pod IP" of node `i`'s runtime: its address on the node's link.
pub fn pod_ip(i: usize) -> String {
    format!("10.200.{i}.1")
}

/// The HTTP status of `GET path` on `ip:9002` (the health port) from
/// inside `ns`; `None` when nothing answers within 2 s.
pub fn http_status(ns: &str, ip: &str, path: &str) -> Option<u16> {
    let target = format!("TCP4:{ip}:9002");
    let output = Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            "socat",
            "-T2",
            // No half-close after the request: the server would drop the
            // connection unanswered.
            "-,ignoreeof",
            &target,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            let request = format!("GET {path} HTTP/1.0\r\n\r\n");
            let _ = child.stdin.take().unwrap().write_all(request.as_bytes());
            child.wait_with_output()
        })
        .ok()?;
    let response = String::from_utf8_lossy(&output.stdout).into_owned();
    response.split_whitespace().nth(1)?.parse().ok()
}

fn spawn_in(ns: &str, program: &str, args: &[&str]) -> Child {
    Command::new("ip")
        .args(["netns", "exec", ns, program])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ip netns exec")
}

/// Whether `ns` has the runtime's nftables table (it forwards).
pub fn forwarding_in(ns: &str) -> bool {
    Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            "nft",
            "list",
            "table",
            "inet",
            "tailscale-svc-lb",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// One node: its namespace and the runtime running there.
pub struct Node {
    pub ns: String,
    pub runtime: Option<Child>,
    pub log: PathBuf,
    /// Set when the node was "lost" (its namespace no longer counts).
    pub lost: bool,
    /// When (monotonic ns) the node was lost: its forwarding ended then.
    pub lost_at_ns: Vec<u64>,
    relay: Child,
    /// Cuts the node off from the API server.
    cut: watch::Sender<bool>,
}

pub struct Cluster {
    pub sim: KubeSim,
    pub dir: tempfile::TempDir,
    pub client_ns: String,
    pub backend_ns: String,
    pub nodes: Vec<Node>,
    servers: Vec<Child>,
    /// `true` stops the invariant checker.
    stop_checking: Arc<AtomicBool>,
    /// Samples at which two namespaces forwarded at once.
    pub overlaps: Arc<Mutex<Vec<String>>>,
    /// Namespaces the checker looks at (lost nodes are taken out).
    watched: Arc<Mutex<Vec<String>>>,
    checker: Option<std::thread::JoinHandle<()>>,
    auth_key: Option<&'static str>,
    /// Election timings of runtimes started from now on (default: fast).
    pub timings: LeaseTimings,
    /// Runtimes started from now on are PID 1 of a PID namespace of their
    /// own (`unshare --pid --fork`), as in a container.
    pub pid_one: bool,
}

impl Cluster {
    /// A cluster of `nodes` nodes; `auth_key` is what the controller would
    /// pass from the auth-key Secret.
    pub async fn new(tag: &str, nodes: usize, auth_key: Option<&'static str>) -> Self {
        let cluster = Self::bare(tag, nodes, auth_key).await;
        let client = cluster.sim.client();
        // What the controller creates: metadata only.
        let meta = kube::api::ObjectMeta {
            name: Some(OBJECT.into()),
            ..Default::default()
        };
        Api::<Secret>::namespaced(client.clone(), NAMESPACE)
            .create(
                &PostParams::default(),
                &Secret {
                    metadata: meta.clone(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        Api::<Lease>::namespaced(client, NAMESPACE)
            .create(
                &PostParams::default(),
                &Lease {
                    metadata: meta,
                    spec: None,
                },
            )
            .await
            .unwrap();
        cluster
    }

    /// The namespaces and the API server's namespace, without the
    /// per-Service objects (a controller creates them).
    pub async fn bare(tag: &str, nodes: usize, auth_key: Option<&'static str>) -> Self {
        let sim = KubeSim::start().await.unwrap();
        let client = sim.client();
        let ns = Namespace {
            metadata: kube::api::ObjectMeta {
                name: Some(NAMESPACE.into()),
                ..Default::default()
            },
            ..Default::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("kubeconfig"),
            kube_sim::kubeconfig(
                &format!("https://127.0.0.1:{API_PORT}"),
                sim.ca_pem(),
                sim.admin_token(),
            ),
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("bin")).unwrap();
        std::fs::create_dir(dir.path().join("tailnet")).unwrap();
        for name in ["tailscaled", "tailscale"] {
            std::os::unix::fs::symlink(FAKE, dir.path().join("bin").join(name)).unwrap();
        }
        let id = format!("{}{tag}", std::process::id() % 10_000);
        let client_ns = format!("svclb-fc-{id}");
        let backend_ns = format!("svclb-fb-{id}");
        for ns in [&client_ns, &backend_ns] {
            must("ip", &["netns", "add", ns]);
            ip(ns, &["link", "set", "lo", "up"]);
        }
        ip(&client_ns, &["link", "add", "tnet", "type", "bridge"]);
        ip(
            &client_ns,
            &["addr", "add", "100.64.255.1/10", "dev", "tnet"],
        );
        ip(&client_ns, &["link", "set", "tnet", "up"]);
        // The "tailnet" follows a device to its new node at once: the
        // gratuitous ARP of the new node replaces a neighbour entry even
        // if it was used within the last second.
        must(
            "ip",
            &[
                "netns",
                "exec",
                &client_ns,
                "sh",
                "-c",
                "echo 0 > /proc/sys/net/ipv4/neigh/tnet/locktime",
            ],
        );
        ip(&backend_ns, &["addr", "add", "10.96.0.10/32", "dev", "lo"]);
        let mut cluster = Self {
            sim,
            dir,
            client_ns,
            backend_ns,
            nodes: Vec::new(),
            servers: Vec::new(),
            stop_checking: Arc::new(AtomicBool::new(false)),
            overlaps: Arc::default(),
            watched: Arc::default(),
            checker: None,
            auth_key,
            timings: LeaseTimings::FAST,
            pid_one: false,
        };
        for i in 0..nodes {
            cluster.add_node(&id, i).await;
        }
        cluster.servers.push(
            Command::new("ip")
                .args(["netns", "exec", &cluster.backend_ns, "socat"])
                .args([
                    "TCP4-LISTEN:80,bind=10.96.0.10,reuseaddr,fork",
                    "SYSTEM:echo backend",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        cluster.start_checker();
        cluster
    }

    async fn add_node(&mut self, id: &str, i: usize) {
        let ns = format!("svclb-fn{i}-{id}");
        must("ip", &["netns", "add", &ns]);
        ip(&ns, &["link", "set", "lo", "up"]);
        let (t, q, b) = (
            format!("t{i}-{id}"),
            format!("q{i}-{id}"),
            format!("b{i}-{id}"),
        );
        must(
            "ip",
            &[
                "link",
                "add",
                &t,
                "netns",
                &self.client_ns,
                "type",
                "veth",
                "peer",
                "name",
                "tailscale0",
                "netns",
                &ns,
            ],
        );
        ip(
            &self.client_ns,
            &["link", "set", &t, "master", "tnet", "up"],
        );
        must(
            "ip",
            &[
                "link",
                "add",
                &q,
                "netns",
                &ns,
                "type",
                "veth",
                "peer",
                "name",
                &b,
                "netns",
                &self.backend_ns,
            ],
        );
        ip(
            &ns,
            &["addr", "add", &format!("10.200.{i}.1/24"), "dev", &q],
        );
        ip(&ns, &["link", "set", &q, "up"]);
        ip(
            &ns,
            &[
                "route",
                "add",
                "10.96.0.10/32",
                "via",
                &format!("10.200.{i}.2"),
            ],
        );
        ip(
            &self.backend_ns,
            &["addr", "add", &format!("10.200.{i}.2/24"), "dev", &b],
        );
        ip(&self.backend_ns, &["link", "set", &b, "up"]);
        must("ip", &["netns", "exec", &ns, RUNTIME, "enable-forwarding"]);
        let socket = self.dir.path().join(format!("api{i}.sock"));
        let (cut, cut_watch) = watch::channel(false);
        crate::relay::relay(socket.clone(), self.sim.addr(), cut_watch).await;
        let relay = spawn_in(
            &ns,
            "socat",
            &[
                &format!("TCP4-LISTEN:{API_PORT},bind=127.0.0.1,reuseaddr,fork"),
                &format!("UNIX-CONNECT:{}", socket.display()),
            ],
        );
        self.watched.lock().unwrap().push(ns.clone());
        let log = self.dir.path().join(format!("node{i}.log"));
        self.nodes.push(Node {
            ns,
            runtime: None,
            log,
            lost: false,
            lost_at_ns: Vec::new(),
            relay,
            cut,
        });
    }

    /// Starts (or restarts) the runtime on node `i`, as the kubelet would
    /// start its pod, with what the controller renders for the test's
    /// Service.
    pub fn start_runtime(&mut self, i: usize) {
        let t = self.timings;
        let mut env: Vec<(String, String)> = [
            (env::SERVICE_NAMESPACE, "default".to_string()),
            (env::SERVICE_NAME, "web".into()),
            (env::CLUSTER_IPS, "10.96.0.10".into()),
            (env::PORTS, format!("tcp/80,tcp/{IPERF_PORT}")),
            (env::STATE_SECRET, OBJECT.into()),
            (env::LEASE_NAME, OBJECT.into()),
            (env::HOSTNAME, "default-web".into()),
            (env::TAGS, "tag:k8s".into()),
            (env::POD_NAMESPACE, NAMESPACE.into()),
            (env::NODE_NAME, format!("node-{i}")),
            (env::POD_IP, pod_ip(i)),
            (env::LEASE_DURATION_SECONDS, secs(t.duration)),
            (env::LEASE_RENEW_DEADLINE_SECONDS, secs(t.renew_deadline)),
            (env::LEASE_RETRY_PERIOD_SECONDS, secs(t.retry_period)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        if let Some(key) = self.auth_key {
            env.push((env::AUTH_KEY.into(), key.into()));
        }
        self.start_pod(i, &format!("{OBJECT}-pod{i}"), env);
    }

    /// Starts the runtime on node `i` as pod `pod` with the pod's `env`,
    /// plus what only this test environment needs (API access, the fake
    /// tailscaled).
    pub fn start_pod(&mut self, i: usize, pod: &str, env: Vec<(String, String)>) {
        let node = &self.nodes[i];
        let dir = self.dir.path();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .unwrap();
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &node.ns]);
        if self.pid_one {
            // unshare forks the runtime as PID 1 of a new PID namespace,
            // with that namespace's /proc (as a container has), and
            // SIGKILLs it when unshare itself is killed.
            command.args(["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"]);
        }
        command
            .arg(RUNTIME)
            .env_clear()
            .envs(env)
            .env(env::POD_NAME, pod)
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "info,tailscale_svc_lb_runtime=debug")
            .env("KUBECONFIG", dir.join("kubeconfig"))
            .env("FAKE_TAILNET_DIR", dir.join("tailnet"))
            .env(env::TAILSCALED_BINARY, dir.join("bin/tailscaled"))
            .env(env::TAILSCALE_BINARY, dir.join("bin/tailscale"))
            .env(
                env::TAILSCALED_SOCKET,
                dir.join(format!("tailscaled{i}.sock")),
            )
            .env(env::TAILSCALED_STATE_DIR, dir.join(format!("state{i}")))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        self.nodes[i].runtime = Some(command.spawn().unwrap());
    }

    /// The runtime process of node `i` as `(host pid, pid in its own PID
    /// namespace)`, from `/proc` (`NSpid`): with [`Cluster::pid_one`] the
    /// started process is unshare and the runtime its child.
    pub fn runtime_pids(&self, i: usize) -> (u32, u32) {
        let started = self.nodes[i].runtime.as_ref().expect("a runtime").id();
        let pid = if self.pid_one {
            let children =
                std::fs::read_to_string(format!("/proc/{started}/task/{started}/children"))
                    .unwrap();
            children
                .split_whitespace()
                .next()
                .expect("unshare's child")
                .parse()
                .unwrap()
        } else {
            started
        };
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let inner = status
            .lines()
            .find_map(|l| l.strip_prefix("NSpid:"))
            .and_then(|l| l.split_whitespace().last())
            .expect("an NSpid line")
            .parse()
            .unwrap();
        (pid, inner)
    }

    /// Samples every node every 50 ms: at most one may forward.
    fn start_checker(&mut self) {
        let stop = self.stop_checking.clone();
        let overlaps = self.overlaps.clone();
        let watched = self.watched.clone();
        self.checker = Some(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let namespaces = watched.lock().unwrap().clone();
                let forwarding: Vec<&String> =
                    namespaces.iter().filter(|ns| forwarding_in(ns)).collect();
                if forwarding.len() > 1 {
                    overlaps.lock().unwrap().push(format!("{forwarding:?}"));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }));
    }

    /// Stops the checker (its sampling would disturb measurements).
    pub fn stop_checker(&mut self) {
        self.stop_checking.store(true, Ordering::Relaxed);
        if let Some(checker) = self.checker.take() {
            let _ = checker.join();
        }
    }

    /// "Loses" node `i`: SIGKILL to its runtime (its tailscaled must die
    /// with it), then its network goes (link down), as when a node dies.
    pub fn lose_node(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let mut runtime = node.runtime.take().expect("running");
        runtime.kill().unwrap();
        runtime.wait().unwrap();
        node.lost = true;
        self.watched.lock().unwrap().retain(|ns| ns != &node.ns);
        ip(&node.ns, &["link", "set", "tailscale0", "down"]);
        node.lost_at_ns.push(monotonic_ns());
    }

    /// Cuts node `i` off from the API server (its network to the tailnet
    /// and the backend stays).
    pub fn cut_off_api(&self, i: usize) {
        self.nodes[i].cut.send_replace(true);
    }

    /// A node that comes back (same namespace, fresh pod).
    pub fn restore_node(&mut self, i: usize) {
        self.nodes[i].lost = false;
        self.watched.lock().unwrap().push(self.nodes[i].ns.clone());
        self.start_runtime(i);
    }

    /// SIGTERM to node `i`'s runtime; its exit status.
    pub fn terminate(&mut self, i: usize) -> std::process::ExitStatus {
        let mut runtime = self.nodes[i].runtime.take().expect("running");
        must("kill", &["-TERM", &runtime.id().to_string()]);
        runtime.wait().unwrap()
    }

    pub fn secrets(&self) -> Api<Secret> {
        Api::namespaced(self.sim.client(), NAMESPACE)
    }

    /// The node index of the leader the state Secret names.
    pub async fn leader(&self) -> usize {
        let pod = self
            .state(state::LEADER_POD)
            .await
            .expect("leader pod reported");
        pod.rsplit("pod").next().unwrap().parse().unwrap()
    }

    /// A key of the state Secret.
    pub async fn state(&self, key: &str) -> Option<String> {
        let secret = self.secrets().get(OBJECT).await.ok()?;
        let value = secret.data?.remove(key)?;
        Some(String::from_utf8(value.0).unwrap())
    }

    /// Waits (up to `limit`) for `key` to satisfy `check`.
    pub async fn wait_state(
        &self,
        key: &str,
        limit: Duration,
        check: impl Fn(&str) -> bool,
    ) -> Option<String> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(value) = self.state(key).await.filter(|v| check(v)) {
                return Some(value);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// What the client gets back from `ip:80`, if anything (1 s timeout).
    pub fn ask(&self, ip: &str) -> Option<String> {
        self.ask_within(ip, "1")
    }

    /// What the client gets back from `ip:80` within `seconds`.
    pub fn ask_within(&self, ip: &str, seconds: &str) -> Option<String> {
        let output = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.client_ns,
                "socat",
                &format!("-T{seconds}"),
                "-",
            ])
            .arg(format!("TCP4:{ip}:80,connect-timeout={seconds}"))
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()?;
        let reply = String::from_utf8_lossy(&output.stdout).trim().to_string();
        (!reply.is_empty()).then_some(reply)
    }

    /// Asks until the backend answers, up to `limit`.
    pub fn reaches_backend(&self, ip: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.ask(ip).as_deref() == Some("backend") {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// The pid of node `i`'s runtime.
    pub fn runtime_pid(&self, i: usize) -> Option<u32> {
        self.nodes[i].runtime.as_ref().map(Child::id)
    }

    /// Waits until node `i` answers `/readyz` with 200 (up to `limit`).
    pub fn wait_ready(&self, i: usize, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.readyz(i) == Some(200) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Which node's namespace forwards now.
    pub fn forwarding_nodes(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| !self.nodes[i].lost && forwarding_in(&self.nodes[i].ns))
            .collect()
    }

    /// Lines of the fake tailnet's violation record (two daemons running
    /// one device at once).
    pub fn tailnet_violations(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("tailnet/violations")).unwrap_or_default()
    }

    /// The pid of the tailscaled running device `id` now, if any.
    pub fn daemon_pid(&self, id: &str) -> Option<u32> {
        std::fs::read_to_string(self.dir.path().join(format!("tailnet/active-{id}")))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// The HTTP status of node `i`'s `/readyz`, asked on the pod's IP as
    /// the kubelet asks.
    pub fn readyz(&self, i: usize) -> Option<u16> {
        http_status(&self.nodes[i].ns, &pod_ip(i), "/readyz")
    }

    /// Makes the fake control grant `tags` whatever a login asks for (as a
    /// tagged auth key does).
    pub fn grant_tags(&self, tags: &str) {
        std::fs::write(self.dir.path().join("tailnet/granted-tags"), tags).unwrap();
    }

    /// Re-authentications control has seen (`tailscale up --force-reauth`).
    pub fn reauths(&self) -> usize {
        std::fs::read_to_string(self.dir.path().join("tailnet/reauths"))
            .map_or(0, |log| log.lines().count())
    }

    /// Pairs of nodes whose runtimes' own logs say they forwarded at the
    /// same moment: the oracle that cannot miss a short overlap (the 50 ms
    /// sampler can).
    pub fn forwarding_overlaps(&self) -> Vec<String> {
        let named: Vec<(String, (u64, u64))> = self
            .forwarding_intervals()
            .into_iter()
            .enumerate()
            .flat_map(|(i, list)| list.into_iter().map(move |iv| (format!("node {i}"), iv)))
            .collect();
        crate::oracle::overlaps(&named)
    }

    /// Each node's forwarding intervals, from its runtime's log.
    pub fn forwarding_intervals(&self) -> Vec<Vec<(u64, u64)>> {
        self.nodes
            .iter()
            .map(|n| {
                let log = std::fs::read_to_string(&n.log).unwrap_or_default();
                forwarding_intervals(&log, &n.lost_at_ns)
            })
            .collect()
    }

    /// Devices currently registered in the fake tailnet.
    pub fn tailnet_devices(&self) -> usize {
        std::fs::read_dir(self.dir.path().join("tailnet/devices")).map_or(0, |d| d.count())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop_checker();
        for node in &mut self.nodes {
            if let Some(mut runtime) = node.runtime.take() {
                let _ = runtime.kill();
                let _ = runtime.wait();
            }
            let _ = node.relay.kill();
            let _ = node.relay.wait();
        }
        for server in &mut self.servers {
            let _ = server.kill();
            let _ = server.wait();
        }
        // The nodes' logs on failure, or always with SVCLB_TEST_LOGS set.
        if std::thread::panicking() || std::env::var_os("SVCLB_TEST_LOGS").is_some() {
            let show = |args: &[&str]| {
                let out = Command::new("ip")
                    .args(args)
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
                eprintln!("$ ip {}\n{}", args.join(" "), out.unwrap_or_default());
            };
            show(&["-n", &self.client_ns, "neigh"]);
            for node in &self.nodes {
                show(&["-n", &node.ns, "addr", "show", "tailscale0"]);
                show(&["netns", "exec", &node.ns, "nft", "list", "ruleset"]);
            }
            for node in &self.nodes {
                eprintln!(
                    "----- {} -----\n{}",
                    node.log.display(),
                    std::fs::read_to_string(&node.log).unwrap_or_default()
                );
            }
        }
        for node in &self.nodes {
            let _ = Command::new("ip").args(["netns", "del", &node.ns]).status();
        }
        for ns in [&self.client_ns, &self.backend_ns] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}
