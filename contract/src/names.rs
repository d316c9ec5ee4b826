//! Names of the objects the controller creates for one Service.

use alloc::format;
use alloc::string::String;
use sha2::{Digest, Sha256};

/// Longest name of a per-Service object: a DNS label, so it is also a valid
/// label value and leaves room for the pod-name suffix of the DaemonSet.
const MAX_NAME_LEN: usize = 63;
/// Hex digits of the namespace/name digest that make names unique.
const DIGEST_LEN: usize = 8;
const PREFIX: &str = "ts-";

/// Names of the per-Service objects, all in the controller's namespace.
///
/// Every object shares one name, `ts-<namespace>-<name>-<digest>`: readable,
/// at most 63 characters, and unique across namespaces because the digest
/// covers `<namespace>/<name>` (`a-b/c` and `a/b-c` read alike but differ).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyNames {
    /// DaemonSet running the runtime pods.
    pub daemonset: String,
    /// Secret holding tailscaled state and the reported addresses.
    pub state_secret: String,
    /// Lease the runtime pods elect their leader with.
    pub lease: String,
    /// ServiceAccount of the runtime pods.
    pub service_account: String,
    /// Role granting access to the state Secret and the Lease.
    pub role: String,
    /// RoleBinding of [`Self::role`] to [`Self::service_account`].
    pub role_binding: String,
}

impl ProxyNames {
    /// Names for the Service `namespace/name`.
    pub fn for_service(namespace: &str, name: &str) -> Self {
        let base = proxy_base_name(namespace, name);
        Self {
            daemonset: base.clone(),
            state_secret: base.clone(),
            lease: base.clone(),
            service_account: base.clone(),
            role: base.clone(),
            role_binding: base,
        }
    }
}

fn proxy_base_name(namespace: &str, name: &str) -> String {
    let digest = Sha256::digest(format!("{namespace}/{name}").as_bytes());
    let hex: String = digest
        .iter()
        .take(DIGEST_LEN / 2)
        .map(|b| format!("{b:02x}"))
        .collect();
    let room = MAX_NAME_LEN - PREFIX.len() - 1 - DIGEST_LEN;
    let readable: String = format!("{namespace}-{name}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(room)
        .collect();
    format!("{PREFIX}{}-{hex}", readable.trim_end_matches('-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_is_readable_and_carries_a_digest() {
        let names = ProxyNames::for_service("default", "web");
        assert!(names.daemonset.starts_with("ts-default-web-"), "{names:?}");
        assert_eq!(names.daemonset.len(), "ts-default-web-".len() + DIGEST_LEN);
    }

    #[test]
    fn same_name_in_two_namespaces_gives_two_names() {
        let a = ProxyNames::for_service("team-a", "web");
        let b = ProxyNames::for_service("team-b", "web");
        assert_ne!(a.daemonset, b.daemonset);
    }

    #[test]
    fn dash_placement_ambiguity_is_resolved_by_the_digest() {
        let a = ProxyNames::for_service("a-b", "c");
        let b = ProxyNames::for_service("a", "b-c");
        assert_ne!(a.daemonset, b.daemonset);
    }

    #[test]
    fn longest_names_fit_a_dns_label() {
        let long = "x".repeat(63);
        let names = ProxyNames::for_service(&long, &long);
        assert!(names.daemonset.len() <= MAX_NAME_LEN, "{}", names.daemonset);
        assert!(!names.daemonset.contains("--"));
        let dashy = ProxyNames::for_service(&"a".repeat(50), "b");
        assert!(!dashy.daemonset.contains("--"), "{}", dashy.daemonset);
    }
}
