//! Puts the wall clock, the monotonic clock and random numbers into its plan:
//! the engine fixes all three, so the plan must still be the same every time.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use policy_sdk::{NoSettings, Plan, Policy, Rejection, Request};

pub struct Nondeterministic;

impl Policy for Nondeterministic {
    type Settings = NoSettings;

    fn evaluate(_: &Request<'_, NoSettings>, mut plan: Plan) -> Result<Plan, Rejection> {
        let start = Instant::now();
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let random = RandomState::new().hash_one(42u8);
        plan.pod_annotations
            .insert("example.com/wall-clock".into(), wall.as_nanos().to_string());
        plan.pod_annotations
            .insert("example.com/random".into(), random.to_string());
        plan.pod_annotations.insert(
            "example.com/elapsed".into(),
            start.elapsed().as_nanos().to_string(),
        );
        Ok(plan)
    }
}

policy_sdk::export_policy!(Nondeterministic);
