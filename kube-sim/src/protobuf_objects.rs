//! Secrets, Namespaces and DeleteOptions in protobuf: the bodies
//! client-go's typed clients send when they prefer protobuf, as Helm's
//! Secret storage driver does for its release records
//! (`sh.helm.release.v1.<name>.v<n>`, created, updated and deleted) and
//! `kubectl create namespace` does. Decoded into the JSON the rest of the
//! server reads, by the field numbers of `k8s.io/api/core/v1/generated.proto`
//! (`Secret`, `Namespace`) and `k8s.io/apimachinery/pkg/apis/meta/v1/
//! generated.proto` (`ObjectMeta`).
//!
//! Decoded: the object metadata a client may set (name, generateName,
//! namespace, uid, resourceVersion, labels, annotations, finalizers) and the
//! Secret's data, stringData, type and immutable. Server-set metadata
//! (timestamps, generation, managed fields) is left out: the server keeps
//! its own on update, as the real one does. Owner references in protobuf
//! are refused rather than dropped.

use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::protobuf::{Wire, decode};

fn text(bytes: &[u8]) -> Result<String, ApiError> {
    String::from_utf8(bytes.to_vec())
        .map_err(|_| ApiError::bad_request("invalid UTF-8 in a protobuf string"))
}

/// A `map<string, string>` entry (`key` 1, `value` 2).
fn string_entry(bytes: &[u8]) -> Result<(String, String), ApiError> {
    let (key, value) = bytes_entry(bytes)?;
    Ok((key, text(&value)?))
}

/// A `map<string, bytes>` entry.
fn bytes_entry(bytes: &[u8]) -> Result<(String, Vec<u8>), ApiError> {
    let (mut key, mut value) = (String::new(), Vec::new());
    for (number, wire) in decode(bytes)? {
        match (number, wire) {
            (1, Wire::Bytes(b)) => key = text(b)?,
            (2, Wire::Bytes(b)) => value = b.to_vec(),
            _ => {}
        }
    }
    Ok((key, value))
}

/// `ObjectMeta`.
fn object_meta(bytes: &[u8]) -> Result<Value, ApiError> {
    let mut meta = Map::new();
    let (mut labels, mut annotations, mut finalizers) = (Map::new(), Map::new(), Vec::new());
    for (number, wire) in decode(bytes)? {
        let Wire::Bytes(b) = wire else { continue };
        let name = match number {
            1 => "name",
            2 => "generateName",
            3 => "namespace",
            5 => "uid",
            6 => "resourceVersion",
            11 => {
                let (k, v) = string_entry(b)?;
                labels.insert(k, json!(v));
                continue;
            }
            12 => {
                let (k, v) = string_entry(b)?;
                annotations.insert(k, json!(v));
                continue;
            }
            13 => {
                return Err(ApiError::unsupported_media_type(
                    "kube-sim does not decode ownerReferences in protobuf; send JSON",
                ));
            }
            14 => {
                finalizers.push(json!(text(b)?));
                continue;
            }
            _ => continue,
        };
        meta.insert(name.into(), json!(text(b)?));
    }
    if !labels.is_empty() {
        meta.insert("labels".into(), Value::Object(labels));
    }
    if !annotations.is_empty() {
        meta.insert("annotations".into(), Value::Object(annotations));
    }
    if !finalizers.is_empty() {
        meta.insert("finalizers".into(), Value::Array(finalizers));
    }
    Ok(Value::Object(meta))
}

/// A `Secret` (`metadata` 1, `data` 2, `type` 3, `stringData` 4,
/// `immutable` 5) as JSON, its data base64-encoded as in the JSON form.
pub(crate) fn secret_to_json(raw: &[u8]) -> Result<Value, ApiError> {
    use base64::Engine;
    let mut secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {}});
    let (mut data, mut string_data) = (Map::new(), Map::new());
    for (number, wire) in decode(raw)? {
        match (number, wire) {
            (1, Wire::Bytes(b)) => secret["metadata"] = object_meta(b)?,
            (2, Wire::Bytes(b)) => {
                let (key, value) = bytes_entry(b)?;
                let encoded = base64::engine::general_purpose::STANDARD.encode(value);
                data.insert(key, json!(encoded));
            }
            (3, Wire::Bytes(b)) => secret["type"] = json!(text(b)?),
            (4, Wire::Bytes(b)) => {
                let (key, value) = string_entry(b)?;
                string_data.insert(key, json!(value));
            }
            (5, Wire::Varint(v)) => secret["immutable"] = json!(v != 0),
            _ => {}
        }
    }
    if !data.is_empty() {
        secret["data"] = Value::Object(data);
    }
    if !string_data.is_empty() {
        secret["stringData"] = Value::Object(string_data);
    }
    Ok(secret)
}

/// A `Namespace` (`metadata` 1; its `spec` holds only the server's
/// finalizers and `status` is the server's).
pub(crate) fn namespace_to_json(raw: &[u8]) -> Result<Value, ApiError> {
    let mut namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {}});
    for (number, wire) in decode(raw)? {
        if let (1, Wire::Bytes(b)) = (number, wire) {
            namespace["metadata"] = object_meta(b)?;
        }
    }
    Ok(namespace)
}

/// `DeleteOptions` (`meta/v1`): `gracePeriodSeconds` 1, `preconditions` 2
/// (`uid` 1, `resourceVersion` 2), `orphanDependents` 3,
/// `propagationPolicy` 4, `dryRun` 5.
pub(crate) fn delete_options_to_json(raw: &[u8]) -> Result<Value, ApiError> {
    let mut options = json!({"apiVersion": "v1", "kind": "DeleteOptions"});
    let mut dry_run = Vec::new();
    for (number, wire) in decode(raw)? {
        match (number, wire) {
            (1, Wire::Varint(v)) => options["gracePeriodSeconds"] = json!(v as i64),
            (2, Wire::Bytes(b)) => {
                let mut preconditions = json!({});
                for (n, w) in decode(b)? {
                    match (n, w) {
                        (1, Wire::Bytes(uid)) => preconditions["uid"] = json!(text(uid)?),
                        (2, Wire::Bytes(rv)) => {
                            preconditions["resourceVersion"] = json!(text(rv)?);
                        }
                        _ => {}
                    }
                }
                options["preconditions"] = preconditions;
            }
            (3, Wire::Varint(v)) => options["orphanDependents"] = json!(v != 0),
            (4, Wire::Bytes(b)) => options["propagationPolicy"] = json!(text(b)?),
            (5, Wire::Bytes(b)) => dry_run.push(json!(text(b)?)),
            _ => {}
        }
    }
    if !dry_run.is_empty() {
        options["dryRun"] = Value::Array(dry_run);
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protobuf::Writer;

    fn entry(key: &str, value: &[u8]) -> Writer {
        let mut w = Writer::default();
        w.string(1, key).bytes(2, value);
        w
    }

    #[test]
    fn a_helm_release_secret_decodes_with_its_labels_type_and_data() {
        let mut meta = Writer::default();
        meta.string(1, "sh.helm.release.v1.svc-lb.v1")
            .string(3, "default")
            .string(6, "42")
            .message(11, entry("owner", b"helm"))
            .message(11, entry("status", b"deployed"));
        let mut secret = Writer::default();
        secret
            .message(1, meta)
            .message(2, entry("release", b"\x1f\x8b gzip"))
            .string(3, "helm.sh/release.v1")
            .boolean(5, true);
        let json = secret_to_json(&secret.finish()).unwrap();
        assert_eq!(json["metadata"]["name"], "sh.helm.release.v1.svc-lb.v1");
        assert_eq!(json["metadata"]["namespace"], "default");
        assert_eq!(json["metadata"]["resourceVersion"], "42");
        assert_eq!(json["metadata"]["labels"]["owner"], "helm");
        assert_eq!(json["metadata"]["labels"]["status"], "deployed");
        assert_eq!(json["type"], "helm.sh/release.v1");
        assert_eq!(json["data"]["release"], "H4sgZ3ppcA==");
        assert_eq!(json["immutable"], true);
    }

    #[test]
    fn a_namespace_decodes_with_its_labels() {
        let mut meta = Writer::default();
        meta.string(1, "shop").message(11, entry("team", b"a"));
        let mut namespace = Writer::default();
        namespace.message(1, meta);
        let json = namespace_to_json(&namespace.finish()).unwrap();
        assert_eq!(json["metadata"]["name"], "shop");
        assert_eq!(json["metadata"]["labels"]["team"], "a");
    }

    #[test]
    fn delete_options_decode_with_their_preconditions_and_policy() {
        let mut preconditions = Writer::default();
        preconditions.string(1, "u-1").string(2, "7");
        let mut options = Writer::default();
        options
            .message(2, preconditions)
            .string(4, "Background")
            .string(5, "All");
        let json = delete_options_to_json(&options.finish()).unwrap();
        assert_eq!(json["preconditions"]["uid"], "u-1");
        assert_eq!(json["preconditions"]["resourceVersion"], "7");
        assert_eq!(json["propagationPolicy"], "Background");
        assert_eq!(json["dryRun"][0], "All");
        assert!(json.get("gracePeriodSeconds").is_none());
    }

    #[test]
    fn owner_references_are_refused_not_dropped() {
        let mut meta = Writer::default();
        meta.string(1, "s").bytes(13, b"");
        let mut secret = Writer::default();
        secret.message(1, meta);
        let error = secret_to_json(&secret.finish()).unwrap_err();
        assert!(
            error.to_status()["message"]
                .as_str()
                .unwrap()
                .contains("ownerReferences")
        );
    }
}
