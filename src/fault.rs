//! `Fault`: what went wrong in a component, as data.
//!
//! A panic payload becomes a message (for `&str` and `String` payloads) or a
//! type description, with the file, line and column the panic hook saw; an
//! `Err` returned by a component becomes its message and source chain. The
//! fault names the component's path and instance, and the message it was
//! handling when it died.

use std::any::Any;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::panic::{AssertUnwindSafe, PanicHookInfo, catch_unwind};
use std::sync::Once;

use crate::channel::HandlerCrash;

/// Where a panic happened.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(
    all(feature = "process", target_os = "linux"),
    derive(serde::Serialize, serde::Deserialize)
)]
pub struct PanicLocation {
    /// Source file.
    pub file: String,
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1.
    pub column: u32,
}

impl fmt::Display for PanicLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// The message an instance was handling when it died, received through
/// [`Context::recv`](crate::Context::recv).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlight {
    /// The message, formatted with `Debug`.
    pub description: String,
    /// How many instances in a row died handling it (1 the first time).
    pub attempts: u32,
}

/// What kind of failure a [`Fault`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FaultKind {
    /// The component panicked.
    Panic {
        /// The payload's text for `&str`/`String` payloads, otherwise a
        /// description of its type.
        message: String,
        /// Where, when the crate's panic hook saw it (it is chained in front
        /// of the application's hook when the first supervisor starts).
        location: Option<PanicLocation>,
        /// A backtrace, when the tree captures them
        /// ([`Supervisor::capture_backtraces`](crate::Supervisor::capture_backtraces)).
        backtrace: Option<String>,
    },
    /// The component returned `Err`.
    Error {
        /// The error's message.
        message: String,
        /// The messages of its `source` chain, outermost first.
        sources: Vec<String>,
    },
    /// A nested supervisor exceeded its restart intensity and gave up.
    Escalated {
        /// The fault that made it give up.
        cause: Box<Fault>,
    },
    /// The instance went over one of its [`Limits`](crate::Limits).
    BudgetExceeded {
        /// Which, with the figures the watchdog saw.
        budget: crate::Budget,
        /// Whether it then ignored cancellation past its shutdown timeout
        /// (revoked and detached).
        runaway: bool,
    },
    /// A child could not be started: its thread would pass one of the
    /// process's ceilings.
    CeilingReached {
        /// Which, with the figures seen.
        ceiling: crate::supervisor::Ceiling,
    },
    /// A child could not be (re)started: its grant could not be re-issued or
    /// its thread could not be spawned.
    StartFailed {
        /// Why.
        message: String,
    },
    /// A process child ended without saying how its entry ended: it exited
    /// or was killed (see [`ProcessExit`]). Only a process child can end
    /// this way; in a thread the same failure takes the whole program down.
    Died {
        /// How the process ended.
        exit: ProcessExit,
        /// The last lines it wrote to its standard output and error.
        output: String,
    },
    /// A wasm child's module trapped: an `unreachable` (a guest's panic),
    /// an access out of its memory's bounds, its stack exhausted. Only a
    /// wasm child ends this way, and the trap ends only its instance.
    Trapped {
        /// The trap, in the runtime's words.
        trap: String,
        /// The module's frames when it trapped, innermost first.
        backtrace: Vec<String>,
        /// The last of what it wrote to its standard output and error.
        output: String,
    },
}

/// How a process child ended when its entry could not report it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProcessExit {
    /// It called `exit` (or returned from `main` some other way) with this
    /// code.
    Code(i32),
    /// A signal ended it: `SIGABRT` for `abort`, a stack overflow or an
    /// allocation that failed; `SIGSEGV` for a bad memory access.
    Signal {
        /// The signal's number.
        number: i32,
        /// Its name, such as `SIGABRT`.
        name: &'static str,
    },
    /// The kernel killed it for a system call its policy never allows
    /// (`SIGSYS` from seccomp): starting a program, a new process, a mount.
    PolicyViolation,
    /// Its supervisor killed it.
    Killed {
        /// Why: a capability it held was revoked, or it ignored shutdown.
        reason: String,
    },
}

impl fmt::Display for ProcessExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcessExit::Code(code) => write!(f, "exited with code {code}"),
            ProcessExit::Signal { number, name } => write!(f, "killed by {name} ({number})"),
            ProcessExit::PolicyViolation => {
                f.write_str("killed by the kernel for a system call its policy never allows")
            }
            ProcessExit::Killed { reason } => write!(f, "killed by its supervisor: {reason}"),
        }
    }
}

/// A fault kind decided where an instance ran (a process child's proxy),
/// carried to the instance runner as the entry's error.
#[derive(Debug)]
pub(crate) struct Decided(pub(crate) FaultKind);

impl fmt::Display for Decided {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl std::error::Error for Decided {}

/// A component failure, as data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// The component's path, such as `app/workers/resizer`.
    pub path: String,
    /// Which instance failed (1 for the first start).
    pub instance: u64,
    /// What happened.
    pub kind: FaultKind,
    /// The message being handled, if the instance died while handling one.
    pub in_flight: Option<InFlight>,
}

impl Fault {
    pub(crate) fn new(path: &str, instance: u64, kind: FaultKind) -> Self {
        Self {
            path: path.to_owned(),
            instance,
            kind,
            in_flight: None,
        }
    }

    /// Whether the fault is a panic.
    pub fn is_panic(&self) -> bool {
        matches!(self.kind, FaultKind::Panic { .. })
    }

    /// The panic or error message, or the cause's for an escalation.
    pub fn message(&self) -> String {
        self.kind.message()
    }
}

impl FaultKind {
    /// What happened, in a line: the panic or error message, the budget,
    /// how a process ended; the cause's for an escalation.
    pub(crate) fn message(&self) -> String {
        match self {
            FaultKind::Panic { message, .. }
            | FaultKind::Error { message, .. }
            | FaultKind::StartFailed { message } => message.clone(),
            FaultKind::Escalated { cause } => cause.message(),
            FaultKind::BudgetExceeded { budget, .. } => budget.to_string(),
            FaultKind::CeilingReached { ceiling } => ceiling.to_string(),
            FaultKind::Died { exit, .. } => exit.to_string(),
            FaultKind::Trapped { trap, .. } => trap.clone(),
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{} ", self.path, self.instance)?;
        match &self.kind {
            FaultKind::Panic {
                message, location, ..
            } => {
                write!(f, "panicked: {message}")?;
                if let Some(location) = location {
                    write!(f, " at {location}")?;
                }
            }
            FaultKind::Error { message, sources } => {
                write!(
                    f,
                    "failed: {}",
                    chain(message.clone(), sources.iter().cloned())
                )?;
            }
            FaultKind::Escalated { cause } => write!(f, "gave up after: {cause}")?,
            FaultKind::StartFailed { message } => write!(f, "could not start: {message}")?,
            FaultKind::CeilingReached { ceiling } => write!(f, "could not start: {ceiling}")?,
            FaultKind::BudgetExceeded { budget, runaway } => {
                write!(f, "{budget}")?;
                if *runaway {
                    f.write_str(", and ignored cancellation: revoked and detached")?;
                }
            }
            FaultKind::Died { exit, output } => {
                write!(f, "{exit}")?;
                last_output(f, output)?;
            }
            FaultKind::Trapped {
                trap,
                backtrace,
                output,
            } => {
                write!(f, "trapped: {trap}")?;
                if let Some(innermost) = backtrace.first() {
                    write!(f, " in {innermost}")?;
                }
                last_output(f, output)?;
            }
        }
        if let Some(in_flight) = &self.in_flight {
            write!(
                f,
                " (handling {}, attempt {})",
                in_flight.description, in_flight.attempts
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for Fault {}

/// The last line of a child's output that says anything, in parentheses.
fn last_output(f: &mut fmt::Formatter<'_>, output: &str) -> fmt::Result {
    match output.lines().rev().find(|line| !line.trim().is_empty()) {
        Some(last) => write!(f, " (last output: {})", last.trim()),
        None => Ok(()),
    }
}

/// An error's message followed by its `source` chain: `a: b: c`.
pub(crate) fn with_sources(err: &(dyn std::error::Error + 'static)) -> String {
    chain(err.to_string(), sources(err).map(ToString::to_string))
}

/// `message`, then each source it does not already end with: `a: b: c`.
/// An error that prints its cause in its own message (as the crate's do)
/// is not repeated.
pub(crate) fn chain(message: String, sources: impl IntoIterator<Item = String>) -> String {
    let mut text = message;
    for source in sources {
        if !text.ends_with(&source) {
            text.push_str(": ");
            text.push_str(&source);
        }
    }
    text
}

/// The errors behind `err`, outermost first (not `err` itself).
pub(crate) fn sources<'e>(
    err: &'e (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'e (dyn std::error::Error + 'static)> {
    std::iter::successors(err.source(), |inner| inner.source())
}

/// A panic caught by [`contain`]: what the payload said and where the
/// panic hook saw it happen.
#[derive(Debug)]
pub(crate) struct Caught {
    pub(crate) message: String,
    pub(crate) report: Option<PanicReport>,
}

impl Caught {
    /// The panic as a fault kind.
    pub(crate) fn into_kind(self) -> FaultKind {
        FaultKind::Panic {
            message: self.message,
            location: self.report.as_ref().and_then(|r| r.location.clone()),
            backtrace: self.report.and_then(|r| r.backtrace),
        }
    }

    /// A start that failed because user code panicked while preparing it
    /// (`doing` is, say, `"re-issuing its grant"`).
    pub(crate) fn start_failed(self, doing: &str) -> FaultKind {
        FaultKind::StartFailed {
            message: self.explain(doing),
        }
    }

    /// `"<doing> panicked: <message> at <location>"`.
    pub(crate) fn explain(self, doing: &str) -> String {
        let mut text = format!("{doing} panicked: {}", self.message);
        if let Some(location) = self.report.and_then(|r| r.location) {
            text.push_str(&format!(" at {location}"));
        }
        text
    }

    /// The panic as a fault kind, its message prefixed with what was being
    /// done (`"dropping a dead letter"`).
    pub(crate) fn while_(mut self, doing: &str) -> FaultKind {
        self.message = format!("{doing} panicked: {}", self.message);
        self.into_kind()
    }
}

/// Runs user code under the crate's panic guard: the one place that calls
/// `catch_unwind`. A panic becomes a [`Caught`] — its payload described
/// (under the guard again, since a payload's `Display` is user code too) and
/// dropped (a payload whose `Drop` panics is leaked, since dropping it could
/// panic again).
///
/// Every call into user code goes through here: component entries, and the
/// `Display`, `Debug`, `Clone` and `Drop` of whatever components hand back
/// or supervisors keep.
pub(crate) fn contain<T>(f: impl FnOnce() -> T) -> Result<T, Caught> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => Ok(value),
        Err(payload) => {
            let text = payload_text(&*payload);
            let mut report = take_panic_report(text);
            let recorded = report.as_mut().and_then(|report| report.message.take());
            let message = match recorded {
                // The hook copied this payload's text already.
                Some(recorded) if text == Some(recorded.as_str()) => recorded,
                _ => match catch_unwind(AssertUnwindSafe(|| payload_message(&*payload))) {
                    Ok(message) => message,
                    Err(second) => {
                        std::mem::forget(second);
                        "a panic payload whose formatting panicked too".to_owned()
                    }
                },
            };
            if let Err(second) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
                std::mem::forget(second);
            }
            Err(Caught { message, report })
        }
    }
}

/// Drops `value` under the panic guard; a panicking `Drop` is reported.
pub(crate) fn drop_contained<T>(value: T) -> Result<(), Caught> {
    contain(move || drop(value))
}

/// Formats user data under the panic guard: `format` runs `Display` or
/// `Debug` impls that may panic; `what` names the data in the replacement
/// text.
pub(crate) fn describe_contained(what: &str, format: impl FnOnce() -> String) -> String {
    contain(format)
        .unwrap_or_else(|caught| format!("<{what} whose formatting panicked: {}>", caught.message))
}

/// Describes a panic payload: its text when it is a string, else its type.
fn payload_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload_text(payload) {
        return text.to_owned();
    }
    macro_rules! known {
        ($($ty:ty),*) => {$(
            if let Some(value) = payload.downcast_ref::<$ty>() {
                return format!("non-string panic payload of type `{}`: {:?}", stringify!($ty), value);
            }
        )*};
    }
    known!(
        i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize, f32, f64, bool, char
    );
    if let Some(err) = payload.downcast_ref::<Box<dyn std::error::Error + Send + Sync>>() {
        return format!("non-string panic payload of type `Box<dyn Error>`: {err}");
    }
    if let Some(err) = payload.downcast_ref::<std::io::Error>() {
        return format!("non-string panic payload of type `std::io::Error`: {err}");
    }
    format!(
        "non-string panic payload of an unknown type ({:?})",
        (*payload).type_id()
    )
}

/// A panic payload's text, when it is a string (`panic!` with or without
/// arguments): the one description that runs no user code, so the panic
/// hook can take it.
fn payload_text(payload: &(dyn Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<&'static str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
}

/// What the panic hook saw on a supervised thread, taken by the runner.
#[derive(Debug)]
pub(crate) struct PanicReport {
    /// The payload's text, when it is a string (read while unwinding, when
    /// the payload itself is out of reach).
    message: Option<String>,
    pub(crate) location: Option<PanicLocation>,
    pub(crate) backtrace: Option<String>,
}

/// The panic hook's per-thread state on a supervised thread.
#[derive(Debug)]
struct SupervisedThread {
    /// Whether the application's hook also sees this thread's panics.
    forward: bool,
    /// Whether to capture a backtrace (costly: tens of microseconds).
    backtrace: bool,
    /// The last few panics' reports, oldest first: more than one when a
    /// panic was caught inside the entry (by its own code, or by a `Drop`
    /// that ran while the entry's panic unwound).
    reports: VecDeque<PanicReport>,
}

/// How many panics' reports a supervised thread keeps until its panic
/// guard takes them.
const REPORTS_KEPT: usize = 4;

thread_local! {
    /// `Some` on supervised threads: the hook stores its reports here.
    static SUPERVISED: RefCell<Option<SupervisedThread>> = const { RefCell::new(None) };
}

/// Marks the current thread as supervised, so the hook records its panics;
/// `forward` says whether the previously installed hook runs for them too,
/// `backtrace` whether a backtrace is captured.
pub(crate) fn mark_supervised(forward: bool, backtrace: bool) {
    SUPERVISED.with(|slot| {
        *slot.borrow_mut() = Some(SupervisedThread {
            forward,
            backtrace,
            reports: VecDeque::new(),
        })
    });
}

/// The report of the panic whose payload says `text` (`None`: not a
/// string) among those this (supervised) thread recorded, the latest if
/// several or none do; the others are dropped. The panic that reached the
/// guard is not always the last one the hook saw: a `Drop` that runs while
/// it unwinds may panic and catch a panic of its own.
fn take_panic_report(text: Option<&str>) -> Option<PanicReport> {
    SUPERVISED.with(|slot| {
        let mut slot = slot.borrow_mut();
        let reports = &mut slot.as_mut()?.reports;
        let position = reports
            .iter()
            .rposition(|report| report.message.as_deref() == text)
            .or(reports.len().checked_sub(1))?;
        let report = reports.remove(position);
        reports.clear();
        report
    })
}

/// The panic this supervised thread is unwinding from, if it is: what a
/// request's reply endpoint, dropped by the unwinding, tells its caller.
pub(crate) fn panic_in_progress() -> Option<HandlerCrash> {
    if !std::thread::panicking() {
        return None;
    }
    SUPERVISED
        .try_with(|slot| {
            let slot = slot.try_borrow().ok()?;
            let report = slot.as_ref()?.reports.back()?;
            Some(HandlerCrash {
                message: report
                    .message
                    .clone()
                    .unwrap_or_else(|| "a panic whose payload is not a string".to_owned()),
                location: report.location.clone(),
            })
        })
        .ok()
        .flatten()
}

/// Chains the crate's hook in front of whatever hook is installed, once.
///
/// The crate's hook records where a supervised thread panicked and prints
/// nothing; then the previous hook runs as before — for every panic, except
/// on supervised threads whose supervisor was told not to forward them. So a
/// supervised panic is printed at most once (by the application's hook), and
/// reported once (as a `Faulted` event).
#[allow(
    clippy::disallowed_methods,
    reason = "the crate's own hook, installed once by the granting side's first supervisor; it chains the previous one"
)]
pub(crate) fn install_panic_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info: &PanicHookInfo<'_>| {
            if record(info) {
                previous(info);
            }
        }));
    });
}

/// Records the panic if this thread is supervised; returns whether the
/// previous hook should run.
fn record(info: &PanicHookInfo<'_>) -> bool {
    // `try_with`/`try_borrow_mut`: a panic during thread teardown, or inside
    // this hook, must not panic again here.
    SUPERVISED
        .try_with(|slot| {
            let Ok(mut slot) = slot.try_borrow_mut() else {
                return true;
            };
            let Some(thread) = slot.as_mut() else {
                return true;
            };
            let backtrace = thread
                .backtrace
                .then(|| std::backtrace::Backtrace::force_capture().to_string());
            if thread.reports.len() == REPORTS_KEPT {
                thread.reports.pop_front();
            }
            thread.reports.push_back(PanicReport {
                message: payload_text(info.payload()).map(str::to_owned),
                location: info.location().map(|l| PanicLocation {
                    file: l.file().to_owned(),
                    line: l.line(),
                    column: l.column(),
                }),
                backtrace,
            });
            thread.forward
        })
        .unwrap_or(true)
}
