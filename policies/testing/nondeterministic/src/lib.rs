//! Puts the wall clock, the monotonic clock and random numbers into its plan:
//! the engine fixes all three, so the plan must still be the same every time.
//! It also counts its calls in a static, which a fresh instance resets.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use policy_sdk::{NoSettings, Plan, Policy, Rejection, Request};

pub struct Nondeterministic;

/// Counts calls within one instance: stays 1 if every call gets a fresh one.
static CALLS: AtomicU32 = AtomicU32::new(0);

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
        let calls = CALLS.fetch_add(1, Ordering::SeqCst) + 1;
        plan.pod_annotations
            .insert("example.com/calls".into(), calls.to_string());
        plan.pod_annotations.insert(
            "example.com/elapsed".into(),
            start.elapsed().as_nanos().to_string(),
        );
        Ok(plan)
    }
}

policy_sdk::export_policy!(Nondeterministic);
