//! `/openapi/v2`: the Swagger 2.0 document, as JSON or, for clients that ask
//! for `application/com.github.proto-openapi.spec.v2@v1.0+protobuf` (what
//! client-go's `OpenAPISchema()` sends, with no JSON fallback), in the wire
//! format of gnostic's `openapi.v2.Document` (`openapiv2/OpenAPIv2.proto`).
//!
//! It says what the v3 documents say (`openapi`): every kind's PATCH
//! operation carries `x-kubernetes-group-version-kind` and the
//! `fieldValidation` query parameter, so kubectl's and Helm's v2 verifier
//! (`cli-runtime/pkg/resource/query_param_verifier.go`) also leaves
//! validation to the server. Definitions are as shallow as the v3 schemas
//! and carry no group-version-kind, so `kubectl apply` keeps computing
//! patches from its built-in types (`patcher.go` treats a kind it cannot
//! find in the document that way).

use serde_json::{Value, json};

use crate::openapi::{PATCH_TYPES, collection_path, gvk, schema_name};
use crate::protobuf::Writer;
use crate::registry::{RESOURCES, ResourceType};

/// The media type of the protobuf form.
pub const PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";

fn operation(rt: &ResourceType, action: &str, consumes: &[&str]) -> Value {
    let query =
        |name: &str| json!({"name": name, "in": "query", "type": "string", "uniqueItems": true});
    json!({
        "operationId": format!("{action}{}", rt.kind),
        "consumes": consumes,
        "produces": ["application/json", "application/yaml"],
        "parameters": [query("dryRun"), query("fieldManager"), query("fieldValidation"), query("force")],
        "responses": {"200": {"description": "OK"}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk(rt),
    })
}

/// The Swagger 2.0 document, as JSON.
pub fn document() -> Value {
    let patch_types = PATCH_TYPES;
    let mut paths = serde_json::Map::new();
    let mut definitions = serde_json::Map::new();
    for rt in RESOURCES {
        let collection = collection_path(rt);
        paths.insert(
            collection.clone(),
            json!({"post": operation(rt, "post", &["application/json"])}),
        );
        paths.insert(
            format!("{collection}/{{name}}"),
            json!({"patch": operation(rt, "patch", &patch_types),
                   "put": operation(rt, "put", &["application/json"])}),
        );
        definitions.insert(
            schema_name(rt),
            json!({
                "description": format!("{} ({})", rt.kind, rt.api_version()),
                "type": "object",
                "properties": {
                    "apiVersion": {"type": "string"},
                    "kind": {"type": "string"},
                    "metadata": {"type": "object"},
                },
            }),
        );
    }
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": crate::discovery::GIT_VERSION},
        "paths": paths,
        "definitions": definitions,
    })
}

fn strings(value: &Value) -> impl Iterator<Item = &str> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

fn entries(value: &Value) -> impl Iterator<Item = (&String, &Value)> {
    value.as_object().into_iter().flatten()
}

/// `NamedAny` (1 name, 2 `Any` with 2 yaml) per `x-` key.
fn vendor_extensions(writer: &mut Writer, number: u64, object: &Value) {
    for (key, value) in entries(object).filter(|(k, _)| k.starts_with("x-")) {
        let mut any = Writer::default();
        any.string(2, &value.to_string());
        let mut named = Writer::default();
        named.string(1, key).message(2, any);
        writer.message(number, named);
    }
}

/// `QueryParameterSubSchema` (2 in, 4 name, 6 type, 20 unique_items)
/// inside `NonBodyParameter` (3), `Parameter` (2), `ParametersItem` (1).
fn parameter(value: &Value) -> Writer {
    let mut query = Writer::default();
    query
        .string(2, value["in"].as_str().unwrap_or_default())
        .string(4, value["name"].as_str().unwrap_or_default())
        .string(6, value["type"].as_str().unwrap_or_default())
        .boolean(20, value["uniqueItems"] == true);
    let mut non_body = Writer::default();
    non_body.message(3, query);
    let mut parameter = Writer::default();
    parameter.message(2, non_body);
    let mut item = Writer::default();
    item.message(1, parameter);
    item
}

/// `Operation`: 5 operation_id, 6 produces, 7 consumes, 8 parameters,
/// 9 responses, 13 vendor_extension.
fn operation_message(op: &Value) -> Writer {
    let mut w = Writer::default();
    w.string(5, op["operationId"].as_str().unwrap_or_default());
    for produced in strings(&op["produces"]) {
        w.string(6, produced);
    }
    for consumed in strings(&op["consumes"]) {
        w.string(7, consumed);
    }
    for p in op["parameters"].as_array().into_iter().flatten() {
        w.message(8, parameter(p));
    }
    let mut responses = Writer::default();
    for (code, response) in entries(&op["responses"]) {
        let mut body = Writer::default();
        body.string(1, response["description"].as_str().unwrap_or_default());
        let mut value = Writer::default();
        value.message(1, body);
        let mut named = Writer::default();
        named.string(1, code).message(2, value);
        responses.message(1, named);
    }
    w.message(9, responses);
    vendor_extensions(&mut w, 13, op);
    w
}

/// `Schema`: 4 description, 22 type (`TypeItem` 1), 25 properties
/// (`Properties` 1 `NamedSchema`), 31 vendor_extension.
fn schema_message(schema: &Value) -> Writer {
    let mut w = Writer::default();
    w.string(4, schema["description"].as_str().unwrap_or_default());
    if let Some(kind) = schema["type"].as_str() {
        let mut type_item = Writer::default();
        type_item.string(1, kind);
        w.message(22, type_item);
    }
    if schema["properties"].is_object() {
        let mut properties = Writer::default();
        for (name, property) in entries(&schema["properties"]) {
            let mut named = Writer::default();
            named.string(1, name).message(2, schema_message(property));
            properties.message(1, named);
        }
        w.message(25, properties);
    }
    vendor_extensions(&mut w, 31, schema);
    w
}

/// The document in the wire format of `openapi.v2.Document`: 1 swagger,
/// 2 info (1 title, 2 version), 8 paths (2 `NamedPathItem`: 1 name,
/// 2 `PathItem` with 2 get, 3 put, 4 post, 5 delete, 8 patch),
/// 9 definitions (1 `NamedSchema`).
pub fn protobuf(document: &Value) -> Vec<u8> {
    let mut info = Writer::default();
    info.string(1, document["info"]["title"].as_str().unwrap_or_default())
        .string(2, document["info"]["version"].as_str().unwrap_or_default());
    let mut paths = Writer::default();
    for (path, item) in entries(&document["paths"]) {
        let mut path_item = Writer::default();
        for (verb, number) in [
            ("get", 2),
            ("put", 3),
            ("post", 4),
            ("delete", 5),
            ("patch", 8),
        ] {
            if item[verb].is_object() {
                path_item.message(number, operation_message(&item[verb]));
            }
        }
        let mut named = Writer::default();
        named.string(1, path).message(2, path_item);
        paths.message(2, named);
    }
    let mut definitions = Writer::default();
    for (name, schema) in entries(&document["definitions"]) {
        let mut named = Writer::default();
        named.string(1, name).message(2, schema_message(schema));
        definitions.message(1, named);
    }
    let mut doc = Writer::default();
    doc.string(1, document["swagger"].as_str().unwrap_or_default())
        .message(2, info)
        .message(8, paths)
        .message(9, definitions);
    doc.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_patch_operation_with_field_validation() {
        let doc = document();
        for rt in RESOURCES {
            let found = entries(&doc["paths"]).any(|(_, item)| {
                item["patch"]["x-kubernetes-group-version-kind"]["kind"] == rt.kind
                    && item["patch"]["x-kubernetes-group-version-kind"]["group"] == rt.group
                    && item["patch"]["parameters"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|p| p["name"] == "fieldValidation" && p["in"] == "query")
            });
            assert!(found, "{}", rt.kind);
        }
        let bytes = protobuf(&doc);
        // Document: 1 swagger "2.0"; 8 paths holding one NamedPathItem
        // (field 2) per path, each named (1) with a PathItem (2).
        let document = crate::protobuf::fields(&bytes).unwrap();
        assert_eq!(document[0], (1, &b"2.0"[..]));
        let paths = document.iter().find(|(n, _)| *n == 8).unwrap().1;
        let items = crate::protobuf::fields(paths).unwrap();
        assert_eq!(items.len(), doc["paths"].as_object().unwrap().len());
        let first = crate::protobuf::fields(items[0].1).unwrap();
        assert!(
            doc["paths"]
                .get(std::str::from_utf8(first[0].1).unwrap())
                .is_some()
        );
    }
}
