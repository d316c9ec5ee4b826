//! The state Secret and the Lease, rendered with metadata only: the
//! controller creates them (so the pods' Role needs no `create`), while
//! their contents belong to tailscaled and the runtime. Server-side apply of
//! metadata alone never touches those contents.

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use policy_sdk::Service;
use svc_lb_contract::ProxyNames;

use super::metadata::object_meta;
use crate::config::ControllerConfig;

/// Secret type of the state Secret.
const OPAQUE: &str = "Opaque";

pub(super) fn render_state_secret(
    service: &Service,
    config: &ControllerConfig,
    names: &ProxyNames,
) -> Secret {
    Secret {
        metadata: object_meta(service, config, &names.state_secret),
        type_: Some(OPAQUE.to_string()),
        ..Secret::default()
    }
}

pub(super) fn render_lease(
    service: &Service,
    config: &ControllerConfig,
    names: &ProxyNames,
) -> Lease {
    Lease {
        metadata: object_meta(service, config, &names.lease),
        spec: None,
    }
}
