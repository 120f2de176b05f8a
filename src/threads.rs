//! Threads as a capability: a component that needs threads of its own asks
//! its [`Context`](crate::Context) for them.
//!
//! A thread started with [`Context::spawn`](crate::Context::spawn) belongs
//! to the instance that started it:
//!
//! - its CPU time and the memory it allocates count toward the instance's
//!   [`Limits`](crate::Limits), and at most
//!   [`Limits::threads`](crate::Limits::threads) of them run at once;
//! - when the child is locked down, it carries the instance's kernel policy:
//!   the child's carrier thread starts it (a confined thread cannot start
//!   threads), it inherits the carrier's seccomp program, and it applies the
//!   instance's Landlock ruleset and the ban on threads of its own before
//!   the work runs;
//! - it is asked to stop through its [`Cancellation`] when the instance is
//!   cancelled or ends, and the instance has not ended until every one of
//!   its threads has: a thread that ignores cancellation keeps its instance
//!   running, and the supervisor treats it as it treats any instance that
//!   ignores shutdown (revoked, detached, counted);
//! - a panic in it is contained: [`InstanceThread::join`] returns it, and a
//!   panic nobody joined becomes the instance's fault;
//! - `status()` shows how many run ([`ChildStatus::threads`]).
//!
//! A raw `std::thread::spawn` is none of this; `clippy.toml` forbids it,
//! and under lockdown the kernel refuses it.
//!
//! [`ChildStatus::threads`]: crate::supervisor::ChildStatus::threads

use std::fmt;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

use parking_lot::Mutex;

use crate::ceiling::{self, Ceiling};
use crate::context::Cancelled;
use crate::fault;
use crate::limits::Meter;
use crate::lockdown::{self, LockdownError};
use crate::signal::Signal;

/// What a thread started with [`Context::spawn`](crate::Context::spawn) is
/// given: whether it should stop.
///
/// It is cancelled when its instance is cancelled and when its instance's
/// entry has returned.
#[derive(Debug, Clone)]
pub struct Cancellation {
    instance: Arc<Signal>,
    ended: Arc<Signal>,
}

impl Cancellation {
    /// Whether the thread should stop.
    pub fn is_cancelled(&self) -> bool {
        self.instance.is_raised() || self.ended.is_raised()
    }

    /// `Err(Cancelled)` once the thread should stop; call it in loops.
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
}

/// Why [`Context::spawn`](crate::Context::spawn) started no thread.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// The instance already runs as many threads as its
    /// [`Limits::threads`](crate::Limits::threads) allows.
    #[error("the instance already runs {limit} threads of its own, its limit")]
    Limit {
        /// The limit.
        limit: usize,
    },
    /// The instance is ending (or was cancelled): it starts no more threads.
    #[error("the instance is stopping and starts no more threads")]
    Stopping,
    /// Another thread would pass one of the process's ceilings.
    #[error("cannot start a thread: {ceiling}")]
    Ceiling {
        /// Which, with the figures seen.
        ceiling: Ceiling,
    },
    /// The operating system refused the thread.
    #[error("could not spawn the thread: {source}")]
    Spawn {
        /// What it said.
        #[source]
        source: io::Error,
    },
    /// The instance is locked down, and the new thread could not be given
    /// its policy; it never ran the work.
    #[error("could not confine the thread like its instance: {source}")]
    Lockdown {
        /// Why.
        #[source]
        source: LockdownError,
    },
}

impl From<ceiling::Refused> for SpawnError {
    fn from(refused: ceiling::Refused) -> Self {
        match refused {
            ceiling::Refused::Ceiling(ceiling) => SpawnError::Ceiling { ceiling },
            ceiling::Refused::Spawn(source) => SpawnError::Spawn { source },
        }
    }
}

/// A thread started with [`Context::spawn`](crate::Context::spawn)
/// panicked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("thread `{thread}` panicked: {message}")]
pub struct ThreadPanicked {
    /// The thread's name.
    pub thread: String,
    /// The panic's message, with its location when known.
    pub message: String,
}

/// Where a thread leaves its result.
struct Finish<T> {
    result: Mutex<Option<Result<T, ThreadPanicked>>>,
    done: Signal,
}

/// A finished thread's panic that nobody took with `join`.
trait Unclaimed: Send + Sync {
    fn unclaimed_panic(&self) -> Option<ThreadPanicked>;
}

impl<T: Send> Unclaimed for Finish<T> {
    fn unclaimed_panic(&self) -> Option<ThreadPanicked> {
        match &*self.result.lock() {
            Some(Err(panicked)) => Some(panicked.clone()),
            _ => None,
        }
    }
}

/// A thread of an instance, started with
/// [`Context::spawn`](crate::Context::spawn).
///
/// Dropping it does not stop the thread; its instance waits for it when it
/// ends.
pub struct InstanceThread<T> {
    name: String,
    finish: Arc<Finish<T>>,
}

impl<T> fmt::Debug for InstanceThread<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InstanceThread")
            .field("name", &self.name)
            .field("finished", &self.is_finished())
            .finish()
    }
}

impl<T> InstanceThread<T> {
    /// The name it was given.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether its work has returned (or panicked).
    pub fn is_finished(&self) -> bool {
        self.finish.done.is_raised()
    }

    /// Waits for its work to return, and takes the result.
    ///
    /// # Errors
    ///
    /// [`ThreadPanicked`] when the work panicked; the panic is then the
    /// caller's to handle, not the instance's fault.
    pub fn join(self) -> Result<T, ThreadPanicked> {
        // The watch disconnects when the flag is raised.
        let _ = self.finish.done.watch().recv();
        self.finish.result.lock().take().unwrap_or_else(|| {
            Err(ThreadPanicked {
                thread: self.name.clone(),
                message: "its result was already taken".to_owned(),
            })
        })
    }
}

/// The threads one instance started.
pub(crate) struct ThreadGroup {
    path: Arc<str>,
    cancel: Arc<Signal>,
    ended: Arc<Signal>,
    limit: Option<usize>,
    meter: Option<Arc<Meter>>,
    forward_panics: bool,
    backtraces: bool,
    live: Arc<AtomicUsize>,
    threads: Mutex<Vec<Started>>,
    /// The process running the instance, for a process child (0: none);
    /// `status()` reads its usage.
    #[cfg(all(feature = "process", target_os = "linux"))]
    process: Mutex<Option<Arc<crate::process::RunningProcess>>>,
}

/// A thread of the group: how to wait for it, and its result.
type Started = (JoinHandle<()>, Arc<dyn Unclaimed>);

impl fmt::Debug for ThreadGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadGroup")
            .field("path", &self.path)
            .field("live", &self.live())
            .finish_non_exhaustive()
    }
}

/// Counts a thread out of its group's live count when it ends, however it
/// ends.
struct LiveGuard(Arc<AtomicUsize>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl ThreadGroup {
    pub(crate) fn new(
        path: Arc<str>,
        cancel: Arc<Signal>,
        limit: Option<usize>,
        meter: Option<Arc<Meter>>,
        forward_panics: bool,
        backtraces: bool,
    ) -> Self {
        Self {
            path,
            cancel,
            ended: Arc::new(Signal::new()),
            limit,
            meter,
            forward_panics,
            backtraces,
            live: Arc::new(AtomicUsize::new(0)),
            threads: Mutex::new(Vec::new()),
            #[cfg(all(feature = "process", target_os = "linux"))]
            process: Mutex::new(None),
        }
    }

    /// Records the process running the instance (`None` once it ended).
    #[cfg(all(feature = "process", target_os = "linux"))]
    pub(crate) fn set_process(&self, running: Option<crate::process::RunningProcess>) {
        *self.process.lock() = running.map(Arc::new);
    }

    /// The process running the instance, if it runs in one.
    #[cfg(all(feature = "process", target_os = "linux"))]
    pub(crate) fn process(&self) -> Option<Arc<crate::process::RunningProcess>> {
        self.process.lock().clone()
    }

    /// Threads of this instance running now.
    pub(crate) fn live(&self) -> usize {
        self.live.load(Ordering::Acquire)
    }

    pub(crate) fn spawn<T, F>(&self, name: &str, work: F) -> Result<InstanceThread<T>, SpawnError>
    where
        T: Send + 'static,
        F: FnOnce(&Cancellation) -> T + Send + 'static,
    {
        // Under the lock `finish` takes: no thread starts after it looked.
        let mut threads = self.threads.lock();
        if self.ended.is_raised() || self.cancel.is_raised() {
            return Err(SpawnError::Stopping);
        }
        let limit = self.limit;
        self.live
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |live| {
                (limit.is_none_or(|limit| live < limit)).then_some(live + 1)
            })
            .map_err(|_| SpawnError::Limit {
                limit: limit.unwrap_or(0),
            })?;
        let live = LiveGuard(Arc::clone(&self.live));
        let finish = Arc::new(Finish {
            result: Mutex::new(None),
            done: Signal::new(),
        });
        let cancellation = Cancellation {
            instance: Arc::clone(&self.cancel),
            ended: Arc::clone(&self.ended),
        };
        let body = {
            let finish = Arc::clone(&finish);
            let meter = self.meter.clone();
            let name = name.to_owned();
            let (forward, backtraces) = (self.forward_panics, self.backtraces);
            move || {
                let _live = live;
                fault::mark_supervised(forward, backtraces);
                let tid = meter.as_ref().map(|meter| meter.enter_spawned());
                let result =
                    fault::contain(|| work(&cancellation)).map_err(|caught| ThreadPanicked {
                        thread: name,
                        message: caught.explain("its work"),
                    });
                if let (Some(meter), Some(tid)) = (&meter, tid) {
                    meter.leave_spawned(tid, crate::limits::own_cpu());
                }
                *finish.result.lock() = Some(result);
                finish.done.raise();
            }
        };
        let thread_name = format!("{}/{name}", self.path);
        // A locked-down thread cannot start threads itself: the new one
        // starts elsewhere and takes on the same policy before its work.
        let join = match lockdown::confinement() {
            Some(confinement) => confinement.spawn(thread_name, body)?,
            None => ceiling::spawn(thread_name, body)?,
        };
        threads.push((join, Arc::clone(&finish) as Arc<dyn Unclaimed>));
        Ok(InstanceThread {
            name: name.to_owned(),
            finish,
        })
    }

    /// At the instance's end: asks every thread to stop, waits for each,
    /// and returns the first panic that nobody joined.
    pub(crate) fn finish(&self) -> Option<ThreadPanicked> {
        let threads = {
            let mut threads = self.threads.lock();
            self.ended.raise();
            std::mem::take(&mut *threads)
        };
        let mut unclaimed = None;
        for (join, finish) in threads {
            let _ = join.join();
            if unclaimed.is_none() {
                unclaimed = finish.unclaimed_panic();
            }
        }
        unclaimed
    }
}
