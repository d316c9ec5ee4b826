//! Discovery documents: `/version`, `/api`, `/apis` and the resource lists
//! of each group version, built from the registry.

use serde_json::{Value, json};

use crate::registry::{RESOURCES, REVIEWS, ResourceType};

/// The version the server reports: a release, so that a chart's
/// `kubeVersion` constraint accepts it (a pre-release would not match
/// `>=1.28.0`); build metadata names the server.
pub const GIT_VERSION: &str = "v1.33.0+kube-sim";

const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

fn short_names(rt: &ResourceType) -> Vec<&'static str> {
    match (rt.group, rt.plural) {
        ("", "services") => vec!["svc"],
        ("", "namespaces") => vec!["ns"],
        ("", "nodes") => vec!["no"],
        ("", "configmaps") => vec!["cm"],
        ("", "serviceaccounts") => vec!["sa"],
        ("", "pods") => vec!["po"],
        ("", "events") => vec!["ev"],
        ("apps", "daemonsets") => vec!["ds"],
        ("apps", "deployments") => vec!["deploy"],
        ("policy", "poddisruptionbudgets") => vec!["pdb"],
        _ => vec![],
    }
}

/// `/version`.
pub fn version() -> Value {
    json!({
        "major": "1", "minor": "33", "gitVersion": GIT_VERSION,
        "platform": "linux/amd64", "goVersion": "go1.24", "compiler": "gc",
    })
}

/// `/api`.
pub fn core_versions() -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})
}

/// `/apis`.
pub fn groups() -> Value {
    let mut names: Vec<&str> = RESOURCES
        .iter()
        .map(|r| r.group)
        .chain(REVIEWS.iter().map(|r| r.0))
        .filter(|g| !g.is_empty())
        .collect();
    names.sort();
    names.dedup();
    let groups: Vec<Value> = names
        .iter()
        .map(|group| {
            let version = json!({"groupVersion": format!("{group}/v1"), "version": "v1"});
            json!({"name": group, "versions": [version.clone()], "preferredVersion": version})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// The resource list of `group/version`, if served.
pub fn resources(group: &str, version: &str) -> Option<Value> {
    let mut resources = Vec::new();
    for rt in RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        resources.push(json!({
            "name": rt.plural,
            "singularName": rt.kind.to_lowercase(),
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": VERBS,
            "shortNames": short_names(rt),
        }));
        if rt.status {
            resources.push(json!({
                "name": format!("{}/status", rt.plural),
                "singularName": "",
                "namespaced": rt.namespaced,
                "kind": rt.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
    }
    if group.is_empty() && version == "v1" {
        resources.push(json!({
            "name": "serviceaccounts/token", "singularName": "", "namespaced": true,
            "group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest",
            "verbs": ["create"],
        }));
    }
    for (review_group, plural, kind, namespaced) in REVIEWS {
        if *review_group == group && version == "v1" {
            resources.push(json!({
                "name": plural, "singularName": kind.to_lowercase(), "namespaced": namespaced,
                "kind": kind, "verbs": ["create"],
            }));
        }
    }
    if resources.is_empty() {
        return None;
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
}
