//! The resource types the server serves: one line each. Storage is generic
//! JSON, so a new resource is a new line here.

/// A served resource type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceType {
    /// API group; empty for the core group.
    pub group: &'static str,
    /// API version.
    pub version: &'static str,
    /// Plural name used in paths.
    pub plural: &'static str,
    /// Kind.
    pub kind: &'static str,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// Whether the type has a `/status` subresource.
    pub status: bool,
}

impl ResourceType {
    /// `v1` or `group/version`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The kind of a list of these objects.
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }
}

const fn rt(
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
    status: bool,
) -> ResourceType {
    ResourceType {
        group,
        version,
        plural,
        kind,
        namespaced,
        status,
    }
}

/// Every served resource type.
pub static RESOURCES: &[ResourceType] = &[
    rt("", "v1", "namespaces", "Namespace", false, true),
    rt("", "v1", "nodes", "Node", false, true),
    rt("", "v1", "services", "Service", true, true),
    rt("", "v1", "secrets", "Secret", true, false),
    rt("", "v1", "configmaps", "ConfigMap", true, false),
    rt("", "v1", "serviceaccounts", "ServiceAccount", true, false),
    rt("", "v1", "pods", "Pod", true, true),
    rt("", "v1", "events", "Event", true, false),
    rt("events.k8s.io", "v1", "events", "Event", true, false),
    rt("apps", "v1", "daemonsets", "DaemonSet", true, true),
    rt("apps", "v1", "deployments", "Deployment", true, true),
    rt("batch", "v1", "jobs", "Job", true, true),
    rt(
        "policy",
        "v1",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        true,
        true,
    ),
    rt("coordination.k8s.io", "v1", "leases", "Lease", true, false),
    rt(RBAC, "v1", "roles", "Role", true, false),
    rt(RBAC, "v1", "rolebindings", "RoleBinding", true, false),
    rt(RBAC, "v1", "clusterroles", "ClusterRole", false, false),
    rt(
        RBAC,
        "v1",
        "clusterrolebindings",
        "ClusterRoleBinding",
        false,
        false,
    ),
];

/// The RBAC API group.
pub const RBAC: &str = "rbac.authorization.k8s.io";

/// Types that are only ever created, never stored: reviews the server
/// answers at once (`auth::reviews`). `(group, plural, kind, namespaced)`.
pub static REVIEWS: &[(&str, &str, &str, bool)] = &[
    (
        "authorization.k8s.io",
        "selfsubjectaccessreviews",
        "SelfSubjectAccessReview",
        false,
    ),
    (
        "authorization.k8s.io",
        "subjectaccessreviews",
        "SubjectAccessReview",
        false,
    ),
    (
        "authorization.k8s.io",
        "localsubjectaccessreviews",
        "LocalSubjectAccessReview",
        true,
    ),
    (
        "authentication.k8s.io",
        "selfsubjectreviews",
        "SelfSubjectReview",
        false,
    ),
];

/// The type served at `group/version/plural`.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceType> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// A type the server always serves, for its own lookups.
pub(crate) fn served(group: &str, plural: &str) -> &'static ResourceType {
    find(group, "v1", plural).expect("a type of the registry")
}
