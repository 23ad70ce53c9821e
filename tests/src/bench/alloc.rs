//! A counting global allocator, so a benchmark can report the peak of live heap bytes.
//!
//! It forwards to mimalloc: with glibc's malloc the benchmark's two worker threads spend
//! much of their time in its arena locks (objects are allocated on one thread and freed on
//! the other), which is a property of the allocator, not of the code measured. Build with
//! `--features system-alloc` to forward to the system allocator instead (BENCHMARKS.md gives
//! figures with both).
//!
//! A run makes some 9,000 allocations, so the cost of this layer itself shows in every
//! figure: it calls mimalloc's plain `mi_malloc` / `mi_realloc` when the alignment asked for
//! is one those give anyway (at most 16 and at most the size, the rule the standard
//! library's `System` allocator applies to `malloc`), not the aligned entry points the
//! `mimalloc` crate always calls; and a thread finds its counter through one thread-local
//! pointer.

use std::alloc::{GlobalAlloc, Layout};

use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};

#[cfg(not(feature = "system-alloc"))]
mod backend {
    use std::alloc::Layout;
    use std::ffi::c_void;

    use libmimalloc_sys::{mi_free, mi_malloc, mi_malloc_aligned, mi_realloc, mi_realloc_aligned};

    /// What `mi_malloc` aligns every block to (MI_MAX_ALIGN_SIZE on 64-bit targets) when it
    /// is at least this large.
    const PLAIN_ALIGN: usize = 16;

    fn plain(align: usize, size: usize) -> bool {
        align <= PLAIN_ALIGN && align <= size
    }

    pub(super) unsafe fn alloc(layout: Layout) -> *mut u8 {
        // SAFETY: mimalloc's documented contracts; a plain block is aligned as `plain` says.
        unsafe {
            if plain(layout.align(), layout.size()) {
                mi_malloc(layout.size()).cast()
            } else {
                mi_malloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    pub(super) unsafe fn dealloc(ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from this allocator; mi_free takes any mimalloc block.
        unsafe { mi_free(ptr.cast::<c_void>()) }
    }

    pub(super) unsafe fn realloc(ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as `alloc`; the block keeps the alignment its layout asked for.
        unsafe {
            if plain(layout.align(), new_size) {
                mi_realloc(ptr.cast::<c_void>(), new_size).cast()
            } else {
                mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align()).cast()
            }
        }
    }
}

#[cfg(feature = "system-alloc")]
mod backend {
    use std::alloc::{GlobalAlloc, Layout, System};

    pub(super) unsafe fn alloc(layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        unsafe { System.alloc(layout) }
    }

    pub(super) unsafe fn dealloc(ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) }
    }

    pub(super) unsafe fn realloc(ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

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
struct Slot {
    count: AtomicIsize,
    /// Written by more than one thread (the last slot).
    shared: bool,
}

static COUNTS: [Slot; SLOTS] = {
    let mut slots = [const {
        Slot {
            count: AtomicIsize::new(0),
            shared: false,
        }
    }; SLOTS];
    slots[SLOTS - 1].shared = true;
    slots
};
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    // No destructor and a const initialiser: safe to use from inside the allocator. The
    // calling thread's counter, once it has one.
    static SLOT: Cell<Option<&'static Slot>> = const { Cell::new(None) };
}

/// The calling thread's counter. The first `SLOTS - 1` threads each own one; later threads,
/// and a thread being torn down, share the last.
#[inline]
fn slot() -> &'static Slot {
    SLOT.try_with(|s| match s.get() {
        Some(slot) => slot,
        None => {
            let i = NEXT_SLOT.fetch_add(1, Ordering::Relaxed).min(SLOTS - 1);
            let slot = &COUNTS[i];
            s.set(Some(slot));
            slot
        }
    })
    .unwrap_or(&COUNTS[SLOTS - 1])
}

/// Adds `n` to the calling thread's count; returns the count before.
#[inline]
fn add(n: isize) -> isize {
    let slot = slot();
    if slot.shared {
        slot.count.fetch_add(n, Ordering::Relaxed)
    } else {
        // Only this thread writes its slot: a plain load and store, without the locked
        // read-modify-write that would drain the store buffer on every allocation (perf
        // put about 10 % of a run at concurrency 1 on that instruction).
        let before = slot.count.load(Ordering::Relaxed);
        slot.count.store(before + n, Ordering::Relaxed);
        before
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

// SAFETY: every call is forwarded to the underlying allocator (see `backend`); the counters
// are plain atomics and a thread-local reference without a destructor.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { backend::alloc(layout) };
        if !p.is_null() {
            grow(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is.
        unsafe { backend::dealloc(ptr, layout) };
        shrink(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { backend::realloc(ptr, layout, new_size) };
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
    let sum: isize = COUNTS.iter().map(|c| c.count.load(Ordering::Relaxed)).sum();
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
