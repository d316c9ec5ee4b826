//! What every reconcile shares: the client, the configuration, the active
//! policies, the node cache, the caches of our own objects, the event
//! recorder and the metrics.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::Client;
use kube::Resource;
use kube::core::PartialObjectMeta;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::reflector::{ObjectRef, Store};

use super::metrics::Metrics;
use super::nodes::NodeCache;
use super::policy_source::PolicySource;
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
}

impl Default for ControllerTimings {
    fn default() -> Self {
        Self {
            deprovision_timeout: Duration::from_secs(30),
            resync: Duration::from_secs(300),
            retry_base: Duration::from_secs(5),
        }
    }
}

/// What the leader sees of its own objects, kept by reflectors whose
/// watches also trigger reconciles: a reconcile reads them here instead of
/// asking the API server.
#[derive(Clone)]
pub struct ProxyCaches {
    /// Our DaemonSets, metadata only (the render digest is all we read).
    pub daemonsets: Store<PartialObjectMeta<DaemonSet>>,
    /// Our state Secrets.
    pub secrets: Store<Secret>,
    /// Our ServiceAccounts, metadata only.
    pub service_accounts: Store<PartialObjectMeta<ServiceAccount>>,
    /// Our Roles, metadata only.
    pub roles: Store<PartialObjectMeta<Role>>,
    /// Our RoleBindings, metadata only.
    pub role_bindings: Store<PartialObjectMeta<RoleBinding>>,
    /// Our Leases, metadata only.
    pub leases: Store<PartialObjectMeta<Lease>>,
}

impl ProxyCaches {
    /// Caches that stay empty: for a replica that is not leading.
    pub fn empty() -> Self {
        Self {
            daemonsets: kube::runtime::reflector::store().0,
            secrets: kube::runtime::reflector::store().0,
            service_accounts: kube::runtime::reflector::store().0,
            roles: kube::runtime::reflector::store().0,
            role_bindings: kube::runtime::reflector::store().0,
            leases: kube::runtime::reflector::store().0,
        }
    }

    /// Waits until both caches hold a first full list (at once for
    /// [`Self::empty`] ones).
    pub async fn wait_until_ready(&self) {
        let _ = self.daemonsets.wait_until_ready().await;
        let _ = self.secrets.wait_until_ready().await;
        let _ = self.service_accounts.wait_until_ready().await;
        let _ = self.roles.wait_until_ready().await;
        let _ = self.role_bindings.wait_until_ready().await;
        let _ = self.leases.wait_until_ready().await;
    }

    /// Our DaemonSet `name`.
    pub fn daemonset(
        &self,
        namespace: &str,
        name: &str,
    ) -> Option<Arc<PartialObjectMeta<DaemonSet>>> {
        self.daemonsets.get(&ObjectRef::new(name).within(namespace))
    }

    /// Whether the ServiceAccount, Role, RoleBinding, state Secret and Lease
    /// named by `names` all exist.
    pub fn companions_exist(&self, namespace: &str, names: &svc_lb_contract::ProxyNames) -> bool {
        fn has<K>(store: &Store<K>, namespace: &str, name: &str) -> bool
        where
            K: kube::Resource<DynamicType = ()> + Clone + 'static,
        {
            store.get(&ObjectRef::new(name).within(namespace)).is_some()
        }
        has(&self.secrets, namespace, &names.state_secret)
            && has(&self.service_accounts, namespace, &names.service_account)
            && has(&self.roles, namespace, &names.role)
            && has(&self.role_bindings, namespace, &names.role_binding)
            && has(&self.leases, namespace, &names.lease)
    }

    /// Our state Secret `name`.
    pub fn secret(&self, namespace: &str, name: &str) -> Option<Arc<Secret>> {
        self.secrets.get(&ObjectRef::new(name).within(namespace))
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

    /// Forgets the failures after a success.
    pub fn clear(&self, service: &str) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(service);
    }
}

impl Context {
    /// Publishes an Event on `service`; a failure to publish is logged, never fatal.
    pub async fn event(&self, service: &Service, warning: bool, reason: &str, note: String) {
        let event = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.into(),
            note: Some(note),
            action: reason.into(),
            secondary: None,
        };
        if let Err(error) = self
            .recorder
            .publish(&event, &service.object_ref(&()))
            .await
        {
            tracing::warn!(%error, reason, "cannot publish an event");
        }
    }
}
