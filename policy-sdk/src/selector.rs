//! Label selectors, used by policies to ask for nodes.
//!
//! The host filters nodes with [`Selector::matches`] too, so a policy's
//! native tests see the same nodes the controller would hand it.

use crate::model::Labels;
use crate::prelude::*;

/// A conjunction of requirements on labels; empty selects everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    /// Every requirement must hold.
    pub requirements: Vec<Requirement>,
}

/// One requirement on a label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// The label key.
    pub key: String,
    /// How the label is matched.
    pub operator: Operator,
    /// Values for [`Operator::In`] and [`Operator::NotIn`].
    pub values: Vec<String>,
}

/// How a [`Requirement`] matches a label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// The value is one of the values.
    In,
    /// The label is absent or its value is none of the values.
    NotIn,
    /// The label is present.
    Exists,
    /// The label is absent.
    DoesNotExist,
}

impl Selector {
    /// Selects every node.
    pub fn everything() -> Self {
        Self::default()
    }

    /// Selects nodes carrying `key=value`.
    pub fn label_equals(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self::everything().and(Requirement::equals(key, value))
    }

    /// Selects nodes carrying every one of `labels`, as a node selector
    /// does: `Selector::matching_labels(&plan.node_selector)` finds the nodes
    /// a plan would place proxies on.
    pub fn matching_labels(labels: &Labels) -> Self {
        labels
            .iter()
            .fold(Self::everything(), |selector, (key, value)| {
                selector.and(Requirement::equals(key.clone(), value.clone()))
            })
    }

    /// Adds a requirement.
    pub fn and(mut self, requirement: Requirement) -> Self {
        self.requirements.push(requirement);
        self
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }
}

impl Requirement {
    /// The label `key` equals `value`.
    pub fn equals(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self::one_of(key, [value.into()])
    }

    /// The label `key` has one of `values`.
    pub fn one_of(key: impl Into<String>, values: impl IntoIterator<Item = String>) -> Self {
        Self {
            key: key.into(),
            operator: Operator::In,
            values: values.into_iter().collect(),
        }
    }

    /// The label `key` is absent or has none of `values`.
    pub fn none_of(key: impl Into<String>, values: impl IntoIterator<Item = String>) -> Self {
        Self {
            key: key.into(),
            operator: Operator::NotIn,
            values: values.into_iter().collect(),
        }
    }

    /// The label `key` is present.
    pub fn exists(key: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            operator: Operator::Exists,
            values: Vec::new(),
        }
    }

    /// The label `key` is absent.
    pub fn does_not_exist(key: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            operator: Operator::DoesNotExist,
            values: Vec::new(),
        }
    }

    /// Whether `labels` satisfy this requirement.
    pub fn matches(&self, labels: &Labels) -> bool {
        let value = labels.get(&self.key);
        match self.operator {
            Operator::In => value.is_some_and(|v| self.values.contains(v)),
            Operator::NotIn => value.is_none_or(|v| !self.values.contains(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn requirements_follow_kubernetes_set_based_semantics() {
        let l = labels(&[("zone", "a"), ("gpu", "")]);
        assert!(Requirement::equals("zone", "a").matches(&l));
        assert!(!Requirement::equals("zone", "b").matches(&l));
        assert!(Requirement::none_of("zone", ["b".into()]).matches(&l));
        assert!(Requirement::none_of("missing", ["b".into()]).matches(&l));
        assert!(!Requirement::none_of("zone", ["a".into()]).matches(&l));
        assert!(Requirement::exists("gpu").matches(&l));
        assert!(Requirement::does_not_exist("missing").matches(&l));
        assert!(!Requirement::does_not_exist("gpu").matches(&l));
    }

    #[test]
    fn empty_selector_selects_everything_and_requirements_are_conjunctive() {
        let l = labels(&[("zone", "a")]);
        assert!(Selector::everything().matches(&l));
        let both = Selector::label_equals("zone", "a").and(Requirement::exists("gpu"));
        assert!(!both.matches(&l));
    }

    #[test]
    fn matching_labels_selects_what_a_node_selector_selects() {
        let selector = Selector::matching_labels(&labels(&[("zone", "a"), ("pool", "edge")]));
        assert!(selector.matches(&labels(&[("zone", "a"), ("pool", "edge"), ("x", "")])));
        assert!(!selector.matches(&labels(&[("zone", "a")])));
        assert!(Selector::matching_labels(&Labels::new()).matches(&labels(&[])));
    }
}
