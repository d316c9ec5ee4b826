//! `meta.k8s.io/v1` PartialObjectMetadata responses (`Accept: …;as=
//! PartialObjectMetadata` or `…List`), which metadata-only clients such as
//! kube-runtime's `metadata_watcher` ask for: objects stripped to their
//! metadata.

use serde_json::{Value, json};

/// Whether the request's `Accept` header asks for metadata only.
pub fn wants_metadata(accept: &str) -> bool {
    accept.contains("as=PartialObjectMetadata")
}

/// `object` as a PartialObjectMetadata.
pub fn metadata_of(object: &Value) -> Value {
    json!({
        "apiVersion": "meta.k8s.io/v1",
        "kind": "PartialObjectMetadata",
        "metadata": object["metadata"],
    })
}

/// A list of `items` (whole objects) as a PartialObjectMetadataList.
pub fn metadata_list(items: &[Value], resource_version: u64) -> Value {
    json!({
        "apiVersion": "meta.k8s.io/v1",
        "kind": "PartialObjectMetadataList",
        "metadata": {"resourceVersion": resource_version.to_string()},
        "items": items.iter().map(metadata_of).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_metadata_is_kept() {
        let object = json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "a", "annotations": {"x": "1"}}, "spec": {"big": true}});
        assert_eq!(
            metadata_of(&object),
            json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
                   "metadata": {"name": "a", "annotations": {"x": "1"}}})
        );
        assert!(wants_metadata(
            "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
        ));
        assert!(!wants_metadata("application/json"));
    }
}
