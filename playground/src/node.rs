//! One node of the pod cluster: a network namespace with a link to the
//! Service network, the API server's `kubernetes` Service address
//! (10.96.0.1:443, relayed to kube-sim), and the node agent's kubelet
//! running in it — on a thread of this process that has joined the
//! namespace, so the runc containers, pod namespaces and probes are the
//! node's.

use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use node_agent::env::ApiService;
use node_agent::image::Image;
use node_agent::kubelet::container::{NodeSettings, Overlay};
use node_agent::kubelet::network::PodNetwork;
use node_agent::kubelet::runc::Runc;
use node_agent::kubelet::{self, NodeContext};
use node_agent::oci::devices::DeviceRules;
use node_agent::oci::{capabilities, seccomp};
use tokio::sync::watch;

/// The runtime image's file list.
pub const RUNTIME_IMAGE_FILES: &str = include_str!("../../runtime/image.files");
/// The controller image's file list.
pub const CONTROLLER_IMAGE_FILES: &str = include_str!("../../host/image.files");

/// What a node's kubelet is made of.
#[derive(Clone)]
pub struct KubeletSetup {
    pub node: String,
    pub host_ip: String,
    pub dir: PathBuf,
    pub pod_range: [u8; 3],
    pub prefix: String,
    /// The node's images: (repository, file list).
    pub images: Vec<(String, &'static str)>,
    pub builds: Vec<(String, PathBuf)>,
    pub device_rules: DeviceRules,
    pub restart_backoff: Duration,
    pub overlay: Overlay,
    pub config: kube::Config,
    pub ca_pem: String,
}

/// A kubelet running on a thread inside the node's namespace.
pub struct RunningKubelet {
    shutdown: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub runc: Runc,
    pub prefix: String,
}

impl RunningKubelet {
    /// Starts the kubelet of `setup` in network namespace `ns`.
    pub fn start(ns: &str, setup: KubeletSetup) -> Self {
        let (shutdown, stopped) = watch::channel(false);
        let network = PodNetwork {
            bridge: "cbr0".into(),
            prefix: setup.pod_range,
            name_prefix: setup.prefix.clone(),
        };
        let runc = Runc::new(setup.dir.join("runc"));
        let thread_runc = runc.clone();
        let prefix = setup.prefix.clone();
        let netns = std::fs::File::open(format!("/run/netns/{ns}")).unwrap();
        let thread = std::thread::spawn(move || {
            // SAFETY: setns on an open namespace file; it moves only this
            // thread (and what it starts) into the node's network.
            assert_eq!(
                unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) },
                0
            );
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let builds = setup.builds.into_iter().collect();
                let images = setup
                    .images
                    .iter()
                    .enumerate()
                    .map(|(i, (repository, list))| {
                        let root = setup.dir.join("images").join(i.to_string());
                        (
                            repository.clone(),
                            Image::prepare(list, &builds, &root).unwrap(),
                        )
                    })
                    .collect();
                let context = NodeContext {
                    client: kube::Client::try_from(setup.config).unwrap(),
                    runc: thread_runc,
                    network,
                    name: setup.node,
                    host_ip: setup.host_ip,
                    dir: setup.dir,
                    images,
                    settings: NodeSettings {
                        all_capabilities: capabilities::current().unwrap(),
                        seccomp_profile: Some(
                            std::fs::read_to_string(seccomp::CONTAINERS_COMMON_PROFILE)
                                .expect("scripts/test installs golang-github-containers-common"),
                        ),
                        overlay: setup.overlay,
                        cgroup_parent: setup.prefix.trim_end_matches('-').to_string(),
                        api: ApiService {
                            host: "10.96.0.1".into(),
                            port: 443,
                        },
                    },
                    device_rules: setup.device_rules,
                    ca_pem: setup.ca_pem,
                    restart_backoff: setup.restart_backoff,
                    id_prefix: setup.prefix,
                    addresses: Default::default(),
                };
                kubelet::run(Arc::new(context), stopped).await.unwrap();
            });
        });
        Self {
            shutdown,
            thread: Some(thread),
            runc,
            prefix,
        }
    }

    /// Stops the kubelet (its containers run on, as with a real kubelet).
    pub fn stop(&mut self) {
        self.shutdown.send_replace(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    /// Ids of this node's containers.
    pub fn containers(&self) -> Vec<String> {
        let output = Command::new("runc")
            .arg("--root")
            .arg(self.runc.root())
            .args(["list", "--quiet"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The host pid of a running container's init process.
    pub fn container_pid(&self, id: &str) -> Option<u32> {
        let output = Command::new("runc")
            .arg("--root")
            .arg(self.runc.root())
            .args(["state", id])
            .output()
            .ok()?;
        let state: serde_json::Value = serde_json::from_slice(&output.stdout).ok()?;
        (state["status"] == "running")
            .then(|| state["pid"].as_u64())?
            .map(|p| p as u32)
    }

    /// SIGKILLs every container and removes the pods' namespaces: what
    /// losing the node leaves.
    pub fn kill_everything(&self) {
        for id in self.containers() {
            let _ = Command::new("runc")
                .arg("--root")
                .arg(self.runc.root())
                .args(["kill", &id, "KILL"])
                .status();
            let _ = Command::new("runc")
                .arg("--root")
                .arg(self.runc.root())
                .args(["delete", "--force", &id])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let list = Command::new("ip").args(["netns", "list"]).output().unwrap();
        for line in String::from_utf8_lossy(&list.stdout).lines() {
            if let Some(name) = line.split_whitespace().next()
                && name.starts_with(&self.prefix)
            {
                let _ = Command::new("ip").args(["netns", "del", name]).status();
            }
        }
    }
}

impl Drop for RunningKubelet {
    fn drop(&mut self) {
        // Its containers run on, as with a real kubelet; the cluster
        // removes them when it goes.
        self.stop();
    }
}

/// Relays the node's API address to kube-sim: socat in the node's
/// namespace → a Unix socket → this process → kube-sim's port. `cut`
/// turning `true` black-holes the node's API traffic.
pub fn api_relay(ns: &str, socket: PathBuf) -> Child {
    Command::new("ip")
        .args(["netns", "exec", ns, "socat"])
        .arg("TCP4-LISTEN:443,bind=10.96.0.1,reuseaddr,fork")
        .arg(format!("UNIX-CONNECT:{}", socket.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}
