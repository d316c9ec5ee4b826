//! Teardown of a Service's proxy when the Service is deleted or stops being
//! a LoadBalancer of our class:
//!
//! 1. if the device ever joined the tailnet, ask the leader to log out by
//!    annotating the state Secret, and wait (requeueing, never blocking)
//!    until it reports `logged_out`, for at most the deprovision timeout;
//! 2. delete the DaemonSet, Secret, Lease and RBAC, each only if it is ours
//!    (our managed-by label, deleted with a uid precondition);
//! 3. clear the ingress and our condition (or, when a policy decided not to
//!    serve the Service, say so in the condition), then remove the
//!    finalizer.

use std::time::Duration;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Secret, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{DeleteParams, Patch, Preconditions};
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::json;
use svc_lb_contract::ProxyNames;
use svc_lb_contract::keys::{DEPROVISION_ANNOTATION, MANAGED_BY_LABEL, MANAGED_BY_VALUE};

use super::context::{
    Context, SecretSummary, apply_service_status, manager_params, service_key, unless_gone,
};
use super::error::ReconcileError;
use super::finalizer::remove_finalizer;
use super::status::{PROXY_READY, ProxyReport, Readiness, with_proxy_condition};
use super::tailnet::retryable;

/// How often teardown looks again while the leader logs out.
const LOGOUT_POLL: Duration = Duration::from_secs(1);
/// Tries at cleaning the tailnet before the Service is let go anyway.
const TAILNET_CLEANUP_TRIES: u32 = 3;

/// Where the logout handshake stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deprovision {
    /// Nothing to log out (the device never joined), or the leader did.
    Done,
    /// Not asked yet.
    Ask,
    /// Asked; still within the timeout.
    Wait,
    /// Asked; the leader did not answer in time.
    TimedOut,
}

/// The next logout step, from the state Secret's report, the time of the
/// request (if made) and the timeout. Pure.
pub fn deprovision_step(
    report: &ProxyReport,
    requested_at: Option<&str>,
    now: k8s_openapi::jiff::Timestamp,
    timeout: Duration,
) -> Deprovision {
    if report.device_id.is_none() || report.logged_out.is_some() {
        return Deprovision::Done;
    }
    let Some(requested) = requested_at else {
        return Deprovision::Ask;
    };
    let Ok(requested) = requested.parse::<k8s_openapi::jiff::Timestamp>() else {
        return Deprovision::Ask;
    };
    let waited = now.duration_since(requested).unsigned_abs();
    if waited < timeout {
        Deprovision::Wait
    } else {
        Deprovision::TimedOut
    }
}

/// What the Service shows once its proxy is gone.
#[derive(Debug, Clone)]
pub enum AfterTeardown {
    /// Deleted or no longer ours: nothing of ours stays on it.
    Released,
    /// Still ours, but a policy decided not to serve it: the condition says
    /// so (the state is a [`Readiness::NotServed`]).
    NotServed(Readiness),
}

/// Tears the proxy of `service` down, a step per call.
pub async fn teardown(
    service: &Service,
    ctx: &Context,
    after: AfterTeardown,
) -> Result<Action, ReconcileError> {
    let key = service_key(service);
    let namespace = service.namespace().unwrap_or_default();
    let names = ProxyNames::for_service(&namespace, &service.name_any());
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ctx.config.namespace);
    // What the tailnet may still hold of this proxy: its device, a key.
    let mut leftovers = None;
    if let Some(secret) = secrets.get_opt(&names.state_secret).await?
        && is_ours(&secret)
    {
        let report = ProxyReport::from_secret_data(&secret.data.clone().unwrap_or_default());
        leftovers = Some((report.clone(), SecretSummary::of(&secret).auth_key_id));
        let requested_at = secret.annotations().get(DEPROVISION_ANNOTATION).cloned();
        let now = k8s_openapi::jiff::Timestamp::now();
        match deprovision_step(
            &report,
            requested_at.as_deref(),
            now,
            ctx.timings.deprovision_timeout,
        ) {
            Deprovision::Done => {}
            Deprovision::Ask => {
                let patch =
                    json!({"metadata": {"annotations": {DEPROVISION_ANNOTATION: now.to_string()}}});
                secrets
                    .patch(&names.state_secret, &manager_params(), &Patch::Merge(patch))
                    .await?;
                tracing::info!(service = %key, "asked the leader to log out of the tailnet");
                ctx.event(
                    service,
                    false,
                    "Deprovisioning",
                    "asked the proxy leader to log out of the tailnet".into(),
                )
                .await;
                return Ok(Action::requeue(LOGOUT_POLL));
            }
            Deprovision::Wait => return Ok(Action::requeue(LOGOUT_POLL)),
            Deprovision::TimedOut => {
                let message = format!(
                    "the proxy leader did not log out within {} s; removing the proxy anyway \
                     (device {} may stay in the tailnet until removed there)",
                    ctx.timings.deprovision_timeout.as_secs(),
                    report.device_id.as_deref().unwrap_or("?")
                );
                tracing::warn!(service = %key, "{message}");
                ctx.event(service, true, "DeprovisionTimedOut", message)
                    .await;
            }
        }
    }
    if let Some((report, key_id)) = &leftovers
        && let Err(error) = ctx
            .tailnet
            .clean(ctx, report, key_id.as_deref(), &names.daemonset)
            .await
    {
        // Retried a few times; then the Service is let go anyway (a
        // Tailscale API that is down must not hold it for ever).
        let retry = matches!(&error, ReconcileError::Tailnet(e) if retryable(e))
            && ctx.failures.count(&key) + 1 < TAILNET_CLEANUP_TRIES;
        if retry {
            return Err(error);
        }
        let message = format!(
            "cannot clean the tailnet ({error}); removing the proxy anyway: device {} may stay \
             in the tailnet until removed there",
            report.device_id.as_deref().unwrap_or("(none)")
        );
        tracing::warn!(service = %key, "{message}");
        ctx.event(service, true, "TailnetCleanupFailed", message)
            .await;
    }
    delete_proxy_objects(&ctx.client, &ctx.config.namespace, &names).await?;
    let services: Api<Service> = Api::namespaced(ctx.client.clone(), &namespace);
    let note = match &after {
        AfterTeardown::Released => {
            clear_status(&services, service).await?;
            "removed the Tailscale proxy".to_string()
        }
        AfterTeardown::NotServed(readiness) => {
            show_not_served(&services, service, readiness).await?;
            format!("removed the Tailscale proxy: {}", readiness.parts().2)
        }
    };
    remove_finalizer(&services, service).await?;
    tracing::info!(service = %key, "proxy removed");
    ctx.event(service, false, "ProxyRemoved", note).await;
    Ok(match after {
        AfterTeardown::Released => Action::await_change(),
        AfterTeardown::NotServed(_) => Action::requeue(ctx.timings.resync),
    })
}

/// No ingress, and our condition saying why the Service is not served.
async fn show_not_served(
    services: &Api<Service>,
    service: &Service,
    readiness: &Readiness,
) -> kube::Result<()> {
    let existing = service
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let now =
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now());
    let conditions = with_proxy_condition(&existing, readiness, service.metadata.generation, now);
    let ours: Vec<_> = conditions
        .iter()
        .filter(|c| c.type_ == PROXY_READY)
        .collect();
    let status = json!({"loadBalancer": {"ingress": []}, "conditions": ours});
    apply_service_status(services, &service.name_any(), status).await
}

/// Deletes every proxy object named by `names` that is ours.
pub async fn delete_proxy_objects(
    client: &kube::Client,
    namespace: &str,
    names: &ProxyNames,
) -> kube::Result<()> {
    delete_ours::<DaemonSet>(client, namespace, &names.daemonset).await?;
    delete_ours::<Lease>(client, namespace, &names.lease).await?;
    delete_ours::<RoleBinding>(client, namespace, &names.role_binding).await?;
    delete_ours::<Role>(client, namespace, &names.role).await?;
    delete_ours::<ServiceAccount>(client, namespace, &names.service_account).await?;
    delete_ours::<Secret>(client, namespace, &names.state_secret).await
}

fn is_ours<K: Resource>(object: &K) -> bool {
    object.labels().get(MANAGED_BY_LABEL).map(String::as_str) == Some(MANAGED_BY_VALUE)
}

/// Deletes `name` if it exists and carries our managed-by label.
pub(super) async fn delete_ours<K>(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> kube::Result<()>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
    <K as Resource>::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let Some(object) = api.get_metadata_opt(name).await? else {
        return Ok(());
    };
    if !is_ours(&object) {
        tracing::warn!(name, kind = %K::kind(&Default::default()), "not deleting an object we did not create");
        return Ok(());
    }
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: object.uid(),
            resource_version: None,
        }),
        ..DeleteParams::background()
    };
    unless_gone(api.delete(name, &params).await)?;
    Ok(())
}

/// Removes our ingress entries and condition: an apply of an empty status
/// drops every status field we applied before.
async fn clear_status(services: &Api<Service>, service: &Service) -> kube::Result<()> {
    let status = service.status.clone().unwrap_or_default();
    let had_ingress = status
        .load_balancer
        .as_ref()
        .and_then(|lb| lb.ingress.as_ref())
        .is_some_and(|i| !i.is_empty());
    let conditions = status.conditions.unwrap_or_default();
    let had_condition = conditions.iter().any(|c| c.type_ == PROXY_READY);
    if !had_ingress && !had_condition {
        return Ok(());
    }
    apply_service_status(services, &service.name_any(), json!({})).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> k8s_openapi::jiff::Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn logout_is_asked_awaited_and_bounded() {
        let timeout = Duration::from_secs(30);
        let now = at("2026-01-01T00:00:40Z");
        let never_joined = ProxyReport::default();
        assert_eq!(
            deprovision_step(&never_joined, None, now, timeout),
            Deprovision::Done
        );
        let joined = ProxyReport {
            device_id: Some("n123".into()),
            ..ProxyReport::default()
        };
        assert_eq!(
            deprovision_step(&joined, None, now, timeout),
            Deprovision::Ask
        );
        assert_eq!(
            deprovision_step(&joined, Some("2026-01-01T00:00:20Z"), now, timeout),
            Deprovision::Wait
        );
        assert_eq!(
            deprovision_step(&joined, Some("2026-01-01T00:00:05Z"), now, timeout),
            Deprovision::TimedOut
        );
        let logged_out = ProxyReport {
            logged_out: Some("2026-01-01T00:00:30Z".into()),
            ..joined
        };
        assert_eq!(
            deprovision_step(&logged_out, Some("2026-01-01T00:00:20Z"), now, timeout),
            Deprovision::Done
        );
    }
}
