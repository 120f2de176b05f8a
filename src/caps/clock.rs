//! Clocks: the monotonic clock (real or manual) and the wall clock.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use cap_std::AmbientAuthority;
use parking_lot::{Condvar, Mutex};

use crate::grant::{Capability, Grant, Inventory, ReissueError};
use crate::revoke::{Gate, Revoked, Revoker};

/// Manual time: a fixed origin plus an offset that only the
/// [`ClockControl`] moves forward.
#[derive(Debug)]
pub(crate) struct ManualTime {
    origin: Instant,
    offset: Mutex<Duration>,
    advanced: Condvar,
}

impl ManualTime {
    fn now(&self) -> Instant {
        self.origin + *self.offset.lock()
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
    source: MonotonicSource,
    gate: Gate,
}

/// Moves a manual [`MonotonicClock`] forward.
#[derive(Debug, Clone)]
pub struct ClockControl {
    time: Arc<ManualTime>,
}

impl ClockControl {
    /// Moves the clock forward by `by`, waking anything waiting on it.
    pub fn advance(&self, by: Duration) {
        let mut offset = self.time.offset.lock();
        *offset = offset.saturating_add(by);
        drop(offset);
        self.time.advanced.notify_all();
    }

    /// The clock's current reading.
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
    pub fn new(ambient_authority: AmbientAuthority) -> Self {
        let _ = ambient_authority;
        Self {
            source: MonotonicSource::Os,
            gate: Gate::default(),
        }
    }

    /// A manual clock starting now, and the control that advances it.
    #[allow(
        clippy::disallowed_methods,
        reason = "a manual clock needs a real instant as its origin; it never reads time again"
    )]
    pub fn manual() -> (Self, ClockControl) {
        let time = Arc::new(ManualTime {
            origin: Instant::now(),
            offset: Mutex::new(Duration::ZERO),
            advanced: Condvar::new(),
        });
        let clock = Self {
            source: MonotonicSource::Manual(Arc::clone(&time)),
            gate: Gate::default(),
        };
        (clock, ClockControl { time })
    }

    /// The current instant.
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
    /// # Errors
    ///
    /// [`Revoked`] after revocation.
    pub fn elapsed(&self, earlier: Instant) -> Result<Duration, Revoked> {
        Ok(self.now()?.saturating_duration_since(earlier))
    }

    /// Whether this is a manual clock.
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

impl Grant for MonotonicClock {
    fn reissue(&self) -> Result<Self, ReissueError> {
        Ok(self.clone())
    }

    fn attach_revoker(&mut self, revoker: &Revoker) {
        self.gate.attach(revoker);
    }

    fn visit<'g>(&'g self, inventory: &mut Inventory<'g>) {
        inventory.record(Capability::MonotonicClock, self.gate.is_revocable(), None);
    }
}

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
    fixed: Option<SystemTime>,
    gate: Gate,
}

impl SystemClock {
    /// The operating system's wall clock.
    ///
    /// # Ambient Authority
    ///
    /// Reading the date is a side channel; grant it deliberately.
    pub fn new(ambient_authority: AmbientAuthority) -> Self {
        let _ = ambient_authority;
        Self {
            fixed: None,
            gate: Gate::default(),
        }
    }

    /// A clock that always reads `at`, for tests.
    pub fn fixed(at: SystemTime) -> Self {
        Self {
            fixed: Some(at),
            gate: Gate::default(),
        }
    }

    /// The current date and time.
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

impl Grant for SystemClock {
    fn reissue(&self) -> Result<Self, ReissueError> {
        Ok(self.clone())
    }

    fn attach_revoker(&mut self, revoker: &Revoker) {
        self.gate.attach(revoker);
    }

    fn visit<'g>(&'g self, inventory: &mut Inventory<'g>) {
        inventory.record(Capability::SystemClock, self.gate.is_revocable(), None);
    }
}
