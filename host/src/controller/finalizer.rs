//! Our finalizer on served Services, with the annotation naming our
//! installation ([`SERVED_BY_ANNOTATION`]): both are added before anything
//! is created for a Service and removed when its proxy is gone.
//!
//! Adding sends the whole finalizer list with the Service's resourceVersion,
//! so a concurrent change is a conflict and a retry, never a lost finalizer
//! of someone else's. Removing is a JSON patch that tests the entry it
//! removes, so it holds even after our own status write moved the
//! resourceVersion on.

use k8s_openapi::api::core::v1::Service;
use kube::api::Patch;
use kube::{Api, ResourceExt};
use serde_json::json;
use svc_lb_contract::keys::{SERVED_BY_ANNOTATION, SERVICE_FINALIZER};

use super::context::{manager_params, unless_gone};

/// Whether the Service carries our finalizer.
pub fn has_finalizer(service: &Service) -> bool {
    service.finalizers().iter().any(|f| f == SERVICE_FINALIZER)
}

/// Whether the Service is served by the installation in `namespace`: it
/// carries the finalizer and names us (or, without the annotation, is of
/// our class). Pure.
pub fn served_by(service: &Service, namespace: &str, class: &str) -> bool {
    if !has_finalizer(service) {
        return false;
    }
    match service.annotations().get(SERVED_BY_ANNOTATION) {
        Some(by) => by == namespace,
        None => {
            let spec = service.spec.as_ref();
            spec.and_then(|s| s.load_balancer_class.as_deref()) == Some(class)
        }
    }
}

/// Adds our finalizer and annotation; `false` when the Service is gone.
pub async fn add_finalizer(
    services: &Api<Service>,
    service: &Service,
    namespace: &str,
) -> kube::Result<bool> {
    let mut finalizers = service.finalizers().to_vec();
    finalizers.push(SERVICE_FINALIZER.into());
    let patch = json!({"metadata": {
        "finalizers": finalizers,
        "annotations": {SERVED_BY_ANNOTATION: namespace},
        "resourceVersion": service.resource_version(),
    }});
    let patched = services
        .patch(&service.name_any(), &manager_params(), &Patch::Merge(patch))
        .await;
    Ok(unless_gone(patched)?.is_some())
}

/// `~` and `/` escaped for a JSON pointer.
fn pointer_token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Removes our finalizer and annotation (a Service without the finalizer is
/// left alone; a Service already gone is fine).
pub async fn remove_finalizer(services: &Api<Service>, service: &Service) -> kube::Result<()> {
    let Some(index) = service
        .finalizers()
        .iter()
        .position(|f| f == SERVICE_FINALIZER)
    else {
        return Ok(());
    };
    let path = format!("/metadata/finalizers/{index}");
    let mut operations = vec![
        json!({"op": "test", "path": path, "value": SERVICE_FINALIZER}),
        json!({"op": "remove", "path": path}),
    ];
    if let Some(by) = service.annotations().get(SERVED_BY_ANNOTATION) {
        let path = format!(
            "/metadata/annotations/{}",
            pointer_token(SERVED_BY_ANNOTATION)
        );
        operations.push(json!({"op": "test", "path": path, "value": by}));
        operations.push(json!({"op": "remove", "path": path}));
    }
    let patch: Patch<()> =
        Patch::Json(serde_json::from_value(json!(operations)).expect("a well-formed JSON patch"));
    unless_gone(
        services
            .patch(&service.name_any(), &manager_params(), &patch)
            .await,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(yaml: &str) -> Service {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn only_our_installation_claims_a_service() {
        let ours = service(
            "metadata: {name: a, finalizers: [svc-lb.tailscale.iptables.sh/finalizer], \
             annotations: {svc-lb.tailscale.iptables.sh/served-by: ns-a}}\nspec: {type: ClusterIP}",
        );
        assert!(served_by(&ours, "ns-a", "a/lb"));
        assert!(!served_by(&ours, "ns-b", "b/lb"), "another installation");
        let unannotated = service(
            "metadata: {name: a, finalizers: [svc-lb.tailscale.iptables.sh/finalizer]}\n\
             spec: {type: LoadBalancer, loadBalancerClass: a/lb}",
        );
        assert!(served_by(&unannotated, "ns-a", "a/lb"));
        assert!(!served_by(&unannotated, "ns-b", "b/lb"));
        let no_finalizer =
            service("metadata: {name: a}\nspec: {type: LoadBalancer, loadBalancerClass: a/lb}");
        assert!(!served_by(&no_finalizer, "ns-a", "a/lb"));
    }
}
