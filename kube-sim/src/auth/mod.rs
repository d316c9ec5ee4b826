//! Who a request comes from and what it may do, in the order of the real
//! server's handler chain (`k8s.io/apiserver/pkg/server/config.go`
//! `DefaultBuildHandlerChain`): authentication, then impersonation, then
//! authorization; RBAC's escalation checks run where the real server runs
//! them, on writes of roles and bindings (`admission`).
//!
//! ```text
//! Authorization: Bearer … ─▶ tokens ─▶ UserInfo ─▶ impersonation ─▶ rbac ─▶ handler
//!                  (none: system:anonymous; unknown/expired: 401)   (403 + recorded denial)
//! ```

mod attributes;
pub(crate) mod bootstrap;
mod escalation;
mod impersonation;
pub(crate) mod rbac;
pub(crate) mod reviews;
pub(crate) mod rules;
pub mod tokens;

use std::collections::BTreeMap;

use axum::http::{HeaderMap, header};
use serde_json::{Value, json};

pub(crate) use attributes::Attributes;
pub(crate) use escalation::check_rbac_write;
pub(crate) use impersonation::impersonate;

use crate::error::ApiError;
use crate::store::Store;
use tokens::{ANONYMOUS_USER, Presented, Tokens, UNAUTHENTICATED_GROUP};

/// An authenticated user, as `authentication.k8s.io/v1` `UserInfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// User name, e.g. `system:serviceaccount:ns:name`.
    pub username: String,
    /// The uid (a ServiceAccount's); empty for other users.
    pub uid: String,
    /// Groups.
    pub groups: Vec<String>,
    /// Extra attributes (e.g. the Pod a token is bound to).
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    /// The anonymous user of a request without credentials.
    pub fn anonymous() -> Self {
        Self {
            username: ANONYMOUS_USER.to_string(),
            uid: String::new(),
            groups: vec![UNAUTHENTICATED_GROUP.to_string()],
            extra: BTreeMap::new(),
        }
    }

    /// Whether the user is in `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }

    /// As the `userInfo` of reviews.
    pub fn to_json(&self) -> Value {
        let mut info = json!({"username": self.username, "groups": self.groups});
        if !self.uid.is_empty() {
            info["uid"] = json!(self.uid);
        }
        if !self.extra.is_empty() {
            info["extra"] = json!(self.extra);
        }
        info
    }
}

/// Creates the bootstrap ClusterRoles and ClusterRoleBindings.
pub(crate) fn seed(store: &Store) -> Result<(), ApiError> {
    use crate::registry::{RBAC, served};
    for role in bootstrap::cluster_roles() {
        store.create(served(RBAC, "clusterroles"), "", role)?;
    }
    for binding in bootstrap::cluster_role_bindings() {
        store.create(served(RBAC, "clusterrolebindings"), "", binding)?;
    }
    Ok(())
}

/// The user a request's credentials name: no `Authorization` header is the
/// anonymous user; a token the server did not issue, an expired one, or one
/// whose ServiceAccount (or bound Pod) is gone or was re-created is 401.
pub(crate) fn authenticate(
    tokens: &Tokens,
    store: &Store,
    headers: &HeaderMap,
) -> Result<UserInfo, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(UserInfo::anonymous());
    };
    // As the bearer-token authenticator: scheme `bearer` in any case, the
    // token the second field; anything else is no token at all.
    let mut parts = value.to_str().unwrap_or_default().split_whitespace();
    let token = match (parts.next(), parts.next()) {
        (Some(scheme), Some(token)) if scheme.eq_ignore_ascii_case("bearer") => token,
        _ => return Ok(UserInfo::anonymous()),
    };
    match tokens.lookup(token) {
        Presented::User(user) => Ok(user),
        Presented::ServiceAccount(sa) => {
            // Looked up in place, on every request of the account: no copy.
            let uid_is = |view: &crate::store::View<'_>, plural, name: &str, uid: &str| {
                view.get(crate::registry::served("", plural), &sa.namespace, name)
                    .is_some_and(|o| o["metadata"]["uid"] == uid)
            };
            let valid = store.read(|view| {
                uid_is(view, "serviceaccounts", &sa.name, &sa.uid)
                    && sa
                        .pod
                        .as_ref()
                        .is_none_or(|(pod, pod_uid)| uid_is(view, "pods", pod, pod_uid))
            });
            if !valid {
                return Err(ApiError::unauthorized());
            }
            Ok(sa.user())
        }
        Presented::Invalid => Err(ApiError::unauthorized()),
    }
}
