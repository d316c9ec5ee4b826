//! Device rules and device nodes of a container.
//!
//! runc (1.0–1.1, 1.2.4 and later) adds its own allow-list to every
//! container's device cgroup, and that list has `/dev/net/tun` (c 10:200);
//! crun, and runc 1.2.0–1.2.3, have lists without it. Under those a TUN node
//! can still be made (`mknod` needs only `CAP_MKNOD`) but opening it fails
//! with EPERM. [`DeviceRules::WithoutTun`] reproduces that with runc, by
//! denying c 10:200 in the container's device cgroup between `runc create`
//! and `runc start`.
//!
//! A privileged container gets every device of the host and may use all of
//! them (containerd's CRI plugin: `WithDevices(HostDevices)`,
//! `WithAllDevicesAllowed`), whatever the runtime's list.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use serde_json::{Value, json};

/// Which allow-list the "container runtime" of a node has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceRules {
    /// runc's own list (the TUN device allowed).
    #[default]
    Runc,
    /// crun's and runc 1.2.0–1.2.3's list: no TUN device.
    WithoutTun,
}

impl DeviceRules {
    /// Parses `runc` or `without-tun`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "runc" => Some(Self::Runc),
            "without-tun" | "crun" => Some(Self::WithoutTun),
            _ => None,
        }
    }

    /// The rule to write to the container's `devices.deny` before it
    /// starts, if any (never for a privileged container).
    pub fn deny_rule(self, privileged: bool) -> Option<&'static str> {
        (self == Self::WithoutTun && !privileged).then_some("c 10:200 rwm")
    }
}

/// `linux.resources.devices` of a container: containerd's "deny all" (runc
/// then adds its allow-list), or "allow all" for a privileged container.
pub fn cgroup_rules(privileged: bool) -> Value {
    json!([{"allow": privileged, "access": "rwm"}])
}

/// The host's device nodes for a privileged container, as containerd's
/// `oci.HostDevices` lists them (it skips `pts`, `shm`, `fd`, `mqueue` and
/// the LXC/udev folders, and `console`).
pub fn host_devices(dev: &Path) -> Vec<Value> {
    let mut devices = Vec::new();
    walk(dev, &mut devices);
    devices
}

fn walk(dir: &Path, devices: &mut Vec<Value>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let kind = meta.file_type();
        if kind.is_dir() {
            if !matches!(
                name.to_str(),
                Some("pts" | "shm" | "fd" | "mqueue" | ".lxc" | ".lxd-mounts" | ".udev")
            ) {
                walk(&path, devices);
            }
            continue;
        }
        if name == "console" {
            continue;
        }
        let type_ = if kind.is_char_device() {
            "c"
        } else if kind.is_block_device() {
            "b"
        } else {
            continue;
        };
        let rdev = meta.rdev();
        devices.push(json!({
            "path": path,
            "type": type_,
            "major": libc::major(rdev),
            "minor": libc::minor(rdev),
            "fileMode": meta.mode() & 0o777,
            "uid": meta.uid(),
            "gid": meta.gid(),
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unprivileged_containers_lose_the_tun_device_without_tun_rules() {
        assert_eq!(DeviceRules::Runc.deny_rule(false), None);
        assert_eq!(
            DeviceRules::WithoutTun.deny_rule(false),
            Some("c 10:200 rwm")
        );
        assert_eq!(DeviceRules::WithoutTun.deny_rule(true), None);
        assert_eq!(DeviceRules::parse("crun"), Some(DeviceRules::WithoutTun));
        assert_eq!(DeviceRules::parse("podman"), None);
    }

    #[test]
    fn host_devices_lists_character_devices_and_skips_pseudo_terminals() {
        let devices = host_devices(Path::new("/dev"));
        let null = devices
            .iter()
            .find(|d| d["path"] == "/dev/null")
            .expect("/dev/null");
        assert_eq!(
            (null["type"].as_str(), null["major"].as_u64()),
            (Some("c"), Some(1))
        );
        assert!(
            devices
                .iter()
                .all(|d| !d["path"].as_str().unwrap().starts_with("/dev/pts/"))
        );
    }
}
