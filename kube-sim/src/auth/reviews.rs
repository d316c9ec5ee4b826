//! Objects the server answers at once and never stores, as the real
//! registries do:
//!
//! - `SelfSubjectAccessReview`, `SubjectAccessReview`,
//!   `LocalSubjectAccessReview` (`pkg/registry/authorization/*`): the
//!   authorizer's decision for the attributes in `spec`;
//! - `SelfSubjectReview` (`pkg/registry/authentication/selfsubjectreview`):
//!   the caller's `userInfo` (`kubectl auth whoami`);
//! - `TokenRequest` (`pkg/registry/core/serviceaccount/storage/token.go`):
//!   a token for a ServiceAccount, valid `expirationSeconds` (default 3600,
//!   at least 600), optionally bound to a Pod of that ServiceAccount.
//!
//! `SelfSubjectRulesReview` is not served (404): nothing here uses it.

use std::time::Duration;

use serde_json::{Value, json};

use crate::auth::rbac::allowed;
use crate::auth::tokens::{ServiceAccountToken, Tokens};
use crate::auth::{Attributes, UserInfo};
use crate::error::ApiError;
use crate::registry::served;
use crate::store::Store;
use crate::time::now_rfc3339;

/// The audience of tokens that name none, as a default kube-apiserver
/// (`--api-audiences` defaults to the issuer).
const DEFAULT_AUDIENCE: &str = "https://kubernetes.default.svc.cluster.local";

fn string_list(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

fn attributes_of(spec: &Value, user: UserInfo) -> Result<Attributes, ApiError> {
    let resource = &spec["resourceAttributes"];
    let non_resource = &spec["nonResourceAttributes"];
    match (resource.is_object(), non_resource.is_object()) {
        (true, false) => {
            let field = |name: &str| resource[name].as_str().unwrap_or_default().to_string();
            let mut combined = field("resource");
            if !field("subresource").is_empty() {
                combined = format!("{combined}/{}", field("subresource"));
            }
            Ok(Attributes::resource(
                user,
                &field("verb"),
                &field("group"),
                &combined,
                &field("namespace"),
                &field("name"),
            ))
        }
        (false, true) => Ok(Attributes::non_resource(
            user,
            non_resource["verb"].as_str().unwrap_or_default(),
            non_resource["path"].as_str().unwrap_or_default(),
        )),
        _ => Err(ApiError::invalid(
            "spec: Invalid value: exactly one of nonResourceAttributes or resourceAttributes \
             must be specified",
        )),
    }
}

fn decided(mut review: Value, allowed: bool) -> Value {
    review["status"] = json!({"allowed": allowed});
    if let Some(meta) = review["metadata"].as_object_mut() {
        meta.insert("creationTimestamp".into(), Value::Null);
    }
    review
}

/// Answers a review `kind` posted by `caller` (in `namespace` for a local one).
pub(crate) fn answer(
    store: &Store,
    caller: &UserInfo,
    plural: &str,
    namespace: &str,
    mut review: Value,
) -> Result<Value, ApiError> {
    let spec = review["spec"].clone();
    let decide = |attributes: Attributes| store.read(|view| allowed(view, &attributes));
    match plural {
        "selfsubjectaccessreviews" => {
            let attributes = attributes_of(&spec, caller.clone())?;
            Ok(decided(review, decide(attributes)))
        }
        "subjectaccessreviews" | "localsubjectaccessreviews" => {
            let user = spec["user"].as_str().unwrap_or_default().to_string();
            let groups = string_list(&spec["groups"]);
            if user.is_empty() && groups.is_empty() {
                return Err(ApiError::invalid(
                    "spec.user: Invalid value: \"\": at least one of user or group must be specified",
                ));
            }
            let subject = UserInfo {
                username: user,
                uid: spec["uid"].as_str().unwrap_or_default().to_string(),
                groups,
                extra: serde_json::from_value(spec["extra"].clone()).unwrap_or_default(),
            };
            let attributes = attributes_of(&spec, subject)?;
            if plural == "localsubjectaccessreviews" && attributes.namespace != namespace {
                return Err(ApiError::invalid(format!(
                    "spec.resourceAttributes.namespace: Invalid value: {:?}: must match \
                     metadata.namespace",
                    attributes.namespace
                )));
            }
            Ok(decided(review, decide(attributes)))
        }
        "selfsubjectreviews" => {
            review["metadata"] = json!({"creationTimestamp": now_rfc3339()});
            review["status"] = json!({"userInfo": caller.to_json()});
            Ok(review)
        }
        _ => Err(ApiError::not_found(format!("{plural} is not served"))),
    }
}

/// Issues a token for ServiceAccount `namespace/name` (`serviceaccounts/token`).
pub(crate) fn token_request(
    store: &Store,
    tokens: &Tokens,
    namespace: &str,
    name: &str,
    mut request: Value,
) -> Result<Value, ApiError> {
    let account = store.get(served("", "serviceaccounts"), namespace, name)?;
    let seconds = match &request["spec"]["expirationSeconds"] {
        Value::Null => 3600,
        value => value.as_i64().ok_or_else(|| {
            ApiError::bad_request(format!("spec.expirationSeconds: invalid value {value}"))
        })?,
    };
    if seconds > 1 << 32 {
        return Err(ApiError::invalid(format!(
            "spec.expirationSeconds: Invalid value: {seconds}: may not specify a duration \
             larger than 2^32 seconds"
        )));
    }
    if seconds < 600 {
        return Err(ApiError::invalid(format!(
            "spec.expirationSeconds: Invalid value: {seconds}: may not specify a duration less \
             than 10 minutes"
        )));
    }
    let bound = &request["spec"]["boundObjectRef"];
    let pod = match bound["kind"].as_str() {
        None => None,
        Some("Pod") => {
            let pod_name = bound["name"].as_str().unwrap_or_default();
            let pod = store.get(served("", "pods"), namespace, pod_name)?;
            let uid = pod["metadata"]["uid"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if let Some(wanted) = bound["uid"].as_str().filter(|u| !u.is_empty())
                && wanted != uid
            {
                return Err(ApiError::conflict(format!(
                    "the UID in the bound object reference ({wanted}) does not match the UID \
                     in record. The object might have been deleted and then recreated"
                )));
            }
            let pod_account = pod["spec"]["serviceAccountName"]
                .as_str()
                .unwrap_or("default");
            if pod_account != name {
                return Err(ApiError::bad_request(format!(
                    "cannot bind token for serviceaccount {name:?} to pod running with \
                     different serviceaccount name."
                )));
            }
            Some((pod_name.to_string(), uid))
        }
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "cannot bind token to object of type {other}"
            )));
        }
    };
    let token = ServiceAccountToken {
        namespace: namespace.to_string(),
        name: name.to_string(),
        uid: account["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        pod,
        expires: std::time::SystemTime::now(),
    };
    let lifetime = Duration::from_secs(seconds as u64);
    let value = tokens.issue_service_account(token, lifetime);
    let expires = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(seconds))
        .map(|t| {
            jiff::Timestamp::from_second(t.as_second())
                .unwrap_or(t)
                .to_string()
        })
        .unwrap_or_default();
    if string_list(&request["spec"]["audiences"]).is_empty() {
        request["spec"]["audiences"] = json!([DEFAULT_AUDIENCE]);
    }
    request["spec"]["expirationSeconds"] = json!(seconds);
    request["apiVersion"] = json!("authentication.k8s.io/v1");
    request["kind"] = json!("TokenRequest");
    request["metadata"] = json!({"name": name, "namespace": namespace,
                                 "creationTimestamp": now_rfc3339()});
    request["status"] = json!({"token": value, "expirationTimestamp": expires});
    Ok(request)
}

/// Whether every authenticated caller may post self reviews; used only to
/// keep the bootstrap roles and this module in step (see the tests).
#[cfg(test)]
fn basic_user_may(plural: &str) -> bool {
    let store = Store::default();
    crate::auth::seed(&store).unwrap();
    let user = UserInfo {
        username: "someone".into(),
        uid: String::new(),
        groups: vec![crate::auth::tokens::AUTHENTICATED_GROUP.into()],
        extra: Default::default(),
    };
    let group = if plural == "selfsubjectreviews" {
        "authentication.k8s.io"
    } else {
        "authorization.k8s.io"
    };
    let a = Attributes::resource(user, "create", group, plural, "", "");
    store.read(|view| allowed(view, &a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_authenticated_user_may_post_self_reviews() {
        assert!(basic_user_may("selfsubjectaccessreviews"));
        assert!(basic_user_may("selfsubjectreviews"));
        assert!(!basic_user_may("subjectaccessreviews"));
    }
}
