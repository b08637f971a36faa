//! A global allocator that remembers the largest single allocation each
//! thread asked for, so a target can check that a decoder allocates in
//! proportion to its input, and refuses (aborting the process, which every
//! fuzzer reports as a crash) any allocation above [`HARD_LIMIT`].

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// No decoder may ask for this much at once, whatever the input.
pub const HARD_LIMIT: usize = 256 << 20;

pub struct Counting;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) -> bool {
    // try_with: the allocator may run while this thread's locals are torn down.
    let _ = LARGEST.try_with(|largest| largest.set(largest.get().max(size)));
    size <= HARD_LIMIT
}

// SAFETY: every call is forwarded to the system allocator unchanged; a
// refused size answers null, which callers handle as an allocation failure.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !note(layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !note(layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: ptr came from this allocator, i.e. from System.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !note(new_size) {
            return std::ptr::null_mut();
        }
        // SAFETY: ptr came from System with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Run `f` and return its result with the largest single allocation this
/// thread made meanwhile.
pub fn largest_allocation<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let before = LARGEST.with(|l| l.replace(0));
    let result = f();
    let largest = LARGEST.with(|l| l.replace(before.max(l.get())));
    (result, largest)
}

/// Panic when `f` made an allocation larger than `limit` bytes.
pub fn bounded<R>(what: &str, limit: usize, f: impl FnOnce() -> R) -> R {
    let (result, largest) = largest_allocation(f);
    assert!(
        largest <= limit,
        "{what}: allocated {largest} bytes at once (limit {limit})"
    );
    result
}
