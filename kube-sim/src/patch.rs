//! PATCH: JSON merge patch, JSON patch, strategic merge patch (see
//! `strategic`) and server-side apply (field ownership in `ownership`).
//!
//! Server-side apply sets what the manager sends, removes what the same
//! manager applied before and no longer sends (unless another manager owns
//! it too), keeps everything written by others (status, other managers'
//! fields), and refuses with 409 Conflict to change a field another manager
//! owns, unless `force=true`.

use std::collections::HashMap;

use serde_json::Value;

use crate::api::Target;
use crate::error::ApiError;
use crate::ownership;
use crate::store::Store;

const MERGE: &str = "application/merge-patch+json";
const STRATEGIC: &str = "application/strategic-merge-patch+json";
const JSON_PATCH: &str = "application/json-patch+json";
const APPLY: &str = "application/apply-patch+yaml";

/// Whether `content_type` is a server-side apply.
pub(crate) fn is_apply(content_type: &str) -> bool {
    content_type.split(';').next().unwrap_or_default().trim() == APPLY
}

/// The manager of a write: `fieldManager`, else one derived from the
/// client's user agent, as the real server does.
pub(crate) fn manager_of(query: &HashMap<String, String>, user_agent: Option<&str>) -> String {
    query
        .get("fieldManager")
        .filter(|m| !m.is_empty())
        .cloned()
        .or_else(|| {
            user_agent
                .and_then(|ua| ua.split('/').next())
                .filter(|ua| !ua.is_empty())
                .map(str::to_string)
        })
        .unwrap_or_else(|| "unknown".into())
}

/// Records that `manager` turned `before` into `after` by a write that is
/// not an apply.
pub(crate) fn record_write(
    store: &Store,
    target: &Target,
    name: &str,
    manager: &str,
    before: &Value,
    after: &Value,
) {
    let namespace = target.namespace.clone().unwrap_or_default();
    let mut record = store.field_record(target.rt, &namespace, name);
    ownership::record_update(&mut record.owners, before, after, manager);
    store.set_field_record(target.rt, &namespace, name, record);
}

/// Applies `patch` to the object `name` of `target`.
pub(crate) fn apply(
    store: &Store,
    target: &Target,
    name: &str,
    content_type: &str,
    patch: Value,
    query: &HashMap<String, String>,
    user_agent: Option<&str>,
) -> Result<Value, ApiError> {
    let rt = target.rt;
    let namespace = target.namespace.clone().unwrap_or_default();
    let media = content_type.split(';').next().unwrap_or_default().trim();
    if media == APPLY {
        let manager = query
            .get("fieldManager")
            .filter(|m| !m.is_empty())
            .ok_or_else(|| ApiError::bad_request("fieldManager is required for apply patch"))?;
        let force = query.get("force").is_some_and(|f| f == "true");
        return server_side_apply(store, target, &namespace, name, manager, force, patch);
    }
    let before = store.get(rt, &namespace, name)?;
    let mut object = before.clone();
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
    let after = store.replace(rt, &namespace, name, object, target.status)?;
    record_write(
        store,
        target,
        name,
        &manager_of(query, user_agent),
        &before,
        &after,
    );
    Ok(after)
}

fn server_side_apply(
    store: &Store,
    target: &Target,
    namespace: &str,
    name: &str,
    manager: &str,
    force: bool,
    applied: Value,
) -> Result<Value, ApiError> {
    let rt = target.rt;
    let mut record = store.field_record(rt, namespace, name);
    let current = match store.get(rt, namespace, name) {
        Ok(object) => object,
        Err(e) if e.code == 404 && !target.status => {
            let created = store.create(rt, namespace, applied.clone())?;
            let mut record = crate::store::FieldRecord::default();
            ownership::record_apply(&mut record.owners, &Value::Null, None, &applied, manager);
            record.applied.insert(manager.to_string(), applied);
            store.set_field_record(rt, namespace, name, record);
            return Ok(created);
        }
        Err(e) => return Err(e),
    };
    if !force {
        let conflicts = ownership::conflicts(&record.owners, &current, &applied, manager);
        if !conflicts.is_empty() {
            let listed: Vec<String> = conflicts
                .iter()
                .map(|c| {
                    format!(
                        "conflict with \"{}\": {}",
                        c.manager,
                        c.field.replace('/', ".")
                    )
                })
                .collect();
            return Err(ApiError::conflict(format!(
                "Apply failed with {} conflict{}: {}",
                conflicts.len(),
                if conflicts.len() == 1 { "" } else { "s" },
                listed.join(", ")
            )));
        }
    }
    let previous = record.applied.get(manager).cloned();
    let orphaned = ownership::record_apply(
        &mut record.owners,
        &current,
        previous.as_ref(),
        &applied,
        manager,
    );
    let mut object = current.clone();
    for field in &orphaned {
        remove_field(&mut object, field);
    }
    merge_applied(&mut object, &applied);
    // Apply never carries a precondition from the stored object.
    if let Some(meta) = object["metadata"].as_object_mut() {
        meta.remove("resourceVersion");
    }
    let result = store.replace(rt, namespace, name, object, target.status)?;
    record.applied.insert(manager.to_string(), applied);
    store.set_field_record(rt, namespace, name, record);
    Ok(result)
}

/// Removes the field at JSON pointer `field`, and parents it leaves empty.
fn remove_field(object: &mut Value, field: &str) {
    let Some((parent, last)) = field.rsplit_once('/') else {
        return;
    };
    let last = last.replace("~1", "/").replace("~0", "~");
    let Some(map) = object.pointer_mut(parent).and_then(Value::as_object_mut) else {
        return;
    };
    map.remove(&last);
    if map.is_empty() && !parent.is_empty() && parent != "/metadata" {
        remove_field(object, parent);
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
    fn removing_a_field_prunes_parents_it_leaves_empty() {
        let mut object =
            json!({"metadata": {"labels": {"a": "1"}}, "spec": {"x": {"y": 1}, "z": 2}});
        remove_field(&mut object, "/metadata/labels/a");
        remove_field(&mut object, "/spec/x/y");
        assert_eq!(object, json!({"metadata": {}, "spec": {"z": 2}}));
    }

    #[test]
    fn applied_maps_merge_and_lists_replace() {
        let mut object = json!({"data": {"a": "1"}, "list": [1, 2]});
        merge_applied(&mut object, &json!({"data": {"b": "2"}, "list": [3]}));
        assert_eq!(object, json!({"data": {"a": "1", "b": "2"}, "list": [3]}));
    }
}
