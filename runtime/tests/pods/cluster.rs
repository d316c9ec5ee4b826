//! A cluster whose proxy pods run as the controller renders them: kube-sim
//! (HTTPS, RBAC), the real controller as its ServiceAccount under the
//! shipped RBAC, the node agent's DaemonSet controller, and per node a
//! kubelet running the pods in runc containers.
//!
//! ```text
//!  client ns: bridge tnet 100.64.255.1/10 ──┬── tailscale0 (pod on node 0)   [test overlay]
//!                                          └── tailscale0 (pod on node 1)
//!  node i ns: cbr0 10.200.i.1/24 ── eth0 of its pods;  lo 10.96.0.1:443 → kube-sim
//!             q 10.201.i.1 ── b 10.201.i.2 (service ns: lo 10.96.0.10, the backend)
//! ```
//!
//! The one overlay (declared in [`overlay`]): the fake tailnet's folder
//! and a veth named `tailscale0` in each pod for the tailnet's data path.
//! Everything is removed on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Secret};
use kube::Api;
use kube::api::{ListParams, PostParams};
use kube_sim::{KubeSim, SimOptions};
use node_agent::kubelet::container::Overlay;
use node_agent::oci::devices::DeviceRules;
use serde_json::json;
use svc_lb_host::config::{ControllerConfig, ProxyPrivileges};
use svc_lb_host::controller::{ControllerOptions, ControllerTimings};
use svc_lb_host::policy::EngineLimits;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::node::{KubeletSetup, RunningKubelet, api_relay};

pub const RUNTIME: &str = env!("CARGO_BIN_EXE_tailscale-svc-lb-runtime");
pub const FAKE: &str = env!("CARGO_BIN_EXE_fake-tailscale");
pub const NAMESPACE: &str = svc_lb_host::config::DEFAULT_NAMESPACE;

pub fn must(program: &str, args: &[&str]) {
    let output = Command::new(program).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn ip(ns: &str, args: &[&str]) {
    let mut all = vec!["-n", ns];
    all.extend_from_slice(args);
    must("ip", &all);
}

/// What differs between the tests' clusters.
pub struct Options {
    pub nodes: usize,
    pub device_rules: DeviceRules,
    pub privileges: ProxyPrivileges,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            nodes: 2,
            device_rules: DeviceRules::Runc,
            privileges: ProxyPrivileges::Privileged,
        }
    }
}

pub struct NodeHandle {
    pub ns: String,
    pub dir: PathBuf,
    pub kubelet: RunningKubelet,
    relay: Child,
    /// When (monotonic ns) the node was lost.
    pub lost_at_ns: Option<u64>,
}

pub struct PodCluster {
    pub sim: KubeSim,
    pub dir: tempfile::TempDir,
    pub client_ns: String,
    pub service_ns: String,
    pub nodes: Vec<NodeHandle>,
    servers: Vec<Child>,
    stop_daemonsets: watch::Sender<bool>,
    stop_controller: CancellationToken,
}

/// Relays a Unix socket to kube-sim's port.
async fn relay(socket: PathBuf, target: std::net::SocketAddr) {
    let listener = tokio::net::UnixListener::bind(socket).unwrap();
    tokio::spawn(async move {
        while let Ok((mut unix, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(mut tcp) = tokio::net::TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut unix, &mut tcp).await;
                }
            });
        }
    });
}

/// The test overlay: the fake tailnet's folder in every container, and a
/// hook that gives each pod a `tailscale0` veth on the tailnet bridge.
fn overlay(dir: &std::path::Path, client_ns: &str) -> Overlay {
    let hook = dir.join("tailnet-link.sh");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\nset -e\npeer=\"t$(printf %s \"$POD_NETNS\" | tail -c 12)\"\n\
             ip link add \"$peer\" netns {client_ns} type veth peer name tailscale0 netns \"$POD_NETNS\"\n\
             ip -n {client_ns} link set \"$peer\" master tnet up\n"
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    Overlay {
        env: vec![
            ("FAKE_TAILNET_DIR".into(), "/tailnet".into()),
            (
                "RUST_LOG".into(),
                "info,tailscale_svc_lb_runtime=debug".into(),
            ),
        ],
        mounts: vec![(dir.join("tailnet"), "/tailnet".into())],
        network_hook: Some(hook),
    }
}

impl PodCluster {
    pub async fn new(tag: &str, options: Options) -> Self {
        // The node agent's and the controller's logs, shown for a failure.
        let _ = tracing_subscriber::fmt()
            .with_env_filter("info,kube=warn,tower=warn,hyper=warn")
            .with_test_writer()
            .try_init();
        let sim = KubeSim::start_with(SimOptions {
            extra_sans: vec!["10.96.0.1".into()],
            ..Default::default()
        })
        .await
        .unwrap();
        let client = sim.client();
        let namespace: Namespace =
            serde_json::from_value(json!({"metadata": {"name": NAMESPACE}})).unwrap();
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &namespace)
            .await
            .unwrap();
        let auth: Secret = serde_json::from_value(json!({
            "metadata": {"name": svc_lb_contract::AUTH_KEY_SECRET},
            "stringData": {svc_lb_contract::AUTH_KEY_SECRET_KEY: "tskey-auth-pods"}
        }))
        .unwrap();
        Api::<Secret>::namespaced(client.clone(), NAMESPACE)
            .create(&PostParams::default(), &auth)
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("tailnet")).unwrap();
        let id = format!("{}{tag}", std::process::id() % 10_000);
        let client_ns = format!("svclb-pc-{id}");
        let service_ns = format!("svclb-ps-{id}");
        for ns in [&client_ns, &service_ns] {
            must("ip", &["netns", "add", ns]);
            ip(ns, &["link", "set", "lo", "up"]);
        }
        ip(&client_ns, &["link", "add", "tnet", "type", "bridge"]);
        ip(
            &client_ns,
            &["addr", "add", "100.64.255.1/10", "dev", "tnet"],
        );
        ip(&client_ns, &["link", "set", "tnet", "up"]);
        // The tailnet follows a device to its new pod at once.
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
        ip(&service_ns, &["addr", "add", "10.96.0.10/32", "dev", "lo"]);
        let backend = Command::new("ip")
            .args(["netns", "exec", &service_ns, "socat"])
            .args([
                "TCP4-LISTEN:80,bind=10.96.0.10,reuseaddr,fork",
                "SYSTEM:echo backend",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let overlay = overlay(dir.path(), &client_ns);
        let (stop_daemonsets, stopped) = watch::channel(false);
        tokio::spawn(node_agent::daemonset::run(client.clone(), stopped));
        let mut cluster = Self {
            sim,
            dir,
            client_ns,
            service_ns,
            nodes: Vec::new(),
            servers: vec![backend],
            stop_daemonsets,
            stop_controller: CancellationToken::new(),
        };
        for i in 0..options.nodes {
            cluster.add_node(&id, i, &options, overlay.clone()).await;
        }
        cluster.start_controller(options.privileges).await;
        cluster
    }

    async fn add_node(&mut self, id: &str, i: usize, options: &Options, overlay: Overlay) {
        let name = format!("node-{i}");
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {svc_lb_contract::keys::DEPLOY_NODE_LABEL: "true"}},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}
        }))
        .unwrap();
        Api::<Node>::all(self.sim.client())
            .create(&PostParams::default(), &node)
            .await
            .unwrap();
        let ns = format!("svclb-pn{i}-{id}");
        must("ip", &["netns", "add", &ns]);
        ip(&ns, &["link", "set", "lo", "up"]);
        ip(&ns, &["addr", "add", "10.96.0.1/32", "dev", "lo"]);
        let (q, b) = (format!("q{i}-{id}"), format!("b{i}-{id}"));
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
                &self.service_ns,
            ],
        );
        ip(
            &ns,
            &["addr", "add", &format!("10.201.{i}.1/24"), "dev", &q],
        );
        ip(&ns, &["link", "set", &q, "up"]);
        ip(
            &ns,
            &[
                "route",
                "add",
                "10.96.0.10/32",
                "via",
                &format!("10.201.{i}.2"),
            ],
        );
        ip(
            &self.service_ns,
            &["addr", "add", &format!("10.201.{i}.2/24"), "dev", &b],
        );
        ip(&self.service_ns, &["link", "set", &b, "up"]);
        ip(
            &self.service_ns,
            &[
                "route",
                "add",
                &format!("10.200.{i}.0/24"),
                "via",
                &format!("10.201.{i}.1"),
            ],
        );
        let socket = self.dir.path().join(format!("api{i}.sock"));
        relay(socket.clone(), self.sim.addr()).await;
        let relay = api_relay(&ns, socket);
        let dir = self.dir.path().join(&name);
        std::fs::create_dir(&dir).unwrap();
        let mut config = self.sim.config_with_token(self.sim.admin_token());
        config.cluster_url = "https://10.96.0.1:443".parse().unwrap();
        let setup = KubeletSetup {
            node: name.clone(),
            host_ip: format!("10.201.{i}.1"),
            dir: dir.clone(),
            pod_range: [10, 200, i as u8],
            prefix: format!("svclb-k{i}{id}-"),
            repository: svc_lb_host::config::DEFAULT_RUNTIME_IMAGE
                .rsplit_once(':')
                .unwrap()
                .0
                .to_string(),
            builds: vec![
                ("tailscale-svc-lb-runtime".into(), RUNTIME.into()),
                ("tailscaled".into(), FAKE.into()),
                ("tailscale".into(), FAKE.into()),
            ],
            device_rules: options.device_rules,
            overlay,
            config,
            ca_pem: self.sim.ca_pem().to_string(),
        };
        let kubelet = RunningKubelet::start(&ns, setup);
        self.nodes.push(NodeHandle {
            ns,
            dir,
            kubelet,
            relay,
            lost_at_ns: None,
        });
    }

    /// The real controller, as its ServiceAccount under the shipped RBAC.
    async fn start_controller(&mut self, privileges: ProxyPrivileges) {
        let client = self.sim.client();
        let mut config = ControllerConfig::defaults();
        config.lease = svc_lb_contract::LeaseTimings::FAST;
        config.proxy_privileges = privileges;
        let options = ControllerOptions {
            config,
            timings: ControllerTimings {
                deprovision_timeout: Duration::from_secs(30),
                resync: Duration::from_secs(300),
                retry_base: Duration::from_millis(200),
            },
            limits: EngineLimits::default(),
            policy_configmap: "policies".into(),
            default_policy: true,
            metrics_addr: None,
            election: None,
            identity: "pods".into(),
            concurrency: 4,
        };
        let target = crate::controller_rbac::RbacTarget {
            namespace: NAMESPACE.into(),
            cluster_name: format!("{NAMESPACE}-controller"),
            policy_configmap: "policies".into(),
        };
        let documents =
            crate::controller_rbac::adapt(&crate::controller_rbac::shipped_rbac_yaml(), &target);
        let token = crate::controller_rbac::install(&client, &documents).await;
        let controller_client = crate::controller_rbac::controller_client(
            &self.sim.config_with_token(self.sim.admin_token()),
            &token,
        );
        tokio::spawn(svc_lb_host::controller::run(
            controller_client,
            options,
            self.stop_controller.clone(),
        ));
    }

    /// The proxy pods (in the controller's namespace).
    pub async fn pods(&self) -> Vec<Pod> {
        Api::<Pod>::namespaced(self.sim.client(), NAMESPACE)
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
    }

    /// Every proxy container's log, by pod name.
    pub fn pod_logs(&self) -> Vec<(String, String)> {
        let mut logs = Vec::new();
        for node in &self.nodes {
            for pod in std::fs::read_dir(node.dir.join("pods"))
                .into_iter()
                .flatten()
                .flatten()
            {
                let name = pod.file_name().to_string_lossy().into_owned();
                for file in std::fs::read_dir(pod.path())
                    .into_iter()
                    .flatten()
                    .flatten()
                {
                    if file.file_name().to_string_lossy().ends_with(".log") {
                        let log = std::fs::read_to_string(file.path()).unwrap_or_default();
                        logs.push((
                            format!("{name}/{}", file.file_name().to_string_lossy()),
                            log,
                        ));
                    }
                }
            }
        }
        logs
    }

    /// Pairs of pods whose runtimes' logs say they forwarded at once (a
    /// lost node's pods stopped when it was lost).
    pub fn forwarding_overlaps(&self) -> Vec<String> {
        let mut intervals = Vec::new();
        for node in &self.nodes {
            let lost: Vec<u64> = node.lost_at_ns.into_iter().collect();
            for pod in std::fs::read_dir(node.dir.join("pods"))
                .into_iter()
                .flatten()
                .flatten()
            {
                let log = std::fs::read_to_string(pod.path().join("proxy.log")).unwrap_or_default();
                let name = pod.file_name().to_string_lossy().into_owned();
                for interval in crate::oracle::forwarding_intervals(&log, &lost) {
                    intervals.push((name.clone(), interval));
                }
            }
        }
        crate::oracle::overlaps(&intervals)
    }

    /// What the client gets back from `ip:80` within 1 s.
    pub fn ask(&self, ip: &str) -> Option<String> {
        let output = Command::new("ip")
            .args(["netns", "exec", &self.client_ns, "socat", "-T1", "-"])
            .arg(format!("TCP4:{ip}:80,connect-timeout=1"))
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

    /// The fake tailnet's record of two daemons running one device.
    pub fn tailnet_violations(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("tailnet/violations")).unwrap_or_default()
    }

    /// Devices registered in the fake tailnet.
    pub fn tailnet_devices(&self) -> usize {
        std::fs::read_dir(self.dir.path().join("tailnet/devices")).map_or(0, |d| d.count())
    }

    /// Loses node `i`: its kubelet stops, its containers are SIGKILLed and
    /// its pods' namespaces go, as when a node dies.
    pub fn lose_node(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        node.kubelet.stop();
        node.kubelet.kill_everything();
        node.lost_at_ns = Some(crate::oracle::monotonic_ns());
    }
}

impl Drop for PodCluster {
    fn drop(&mut self) {
        self.stop_controller.cancel();
        self.stop_daemonsets.send_replace(true);
        if std::thread::panicking() || std::env::var_os("SVCLB_TEST_LOGS").is_some() {
            for (pod, log) in self.pod_logs() {
                eprintln!("----- {pod} -----\n{log}");
            }
        }
        for node in &mut self.nodes {
            node.kubelet.stop();
            node.kubelet.kill_everything();
            let _ = node.relay.kill();
            let _ = node.relay.wait();
        }
        for server in &mut self.servers {
            let _ = server.kill();
            let _ = server.wait();
        }
        for node in &self.nodes {
            let _ = Command::new("ip").args(["netns", "del", &node.ns]).status();
        }
        for ns in [&self.client_ns, &self.service_ns] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}
