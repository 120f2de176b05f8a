//! The process's ceilings on threads and memory maps, checked before the
//! crate spawns a thread.
//!
//! Every thread costs the process a few memory maps (its stack and guard
//! page, and the alternate signal stack and guard page the standard library
//! sets up for it), and a process may hold at most `vm.max_map_count` maps
//! (65,530 by default). When a new thread cannot map its signal stack, the
//! standard library aborts the whole process from inside the thread, where
//! nothing can catch it. So every crate thread is admitted here first: a
//! spawn that would pass the ceiling fails with [`Ceiling`] instead.
//!
//! Counting the maps reads `/proc/self/maps`, which costs time in
//! proportion to the maps (about 10 ms beside 10,000 threads); so the
//! count is taken again only once half the room it showed may be used up,
//! which keeps a large pool's start linear. A crate thread that ends gives
//! its share back: its stack goes to the C library's cache, where the next
//! thread takes it, so threads that come and go (restarts on fresh
//! threads, members added and removed) use up no room and cause no count.
//! Threads spawned but not yet running (on a loaded machine, thousands may
//! wait for a core) have not mapped their signal stacks yet: a count adds
//! their share.
//! Where the count cannot be read (off Linux, or on a thread whose kernel
//! policy hides `/proc`), the last count plus what was spawned since stands
//! in for it.

use std::fmt;
use std::io;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use parking_lot::Mutex;

/// Memory maps a thread costs, counted generously: stack, its guard page,
/// the alternate signal stack and its guard page, and a share of the
/// allocator's per-thread arenas.
const MAPS_PER_THREAD: u64 = 5;

/// Maps left for everything else the process does (allocations, files).
const RESERVE: u64 = 1024;

/// A ceiling of the process that a start would pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Ceiling {
    /// The kernel's limit on memory maps per process (`vm.max_map_count`):
    /// one more thread would leave too few.
    MemoryMaps {
        /// The limit.
        limit: u64,
        /// Maps in use when the start was refused.
        in_use: u64,
    },
    /// The kernel refused another thread (`kernel.threads-max`, the user's
    /// process limit, or the process's `pids` cgroup).
    Threads {
        /// `kernel.threads-max`, where it could be read.
        limit: Option<u64>,
    },
}

impl fmt::Display for Ceiling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ceiling::MemoryMaps { limit, in_use } => write!(
                f,
                "the process's memory-map ceiling: {in_use} of {limit} maps (vm.max_map_count) in use, too few left for another thread"
            ),
            Ceiling::Threads { limit: Some(limit) } => write!(
                f,
                "the process's thread ceiling: the kernel refused another thread (kernel.threads-max is {limit})"
            ),
            Ceiling::Threads { limit: None } => {
                f.write_str("the process's thread ceiling: the kernel refused another thread")
            }
        }
    }
}

/// Why [`spawn`] did not start a thread.
#[derive(Debug)]
pub(crate) enum Refused {
    Ceiling(Ceiling),
    Spawn(io::Error),
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::Ceiling(ceiling) => ceiling.fmt(f),
            Refused::Spawn(err) => err.fmt(f),
        }
    }
}

/// `vm.max_map_count`, read once; `None` where there is no such limit.
static MAP_LIMIT: OnceLock<Option<u64>> = OnceLock::new();

/// What the last count of maps said, and what was admitted since.
#[derive(Debug)]
struct Estimate {
    /// Maps at the last count.
    counted: u64,
    /// Threads admitted since that count, less those that ended since.
    since: u64,
    /// Threads that may still be admitted before counting again.
    budget: u64,
}

impl Estimate {
    /// Admits one more thread under `limit`, counting the maps (`count`)
    /// only once the budget is spent; `pending` threads spawned but not
    /// yet running are added to a count.
    fn admit(
        &mut self,
        limit: u64,
        count: impl FnOnce() -> Option<u64>,
        pending: impl FnOnce() -> u64,
    ) -> Result<(), Ceiling> {
        if self.budget > 0 {
            self.budget -= 1;
            self.since += 1;
            return Ok(());
        }
        let in_use = match count() {
            Some(counted) => {
                self.counted = counted + pending() * MAPS_PER_THREAD;
                self.since = 0;
                self.counted
            }
            None => self.counted + self.since * MAPS_PER_THREAD,
        };
        let room = limit.saturating_sub(in_use).saturating_sub(RESERVE);
        let threads = room / MAPS_PER_THREAD;
        if threads == 0 {
            return Err(Ceiling::MemoryMaps { limit, in_use });
        }
        self.budget = threads / 2;
        self.since += 1;
        Ok(())
    }

    /// A crate thread has ended: one share of what was admitted since the
    /// last count is room again (when nothing was, the count stands until
    /// the next one sees the thread gone).
    fn release(&mut self) {
        if self.since > 0 {
            self.since -= 1;
            self.budget += 1;
        }
    }
}

static ESTIMATE: Mutex<Estimate> = Mutex::new(Estimate {
    counted: 0,
    since: 0,
    budget: 0,
});

/// Threads spawned that have not started running yet. A new thread maps
/// its alternate signal stack and guard page only once it runs, which on a
/// loaded machine can be long after it was spawned: a count of the maps
/// taken meanwhile does not show them, so they are added to it.
static PENDING: AtomicU64 = AtomicU64::new(0);

/// Admits one more thread, or names the ceiling it would pass.
fn admit() -> Result<(), Ceiling> {
    let Some(limit) = *MAP_LIMIT.get_or_init(read_max_map_count) else {
        return Ok(());
    };
    ESTIMATE
        .lock()
        .admit(limit, count_maps, || PENDING.load(Ordering::Acquire))
}

/// Gives an admitted thread's share back when the thread ends (its body
/// returns or unwinds).
struct Admitted;

impl Drop for Admitted {
    fn drop(&mut self) {
        ESTIMATE.lock().release();
    }
}

/// Spawns a named thread once [`admit`] lets it; a kernel refusal for lack
/// of threads is a [`Ceiling::Threads`] too.
pub(crate) fn spawn<T, F>(name: String, body: F) -> Result<JoinHandle<T>, Refused>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    admit().map_err(Refused::Ceiling)?;
    PENDING.fetch_add(1, Ordering::AcqRel);
    // The standard library sets up the thread's signal stack before it runs
    // this: from here on its maps are in any count.
    let started = move || {
        PENDING.fetch_sub(1, Ordering::AcqRel);
        let _admitted = Admitted;
        let _counted = crate::futex_hash::thread_started();
        body()
    };
    #[allow(
        clippy::disallowed_methods,
        reason = "the one place the crate's threads are spawned, after admission"
    )]
    std::thread::Builder::new()
        .name(name)
        .spawn(started)
        .inspect_err(|_| {
            PENDING.fetch_sub(1, Ordering::AcqRel);
            ESTIMATE.lock().release();
        })
        .map_err(|err| match err.kind() {
            io::ErrorKind::WouldBlock => Refused::Ceiling(Ceiling::Threads {
                limit: read_number("/proc/sys/kernel/threads-max"),
            }),
            _ => Refused::Spawn(err),
        })
}

fn read_max_map_count() -> Option<u64> {
    read_number("/proc/sys/vm/max_map_count")
}

#[allow(
    clippy::disallowed_methods,
    reason = "the supervisor side reads its own process's kernel limits"
)]
fn read_number(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Memory maps the process holds now: the lines of `/proc/self/maps`.
#[allow(
    clippy::disallowed_methods,
    reason = "the supervisor side reads its own process's memory maps"
)]
fn count_maps() -> Option<u64> {
    use std::io::Read;
    let mut maps = std::fs::File::open("/proc/self/maps").ok()?;
    let mut buffer = vec![0u8; 64 * 1024];
    let mut lines = 0u64;
    loop {
        match maps.read(&mut buffer) {
            Ok(0) => return Some(lines),
            Ok(n) => lines += buffer[..n].iter().filter(|&&b| b == b'\n').count() as u64,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_a_map_ceiling_and_room_below_it() {
        let limit = read_max_map_count();
        if cfg!(not(target_os = "linux")) {
            assert_eq!(limit, None);
            return;
        }
        let limit = limit.expect("Linux has vm.max_map_count");
        let in_use = count_maps().expect("/proc/self/maps is readable here");
        assert!(in_use > 0 && in_use < limit, "{in_use} of {limit}");
        assert!(admit().is_ok());
    }

    fn fresh() -> Estimate {
        Estimate {
            counted: 0,
            since: 0,
            budget: 0,
        }
    }

    fn uncounted() -> Option<u64> {
        panic!("the maps were counted again")
    }

    #[test]
    fn threads_that_end_give_their_room_back_and_cause_no_count() {
        // Room for 10 threads beyond the reserve: a budget of 5.
        let limit = 100 + RESERVE + 10 * MAPS_PER_THREAD;
        let mut estimate = fresh();
        estimate.admit(limit, || Some(100), || 0).unwrap();
        for _ in 0..4 {
            estimate.admit(limit, uncounted, || 0).unwrap();
        }
        assert_eq!((estimate.since, estimate.budget), (5, 1));
        // A thousand threads that come and go, one at a time.
        for _ in 0..1000 {
            estimate.admit(limit, uncounted, || 0).unwrap();
            estimate.release();
        }
        assert_eq!((estimate.since, estimate.budget), (5, 1));
    }

    #[test]
    fn threads_that_stay_spend_the_budget_and_the_count_finds_the_ceiling() {
        let limit = 100 + RESERVE + 10 * MAPS_PER_THREAD;
        let mut estimate = fresh();
        // The first admission counts, and leaves room for five more
        // before the next count.
        for _ in 0..6 {
            estimate.admit(limit, || Some(100), || 0).unwrap();
        }
        assert_eq!(estimate.budget, 0);
        // The count now finds the six threads' maps: room for four more,
        // two of them before the next count.
        let mut counts = 0;
        let mut count = |maps| {
            counts += 1;
            Some(maps)
        };
        estimate
            .admit(limit, || count(100 + 6 * MAPS_PER_THREAD), || 0)
            .unwrap();
        assert_eq!(estimate.budget, 2);
        // A thread that was in the count ends: nothing comes back until
        // the next count sees it gone.
        let mut counted_before = fresh();
        counted_before.release();
        assert_eq!((counted_before.since, counted_before.budget), (0, 0));
        // Full: the count finds no room at all.
        let full = limit - RESERVE;
        assert!(matches!(
            fresh().admit(limit, || count(full), || 0),
            Err(Ceiling::MemoryMaps { in_use, .. }) if in_use == full
        ));
        assert_eq!(counts, 2);
        // Threads spawned but not yet running count as if they had mapped.
        assert!(fresh().admit(limit, || Some(100), || 10).is_err());
    }

    #[test]
    fn ceilings_say_which_limit_and_the_figures() {
        let maps = Ceiling::MemoryMaps {
            limit: 65530,
            in_use: 65000,
        };
        assert!(maps.to_string().contains("65000 of 65530"), "{maps}");
        let threads = Ceiling::Threads { limit: Some(100) };
        assert!(threads.to_string().contains("threads-max is 100"));
    }
}
