//! Field ownership for server-side apply, as the real server keeps it in
//! `managedFields` but simpler: every leaf field (a scalar, or a list, which
//! is treated as one atomic value) has a set of managers.
//!
//! - An apply that sets a field another manager owns to a different value
//!   is a 409 Conflict naming the field and the manager, unless forced; a
//!   forced or uncontested apply makes the applier the field's only owner,
//!   and applying the same value makes it a co-owner.
//! - An update or a non-apply patch makes its manager the only owner of
//!   every field it changed.
//! - A field an applier stops sending loses that owner, and is removed from
//!   the object once nobody owns it.
//!
//! Leader election built on apply (e.g. `kube-lease-manager`) depends on the
//! conflict: two candidates applying `holderIdentity` at once must not both win.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// Managers of each leaf field, by JSON pointer.
pub(crate) type Owners = BTreeMap<String, BTreeSet<String>>;

/// Metadata the server owns; never part of a manager's fields.
const SERVER_FIELDS: &[&str] = &[
    "/apiVersion",
    "/kind",
    "/metadata/name",
    "/metadata/namespace",
    "/metadata/uid",
    "/metadata/resourceVersion",
    "/metadata/generation",
    "/metadata/creationTimestamp",
    "/metadata/deletionTimestamp",
    "/metadata/managedFields",
];

/// Every leaf of `value` with its JSON pointer, server-owned fields left out.
pub(crate) fn leaves(value: &Value) -> Vec<(String, &Value)> {
    let mut out = Vec::new();
    collect(value, String::new(), &mut out);
    out
}

fn collect<'a>(value: &'a Value, path: String, out: &mut Vec<(String, &'a Value)>) {
    if SERVER_FIELDS.contains(&path.as_str()) {
        return;
    }
    match value.as_object() {
        Some(map) if !map.is_empty() => {
            for (key, child) in map {
                let escaped = key.replace('~', "~0").replace('/', "~1");
                collect(child, format!("{path}/{escaped}"), out);
            }
        }
        _ if path.is_empty() => {}
        _ => out.push((path, value)),
    }
}

/// A field an apply would take from another manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Conflict {
    pub field: String,
    pub manager: String,
}

/// The fields of `applied` that `manager` would change in `current` while
/// another manager owns them.
pub(crate) fn conflicts(
    owners: &Owners,
    current: &Value,
    applied: &Value,
    manager: &str,
) -> Vec<Conflict> {
    let mut found = Vec::new();
    for (field, value) in leaves(applied) {
        if current.pointer(&field) == Some(value) {
            continue;
        }
        for other in owners.get(&field).into_iter().flatten() {
            if other != manager {
                found.push(Conflict {
                    field: field.clone(),
                    manager: other.clone(),
                });
            }
        }
    }
    found
}

/// Records an apply by `manager` of `applied` over `before`: it owns every
/// field it sent (alone where the value changed) and no longer owns the
/// fields it sent last time but not now. Returns the fields nobody owns any
/// more, which the caller removes from the object.
pub(crate) fn record_apply(
    owners: &mut Owners,
    before: &Value,
    previous: Option<&Value>,
    applied: &Value,
    manager: &str,
) -> Vec<String> {
    let sent: BTreeMap<String, &Value> = leaves(applied).into_iter().collect();
    let mut orphaned = Vec::new();
    if let Some(previous) = previous {
        for (field, _) in leaves(previous) {
            if sent.contains_key(&field) {
                continue;
            }
            if let Some(managers) = owners.get_mut(&field) {
                managers.remove(manager);
                if managers.is_empty() {
                    owners.remove(&field);
                    orphaned.push(field);
                }
            }
        }
    }
    for (field, value) in sent {
        let managers = owners.entry(field.clone()).or_default();
        if before.pointer(&field) != Some(value) {
            managers.clear();
        }
        managers.insert(manager.to_string());
    }
    orphaned
}

/// Records an update or a non-apply patch by `manager` that turned `before`
/// into `after`: it alone owns what it changed; removed fields lose their
/// owners.
pub(crate) fn record_update(owners: &mut Owners, before: &Value, after: &Value, manager: &str) {
    let now: BTreeMap<String, &Value> = leaves(after).into_iter().collect();
    for (field, value) in &now {
        if before.pointer(field) != Some(*value) {
            owners.insert(field.clone(), BTreeSet::from([manager.to_string()]));
        }
    }
    owners.retain(|field, _| now.contains_key(field));
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn applying_another_managers_field_with_a_new_value_conflicts() {
        let mut owners = Owners::new();
        let lease = json!({"spec": {"holderIdentity": "a", "renewTime": "t1"}});
        record_apply(&mut owners, &json!({}), None, &lease, "a");
        let takeover = json!({"spec": {"holderIdentity": "b"}});
        assert_eq!(
            conflicts(&owners, &lease, &takeover, "b"),
            vec![Conflict {
                field: "/spec/holderIdentity".into(),
                manager: "a".into()
            }]
        );
        // The same value is no conflict, and the same manager never is.
        assert!(conflicts(&owners, &lease, &lease, "b").is_empty());
        assert!(conflicts(&owners, &lease, &takeover, "a").is_empty());
    }

    #[test]
    fn a_field_dropped_by_its_only_owner_is_orphaned_but_a_shared_one_stays() {
        let mut owners = Owners::new();
        let both = json!({"data": {"shared": "1", "mine": "2"}});
        record_apply(&mut owners, &json!({}), None, &both, "a");
        let shared = json!({"data": {"shared": "1"}});
        record_apply(&mut owners, &both, None, &shared, "b");
        let orphaned = record_apply(&mut owners, &both, Some(&both), &json!({}), "a");
        assert_eq!(orphaned, vec!["/data/mine".to_string()]);
        assert_eq!(owners["/data/shared"], BTreeSet::from(["b".to_string()]));
    }

    #[test]
    fn an_update_takes_the_fields_it_changes_and_drops_removed_ones() {
        let mut owners = Owners::new();
        let before = json!({"spec": {"holderIdentity": "a", "renewTime": "t1"}});
        record_apply(&mut owners, &json!({}), None, &before, "a");
        let after = json!({"spec": {"renewTime": "t2"}});
        record_update(&mut owners, &before, &after, "b");
        assert_eq!(owners.len(), 1);
        assert_eq!(owners["/spec/renewTime"], BTreeSet::from(["b".to_string()]));
    }

    #[test]
    fn lists_are_one_field_and_server_metadata_is_nobodys() {
        let object = json!({"apiVersion": "v1", "metadata": {"name": "x", "resourceVersion": "3",
            "labels": {"a/b": "1"}}, "spec": {"ports": [{"port": 80}]}});
        let fields: Vec<String> = leaves(&object).into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, vec!["/metadata/labels/a~1b", "/spec/ports"]);
    }
}
