//! Clocks: the monotonic clock (real or manual) and the wall clock.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use cap_std::AmbientAuthority;

use crate::capability::Capability;
use crate::grant::grant_by_clone;
use crate::revoke::{Gate, Revoked};
use crate::runtime_clock::{ManualTime, RuntimeClock};

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
    /// The clock read behind the gate; a supervisor given this capability
    /// keeps only this part.
    pub(crate) time: RuntimeClock,
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
        self.time.advance(by);
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
            time: RuntimeClock::Os,
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
    pub fn manual() -> (Self, ClockControl) {
        let (clock, time) = RuntimeClock::manual();
        let clock = Self {
            time: clock,
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
        Ok(self.time.now())
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
        self.time.is_manual()
    }
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
