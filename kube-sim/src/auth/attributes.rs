//! The authorization attributes of a request, derived from its method, path
//! and query exactly as the real server's `RequestInfoFactory` does
//! (`k8s.io/apiserver/pkg/endpoints/request/requestinfo.go`):
//!
//! - paths under `/api/<v>/…` and `/apis/<g>/<v>/…` with a resource are
//!   resource requests; everything else (`/api`, `/apis/<g>/<v>`, `/version`,
//!   `/openapi/v3`, `/healthz`) is a non-resource request whose verb is the
//!   lower-case HTTP method;
//! - `namespaces/<ns>/<resource>/…` sets the namespace; `namespaces/<ns>`
//!   itself (and its `status`/`finalize`) is resource `namespaces` with name
//!   and namespace `<ns>`;
//! - POST create, GET get, PUT update, PATCH patch, DELETE delete; a GET
//!   without a name is `list` (or `watch` with `watch=true`), a DELETE
//!   without a name `deletecollection`;
//! - a list or watch whose field selector requires `metadata.name=<n>` is
//!   authorized as a request for the object `<n>` (so `resourceNames`
//!   rules apply to it).

use std::collections::HashMap;

use axum::http::Method;

use crate::auth::UserInfo;

/// What RBAC decides on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attributes {
    pub user: UserInfo,
    pub verb: String,
    pub resource_request: bool,
    pub api_group: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    /// The request path (non-resource requests are authorized on it).
    pub path: String,
}

/// `namespaces/<ns>/<x>` where `<x>` is a subresource of the namespace.
const NAMESPACE_SUBRESOURCES: &[&str] = &["status", "finalize"];

impl Attributes {
    /// Attributes of a resource request (for reviews and internal checks).
    pub fn resource(
        user: UserInfo,
        verb: &str,
        api_group: &str,
        resource: &str,
        namespace: &str,
        name: &str,
    ) -> Self {
        let (resource, subresource) = resource.split_once('/').unwrap_or((resource, ""));
        Self {
            user,
            verb: verb.to_string(),
            resource_request: true,
            api_group: api_group.to_string(),
            resource: resource.to_string(),
            subresource: subresource.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
            path: String::new(),
        }
    }

    /// Attributes of a non-resource request.
    pub fn non_resource(user: UserInfo, verb: &str, path: &str) -> Self {
        Self {
            user,
            verb: verb.to_string(),
            resource_request: false,
            api_group: String::new(),
            resource: String::new(),
            subresource: String::new(),
            namespace: String::new(),
            name: String::new(),
            path: path.to_string(),
        }
    }

    /// The attributes of an HTTP request.
    pub fn of_request(
        user: UserInfo,
        method: &Method,
        path: &str,
        query: &HashMap<String, String>,
    ) -> Self {
        let method_verb = method.as_str().to_ascii_lowercase();
        let non_resource = |user| Self::non_resource(user, &method_verb, path);
        // As `splitPath`: empty segments stay (`/apis//v1/secrets` is not
        // `/apis/v1/secrets`), so this reads the path as the router does.
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        if parts.len() < 3 {
            return non_resource(user);
        }
        let (group, rest) = match parts[0] {
            "api" => ("", &parts[1..]),
            "apis" if parts.len() >= 4 => (parts[1], &parts[2..]),
            _ => return non_resource(user),
        };
        // rest = version, then the resource parts.
        let mut rest = &rest[1..];
        let mut namespace = "";
        if rest[0] == "namespaces" && rest.len() > 1 {
            namespace = rest[1];
            if rest.len() > 2 && !NAMESPACE_SUBRESOURCES.contains(&rest[2]) {
                rest = &rest[2..];
            }
        }
        let resource = rest[0];
        let name = rest.get(1).copied().unwrap_or_default();
        let subresource = rest.get(2).copied().unwrap_or_default();
        let mut verb = match *method {
            Method::POST => "create",
            Method::GET | Method::HEAD => "get",
            Method::PUT => "update",
            Method::PATCH => "patch",
            Method::DELETE => "delete",
            _ => "",
        }
        .to_string();
        let mut name = name.to_string();
        if name.is_empty() && verb == "get" {
            let watch = query.get("watch").is_some_and(|w| w == "true" || w == "1");
            verb = if watch { "watch" } else { "list" }.to_string();
            if let Some(selected) = query.get("fieldSelector").and_then(|s| name_required_by(s)) {
                name = selected;
            }
        }
        if name.is_empty() && verb == "delete" {
            verb = "deletecollection".to_string();
        }
        Self {
            user,
            verb,
            resource_request: true,
            api_group: group.to_string(),
            resource: resource.to_string(),
            subresource: subresource.to_string(),
            namespace: namespace.to_string(),
            name,
            path: path.to_string(),
        }
    }

    /// `resource` or `resource/subresource`.
    pub fn combined_resource(&self) -> String {
        if self.subresource.is_empty() {
            self.resource.clone()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        }
    }
}

/// The name a field selector requires exactly (`metadata.name=x` or `==x`
/// among its terms), as `fields.Selector.RequiresExactMatch` finds it; only
/// a valid path segment counts.
fn name_required_by(selector: &str) -> Option<String> {
    selector.split(',').find_map(|term| {
        let (field, value) = term
            .split_once("==")
            .or_else(|| term.split_once('='))
            .filter(|(f, _)| !f.ends_with('!'))?;
        (field.trim() == "metadata.name"
            && !value.is_empty()
            && value != "."
            && value != ".."
            && !value.contains('/')
            && !value.contains('%'))
        .then(|| value.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(method: Method, path: &str, query: &[(&str, &str)]) -> Attributes {
        let query = query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Attributes::of_request(UserInfo::anonymous(), &method, path, &query)
    }

    #[test]
    fn discovery_and_health_paths_are_non_resource_requests() {
        for path in [
            "/api",
            "/api/v1",
            "/apis",
            "/apis/apps/v1",
            "/version",
            "/openapi/v3",
        ] {
            let a = attrs(Method::GET, path, &[]);
            assert!(!a.resource_request, "{path}");
            assert_eq!(a.verb, "get");
        }
        assert_eq!(attrs(Method::POST, "/healthz", &[]).verb, "post");
    }

    #[test]
    fn namespaced_collections_objects_and_subresources() {
        let a = attrs(Method::GET, "/api/v1/namespaces/ns/services", &[]);
        assert_eq!(
            (a.verb.as_str(), a.resource.as_str(), a.namespace.as_str()),
            ("list", "services", "ns")
        );
        let a = attrs(
            Method::PATCH,
            "/api/v1/namespaces/ns/services/web/status",
            &[],
        );
        assert_eq!(
            (a.verb.as_str(), a.combined_resource(), a.name.as_str()),
            ("patch", "services/status".to_string(), "web")
        );
        let a = attrs(
            Method::POST,
            "/api/v1/namespaces/ns/serviceaccounts/sa/token",
            &[],
        );
        assert_eq!(
            (a.verb.as_str(), a.subresource.as_str()),
            ("create", "token")
        );
        let a = attrs(
            Method::GET,
            "/apis/apps/v1/daemonsets",
            &[("watch", "true")],
        );
        assert_eq!(
            (a.verb.as_str(), a.api_group.as_str(), a.namespace.as_str()),
            ("watch", "apps", "")
        );
        let a = attrs(Method::DELETE, "/api/v1/namespaces/ns/secrets", &[]);
        assert_eq!(a.verb, "deletecollection");
    }

    #[test]
    fn empty_segments_are_not_skipped() {
        // A resource request (so no discovery rule covers it), as the
        // real `splitPath` reads it; the router answers 404 for it anyway.
        let a = attrs(Method::GET, "/apis//v1/secrets", &[]);
        assert!(a.resource_request);
        assert_eq!((a.api_group.as_str(), a.resource.as_str()), ("", "secrets"));
    }

    #[test]
    fn a_namespace_is_its_own_namespace() {
        let a = attrs(Method::GET, "/api/v1/namespaces/team", &[]);
        assert_eq!(
            (a.resource.as_str(), a.name.as_str(), a.namespace.as_str()),
            ("namespaces", "team", "team")
        );
        let a = attrs(Method::PUT, "/api/v1/namespaces/team/status", &[]);
        assert_eq!(
            (a.combined_resource().as_str(), a.name.as_str()),
            ("namespaces/status", "team")
        );
    }

    #[test]
    fn a_name_field_selector_names_the_object_of_a_list_or_watch() {
        let a = attrs(
            Method::GET,
            "/api/v1/namespaces/ns/secrets",
            &[("fieldSelector", "metadata.name=state"), ("watch", "1")],
        );
        assert_eq!((a.verb.as_str(), a.name.as_str()), ("watch", "state"));
        let a = attrs(
            Method::GET,
            "/api/v1/namespaces/ns/secrets",
            &[(
                "fieldSelector",
                "metadata.namespace=ns,metadata.name==state",
            )],
        );
        assert_eq!(a.name, "state");
        for selector in ["metadata.name!=state", "metadata.namespace=ns", ""] {
            let a = attrs(
                Method::GET,
                "/api/v1/namespaces/ns/secrets",
                &[("fieldSelector", selector)],
            );
            assert_eq!(a.name, "", "{selector}");
        }
    }
}
