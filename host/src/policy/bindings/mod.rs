//! Host side of the WIT contract: generated bindings of every contract
//! version the controller loads, and the conversions between them and the
//! SDK's plain types, which the rest of the host uses.
//!
//! - [`v0_2`]: the current contract (`wit/policy.wit`);
//! - [`v0_1`]: the frozen first release (`wit/frozen/0.1.0`), so that
//!   components built for it keep working after an upgrade.

/// The current contract, `svc-lb:policy@0.2.0`.
pub mod v0_2 {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "placement-policy",
    });

    /// Conversions to and from this version's types.
    pub mod convert {
        use super::svc_lb::policy::types as wit;
        include!("conversions.rs");
    }
}

/// The frozen first release, `svc-lb:policy@0.1.0`.
pub mod v0_1 {
    wasmtime::component::bindgen!({
        path: "../wit/frozen/0.1.0",
        world: "placement-policy",
    });

    /// Conversions to and from this version's types.
    pub mod convert {
        use super::svc_lb::policy::types as wit;
        include!("conversions.rs");
    }
}

pub use v0_2::svc_lb::policy::host as imported;

/// What a policy decided, in the host's terms (any contract version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Go on with this plan.
    Accept(Box<policy_sdk::Plan>),
    /// The input is invalid; keep what was applied before.
    Reject(String),
    /// Do not serve the Service: remove its proxy.
    DoNotServe(String),
}

#[cfg(test)]
mod tests {
    use super::v0_2::convert::{plan_from_wit, plan_to_wit};
    use policy_sdk::{Labels, Plan, Resources, Toleration, TolerationOperator};

    #[test]
    fn plans_survive_the_round_trip_through_the_contract() {
        let plan = Plan {
            node_selector: Labels::from([("a".into(), "b".into())]),
            hostname: "h".into(),
            tags: vec!["tag:x".into()],
            pod_labels: Labels::from([("l".into(), "v".into())]),
            pod_annotations: Labels::from([("an".into(), "v".into())]),
            tolerations: vec![Toleration {
                key: "k".into(),
                operator: TolerationOperator::Exists,
                value: String::new(),
                effect: "NoExecute".into(),
                toleration_seconds: Some(30),
            }],
            resources: Resources {
                requests: Labels::from([("cpu".into(), "10m".into())]),
                limits: Labels::from([("memory".into(), "64Mi".into())]),
            },
            priority_class_name: Some("high".into()),
            env: Labels::from([("FOO".into(), "bar".into())]),
        };
        assert_eq!(plan_from_wit(plan_to_wit(&plan)), Ok(plan));
    }
}
