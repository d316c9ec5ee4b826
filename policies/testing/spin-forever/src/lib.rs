//! Never returns from `evaluate`, either by spinning or (with settings
//! `{"sleep": true}`) by sleeping: the engine must stop both.

use policy_sdk::{Plan, Policy, Rejection, Request};
use serde::Deserialize;

pub struct SpinForever;

#[derive(Deserialize)]
pub struct Settings {
    #[serde(default)]
    pub sleep: bool,
}

impl Policy for SpinForever {
    type Settings = Settings;

    fn evaluate(request: &Request<'_, Settings>, plan: Plan) -> Result<Plan, Rejection> {
        if request.settings.sleep {
            std::thread::sleep(std::time::Duration::from_secs(3600));
            return Ok(plan);
        }
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
