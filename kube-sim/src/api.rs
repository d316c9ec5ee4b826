//! HTTP front of the store: maps Kubernetes REST paths and verbs to store
//! operations. Paths are parsed by hand because the API's shapes overlap
//! (`/api/v1/namespaces/{name}/status` vs `/api/v1/namespaces/{ns}/{plural}`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::auth;
use crate::discovery;
use crate::error::ApiError;
use crate::gc::{self, Preconditions, Propagation};
use crate::partial;
use crate::registry::{self, ResourceType};
use crate::selector::{FieldSelector, LabelSelector};
use crate::server::Shared;
use crate::table;
use crate::watch;

/// One parsed resource request.
#[derive(Debug)]
pub(crate) struct Target {
    pub rt: &'static ResourceType,
    /// `Some` for a namespaced path, `None` for a cluster-wide one.
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub status: bool,
}

enum Route {
    Discovery(Value),
    Resource(Target),
    /// A review answered at once (`auth::reviews`).
    Review {
        group: &'static str,
        plural: String,
        namespace: String,
    },
    /// `serviceaccounts/<name>/token`.
    Token {
        namespace: String,
        name: String,
    },
}

fn parse(path: &str) -> Result<Route, ApiError> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let not_found = || {
        ApiError::not_found(format!(
            "the server could not find the requested resource ({path})"
        ))
    };
    // A real server routes no path with an empty segment; authorization
    // (`auth::Attributes`) reads such paths differently, so refuse them.
    if segments.iter().any(|s| s.is_empty()) && path != "/" {
        return Err(not_found());
    }
    let (group, version, rest) = match segments.as_slice() {
        ["version"] => return Ok(Route::Discovery(discovery::version())),
        ["openapi", "v3"] => return Ok(Route::Discovery(crate::openapi::root())),
        ["openapi", "v3", rest @ ..] => {
            return crate::openapi::at(&rest.join("/"))
                .map(Route::Discovery)
                .ok_or_else(not_found);
        }
        ["api"] => return Ok(Route::Discovery(discovery::core_versions())),
        ["apis"] => return Ok(Route::Discovery(discovery::groups())),
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return Err(not_found()),
    };
    let (namespace, rest) = match rest {
        [] => {
            return discovery::resources(group, version)
                .map(Route::Discovery)
                .ok_or_else(not_found);
        }
        ["namespaces", ns, plural, tail @ ..] if *plural != "status" => (Some(ns.to_string()), {
            let mut v = vec![*plural];
            v.extend_from_slice(tail);
            v
        }),
        other => (None, other.to_vec()),
    };
    if let [plural] = rest.as_slice()
        && version == "v1"
        && let Some(review) = registry::REVIEWS.iter().find(|(g, p, _, namespaced)| {
            *g == group && p == plural && *namespaced == namespace.is_some()
        })
    {
        return Ok(Route::Review {
            group: review.0,
            plural: review.1.to_string(),
            namespace: namespace.unwrap_or_default(),
        });
    }
    let rt = registry::find(group, version, rest[0]).ok_or_else(not_found)?;
    if let (Some(namespace), [_, name, "token"]) = (&namespace, rest.as_slice())
        && rt.plural == "serviceaccounts"
        && rt.group.is_empty()
    {
        return Ok(Route::Token {
            namespace: namespace.clone(),
            name: name.to_string(),
        });
    }
    let (name, status) = match rest[1..] {
        [] => (None, false),
        [name] => (Some(name.to_string()), false),
        [name, "status"] if rt.status => (Some(name.to_string()), true),
        _ => return Err(not_found()),
    };
    if namespace.is_some() && !rt.namespaced {
        return Err(not_found());
    }
    Ok(Route::Resource(Target {
        rt,
        namespace,
        name,
        status,
    }))
}

pub(crate) fn accept(headers: &HeaderMap) -> &str {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

pub(crate) fn user_agent(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
}

pub(crate) fn json_response(code: StatusCode, value: Value) -> Response {
    (code, axum::Json(value)).into_response()
}

pub(crate) fn parse_body(headers: &HeaderMap, body: &Bytes) -> Result<Value, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    if content_type.starts_with(crate::protobuf::CONTENT_TYPE) {
        crate::protobuf::object_to_json(body)
    } else if content_type.contains("yaml") {
        serde_yaml_ng::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("invalid YAML body: {e}")))
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
    }
}

pub(crate) async fn dispatch(
    shared: &Arc<Shared>,
    method: &Method,
    path: &str,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &Bytes,
    attributes: &auth::Attributes,
) -> Result<Response, ApiError> {
    let target = match parse(path)? {
        Route::Discovery(value) if method == Method::GET => {
            return Ok(json_response(StatusCode::OK, value));
        }
        Route::Discovery(_) => return Err(ApiError::method_not_allowed("discovery is read-only")),
        Route::Review {
            group,
            plural,
            namespace,
        } if method == Method::POST => {
            shared.requests.record(method, true, false, &plural);
            shared.requests.record_call(crate::requests::ApiCall {
                user_agent: user_agent(headers).unwrap_or_default().to_string(),
                user: attributes.user.username.clone(),
                verb: "create".into(),
                group: group.to_string(),
                resource: plural.clone(),
                namespace: (!namespace.is_empty()).then(|| namespace.clone()),
            });
            let review = parse_body(headers, body)?;
            let answer = auth::reviews::answer(
                &shared.store,
                &attributes.user,
                &plural,
                &namespace,
                review,
            )?;
            return Ok(json_response(StatusCode::CREATED, answer));
        }
        Route::Token { namespace, name } if method == Method::POST => {
            let request = parse_body(headers, body)?;
            let answer = auth::reviews::token_request(
                &shared.store,
                &shared.tokens,
                &namespace,
                &name,
                request,
            )?;
            return Ok(json_response(StatusCode::CREATED, answer));
        }
        Route::Review { .. } | Route::Token { .. } => {
            return Err(ApiError::method_not_allowed(format!(
                "{method} is not supported on {path}"
            )));
        }
        Route::Resource(target) => target,
    };
    let store = &shared.store;
    let rt = target.rt;
    let namespace = target.namespace.clone().unwrap_or_default();
    let watching = query.get("watch").is_some_and(|w| w == "true" || w == "1");
    let resource = if target.status {
        format!("{}/status", rt.plural)
    } else {
        rt.plural.to_string()
    };
    shared
        .requests
        .record(method, target.name.is_none(), watching, &resource);
    shared.requests.record_call(crate::requests::ApiCall {
        user_agent: user_agent(headers).unwrap_or_default().to_string(),
        user: attributes.user.username.clone(),
        verb: crate::requests::rbac_verb(method, target.name.is_none(), watching),
        group: rt.group.to_string(),
        resource: resource.clone(),
        namespace: target.namespace.clone(),
    });
    match (method.clone(), &target.name) {
        (Method::GET, None) => {
            let labels =
                LabelSelector::parse(query.get("labelSelector").map_or("", String::as_str))?;
            let fields = FieldSelector::parse(
                query.get("fieldSelector").map_or("", String::as_str),
                rt.kind,
            )?;
            let metadata_only = partial::wants_metadata(accept(headers));
            if watching {
                return watch::respond(
                    shared.clone(),
                    target,
                    labels,
                    fields,
                    query,
                    metadata_only,
                );
            }
            let (items, version) = store.list(rt, target.namespace.as_deref(), &labels, &fields);
            if metadata_only {
                return Ok(json_response(
                    StatusCode::OK,
                    partial::metadata_list(&items, version),
                ));
            }
            if table::wants_table(accept(headers)) {
                return Ok(json_response(
                    StatusCode::OK,
                    table::table(rt, &items, Some(version)),
                ));
            }
            Ok(json_response(
                StatusCode::OK,
                json!({
                    "apiVersion": rt.api_version(),
                    "kind": rt.list_kind(),
                    "metadata": {"resourceVersion": version.to_string()},
                    "items": items,
                }),
            ))
        }
        (Method::GET, Some(name)) => {
            let object = store.get(rt, &namespace, name)?;
            if partial::wants_metadata(accept(headers)) {
                return Ok(json_response(StatusCode::OK, partial::metadata_of(&object)));
            }
            // One object as a Table too: `kubectl get service web`.
            if table::wants_table(accept(headers)) {
                let table = table::table(rt, std::slice::from_ref(&object), None);
                return Ok(json_response(StatusCode::OK, table));
            }
            Ok(json_response(StatusCode::OK, object))
        }
        (Method::POST, None) => {
            let object = parse_body(headers, body)?;
            let namespace = target
                .namespace
                .clone()
                .or_else(|| object["metadata"]["namespace"].as_str().map(str::to_string))
                .unwrap_or_default();
            let created = store.create(rt, &namespace, object)?;
            let name = created["metadata"]["name"].as_str().unwrap_or_default();
            let manager = crate::patch::manager_of(query, user_agent(headers));
            crate::patch::record_write(store, &target, name, &manager, &Value::Null, &created);
            Ok(json_response(StatusCode::CREATED, created))
        }
        (Method::PUT, Some(name)) => {
            let object = parse_body(headers, body)?;
            let before = store.get(rt, &namespace, name)?;
            let replaced = store.replace(rt, &namespace, name, object, target.status)?;
            let manager = crate::patch::manager_of(query, user_agent(headers));
            crate::patch::record_write(store, &target, name, &manager, &before, &replaced);
            gc::settle(store);
            Ok(json_response(StatusCode::OK, replaced))
        }
        (Method::PATCH, Some(name)) => {
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let patch = parse_body(headers, body)?;
            // An apply that creates is also authorized as a create
            // (`handlers/patch.go`: `withAuthorization` on createValidation).
            if crate::patch::is_apply(&content_type)
                && !target.status
                && store.get(rt, &namespace, name).is_err()
            {
                let create = auth::Attributes {
                    verb: "create".into(),
                    ..attributes.clone()
                };
                crate::handler::authorize(shared, &create)?;
            }
            let object = crate::patch::apply(
                store,
                &target,
                name,
                &content_type,
                patch,
                query,
                user_agent(headers),
            )?;
            gc::settle(store);
            Ok(json_response(StatusCode::OK, object))
        }
        (Method::DELETE, Some(name)) => {
            // kube-rs and kubectl send DeleteOptions as the body; the query
            // form is accepted too, as the real server does.
            let options = if body.is_empty() {
                Value::Null
            } else {
                parse_body(headers, body)?
            };
            let propagation = Propagation::parse(
                options["propagationPolicy"]
                    .as_str()
                    .or(query.get("propagationPolicy").map(String::as_str)),
            )?;
            let preconditions = Preconditions {
                uid: options["preconditions"]["uid"].as_str(),
                resource_version: options["preconditions"]["resourceVersion"].as_str(),
                grace_period: options["gracePeriodSeconds"]
                    .as_i64()
                    .or_else(|| query.get("gracePeriodSeconds").and_then(|g| g.parse().ok())),
            };
            let object = gc::delete(store, rt, &namespace, name, propagation, &preconditions)?;
            Ok(json_response(StatusCode::OK, object))
        }
        _ => Err(ApiError::method_not_allowed(format!(
            "{method} is not supported on {path}"
        ))),
    }
}
