//! Our finalizer on served Services: added before anything is created for a
//! Service, removed when its proxy is gone. Each write sends the whole list
//! with the Service's resourceVersion, so a concurrent change to the
//! finalizers is a conflict and a retry, never a lost finalizer of someone
//! else's.

use k8s_openapi::api::core::v1::Service;
use kube::api::Patch;
use kube::{Api, ResourceExt};
use serde_json::json;
use svc_lb_contract::keys::SERVICE_FINALIZER;

use super::context::manager_params;

/// Whether the Service carries our finalizer.
pub fn has_finalizer(service: &Service) -> bool {
    service.finalizers().iter().any(|f| f == SERVICE_FINALIZER)
}

async fn write_finalizers(
    services: &Api<Service>,
    service: &Service,
    finalizers: Vec<String>,
) -> kube::Result<()> {
    let patch = json!({"metadata": {
        "finalizers": finalizers,
        "resourceVersion": service.resource_version(),
    }});
    match services
        .patch(&service.name_any(), &manager_params(), &Patch::Merge(patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(error) => Err(error),
    }
}

/// Adds our finalizer.
pub async fn add_finalizer(services: &Api<Service>, service: &Service) -> kube::Result<()> {
    let mut finalizers = service.finalizers().to_vec();
    finalizers.push(SERVICE_FINALIZER.into());
    write_finalizers(services, service, finalizers).await
}

/// Removes our finalizer (a Service without it is left alone).
pub async fn remove_finalizer(services: &Api<Service>, service: &Service) -> kube::Result<()> {
    if !has_finalizer(service) {
        return Ok(());
    }
    let finalizers = service
        .finalizers()
        .iter()
        .filter(|f| *f != SERVICE_FINALIZER)
        .cloned()
        .collect();
    write_finalizers(services, service, finalizers).await
}
