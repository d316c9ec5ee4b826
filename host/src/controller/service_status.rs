//! Writing what a Service shows of its proxy: the ingress (the Tailscale
//! addresses) and our condition, by server-side apply of only those fields,
//! and only when they differ from what the Service shows (so an unchanged
//! reconcile writes nothing and repeats no Event).

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{Api, ResourceExt};
use serde_json::json;

use super::context::{Context, apply_service_status, service_key};
use super::error::ReconcileError;
use super::status::{PROXY_READY, ProxyReport, Readiness, ingress_shown, with_proxy_condition};

/// Writes ingress (when `report` is given) and our condition, if either
/// differs from what the Service shows.
pub(super) async fn set_status(
    ctx: &Context,
    services: &Api<Service>,
    service: &Service,
    report: Option<&ProxyReport>,
    readiness: &Readiness,
) -> Result<(), ReconcileError> {
    let status = service.status.clone().unwrap_or_default();
    let current_ingress = status
        .load_balancer
        .as_ref()
        .and_then(|lb| lb.ingress.clone())
        .unwrap_or_default();
    let current_conditions = status.conditions.unwrap_or_default();
    let conditions = with_proxy_condition(
        &current_conditions,
        readiness,
        service.metadata.generation,
        Time(k8s_openapi::jiff::Timestamp::now()),
    );
    let ingress = report.map(ProxyReport::ingress);
    let ingress_changed = ingress
        .as_ref()
        .is_some_and(|i| !ingress_shown(i, &current_ingress));
    let conditions_changed = !same_conditions(&conditions, &current_conditions);
    if !ingress_changed && !conditions_changed {
        return Ok(());
    }
    // Server-side apply of only what we own: the ingress and our condition.
    // Conditions are a map keyed by type, so other writers' conditions stay;
    // the ingress is always sent, since what we stop sending is removed.
    let ours: Vec<_> = conditions
        .iter()
        .filter(|c| c.type_ == PROXY_READY)
        .collect();
    let status = json!({
        "loadBalancer": {"ingress": ingress.clone().unwrap_or(current_ingress)},
        "conditions": ours,
    });
    apply_service_status(services, &service.name_any(), status).await?;
    if ingress_changed && let Some(ingress) = ingress.filter(|i| !i.is_empty()) {
        let shown: Vec<String> = ingress
            .iter()
            .filter_map(|i| i.ip.clone().or_else(|| i.hostname.clone()))
            .collect();
        tracing::info!(service = %service_key(service), addresses = ?shown, "Tailscale address assigned");
        ctx.event(
            service,
            false,
            "AddressAssigned",
            format!("Tailscale address {}", shown.join(", ")),
        )
        .await;
    }
    Ok(())
}

/// Conditions equal but for the transition time of an unchanged one.
fn same_conditions(a: &[Condition], b: &[Condition]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            (
                &x.type_,
                &x.status,
                &x.reason,
                &x.message,
                x.observed_generation,
            ) == (
                &y.type_,
                &y.status,
                &y.reason,
                &y.message,
                y.observed_generation,
            )
        })
}
