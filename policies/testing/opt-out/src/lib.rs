//! Lets a Service's owner opt out of exposure: `example.com/expose: "false"`
//! means "do not serve" (the proxy is removed), `"true"` or no annotation
//! means serve, and any other value is invalid input (a typo must not take
//! a Service offline, so its proxy stays as it was).

#![no_std]

use policy_sdk::prelude::*;
use policy_sdk::{NoSettings, Plan, Policy, Rejection, Request};

/// The annotation read.
const EXPOSE: &str = "example.com/expose";

pub struct OptOut;

impl Policy for OptOut {
    type Settings = NoSettings;

    fn evaluate(request: &Request<'_, NoSettings>, plan: Plan) -> Result<Plan, Rejection> {
        match request.service.annotation(EXPOSE) {
            None | Some("true") => Ok(plan),
            Some("false") => Err(Rejection::do_not_serve(format!(
                "its owner set {EXPOSE}=false"
            ))),
            Some(other) => Err(Rejection::new(format!(
                "{EXPOSE}={other:?} is neither \"true\" nor \"false\""
            ))),
        }
    }
}

policy_sdk::export_policy!(OptOut);
