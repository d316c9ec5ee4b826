//! Never returns from `evaluate`: the engine's deadline must stop it.

use policy_sdk::{NoSettings, Plan, Policy, Rejection, Request};

struct SpinForever;

impl Policy for SpinForever {
    type Settings = NoSettings;

    fn evaluate(request: &Request<'_, NoSettings>, plan: Plan) -> Result<Plan, Rejection> {
        let mut n: u64 = request.service.name.len() as u64;
        loop {
            n = std::hint::black_box(n.wrapping_mul(6364136223846793005).wrapping_add(1));
            if n == 0 {
                return Ok(plan);
            }
        }
    }
}

policy_sdk::export_policy!(SpinForever);
