//! A child's carrier: the thread that starts its locked-down threads.
//!
//! Attaching a seccomp program costs time in proportion to its length,
//! because the kernel converts and compiles it on every attach; a thread
//! inherits its creator's programs for nothing. So each locked-down child
//! specification has a carrier thread that attached the child's program
//! once — the variant that still allows threads, never processes — and
//! starts every thread of the child: its instance threads and the threads
//! those start through [`Context::spawn`](crate::Context::spawn). Each new
//! thread stacks a program of a few instructions that refuses it threads of
//! its own, and its instance's Landlock ruleset, before component code
//! runs. The carrier runs nothing but `spawn`; it ends when the last handle
//! on it (the child's policy, its instances' confinements) is gone.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use crossbeam_channel as cb;
use seccompiler::BpfProgram;

use crate::ceiling;
use crate::threads::SpawnError;

/// A thread to start: its name, its body, and where to say how it went.
type Request = (
    String,
    Box<dyn FnOnce() + Send>,
    cb::Sender<Result<JoinHandle<()>, ceiling::Refused>>,
);

thread_local! {
    /// The carrier that started this thread, if one did: the programs this
    /// thread inherited from it.
    static CARRIED_BY: Cell<Option<u64>> = const { Cell::new(None) };
}

/// A running carrier.
#[derive(Debug)]
pub(crate) struct Carrier {
    id: u64,
    requests: cb::Sender<Request>,
}

impl Carrier {
    /// Starts a carrier that attaches `program` to itself first. Call it
    /// from an unconfined thread: a confined one cannot start threads.
    pub(crate) fn start(program: Arc<BpfProgram>) -> Result<Arc<Self>, String> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let (requests, incoming) = cb::unbounded::<Request>();
        let (ready, attached) = cb::bounded(1);
        ceiling::spawn(format!("compartment-carrier-{id}"), move || {
            let result = seccompiler::apply_filter(&program).map_err(|e| e.to_string());
            let carrying = result.is_ok();
            let _ = ready.send(result);
            if !carrying {
                return;
            }
            for (name, body, reply) in incoming {
                let carried = move || {
                    CARRIED_BY.with(|carried| carried.set(Some(id)));
                    body();
                };
                let _ = reply.send(ceiling::spawn(name, carried));
            }
        })
        .map_err(|refused| format!("the carrier thread could not start: {refused}"))?;
        match attached.recv() {
            Ok(Ok(())) => Ok(Arc::new(Self { id, requests })),
            Ok(Err(err)) => Err(format!("the carrier could not attach its program: {err}")),
            Err(_) => Err("the carrier thread ended before attaching its program".to_owned()),
        }
    }

    /// Whether the calling thread was started by this carrier, and so
    /// already carries its program.
    pub(crate) fn carries_current_thread(&self) -> bool {
        CARRIED_BY.with(Cell::get) == Some(self.id)
    }

    /// Starts a thread running `body` from the carrier.
    fn spawn(
        &self,
        name: String,
        body: Box<dyn FnOnce() + Send>,
    ) -> Result<JoinHandle<()>, SpawnError> {
        let gone = || SpawnError::Spawn {
            source: std::io::Error::other("the carrier thread is not running"),
        };
        let (reply, started) = cb::bounded(1);
        self.requests
            .send((name, body, reply))
            .map_err(|_| gone())?;
        Ok(started.recv().map_err(|_| gone())??)
    }
}

/// Starts a thread for a policy: from its carrier, or — without one (best
/// effort, where it could not start, so no seccomp program refuses threads)
/// — directly.
pub(crate) fn spawn(
    carrier: Option<&Carrier>,
    name: String,
    work: impl FnOnce() + Send + 'static,
) -> Result<JoinHandle<()>, SpawnError> {
    match carrier {
        Some(carrier) => carrier.spawn(name, Box::new(work)),
        None => Ok(ceiling::spawn(name, work)?),
    }
}
