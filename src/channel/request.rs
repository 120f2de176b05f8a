//! Request/reply over a bounded channel: a request carries a one-shot reply
//! endpoint.

use std::fmt;
use std::time::{Duration, Instant};

use crossbeam_channel as cb;

use super::{SendTimeoutError, Sender, deadline_after};
use crate::fault::{self, PanicLocation};

/// A message that expects an answer: the body and where to send the answer.
///
/// Destructure it in the handler: `let Request { body, reply } = request;`.
///
/// # Examples
///
/// ```
/// use compartment::channel::{self, Request};
///
/// let (tx, rx) = channel::bounded::<Request<String, usize>>(4)?;
/// std::thread::scope(|s| {
///     s.spawn(|| {
///         // The server: destructure, answer through the reply endpoint.
///         let Request { body, reply } = rx.recv().expect("a request");
///         let _ = reply.send(body.len());
///     });
///     assert_eq!(tx.call("four".to_owned()).expect("an answer"), 4);
/// });
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Request<Q, A> {
    /// What is asked.
    pub body: Q,
    /// Where the answer goes.
    pub reply: ReplyTo<A>,
}

impl<Q, A> Request<Q, A> {
    /// A request and the caller's end of its reply.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::channel::Request;
    ///
    /// let (request, pending) = Request::<u32, u32>::new(20);
    /// let Request { body, reply } = request;
    /// reply.send(body + 1).expect("the caller is waiting");
    /// assert_eq!(pending.recv(), Ok(21));
    /// ```
    pub fn new(body: Q) -> (Self, PendingReply<A>) {
        let (tx, rx) = cb::bounded(1);
        (
            Self {
                body,
                reply: ReplyTo {
                    inner: Some(ReplyPath::Local(tx)),
                    deadline: None,
                },
            },
            PendingReply { inner: rx },
        )
    }
}

impl<Q: fmt::Debug, A> fmt::Debug for Request<Q, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("body", &self.body)
            .finish_non_exhaustive()
    }
}

/// A one-shot endpoint for the answer to one [`Request`].
///
/// Dropping it without answering tells the caller [`CallError::NoReply`]
/// instead of leaving it waiting; dropping it because the handler panicked
/// (on a supervised thread) tells the caller [`CallError::Crashed`], with
/// the panic's message and location.
///
/// # Examples
///
/// ```
/// use compartment::channel::Request;
/// let (Request { body, reply }, pending) = Request::<&str, usize>::new("four");
/// reply.send(body.len()).expect("the caller waits");
/// assert_eq!(pending.recv()?, 4);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ReplyTo<A> {
    /// `None` once answered.
    inner: Option<ReplyPath<A>>,
    /// When the caller stops waiting, if it set a deadline.
    pub(crate) deadline: Option<Instant>,
}

impl<A> ReplyTo<A> {
    /// When the caller stops waiting for the answer, if it called with a
    /// timeout ([`Sender::call_timeout`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::channel::Request;
    /// let (request, _pending) = Request::<u8, u8>::new(1);
    /// assert_eq!(request.reply.deadline(), None); // a call without a timeout
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Whether the caller's deadline has passed, so it no longer waits for
    /// the answer: a handler can skip work nobody will receive.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::channel::Request;
    /// let (request, _pending) = Request::<u8, u8>::new(1);
    /// assert!(!request.reply.is_expired());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[allow(
        clippy::disallowed_methods,
        reason = "the caller's deadline is real time; reading it reveals nothing the request does not carry"
    )]
    pub fn is_expired(&self) -> bool {
        self.deadline
            .is_some_and(|deadline| Instant::now() >= deadline)
    }

    /// Sends the answer, consuming the endpoint.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::channel::Request;
    /// let (Request { body, reply }, pending) = Request::<u32, u32>::new(20);
    /// reply.send(body + 1).expect("the caller waits");
    /// assert_eq!(pending.recv()?, 21);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The answer is handed back when the caller stopped waiting.
    pub fn send(mut self, answer: A) -> Result<(), A> {
        match self.inner.take() {
            Some(ReplyPath::Local(inner)) => {
                inner
                    .try_send(Reply::Answer(answer))
                    .map_err(|e| match e.into_inner() {
                        Reply::Answer(answer) => answer,
                        Reply::Crashed(_) => unreachable!("only an answer was sent"),
                    })
            }
            #[cfg(all(feature = "process", target_os = "linux"))]
            Some(ReplyPath::Bridged(bridged)) => bridged.send(answer),
            None => Err(answer),
        }
    }

    /// Tells the caller that its handler crashed: a panic while the
    /// endpoint was held, a process child's panic across the bridge, a
    /// module's trap.
    pub(crate) fn crashed(&mut self, crash: HandlerCrash) {
        match self.inner.take() {
            Some(ReplyPath::Local(inner)) => {
                let _ = inner.try_send(Reply::Crashed(crash));
            }
            #[cfg(all(feature = "process", target_os = "linux"))]
            Some(ReplyPath::Bridged(bridged)) => bridged.crashed(&crash),
            None => {}
        }
    }
}

impl<A> Drop for ReplyTo<A> {
    /// Dropped by a panic's unwinding: the caller learns of the panic, not
    /// only that no answer comes.
    fn drop(&mut self) {
        if self.inner.is_some()
            && let Some(crash) = fault::panic_in_progress()
        {
            self.crashed(crash);
        }
    }
}

/// What crosses a reply channel.
pub(crate) enum Reply<A> {
    Answer(A),
    Crashed(HandlerCrash),
}

/// How the handler of a request crashed before it answered.
///
/// # Examples
///
/// ```
/// use compartment::channel::{self, CallError, Receiver, Request};
/// use compartment::{Child, Context, ContextError, Restart, Supervisor};
///
/// fn fragile(requests: Receiver<Request<u32, u32>>, cx: &Context) -> Result<(), ContextError> {
///     cx.serve(&requests, |n| if n == 0 { panic!("division by zero") } else { 100 / n })
/// }
///
/// let (server, requests) = channel::bounded(8)?;
/// let system = Supervisor::new("app")
///     .child(Child::new("divider", fragile, requests).restart(Restart::Permanent))
///     .start()?;
/// match server.call(0) {
///     Err(CallError::Crashed(crash)) => assert_eq!(crash.message, "division by zero"),
///     other => panic!("expected the crash, got {other:?}"),
/// }
/// assert_eq!(server.call(4)?, 25); // served by the restarted instance
/// system.shutdown();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(
    all(feature = "process", target_os = "linux"),
    derive(serde::Serialize, serde::Deserialize)
)]
pub struct HandlerCrash {
    /// The panic's message; for a wasm module, its trap; for a process
    /// child that died without unwinding, how it died.
    pub message: String,
    /// Where it panicked, when known.
    pub location: Option<PanicLocation>,
}

impl fmt::Display for HandlerCrash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(location) = &self.location {
            write!(f, " at {location}")?;
        }
        Ok(())
    }
}

/// Where a reply goes: the caller's one-shot channel, or, in a process
/// child serving requests from the supervisor's side, across the bridge.
enum ReplyPath<A> {
    Local(cb::Sender<Reply<A>>),
    #[cfg(all(feature = "process", target_os = "linux"))]
    Bridged(crate::process::BridgedReply<A>),
}

impl<A> ReplyTo<A> {
    /// A reply endpoint that answers across a process bridge.
    #[cfg(all(feature = "process", target_os = "linux"))]
    pub(crate) fn bridged(
        reply: crate::process::BridgedReply<A>,
        deadline: Option<Instant>,
    ) -> Self {
        Self {
            inner: Some(ReplyPath::Bridged(reply)),
            deadline,
        }
    }
}

impl<A> fmt::Debug for ReplyTo<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplyTo")
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

/// The caller's end of a [`Request`]: where its answer arrives.
///
/// # Examples
///
/// ```
/// use compartment::channel::Request;
/// let (request, pending) = Request::<u8, u8>::new(1);
/// let Request { body, reply } = request;
/// let _ = reply.send(body * 2);
/// assert_eq!(pending.recv()?, 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct PendingReply<A> {
    pub(crate) inner: cb::Receiver<Reply<A>>,
}

impl<A> fmt::Debug for PendingReply<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingReply").finish_non_exhaustive()
    }
}

impl<A> PendingReply<A> {
    /// Waits for the answer.
    ///
    /// # Errors
    ///
    /// [`ReplyError::NoReply`] when the [`ReplyTo`] was dropped unanswered,
    /// [`ReplyError::Crashed`] when its handler panicked holding it.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::channel::{ReplyError, Request};
    ///
    /// let (request, pending) = Request::<&str, usize>::new("unanswered");
    /// drop(request);
    /// assert_eq!(pending.recv(), Err(ReplyError::NoReply));
    /// ```
    pub fn recv(self) -> Result<A, ReplyError> {
        self.recv_until(None)
    }

    /// Waits at most `timeout` for the answer.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use compartment::channel::{ReplyError, Request};
    /// let (_request, pending) = Request::<u8, u8>::new(1);
    /// assert_eq!(pending.recv_timeout(Duration::from_millis(10)), Err(ReplyError::Timeout));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ReplyError::NoReply`], [`ReplyError::Crashed`],
    /// [`ReplyError::Timeout`].
    pub fn recv_timeout(self, timeout: Duration) -> Result<A, ReplyError> {
        self.recv_until(deadline_after(timeout))
    }

    fn recv_until(self, deadline: Option<Instant>) -> Result<A, ReplyError> {
        let result = match deadline {
            None => self
                .inner
                .recv()
                .map_err(|_| cb::RecvTimeoutError::Disconnected),
            Some(deadline) => self.inner.recv_deadline(deadline),
        };
        match result {
            Ok(reply) => reply.into_result(),
            Err(cb::RecvTimeoutError::Timeout) => Err(ReplyError::Timeout),
            Err(cb::RecvTimeoutError::Disconnected) => Err(ReplyError::NoReply),
        }
    }

    /// Waits for the answer, or until `cancelled` is raised (an instance
    /// that waits for a call it made).
    #[cfg_attr(
        not(all(feature = "wasm", target_os = "linux")),
        allow(dead_code, reason = "used by the wasm tier")
    )]
    pub(crate) fn recv_or_cancelled(
        self,
        cancelled: &crate::signal::Signal,
    ) -> Result<A, crate::context::ContextError> {
        use super::Interrupted;
        use crate::context::ContextError;
        let reply = super::recv_interruptible(&self.inner, &[cancelled.watch()], None).map_err(
            |e| match e {
                Interrupted::By(_) => ContextError::Cancelled,
                Interrupted::Timeout => ContextError::Timeout,
                Interrupted::Disconnected => ContextError::Disconnected,
            },
        )?;
        // A module learns only that no answer comes.
        reply.into_result().map_err(|_| ContextError::Disconnected)
    }

    /// The answer, if it has arrived.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::channel::Request;
    /// let (Request { reply, .. }, pending) = Request::<u8, u8>::new(1);
    /// let pending = pending.try_recv().expect_err("no answer yet");
    /// reply.send(2).expect("the caller waits");
    /// assert_eq!(pending.try_recv().ok(), Some(Ok(2)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// `Err(self)` while no answer has arrived; [`ReplyError::NoReply`]
    /// once the [`ReplyTo`] was dropped unanswered, [`ReplyError::Crashed`]
    /// once its handler panicked holding it.
    pub fn try_recv(self) -> Result<Result<A, ReplyError>, Self> {
        match self.inner.try_recv() {
            Ok(reply) => Ok(reply.into_result()),
            Err(cb::TryRecvError::Disconnected) => Ok(Err(ReplyError::NoReply)),
            Err(cb::TryRecvError::Empty) => Err(self),
        }
    }
}

impl<A> Reply<A> {
    fn into_result(self) -> Result<A, ReplyError> {
        match self {
            Reply::Answer(answer) => Ok(answer),
            Reply::Crashed(crash) => Err(ReplyError::Crashed(crash)),
        }
    }
}

/// Why a [`PendingReply`] got no answer.
///
/// # Examples
///
/// ```
/// use compartment::channel::{ReplyError, Request};
/// let (request, pending) = Request::<u8, u8>::new(1);
/// drop(request); // no answer will come
/// assert_eq!(pending.recv(), Err(ReplyError::NoReply));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyError {
    /// The reply endpoint was dropped unanswered (the handler returned an
    /// error, or its instance ended, while it held the request).
    #[error("the request was dropped without a reply")]
    NoReply,
    /// The handler crashed while it held the request: it panicked (or, in a
    /// process child, its process died; in a wasm module, it trapped).
    #[error("the handler crashed before it replied: {0}")]
    Crashed(HandlerCrash),
    /// No answer arrived in time.
    #[error("timed out waiting for a reply")]
    Timeout,
}

impl<Q> From<ReplyError> for CallError<Q> {
    fn from(err: ReplyError) -> Self {
        match err {
            ReplyError::NoReply => CallError::NoReply,
            ReplyError::Crashed(crash) => CallError::Crashed(crash),
            ReplyError::Timeout => CallError::Timeout,
        }
    }
}

/// A call through [`Sender::call`] or [`Sender::call_timeout`] failed.
///
/// # Examples
///
/// ```
/// use compartment::channel::{self, CallError, Request};
/// let (tx, rx) = channel::bounded::<Request<u8, u8>>(1)?;
/// drop(rx);
/// assert!(matches!(tx.call(1), Err(CallError::Send(_)))); // nobody serves
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum CallError<Q> {
    /// The request could not be sent; its body is handed back.
    #[error("the request could not be sent: {0}")]
    Send(#[source] SendTimeoutError<Q>),
    /// The request was sent, but its reply endpoint was dropped unanswered
    /// (the handler returned an error, or its instance ended, while it held
    /// the request).
    #[error("the request was dropped without a reply")]
    NoReply,
    /// The request was sent, and its handler crashed while it held it: it
    /// panicked (or, in a process child, its process died; in a wasm
    /// module, it trapped).
    #[error("the handler crashed before it replied: {0}")]
    Crashed(HandlerCrash),
    /// No answer arrived in time.
    #[error("timed out waiting for a reply")]
    Timeout,
}

impl<Q> fmt::Debug for CallError<Q> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Send(e) => f.debug_tuple("Send").field(e).finish(),
            CallError::NoReply => f.write_str("NoReply"),
            CallError::Crashed(crash) => f.debug_tuple("Crashed").field(crash).finish(),
            CallError::Timeout => f.write_str("Timeout"),
        }
    }
}

impl<Q, A> Sender<Request<Q, A>> {
    /// Sends `body` as a request and waits for the answer.
    ///
    /// # Errors
    ///
    /// [`CallError::Send`] (with the body) when the request cannot be sent,
    /// [`CallError::NoReply`] when it was dropped unanswered,
    /// [`CallError::Crashed`] when its handler panicked holding it.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::channel::{self, Request};
    ///
    /// let (tx, rx) = channel::bounded::<Request<u64, u64>>(4)?;
    /// let server = std::thread::spawn(move || {
    ///     for Request { body, reply } in rx.iter() {
    ///         let _ = reply.send(body * 2);
    ///     }
    /// });
    /// assert_eq!(tx.call(21)?, 42);
    /// drop(tx);
    /// server.join().unwrap();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn call(&self, body: Q) -> Result<A, CallError<Q>> {
        let (request, pending) = Request::new(body);
        self.send(request).map_err(|e| {
            let revoked = e.is_revoked();
            let body = e.into_inner().body;
            CallError::Send(if revoked {
                SendTimeoutError::Revoked(body)
            } else {
                SendTimeoutError::Disconnected(body)
            })
        })?;
        pending.recv().map_err(Into::into)
    }

    /// Sends `body` as a request and waits for the answer, spending at most
    /// `timeout` on both together.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use compartment::channel::{self, CallError, Request};
    /// let (tx, _rx) = channel::bounded::<Request<u8, u8>>(1)?;
    /// // Nobody serves: the call gives up at its deadline.
    /// assert!(matches!(tx.call_timeout(1, Duration::from_millis(10)), Err(CallError::Timeout)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`call`](Self::call), plus [`CallError::Timeout`] (no answer in
    /// time) and [`CallError::Send`] with [`SendTimeoutError::Timeout`] (no
    /// room in time).
    pub fn call_timeout(&self, body: Q, timeout: Duration) -> Result<A, CallError<Q>> {
        let deadline = deadline_after(timeout);
        let (mut request, pending) = Request::new(body);
        request.reply.deadline = deadline;
        self.send_until(request, deadline).map_err(|e| {
            CallError::Send(match e {
                SendTimeoutError::Timeout(r) => SendTimeoutError::Timeout(r.body),
                SendTimeoutError::Disconnected(r) => SendTimeoutError::Disconnected(r.body),
                SendTimeoutError::Revoked(r) => SendTimeoutError::Revoked(r.body),
            })
        })?;
        pending.recv_until(deadline).map_err(Into::into)
    }
}
