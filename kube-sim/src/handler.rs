//! The entry of every request, in the real server's handler-chain order
//! (`k8s.io/apiserver/pkg/server/config.go`): injected faults, then
//! authentication and impersonation, then authorization (a denial is
//! recorded and answered 403), then the request itself (`api::dispatch`) in
//! the context admission reads (user, field validation), then the root CA
//! publisher and any warnings.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::admission::{FieldValidation, REQUEST, RequestContext};
use crate::api::{accept, dispatch, json_response};
use crate::auth;
use crate::error::ApiError;
use crate::requests::Denial;
use crate::server::Shared;

/// The single handler behind every path: authentication, impersonation
/// and authorization first (`auth`), as the real handler chain orders them.
pub(crate) async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(fault) = shared.faults.take_matching(&method, uri.path()) {
        return fault.into_response();
    }
    if let Some(delay) = shared.faults.latency() {
        tokio::time::sleep(delay).await;
    }
    let impersonating = headers
        .keys()
        .any(|k| k.as_str().starts_with("impersonate-"));
    let user = match auth::authenticate(&shared.tokens, &shared.store, &headers).and_then(|user| {
        if !impersonating {
            return Ok(user);
        }
        shared
            .store
            .read(|view| auth::impersonate(view, user, &headers))
    }) {
        Ok(user) => user,
        Err(error) => return error.into_response(),
    };
    let path = uri.path();
    let attributes = auth::Attributes::of_request(user.clone(), &method, path, &query);
    if let Err(denied) = authorize(&shared, &attributes) {
        return denied.into_response();
    }
    match path {
        "/healthz" | "/readyz" | "/livez" => return (StatusCode::OK, "ok").into_response(),
        "/kube-sim/requests" => {
            return json_response(StatusCode::OK, json!(shared.requests.snapshot()));
        }
        "/openapi/v2" if method == Method::GET => {
            let document = crate::openapi_v2::document();
            if accept(&headers).contains("protobuf") {
                let body = crate::openapi_v2::protobuf(&document);
                return ([(header::CONTENT_TYPE, crate::openapi_v2::PROTOBUF)], body)
                    .into_response();
            }
            return json_response(StatusCode::OK, document);
        }
        _ => {}
    }
    let field_validation =
        match FieldValidation::parse(query.get("fieldValidation").map(String::as_str)) {
            Ok(v) => v,
            Err(error) => return error.into_response(),
        };
    let context = Arc::new(RequestContext {
        user,
        attributes: attributes.clone(),
        field_validation,
        warnings: Default::default(),
    });
    let result = REQUEST
        .scope(
            context.clone(),
            dispatch(&shared, &method, path, &query, &headers, &body, &attributes),
        )
        .await;
    if method != Method::GET && touches_root_ca(path) {
        crate::root_ca::publish(&shared.store, &shared.certificates.ca_pem);
    }
    let mut response = result.unwrap_or_else(IntoResponse::into_response);
    let warnings = context.warnings.lock().unwrap_or_else(|p| p.into_inner());
    for warning in warnings.iter() {
        if let Ok(value) = format!("299 - {warning:?}").parse() {
            response.headers_mut().append(header::WARNING, value);
        }
    }
    response
}

/// Whether a write at `path` may have changed a namespace or a
/// `kube-root-ca.crt` ConfigMap (then the publisher looks again).
fn touches_root_ca(path: &str) -> bool {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    matches!(parts.as_slice(), ["api", "v1", "namespaces", ..] if parts.len() <= 5)
        || path.ends_with(&format!("/configmaps/{}", crate::root_ca::NAME))
}

/// Refuses a request RBAC does not allow, recording the denial.
pub(crate) fn authorize(shared: &Shared, attributes: &auth::Attributes) -> Result<(), ApiError> {
    // `system:masters` needs no look at the roles (nor the store's lock).
    if attributes.user.in_group(auth::tokens::MASTERS_GROUP)
        || shared
            .store
            .read(|view| auth::rbac::allowed(view, attributes))
    {
        return Ok(());
    }
    shared.requests.record_denial(Denial {
        user: attributes.user.username.clone(),
        verb: attributes.verb.clone(),
        group: attributes.api_group.clone(),
        resource: if attributes.resource_request {
            attributes.combined_resource()
        } else {
            String::new()
        },
        namespace: attributes.namespace.clone(),
        name: attributes.name.clone(),
        path: attributes.path.clone(),
    });
    Err(auth::rbac::forbidden(attributes))
}
