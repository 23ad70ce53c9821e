//! A counting global allocator, so a benchmark can report the peak of live heap bytes.
//!
//! It forwards to mimalloc: with glibc's malloc the benchmark's two worker threads spend
//! much of their time in its arena locks (objects are allocated on one thread and freed on
//! the other), which is a property of the allocator, not of the code measured. Build with
//! `--features system-alloc` to forward to the system allocator instead (BENCHMARKS.md gives
//! figures with both).

use std::alloc::{GlobalAlloc, Layout};

#[cfg(not(feature = "system-alloc"))]
use mimalloc::MiMalloc as System;
#[cfg(feature = "system-alloc")]
use std::alloc::System;
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};

/// Wraps mimalloc (or, with the `system-alloc` feature, the system allocator) and tracks
/// live and peak bytes.
///
/// Each thread counts in its own slot (a cache line of its own), so the two worker threads do
/// not bounce one shared counter between their cores on every allocation and free (perf
/// showed that costing about a tenth of a run at concurrency 1). Live bytes are the sum of
/// the slots, exact between operations. The peak is checked whenever a thread's own count
/// crosses a multiple of [`PEAK_STEP`] upwards, so it can read low by at most `PEAK_STEP` per
/// thread that is allocating at that moment.
pub struct Counting;

/// The granularity of the peak (see [`Counting`]).
pub const PEAK_STEP: usize = 16 * 1024;

const SLOTS: usize = 64;

#[repr(align(128))]
struct Slot(AtomicIsize);

static COUNTS: [Slot; SLOTS] = [const { Slot(AtomicIsize::new(0)) }; SLOTS];
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    // No destructor and a const initialiser: safe to use from inside the allocator.
    static SLOT: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// The calling thread's slot, and whether the thread owns it alone. The first
/// `SLOTS - 1` threads each own one; later threads, and a thread being torn down, share the
/// last.
fn slot() -> (&'static AtomicIsize, bool) {
    let i = SLOT
        .try_with(|s| {
            if s.get() == usize::MAX {
                s.set(NEXT_SLOT.fetch_add(1, Ordering::Relaxed).min(SLOTS - 1));
            }
            s.get()
        })
        .unwrap_or(SLOTS - 1);
    (&COUNTS[i].0, i < SLOTS - 1)
}

/// Adds `n` to the calling thread's count; returns the count before.
fn add(n: isize) -> isize {
    let (count, owned) = slot();
    if owned {
        // Only this thread writes its slot: a plain load and store, without the locked
        // read-modify-write that would drain the store buffer on every allocation (perf
        // put about 10 % of a run at concurrency 1 on that instruction).
        let before = count.load(Ordering::Relaxed);
        count.store(before + n, Ordering::Relaxed);
        before
    } else {
        count.fetch_add(n, Ordering::Relaxed)
    }
}

fn grow(n: usize) {
    let n = n as isize;
    let before = add(n);
    let step = PEAK_STEP as isize;
    if before.div_euclid(step) != (before + n).div_euclid(step) {
        let live = live();
        if live > PEAK.load(Ordering::Relaxed) {
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
    }
}

fn shrink(n: usize) {
    add(-(n as isize));
}

// SAFETY: every call is forwarded to the underlying allocator unchanged; the counters are
// plain atomics and a thread-local index without a destructor.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grow(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) };
        shrink(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                grow(new_size - layout.size());
            } else {
                shrink(layout.size() - new_size);
            }
        }
        p
    }
}

/// Live heap bytes now (the sum of every thread's count).
pub fn live() -> usize {
    let sum: isize = COUNTS.iter().map(|c| c.0.load(Ordering::Relaxed)).sum();
    sum.max(0) as usize
}

/// Peak of live heap bytes since the last [`reset_peak`] (low by at most [`PEAK_STEP`] per
/// allocating thread).
pub fn peak() -> usize {
    PEAK.load(Ordering::Relaxed).max(live())
}

/// Starts a new peak measurement from the current live bytes.
pub fn reset_peak() {
    PEAK.store(live(), Ordering::Relaxed);
}
