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
mod inspect;
mod memory;
mod nodes;
mod permits;
mod set;
mod state;
mod versions;

pub use bindings::Decision;
pub use bindings::imported::LogLevel;
pub use chain::{ChainError, ChainOutcome, PolicyChain, TraceStep, describe_changes};
pub use engine::{EngineLimits, EngineSetupError, Evaluation, LoadedPolicy, PolicyEngine};
pub use error::{PolicyError, PolicyErrorKind};
pub use inspect::{
    CONFIGMAP_LIMIT_BYTES, ComponentFacts, InspectError, LARGE_COMPONENT_BYTES, LARGE_STACK_BYTES,
    inspect_component,
};
pub use memory::{
    CONTROLLER_BASE_BYTES, HOST_COPY_FACTOR, OverMemoryLimit, check_memory_limit,
    engine_worst_case_bytes,
};
pub use nodes::{NodeSource, StaticNodes};
pub use set::{
    DEFAULT_POLICY_NAME, DEFAULT_POLICY_WASM, DefaultPolicySpec, POLICY_SET_FILE, PolicyEntry,
    PolicySetError, PolicySetSpec,
};
pub use state::PolicyLog;
