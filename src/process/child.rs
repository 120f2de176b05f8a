//! A process child's side: confining itself, rebuilding its grant, running
//! its entry and reporting how it ended.
//!
//! What every child shares is made once, by the zygote (or by a program
//! started again as a child, which acts as a zygote for that one child):
//! a user namespace with an empty network namespace, and a mount namespace
//! whose root is an empty read-only tmpfs ([`prepare`]). Each child is
//! then two processes:
//!
//! - the zygote's clone, created in new user, mount, pid, ipc and uts
//!   namespaces (its mount namespace a copy of the zygote's empty one) and
//!   so the first process of its pid namespace, its *init*: the kernel
//!   ignores signals whose default action would end a namespace's first
//!   process when they come from inside it, so `abort` there would not
//!   abort. The init maps its ids ([`become_init`]) and forks the
//!   component, waits for it and tells the supervisor how it ended; when
//!   the init ends, the kernel kills whatever is left in the namespace.
//!   The zygote does all of this ahead of the next request, in a child it
//!   keeps ready ([`fork_component_ahead`]), or once the request has come
//!   ([`run`]);
//! - the *component*, which confines itself before it rebuilds the grant
//!   and starts any thread, so that every thread inherits the policy.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::process::{Resource, Rlimit, Signal};

use super::bridge::ChildPump;
use super::portable::{Portable, Unpacking};
use super::sys::{self, Spawned};
use super::wire::{self, ComponentExit, Confinement, Ending, FromChild, SpawnRequest, ToChild};
use crate::component::BoxError;
use crate::context::Context;
use crate::fault;
use crate::lockdown::{self, Lockdown};
use crate::mailbox::{InFlightCell, Mailbox};
use crate::runtime_clock::RuntimeClock;
use crate::signal::Signal as Flag;
use crate::threads::ThreadGroup;

/// Whether this process is a process child's component.
static IN_CHILD: AtomicBool = AtomicBool::new(false);

/// Whether the calling code runs in a process child: its faults end only
/// this process (the testkit's battery makes attempts here that would end
/// any other).
#[cfg_attr(
    not(feature = "testkit"),
    allow(dead_code, reason = "read by the testkit")
)]
pub(crate) fn in_child() -> bool {
    IN_CHILD.load(Ordering::Relaxed)
}

/// What a zygote made ready once for every child it starts.
#[derive(Debug)]
pub(crate) struct Prepared {
    /// The namespaces each child is cloned into: user, mount, pid, ipc and
    /// uts, and network where the zygote has no empty one to share; none
    /// where the host refuses user namespaces.
    namespaces: u64,
    /// The host's `/proc`, opened before the zygote's root was replaced:
    /// where each child writes its id maps.
    proc: Option<OwnedFd>,
    /// Whether the zygote's root, which its children's mount namespaces
    /// copy, is an empty read-only tmpfs.
    root: bool,
    /// The ids the children's root maps to, as the zygote sees them.
    uid: u32,
    gid: u32,
    /// What every child lacks, and why.
    missing: Vec<String>,
    /// Whether this process carries the part of the children's seccomp
    /// table that is the same for every child, which they inherit.
    seccomp: bool,
}

/// Makes ready, in the calling single-threaded process (the zygote, or a
/// program started again as a child), what its children share: its own
/// user namespace with an empty network namespace, an empty read-only
/// root, and the part of their seccomp table that is the same for every
/// child (attached once here, so that no child's start pays for it). Where
/// the host refuses part of it, the children lack that part, and their
/// confinement says so; without the seccomp part, each child attaches its
/// whole table.
pub(crate) fn prepare() -> Prepared {
    let mut missing = Vec::new();
    let shared = enter_user_namespace(libc::CLONE_NEWNET | libc::CLONE_NEWNS);
    let (namespaces, uid, gid) = match &shared {
        // Children nest their user namespaces in this one, mapping their
        // root to its root.
        Ok(()) => (CHILD_NAMESPACES, 0, 0),
        Err(err) => {
            missing.push(format!("namespaces ({err})"));
            let uid = rustix::process::getuid().as_raw();
            let gid = rustix::process::getgid().as_raw();
            (0, uid, gid)
        }
    };
    let proc = rustix::fs::open(
        "/proc",
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    );
    let proc = match proc {
        Ok(proc) => Some(proc),
        Err(err) => {
            missing.push(format!("/proc to map ids ({err})"));
            None
        }
    };
    let root = match shared.and_then(|()| empty_root()) {
        Ok(()) => true,
        Err(err) => {
            missing.push(format!("an empty read-only root ({err})"));
            false
        }
    };
    // Last: what the zygote did above, the table would refuse.
    let seccomp = lockdown::confine_zygote().is_ok();
    Prepared {
        namespaces,
        proc,
        root,
        uid,
        gid,
        missing,
        seccomp,
    }
}

/// The namespaces a child is cloned into when its zygote has its own
/// (network included: the children share the zygote's empty one).
const CHILD_NAMESPACES: u64 = (libc::CLONE_NEWUSER
    | libc::CLONE_NEWNS
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUTS) as u64;

impl Prepared {
    /// Creates a child beside the caller (its parent is the caller's
    /// parent, the supervisor), in new namespaces when the host allows.
    /// Returns whether the child got them.
    pub(super) fn clone_child(&self) -> io::Result<(Spawned, bool)> {
        if self.namespaces != 0 {
            match sys::clone_beside(self.namespaces) {
                Ok(spawned) => return Ok((spawned, true)),
                // The host allowed the zygote's namespaces but refuses a
                // child's (a limit on nesting): the child says so.
                Err(err) if err.raw_os_error() == Some(libc::EPERM) => {}
                Err(err) => return Err(err),
            }
        }
        sys::clone_beside(0).map(|spawned| (spawned, false))
    }
}

/// What a new child is handed: the request and its descriptors.
#[doc(hidden)]
pub struct Launch {
    pub(crate) request: SpawnRequest,
    /// The control socket, the output pipe, then the grant's.
    pub(crate) descriptors: Vec<OwnedFd>,
    /// The socket the request came on (the zygote's own, or the one a
    /// component forked ahead waited on), which the child closes.
    pub(crate) came_on: RawFd,
    /// What the init made ready before the request came.
    pub(crate) init: Init,
    /// `Some`: this process is the init, which forks the component now and
    /// reports how it ended on this socket. `None`: this process is the
    /// component, which its init forked ahead of the request.
    pub(crate) exit_report: Option<OwnedFd>,
}

impl fmt::Debug for Launch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Launch")
            .field("entry", &self.request.entry)
            .field("descriptors", &self.descriptors.len())
            .finish_non_exhaustive()
    }
}

/// A child's init as it stands before its request: killed with its
/// supervisor, its ids mapped, no core dumps, and what that enforced.
#[derive(Debug)]
pub(crate) struct Init {
    report: Report,
    /// Whether it inherited the shared part of its seccomp table.
    seccomp: bool,
}

/// Makes the zygote's new clone a child's init, as far as no request is
/// needed for: it dies with the supervisor, maps its ids in its new user
/// namespace (`in_namespaces`: whether it was cloned into its own), and
/// leaves no core dump. A zygote does this ahead of the next request, in a
/// child it then keeps ready (see `zygote.rs`).
pub(crate) fn become_init(prepared: &Prepared, in_namespaces: bool) -> Init {
    let mut report = Report::default();
    report.record(
        "killed with its supervisor",
        rustix::process::set_parent_process_death_signal(Some(Signal::KILL)).map_err(Into::into),
    );
    report.missing.extend(prepared.missing.iter().cloned());
    if prepared.root {
        // The zygote's, copied with its mount namespace.
        report.enforced.push("an empty read-only root".to_owned());
    }
    if in_namespaces {
        report.record(
            "new user, mount, pid, ipc, uts and network namespaces",
            map_ids(prepared),
        );
    } else if prepared.missing.is_empty() {
        report
            .missing
            .push("new user, mount, pid, ipc and uts namespaces (refused)".to_owned());
    }
    // No process of the child leaves a core dump.
    report.record("no core dumps", limit(Resource::Core, 0));
    Init {
        report,
        seccomp: prepared.seccomp,
    }
}

/// What the child enforced, and what it could not.
#[derive(Debug, Default)]
struct Report {
    enforced: Vec<String>,
    missing: Vec<String>,
}

impl Report {
    fn record(&mut self, what: &str, result: io::Result<()>) {
        match result {
            Ok(()) => self.enforced.push(what.to_owned()),
            Err(err) => self.missing.push(format!("{what} ({err})")),
        }
    }
}

/// Runs a child once its request has come: in the zygote's clone, made a
/// child's init by [`become_init`], which forks the component now; or in
/// a component its init forked ahead. Never returns.
pub(crate) fn run<G, E>(entry: fn(G, &Context) -> Result<(), E>, launch: Launch) -> !
where
    G: Portable,
    E: Into<BoxError> + 'static,
{
    let Launch {
        request,
        descriptors,
        came_on,
        init,
        exit_report,
    } = launch;
    let mut descriptors = descriptors.into_iter();
    let (Some(control), Some(output)) = (descriptors.next(), descriptors.next()) else {
        sys::exit_now(71)
    };
    let grant_fds: Vec<OwnedFd> = descriptors.collect();
    // The socket the request came on is the zygote's (or served only to
    // bring this request).
    if let Ok(came_on) = u32::try_from(came_on) {
        let _ = sys::close_range(came_on, came_on);
    }
    // The supervisor may have ended before the init was set to die with
    // it.
    if supervisor_is_gone(&control) {
        sys::exit_now(0);
    }
    let Some(exit_report) = exit_report else {
        component(entry, request, control, output, grant_fds, init)
    };
    match sys::fork() {
        Ok(Spawned::Child) => {
            drop(exit_report);
            component(entry, request, control, output, grant_fds, init)
        }
        Ok(Spawned::Parent { pid, .. }) => {
            std::mem::forget((control, output, grant_fds));
            report_exit(pid, &exit_report)
        }
        Err(err) => refuse(&control, &format!("a process for the component ({err})")),
    }
}

/// In a child made ahead, its init: forks the component, which returns
/// here to wait for its request, while the init waits on `init_socket`
/// for the socket to report on, then for the component.
pub(crate) fn fork_component_ahead(init_socket: OwnedFd) {
    match sys::fork() {
        Ok(Spawned::Child) => drop(init_socket),
        Ok(Spawned::Parent { pid, .. }) => {
            let _ = close_all_except(&[init_socket.as_raw_fd()]);
            // No request (the zygote ended): the namespace ends with its
            // init, and the component with it.
            let Ok(Some((_, mut fds))) = wire::recv_packet(init_socket.as_fd()) else {
                sys::exit_now(0)
            };
            match fds.pop() {
                Some(exit_report) => report_exit(pid, &exit_report),
                None => sys::exit_now(0),
            }
        }
        Err(_) => sys::exit_now(0),
    }
}

/// The init's part once the component runs: keeps only `exit_report`, so
/// that how the component ended is said where the component cannot forge
/// or block it, waits for the component and says it.
fn report_exit(component: i32, exit_report: &OwnedFd) -> ! {
    let _ = close_all_except(&[exit_report.as_raw_fd()]);
    if let Ok(exit) = sys::wait_raw(component).map(ComponentExit::of) {
        let _ = wire::send(exit_report, &exit);
    }
    sys::exit_now(0)
}

/// Whether the supervisor's end of the control socket is closed.
fn supervisor_is_gone(control: &OwnedFd) -> bool {
    wire::ready_now(control.as_fd(), rustix::event::PollFlags::IN)
        .is_ok_and(|ready| ready.contains(rustix::event::PollFlags::HUP))
}

/// Maps the child's root to the zygote's ids, through the `/proc` the
/// zygote opened (the child's own root has none).
fn map_ids(prepared: &Prepared) -> io::Result<()> {
    let proc = prepared
        .proc
        .as_ref()
        .ok_or_else(|| io::Error::other("no /proc to map ids through"))?;
    let write = |file: &str, content: String| -> io::Result<()> {
        let fd = rustix::fs::openat(
            proc,
            file,
            rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )?;
        rustix::io::write(&fd, content.as_bytes())?;
        Ok(())
    };
    write("self/setgroups", "deny".to_owned())?;
    write("self/uid_map", format!("0 {} 1", prepared.uid))?;
    write("self/gid_map", format!("0 {} 1", prepared.gid))
}

/// The component's process: the second of its pid namespace.
fn component<G, E>(
    entry: fn(G, &Context) -> Result<(), E>,
    mut request: SpawnRequest,
    control: OwnedFd,
    output: OwnedFd,
    grant_fds: Vec<OwnedFd>,
    Init {
        mut report,
        seccomp: inherited,
    }: Init,
) -> !
where
    G: Portable,
    E: Into<BoxError> + 'static,
{
    IN_CHILD.store(true, Ordering::Relaxed);
    let confinement = request.confinement;
    // When the init ends, the kernel kills every process of the namespace;
    // where there is none, the component dies with its init.
    let _ = rustix::process::set_parent_process_death_signal(Some(Signal::KILL));
    let redirected = rustix::stdio::dup2_stdout(&output).and(rustix::stdio::dup2_stderr(&output));
    report.record("output captured", redirected.map_err(Into::into));
    drop(output);
    let mut keep: Vec<RawFd> = vec![1, 2, control.as_raw_fd()];
    keep.extend(grant_fds.iter().map(AsRawFd::as_raw_fd));
    report.record("no descriptor but the grant's", close_all_except(&keep));
    report.record("resource limits", limits(confinement));
    if confinement.require && !report.missing.is_empty() {
        refuse(&control, &report.missing.join("; "));
    }
    let mut unpacking = Unpacking::new(std::mem::take(&mut request.grant), grant_fds);
    let mut grant = match fault::contain(|| G::unpack(&mut unpacking)) {
        Ok(Ok(grant)) => grant,
        Ok(Err(err)) => end(
            &control,
            Ending::Unpacked {
                reason: err.to_string(),
            },
        ),
        Err(caught) => end(
            &control,
            Ending::Unpacked {
                reason: caught.explain("rebuilding the grant"),
            },
        ),
    };
    if let Err(err) = unpacking.finished() {
        end(
            &control,
            Ending::Unpacked {
                reason: err.to_string(),
            },
        );
    }
    let lockdown = if confinement.require {
        Lockdown::require()
    } else {
        Lockdown::best_effort()
    };
    // The program compiled on the supervisor's side assumed this process id.
    let program: &[u64] = if std::process::id() == wire::COMPONENT_PID {
        &request.seccomp
    } else {
        &[]
    };
    let confined = fault::contain(|| {
        lockdown::confine_process(lockdown, &grant.inventory(), program, inherited)
    });
    match confined {
        Ok(Ok(enforcement)) => {
            report.enforced.push(format!(
                "Landlock {:?} and seccomp {}",
                enforcement.landlock, enforcement.seccomp
            ));
        }
        Ok(Err(err)) if confinement.require => refuse(&control, &err.to_string()),
        Ok(Err(err)) => report.missing.push(err.to_string()),
        Err(caught) => refuse(&control, &caught.explain("listing the grant")),
    }
    if wire::send(
        &control,
        &FromChild::Confined {
            enforced: report.enforced,
            missing: report.missing,
        },
    )
    .is_err()
    {
        sys::exit_now(0);
    }
    let cancel = Arc::new(Flag::new());
    // As on a thread: cancellation ends the grant's blocking waits too.
    grant.attach_revoker(&crate::revoke::Revoker::waker(Arc::clone(&cancel)));
    start_threads(&control, &cancel, std::mem::take(&mut unpacking.pumps));
    fault::install_panic_hook();
    fault::mark_supervised(true, false);
    let path: Arc<str> = Arc::from(request.path.as_str());
    let threads = Arc::new(ThreadGroup::new(
        Arc::clone(&path),
        Arc::clone(&cancel),
        confinement.threads,
        None,
        true,
        false,
    ));
    let context = Context::new(
        path,
        request.instance,
        cancel,
        // The child's context times its waits on the OS clock, as a
        // supervisor's does (a manual clock never crosses).
        RuntimeClock::Os,
        Arc::new(Mailbox::default()),
        Arc::new(InFlightCell::default()),
        Arc::clone(&threads),
    );
    let result = fault::contain(|| entry(grant, &context).map_err(Into::into));
    let unclaimed = threads.finish();
    drop(context);
    let ending = match result {
        Ok(Ok(())) => match unclaimed {
            Some(panicked) => Ending::Panicked {
                message: panicked.to_string(),
                location: None,
            },
            None => Ending::Returned,
        },
        Ok(Err(err)) => failed(err),
        Err(caught) => Ending::Panicked {
            message: caught.message,
            location: caught.report.and_then(|report| report.location),
        },
    };
    end(&control, ending)
}

/// A returned error as the child reports it; its `Display`, `source` and
/// `Drop` are user code.
fn failed(err: BoxError) -> Ending {
    let message = fault::describe_contained("an error", || err.to_string());
    let sources = fault::contain(|| fault::sources(&*err).map(ToString::to_string).collect())
        .unwrap_or_default();
    let _ = fault::drop_contained(err);
    Ending::Failed { message, sources }
}

/// Starts the thread that turns the supervisor's cancellation into the
/// context's, which starts the grant's bridge pumps first: the entry runs
/// meanwhile, since its endpoints need no pump until they wait (a sender
/// holds one credit to start with, a receiver's request waits in its
/// socket).
fn start_threads(control: &OwnedFd, cancel: &Arc<Flag>, pumps: Vec<ChildPump>) {
    let listener = match control.as_fd().try_clone_to_owned() {
        Ok(listener) => listener,
        Err(err) => end(
            control,
            Ending::Unpacked {
                reason: format!("its control socket ({err})"),
            },
        ),
    };
    let raise = Arc::clone(cancel);
    // The child's own threads: its process is the boundary, and the crate's
    // admission check reads `/proc`, which an empty root does not have.
    #[allow(clippy::disallowed_methods, reason = "see above")]
    let cancelled = std::thread::Builder::new()
        .name("cancellation".to_owned())
        .spawn(move || {
            for pump in pumps {
                #[allow(clippy::disallowed_methods, reason = "see above")]
                let spawned = std::thread::Builder::new()
                    .name("bridge".to_owned())
                    .spawn(pump.run);
                if let Err(err) = spawned {
                    end(
                        &listener,
                        Ending::Unpacked {
                            reason: format!("a bridge thread ({err})"),
                        },
                    );
                }
            }
            // A cancel, or the supervisor's side closing, stops the entry.
            while let Ok(Some((bytes, _))) = wire::recv_packet(listener.as_fd()) {
                if matches!(wire::decode(&bytes), Ok(ToChild::Cancel)) {
                    break;
                }
            }
            raise.raise();
        });
    if let Err(err) = cancelled {
        end(
            control,
            Ending::Unpacked {
                reason: format!("a thread ({err})"),
            },
        );
    }
}

/// Reports that the confinement could not be put in place and ends.
fn refuse(control: &OwnedFd, missing: &str) -> ! {
    let _ = wire::send(
        control,
        &FromChild::Refused {
            missing: missing.to_owned(),
        },
    );
    sys::exit_now(0)
}

/// Reports how the entry ended and ends the process.
fn end(control: &OwnedFd, ending: Ending) -> ! {
    let _ = wire::send(control, &FromChild::Ended(ending));
    sys::exit_now(0)
}

/// Enters a new user namespace and the namespaces `others` names, mapping
/// the caller's user and group to root inside.
pub(super) fn enter_user_namespace(others: libc::c_int) -> io::Result<()> {
    let uid = rustix::process::getuid().as_raw();
    let gid = rustix::process::getgid().as_raw();
    sys::unshare(libc::CLONE_NEWUSER | others)?;
    #[allow(
        clippy::disallowed_methods,
        reason = "a process child maps its own ids before its root is replaced"
    )]
    {
        std::fs::write("/proc/self/setgroups", "deny")?;
        std::fs::write("/proc/self/uid_map", format!("0 {uid} 1"))?;
        std::fs::write("/proc/self/gid_map", format!("0 {gid} 1"))?;
    }
    Ok(())
}

/// Replaces the root with an empty read-only tmpfs and drops the old one.
fn empty_root() -> io::Result<()> {
    use rustix::mount::{
        MountFlags, MountPropagationFlags, UnmountFlags, mount, mount_change, mount_remount,
        unmount,
    };
    mount_change(
        "/",
        MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
    )?;
    // Any directory serves as the mount point; the tmpfs is seen only here.
    #[allow(
        clippy::disallowed_methods,
        reason = "a process child looks for a mount point before its root is replaced"
    )]
    let point = ["/tmp", "/proc", "/dev", "/"]
        .into_iter()
        .find(|point| std::path::Path::new(point).is_dir())
        .unwrap_or("/");
    let hardened = MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC;
    mount(
        "tmpfs",
        point,
        "tmpfs",
        hardened,
        Some(c"size=16k,mode=0555"),
    )?;
    rustix::process::chdir(point)?;
    rustix::process::pivot_root(".", ".")?;
    unmount(".", UnmountFlags::DETACH)?;
    rustix::process::chdir("/")?;
    mount_remount("/", hardened | MountFlags::RDONLY, c"")?;
    Ok(())
}

/// The resource limits of `confinement`.
fn limits(confinement: Confinement) -> io::Result<()> {
    if let Some(seconds) = confinement.cpu_seconds {
        // `SIGXCPU` at the budget; `SIGKILL` a second later if it is caught.
        rustix::process::setrlimit(
            Resource::Cpu,
            Rlimit {
                current: Some(seconds),
                maximum: Some(seconds + 1),
            },
        )?;
    }
    if let Some(bytes) = confinement.data_bytes {
        limit(Resource::Data, bytes)?;
    }
    limit(Resource::Nofile, confinement.open_files)
}

fn limit(resource: Resource, value: u64) -> io::Result<()> {
    rustix::process::setrlimit(
        resource,
        Rlimit {
            current: Some(value),
            maximum: Some(value),
        },
    )
    .map_err(Into::into)
}

/// Closes every descriptor whose number is not in `keep`.
fn close_all_except(keep: &[RawFd]) -> io::Result<()> {
    let mut keep: Vec<u32> = keep
        .iter()
        .filter_map(|&fd| u32::try_from(fd).ok())
        .collect();
    keep.sort_unstable();
    keep.dedup();
    let mut next = 0u32;
    for fd in keep {
        if fd > next {
            sys::close_range(next, fd - 1)?;
        }
        next = fd + 1;
    }
    sys::close_range(next, u32::MAX)
}
