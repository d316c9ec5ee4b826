//! The `kube-root-ca.crt` ConfigMap in every namespace, as the real
//! root-ca-cert-publisher controller keeps it
//! (`pkg/controller/certificates/rootcacertpublisher/publisher.go`): key
//! `ca.crt` with the cluster CA, the `kubernetes.io/description`
//! annotation; created with each namespace, re-created when deleted,
//! restored when changed; never in a terminating namespace. Pods'
//! projected service-account volumes read their `ca.crt` from it.

use serde_json::{Value, json};

use crate::registry::served;
use crate::store::Store;

/// The ConfigMap's name.
pub const NAME: &str = "kube-root-ca.crt";
const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver \
    when using internal endpoints such as the internal service IP or kubernetes.default.svc. No \
    other usage is guaranteed across distributions of Kubernetes clusters.";

fn up_to_date(object: &Value, ca_pem: &str) -> bool {
    object["data"] == json!({"ca.crt": ca_pem})
        && object["metadata"]["annotations"]["kubernetes.io/description"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
}

/// Makes every active namespace hold the ConfigMap with `ca_pem`.
pub(crate) fn publish(store: &Store, ca_pem: &str) {
    let namespaces = served("", "namespaces");
    let configmaps = served("", "configmaps");
    let stale: Vec<(String, Option<Value>)> = store.read(|view| {
        view.in_namespace(namespaces, "")
            .filter(|ns| ns["metadata"].get("deletionTimestamp").is_none())
            .filter_map(|ns| {
                let name = ns["metadata"]["name"].as_str()?.to_string();
                match view.get(configmaps, &name, NAME) {
                    Some(cm) if up_to_date(cm, ca_pem) => None,
                    Some(cm) => Some((name, Some(cm.clone()))),
                    None => Some((name, None)),
                }
            })
            .collect()
    });
    for (namespace, current) in stale {
        let result = match current {
            None => store.create(
                configmaps,
                &namespace,
                json!({"metadata": {"name": NAME,
                                    "annotations": {"kubernetes.io/description": DESCRIPTION}},
                       "data": {"ca.crt": ca_pem}}),
            ),
            Some(mut cm) => {
                cm["data"] = json!({"ca.crt": ca_pem});
                if !cm["metadata"]["annotations"].is_object() {
                    cm["metadata"]["annotations"] = json!({});
                }
                cm["metadata"]["annotations"]["kubernetes.io/description"] = json!(DESCRIPTION);
                store.replace(configmaps, &namespace, NAME, cm, false)
            }
        };
        // A namespace that went away meanwhile needs no ConfigMap.
        let _ = result;
    }
}
