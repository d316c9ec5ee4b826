//! Running a policy natively in its author's `cargo test`, with the same
//! settings parsing and node look-ups it gets inside the controller.

use crate::cluster::{Cluster, LogLevel};
use crate::model::{Node, Plan, Rejection, Service};
use crate::prelude::*;
use crate::{Policy, run_evaluate, run_validate_settings};

/// One evaluation of a policy, set up like the controller would.
///
/// ```
/// # use policy_sdk::{Plan, Policy, Request, Rejection, NoSettings, Service};
/// # struct Pass;
/// # impl Policy for Pass {
/// #     type Settings = NoSettings;
/// #     fn evaluate(_: &Request<'_, NoSettings>, plan: Plan) -> Result<Plan, Rejection> { Ok(plan) }
/// # }
/// use policy_sdk::testing::Testcase;
/// let service = Service { namespace: "default".into(), name: "web".into(), ..Default::default() };
/// let outcome = Testcase::new(service).settings("{}").evaluate::<Pass>();
/// assert_eq!(outcome.result, Ok(Plan::default()));
/// ```
#[derive(Debug, Clone)]
pub struct Testcase {
    service: Service,
    settings: String,
    plan: Plan,
    nodes: Vec<Node>,
}

/// What an evaluation returned and logged.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The new plan, or the rejection.
    pub result: Result<Plan, Rejection>,
    /// The lines the policy logged.
    pub logs: Vec<(LogLevel, String)>,
}

impl Testcase {
    /// Evaluates `service` with empty settings, an empty plan and no nodes.
    pub fn new(service: Service) -> Self {
        Self {
            service,
            settings: "{}".to_string(),
            plan: Plan::default(),
            nodes: Vec::new(),
        }
    }

    /// The settings JSON, as the operator would write it.
    pub fn settings(mut self, json: impl Into<String>) -> Self {
        self.settings = json.into();
        self
    }

    /// The plan left by the policies before this one.
    pub fn plan(mut self, plan: Plan) -> Self {
        self.plan = plan;
        self
    }

    /// The cluster's nodes.
    pub fn nodes(mut self, nodes: Vec<Node>) -> Self {
        self.nodes = nodes;
        self
    }

    /// Runs policy `P`.
    pub fn evaluate<P: Policy>(self) -> Outcome {
        let cluster = Cluster::with_nodes(self.nodes);
        let result = run_evaluate::<P>(&self.service, &self.settings, self.plan, &cluster);
        Outcome {
            result,
            logs: cluster.logs(),
        }
    }
}

/// Runs the settings check of policy `P` on `json`, as the controller does
/// when it loads the policy.
pub fn validate_settings<P: Policy>(json: &str) -> Result<(), String> {
    run_validate_settings::<P>(json)
}
