//! Fault injection for robustness tests: fail the next N matching requests
//! with a chosen status, add latency to every request, drop open watches.

use std::sync::Mutex;
use std::time::Duration;

use axum::http::Method;
use tokio::sync::broadcast;

use crate::error::ApiError;

#[derive(Debug, Clone)]
struct Rule {
    method: Option<Method>,
    path_contains: String,
    remaining: u32,
    code: u16,
}

/// The faults in force.
#[derive(Debug)]
pub struct Faults {
    rules: Mutex<Vec<Rule>>,
    latency: Mutex<Option<Duration>>,
    drops: broadcast::Sender<()>,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            rules: Mutex::new(Vec::new()),
            latency: Mutex::new(None),
            drops: broadcast::channel(16).0,
        }
    }
}

fn error_for(code: u16) -> ApiError {
    let reason = match code {
        409 => "Conflict",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        _ => "InternalError",
    };
    ApiError {
        code,
        reason,
        message: format!("injected fault ({code})"),
        details: None,
    }
}

impl Faults {
    /// Fails the next `count` requests with `method` (any when `None`) whose
    /// path contains `path_contains`, with status `code`.
    pub fn fail_next(&self, method: Option<Method>, path_contains: &str, count: u32, code: u16) {
        self.rules
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Rule {
                method,
                path_contains: path_contains.to_string(),
                remaining: count,
                code,
            });
    }

    /// Delays every request by `latency` (`None` removes the delay).
    pub fn set_latency(&self, latency: Option<Duration>) {
        *self.latency.lock().unwrap_or_else(|p| p.into_inner()) = latency;
    }

    /// Ends every open watch stream.
    pub fn drop_watches(&self) {
        let _ = self.drops.send(());
    }

    pub(crate) fn watch_drops(&self) -> broadcast::Receiver<()> {
        self.drops.subscribe()
    }

    pub(crate) fn latency(&self) -> Option<Duration> {
        *self.latency.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn take_matching(&self, method: &Method, path: &str) -> Option<ApiError> {
        let mut rules = self.rules.lock().unwrap_or_else(|p| p.into_inner());
        let rule = rules.iter_mut().find(|r| {
            r.remaining > 0
                && r.method.as_ref().is_none_or(|m| m == method)
                && path.contains(&r.path_contains)
        })?;
        rule.remaining -= 1;
        let error = error_for(rule.code);
        rules.retain(|r| r.remaining > 0);
        Some(error)
    }
}
