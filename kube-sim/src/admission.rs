//! Checks of a write that depend on who makes it and how it asked, run by
//! the store on the object about to be written (as the real server runs
//! them in its registry, after the patch is applied and before storage):
//!
//! - RBAC escalation prevention on roles and bindings (`auth::escalation`);
//! - server-side field validation (`fieldValidation=Strict|Warn`, what
//!   `kubectl apply` and Helm send): fields the type does not have are a
//!   400 `strict decoding error: unknown field "…"`, or, with `Warn`, a
//!   `Warning` header each. Without the parameter the real server warns;
//!   here nothing is checked then (no client here reads the warnings, and
//!   decoding every write twice would cost every test).
//!
//! The request's user and options reach the store through a task-local
//! context set by the HTTP handler; writes the server makes itself (seeding,
//! the garbage collector, the root CA publisher) run outside it and pass.

use std::sync::Mutex;

use serde_json::Value;

use crate::auth::UserInfo;
use crate::error::ApiError;
use crate::registry::ResourceType;
use crate::store::View;

/// How unknown fields are treated (`fieldValidation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldValidation {
    Ignore,
    Warn,
    Strict,
}

impl FieldValidation {
    /// From the query parameter; the real server refuses other values.
    pub fn parse(value: Option<&str>) -> Result<Self, ApiError> {
        match value {
            None | Some("") | Some("Ignore") => Ok(Self::Ignore),
            Some("Warn") => Ok(Self::Warn),
            Some("Strict") => Ok(Self::Strict),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation parameter unsupported: {other}"
            ))),
        }
    }
}

/// Who is writing, and how.
#[derive(Debug)]
pub(crate) struct RequestContext {
    pub user: UserInfo,
    /// What the request is about: only that object's fields are validated
    /// (not those of objects the garbage collector touches meanwhile).
    pub attributes: crate::auth::Attributes,
    pub field_validation: FieldValidation,
    /// Warnings to send back as `Warning` headers.
    pub warnings: Mutex<Vec<String>>,
}

tokio::task_local! {
    pub(crate) static REQUEST: std::sync::Arc<RequestContext>;
}

/// Admits writing `new` (replacing `old`, if any) of `rt` in `namespace`.
pub(crate) fn admit(
    view: &View<'_>,
    rt: &'static ResourceType,
    namespace: &str,
    old: Option<&Value>,
    new: &Value,
) -> Result<(), ApiError> {
    let Ok(context) = REQUEST.try_with(std::sync::Arc::clone) else {
        return Ok(());
    };
    crate::auth::check_rbac_write(view, &context.user, rt, namespace, old, new)?;
    let a = &context.attributes;
    let requested = a.resource_request
        && a.api_group == rt.group
        && a.resource == rt.plural
        && (a.name.is_empty() || new["metadata"]["name"] == a.name.as_str());
    if context.field_validation == FieldValidation::Ignore || !requested {
        return Ok(());
    }
    let unknown = crate::fields::unknown_fields(rt, new);
    if unknown.is_empty() {
        return Ok(());
    }
    match context.field_validation {
        FieldValidation::Strict => {
            let list: Vec<String> = unknown
                .iter()
                .map(|f| format!("unknown field {f:?}"))
                .collect();
            Err(ApiError::bad_request(format!(
                "strict decoding error: {}",
                list.join(", ")
            )))
        }
        _ => {
            let mut warnings = context.warnings.lock().unwrap_or_else(|p| p.into_inner());
            warnings.extend(unknown.iter().map(|f| format!("unknown field {f:?}")));
            Ok(())
        }
    }
}
