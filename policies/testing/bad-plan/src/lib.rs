//! Returns a plan the host must refuse; the settings choose which mistake.

#![no_std]

use policy_sdk::prelude::*;
use policy_sdk::{Plan, Policy, Rejection, Request};
use serde::Deserialize;

pub struct BadPlan;

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mistake {
    Hostname,
    Tag,
    HugeLabels,
    ReservedEnv,
    Quantity,
    LabelKey,
    /// `count` pod labels: a result as large as the guest's memory allows.
    ManyLabels,
    /// A hostname of `count` bytes: one huge string.
    HugeHostname,
}

#[derive(Deserialize)]
pub struct Settings {
    pub mistake: Mistake,
    #[serde(default)]
    pub count: usize,
}

impl Policy for BadPlan {
    type Settings = Settings;

    fn evaluate(request: &Request<'_, Settings>, mut plan: Plan) -> Result<Plan, Rejection> {
        match request.settings.mistake {
            Mistake::Hostname => plan.hostname = "Not_A_Label".into(),
            Mistake::Tag => plan.tags.push("prod".into()),
            Mistake::HugeLabels => {
                for i in 0..10_000 {
                    plan.pod_labels.insert(format!("l{i}"), "v".into());
                }
            }
            Mistake::ReservedEnv => {
                plan.env.insert("SVCLB_HOSTNAME".into(), "evil".into());
            }
            Mistake::Quantity => {
                plan.resources.limits.insert("memory".into(), "lots".into());
            }
            Mistake::LabelKey => {
                plan.pod_labels.insert("-bad key".into(), "v".into());
            }
            Mistake::HugeHostname => plan.hostname = "h".repeat(request.settings.count),
            Mistake::ManyLabels => {
                for i in 0..request.settings.count {
                    plan.pod_labels.insert(format!("{i:x}"), String::new());
                }
            }
        }
        Ok(plan)
    }
}

policy_sdk::export_policy!(BadPlan);
