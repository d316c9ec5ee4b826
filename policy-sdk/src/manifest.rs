//! Reading the policy inputs from Kubernetes Service and Node objects in
//! their API form (JSON or YAML, as `kubectl get -o yaml` prints them).
//!
//! Only the fields a policy sees are read; everything else is ignored. The
//! controller reads live objects through the same code, so a fixture and a
//! real object give the same input.

use crate::prelude::*;
use alloc::collections::BTreeMap;

use serde::Deserialize;

use crate::model::{IpFamily, Labels, Node, Protocol, Service, ServicePort, Taint};

/// A Kubernetes Service in API form (the fields policies see).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceManifest {
    /// `metadata`.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// `spec`.
    #[serde(default)]
    pub spec: ServiceSpec,
}

/// The parts of `metadata` policies see.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ObjectMeta {
    /// `metadata.name`.
    #[serde(default)]
    pub name: String,
    /// `metadata.namespace`; `default` when absent.
    #[serde(default)]
    pub namespace: Option<String>,
    /// `metadata.uid`.
    #[serde(default)]
    pub uid: String,
    /// `metadata.labels`.
    #[serde(default)]
    pub labels: Option<Labels>,
    /// `metadata.annotations`.
    #[serde(default)]
    pub annotations: Option<Labels>,
}

/// The parts of a Service's `spec` policies see.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    /// `spec.type`.
    #[serde(default, rename = "type")]
    pub type_: Option<String>,
    /// `spec.loadBalancerClass`.
    #[serde(default)]
    pub load_balancer_class: Option<String>,
    /// `spec.ports`.
    #[serde(default)]
    pub ports: Option<Vec<PortManifest>>,
    /// `spec.clusterIP`.
    #[serde(default, rename = "clusterIP")]
    pub cluster_ip: Option<String>,
    /// `spec.clusterIPs`.
    #[serde(default, rename = "clusterIPs")]
    pub cluster_ips: Option<Vec<String>>,
    /// `spec.ipFamilies`.
    #[serde(default)]
    pub ip_families: Option<Vec<IpFamily>>,
    /// `spec.loadBalancerSourceRanges`.
    #[serde(default)]
    pub load_balancer_source_ranges: Option<Vec<String>>,
}

/// One entry of `spec.ports`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PortManifest {
    /// `name`.
    #[serde(default)]
    pub name: Option<String>,
    /// `protocol`; TCP when absent.
    #[serde(default)]
    pub protocol: Option<Protocol>,
    /// `port`.
    pub port: u16,
}

/// A Kubernetes Node in API form (the fields policies see).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NodeManifest {
    /// `metadata`.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// `spec`.
    #[serde(default)]
    pub spec: NodeSpec,
    /// `status`.
    #[serde(default)]
    pub status: NodeStatus,
}

/// The parts of a Node's `spec` policies see.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NodeSpec {
    /// `spec.taints`.
    #[serde(default)]
    pub taints: Option<Vec<TaintManifest>>,
}

/// One entry of `spec.taints`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TaintManifest {
    /// `key`.
    pub key: String,
    /// `value`.
    #[serde(default)]
    pub value: Option<String>,
    /// `effect`.
    #[serde(default)]
    pub effect: String,
}

/// The parts of a Node's `status` policies see.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NodeStatus {
    /// `status.conditions`.
    #[serde(default)]
    pub conditions: Option<Vec<ConditionManifest>>,
}

/// One entry of `status.conditions`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ConditionManifest {
    /// `type`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `status`: `True`, `False` or `Unknown`.
    pub status: String,
}

impl ServiceManifest {
    /// The policy input for this Service.
    pub fn to_service(&self) -> Service {
        let spec = &self.spec;
        let cluster_ips = match (&spec.cluster_ips, &spec.cluster_ip) {
            (Some(ips), _) if !ips.is_empty() => ips.clone(),
            (_, Some(ip)) => vec![ip.clone()],
            _ => Vec::new(),
        };
        Service {
            namespace: self.metadata.namespace_or_default(),
            name: self.metadata.name.clone(),
            uid: self.metadata.uid.clone(),
            labels: self.metadata.labels.clone().unwrap_or_default(),
            annotations: self.metadata.annotations.clone().unwrap_or_default(),
            ports: spec
                .ports
                .iter()
                .flatten()
                .map(|p| ServicePort {
                    name: p.name.clone().unwrap_or_default(),
                    protocol: p.protocol.unwrap_or(Protocol::Tcp),
                    port: p.port,
                })
                .collect(),
            // A headless Service has the literal clusterIP "None": nothing to forward to.
            cluster_ips: cluster_ips.into_iter().filter(|ip| ip != "None").collect(),
            ip_families: spec.ip_families.clone().unwrap_or_default(),
            load_balancer_source_ranges: spec
                .load_balancer_source_ranges
                .clone()
                .unwrap_or_default(),
        }
    }
}

impl NodeManifest {
    /// The policy's view of this Node.
    pub fn to_node(&self) -> Node {
        Node {
            name: self.metadata.name.clone(),
            labels: self.metadata.labels.clone().unwrap_or_default(),
            taints: self
                .spec
                .taints
                .iter()
                .flatten()
                .map(|t| Taint {
                    key: t.key.clone(),
                    value: t.value.clone().unwrap_or_default(),
                    effect: t.effect.clone(),
                })
                .collect(),
            ready: self
                .status
                .conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == "Ready" && c.status == "True"),
        }
    }
}

impl ObjectMeta {
    fn namespace_or_default(&self) -> String {
        self.namespace
            .clone()
            .filter(|ns| !ns.is_empty())
            .unwrap_or_else(|| "default".to_string())
    }
}

/// Builds a label map from pairs, for tests and examples.
pub fn labels<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Labels {
    pairs
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect::<BTreeMap<_, _>>()
}
