//! Tailscale hostnames: DNS labels derived from Service names.

use policy_sdk::prelude::*;

/// Longest DNS label.
const MAX_LABEL: usize = 63;

/// `<namespace>-<name>` made a DNS label: lower-cased, other characters
/// turned into `-`, runs of `-` folded, cut to 63 characters.
pub fn hostname_from_service_name(namespace: &str, name: &str) -> String {
    let mut label = String::with_capacity(namespace.len() + name.len() + 1);
    for c in format!("{namespace}-{name}").chars() {
        let c = if c.is_ascii_alphanumeric() {
            c.to_ascii_lowercase()
        } else {
            '-'
        };
        if !(c == '-' && (label.is_empty() || label.ends_with('-'))) {
            label.push(c);
        }
    }
    label.truncate(MAX_LABEL);
    let label = label.trim_end_matches('-').to_string();
    if label.is_empty() {
        "service".to_string()
    } else {
        label
    }
}
