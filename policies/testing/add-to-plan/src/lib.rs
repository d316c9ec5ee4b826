//! Adds what its settings list to the plan it receives, as an operator's
//! policy (or a hostile one) would: tags, environment variables, pod
//! annotations, tolerations and a priority class. The host's tests use it to
//! prove which additions the host refuses, whatever policy makes them.

#![no_std]

use policy_sdk::prelude::*;
use policy_sdk::{Labels, Plan, Policy, Rejection, Request, Toleration};
use serde::Deserialize;

pub struct AddToPlan;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub env: Labels,
    #[serde(default)]
    pub pod_annotations: Labels,
    #[serde(default)]
    pub tolerations: Vec<Toleration>,
    #[serde(default)]
    pub priority_class_name: Option<String>,
}

impl Policy for AddToPlan {
    type Settings = Settings;

    fn evaluate(request: &Request<'_, Settings>, mut plan: Plan) -> Result<Plan, Rejection> {
        let add = request.settings;
        plan.tags.extend(add.tags.iter().cloned());
        plan.env.extend(add.env.clone());
        plan.pod_annotations.extend(add.pod_annotations.clone());
        plan.tolerations.extend(add.tolerations.iter().cloned());
        if add.priority_class_name.is_some() {
            plan.priority_class_name = add.priority_class_name.clone();
        }
        Ok(plan)
    }
}

policy_sdk::export_policy!(AddToPlan);
