//! RBAC policy rules as plain JSON values: whether a rule allows a request
//! (`pkg/apis/rbac/v1/evaluation_helpers.go`: `VerbMatches`,
//! `APIGroupMatches`, `ResourceMatches`, `ResourceNameMatches`,
//! `NonResourceURLMatches`), and whether a set of rules covers another
//! (`pkg/registry/rbac/validation/policy_comparator.go`: `Covers`, used by
//! the escalation checks). Rules are read straight from the stored
//! Role/ClusterRole JSON, so an authorization decision copies nothing.

use serde_json::Value;

use crate::auth::Attributes;

fn strings(value: &Value) -> impl Iterator<Item = &str> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

fn has(value: &Value, wanted: &str) -> bool {
    strings(value).any(|s| s == wanted)
}

fn has_or_star(value: &Value, wanted: &str) -> bool {
    strings(value).any(|s| s == "*" || s == wanted)
}

fn is_empty(value: &Value) -> bool {
    value.as_array().is_none_or(Vec::is_empty)
}

/// `ResourceMatches`: `*`, the exact `resource[/subresource]`, or
/// `*/<subresource>` for a subresource request. (`pods/*` is no wildcard.)
fn resource_matches(resources: &Value, combined: &str, subresource: &str) -> bool {
    strings(resources).any(|r| {
        r == "*"
            || r == combined
            || !subresource.is_empty()
                && r.len() == subresource.len() + 2
                && r.strip_prefix("*/") == Some(subresource)
    })
}

/// `NonResourceURLMatches`: `*`, the exact path, or a prefix ending in `*`.
fn url_matches(urls: &Value, path: &str) -> bool {
    strings(urls).any(|u| {
        u == "*" || u == path || u.ends_with('*') && path.starts_with(u.trim_end_matches('*'))
    })
}

/// Whether `rule` allows the request `a`.
pub(crate) fn rule_allows(rule: &Value, a: &Attributes) -> bool {
    if !has_or_star(&rule["verbs"], &a.verb) {
        return false;
    }
    if !a.resource_request {
        return url_matches(&rule["nonResourceURLs"], &a.path);
    }
    has_or_star(&rule["apiGroups"], &a.api_group)
        && resource_matches(&rule["resources"], &a.combined_resource(), &a.subresource)
        && (is_empty(&rule["resourceNames"]) || has(&rule["resourceNames"], &a.name))
}

/// One verb on one resource (or URL) of one group, optionally one name: a
/// rule broken down as `BreakdownRule` does.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Atom {
    pub group: Option<String>,
    pub resource: Option<String>,
    pub name: Option<String>,
    pub url: Option<String>,
    pub verb: String,
}

impl Atom {
    /// As `PolicyRule.CompactString` prints it, for escalation errors.
    pub fn compact(&self) -> String {
        let mut parts = Vec::new();
        if let Some(group) = &self.group {
            parts.push(format!("APIGroups:[{group:?}]"));
        }
        if let Some(resource) = &self.resource {
            parts.push(format!("Resources:[{resource:?}]"));
        }
        if let Some(url) = &self.url {
            parts.push(format!("NonResourceURLs:[{url:?}]"));
        }
        if let Some(name) = &self.name {
            parts.push(format!("ResourceNames:[{name:?}]"));
        }
        parts.push(format!("Verbs:[{:?}]", self.verb));
        format!("{{{}}}", parts.join(", "))
    }
}

/// `BreakdownRule`: one atom per group × resource × name × verb, and per
/// URL × verb.
pub(crate) fn breakdown(rule: &Value) -> Vec<Atom> {
    let mut atoms = Vec::new();
    let names: Vec<Option<String>> = if is_empty(&rule["resourceNames"]) {
        vec![None]
    } else {
        strings(&rule["resourceNames"])
            .map(|n| Some(n.to_string()))
            .collect()
    };
    for verb in strings(&rule["verbs"]) {
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                for name in &names {
                    atoms.push(Atom {
                        group: Some(group.to_string()),
                        resource: Some(resource.to_string()),
                        name: name.clone(),
                        url: None,
                        verb: verb.to_string(),
                    });
                }
            }
        }
        for url in strings(&rule["nonResourceURLs"]) {
            atoms.push(Atom {
                group: None,
                resource: None,
                name: None,
                url: Some(url.to_string()),
                verb: verb.to_string(),
            });
        }
    }
    atoms
}

/// `ruleCovers` for one atom: the owner's verbs, groups, resources
/// (`*`, exact, or `*/<sub>` for a subresource), names (none means all) and
/// URLs (`*`, exact, or a `*`-ended prefix) include the atom's.
pub(crate) fn covers(owner: &Value, atom: &Atom) -> bool {
    if !has_or_star(&owner["verbs"], &atom.verb) {
        return false;
    }
    if let Some(url) = &atom.url {
        return url_matches(&owner["nonResourceURLs"], url);
    }
    let (Some(group), Some(resource)) = (&atom.group, &atom.resource) else {
        return false;
    };
    let resource_covered = has(&owner["resources"], "*")
        || has(&owner["resources"], resource)
        || resource
            .split_once('/')
            .is_some_and(|(_, sub)| has(&owner["resources"], &format!("*/{sub}")));
    let name_covered = is_empty(&owner["resourceNames"])
        || atom
            .name
            .as_deref()
            .is_some_and(|n| has(&owner["resourceNames"], n));
    has_or_star(&owner["apiGroups"], group) && resource_covered && name_covered
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::auth::UserInfo;

    fn request(verb: &str, group: &str, resource: &str, ns: &str, name: &str) -> Attributes {
        Attributes::resource(UserInfo::anonymous(), verb, group, resource, ns, name)
    }

    #[test]
    fn resource_names_limit_a_rule_to_named_requests() {
        let rule = json!({"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["state"],
                          "verbs": ["get", "list", "watch"]});
        assert!(rule_allows(
            &rule,
            &request("get", "", "secrets", "ns", "state")
        ));
        assert!(rule_allows(
            &rule,
            &request("watch", "", "secrets", "ns", "state")
        ));
        assert!(!rule_allows(
            &rule,
            &request("get", "", "secrets", "ns", "auth")
        ));
        assert!(!rule_allows(
            &rule,
            &request("list", "", "secrets", "ns", "")
        ));
    }

    #[test]
    fn subresources_match_exactly_or_through_star_slash() {
        let status =
            json!({"apiGroups": [""], "resources": ["services/status"], "verbs": ["patch"]});
        assert!(rule_allows(
            &status,
            &request("patch", "", "services/status", "", "a")
        ));
        assert!(!rule_allows(
            &status,
            &request("patch", "", "services", "", "a")
        ));
        let any_status = json!({"apiGroups": ["*"], "resources": ["*/status"], "verbs": ["*"]});
        assert!(rule_allows(
            &any_status,
            &request("update", "apps", "daemonsets/status", "", "")
        ));
        assert!(!rule_allows(
            &any_status,
            &request("update", "apps", "daemonsets", "", "")
        ));
        let slash_star = json!({"apiGroups": [""], "resources": ["pods/*"], "verbs": ["get"]});
        assert!(!rule_allows(
            &slash_star,
            &request("get", "", "pods/log", "", "")
        ));
    }

    #[test]
    fn non_resource_urls_match_exactly_or_by_star_prefix() {
        let rule = json!({"nonResourceURLs": ["/apis/*", "/version"], "verbs": ["get"]});
        let get = |path: &str| Attributes::non_resource(UserInfo::anonymous(), "get", path);
        assert!(rule_allows(&rule, &get("/apis/apps/v1")));
        assert!(rule_allows(&rule, &get("/version")));
        assert!(!rule_allows(&rule, &get("/version/")));
        assert!(!rule_allows(&rule, &get("/api")));
    }

    #[test]
    fn coverage_of_names_and_subresources() {
        let owner =
            json!({"apiGroups": [""], "resources": ["secrets", "*/status"], "verbs": ["get"]});
        let named = json!({"apiGroups": [""], "resources": ["secrets", "pods/status"],
                           "resourceNames": ["a"], "verbs": ["get"]});
        assert!(breakdown(&named).iter().all(|atom| covers(&owner, atom)));
        let named_owner = json!({"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["a"], "verbs": ["get"]});
        let all = json!({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]});
        assert!(
            !breakdown(&all)
                .iter()
                .all(|atom| covers(&named_owner, atom))
        );
        let atoms =
            breakdown(&json!({"apiGroups": [""], "resources": ["secrets"], "verbs": ["delete"]}));
        assert_eq!(
            atoms[0].compact(),
            r#"{APIGroups:[""], Resources:["secrets"], Verbs:["delete"]}"#
        );
    }
}
