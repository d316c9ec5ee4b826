//! The sweep, at the start of each leadership term and then every resync
//! period: proxies in our namespace whose Service no longer wants them
//! (deleted while its finalizer was removed by hand, or no longer a
//! LoadBalancer of our class and not served by us) are removed. Services
//! still served by us are left to the normal teardown, which also logs the
//! device out. Services are looked up in the Controller's cache.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Secret, Service};
use kube::api::ListParams;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, ResourceExt};
use svc_lb_contract::ProxyNames;
use svc_lb_contract::keys::{SERVICE_NAME_LABEL, SERVICE_NAMESPACE_LABEL};

use super::context::Context;
use super::finalizer::served_by;
use super::run::managed_selector;
use super::teardown::delete_proxy_objects;
use crate::service_input::policy_input;

/// Whether a proxy is unwanted by its Service (as found, `None` when
/// absent): it is, unless the Service is ours to serve or still served by
/// us (then the normal teardown runs). Pure.
pub fn is_orphaned(service: Option<&Service>, namespace: &str, class: &str) -> bool {
    service.is_none_or(|s| !served_by(s, namespace, class) && policy_input(s, class).is_err())
}

/// Removes every orphaned proxy; returns how many.
pub async fn sweep_orphans(ctx: &Context, services: &Store<Service>) -> kube::Result<usize> {
    let ns = &ctx.config.namespace;
    let daemonsets: Api<DaemonSet> = Api::namespaced(ctx.client.clone(), ns);
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let selector = ListParams::default().labels(&managed_selector());
    let mut owners = BTreeSet::new();
    for meta in daemonsets.list_metadata(&selector).await?.items {
        owners.insert(owner_of(meta.labels()));
    }
    for meta in secrets.list_metadata(&selector).await?.items {
        owners.insert(owner_of(meta.labels()));
    }
    let mut removed = 0;
    for (namespace, name) in owners.into_iter().flatten() {
        let service = services.get(&ObjectRef::new(&name).within(&namespace));
        let class = &ctx.config.load_balancer_class;
        if !is_orphaned(service.as_deref(), ns, class) {
            continue;
        }
        tracing::warn!(service = %format!("{namespace}/{name}"), "removing a proxy whose Service no longer wants it");
        let names = ProxyNames::for_service(&namespace, &name);
        delete_proxy_objects(&ctx.client, ns, &names).await?;
        removed += 1;
    }
    Ok(removed)
}

/// `(namespace, name)` of the Service a managed object names in its labels.
fn owner_of(labels: &std::collections::BTreeMap<String, String>) -> Option<(String, String)> {
    Some((
        labels.get(SERVICE_NAMESPACE_LABEL)?.clone(),
        labels.get(SERVICE_NAME_LABEL)?.clone(),
    ))
}
