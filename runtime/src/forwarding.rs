//! Enabling IP forwarding in the pod's network namespace.

use std::path::Path;

/// sysctl files to set to `1`, relative to `/proc/sys`. IPv6 is optional:
/// a kernel or pod without IPv6 has no such file.
const IPV4_FORWARD: &str = "net/ipv4/ip_forward";
const IPV6_FORWARD: &str = "net/ipv6/conf/all/forwarding";

/// Forwarding could not be enabled.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot enable forwarding through {path}: {source} (the init container must be privileged)"
)]
pub struct ForwardingError {
    path: String,
    source: std::io::Error,
}

/// Writes `1` to the IPv4 forwarding sysctl and, when present, the IPv6 one.
pub fn enable_forwarding(proc_sys: &Path) -> Result<(), ForwardingError> {
    let write = |relative: &str| {
        let path = proc_sys.join(relative);
        std::fs::write(&path, "1\n").map_err(|source| ForwardingError {
            path: path.display().to_string(),
            source,
        })
    };
    write(IPV4_FORWARD)?;
    if proc_sys.join(IPV6_FORWARD).exists() {
        write(IPV6_FORWARD)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_both_families_when_ipv6_exists() {
        let dir = tempfile::tempdir().unwrap();
        for f in [IPV4_FORWARD, IPV6_FORWARD] {
            let p = dir.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, "0\n").unwrap();
        }
        enable_forwarding(dir.path()).unwrap();
        for f in [IPV4_FORWARD, IPV6_FORWARD] {
            assert_eq!(std::fs::read_to_string(dir.path().join(f)).unwrap(), "1\n");
        }
    }

    #[test]
    fn a_missing_ipv4_sysctl_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = enable_forwarding(dir.path()).unwrap_err();
        assert!(err.to_string().contains("net/ipv4/ip_forward"), "{err}");
    }
}
