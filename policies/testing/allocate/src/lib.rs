//! Exercises the allocator policy-sdk gives a `#![no_std]` component (over
//! wasi-libc's `malloc`) on every path it has: blocks aligned beyond
//! `malloc`'s 8 bytes, zeroed blocks, and blocks that grow, moving or not.
//! Accepts the plan when every check holds; otherwise rejects it, naming
//! the check that failed.

#![no_std]

extern crate alloc;

use core::alloc::Layout;

use policy_sdk::prelude::*;
use policy_sdk::{NoSettings, Plan, Policy, Rejection, Request};

pub struct Allocate;

/// Wider alignment than `malloc` gives: `aligned_alloc`, and on growth the
/// allocator's copy-and-free path.
#[derive(Clone, Copy, PartialEq)]
#[repr(align(64))]
struct Wide(u32);

fn aligned<T>(ptr: *const T, to: usize) -> bool {
    (ptr as usize).is_multiple_of(to)
}

fn check(ok: bool, what: &str) -> Result<(), Rejection> {
    if ok {
        Ok(())
    } else {
        Err(Rejection::new(format!("allocator check failed: {what}")))
    }
}

fn over_aligned_blocks_stay_aligned_as_they_grow() -> Result<(), Rejection> {
    let mut wide = Vec::new();
    for i in 0..300 {
        wide.push(Wide(i));
        check(
            aligned(wide.as_ptr(), 64),
            "a grown Vec<Wide> is 64-aligned",
        )?;
    }
    check(
        wide.iter().enumerate().all(|(i, w)| w.0 == i as u32),
        "a grown Vec<Wide> keeps its elements",
    )?;
    wide.truncate(3);
    wide.shrink_to_fit();
    check(
        aligned(wide.as_ptr(), 64) && wide[2] == Wide(2),
        "a shrunk Vec<Wide> is 64-aligned and keeps its elements",
    )
}

fn zeroed_blocks_are_zero() -> Result<(), Rejection> {
    // Dirty the heap first, so a block that is not zeroed shows.
    let dirty = vec![0xa5_u8; 64 << 10];
    drop(dirty);
    let zeroed = vec![0_u8; 64 << 10];
    check(zeroed.iter().all(|b| *b == 0), "vec![0; n] is zero")?;
    let layout = Layout::from_size_align(4096, 256).unwrap();
    // SAFETY: a non-zero size; the block is read within its size and freed
    // with the same layout.
    unsafe {
        let block = alloc::alloc::alloc_zeroed(layout);
        check(
            !block.is_null(),
            "an over-aligned zeroed block is allocated",
        )?;
        let ok = aligned(block, 256)
            && core::slice::from_raw_parts(block, 4096)
                .iter()
                .all(|b| *b == 0);
        alloc::alloc::dealloc(block, layout);
        check(ok, "an over-aligned zeroed block is aligned and zero")
    }
}

fn alignment_above_the_size_is_honoured() -> Result<(), Rejection> {
    let layout = Layout::from_size_align(1, 16).unwrap();
    // SAFETY: a non-zero size, freed with the same layout.
    unsafe {
        let block = alloc::alloc::alloc(layout);
        let ok = !block.is_null() && aligned(block, 16);
        alloc::alloc::dealloc(block, layout);
        check(ok, "a 1-byte block aligned to 16")
    }
}

fn growing_strings_keep_their_text() -> Result<(), Rejection> {
    let mut text = String::new();
    for i in 0..20_000 {
        text.push(char::from(b'a' + (i % 26) as u8));
    }
    check(
        text.len() == 20_000
            && text
                .bytes()
                .enumerate()
                .all(|(i, b)| b == b'a' + (i % 26) as u8),
        "a String grown to 20 000 bytes keeps its text",
    )
}

impl Policy for Allocate {
    type Settings = NoSettings;

    fn evaluate(_: &Request<'_, NoSettings>, plan: Plan) -> Result<Plan, Rejection> {
        over_aligned_blocks_stay_aligned_as_they_grow()?;
        zeroed_blocks_are_zero()?;
        alignment_above_the_size_is_honoured()?;
        growing_strings_keep_their_text()?;
        Ok(plan)
    }
}

policy_sdk::export_policy!(Allocate);
