//! A policy as the first release's SDK built them: against the frozen
//! `svc-lb:policy@0.1.0` contract (generated directly from
//! `wit/frozen/0.1.0`, since today's SDK targets the current version). The
//! controller must keep loading such components after an upgrade.
//!
//! It places every Service on nodes labelled `pool=legacy`, names the device
//! `legacy-<name>`, counts the nodes it sees in a pod label, and rejects
//! Services annotated `legacy/reject`.

wit_bindgen::generate!({
    path: "../../../wit/frozen/0.1.0",
    world: "placement-policy",
});

use exports::svc_lb::policy::policy::Guest;
use svc_lb::policy::host;
use svc_lb::policy::types::{Decision, KeyValue, Plan, Service};

struct Legacy;

impl Guest for Legacy {
    fn validate_settings(_settings: String) -> Result<(), String> {
        Ok(())
    }

    fn evaluate(service: Service, _settings: String, mut plan: Plan) -> Decision {
        if service
            .annotations
            .iter()
            .any(|kv| kv.key == "legacy/reject")
        {
            return Decision::Reject("annotated legacy/reject".into());
        }
        let nodes = host::list_nodes(&[]);
        host::log(host::LogLevel::Info, &format!("{} nodes", nodes.len()));
        plan.node_selector = vec![KeyValue {
            key: "pool".into(),
            value: "legacy".into(),
        }];
        plan.hostname = format!("legacy-{}", service.name);
        plan.pod_labels.push(KeyValue {
            key: "legacy-nodes".into(),
            value: nodes.len().to_string(),
        });
        Decision::Accept(plan)
    }
}

export!(Legacy);
