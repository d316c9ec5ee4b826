//! Protobuf where clients insist on it: the request bodies kubectl sends for
//! reviews (decoded here) and Helm sends for its release Secrets and kubectl for Namespaces (see
//! `protobuf_objects`), and the `/openapi/v2` document (encoded with
//! [`Writer`], see `openapi_v2`).
//!
//! Reviews: kubectl's typed
//! clients (`auth can-i`, `auth whoami`) post
//! `application/vnd.kubernetes.protobuf`: the `k8s\0` magic, then a
//! `runtime.Unknown` envelope (`1: typeMeta`, `2: raw`) whose `raw` is the
//! object in the wire format of `k8s.io/api/*/generated.proto`. Only the
//! review specs are decoded (into the JSON the rest of the server reads);
//! answers go back as JSON, which client-go accepts.
//!
//! Hand-written: a few dozen lines of the wire format for four messages,
//! where a protobuf crate would need the generated types of the whole API.

use serde_json::{Value, json};

use crate::error::ApiError;

/// Writes protobuf fields: length-delimited strings and messages and
/// varint booleans, the only wire types the encoded documents use.
#[derive(Debug, Default)]
pub(crate) struct Writer(Vec<u8>);

impl Writer {
    fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.0.push((value as u8) | 0x80);
            value >>= 7;
        }
        self.0.push(value as u8);
    }

    /// Field `number` with the bytes of a string or an encoded message.
    pub fn bytes(&mut self, number: u64, bytes: &[u8]) -> &mut Self {
        self.varint((number << 3) | 2);
        self.varint(bytes.len() as u64);
        self.0.extend_from_slice(bytes);
        self
    }

    /// Field `number` as a string, left out when empty (proto3 default).
    pub fn string(&mut self, number: u64, text: &str) -> &mut Self {
        if !text.is_empty() {
            self.bytes(number, text.as_bytes());
        }
        self
    }

    /// Field `number` as a nested message.
    pub fn message(&mut self, number: u64, message: Writer) -> &mut Self {
        self.bytes(number, &message.0)
    }

    /// Field `number` as a boolean, left out when false.
    pub fn boolean(&mut self, number: u64, value: bool) -> &mut Self {
        if value {
            self.varint(number << 3);
            self.varint(1);
        }
        self
    }

    /// The encoded bytes.
    pub fn finish(self) -> Vec<u8> {
        self.0
    }
}

/// The content type of Kubernetes protobuf bodies.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";
const MAGIC: &[u8] = b"k8s\0";

/// One field's value on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wire<'a> {
    /// A varint (integers, booleans, enums).
    Varint(u64),
    /// A length-delimited value (strings, bytes, messages, map entries).
    Bytes(&'a [u8]),
    /// A fixed 32- or 64-bit value (not read).
    Fixed,
}

/// Every field of a message, in order: its number and value.
pub(crate) fn decode(mut bytes: &[u8]) -> Result<Vec<(u64, Wire<'_>)>, ApiError> {
    let bad = || ApiError::bad_request("invalid protobuf body");
    let varint = |bytes: &mut &[u8]| -> Result<u64, ApiError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = bytes.split_first().ok_or_else(bad)?;
            *bytes = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(bad())
    };
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let key = varint(&mut bytes)?;
        let value = match key & 7 {
            0 => Wire::Varint(varint(&mut bytes)?),
            2 => {
                let len = usize::try_from(varint(&mut bytes)?).map_err(|_| bad())?;
                if len > bytes.len() {
                    return Err(bad());
                }
                let (value, rest) = bytes.split_at(len);
                bytes = rest;
                Wire::Bytes(value)
            }
            1 => {
                bytes = bytes.get(8..).ok_or_else(bad)?;
                Wire::Fixed
            }
            5 => {
                bytes = bytes.get(4..).ok_or_else(bad)?;
                Wire::Fixed
            }
            _ => return Err(bad()),
        };
        out.push((key >> 3, value));
    }
    Ok(out)
}

/// The length-delimited fields of a message: number and bytes.
pub(crate) fn fields(bytes: &[u8]) -> Result<Vec<(u64, &[u8])>, ApiError> {
    Ok(decode(bytes)?
        .into_iter()
        .filter_map(|(n, w)| match w {
            Wire::Bytes(b) => Some((n, b)),
            _ => None,
        })
        .collect())
}

fn field<'a>(fields: &[(u64, &'a [u8])], number: u64) -> Option<&'a [u8]> {
    fields.iter().find(|(n, _)| *n == number).map(|(_, b)| *b)
}

fn text(bytes: Option<&[u8]>) -> String {
    bytes
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default()
}

/// `ResourceAttributes`: namespace 1, verb 2, group 3, version 4,
/// resource 5, subresource 6, name 7.
fn resource_attributes(bytes: &[u8]) -> Result<Value, ApiError> {
    let f = fields(bytes)?;
    let names = [
        "namespace",
        "verb",
        "group",
        "version",
        "resource",
        "subresource",
        "name",
    ];
    let mut out = serde_json::Map::new();
    for (i, name) in names.iter().enumerate() {
        out.insert(name.to_string(), json!(text(field(&f, i as u64 + 1))));
    }
    Ok(Value::Object(out))
}

/// `SubjectAccessReviewSpec` (and the self one, a prefix of it):
/// resourceAttributes 1, nonResourceAttributes 2 (path 1, verb 2), user 3,
/// groups 4, uid 6.
fn access_review_spec(bytes: &[u8]) -> Result<Value, ApiError> {
    let f = fields(bytes)?;
    let mut spec = json!({});
    if let Some(attributes) = field(&f, 1) {
        spec["resourceAttributes"] = resource_attributes(attributes)?;
    }
    if let Some(attributes) = field(&f, 2) {
        let a = fields(attributes)?;
        spec["nonResourceAttributes"] =
            json!({"path": text(field(&a, 1)), "verb": text(field(&a, 2))});
    }
    if let Some(user) = field(&f, 3) {
        spec["user"] = json!(text(Some(user)));
    }
    let groups: Vec<String> = f
        .iter()
        .filter(|(n, _)| *n == 4)
        .map(|(_, b)| text(Some(b)))
        .collect();
    if !groups.is_empty() {
        spec["groups"] = json!(groups);
    }
    if let Some(uid) = field(&f, 6) {
        spec["uid"] = json!(text(Some(uid)));
    }
    Ok(spec)
}

/// The JSON form of a protobuf body: the `k8s\0` magic, then a
/// `runtime.Unknown` envelope (`typeMeta` 1, `raw` 2). Reviews, Secrets,
/// Namespaces and DeleteOptions are decoded; any other kind is refused with 415, naming it.
pub(crate) fn object_to_json(body: &[u8]) -> Result<Value, ApiError> {
    let envelope = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| ApiError::bad_request("protobuf body without the k8s magic"))?;
    let envelope = fields(envelope)?;
    let type_meta = fields(field(&envelope, 1).unwrap_or_default())?;
    let kind = text(field(&type_meta, 2));
    let raw = field(&envelope, 2).unwrap_or_default();
    match kind.as_str() {
        "Secret" => crate::protobuf_objects::secret_to_json(raw),
        "Namespace" => crate::protobuf_objects::namespace_to_json(raw),
        "DeleteOptions" => crate::protobuf_objects::delete_options_to_json(raw),
        k if k.ends_with("Review") => {
            let raw = fields(raw)?;
            let mut review = json!({
                "apiVersion": text(field(&type_meta, 1)),
                "kind": kind,
                "metadata": {},
            });
            if let Some(spec) = field(&raw, 2) {
                review["spec"] = access_review_spec(spec)?;
            }
            Ok(review)
        }
        other => Err(ApiError::unsupported_media_type(format!(
            "kube-sim decodes protobuf bodies of Secrets, Namespaces, DeleteOptions and reviews only, not {other:?}; send JSON"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delimited(number: u64, bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![((number << 3) | 2) as u8, bytes.len() as u8];
        out.extend_from_slice(bytes);
        out
    }

    #[test]
    fn a_self_subject_access_review_decodes_to_its_json() {
        let attributes = [
            delimited(1, b"ns"),
            delimited(2, b"list"),
            delimited(5, b"secrets"),
        ]
        .concat();
        let spec = delimited(1, &attributes);
        let raw = [delimited(1, b""), delimited(2, &spec)].concat();
        let type_meta = [
            delimited(1, b"authorization.k8s.io/v1"),
            delimited(2, b"SelfSubjectAccessReview"),
        ]
        .concat();
        let body = [MAGIC.to_vec(), delimited(1, &type_meta), delimited(2, &raw)].concat();
        let review = object_to_json(&body).unwrap();
        assert_eq!(review["kind"], "SelfSubjectAccessReview");
        let attributes = &review["spec"]["resourceAttributes"];
        assert_eq!(
            (
                &attributes["namespace"],
                &attributes["verb"],
                &attributes["resource"]
            ),
            (&json!("ns"), &json!("list"), &json!("secrets"))
        );
        assert!(object_to_json(b"{}").is_err());
    }
}
