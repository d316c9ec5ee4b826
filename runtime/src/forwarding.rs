//! IP forwarding in the pod's network namespace: enabling it (the init
//! container) and checking it before installing DNAT (the leader), so a pod
//! whose init container did not run fails with a clear error instead of
//! silently dropping traffic.

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

/// Forwarding is off for a family that is to be forwarded.
#[derive(Debug, thiserror::Error)]
#[error(
    "IP forwarding is off ({path} reads {value:?}); the privileged init container `enable-forwarding` must run first"
)]
pub struct ForwardingOff {
    path: String,
    value: String,
}

/// Checks that forwarding is on for IPv4 (when `ipv4`) and IPv6 (when
/// `ipv6`).
pub fn check_forwarding(proc_sys: &Path, ipv4: bool, ipv6: bool) -> Result<(), ForwardingOff> {
    let wanted = [(ipv4, IPV4_FORWARD), (ipv6, IPV6_FORWARD)];
    for (_, relative) in wanted.iter().filter(|(wanted, _)| *wanted) {
        let path = proc_sys.join(relative);
        let value = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| format!("unreadable: {e}"))
            .trim()
            .to_string();
        if value != "1" {
            return Err(ForwardingOff {
                path: path.display().to_string(),
                value,
            });
        }
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

    #[test]
    fn the_check_names_the_family_that_is_off() {
        let dir = tempfile::tempdir().unwrap();
        for (f, v) in [(IPV4_FORWARD, "1\n"), (IPV6_FORWARD, "0\n")] {
            let p = dir.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, v).unwrap();
        }
        check_forwarding(dir.path(), true, false).unwrap();
        let err = check_forwarding(dir.path(), true, true).unwrap_err();
        assert!(err.to_string().contains("conf/all/forwarding"), "{err}");
        assert!(err.to_string().contains("enable-forwarding"), "{err}");
    }
}
