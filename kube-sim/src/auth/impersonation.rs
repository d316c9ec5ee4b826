//! Impersonation (`kubectl --as`, `--as-group`), as the real server's filter
//! does it (`k8s.io/apiserver/pkg/endpoints/filters/impersonation.go`):
//! every impersonated attribute needs the `impersonate` verb on it —
//! `users/<name>` (cluster scope), a ServiceAccount user
//! `serviceaccounts/<name>` in its namespace, `groups/<name>`,
//! `authentication.k8s.io` `uids/<uid>` and `userextras/<key>` per value.
//! Groups without a user are a 400. The impersonated user gets the groups
//! asked for (a ServiceAccount with none gets its own), then
//! `system:authenticated` (or `system:unauthenticated` for
//! `system:anonymous`).

use std::collections::BTreeMap;

use axum::http::HeaderMap;

use crate::auth::rbac::{allowed, forbidden};
use crate::auth::tokens::{
    ANONYMOUS_USER, AUTHENTICATED_GROUP, UNAUTHENTICATED_GROUP, service_account_groups,
};
use crate::auth::{Attributes, UserInfo};
use crate::error::ApiError;
use crate::store::View;

const USER_HEADER: &str = "impersonate-user";
const GROUP_HEADER: &str = "impersonate-group";
const UID_HEADER: &str = "impersonate-uid";
const EXTRA_PREFIX: &str = "impersonate-extra-";

fn values<'h>(headers: &'h HeaderMap, name: &str) -> Vec<&'h str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect()
}

/// The user a request acts as: `requester`, or whom it impersonates if
/// allowed to.
pub(crate) fn impersonate(
    view: &View<'_>,
    requester: UserInfo,
    headers: &HeaderMap,
) -> Result<UserInfo, ApiError> {
    let user = values(headers, USER_HEADER)
        .first()
        .filter(|u| !u.is_empty())
        .map(|u| u.to_string());
    let groups: Vec<String> = values(headers, GROUP_HEADER)
        .iter()
        .map(|g| g.to_string())
        .collect();
    let uid = values(headers, UID_HEADER).first().map(|u| u.to_string());
    let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in headers {
        if let Some(key) = name.as_str().strip_prefix(EXTRA_PREFIX)
            && let Ok(value) = value.to_str()
        {
            extra
                .entry(key.to_string())
                .or_default()
                .push(value.to_string());
        }
    }
    let Some(username) = user else {
        if !groups.is_empty() || uid.is_some() || !extra.is_empty() {
            return Err(ApiError::bad_request(
                "requested impersonation without impersonating a user",
            ));
        }
        return Ok(requester);
    };
    let check = |attributes: Attributes| -> Result<(), ApiError> {
        if allowed(view, &attributes) {
            Ok(())
        } else {
            Err(forbidden(&attributes))
        }
    };
    let service_account = username
        .strip_prefix("system:serviceaccount:")
        .and_then(crate::auth::tokens::split_service_account);
    match service_account {
        Some((ns, name)) => check(Attributes::resource(
            requester.clone(),
            "impersonate",
            "",
            "serviceaccounts",
            ns,
            name,
        ))?,
        None => check(Attributes::resource(
            requester.clone(),
            "impersonate",
            "",
            "users",
            "",
            &username,
        ))?,
    }
    for group in &groups {
        check(Attributes::resource(
            requester.clone(),
            "impersonate",
            "",
            "groups",
            "",
            group,
        ))?;
    }
    if let Some(uid) = &uid {
        check(Attributes::resource(
            requester.clone(),
            "impersonate",
            "authentication.k8s.io",
            "uids",
            "",
            uid,
        ))?;
    }
    for (key, values) in &extra {
        for value in values {
            check(Attributes::resource(
                requester.clone(),
                "impersonate",
                "authentication.k8s.io",
                &format!("userextras/{key}"),
                "",
                value,
            ))?;
        }
    }
    let mut all_groups = if groups.is_empty() {
        service_account
            .map(|(ns, _)| {
                service_account_groups(ns)
                    .into_iter()
                    .filter(|g| g != AUTHENTICATED_GROUP)
                    .collect()
            })
            .unwrap_or_default()
    } else {
        groups
    };
    let has_marker = all_groups
        .iter()
        .any(|g| g == AUTHENTICATED_GROUP || g == UNAUTHENTICATED_GROUP);
    if username == ANONYMOUS_USER {
        if !all_groups.iter().any(|g| g == UNAUTHENTICATED_GROUP) {
            all_groups.push(UNAUTHENTICATED_GROUP.to_string());
        }
    } else if !has_marker {
        all_groups.push(AUTHENTICATED_GROUP.to_string());
    }
    Ok(UserInfo {
        username,
        uid: uid.unwrap_or_default(),
        groups: all_groups,
        extra,
    })
}
