//! Waiting on several receivers at once, as crossbeam's `Select` does, from
//! inside a component: the wait also ends on cancellation, and on the
//! revocation of any endpoint waited on.

use std::fmt;

use crossbeam_channel as cb;

use super::{Cancelled, Context};
use crate::channel::{Armed, ChannelId, Receiver};
use crate::signal::Never;

/// A wait for the first of several receivers to be ready, built with
/// [`Context::select`].
///
/// Add each receiver with [`recv`](Self::recv), which returns its index;
/// [`ready`](Self::ready) waits until one has a message (or a message to
/// deliver again after a crash), is disconnected or is revoked, and returns
/// that index. Then receive from it as usual — with [`Context::recv`] to
/// track the message, or [`Context::recv_untracked`] for requests. When
/// other receivers share the channel, one of them may take the message
/// first: receive with a timeout, or select again.
///
/// # Examples
///
/// ```
/// use compartment::channel::{self, Receiver, Sender};
/// use compartment::{Child, Context, ContextError, Grant, Supervisor};
///
/// #[derive(Grant)]
/// struct Inboxes {
///     jobs: Receiver<u32>,
///     control: Receiver<String>,
///     log: Sender<String>,
/// }
///
/// fn worker(g: Inboxes, cx: &Context) -> Result<(), ContextError> {
///     loop {
///         let mut select = cx.select();
///         let jobs = select.recv(&g.jobs);
///         let control = select.recv(&g.control);
///         let ready = select.ready()?;
///         if ready == jobs {
///             let job = cx.recv(&g.jobs)?;
///             cx.send(&g.log, format!("job {job}")).map_err(|e| e.error)?;
///         } else if ready == control {
///             let order = cx.recv(&g.control)?;
///             cx.send(&g.log, format!("order {order}")).map_err(|e| e.error)?;
///         }
///     }
/// }
///
/// let (jobs_tx, jobs) = channel::bounded(4)?;
/// let (control_tx, control) = channel::bounded(4)?;
/// let (log, lines) = channel::bounded(4)?;
/// let system = Supervisor::new("app")
///     .child(Child::new("worker", worker, Inboxes { jobs, control, log }))
///     .start()?;
/// control_tx.send("pause".to_owned())?;
/// assert_eq!(lines.recv()?, "order pause");
/// jobs_tx.send(7)?;
/// assert_eq!(lines.recv()?, "job 7");
/// system.shutdown(); // the wait in `ready` ends with Cancelled
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Select<'a> {
    cx: &'a Context,
    inner: cb::Select<'a>,
    /// For each operation of `inner` after the cancellation watch, the
    /// receiver it belongs to.
    owners: Vec<usize>,
    /// The channels added, in order, and whether each is ready now:
    /// revoked, or (in a process child) its message here already.
    channels: Vec<(ChannelId, bool)>,
    /// The receivers added, each armed until the wait ends.
    armed: Vec<&'a dyn Armed>,
}

impl Drop for Select<'_> {
    fn drop(&mut self) {
        for receiver in &self.armed {
            receiver.disarm();
        }
    }
}

impl fmt::Debug for Select<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Select")
            .field("channels", &self.channels)
            .finish_non_exhaustive()
    }
}

impl<'a> Select<'a> {
    pub(super) fn new(cx: &'a Context) -> Self {
        let mut inner = cb::Select::new_biased();
        // Cancellation first: once raised, it wins over a ready message.
        inner.recv::<Never>(cx.cancel.watch());
        Self {
            cx,
            inner,
            owners: Vec::new(),
            channels: Vec::new(),
            armed: Vec::new(),
        }
    }

    /// Adds `rx` to the wait; returns the index [`ready`](Self::ready)
    /// gives when `rx` is the one ready.
    pub fn recv<T>(&mut self, rx: &'a Receiver<T>) -> usize {
        let index = self.channels.len();
        // In a process child, the supervisor's side sends a message only
        // when asked for one, and it comes to the channel selected on only
        // for a receiver that waits there.
        rx.ask();
        let here = !rx.arm();
        self.armed.push(rx);
        self.inner.recv(rx.crossbeam());
        self.owners.push(index);
        for watch in rx.gate.watches() {
            self.inner.recv(watch);
            self.owners.push(index);
        }
        self.channels
            .push((rx.id(), here || rx.gate.check().is_err()));
        index
    }

    /// Waits until one of the receivers added has a message, is
    /// disconnected or is revoked, and returns its index. A message an
    /// earlier instance died handling counts as ready at once.
    ///
    /// # Errors
    ///
    /// [`Cancelled`] when the instance is cancelled (also with no receiver
    /// added: a wait for cancellation only).
    pub fn ready(mut self) -> Result<usize, Cancelled> {
        self.cx.check()?;
        if let Some(index) = self
            .channels
            .iter()
            .position(|(channel, ready)| *ready || self.cx.mailbox.holds(*channel))
        {
            return Ok(index);
        }
        match self.inner.ready() {
            0 => Err(Cancelled),
            operation => Ok(self.owners[operation - 1]),
        }
    }
}

impl Context {
    /// A wait on several receivers at once: see [`Select`].
    pub fn select(&self) -> Select<'_> {
        Select::new(self)
    }
}
