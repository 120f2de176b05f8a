//! The thread that starts threads for confined ones.
//!
//! A locked-down thread cannot `clone`: its seccomp program refuses every
//! new thread, so that component code cannot start one outside its
//! instance's accounting and policy. The thread capability
//! ([`Context::spawn`](crate::Context::spawn)) hands the start to this
//! thread instead, which is unconfined and runs nothing but `spawn`; the new
//! thread confines itself before the work runs. It is started once per
//! process, from the first unconfined thread that compiles a policy, and
//! waits for requests for the rest of the process's life.

use std::sync::OnceLock;
use std::thread::JoinHandle;

use crossbeam_channel as cb;

use crate::ceiling;
use crate::threads::SpawnError;

/// A thread to start: its name, its body, and where to say how it went.
type Request = (
    String,
    Box<dyn FnOnce() + Send>,
    cb::Sender<Result<JoinHandle<()>, ceiling::Refused>>,
);

static REQUESTS: OnceLock<cb::Sender<Request>> = OnceLock::new();

/// Starts the spawner unless it runs already.
pub(super) fn start() -> Result<(), String> {
    if REQUESTS.get().is_some() {
        return Ok(());
    }
    let (requests, incoming) = cb::unbounded::<Request>();
    // Two threads may race here; the loser's spawner finds its channel
    // closed and ends.
    ceiling::spawn("compartment-spawner".to_owned(), move || {
        for (name, body, reply) in incoming {
            let _ = reply.send(ceiling::spawn(name, body));
        }
    })
    .map_err(|refused| {
        format!("the thread that starts locked-down components' threads could not start: {refused}")
    })?;
    let _ = REQUESTS.set(requests);
    Ok(())
}

/// Starts a thread running `body` from the spawner.
pub(super) fn spawn(
    name: String,
    body: Box<dyn FnOnce() + Send>,
) -> Result<JoinHandle<()>, SpawnError> {
    let gone = || SpawnError::Spawn {
        source: std::io::Error::other("the spawner thread is not running"),
    };
    let requests = REQUESTS.get().ok_or_else(gone)?;
    let (reply, started) = cb::bounded(1);
    requests.send((name, body, reply)).map_err(|_| gone())?;
    match started.recv().map_err(|_| gone())? {
        Ok(join) => Ok(join),
        Err(ceiling::Refused::Ceiling(ceiling)) => Err(SpawnError::Ceiling { ceiling }),
        Err(ceiling::Refused::Spawn(source)) => Err(SpawnError::Spawn { source }),
    }
}
