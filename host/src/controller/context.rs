//! What every reconcile shares: the client, the configuration, the active
//! policies, the node cache, the caches of our own objects, the event
//! recorder and the metrics.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ObjectReference, Secret, Service};
use kube::Client;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Resource, ResourceExt};

use super::index::Index;
use super::metrics::Metrics;
use super::nodes::NodeCache;
use super::policy_source::PolicySource;
use super::status::ProxyReport;
use super::text_limits::{EVENT_NOTE_LIMIT, within};
use crate::config::ControllerConfig;

/// `User-Agent` of the controller's requests, as the API server's audit
/// log shows them.
pub const USER_AGENT: &str = concat!("tailscale-svc-lb/", env!("CARGO_PKG_VERSION"));

/// Field manager of every server-side apply and patch the controller makes.
pub const FIELD_MANAGER: &str = "tailscale-svc-lb";

/// Parameters of every non-apply write: our field manager.
pub fn manager_params() -> kube::api::PatchParams {
    kube::api::PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    }
}

/// `Ok(None)` for a 404: the object is gone, which is what a delete wanted
/// and what makes any other write moot.
pub fn unless_gone<T>(result: kube::Result<T>) -> kube::Result<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
        Err(error) => Err(error),
    }
}

/// Server-side applies `status` (only the fields we own) to Service `name`;
/// a Service already gone is fine.
pub async fn apply_service_status(
    services: &kube::Api<Service>,
    name: &str,
    status: serde_json::Value,
) -> kube::Result<()> {
    let applied = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "status": status,
    });
    let params = kube::api::PatchParams::apply(FIELD_MANAGER).force();
    unless_gone(
        services
            .patch_status(name, &params, &kube::api::Patch::Apply(applied))
            .await,
    )?;
    Ok(())
}

/// Timings of the controller's own behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControllerTimings {
    /// How long teardown waits for the leader to log out of the tailnet.
    pub deprovision_timeout: Duration,
    /// Re-check of every served Service even without a change.
    pub resync: Duration,
    /// Delay before the first retry of a failed reconcile; it doubles with
    /// every further failure, up to 5 min.
    pub retry_base: Duration,
    /// How long a proxy DaemonSet may have no pod at all before the Service
    /// says that its pods cannot be created.
    pub pods_grace: Duration,
}

impl Default for ControllerTimings {
    fn default() -> Self {
        Self {
            deprovision_timeout: Duration::from_secs(30),
            resync: Duration::from_secs(300),
            retry_base: Duration::from_secs(5),
            pods_grace: Duration::from_secs(30),
        }
    }
}

/// What the leader knows of its own objects, from indexes fed by the
/// watches that also trigger reconciles: a reconcile reads them here
/// instead of asking the API server.
#[derive(Clone)]
pub struct ProxyCaches {
    /// Our DaemonSets: the render digest each carries.
    pub daemonsets: Arc<Index<Option<String>>>,
    /// Our state Secrets: what the runtime reported, and whether a logout
    /// was requested.
    pub secrets: Arc<Index<SecretSummary>>,
    /// Our ServiceAccounts.
    pub service_accounts: Arc<Index<()>>,
    /// Our Roles.
    pub roles: Arc<Index<()>>,
    /// Our RoleBindings.
    pub role_bindings: Arc<Index<()>>,
    /// Our Leases.
    pub leases: Arc<Index<()>>,
}

/// What a reconcile reads from a state Secret.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretSummary {
    /// The runtime's report.
    pub report: ProxyReport,
    /// Whether the deprovisioning annotation is set.
    pub deprovision_requested: bool,
    /// The id of a minted auth key waiting in the Secret.
    pub auth_key_id: Option<String>,
    /// The tags it was minted with.
    pub auth_key_tags: Vec<String>,
    /// The Secret's resourceVersion.
    pub resource_version: Option<String>,
}

impl SecretSummary {
    /// The summary of a state Secret.
    pub fn of(secret: &Secret) -> Self {
        Self {
            report: secret
                .data
                .as_ref()
                .map(ProxyReport::from_secret_data)
                .unwrap_or_default(),
            deprovision_requested: secret
                .metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key(svc_lb_contract::keys::DEPROVISION_ANNOTATION)),
            auth_key_id: data_text(secret, svc_lb_contract::state::AUTH_KEY_ID),
            auth_key_tags: data_text(secret, svc_lb_contract::state::AUTH_KEY_TAGS)
                .map(|tags| tags.split(',').map(str::to_string).collect())
                .unwrap_or_default(),
            resource_version: secret.metadata.resource_version.clone(),
        }
    }
}

/// A non-empty text value of `secret`'s data.
fn data_text(secret: &Secret, key: &str) -> Option<String> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .and_then(|b| String::from_utf8(b.0.clone()).ok())
        .filter(|v| !v.is_empty())
}

impl ProxyCaches {
    /// Caches that stay empty: for a replica that is not leading.
    pub fn empty() -> Self {
        Self {
            daemonsets: Index::empty(),
            secrets: Index::empty(),
            service_accounts: Index::empty(),
            roles: Index::empty(),
            role_bindings: Index::empty(),
            leases: Index::empty(),
        }
    }

    /// Waits until every index holds a first full list.
    pub async fn wait_until_ready(&self) {
        self.daemonsets.wait_until_ready().await;
        self.secrets.wait_until_ready().await;
        self.service_accounts.wait_until_ready().await;
        self.roles.wait_until_ready().await;
        self.role_bindings.wait_until_ready().await;
        self.leases.wait_until_ready().await;
    }

    /// Whether the ServiceAccount, Role, RoleBinding, state Secret and Lease
    /// named by `names` all exist.
    pub fn companions_exist(&self, names: &svc_lb_contract::ProxyNames) -> bool {
        self.secrets.contains(&names.state_secret)
            && self.service_accounts.contains(&names.service_account)
            && self.roles.contains(&names.role)
            && self.role_bindings.contains(&names.role_binding)
            && self.leases.contains(&names.lease)
    }
}

/// Shared by every reconcile.
#[derive(Clone)]
pub struct Context {
    /// The API client.
    pub client: Client,
    /// The validated configuration.
    pub config: ControllerConfig,
    /// Controller timings.
    pub timings: ControllerTimings,
    /// The active policy chain.
    pub policies: Arc<PolicySource>,
    /// Nodes as the policies see them.
    pub nodes: Arc<NodeCache>,
    /// Publishes Kubernetes Events.
    pub recorder: Recorder,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Our objects; filled only while this replica leads.
    pub caches: ProxyCaches,
    /// Consecutive failed reconciles per Service, for backoff.
    pub failures: Arc<FailureCounts>,
    /// The Tailscale API, with the optional OAuth client.
    pub tailnet: Arc<super::tailnet::Tailnet>,
}

/// Consecutive failed reconciles per Service (`namespace/name`).
#[derive(Debug, Default)]
pub struct FailureCounts(std::sync::Mutex<std::collections::HashMap<String, u32>>);

impl FailureCounts {
    /// Counts one more failure; returns the count.
    pub fn record(&self, service: &str) -> u32 {
        let mut counts = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let count = counts.entry(service.to_string()).or_default();
        *count = count.saturating_add(1);
        *count
    }

    /// The failures counted so far.
    pub fn count(&self, service: &str) -> u32 {
        let counts = self.0.lock().unwrap_or_else(|p| p.into_inner());
        counts.get(service).copied().unwrap_or(0)
    }

    /// Forgets the failures after a success.
    pub fn clear(&self, service: &str) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(service);
    }
}

/// `namespace/name` of a Service, for logs and messages.
pub fn service_key(service: &Service) -> String {
    format!(
        "{}/{}",
        service.namespace().unwrap_or_default(),
        service.name_any()
    )
}

impl Context {
    /// Publishes an Event on `service`; a failure to publish is logged, never fatal.
    pub async fn event(&self, service: &Service, warning: bool, reason: &str, note: String) {
        self.event_on(&service.object_ref(&()), warning, reason, reason, note)
            .await;
    }

    /// Publishes an Event on the object `regarding`, its note cut to the
    /// API's limit; a failure to publish is logged, never fatal.
    pub async fn event_on(
        &self,
        regarding: &ObjectReference,
        warning: bool,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let event = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.into(),
            note: Some(within(note, EVENT_NOTE_LIMIT)),
            action: action.into(),
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&event, regarding).await {
            tracing::warn!(%error, reason, "cannot publish an event");
        }
    }
}
