//! The wasmtime engine that loads and runs policies.
//!
//! Each policy is compiled once per content digest and pre-instantiated;
//! every call runs in a fresh `Store` from that `InstancePre`, so a policy
//! keeps no state between Services and a trap never poisons the next call.
//! Calls are bounded in time (epoch interruption, driven by a ticker thread)
//! and in memory (a store limiter).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker, Resource};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolConcurrencyLimitError, PoolingAllocationConfig,
    Store, Trap,
};
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

use super::bindings::Decision;
use super::error::{PolicyError, PolicyErrorKind, panic_message};
use super::nodes::NodeSource;
use super::permits::InstancePermits;
use super::state::{PolicyLog, PolicyState};
use super::versions::{PolicyPre, add_host_to_linker};
use crate::validate::clip;
use policy_sdk::{Plan, Service};

/// How often the epoch advances; deadlines are rounded up to it.
const EPOCH_TICK: Duration = Duration::from_millis(2);
/// The `wasi:clocks/monotonic-clock` version wasmtime-wasi links; its
/// waiting functions are replaced (see [`refuse_clock_waits`]).
const MONOTONIC_CLOCK_INTERFACE: &str = "wasi:clocks/monotonic-clock@0.2.12";

/// Bounds on every policy call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineLimits {
    /// Wall time one call may take.
    pub deadline: Duration,
    /// Linear memory one instance may use, in bytes.
    pub max_memory_bytes: usize,
    /// Standard error kept from one call (a panic message), in bytes.
    pub max_stderr_bytes: usize,
    /// Policy instances that may run at once (the size of the instance
    /// pool); a call beyond it waits for a free slot, up to
    /// [`WAIT_FOR_SLOT_CALLS`] deadlines, then fails with
    /// [`PolicyErrorKind::Busy`]. With the memory cap it bounds the engine's
    /// memory (see [`super::memory`]).
    pub max_concurrent_instances: u32,
}

/// How many call deadlines a call waits for a free instance slot.
pub const WAIT_FOR_SLOT_CALLS: u32 = 50;

impl Default for EngineLimits {
    /// 100 ms, 16 MiB, 2 instances: a worst case of 128 MiB (see
    /// [`super::memory`]), within the shipped 256 MiB container limit.
    fn default() -> Self {
        Self {
            deadline: Duration::from_millis(100),
            max_memory_bytes: 16 << 20,
            max_stderr_bytes: 16 << 10,
            max_concurrent_instances: 2,
        }
    }
}

/// The engine could not be set up (a host misconfiguration, not a policy's fault).
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the policy engine: {0}")]
pub struct EngineSetupError(String);

/// A compiled, settings-checked policy, ready to evaluate.
#[derive(Clone)]
pub struct LoadedPolicy {
    /// The policy's name, used in errors, logs and traces.
    pub name: String,
    /// Hex SHA-256 of the component's bytes.
    pub digest: String,
    /// The settings JSON handed to every call.
    pub settings: String,
    pre: PolicyPre,
}

impl LoadedPolicy {
    /// The contract version the component implements (`0.2.0`, `0.1.0`).
    pub fn contract_version(&self) -> &'static str {
        self.pre.version()
    }
}

impl std::fmt::Debug for LoadedPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPolicy")
            .field("name", &self.name)
            .field("digest", &self.digest)
            .finish_non_exhaustive()
    }
}

/// What one call of `evaluate` returned, with what the policy logged.
#[derive(Debug)]
pub struct Evaluation {
    /// The decision.
    pub decision: Decision,
    /// Lines logged through the host.
    pub logs: Vec<PolicyLog>,
    /// Nodes handed to the policy through `list-nodes`.
    pub nodes_returned: usize,
    /// The instance's linear memory at its largest, in bytes.
    pub memory_bytes: usize,
}

/// A component digest as the hex text [`LoadedPolicy`] shows.
fn hex(digest: &[u8; 32]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Loads and runs policies.
pub struct PolicyEngine {
    engine: Engine,
    linker: Linker<PolicyState>,
    compiled: Mutex<HashMap<[u8; 32], PolicyPre>>,
    limits: EngineLimits,
    permits: InstancePermits,
    ticker: EpochTicker,
}

impl PolicyEngine {
    /// An engine enforcing `limits` on every call.
    pub fn new(limits: EngineLimits) -> Result<Self, EngineSetupError> {
        let setup = |e: wasmtime::Error| EngineSetupError(format!("{e:#}"));
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(instance_pool(&limits)));
        let engine = Engine::new(&config).map_err(setup)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(setup)?;
        refuse_clock_waits(&mut linker).map_err(setup)?;
        add_host_to_linker(&mut linker).map_err(setup)?;
        let ticker = EpochTicker::start(engine.clone());
        Ok(Self {
            engine,
            linker,
            compiled: Mutex::new(HashMap::new()),
            limits,
            permits: InstancePermits::new(limits.max_concurrent_instances),
            ticker,
        })
    }

    /// The limits in force.
    pub fn limits(&self) -> EngineLimits {
        self.limits
    }

    /// Compiles `bytes` (or reuses the compiled component with the same
    /// digest), checks that it is a placement policy, and has it validate
    /// `settings`.
    pub fn load(
        &self,
        name: &str,
        bytes: &[u8],
        settings: &str,
    ) -> Result<LoadedPolicy, PolicyError> {
        let fail = |kind| PolicyError {
            policy: name.to_string(),
            kind,
        };
        let digest: [u8; 32] = Sha256::digest(bytes).into();
        let pre = self.compile(&digest, bytes).map_err(fail)?;
        let policy = LoadedPolicy {
            name: name.to_string(),
            digest: hex(&digest),
            settings: settings.to_string(),
            pre,
        };
        let no_nodes: Arc<dyn NodeSource> = Arc::new(super::nodes::StaticNodes::default());
        let (verdict, _) = self.call(&policy, no_nodes, |store, pre| {
            pre.validate_settings(store, settings)
        })?;
        verdict.map_err(|reason| fail(PolicyErrorKind::InvalidSettings(clip(&reason))))?;
        Ok(policy)
    }

    /// Runs `evaluate` of `policy` in a fresh instance.
    pub fn evaluate(
        &self,
        policy: &LoadedPolicy,
        service: &Service,
        plan: &Plan,
        nodes: Arc<dyn NodeSource>,
    ) -> Result<Evaluation, PolicyError> {
        let (decision, state) = self.call(policy, nodes, |store, pre| {
            pre.evaluate(store, service, &policy.settings, plan)
        })?;
        let decision = decision.map_err(|invalid| PolicyError {
            policy: policy.name.clone(),
            kind: PolicyErrorKind::InvalidPlan(invalid),
        })?;
        Ok(Evaluation {
            decision,
            logs: state.logs,
            nodes_returned: state.nodes_returned,
            memory_bytes: state.memory.peak_bytes,
        })
    }

    /// Drops every compiled component but those of `keep` (the active
    /// chain, after a reload): components of sets no longer in use would
    /// otherwise stay compiled for the life of the process.
    pub fn keep_compiled_only(&self, keep: &[LoadedPolicy]) {
        let wanted: Vec<&str> = keep.iter().map(|p| p.digest.as_str()).collect();
        self.compiled
            .lock()
            .expect("compile cache poisoned")
            .retain(|digest, _| wanted.contains(&hex(digest).as_str()));
    }

    /// How many components are compiled and kept.
    pub fn compiled_count(&self) -> usize {
        self.compiled.lock().expect("compile cache poisoned").len()
    }

    fn compile(&self, digest: &[u8; 32], bytes: &[u8]) -> Result<PolicyPre, PolicyErrorKind> {
        if let Some(pre) = self
            .compiled
            .lock()
            .expect("compile cache poisoned")
            .get(digest)
        {
            return Ok(pre.clone());
        }
        let component = Component::new(&self.engine, bytes)
            .map_err(|e| PolicyErrorKind::InvalidComponent(one_line(&format!("{e:#}"))))?;
        let instance_pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| PolicyErrorKind::WrongWorld(one_line(&format!("{e:#}"))))?;
        let pre = PolicyPre::new(instance_pre)
            .map_err(|e| PolicyErrorKind::WrongWorld(one_line(&format!("{e:#}"))))?;
        self.compiled
            .lock()
            .expect("compile cache poisoned")
            .insert(*digest, pre.clone());
        Ok(pre)
    }

    /// Instantiates `policy` in a fresh store and runs `f`, turning traps,
    /// timeouts and memory exhaustion into errors naming the policy.
    fn call<R>(
        &self,
        policy: &LoadedPolicy,
        nodes: Arc<dyn NodeSource>,
        f: impl FnOnce(&mut Store<PolicyState>, &PolicyPre) -> wasmtime::Result<R>,
    ) -> Result<(R, PolicyState), PolicyError> {
        let _slot = self
            .permits
            .acquire(self.limits.deadline * WAIT_FOR_SLOT_CALLS)
            .ok_or_else(|| PolicyError {
                policy: policy.name.clone(),
                kind: PolicyErrorKind::Busy(self.limits.max_concurrent_instances),
            })?;
        let stderr = MemoryOutputPipe::new(self.limits.max_stderr_bytes);
        let state = PolicyState::new(nodes, self.limits.max_memory_bytes, stderr.clone());
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.memory);
        store.set_epoch_deadline(self.ticker.ticks_for(self.limits.deadline));
        store.epoch_deadline_trap();
        let result = f(&mut store, &policy.pre);
        let state = store.into_data();
        match result {
            Ok(value) => Ok((value, state)),
            Err(error) => Err(PolicyError {
                policy: policy.name.clone(),
                kind: self.classify(&error, &state, &stderr),
            }),
        }
    }

    fn classify(
        &self,
        error: &wasmtime::Error,
        state: &PolicyState,
        stderr: &MemoryOutputPipe,
    ) -> PolicyErrorKind {
        if error.downcast_ref::<PoolConcurrencyLimitError>().is_some() {
            return PolicyErrorKind::Busy(self.limits.max_concurrent_instances);
        }
        if error.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
            return PolicyErrorKind::Timeout(self.limits.deadline);
        }
        if state.memory.exceeded {
            return PolicyErrorKind::MemoryLimit(self.limits.max_memory_bytes);
        }
        // The whole chain holds the wasm backtrace (`<unknown>!<wasm
        // function 191>` …): useful to the policy's author, noise in a
        // Service's condition. It goes to the debug log only.
        tracing::debug!(backtrace = %one_line(&format!("{error:#}")), "policy trapped");
        let trap = match error.downcast_ref::<Trap>() {
            Some(trap) => trap
                .to_string()
                .trim_start_matches("wasm trap: ")
                .to_string(),
            None => one_line(&error.root_cause().to_string()),
        };
        // A std policy's panic is on stderr; a `#![no_std]` one's in its log.
        let mut message = panic_message(&String::from_utf8_lossy(&stderr.contents()));
        if message.is_empty() {
            message = state.panic.clone().unwrap_or_default();
        }
        PolicyErrorKind::Trap { message, trap }
    }
}

/// Most core instances, tables and memories one policy component has (a Rust
/// `wasm32-wasip2` component has a handful of core instances and one memory).
const MAX_CORE_INSTANCES_PER_POLICY: u32 = 16;
/// Linear memory kept resident in a pool slot between instances and zeroed
/// with `memset` instead of being handed back to the kernel: a policy call
/// touches little memory, and page faults dominated its cost otherwise.
const MEMORY_KEPT_RESIDENT: usize = 256 << 10;

/// The instance pool: fresh instances come from pre-reserved slots instead
/// of new mappings, which makes a fresh instance per call cheap.
fn instance_pool(limits: &EngineLimits) -> PoolingAllocationConfig {
    let slots = limits.max_concurrent_instances.max(1);
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(slots)
        .total_core_instances(slots * MAX_CORE_INSTANCES_PER_POLICY)
        .total_tables(slots * MAX_CORE_INSTANCES_PER_POLICY)
        .total_memories(slots)
        .max_core_instances_per_component(MAX_CORE_INSTANCES_PER_POLICY)
        .max_tables_per_component(MAX_CORE_INSTANCES_PER_POLICY)
        .max_memories_per_component(1)
        .max_memory_size(limits.max_memory_bytes)
        .linear_memory_keep_resident(MEMORY_KEPT_RESIDENT)
        .table_keep_resident(64 << 10);
    pool
}

/// Folds a multi-line message (wasmtime's errors, a panic's stderr) into
/// one line, so logs, Events and the CLI show it whole.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Replaces the functions of `wasi:clocks/monotonic-clock` that wait: a
/// policy blocked in the host (e.g. `std::thread::sleep`) would not be
/// reached by epoch interruption, which only stops running guest code.
fn refuse_clock_waits(linker: &mut Linker<PolicyState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut clock = linker.instance(MONOTONIC_CLOCK_INTERFACE)?;
    clock.func_wrap(
        "subscribe-duration",
        |_, _: (u64,)| -> wasmtime::Result<(Resource<DynPollable>,)> {
            Err(wasmtime::format_err!("policies may not wait on a clock"))
        },
    )?;
    clock.func_wrap(
        "subscribe-instant",
        |_, _: (u64,)| -> wasmtime::Result<(Resource<DynPollable>,)> {
            Err(wasmtime::format_err!("policies may not wait on a clock"))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until dropped.
struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    fn start(engine: Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("policy-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .expect("spawning the epoch thread");
        Self {
            stop,
            thread: Some(thread),
        }
    }

    /// Ticks covering `deadline`, plus one for the tick already under way.
    fn ticks_for(&self, deadline: Duration) -> u64 {
        (deadline.as_nanos().div_ceil(EPOCH_TICK.as_nanos()) as u64) + 1
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
