//! The operator's rules for what plans may contain beyond syntax: which
//! tags each namespace may use, and which environment variables, pod
//! annotations, tolerations and priority classes any policy may set.
//!
//! Everything a plan adds to the proxy pod is data the node and the runtime
//! act on, so what is not listed is refused:
//! - **environment**: the runtime, its Kubernetes client and tailscaled read
//!   their settings from the environment (`PATH`, `KUBERNETES_SERVICE_HOST`,
//!   `HTTPS_PROXY`, `SSL_CERT_FILE`, `RUST_LOG`, `TS_DEBUG_*` …). No name is
//!   allowed by default; `SVCLB_`, `TS_` and `LD_` names never are.
//! - **pod annotations**: annotations are how a cluster attaches meaning to
//!   pods (AppArmor and seccomp profiles, Multus networks …), and not only
//!   under prefixes: CRI-O reads unprefixed keys such as
//!   `io.kubernetes.cri-o.Devices`. No key is allowed by default.
//! - **tolerations**: a toleration of every taint (empty key) or of the
//!   control-plane taints would put the proxy, which runs privileged, on the
//!   control plane. Other taints (dedicated pools) are allowed.
//! - **priority classes**: `system-*` classes let a pod preempt cluster
//!   components; they must be listed.
//!
//! The rules come from `planRules` in `policies.yaml`, beside the policies
//! they constrain, and `--tag-allowlist` caps tags for every namespace.

use std::collections::BTreeMap;

use serde::Deserialize;
use svc_lb_contract::env;

use super::{is_dns_subdomain, is_env_name, is_qualified_name, is_tailscale_tag};

/// `allowedTags` key that applies to every namespace.
pub const ANY_NAMESPACE: &str = "*";

/// Taint keys a plan may not tolerate unless listed in `allowedTolerations`.
pub const PROTECTED_TAINTS: &[&str] = &[
    "node-role.kubernetes.io/control-plane",
    "node-role.kubernetes.io/master",
];

/// Prefix of the priority classes Kubernetes reserves for its own components.
pub const SYSTEM_PRIORITY_PREFIX: &str = "system-";

/// What plans may contain. The default allows no environment variable, no
/// pod annotation, no toleration of every taint or of the control plane,
/// no `system-*` priority class, and any tag.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlanRules {
    /// When set, the only tags any plan may carry (`--tag-allowlist`).
    #[serde(skip)]
    pub tag_allowlist: Option<Vec<String>>,
    /// Tags each namespace may use (under its name or `"*"`); `None`
    /// allows any tag.
    #[serde(default)]
    pub allowed_tags: Option<BTreeMap<String, Vec<String>>>,
    /// Environment variable names plans may set.
    #[serde(default)]
    pub allowed_env: Vec<String>,
    /// Pod annotation keys plans may set: a key, or `prefix/*` for every
    /// key with that prefix.
    #[serde(default)]
    pub allowed_pod_annotations: Vec<String>,
    /// Taint keys of [`PROTECTED_TAINTS`] plans may tolerate; `"*"` also
    /// allows a toleration of every taint (and so of the control plane's).
    #[serde(default)]
    pub allowed_tolerations: Vec<String>,
    /// `system-*` priority classes plans may use.
    #[serde(default)]
    pub allowed_priority_classes: Vec<String>,
}

/// Why a `planRules` section is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("planRules.{field}: {reason}")]
pub struct InvalidRules {
    /// The field.
    pub field: &'static str,
    /// What is wrong.
    pub reason: String,
}

impl PlanRules {
    /// Checks the rules themselves: names well-formed, reserved names not
    /// allowed.
    pub fn check(&self) -> Result<(), InvalidRules> {
        let fail = |field, reason: String| Err(InvalidRules { field, reason });
        for tag in self.allowed_tags.iter().flat_map(|m| m.values().flatten()) {
            if !is_tailscale_tag(tag) {
                return fail("allowedTags", format!("{tag:?} is not a tag:[a-z0-9-]+"));
            }
        }
        for name in &self.allowed_env {
            if !is_env_name(name) {
                return fail("allowedEnv", format!("{name:?} is not a variable name"));
            }
            if let Some(prefix) = reserved_env_prefix(name) {
                return fail(
                    "allowedEnv",
                    format!("{name}: names starting with {prefix} can never be set by policies"),
                );
            }
        }
        for key in &self.allowed_pod_annotations {
            let key_part = key.strip_suffix("/*").map_or(key.as_str(), |p| p);
            let valid = if key.ends_with("/*") {
                is_dns_subdomain(key_part)
            } else {
                is_qualified_name(key_part)
            };
            if !valid {
                return fail(
                    "allowedPodAnnotations",
                    format!("{key:?} is neither an annotation key nor prefix/*"),
                );
            }
        }
        for key in &self.allowed_tolerations {
            if key != "*" && !is_qualified_name(key) {
                return fail("allowedTolerations", format!("{key:?} is not a taint key"));
            }
        }
        for class in &self.allowed_priority_classes {
            if !is_dns_subdomain(class) {
                return fail(
                    "allowedPriorityClasses",
                    format!("{class:?} is not a DNS subdomain"),
                );
            }
        }
        Ok(())
    }

    /// Whether `namespace` may use `tag`. `Err` carries the tags it may use.
    pub fn tag_permitted(&self, namespace: &str, tag: &str) -> Result<(), Vec<String>> {
        let Some(allowed) = &self.allowed_tags else {
            return Ok(());
        };
        let permitted: Vec<String> = [namespace, ANY_NAMESPACE]
            .iter()
            .filter_map(|ns| allowed.get(*ns))
            .flatten()
            .cloned()
            .collect();
        if permitted.iter().any(|t| t == tag) {
            Ok(())
        } else {
            Err(permitted)
        }
    }

    /// Whether plans may set the environment variable `name`.
    pub fn env_permitted(&self, name: &str) -> bool {
        reserved_env_prefix(name).is_none() && self.allowed_env.iter().any(|n| n == name)
    }

    /// Whether plans may set the pod annotation `key`.
    pub fn annotation_permitted(&self, key: &str) -> bool {
        let prefix = key.split_once('/').map(|(prefix, _)| prefix);
        self.allowed_pod_annotations.iter().any(|allowed| {
            allowed == key
                || allowed
                    .strip_suffix("/*")
                    .is_some_and(|p| Some(p) == prefix)
        })
    }

    /// Whether plans may tolerate taints with `key` (empty: every taint).
    pub fn toleration_permitted(&self, key: &str) -> bool {
        let listed = |k: &str| self.allowed_tolerations.iter().any(|a| a == k);
        if key.is_empty() {
            listed("*")
        } else {
            !PROTECTED_TAINTS.contains(&key) || listed(key)
        }
    }

    /// Whether plans may use the priority class `class`.
    pub fn priority_class_permitted(&self, class: &str) -> bool {
        !class.starts_with(SYSTEM_PRIORITY_PREFIX)
            || self.allowed_priority_classes.iter().any(|c| c == class)
    }
}

/// The reserved prefix `name` starts with, if any.
pub fn reserved_env_prefix(name: &str) -> Option<&'static str> {
    env::POLICY_RESERVED_PREFIXES
        .iter()
        .find(|prefix| name.starts_with(**prefix))
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(yaml: &str) -> PlanRules {
        let rules: PlanRules = serde_yaml_ng::from_str(yaml).unwrap();
        rules.check().unwrap();
        rules
    }

    #[test]
    fn the_defaults_refuse_what_the_node_or_runtime_acts_on() {
        let r = PlanRules::default();
        assert!(!r.env_permitted("HTTPS_PROXY"));
        assert!(!r.annotation_permitted("owner"));
        assert!(!r.annotation_permitted("io.kubernetes.cri-o.Devices"));
        assert!(!r.annotation_permitted("example.com/owner"));
        assert!(r.toleration_permitted("dedicated"));
        assert!(!r.toleration_permitted(""));
        assert!(!r.toleration_permitted("node-role.kubernetes.io/control-plane"));
        assert!(r.priority_class_permitted("shop-critical"));
        assert!(!r.priority_class_permitted("system-node-critical"));
        assert_eq!(r.tag_permitted("shop", "tag:any"), Ok(()));
    }

    #[test]
    fn listed_names_are_allowed_and_reserved_ones_never() {
        let r = rules(
            "allowedEnv: [HTTPS_PROXY]\n\
             allowedPodAnnotations: [prometheus.io/*, example.com/owner, owner]\n\
             allowedTolerations: ['*', node-role.kubernetes.io/control-plane]\n\
             allowedPriorityClasses: [system-node-critical]\n\
             allowedTags: {shop: ['tag:shop'], '*': ['tag:k8s']}",
        );
        assert!(r.env_permitted("HTTPS_PROXY"));
        assert!(!r.env_permitted("NO_PROXY"));
        assert!(r.annotation_permitted("prometheus.io/scrape"));
        assert!(r.annotation_permitted("example.com/owner"));
        assert!(!r.annotation_permitted("example.com/other"));
        assert!(r.annotation_permitted("owner"));
        assert!(!r.annotation_permitted("sub.prometheus.io/scrape"));
        assert!(r.toleration_permitted(""));
        assert!(r.toleration_permitted("node-role.kubernetes.io/control-plane"));
        assert!(!r.toleration_permitted("node-role.kubernetes.io/master"));
        assert!(r.priority_class_permitted("system-node-critical"));
        assert!(!r.priority_class_permitted("system-cluster-critical"));
        assert_eq!(r.tag_permitted("shop", "tag:shop"), Ok(()));
        assert_eq!(r.tag_permitted("web", "tag:k8s"), Ok(()));
        assert_eq!(
            r.tag_permitted("web", "tag:shop"),
            Err(vec!["tag:k8s".to_string()])
        );

        let reserved: PlanRules = serde_yaml_ng::from_str("allowedEnv: [TS_DEBUG_MTU]").unwrap();
        let err = reserved.check().unwrap_err();
        assert_eq!(err.field, "allowedEnv");
        assert!(err.reason.contains("TS_"), "{err}");
        assert!(!reserved.env_permitted("TS_DEBUG_MTU"));
    }

    #[test]
    fn malformed_rules_are_refused() {
        for yaml in [
            "allowedTags: {shop: [shop]}",
            "allowedEnv: ['1X']",
            "allowedPodAnnotations: ['bad key']",
            "allowedPodAnnotations: ['-x/*']",
            "allowedTolerations: ['bad key']",
            "allowedPriorityClasses: [Bad]",
        ] {
            let r: PlanRules = serde_yaml_ng::from_str(yaml).unwrap();
            assert!(r.check().is_err(), "{yaml}");
        }
        assert!(serde_yaml_ng::from_str::<PlanRules>("allowedEnvs: []").is_err());
    }
}
