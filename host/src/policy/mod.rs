//! Policies: WebAssembly components that decide how a Service's proxy is
//! deployed, and the engine that runs them.
//!
//! ```text
//! policies.yaml + *.wasm ──set──▶ LoadedPolicy… ──chain──▶ validated Plan
//!                                   (engine: compile once, fresh store per call)
//! ```

mod bindings;
mod chain;
mod engine;
mod error;
mod nodes;
mod set;
mod state;

pub use bindings::imported::LogLevel;
pub use chain::{ChainError, ChainOutcome, PolicyChain, TraceStep, describe_changes};
pub use engine::{EngineLimits, EngineSetupError, Evaluation, LoadedPolicy, PolicyEngine};
pub use error::{PolicyError, PolicyErrorKind};
pub use nodes::{NodeSource, StaticNodes};
pub use set::{
    DEFAULT_POLICY_NAME, DEFAULT_POLICY_WASM, DefaultPolicySpec, POLICY_SET_FILE, PolicyEntry,
    PolicySetError, PolicySetSpec,
};
pub use state::PolicyLog;

/// The contract's types, for callers that drive the engine directly.
pub mod contract {
    pub use super::bindings::svc_lb::policy::types::*;
    pub use super::bindings::{node_to_wit, plan_from_wit, plan_to_wit, service_to_wit};
}
