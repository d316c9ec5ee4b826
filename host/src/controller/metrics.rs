//! Prometheus metrics of the controller, served on `/metrics`.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::error::ReconcileError;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PolicyLabels {
    policy: String,
}

fn latency_histogram() -> Histogram {
    // 100 µs … ~13 s, each bucket 1.6 times the one before.
    Histogram::new(exponential_buckets(0.0001, 1.6, 26))
}

/// Every metric the controller exports.
pub struct Metrics {
    registry: Registry,
    reconciles: Family<ResultLabels, Counter>,
    errors: Family<ReasonLabels, Counter>,
    reconcile_duration: Histogram,
    policy_duration: Family<PolicyLabels, Histogram>,
    /// Services with our finalizer, i.e. with a proxy.
    pub managed_services: Gauge,
    policy_sets_refused: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("svclb");
        let reconciles = Family::<ResultLabels, Counter>::default();
        let errors = Family::<ReasonLabels, Counter>::default();
        let reconcile_duration = latency_histogram();
        let policy_duration = Family::<PolicyLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let managed_services = Gauge::default();
        let policy_sets_refused = Counter::default();
        registry.register(
            "reconciles",
            "Reconciles of Services, by result",
            reconciles.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Failed reconciles, by reason",
            errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time of one reconcile",
            reconcile_duration.clone(),
        );
        registry.register(
            "policy_evaluation_duration_seconds",
            "Time of one policy call, by policy",
            policy_duration.clone(),
        );
        registry.register(
            "managed_services",
            "Services the controller keeps a proxy for",
            managed_services.clone(),
        );
        registry.register(
            "policy_sets_refused",
            "Policy sets refused as invalid",
            policy_sets_refused.clone(),
        );
        Self {
            registry,
            reconciles,
            errors,
            reconcile_duration,
            policy_duration,
            managed_services,
            policy_sets_refused,
        }
    }
}

impl Metrics {
    /// Records one reconcile.
    pub fn observe_reconcile(&self, elapsed: Duration, error: Option<&ReconcileError>) {
        self.reconcile_duration.observe(elapsed.as_secs_f64());
        let result = if error.is_some() { "error" } else { "ok" };
        self.reconciles
            .get_or_create(&ResultLabels { result })
            .inc();
        if let Some(error) = error {
            self.errors
                .get_or_create(&ReasonLabels {
                    reason: error.metric_label(),
                })
                .inc();
        }
    }

    /// Records one policy call.
    pub fn observe_policy(&self, policy: &str, elapsed: Duration) {
        self.policy_duration
            .get_or_create(&PolicyLabels {
                policy: policy.to_string(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Records a refused policy set.
    pub fn policy_set_refused(&self) {
        self.policy_sets_refused.inc();
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
