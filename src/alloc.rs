//! `Accounting`: a global allocator that attributes memory to components,
//! for memory quotas.
//!
//! This is one of the crate's few modules with `unsafe` code: implementing
//! [`GlobalAlloc`] is unsafe by definition. Every `unsafe` block says why it
//! is sound.
//!
//! # How it works
//!
//! Install it in the application:
//!
//! ```
//! use compartment::alloc::Accounting;
//! use std::alloc::System;
//!
//! #[global_allocator]
//! static ALLOCATOR: Accounting<System> = Accounting::new(System);
//! # fn main() {}
//! ```
//!
//! Every allocation gets a small header naming the component instance whose
//! thread made it (or none), and that instance's counter grows by the
//! allocation's size; a free — on whatever thread it happens — shrinks the
//! counter of the instance named in the header. A thread batches its own
//! instance's charges in a thread-local and publishes them to the shared
//! counter every 64 KiB; frees elsewhere go straight to it. Counters are
//! atomics in a static table, so no path takes a lock, and a quota is exact
//! to within 64 KiB. An instance's slot in the
//! table is retired (its generation bumped) when the instance ends, so
//! memory it leaves behind and that is freed later credits nobody.
//!
//! # What a quota can and cannot do
//!
//! A [`Limits::memory`](crate::Limits::memory) quota is checked by the
//! tree's watchdog: once an instance holds more, it is cancelled and faulted
//! with `BudgetExceeded`. The allocation that crosses the quota itself
//! succeeds — an allocator cannot fail safely: Rust code assumes that an
//! allocation either succeeds or aborts the whole process, so refusing one
//! would take every component down. A component that allocates faster than
//! the watchdog looks, or ignores cancellation, can still exhaust memory;
//! the hard limit is a process boundary (a separate process with its own
//! cgroup or `RLIMIT_AS`).
//!
//! Each allocation costs a header of 8 bytes (its alignment, for an
//! over-aligned layout) — the C library rounds every block to 16 bytes with
//! an 8-byte header of its own, so most sizes stay in the size class they
//! had — and a thread-local read; an accounted one also a thread-local
//! update, and every 64 KiB one atomic add.

#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// How many instances can be accounted at once.
const SLOTS: usize = 4096;

/// Bytes reserved before each allocation for its owner: the owner record
/// itself.
const HEADER: usize = size_of::<Owner>();

/// One accounted instance: its generation and the bytes it holds, in one
/// atomic word so that a charge checks the generation and updates the count
/// in one step (a stale charge can never land on the slot's next owner).
///
/// | bits | meaning |
/// |---|---|
/// | 63–48 | generation (wraps after 65,536 owners of the slot) |
/// | 47–0 | bytes held, two's complement (frees elsewhere may run ahead of batched charges) |
struct Slot {
    in_use: AtomicBool,
    state: AtomicU64,
}

const COUNT_BITS: u32 = 48;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;

fn generation_of(state: u64) -> u32 {
    (state >> COUNT_BITS) as u32
}

fn held_of(state: u64) -> i64 {
    // Sign-extend the 48-bit count.
    (((state & COUNT_MASK) << (64 - COUNT_BITS)) as i64) >> (64 - COUNT_BITS)
}

fn state_of(generation: u32, held: i64) -> u64 {
    (u64::from(generation & 0xffff) << COUNT_BITS) | (held as u64 & COUNT_MASK)
}

#[allow(
    clippy::declare_interior_mutable_const,
    reason = "used only to initialise the static table"
)]
const EMPTY: Slot = Slot {
    in_use: AtomicBool::new(false),
    state: AtomicU64::new(0),
};

static TABLE: [Slot; SLOTS] = [EMPTY; SLOTS];

/// Whether an `Accounting` allocator is the global allocator: set only when
/// the probe in [`installed`] comes through one.
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// The layout of the probe allocation: an alignment and size no ordinary
/// code asks for together.
const PROBE_SIZE: usize = 1999;
const PROBE_ALIGN: usize = 2048;

/// Whether the global allocator is an `Accounting` one: asks it for the
/// probe layout, which only `Accounting::alloc` recognises.
fn installed() -> bool {
    if INSTALLED.load(Ordering::Relaxed) {
        return true;
    }
    let Ok(layout) = Layout::from_size_align(PROBE_SIZE, PROBE_ALIGN) else {
        return false;
    };
    // SAFETY: the layout has a non-zero size; a non-null result is freed
    // once, with the same layout, through the same (global) allocator.
    unsafe {
        let probe = std::alloc::alloc(layout);
        if !probe.is_null() {
            std::alloc::dealloc(probe, layout);
        }
    }
    INSTALLED.load(Ordering::Relaxed)
}

/// Bytes a thread may charge to its own instance before publishing them to
/// the shared counter: the quota is exact to within this much per thread.
const BATCH: i64 = 64 * 1024;

/// The instance running on a thread, and the bytes it allocated or freed on
/// that thread that are not yet in its shared counter.
#[derive(Clone, Copy)]
struct Current {
    /// Slot index + 1; 0 for none.
    slot: u32,
    generation: u32,
    pending: i64,
}

impl Current {
    /// Adds `bytes` to the batch, publishing it to `owner`'s counter once it
    /// reaches [`BATCH`] either way.
    #[inline]
    fn add(&mut self, owner: Owner, bytes: i64) {
        self.pending += bytes;
        if self.pending.abs() >= BATCH {
            publish(owner, self.pending);
            self.pending = 0;
        }
    }
}

thread_local! {
    static CURRENT: Cell<Current> = const {
        Cell::new(Current {
            slot: 0,
            generation: 0,
            pending: 0,
        })
    };
}

/// The owner recorded in an allocation's header: one aligned word, one
/// store and one load.
#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct Owner {
    slot: u32,
    generation: u32,
}

/// A handle on one instance's slot, held by its meter.
#[derive(Debug)]
pub(crate) struct MemorySlot {
    index: u32,
    generation: u32,
}

impl MemorySlot {
    /// Claims a free slot, or `None` when the table is full or no
    /// `Accounting` allocator is installed (then nothing can be measured).
    pub(crate) fn claim() -> Option<Self> {
        if !installed() {
            return None;
        }
        for (index, slot) in TABLE.iter().enumerate() {
            if slot
                .in_use
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                let generation = generation_of(slot.state.load(Ordering::Acquire)).wrapping_add(1);
                slot.state.store(state_of(generation, 0), Ordering::Release);
                return Some(Self {
                    index: index as u32,
                    generation: generation & 0xffff,
                });
            }
        }
        None
    }

    /// Attributes the calling thread's allocations to this slot from now on.
    pub(crate) fn enter(&self) {
        let _ = CURRENT.try_with(|current| {
            current.set(Current {
                slot: self.index + 1,
                generation: self.generation,
                pending: 0,
            })
        });
    }

    /// Stops attributing the calling thread's allocations to any instance,
    /// publishing what it had batched: a thread of an instance that ends
    /// before the instance leaves no unpublished charges behind.
    pub(crate) fn leave() {
        let _ = CURRENT.try_with(|current| {
            let here = current.get();
            if here.slot != 0 && here.pending != 0 {
                publish(
                    Owner {
                        slot: here.slot,
                        generation: here.generation,
                    },
                    here.pending,
                );
            }
            current.set(Current {
                slot: 0,
                generation: 0,
                pending: 0,
            });
        });
    }

    /// Bytes this instance holds now.
    pub(crate) fn held(&self) -> i64 {
        held_of(TABLE[self.index as usize].state.load(Ordering::Relaxed)).max(0)
    }
}

impl Drop for MemorySlot {
    fn drop(&mut self) {
        let _ = CURRENT.try_with(|current| {
            if current.get().slot == self.index + 1 {
                current.set(Current {
                    slot: 0,
                    generation: 0,
                    pending: 0,
                });
            }
        });
        let slot = &TABLE[self.index as usize];
        // Retire the generation and clear the count in one step: frees of
        // what this instance leaves behind no longer match it.
        slot.state.store(
            state_of(self.generation.wrapping_add(1), 0),
            Ordering::Release,
        );
        slot.in_use.store(false, Ordering::Release);
    }
}

/// Charges `bytes` (negative for a free) to `owner`: batched in the
/// thread-local when this thread runs the owning instance, straight to the
/// shared counter otherwise (a free elsewhere).
#[inline]
fn charge(owner: Owner, bytes: i64) {
    if owner.slot == 0 {
        return;
    }
    let batched = CURRENT
        .try_with(|current| {
            let mut here = current.get();
            if here.slot != owner.slot || here.generation != owner.generation {
                return false;
            }
            here.add(owner, bytes);
            current.set(here);
            true
        })
        .unwrap_or(false);
    if !batched {
        publish(owner, bytes);
    }
}

/// For a new allocation of `bytes` on this thread: its owner (the instance
/// running here, if any), charged in the same thread-local access.
#[inline]
fn charge_new(bytes: i64) -> Owner {
    CURRENT
        .try_with(|current| {
            let mut here = current.get();
            let owner = Owner {
                slot: here.slot,
                generation: here.generation,
            };
            if here.slot != 0 {
                here.add(owner, bytes);
                current.set(here);
            }
            owner
        })
        .unwrap_or(Owner {
            slot: 0,
            generation: 0,
        })
}

fn publish(owner: Owner, bytes: i64) {
    let slot = &TABLE[(owner.slot - 1) as usize];
    let mut state = slot.state.load(Ordering::Relaxed);
    loop {
        if generation_of(state) != owner.generation {
            return;
        }
        let next = state_of(owner.generation, held_of(state).wrapping_add(bytes));
        match slot
            .state
            .compare_exchange_weak(state, next, Ordering::Relaxed, Ordering::Relaxed)
        {
            Ok(_) => return,
            Err(now) => state = now,
        }
    }
}

/// The header's size for `layout`: at least [`HEADER`], and a multiple of
/// the alignment so the user pointer stays aligned.
#[inline]
fn header_for(layout: Layout) -> usize {
    HEADER.max(layout.align())
}

/// A global allocator that wraps `A` and attributes every allocation to the
/// component instance whose thread made it. See the [module](self) docs.
#[derive(Debug, Default)]
pub struct Accounting<A> {
    inner: A,
}

impl<A> Accounting<A> {
    /// Wraps `inner`.
    pub const fn new(inner: A) -> Self {
        Self { inner }
    }
}

impl<A> Accounting<A> {
    /// The layout asked of `inner` for `layout`: the header in front, and
    /// an alignment at least the owner record's.
    #[inline]
    fn outer(layout: Layout) -> Option<(Layout, usize)> {
        let header = header_for(layout);
        let size = layout.size().checked_add(header)?;
        Some((
            Layout::from_size_align(size, layout.align().max(align_of::<Owner>())).ok()?,
            header,
        ))
    }

    /// [`outer`](Self::outer) for a layout `alloc` (or `realloc`) already
    /// found it for, without checking it again.
    ///
    /// # Safety
    ///
    /// `outer(layout)` must be `Some`: a block of `layout` was handed out.
    #[inline]
    unsafe fn known_outer(layout: Layout) -> (Layout, usize) {
        let header = header_for(layout);
        // SAFETY: the caller's promise: this size and alignment made a
        // valid layout when the block was handed out.
        let outer = unsafe {
            Layout::from_size_align_unchecked(
                layout.size() + header,
                layout.align().max(align_of::<Owner>()),
            )
        };
        (outer, header)
    }
}

// SAFETY: every method forwards to `inner` with a layout that is `layout`
// grown by a header whose size is a multiple of `layout.align()`, and hands
// out the pointer just past the header, so the caller gets memory of the
// size and alignment it asked for. `dealloc` and `realloc` recompute the same
// header size from the same layout, so they pass `inner` exactly the pointer
// and layout it returned.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Accounting<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() == PROBE_ALIGN && layout.size() == PROBE_SIZE {
            INSTALLED.store(true, Ordering::Relaxed);
        }
        let Some((outer, header)) = Self::outer(layout) else {
            return std::ptr::null_mut();
        };
        // SAFETY: `outer` has a non-zero size (it includes the header).
        let base = unsafe { self.inner.alloc(outer) };
        if base.is_null() {
            return base;
        }
        let owner = charge_new(layout.size() as i64);
        // SAFETY: `base` points to `outer.size() >= header` bytes, so
        // `base + header` is within (or one past the end of) the
        // allocation, and the owner record (8 bytes, alignment 8) fits in
        // the `HEADER` (8) bytes before it, which are aligned to 8 because
        // `base` is (the outer alignment is at least the record's) and
        // `header` is a multiple of 8.
        unsafe {
            let user = base.add(header);
            user.sub(HEADER).cast::<Owner>().write(owner);
            user
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` or `realloc` with this layout, so
        // the outer layout was computed and found valid then (`known_outer`),
        // the owner record sits `HEADER` bytes before `ptr` and the
        // allocation starts `header` bytes before it.
        unsafe {
            let (outer, header) = Self::known_outer(layout);
            let owner = ptr.sub(HEADER).cast::<Owner>().read();
            charge(owner, -(layout.size() as i64));
            self.inner.dealloc(ptr.sub(header), outer);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Some((outer, header)) = Self::outer(layout) else {
            return std::ptr::null_mut();
        };
        // The new outer size, rounded up to the alignment, must be a valid
        // layout for `inner` too (at most `isize::MAX`): the caller's
        // promise covers `new_size`, not `new_size` plus the header.
        let Some(new_outer_size) = new_size
            .checked_add(header)
            .filter(|&size| Layout::from_size_align(size, outer.align()).is_ok())
        else {
            return std::ptr::null_mut();
        };
        // SAFETY: as in `dealloc`, `ptr - header` is the pointer `inner`
        // returned for `outer`; the header size depends only on the
        // alignment, which `realloc` keeps, so the owner record moves with
        // the data and stays `HEADER` bytes before the new user pointer.
        unsafe {
            let owner = ptr.sub(HEADER).cast::<Owner>().read();
            let base = self.inner.realloc(ptr.sub(header), outer, new_outer_size);
            if base.is_null() {
                return base;
            }
            charge(owner, new_size as i64 - layout.size() as i64);
            base.add(header)
        }
    }
}

/// Runs an allocation-heavy loop through `allocator`: `rounds` times,
/// allocates each of `sizes` (8-byte aligned), writes and reads one byte of
/// it, and frees it. Returns the sum of the bytes read, so the work cannot be
/// optimised away.
///
/// This is how the benchmarks compare [`Accounting`] with the allocator it
/// wraps on equal terms; it also measures either in your own environment.
///
/// # Examples
///
/// ```
/// use compartment::alloc::{Accounting, churn};
/// use std::alloc::System;
///
/// assert_eq!(churn(&System, &[16, 64], 10), 20 * 7);
/// assert_eq!(churn(&Accounting::new(System), &[16, 64], 10), 20 * 7);
/// ```
pub fn churn<A: GlobalAlloc>(allocator: &A, sizes: &[usize], rounds: usize) -> u64 {
    let mut sum = 0u64;
    for _ in 0..rounds {
        for &size in sizes {
            let Ok(layout) = Layout::from_size_align(size.max(1), 8) else {
                continue;
            };
            // SAFETY: `layout` has a non-zero size. A non-null result points
            // to at least `size.max(1)` writable bytes, of which the first is
            // written before it is read, and it is freed once, with the same
            // layout, by the allocator that returned it.
            unsafe {
                // Opaque to the optimiser, which would otherwise drop an
                // allocation it can see is freed unused.
                let ptr = std::hint::black_box(allocator.alloc(layout));
                if ptr.is_null() {
                    continue;
                }
                ptr.write(7);
                sum += u64::from(std::hint::black_box(ptr).read());
                allocator.dealloc(ptr, layout);
            }
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use std::alloc::System;
    use std::sync::atomic::AtomicUsize;

    use super::*;

    #[test]
    fn a_local_accounting_allocator_does_not_count_as_installed() {
        // This test binary's global allocator is the system's.
        assert_eq!(churn(&Accounting::new(System), &[16, 4096], 100), 200 * 7);
        assert!(!installed());
        assert!(MemorySlot::claim().is_none());
    }

    #[test]
    fn every_alignment_keeps_its_alignment_and_its_bytes_across_realloc() {
        let accounting = Accounting::new(System);
        for align in [1usize, 2, 4, 8, 16, 32, 64, 4096] {
            for size in [1usize, 7, 8, 16, 24, 1024, 1032, 5000] {
                let layout = Layout::from_size_align(size, align).unwrap();
                // SAFETY: non-zero sizes; each block is written within its
                // size, reallocated with the layout it has, and freed once
                // with the layout it has then.
                unsafe {
                    let ptr = accounting.alloc(layout);
                    assert!(!ptr.is_null());
                    assert_eq!(ptr as usize % align, 0, "align {align}, size {size}");
                    for i in 0..size {
                        ptr.add(i).write((i % 251) as u8);
                    }
                    let grown_size = size * 3 + 5;
                    let grown = accounting.realloc(ptr, layout, grown_size);
                    assert!(!grown.is_null());
                    assert_eq!(grown as usize % align, 0, "align {align}, size {size}");
                    for i in 0..size {
                        assert_eq!(grown.add(i).read(), (i % 251) as u8);
                    }
                    accounting.dealloc(grown, Layout::from_size_align(grown_size, align).unwrap());
                }
            }
        }
    }

    #[test]
    fn generation_and_count_pack_into_one_word() {
        for (generation, held) in [(0, 0), (1, 4096), (0xffff, -64), (7, (1 << 47) - 1)] {
            let state = state_of(generation, held);
            assert_eq!(generation_of(state), generation);
            assert_eq!(held_of(state), held);
        }
    }

    /// An allocator that records any layout it is handed that is not valid.
    struct Strict {
        invalid: AtomicUsize,
    }

    // SAFETY: forwards to the system allocator unchanged; only counts.
    unsafe impl GlobalAlloc for Strict {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            // SAFETY: the caller's contract is forwarded as is.
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: as above.
            unsafe { System.dealloc(ptr, layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            if Layout::from_size_align(new_size, layout.align()).is_err() {
                self.invalid.fetch_add(1, Ordering::Relaxed);
                return std::ptr::null_mut();
            }
            // SAFETY: as above, and the new layout was just checked.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    #[test]
    fn realloc_near_the_size_limit_never_hands_the_inner_allocator_an_invalid_layout() {
        let accounting = Accounting::new(Strict {
            invalid: AtomicUsize::new(0),
        });
        let layout = Layout::from_size_align(64, 16).unwrap();
        // The largest size the caller may ask for at this alignment.
        let new_size = isize::MAX as usize - 15;
        assert!(Layout::from_size_align(new_size, 16).is_ok());
        // SAFETY: `layout` has a non-zero size; the pointer is reallocated
        // with the layout it was allocated with and freed once, with the
        // layout it has after the failed realloc (which leaves it as it was).
        unsafe {
            let ptr = accounting.alloc(layout);
            assert!(!ptr.is_null());
            let grown = accounting.realloc(ptr, layout, new_size);
            assert!(grown.is_null(), "no machine has that much memory");
            accounting.dealloc(ptr, layout);
        }
        assert_eq!(accounting.inner.invalid.load(Ordering::Relaxed), 0);
    }
}
