//! The controller's HTTP endpoints: `/metrics` (Prometheus text format),
//! `/healthz` (the process runs) and `/readyz` (a valid policy set is
//! loaded and the node cache is synced; otherwise 503 with the reason).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use super::metrics::Metrics;
use super::nodes::NodeCache;
use super::policy_source::{ActivePolicies, PolicySource};

/// What the endpoints report on.
#[derive(Clone)]
pub struct Health {
    /// Metrics to export.
    pub metrics: Arc<Metrics>,
    /// The active policy set.
    pub policies: Arc<PolicySource>,
    /// The node cache.
    pub nodes: Arc<NodeCache>,
}

impl Health {
    /// `Ok` when ready, else why not.
    pub fn readiness(&self) -> Result<(), String> {
        if let ActivePolicies::None(reason) = self.policies.active() {
            return Err(reason);
        }
        if !self.nodes.is_synced() {
            return Err("the node list has not been read yet".into());
        }
        Ok(())
    }
}

async fn metrics(State(health): State<Health>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        health.metrics.encode(),
    )
}

async fn readyz(State(health): State<Health>) -> impl IntoResponse {
    match health.readiness() {
        Ok(()) => (StatusCode::OK, "ok".to_string()),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason}"),
        ),
    }
}

/// Serves on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, health: Health) -> std::io::Result<()> {
    tracing::info!(address = %listener.local_addr()?, "serving /metrics, /healthz, /readyz");
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(health);
    axum::serve(listener, app).await
}
