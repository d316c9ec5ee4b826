//! What the standard library (and wasi-libc under it) would supply to a
//! `#![no_std]` component: the allocator, the canonical ABI's
//! `cabi_realloc`, and the panic handler. Compiled only for wasm32 without
//! the `std` feature.
//!
//! Written here because these items must be defined by a crate in the
//! component (Rust allows one of each): wit-bindgen supplies `cabi_realloc`
//! only for targets without wasi-libc, and on wasm32-wasip2 leaves it to
//! wasi-libc. The allocator itself is the `dlmalloc` crate.
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

// `memcmp` and `bcmp`: on wasm32-wasip2 the compiler's builtins leave them
// to wasi-libc, which the standard library links; a `#![no_std]` component
// links the same static library (shipped with the target) for them. Only
// what is called is linked.
#[link(name = "c")]
unsafe extern "C" {}

#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

/// The canonical ABI's allocation function, through which the host copies
/// arguments (the Service, the plan, nodes) into the component: what
/// wit-bindgen does on targets without wasi-libc, on the global allocator.
///
/// # Safety
/// Called by the host only, with `old_ptr`/`old_len`/`align` describing an
/// allocation this function returned (or `old_len` 0).
#[unsafe(no_mangle)]
unsafe extern "C" fn cabi_realloc(
    old_ptr: *mut u8,
    old_len: usize,
    align: usize,
    new_len: usize,
) -> *mut u8 {
    use alloc::alloc::{Layout, alloc, realloc};
    if new_len == 0 {
        // A zero-sized value: any aligned, non-null pointer.
        return align as *mut u8;
    }
    let Ok(layout) = Layout::from_size_align(old_len.max(new_len), align) else {
        core::arch::wasm32::unreachable()
    };
    let ptr = unsafe {
        if old_len == 0 {
            alloc(Layout::from_size_align_unchecked(new_len, layout.align()))
        } else {
            realloc(
                old_ptr,
                Layout::from_size_align_unchecked(old_len, layout.align()),
                new_len,
            )
        }
    };
    if ptr.is_null() {
        // Out of memory: the host's memory cap reports it.
        core::arch::wasm32::unreachable()
    }
    ptr
}

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
