//! `/openapi/v3`: the discovery of the OpenAPI v3 documents and one
//! document per group version, built from the registry.
//!
//! What clients need of them (read in client-go and kubectl):
//! - the root lists `api/v1`, `apis/<g>/<v>` with a `serverRelativeURL`
//!   carrying a `hash` (`k8s.io/client-go/openapi/client.go`);
//! - kubectl's and Helm's validator (`cli-runtime/pkg/resource/query_param_verifier_v3.go`)
//!   looks in a group version's document for the PATCH operation whose
//!   `x-kubernetes-group-version-kind` is the object's kind and an inline
//!   `fieldValidation` query parameter on it: then it leaves validation to
//!   the server (`fieldValidation=Strict`, checked against the real types
//!   in `fields`) instead of downloading `/openapi/v2`;
//! - the component schemas name each kind but carry no
//!   `x-kubernetes-group-version-kind`, so `kubectl apply` computes its
//!   strategic merge patches from its built-in types, as it does for any
//!   schema it cannot use (`kubectl/pkg/cmd/apply/patcher.go`).
//!
//! `/openapi/v2` (protobuf) is not served: kubectl and Helm only fall back
//! to it when the v3 documents are missing.

use std::hash::{Hash, Hasher};

use serde_json::{Value, json};

use crate::registry::{RESOURCES, ResourceType};

/// `api/v1` or `apis/<group>/<version>`.
fn group_version_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// The name of a kind's schema (`io.k8s.api.core.v1.Service`), in both
/// documents.
pub(crate) fn schema_name(rt: &ResourceType) -> String {
    let group = if rt.group.is_empty() {
        "core"
    } else {
        rt.group
    };
    format!("io.k8s.api.{group}.{}.{}", rt.version, rt.kind)
}

/// The path of a kind's collection (`/api/v1/namespaces/{namespace}/services`).
pub(crate) fn collection_path(rt: &ResourceType) -> String {
    let prefix = format!("/{}", group_version_path(rt.group, rt.version));
    if rt.namespaced {
        format!("{prefix}/namespaces/{{namespace}}/{}", rt.plural)
    } else {
        format!("{prefix}/{}", rt.plural)
    }
}

/// The patch media types the server accepts.
pub(crate) const PATCH_TYPES: [&str; 4] = [
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];

pub(crate) fn gvk(rt: &ResourceType) -> Value {
    json!({"group": rt.group, "version": rt.version, "kind": rt.kind})
}

fn query(name: &str) -> Value {
    json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}})
}

fn write_operation(rt: &ResourceType, action: &str, content_types: &[&str]) -> Value {
    let schema = json!({"$ref": format!("#/components/schemas/{}", schema_name(rt))});
    let content: serde_json::Map<String, Value> = content_types
        .iter()
        .map(|c| (c.to_string(), json!({"schema": schema})))
        .collect();
    json!({
        "operationId": format!("{action}{}", rt.kind),
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk(rt),
        "parameters": [query("dryRun"), query("fieldManager"), query("fieldValidation"), query("force")],
        "requestBody": {"content": content, "required": true},
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": schema}}}},
    })
}

fn paths_of(rt: &ResourceType) -> Vec<(String, Value)> {
    let collection = collection_path(rt);
    let patch_types = PATCH_TYPES;
    let mut item = json!({
        "patch": write_operation(rt, "patch", &patch_types),
        "put": write_operation(rt, "put", &["application/json"]),
    });
    item["get"] = json!({"x-kubernetes-action": "get", "x-kubernetes-group-version-kind": gvk(rt)});
    let mut paths = vec![
        (
            collection.clone(),
            json!({"post": write_operation(rt, "post", &["application/json"])}),
        ),
        (format!("{collection}/{{name}}"), item),
    ];
    if rt.status {
        paths.push((
            format!("{collection}/{{name}}/status"),
            json!({"patch": write_operation(rt, "patch", &patch_types)}),
        ));
    }
    paths
}

/// The document of `group/version`, if served.
pub fn document(group: &str, version: &str) -> Option<Value> {
    let types: Vec<&ResourceType> = RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .collect();
    if types.is_empty() {
        return None;
    }
    let mut paths = serde_json::Map::new();
    let mut schemas = serde_json::Map::new();
    for rt in types {
        paths.extend(paths_of(rt));
        schemas.insert(
            schema_name(rt),
            json!({
                "type": "object",
                "description": format!("{} ({}); the server validates fields against the real type.", rt.kind, rt.api_version()),
                "properties": {
                    "apiVersion": {"type": "string"},
                    "kind": {"type": "string"},
                    "metadata": {"type": "object"},
                },
            }),
        );
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": crate::discovery::GIT_VERSION},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

fn hash_of(value: &Value) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    value.to_string().hash(&mut hasher);
    format!("{:016X}", hasher.finish())
}

/// `/openapi/v3`.
pub fn root() -> Value {
    let mut group_versions: Vec<(&str, &str)> =
        RESOURCES.iter().map(|r| (r.group, r.version)).collect();
    group_versions.sort();
    group_versions.dedup();
    let paths: serde_json::Map<String, Value> = group_versions
        .into_iter()
        .filter_map(|(group, version)| {
            let path = group_version_path(group, version);
            let document = document(group, version)?;
            let url = format!("/openapi/v3/{path}?hash={}", hash_of(&document));
            Some((path, json!({"serverRelativeURL": url})))
        })
        .collect();
    json!({"paths": paths})
}

/// The document at `/openapi/v3/<rest>`.
pub fn at(rest: &str) -> Option<Value> {
    let parts: Vec<&str> = rest.trim_matches('/').split('/').collect();
    match parts.as_slice() {
        ["api", version] => document("", version),
        ["apis", group, version] => document(group, version),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_patch_operation_with_field_validation() {
        for rt in RESOURCES {
            let doc = document(rt.group, rt.version).unwrap();
            let found = doc["paths"].as_object().unwrap().values().any(|item| {
                item["patch"]["x-kubernetes-group-version-kind"] == gvk(rt)
                    && item["patch"]["parameters"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|p| p["name"] == "fieldValidation" && p["in"] == "query")
            });
            assert!(found, "{}", rt.kind);
        }
        let root = root();
        let url = root["paths"]["apis/apps/v1"]["serverRelativeURL"]
            .as_str()
            .unwrap();
        assert!(url.starts_with("/openapi/v3/apis/apps/v1?hash="), "{url}");
    }
}
