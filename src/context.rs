//! `Context`: what a running instance may ask of its supervisor.

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::channel::{Receiver, Request, Sender, Wake};
use crate::mailbox::{InFlightCell, Mailbox, Tracked};
use crate::runtime_clock::RuntimeClock;
use crate::signal::Signal;
use crate::threads::{Cancellation, InstanceThread, SpawnError, ThreadGroup};

mod select;

pub use select::Select;

/// The instance was asked to stop.
///
/// Returned by [`Context::check`] and the blocking helpers once the
/// supervisor cancels the instance; returning it (or anything else) from the
/// entry function after cancellation counts as a clean shutdown.
///
/// # Examples
///
/// ```
/// use compartment::{Child, Context, Supervisor};
///
/// // Returning Cancelled after a shutdown is a clean exit.
/// fn waits(_: (), cx: &Context) -> Result<(), compartment::Cancelled> {
///     cx.sleep(std::time::Duration::from_secs(3600))
/// }
///
/// let system = Supervisor::new("app").child(Child::new("waits", waits, ())).start()?;
/// system.shutdown();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the instance was cancelled")]
pub struct Cancelled;

impl From<Cancelled> for std::io::Error {
    fn from(cancelled: Cancelled) -> Self {
        std::io::Error::new(std::io::ErrorKind::Interrupted, cancelled)
    }
}

/// Why a [`Context`] receive ended without a message.
///
/// # Examples
///
/// ```
/// use compartment::channel::{self, Receiver};
/// use compartment::{Child, Context, ContextError, Supervisor};
///
/// fn drains(inbox: Receiver<u8>, cx: &Context) -> Result<(), ContextError> {
///     loop {
///         match cx.recv(&inbox) {
///             Ok(_) => {}
///             Err(ContextError::Disconnected) => return Ok(()), // every sender gone
///             Err(other) => return Err(other), // cancelled, revoked, timed out
///         }
///     }
/// }
///
/// let (tx, inbox) = channel::bounded(1)?;
/// let system = Supervisor::new("app").child(Child::new("drains", drains, inbox)).start()?;
/// drop(tx);
/// system.shutdown();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContextError {
    /// The instance was cancelled.
    #[error("the instance was cancelled")]
    Cancelled,
    /// The channel is empty and every sender is gone.
    #[error("the channel is disconnected")]
    Disconnected,
    /// The endpoint was revoked.
    #[error("the channel endpoint was revoked")]
    Revoked,
    /// The timeout passed.
    #[error("timed out")]
    Timeout,
}

impl From<Cancelled> for ContextError {
    fn from(_: Cancelled) -> Self {
        ContextError::Cancelled
    }
}

/// A [`Context::send`] failed; the message is handed back.
///
/// # Examples
///
/// ```
/// use compartment::channel::{self, Sender};
/// use compartment::{Child, Context, Restart, Supervisor};
///
/// fn sends(out: Sender<String>, cx: &Context) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
///     if let Err(err) = cx.send(&out, "late".to_owned()) {
///         let _kept: String = err.message; // handed back, not lost
///     }
///     Ok(())
/// }
///
/// let (out, results) = channel::bounded(1)?;
/// drop(results);
/// let system = Supervisor::new("app").child(Child::new("sends", sends, out).restart(Restart::Temporary)).start()?;
/// system.shutdown();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(thiserror::Error)]
#[error("{error}")]
pub struct ContextSendError<T> {
    /// Why.
    pub error: ContextError,
    /// The message that was not sent.
    pub message: T,
}

impl<T> fmt::Debug for ContextSendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContextSendError")
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

/// A message that [`Context::recv`] can track while it is handled: cloned
/// (so the copy is delivered again if the instance dies mid-message) and
/// described (so a fault names it). Every `Clone + Debug + Send + 'static`
/// type is one; there is nothing to implement.
///
/// A [`Request`] is not: its reply endpoint is one of a kind. Serve
/// requests with [`Context::serve`] or receive them with
/// [`Context::recv_untracked`].
///
/// ```
/// fn tracked<T: compartment::TrackedMessage>() {}
/// tracked::<String>();
/// tracked::<(u32, Vec<u8>)>();
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be received as a tracked message",
    label = "a tracked receive keeps a copy of the message in flight, so it must be `Clone + Debug + Send + 'static`",
    note = "a `Request` carries a one-of-a-kind reply endpoint: serve requests with `Context::serve`, or receive them with `Context::recv_untracked`"
)]
pub trait TrackedMessage: Clone + fmt::Debug + Send + 'static {}

impl<T: Clone + fmt::Debug + Send + 'static> TrackedMessage for T {}

/// What a running instance may ask: who it is, whether it should stop, and
/// blocking helpers that wake when it should.
///
/// Every instance gets its own `Context`. Its receive, send and sleep helpers
/// return [`ContextError::Cancelled`] as soon as the supervisor cancels the
/// instance, so a component written with them stops promptly; one that
/// ignores cancellation is reported as `ShutdownTimedOut` and has its grant
/// revoked, because a thread cannot be killed.
///
/// [`recv`](Self::recv) also tracks the message being handled: if the
/// instance dies before its next `recv` (or [`done`](Self::done)), the fault
/// names the message and the next instance receives it again, until it has
/// crashed the component as often as the child's poison threshold allows
/// and goes to the dead-letter sink instead.
///
/// # Examples
///
/// ```
/// use compartment::channel::{self, Receiver, Sender};
/// use compartment::{Child, Context, ContextError, Supervisor};
///
/// // Every blocking call goes through the context, so shutdown wakes it.
/// fn echo((inbox, out): (Receiver<String>, Sender<String>), cx: &Context) -> Result<(), ContextError> {
///     loop {
///         let line = cx.recv(&inbox)?;
///         cx.send(&out, format!("{}: {line}", cx.name()))
///             .map_err(|unsent| unsent.error)?;
///     }
/// }
///
/// let (tx, inbox) = channel::bounded(4)?;
/// let (out, lines) = channel::bounded(4)?;
/// let system = Supervisor::new("app").child(Child::new("echo", echo, (inbox, out))).start()?;
/// tx.send("hi".to_owned())?;
/// assert_eq!(lines.recv()?, "echo: hi");
/// system.shutdown();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Context {
    path: Arc<str>,
    instance: u64,
    cancel: Arc<Signal>,
    clock: RuntimeClock,
    mailbox: Arc<Mailbox>,
    in_flight: Arc<InFlightCell>,
    threads: Arc<ThreadGroup>,
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("path", &self.path)
            .field("instance", &self.instance)
            .field("cancelled", &self.is_cancelled())
            .finish_non_exhaustive()
    }
}

impl Context {
    pub(crate) fn new(
        path: Arc<str>,
        instance: u64,
        cancel: Arc<Signal>,
        clock: RuntimeClock,
        mailbox: Arc<Mailbox>,
        in_flight: Arc<InFlightCell>,
        threads: Arc<ThreadGroup>,
    ) -> Self {
        Self {
            path,
            instance,
            cancel,
            clock,
            mailbox,
            in_flight,
            threads,
        }
    }

    /// Another handle on this instance's context, for the crate's own code
    /// that runs for it and must own what it holds (a wasm module's store).
    #[cfg_attr(
        not(all(feature = "wasm", target_os = "linux")),
        allow(dead_code, reason = "used by the wasm tier")
    )]
    pub(crate) fn share(&self) -> Context {
        Context {
            path: Arc::clone(&self.path),
            instance: self.instance,
            cancel: Arc::clone(&self.cancel),
            clock: self.clock.clone(),
            mailbox: Arc::clone(&self.mailbox),
            in_flight: Arc::clone(&self.in_flight),
            threads: Arc::clone(&self.threads),
        }
    }

    /// The signal raised when the instance is cancelled.
    #[cfg(all(any(feature = "process", feature = "wasm"), target_os = "linux"))]
    pub(crate) fn cancellation(&self) -> &Arc<Signal> {
        &self.cancel
    }

    /// The child's mailbox, which outlives its instances.
    #[cfg(all(feature = "process", target_os = "linux"))]
    pub(crate) fn mailbox(&self) -> &Arc<Mailbox> {
        &self.mailbox
    }

    /// The instance's message in flight.
    #[cfg(all(feature = "process", target_os = "linux"))]
    pub(crate) fn in_flight(&self) -> &Arc<InFlightCell> {
        &self.in_flight
    }

    /// The component's path in the tree, such as `app/workers/resizer`.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::channel::{self, Sender};
    /// use compartment::{Child, Context, Restart, Supervisor};
    ///
    /// fn component(report: Sender<String>, cx: &Context) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    ///     report.send(cx.path().to_owned())?;
    ///     Ok(())
    /// }
    ///
    /// let (report, reports) = channel::bounded(4)?;
    /// let system = Supervisor::new("app")
    ///     .child(Child::new("c", component, report).restart(Restart::Temporary))
    ///     .start()?;
    /// assert_eq!(reports.recv()?, "app/c");
    /// system.shutdown();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The path, shared rather than copied.
    pub(crate) fn shared_path(&self) -> Arc<str> {
        Arc::clone(&self.path)
    }

    /// The component's name (the last part of its path).
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::channel::{self, Sender};
    /// use compartment::{Child, Context, Restart, Supervisor};
    ///
    /// fn component(report: Sender<String>, cx: &Context) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    ///     report.send(cx.name().to_owned())?;
    ///     Ok(())
    /// }
    ///
    /// let (report, reports) = channel::bounded(4)?;
    /// let system = Supervisor::new("app")
    ///     .child(Child::new("c", component, report).restart(Restart::Temporary))
    ///     .start()?;
    /// assert_eq!(reports.recv()?, "c");
    /// system.shutdown();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }

    /// Which instance this is: 1 for the first start, +1 per restart.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::channel::{self, Sender};
    /// use compartment::{Child, Context, Restart, Supervisor};
    ///
    /// fn component(report: Sender<String>, cx: &Context) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    ///     report.send(cx.instance().to_string())?;
    ///     if cx.instance() == 1 {
    ///         panic!("the first instance fails");
    ///     }
    ///     Ok(())
    /// }
    ///
    /// let (report, reports) = channel::bounded(4)?;
    /// let system = Supervisor::new("app")
    ///     .child(Child::new("c", component, report).restart(Restart::Transient))
    ///     .start()?;
    /// assert_eq!(reports.recv()?, "1");
    /// assert_eq!(reports.recv()?, "2"); // the restarted instance
    /// system.shutdown();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn instance(&self) -> u64 {
        self.instance
    }

    /// Whether the supervisor asked this instance to stop.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::channel::{self, Sender};
    /// use compartment::{Child, Context, Restart, Supervisor};
    ///
    /// fn component(report: Sender<String>, cx: &Context) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    ///     report.send("running".to_owned())?;
    ///     while !cx.is_cancelled() {
    ///         std::thread::yield_now(); // a loop that does not block checks instead
    ///     }
    ///     Ok(())
    /// }
    ///
    /// let (report, reports) = channel::bounded(4)?;
    /// let system = Supervisor::new("app")
    ///     .child(Child::new("c", component, report).restart(Restart::Permanent))
    ///     .start()?;
    /// assert_eq!(reports.recv()?, "running");
    /// system.shutdown();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_raised()
    }

    /// `Err(Cancelled)` once the instance was asked to stop; call it in
    /// loops that do not block.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::channel::{self, Sender};
    /// use compartment::{Child, Context, Restart, Supervisor};
    ///
    /// fn component(report: Sender<String>, cx: &Context) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    ///     report.send("running".to_owned())?;
    ///     loop {
    ///         cx.check()?; // Err(Cancelled) once asked to stop
    ///         std::thread::yield_now();
    ///     }
    ///     Ok(())
    /// }
    ///
    /// let (report, reports) = channel::bounded(4)?;
    /// let system = Supervisor::new("app")
    ///     .child(Child::new("c", component, report).restart(Restart::Permanent))
    ///     .start()?;
    /// assert_eq!(reports.recv()?, "running");
    /// system.shutdown();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Cancelled`].
    pub fn check(&self) -> Result<(), Cancelled> {
        if self.is_cancelled() {
            Err(Cancelled)
        } else {
            Ok(())
        }
    }

    /// Receives the next message, waking on cancellation, and tracks it as
    /// in flight until the next `recv` or [`done`](Self::done).
    ///
    /// A message that was in flight when the previous instance died is
    /// delivered first.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::channel::{self, Receiver};
    /// use compartment::{Child, Context, ContextError, Supervisor};
    ///
    /// fn worker(jobs: Receiver<String>, cx: &Context) -> Result<(), ContextError> {
    ///     loop {
    ///         let job = cx.recv(&jobs)?; // in flight until the next recv
    ///         assert!(!job.is_empty());
    ///     }
    /// }
    ///
    /// let (tx, jobs) = channel::bounded(8)?;
    /// let system = Supervisor::new("app").child(Child::new("worker", worker, jobs)).start()?;
    /// tx.send("resize".to_owned())?;
    /// system.shutdown(); // the worker's recv returns Cancelled
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ContextError::Cancelled`], [`ContextError::Disconnected`],
    /// [`ContextError::Revoked`].
    pub fn recv<T>(&self, rx: &Receiver<T>) -> Result<T, ContextError>
    where
        T: TrackedMessage,
    {
        self.recv_tracked(rx, None)
    }

    /// As [`recv`](Self::recv), waiting at most `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::channel::{self, Sender};
    /// use compartment::{Child, Context, Restart, Supervisor};
    ///
    /// fn component(report: Sender<String>, cx: &Context) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    ///     let (_keep, quiet) = channel::bounded::<u32>(1)?;
    ///     match cx.recv_timeout(&quiet, std::time::Duration::from_millis(10)) {
    ///         Err(compartment::ContextError::Timeout) => report.send("timed out".to_owned())?,
    ///         other => report.send(format!("{other:?}"))?,
    ///     }
    ///     Ok(())
    /// }
    ///
    /// let (report, reports) = channel::bounded(4)?;
    /// let system = Supervisor::new("app")
    ///     .child(Child::new("c", component, report).restart(Restart::Temporary))
    ///     .start()?;
    /// assert_eq!(reports.recv()?, "timed out");
    /// system.shutdown();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`recv`](Self::recv), plus [`ContextError::Timeout`].
    pub fn recv_timeout<T>(&self, rx: &Receiver<T>, timeout: Duration) -> Result<T, ContextError>
    where
        T: TrackedMessage,
    {
        self.recv_tracked(rx, crate::channel::deadline_after(timeout))
    }

    /// Receives the next message, waking on cancellation, without tracking
    /// it: for messages that cannot be cloned, such as requests carrying a
    /// reply endpoint. A crash while handling one loses it: a caller whose
    /// request it was gets [`CallError::Crashed`](crate::channel::CallError::Crashed)
    /// with the panic, or [`CallError::NoReply`](crate::channel::CallError::NoReply)
    /// when the instance returned an error instead.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::channel::{self, Receiver, Request};
    /// use compartment::{Child, Context, ContextError, Supervisor};
    ///
    /// fn server(requests: Receiver<Request<u32, u32>>, cx: &Context) -> Result<(), ContextError> {
    ///     loop {
    ///         let Request { body, reply } = cx.recv_untracked(&requests)?;
    ///         let _ = reply.send(body + 1);
    ///     }
    /// }
    ///
    /// let (tx, requests) = channel::bounded(8)?;
    /// let system = Supervisor::new("app").child(Child::new("server", server, requests)).start()?;
    /// assert_eq!(tx.call(1)?, 2);
    /// system.shutdown();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`recv`](Self::recv).
    pub fn recv_untracked<T>(&self, rx: &Receiver<T>) -> Result<T, ContextError> {
        // The receive looks at the cancellation before it takes a message;
        // a separate look first would lengthen the path every message takes.
        rx.recv_with(&[&*self.cancel], None)
            .map_err(|wake| self.wait_error(wake))
    }

    /// Serves the requests arriving on `requests`: each request's body goes
    /// to `handle`, and its answer back to the caller. Returns when the
    /// instance is cancelled or every caller's sender is gone; a caller that
    /// stopped waiting is not an error.
    ///
    /// Requests are received untracked (a reply endpoint is one of a kind
    /// and cannot be delivered twice): a panic in `handle` is not retried,
    /// and its caller gets [`CallError::Crashed`](crate::channel::CallError::Crashed)
    /// with the panic's message and location, while the instance restarts
    /// as its restart type says (see [`HandlerCrash`](crate::channel::HandlerCrash)).
    ///
    /// # Errors
    ///
    /// [`ContextError::Revoked`] when `requests` is revoked.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::channel::{self, Receiver, Request};
    /// use compartment::{Child, Context, ContextError, Supervisor};
    ///
    /// fn doubler(requests: Receiver<Request<u64, u64>>, cx: &Context) -> Result<(), ContextError> {
    ///     cx.serve(&requests, |n| n * 2)
    /// }
    ///
    /// let (server, requests) = channel::bounded(8)?;
    /// let system = Supervisor::new("app")
    ///     .child(Child::new("doubler", doubler, requests))
    ///     .start()?;
    /// assert_eq!(server.call(21)?, 42);
    /// system.shutdown();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn serve<Q, A>(
        &self,
        requests: &Receiver<Request<Q, A>>,
        mut handle: impl FnMut(Q) -> A,
    ) -> Result<(), ContextError> {
        loop {
            let Request { body, reply } = match self.recv_untracked(requests) {
                Ok(request) => request,
                Err(ContextError::Cancelled | ContextError::Disconnected) => return Ok(()),
                Err(err) => return Err(err),
            };
            // A caller that gave up waiting takes no answer; that is its
            // business, not the server's.
            let _ = reply.send(handle(body));
        }
    }

    /// An iterator over [`recv`](Self::recv) that ends on cancellation,
    /// disconnection or revocation.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::channel::{self, Receiver, Sender};
    /// use compartment::{Child, Context, Supervisor};
    ///
    /// fn doubler((jobs, out): (Receiver<u32>, Sender<u32>), cx: &Context) -> Result<(), std::io::Error> {
    ///     for n in cx.recv_iter(&jobs) {
    ///         let _ = cx.send(&out, n * 2);
    ///     }
    ///     Ok(()) // cancelled, disconnected or revoked
    /// }
    ///
    /// let (tx, jobs) = channel::bounded(8)?;
    /// let (out, results) = channel::bounded(8)?;
    /// let system = Supervisor::new("app").child(Child::new("doubler", doubler, (jobs, out))).start()?;
    /// tx.send(21)?;
    /// assert_eq!(results.recv()?, 42);
    /// system.shutdown();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_iter<'a, T>(&'a self, rx: &'a Receiver<T>) -> impl Iterator<Item = T> + 'a
    where
        T: TrackedMessage,
    {
        std::iter::from_fn(move || self.recv(rx).ok())
    }

    /// Starts a thread of this instance's own, named `name`, running `work`
    /// (see [`threads`](crate::threads)): its CPU and memory count toward
    /// the instance's limits, it carries the instance's kernel policy, it
    /// is asked to stop (through the [`Cancellation`] it is given) when the
    /// instance is cancelled or ends, and the instance ends only once it has.
    ///
    /// # Errors
    ///
    /// [`SpawnError::Limit`] past [`Limits::threads`](crate::Limits::threads),
    /// [`SpawnError::Stopping`] once the instance is cancelled,
    /// [`SpawnError::Ceiling`], [`SpawnError::Spawn`].
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::{Child, Context, Supervisor};
    ///
    /// fn sums(numbers: Vec<u64>, cx: &Context) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    ///     let (low, high) = numbers.split_at(numbers.len() / 2);
    ///     let high = high.to_vec();
    ///     let helper = cx.spawn("upper-half", move |_| high.iter().sum::<u64>())?;
    ///     let total = low.iter().sum::<u64>() + helper.join()?;
    ///     assert_eq!(total, 55);
    ///     Ok(())
    /// }
    ///
    /// let sup = Supervisor::new("app")
    ///     .child(Child::new("sums", sums, (1..=10).collect::<Vec<u64>>()).restart(compartment::Restart::Transient));
    /// let events = sup.events(16);
    /// let system = sup.start()?;
    /// let (exit, _) = events.wait_for(std::time::Duration::from_secs(20), |e| {
    ///     matches!(e.kind, compartment::event::EventKind::Exited { .. })
    /// });
    /// assert!(exit.is_some());
    /// system.shutdown();
    /// # Ok::<(), compartment::StartError>(())
    /// ```
    pub fn spawn<T, F>(&self, name: &str, work: F) -> Result<InstanceThread<T>, SpawnError>
    where
        T: Send + 'static,
        F: FnOnce(&Cancellation) -> T + Send + 'static,
    {
        self.threads.spawn(name, work)
    }

    /// The instance's own threads.
    pub(crate) fn threads(&self) -> &ThreadGroup {
        &self.threads
    }

    /// Marks the message from the last [`recv`](Self::recv) as handled, so a
    /// later crash does not deliver it again.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::channel::{self, Receiver};
    /// use compartment::{Child, Context, ContextError, Supervisor};
    ///
    /// fn worker(jobs: Receiver<u32>, cx: &Context) -> Result<(), ContextError> {
    ///     loop {
    ///         let job = cx.recv(&jobs)?;
    ///         let _ = job; // handled
    ///         cx.done(); // no longer in flight: a crash from here on does not redeliver it
    ///         cx.sleep(std::time::Duration::from_secs(60))?;
    ///     }
    /// }
    ///
    /// let (tx, jobs) = channel::bounded(8)?;
    /// let system = Supervisor::new("app").child(Child::new("worker", worker, jobs)).start()?;
    /// tx.send(1)?;
    /// system.shutdown();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn done(&self) {
        drop(self.in_flight.handled());
    }

    /// Sends, waiting while the channel is full, waking on cancellation.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::channel::{self, Sender};
    /// use compartment::{Child, Context, Restart, Supervisor};
    ///
    /// fn component(report: Sender<String>, cx: &Context) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    ///     cx.send(&report, "sent".to_owned())?; // waits while full, wakes on cancellation
    ///     Ok(())
    /// }
    ///
    /// let (report, reports) = channel::bounded(4)?;
    /// let system = Supervisor::new("app")
    ///     .child(Child::new("c", component, report).restart(Restart::Temporary))
    ///     .start()?;
    /// assert_eq!(reports.recv()?, "sent");
    /// system.shutdown();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ContextSendError`] with the message, for cancellation,
    /// disconnection or revocation.
    pub fn send<T>(&self, tx: &Sender<T>, message: T) -> Result<(), ContextSendError<T>> {
        // As in `recv_untracked`: the send looks at the cancellation first.
        tx.send_with(message, &[&*self.cancel], None)
            .map_err(|(message, wake)| ContextSendError {
                error: self.wait_error(wake),
                message,
            })
    }

    /// Why a wait on an endpoint ended, as this context reports it: a
    /// cancelled instance hears of its cancellation, whatever else (a
    /// revocation, a disconnection) ended the wait too.
    fn wait_error(&self, wake: Wake) -> ContextError {
        match wake {
            _ if self.is_cancelled() => ContextError::Cancelled,
            Wake::Disconnected => ContextError::Disconnected,
            Wake::Timeout => ContextError::Timeout,
            Wake::Revoked => ContextError::Revoked,
            Wake::Interrupted(_) | Wake::Stopped => ContextError::Cancelled,
        }
    }

    /// Sleeps for `duration` on the supervisor's clock (a manual clock in
    /// tests), waking early on cancellation.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::channel::{self, Sender};
    /// use compartment::{Child, Context, Restart, Supervisor};
    ///
    /// fn component(report: Sender<String>, cx: &Context) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    ///     cx.sleep(std::time::Duration::from_millis(1))?;
    ///     report.send("slept".to_owned())?;
    ///     cx.sleep(std::time::Duration::from_secs(3600))?; // cut short by shutdown
    ///     Ok(())
    /// }
    ///
    /// let (report, reports) = channel::bounded(4)?;
    /// let system = Supervisor::new("app")
    ///     .child(Child::new("c", component, report).restart(Restart::Permanent))
    ///     .start()?;
    /// assert_eq!(reports.recv()?, "slept");
    /// system.shutdown();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Cancelled`] when cancelled before or during the sleep.
    pub fn sleep(&self, duration: Duration) -> Result<(), Cancelled> {
        self.check()?;
        let deadline = self
            .clock
            .now()
            .checked_add(duration)
            .unwrap_or_else(|| far_future(self.clock.now()));
        self.clock
            .wait_until(deadline, &[&*self.cancel])
            .map_err(|_| Cancelled)
    }

    fn recv_tracked<T>(
        &self,
        rx: &Receiver<T>,
        deadline: Option<Instant>,
    ) -> Result<T, ContextError>
    where
        T: TrackedMessage,
    {
        self.check()?;
        self.done();
        let (message, attempts) = match self.mailbox.take::<T>(rx.id()) {
            Some(redelivered) => redelivered,
            None => (
                rx.recv_with(&[&*self.cancel], deadline)
                    .map_err(|wake| self.wait_error(wake))?,
                0,
            ),
        };
        let tracked = Tracked {
            channel: rx.id(),
            message: Box::new(message.clone()),
            describe: describe::<T>,
            attempts,
        };
        match self.in_flight.track(tracked) {
            Ok(previous) => drop(previous),
            // This instance was detached while it received: the message
            // belongs to its successor now.
            Err(tracked) => {
                self.mailbox.deliver_again(tracked);
                return Err(ContextError::Cancelled);
            }
        }
        Ok(message)
    }
}

pub(crate) fn describe<T: fmt::Debug + 'static>(message: &(dyn Any + Send)) -> String {
    match message.downcast_ref::<T>() {
        Some(message) => format!("{message:?}"),
        None => std::any::type_name::<T>().to_owned(),
    }
}

/// A deadline no caller will reach, for durations too long to add.
fn far_future(now: Instant) -> Instant {
    now.checked_add(Duration::from_secs(100 * 365 * 24 * 3600))
        .unwrap_or(now)
}
