//! Reads every node on each evaluation and records how many are ready: the
//! worst case for node look-ups, measured by the host's benchmark.

use policy_sdk::{NoSettings, Plan, Policy, Rejection, Request, Selector};

pub struct ReadAllNodes;

impl Policy for ReadAllNodes {
    type Settings = NoSettings;

    fn evaluate(request: &Request<'_, NoSettings>, mut plan: Plan) -> Result<Plan, Rejection> {
        let nodes = request.cluster.nodes(&Selector::everything());
        let ready = nodes.iter().filter(|n| n.ready).count();
        plan.pod_annotations.insert(
            "example.com/ready-nodes".into(),
            format!("{ready}/{}", nodes.len()),
        );
        Ok(plan)
    }
}

policy_sdk::export_policy!(ReadAllNodes);
