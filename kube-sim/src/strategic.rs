//! Strategic merge patch for the types this server holds, without the Go
//! struct tags the real server reads the strategy from: the list merge keys
//! are a table here, keyed by field name. A list not in the table is
//! replaced whole, as in a JSON merge patch. The directives `kubectl apply`
//! sends are honoured: `$patch` (`delete`, `replace`, `merge`),
//! `$deleteFromPrimitiveList/<field>`; `$setElementOrder/<field>` and
//! `$retainKeys` are accepted and ignored (order within a merged list keeps
//! the stored order, then new items).

use serde_json::{Map, Value};

use crate::error::ApiError;

/// The merge key of a list field, by field name and (for `ports`, where
/// Service and container ports differ) by what the items hold.
fn merge_key(field: &str, items: &[Value]) -> Option<&'static str> {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets" => Some("name"),
        "volumeMounts" => Some("mountPath"),
        "volumeDevices" => Some("devicePath"),
        "conditions" => Some("type"),
        "ownerReferences" => Some("uid"),
        "ports" if items.iter().any(|i| i.get("containerPort").is_some()) => Some("containerPort"),
        "ports" => Some("port"),
        _ => None,
    }
}

/// Lists of plain values merged as sets.
fn is_set_list(field: &str) -> bool {
    matches!(field, "finalizers")
}

/// Applies `patch` to `target` in place.
pub(crate) fn apply(target: &mut Value, patch: &Value) -> Result<(), ApiError> {
    let Some(patch) = patch.as_object() else {
        return Err(ApiError::bad_request(
            "a strategic merge patch must be an object",
        ));
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    merge_map(target.as_object_mut().expect("made an object above"), patch)
}

fn merge_map(target: &mut Map<String, Value>, patch: &Map<String, Value>) -> Result<(), ApiError> {
    match patch.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            *target = patch.clone();
            target.remove("$patch");
            return Ok(());
        }
        Some("delete") => {
            target.clear();
            return Ok(());
        }
        Some("merge") | None => {}
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "unknown $patch directive {other:?}"
            )));
        }
    }
    for (field, value) in patch {
        if field == "$patch" || field == "$retainKeys" || field.starts_with("$setElementOrder/") {
            continue;
        }
        if let Some(list_field) = field.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(list), Some(gone)) = (
                target.get_mut(list_field).and_then(Value::as_array_mut),
                value.as_array(),
            ) {
                list.retain(|item| !gone.contains(item));
            }
            continue;
        }
        match value {
            Value::Null => {
                target.remove(field);
            }
            Value::Object(inner) => {
                let slot = target
                    .entry(field.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if !slot.is_object() {
                    *slot = Value::Object(Map::new());
                }
                merge_map(slot.as_object_mut().expect("made an object above"), inner)?;
                if inner.get("$patch").and_then(Value::as_str) == Some("delete") {
                    target.remove(field);
                }
            }
            Value::Array(items) => {
                let merged = match target.get(field).and_then(Value::as_array) {
                    Some(current) => merge_list(field, current, items)?,
                    None => merge_list(field, &[], items)?,
                };
                target.insert(field.clone(), Value::Array(merged));
            }
            other => {
                target.insert(field.clone(), other.clone());
            }
        }
    }
    Ok(())
}

fn merge_list(field: &str, current: &[Value], patch: &[Value]) -> Result<Vec<Value>, ApiError> {
    if is_set_list(field) {
        let mut merged = current.to_vec();
        for item in patch {
            if !merged.contains(item) {
                merged.push(item.clone());
            }
        }
        return Ok(merged);
    }
    let Some(key) = merge_key(field, patch) else {
        return Ok(patch
            .iter()
            .filter(|i| i.get("$patch").is_none())
            .cloned()
            .collect());
    };
    if patch
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        return Ok(patch
            .iter()
            .filter(|i| i.get("$patch").is_none())
            .cloned()
            .collect());
    }
    let mut merged = current.to_vec();
    for item in patch {
        let Some(id) = item.get(key) else {
            return Err(ApiError::bad_request(format!(
                "an item of {field} has no merge key {key:?}"
            )));
        };
        let position = merged.iter().position(|m| m.get(key) == Some(id));
        let deleting = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (position, deleting) {
            (Some(at), true) => {
                merged.remove(at);
            }
            (None, true) => {}
            (Some(at), false) => {
                let slot = &mut merged[at];
                match (slot.as_object_mut(), item.as_object()) {
                    (Some(slot), Some(item)) => merge_map(slot, item)?,
                    _ => *slot = item.clone(),
                }
            }
            (None, false) => {
                let mut fresh = Value::Object(Map::new());
                apply(&mut fresh, item)?;
                merged.push(fresh);
            }
        }
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patched(target: Value, patch: Value) -> Value {
        let mut target = target;
        apply(&mut target, &patch).unwrap();
        target
    }

    #[test]
    fn containers_merge_by_name() {
        let target = json!({"containers": [
            {"name": "a", "image": "a:1", "args": ["x"]},
            {"name": "b", "image": "b:1"}
        ]});
        let out = patched(
            target,
            json!({"containers": [{"name": "b", "image": "b:2"}]}),
        );
        assert_eq!(
            out,
            json!({"containers": [
                {"name": "a", "image": "a:1", "args": ["x"]},
                {"name": "b", "image": "b:2"}
            ]})
        );
    }

    #[test]
    fn service_ports_merge_by_port_and_delete_directive_removes_one() {
        let target =
            json!({"ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}]});
        let out = patched(
            target,
            json!({
                "$setElementOrder/ports": [{"port": 443}],
                "ports": [{"port": 80, "$patch": "delete"}, {"port": 443, "targetPort": 8443}]
            }),
        );
        assert_eq!(
            out,
            json!({"ports": [{"port": 443, "name": "https", "targetPort": 8443}]})
        );
    }

    #[test]
    fn lists_without_a_merge_key_are_replaced() {
        let target = json!({"tolerations": [{"key": "a"}], "args": ["1", "2"]});
        let out = patched(target, json!({"tolerations": [{"key": "b"}]}));
        assert_eq!(
            out,
            json!({"tolerations": [{"key": "b"}], "args": ["1", "2"]})
        );
    }

    #[test]
    fn finalizers_merge_as_a_set_and_can_be_deleted_from() {
        let target = json!({"finalizers": ["a", "b"]});
        let out = patched(target.clone(), json!({"finalizers": ["b", "c"]}));
        assert_eq!(out, json!({"finalizers": ["a", "b", "c"]}));
        let out = patched(
            target,
            json!({"$deleteFromPrimitiveList/finalizers": ["a"]}),
        );
        assert_eq!(out, json!({"finalizers": ["b"]}));
    }

    #[test]
    fn null_deletes_and_replace_directive_replaces_a_map() {
        let target = json!({"labels": {"a": "1", "b": "2"}, "selector": {"x": "1", "y": "2"}});
        let out = patched(
            target,
            json!({"labels": {"a": null}, "selector": {"$patch": "replace", "z": "3"}}),
        );
        assert_eq!(out, json!({"labels": {"b": "2"}, "selector": {"z": "3"}}));
    }

    #[test]
    fn an_item_without_its_merge_key_is_a_bad_request() {
        let mut target = json!({"containers": []});
        let err = apply(&mut target, &json!({"containers": [{"image": "x"}]})).unwrap_err();
        assert_eq!(err.code, 400);
    }
}
