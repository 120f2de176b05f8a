//! Revocation: taking authority back from a holder you cannot stop.
//!
//! This is the caretaker pattern. The granting side makes a capability
//! revocable with [`Grant::revocable`](crate::Grant::revocable) (or attaches an
//! existing [`Revoker`] with [`Grant::attach_revoker`](crate::Grant::attach_revoker))
//! and keeps the [`Revoker`]. After [`Revoker::revoke`], every use of the
//! capability fails with [`Revoked`]: the capability itself, every copy
//! re-issued from it, and every handle derived from it (a subdirectory opened
//! through a revoked directory, a file opened before revocation, a socket
//! connected through a revoked network capability). Blocking channel
//! operations that are waiting when revocation happens wake up and fail, and
//! so do blocked socket calls (`accept`, `read`, `recv`): revocation shuts
//! the sockets down, and a call that returns after it reports the
//! revocation instead of what it got.
//!
//! A supervisor revokes the grant of an instance that ignored its shutdown
//! request: the thread cannot be killed, but it can be left holding nothing.
//!
//! # What revocation does not do
//!
//! Revocation closes the capability's API, not its operating-system resource:
//! the descriptor is released when the holder drops the handle. Data already
//! read stays read, and a receive that completed before `revoke` returned its
//! message. A thread blocked in a file operation that no socket shutdown
//! reaches — opening a FIFO that no writer opens, reading a pipe — stays
//! blocked until the operation ends on its own, and then fails. Code that
//! reaches around the API (unsafe code, raw syscalls) is stopped only by the
//! kernel tier.
//!
//! # Examples
//!
//! ```
//! use compartment::channel;
//! use compartment::{Grant, Revoked};
//!
//! let (tx, rx) = channel::bounded::<u32>(4)?;
//! let (tx, revoker) = tx.revocable();
//! let copy = tx.reissue()?;
//!
//! tx.try_send(1).expect("not yet revoked");
//! revoker.revoke();
//! assert!(tx.try_send(2).unwrap_err().is_revoked());
//! assert!(copy.try_send(3).unwrap_err().is_revoked());
//! assert_eq!(rx.try_recv()?, 1, "what was sent before revocation stays queued");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::sync::Arc;

use crate::signal::{Never, Signal};

/// The granting side's handle for taking a capability back.
///
/// Cloning a `Revoker` gives another handle to the same switch: revoking
/// through either revokes every capability attached to it. Dropping a
/// `Revoker` does not revoke anything.
#[derive(Debug, Clone, Default)]
pub struct Revoker {
    signal: Arc<Signal>,
    /// A switch that only ends blocking waits (an instance's cancellation),
    /// never revokes: see [`Revoker::waker`].
    wakes_only: bool,
}

impl Revoker {
    /// A new switch, not yet revoked, with nothing attached to it.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::Revoker;
    /// let revoker = Revoker::new();
    /// assert!(!revoker.is_revoked());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// A switch on `signal` that, attached to a grant, only ends its
    /// blocking channel waits once raised — an instance's cancellation —
    /// and never fails an operation that need not wait.
    pub(crate) fn waker(signal: Arc<Signal>) -> Self {
        Self {
            signal,
            wakes_only: true,
        }
    }

    /// Whether this switch only ends blocking waits (see [`waker`](Self::waker)).
    #[cfg(all(feature = "process", target_os = "linux"))]
    pub(crate) fn wakes_only(&self) -> bool {
        self.wakes_only
    }

    /// Revokes every capability attached to this switch. Idempotent; blocked
    /// channel operations on those capabilities wake and fail with [`Revoked`].
    pub fn revoke(&self) {
        self.signal.raise();
    }

    /// Runs `hook` when this switch is revoked (at once if it is); the hook
    /// is held weakly.
    #[cfg(all(feature = "process", target_os = "linux"))]
    pub(crate) fn on_revoke(&self, hook: &Arc<crate::signal::RaiseHook>) {
        self.signal.on_raise(Arc::downgrade(hook));
    }

    /// Whether [`revoke`](Self::revoke) has been called.
    pub fn is_revoked(&self) -> bool {
        self.signal.is_raised()
    }
}

/// The error of every operation on a revoked capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("capability revoked")]
pub struct Revoked;

impl From<Revoked> for std::io::Error {
    fn from(revoked: Revoked) -> Self {
        std::io::Error::new(std::io::ErrorKind::PermissionDenied, revoked)
    }
}

impl Revoked {
    /// Whether an `io::Error` (from a `Read`/`Write` impl of a file or socket
    /// capability) was caused by revocation.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::Revoked;
    /// let err: std::io::Error = Revoked.into();
    /// assert!(Revoked::caused(&err));
    /// ```
    pub fn caused(err: &std::io::Error) -> bool {
        err.get_ref().is_some_and(|inner| inner.is::<Revoked>())
    }
}

/// The revocation switches a capability is subject to. Every capability type
/// holds one; derived handles and re-issued copies inherit it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Gate {
    signals: Vec<Arc<Signal>>,
    /// Switches that end blocking waits without revoking anything: the
    /// cancellation of the instance the capability was issued to.
    wakers: Vec<Arc<Signal>>,
}

impl Gate {
    /// Fails once any attached switch has been revoked.
    #[inline]
    pub(crate) fn check(&self) -> Result<(), Revoked> {
        if self.signals.iter().any(|s| s.is_raised()) {
            Err(Revoked)
        } else {
            Ok(())
        }
    }

    pub(crate) fn attach(&mut self, revoker: &Revoker) {
        let switches = if revoker.wakes_only {
            &mut self.wakers
        } else {
            &mut self.signals
        };
        if !switches.iter().any(|s| Arc::ptr_eq(s, &revoker.signal)) {
            switches.push(Arc::clone(&revoker.signal));
        }
    }

    /// Whether a blocking wait should end now without revocation: the
    /// instance the capability was issued to was cancelled.
    #[inline]
    pub(crate) fn is_woken(&self) -> bool {
        self.wakers.iter().any(|s| s.is_raised())
    }

    /// Whether nothing can interrupt a wait on this capability: no switch
    /// of either kind.
    #[inline]
    pub(crate) fn is_plain(&self) -> bool {
        self.signals.is_empty() && self.wakers.is_empty()
    }

    #[inline]
    pub(crate) fn is_revocable(&self) -> bool {
        !self.signals.is_empty()
    }

    /// Runs `hook` when any of the gate's switches is revoked (at once if
    /// one already is). The hook is held weakly: it lives as long as the
    /// caller keeps it.
    pub(crate) fn on_revoke(&self, hook: &Arc<crate::signal::RaiseHook>) {
        for signal in &self.signals {
            signal.on_raise(Arc::downgrade(hook));
        }
    }

    /// Receivers that disconnect when a switch is revoked, for `Select`.
    pub(crate) fn watches(&self) -> impl Iterator<Item = &crossbeam_channel::Receiver<Never>> {
        self.signals.iter().map(|s| s.watch())
    }

    /// Receivers that disconnect when the instance is cancelled, for
    /// `Select`; they follow [`watches`](Self::watches) in a selection.
    pub(crate) fn wake_watches(&self) -> impl Iterator<Item = &crossbeam_channel::Receiver<Never>> {
        self.wakers.iter().map(|s| s.watch())
    }
}
