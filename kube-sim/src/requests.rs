//! Counts of the requests the server answered, by verb and resource, so
//! tests and benchmarks can say how many API calls a client made (e.g. "no
//! write when nothing changed", "requests per Service"). Served as JSON on
//! `/kube-sim/requests` for a server running as a separate process.

use std::collections::BTreeMap;
use std::sync::Mutex;

use axum::http::Method;

/// Requests that reached the API (injected faults are not counted), keyed
/// `"<VERB> <resource>"`: `"PATCH daemonsets"`, `"LIST nodes"`,
/// `"WATCH services"`, `"PATCH services/status"`.
#[derive(Debug, Default)]
pub struct RequestCounts {
    counts: Mutex<BTreeMap<String, u64>>,
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

    /// A copy of the counts.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The count of one key (0 when never seen).
    pub fn get(&self, key: &str) -> u64 {
        self.snapshot().get(key).copied().unwrap_or(0)
    }
}
