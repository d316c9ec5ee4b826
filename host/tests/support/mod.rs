//! Shared helpers of the host's integration tests: the components built from
//! `policies/` and fixtures.
#![allow(dead_code)]

use std::sync::Arc;

use policy_sdk::Service;
use svc_lb_host::policy::{EngineLimits, LoadedPolicy, PolicyEngine};

/// Bytes of the component built from crate `crate_name` of `policies/`.
pub fn wasm(crate_name: &str) -> Vec<u8> {
    let path = format!("{}/{}.wasm", env!("SVCLB_POLICY_WASM_DIR"), crate_name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// An engine with a short deadline, so hostile tests finish quickly.
pub fn engine() -> Arc<PolicyEngine> {
    Arc::new(
        PolicyEngine::new(EngineLimits {
            deadline: std::time::Duration::from_millis(200),
            max_memory_bytes: 32 << 20,
            ..EngineLimits::default()
        })
        .unwrap(),
    )
}

/// Loads `crate_name` under `name` with `settings`.
pub fn load(engine: &PolicyEngine, crate_name: &str, settings: &str) -> LoadedPolicy {
    engine
        .load(crate_name, &wasm(crate_name), settings)
        .unwrap_or_else(|e| panic!("loading {crate_name}: {e}"))
}

/// A Service from YAML.
pub fn service(yaml: &str) -> Service {
    policy_sdk::fixtures::service_from_yaml(yaml).unwrap()
}

/// The example Service of the repository.
pub fn example_service() -> Service {
    service(include_str!("../../../examples/service.yaml"))
}

/// Plan rules that allow the `example.com/*` pod annotations the test
/// policies write (prefixed annotations are refused by default).
pub fn rules_allowing_example_annotations() -> svc_lb_host::validate::PlanRules {
    svc_lb_host::validate::PlanRules {
        allowed_pod_annotations: vec!["example.com/*".into()],
        ..Default::default()
    }
}
