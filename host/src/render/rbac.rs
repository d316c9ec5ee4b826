//! Identity and least-privilege access of the runtime pods: the state
//! Secret and the Lease of their own Service, by name, and nothing else.
//!
//! Verbs: `get`, `list` and `watch` (standbys wait on a watch; list and watch
//! with a `metadata.name` field selector are authorised by `resourceNames`),
//! `update` and `patch` (tailscaled writes its state, the leader renews).
//! No `create` or `delete`: the controller owns both objects' lifecycle.

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use policy_sdk::Service;
use svc_lb_contract::ProxyNames;

use super::metadata::object_meta;
use crate::config::ControllerConfig;

const RUNTIME_VERBS: &[&str] = &["get", "list", "watch", "update", "patch"];

pub(super) fn render_service_account(
    service: &Service,
    config: &ControllerConfig,
    names: &ProxyNames,
) -> ServiceAccount {
    ServiceAccount {
        metadata: object_meta(service, config, &names.service_account),
        ..ServiceAccount::default()
    }
}

pub(super) fn render_role(
    service: &Service,
    config: &ControllerConfig,
    names: &ProxyNames,
) -> Role {
    let rule = |group: &str, resource: &str, name: &str| PolicyRule {
        api_groups: Some(vec![group.to_string()]),
        resources: Some(vec![resource.to_string()]),
        resource_names: Some(vec![name.to_string()]),
        verbs: RUNTIME_VERBS.iter().map(|v| v.to_string()).collect(),
        non_resource_urls: None,
    };
    Role {
        metadata: object_meta(service, config, &names.role),
        rules: Some(vec![
            rule("", "secrets", &names.state_secret),
            rule("coordination.k8s.io", "leases", &names.lease),
        ]),
    }
}

pub(super) fn render_role_binding(
    service: &Service,
    config: &ControllerConfig,
    names: &ProxyNames,
) -> RoleBinding {
    RoleBinding {
        metadata: object_meta(service, config, &names.role_binding),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: names.role.clone(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: names.service_account.clone(),
            namespace: Some(config.namespace.clone()),
            api_group: None,
        }]),
    }
}
