//! The per-policy trace `render` prints on standard error.

use std::io::Write;

use svc_lb_host::policy::{LogLevel, TraceStep};

/// Writes one block per policy: name, time, nodes asked for, changes, logs.
pub(super) fn write_trace(out: &mut impl Write, trace: &[TraceStep]) -> std::io::Result<()> {
    for step in trace {
        writeln!(
            out,
            "policy {} ({:.3} ms, {} nodes looked up)",
            step.policy,
            step.elapsed.as_secs_f64() * 1e3,
            step.nodes_returned
        )?;
        if step.changes.is_empty() {
            writeln!(out, "  no changes")?;
        }
        for change in &step.changes {
            writeln!(out, "  {change}")?;
        }
        for log in &step.logs {
            writeln!(out, "  log {}: {}", level_name(log.level), log.message)?;
        }
    }
    Ok(())
}

fn level_name(level: LogLevel) -> &'static str {
    match level {
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
    }
}
