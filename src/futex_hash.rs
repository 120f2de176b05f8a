//! The kernel's futex hash for this process, grown with the crate's threads.
//!
//! A parked thread waits on a futex, and the kernel finds a futex's waiters
//! through a hash of buckets, each a list that every wake in it walks.
//! Since Linux 6.17 a multithreaded process has a hash of its own, sized by
//! its CPUs (four buckets a CPU, at least 16) and not by its threads: on a
//! machine with two CPUs, 10,000 idle components leave some 625 waiters in
//! each of 16 buckets, and every wake in the process (a message, a stop, a
//! restart) walks one of those lists. A hand-off between two threads beside
//! 10,000 parked ones cost 15 µs on that machine with 16 buckets, and 6 µs
//! (what it costs beside none) with 16,384.
//!
//! So once the crate runs more than [`WAITERS_PER_BUCKET`] threads for each
//! bucket, it asks the kernel (`prctl(PR_FUTEX_HASH,
//! PR_FUTEX_HASH_SET_SLOTS)`) for [`BUCKETS_PER_THREAD`] buckets a thread,
//! rounded up to a power of two: about 256 KiB of kernel memory for 2,000
//! threads. The hash only ever grows. A process that chose the shared,
//! system-wide hash (zero slots) is left on it; a kernel without the call is
//! asked once; a thread whose kernel policy refuses the call (a locked-down
//! thread may not change the process) leaves it to the next thread spawned.
//!
//! The kernel replaces the hash after a grace period (13–44 ms measured
//! here), so a new thread that finds the threshold crossed makes the call
//! itself, before its body runs, and threads starting meanwhile go on
//! without looking. The supervisor that spawned it goes on too, unless it
//! waits for that thread's start (a nested supervisor's, or a locked-down
//! instance's that is not started by its carrier): then it waits that once.
//!
//! The two calls are the crate's only `unsafe` code outside the allocator
//! and the process tier: `prctl` has no safe binding for this option.
#![allow(unsafe_code)]

use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

/// Waiters a bucket may hold on average before the hash is grown.
/// A thousand parked threads in 16 buckets (about 62 each) cost a hand-off
/// nothing measurable here; ten thousand (625 each) more than doubled it.
pub(crate) const WAITERS_PER_BUCKET: u64 = 64;

/// Buckets asked for each live crate thread when the hash is grown.
pub(crate) const BUCKETS_PER_THREAD: u64 = 2;

/// The kernel's smallest private hash.
const KERNEL_DEFAULT_SLOTS: u64 = 16;

/// Crate threads running now.
static LIVE: AtomicU64 = AtomicU64::new(0);

/// Live crate threads above which the hash is looked at again; `u64::MAX`
/// for good once there is nothing to do (no such call, or the process is
/// on the shared hash).
static LOOK_ABOVE: AtomicU64 = AtomicU64::new(KERNEL_DEFAULT_SLOTS * WAITERS_PER_BUCKET);

/// Held by the one thread looking at the hash; the others go on.
static LOOKING: Mutex<()> = Mutex::new(());

/// What to do about the hash, given the live threads and what the kernel
/// said it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// Ask for this many slots; look again above `then`.
    Grow { slots: u64, then: u64 },
    /// Large enough (the application or an earlier call made it so).
    Keep { then: u64 },
    /// Never look again.
    LeaveAlone,
}

/// Decides from the live thread count and the hash's slots (0: the shared
/// hash).
fn plan(live: u64, slots: u64) -> Plan {
    if slots == 0 {
        return Plan::LeaveAlone;
    }
    let room = slots.saturating_mul(WAITERS_PER_BUCKET);
    if room >= live {
        return Plan::Keep { then: room };
    }
    let slots = live
        .saturating_mul(BUCKETS_PER_THREAD)
        .checked_next_power_of_two()
        .unwrap_or(1 << 63);
    Plan::Grow {
        slots,
        then: slots.saturating_mul(WAITERS_PER_BUCKET),
    }
}

/// Why the kernel did not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// No such call (before Linux 6.17, or not Linux), or it failed in a way
    /// asking again would not change.
    Unsupported,
    /// The calling thread's policy refused it; another thread may not be.
    Policy,
}

/// One crate thread counted while it lives.
#[must_use = "the thread counts until this is dropped"]
pub(crate) struct Counted(());

impl Drop for Counted {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Counts the calling thread (a crate thread, before its body runs), and
/// grows the hash when this thread finds the threshold crossed and nobody
/// else looking.
pub(crate) fn thread_started() -> Counted {
    let live = LIVE.fetch_add(1, Ordering::AcqRel) + 1;
    if live > LOOK_ABOVE.load(Ordering::Acquire)
        && let Some(_looking) = LOOKING.try_lock()
    {
        let above = LOOK_ABOVE.load(Ordering::Acquire);
        if live > above {
            let then = match kernel::slots().map(|slots| plan(live, slots)) {
                Err(Refusal::Policy) => above,
                Err(Refusal::Unsupported) | Ok(Plan::LeaveAlone) => u64::MAX,
                Ok(Plan::Keep { then }) => then,
                Ok(Plan::Grow { slots, then }) => match kernel::set_slots(slots) {
                    Ok(()) => then,
                    Err(Refusal::Policy) => above,
                    Err(Refusal::Unsupported) => u64::MAX,
                },
            };
            LOOK_ABOVE.store(then, Ordering::Release);
        }
    }
    Counted(())
}

#[cfg(target_os = "linux")]
mod kernel {
    use super::Refusal;

    const PR_FUTEX_HASH: libc::c_int = 78;
    const PR_FUTEX_HASH_SET_SLOTS: libc::c_ulong = 1;
    const PR_FUTEX_HASH_GET_SLOTS: libc::c_ulong = 2;

    /// The process's futex hash slots; 0 for the shared hash.
    pub(super) fn slots() -> Result<u64, Refusal> {
        // SAFETY: this `prctl` option takes plain integers and reads or
        // writes no memory of the caller's; unused arguments are zero, as
        // the kernel requires.
        let answer = unsafe { libc::prctl(PR_FUTEX_HASH, PR_FUTEX_HASH_GET_SLOTS, 0, 0, 0) };
        u64::try_from(answer).map_err(|_| refusal())
    }

    /// Asks for a private hash of `slots` buckets (a power of two).
    pub(super) fn set_slots(slots: u64) -> Result<(), Refusal> {
        let slots = libc::c_ulong::try_from(slots).map_err(|_| Refusal::Unsupported)?;
        // SAFETY: as in `slots`: integers only, the flags argument zero.
        let answer = unsafe { libc::prctl(PR_FUTEX_HASH, PR_FUTEX_HASH_SET_SLOTS, slots, 0, 0) };
        if answer == 0 { Ok(()) } else { Err(refusal()) }
    }

    fn refusal() -> Refusal {
        match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::EPERM | libc::EACCES | libc::EINTR) => Refusal::Policy,
            _ => Refusal::Unsupported,
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod kernel {
    use super::Refusal;

    pub(super) fn slots() -> Result<u64, Refusal> {
        Err(Refusal::Unsupported)
    }

    pub(super) fn set_slots(_: u64) -> Result<(), Refusal> {
        Err(Refusal::Unsupported)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_few_threads_leave_the_hash_alone() {
        assert_eq!(plan(1, 16), Plan::Keep { then: 1024 });
        assert_eq!(plan(1024, 16), Plan::Keep { then: 1024 });
    }

    #[test]
    fn many_threads_grow_it_to_two_buckets_each_and_look_again_far_above() {
        assert_eq!(
            plan(1025, 16),
            Plan::Grow {
                slots: 4096,
                then: 4096 * WAITERS_PER_BUCKET
            }
        );
        assert_eq!(
            plan(10_000, 16),
            Plan::Grow {
                slots: 32_768,
                then: 32_768 * WAITERS_PER_BUCKET
            }
        );
    }

    #[test]
    fn a_larger_hash_is_kept_and_the_shared_one_left_alone() {
        // The application (or a machine with many CPUs) made it large.
        assert_eq!(
            plan(10_000, 1 << 14),
            Plan::Keep {
                then: (1 << 14) * WAITERS_PER_BUCKET
            }
        );
        assert_eq!(plan(10_000, 0), Plan::LeaveAlone);
    }

    #[test]
    #[allow(clippy::print_stdout, reason = "a test that skips says why")]
    fn the_kernel_grows_the_hash_when_a_crate_thread_crosses_the_threshold() {
        let Ok(before) = kernel::slots() else {
            println!("skipped: this kernel has no private futex hash (PR_FUTEX_HASH, Linux 6.17)");
            return;
        };
        // The kernel sizes the first hash by the CPUs: 16 buckets up to four
        // CPUs, 64 on sixteen.
        if !(KERNEL_DEFAULT_SLOTS..=64).contains(&before) {
            println!("skipped: the hash has {before} slots already, too many threads to cross");
            return;
        }
        // Enough crate threads, all parked, to cross the threshold whatever
        // the other tests run meanwhile.
        let threads = (before * WAITERS_PER_BUCKET + 1) as usize;
        let (release, parked) = crossbeam_channel::bounded::<()>(0);
        let (started, starts) = crossbeam_channel::unbounded();
        let handles: Vec<_> = (0..threads)
            .map(|n| {
                let parked = parked.clone();
                let started = started.clone();
                crate::ceiling::spawn(format!("futex-hash-{n}"), move || {
                    started.send(()).unwrap();
                    let _ = parked.recv();
                })
                .expect("room for the test's threads")
            })
            .collect();
        // Every thread looked before its body ran, and the last ones saw
        // the threshold crossed: one of them grew the hash, or found
        // another thread growing it, which holds `LOOKING` until done.
        for _ in 0..threads {
            starts.recv().unwrap();
        }
        let after = {
            let _done = LOOKING.lock();
            kernel::slots().unwrap()
        };
        drop(release);
        for handle in handles {
            handle.join().unwrap();
        }
        assert!(
            after >= (threads as u64 * BUCKETS_PER_THREAD).next_power_of_two(),
            "{before} slots before, {after} after {threads} threads"
        );
    }
}
