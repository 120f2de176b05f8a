//! `Accounting`: a global allocator that attributes memory to components,
//! for memory quotas.
//!
//! This is the crate's one module with `unsafe` code: implementing
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
//! Each allocation costs a header of 16 bytes (more for over-aligned
//! layouts) and a thread-local update; every 64 KiB, one atomic add.

#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, Ordering};

/// How many instances can be accounted at once.
const SLOTS: usize = 4096;

/// Bytes reserved before each allocation for its owner.
const HEADER: usize = 16;

/// One accounted instance: its generation and the bytes it holds.
struct Slot {
    generation: AtomicU32,
    in_use: AtomicBool,
    held: AtomicI64,
}

#[allow(
    clippy::declare_interior_mutable_const,
    reason = "used only to initialise the static table"
)]
const EMPTY: Slot = Slot {
    generation: AtomicU32::new(0),
    in_use: AtomicBool::new(false),
    held: AtomicI64::new(0),
};

static TABLE: [Slot; SLOTS] = [EMPTY; SLOTS];

/// Whether an `Accounting` allocator is installed (set on its first use).
static INSTALLED: AtomicBool = AtomicBool::new(false);

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

/// The owner recorded in an allocation's header.
#[derive(Clone, Copy)]
#[repr(C)]
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
        if !INSTALLED.load(Ordering::Relaxed) {
            return None;
        }
        for (index, slot) in TABLE.iter().enumerate() {
            if slot
                .in_use
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                let generation = slot
                    .generation
                    .fetch_add(1, Ordering::AcqRel)
                    .wrapping_add(1);
                slot.held.store(0, Ordering::Release);
                return Some(Self {
                    index: index as u32,
                    generation,
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

    /// Bytes this instance holds now.
    pub(crate) fn held(&self) -> i64 {
        TABLE[self.index as usize]
            .held
            .load(Ordering::Relaxed)
            .max(0)
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
        // Retire the generation first: frees of what this instance leaves
        // behind no longer match it.
        slot.generation.fetch_add(1, Ordering::AcqRel);
        slot.held.store(0, Ordering::Release);
        slot.in_use.store(false, Ordering::Release);
    }
}

/// Charges `bytes` (negative for a free) to `owner`: batched in the
/// thread-local when this thread runs the owning instance, straight to the
/// shared counter otherwise (a free elsewhere).
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
    if slot.generation.load(Ordering::Relaxed) == owner.generation {
        slot.held.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// The header's size for `layout`: at least [`HEADER`], and a multiple of
/// the alignment so the user pointer stays aligned.
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
    /// an alignment of at least 16 so the owner record is aligned too.
    fn outer(layout: Layout) -> Option<(Layout, usize)> {
        let header = header_for(layout);
        let size = layout.size().checked_add(header)?;
        Some((
            Layout::from_size_align(size, layout.align().max(HEADER)).ok()?,
            header,
        ))
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
        // Read before writing: every thread allocates, and a store each time
        // would bounce the cache line between cores.
        if !INSTALLED.load(Ordering::Relaxed) {
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
        // allocation, and the owner record (8 bytes, alignment 4) fits in
        // the 16 bytes before it, which are 16-aligned because `base` and
        // `header` are multiples of 16.
        unsafe {
            let user = base.add(header);
            user.sub(HEADER).cast::<Owner>().write(owner);
            user
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let Some((outer, header)) = Self::outer(layout) else {
            return;
        };
        // SAFETY: `ptr` came from `alloc` or `realloc` with this layout, so
        // the owner record sits 16 bytes before it and the allocation starts
        // `header` bytes before it.
        unsafe {
            let owner = ptr.sub(HEADER).cast::<Owner>().read();
            charge(owner, -(layout.size() as i64));
            self.inner.dealloc(ptr.sub(header), outer);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Some((outer, header)) = Self::outer(layout) else {
            return std::ptr::null_mut();
        };
        let Some(new_outer_size) = new_size.checked_add(header) else {
            return std::ptr::null_mut();
        };
        // SAFETY: as in `dealloc`, `ptr - header` is the pointer `inner`
        // returned for `outer`; the header size depends only on the
        // alignment, which `realloc` keeps, so the owner record moves with
        // the data and stays 16 bytes before the new user pointer.
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
                let ptr = allocator.alloc(layout);
                if ptr.is_null() {
                    continue;
                }
                ptr.write(7);
                sum += u64::from(ptr.read());
                allocator.dealloc(ptr, layout);
            }
        }
    }
    sum
}
