//! What can go wrong with a policy, named so an operator can act on it.

use std::time::Duration;

use crate::validate::InvalidPlan;

/// A failure of one policy, naming it.
#[derive(Debug, thiserror::Error)]
#[error("policy {policy}: {kind}")]
pub struct PolicyError {
    /// The policy's name (from `policies.yaml`, or its file name).
    pub policy: String,
    /// What went wrong.
    pub kind: PolicyErrorKind,
}

/// The ways a policy can fail.
#[derive(Debug, thiserror::Error)]
pub enum PolicyErrorKind {
    /// The bytes are not a WebAssembly component.
    #[error("not a WebAssembly component: {0}")]
    InvalidComponent(String),
    /// A component, but not of the `svc-lb:policy` world.
    #[error("not a placement policy (world svc-lb:policy/placement-policy@0.1.0): {0}")]
    WrongWorld(String),
    /// The policy refused its settings.
    #[error("settings rejected: {0}")]
    InvalidSettings(String),
    /// Ran past the evaluation deadline.
    #[error("ran past its deadline of {0:?}")]
    Timeout(Duration),
    /// Tried to grow its memory past the cap.
    #[error("exceeded its memory cap of {0} bytes")]
    MemoryLimit(usize),
    /// Trapped (a Rust panic is a trap); `stderr` holds what it printed.
    #[error("trapped: {trap}{}", stderr_suffix(.stderr))]
    Trap {
        /// The trap, as wasmtime reports it.
        trap: String,
        /// The policy's standard error (a panic message), size-capped.
        stderr: String,
    },
    /// Every slot of the instance pool is in use; try again later.
    #[error("not run: all {0} policy instance slots are in use")]
    Busy(u32),
    /// The policy rejected the Service.
    #[error("rejected the Service: {0}")]
    Rejected(String),
    /// The policy returned a plan the controller will not deploy.
    #[error("returned an invalid plan: {0}")]
    InvalidPlan(#[from] InvalidPlan),
}

fn stderr_suffix(stderr: &str) -> String {
    let stderr = stderr.trim();
    if stderr.is_empty() {
        String::new()
    } else {
        format!("; policy stderr: {stderr}")
    }
}

impl PolicyErrorKind {
    /// A short, stable label for metrics and Event reasons.
    pub fn metric_label(&self) -> &'static str {
        match self {
            PolicyErrorKind::InvalidComponent(_) => "invalid_component",
            PolicyErrorKind::WrongWorld(_) => "wrong_world",
            PolicyErrorKind::InvalidSettings(_) => "invalid_settings",
            PolicyErrorKind::Timeout(_) => "timeout",
            PolicyErrorKind::MemoryLimit(_) => "memory_limit",
            PolicyErrorKind::Trap { .. } => "trap",
            PolicyErrorKind::Busy(_) => "busy",
            PolicyErrorKind::Rejected(_) => "rejected",
            PolicyErrorKind::InvalidPlan(_) => "invalid_plan",
        }
    }
}
