//! Running one component synchronously inside a test.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::channel::{SendTimeoutError, Sender};
use crate::component::{BoxError, Child};
use crate::context::Context;
use crate::event::{Event, EventKind, ExitReason};
use crate::fault::Fault;
use crate::grant::Grant;
use crate::supervisor::{StartError, Supervisor};

/// How a harnessed component ended.
///
/// # Examples
///
/// ```
/// use compartment::testkit::{Harness, RunExit};
/// use compartment::Context;
/// fn ok(_: (), _: &Context) -> Result<(), std::io::Error> { Ok(()) }
/// assert_eq!(Harness::new("ok", ok, ()).run()?.exit, RunExit::Completed);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum RunExit {
    /// It returned `Ok`.
    Completed,
    /// It returned `Err` or panicked.
    Faulted(Fault),
    /// It was still running when the timeout passed; it was then cancelled.
    TimedOut,
}

/// What a harnessed component did.
///
/// # Examples
///
/// ```
/// use compartment::testkit::Harness;
/// use compartment::Context;
/// fn ok(_: (), _: &Context) -> Result<(), std::io::Error> { Ok(()) }
/// let run = Harness::new("ok", ok, ()).run()?;
/// assert!(run.completed() && run.fault().is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// How it ended.
    pub exit: RunExit,
    /// Every lifecycle event, from its start to its end.
    pub events: Vec<Event>,
}

impl Run {
    /// Whether it returned `Ok`.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::channel::{self, Receiver};
    /// use compartment::testkit::Harness;
    /// use compartment::{Context, ContextError};
    ///
    /// fn sums(numbers: Receiver<u64>, cx: &Context) -> Result<(), ContextError> {
    ///     let mut total = 0;
    ///     for n in cx.recv_iter(&numbers) {
    ///         total += n;
    ///     }
    ///     if total > 10 { Err(ContextError::Disconnected) } else { Ok(()) }
    /// }
    ///
    /// let (tx, numbers) = channel::bounded(4)?;
    /// let run = Harness::new("sums", sums, numbers).feed(tx, [1, 2, 3]).run()?;
    /// assert!(run.completed());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn completed(&self) -> bool {
        self.exit == RunExit::Completed
    }

    /// Its fault, if it failed.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::channel::{self, Receiver};
    /// use compartment::testkit::Harness;
    /// use compartment::{Context, ContextError};
    ///
    /// fn sums(numbers: Receiver<u64>, cx: &Context) -> Result<(), ContextError> {
    ///     let mut total = 0;
    ///     for n in cx.recv_iter(&numbers) {
    ///         total += n;
    ///     }
    ///     if total > 10 { Err(ContextError::Disconnected) } else { Ok(()) }
    /// }
    ///
    /// let (tx, numbers) = channel::bounded(4)?;
    /// let run = Harness::new("sums", sums, numbers).feed(tx, [5, 6]).run()?;
    /// assert!(run.fault().is_some());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn fault(&self) -> Option<&Fault> {
        match &self.exit {
            RunExit::Faulted(fault) => Some(fault),
            _ => None,
        }
    }
}

/// Sends its messages, giving up once the flag says the run is over.
type Feed = Box<dyn FnOnce(&AtomicBool) + Send>;

/// Runs one component, once, with a given grant, and reports what it did.
///
/// The component runs under a one-child supervisor exactly as it would in
/// an application (its own thread, the one panic boundary, its `Context`),
/// but is never restarted. [`feed`](Self::feed) fills its mailbox; the
/// timeout bounds the run.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use compartment::channel::{self, Receiver};
/// use compartment::testkit::Harness;
/// use compartment::{Context, Grant};
///
/// #[derive(Grant)]
/// struct Doubler { inbox: Receiver<u32> }
///
/// fn doubler(g: Doubler, cx: &Context) -> Result<(), String> {
///     for n in cx.recv_iter(&g.inbox) {
///         if n > 100 { return Err(format!("{n} is too large")); }
///     }
///     Ok(())
/// }
///
/// let (tx, inbox) = channel::bounded(4)?;
/// let run = Harness::new("doubler", doubler, Doubler { inbox })
///     .feed(tx, [1, 2, 300])
///     .timeout(Duration::from_secs(5))
///     .run()?;
/// assert_eq!(run.fault().unwrap().message(), "300 is too large");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Harness {
    child: Child,
    timeout: Duration,
    feeds: Vec<Feed>,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("child", &self.child)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Harness {
    /// A harness for `entry` with `grant`, with a 10 s timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::channel::{self, Receiver};
    /// use compartment::testkit::Harness;
    /// use compartment::{Context, ContextError};
    ///
    /// fn sums(numbers: Receiver<u64>, cx: &Context) -> Result<(), ContextError> {
    ///     let mut total = 0;
    ///     for n in cx.recv_iter(&numbers) {
    ///         total += n;
    ///     }
    ///     if total > 10 { Err(ContextError::Disconnected) } else { Ok(()) }
    /// }
    ///
    /// let (tx, numbers) = channel::bounded(4)?;
    /// let run = Harness::new("sums", sums, numbers).feed(tx, [1]).run()?;
    /// assert!(run.completed());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new<G, E>(name: &str, entry: fn(G, &Context) -> Result<(), E>, grant: G) -> Self
    where
        G: Grant,
        E: Into<BoxError> + 'static,
    {
        Self {
            child: Child::new(name, entry, grant),
            timeout: Duration::from_secs(10),
            feeds: Vec::new(),
        }
    }

    /// Bounds the run; a component still running then is cancelled and the
    /// run reports [`RunExit::TimedOut`].
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::channel::{self, Receiver};
    /// use compartment::testkit::Harness;
    /// use compartment::{Context, ContextError};
    ///
    /// fn sums(numbers: Receiver<u64>, cx: &Context) -> Result<(), ContextError> {
    ///     let mut total = 0;
    ///     for n in cx.recv_iter(&numbers) {
    ///         total += n;
    ///     }
    ///     if total > 10 { Err(ContextError::Disconnected) } else { Ok(()) }
    /// }
    ///
    /// let (tx, numbers) = channel::bounded(4)?;
    /// use compartment::testkit::RunExit;
    /// // Never fed and never disconnected: cancelled at the timeout.
    /// let run = Harness::new("sums", sums, numbers).timeout(std::time::Duration::from_millis(50)).run()?;
    /// assert_eq!(run.exit, RunExit::TimedOut);
    /// drop(tx);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sends `messages` through `tx` once the component runs, then drops
    /// `tx`, so its mailbox ends after them (when no other sender is left).
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::channel::{self, Receiver};
    /// use compartment::testkit::Harness;
    /// use compartment::{Context, ContextError};
    ///
    /// fn sums(numbers: Receiver<u64>, cx: &Context) -> Result<(), ContextError> {
    ///     let mut total = 0;
    ///     for n in cx.recv_iter(&numbers) {
    ///         total += n;
    ///     }
    ///     if total > 10 { Err(ContextError::Disconnected) } else { Ok(()) }
    /// }
    ///
    /// let (tx, numbers) = channel::bounded(4)?;
    /// let run = Harness::new("sums", sums, numbers).feed(tx, 1..=4).run()?;
    /// assert!(run.completed()); // 10 is not too much
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn feed<T, I>(mut self, tx: Sender<T>, messages: I) -> Self
    where
        T: Send + 'static,
        I: IntoIterator<Item = T>,
        I::IntoIter: Send + 'static,
    {
        let messages = messages.into_iter();
        self.feeds.push(Box::new(move |over: &AtomicBool| {
            for mut message in messages {
                loop {
                    match tx.send_timeout(message, Duration::from_millis(20)) {
                        Ok(()) => break,
                        Err(SendTimeoutError::Timeout(back)) if !over.load(Ordering::SeqCst) => {
                            message = back;
                        }
                        Err(_) => return,
                    }
                }
            }
        }));
        self
    }

    /// Runs the component to its end or the timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::channel::{self, Receiver};
    /// use compartment::testkit::Harness;
    /// use compartment::{Context, ContextError};
    ///
    /// fn sums(numbers: Receiver<u64>, cx: &Context) -> Result<(), ContextError> {
    ///     let mut total = 0;
    ///     for n in cx.recv_iter(&numbers) {
    ///         total += n;
    ///     }
    ///     if total > 10 { Err(ContextError::Disconnected) } else { Ok(()) }
    /// }
    ///
    /// let (tx, numbers) = channel::bounded(4)?;
    /// let run = Harness::new("sums", sums, numbers).feed(tx, [2, 2]).run()?;
    /// assert!(run.completed());
    /// assert!(!run.events.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`StartError`] when the component cannot start.
    pub fn run(self) -> Result<Run, StartError> {
        let path = format!("test/{}", self.child.name());
        let supervisor = Supervisor::new("test")
            .forward_panics(false)
            .child(self.child.restart(crate::Restart::Temporary));
        let events = supervisor.events(4096);
        let system = supervisor.start()?;
        let feeds = self.feeds;
        let over = AtomicBool::new(false);
        let (ended, before) = std::thread::scope(|scope| {
            for feed in feeds {
                let over = &over;
                scope.spawn(move || feed(over));
            }
            let ended = events.wait_for(self.timeout, |e| {
                e.path == path
                    && matches!(e.kind, EventKind::Exited { .. } | EventKind::Faulted { .. })
            });
            over.store(true, Ordering::SeqCst);
            ended
        });
        let exit = match ended.as_ref().map(|e| &e.kind) {
            Some(EventKind::Faulted { fault }) => RunExit::Faulted(fault.clone()),
            Some(EventKind::Exited {
                reason: ExitReason::Normal,
            }) => RunExit::Completed,
            _ => RunExit::TimedOut,
        };
        drop(system);
        // The events `wait_for` passed over are still in the subscription,
        // ahead of the rest: the end goes in after them.
        let mut seen = events.drain();
        if let Some(ended) = ended {
            seen.insert(before.len().min(seen.len()), ended);
        }
        Ok(Run { exit, events: seen })
    }
}
