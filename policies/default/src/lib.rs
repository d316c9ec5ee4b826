//! The default placement policy, bundled into the controller.
//!
//! - node selector: `svc-lb.tailscale.iptables.sh/deploy=true` (label and
//!   value configurable);
//! - hostname: the Service annotation `svc-lb.tailscale.iptables.sh/hostname`,
//!   else `<namespace>-<name>` made a valid DNS label;
//! - tags: the annotation `svc-lb.tailscale.iptables.sh/tags` (comma-separated),
//!   else the settings' `defaultTags`. With `allowedTags` set, a namespace may
//!   only ask for the tags listed for it (or under `"*"`). The controller's
//!   `planRules.allowedTags` enforces the same rule on every policy's plan;
//!   this setting is kept for sets written before it.
//!
//! Settings (all optional):
//!
//! ```json
//! {
//!   "nodeSelector": {"svc-lb.tailscale.iptables.sh/deploy": "true"},
//!   "defaultTags": ["tag:k8s"],
//!   "allowedTags": {"team-a": ["tag:team-a"], "*": ["tag:shared"]}
//! }
//! ```

#![no_std]

use policy_sdk::prelude::*;
use policy_sdk::syntax::{is_dns_label, is_tailscale_tag as is_tag};
use policy_sdk::{Labels, Plan, Policy, Rejection, Request};
use serde::Deserialize;
use svc_lb_contract::keys::{DEPLOY_NODE_LABEL, HOSTNAME_ANNOTATION, TAGS_ANNOTATION};

mod hostname;

pub use hostname::hostname_from_service_name;

/// Key of `allowedTags` that applies to every namespace.
const ANY_NAMESPACE: &str = "*";

/// The default policy.
pub struct DefaultPolicy;

/// Settings of the default policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    /// Labels a node must carry to run proxies.
    #[serde(default = "default_node_selector")]
    pub node_selector: Labels,
    /// Tags for Services that do not ask for any.
    #[serde(default)]
    pub default_tags: Vec<String>,
    /// Tags each namespace may ask for; `None` allows any tag.
    #[serde(default)]
    pub allowed_tags: Option<BTreeMap<String, Vec<String>>>,
}

fn default_node_selector() -> Labels {
    let mut labels = Labels::new();
    labels.insert(DEPLOY_NODE_LABEL.to_string(), "true".to_string());
    labels
}

impl Policy for DefaultPolicy {
    type Settings = Settings;

    fn validate_settings(settings: &Settings) -> Result<(), String> {
        if settings.node_selector.is_empty() {
            return Err("nodeSelector must not be empty: proxies would run on every node".into());
        }
        let allowed = settings
            .allowed_tags
            .iter()
            .flat_map(|m| m.values().flatten());
        match settings
            .default_tags
            .iter()
            .chain(allowed)
            .find(|t| !is_tag(t))
        {
            Some(bad) => Err(format!("\"{bad}\" is not a tag of the form tag:[a-z0-9-]+")),
            None => Ok(()),
        }
    }

    fn evaluate(request: &Request<'_, Settings>, mut plan: Plan) -> Result<Plan, Rejection> {
        let service = request.service;
        let settings = request.settings;

        plan.node_selector = settings.node_selector.clone();

        plan.hostname = match service.annotation(HOSTNAME_ANNOTATION) {
            Some(wanted) if is_dns_label(wanted) => wanted.to_string(),
            Some(wanted) => {
                return Err(Rejection::new(format!(
                    "annotation {HOSTNAME_ANNOTATION}=\"{wanted}\" is not a DNS label \
                     (lower-case letters, digits and '-', at most 63 characters)"
                )));
            }
            None => hostname_from_service_name(&service.namespace, &service.name),
        };

        plan.tags = match service.annotation(TAGS_ANNOTATION) {
            Some(list) => requested_tags(list, &service.namespace, settings)?,
            None => settings.default_tags.clone(),
        };
        Ok(plan)
    }
}

fn requested_tags(
    list: &str,
    namespace: &str,
    settings: &Settings,
) -> Result<Vec<String>, Rejection> {
    let tags: Vec<String> = list
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    if let Some(bad) = tags.iter().find(|t| !is_tag(t)) {
        return Err(Rejection::new(format!(
            "annotation {TAGS_ANNOTATION}: \"{bad}\" is not a tag of the form tag:[a-z0-9-]+"
        )));
    }
    if let Some(allowed) = &settings.allowed_tags {
        let permitted: Vec<&String> = [namespace, ANY_NAMESPACE]
            .iter()
            .filter_map(|ns| allowed.get(*ns))
            .flatten()
            .collect();
        if let Some(denied) = tags.iter().find(|t| !permitted.contains(t)) {
            return Err(Rejection::new(format!(
                "namespace {namespace} may not use tag {denied}; allowed: {}",
                comma_list(&permitted)
            )));
        }
    }
    Ok(tags)
}

/// `a, b, c`, or `none`. (`[&str]::join` would link a generic copy loop
/// of its own into the component.)
fn comma_list(items: &[&String]) -> String {
    let mut list = String::new();
    for item in items {
        if !list.is_empty() {
            list.push_str(", ");
        }
        list.push_str(item);
    }
    if list.is_empty() {
        "none".to_string()
    } else {
        list
    }
}

policy_sdk::export_policy!(DefaultPolicy);

#[cfg(test)]
mod tests;
