//! What the standard library (and wasi-libc under it) would supply to a
//! `#![no_std]` component: the allocator and the canonical ABI's
//! `cabi_realloc` ([`allocator`]), and the panic handler ([`panic`]).
//! Compiled only for wasm32 without the `std` feature; Rust allows one
//! global allocator and one panic handler per program, so a crate that
//! links the standard library cannot be combined with these.

mod allocator;
mod panic;
