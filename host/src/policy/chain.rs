//! The policy chain: runs every policy in order over one Service, each
//! receiving the plan of the one before, validates each result, and records
//! a trace of what each policy changed and how long it took.

use std::sync::Arc;
use std::time::{Duration, Instant};

use policy_sdk::{Plan, Service};

use super::bindings::Decision;
use super::engine::{LoadedPolicy, PolicyEngine};
use super::error::{PolicyError, PolicyErrorKind};
use super::nodes::NodeSource;
use super::state::PolicyLog;
use crate::validate::{InvalidPlan, PlanRules, clip, validate_final_plan, validate_plan};

/// An ordered, loaded set of policies.
#[derive(Clone)]
pub struct PolicyChain {
    engine: Arc<PolicyEngine>,
    policies: Vec<LoadedPolicy>,
    rules: PlanRules,
}

/// What one policy did during a chain evaluation.
#[derive(Debug, Clone)]
pub struct TraceStep {
    /// The policy's name.
    pub policy: String,
    /// Wall time of the call, instantiation included.
    pub elapsed: Duration,
    /// Plan fields that changed, as `field: old → new`.
    pub changes: Vec<String>,
    /// Lines the policy logged.
    pub logs: Vec<PolicyLog>,
    /// Nodes the policy asked for.
    pub nodes_returned: usize,
}

/// The chain's result for one Service.
#[derive(Debug, Clone)]
pub struct ChainOutcome {
    /// The validated final plan.
    pub plan: Plan,
    /// One step per policy, in order.
    pub trace: Vec<TraceStep>,
}

/// Why the chain produced no plan.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// A policy decided that the Service must not be served. Not a failure:
    /// the controller removes the Service's proxy and says why. Later
    /// policies did not run.
    #[error("policy {policy} does not serve this Service: {reason}")]
    DoNotServe {
        /// The deciding policy.
        policy: String,
        /// Its reason, for the Service's owner.
        reason: String,
    },
    /// A policy failed or rejected the Service.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// Every policy succeeded but the final plan is incomplete.
    #[error("the policy chain produced an incomplete plan: {0}")]
    Incomplete(InvalidPlan),
}

impl ChainError {
    /// A short, stable label for metrics and Event reasons.
    pub fn metric_label(&self) -> &'static str {
        match self {
            ChainError::DoNotServe { .. } => "do_not_serve",
            ChainError::Policy(e) => e.kind.metric_label(),
            ChainError::Incomplete(_) => "incomplete_plan",
        }
    }
}

impl PolicyChain {
    /// A chain of `policies`, in order, whose plans must obey `rules`.
    pub fn new(engine: Arc<PolicyEngine>, policies: Vec<LoadedPolicy>, rules: PlanRules) -> Self {
        Self {
            engine,
            policies,
            rules,
        }
    }

    /// The policies, in order.
    pub fn policies(&self) -> &[LoadedPolicy] {
        &self.policies
    }

    /// Runs the chain over `service`, starting from an empty plan.
    pub fn evaluate(
        &self,
        service: &Service,
        nodes: Arc<dyn NodeSource>,
    ) -> Result<ChainOutcome, ChainError> {
        let namespace = service.namespace.as_str();
        let mut plan = Plan::default();
        let mut trace = Vec::with_capacity(self.policies.len());
        for policy in &self.policies {
            let started = Instant::now();
            let evaluation = self
                .engine
                .evaluate(policy, service, &plan, nodes.clone())?;
            let fail = |kind| PolicyError {
                policy: policy.name.clone(),
                kind,
            };
            let next = match evaluation.decision {
                Decision::Accept(next) => *next,
                Decision::Reject(reason) => {
                    return Err(fail(PolicyErrorKind::Rejected(clip(&reason))).into());
                }
                Decision::DoNotServe(reason) => {
                    return Err(ChainError::DoNotServe {
                        policy: policy.name.clone(),
                        reason: clip(&reason),
                    });
                }
            };
            validate_plan(&next, &self.rules, namespace)
                .map_err(|e| fail(PolicyErrorKind::InvalidPlan(e)))?;
            trace.push(TraceStep {
                policy: policy.name.clone(),
                elapsed: started.elapsed(),
                changes: describe_changes(&plan, &next),
                logs: evaluation.logs,
                nodes_returned: evaluation.nodes_returned,
            });
            plan = next;
        }
        validate_final_plan(&plan, &self.rules, namespace).map_err(ChainError::Incomplete)?;
        plan.tags = without_duplicates(plan.tags);
        Ok(ChainOutcome { plan, trace })
    }
}

/// `tags` with each tag once, in the order first asked for (two policies,
/// or one annotation, may name a tag twice; `tailscale up` gets it once).
fn without_duplicates(tags: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::BTreeSet::new();
    tags.into_iter()
        .filter(|t| seen.insert(t.clone()))
        .collect()
}

/// The plan fields that differ between `before` and `after`, one line each
/// (`field: old → new`, values in JSON; for `env` only the names). Compares field by field and
/// formats only what changed: this runs for every policy of every Service.
pub fn describe_changes(before: &Plan, after: &Plan) -> Vec<String> {
    let mut changes = Vec::new();
    let mut field = |name: &str, old: &dyn ErasedJson, new: &dyn ErasedJson, same: bool| {
        if !same {
            changes.push(format!("{name}: {} → {}", old.json(), new.json()));
        }
    };
    let (b, a) = (before, after);
    field(
        "hostname",
        &b.hostname,
        &a.hostname,
        b.hostname == a.hostname,
    );
    field(
        "nodeSelector",
        &b.node_selector,
        &a.node_selector,
        b.node_selector == a.node_selector,
    );
    field(
        "podAnnotations",
        &b.pod_annotations,
        &a.pod_annotations,
        b.pod_annotations == a.pod_annotations,
    );
    field(
        "podLabels",
        &b.pod_labels,
        &a.pod_labels,
        b.pod_labels == a.pod_labels,
    );
    // Names only: environment values may carry credentials (e.g. a proxy URL).
    let (old_env, new_env): (Vec<&String>, Vec<&String>) =
        (b.env.keys().collect(), a.env.keys().collect());
    field("env (names)", &old_env, &new_env, b.env == a.env);
    field(
        "priorityClassName",
        &b.priority_class_name,
        &a.priority_class_name,
        b.priority_class_name == a.priority_class_name,
    );
    field(
        "resources",
        &b.resources,
        &a.resources,
        b.resources == a.resources,
    );
    field("tags", &b.tags, &a.tags, b.tags == a.tags);
    field(
        "tolerations",
        &b.tolerations,
        &a.tolerations,
        b.tolerations == a.tolerations,
    );
    changes
}

/// A value printed as JSON in a trace line.
trait ErasedJson {
    fn json(&self) -> String;
}

impl<T: serde::Serialize> ErasedJson for T {
    fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_name_each_modified_field() {
        let before = Plan::default();
        let mut after = before.clone();
        after.hostname = "web".into();
        after.tags = vec!["tag:a".into()];
        assert_eq!(
            describe_changes(&before, &after),
            vec![r#"hostname: "" → "web""#, r#"tags: [] → ["tag:a"]"#]
        );
        assert!(describe_changes(&after, &after).is_empty());
        let mut with_secret = after.clone();
        with_secret
            .env
            .insert("HTTPS_PROXY".into(), "http://user:secret@proxy".into());
        let changes = describe_changes(&after, &with_secret);
        assert_eq!(changes, vec![r#"env (names): [] → ["HTTPS_PROXY"]"#]);
    }
}
