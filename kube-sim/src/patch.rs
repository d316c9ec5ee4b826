//! PATCH: JSON merge patch, JSON patch, strategic merge patch (see
//! `strategic`) and server-side apply.
//!
//! Server-side apply is simplified as the project's needs allow: an apply
//! sets what the manager sends, removes what the same manager applied before
//! and no longer sends, and keeps everything written by others (status,
//! other managers' fields). Conflicts between managers are not detected, so
//! `force` changes nothing.

use std::collections::HashMap;

use serde_json::Value;

use crate::api::Target;
use crate::error::ApiError;
use crate::store::Store;

const MERGE: &str = "application/merge-patch+json";
const STRATEGIC: &str = "application/strategic-merge-patch+json";
const JSON_PATCH: &str = "application/json-patch+json";
const APPLY: &str = "application/apply-patch+yaml";

/// Applies `patch` to the object `name` of `target`.
pub(crate) fn apply(
    store: &Store,
    target: &Target,
    name: &str,
    content_type: &str,
    patch: Value,
    query: &HashMap<String, String>,
) -> Result<Value, ApiError> {
    let rt = target.rt;
    let namespace = target.namespace.clone().unwrap_or_default();
    let media = content_type.split(';').next().unwrap_or_default().trim();
    if media == APPLY {
        let manager = query
            .get("fieldManager")
            .filter(|m| !m.is_empty())
            .ok_or_else(|| ApiError::bad_request("fieldManager is required for apply patch"))?;
        return server_side_apply(store, target, &namespace, name, manager, patch);
    }
    let mut object = store.get(rt, &namespace, name)?;
    match media {
        MERGE => json_patch::merge(&mut object, &patch),
        STRATEGIC => crate::strategic::apply(&mut object, &patch)?,
        JSON_PATCH => {
            let operations: json_patch::Patch = serde_json::from_value(patch)
                .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
            json_patch::patch(&mut object, &operations)
                .map_err(|e| ApiError::invalid(format!("JSON patch failed: {e}")))?;
        }
        other => {
            return Err(ApiError::unsupported_media_type(format!(
                "unsupported patch type {other:?}"
            )));
        }
    }
    store.replace(rt, &namespace, name, object, target.status)
}

fn server_side_apply(
    store: &Store,
    target: &Target,
    namespace: &str,
    name: &str,
    manager: &str,
    applied: Value,
) -> Result<Value, ApiError> {
    let rt = target.rt;
    let mut object = match store.get(rt, namespace, name) {
        Ok(object) => object,
        Err(e) if e.code == 404 && !target.status => {
            let created = store.create(rt, namespace, applied.clone())?;
            store.set_last_applied(rt, namespace, name, manager, applied);
            return Ok(created);
        }
        Err(e) => return Err(e),
    };
    if let Some(previous) = store.last_applied(rt, namespace, name, manager) {
        remove_dropped_fields(&mut object, &previous, &applied);
    }
    merge_applied(&mut object, &applied);
    // Apply never carries a precondition from the stored object.
    if let Some(meta) = object["metadata"].as_object_mut() {
        meta.remove("resourceVersion");
    }
    let result = store.replace(rt, namespace, name, object, target.status)?;
    store.set_last_applied(rt, namespace, name, manager, applied);
    Ok(result)
}

/// Removes from `object` the fields `previous` applied that `now` no longer does.
fn remove_dropped_fields(object: &mut Value, previous: &Value, now: &Value) {
    let (Some(previous), Some(target)) = (previous.as_object(), object.as_object_mut()) else {
        return;
    };
    for (key, old) in previous {
        match now.get(key) {
            None => {
                target.remove(key);
            }
            Some(new) if old.is_object() && new.is_object() => {
                if let Some(child) = target.get_mut(key) {
                    remove_dropped_fields(child, old, new);
                }
            }
            Some(_) => {}
        }
    }
}

/// Sets every field of `applied` in `object`: maps merge, everything else
/// (lists included) is replaced.
fn merge_applied(object: &mut Value, applied: &Value) {
    match (object.as_object_mut(), applied.as_object()) {
        (Some(target), Some(source)) => {
            for (key, value) in source {
                match target.get_mut(key) {
                    Some(existing) if existing.is_object() && value.is_object() => {
                        merge_applied(existing, value)
                    }
                    _ => {
                        target.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        _ => *object = applied.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn apply_removes_only_what_the_manager_dropped() {
        let mut object =
            json!({"metadata": {"labels": {"a": "1", "b": "2", "other": "x"}}, "status": {"s": 1}});
        let previous = json!({"metadata": {"labels": {"a": "1", "b": "2"}}});
        let now = json!({"metadata": {"labels": {"a": "3"}}});
        remove_dropped_fields(&mut object, &previous, &now);
        merge_applied(&mut object, &now);
        assert_eq!(
            object,
            json!({"metadata": {"labels": {"a": "3", "other": "x"}}, "status": {"s": 1}})
        );
    }
}
