//! Everything one evaluation's `Store` holds: a WASI context granting
//! nothing, the memory cap, the node source and the policy's log.
//!
//! The clocks and random sources are fixed so that the same input always
//! yields the same plan, and waiting on a clock is refused so that a policy
//! cannot block its host thread beyond the epoch deadline.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Result};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{
    Deterministic, HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxBuilder, WasiCtxView,
    WasiView,
};

use policy_sdk::PANIC_LINE_PREFIX;

use super::bindings::{imported, v0_1, v0_2};
use super::nodes::NodeSource;

/// Most log lines kept per evaluation.
const MAX_LOG_LINES: usize = 64;
/// Longest log line kept, in bytes.
const MAX_LOG_LINE: usize = 1024;
/// Largest table (of funcrefs) a policy may grow.
const MAX_TABLE_ELEMENTS: usize = 100_000;
/// The fixed wall-clock time policies see: 2025-01-01T00:00:00Z.
const FIXED_WALL_CLOCK: Duration = Duration::from_secs(1_735_689_600);

/// A line a policy logged through the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyLog {
    /// Severity.
    pub level: imported::LogLevel,
    /// The message, cut to 1 KiB.
    pub message: String,
}

/// Caps linear memory and records whether the cap was hit, so the trap
/// that follows is reported as a memory limit rather than an opaque abort.
#[derive(Debug)]
pub(crate) struct MemoryCap {
    max_bytes: usize,
    pub(crate) exceeded: bool,
    /// The largest linear memory granted (its initial size included).
    pub(crate) peak_bytes: usize,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        max: Option<usize>,
    ) -> Result<bool> {
        if desired > self.max_bytes {
            self.exceeded = true;
            return Ok(false);
        }
        // Past the memory's own maximum wasmtime refuses the growth after
        // this approval: it is not a size the instance reached.
        if max.is_none_or(|max| desired <= max) {
            self.peak_bytes = self.peak_bytes.max(desired);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// The data of one evaluation's store.
pub(crate) struct PolicyState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) memory: MemoryCap,
    nodes: Arc<dyn NodeSource>,
    pub(crate) logs: Vec<PolicyLog>,
    pub(crate) nodes_returned: usize,
    /// A `panicked at …` line logged at error level as the policy's last
    /// log call (see [`PolicyState::record_log`]).
    pub(crate) panic: Option<String>,
}

impl PolicyState {
    /// A state granting nothing; the policy's stderr goes into `stderr`.
    pub(crate) fn new(
        nodes: Arc<dyn NodeSource>,
        max_memory: usize,
        stderr: MemoryOutputPipe,
    ) -> Self {
        let wasi = WasiCtxBuilder::new()
            .stderr(stderr)
            .wall_clock(FixedWallClock)
            .monotonic_clock(FixedMonotonicClock)
            .secure_random(Deterministic::new(vec![0x5a; 32]))
            .insecure_random(Deterministic::new(vec![0xa5; 32]))
            .insecure_random_seed(0)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        Self {
            wasi,
            table: ResourceTable::new(),
            memory: MemoryCap {
                max_bytes: max_memory,
                exceeded: false,
                peak_bytes: 0,
            },
            nodes,
            logs: Vec::new(),
            nodes_returned: 0,
            panic: None,
        }
    }
}

impl WasiView for PolicyState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl v0_2::svc_lb::policy::types::Host for PolicyState {}

impl imported::Host for PolicyState {
    fn log(&mut self, level: imported::LogLevel, message: String) {
        self.record_log(level, message);
    }

    fn list_nodes(
        &mut self,
        selector: Vec<v0_2::svc_lb::policy::types::SelectorRequirement>,
        label_keys: Option<Vec<String>>,
    ) -> Vec<v0_2::svc_lb::policy::types::Node> {
        let selector = v0_2::convert::selector_from_wit(selector);
        let mut nodes = Vec::new();
        self.nodes.visit_matching(&selector, &mut |node| {
            nodes.push(v0_2::convert::node_to_wit(node, label_keys.as_deref()));
        });
        self.nodes_returned += nodes.len();
        nodes
    }
}

impl v0_1::svc_lb::policy::types::Host for PolicyState {}

/// The frozen 0.1.0 host interface: the same functions, every label copied.
impl v0_1::svc_lb::policy::host::Host for PolicyState {
    fn log(&mut self, level: v0_1::svc_lb::policy::host::LogLevel, message: String) {
        use v0_1::svc_lb::policy::host::LogLevel as Old;
        let level = match level {
            Old::Debug => imported::LogLevel::Debug,
            Old::Info => imported::LogLevel::Info,
            Old::Warn => imported::LogLevel::Warn,
            Old::Error => imported::LogLevel::Error,
        };
        self.record_log(level, message);
    }

    fn list_nodes(
        &mut self,
        selector: Vec<v0_1::svc_lb::policy::types::SelectorRequirement>,
    ) -> Vec<v0_1::svc_lb::policy::types::Node> {
        let selector = v0_1::convert::selector_from_wit(selector);
        let mut nodes = Vec::new();
        self.nodes.visit_matching(&selector, &mut |node| {
            nodes.push(v0_1::convert::node_to_wit(node, None));
        });
        self.nodes_returned += nodes.len();
        nodes
    }
}

impl PolicyState {
    /// Keeps a line the policy logged: at most [`MAX_LOG_LINES`], each one
    /// line of at most [`MAX_LOG_LINE`] bytes. A `#![no_std]` policy has no
    /// stderr: the SDK's panic handler logs `panicked at FILE:LINE:COL: …`
    /// at error level as its last call before it traps. So such a line is
    /// kept apart as the trap's message (past the line cap too) while it is
    /// the last line logged; any later line clears it.
    fn record_log(&mut self, level: imported::LogLevel, message: String) {
        let is_panic = level == imported::LogLevel::Error && message.starts_with(PANIC_LINE_PREFIX);
        if self.logs.len() >= MAX_LOG_LINES && !is_panic {
            self.panic = None;
            return;
        }
        let mut message = message;
        if message.len() > MAX_LOG_LINE {
            let mut cut = MAX_LOG_LINE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        // One line each, and no control characters that could forge output.
        let message: String = message
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        self.panic = is_panic.then(|| message.clone());
        if self.logs.len() < MAX_LOG_LINES {
            self.logs.push(PolicyLog { level, message });
        }
    }
}

/// A wall clock stopped at [`FIXED_WALL_CLOCK`].
struct FixedWallClock;

impl HostWallClock for FixedWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }

    fn now(&self) -> Duration {
        FIXED_WALL_CLOCK
    }
}

/// A monotonic clock that never advances.
struct FixedMonotonicClock;

impl HostMonotonicClock for FixedMonotonicClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }

    fn now(&self) -> u64 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::nodes::StaticNodes;
    use imported::LogLevel;

    fn state() -> PolicyState {
        PolicyState::new(
            Arc::new(StaticNodes::new(Vec::new())),
            1 << 20,
            MemoryOutputPipe::new(16),
        )
    }

    #[test]
    fn a_panic_line_is_kept_past_the_line_cap_and_nothing_else_is() {
        let mut state = state();
        for i in 0..MAX_LOG_LINES + 5 {
            state.record_log(LogLevel::Info, format!("line {i}"));
        }
        state.record_log(LogLevel::Warn, "panicked at a warning".into());
        state.record_log(LogLevel::Error, "not a panic".into());
        assert_eq!(state.panic, None);
        state.record_log(
            LogLevel::Error,
            "panicked at src/lib.rs:9:9: boom\nsecond line".into(),
        );
        assert_eq!(state.logs.len(), MAX_LOG_LINES);
        assert_eq!(
            state.panic.as_deref(),
            Some("panicked at src/lib.rs:9:9: boom second line")
        );
    }

    #[test]
    fn a_panic_line_within_the_cap_is_also_an_ordinary_log_line() {
        let mut state = state();
        state.record_log(LogLevel::Error, "panicked at src/lib.rs:1:1: x".into());
        assert_eq!(state.logs.len(), 1);
        assert_eq!(state.panic.as_deref(), Some(state.logs[0].message.as_str()));
    }

    #[test]
    fn a_panic_line_followed_by_any_other_line_is_not_the_traps_message() {
        // Within the cap and past it: a later line, of any level, clears it.
        for before in [0, MAX_LOG_LINES] {
            let mut state = state();
            for i in 0..before {
                state.record_log(LogLevel::Info, format!("line {i}"));
            }
            state.record_log(LogLevel::Error, "panicked at a.rs:1:1: stale".into());
            state.record_log(LogLevel::Debug, "later".into());
            assert_eq!(state.panic, None, "after {before} lines");
        }
    }

    #[test]
    fn a_long_panic_line_is_cut_to_one_log_line() {
        let mut state = state();
        let long = format!("panicked at a.rs:1:1: {}", "é".repeat(MAX_LOG_LINE));
        state.record_log(LogLevel::Error, long);
        let kept = state.panic.unwrap();
        assert!(kept.len() <= MAX_LOG_LINE && kept.len() > MAX_LOG_LINE - 2);
    }
}
