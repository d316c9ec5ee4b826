//! Allocates without bound in `evaluate`: the engine's memory cap must stop it.

#![no_std]

use policy_sdk::prelude::*;
use policy_sdk::{NoSettings, Plan, Policy, Rejection, Request};

pub struct GrowMemory;

impl Policy for GrowMemory {
    type Settings = NoSettings;

    fn evaluate(_: &Request<'_, NoSettings>, plan: Plan) -> Result<Plan, Rejection> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(vec![1u8; 1 << 20]);
            if core::hint::black_box(hoard.len()) == usize::MAX {
                return Ok(plan);
            }
        }
    }
}

policy_sdk::export_policy!(GrowMemory);
