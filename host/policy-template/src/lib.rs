//! `{{name}}`: a placement policy for tailscale-svc-lb.
//!
//! As generated, it:
//! - labels the proxy pods with the operator's `environment` (settings);
//! - refuses to place a Service when no ready node matches the node selector
//!   the policies before it chose (unless `requireReadyNode` is `false`), so
//!   its owner sees why it has no address.
//!
//! Settings (JSON or YAML, written by the operator beside the component):
//!
//! ```json
//! {"environment": "dev", "requireReadyNode": true}
//! ```
//!
//! The crate is `#![no_std]`: without the standard library's panic and I/O
//! code the component is about 20–30 KB smaller (the SDK reports a panic
//! through the controller's log instead). `String`, `Vec`, `format!` and
//! the like come from `policy_sdk::prelude`. A dependency that needs the
//! standard library makes the build fail with "duplicate lang item"; then
//! remove `#![no_std]` and turn on policy-sdk's `std` feature.

#![no_std]

use policy_sdk::prelude::*;
use policy_sdk::syntax::is_dns_label;
use policy_sdk::{LogLevel, Plan, Policy, Rejection, Request, Selector};
use serde::Deserialize;

/// Pod label carrying the environment.
pub const ENVIRONMENT_LABEL: &str = "example.com/environment";

/// The policy.
pub struct ThisPolicy;

/// What the operator configures.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    /// The environment these Services run in, e.g. `dev` (a DNS label).
    pub environment: String,
    /// Refuse Services whose node selector matches no ready node.
    #[serde(default = "yes")]
    pub require_ready_node: bool,
}

fn yes() -> bool {
    true
}

impl Policy for ThisPolicy {
    type Settings = Settings;

    /// Runs once when the controller loads the policy: a mistake here is
    /// reported before any Service depends on it.
    fn validate_settings(settings: &Settings) -> Result<(), String> {
        if !is_dns_label(&settings.environment) {
            return Err(format!(
                "environment \"{}\" is not a DNS label (lower-case letters, digits and '-')",
                settings.environment
            ));
        }
        Ok(())
    }

    /// Runs for every Service; `plan` is what the policies before this one
    /// (the bundled default policy first) decided.
    fn evaluate(request: &Request<'_, Settings>, mut plan: Plan) -> Result<Plan, Rejection> {
        let settings = request.settings;
        plan.pod_labels
            .insert(ENVIRONMENT_LABEL.into(), settings.environment.clone());

        if settings.require_ready_node {
            // Only the nodes the plan selects, and none of their labels:
            // a policy pays for the nodes and labels it asks for.
            let selector = Selector::matching_labels(&plan.node_selector);
            let nodes = request.cluster.nodes_with_labels(&selector, &[]);
            if !nodes.iter().any(|node| node.ready) {
                let selector: Vec<String> = (plan.node_selector.iter())
                    .map(|(key, value)| format!("{key}={value}"))
                    .collect();
                return Err(Rejection::new(format!(
                    "no ready node matches the node selector {}",
                    selector.join(",")
                )));
            }
            request.cluster.log(
                LogLevel::Debug,
                format!("{} candidate node(s)", nodes.len()),
            );
        }

        // Add your rules here.

        Ok(plan)
    }
}

policy_sdk::export_policy!(ThisPolicy);
