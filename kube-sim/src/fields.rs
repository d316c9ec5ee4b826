//! Which fields of an object its type does not have, for server-side field
//! validation. The schema is the real one: the object is decoded into its
//! `k8s-openapi` type (generated from the Kubernetes OpenAPI document) and
//! every field the decoder skips is reported (`serde_ignored`), with the
//! path the real server's strict decoder names (`spec.ports[0].foo`).

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::registry::ResourceType;

fn skipped<T: DeserializeOwned>(object: &Value) -> Vec<String> {
    let mut unknown = Vec::new();
    let _: Result<T, _> = serde_ignored::deserialize(object, |path| {
        unknown.push(display(&path));
    });
    unknown
}

/// `spec.ports[0].foo` from serde_ignored's `spec.?.ports.?.0.foo` (it
/// marks each optional field it passes through with `?`).
fn display(path: &serde_ignored::Path<'_>) -> String {
    let mut out = String::new();
    for part in path.to_string().split('.').filter(|p| *p != "?") {
        if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{part}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(part);
        }
    }
    out
}

/// The fields of `object` that its type `rt` does not define.
pub(crate) fn unknown_fields(rt: &ResourceType, object: &Value) -> Vec<String> {
    use k8s_openapi::api::{apps, batch, coordination, core, events, policy, rbac};
    match (rt.group, rt.plural) {
        ("", "namespaces") => skipped::<core::v1::Namespace>(object),
        ("", "nodes") => skipped::<core::v1::Node>(object),
        ("", "services") => skipped::<core::v1::Service>(object),
        ("", "secrets") => skipped::<core::v1::Secret>(object),
        ("", "configmaps") => skipped::<core::v1::ConfigMap>(object),
        ("", "serviceaccounts") => skipped::<core::v1::ServiceAccount>(object),
        ("", "pods") => skipped::<core::v1::Pod>(object),
        ("", "events") => skipped::<core::v1::Event>(object),
        ("events.k8s.io", "events") => skipped::<events::v1::Event>(object),
        ("apps", "daemonsets") => skipped::<apps::v1::DaemonSet>(object),
        ("apps", "deployments") => skipped::<apps::v1::Deployment>(object),
        ("batch", "jobs") => skipped::<batch::v1::Job>(object),
        ("policy", "poddisruptionbudgets") => skipped::<policy::v1::PodDisruptionBudget>(object),
        ("coordination.k8s.io", "leases") => skipped::<coordination::v1::Lease>(object),
        (_, "roles") => skipped::<rbac::v1::Role>(object),
        (_, "rolebindings") => skipped::<rbac::v1::RoleBinding>(object),
        (_, "clusterroles") => skipped::<rbac::v1::ClusterRole>(object),
        (_, "clusterrolebindings") => skipped::<rbac::v1::ClusterRoleBinding>(object),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn unknown_fields_are_named_by_their_path() {
        let rt = crate::registry::served("", "services");
        let service = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "labelz": {}},
            "spec": {"ports": [{"port": 80, "prot": "TCP"}], "type": "ClusterIP"},
        });
        assert_eq!(
            unknown_fields(rt, &service),
            vec![
                "metadata.labelz".to_string(),
                "spec.ports[0].prot".to_string()
            ]
        );
        let good = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                          "spec": {"ports": [{"port": 80}]}, "status": {}});
        assert!(unknown_fields(rt, &good).is_empty());
    }
}
