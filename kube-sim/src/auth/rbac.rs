//! The RBAC authorizer over the stored Roles, ClusterRoles and their
//! bindings, as `plugin/pkg/auth/authorizer/rbac/rbac.go` and
//! `pkg/registry/rbac/validation/rule.go` (`VisitRulesFor`) decide:
//!
//! - `system:masters` may do everything (the real server's cluster-admin
//!   binding, and its authorizer short-cut);
//! - every ClusterRoleBinding applies; RoleBindings apply in their own
//!   namespace only, and only to requests with that namespace (bindings
//!   are found through the store's `binding_index` by subject);
//! - subjects: `User` by name, `Group` by membership, `ServiceAccount` by
//!   `system:serviceaccount:<ns>:<name>` (the namespace defaults to the
//!   binding's);
//! - a RoleBinding's `roleRef` names a Role of its namespace or a
//!   ClusterRole; a missing role grants nothing.
//!
//! Denials are answered with the real server's 403 message
//! (`responsewriters.forbiddenMessage` wrapped by `errors.NewForbidden`).

use serde_json::{Value, json};

use crate::auth::rules::rule_allows;
use crate::auth::tokens::MASTERS_GROUP;
use crate::auth::{Attributes, UserInfo};
use crate::error::ApiError;
use crate::registry::{RBAC, served};
use crate::store::View;

/// The rules of the role a binding in `namespace` refers to.
fn role_rules<'v>(view: &'v View<'_>, binding: &Value, namespace: &str) -> Option<&'v Value> {
    let role_ref = &binding["roleRef"];
    let name = role_ref["name"].as_str()?;
    let role = match role_ref["kind"].as_str()? {
        "ClusterRole" => view.get(served(RBAC, "clusterroles"), "", name)?,
        "Role" if !namespace.is_empty() => view.get(served(RBAC, "roles"), namespace, name)?,
        _ => return None,
    };
    Some(&role["rules"])
}

/// Visits the rules that apply to `user` in `namespace` (cluster bindings
/// first) until `visit` returns true; returns whether it did.
pub(crate) fn visit_rules(
    view: &View<'_>,
    user: &UserInfo,
    namespace: &str,
    mut visit: impl FnMut(&Value) -> bool,
) -> bool {
    let mut visit_all = |rules: Option<&Value>| {
        rules
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(&mut visit)
    };
    let cluster_bindings = served(RBAC, "clusterrolebindings");
    for name in view.bindings_of(user, "") {
        if let Some(binding) = view.get(cluster_bindings, "", &name)
            && visit_all(role_rules(view, binding, ""))
        {
            return true;
        }
    }
    if namespace.is_empty() {
        return false;
    }
    let role_bindings = served(RBAC, "rolebindings");
    for name in view.bindings_of(user, namespace) {
        if let Some(binding) = view.get(role_bindings, namespace, &name)
            && visit_all(role_rules(view, binding, namespace))
        {
            return true;
        }
    }
    false
}

/// Whether the request is allowed.
pub(crate) fn allowed(view: &View<'_>, a: &Attributes) -> bool {
    a.user.in_group(MASTERS_GROUP)
        || visit_rules(view, &a.user, &a.namespace, |rule| rule_allows(rule, a))
}

/// The 403 the real server answers for a denied request.
pub(crate) fn forbidden(a: &Attributes) -> ApiError {
    let user = &a.user.username;
    if !a.resource_request {
        return ApiError::forbidden(format!(
            "forbidden: User {user:?} cannot {} path {:?}",
            a.verb, a.path
        ))
        .with_details(json!({}));
    }
    let resource = a.combined_resource();
    let scope = if a.namespace.is_empty() {
        "at the cluster scope".to_string()
    } else {
        format!("in the namespace {:?}", a.namespace)
    };
    let reason = format!(
        "User {user:?} cannot {} resource {resource:?} in API group {:?} {scope}",
        a.verb, a.api_group
    );
    let qualified = if a.api_group.is_empty() {
        a.resource.clone()
    } else {
        format!("{}.{}", a.resource, a.api_group)
    };
    let message = if a.name.is_empty() {
        format!("{qualified} is forbidden: {reason}")
    } else {
        format!("{qualified} {:?} is forbidden: {reason}", a.name)
    };
    let mut details = json!({"kind": a.resource});
    if !a.api_group.is_empty() {
        details["group"] = json!(a.api_group);
    }
    if !a.name.is_empty() {
        details["name"] = json!(a.name);
    }
    ApiError::forbidden(message).with_details(details)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(ns: &str, name: &str) -> UserInfo {
        crate::auth::tokens::ServiceAccountToken {
            namespace: ns.into(),
            name: name.into(),
            uid: "u".into(),
            pod: None,
            expires: std::time::SystemTime::now(),
        }
        .user()
    }

    #[test]
    fn forbidden_messages_read_as_the_real_servers() {
        let user = sa("ns", "sa");
        let a = Attributes::resource(user.clone(), "get", "", "services", "ns", "foo");
        let e = forbidden(&a);
        assert_eq!(
            e.message,
            "services \"foo\" is forbidden: User \"system:serviceaccount:ns:sa\" cannot get \
             resource \"services\" in API group \"\" in the namespace \"ns\""
        );
        let a = Attributes::resource(user.clone(), "list", "apps", "daemonsets", "", "");
        assert_eq!(
            forbidden(&a).message,
            "daemonsets.apps is forbidden: User \"system:serviceaccount:ns:sa\" cannot list \
             resource \"daemonsets\" in API group \"apps\" at the cluster scope"
        );
        let a = Attributes::non_resource(UserInfo::anonymous(), "get", "/");
        assert_eq!(
            forbidden(&a).message,
            "forbidden: User \"system:anonymous\" cannot get path \"/\""
        );
    }
}
