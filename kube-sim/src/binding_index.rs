//! Which RoleBindings and ClusterRoleBindings name which subjects, kept up
//! to date by the store on every change of a binding, so that authorizing
//! a request looks at the user's own bindings only. (A controller's
//! namespace holds a RoleBinding per proxy: scanning them all on every
//! request made authorization the slowest part of a request.)
//!
//! The real authorizer reads bindings from an informer cache and visits all
//! of them (`VisitRulesFor`); the decisions are the same, only cheaper.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use crate::auth::UserInfo;

/// A subject as a binding in `namespace` names it (a ServiceAccount
/// without a namespace is in the binding's).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Subject {
    User(String),
    Group(String),
    ServiceAccount(String, String),
}

/// `(binding namespace, binding name)`; `""` for ClusterRoleBindings.
type BindingKey = (String, String);

/// The subjects of every binding, and the bindings of every subject.
#[derive(Debug, Default)]
pub(crate) struct BindingIndex {
    by_subject: HashMap<(String, Subject), BTreeSet<BindingKey>>,
    of_binding: HashMap<BindingKey, Vec<(String, Subject)>>,
}

fn subjects_of(binding: &Value, namespace: &str) -> Vec<(String, Subject)> {
    let mut subjects = Vec::new();
    for subject in binding["subjects"].as_array().into_iter().flatten() {
        let name = subject["name"].as_str().unwrap_or_default().to_string();
        let parsed = match subject["kind"].as_str() {
            Some("User") => Subject::User(name),
            Some("Group") => Subject::Group(name),
            Some("ServiceAccount") => {
                let sa_namespace = subject["namespace"]
                    .as_str()
                    .filter(|n| !n.is_empty())
                    .unwrap_or(namespace);
                if sa_namespace.is_empty() {
                    continue;
                }
                Subject::ServiceAccount(sa_namespace.to_string(), name)
            }
            _ => continue,
        };
        subjects.push((namespace.to_string(), parsed));
    }
    subjects
}

impl BindingIndex {
    /// Records that binding `namespace/name` is now `binding` (`None`: gone).
    pub fn update(&mut self, namespace: &str, name: &str, binding: Option<&Value>) {
        let key = (namespace.to_string(), name.to_string());
        for subject in self.of_binding.remove(&key).into_iter().flatten() {
            if let Some(set) = self.by_subject.get_mut(&subject) {
                set.remove(&key);
                if set.is_empty() {
                    self.by_subject.remove(&subject);
                }
            }
        }
        let Some(binding) = binding else { return };
        let subjects = subjects_of(binding, namespace);
        for subject in &subjects {
            self.by_subject
                .entry(subject.clone())
                .or_default()
                .insert(key.clone());
        }
        self.of_binding.insert(key, subjects);
    }

    /// The names of the bindings in `namespace` (`""`: cluster bindings)
    /// that name `user`, by name, each once.
    pub fn bindings_of(&self, user: &UserInfo, namespace: &str) -> BTreeSet<String> {
        let mut subjects = vec![Subject::User(user.username.clone())];
        subjects.extend(user.groups.iter().cloned().map(Subject::Group));
        if let Some((sa_namespace, sa_name)) = user
            .username
            .strip_prefix("system:serviceaccount:")
            .and_then(crate::auth::tokens::split_service_account)
        {
            subjects.push(Subject::ServiceAccount(
                sa_namespace.to_string(),
                sa_name.to_string(),
            ));
        }
        subjects
            .into_iter()
            .filter_map(|s| self.by_subject.get(&(namespace.to_string(), s)))
            .flatten()
            .map(|(_, name)| name.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn bindings_are_found_by_user_group_and_service_account_and_forgotten() {
        let mut index = BindingIndex::default();
        let binding = json!({"subjects": [
            {"kind": "ServiceAccount", "name": "proxy"},
            {"kind": "Group", "name": "devs"}]});
        index.update("ns", "b", Some(&binding));
        let sa = UserInfo {
            username: "system:serviceaccount:ns:proxy".into(),
            uid: String::new(),
            groups: vec![],
            extra: Default::default(),
        };
        assert_eq!(index.bindings_of(&sa, "ns").len(), 1);
        assert!(index.bindings_of(&sa, "other").is_empty());
        let elsewhere = UserInfo {
            username: "system:serviceaccount:other:proxy".into(),
            ..sa.clone()
        };
        assert!(
            index.bindings_of(&elsewhere, "ns").is_empty(),
            "the binding's namespace is the default"
        );
        let dev = UserInfo {
            username: "jane".into(),
            groups: vec!["devs".into()],
            ..sa.clone()
        };
        assert_eq!(index.bindings_of(&dev, "ns").len(), 1);
        index.update(
            "ns",
            "b",
            Some(&json!({"subjects": [{"kind": "User", "name": "jane"}]})),
        );
        assert!(index.bindings_of(&sa, "ns").is_empty());
        assert_eq!(index.bindings_of(&dev, "ns").len(), 1);
        index.update("ns", "b", None);
        assert!(index.bindings_of(&dev, "ns").is_empty());
    }
}
