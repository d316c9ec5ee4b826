//! What the standard library (and wasi-libc under it) would supply to a
//! `#![no_std]` component: the allocator and the canonical ABI's
//! `cabi_realloc` ([`allocator`]), and the panic handler ([`panic`]), which
//! reports the line [`panic_line`] builds. Rust allows one global
//! allocator and one panic handler per program, so these exist only in a
//! wasm32-wasip2 build without the `std` feature; the line is also built
//! natively, for its tests.

#[cfg(not(test))]
mod allocator;
#[cfg(not(test))]
mod panic;
mod panic_line;
