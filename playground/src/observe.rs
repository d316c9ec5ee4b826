//! What the pod tests observe of their cluster: the proxy pods and their
//! containers, the runtimes' logs and forwarding intervals, the state
//! Secret, the leader, and what the client reaches.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Pod, Secret, Service};
use kube::Api;
use kube::api::ListParams;
use svc_lb_contract::{ProxyNames, state};

use crate::cluster::{NAMESPACE, PodCluster, within};

impl PodCluster {
    /// The proxy pods (the DaemonSets' pods in the controller's namespace).
    pub async fn pods(&self) -> Vec<Pod> {
        let all = Api::<Pod>::namespaced(self.sim.client(), NAMESPACE)
            .list(&ListParams::default())
            .await
            .unwrap()
            .items;
        all.into_iter()
            .filter(|p| {
                let owners = p.metadata.owner_references.iter().flatten();
                owners.clone().any(|o| o.kind == "DaemonSet")
            })
            .collect()
    }

    /// Every container's log (without colours), by pod folder and file.
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
                        let file = file.file_name().to_string_lossy().into_owned();
                        logs.push((format!("{name}/{file}"), crate::oracle::plain(&log)));
                    }
                }
            }
        }
        logs
    }

    /// Every forwarding interval of every pod's runtime, from their logs
    /// (`(pod, [since, until))`; a lost node's pods stopped when it was).
    pub fn forwarding_intervals(&self) -> Vec<(String, (u64, u64))> {
        let mut intervals = Vec::new();
        for node in &self.nodes {
            for pod in std::fs::read_dir(node.dir.join("pods"))
                .into_iter()
                .flatten()
                .flatten()
            {
                let log = std::fs::read_to_string(pod.path().join("proxy.log")).unwrap_or_default();
                let name = pod.file_name().to_string_lossy().into_owned();
                for interval in crate::oracle::forwarding_intervals(&log, &node.lost_at_ns) {
                    intervals.push((name.clone(), interval));
                }
            }
        }
        intervals
    }

    /// Pairs of pods whose runtimes' logs say they forwarded at once.
    pub fn forwarding_overlaps(&self) -> Vec<String> {
        crate::oracle::overlaps(&self.forwarding_intervals())
    }

    /// What the client gets back from `ip:80` within 1 s.
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
        let reply = String::from_utf8_lossy(&output.stdout).into_owned();
        // The echo backend answers in HTTP: its body.
        let body = match reply.split_once("\r\n\r\n") {
            Some((head, body)) if head.starts_with("HTTP/") => body,
            _ => &reply,
        };
        let body = body.trim().to_string();
        (!body.is_empty()).then_some(body)
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

    /// Devices listed in the fake tailnet and not logged out.
    pub fn logged_in_devices(&self) -> usize {
        std::fs::read_dir(self.dir.path().join("tailnet/devices")).map_or(0, |d| {
            d.filter_map(Result::ok)
                .filter(|f| {
                    !std::fs::read_to_string(f.path())
                        .unwrap_or_default()
                        .contains("logged-out")
                })
                .count()
        })
    }

    /// The names of the Service's objects.
    pub fn names() -> ProxyNames {
        ProxyNames::for_service("default", "web")
    }

    /// The Service's published ingress IP, once there (within `limit`).
    pub async fn ingress(&self, limit: Duration) -> String {
        let services: Api<Service> = Api::namespaced(self.sim.client(), "default");
        within(limit, "the Service's ingress", || async {
            let status = services.get("web").await.ok()?.status?;
            status.load_balancer?.ingress?.first()?.ip.clone()
        })
        .await
    }

    /// A key of the Service's state Secret.
    pub async fn state(&self, key: &str) -> Option<String> {
        let secret = Api::<Secret>::namespaced(self.sim.client(), NAMESPACE)
            .get(&Self::names().state_secret)
            .await
            .ok()?;
        let value = secret.data?.remove(key)?;
        Some(String::from_utf8(value.0).unwrap())
    }

    /// The leader as the state Secret names it: (node index, pod name).
    pub async fn leader(&self) -> Option<(usize, String)> {
        let node = self.state(state::LEADER_NODE).await?;
        let pod = self.state(state::LEADER_POD).await?;
        Some((node.strip_prefix("node-")?.parse().ok()?, pod))
    }

    /// The running proxy containers: `(node index, host pid)`.
    pub fn proxies(&self) -> Vec<(usize, u32)> {
        let mut found = Vec::new();
        for (i, node) in self.nodes.iter().enumerate() {
            for id in node
                .kubelet
                .containers()
                .iter()
                .filter(|c| c.ends_with("-proxy"))
            {
                if let Some(pid) = node.kubelet.container_pid(id) {
                    found.push((i, pid));
                }
            }
        }
        found
    }

    /// The pods' proxy-container statuses: `(running, ready)` per pod.
    pub async fn proxy_states(&self) -> Vec<(bool, bool)> {
        let mut states = Vec::new();
        for pod in self.pods().await {
            let statuses = pod
                .status
                .and_then(|s| s.container_statuses)
                .unwrap_or_default();
            for status in statuses.iter().filter(|s| s.name == "proxy") {
                let running = status.state.as_ref().is_some_and(|s| s.running.is_some());
                states.push((running, status.ready));
            }
        }
        states
    }

    /// Waits until `n` proxy pods run and are ready.
    pub async fn all_ready(&self, n: usize, limit: Duration) {
        within(limit, "every proxy pod ready", || async {
            (self.proxy_states().await == vec![(true, true); n]).then_some(())
        })
        .await;
    }

    /// Waits until a pod other than `old` leads (by the state Secret).
    pub async fn new_leader(&self, old: &str, limit: Duration) -> (usize, String) {
        within(limit, "another pod to lead", || async {
            let (node, leader) = self.leader().await?;
            (leader != old).then_some((node, leader))
        })
        .await
    }

    /// Whether `netns` has the runtime's nftables table.
    pub fn forwarding_in(netns: &str) -> bool {
        Command::new("ip")
            .args([
                "netns",
                "exec",
                netns,
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
}
