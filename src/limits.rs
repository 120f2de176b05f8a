//! Resource limits: CPU budget, wall-clock deadline and memory quota per
//! instance, enforced by one watchdog per supervision tree.
//!
//! | limit | measured by | enforced |
//! |---|---|---|
//! | CPU time, per instance or per rolling period | the CPU clocks of the instance thread and of the threads it started with [`Context::spawn`](crate::Context::spawn) (`/proc/self/task/TID/schedstat`), read by the watchdog | cooperatively: the instance is cancelled and faulted with `BudgetExceeded`; one that does not stop within its shutdown timeout is a runaway — revoked, detached, counted |
//! | wall-clock deadline | the tree's clock | the same way |
//! | memory quota | the [`Accounting`](crate::alloc::Accounting) allocator, on the instance thread and its own threads | the same way; the allocation itself cannot fail safely |
//! | threads of its own | counted by [`Context::spawn`](crate::Context::spawn) | one more is refused with [`SpawnError::Limit`](crate::SpawnError::Limit) |
//!
//! Limits re-arm with every instance: a restarted instance starts with no
//! CPU used, no memory held and a new deadline. [`ChildStatus::usage`]
//! shows CPU used, memory held and what is left.
//!
//! What only a process boundary can enforce: a hard memory cap (an
//! allocation beyond it must fail, which Rust cannot survive in-process), a
//! CPU cap on code that never yields to cancellation (a thread cannot be
//! killed), and anything unsafe code does.
//!
//! [`ChildStatus::usage`]: crate::supervisor::ChildStatus::usage

pub(crate) mod watchdog;

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use crate::alloc::MemorySlot;

/// The limits of one child, applied to each of its instances.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use compartment::Limits;
///
/// let limits = Limits::new()
///     .cpu(Duration::from_secs(2))
///     .cpu_per(Duration::from_millis(500), Duration::from_secs(1))
///     .deadline(Duration::from_secs(30))
///     .memory(64 << 20);
/// assert_eq!(limits.memory_quota(), Some(64 << 20));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Limits {
    cpu: Option<Duration>,
    cpu_per: Option<(Duration, Duration)>,
    deadline: Option<Duration>,
    memory: Option<u64>,
    threads: Option<usize>,
}

impl Limits {
    /// No limits.
    pub fn new() -> Self {
        Self::default()
    }

    /// At most `budget` of CPU time per instance.
    #[must_use]
    pub fn cpu(mut self, budget: Duration) -> Self {
        self.cpu = Some(budget);
        self
    }

    /// At most `budget` of CPU time in any rolling `period`.
    #[must_use]
    pub fn cpu_per(mut self, budget: Duration, period: Duration) -> Self {
        self.cpu_per = Some((budget, period));
        self
    }

    /// At most `deadline` of wall-clock time (on the tree's clock) per
    /// instance.
    #[must_use]
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// At most `bytes` held at once; needs the
    /// [`Accounting`](crate::alloc::Accounting) global allocator.
    #[must_use]
    pub fn memory(mut self, bytes: u64) -> Self {
        self.memory = Some(bytes);
        self
    }

    /// At most `count` threads of its own running at once per instance,
    /// started with [`Context::spawn`](crate::Context::spawn); one more is
    /// refused with [`SpawnError::Limit`](crate::SpawnError::Limit). Zero
    /// allows none.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::Limits;
    ///
    /// let limits = Limits::new().threads(4);
    /// assert_eq!(limits.thread_limit(), Some(4));
    /// ```
    #[must_use]
    pub fn threads(mut self, count: usize) -> Self {
        self.threads = Some(count);
        self
    }

    /// The limit on an instance's own threads.
    pub fn thread_limit(&self) -> Option<usize> {
        self.threads
    }

    /// The CPU budget per instance.
    pub fn cpu_budget(&self) -> Option<Duration> {
        self.cpu
    }

    /// The CPU budget per rolling period.
    pub fn cpu_rate(&self) -> Option<(Duration, Duration)> {
        self.cpu_per
    }

    /// The wall-clock deadline.
    pub fn wall_deadline(&self) -> Option<Duration> {
        self.deadline
    }

    /// The memory quota in bytes.
    pub fn memory_quota(&self) -> Option<u64> {
        self.memory
    }

    /// Whether any limit is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Whether a limit needs the watchdog (CPU, deadline, memory); the
    /// thread limit is checked when a thread is spawned.
    /// These limits but the memory quota (a child that holds its memory
    /// itself: a wasm module's linear memory).
    #[cfg_attr(
        not(all(feature = "wasm", target_os = "linux")),
        allow(dead_code, reason = "used by the wasm tier")
    )]
    pub(crate) fn without_memory(self) -> Limits {
        Limits {
            memory: None,
            ..self
        }
    }

    pub(crate) fn is_watched(&self) -> bool {
        Self {
            threads: None,
            ..*self
        } != Self::default()
    }

    pub(crate) fn validate(&self) -> Result<(), &'static str> {
        if self.cpu.is_some_and(|d| d.is_zero())
            || self.deadline.is_some_and(|d| d.is_zero())
            || self.memory == Some(0)
        {
            return Err("a limit of zero would fault every instance at once");
        }
        if let Some((budget, period)) = self.cpu_per
            && (budget.is_zero() || period.is_zero() || budget > period)
        {
            return Err("a CPU rate needs a non-zero budget no larger than its period");
        }
        Ok(())
    }
}

/// Which limit an instance exceeded, with the figures the watchdog saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Budget {
    /// CPU time over the per-instance budget.
    Cpu {
        /// CPU time used when the watchdog looked.
        used: Duration,
        /// The budget.
        limit: Duration,
    },
    /// CPU time over the budget within a rolling period.
    CpuRate {
        /// CPU time used within the period when the watchdog looked.
        used: Duration,
        /// The budget per period.
        limit: Duration,
        /// The period.
        period: Duration,
    },
    /// The wall-clock deadline passed.
    Deadline {
        /// The deadline.
        limit: Duration,
    },
    /// Memory held over the quota.
    Memory {
        /// Bytes held when the watchdog looked; for a wasm module, the
        /// linear memory it asked to grow to.
        held: u64,
        /// The quota.
        limit: u64,
    },
}

impl fmt::Display for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Budget::Cpu { used, limit } => {
                write!(f, "used {used:?} of CPU, over its budget of {limit:?}")
            }
            Budget::CpuRate {
                used,
                limit,
                period,
            } => {
                write!(
                    f,
                    "used {used:?} of CPU within {period:?}, over its budget of {limit:?}"
                )
            }
            Budget::Deadline { limit } => write!(f, "ran past its deadline of {limit:?}"),
            Budget::Memory { held, limit } => {
                write!(f, "held {held} bytes, over its quota of {limit} bytes")
            }
        }
    }
}

/// An instance's resource use, as the watchdog last measured it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Usage {
    /// CPU time used by the instance's thread.
    pub cpu: Duration,
    /// Bytes held, when the accounting allocator is installed.
    pub memory: Option<u64>,
    /// CPU budget left.
    pub cpu_left: Option<Duration>,
    /// Memory quota left.
    pub memory_left: Option<u64>,
}

/// One instance's measurements, shared by its thread, the watchdog and the
/// status board.
#[derive(Debug)]
pub(crate) struct Meter {
    limits: Limits,
    /// The instance thread's kernel thread id, once it runs.
    tid: AtomicI32,
    cpu_ns: AtomicU64,
    memory: Mutex<Option<MemorySlot>>,
    exceeded: Mutex<Option<Budget>>,
    finished: AtomicBool,
    /// The instance runs on a thread that ran earlier instances (an
    /// in-place restart): its CPU clock does not start at zero.
    reused_thread: bool,
    /// Threads the instance spawned through its context.
    spawned: Mutex<Spawned>,
}

/// The CPU of an instance's own threads: the live ones by thread id (read by
/// the watchdog), the ended ones as the total they used.
#[derive(Debug, Default)]
struct Spawned {
    live: Vec<i32>,
    ended: Duration,
}

impl Meter {
    pub(crate) fn new(limits: Limits, memory: Option<MemorySlot>, reused_thread: bool) -> Self {
        Self {
            limits,
            tid: AtomicI32::new(0),
            cpu_ns: AtomicU64::new(0),
            memory: Mutex::new(memory),
            exceeded: Mutex::new(None),
            finished: AtomicBool::new(false),
            reused_thread,
            spawned: Mutex::new(Spawned::default()),
        }
    }

    pub(crate) fn reused_thread(&self) -> bool {
        self.reused_thread
    }

    pub(crate) fn limits(&self) -> Limits {
        self.limits
    }

    /// Called on the instance thread before the entry runs.
    pub(crate) fn enter(&self) {
        self.tid.store(current_tid(), Ordering::Release);
        if let Some(slot) = &*self.memory.lock() {
            slot.enter();
        }
    }

    /// Called on the instance thread when the entry has returned: retires
    /// the memory slot and stops the watchdog looking.
    /// Called on a thread the instance spawned, before its work runs: its
    /// CPU and memory count toward the instance. Returns its thread id.
    pub(crate) fn enter_spawned(&self) -> i32 {
        let tid = current_tid();
        self.spawned.lock().live.push(tid);
        if let Some(slot) = &*self.memory.lock() {
            slot.enter();
        }
        tid
    }

    /// Called on a spawned thread when its work is done, with the CPU it
    /// used: from now on that figure stands in for reading its clock.
    pub(crate) fn leave_spawned(&self, tid: i32, cpu: Duration) {
        MemorySlot::leave();
        let mut spawned = self.spawned.lock();
        spawned.live.retain(|live| *live != tid);
        spawned.ended += cpu;
    }

    /// CPU used by the instance's own threads: `read` for each live one,
    /// plus what the ended ones used. One lock, so a thread that ends
    /// meanwhile is counted once.
    pub(crate) fn spawned_cpu(&self, read: impl Fn(i32) -> Option<Duration>) -> Duration {
        let spawned = self.spawned.lock();
        spawned
            .live
            .iter()
            .filter_map(|tid| read(*tid))
            .fold(spawned.ended, |total, cpu| total + cpu)
    }

    pub(crate) fn finish(&self) {
        self.finished.store(true, Ordering::Release);
        drop(self.memory.lock().take());
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.finished.load(Ordering::Acquire)
    }

    pub(crate) fn tid(&self) -> i32 {
        self.tid.load(Ordering::Acquire)
    }

    pub(crate) fn cpu(&self) -> Duration {
        Duration::from_nanos(self.cpu_ns.load(Ordering::Relaxed))
    }

    pub(crate) fn set_cpu(&self, cpu: Duration) {
        self.cpu_ns.store(
            u64::try_from(cpu.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    pub(crate) fn memory_held(&self) -> Option<u64> {
        self.memory.lock().as_ref().map(|slot| slot.held() as u64)
    }

    /// Records the first budget exceeded; `false` if one already was.
    pub(crate) fn exceed(&self, budget: Budget) -> bool {
        let mut exceeded = self.exceeded.lock();
        if exceeded.is_some() {
            return false;
        }
        *exceeded = Some(budget);
        true
    }

    pub(crate) fn exceeded(&self) -> Option<Budget> {
        *self.exceeded.lock()
    }

    pub(crate) fn usage(&self) -> Usage {
        let cpu = self.cpu();
        let memory = self.memory_held();
        Usage {
            cpu,
            memory,
            cpu_left: self.limits.cpu.map(|limit| limit.saturating_sub(cpu)),
            memory_left: self
                .limits
                .memory
                .zip(memory)
                .map(|(limit, held)| limit.saturating_sub(held)),
        }
    }
}

/// The calling thread's kernel id (0 where there is none to read).
fn current_tid() -> i32 {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    return rustix::thread::gettid().as_raw_nonzero().get();
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    0
}

/// CPU time the calling thread has used.
pub(crate) fn own_cpu() -> Duration {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let spent = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
        Duration::new(
            u64::try_from(spent.tv_sec).unwrap_or(0),
            u32::try_from(spent.tv_nsec).unwrap_or(0),
        )
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    Duration::ZERO
}
