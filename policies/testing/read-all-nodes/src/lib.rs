//! Reads every node on each evaluation and records how many are ready and
//! how many labels it was handed: the worst case for node look-ups,
//! measured by the host's benchmark. With `{"labelKeys": [...]}` it asks
//! for those labels only.

#![no_std]

use policy_sdk::prelude::*;
use policy_sdk::{Plan, Policy, Rejection, Request, Selector};
use serde::Deserialize;

pub struct ReadAllNodes;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub label_keys: Option<Vec<String>>,
}

impl Policy for ReadAllNodes {
    type Settings = Settings;

    fn evaluate(request: &Request<'_, Settings>, mut plan: Plan) -> Result<Plan, Rejection> {
        let everything = Selector::everything();
        let nodes = match &request.settings.label_keys {
            None => request.cluster.nodes(&everything),
            Some(keys) => {
                let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
                request.cluster.nodes_with_labels(&everything, &keys)
            }
        };
        let ready = nodes.iter().filter(|n| n.ready).count();
        let labels: usize = nodes.iter().map(|n| n.labels.len()).sum();
        plan.pod_annotations.insert(
            "example.com/ready-nodes".into(),
            format!("{ready}/{}", nodes.len()),
        );
        plan.pod_annotations
            .insert("example.com/labels-seen".into(), labels.to_string());
        Ok(plan)
    }
}

policy_sdk::export_policy!(ReadAllNodes);
