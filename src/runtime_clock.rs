//! The runtime's own timekeeping: what supervisors, contexts and the
//! watchdog read and wait on.
//!
//! It is not a capability. The [`MonotonicClock`](crate::caps::MonotonicClock)
//! a component holds wraps one of these behind a revocation gate; the
//! runtime holds the clock itself, because a supervisor's timers and a
//! component's cancellation must keep working whatever is revoked. A tree
//! built with [`Supervisor::clock`](crate::Supervisor::clock) takes the
//! clock out of the capability it is given.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel as cb;
use parking_lot::Mutex;

use crate::signal::{Never, RaiseHook, Signal};

/// The operating system's monotonic clock, or a manual one.
#[derive(Debug, Clone)]
pub(crate) enum RuntimeClock {
    Os,
    Manual(Arc<ManualTime>),
}

/// Manual time: a fixed origin plus an offset that only
/// [`ManualTime::advance`] moves forward; waiters are woken through their
/// channels.
#[derive(Debug)]
pub(crate) struct ManualTime {
    origin: Instant,
    offset: Mutex<Duration>,
    waiters: Mutex<Vec<cb::Sender<()>>>,
}

impl ManualTime {
    pub(crate) fn now(&self) -> Instant {
        self.origin + *self.offset.lock()
    }

    /// Moves the time forward by `by` and wakes every waiter.
    pub(crate) fn advance(&self, by: Duration) {
        let mut offset = self.offset.lock();
        *offset = offset.saturating_add(by);
        drop(offset);
        self.waiters.lock().retain(|waiter| {
            !matches!(waiter.try_send(()), Err(cb::TrySendError::Disconnected(())))
        });
    }

    /// A channel that receives a wake-up after every advance.
    fn subscribe(&self) -> cb::Receiver<()> {
        let (tx, rx) = cb::bounded(1);
        self.waiters.lock().push(tx);
        rx
    }
}

impl RuntimeClock {
    /// A manual clock starting now, and the time that moves it.
    #[allow(
        clippy::disallowed_methods,
        reason = "a manual clock needs a real instant as its origin; it never reads time again"
    )]
    pub(crate) fn manual() -> (Self, Arc<ManualTime>) {
        let time = Arc::new(ManualTime {
            origin: Instant::now(),
            offset: Mutex::new(Duration::ZERO),
            waiters: Mutex::new(Vec::new()),
        });
        (Self::Manual(Arc::clone(&time)), time)
    }

    pub(crate) fn is_manual(&self) -> bool {
        matches!(self, Self::Manual(_))
    }

    /// The current instant.
    #[allow(
        clippy::disallowed_methods,
        reason = "the runtime's clock is the one reader of ambient monotonic time"
    )]
    pub(crate) fn now(&self) -> Instant {
        match self {
            Self::Os => Instant::now(),
            Self::Manual(time) => time.now(),
        }
    }

    /// For a manual clock, a channel woken after every advance; `None` for
    /// the OS clock, whose instants are real deadlines.
    pub(crate) fn advances(&self) -> Option<cb::Receiver<()>> {
        match self {
            Self::Os => None,
            Self::Manual(time) => Some(time.subscribe()),
        }
    }

    /// Waits until the clock reads `deadline`. Returns `Err(i)` early when
    /// `interrupts[i]` is raised.
    ///
    /// On the OS clock the thread parks and a raise unparks it, so an idle
    /// component waits as a parked thread does, with no channel to select
    /// on. A manual clock also wakes on every advance.
    pub(crate) fn wait_until(
        &self,
        deadline: Instant,
        interrupts: &[&Signal],
    ) -> Result<(), usize> {
        let Some(advances) = self.advances() else {
            return park_until(deadline, interrupts, || self.now());
        };
        let watches: Vec<&cb::Receiver<Never>> =
            interrupts.iter().map(|signal| signal.watch()).collect();
        loop {
            if self.now() >= deadline {
                return Ok(());
            }
            let mut select = cb::Select::new_biased();
            for watch in &watches {
                select.recv(watch);
            }
            let tick = select.recv(&advances);
            let operation = select.select();
            let index = operation.index();
            if index == tick {
                let _ = operation.recv(&advances);
                continue;
            }
            let _ = operation.recv(watches[index]);
            return Err(index);
        }
    }
}

/// Parks the calling thread until `now()` reads `deadline` or one of
/// `interrupts` is raised (`Err` with its index).
fn park_until(
    deadline: Instant,
    interrupts: &[&Signal],
    now: impl Fn() -> Instant,
) -> Result<(), usize> {
    let thread = std::thread::current();
    // Each signal wakes this thread from its sleeper slot; one where another
    // thread already sleeps gets a hook (held until this returns).
    let mut hook: Option<Arc<RaiseHook>> = None;
    for signal in interrupts {
        if !signal.wake_sleeper(&thread) {
            let hook = hook.get_or_insert_with(|| {
                let thread = thread.clone();
                Arc::new(move || thread.unpark())
            });
            signal.on_raise(Arc::downgrade(hook));
        }
    }
    let woken = loop {
        if let Some(i) = interrupts.iter().position(|signal| signal.is_raised()) {
            break Err(i);
        }
        let now = now();
        if now >= deadline {
            break Ok(());
        }
        // An unpark (a raise, or a stray one) ends the park early: the loop
        // looks again.
        std::thread::park_timeout(deadline - now);
    };
    for signal in interrupts {
        signal.forget_sleeper(&thread);
    }
    woken
}
