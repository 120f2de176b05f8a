//! Bounded channels whose endpoints are capabilities.
//!
//! There is no unbounded constructor: every channel has a capacity, a full
//! channel pushes back ([`TrySendError::Full`], or a blocking send that waits),
//! and a failed send hands the message back. Endpoints implement
//! [`Grant`](crate::Grant): a sender lets a component send on one channel, a
//! receiver lets it receive from one, and nothing else.
//!
//! Blocking operations wake when their endpoint is revoked; every blocking
//! operation has `try_` and `_timeout` forms.
//!
//! # Examples
//!
//! ```
//! use compartment::channel::{self, TrySendError};
//!
//! let (tx, rx) = channel::bounded::<&str>(2)?;
//! tx.try_send("a")?;
//! tx.try_send("b")?;
//! match tx.try_send("c") {
//!     Err(TrySendError::Full(message)) => assert_eq!(message, "c"), // handed back
//!     other => panic!("expected Full, got {other:?}"),
//! }
//! assert_eq!(rx.recv()?, "a");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
mod request;

use std::fmt;
#[cfg(all(feature = "process", target_os = "linux"))]
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel as cb;
use crossbeam_utils::Backoff;

pub use error::{
    CapacityError, RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError,
    TrySendError,
};
#[cfg(all(feature = "process", target_os = "linux"))]
pub(crate) use request::Reply;
pub use request::{CallError, HandlerCrash, PendingReply, ReplyError, ReplyTo, Request};

use crate::capability::Capability;
pub use crate::capability::ChannelId;
use crate::grant::grant_by_clone;
use crate::revoke::Gate;
use crate::signal::{Never, Signal};

/// The largest capacity [`bounded`] accepts. The buffer is allocated up
/// front, so a larger one is almost certainly a mistake.
pub const MAX_CAPACITY: usize = 1 << 24;

/// Creates a channel holding at most `capacity` messages; with a capacity
/// of 0, a rendezvous channel, as crossbeam's: each send waits for a
/// receiver to take the message.
///
/// # Errors
///
/// [`CapacityError::TooLarge`] above [`MAX_CAPACITY`].
///
/// # Examples
///
/// ```
/// use compartment::channel::{self, CapacityError};
/// let (tx, rx) = channel::bounded::<u8>(16)?;
/// assert_eq!((tx.capacity(), rx.capacity()), (16, 16));
///
/// // A rendezvous: the send completes when the receiver takes the message.
/// let (tx, rx) = channel::bounded::<&str>(0)?;
/// let sender = std::thread::spawn(move || tx.send("hand to hand"));
/// assert_eq!(rx.recv()?, "hand to hand");
/// assert!(sender.join().unwrap().is_ok());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn bounded<T: Send>(capacity: usize) -> Result<(Sender<T>, Receiver<T>), CapacityError> {
    if capacity > MAX_CAPACITY {
        return Err(CapacityError::TooLarge {
            requested: capacity,
            max: MAX_CAPACITY,
        });
    }
    let (tx, rx) = cb::bounded(capacity);
    let id = ChannelId::next();
    #[cfg(all(feature = "process", target_os = "linux"))]
    let feeds = crate::process::Feeds::default();
    Ok((
        Sender {
            inner: tx,
            id,
            capacity,
            gate: Gate::default(),
            #[cfg(all(feature = "process", target_os = "linux"))]
            outbox: None,
            #[cfg(all(feature = "process", target_os = "linux"))]
            feeds: feeds.clone(),
        },
        Receiver {
            inner: rx,
            id,
            capacity,
            gate: Gate::default(),
            #[cfg(all(feature = "process", target_os = "linux"))]
            inbox: None,
            #[cfg(all(feature = "process", target_os = "linux"))]
            feeds,
        },
    ))
}

/// Endpoints that stand for channel `id` of another process (the process
/// tier's bridges): the same id and capacity as the channel they stand
/// for, so faults and maps name that channel.
#[cfg(all(feature = "process", target_os = "linux"))]
pub(crate) fn bridged_sender<T>(
    outbox: crate::process::Outbox<T>,
    id: u64,
    capacity: usize,
) -> Sender<T> {
    // Never used: every operation goes to the outbox.
    let (inner, _) = cb::bounded(1);
    Sender {
        inner,
        id: ChannelId::of(id),
        capacity,
        gate: Gate::default(),
        outbox: Some(Arc::new(outbox)),
        feeds: crate::process::Feeds::default(),
    }
}

/// See [`bridged_sender`]; messages come through `inbox`, and into
/// `inner` for a receive that sleeps.
#[cfg(all(feature = "process", target_os = "linux"))]
pub(crate) fn bridged_receiver<T>(
    inner: cb::Receiver<T>,
    id: u64,
    capacity: usize,
    inbox: Arc<crate::process::Inbox<T>>,
) -> Receiver<T> {
    Receiver {
        inner,
        id: ChannelId::of(id),
        capacity,
        gate: Gate::default(),
        inbox: Some(inbox),
        feeds: crate::process::Feeds::default(),
    }
}

/// How a blocking wait on a channel ended, when it did not succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interrupted {
    Disconnected,
    Timeout,
    /// The watch at this index (into the interrupt list) fired.
    By(usize),
}

/// Receives from `rx`, waking early when any of `interrupts` disconnects
/// (a raised [`Signal`]) or `deadline` passes.
#[inline]
pub(crate) fn recv_interruptible<T>(
    rx: &cb::Receiver<T>,
    interrupts: &[&cb::Receiver<Never>],
    deadline: Option<Instant>,
) -> Result<T, Interrupted> {
    if interrupts.is_empty() {
        return match deadline {
            None => rx.recv().map_err(|_| Interrupted::Disconnected),
            Some(deadline) => rx.recv_deadline(deadline).map_err(|e| match e {
                cb::RecvTimeoutError::Timeout => Interrupted::Timeout,
                cb::RecvTimeoutError::Disconnected => Interrupted::Disconnected,
            }),
        };
    }
    let mut select = cb::Select::new_biased();
    // Interrupts first: once one fires, it wins over a ready message.
    for watch in interrupts {
        select.recv(watch);
    }
    let main = select.recv(rx);
    let operation = match deadline {
        None => select.select(),
        Some(deadline) => select
            .select_deadline(deadline)
            .map_err(|_| Interrupted::Timeout)?,
    };
    let index = operation.index();
    if index == main {
        operation.recv(rx).map_err(|_| Interrupted::Disconnected)
    } else {
        let _ = operation.recv(interrupts[index]);
        Err(Interrupted::By(index))
    }
}

/// Sends on `tx`, waking early like [`recv_interruptible`]; the message is
/// handed back on failure.
#[inline]
pub(crate) fn send_interruptible<T>(
    tx: &cb::Sender<T>,
    message: T,
    interrupts: &[&cb::Receiver<Never>],
    deadline: Option<Instant>,
) -> Result<(), (T, Interrupted)> {
    if interrupts.is_empty() {
        return match deadline {
            None => tx
                .send(message)
                .map_err(|cb::SendError(m)| (m, Interrupted::Disconnected)),
            Some(deadline) => tx.send_deadline(message, deadline).map_err(|e| match e {
                cb::SendTimeoutError::Timeout(m) => (m, Interrupted::Timeout),
                cb::SendTimeoutError::Disconnected(m) => (m, Interrupted::Disconnected),
            }),
        };
    }
    let mut select = cb::Select::new_biased();
    for watch in interrupts {
        select.recv(watch);
    }
    let main = select.send(tx);
    let operation = match deadline {
        None => select.select(),
        Some(deadline) => match select.select_deadline(deadline) {
            Ok(operation) => operation,
            Err(_) => return Err((message, Interrupted::Timeout)),
        },
    };
    let index = operation.index();
    if index == main {
        operation
            .send(tx, message)
            .map_err(|cb::SendError(m)| (m, Interrupted::Disconnected))
    } else {
        let _ = operation.recv(interrupts[index]);
        Err((message, Interrupted::By(index)))
    }
}

/// Why an endpoint's wait must end now, before the operation is tried: its
/// gate is revoked, or one of the caller's `extra` interrupts was raised
/// (the first, in the order a biased selection would give them).
#[inline]
pub(crate) fn stopped(gate: &Gate, extra: &[&Signal]) -> Option<Wake> {
    if gate.check().is_err() {
        return Some(Wake::Revoked);
    }
    extra
        .iter()
        .position(|signal| signal.is_raised())
        .map(Wake::Interrupted)
}

/// What a blocked endpoint selects on besides its channel: the gate's
/// switches, then the caller's `extra` interrupts; and how many of them are
/// the gate's, for [`Wake::from_interrupt`].
pub(crate) fn interrupts<'a>(
    gate: &'a Gate,
    extra: &[&'a Signal],
) -> (Vec<&'a cb::Receiver<Never>>, Own) {
    let mut interrupts: Vec<_> = gate.watches().collect();
    let revokes = interrupts.len();
    interrupts.extend(gate.wake_watches());
    let wakes = interrupts.len() - revokes;
    interrupts.extend(extra.iter().map(|signal| signal.watch()));
    (interrupts, Own { revokes, wakes })
}

/// How many of a selection's interrupts are the gate's: its revocation
/// switches first, then its wakers.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Own {
    revokes: usize,
    wakes: usize,
}

#[allow(
    clippy::disallowed_methods,
    reason = "a timeout the caller chose is measured on real time; it reveals no time to the caller"
)]
pub(crate) fn deadline_after(timeout: Duration) -> Option<Instant> {
    // A timeout too large to represent waits forever.
    Instant::now().checked_add(timeout)
}

#[allow(
    clippy::disallowed_methods,
    reason = "a deadline the caller chose is checked on real time; it reveals no time to the caller"
)]
pub(crate) fn passed(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|deadline| Instant::now() >= deadline)
}

/// The sending endpoint of a bounded channel.
///
/// Cloning a sender gives another endpoint on the same channel with the same
/// revocation; the channel disconnects for receivers when every sender is
/// dropped.
///
/// # Examples
///
/// ```
/// let (tx, rx) = compartment::channel::bounded::<&str>(1)?;
/// tx.send("one")?;
/// assert!(tx.try_send("two").is_err()); // full: pushed back, handed back
/// assert_eq!(rx.recv()?, "one");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Sender<T> {
    inner: cb::Sender<T>,
    id: ChannelId,
    capacity: usize,
    pub(crate) gate: Gate,
    /// In a process child, where this endpoint's messages go instead.
    #[cfg(all(feature = "process", target_os = "linux"))]
    outbox: Option<Arc<crate::process::Outbox<T>>>,
    /// On the supervisor's side, the rings of process children's senders
    /// that feed this channel (see `process::feed`).
    #[cfg(all(feature = "process", target_os = "linux"))]
    feeds: crate::process::Feeds<T>,
}

/// The receiving endpoint of a bounded channel.
///
/// Receivers can be cloned: every message goes to exactly one of them (a
/// pool of workers can share one mailbox). Messages queued in the channel
/// belong to the channel, not to an endpoint: dropping or revoking one
/// receiver leaves them for the others.
///
/// # Examples
///
/// ```
/// let (tx, rx) = compartment::channel::bounded::<u8>(4)?;
/// let other = rx.clone(); // receivers share the messages
/// tx.send(1)?;
/// assert_eq!(other.recv()?, 1);
/// assert!(rx.try_recv().is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Receiver<T> {
    inner: cb::Receiver<T>,
    id: ChannelId,
    capacity: usize,
    pub(crate) gate: Gate,
    /// In a process child, how this endpoint asks the supervisor's side for
    /// each next message and takes it (see `process::bridge`).
    #[cfg(all(feature = "process", target_os = "linux"))]
    inbox: Option<Arc<crate::process::Inbox<T>>>,
    /// On the supervisor's side, the rings of process children's senders
    /// that feed this channel, which a receive reads itself when the
    /// channel is empty (see `process::feed`).
    #[cfg(all(feature = "process", target_os = "linux"))]
    feeds: crate::process::Feeds<T>,
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            id: self.id,
            capacity: self.capacity,
            gate: self.gate.clone(),
            #[cfg(all(feature = "process", target_os = "linux"))]
            outbox: self.outbox.clone(),
            #[cfg(all(feature = "process", target_os = "linux"))]
            feeds: self.feeds.clone(),
        }
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            id: self.id,
            capacity: self.capacity,
            gate: self.gate.clone(),
            #[cfg(all(feature = "process", target_os = "linux"))]
            inbox: self.inbox.clone(),
            #[cfg(all(feature = "process", target_os = "linux"))]
            feeds: self.feeds.clone(),
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("channel", &self.id)
            .field("capacity", &self.capacity)
            .field("len", &self.inner.len())
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("channel", &self.id)
            .field("capacity", &self.capacity)
            .field("len", &self.inner.len())
            .finish_non_exhaustive()
    }
}

macro_rules! endpoint_queries {
    () => {
        /// The channel's id, shared by all its endpoints.
        ///
        /// # Examples
        ///
        /// ```
        /// let (tx, rx) = compartment::channel::bounded::<u32>(2)?;
        /// let (other, _) = compartment::channel::bounded::<u32>(2)?;
        /// assert_eq!(tx.id(), rx.id());
        /// assert_ne!(tx.id(), other.id());
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn id(&self) -> ChannelId {
            self.id
        }

        /// The channel's capacity.
        ///
        /// # Examples
        ///
        /// ```
        /// let (tx, rx) = compartment::channel::bounded::<u32>(2)?;
        /// assert_eq!(tx.capacity(), 2);
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn capacity(&self) -> usize {
            self.capacity
        }

        /// The number of messages queued now.
        ///
        /// Messages a process child sent on a bridged sender wait in the
        /// child's ring until a receive takes them (or the bridge's pump
        /// moves them here, which it does while no receive reads the
        /// ring): until then they are not counted.
        ///
        /// # Examples
        ///
        /// ```
        /// let (tx, rx) = compartment::channel::bounded::<u32>(2)?;
        /// tx.send(1)?;
        /// assert_eq!(rx.len(), 1);
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn len(&self) -> usize {
            self.inner.len()
        }

        /// Whether no message is queued now (see [`len`](Self::len) for
        /// messages still in a process child's ring).
        ///
        /// # Examples
        ///
        /// ```
        /// let (tx, rx) = compartment::channel::bounded::<u32>(2)?;
        /// assert!(rx.is_empty());
        /// tx.send(1)?;
        /// assert!(!rx.is_empty());
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn is_empty(&self) -> bool {
            self.inner.is_empty()
        }

        /// Whether the channel is at capacity now.
        ///
        /// # Examples
        ///
        /// ```
        /// let (tx, rx) = compartment::channel::bounded::<u32>(2)?;
        /// tx.send(1)?;
        /// tx.send(2)?;
        /// assert!(tx.is_full());
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn is_full(&self) -> bool {
            self.inner.is_full()
        }

        /// Whether this endpoint has been revoked.
        ///
        /// # Examples
        ///
        /// ```
        /// let (tx, rx) = compartment::channel::bounded::<u32>(2)?;
        /// assert!(!tx.is_revoked()); // a plain endpoint; a grant's is revoked with its instance
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn is_revoked(&self) -> bool {
            self.gate.check().is_err()
        }
    };
}

impl<T> Sender<T> {
    endpoint_queries!();

    /// Sends, waiting while the channel is full.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = compartment::channel::bounded::<u32>(2)?;
    /// tx.send(7)?;
    /// assert_eq!(rx.recv()?, 7);
    /// drop(rx);
    /// assert_eq!(tx.send(8).unwrap_err().into_inner(), 8); // handed back
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`SendError::Disconnected`] when every receiver is gone (or, on an
    /// endpoint a supervisor issued to an instance, when the send would wait
    /// after that instance was cancelled), [`SendError::Revoked`] when this
    /// endpoint is (or becomes, while waiting) revoked. The message is
    /// handed back.
    #[inline]
    pub fn send(&self, message: T) -> Result<(), SendError<T>> {
        if self.gate.is_plain() && !self.is_bridged() {
            // The hot path: nothing to watch but the channel itself.
            return self
                .inner
                .send(message)
                .map_err(|cb::SendError(m)| SendError::Disconnected(m));
        }
        self.send_until(message, None).map_err(|e| match e {
            SendTimeoutError::Timeout(m) | SendTimeoutError::Disconnected(m) => {
                SendError::Disconnected(m)
            }
            SendTimeoutError::Revoked(m) => SendError::Revoked(m),
        })
    }

    /// Sends if there is room now.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, _rx) = compartment::channel::bounded::<u32>(1)?;
    /// tx.try_send(1)?;
    /// let full = tx.try_send(2).unwrap_err();
    /// assert!(full.is_full());
    /// assert_eq!(full.into_inner(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`], [`TrySendError::Disconnected`],
    /// [`TrySendError::Revoked`]; the message is handed back.
    #[inline]
    pub fn try_send(&self, message: T) -> Result<(), TrySendError<T>> {
        if self.gate.check().is_err() {
            return Err(TrySendError::Revoked(message));
        }
        #[cfg(all(feature = "process", target_os = "linux"))]
        if let Some(outbox) = &self.outbox {
            return outbox.try_send(message).map_err(|(m, wake)| match wake {
                Wake::Timeout => TrySendError::Full(m),
                _ => TrySendError::Disconnected(m),
            });
        }
        self.inner.try_send(message).map_err(|e| match e {
            cb::TrySendError::Full(m) => TrySendError::Full(m),
            cb::TrySendError::Disconnected(m) => TrySendError::Disconnected(m),
        })
    }

    /// Sends, waiting at most `timeout` for room.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let (tx, _rx) = compartment::channel::bounded::<u32>(1)?;
    /// tx.send(1)?;
    /// let late = tx.send_timeout(2, Duration::from_millis(10)).unwrap_err();
    /// assert!(late.is_timeout());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`SendTimeoutError::Timeout`], [`SendTimeoutError::Disconnected`],
    /// [`SendTimeoutError::Revoked`]; the message is handed back.
    pub fn send_timeout(&self, message: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        self.send_until(message, deadline_after(timeout))
    }

    #[inline]
    pub(crate) fn send_until(
        &self,
        message: T,
        deadline: Option<Instant>,
    ) -> Result<(), SendTimeoutError<T>> {
        self.send_with(message, &[], deadline)
            .map_err(|(m, e)| match e {
                Wake::Timeout => SendTimeoutError::Timeout(m),
                Wake::Disconnected | Wake::Stopped => SendTimeoutError::Disconnected(m),
                Wake::Revoked | Wake::Interrupted(_) => SendTimeoutError::Revoked(m),
            })
    }

    /// Sends, also waking when one of `extra` fires (used by
    /// [`Context`](crate::Context) for cancellation).
    #[inline]
    pub(crate) fn send_with(
        &self,
        message: T,
        extra: &[&Signal],
        deadline: Option<Instant>,
    ) -> Result<(), (T, Wake)> {
        #[cfg(all(feature = "process", target_os = "linux"))]
        if let Some(outbox) = &self.outbox {
            return outbox.send(message, &self.gate, extra, deadline);
        }
        if self.gate.is_plain() && extra.is_empty() {
            // Nothing to watch but the channel itself.
            return send_interruptible(&self.inner, message, &[], deadline)
                .map_err(|(m, e)| (m, Wake::from_interrupt(e, Own::default())));
        }
        // The first try is inline, so that a send to a channel with room
        // costs what a plain endpoint's does; the wait is a call away.
        if stopped(&self.gate, extra).is_none() {
            return match self.inner.try_send(message) {
                Ok(()) => Ok(()),
                Err(cb::TrySendError::Disconnected(m)) => Err((m, Wake::Disconnected)),
                Err(cb::TrySendError::Full(m)) => self.send_waiting(m, extra, deadline),
            };
        }
        self.send_waiting(message, extra, deadline)
    }

    /// [`send_with`](Self::send_with) once its first try found no room (or
    /// found it must not wait): while no switch or extra interrupt has
    /// fired, try again, backing off as crossbeam does before it blocks;
    /// only a send that would still wait builds a selection.
    #[inline(never)]
    fn send_waiting(
        &self,
        message: T,
        extra: &[&Signal],
        deadline: Option<Instant>,
    ) -> Result<(), (T, Wake)> {
        let mut message = message;
        let backoff = Backoff::new();
        loop {
            if let Some(wake) = stopped(&self.gate, extra) {
                return Err((message, wake));
            }
            message = match self.inner.try_send(message) {
                Ok(()) => return Ok(()),
                Err(cb::TrySendError::Disconnected(m)) => return Err((m, Wake::Disconnected)),
                Err(cb::TrySendError::Full(m)) => m,
            };
            // The instance was cancelled: a send that would wait ends here.
            if self.gate.is_woken() {
                return Err((message, Wake::Stopped));
            }
            if backoff.is_completed() {
                break;
            }
            backoff.snooze();
        }
        let (interrupts, own) = interrupts(&self.gate, extra);
        send_interruptible(&self.inner, message, &interrupts, deadline)
            .map_err(|(m, e)| (m, Wake::from_interrupt(e, own)))
    }
}

impl<T> Sender<T> {
    /// The rings that feed this sender's channel, where a process child's
    /// bridged sender registers its own.
    #[cfg(all(feature = "process", target_os = "linux"))]
    pub(crate) fn feeds(&self) -> crate::process::Feeds<T> {
        self.feeds.clone()
    }

    /// The crossbeam channel underneath, for a process child's ring that
    /// feeds it.
    #[cfg(all(feature = "process", target_os = "linux"))]
    pub(crate) fn crossbeam(&self) -> &cb::Sender<T> {
        &self.inner
    }

    /// Whether this sender stands for a channel of another process.
    #[inline]
    fn is_bridged(&self) -> bool {
        #[cfg(all(feature = "process", target_os = "linux"))]
        return self.outbox.is_some();
        #[cfg(not(all(feature = "process", target_os = "linux")))]
        false
    }
}

/// How an interruptible channel wait ended, seen from an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    Disconnected,
    Timeout,
    Revoked,
    /// The instance the endpoint was issued to was cancelled: a blocking
    /// wait ends as if the channel were disconnected.
    Stopped,
    /// One of the caller's extra interrupts, by index.
    Interrupted(usize),
}

impl Wake {
    pub(crate) fn from_interrupt(interrupt: Interrupted, own: Own) -> Self {
        match interrupt {
            Interrupted::Disconnected => Wake::Disconnected,
            Interrupted::Timeout => Wake::Timeout,
            Interrupted::By(i) if i < own.revokes => Wake::Revoked,
            Interrupted::By(i) if i < own.revokes + own.wakes => Wake::Stopped,
            Interrupted::By(i) => Wake::Interrupted(i - own.revokes - own.wakes),
        }
    }
}

impl<T> Receiver<T> {
    endpoint_queries!();

    /// Receives, waiting for a message.
    ///
    /// # Errors
    ///
    /// [`RecvError::Disconnected`] when the channel is empty and every sender
    /// is gone — or, on an endpoint a supervisor issued to an instance, once
    /// that instance is cancelled and nothing is queued, so that a plain
    /// `for message in inbox.iter()` ends with its instance;
    /// [`RecvError::Revoked`] when this endpoint is (or becomes, while
    /// waiting) revoked.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = compartment::channel::bounded::<u32>(2)?;
    /// tx.send(1)?;
    /// assert_eq!(rx.recv()?, 1);
    /// drop(tx);
    /// assert!(rx.recv().is_err()); // every sender gone
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn recv(&self) -> Result<T, RecvError> {
        if self.gate.is_plain() && !self.is_bridged() {
            // The hot path: nothing to watch but the channel itself.
            self.ask();
            return self.took(self.inner.recv().map_err(|_| RecvError::Disconnected));
        }
        self.recv_until(None).map_err(|e| match e {
            RecvTimeoutError::Revoked => RecvError::Revoked,
            RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected => RecvError::Disconnected,
        })
    }

    /// Receives a message if one is queued now.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = compartment::channel::bounded::<u32>(2)?;
    /// assert!(rx.try_recv().is_err()); // empty
    /// tx.send(1)?;
    /// assert_eq!(rx.try_recv()?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`], [`TryRecvError::Disconnected`],
    /// [`TryRecvError::Revoked`].
    #[inline]
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        if self.gate.check().is_err() {
            return Err(TryRecvError::Revoked);
        }
        self.ask();
        let received = match self.inner.try_recv() {
            Err(cb::TryRecvError::Empty) => match self.pull() {
                Ok(Some(message)) => Ok(message),
                Ok(None) => Err(TryRecvError::Empty),
                Err(_) => Err(TryRecvError::Disconnected),
            },
            Ok(message) => Ok(message),
            Err(cb::TryRecvError::Disconnected) => Err(TryRecvError::Disconnected),
        };
        self.took(received)
    }

    /// Receives, waiting at most `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let (tx, rx) = compartment::channel::bounded::<u32>(2)?;
    /// assert!(rx.recv_timeout(Duration::from_millis(10)).is_err());
    /// tx.send(1)?;
    /// assert_eq!(rx.recv_timeout(Duration::from_secs(1))?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`], [`RecvTimeoutError::Disconnected`],
    /// [`RecvTimeoutError::Revoked`].
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.recv_until(deadline_after(timeout))
    }

    #[inline]
    pub(crate) fn recv_until(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        self.recv_with(&[], deadline).map_err(|e| match e {
            Wake::Timeout => RecvTimeoutError::Timeout,
            Wake::Disconnected | Wake::Stopped => RecvTimeoutError::Disconnected,
            Wake::Revoked | Wake::Interrupted(_) => RecvTimeoutError::Revoked,
        })
    }

    /// The crossbeam channel underneath, for a selection over several
    /// endpoints (`Context::select`).
    pub(crate) fn crossbeam(&self) -> &cb::Receiver<T> {
        &self.inner
    }

    /// Receives, also waking when one of `extra` fires (used by
    /// [`Context`](crate::Context) for cancellation).
    #[inline]
    pub(crate) fn recv_with(
        &self,
        extra: &[&Signal],
        deadline: Option<Instant>,
    ) -> Result<T, Wake> {
        self.recv_patiently(extra, deadline, self.patience())
    }

    /// As [`recv_with`](Self::recv_with), looking for a message `patience`
    /// more times, yielding between looks, once it has backed off as
    /// crossbeam does and before it sleeps: for a wait whose message is
    /// expected within microseconds, such as one a process bridge serves.
    pub(crate) fn recv_patiently(
        &self,
        extra: &[&Signal],
        deadline: Option<Instant>,
        patience: u32,
    ) -> Result<T, Wake> {
        self.ask();
        self.took(self.wait(extra, deadline, patience))
    }

    #[inline]
    fn wait(&self, extra: &[&Signal], deadline: Option<Instant>, patience: u32) -> Result<T, Wake> {
        if self.gate.is_plain() && extra.is_empty() && patience == 0 && !self.is_bridged() {
            // Nothing to watch but the channel itself.
            return recv_interruptible(&self.inner, &[], deadline)
                .map_err(|e| Wake::from_interrupt(e, Own::default()));
        }
        // As in `Sender::send_with`: the first look is inline, the wait a
        // call away.
        if stopped(&self.gate, extra).is_none() {
            match self.inner.try_recv() {
                Ok(message) => return Ok(message),
                Err(cb::TryRecvError::Disconnected) => return Err(Wake::Disconnected),
                Err(cb::TryRecvError::Empty) => {}
            }
        }
        self.wait_patiently(extra, deadline, patience)
    }

    /// [`wait`](Self::wait) once its first look found nothing (or found
    /// it must not wait): a message that is queued, or arrives while
    /// backing off, is taken without building a selection.
    #[inline(never)]
    fn wait_patiently(
        &self,
        extra: &[&Signal],
        deadline: Option<Instant>,
        mut patience: u32,
    ) -> Result<T, Wake> {
        let backoff = Backoff::new();
        loop {
            if let Some(wake) = stopped(&self.gate, extra) {
                return Err(wake);
            }
            match self.inner.try_recv() {
                Ok(message) => return Ok(message),
                Err(cb::TryRecvError::Disconnected) => return Err(Wake::Disconnected),
                Err(cb::TryRecvError::Empty) => {}
            }
            if let Some(message) = self.pull()? {
                return Ok(message);
            }
            // The instance was cancelled: a receive that would wait ends
            // here; queued messages are still taken above.
            if self.gate.is_woken() {
                return Err(Wake::Stopped);
            }
            if !backoff.is_completed() {
                backoff.snooze();
            } else if patience > 0 && !passed(deadline) {
                patience -= 1;
                std::thread::yield_now();
            } else if self.arm() {
                break;
            }
        }
        let (interrupts, own) = interrupts(&self.gate, extra);
        let received = recv_interruptible(&self.inner, &interrupts, deadline)
            .map_err(|e| Wake::from_interrupt(e, own));
        self.disarm();
        received
    }

    /// How patient this endpoint's waits are (see
    /// [`recv_patiently`](Self::recv_patiently)): a bridged receiver in a
    /// process child has just asked for its message, which is a socket hop
    /// away, and a receiver whose channel a process child's ring feeds
    /// reads the ring itself while it looks (asleep, it would need the
    /// bridge's pump woken to put the message where it sleeps); every
    /// other endpoint sleeps once it has backed off.
    #[inline]
    fn patience(&self) -> u32 {
        #[cfg(all(feature = "process", target_os = "linux"))]
        if self.is_bridged() {
            return crate::process::PATIENCE;
        }
        0
    }

    /// In a process child: asks the supervisor's side for the next message,
    /// unless a request is outstanding. Asking again says the last message
    /// taken was handled.
    #[inline]
    pub(crate) fn ask(&self) {
        #[cfg(all(feature = "process", target_os = "linux"))]
        if let Some(inbox) = &self.inbox {
            inbox.ask();
        }
    }

    /// Whether this receiver stands for a channel of another process, or
    /// a process child's ring feeds its channel.
    #[inline]
    fn is_bridged(&self) -> bool {
        #[cfg(all(feature = "process", target_os = "linux"))]
        return self.inbox.is_some() || self.feeds.any();
        #[cfg(not(all(feature = "process", target_os = "linux")))]
        false
    }

    /// In a process child: the message asked for, if it is here outside the
    /// local channel (see `process::Inbox::pull`).
    #[inline]
    fn pull(&self) -> Result<Option<T>, Wake> {
        #[cfg(all(feature = "process", target_os = "linux"))]
        return match &self.inbox {
            Some(inbox) => inbox.pull(),
            None => Ok(self.feeds.take(&self.inner)),
        };
        #[cfg(not(all(feature = "process", target_os = "linux")))]
        Ok(None)
    }

    /// Before a wait on the local channel (a receive about to sleep, a
    /// selection): in a process child, has the message asked for put
    /// there; `false` if it is here already, for the next receive to take.
    ///
    /// On the supervisor's side, the pumps of the rings that feed the
    /// channel put their messages there until [`disarm`](Self::disarm).
    pub(crate) fn arm(&self) -> bool {
        #[cfg(all(feature = "process", target_os = "linux"))]
        {
            if let Some(inbox) = &self.inbox {
                return inbox.arm();
            }
            self.feeds.arm();
        }
        true
    }

    /// After a wait that [`arm`](Self::arm) began.
    pub(crate) fn disarm(&self) {
        #[cfg(all(feature = "process", target_os = "linux"))]
        if self.inbox.is_none() {
            self.feeds.disarm();
        }
    }

    /// Notes a message taken: the next receive asks for another.
    #[inline]
    fn took<R, E>(&self, result: Result<R, E>) -> Result<R, E> {
        #[cfg(all(feature = "process", target_os = "linux"))]
        if let (Some(inbox), Ok(_)) = (&self.inbox, &result) {
            inbox.took();
        }
        result
    }

    /// A blocking iterator that ends when the channel is disconnected or this
    /// endpoint is revoked.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = compartment::channel::bounded::<u32>(2)?;
    /// tx.send(1)?;
    /// tx.send(2)?;
    /// drop(tx);
    /// assert_eq!(rx.iter().collect::<Vec<_>>(), [1, 2]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = T> + '_ {
        std::iter::from_fn(move || self.recv().ok())
    }

    /// An iterator over the messages queued now; it never blocks.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = compartment::channel::bounded::<u32>(2)?;
    /// tx.send(1)?;
    /// assert_eq!(rx.try_iter().collect::<Vec<_>>(), [1]); // does not wait for more
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_iter(&self) -> impl Iterator<Item = T> + '_ {
        std::iter::from_fn(move || self.try_recv().ok())
    }
}

/// A receiver that a selection armed (see [`Receiver::arm`]), to disarm
/// once it has waited, whatever its message type.
pub(crate) trait Armed {
    /// See [`Receiver::disarm`].
    fn disarm(&self);
}

impl<T> Armed for Receiver<T> {
    fn disarm(&self) {
        Receiver::disarm(self);
    }
}

grant_by_clone!(generic T, Sender<T>, |sender| Capability::Sender {
    channel: sender.id,
    message: std::any::type_name::<T>(),
    capacity: sender.capacity,
});

grant_by_clone!(generic T, Receiver<T>, |receiver| Capability::Receiver {
    channel: receiver.id,
    message: std::any::type_name::<T>(),
    capacity: receiver.capacity,
});
