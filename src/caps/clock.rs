//! Clocks: the monotonic clock (real or manual) and the wall clock.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use cap_std::AmbientAuthority;
use crossbeam_channel as cb;
use parking_lot::Mutex;

use crate::grant::Capability;
use crate::grant::grant_by_clone;
use crate::revoke::{Gate, Revoked};
use crate::signal::{Never, RaiseHook, Signal};

/// Manual time: a fixed origin plus an offset that only the
/// [`ClockControl`] moves forward; waiters are woken through their channels.
#[derive(Debug)]
pub(crate) struct ManualTime {
    origin: Instant,
    offset: Mutex<Duration>,
    waiters: Mutex<Vec<cb::Sender<()>>>,
}

impl ManualTime {
    fn now(&self) -> Instant {
        self.origin + *self.offset.lock()
    }

    /// A channel that receives a wake-up after every advance.
    fn subscribe(&self) -> cb::Receiver<()> {
        let (tx, rx) = cb::bounded(1);
        self.waiters.lock().push(tx);
        rx
    }
}

#[derive(Debug, Clone)]
pub(crate) enum MonotonicSource {
    Os,
    Manual(Arc<ManualTime>),
}

/// A monotonic clock capability: reads the time, for timeouts and rates.
///
/// Either the operating system's clock ([`new`](Self::new)) or a manual
/// clock that only moves when its [`ClockControl`] says so
/// ([`manual`](Self::manual)), for tests that must not sleep. Clones and
/// re-issued copies read the same clock.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use compartment::caps::MonotonicClock;
///
/// let (clock, control) = MonotonicClock::manual();
/// let start = clock.now()?;
/// control.advance(Duration::from_secs(90));
/// assert_eq!(clock.now()? - start, Duration::from_secs(90));
/// # Ok::<(), compartment::Revoked>(())
/// ```
#[derive(Debug, Clone)]
pub struct MonotonicClock {
    pub(crate) source: MonotonicSource,
    pub(crate) gate: Gate,
}

/// Moves a manual [`MonotonicClock`] forward.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let (clock, control) = compartment::caps::MonotonicClock::manual();
/// let start = clock.now()?;
/// control.advance(Duration::from_secs(60));
/// assert_eq!(clock.elapsed(start)?, Duration::from_secs(60));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct ClockControl {
    time: Arc<ManualTime>,
}

impl ClockControl {
    /// Moves the clock forward by `by`, waking anything waiting on it.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use compartment::caps::MonotonicClock;
    ///
    /// let (clock, control) = MonotonicClock::manual();
    /// let start = clock.now()?;
    /// control.advance(Duration::from_secs(5));
    /// assert_eq!(clock.elapsed(start)?, Duration::from_secs(5));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn advance(&self, by: Duration) {
        let mut offset = self.time.offset.lock();
        *offset = offset.saturating_add(by);
        drop(offset);
        self.time.waiters.lock().retain(|waiter| {
            !matches!(waiter.try_send(()), Err(cb::TrySendError::Disconnected(())))
        });
    }

    /// The clock's current reading.
    ///
    /// # Examples
    ///
    /// ```
    /// let (clock, control) = compartment::caps::MonotonicClock::manual();
    /// assert_eq!(control.now(), clock.now()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn now(&self) -> Instant {
        self.time.now()
    }
}

impl MonotonicClock {
    /// The operating system's monotonic clock.
    ///
    /// # Ambient Authority
    ///
    /// Reading real time is a side channel; grant it deliberately.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::caps::MonotonicClock;
    ///
    /// let clock = MonotonicClock::new(compartment::ambient_authority());
    /// let start = clock.now()?;
    /// assert!(clock.now()? >= start);
    /// assert!(!clock.is_manual());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(ambient_authority: AmbientAuthority) -> Self {
        let _ = ambient_authority;
        Self {
            source: MonotonicSource::Os,
            gate: Gate::default(),
        }
    }

    /// A manual clock starting now, and the control that advances it.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use compartment::caps::MonotonicClock;
    ///
    /// // A test drives time; the component under test holds the clock.
    /// let (clock, control) = MonotonicClock::manual();
    /// let start = clock.now()?;
    /// control.advance(Duration::from_millis(250));
    /// assert_eq!(clock.elapsed(start)?, Duration::from_millis(250));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[allow(
        clippy::disallowed_methods,
        reason = "a manual clock needs a real instant as its origin; it never reads time again"
    )]
    pub fn manual() -> (Self, ClockControl) {
        let time = Arc::new(ManualTime {
            origin: Instant::now(),
            offset: Mutex::new(Duration::ZERO),
            waiters: Mutex::new(Vec::new()),
        });
        let clock = Self {
            source: MonotonicSource::Manual(Arc::clone(&time)),
            gate: Gate::default(),
        };
        (clock, ClockControl { time })
    }

    /// The current instant.
    ///
    /// # Examples
    ///
    /// ```
    /// let (clock, _control) = compartment::caps::MonotonicClock::manual();
    /// let a = clock.now()?;
    /// assert_eq!(clock.now()?, a); // a manual clock stands still until advanced
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Revoked`] after revocation.
    pub fn now(&self) -> Result<Instant, Revoked> {
        self.gate.check()?;
        Ok(self.read())
    }

    /// Time passed since `earlier` (zero if `earlier` is in the future).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let (clock, control) = compartment::caps::MonotonicClock::manual();
    /// let start = clock.now()?;
    /// control.advance(Duration::from_secs(1));
    /// assert_eq!(clock.elapsed(start)?, Duration::from_secs(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Revoked`] after revocation.
    pub fn elapsed(&self, earlier: Instant) -> Result<Duration, Revoked> {
        Ok(self.now()?.saturating_duration_since(earlier))
    }

    /// Whether this is a manual clock.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::caps::MonotonicClock;
    /// assert!(MonotonicClock::manual().0.is_manual());
    /// assert!(!MonotonicClock::new(compartment::ambient_authority()).is_manual());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_manual(&self) -> bool {
        matches!(self.source, MonotonicSource::Manual(_))
    }

    /// Reads the clock without the revocation gate, for the crate's own
    /// timekeeping (a supervisor is never revoked).
    #[allow(
        clippy::disallowed_methods,
        reason = "this is the clock capability: the one wrapper of ambient monotonic time"
    )]
    pub(crate) fn read(&self) -> Instant {
        match &self.source {
            MonotonicSource::Os => Instant::now(),
            MonotonicSource::Manual(time) => time.now(),
        }
    }
}

impl MonotonicClock {
    /// For a manual clock, a channel woken after every advance; `None` for
    /// the OS clock, whose instants are real deadlines.
    pub(crate) fn advances(&self) -> Option<cb::Receiver<()>> {
        match &self.source {
            MonotonicSource::Os => None,
            MonotonicSource::Manual(time) => Some(time.subscribe()),
        }
    }

    /// Waits until the clock reads `deadline`, ignoring revocation (this is
    /// the crate's own timekeeping). Returns `Err(i)` early when
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
            return park_until(deadline, interrupts, || self.read());
        };
        let watches: Vec<&cb::Receiver<Never>> =
            interrupts.iter().map(|signal| signal.watch()).collect();
        loop {
            if self.read() >= deadline {
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

grant_by_clone!(MonotonicClock, |_clock| Capability::MonotonicClock);

/// A wall-clock capability: reads the date and time.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use compartment::caps::SystemClock;
///
/// let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
/// assert_eq!(SystemClock::fixed(at).now()?, at);
/// # Ok::<(), compartment::Revoked>(())
/// ```
#[derive(Debug, Clone)]
pub struct SystemClock {
    pub(crate) fixed: Option<SystemTime>,
    pub(crate) gate: Gate,
}

impl SystemClock {
    /// The operating system's wall clock.
    ///
    /// # Ambient Authority
    ///
    /// Reading the date is a side channel; grant it deliberately.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::caps::SystemClock;
    ///
    /// let clock = SystemClock::new(compartment::ambient_authority());
    /// assert!(clock.now()? > std::time::UNIX_EPOCH);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(ambient_authority: AmbientAuthority) -> Self {
        let _ = ambient_authority;
        Self {
            fixed: None,
            gate: Gate::default(),
        }
    }

    /// A clock that always reads `at`, for tests.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use compartment::caps::SystemClock;
    ///
    /// let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    /// assert_eq!(SystemClock::fixed(at).now()?, at);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn fixed(at: SystemTime) -> Self {
        Self {
            fixed: Some(at),
            gate: Gate::default(),
        }
    }

    /// The current date and time.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::UNIX_EPOCH;
    /// let clock = compartment::caps::SystemClock::fixed(UNIX_EPOCH);
    /// assert_eq!(clock.now()?, UNIX_EPOCH);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Revoked`] after revocation.
    #[allow(
        clippy::disallowed_methods,
        reason = "this is the clock capability: the one wrapper of ambient wall time"
    )]
    pub fn now(&self) -> Result<SystemTime, Revoked> {
        self.gate.check()?;
        Ok(self.fixed.unwrap_or_else(SystemTime::now))
    }
}

grant_by_clone!(SystemClock, |_clock| Capability::SystemClock);
