//! The plain data a policy works with: the Service, the plan, nodes.
//!
//! These mirror the WIT contract (`wit/policy.wit`) with ordinary Rust types:
//! maps are sorted [`BTreeMap`]s, optional strings are [`Option`]s.

use crate::prelude::*;
use alloc::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Labels, annotations, node selectors: sorted key/value pairs.
pub type Labels = BTreeMap<String, String>;

/// The LoadBalancer Service being placed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    /// Namespace of the Service.
    pub namespace: String,
    /// Name of the Service.
    pub name: String,
    /// The Service's `metadata.uid`.
    pub uid: String,
    /// The Service's labels.
    pub labels: Labels,
    /// The Service's annotations.
    pub annotations: Labels,
    /// The Service's ports.
    pub ports: Vec<ServicePort>,
    /// `spec.clusterIPs`; empty until the API server allocated them.
    pub cluster_ips: Vec<String>,
    /// `spec.ipFamilies`, in the order of `cluster_ips`.
    pub ip_families: Vec<IpFamily>,
    /// `spec.loadBalancerSourceRanges`; empty allows every source.
    pub load_balancer_source_ranges: Vec<String>,
}

impl Service {
    /// A Service `namespace/name` for tests and examples, with one TCP
    /// port 80 and a uid made from its name; add to it with the `with_*`
    /// methods:
    ///
    /// ```
    /// use policy_sdk::Service;
    /// let api = Service::new("team-a", "api").with_annotation("svc-lb.tailscale.iptables.sh/pool", "edge");
    /// assert_eq!(api.annotation("svc-lb.tailscale.iptables.sh/pool"), Some("edge"));
    /// ```
    pub fn new(namespace: &str, name: &str) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            uid: format!("uid-{namespace}-{name}"),
            ports: vec![ServicePort {
                name: "http".into(),
                protocol: Protocol::Tcp,
                port: 80,
            }],
            ..Self::default()
        }
    }

    /// The Service with annotation `key` set to `value`.
    pub fn with_annotation(mut self, key: &str, value: &str) -> Self {
        self.annotations.insert(key.into(), value.into());
        self
    }

    /// The Service with label `key` set to `value`.
    pub fn with_label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// The Service with its ports replaced by `ports`.
    pub fn with_ports(mut self, ports: Vec<ServicePort>) -> Self {
        self.ports = ports;
        self
    }

    /// The annotation `key`, if set.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.get(key).map(String::as_str)
    }

    /// The label `key`, if set.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }
}

/// One port of a Service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServicePort {
    /// The port's name; empty for a single unnamed port.
    pub name: String,
    /// Transport protocol.
    pub protocol: Protocol,
    /// The port number.
    pub port: u16,
}

/// Transport protocol of a Service port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Protocol {
    /// TCP.
    #[serde(rename = "TCP")]
    Tcp,
    /// UDP.
    #[serde(rename = "UDP")]
    Udp,
    /// SCTP.
    #[serde(rename = "SCTP")]
    Sctp,
}

/// IP family of a cluster IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IpFamily {
    /// IPv4.
    IPv4,
    /// IPv6.
    IPv6,
}

/// What the policy chain decides for one Service.
///
/// Each policy receives the plan built by the policies before it and returns
/// the next one; the controller renders the final plan into the proxy's
/// DaemonSet.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// Labels a node must carry to run a proxy pod.
    pub node_selector: Labels,
    /// The device name on the tailnet: a DNS label of at most 63 characters.
    pub hostname: String,
    /// Tailscale tags to advertise, each `tag:<name>`.
    pub tags: Vec<String>,
    /// Extra labels on the proxy pods.
    pub pod_labels: Labels,
    /// Extra annotations on the proxy pods.
    pub pod_annotations: Labels,
    /// Tolerations of the proxy pods.
    pub tolerations: Vec<Toleration>,
    /// Resources of the proxy container.
    pub resources: Resources,
    /// `priorityClassName` of the proxy pods.
    pub priority_class_name: Option<String>,
    /// Extra environment variables of the proxy container.
    pub env: Labels,
}

impl Plan {
    /// Adds `tag` unless the plan has it already; whether it was added.
    ///
    /// ```
    /// let mut plan = policy_sdk::Plan::default();
    /// assert!(plan.add_tag("tag:web"));
    /// assert!(!plan.add_tag("tag:web"));
    /// assert_eq!(plan.tags, ["tag:web"]);
    /// ```
    pub fn add_tag(&mut self, tag: &str) -> bool {
        if self.tags.iter().any(|t| t == tag) {
            return false;
        }
        self.tags.push(tag.into());
        true
    }

    /// Adds `toleration` unless the plan has an equal one already; whether
    /// it was added.
    pub fn add_toleration(&mut self, toleration: Toleration) -> bool {
        if self.tolerations.contains(&toleration) {
            return false;
        }
        self.tolerations.push(toleration);
        true
    }
}

/// A pod toleration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Toleration {
    /// Taint key to match; empty with [`TolerationOperator::Exists`] matches all taints.
    #[serde(default)]
    pub key: String,
    /// How to match.
    #[serde(default)]
    pub operator: TolerationOperator,
    /// Value to match (only with [`TolerationOperator::Equal`]).
    #[serde(default)]
    pub value: String,
    /// Effect to match (`NoSchedule`, `PreferNoSchedule`, `NoExecute`); empty matches all.
    #[serde(default)]
    pub effect: String,
    /// For `NoExecute`: seconds the pod stays bound after the taint appears.
    #[serde(default)]
    pub toleration_seconds: Option<i64>,
}

/// How a toleration matches a taint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum TolerationOperator {
    /// Key and value must be equal.
    #[default]
    Equal,
    /// The key must exist.
    Exists,
}

/// Requests and limits of the proxy container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    /// Requests by resource name, e.g. `cpu` → `10m`.
    #[serde(default)]
    pub requests: Labels,
    /// Limits by resource name, e.g. `memory` → `64Mi`.
    #[serde(default)]
    pub limits: Labels,
}

/// A cluster node, as seen by policies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// The node's name.
    pub name: String,
    /// The node's labels.
    pub labels: Labels,
    /// The node's taints.
    pub taints: Vec<Taint>,
    /// Whether the node's `Ready` condition is `True`.
    pub ready: bool,
}

/// A taint on a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Taint {
    /// The taint key.
    pub key: String,
    /// The taint value; may be empty.
    pub value: String,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    pub effect: String,
}

/// A policy's refusal to place a Service, with a reason for its owner.
///
/// Two kinds, with different effects:
/// - [`Rejection::new`]: the input is invalid (a malformed annotation, say).
///   The Service keeps the proxy it had: a typo must not take it offline.
/// - [`Rejection::do_not_serve`]: this Service must not be exposed. Its
///   proxy is removed (the device logs out of the tailnet) until a later
///   evaluation accepts it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    reason: String,
    do_not_serve: bool,
}

impl Rejection {
    /// The input is invalid: the Service keeps its last good proxy.
    pub fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            do_not_serve: false,
        }
    }

    /// Do not serve this Service: its proxy is removed.
    pub fn do_not_serve(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            do_not_serve: true,
        }
    }

    /// The reason given.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// Whether the Service must not be served (rather than its input being
    /// invalid).
    pub fn is_do_not_serve(&self) -> bool {
        self.do_not_serve
    }
}

impl core::fmt::Display for Rejection {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.reason)
    }
}

impl core::error::Error for Rejection {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_toleration_or_tag_already_in_the_plan_is_not_added_again() {
        let mut plan = Plan::default();
        let edge = Toleration {
            key: "dedicated".into(),
            operator: TolerationOperator::Equal,
            value: "edge".into(),
            effect: "NoSchedule".into(),
            toleration_seconds: None,
        };
        assert!(plan.add_toleration(edge.clone()));
        assert!(!plan.add_toleration(edge.clone()));
        let other = Toleration {
            value: "core".into(),
            ..edge
        };
        assert!(plan.add_toleration(other));
        assert_eq!(plan.tolerations.len(), 2);
        assert!(plan.add_tag("tag:a") && plan.add_tag("tag:b") && !plan.add_tag("tag:a"));
        assert_eq!(plan.tags, ["tag:a", "tag:b"]);
    }

    #[test]
    fn a_test_service_is_built_from_its_name_with_annotations_and_labels() {
        let service = Service::new("team-a", "api")
            .with_annotation("a", "1")
            .with_label("l", "2");
        assert_eq!(
            (service.namespace.as_str(), service.name.as_str()),
            ("team-a", "api")
        );
        assert_eq!(service.annotation("a"), Some("1"));
        assert_eq!(service.label("l"), Some("2"));
        assert_eq!(service.ports[0].port, 80);
        assert!(!service.uid.is_empty());
    }
}
