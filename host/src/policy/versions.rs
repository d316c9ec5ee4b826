//! The contract versions a compiled policy may implement, and calling
//! either the same way: the engine sees one [`PolicyPre`], policies built
//! for `svc-lb:policy@0.1.0` keep working beside those built for 0.2.0.

use policy_sdk::{Plan, Service};
use wasmtime::Store;
use wasmtime::component::{HasSelf, InstancePre, Linker};

use super::bindings::{Decision, v0_1, v0_2};
use super::state::PolicyState;
use crate::validate::{InvalidPlan, clip};

/// A compiled, pre-linked policy of one contract version.
#[derive(Clone)]
pub enum PolicyPre {
    /// `svc-lb:policy@0.2.0`.
    Current(v0_2::PlacementPolicyPre<PolicyState>),
    /// `svc-lb:policy@0.1.0` (no `do-not-serve`, every node label).
    V0_1(v0_1::PlacementPolicyPre<PolicyState>),
}

/// Adds the host functions of every supported version to `linker`.
pub fn add_host_to_linker(linker: &mut Linker<PolicyState>) -> wasmtime::Result<()> {
    v0_2::PlacementPolicy::add_to_linker::<PolicyState, HasSelf<PolicyState>>(linker, |s| s)?;
    v0_1::PlacementPolicy::add_to_linker::<PolicyState, HasSelf<PolicyState>>(linker, |s| s)
}

impl PolicyPre {
    /// The policy world `instance_pre` exports, newest first; the error is
    /// the current version's complaint.
    pub fn new(instance_pre: InstancePre<PolicyState>) -> wasmtime::Result<Self> {
        match v0_2::PlacementPolicyPre::new(instance_pre.clone()) {
            Ok(pre) => Ok(Self::Current(pre)),
            Err(current) => match v0_1::PlacementPolicyPre::new(instance_pre) {
                Ok(pre) => Ok(Self::V0_1(pre)),
                Err(_) => Err(current),
            },
        }
    }

    /// The contract version, as `svc-lb:policy@<version>` says it.
    pub fn version(&self) -> &'static str {
        match self {
            Self::Current(_) => "0.2.0",
            Self::V0_1(_) => "0.1.0",
        }
    }

    /// Instantiates the policy in `store` and calls `validate-settings`.
    pub fn validate_settings(
        &self,
        store: &mut Store<PolicyState>,
        settings: &str,
    ) -> wasmtime::Result<Result<(), String>> {
        match self {
            Self::Current(pre) => pre
                .instantiate(&mut *store)?
                .svc_lb_policy_policy()
                .call_validate_settings(store, settings),
            Self::V0_1(pre) => pre
                .instantiate(&mut *store)?
                .svc_lb_policy_policy()
                .call_validate_settings(store, settings),
        }
    }

    /// Instantiates the policy in `store` and calls `evaluate`. The inner
    /// error is a returned plan too large to take in. Reasons are cut here,
    /// while the call holds its instance slot (see `super::memory`).
    pub fn evaluate(
        &self,
        store: &mut Store<PolicyState>,
        service: &Service,
        settings: &str,
        plan: &Plan,
    ) -> wasmtime::Result<Result<Decision, InvalidPlan>> {
        Ok(match self {
            Self::Current(pre) => {
                use v0_2::convert::{plan_from_wit, plan_to_wit, service_to_wit};
                use v0_2::svc_lb::policy::types::Decision as Wit;
                let decision = pre
                    .instantiate(&mut *store)?
                    .svc_lb_policy_policy()
                    .call_evaluate(
                        store,
                        &service_to_wit(service),
                        settings,
                        &plan_to_wit(plan),
                    )?;
                match decision {
                    Wit::Accept(plan) => plan_from_wit(plan).map(|p| Decision::Accept(Box::new(p))),
                    Wit::Reject(reason) => Ok(Decision::Reject(clip(&reason))),
                    Wit::DoNotServe(reason) => Ok(Decision::DoNotServe(clip(&reason))),
                }
            }
            Self::V0_1(pre) => {
                use v0_1::convert::{plan_from_wit, plan_to_wit, service_to_wit};
                use v0_1::svc_lb::policy::types::Decision as Wit;
                let decision = pre
                    .instantiate(&mut *store)?
                    .svc_lb_policy_policy()
                    .call_evaluate(
                        store,
                        &service_to_wit(service),
                        settings,
                        &plan_to_wit(plan),
                    )?;
                match decision {
                    Wit::Accept(plan) => plan_from_wit(plan).map(|p| Decision::Accept(Box::new(p))),
                    Wit::Reject(reason) => Ok(Decision::Reject(clip(&reason))),
                }
            }
        })
    }
}
