//! The panic handler of a `#![no_std]` component.
//!
//! The standard library's hook writes a panic to stderr, where the
//! controller reads it; a `#![no_std]` component has no stderr, so the same
//! `panicked at FILE:LINE:COL: MESSAGE` ([`super::panic_line`]) goes to the
//! host's `log` at error level. The instance then traps with
//! `unreachable`, as `panic = "abort"` does, and the controller shows the
//! line as the trap's message.

use core::sync::atomic::{AtomicBool, Ordering};

use super::panic_line::PanicLine;
use crate::cluster::LogLevel;

/// Set by the first panic: a panic while reporting one only traps.
static PANICKING: AtomicBool = AtomicBool::new(false);

#[panic_handler]
fn report_panic_and_trap(info: &core::panic::PanicInfo<'_>) -> ! {
    if !PANICKING.swap(true, Ordering::Relaxed) {
        let line = PanicLine::new(info.location(), info.message());
        crate::guest::log(LogLevel::Error, line.as_str());
    }
    core::arch::wasm32::unreachable()
}
