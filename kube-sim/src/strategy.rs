//! What the real server's registry strategies decide per kind, beyond the
//! generic store semantics (`store.rs`): a Service's ClusterIP allocation
//! and immutable class, a Secret's `stringData`, what a `/status` write may
//! change, and the length and format limits of an Event's note and of a
//! Service's status conditions (`pkg/apis/events/validation`,
//! `metav1validation.ValidateConditions`), which a client must respect.

use serde_json::{Value, json};

use crate::error::ApiError;
use crate::registry::ResourceType;

/// Longest `note` of an events.k8s.io/v1 Event (`NoteLengthLimit`).
pub(crate) const EVENT_NOTE_LIMIT: usize = 1024;
/// Longest condition `message` (`maxMessageLen` of metav1 validation).
pub(crate) const CONDITION_MESSAGE_LIMIT: usize = 32 * 1024;
/// Longest condition `reason`.
const CONDITION_REASON_LIMIT: usize = 1024;

/// The per-kind validation of a write of `object`, as the real server's
/// strategies run it (create and update alike for the checks here).
pub(crate) fn validate(rt: &ResourceType, object: &Value) -> Result<(), ApiError> {
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    // As the real server words it: `Event.events.k8s.io "x" is invalid: …`.
    let kind = match rt.group {
        "" => rt.kind.to_string(),
        group => format!("{}.{group}", rt.kind),
    };
    let invalid = |field: String, detail: String| {
        ApiError::invalid(format!("{kind} \"{name}\" is invalid: {field}: {detail}"))
    };
    match (rt.group, rt.plural) {
        ("events.k8s.io", "events") => {
            let note = object["note"].as_str().unwrap_or_default();
            if note.len() > EVENT_NOTE_LIMIT {
                return Err(invalid(
                    "note".into(),
                    format!("Too long: may not be more than {EVENT_NOTE_LIMIT} bytes"),
                ));
            }
        }
        ("", "services") => {
            let conditions = object["status"]["conditions"].as_array();
            for (i, condition) in conditions.into_iter().flatten().enumerate() {
                check_condition(condition).map_err(|(field, detail)| {
                    invalid(format!("status.conditions[{i}].{field}"), detail)
                })?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// One metav1.Condition, as `ValidateCondition` checks it.
fn check_condition(condition: &Value) -> Result<(), (&'static str, String)> {
    let status = condition["status"].as_str().unwrap_or_default();
    if !matches!(status, "True" | "False" | "Unknown") {
        return Err((
            "status",
            format!(
                "Unsupported value: {status:?}: supported values: \"False\", \"True\", \"Unknown\""
            ),
        ));
    }
    if condition["lastTransitionTime"]
        .as_str()
        .is_none_or(str::is_empty)
    {
        return Err(("lastTransitionTime", "Required value: must be set".into()));
    }
    let reason = condition["reason"].as_str().unwrap_or_default();
    let reason_ok = reason.len() <= CONDITION_REASON_LIMIT
        && reason.starts_with(|c: char| c.is_ascii_alphabetic())
        && reason
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ',' | ':'))
        && !reason.ends_with([',', ':']);
    if !reason_ok {
        return Err((
            "reason",
            format!(
                "Invalid value: {reason:?}: a condition reason must start with alphabetic character, optionally followed by a string of alphanumeric characters or '_,:', and must end with an alphanumeric character or '_'"
            ),
        ));
    }
    let message = condition["message"].as_str().unwrap_or_default();
    if message.len() > CONDITION_MESSAGE_LIMIT {
        return Err((
            "message",
            format!("Too long: may not be more than {CONDITION_MESSAGE_LIMIT} bytes"),
        ));
    }
    Ok(())
}

/// What a write through `/status` may not change, per type, as the real
/// status strategies' `PrepareForUpdate` decide: the spec always
/// (`pkg/registry/*/strategy.go`); a Deployment's labels too
/// (`deploymentStatusStrategy`); a Pod's owner references
/// (`podStatusStrategy`). Other metadata written through `/status` (a
/// Service's labels, say) is kept, as there.
pub(crate) fn reset_for_status_write(rt: &ResourceType, current: &Value, next: &mut Value) {
    let mut keep = |pointer: &[&str]| {
        let (last, parents) = pointer.split_last().expect("a non-empty path");
        let mut source = current;
        for p in parents {
            source = &source[*p];
        }
        let mut target = &mut *next;
        for p in parents {
            target = &mut target[*p];
        }
        match (source.get(*last), target.as_object_mut()) {
            (Some(value), _) => target[*last] = value.clone(),
            (None, Some(object)) => {
                object.remove(*last);
            }
            (None, None) => {}
        }
    };
    keep(&["spec"]);
    match (rt.group, rt.plural) {
        ("apps", "deployments") => keep(&["metadata", "labels"]),
        ("", "pods") => keep(&["metadata", "ownerReferences"]),
        _ => {}
    }
}

/// A Secret's write-only `stringData` is folded into `data`, as the API
/// server does (on create; later writes carry `data`).
pub(crate) fn fold_string_data(rt: &ResourceType, object: &mut Value) {
    if rt.plural != "secrets" || !rt.group.is_empty() {
        return;
    }
    let Some(Value::Object(strings)) = object.as_object_mut().and_then(|o| o.remove("stringData"))
    else {
        return;
    };
    for (key, value) in strings {
        if let Some(text) = value.as_str() {
            let bytes = k8s_openapi::ByteString(text.as_bytes().to_vec());
            object["data"][key] = serde_json::to_value(bytes).expect("bytes encode");
        }
    }
}

/// Allocates ClusterIPs as the real server does for the families the
/// Service's `ipFamilyPolicy` asks for: IPv4 from 10.96.0.0/16 and, on a
/// dual-stack server, IPv6 from fd00:10:96::/112. An address a Service
/// asks for must be free (`in_use`: every Service's `clusterIPs`); dynamic
/// ones come from above the range's first 256 addresses first, the band
/// KEP-3070 keeps for addresses asked for (so a fixed address in it does
/// not collide with an allocated one).
pub(crate) fn allocate_cluster_ips(
    next_ip: &mut u32,
    service: &mut Value,
    dual_stack: bool,
    in_use: &std::collections::BTreeSet<String>,
) -> Result<(), ApiError> {
    let spec = &mut service["spec"];
    if spec["type"].as_str() == Some("ExternalName") {
        return Ok(());
    }
    if spec["type"].is_null() {
        spec["type"] = json!("ClusterIP");
    }
    if let Some(ip) = spec["clusterIP"].as_str().map(str::to_string) {
        if spec["clusterIPs"].is_null() {
            spec["clusterIPs"] = json!([ip]);
        }
        let asked = spec["clusterIPs"].as_array().cloned().unwrap_or_default();
        for ip in asked.iter().filter_map(Value::as_str) {
            if ip != "None" && in_use.contains(ip) {
                return Err(ApiError::invalid(format!(
                    "spec.clusterIPs: Invalid value: []string{{\"{ip}\"}}: failed to allocate IP {ip}: provided IP is already allocated"
                )));
            }
        }
        return Ok(());
    }
    let policy = spec["ipFamilyPolicy"]
        .as_str()
        .unwrap_or("SingleStack")
        .to_string();
    let requested: Vec<String> = spec["ipFamilies"]
        .as_array()
        .map(|f| {
            f.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let families: Vec<String> = match policy.as_str() {
        "RequireDualStack" if !dual_stack => {
            return Err(ApiError::invalid(
                "spec.ipFamilyPolicy: Invalid value: \"RequireDualStack\": this cluster is not configured for dual-stack services",
            ));
        }
        "RequireDualStack" | "PreferDualStack" if dual_stack => {
            let first = requested.first().cloned().unwrap_or_else(|| "IPv4".into());
            let second = if first == "IPv6" { "IPv4" } else { "IPv6" };
            vec![first, second.to_string()]
        }
        _ => vec![requested.first().cloned().unwrap_or_else(|| "IPv4".into())],
    };
    if families.iter().any(|f| f == "IPv6") && !dual_stack {
        return Err(ApiError::invalid(
            "spec.ipFamilies: Invalid value: \"IPv6\": not configured on this cluster",
        ));
    }
    let address = |n: u32, family: &str| match family {
        "IPv6" => format!("fd00:10:96::{n:x}"),
        _ => format!("10.96.{}.{}", (n >> 8) & 0xff, n & 0xff),
    };
    let mut n = *next_ip;
    while families.iter().any(|f| in_use.contains(&address(n, f))) {
        n += 1;
    }
    *next_ip = n + 1;
    let ips: Vec<String> = families.iter().map(|f| address(n, f)).collect();
    spec["clusterIP"] = json!(ips[0]);
    spec["clusterIPs"] = json!(ips);
    spec["ipFamilies"] = json!(families);
    spec["ipFamilyPolicy"] = json!(if families.len() == 2 && policy != "SingleStack" {
        policy
    } else {
        "SingleStack".to_string()
    });
    Ok(())
}

/// The immutable-field checks of the real server that this project relies on.
pub(crate) fn check_service_update(
    rt: &ResourceType,
    current: &Value,
    next: &Value,
) -> Result<(), ApiError> {
    if rt.plural != "services" || !rt.group.is_empty() {
        return Ok(());
    }
    let (old, new) = (&current["spec"], &next["spec"]);
    let lb = |s: &Value| s["type"].as_str() == Some("LoadBalancer");
    if lb(old) && lb(new) && old["loadBalancerClass"] != new["loadBalancerClass"] {
        return Err(ApiError::invalid(format!(
            "Service \"{}\" is invalid: spec.loadBalancerClass: Invalid value: field is immutable",
            current["metadata"]["name"].as_str().unwrap_or_default()
        )));
    }
    Ok(())
}
