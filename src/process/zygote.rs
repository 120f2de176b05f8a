//! The zygote: a small process forked from `main` while it still has one
//! thread, which starts every process child.
//!
//! A multi-threaded process cannot be forked safely (the child inherits
//! locks held by threads that do not exist in it) and cannot enter a new
//! user namespace (`unshare` fails once a second thread exists). The zygote
//! is single-threaded for its whole life: it waits for spawn requests on a
//! packet socket, hands each to a child it cloned beside itself ahead of
//! the request (the supervisor's process is the child's parent), and
//! answers with the child's pidfd.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd};
use std::sync::OnceLock;

use parking_lot::Mutex;

use super::child::{self, Launch, Prepared};
use super::entry::Registered;
use super::reexec;
use super::sys::{self, Spawned};
use super::wire::{self, SpawnRequest, ZygoteAnswer, ZygoteReply};

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
    let answer = wire::decode::<ZygoteAnswer>(&reply).map_err(|err| err.to_string())?;
    if answer.ended_unused
        && let Some(ended) = fds.pop()
    {
        // It has ended (its pidfd read as ready): this does not wait.
        let _ = rustix::process::waitid(
            rustix::process::WaitId::PidFd(ended.as_fd()),
            rustix::process::WaitIdOptions::EXITED | rustix::process::WaitIdOptions::NOHANG,
        );
    }
    match answer.reply {
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
///
/// The zygote keeps one child made ahead: cloned into its namespaces, its
/// ids mapped, waiting for a request. A request is handed to it, and the
/// next one is made once the answer is out, so the clone and the
/// namespaces' set-up are off the path of a start (see [`Ahead`]).
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
    let mut ahead = Ahead::make(entries, socket, &prepared);
    loop {
        let packet = match wire::recv_packet(socket.as_fd()) {
            Ok(Some(packet)) => packet,
            Ok(None) | Err(_) => sys::exit_now(0),
        };
        match answer(entries, packet, socket, &prepared, ahead.take()) {
            Ok(unused) => ahead = unused.or_else(|| Ahead::make(entries, socket, &prepared)),
            Err(_) => sys::exit_now(0),
        }
    }
}

/// A child a zygote made ahead of its request: its init has entered its
/// namespaces, mapped its ids ([`child::become_init`]) and forked the
/// component ([`child::fork_component_ahead`]); the component waits on its
/// end of `component` for the request, the init on its end of `init` for
/// the socket to report the component's end on. The zygote forwards the
/// request whole, descriptors and all, but that socket, which goes to the
/// init alone.
///
/// Its parent is the supervisor's process, as for any child; one never
/// used dies with the zygote (its sockets close) or with the supervisor.
#[derive(Debug)]
pub(crate) struct Ahead {
    pid: i32,
    pidfd: OwnedFd,
    component: OwnedFd,
    init: OwnedFd,
}

impl Ahead {
    /// Clones the next child; `None` where the zygote cannot (the request
    /// then clones one itself, and answers why not).
    fn make(entries: &[&dyn Registered], zygote: &OwnedFd, prepared: &Prepared) -> Option<Self> {
        let (component, component_waits_on) = wire::packet_pair().ok()?;
        let (init, init_waits_on) = wire::packet_pair().ok()?;
        match prepared.clone_child() {
            Ok((Spawned::Child, in_namespaces)) => {
                drop((component, init));
                // The zygote's socket is the zygote's alone.
                if let Ok(zygote) = u32::try_from(zygote.as_raw_fd()) {
                    let _ = sys::close_range(zygote, zygote);
                }
                let made = child::become_init(prepared, in_namespaces);
                child::fork_component_ahead(init_waits_on);
                wait_for_launch(entries, component_waits_on, made)
            }
            Ok((Spawned::Parent { pid, pidfd }, _)) => Some(Self {
                pid,
                pidfd: pidfd?,
                component,
                init,
            }),
            Err(_) => None,
        }
    }

    /// Whether the child still waits: it may have been killed meanwhile.
    fn is_waiting(&self) -> bool {
        // A pidfd reads as ready once its process has ended.
        wire::ready_now(self.pidfd.as_fd(), rustix::event::PollFlags::IN)
            .is_ok_and(|ready| ready.is_empty())
    }

    /// Hands the request (`bytes`, `sockets`) to the child: the component
    /// gets all but the init's report socket, the init that one. Should the
    /// child be gone, the supervisor sees it end.
    fn hand(self, bytes: &[u8], sockets: Sockets) {
        let borrowed: Vec<_> = sockets.component.iter().map(AsFd::as_fd).collect();
        let _ = wire::send_packet(self.component.as_fd(), bytes, &borrowed);
        let _ = wire::send_packet(self.init.as_fd(), &[0], &[sockets.exit_report.as_fd()]);
    }
}

/// A request's descriptors, as a child's two processes take them.
struct Sockets {
    /// The control socket, the output pipe, then the grant's.
    component: Vec<OwnedFd>,
    /// The init's socket to report the component's end on.
    exit_report: OwnedFd,
}

impl Sockets {
    /// The request's descriptors come as the control socket, the output
    /// pipe, the init's report socket, then the grant's.
    fn of(mut descriptors: Vec<OwnedFd>) -> Option<Self> {
        (descriptors.len() >= 3).then(|| {
            let exit_report = descriptors.remove(2);
            Self {
                component: descriptors,
                exit_report,
            }
        })
    }
}

/// In a component forked ahead: waits for its request and runs it. The
/// zygote checked the request before handing it on; anything else (the
/// zygote gone, a request that does not decode) ends the child.
fn wait_for_launch(entries: &[&dyn Registered], waits_on: OwnedFd, init: child::Init) -> ! {
    let Ok(Some((bytes, descriptors))) = wire::recv_packet(waits_on.as_fd()) else {
        sys::exit_now(0)
    };
    let Ok(request) = wire::decode::<SpawnRequest>(&bytes) else {
        sys::exit_now(0)
    };
    let Ok(entry) = find(entries, &request) else {
        sys::exit_now(0)
    };
    entry.launch(Launch {
        request,
        descriptors,
        came_on: waits_on.into_raw_fd(),
        init,
        exit_report: None,
    })
}

/// Starts one child for the request in `packet`, which came on `socket`,
/// and answers there: with the child's id and pidfd, or why not.
///
/// The request goes to the child made `ahead` where there is one still
/// waiting; the answer then goes out first, so that the supervisor's side
/// makes ready while the child starts. One that dies between the two is
/// seen to end by the supervisor, as any child that dies starting.
///
/// The packet is erased once answered, as the request it decodes to is
/// when dropped (see `SpawnRequest`): the next child is a copy of the
/// zygote's memory. Returns the child made ahead if the request did not
/// use it (it was refused), for the next.
pub(crate) fn answer(
    entries: &[&dyn Registered],
    (mut bytes, descriptors): (Vec<u8>, Vec<OwnedFd>),
    socket: &OwnedFd,
    prepared: &Prepared,
    ahead: Option<Ahead>,
) -> std::io::Result<Option<Ahead>> {
    let answered = start(entries, &bytes, descriptors, socket, prepared, ahead);
    wire::erase(&mut bytes);
    answered
}

/// Starts the child for the request in `bytes` and answers on `socket`;
/// returns the child made ahead if the request was refused.
fn start(
    entries: &[&dyn Registered],
    bytes: &[u8],
    descriptors: Vec<OwnedFd>,
    socket: &OwnedFd,
    prepared: &Prepared,
    ahead: Option<Ahead>,
) -> std::io::Result<Option<Ahead>> {
    // One killed while it waited goes back to the supervisor's process,
    // its parent, to be reaped.
    let (ahead, ended) = match ahead {
        Some(ahead) if !ahead.is_waiting() => (None, Some(ahead)),
        ahead => (ahead, None),
    };
    let reply = |reply: ZygoteReply, pidfd: Option<&OwnedFd>| {
        let answer = ZygoteAnswer {
            reply,
            ended_unused: ended.is_some(),
        };
        let descriptors: Vec<_> = pidfd
            .into_iter()
            .chain(ended.as_ref().map(|ended| &ended.pidfd))
            .map(AsFd::as_fd)
            .collect();
        wire::send_packet(socket.as_fd(), &wire::encode(&answer)?, &descriptors)
    };
    let (request, entry, sockets) = match check(entries, bytes, descriptors) {
        Ok(checked) => checked,
        Err(refusal) => return reply(refusal, None).map(|()| ahead),
    };
    if let Some(ahead) = ahead {
        reply(ZygoteReply::Spawned { pid: ahead.pid }, Some(&ahead.pidfd))?;
        ahead.hand(bytes, sockets);
        return Ok(None);
    }
    match prepared.clone_child() {
        Ok((Spawned::Child, in_namespaces)) => entry.launch(Launch {
            request,
            descriptors: sockets.component,
            came_on: socket.as_raw_fd(),
            init: child::become_init(prepared, in_namespaces),
            exit_report: Some(sockets.exit_report),
        }),
        Ok((Spawned::Parent { pid, pidfd }, _)) => match pidfd {
            Some(pidfd) => reply(ZygoteReply::Spawned { pid }, Some(&pidfd)),
            None => reply(
                ZygoteReply::Refused {
                    reason: "no pidfd".to_owned(),
                },
                None,
            ),
        },
        Err(err) => reply(
            ZygoteReply::CannotClone {
                reason: format!("the zygote could not create a process: {err}"),
            },
            None,
        ),
    }
    .map(|()| None)
}

/// The request in `bytes`, the entry it names and its sockets, or why
/// no child can start for it.
fn check<'e>(
    entries: &[&'e dyn Registered],
    bytes: &[u8],
    descriptors: Vec<OwnedFd>,
) -> Result<(SpawnRequest, &'e dyn Registered, Sockets), ZygoteReply> {
    let refused = |reason: String| ZygoteReply::Refused { reason };
    let request: SpawnRequest = wire::decode(bytes).map_err(|err| refused(err.to_string()))?;
    let entry = find(entries, &request).map_err(refused)?;
    let sockets = Sockets::of(descriptors)
        .ok_or_else(|| refused("the request came without its sockets".to_owned()))?;
    Ok((request, entry, sockets))
}

/// The entry `request` names, checked against the types it was made for.
fn find<'e>(
    entries: &[&'e dyn Registered],
    request: &SpawnRequest,
) -> Result<&'e dyn Registered, String> {
    let entry = entries
        .iter()
        .find(|entry| entry.name() == request.entry)
        .ok_or_else(|| {
            format!(
                "no entry `{}` was passed to compartment::process::init",
                request.entry
            )
        })?;
    if entry.fingerprint() != request.fingerprint {
        return Err(format!(
            "the entry `{}` passed to compartment::process::init takes other types than this child's",
            request.entry
        ));
    }
    Ok(*entry)
}
