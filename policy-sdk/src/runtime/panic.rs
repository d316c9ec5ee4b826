//! The panic handler of a `#![no_std]` component.
//!
//! A panic is reported the way the controller reads it: the standard
//! library writes `thread '…' panicked at FILE:LINE:COL:\nMESSAGE` to
//! stderr; here the same `panicked at FILE:LINE:COL: MESSAGE` goes to the
//! host's `log` at error level (a `#![no_std]` component has no stderr),
//! and the instance then traps with `unreachable`, as `panic = "abort"`
//! does. The controller shows the line as the trap's message.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, Ordering};

use crate::cluster::LogLevel;

/// Longest panic message kept; the controller cuts log lines shorter.
const MAX_PANIC_MESSAGE: usize = 1024;

/// Set by the first panic: a panic while reporting one only traps.
static PANICKING: AtomicBool = AtomicBool::new(false);

#[panic_handler]
fn report_panic_and_trap(info: &core::panic::PanicInfo<'_>) -> ! {
    if !PANICKING.swap(true, Ordering::Relaxed) {
        // A buffer on the stack, not the heap: the panic may be the
        // allocator failing.
        let mut line = PanicLine {
            bytes: [0; MAX_PANIC_MESSAGE],
            len: 0,
        };
        let _ = match info.location() {
            Some(at) => write!(line, "panicked at {at}: {}", info.message()),
            None => write!(line, "panicked: {}", info.message()),
        };
        crate::guest::log(LogLevel::Error, line.as_str());
    }
    core::arch::wasm32::unreachable()
}

/// A fixed buffer that keeps what fits, cut at a character boundary.
struct PanicLine {
    bytes: [u8; MAX_PANIC_MESSAGE],
    len: usize,
}

impl PanicLine {
    fn as_str(&self) -> &str {
        // Only whole `&str`s or their char-boundary prefixes are copied in.
        core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("panicked")
    }
}

impl Write for PanicLine {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = MAX_PANIC_MESSAGE - self.len;
        let mut take = s.len().min(room);
        while !s.is_char_boundary(take) {
            take -= 1;
        }
        self.bytes[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        if take < s.len() {
            Err(fmt::Error)
        } else {
            Ok(())
        }
    }
}
