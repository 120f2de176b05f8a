//! The watchdog: one thread per supervision tree that measures every
//! limited instance and cancels the ones over budget.

use std::collections::VecDeque;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::{Budget, Meter};
use crate::runtime_clock::RuntimeClock;
use crate::signal::Signal;

/// One instance the watchdog measures.
pub(crate) struct Watched {
    pub(crate) meter: Arc<Meter>,
    pub(crate) cancel: Arc<Signal>,
    /// When the instance started, on the tree's clock (for its deadline).
    pub(crate) started: Instant,
    /// Tells its supervisor that the instance went over budget (and was
    /// cancelled); called outside the watchdog's lock.
    over_budget: Arc<dyn Fn() + Send + Sync>,
    /// (real time, CPU used) samples within the rolling period.
    samples: VecDeque<(Instant, Duration)>,
    /// The thread's CPU clock when first read, for a thread that ran earlier
    /// instances (CPU the instance used before that reading is not counted).
    baseline: Option<Duration>,
}

impl Watched {
    pub(crate) fn new(
        meter: Arc<Meter>,
        cancel: Arc<Signal>,
        started: Instant,
        over_budget: Arc<dyn Fn() + Send + Sync>,
    ) -> Self {
        Self {
            meter,
            cancel,
            started,
            over_budget,
            samples: VecDeque::new(),
            baseline: None,
        }
    }
}

#[derive(Debug)]
struct Shared {
    entries: Mutex<Vec<Watched>>,
}

impl std::fmt::Debug for Watched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watched")
            .field("started", &self.started)
            .finish_non_exhaustive()
    }
}

/// A tree's watchdog. Its thread starts with the first instance it watches
/// and ends once the tree is gone.
#[derive(Debug)]
pub(crate) struct Watchdog {
    shared: Arc<Shared>,
    period: Duration,
    clock: RuntimeClock,
    started: Mutex<bool>,
}

impl Watchdog {
    pub(crate) fn new(period: Duration, clock: RuntimeClock) -> Self {
        Self {
            shared: Arc::new(Shared {
                entries: Mutex::new(Vec::new()),
            }),
            period,
            clock,
            started: Mutex::new(false),
        }
    }

    /// Starts measuring `watched`; spawns the watchdog thread on first use.
    pub(crate) fn watch(&self, mut watched: Watched, name: &str) -> Result<(), String> {
        let mut started = self.started.lock();
        if !*started {
            let shared = Arc::downgrade(&self.shared);
            let (period, clock) = (self.period, self.clock.clone());
            crate::ceiling::spawn(format!("{name}/watchdog"), move || {
                run(shared, period, clock)
            })
            .map_err(|refused| format!("could not spawn the watchdog: {refused}"))?;
            *started = true;
        }
        watched.samples.push_back((real_now(), Duration::ZERO));
        self.shared.entries.lock().push(watched);
        Ok(())
    }
}

#[allow(
    clippy::disallowed_methods,
    reason = "CPU rates are measured on real time, whatever clock the tree uses"
)]
fn real_now() -> Instant {
    Instant::now()
}

fn run(shared: Weak<Shared>, period: Duration, clock: RuntimeClock) {
    loop {
        std::thread::sleep(period);
        let Some(shared) = shared.upgrade() else {
            return;
        };
        // Supervisors are told outside the lock: one that is busy (or
        // itself waiting to register an instance here) must not stall the
        // watchdog, nor the watchdog it.
        let over: Vec<Arc<dyn Fn() + Send + Sync>> = {
            let mut entries = shared.entries.lock();
            entries.retain(|watched| !watched.meter.is_finished());
            entries
                .iter_mut()
                .filter_map(|watched| {
                    check(watched, &clock).then(|| Arc::clone(&watched.over_budget))
                })
                .collect()
        };
        for tell in over {
            tell();
        }
    }
}

/// Measures one instance; on a new breach cancels it and returns `true`
/// (its supervisor is to be told).
fn check(watched: &mut Watched, clock: &RuntimeClock) -> bool {
    let meter = &watched.meter;
    let limits = meter.limits();
    if let Some(cpu) = read_cpu(meter.tid()) {
        let baseline = if meter.reused_thread() {
            *watched.baseline.get_or_insert(cpu)
        } else {
            Duration::ZERO
        };
        meter.set_cpu(cpu.saturating_sub(baseline) + meter.spawned_cpu(read_cpu));
    }
    let cpu = meter.cpu();
    let now = real_now();
    watched.samples.push_back((now, cpu));
    let window = limits
        .cpu_rate()
        .map_or(Duration::ZERO, |(_, period)| period);
    while watched
        .samples
        .get(1)
        .is_some_and(|(at, _)| now.saturating_duration_since(*at) >= window)
    {
        watched.samples.pop_front();
    }
    let budget = if let Some(limit) = limits.cpu_budget().filter(|limit| cpu >= *limit) {
        Some(Budget::Cpu { used: cpu, limit })
    } else if let Some((limit, period)) = limits.cpu_rate() {
        let baseline = watched
            .samples
            .front()
            .map_or(Duration::ZERO, |(_, used)| *used);
        let used = cpu.saturating_sub(baseline);
        (used >= limit).then_some(Budget::CpuRate {
            used,
            limit,
            period,
        })
    } else {
        None
    };
    let budget = budget
        .or_else(|| {
            let limit = limits.wall_deadline()?;
            (clock.now().saturating_duration_since(watched.started) >= limit)
                .then_some(Budget::Deadline { limit })
        })
        .or_else(|| {
            let limit = limits.memory_quota()?;
            let held = meter.memory_held()?;
            (held > limit).then_some(Budget::Memory { held, limit })
        });
    match budget {
        Some(budget) if meter.exceed(budget) => {
            watched.cancel.raise();
            true
        }
        _ => false,
    }
}

/// CPU time used by thread `tid` of this process.
#[allow(
    clippy::disallowed_methods,
    reason = "the watchdog is the supervisor side: it reads its own process's statistics"
)]
fn read_cpu(tid: i32) -> Option<Duration> {
    if tid == 0 {
        return None;
    }
    // Nanoseconds on the CPU, where the kernel keeps scheduler statistics.
    if let Ok(schedstat) = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat"))
        && let Some(ns) = schedstat
            .split_whitespace()
            .next()
            .and_then(|f| f.parse().ok())
    {
        return Some(Duration::from_nanos(ns));
    }
    // Otherwise user + system time in clock ticks (assumed 100 per second).
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    let after_name = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}
