//! The OCI runtime spec (`config.json`) of one container, built as
//! containerd's CRI plugin builds it for runc (`pkg/cri/server/
//! container_create_linux.go`, `oci/spec.go`): default mounts, masked and
//! read-only paths, the pod's network namespace joined by path, a PID, IPC,
//! UTS and mount namespace of its own, the capabilities, seccomp and device
//! rules of its security context.
//!
//! Built as JSON by hand: it is the one document runc reads, and writing
//! it field by field keeps it a readable transcription of containerd's.

pub mod capabilities;
pub mod devices;
pub mod seccomp;

use std::path::PathBuf;

use serde_json::{Value, json};

/// A bind mount into the container.
#[derive(Debug, Clone, PartialEq)]
pub struct BindMount {
    /// Path inside the container.
    pub destination: String,
    /// Path on the node.
    pub source: PathBuf,
    /// Mounted read-only.
    pub read_only: bool,
}

/// The user a container's process runs as.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserIds {
    pub uid: u32,
    pub gid: u32,
    /// Further groups (`fsGroup`, `supplementalGroups`).
    pub additional: Vec<u32>,
}

/// What one container's spec is made of: the pod's and container's
/// settings, already resolved by the kubelet.
#[derive(Debug, Clone)]
pub struct ContainerConfig {
    /// Command and arguments.
    pub args: Vec<String>,
    /// Environment, image's first, in order.
    pub env: Vec<(String, String)>,
    /// The process's user and groups.
    pub user: UserIds,
    /// Working directory.
    pub cwd: String,
    /// The pod's hostname (its name).
    pub hostname: String,
    /// The pod's network namespace.
    pub netns: PathBuf,
    /// The image's root.
    pub rootfs: PathBuf,
    /// `readOnlyRootFilesystem`.
    pub read_only_root: bool,
    /// `privileged`.
    pub privileged: bool,
    /// Bounding, effective and permitted capabilities.
    pub capabilities: Vec<String>,
    /// `linux.seccomp`, if confined.
    pub seccomp: Option<Value>,
    /// Volumes, the image's files and the kubelet's files.
    pub mounts: Vec<BindMount>,
    /// Device nodes to create (a privileged container's host devices).
    pub devices: Vec<Value>,
    /// cgroup path (cgroupfs).
    pub cgroups_path: String,
    /// Memory limit in bytes.
    pub memory_limit: Option<i64>,
    /// CPU shares from the CPU request (kubelet's `MilliCPUToShares`).
    pub cpu_shares: u64,
}

/// Paths containerd hides from an unprivileged container
/// (`oci/spec.go`, `populateDefaultUnixSpec`).
const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
];
const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// CPU shares for a CPU request in millicores (kubelet's
/// `MilliCPUToShares`: 1024 per core, at least 2).
pub fn cpu_shares(milli_cpu: u64) -> u64 {
    (milli_cpu * 1024 / 1000).max(2)
}

/// The `config.json` of a container.
pub fn render_config(c: &ContainerConfig) -> Value {
    let sys_options = if c.privileged {
        json!(["nosuid", "noexec", "nodev"])
    } else {
        json!(["nosuid", "noexec", "nodev", "ro"])
    };
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc",
               "options": ["nosuid", "noexec", "nodev"]}),
        // A fresh /dev: runc fills in only its short list of nodes.
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
               "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
               "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": sys_options}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
               "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}),
    ];
    for m in &c.mounts {
        let access = if m.read_only { "ro" } else { "rw" };
        mounts.push(json!({
            "destination": m.destination,
            "type": "bind",
            "source": m.source,
            "options": ["rbind", "rprivate", access],
        }));
    }
    let env: Vec<String> = c.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut linux = json!({
        "namespaces": [
            {"type": "pid"},
            {"type": "ipc"},
            {"type": "uts"},
            {"type": "mount"},
            {"type": "network", "path": c.netns},
        ],
        "cgroupsPath": c.cgroups_path,
        "resources": {
            "devices": devices::cgroup_rules(c.privileged),
            "cpu": {"shares": c.cpu_shares},
        },
        "devices": c.devices,
    });
    if let Some(limit) = c.memory_limit {
        linux["resources"]["memory"] = json!({"limit": limit});
    }
    if !c.privileged {
        linux["maskedPaths"] = json!(MASKED_PATHS);
        linux["readonlyPaths"] = json!(READONLY_PATHS);
    }
    if let Some(seccomp) = &c.seccomp {
        linux["seccomp"] = seccomp.clone();
    }
    json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": false,
            "user": {"uid": c.user.uid, "gid": c.user.gid, "additionalGids": c.user.additional},
            "args": c.args,
            "env": env,
            "cwd": c.cwd,
            "capabilities": {
                "bounding": c.capabilities,
                "effective": c.capabilities,
                "permitted": c.capabilities,
            },
            "oomScoreAdj": 0,
        },
        "root": {"path": c.rootfs, "readonly": c.read_only_root},
        "hostname": c.hostname,
        "mounts": mounts,
        "linux": linux,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(privileged: bool) -> ContainerConfig {
        ContainerConfig {
            args: vec!["tailscale-svc-lb-runtime".into()],
            env: vec![("PATH".into(), "/usr/bin".into())],
            user: UserIds::default(),
            cwd: "/".into(),
            hostname: "ts-web-abcde".into(),
            netns: "/run/netns/pod".into(),
            rootfs: "/images/runtime".into(),
            read_only_root: true,
            privileged,
            capabilities: vec!["CAP_NET_ADMIN".into()],
            seccomp: Some(json!({"defaultAction": "SCMP_ACT_ERRNO"})),
            mounts: vec![BindMount {
                destination: "/run".into(),
                source: "/pods/uid/volumes/run".into(),
                read_only: false,
            }],
            devices: vec![],
            cgroups_path: "/svclb-node-agent/uid-proxy".into(),
            memory_limit: Some(128 << 20),
            cpu_shares: cpu_shares(10),
        }
    }

    #[test]
    fn a_container_joins_the_pods_network_and_has_its_own_pid_namespace() {
        let spec = render_config(&config(false));
        let namespaces = spec["linux"]["namespaces"].as_array().unwrap();
        assert!(namespaces.contains(&json!({"type": "pid"})));
        assert!(namespaces.contains(&json!({"type": "network", "path": "/run/netns/pod"})));
        assert_eq!(spec["root"]["readonly"], true);
        assert_eq!(spec["hostname"], "ts-web-abcde");
        assert_eq!(spec["process"]["env"][0], "PATH=/usr/bin");
        assert_eq!(spec["linux"]["resources"]["cpu"]["shares"], 10);
        assert_eq!(spec["linux"]["resources"]["devices"][0]["allow"], false);
        assert!(spec["linux"]["maskedPaths"].is_array());
        let run = spec["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == "/run")
            .unwrap();
        assert_eq!(run["options"][2], "rw");
    }

    #[test]
    fn a_privileged_container_may_use_every_device_and_sees_no_masked_paths() {
        let spec = render_config(&config(true));
        assert_eq!(spec["linux"]["resources"]["devices"][0]["allow"], true);
        assert!(spec["linux"].get("maskedPaths").is_none());
        let sys = spec["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == "/sys")
            .unwrap();
        assert!(!sys["options"].as_array().unwrap().contains(&json!("ro")));
    }
}
