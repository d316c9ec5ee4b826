//! Checks every plan a policy returns before it is used: the controller
//! deploys only plans that the API server and Tailscale will accept and that
//! stay within bounds. Pure functions over the plan.

mod quantity;
mod rules;

pub use policy_sdk::syntax::{
    is_dns_label, is_dns_subdomain, is_env_name, is_label_value, is_qualified_name,
    is_tailscale_tag,
};
pub use quantity::parse_quantity;
pub use rules::{ANY_NAMESPACE, InvalidRules, PROTECTED_TAINTS, PlanRules, reserved_env_prefix};

use policy_sdk::{Labels, Plan, Toleration, TolerationOperator};
use svc_lb_contract::keys;

/// Most entries in the node selector, tags, tolerations or resource lists.
pub const MAX_SMALL_LIST: usize = 32;
/// Most pod labels, pod annotations or environment variables.
pub const MAX_LARGE_LIST: usize = 64;
/// Most bytes of all pod annotations together (the API server allows 256 KiB).
pub const MAX_ANNOTATION_BYTES: usize = 64 << 10;
/// Longest environment variable value.
pub const MAX_ENV_VALUE: usize = 4096;
/// Most bytes of all strings of a plan together: what any valid plan fits
/// in (annotations, env values, labels and the rest), checked while the
/// result is taken from the policy, so an oversized one is dropped at once.
pub const MAX_PLAN_BYTES: usize = 512 << 10;

/// Why a plan was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidPlan {
    /// The hostname is no DNS label.
    #[error("hostname {0:?} is not a DNS label (lower-case letters, digits and '-', at most 63)")]
    Hostname(String),
    /// A tag is malformed.
    #[error("tag {0:?} is not of the form tag:[a-z0-9-]+")]
    Tag(String),
    /// A tag is outside the operator's allowlist.
    #[error("tag {0} is not in the controller's tag allowlist")]
    TagNotAllowed(String),
    /// A tag the Service's namespace may not use.
    #[error(
        "namespace {namespace} may not use tag {tag} (planRules.allowedTags); allowed: {}",
        list_or_none(.permitted)
    )]
    TagNotAllowedInNamespace {
        /// The tag.
        tag: String,
        /// The Service's namespace.
        namespace: String,
        /// The tags the namespace may use.
        permitted: Vec<String>,
    },
    /// A list or map has too many entries.
    #[error("{field} has {count} entries; at most {max} are allowed")]
    TooMany {
        /// The plan field.
        field: &'static str,
        /// Entries found.
        count: usize,
        /// Entries allowed.
        max: usize,
    },
    /// Annotations or an environment value are too large.
    #[error("{field} is {bytes} bytes; at most {max} are allowed")]
    TooLarge {
        /// The plan field.
        field: &'static str,
        /// Bytes found.
        bytes: usize,
        /// Bytes allowed.
        max: usize,
    },
    /// A key is not a valid Kubernetes qualified name.
    #[error("{field}: key {key:?} is not a valid label/annotation key")]
    Key {
        /// The plan field.
        field: &'static str,
        /// The key.
        key: String,
    },
    /// A label value is malformed.
    #[error("{field}: value {value:?} of {key} is not a valid label value")]
    LabelValue {
        /// The plan field.
        field: &'static str,
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// A pod label the controller owns.
    #[error("pod label {0} is reserved for the controller")]
    ReservedLabel(String),
    /// An environment variable name is malformed.
    #[error("environment variable name {0:?} is invalid")]
    EnvName(String),
    /// An environment variable the runtime's settings use.
    #[error("environment variable {0} is reserved (prefixes SVCLB_, TS_, LD_)")]
    ReservedEnv(String),
    /// An environment variable the operator has not allowed.
    #[error(
        "environment variable {0} is not allowed: the runtime and tailscaled read their \
         settings from the environment; the operator may allow a name in planRules.allowedEnv"
    )]
    EnvNotAllowed(String),
    /// A prefixed pod annotation the operator has not allowed.
    #[error(
        "pod annotation {0} is not allowed: annotations can change how the node runs the pod; \
         the operator may allow it in planRules.allowedPodAnnotations"
    )]
    AnnotationNotAllowed(String),
    /// A toleration of every taint or of the control plane.
    #[error(
        "toleration {index} of {} is not allowed: the privileged proxy would run on the \
         control plane; the operator may allow it in planRules.allowedTolerations",
        if .key.is_empty() { "every taint" } else { .key.as_str() }
    )]
    TolerationNotAllowed {
        /// Position in the list.
        index: usize,
        /// The taint key; empty for every taint.
        key: String,
    },
    /// A `system-*` priority class the operator has not allowed.
    #[error(
        "priority class {0} is reserved for cluster components; the operator may allow it in \
         planRules.allowedPriorityClasses"
    )]
    PriorityClassNotAllowed(String),
    /// A resource quantity is malformed.
    #[error("resources: {resource}={value:?} is not a valid quantity")]
    Quantity {
        /// The resource name.
        resource: String,
        /// The value.
        value: String,
    },
    /// A resource the API server would refuse in this form.
    #[error("resources: {resource}: {reason}")]
    Resource {
        /// The resource name.
        resource: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A request is larger than its limit.
    #[error("resources: request {resource}={request} exceeds its limit {limit}")]
    RequestAboveLimit {
        /// The resource name.
        resource: String,
        /// The request.
        request: String,
        /// The limit.
        limit: String,
    },
    /// A toleration is malformed.
    #[error("toleration {index}: {reason}")]
    Toleration {
        /// Position in the list.
        index: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// The node selector asks for an operating system the runtime does not run on.
    #[error("nodeSelector: kubernetes.io/os={0:?}: the proxy runs on linux nodes only")]
    UnsupportedOs(String),
    /// The priority class name is malformed.
    #[error("priority class name {0:?} is not a DNS subdomain")]
    PriorityClass(String),
    /// The chain ended without a hostname.
    #[error("no policy set a hostname")]
    MissingHostname,
    /// The chain ended without a node selector.
    #[error("no policy set a node selector: the proxy would run on every node")]
    MissingNodeSelector,
}

/// Checks a plan returned by one policy for a Service in `namespace`. An
/// empty hostname or node selector is allowed here (a later policy may set
/// it); see [`validate_final_plan`].
pub fn validate_plan(plan: &Plan, rules: &PlanRules, namespace: &str) -> Result<(), InvalidPlan> {
    if !plan.hostname.is_empty() && !is_dns_label(&plan.hostname) {
        return Err(InvalidPlan::Hostname(clip(&plan.hostname)));
    }
    bounded("tags", plan.tags.len(), MAX_SMALL_LIST)?;
    for tag in &plan.tags {
        if !is_tailscale_tag(tag) {
            return Err(InvalidPlan::Tag(clip(tag)));
        }
        if let Some(allowed) = &rules.tag_allowlist
            && !allowed.contains(tag)
        {
            return Err(InvalidPlan::TagNotAllowed(clip(tag)));
        }
        if let Err(permitted) = rules.tag_permitted(namespace, tag) {
            return Err(InvalidPlan::TagNotAllowedInNamespace {
                tag: clip(tag),
                namespace: namespace.to_string(),
                permitted,
            });
        }
    }
    bounded("nodeSelector", plan.node_selector.len(), MAX_SMALL_LIST)?;
    labels("nodeSelector", &plan.node_selector)?;
    if let Some(os) = plan.node_selector.get("kubernetes.io/os")
        && os != "linux"
    {
        return Err(InvalidPlan::UnsupportedOs(clip(os)));
    }
    bounded("podLabels", plan.pod_labels.len(), MAX_LARGE_LIST)?;
    labels("podLabels", &plan.pod_labels)?;
    if let Some(reserved) = plan
        .pod_labels
        .keys()
        .find(|k| keys::RESERVED_POD_LABELS.contains(&k.as_str()))
    {
        return Err(InvalidPlan::ReservedLabel(clip(reserved)));
    }
    annotations(&plan.pod_annotations)?;
    if let Some(key) = plan
        .pod_annotations
        .keys()
        .find(|k| !rules.annotation_permitted(k))
    {
        return Err(InvalidPlan::AnnotationNotAllowed(clip(key)));
    }
    bounded("tolerations", plan.tolerations.len(), MAX_SMALL_LIST)?;
    for (index, toleration) in plan.tolerations.iter().enumerate() {
        check_toleration(toleration).map_err(|reason| InvalidPlan::Toleration { index, reason })?;
        if !rules.toleration_permitted(&toleration.key) {
            return Err(InvalidPlan::TolerationNotAllowed {
                index,
                key: clip(&toleration.key),
            });
        }
    }
    resources(&plan.resources.requests, &plan.resources.limits)?;
    if let Some(class) = &plan.priority_class_name {
        if !is_dns_subdomain(class) {
            return Err(InvalidPlan::PriorityClass(clip(class)));
        }
        if !rules.priority_class_permitted(class) {
            return Err(InvalidPlan::PriorityClassNotAllowed(clip(class)));
        }
    }
    environment(&plan.env, rules)
}

/// Checks the plan the whole chain produced: also complete.
pub fn validate_final_plan(
    plan: &Plan,
    rules: &PlanRules,
    namespace: &str,
) -> Result<(), InvalidPlan> {
    validate_plan(plan, rules, namespace)?;
    if plan.hostname.is_empty() {
        return Err(InvalidPlan::MissingHostname);
    }
    if plan.node_selector.is_empty() {
        return Err(InvalidPlan::MissingNodeSelector);
    }
    Ok(())
}

/// Longest value quoted in an error: a policy's output may be huge, and
/// errors end up in logs and Kubernetes Events.
const MAX_QUOTED: usize = 256;

/// `value`, cut to [`MAX_QUOTED`] bytes (on a character boundary) with `…`,
/// with control characters (newlines, escape sequences) as spaces: it is a
/// policy's or a Service owner's text, shown in logs, Events and conditions.
pub fn clip(value: &str) -> String {
    let mut cut = value.len().min(MAX_QUOTED);
    while !value.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut clipped: String = value[..cut]
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if cut < value.len() {
        clipped.push('…');
    }
    clipped
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

fn bounded(field: &'static str, count: usize, max: usize) -> Result<(), InvalidPlan> {
    if count > max {
        return Err(InvalidPlan::TooMany { field, count, max });
    }
    Ok(())
}

fn labels(field: &'static str, labels: &Labels) -> Result<(), InvalidPlan> {
    for (key, value) in labels {
        if !is_qualified_name(key) {
            return Err(InvalidPlan::Key {
                field,
                key: clip(key),
            });
        }
        if !is_label_value(value) {
            return Err(InvalidPlan::LabelValue {
                field,
                key: clip(key),
                value: clip(value),
            });
        }
    }
    Ok(())
}

fn annotations(annotations: &Labels) -> Result<(), InvalidPlan> {
    bounded("podAnnotations", annotations.len(), MAX_LARGE_LIST)?;
    if let Some(key) = annotations.keys().find(|k| !is_qualified_name(k)) {
        return Err(InvalidPlan::Key {
            field: "podAnnotations",
            key: clip(key),
        });
    }
    let bytes: usize = annotations.iter().map(|(k, v)| k.len() + v.len()).sum();
    if bytes > MAX_ANNOTATION_BYTES {
        return Err(InvalidPlan::TooLarge {
            field: "podAnnotations",
            bytes,
            max: MAX_ANNOTATION_BYTES,
        });
    }
    Ok(())
}

fn check_toleration(t: &Toleration) -> Result<(), &'static str> {
    if !t.key.is_empty() && !is_qualified_name(&t.key) {
        return Err("key is not a valid label key");
    }
    match t.operator {
        TolerationOperator::Exists if !t.value.is_empty() => {
            return Err("operator Exists takes no value");
        }
        TolerationOperator::Equal if t.key.is_empty() => {
            return Err("an empty key requires operator Exists");
        }
        _ => {}
    }
    if !is_label_value(&t.value) {
        return Err("value is not a valid label value");
    }
    if !matches!(
        t.effect.as_str(),
        "" | "NoSchedule" | "PreferNoSchedule" | "NoExecute"
    ) {
        return Err("effect must be NoSchedule, PreferNoSchedule, NoExecute or empty");
    }
    if t.toleration_seconds.is_some() && t.effect != "NoExecute" {
        return Err("tolerationSeconds requires effect NoExecute");
    }
    Ok(())
}

fn resources(requests: &Labels, limits: &Labels) -> Result<(), InvalidPlan> {
    bounded("resources.requests", requests.len(), MAX_SMALL_LIST)?;
    bounded("resources.limits", limits.len(), MAX_SMALL_LIST)?;
    for (resource, value) in requests.iter().chain(limits) {
        if !is_qualified_name(resource) {
            return Err(InvalidPlan::Key {
                field: "resources",
                key: clip(resource),
            });
        }
        if parse_quantity(value).is_none_or(|v| v < 0.0) {
            return Err(InvalidPlan::Quantity {
                resource: clip(resource),
                value: clip(value),
            });
        }
    }
    for resource in requests.keys().chain(limits.keys()) {
        check_resource_name(resource, requests.get(resource), limits.get(resource)).map_err(
            |reason| InvalidPlan::Resource {
                resource: clip(resource),
                reason,
            },
        )?;
    }
    for (resource, request) in requests {
        if let Some(limit) = limits.get(resource)
            && parse_quantity(request) > parse_quantity(limit)
        {
            return Err(InvalidPlan::RequestAboveLimit {
                resource: clip(resource),
                request: clip(request),
                limit: clip(limit),
            });
        }
    }
    Ok(())
}

/// Resources the API server knows without a prefix (besides `hugepages-*`).
const STANDARD_RESOURCES: &[&str] = &["cpu", "memory", "ephemeral-storage"];

/// The API server's rules for resource names: unprefixed names must be
/// standard; hugepages and extended (prefixed) resources cannot be
/// overcommitted, so a request needs an equal limit, and extended resources
/// come in whole units.
fn check_resource_name(
    name: &str,
    request: Option<&String>,
    limit: Option<&String>,
) -> Result<(), &'static str> {
    let hugepages = name.starts_with("hugepages-");
    let extended = name.contains('/') && !name.starts_with("kubernetes.io/");
    if !(STANDARD_RESOURCES.contains(&name) || hugepages || extended) {
        return Err(
            "not a standard resource (cpu, memory, ephemeral-storage, hugepages-*) nor prefixed",
        );
    }
    if !(hugepages || extended) {
        return Ok(());
    }
    if request.is_some() && request != limit {
        return Err("cannot be overcommitted: a request needs an equal limit");
    }
    let whole = |q: &String| parse_quantity(q).is_some_and(|v| v.fract() == 0.0);
    if extended && !request.into_iter().chain(limit).all(whole) {
        return Err("extended resources come in whole units");
    }
    Ok(())
}

fn environment(vars: &Labels, rules: &PlanRules) -> Result<(), InvalidPlan> {
    bounded("env", vars.len(), MAX_LARGE_LIST)?;
    for (name, value) in vars {
        if !is_env_name(name) {
            return Err(InvalidPlan::EnvName(clip(name)));
        }
        if reserved_env_prefix(name).is_some() {
            return Err(InvalidPlan::ReservedEnv(clip(name)));
        }
        if !rules.env_permitted(name) {
            return Err(InvalidPlan::EnvNotAllowed(clip(name)));
        }
        if value.len() > MAX_ENV_VALUE {
            return Err(InvalidPlan::TooLarge {
                field: "env",
                bytes: value.len(),
                max: MAX_ENV_VALUE,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
