//! The capability sets of a container, computed as containerd's CRI plugin
//! computes them (`pkg/cri/opts/spec_linux.go`, `WithCapabilities`): the
//! default set of `oci.populateDefaultUnixSpec`, then `ALL` in `add` (every
//! capability) or `drop` (none), then each named capability added, then
//! each dropped. A privileged container gets every capability.

use k8s_openapi::api::core::v1::SecurityContext;

/// containerd's default capabilities (`oci/spec.go`, `defaultUnixCaps`),
/// the same as Docker's.
pub const CONTAINERD_DEFAULT: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Linux capabilities by number (`include/uapi/linux/capability.h`).
const BY_NUMBER: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The capabilities whose bits `mask` has (a `Cap*` line of
/// `/proc/<pid>/status`, in hex).
pub fn from_mask(mask: u64) -> Vec<String> {
    BY_NUMBER
        .iter()
        .enumerate()
        .filter(|(bit, _)| mask & (1 << bit) != 0)
        .map(|(_, c)| c.to_string())
        .collect()
}

/// "Every capability", as containerd's CRI plugin means it for a
/// privileged container (`cap.Current()`): those the agent itself has in
/// effect, which may lack some the kernel knows (a container cannot be
/// given more).
pub fn current() -> std::io::Result<Vec<String>> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .ok_or_else(|| std::io::Error::other("no CapEff line in /proc/self/status"))?;
    Ok(from_mask(mask))
}

/// The capabilities of a container with `security` (bounding, effective and
/// permitted are this one set, as containerd sets them for root).
pub fn container_capabilities(security: Option<&SecurityContext>, all: &[String]) -> Vec<String> {
    if security.and_then(|s| s.privileged) == Some(true) {
        return all.to_vec();
    }
    let mut caps: Vec<String> = CONTAINERD_DEFAULT.iter().map(|c| c.to_string()).collect();
    let requested = security.and_then(|s| s.capabilities.as_ref());
    let add = requested.and_then(|c| c.add.clone()).unwrap_or_default();
    let drop = requested.and_then(|c| c.drop.clone()).unwrap_or_default();
    let is_all = |c: &String| c.eq_ignore_ascii_case("ALL");
    if add.iter().any(is_all) {
        caps = all.to_vec();
    }
    if drop.iter().any(is_all) {
        caps.clear();
    }
    // The API names capabilities without the `CAP_` prefix.
    let full = |c: &String| format!("CAP_{}", c.to_ascii_uppercase());
    for cap in add.iter().filter(|c| !is_all(c)).map(full) {
        if !caps.contains(&cap) {
            caps.push(cap);
        }
    }
    for cap in drop.iter().filter(|c| !is_all(c)).map(full) {
        caps.retain(|c| *c != cap);
    }
    caps
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Capabilities;

    use super::*;

    fn context(add: &[&str], drop: &[&str]) -> SecurityContext {
        let names = |l: &[&str]| Some(l.iter().map(|c| c.to_string()).collect());
        SecurityContext {
            capabilities: Some(Capabilities {
                add: names(add),
                drop: names(drop),
            }),
            ..Default::default()
        }
    }

    fn known(last: u32) -> Vec<String> {
        from_mask((1u64 << (last + 1)) - 1)
    }

    #[test]
    fn a_bounding_set_without_a_capability_leaves_it_out() {
        // 0x1fffeffffff: every capability up to 40 but CAP_SYS_RESOURCE (24).
        let caps = from_mask(0x1ff_feff_ffff);
        assert_eq!(caps.len(), 40);
        assert!(!caps.contains(&"CAP_SYS_RESOURCE".to_string()));
        assert!(current().unwrap().contains(&"CAP_CHOWN".to_string()));
    }

    #[test]
    fn without_a_security_context_a_container_has_containerds_default_set() {
        let all = known(40);
        let caps = container_capabilities(None, &all);
        assert_eq!(caps.len(), 14);
        assert!(caps.contains(&"CAP_MKNOD".to_string()));
        assert!(!caps.contains(&"CAP_NET_ADMIN".to_string()));
    }

    #[test]
    fn drop_all_then_add_leaves_only_the_added_capabilities() {
        let all = known(40);
        let security = context(&["NET_ADMIN", "net_raw", "MKNOD"], &["ALL"]);
        assert_eq!(
            container_capabilities(Some(&security), &all),
            ["CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_MKNOD"]
        );
    }

    #[test]
    fn add_all_then_drop_removes_the_dropped_one() {
        let all = known(40);
        let caps = container_capabilities(Some(&context(&["ALL"], &["SYS_ADMIN"])), &all);
        assert_eq!(caps.len(), all.len() - 1);
        assert!(!caps.contains(&"CAP_SYS_ADMIN".to_string()));
    }

    #[test]
    fn a_privileged_container_has_every_capability_the_kernel_knows() {
        let all = known(37);
        let security = SecurityContext {
            privileged: Some(true),
            ..context(&[], &["ALL"])
        };
        let caps = container_capabilities(Some(&security), &all);
        assert_eq!(caps.len(), 38);
        assert_eq!(caps.last().unwrap(), "CAP_AUDIT_READ");
    }
}
