//! Labels and annotations that tie every managed object to its Service.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use policy_sdk::Service;
use svc_lb_contract::keys;

use crate::config::ControllerConfig;

/// Labels selecting the pods of one Service's proxy (the DaemonSet's
/// immutable selector).
pub fn selector_labels(service: &Service) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            keys::SERVICE_NAMESPACE_LABEL.to_string(),
            service.namespace.clone(),
        ),
        (keys::SERVICE_NAME_LABEL.to_string(), service.name.clone()),
        (
            keys::MANAGED_BY_LABEL.to_string(),
            keys::MANAGED_BY_VALUE.to_string(),
        ),
    ])
}

/// Labels on every object rendered for `service`.
pub fn owner_labels(service: &Service) -> BTreeMap<String, String> {
    let mut labels = selector_labels(service);
    labels.insert(
        keys::COMPONENT_LABEL.to_string(),
        keys::COMPONENT_PROXY.to_string(),
    );
    labels
}

/// Metadata of an object named `name` rendered for `service`.
pub(super) fn object_meta(service: &Service, config: &ControllerConfig, name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: Some(config.namespace.clone()),
        labels: Some(owner_labels(service)),
        annotations: (!service.uid.is_empty()).then(|| {
            BTreeMap::from([(
                keys::SERVICE_UID_ANNOTATION.to_string(),
                service.uid.clone(),
            )])
        }),
        ..ObjectMeta::default()
    }
}
