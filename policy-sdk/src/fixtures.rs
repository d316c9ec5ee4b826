//! Test inputs from ordinary Kubernetes YAML, as `kubectl get -o yaml` prints
//! it or as it stands in a manifest file.

use crate::prelude::*;
use serde::Deserialize;

use crate::manifest::{NodeManifest, ServiceManifest};
use crate::model::{Node, Service};

/// YAML that does not describe the expected objects.
#[derive(Debug)]
pub struct FixtureError(String);

impl core::fmt::Display for FixtureError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

impl core::error::Error for FixtureError {}

/// The policy input for a Service manifest.
pub fn service_from_yaml(yaml: &str) -> Result<Service, FixtureError> {
    let manifest: ServiceManifest = serde_yaml_ng::from_str(yaml)
        .map_err(|e| FixtureError(format!("not a Service manifest: {e}")))?;
    Ok(manifest.to_service())
}

/// Nodes from YAML: one Node, several documents separated by `---`, or a
/// `List` (as `kubectl get nodes -o yaml` prints).
pub fn nodes_from_yaml(yaml: &str) -> Result<Vec<Node>, FixtureError> {
    #[derive(Deserialize)]
    struct Doc {
        #[serde(default)]
        kind: Option<String>,
        #[serde(default)]
        items: Vec<NodeManifest>,
        #[serde(flatten)]
        node: serde_yaml_ng::Value,
    }
    let mut nodes = Vec::new();
    for document in serde_yaml_ng::Deserializer::from_str(yaml) {
        let value = serde_yaml_ng::Value::deserialize(document)
            .map_err(|e| FixtureError(format!("invalid YAML: {e}")))?;
        if value.is_null() {
            continue;
        }
        let doc: Doc = serde_yaml_ng::from_value(value)
            .map_err(|e| FixtureError(format!("not a Node manifest: {e}")))?;
        match doc.kind.as_deref() {
            Some("List" | "NodeList") => nodes.extend(doc.items.iter().map(NodeManifest::to_node)),
            Some("Node") | None => {
                let manifest: NodeManifest = serde_yaml_ng::from_value(doc.node)
                    .map_err(|e| FixtureError(format!("not a Node manifest: {e}")))?;
                nodes.push(manifest.to_node());
            }
            Some(other) => {
                return Err(FixtureError(format!(
                    "expected Node or List, found {other}"
                )));
            }
        }
    }
    Ok(nodes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{IpFamily, Protocol};

    #[test]
    fn service_manifest_becomes_policy_input() {
        let service = service_from_yaml(
            r#"
apiVersion: v1
kind: Service
metadata:
  name: web
  annotations: {svc-lb.tailscale.iptables.sh/hostname: shop}
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.10
  ipFamilies: [IPv4]
  ports:
    - {name: http, port: 80}
    - {name: dns, port: 53, protocol: UDP}
"#,
        )
        .unwrap();
        assert_eq!(service.namespace, "default");
        assert_eq!(service.name, "web");
        assert_eq!(service.cluster_ips, vec!["10.96.0.10"]);
        assert_eq!(service.ip_families, vec![IpFamily::IPv4]);
        assert_eq!(service.ports[0].protocol, Protocol::Tcp);
        assert_eq!(service.ports[1].protocol, Protocol::Udp);
        assert_eq!(
            service.annotation("svc-lb.tailscale.iptables.sh/hostname"),
            Some("shop")
        );
    }

    #[test]
    fn nodes_come_from_lists_and_multi_document_yaml() {
        let yaml = r#"
apiVersion: v1
kind: List
items:
  - metadata: {name: a, labels: {zone: x}}
    status: {conditions: [{type: Ready, status: "True"}]}
---
apiVersion: v1
kind: Node
metadata: {name: b}
spec:
  taints: [{key: dedicated, value: edge, effect: NoSchedule}]
"#;
        let nodes = nodes_from_yaml(yaml).unwrap();
        assert_eq!(nodes.len(), 2);
        assert!(nodes[0].ready);
        assert_eq!(nodes[0].labels["zone"], "x");
        assert!(!nodes[1].ready);
        assert_eq!(nodes[1].taints[0].value, "edge");
        assert!(nodes_from_yaml("kind: Service\nmetadata: {name: x}").is_err());
    }
}
