//! Reconcile of one Service: decide whether it is ours and alive, then
//! provision (policies → render → apply → status) or tear down. Only
//! fetching, calling the pure functions and applying happen here.

use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Secret, Service};
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use svc_lb_contract::ProxyNames;
use tracing::Instrument;

use super::apply::{ApplyOutcome, apply_proxy};
use super::context::{Context, service_key};
use super::error::ReconcileError;
use super::finalizer::{add_finalizer, has_finalizer, served_by};
use super::policy_source::ActivePolicies;
use super::problems::{PodsCheck, ProblemContext, pods_not_created};
use super::service_status::set_status;
use super::status::{PROXY_READY, Readiness};
use super::tailnet::Minted;
use super::teardown::{AfterTeardown, delete_ours, teardown};
use crate::policy::NodeSource;
use crate::policy::{ChainError, PolicyErrorKind};
use crate::render::render_proxy;
use crate::service_input::{NotServed, policy_input};

/// How long a reconcile waits for the caches of our objects to fill.
const CACHE_SYNC_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The controller's reconcile function.
pub async fn reconcile(service: Arc<Service>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let started = Instant::now();
    let key = service_key(&service);
    // Every line logged during the reconcile, also by kube and the policy
    // engine, carries the Service.
    let span = tracing::info_span!("reconcile", service = %key);
    let result = reconcile_service(&service, &ctx).instrument(span).await;
    ctx.metrics
        .observe_reconcile(started.elapsed(), result.as_ref().err());
    if result.is_ok() {
        ctx.failures.clear(&key);
    }
    if let Err(error) = &result {
        tracing::warn!(service = %key, %error, "reconcile failed");
    }
    result
}

/// Requeue with backoff is done by the error policy; this only logs.
pub fn error_policy(service: Arc<Service>, error: &ReconcileError, ctx: Arc<Context>) -> Action {
    let failures = ctx.failures.record(&service_key(&service));
    let delay = match error {
        // A new policy set reconciles every Service at once anyway.
        ReconcileError::NoPolicySet(_) => std::time::Duration::from_secs(60),
        _ => retry_delay(ctx.timings.retry_base, failures),
    };
    Action::requeue(delay)
}

/// Exponential backoff: `base` after the first failure, doubling, at most
/// 5 min. Pure.
pub fn retry_delay(base: std::time::Duration, failures: u32) -> std::time::Duration {
    let factor = 1u32 << failures.saturating_sub(1).min(10);
    base.saturating_mul(factor)
        .min(std::time::Duration::from_secs(300))
}

async fn reconcile_service(service: &Service, ctx: &Context) -> Result<Action, ReconcileError> {
    let served = policy_input(service, &ctx.config.load_balancer_class);
    let deleting = service.metadata.deletion_timestamp.is_some();
    match served {
        Ok(input) if !deleting => provision(service, input, ctx).await,
        Err(NotServed::Unreadable { .. }) if !deleting => {
            let Err(unreadable) = served else {
                unreachable!()
            };
            ctx.event(service, true, "InvalidService", unreadable.to_string())
                .await;
            Err(ReconcileError::Unreadable(unreadable))
        }
        _ if served_by(
            service,
            &ctx.config.namespace,
            &ctx.config.load_balancer_class,
        ) =>
        {
            teardown(service, ctx, AfterTeardown::Released).await
        }
        // Not ours (another class or type, and never served): untouched.
        _ => Ok(Action::await_change()),
    }
}

async fn provision(
    service: &Service,
    input: policy_sdk::Service,
    ctx: &Context,
) -> Result<Action, ReconcileError> {
    let key = service_key(service);
    let services: Api<Service> = Api::namespaced(
        ctx.client.clone(),
        service.namespace().as_deref().unwrap_or("default"),
    );
    let chain = match ctx.policies.active() {
        ActivePolicies::Chain { chain, .. } => chain,
        ActivePolicies::None(reason) => {
            set_status(
                ctx,
                &services,
                service,
                None,
                &Readiness::NoPolicySet(reason.clone()),
            )
            .await?;
            return Err(ReconcileError::NoPolicySet(reason));
        }
    };
    if tokio::time::timeout(CACHE_SYNC_TIMEOUT, ctx.caches.wait_until_ready())
        .await
        .is_err()
    {
        return Err(ReconcileError::CachesNotSynced);
    }
    let nodes: Arc<dyn NodeSource> = ctx.nodes.clone();
    let evaluated = {
        let input = input.clone();
        tokio::task::spawn_blocking(move || chain.evaluate(&input, nodes))
            .await
            .map_err(|e| ReconcileError::Evaluation(e.to_string()))?
    };
    let outcome = match evaluated {
        Ok(outcome) => outcome,
        Err(ChainError::DoNotServe { policy, reason }) => {
            return withdraw(service, ctx, &services, policy, reason).await;
        }
        // Every instance slot stayed busy: not the policy's fault, and not
        // the Service owner's business; try again soon.
        Err(ChainError::Policy(error)) if matches!(error.kind, PolicyErrorKind::Busy(_)) => {
            tracing::debug!(service = %key, "policy instances busy; retrying");
            return Ok(Action::requeue(std::time::Duration::from_secs(1)));
        }
        Err(error) => {
            let message = error.to_string();
            ctx.event(service, true, "PolicyFailed", message.clone())
                .await;
            set_status(
                ctx,
                &services,
                service,
                None,
                &Readiness::PolicyFailed(message),
            )
            .await?;
            return Err(ReconcileError::Policy(error));
        }
    };
    for step in &outcome.trace {
        ctx.metrics.observe_policy(&step.policy, step.elapsed);
    }
    // The finalizer comes before anything is created for the Service (and
    // only for a Service that is to be served).
    if !has_finalizer(service) && !add_finalizer(&services, service, &ctx.config.namespace).await? {
        // Deleted meanwhile: create nothing that nothing would remove.
        return Ok(Action::await_change());
    }
    let names = ProxyNames::for_service(&input.namespace, &input.name);
    if let Some(old) = ctx
        .caches
        .secrets
        .get(&names.state_secret)
        .filter(|s| s.deprovision_requested)
    {
        // The old device leaves the tailnet too (with an OAuth client), or
        // the new one would be `<hostname>-1`.
        ctx.tailnet
            .clean(
                ctx,
                &old.report,
                old.auth_key_id.as_deref(),
                &names.daemonset,
            )
            .await?;
        // Served again after a teardown began: the device is logging out
        // or has; start over with a fresh state (a new device).
        delete_ours::<Secret>(&ctx.client, &ctx.config.namespace, &names.state_secret).await?;
        ctx.event(
            service,
            false,
            "ProxyReset",
            "served again after its teardown began: the proxy starts with a fresh Tailscale identity".into(),
        )
        .await;
        return Ok(Action::requeue(std::time::Duration::from_secs(1)));
    }
    let objects = render_proxy(&input, &outcome.plan, &ctx.config);
    match apply_proxy(ctx, &objects, &names).await? {
        ApplyOutcome::Unchanged => {}
        ApplyOutcome::Created => {
            tracing::info!(service = %key, daemonset = %objects.daemonset.name_any(), "proxy created");
            ctx.event(
                service,
                false,
                "ProxyCreated",
                format!(
                    "created DaemonSet {}/{} on nodes matching {}",
                    ctx.config.namespace,
                    objects.daemonset.name_any(),
                    selector_text(&outcome.plan.node_selector)
                ),
            )
            .await;
        }
        ApplyOutcome::Updated => {
            tracing::info!(service = %key, "proxy updated");
            ctx.event(
                service,
                false,
                "ProxyUpdated",
                format!(
                    "updated DaemonSet {}/{}",
                    ctx.config.namespace,
                    objects.daemonset.name_any()
                ),
            )
            .await;
        }
    }
    let summary = ctx
        .caches
        .secrets
        .get(&names.state_secret)
        .unwrap_or_default();
    if ctx.caches.secrets.contains(&names.state_secret) {
        let description = oauth_key_description(&key);
        let minted = ctx
            .tailnet
            .ensure_auth_key(
                ctx,
                &names.state_secret,
                &summary,
                &outcome.plan.tags,
                &description,
            )
            .await;
        match minted {
            Ok(Minted::Done) => {}
            Ok(Minted::Retry) => return Ok(Action::requeue(std::time::Duration::from_millis(500))),
            Err(error) => {
                let message = format!("cannot mint the proxy's auth key: {error}");
                ctx.event(service, true, "AuthKeyNotMinted", message.clone())
                    .await;
                let readiness = Readiness::Problem {
                    reason: "AuthKeyNotMinted",
                    message,
                };
                set_status(ctx, &services, service, None, &readiness).await?;
                return Err(error);
            }
        }
    }
    let report = summary.report;
    // The nodes the pods may run on: the plan's selector and Linux.
    let matching = ctx
        .nodes
        .count_matching(&crate::render::node_selector(&outcome.plan));
    // Only a proxy that does not serve needs its DaemonSet's counts.
    let (pods, recheck) = match report.ips.is_empty() {
        true => match pods_check(ctx, &names.daemonset).await? {
            PodsCheck::Stuck(stuck) => (Some(stuck), None),
            PodsCheck::Recheck(after) => (None, Some(after)),
            PodsCheck::Fine => (None, None),
        },
        false => (None, None),
    };
    let context = ProblemContext {
        tags: outcome.plan.tags.clone(),
        auth_key_secret: format!("{}/{}", ctx.config.namespace, ctx.config.auth_key_secret),
        oauth: ctx.config.oauth.is_some(),
    };
    let readiness = Readiness::of_proxy(
        &report,
        matching,
        &selector_text(&outcome.plan.node_selector),
        &context,
        pods,
    );
    set_status(ctx, &services, service, Some(&report), &readiness).await?;
    // A DaemonSet whose pods may turn out stuck is looked at again then:
    // nothing else would trigger a reconcile (its status stops changing).
    Ok(Action::requeue(
        recheck.map_or(ctx.timings.resync, |after| after.min(ctx.timings.resync)),
    ))
}

/// What the proxy DaemonSet `name`'s counts say about its pods.
async fn pods_check(ctx: &Context, name: &str) -> Result<PodsCheck, ReconcileError> {
    let daemonsets: Api<DaemonSet> = Api::namespaced(ctx.client.clone(), &ctx.config.namespace);
    let now = k8s_openapi::jiff::Timestamp::now();
    Ok(match daemonsets.get_opt(name).await? {
        Some(ds) => pods_not_created(&ds, now, ctx.timings.pods_grace),
        None => PodsCheck::Fine,
    })
}

/// A policy decided not to serve the Service: remove its proxy (logging
/// the device out) if it has one, and say why on the Service.
async fn withdraw(
    service: &Service,
    ctx: &Context,
    services: &Api<Service>,
    policy: String,
    reason: String,
) -> Result<Action, ReconcileError> {
    let readiness = Readiness::NotServed { policy, reason };
    if has_finalizer(service) {
        return teardown(service, ctx, AfterTeardown::NotServed(readiness)).await;
    }
    let already_said = service
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| {
            c.iter()
                .any(|c| c.type_ == PROXY_READY && c.reason == "NotServed")
        });
    set_status(ctx, services, service, None, &readiness).await?;
    if !already_said {
        let (_, _, message) = readiness.parts();
        ctx.event(service, false, "NotServed", message).await;
    }
    Ok(Action::requeue(ctx.timings.resync))
}

/// The description of a minted key: the Service, within the API's 50
/// characters.
fn oauth_key_description(service: &str) -> String {
    let mut text = format!("tailscale-svc-lb {service}");
    if text.len() > 50 {
        let mut cut = 49;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

fn selector_text(selector: &policy_sdk::Labels) -> String {
    selector
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::retry_delay;

    #[test]
    fn retries_back_off_exponentially_up_to_five_minutes() {
        let base = std::time::Duration::from_secs(5);
        let delays: Vec<u64> = [1, 2, 3, 4, 6, 7, 20]
            .iter()
            .map(|n| retry_delay(base, *n).as_secs())
            .collect();
        assert_eq!(delays, vec![5, 10, 20, 40, 160, 300, 300]);
    }
}
