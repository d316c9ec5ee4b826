//! Wiring: the background tasks every replica runs (HTTP endpoints, node
//! cache, policy ConfigMap watch, election) and the Controller the leader
//! runs, until shutdown.

use std::net::SocketAddr;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference, Secret, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::core::PartialObjectMeta;
use kube::runtime::WatchStreamExt;
use kube::runtime::controller::Controller;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher::{self, Event as WatchEvent};
use kube::{Api, Resource, ResourceExt};
use svc_lb_contract::keys::{
    MANAGED_BY_LABEL, MANAGED_BY_VALUE, SERVICE_NAME_LABEL, SERVICE_NAMESPACE_LABEL,
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::apply::RENDER_DIGEST_ANNOTATION;
use super::context::{Context, ControllerTimings, ProxyCaches, SecretSummary};
use super::finalizer::has_finalizer;
use super::http::{Health, serve};
use super::index::{Index, indexed};
use super::leader::{Election, ElectionTimings, leadership_lost};
use super::metrics::Metrics;
use super::nodes::NodeCache;
use super::policy_source::{ActivePolicies, NO_SET_CONSEQUENCE, PolicySource, SetChange};
use super::reconcile::{error_policy, reconcile};
use super::sweep::sweep_orphans;
use crate::config::ControllerConfig;
use crate::policy::{EngineLimits, PolicyEngine};

/// How long a Service's reconcile waits for more changes to it.
const RECONCILE_DEBOUNCE: std::time::Duration = std::time::Duration::from_millis(200);

/// Default name of the policy ConfigMap.
pub const DEFAULT_POLICY_CONFIGMAP: &str = "tailscale-svc-lb-policies";

/// Everything `run` needs besides the client.
#[derive(Debug, Clone)]
pub struct ControllerOptions {
    /// The validated configuration.
    pub config: ControllerConfig,
    /// Controller timings.
    pub timings: ControllerTimings,
    /// Bounds on policy calls.
    pub limits: EngineLimits,
    /// Name of the policy ConfigMap in the controller's namespace; it must
    /// exist. `None`: no ConfigMap, the bundled default policy alone.
    pub policy_configmap: Option<String>,
    /// Run the bundled default policy first.
    pub default_policy: bool,
    /// Where to serve metrics and health; `None` serves nothing.
    pub metrics_addr: Option<SocketAddr>,
    /// Elect a leader among replicas (off: this replica always leads).
    pub election: Option<ElectionTimings>,
    /// This replica's identity (pod name) in the election and in Events.
    pub identity: String,
    /// Reconciles run at once.
    pub concurrency: u16,
}

/// Why the controller could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The policy engine could not be set up.
    #[error(transparent)]
    Engine(#[from] crate::policy::EngineSetupError),
    /// Joining the election failed.
    #[error("cannot join the leader election: {0}")]
    Election(#[from] kube_lease_manager::LeaseManagerError),
    /// The metrics address could not be bound.
    #[error("cannot serve metrics: {0}")]
    Http(#[from] std::io::Error),
}

/// Runs the controller until `shutdown` is cancelled.
pub async fn run(
    client: kube::Client,
    options: ControllerOptions,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    let engine = Arc::new(PolicyEngine::new(options.limits)?);
    let policies = Arc::new(PolicySource::new(
        engine,
        options.config.tag_allowlist.clone(),
        options.default_policy,
    ));
    let nodes = Arc::new(NodeCache::default());
    let metrics = Arc::new(Metrics::default());
    let reporter = Reporter {
        controller: "tailscale-svc-lb".into(),
        instance: Some(options.identity.clone()),
    };
    let ctx = Arc::new(Context {
        client: client.clone(),
        config: options.config.clone(),
        timings: options.timings,
        policies: policies.clone(),
        nodes: nodes.clone(),
        recorder: Recorder::new(client.clone(), reporter),
        metrics: metrics.clone(),
        caches: ProxyCaches::empty(),
        failures: Arc::default(),
        tailnet: Arc::default(),
    });
    if let Some(addr) = options.metrics_addr {
        let listener_health = Health {
            metrics: metrics.clone(),
            policies: policies.clone(),
            nodes: nodes.clone(),
        };
        let listener = tokio::net::TcpListener::bind(addr).await?;
        tokio::spawn(serve(listener, listener_health));
    }
    // Bumped whenever every Service must be looked at again.
    let (reconcile_all, _) = watch::channel(0u64);
    let reconcile_all = Arc::new(reconcile_all);
    let (node_changed, mut node_changes) = tokio::sync::mpsc::channel(1);
    tokio::spawn(nodes.clone().run(Api::all(client.clone()), node_changed));
    {
        let reconcile_all = reconcile_all.clone();
        tokio::spawn(async move {
            while node_changes.recv().await.is_some() {
                reconcile_all.send_modify(|n| *n += 1);
            }
        });
    }
    match options.policy_configmap.clone() {
        Some(name) => {
            tokio::spawn(watch_policy_set(ctx.clone(), name, reconcile_all.clone()));
        }
        None => {
            let policies = ctx.policies.clone();
            let change = tokio::task::spawn_blocking(move || policies.load_default_only()).await;
            if let Ok(SetChange::Refused(error)) = change {
                tracing::error!(%error, "the default policy cannot be loaded");
            }
        }
    }

    let Some(timings) = options.election else {
        lead(ctx, &options, &reconcile_all, shutdown).await;
        return Ok(());
    };
    let mut election = Election::join(
        client,
        &options.config.namespace,
        &options.identity,
        timings,
    )
    .await?;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            changed = election.is_leader.wait_for(|leader| *leader) => {
                if changed.is_err() {
                    break;
                }
            }
        }
        tracing::info!(identity = %options.identity, "became the leader");
        let term = shutdown.child_token();
        let mut is_leader = election.is_leader.clone();
        let lost = async move {
            let _ = is_leader.wait_for(|leader| !*leader).await;
        };
        let unconfirmed = leadership_lost(
            ctx.client.clone(),
            &options.config.namespace,
            &options.identity,
            timings,
        );
        let mut stepped_down = false;
        tokio::select! {
            _ = lead(ctx.clone(), &options, &reconcile_all, term.clone()) => {}
            _ = lost => {}
            _ = unconfirmed => stepped_down = true,
        }
        term.cancel();
        if shutdown.is_cancelled() {
            break;
        }
        tracing::warn!(identity = %options.identity, "lost the leadership; reconciling stopped");
        if stepped_down {
            // The election may still think we lead; give the Lease time to
            // be renewed or taken before looking again.
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(std::time::Duration::from_secs(timings.duration)) => {}
            }
        }
    }
    election.leave().await;
    Ok(())
}

/// Reconciles as the leader until `stop` is cancelled.
async fn lead(
    base: Arc<Context>,
    options: &ControllerOptions,
    reconcile_all: &watch::Sender<u64>,
    stop: CancellationToken,
) {
    // Reconciling before the policies and nodes are known would only
    // report failures that are not real.
    let known = async {
        base.policies.wait_first_read().await;
        base.nodes.wait_synced().await;
    };
    tokio::select! {
        _ = known => {}
        _ = stop.cancelled() => return,
    }
    let ns = &base.config.namespace;
    let caches = ProxyCaches {
        daemonsets: Index::new(),
        secrets: Index::new(),
        service_accounts: Index::new(),
        roles: Index::new(),
        role_bindings: Index::new(),
        leases: Index::new(),
    };
    let client = &base.client;
    let daemonset_events = indexed(
        caches.daemonsets.clone(),
        ours_watched::<PartialObjectMeta<DaemonSet>>(client, ns),
        |ds| {
            ds.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(RENDER_DIGEST_ANNOTATION).cloned())
        },
    );
    let secret_events = indexed(
        caches.secrets.clone(),
        ours_watched::<Secret>(client, ns),
        SecretSummary::of,
    );
    let service_account_events = indexed(
        caches.service_accounts.clone(),
        ours_watched::<PartialObjectMeta<ServiceAccount>>(client, ns),
        |_| (),
    );
    let role_events = indexed(
        caches.roles.clone(),
        ours_watched::<PartialObjectMeta<Role>>(client, ns),
        |_| (),
    );
    let role_binding_events = indexed(
        caches.role_bindings.clone(),
        ours_watched::<PartialObjectMeta<RoleBinding>>(client, ns),
        |_| (),
    );
    let lease_events = indexed(
        caches.leases.clone(),
        ours_watched::<PartialObjectMeta<Lease>>(client, ns),
        |_| (),
    );
    let ctx = Arc::new(Context {
        caches,
        ..(*base).clone()
    });
    let trigger =
        tokio_stream::wrappers::WatchStream::from_changes(reconcile_all.subscribe()).map(|_| ());
    let controller = Controller::new(
        Api::<Service>::all(ctx.client.clone()),
        watcher::Config::default(),
    )
    .watches_stream(daemonset_events, service_of)
    .watches_stream(service_account_events, service_of)
    .watches_stream(role_events, service_of)
    .watches_stream(role_binding_events, service_of)
    .watches_stream(lease_events, service_of)
    .watches_stream(secret_events, service_of)
    .reconcile_all_on(trigger)
    .with_config(
        kube::runtime::controller::Config::default()
            .concurrency(options.concurrency)
            // Changes that arrive together (our finalizer, the objects
            // we just applied, our status write) make one reconcile,
            // which then also sees them all in the caches.
            .debounce(RECONCILE_DEBOUNCE),
    );
    let store = controller.store();
    let housekeeping = {
        let ctx = ctx.clone();
        async move {
            let _ = store.wait_until_ready().await;
            let mut last_sweep: Option<tokio::time::Instant> = None;
            loop {
                if last_sweep.is_none_or(|at| at.elapsed() >= ctx.timings.resync) {
                    match sweep_orphans(&ctx, &store).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(removed = n, "removed proxies no Service wants"),
                        Err(error) => {
                            tracing::warn!(%error, "the sweep failed; it runs again later")
                        }
                    }
                    last_sweep = Some(tokio::time::Instant::now());
                }
                let managed = store.state().iter().filter(|s| has_finalizer(s)).count();
                ctx.metrics.managed_services.set(managed as i64);
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            }
        }
    };
    let stopped = stop.clone();
    let run = controller
        .graceful_shutdown_on(async move { stopped.cancelled().await })
        .run(reconcile, error_policy, ctx)
        .for_each(|_| async {});
    tokio::select! {
        _ = run => {}
        _ = housekeeping => {}
    }
}

/// The label selector of the objects we manage.
pub(super) fn managed_selector() -> String {
    format!("{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}")
}

/// Watch configuration selecting the objects we manage.
fn ours() -> watcher::Config {
    watcher::Config::default().labels(&managed_selector())
}

/// The watch of our objects of type `K` in `namespace` (whole objects, or
/// metadata only for `PartialObjectMeta<_>`).
fn ours_watched<K>(
    client: &kube::Client,
    namespace: &str,
) -> impl futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + 'static,
    K::DynamicType: Default,
{
    let api = Api::<K>::namespaced(client.clone(), namespace);
    watcher::watcher(api, ours()).default_backoff()
}

/// The Service a managed object belongs to, from its labels.
fn service_of<K: Resource>(object: K) -> Option<ObjectRef<Service>> {
    let labels = object.labels();
    let namespace = labels.get(SERVICE_NAMESPACE_LABEL)?;
    let name = labels.get(SERVICE_NAME_LABEL)?;
    Some(ObjectRef::new(name).within(namespace))
}

/// Follows the policy ConfigMap, loading each new content.
async fn watch_policy_set(ctx: Arc<Context>, name: String, reconcile_all: Arc<watch::Sender<u64>>) {
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ctx.config.namespace);
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut events = watcher::watcher(api, config).default_backoff().boxed();
    let mut listed: Option<Option<ConfigMap>> = None;
    while let Some(event) = events.next().await {
        let current = match event {
            Ok(WatchEvent::Init) => {
                listed = Some(None);
                continue;
            }
            Ok(WatchEvent::InitApply(cm)) => {
                listed = Some(Some(cm));
                continue;
            }
            Ok(WatchEvent::InitDone) => listed.take().flatten(),
            Ok(WatchEvent::Apply(cm)) => Some(cm),
            Ok(WatchEvent::Delete(_)) => None,
            Err(error) => {
                tracing::warn!(%error, "policy ConfigMap watch failed; retrying");
                continue;
            }
        };
        let policies = ctx.policies.clone();
        let loaded = current.clone();
        let change = tokio::task::spawn_blocking(move || policies.load(loaded.as_ref())).await;
        match change {
            Ok(SetChange::Unchanged) => {}
            Ok(SetChange::Activated) => {
                tracing::info!(configmap = %name, present = current.is_some(), "policy set activated");
                reconcile_all.send_modify(|n| *n += 1);
            }
            Ok(SetChange::Refused(error)) => {
                ctx.metrics.policy_set_refused();
                let outcome = match ctx.policies.active() {
                    ActivePolicies::Chain { .. } => "the previous policy set stays active",
                    ActivePolicies::None(_) => NO_SET_CONSEQUENCE,
                };
                tracing::error!(configmap = %name, %error, outcome, "policy set refused");
                // About the ConfigMap, also when it is gone: an Event may
                // refer to a deleted object (`kubectl get events` shows it).
                let regarding = ObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("ConfigMap".into()),
                    namespace: Some(ctx.config.namespace.clone()),
                    name: Some(name.clone()),
                    uid: current.as_ref().and_then(|cm| cm.metadata.uid.clone()),
                    ..ObjectReference::default()
                };
                let note = format!("{error}; {outcome}");
                ctx.event_on(&regarding, true, "PolicySetRefused", "LoadPolicies", note)
                    .await;
            }
            Err(error) => tracing::error!(%error, "loading the policy set panicked"),
        }
    }
}
