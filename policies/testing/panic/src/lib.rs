//! Panics in `evaluate`: the panic message must reach the operator.

use policy_sdk::{NoSettings, Plan, Policy, Rejection, Request};

pub struct Panic;

impl Policy for Panic {
    type Settings = NoSettings;

    fn evaluate(request: &Request<'_, NoSettings>, _: Plan) -> Result<Plan, Rejection> {
        panic!("policy bug while placing {}", request.service.name);
    }
}

policy_sdk::export_policy!(Panic);
