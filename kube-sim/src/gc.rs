//! Garbage collection: deleting an object deletes the objects in its
//! namespace that name it in their `ownerReferences` (background
//! propagation, done at once).

use serde_json::Value;

use crate::registry::RESOURCES;
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::Store;

/// Deletes, recursively, every dependent of the deleted `owner`.
pub(crate) fn collect_dependents(store: &Store, owner: &Value) {
    let Some(uid) = owner["metadata"]["uid"].as_str() else {
        return;
    };
    let namespace = owner["metadata"]["namespace"].as_str();
    for rt in RESOURCES
        .iter()
        .filter(|rt| rt.namespaced == namespace.is_some())
    {
        let (objects, _) = store.list(
            rt,
            namespace,
            &LabelSelector::default(),
            &FieldSelector::default(),
        );
        for object in objects {
            let owned = object["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|refs| refs.iter().any(|r| r["uid"].as_str() == Some(uid)));
            if !owned {
                continue;
            }
            let name = object["metadata"]["name"].as_str().unwrap_or_default();
            if let Ok(deleted) = store.delete(rt, namespace.unwrap_or_default(), name)
                && deleted["metadata"]["deletionTimestamp"].is_null()
            {
                collect_dependents(store, &deleted);
            }
        }
    }
}
