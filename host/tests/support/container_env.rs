//! A container's environment as the kubelet gives it, for the values the
//! chart uses: literal values, the pod's name (`fieldRef`) and its memory
//! limit in MiB (`resourceFieldRef`, 256 as the chart sets it).
#![allow(dead_code)]

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Container;

/// `container`'s environment in pod `pod`.
pub fn container_environment(container: &Container, pod: &str) -> BTreeMap<String, String> {
    container
        .env
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|var| {
            let value = match (var.value, var.value_from) {
                (Some(value), _) => value,
                (None, Some(from)) if from.field_ref.is_some() => pod.to_string(),
                (None, Some(from)) if from.resource_field_ref.is_some() => "256".into(),
                other => panic!("{}: {other:?}", var.name),
            };
            (var.name, value)
        })
        .collect()
}
