//! Panics in `evaluate`: the panic message must reach the operator. With
//! `{"repeat": N}` the message is said N times, to test length limits.

#![no_std]

use policy_sdk::prelude::*;
use policy_sdk::{Plan, Policy, Rejection, Request};
use serde::Deserialize;

pub struct Panic;

#[derive(Deserialize)]
pub struct Settings {
    #[serde(default = "once")]
    pub repeat: usize,
}

fn once() -> usize {
    1
}

impl Policy for Panic {
    type Settings = Settings;

    fn evaluate(request: &Request<'_, Settings>, _: Plan) -> Result<Plan, Rejection> {
        let message = format!("policy bug while placing {}", request.service.name);
        panic!("{}", vec![message; request.settings.repeat].join("; "));
    }
}

policy_sdk::export_policy!(Panic);
