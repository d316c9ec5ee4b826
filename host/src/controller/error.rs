//! Why a reconcile failed; each is retried with backoff.

use crate::policy::ChainError;
use crate::service_input::NotServed;

/// A failed reconcile.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// A call to the API server failed.
    #[error("Kubernetes API: {0}")]
    Api(#[from] kube::Error),
    /// The policy chain produced no plan.
    #[error(transparent)]
    Policy(#[from] ChainError),
    /// The Service cannot be read as policy input.
    #[error(transparent)]
    Unreadable(NotServed),
    /// No valid policy set is loaded.
    #[error("{0}")]
    NoPolicySet(String),
    /// The caches of our own objects did not fill in time.
    #[error("the caches of the proxy objects are not synced yet")]
    CachesNotSynced,
    /// The policy evaluation task died.
    #[error("policy evaluation did not finish: {0}")]
    Evaluation(String),
    /// The OAuth client cannot be read.
    #[error("{0}")]
    OAuth(String),
    /// A call to the Tailscale API failed.
    #[error(transparent)]
    Tailnet(crate::tailscale_api::ApiError),
}

impl ReconcileError {
    /// A short, stable label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            ReconcileError::Api(_) => "api",
            ReconcileError::Policy(e) => e.metric_label(),
            ReconcileError::Unreadable(_) => "unreadable_service",
            ReconcileError::NoPolicySet(_) => "no_policy_set",
            ReconcileError::Evaluation(_) => "evaluation_task",
            ReconcileError::CachesNotSynced => "caches_not_synced",
            ReconcileError::OAuth(_) => "oauth_secret",
            ReconcileError::Tailnet(_) => "tailscale_api",
        }
    }
}
