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
    #[error("not a placement policy (world svc-lb:policy/placement-policy@0.2.0 or @0.1.0): {0}")]
    WrongWorld(String),
    /// The policy refused its settings.
    #[error("settings rejected: {0}")]
    InvalidSettings(String),
    /// Ran past the evaluation deadline.
    #[error("ran past its deadline of {0:?}")]
    Timeout(Duration),
    /// Tried to grow its memory past the cap.
    #[error("exceeded its memory cap of {} MiB", .0 >> 20)]
    MemoryLimit(usize),
    /// Trapped (a Rust panic is a trap). Shown with the policy's own
    /// message first: `panicked at src/lib.rs:9:9: … (trapped: …)`.
    #[error("{}", trap_text(.message, .trap))]
    Trap {
        /// What the policy printed before it trapped (a panic's message),
        /// size-capped, on one line; empty if nothing.
        message: String,
        /// The kind of trap (e.g. wasm `unreachable` instruction executed),
        /// without the wasm backtrace (that is logged at debug level).
        trap: String,
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

fn trap_text(message: &str, trap: &str) -> String {
    if message.is_empty() {
        format!("trapped: {trap}")
    } else {
        format!("{message} (trapped: {trap})")
    }
}

/// The message of a guest's panic from what it wrote to stderr: Rust's
/// `thread '<unnamed>' panicked at src/lib.rs:9:9:\n<message>\nnote: run
/// with `RUST_BACKTRACE=1` …` becomes `panicked at src/lib.rs:9:9:
/// <message>`. Other output is kept, folded into one line.
pub fn panic_message(stderr: &str) -> String {
    stderr
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("note: run with `RUST_BACKTRACE"))
        .map(|line| match line.find(policy_sdk::PANIC_LINE_PREFIX) {
            Some(at) if line.starts_with("thread '") => &line[at..],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join(" ")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_leads_with_its_message_and_the_trap_follows() {
        let stderr = "thread '<unnamed>' (1) panicked at src/lib.rs:11:9:\n\
                      policy bug while placing web\n\
                      note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n";
        let message = panic_message(stderr);
        assert_eq!(
            message,
            "panicked at src/lib.rs:11:9: policy bug while placing web"
        );
        let kind = PolicyErrorKind::Trap {
            message,
            trap: "wasm `unreachable` instruction executed".into(),
        };
        assert_eq!(
            kind.to_string(),
            "panicked at src/lib.rs:11:9: policy bug while placing web \
             (trapped: wasm `unreachable` instruction executed)"
        );
        let silent = PolicyErrorKind::Trap {
            message: String::new(),
            trap: "integer divide by zero".into(),
        };
        assert_eq!(silent.to_string(), "trapped: integer divide by zero");
        assert_eq!(
            PolicyErrorKind::MemoryLimit(16 << 20).to_string(),
            "exceeded its memory cap of 16 MiB"
        );
    }
}
