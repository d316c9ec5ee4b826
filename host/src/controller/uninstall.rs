//! Uninstalling: every Service this installation serves carries its
//! finalizer, so removing the controller first would leave them stuck in
//! deletion and their devices in the tailnet. `uninstall` first stops the
//! controller (scales its Deployment to zero and waits until no replica
//! holds the election Lease, so nothing races it), then tears every proxy
//! down with the controller's own teardown (logout, tailnet cleanup with an
//! OAuth client, objects, status, finalizer), several at once and bounded
//! in time, and last removes proxy objects no Service accounts for. The
//! Services themselves stay, as plain Services.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Secret, Service};
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Recorder, Reporter};
use kube::{Api, ResourceExt};
use svc_lb_contract::ProxyNames;

use super::context::{Context, ControllerTimings, ProxyCaches, service_key};
use super::finalizer::served_by;
use super::leader::CONTROLLER_LEASE;
use super::policy_source::PolicySource;
use super::run::managed_selector;
use super::teardown::{AfterTeardown, delete_proxy_objects, teardown};
use crate::config::ControllerConfig;
use crate::policy::{EngineLimits, PolicyEngine};

/// What `uninstall` needs.
#[derive(Debug, Clone)]
pub struct UninstallOptions {
    /// The installation's configuration (namespace, class, OAuth).
    pub config: ControllerConfig,
    /// Teardown timings (the logout wait).
    pub timings: ControllerTimings,
    /// The controller's Deployment, to scale to zero first (none: the
    /// controller is not a Deployment, or is stopped already).
    pub deployment: Option<String>,
    /// The whole uninstall's time limit.
    pub timeout: Duration,
    /// Services torn down at once.
    pub concurrency: usize,
}

/// What `uninstall` did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct UninstallReport {
    /// Services whose proxy was torn down and finalizer removed.
    pub released: Vec<String>,
    /// Services not finished within the time limit.
    pub unfinished: Vec<String>,
    /// Proxies removed that no Service accounted for.
    pub orphans_removed: usize,
}

/// Why `uninstall` stopped.
#[derive(Debug, thiserror::Error)]
pub enum UninstallError {
    /// A call to the API server failed.
    #[error("Kubernetes API: {0}")]
    Api(#[from] kube::Error),
    /// The controller did not stop in time.
    #[error("the controller still holds its Lease after {0:?}: is a replica still running?")]
    ControllerStillRunning(Duration),
    /// The policy engine could not be set up (only its type is needed).
    #[error(transparent)]
    Engine(#[from] crate::policy::EngineSetupError),
}

/// Uninstalls as described in the module documentation.
pub async fn uninstall(
    client: kube::Client,
    options: UninstallOptions,
) -> Result<UninstallReport, UninstallError> {
    let deadline = Instant::now() + options.timeout;
    let namespace = options.config.namespace.clone();
    if let Some(deployment) = &options.deployment {
        stop_controller(&client, &namespace, deployment, deadline).await?;
    }
    let ctx = Arc::new(teardown_context(client.clone(), &options)?);
    let services: Api<Service> = Api::all(client.clone());
    let served: Vec<Service> = services
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|s| served_by(s, &namespace, &options.config.load_balancer_class))
        .collect();
    tracing::info!(services = served.len(), "tearing down every proxy");
    let outcomes: Vec<(String, bool)> = futures::stream::iter(served)
        .map(|service| {
            let ctx = ctx.clone();
            async move {
                let key = service_key(&service);
                let done = tear_down_fully(&ctx, service, deadline).await;
                (key, done)
            }
        })
        .buffer_unordered(options.concurrency.max(1))
        .collect()
        .await;
    let mut report = UninstallReport::default();
    for (key, done) in outcomes {
        if done {
            report.released.push(key);
        } else {
            report.unfinished.push(key);
        }
    }
    report.released.sort();
    report.unfinished.sort();
    report.orphans_removed = remove_remaining_proxies(&ctx, &report.unfinished).await?;
    Ok(report)
}

/// Scales the controller's Deployment to zero and waits until its election
/// Lease is free (released on SIGTERM, or expired).
async fn stop_controller(
    client: &kube::Client,
    namespace: &str,
    deployment: &str,
    deadline: Instant,
) -> Result<(), UninstallError> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    if deployments.get_opt(deployment).await?.is_some() {
        // The spec's replicas (what the scale subresource also sets).
        let scale = serde_json::json!({"spec": {"replicas": 0}});
        deployments
            .patch(deployment, &PatchParams::default(), &Patch::Merge(&scale))
            .await?;
        tracing::info!(deployment, "scaled the controller to zero");
    }
    let leases: Api<Lease> = Api::namespaced(client.clone(), namespace);
    let started = Instant::now();
    loop {
        let lease = leases.get_opt(CONTROLLER_LEASE).await?;
        if lease
            .as_ref()
            .is_none_or(|l| !held(l, k8s_openapi::jiff::Timestamp::now()))
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(UninstallError::ControllerStillRunning(started.elapsed()));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Whether `lease` has a holder whose term has not run out at `now`. Pure.
pub fn held(lease: &Lease, now: k8s_openapi::jiff::Timestamp) -> bool {
    let Some(spec) = &lease.spec else {
        return false;
    };
    if spec.holder_identity.as_deref().is_none_or(str::is_empty) {
        return false;
    }
    let (Some(renewed), Some(seconds)) = (&spec.renew_time, spec.lease_duration_seconds) else {
        return true;
    };
    let until = renewed.0 + Duration::from_secs(seconds.max(0) as u64);
    now < until
}

/// A context for the teardown alone: no caches, no policies.
fn teardown_context(
    client: kube::Client,
    options: &UninstallOptions,
) -> Result<Context, UninstallError> {
    let engine = Arc::new(PolicyEngine::new(EngineLimits::default())?);
    let reporter = Reporter {
        controller: "tailscale-svc-lb".into(),
        instance: Some("uninstall".into()),
    };
    Ok(Context {
        client: client.clone(),
        config: options.config.clone(),
        timings: options.timings,
        policies: Arc::new(PolicySource::new(engine, None, false)),
        nodes: Arc::default(),
        recorder: Recorder::new(client, reporter),
        metrics: Arc::default(),
        caches: ProxyCaches::empty(),
        failures: Arc::default(),
        tailnet: Arc::default(),
    })
}

/// Runs the teardown of `service`, step after step, until it is done (its
/// finalizer removed, or the Service gone) or `deadline` passes.
async fn tear_down_fully(ctx: &Context, service: Service, deadline: Instant) -> bool {
    let api: Api<Service> = Api::namespaced(
        ctx.client.clone(),
        service.namespace().as_deref().unwrap_or("default"),
    );
    let name = service.name_any();
    let key = service_key(&service);
    // A list by name: the controller's RBAC has list, not get, on Services.
    let by_name = ListParams::default().fields(&format!("metadata.name={name}"));
    loop {
        let current = match api.list(&by_name).await.map(|l| l.items.into_iter().next()) {
            Ok(Some(current)) => current,
            Ok(None) => return true,
            Err(error) => {
                tracing::warn!(service = %key, %error, "cannot read the Service");
                return false;
            }
        };
        if !served_by(
            &current,
            &ctx.config.namespace,
            &ctx.config.load_balancer_class,
        ) {
            return true;
        }
        match teardown(&current, ctx, AfterTeardown::Released).await {
            Ok(action) if action == Action::await_change() => return true,
            Ok(_) => {}
            Err(error) => {
                ctx.failures.record(&key);
                tracing::warn!(service = %key, %error, "teardown step failed; trying again");
            }
        }
        if Instant::now() >= deadline {
            tracing::error!(service = %key, "not torn down in time");
            return false;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Removes every proxy object left in the namespace (of Services no longer
/// served, or torn down by hand), but those of `unfinished` Services (their
/// devices may not have logged out yet); returns how many proxies.
async fn remove_remaining_proxies(
    ctx: &Context,
    unfinished: &[String],
) -> Result<usize, UninstallError> {
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ctx.config.namespace);
    let daemonsets: Api<k8s_openapi::api::apps::v1::DaemonSet> =
        Api::namespaced(ctx.client.clone(), &ctx.config.namespace);
    let selector = ListParams::default().labels(&managed_selector());
    let mut owners = std::collections::BTreeSet::new();
    for labels in secrets
        .list_metadata(&selector)
        .await?
        .items
        .iter()
        .map(|m| m.labels().clone())
        .chain(
            daemonsets
                .list_metadata(&selector)
                .await?
                .items
                .iter()
                .map(|m| m.labels().clone()),
        )
    {
        if let (Some(ns), Some(name)) = (
            labels.get(svc_lb_contract::keys::SERVICE_NAMESPACE_LABEL),
            labels.get(svc_lb_contract::keys::SERVICE_NAME_LABEL),
        ) {
            owners.insert((ns.clone(), name.clone()));
        }
    }
    owners.retain(|(ns, name)| !unfinished.contains(&format!("{ns}/{name}")));
    for (ns, name) in &owners {
        let names = ProxyNames::for_service(ns, name);
        delete_proxy_objects(&ctx.client, &ctx.config.namespace, &names).await?;
    }
    Ok(owners.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder: Option<&str>, renewed_secs_ago: u64) -> Lease {
        let renewed = k8s_openapi::jiff::Timestamp::now() - Duration::from_secs(renewed_secs_ago);
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": CONTROLLER_LEASE},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15,
                     "renewTime": renewed.to_string()}
        }))
        .unwrap()
    }

    #[test]
    fn a_lease_is_held_by_a_holder_within_its_term_only() {
        let now = k8s_openapi::jiff::Timestamp::now();
        assert!(held(&lease(Some("controller-0"), 5), now));
        assert!(!held(&lease(Some("controller-0"), 20), now), "expired");
        assert!(!held(&lease(None, 5), now), "released");
        assert!(!held(&lease(Some(""), 5), now), "released");
    }
}
