//! Messages in flight: what an instance is handling, and what waits to be
//! delivered again after it died.
//!
//! Two lifetimes meet here. A child's [`Mailbox`] outlives its instances: it
//! holds, per channel, the message an earlier instance died handling. An
//! instance's [`InFlightCell`] cell lives exactly as long as that instance: it
//! holds the last message the instance received through
//! [`Context::recv`](crate::Context::recv). The cell is *closed* exactly once
//! — by the instance's own thread when it ends, or by its supervisor when it
//! detaches a runaway — and whoever closes it settles the message. A late
//! runaway therefore finds its cell closed and touches nothing of its
//! successor's.

use std::any::Any;
use std::fmt;

use parking_lot::Mutex;

use crate::channel::ChannelId;
use crate::fault::{self, Fault};
use crate::supervisor::DeadLetter;
use crate::supervisor::control::Outcome;

/// A message received through [`Context::recv`](crate::Context::recv) and
/// not yet known to be handled: kept so a crash can report it and deliver it
/// again.
pub(crate) struct Tracked {
    pub(crate) channel: ChannelId,
    pub(crate) message: Box<dyn Any + Send>,
    pub(crate) describe: fn(&(dyn Any + Send)) -> String,
    /// How many instances died handling it before this delivery.
    pub(crate) attempts: u32,
}

impl Tracked {
    /// The message's `Debug` text; a `Debug` that panics is contained.
    fn description(&self) -> String {
        fault::describe_contained("a message", || (self.describe)(&*self.message))
    }
}

impl fmt::Debug for Tracked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tracked")
            .field("channel", &self.channel)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

/// The per-child state that outlives instances: for each channel, the
/// message an instance died handling, waiting to be delivered again.
#[derive(Debug, Default)]
pub(crate) struct Mailbox {
    redelivery: Mutex<Vec<Tracked>>,
}

impl Mailbox {
    /// Queues `tracked` to be delivered again on its channel. A channel
    /// holds at most one such message: the next receive on it takes it.
    pub(crate) fn deliver_again(&self, tracked: Tracked) {
        self.redelivery.lock().push(tracked);
    }

    /// Whether a message waits to be delivered again on `channel`.
    pub(crate) fn holds(&self, channel: ChannelId) -> bool {
        self.redelivery
            .lock()
            .iter()
            .any(|tracked| tracked.channel == channel)
    }

    /// The message waiting to be delivered again on `channel`, if it is of
    /// type `T`, with the attempts it has cost so far.
    pub(crate) fn take<T: 'static>(&self, channel: ChannelId) -> Option<(T, u32)> {
        let mut waiting = self.redelivery.lock();
        let position = waiting
            .iter()
            .position(|tracked| tracked.channel == channel && tracked.message.as_ref().is::<T>())?;
        let tracked = waiting.remove(position);
        let attempts = tracked.attempts;
        tracked
            .message
            .downcast::<T>()
            .ok()
            .map(|message| (*message, attempts))
    }

    /// Takes every waiting message out (to be dropped by the caller under
    /// its panic guard).
    pub(crate) fn take_all(&self) -> Vec<Tracked> {
        std::mem::take(&mut *self.redelivery.lock())
    }
}

/// One instance's message in flight; see the [module](self) docs.
#[derive(Debug, Default)]
pub(crate) struct InFlightCell {
    state: Mutex<CellState>,
}

#[derive(Debug, Default)]
struct CellState {
    tracked: Option<Tracked>,
    closed: bool,
}

impl InFlightCell {
    /// Tracks `tracked` as the message being handled; hands back the one it
    /// replaces (handled, for the caller to drop). A closed cell refuses
    /// and hands `tracked` back as `Err`.
    pub(crate) fn track(&self, tracked: Tracked) -> Result<Option<Tracked>, Tracked> {
        let mut state = self.state.lock();
        if state.closed {
            return Err(tracked);
        }
        Ok(state.tracked.replace(tracked))
    }

    /// Marks the message handled; hands it back for the caller to drop
    /// outside the lock.
    pub(crate) fn handled(&self) -> Option<Tracked> {
        self.state.lock().tracked.take()
    }

    /// Closes the cell and takes its message: the first caller settles it,
    /// every later one gets `None`.
    pub(crate) fn close(&self) -> Option<Tracked> {
        let mut state = self.state.lock();
        state.closed = true;
        state.tracked.take()
    }
}

/// Decides the fate of the message an instance was handling when it ended:
/// after a crash it is named in the fault and delivered again, or
/// dead-lettered once it has crashed the component `poison_threshold` times
/// in a row; after a shutdown it is delivered again without counting; after
/// a normal exit it was handled and is dropped (under the panic guard: a
/// `Drop` that panics turns the exit into a fault).
pub(crate) fn settle(
    path: &str,
    instance: u64,
    tracked: Option<Tracked>,
    mailbox: &Mailbox,
    mut outcome: Outcome,
    poison_threshold: u32,
) -> (Outcome, Option<DeadLetter>) {
    let Some(mut tracked) = tracked else {
        return (outcome, None);
    };
    match &mut outcome {
        Outcome::Normal => match fault::drop_contained(tracked) {
            Ok(()) => (outcome, None),
            Err(caught) => {
                let kind = caught.while_("dropping the handled message");
                (Outcome::Failed(Fault::new(path, instance, kind)), None)
            }
        },
        Outcome::Shutdown | Outcome::GaveUp(_) => {
            mailbox.deliver_again(tracked);
            (outcome, None)
        }
        Outcome::Failed(fault) => {
            tracked.attempts += 1;
            let description = tracked.description();
            fault.in_flight = Some(fault::InFlight {
                description: description.clone(),
                attempts: tracked.attempts,
            });
            if tracked.attempts >= poison_threshold {
                let letter = DeadLetter::new(
                    path.to_owned(),
                    tracked.channel,
                    description,
                    tracked.attempts,
                    tracked.message,
                );
                (outcome, Some(letter))
            } else {
                mailbox.deliver_again(tracked);
                (outcome, None)
            }
        }
    }
}
