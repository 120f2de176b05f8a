//! The supervisor's side of a process child: a factory the tree treats like
//! any other, whose instances run on an ordinary instance thread as a
//! *proxy* — it asks the zygote for the child, serves the child's bridges,
//! turns cancellation into a message and revocation into a kill, waits on
//! the pidfd, and returns how the child ended as the instance's result. So
//! restarts, strategies, intensity, events and status need nothing new.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;

use parking_lot::Mutex;
use rustix::process::{WaitId, WaitIdOptions};

use super::bridge::{Left, Protocol, Serving};
use super::entry::{Entry, fingerprint};
use super::portable::{Packing, Portable};
use super::reexec::{self, Spawning};
use super::usage::RunningProcess;
use super::wire::{self, ComponentExit, Confinement, Ending, FromChild, SpawnRequest, ToChild};
use super::zygote;
use crate::capability::Capability;
use crate::channel::HandlerCrash;
use crate::component::{BoxError, Instance, WorkerFactory, capabilities_of};
use crate::context::Context;
use crate::fault::{self, Decided, FaultKind, ProcessExit};
use crate::grant::{Inventory, ReissueError};
use crate::limits::{Budget, Limits};
use crate::lockdown::{self, Lockdown, LockdownError, Mode, Policy};
use crate::mailbox::Tracked;
use crate::revoke::Revoker;
use crate::signal::{RaiseHook, Signal};

/// How much of a child's output its faults keep: the last lines.
const OUTPUT_TAIL: usize = 4096;

/// Open files a process child may hold.
const OPEN_FILES: u64 = 1024;

/// The factory of a process child.
pub(crate) struct ProcessWorker<G, E> {
    entry: Entry<G, E>,
    grant: G,
    lockdown: Lockdown,
    /// What the child's own resource limits enforce.
    limits: Limits,
    /// The children's seccomp program, compiled at the first start and
    /// shared by a pool's members.
    seccomp: Arc<OnceLock<Vec<u64>>>,
    spawning: Spawning,
}

impl<G, E> ProcessWorker<G, E> {
    pub(crate) fn new(entry: Entry<G, E>, grant: G) -> Self {
        Self {
            entry,
            grant,
            lockdown: Lockdown::require(),
            limits: Limits::new(),
            seccomp: Arc::default(),
            spawning: Spawning::default(),
        }
    }
}

impl<G, E> WorkerFactory for ProcessWorker<G, E>
where
    G: Portable,
    E: Into<BoxError> + 'static,
{
    fn instance(&self, revokers: &[&Revoker]) -> Result<Box<dyn Instance>, ReissueError> {
        // Listing the grant is user code; a panic there leaves the program
        // to the child, whose own listing reports it.
        let seccomp = self.seccomp.get_or_init(|| {
            fault::contain(|| {
                lockdown::process_program(&self.grant.inventory(), wire::COMPONENT_PID)
            })
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default()
        });
        let seccomp = seccomp.clone();
        let mut grant = self.grant.reissue()?;
        for revoker in revokers {
            grant.attach_revoker(revoker);
        }
        Ok(Box::new(ProcessInstance {
            entry: self.entry.name(),
            fingerprint: fingerprint::<G, E>(),
            grant,
            // Revoking one kills the child; a waker is the proxy's own
            // cancellation, which the child hears as a message instead.
            revokers: revokers
                .iter()
                .filter(|revoker| !revoker.wakes_only())
                .map(|&revoker| revoker.clone())
                .collect(),
            confinement: Confinement {
                require: self.lockdown.mode() == Mode::Require,
                cpu_seconds: self
                    .limits
                    .cpu_budget()
                    .map(|budget| budget.as_secs() + u64::from(budget.subsec_nanos() > 0)),
                data_bytes: self.limits.memory_quota(),
                open_files: OPEN_FILES,
                threads: self.limits.thread_limit(),
            },
            limits: self.limits,
            seccomp,
            spawning: self.spawning,
        }))
    }

    fn capabilities(&self) -> Vec<(String, Capability)> {
        capabilities_of(&self.grant)
    }

    fn compile_policy(&self, lockdown: Lockdown) -> Result<Policy, LockdownError> {
        Policy::compile(lockdown, &self.grant.inventory())
    }

    fn duplicate(&self) -> Result<Box<dyn WorkerFactory>, ReissueError> {
        Ok(Box::new(ProcessWorker {
            entry: self.entry,
            grant: self.grant.reissue()?,
            lockdown: self.lockdown,
            limits: self.limits,
            seccomp: Arc::clone(&self.seccomp),
            spawning: self.spawning,
        }))
    }

    fn confine_with(&mut self, lockdown: Lockdown) -> bool {
        self.lockdown = lockdown;
        true
    }

    fn runs_in_process(&self) -> bool {
        true
    }

    fn spawn_by(&mut self, spawning: Spawning) {
        self.spawning = spawning;
    }

    fn take_limits(&mut self, limits: Limits) -> Limits {
        self.limits = limits;
        // The child's own limits hold its CPU, memory and threads; the
        // watchdog keeps only the wall-clock deadline (it cancels, and a
        // child that ignores it is killed).
        let watched = Limits::new();
        match limits.wall_deadline() {
            Some(deadline) => watched.deadline(deadline),
            None => watched,
        }
    }
}

/// One instance of a process child, run by its proxy thread.
struct ProcessInstance<G> {
    entry: &'static str,
    fingerprint: u64,
    grant: G,
    revokers: Vec<Revoker>,
    confinement: Confinement,
    /// The limits its confinement was derived from: what a death by signal
    /// is measured against.
    limits: Limits,
    seccomp: Vec<u64>,
    spawning: Spawning,
}

/// A running child as its kill hooks see it.
struct Killable {
    pidfd: OwnedFd,
    /// Why the supervisor killed it, if it did.
    killed: Mutex<Option<String>>,
}

impl Killable {
    fn kill(&self, reason: String) {
        let mut killed = self.killed.lock();
        if killed.is_none() {
            *killed = Some(reason);
        }
        drop(killed);
        // Fails only once the child has been reaped; nothing is left to kill.
        let _ = rustix::process::pidfd_send_signal(&self.pidfd, rustix::process::Signal::KILL);
    }
}

fn decided(kind: FaultKind) -> BoxError {
    Box::new(Decided(kind))
}

fn start_failed(message: String) -> BoxError {
    decided(FaultKind::StartFailed { message })
}

impl<G: Portable> Instance for ProcessInstance<G> {
    fn inventory(&self) -> Inventory<'_> {
        self.grant.inventory()
    }

    fn run(mut self: Box<Self>, cx: &Context) -> Result<(), BoxError> {
        // Resource limits hold a budget, not a rate: refused rather than
        // silently unenforced.
        if self.limits.cpu_rate().is_some() {
            return Err(start_failed(
                "a CPU rate per period (Limits::cpu_per) is not enforced for process children; give a CPU budget (Limits::cpu) instead".to_owned(),
            ));
        }
        let zygote = zygote::zygote().ok_or_else(|| {
            start_failed(
                "a process child needs compartment::process::init(&[...]) as the first line of main"
                    .to_owned(),
            )
        })?;
        let mut packing = Packing::default();
        match fault::contain(|| self.grant.pack(&mut packing)) {
            Ok(Ok(())) => {}
            Ok(Err(err)) => return Err(start_failed(err.to_string())),
            Err(caught) => return Err(decided(caught.start_failed("packing its grant"))),
        }
        let io_failed = |what: &str, err: std::io::Error| start_failed(format!("{what}: {err}"));
        let (control, control_child) =
            wire::packet_pair().map_err(|err| io_failed("its control socket", err))?;
        let (output, output_child) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
            .map_err(|err| io_failed("its output pipe", err.into()))?;
        let (exit_report, exit_report_child) =
            wire::packet_pair().map_err(|err| io_failed("its init's report socket", err))?;
        let request = SpawnRequest {
            entry: self.entry.to_owned(),
            fingerprint: self.fingerprint,
            supervisor: std::process::id() as i32,
            path: cx.path().to_owned(),
            instance: cx.instance(),
            confinement: self.confinement,
            grant: std::mem::take(&mut packing.bytes),
            seccomp: std::mem::take(&mut self.seccomp),
        };
        let started = {
            let mut descriptors = vec![&control_child, &output_child, &exit_report_child];
            descriptors.extend(packing.descriptors.iter());
            start_child(zygote, self.spawning, &request, &descriptors).map_err(start_failed)?
        };
        // The child has its copies.
        drop((
            control_child,
            output_child,
            exit_report_child,
            std::mem::take(&mut packing.descriptors),
        ));
        let running = Arc::new(Killable {
            pidfd: started.pidfd,
            killed: Mutex::new(None),
        });
        let pid = u32::try_from(started.pid).unwrap_or_default();
        cx.threads().set_process(Some(RunningProcess {
            pid,
            ..RunningProcess::default()
        }));
        let control = Arc::new(control);
        let hooks = watch(&running, &control, &packing, &self.revokers, cx);
        let gone = Arc::new(Signal::new());
        // The bridges' threads start while the child confines itself, and
        // serve once it has said how it is confined, so that nothing it
        // sends overtakes what `status()` shows of it.
        let (opening, opened) = crossbeam_channel::bounded(packing.pumps.len());
        let protocol = {
            let running = Arc::clone(&running);
            Protocol::new(move |reason| running.kill(reason))
        };
        let pumps = start_pumps(&mut packing, &gone, &opened, cx, &running, &protocol);
        let (verdict, early) = match receive(&control, &protocol) {
            Some(FromChild::Confined { enforced, missing }) => {
                cx.threads().set_process(Some(RunningProcess {
                    pid,
                    enforced,
                    missing,
                }));
                (true, None)
            }
            // It refused, or died, before it was confined.
            early => (false, early),
        };
        for _ in 0..pumps.len() {
            let _ = opening.send(verdict);
        }
        let (reported, component, tail) = serve([&control, &output, &exit_report], &protocol);
        let reported = reported.or(early);
        // The init ends once the component has; how the component ended is
        // what the init said — or, if it was killed first, how it ended.
        let status = wait(&running.pidfd);
        let status = component.map(Some).unwrap_or(status);
        // What the component reported of itself is believed only if its
        // process then exited as the runtime exits it after reporting: a
        // hostile one could report a clean end, then die by its policy.
        let exited_as_reported = status == Some(ComponentExit::Code(0));
        cx.threads().set_process(None);
        gone.raise();
        let (mut in_flight, mut callers) = (Vec::new(), Vec::new());
        for left in pumps.into_iter().filter_map(|pump| pump.join().ok()) {
            in_flight.extend(left.in_flight);
            callers.extend(left.callers);
        }
        drop(hooks);
        settle(in_flight, cx);
        let killed = running.killed.lock().take();
        // Ended with a report (`Ok`), or died (`Err`, how).
        let outcome = match (reported, killed) {
            (Some(FromChild::Ended(ending)), _) if exited_as_reported => Ok(ended(ending)),
            (Some(FromChild::Refused { missing }), _) if exited_as_reported => Ok(Err(
                start_failed(format!("its confinement is incomplete: {missing}")),
            )),
            (_, Some(reason)) => Err(FaultKind::Died {
                exit: ProcessExit::Killed { reason },
                output: tail,
            }),
            _ => Err(died(status, tail, &self.limits)),
        };
        // Requests it held when it died are answered with how it died.
        let crash = outcome.as_ref().err().map(|kind| HandlerCrash {
            message: format!("its process child ended: {}", kind.message()),
            location: None,
        });
        for answer in callers {
            answer(crash.as_ref());
        }
        outcome.unwrap_or_else(|kind| Err(decided(kind)))
    }
}

/// Whether the zygote could not clone in this process: every later child
/// is started by running the program again.
static CANNOT_CLONE: AtomicBool = AtomicBool::new(false);

/// Starts the child as `spawning` says, falling back to running the
/// program again where the zygote cannot clone.
fn start_child(
    zygote: &zygote::Zygote,
    spawning: Spawning,
    request: &SpawnRequest,
    descriptors: &[&OwnedFd],
) -> Result<zygote::Started, String> {
    if spawning == Spawning::Zygote && !CANNOT_CLONE.load(Ordering::Acquire) {
        if let Some(started) = zygote.spawn(request, descriptors)? {
            return Ok(started);
        }
        CANNOT_CLONE.store(true, Ordering::Release);
    }
    reexec::spawn(request, descriptors)
}

/// Kills the child when a capability it holds (or its instance) is
/// revoked, and tells it when its instance is cancelled. The hooks live as
/// long as the returned list.
fn watch(
    running: &Arc<Killable>,
    control: &Arc<OwnedFd>,
    packing: &Packing,
    revokers: &[Revoker],
    cx: &Context,
) -> Vec<Arc<RaiseHook>> {
    let mut hooks: Vec<Arc<RaiseHook>> = Vec::new();
    for (capability, gate) in &packing.gates {
        let running = Arc::clone(running);
        let capability = *capability;
        let hook: Arc<RaiseHook> =
            Arc::new(move || running.kill(format!("a {capability} it held was revoked")));
        gate.on_revoke(&hook);
        hooks.push(hook);
    }
    let on_instance: Arc<RaiseHook> = {
        let running = Arc::clone(running);
        Arc::new(move || running.kill("its instance was revoked".to_owned()))
    };
    for revoker in revokers {
        revoker.on_revoke(&on_instance);
    }
    hooks.push(on_instance);
    let cancel: Arc<RaiseHook> = {
        let control = Arc::clone(control);
        Arc::new(move || {
            let _ = wire::send(&*control, &ToChild::Cancel);
        })
    };
    cx.cancellation().on_raise(Arc::downgrade(&cancel));
    hooks.push(cancel);
    hooks
}

/// Starts a thread per bridged endpoint, which serves once `opened` says
/// the child is confined (or ends if it never was); a pump that cannot
/// start kills the child (its endpoint would never move), as does one
/// whose child breaks its `protocol`.
fn start_pumps(
    packing: &mut Packing,
    gone: &Arc<Signal>,
    opened: &crossbeam_channel::Receiver<bool>,
    cx: &Context,
    running: &Killable,
    protocol: &Protocol,
) -> Vec<JoinHandle<Left>> {
    let mut started = Vec::new();
    for pump in packing.pumps.drain(..) {
        let gone = Arc::clone(gone);
        let opened = opened.clone();
        let mailbox = Arc::clone(cx.mailbox());
        let name = format!("{}-bridge", cx.path());
        let protocol = protocol.clone();
        let serve = move || match opened.recv() {
            Ok(true) => pump.run(&Serving {
                gone: &gone,
                mailbox: &mailbox,
                protocol,
            }),
            _ => Left::default(),
        };
        match crate::ceiling::spawn(name, serve) {
            Ok(handle) => started.push(handle),
            Err(err) => running.kill(format!("a bridge thread could not start: {err}")),
        }
    }
    started
}

/// How a broken protocol names the control socket.
const CONTROL: &str = "its control socket";

/// The child's next report; `None` once it has closed its end (or broken
/// the `protocol` by sending something that is not a report).
fn receive(control: &OwnedFd, protocol: &Protocol) -> Option<FromChild> {
    let (bytes, _) = protocol.next_packet(CONTROL, control.as_fd())?;
    let report = wire::decode(&bytes);
    if report.is_err() {
        protocol.broken(CONTROL, "a report that does not decode");
    }
    report.ok()
}

/// Reads the child's reports, its output and its init's report until all
/// three are closed; returns the component's last report, how its init
/// said it ended, and the tail of its output. How the component ended is
/// taken from the init's own socket only, which the component never
/// holds: it can neither forge that report nor block it.
fn serve(
    [control, output, exit_report]: [&OwnedFd; 3],
    protocol: &Protocol,
) -> (Option<FromChild>, Option<ComponentExit>, String) {
    use rustix::event::{PollFd, PollFlags, poll};
    let mut reported = None;
    let mut exited = None;
    let mut tail: Vec<u8> = Vec::new();
    let mut open = [true; 3];
    let mut chunk = vec![0u8; 16 * 1024];
    while open.contains(&true) {
        let sources = [control, output, exit_report];
        let mut fds: Vec<PollFd<'_>> = sources
            .iter()
            .zip(open)
            .filter(|(_, open)| *open)
            .map(|(fd, _)| PollFd::new(*fd, PollFlags::IN))
            .collect();
        match poll(&mut fds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => break,
        }
        let mut ready = fds.iter().map(|fd| !fd.revents().is_empty());
        let ready: Vec<bool> = open
            .iter()
            .map(|open| *open && ready.next() == Some(true))
            .collect();
        drop(fds);
        if ready[0] {
            match receive(control, protocol) {
                Some(report) => reported = Some(report),
                None => open[0] = false,
            }
        }
        if ready[1] {
            match rustix::io::read(output, &mut chunk) {
                Ok(0) | Err(_) => open[1] = false,
                Ok(read) => {
                    tail.extend_from_slice(&chunk[..read]);
                    if tail.len() > OUTPUT_TAIL {
                        tail.drain(..tail.len() - OUTPUT_TAIL);
                    }
                }
            }
        }
        if ready[2] {
            match wire::recv_packet(exit_report.as_fd()) {
                Ok(Some((bytes, _))) => exited = wire::decode(&bytes).ok().or(exited),
                Ok(None) | Err(_) => open[2] = false,
            }
        }
    }
    (
        reported,
        exited,
        String::from_utf8_lossy(&tail).into_owned(),
    )
}

/// How the process ended; `None` if it could not be waited for.
fn wait(pidfd: &OwnedFd) -> Option<ComponentExit> {
    loop {
        match rustix::process::waitid(WaitId::PidFd(pidfd.as_fd()), WaitIdOptions::EXITED) {
            Ok(Some(status)) => {
                return match (status.exit_status(), status.terminating_signal()) {
                    (_, Some(signal)) => Some(ComponentExit::Signal(signal)),
                    (Some(code), None) => Some(ComponentExit::Code(code)),
                    (None, None) => None,
                };
            }
            Ok(None) => return None,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return None,
        }
    }
}

/// Hands the messages the child's bridges sent last to the instance: one is
/// its message in flight, settled (named, delivered again or
/// dead-lettered) with its outcome, as a thread's is; one from each other
/// channel goes back to the mailbox as it was.
fn settle(taken: Vec<Tracked>, cx: &Context) {
    let mut taken = taken.into_iter();
    let in_flight = taken.next();
    for other in taken {
        cx.mailbox().deliver_again(other);
    }
    if let Some(taken) = in_flight
        && let Ok(Some(previous)) = cx.in_flight().track(taken)
    {
        let _ = fault::drop_contained(previous);
    }
}

/// The result of an entry that reported how it ended.
fn ended(ending: Ending) -> Result<(), BoxError> {
    match ending {
        Ending::Returned => Ok(()),
        Ending::Failed { message, sources } => Err(decided(FaultKind::Error { message, sources })),
        Ending::Panicked { message, location } => Err(decided(FaultKind::Panic {
            message,
            location,
            backtrace: None,
        })),
        Ending::Unpacked { reason } => Err(start_failed(format!(
            "its grant could not be rebuilt in the child: {reason}"
        ))),
    }
}

/// A child that ended without a report, as a fault kind: a budget its
/// resource limits enforced, or how the process ended.
fn died(status: Option<ComponentExit>, output: String, limits: &Limits) -> FaultKind {
    use ComponentExit::{Code, Signal};
    let budget = match status {
        // `SIGXCPU` at the budget, `SIGKILL` a second later if it was caught.
        Some(Signal(libc::SIGXCPU | libc::SIGKILL)) => limits
            .cpu_budget()
            .map(|limit| Budget::Cpu { used: limit, limit }),
        // The standard library aborts when an allocation fails.
        Some(Signal(libc::SIGABRT)) if output.contains("memory allocation of") => limits
            .memory_quota()
            .map(|limit| Budget::Memory { held: limit, limit }),
        _ => None,
    };
    if let Some(budget) = budget {
        return FaultKind::BudgetExceeded {
            budget,
            runaway: false,
        };
    }
    let exit = match status {
        Some(Code(code)) => ProcessExit::Code(code),
        Some(Signal(libc::SIGSYS)) => ProcessExit::PolicyViolation,
        Some(Signal(number)) => ProcessExit::Signal {
            number,
            name: signal_name(number),
        },
        None => ProcessExit::Killed {
            reason: "it could not be waited for".to_owned(),
        },
    };
    FaultKind::Died { exit, output }
}

fn signal_name(number: i32) -> &'static str {
    match number {
        libc::SIGABRT => "SIGABRT",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGBUS => "SIGBUS",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGSYS => "SIGSYS",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGTRAP => "SIGTRAP",
        _ => "a signal",
    }
}
