//! Rendering: a pure function from (Service, final plan, controller config)
//! to every object the controller applies for that Service, all in the
//! controller's namespace and all named by [`svc_lb_contract::ProxyNames`].
//!
//! ```text
//! Service + Plan + ControllerConfig ──render_proxy──▶ ProxyObjects
//!   DaemonSet ts-…   runtime pods (one leader forwards)
//!   ServiceAccount / Role / RoleBinding ts-…   access to the two objects below only
//!   Secret ts-…      tailscaled state + addresses reported by the leader
//!   Lease ts-…       leader election
//! ```

mod daemonset;
mod env;
mod metadata;
mod rbac;
mod state;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use policy_sdk::{Plan, Service};
use svc_lb_contract::ProxyNames;

use crate::config::ControllerConfig;

pub use daemonset::{ENABLE_FORWARDING_CONTAINER, OS_LABEL, PROXY_CONTAINER, node_selector};
pub use metadata::{owner_labels, selector_labels};

/// Every object the controller applies for one Service.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ProxyObjects {
    /// The runtime pods.
    pub daemonset: DaemonSet,
    /// Identity of the runtime pods.
    pub service_account: ServiceAccount,
    /// Access to the state Secret and the Lease, by name.
    pub role: Role,
    /// Binds the Role to the ServiceAccount.
    pub role_binding: RoleBinding,
    /// tailscaled state and the addresses reported by the leader. Rendered
    /// with metadata only: its data belongs to the runtime.
    pub state_secret: Secret,
    /// Leader election; rendered with metadata only, its spec belongs to the runtime.
    pub lease: Lease,
}

/// Renders every object for `service` deployed per `plan`.
pub fn render_proxy(service: &Service, plan: &Plan, config: &ControllerConfig) -> ProxyObjects {
    let names = ProxyNames::for_service(&service.namespace, &service.name);
    ProxyObjects {
        daemonset: daemonset::render_daemonset(service, plan, config, &names),
        service_account: rbac::render_service_account(service, config, &names),
        role: rbac::render_role(service, config, &names),
        role_binding: rbac::render_role_binding(service, config, &names),
        state_secret: state::render_state_secret(service, config, &names),
        lease: state::render_lease(service, config, &names),
    }
}

impl ProxyObjects {
    /// The objects as a multi-document YAML stream, in apply order.
    pub fn to_yaml(&self) -> Result<String, serde_yaml_ng::Error> {
        let documents = [
            serde_yaml_ng::to_string(&self.service_account)?,
            serde_yaml_ng::to_string(&self.role)?,
            serde_yaml_ng::to_string(&self.role_binding)?,
            serde_yaml_ng::to_string(&self.state_secret)?,
            serde_yaml_ng::to_string(&self.lease)?,
            serde_yaml_ng::to_string(&self.daemonset)?,
        ];
        Ok(documents
            .iter()
            .map(|d| format!("---\n{d}"))
            .collect::<String>())
    }
}

#[cfg(test)]
mod tests;
