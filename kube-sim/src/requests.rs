//! Counts of the requests the server answered, by verb and resource, so
//! tests and benchmarks can say how many API calls a client made (e.g. "no
//! write when nothing changed", "requests per Service"). Served as JSON on
//! `/kube-sim/requests` for a server running as a separate process.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use axum::http::Method;

/// Requests that reached the API (injected faults are not counted), keyed
/// `"<VERB> <resource>"`: `"PATCH daemonsets"`, `"LIST nodes"`,
/// `"WATCH services"`, `"PATCH services/status"`.
#[derive(Debug, Default)]
pub struct RequestCounts {
    counts: Mutex<BTreeMap<String, u64>>,
    /// The same counts per user (RBAC verbs: `get leases`, `update leases`).
    user_counts: Mutex<BTreeMap<String, BTreeMap<String, u64>>>,
    calls: Mutex<BTreeSet<ApiCall>>,
    denials: Mutex<Vec<Denial>>,
}

/// A request RBAC refused (403).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// The user, e.g. `system:serviceaccount:ns:name`.
    pub user: String,
    /// The RBAC verb.
    pub verb: String,
    /// API group; empty for the core group.
    pub group: String,
    /// Plural resource, with `/<subresource>`; empty for a non-resource request.
    pub resource: String,
    /// The namespace; empty at the cluster scope.
    pub namespace: String,
    /// The object's name; empty for collections.
    pub name: String,
    /// The request path.
    pub path: String,
}

/// One kind of request a client made, in the terms RBAC uses.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiCall {
    /// The client's `User-Agent` header (empty when absent).
    pub user_agent: String,
    /// The authenticated user (after impersonation).
    pub user: String,
    /// `get`, `list`, `watch`, `create`, `update`, `patch` or `delete`.
    pub verb: String,
    /// API group; empty for the core group.
    pub group: String,
    /// Plural resource, with `/status` for the subresource.
    pub resource: String,
    /// The namespace, or `None` for a cluster-wide request.
    pub namespace: Option<String>,
}

/// The RBAC verb of a request.
pub(crate) fn rbac_verb(method: &Method, collection: bool, watch: bool) -> String {
    verb(method, collection, watch).to_ascii_lowercase()
}

/// The verb of a request as the API server's audit log names it.
fn verb(method: &Method, collection: bool, watch: bool) -> &'static str {
    match *method {
        Method::GET if watch => "WATCH",
        Method::GET if collection => "LIST",
        Method::GET => "GET",
        Method::POST => "CREATE",
        Method::PUT => "UPDATE",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        _ => "OTHER",
    }
}

impl RequestCounts {
    /// Records one request on `resource` (plural, with `/status` for the
    /// subresource) or on a collection of them.
    pub(crate) fn record(&self, method: &Method, collection: bool, watch: bool, resource: &str) {
        let key = format!("{} {resource}", verb(method, collection, watch));
        *self
            .counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key)
            .or_default() += 1;
    }

    /// Records who made a request, as an RBAC check would see it.
    pub(crate) fn record_call(&self, call: ApiCall) {
        *self
            .user_counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(call.user.clone())
            .or_default()
            .entry(format!("{} {}", call.verb, call.resource))
            .or_default() += 1;
        self.calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(call);
    }

    /// Every kind of request made by clients whose user agent starts with
    /// `user_agent`.
    pub fn calls_by(&self, user_agent: &str) -> BTreeSet<ApiCall> {
        self.calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|c| c.user_agent.starts_with(user_agent))
            .cloned()
            .collect()
    }

    /// Records a request RBAC refused.
    pub(crate) fn record_denial(&self, denial: Denial) {
        self.denials
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(denial);
    }

    /// Every refused request, in order.
    pub fn denials(&self) -> Vec<Denial> {
        self.denials
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The refused requests of `user`.
    pub fn denials_of(&self, user: &str) -> Vec<Denial> {
        self.denials()
            .into_iter()
            .filter(|d| d.user == user)
            .collect()
    }

    /// A copy of the counts.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The counts of `user`'s requests, keyed `"<RBAC verb> <resource>"`.
    pub fn snapshot_of(&self, user: &str) -> BTreeMap<String, u64> {
        self.user_counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(user)
            .cloned()
            .unwrap_or_default()
    }

    /// The count of one key (0 when never seen).
    pub fn get(&self, key: &str) -> u64 {
        self.snapshot().get(key).copied().unwrap_or(0)
    }
}
