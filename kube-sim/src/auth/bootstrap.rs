//! The RBAC objects a real server creates at start and every client relies
//! on (`plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go` and its
//! `testdata/cluster-roles.yaml`, `cluster-role-bindings.yaml`):
//!
//! - `cluster-admin` (everything) bound to `system:masters`;
//! - `system:discovery` (discovery, version, health and OpenAPI paths) and
//!   `system:basic-user` (self reviews) bound to `system:authenticated`;
//! - `system:public-info-viewer` (health and version) bound to
//!   `system:authenticated` and `system:unauthenticated`, which is all an
//!   anonymous request may reach.
//!
//! The aggregated `admin`/`edit`/`view` roles and the controllers' roles
//! are not seeded: nothing here uses them.

use serde_json::{Value, json};

use crate::auth::tokens::{AUTHENTICATED_GROUP, MASTERS_GROUP, UNAUTHENTICATED_GROUP};

fn bootstrap_metadata(name: &str) -> Value {
    json!({
        "name": name,
        "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
        "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
    })
}

fn role(name: &str, rules: Value) -> Value {
    json!({"metadata": bootstrap_metadata(name), "rules": rules})
}

fn binding(name: &str, groups: &[&str]) -> Value {
    let subjects: Vec<Value> = groups
        .iter()
        .map(|g| json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g}))
        .collect();
    json!({
        "metadata": bootstrap_metadata(name),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": subjects,
    })
}

/// The bootstrap ClusterRoles.
pub(crate) fn cluster_roles() -> Vec<Value> {
    vec![
        role(
            "cluster-admin",
            json!([
                {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                {"nonResourceURLs": ["*"], "verbs": ["*"]},
            ]),
        ),
        role(
            "system:discovery",
            json!([{"nonResourceURLs": [
                "/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi",
                "/openapi/*", "/readyz", "/version", "/version/"], "verbs": ["get"]}]),
        ),
        role(
            "system:basic-user",
            json!([
                {"apiGroups": ["authorization.k8s.io"],
                 "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                 "verbs": ["create"]},
                {"apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"],
                 "verbs": ["create"]},
            ]),
        ),
        role(
            "system:public-info-viewer",
            json!([{"nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"],
                    "verbs": ["get"]}]),
        ),
    ]
}

/// The bootstrap ClusterRoleBindings.
pub(crate) fn cluster_role_bindings() -> Vec<Value> {
    vec![
        binding("cluster-admin", &[MASTERS_GROUP]),
        binding("system:discovery", &[AUTHENTICATED_GROUP]),
        binding("system:basic-user", &[AUTHENTICATED_GROUP]),
        binding(
            "system:public-info-viewer",
            &[AUTHENTICATED_GROUP, UNAUTHENTICATED_GROUP],
        ),
    ]
}
