//! The heap of a `#![no_std]` component: wasi-libc's `malloc` as Rust's
//! global allocator, used the way the standard library's `System`
//! allocator uses it on WASI (`malloc` when the alignment is at most 8 and
//! at most the size, else `aligned_alloc`), and the canonical ABI's
//! `cabi_realloc` on it.
//!
//! Written here: `libc_alloc`, the crate for this, targets Unix, macOS and
//! Windows and takes every block from `memalign`; wit-bindgen supplies
//! `cabi_realloc` only on targets without wasi-libc, and on wasm32-wasip2
//! expects the standard library to link wasi-libc's. This one allocates
//! from the same global allocator the bindings free with, honouring the
//! alignment the host asks for. wasi-libc's `malloc` starts its heap in the
//! memory the module already has, after the data; the `dlmalloc` crate,
//! tried first, always grew the memory by one more 64 KiB page, which every
//! fresh instance then paid for (the default policy's evaluation took 22 µs
//! with it, 13.5 µs with `malloc`).

use core::alloc::{GlobalAlloc, Layout};
use core::ffi::c_void;

// wasi-libc, the static library shipped with the target, which the
// standard library links too: the allocator, and `memcmp`/`bcmp`, which the
// compiler's builtins leave to it on wasm32-wasip2. Only what is called is
// linked.
#[link(name = "c")]
unsafe extern "C" {
    fn malloc(size: usize) -> *mut c_void;
    fn calloc(count: usize, size: usize) -> *mut c_void;
    fn realloc(ptr: *mut c_void, size: usize) -> *mut c_void;
    fn aligned_alloc(align: usize, size: usize) -> *mut c_void;
    fn free(ptr: *mut c_void);
}

/// Alignment every `malloc` result has at least on wasm32 (the standard
/// library assumes the same).
const MALLOC_ALIGN: usize = 8;

/// wasi-libc's allocator, as the standard library's `System` uses it.
struct WasiLibc;

impl WasiLibc {
    /// Whether `malloc`'s own alignment serves `layout` (for `size` bytes).
    fn malloc_serves(layout: &Layout, size: usize) -> bool {
        layout.align() <= MALLOC_ALIGN && layout.align() <= size
    }
}

// SAFETY: malloc, calloc, aligned_alloc, realloc and free are wasi-libc's,
// each used within its contract; a null result is passed on as failure.
unsafe impl GlobalAlloc for WasiLibc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe {
            if Self::malloc_serves(&layout, layout.size()) {
                malloc(layout.size()).cast()
            } else {
                aligned_alloc(layout.align(), layout.size()).cast()
            }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        unsafe {
            if Self::malloc_serves(&layout, layout.size()) {
                calloc(layout.size(), 1).cast()
            } else {
                let ptr = self.alloc(layout);
                if !ptr.is_null() {
                    core::ptr::write_bytes(ptr, 0, layout.size());
                }
                ptr
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _: Layout) {
        unsafe { free(ptr.cast()) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        unsafe {
            if Self::malloc_serves(&layout, new_size) {
                realloc(ptr.cast(), new_size).cast()
            } else {
                // `realloc` keeps only malloc's alignment: move by hand.
                let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
                let new = self.alloc(new_layout);
                if !new.is_null() {
                    core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                    self.dealloc(ptr, layout);
                }
                new
            }
        }
    }
}

#[global_allocator]
static ALLOCATOR: WasiLibc = WasiLibc;

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
    if new_len == 0 {
        // A zero-sized value: any aligned, non-null pointer. (The canonical
        // ABI never shrinks a block to nothing, so no old block is lost.)
        return align as *mut u8;
    }
    let Ok(layout) = Layout::from_size_align(old_len.max(new_len), align) else {
        core::arch::wasm32::unreachable()
    };
    let ptr = unsafe {
        if old_len == 0 {
            alloc::alloc::alloc(Layout::from_size_align_unchecked(new_len, layout.align()))
        } else {
            alloc::alloc::realloc(
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
