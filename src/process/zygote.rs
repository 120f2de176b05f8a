//! The zygote: a small process forked from `main` while it still has one
//! thread, which starts every process child.
//!
//! A multi-threaded process cannot be forked safely (the child inherits
//! locks held by threads that do not exist in it) and cannot enter a new
//! user namespace (`unshare` fails once a second thread exists). The zygote
//! is single-threaded for its whole life: it waits for spawn requests on a
//! packet socket, clones a child beside itself for each (the supervisor's
//! process is the child's parent), and answers with the child's pidfd.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::OnceLock;

use parking_lot::Mutex;

use super::child::{self, Launch, Prepared};
use super::entry::Registered;
use super::reexec;
use super::sys::{self, Spawned};
use super::wire::{self, SpawnRequest, ZygoteReply};

/// Why [`init`] could not prepare the process tier.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InitError {
    /// `init` was called before.
    #[error("compartment::process::init was already called")]
    AlreadyStarted,
    /// Other threads exist already; `init` must be the first line of `main`.
    #[error(
        "compartment::process::init must run while the program has one thread (the first line of main); it has {threads}"
    )]
    NotSingleThreaded {
        /// How many threads the process has.
        threads: usize,
    },
    /// The zygote could not be started.
    #[error("could not start the process tier's zygote: {0}")]
    Io(#[from] std::io::Error),
}

/// The supervisor side of the zygote.
#[derive(Debug)]
pub(crate) struct Zygote {
    /// One request and its answer at a time.
    socket: Mutex<OwnedFd>,
}

static ZYGOTE: OnceLock<Zygote> = OnceLock::new();

/// The zygote, if [`init`] started one in this process.
pub(crate) fn zygote() -> Option<&'static Zygote> {
    ZYGOTE.get()
}

/// A child the zygote started: its process id and a pidfd for it.
#[derive(Debug)]
pub(crate) struct Started {
    pub(crate) pid: i32,
    pub(crate) pidfd: OwnedFd,
}

impl Zygote {
    /// Asks the zygote to start a child for `request`, handing it
    /// `descriptors`. `Ok(None)`: the zygote cannot clone here; start the
    /// child by running the program again.
    pub(crate) fn spawn(
        &self,
        request: &SpawnRequest,
        descriptors: &[&OwnedFd],
    ) -> Result<Option<Started>, String> {
        ask(self.socket.lock().as_fd(), request, descriptors)
    }
}

/// Asks the zygote (or a program started again as one) on `socket` to
/// start a child for `request`, handing it `descriptors`. `Ok(None)`: it
/// cannot clone here.
pub(crate) fn ask(
    socket: BorrowedFd<'_>,
    request: &SpawnRequest,
    descriptors: &[&OwnedFd],
) -> Result<Option<Started>, String> {
    let bytes = wire::encode(request).map_err(|err| err.to_string())?;
    let borrowed: Vec<_> = descriptors.iter().map(|fd| fd.as_fd()).collect();
    wire::send_packet(socket, &bytes, &borrowed)
        .map_err(|err| format!("the zygote could not be asked: {err}"))?;
    let (reply, mut fds) = wire::recv_packet(socket)
        .map_err(|err| format!("the zygote did not answer: {err}"))?
        .ok_or_else(|| "the zygote has ended".to_owned())?;
    match wire::decode::<ZygoteReply>(&reply).map_err(|err| err.to_string())? {
        ZygoteReply::Spawned { pid } => match fds.pop() {
            Some(pidfd) => Ok(Some(Started { pid, pidfd })),
            None => Err("the zygote answered without a pidfd".to_owned()),
        },
        ZygoteReply::Refused { reason } => Err(reason),
        ZygoteReply::CannotClone { .. } => Ok(None),
    }
}

/// Prepares the process tier; call it as the first line of `main`, with
/// every entry a process child may run.
///
/// In the program it returns `Ok` once the zygote runs. In a process child
/// (which starts as a copy of the zygote) it runs the child's entry and
/// never returns.
///
/// A [`Child::process`](crate::Child::process) whose entry was not listed
/// here fails to start with a fault naming it; without `init` at all,
/// every process child fails to start. Neither ever runs in a thread.
///
/// # Errors
///
/// [`InitError::NotSingleThreaded`] when other threads already exist,
/// [`InitError::AlreadyStarted`] on a second call, [`InitError::Io`] when
/// the zygote cannot be forked.
///
/// # Examples
///
/// ```no_run
/// use compartment::{Context, entry};
///
/// fn plugin(_grant: (), _cx: &Context) -> Result<(), std::io::Error> {
///     Ok(())
/// }
///
/// fn main() -> Result<(), compartment::process::InitError> {
///     compartment::process::init(&[&entry!(plugin)])?;
///     // ... build and start the tree ...
///     Ok(())
/// }
/// ```
pub fn init(entries: &[&dyn Registered]) -> Result<(), InitError> {
    // A program started again as a process child runs its entry here.
    reexec::serve_if_child(entries);
    if ZYGOTE.get().is_some() {
        return Err(InitError::AlreadyStarted);
    }
    let threads = thread_count()?;
    if threads != 1 {
        return Err(InitError::NotSingleThreaded { threads });
    }
    let (supervisor_end, zygote_end) = wire::packet_pair()?;
    let supervisor = std::process::id() as i32;
    match sys::fork()? {
        Spawned::Child => {
            drop(supervisor_end);
            serve(entries, &zygote_end, supervisor)
        }
        Spawned::Parent { .. } => {
            drop(zygote_end);
            ZYGOTE
                .set(Zygote {
                    socket: Mutex::new(supervisor_end),
                })
                .map_err(|_| InitError::AlreadyStarted)
        }
    }
}

/// How many threads this process has, from `/proc/self/status`.
fn thread_count() -> std::io::Result<usize> {
    #[allow(
        clippy::disallowed_methods,
        reason = "the granting side reads its own process's status"
    )]
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .and_then(|count| count.trim().parse().ok())
        .ok_or_else(|| std::io::Error::other("/proc/self/status has no thread count"))
}

/// The zygote's loop: one child per request, until the supervisor's end
/// closes (or its process ends, which kills the zygote).
fn serve(entries: &[&dyn Registered], socket: &OwnedFd, supervisor: i32) -> ! {
    let dies_with_parent =
        rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    let parent = rustix::process::getppid().map(|pid| pid.as_raw_nonzero().get());
    if dies_with_parent.is_err() || parent != Some(supervisor) {
        sys::exit_now(0);
    }
    // What the zygote starts sees only what its grant says.
    sys::forget_the_program();
    let prepared = child::prepare();
    loop {
        let packet = match wire::recv_packet(socket.as_fd()) {
            Ok(Some(packet)) => packet,
            Ok(None) | Err(_) => sys::exit_now(0),
        };
        if answer(entries, packet, socket, &prepared).is_err() {
            sys::exit_now(0);
        }
    }
}

/// Starts one child for the request in `packet`, which came on `socket`,
/// and answers there: with the child's id and pidfd, or why not.
pub(crate) fn answer(
    entries: &[&dyn Registered],
    (bytes, descriptors): (Vec<u8>, Vec<OwnedFd>),
    socket: &OwnedFd,
    prepared: &Prepared,
) -> std::io::Result<()> {
    match start(entries, &bytes, descriptors, socket, prepared) {
        Ok((pid, pidfd)) => {
            let reply = wire::encode(&ZygoteReply::Spawned { pid })?;
            wire::send_packet(socket.as_fd(), &reply, &[pidfd.as_fd()])
        }
        Err(refusal) => wire::send(socket, &refusal),
    }
}

/// Starts one child; returns its id and pidfd. The request's descriptors
/// are closed here once the child has its copies.
fn start(
    entries: &[&dyn Registered],
    bytes: &[u8],
    descriptors: Vec<OwnedFd>,
    socket: &OwnedFd,
    prepared: &Prepared,
) -> Result<(i32, OwnedFd), ZygoteReply> {
    let refused = |reason: String| ZygoteReply::Refused { reason };
    let request: SpawnRequest = wire::decode(bytes).map_err(|err| refused(err.to_string()))?;
    let entry = entries
        .iter()
        .find(|entry| entry.name() == request.entry)
        .ok_or_else(|| {
            refused(format!(
                "no entry `{}` was passed to compartment::process::init",
                request.entry
            ))
        })?;
    if entry.fingerprint() != request.fingerprint {
        return Err(refused(format!(
            "the entry `{}` passed to compartment::process::init takes other types than this child's",
            request.entry
        )));
    }
    match prepared.clone_child() {
        Ok((Spawned::Child, in_namespaces)) => entry.launch(Launch {
            request,
            descriptors,
            zygote: socket.as_raw_fd(),
            prepared,
            in_namespaces,
        }),
        Ok((Spawned::Parent { pid, pidfd }, _)) => pidfd
            .map(|pidfd| (pid, pidfd))
            .ok_or_else(|| refused("no pidfd".to_owned())),
        Err(err) => Err(ZygoteReply::CannotClone {
            reason: format!("the zygote could not create a process: {err}"),
        }),
    }
}
