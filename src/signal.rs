//! A one-way, many-waiter flag that blocking operations can select on.
//!
//! Revocation and cancellation are both "raised once, seen by everyone, wakes
//! whoever is blocked". A raised [`Signal`] drops the only sender of a private
//! channel, so every `crossbeam_channel::Select` that includes
//! [`Signal::watch`] wakes at once with a disconnection, without polling.
//! The channel is made the first time someone asks to watch: most signals
//! (an idle component's cancellation, its instance's revocation switch) are
//! only ever read as a flag or waited on by parking, and a channel costs
//! hundreds of bytes.

use std::sync::atomic::{AtomicBool, Ordering, fence};
use std::sync::{OnceLock, Weak};
use std::thread::Thread;

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

/// The uninhabited message of a watch channel: nothing is ever sent on it,
/// it only disconnects.
#[derive(Debug)]
pub(crate) enum Never {}

/// A flag raised at most once.
#[derive(Debug)]
pub(crate) struct Signal {
    raised: AtomicBool,
    /// Made on the first `watch`, in an allocation of its own: most signals
    /// never need it, and every instance has two.
    watch: OnceLock<Box<Watch>>,
    /// Who to wake when the flag is raised.
    waiting: Mutex<Waiting>,
}

/// What a raise wakes.
#[derive(Debug, Default)]
struct Waiting {
    /// A thread parked until the raise: the common case (an idle
    /// component), which needs no allocation — an idle component's thread
    /// never allocates, so it costs no allocator state of its own.
    sleeper: Option<Thread>,
    /// Run once when the flag is raised: how a blocked socket call is woken
    /// (the socket is shut down), or further sleepers unparked. Held
    /// weakly: a dropped socket's hook is gone.
    hooks: Vec<Weak<RaiseHook>>,
}

/// A signal's watch channel.
#[derive(Debug)]
struct Watch {
    /// Dropped (set to `None`) when raised; that disconnects `receiver`.
    sender: Mutex<Option<Sender<Never>>>,
    receiver: Receiver<Never>,
}

/// Something to do when a [`Signal`] is raised.
pub(crate) type RaiseHook = dyn Fn() + Send + Sync;

impl Signal {
    pub(crate) fn new() -> Self {
        Self {
            raised: AtomicBool::new(false),
            watch: OnceLock::new(),
            waiting: Mutex::new(Waiting::default()),
        }
    }

    /// Raises the flag and wakes every waiter. Idempotent.
    pub(crate) fn raise(&self) {
        self.raised.store(true, Ordering::SeqCst);
        // See `watch`.
        fence(Ordering::SeqCst);
        if let Some(watch) = self.watch.get() {
            drop(watch.sender.lock().take());
        }
        let Waiting { sleeper, hooks } = std::mem::take(&mut *self.waiting.lock());
        if let Some(sleeper) = sleeper {
            sleeper.unpark();
        }
        for hook in hooks.iter().filter_map(Weak::upgrade) {
            hook();
        }
    }

    /// Unparks `thread` when the flag is raised (at once if it is), until
    /// [`forget_sleeper`](Self::forget_sleeper). `false` when another
    /// thread already waits here: the caller needs a hook instead.
    pub(crate) fn wake_sleeper(&self, thread: &Thread) -> bool {
        let mut waiting = self.waiting.lock();
        // Checked under the lock `raise` takes after setting the flag.
        if self.is_raised() {
            drop(waiting);
            thread.unpark();
            return true;
        }
        match &waiting.sleeper {
            Some(other) if other.id() != thread.id() => false,
            _ => {
                waiting.sleeper = Some(thread.clone());
                true
            }
        }
    }

    /// Stops waking `thread` (it is no longer parked here).
    pub(crate) fn forget_sleeper(&self, thread: &Thread) {
        let mut waiting = self.waiting.lock();
        if waiting
            .sleeper
            .as_ref()
            .is_some_and(|sleeper| sleeper.id() == thread.id())
        {
            waiting.sleeper = None;
        }
    }

    /// Runs `hook` when the flag is raised — at once if it already is.
    pub(crate) fn on_raise(&self, hook: Weak<RaiseHook>) {
        let mut waiting = self.waiting.lock();
        // Checked under the lock `raise` takes after setting the flag: either
        // `raise` sees this hook, or this sees the flag.
        if self.is_raised() {
            drop(waiting);
            if let Some(hook) = hook.upgrade() {
                hook();
            }
            return;
        }
        waiting.hooks.retain(|hook| hook.strong_count() > 0);
        waiting.hooks.push(hook);
    }

    #[inline]
    pub(crate) fn is_raised(&self) -> bool {
        self.raised.load(Ordering::SeqCst)
    }

    /// A receiver that becomes disconnected when the flag is raised; use it in
    /// a `Select` next to the operation that should be interrupted.
    pub(crate) fn watch(&self) -> &Receiver<Never> {
        let watch = self.watch.get_or_init(|| {
            let (sender, receiver) = crossbeam_channel::bounded(1);
            Box::new(Watch {
                sender: Mutex::new(Some(sender)),
                receiver,
            })
        });
        // `raise` sets the flag, then looks for the watch; this made the
        // watch, then looks at the flag. With a fence on each side, one of
        // the two sees the other's write, and the sender is dropped.
        fence(Ordering::SeqCst);
        if self.is_raised() {
            drop(watch.sender.lock().take());
        }
        &watch.receiver
    }
}

impl Default for Signal {
    fn default() -> Self {
        Self::new()
    }
}
