//! RBAC's escalation prevention, run on every create and update of a role
//! or binding, as the real server's `policybased` storages do
//! (`pkg/registry/rbac/{role,clusterrole,rolebinding,clusterrolebinding}/policybased/storage.go`,
//! `pkg/registry/rbac/escalation_check.go`):
//!
//! - `system:masters` may write anything;
//! - an update that changes only what the garbage collector needs
//!   (`ownerReferences`, `finalizers`) passes;
//! - a Role/ClusterRole passes with the `escalate` verb on it, else only if
//!   the writer already holds every rule in it (`ConfirmNoEscalation`: the
//!   writer's cluster-wide rules plus, for a Role, those of its namespace);
//! - a binding passes with the `bind` verb on the role it refers to, else
//!   only if the writer holds every rule of that role in the binding's
//!   namespace.
//!
//! A refusal is the real 403: `… is attempting to grant RBAC permissions not
//! currently held:` followed by the missing rules.

use serde_json::Value;

use crate::auth::rbac::{allowed, visit_rules};
use crate::auth::rules::{Atom, breakdown, covers};
use crate::auth::tokens::MASTERS_GROUP;
use crate::auth::{Attributes, UserInfo};
use crate::error::ApiError;
use crate::registry::{RBAC, ResourceType, served};
use crate::store::View;

fn without_gc_fields(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(meta) = object["metadata"].as_object_mut() {
        for field in [
            "ownerReferences",
            "finalizers",
            "resourceVersion",
            "generation",
        ] {
            meta.remove(field);
        }
    }
    object
}

/// Checks that `user` may write `new` (replacing `old`, if any) of `rt`,
/// an RBAC role or binding type, in `namespace`. Other types pass.
pub(crate) fn check_rbac_write(
    view: &View<'_>,
    user: &UserInfo,
    rt: &'static ResourceType,
    namespace: &str,
    old: Option<&Value>,
    new: &Value,
) -> Result<(), ApiError> {
    if rt.group != RBAC || user.in_group(MASTERS_GROUP) {
        return Ok(());
    }
    if old.is_some_and(|old| without_gc_fields(old) == without_gc_fields(new)) {
        return Ok(());
    }
    let name = new["metadata"]["name"].as_str().unwrap_or_default();
    // The real check uses the request's name: none on a create.
    let request_name = if old.is_some() { name } else { "" };
    let (rules, rules_namespace) = match rt.plural {
        "roles" | "clusterroles" => {
            let escalate = Attributes::resource(
                user.clone(),
                "escalate",
                RBAC,
                rt.plural,
                namespace,
                request_name,
            );
            if allowed(view, &escalate) {
                return Ok(());
            }
            (new["rules"].clone(), namespace)
        }
        "rolebindings" | "clusterrolebindings" => {
            let role_ref = &new["roleRef"];
            let role_name = role_ref["name"].as_str().unwrap_or_default();
            let role_plural = match role_ref["kind"].as_str() {
                Some("Role") if rt.plural == "rolebindings" => "roles",
                Some("ClusterRole") => "clusterroles",
                other => {
                    return Err(ApiError::invalid(format!(
                        "{}.{RBAC} {name:?} is invalid: roleRef.kind: Unsupported value: {:?}",
                        rt.plural,
                        other.unwrap_or_default()
                    )));
                }
            };
            let bind = Attributes::resource(
                user.clone(),
                "bind",
                RBAC,
                role_plural,
                namespace,
                role_name,
            );
            if allowed(view, &bind) {
                return Ok(());
            }
            let role = view
                .get(served(RBAC, role_plural), namespace, role_name)
                .ok_or_else(|| {
                    ApiError::not_found(format!("{role_plural}.{RBAC} {role_name:?}"))
                })?;
            (role["rules"].clone(), namespace)
        }
        _ => return Ok(()),
    };
    let mut held = Vec::new();
    visit_rules(view, user, rules_namespace, |rule| {
        held.push(rule.clone());
        false
    });
    let mut missing: Vec<Atom> = rules
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(breakdown)
        .filter(|atom| !held.iter().any(|owner| covers(owner, atom)))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    missing.sort();
    missing.dedup();
    let groups: Vec<String> = user.groups.iter().map(|g| format!("{g:?}")).collect();
    let missing: Vec<String> = missing.iter().map(Atom::compact).collect();
    Err(ApiError::forbidden(format!(
        "{}.{RBAC} {name:?} is forbidden: user {:?} (groups=[{}]) is attempting to grant RBAC \
         permissions not currently held:\n{}",
        rt.plural,
        user.username,
        groups.join(" "),
        missing.join("\n")
    ))
    .with_details(serde_json::json!({"name": name, "group": RBAC, "kind": rt.plural})))
}
