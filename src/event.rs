//! Lifecycle events: every step a supervision tree takes, as data on bounded
//! streams that tests and operators read.
//!
//! Subscribe with [`Supervisor::events`](crate::Supervisor::events) before
//! starting (to see the start itself) or [`System::events`](crate::System::events)
//! later. Each subscriber has its own bounded buffer; a subscriber that falls
//! behind loses events instead of slowing the tree down, and
//! [`Events::dropped`] says how many.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel as cb;
use parking_lot::Mutex;

use crate::fault::Fault;
use crate::lockdown::Enforcement;

/// Why an instance ended without a fault.
///
/// # Examples
///
/// ```
/// # use compartment::{Child, Context, Supervisor};
/// # fn idle(_: (), cx: &Context) -> Result<(), compartment::Cancelled> {
/// #     loop { cx.sleep(std::time::Duration::from_secs(60))?; }
/// # }
/// use std::time::Duration;
/// use compartment::event::EventKind;
/// let spec = Supervisor::new("app").child(Child::new("idle", idle, ()));
/// let events = spec.events(16);
/// let system = spec.start()?;
/// use compartment::event::ExitReason;
/// system.shutdown();
/// assert!(events.drain().iter().any(|e| matches!(e.kind, EventKind::Exited { reason: ExitReason::Shutdown, .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExitReason {
    /// The component returned `Ok` on its own.
    Normal,
    /// The component stopped because its supervisor asked it to.
    Shutdown,
}

/// One step in the life of a supervision tree.
///
/// # Examples
///
/// ```
/// # use compartment::{Child, Context, Supervisor};
/// # fn idle(_: (), cx: &Context) -> Result<(), compartment::Cancelled> {
/// #     loop { cx.sleep(std::time::Duration::from_secs(60))?; }
/// # }
/// use std::time::Duration;
/// use compartment::event::EventKind;
/// let spec = Supervisor::new("app").child(Child::new("idle", idle, ()));
/// let events = spec.events(16);
/// let system = spec.start()?;
/// system.shutdown();
/// let kinds: Vec<EventKind> = events.drain().into_iter().map(|e| e.kind).collect();
/// assert!(kinds.iter().any(|k| matches!(k, EventKind::Started)));
/// assert!(kinds.iter().any(|k| matches!(k, EventKind::Exited { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum EventKind {
    /// An instance (or a nested supervisor) started.
    Started,
    /// An instance's thread was confined by the kernel before its entry ran
    /// (published just before `Started` or `Restarted`).
    LockedDown {
        /// What the kernel enforces.
        enforcement: Enforcement,
    },
    /// An instance ended without a fault.
    Exited {
        /// Why.
        reason: ExitReason,
    },
    /// An instance panicked, returned an error, or could not start.
    Faulted {
        /// What happened.
        fault: Fault,
    },
    /// A supervisor is restarting children after a fault (reported on the
    /// supervisor's path).
    Restarting {
        /// The child whose exit caused the restart.
        cause: String,
        /// The children the strategy restarts, in start order.
        children: Vec<String>,
    },
    /// A child is running again, as a new instance.
    Restarted,
    /// A child's restart waits for its backoff delay.
    BackingOff {
        /// How long, on the supervisor's clock.
        delay: Duration,
    },
    /// A supervisor exceeded its restart intensity, stopped its children and
    /// failed (reported on the supervisor's path).
    GaveUp {
        /// The restart intensity: at most this many restarts ...
        max_restarts: u32,
        /// ... within this period.
        period: Duration,
    },
    /// A supervisor that gave up reported its failure to its parent.
    Escalated {
        /// The fault that exhausted its intensity.
        fault: Fault,
    },
    /// A supervisor shut itself down because significant children ended.
    AutoShutdown {
        /// The child whose exit triggered it.
        trigger: String,
    },
    /// An instance ignored its shutdown request: its capabilities were
    /// revoked and its thread detached — or, for a process child, its
    /// process killed.
    ShutdownTimedOut {
        /// The shutdown timeout it exceeded.
        timeout: Duration,
    },
    /// A message crashed the component too many times in a row and went to
    /// the dead-letter sink instead of being delivered again.
    DeadLettered {
        /// The message, formatted with `Debug`.
        description: String,
        /// How many instances died handling it.
        attempts: u32,
        /// What became of it.
        disposal: Disposal,
    },
}

/// What became of a dead letter.
///
/// # Examples
///
/// ```
/// use compartment::channel::{self, Receiver};
/// use compartment::event::{Disposal, EventKind};
/// use compartment::{Child, Context, ContextError, Supervisor};
///
/// fn fragile(jobs: Receiver<u32>, cx: &Context) -> Result<(), ContextError> {
///     loop {
///         cx.recv(&jobs)?;
///         panic!("every job crashes me");
///     }
/// }
///
/// let (sink, _letters) = channel::bounded(4)?;
/// let (tx, jobs) = channel::bounded(4)?;
/// let spec = Supervisor::new("app")
///     .dead_letters(sink)
///     .child(Child::new("fragile", fragile, jobs).poison_threshold(1));
/// let events = spec.events(64);
/// let system = spec.start()?;
/// tx.send(1)?;
/// let (letter, _) = events.wait_for(std::time::Duration::from_secs(30), |e| {
///     matches!(e.kind, EventKind::DeadLettered { .. })
/// });
/// assert!(matches!(letter.map(|e| e.kind), Some(EventKind::DeadLettered { disposal: Disposal::Delivered, .. })));
/// system.shutdown();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Disposal {
    /// The dead-letter sink accepted it.
    Delivered,
    /// The sink was full (it is bounded too); the message was dropped.
    SinkFull,
    /// The tree has no sink; the message was dropped after this event.
    NoSink,
}

/// A lifecycle event.
///
/// # Examples
///
/// ```
/// # use compartment::{Child, Context, Supervisor};
/// # fn idle(_: (), cx: &Context) -> Result<(), compartment::Cancelled> {
/// #     loop { cx.sleep(std::time::Duration::from_secs(60))?; }
/// # }
/// use std::time::Duration;
/// use compartment::event::EventKind;
/// let spec = Supervisor::new("app").child(Child::new("idle", idle, ()));
/// let events = spec.events(16);
/// let system = spec.start()?;
/// let (started, _) = events.wait_for(Duration::from_secs(30), |e| matches!(e.kind, EventKind::Started));
/// let started = started.expect("the child starts");
/// assert_eq!((started.path.as_str(), started.instance), ("app/idle", Some(1)));
/// println!("{started}"); // app/idle#1 started
/// system.shutdown();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Position in the tree's event sequence, from 1.
    pub seq: u64,
    /// When, on the supervisor's clock.
    pub at: Instant,
    /// The child or supervisor the event is about, such as `app/db`.
    pub path: String,
    /// The instance, for events about an instance.
    pub instance: Option<u64>,
    /// What happened.
    pub kind: EventKind,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path)?;
        if let Some(instance) = self.instance {
            write!(f, "#{instance}")?;
        }
        f.write_str(" ")?;
        match &self.kind {
            EventKind::Started => f.write_str("started"),
            EventKind::LockedDown { enforcement } => write!(f, "locked down: {enforcement}"),
            EventKind::Exited { reason } => match reason {
                ExitReason::Normal => f.write_str("exited normally"),
                ExitReason::Shutdown => f.write_str("stopped"),
            },
            EventKind::Faulted { fault } => write!(f, "FAULTED: {}", FaultSummary(fault)),
            EventKind::Restarting { cause, children } => {
                write!(f, "restarting [{}] after {cause}", children.join(", "))
            }
            EventKind::Restarted => f.write_str("restarted"),
            EventKind::BackingOff { delay } => write!(f, "backing off {delay:?}"),
            EventKind::GaveUp {
                max_restarts,
                period,
            } => write!(
                f,
                "GAVE UP: more than {max_restarts} restarts within {period:?}"
            ),
            EventKind::Escalated { fault } => write!(f, "escalated: {}", FaultSummary(fault)),
            EventKind::AutoShutdown { trigger } => write!(f, "auto-shutdown after {trigger} ended"),
            EventKind::ShutdownTimedOut { timeout } => write!(
                f,
                "ignored shutdown for {timeout:?}: capabilities revoked, thread detached or process killed"
            ),
            EventKind::DeadLettered {
                description,
                attempts,
                disposal,
            } => write!(
                f,
                "dead-lettered {description} after {attempts} attempts{}",
                match disposal {
                    Disposal::Delivered => "",
                    Disposal::SinkFull => " (sink full: dropped)",
                    Disposal::NoSink => " (no sink: dropped)",
                }
            ),
        }
    }
}

/// A fault without its path and instance, which the event already shows.
struct FaultSummary<'a>(&'a Fault);

impl fmt::Display for FaultSummary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0.to_string();
        let prefix = format!("{}#{} ", self.0.path, self.0.instance);
        f.write_str(text.strip_prefix(&prefix).unwrap_or(&text))
    }
}

/// A subscription to a tree's events.
///
/// # Examples
///
/// ```
/// # use compartment::{Child, Context, Supervisor};
/// # fn idle(_: (), cx: &Context) -> Result<(), compartment::Cancelled> {
/// #     loop { cx.sleep(std::time::Duration::from_secs(60))?; }
/// # }
/// use std::time::Duration;
/// use compartment::event::EventKind;
/// let spec = Supervisor::new("app").child(Child::new("idle", idle, ()));
/// let events = spec.events(16);
/// let system = spec.start()?;
/// let (started, _) = events.wait_for(Duration::from_secs(30), |e| matches!(e.kind, EventKind::Started));
/// assert!(started.is_some());
/// system.shutdown();
/// assert_eq!(events.dropped(), 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Events {
    inner: cb::Receiver<Event>,
    dropped: Arc<AtomicU64>,
    /// Events [`wait_for`](Self::wait_for) passed over, kept in order for
    /// the next receive.
    skipped: Mutex<VecDeque<Event>>,
}

impl Events {
    /// The next event, waiting at most `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use compartment::{Child, Context, Supervisor};
    /// # fn idle(_: (), cx: &Context) -> Result<(), compartment::Cancelled> {
    /// #     loop { cx.sleep(std::time::Duration::from_secs(60))?; }
    /// # }
    /// use std::time::Duration;
    /// let spec = Supervisor::new("app").child(Child::new("idle", idle, ()));
    /// let events = spec.events(16);
    /// let system = spec.start()?;
    /// let first = events.recv_timeout(Duration::from_secs(30)).expect("an event");
    /// assert_eq!(first.seq, 1);
    /// system.shutdown();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Event> {
        if let Some(kept) = self.skipped.lock().pop_front() {
            return Some(kept);
        }
        self.inner.recv_timeout(timeout).ok()
    }

    /// The next event, if one is waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// # use compartment::{Child, Context, Supervisor};
    /// # fn idle(_: (), cx: &Context) -> Result<(), compartment::Cancelled> {
    /// #     loop { cx.sleep(std::time::Duration::from_secs(60))?; }
    /// # }
    /// use std::time::Duration;
    /// let spec = Supervisor::new("app").child(Child::new("idle", idle, ()));
    /// let events = spec.events(16);
    /// let system = spec.start()?;
    /// system.shutdown(); // the tree's events are queued by now
    /// assert!(events.try_recv().is_some()); // taken without waiting
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_recv(&self) -> Option<Event> {
        if let Some(kept) = self.skipped.lock().pop_front() {
            return Some(kept);
        }
        self.inner.try_recv().ok()
    }

    /// The events waiting now.
    ///
    /// # Examples
    ///
    /// ```
    /// # use compartment::{Child, Context, Supervisor};
    /// # fn idle(_: (), cx: &Context) -> Result<(), compartment::Cancelled> {
    /// #     loop { cx.sleep(std::time::Duration::from_secs(60))?; }
    /// # }
    /// use std::time::Duration;
    /// let spec = Supervisor::new("app").child(Child::new("idle", idle, ()));
    /// let events = spec.events(16);
    /// let system = spec.start()?;
    /// system.shutdown();
    /// let all = events.drain(); // what the buffer held
    /// assert!(!all.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn drain(&self) -> Vec<Event> {
        let mut events: Vec<Event> = self.skipped.lock().drain(..).collect();
        events.extend(self.inner.try_iter());
        events
    }

    /// Waits until an event matches `predicate`, giving up after `timeout`;
    /// returns the match and copies of the events before it.
    ///
    /// The events it passes over are not consumed: the next receive (or
    /// `wait_for`, or [`drain`](Self::drain)) sees them again, in order. So
    /// waiting for one child's event never loses another's. The match is
    /// consumed.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use compartment::event::EventKind;
    /// use compartment::{Child, Context, Restart, Supervisor};
    ///
    /// fn quick(_: (), _: &Context) -> Result<(), std::io::Error> {
    ///     Ok(())
    /// }
    ///
    /// let supervisor = Supervisor::new("app")
    ///     .child(Child::new("a", quick, ()).restart(Restart::Temporary))
    ///     .child(Child::new("b", quick, ()).restart(Restart::Temporary));
    /// let events = supervisor.events(64);
    /// let system = supervisor.start()?;
    /// let exited = |name: &'static str| {
    ///     move |e: &compartment::event::Event| {
    ///         e.path.ends_with(name) && matches!(e.kind, EventKind::Exited { .. })
    ///     }
    /// };
    /// // Whichever ended first, both are found.
    /// assert!(events.wait_for(Duration::from_secs(30), exited("b")).0.is_some());
    /// assert!(events.wait_for(Duration::from_secs(30), exited("a")).0.is_some());
    /// system.shutdown();
    /// # Ok::<(), compartment::StartError>(())
    /// ```
    pub fn wait_for(
        &self,
        timeout: Duration,
        mut predicate: impl FnMut(&Event) -> bool,
    ) -> (Option<Event>, Vec<Event>) {
        let mut before = {
            let mut kept = self.skipped.lock();
            if let Some(position) = kept.iter().position(&mut predicate) {
                let before = kept.iter().take(position).cloned().collect();
                return (kept.remove(position), before);
            }
            kept.iter().cloned().collect::<Vec<_>>()
        };
        let deadline = crate::channel::deadline_after(timeout);
        loop {
            let next = match deadline {
                Some(deadline) => self.inner.recv_deadline(deadline).ok(),
                None => self.inner.recv().ok(),
            };
            match next {
                Some(event) if predicate(&event) => return (Some(event), before),
                Some(event) => {
                    before.push(event.clone());
                    self.skipped.lock().push_back(event);
                }
                None => return (None, before),
            }
        }
    }

    /// How many events this subscriber lost because its buffer was full.
    ///
    /// # Examples
    ///
    /// ```
    /// # use compartment::{Child, Context, Supervisor};
    /// # fn idle(_: (), cx: &Context) -> Result<(), compartment::Cancelled> {
    /// #     loop { cx.sleep(std::time::Duration::from_secs(60))?; }
    /// # }
    /// let spec = Supervisor::new("app").child(Child::new("idle", idle, ()));
    /// let events = spec.events(1); // room for one
    /// let system = spec.start()?;
    /// system.shutdown(); // more events than the buffer has room for
    /// assert!(events.dropped() > 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[derive(Debug)]
struct Subscriber {
    tx: cb::Sender<Event>,
    dropped: Arc<AtomicU64>,
}

/// Fans events out to subscribers without ever blocking the publisher.
#[derive(Debug, Default)]
pub(crate) struct EventBus {
    subscribers: Mutex<Vec<Subscriber>>,
    seq: AtomicU64,
}

impl EventBus {
    pub(crate) fn subscribe(&self, capacity: usize) -> Events {
        let (tx, rx) = cb::bounded(capacity.max(1));
        let dropped = Arc::new(AtomicU64::new(0));
        self.subscribers.lock().push(Subscriber {
            tx,
            dropped: Arc::clone(&dropped),
        });
        Events {
            inner: rx,
            dropped,
            skipped: Mutex::default(),
        }
    }

    pub(crate) fn publish(&self, at: Instant, path: &str, instance: Option<u64>, kind: EventKind) {
        let event = Event {
            seq: self.seq.fetch_add(1, Ordering::Relaxed) + 1,
            at,
            path: path.to_owned(),
            instance,
            kind,
        };
        // A subscriber is user code: a panic in it is contained (and the
        // event still reaches this tree's own subscribers).
        #[cfg(feature = "tracing")]
        let _ = crate::fault::contain(|| trace(&event));
        self.subscribers
            .lock()
            .retain(|subscriber| match subscriber.tx.try_send(event.clone()) {
                Ok(()) => true,
                Err(cb::TrySendError::Full(_)) => {
                    subscriber.dropped.fetch_add(1, Ordering::Relaxed);
                    true
                }
                Err(cb::TrySendError::Disconnected(_)) => false,
            });
    }
}

/// The `tracing` bridge: faults and give-ups at `error`, timeouts and dead
/// letters at `warn`, the rest at `info`, all under the target
/// `compartment`.
#[cfg(feature = "tracing")]
fn trace(event: &Event) {
    let instance = event.instance.unwrap_or(0);
    match &event.kind {
        EventKind::Faulted { .. } | EventKind::GaveUp { .. } | EventKind::Escalated { .. } => {
            tracing::error!(target: "compartment", path = %event.path, instance, "{event}")
        }
        EventKind::ShutdownTimedOut { .. } | EventKind::DeadLettered { .. } => {
            tracing::warn!(target: "compartment", path = %event.path, instance, "{event}")
        }
        _ => tracing::info!(target: "compartment", path = %event.path, instance, "{event}"),
    }
}
