//! `Child`: the specification of one supervised component.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::capability::Capability;
use crate::caps::Random;
use crate::context::Context;
use crate::grant::{Grant, Inventory, ReissueError};
use crate::limits::Limits;
use crate::lockdown::{Lockdown, LockdownError, Policy};
use crate::revoke::Revoker;

/// The error type components may return: anything that converts into a boxed
/// error (`String`, `&str`, any `std::error::Error`).
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// When a child is restarted after its instance ends, as in Erlang/OTP.
///
/// | exit | `Permanent` | `Transient` | `Temporary` |
/// |---|---|---|---|
/// | returned `Ok` | restarted | not restarted | not restarted |
/// | stopped by its supervisor | as its strategy decides | as its strategy decides | never restarted |
/// | returned `Err` | restarted | restarted | not restarted |
/// | panicked | restarted | restarted | not restarted |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Restart {
    /// Always restarted.
    #[default]
    Permanent,
    /// Restarted only after a fault (an `Err` or a panic).
    Transient,
    /// Never restarted; removed from its supervisor once it ends.
    Temporary,
}

/// Exponential backoff between restarts of one child, with jitter, capped.
///
/// The n-th restart in a row waits `initial × 2ⁿ⁻¹`, at most `max`, minus up
/// to `jitter` of that (so delays spread out but never exceed `max`). The
/// supervisor keeps working while a child backs off, and the restart still
/// counts toward the supervisor's intensity when it is decided. An instance
/// that runs for at least `max` resets the sequence.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use compartment::Backoff;
///
/// let backoff = Backoff::exponential(Duration::from_millis(10), Duration::from_secs(1)).jitter(0.0);
/// assert_eq!(backoff.delay(1, 0.5), Duration::from_millis(10));
/// assert_eq!(backoff.delay(3, 0.5), Duration::from_millis(40));
/// assert_eq!(backoff.delay(30, 0.5), Duration::from_secs(1));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub(crate) initial: Duration,
    pub(crate) max: Duration,
    pub(crate) jitter: f64,
}

impl Backoff {
    /// Doubling from `initial` up to `max`, with 10% jitter.
    pub fn exponential(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            jitter: 0.1,
        }
    }

    /// Sets the fraction of each delay that is randomised (0 to 1).
    #[must_use]
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = fraction;
        self
    }

    /// The delay before the `attempt`-th restart in a row (from 1), for a
    /// uniform random `unit` in `[0, 1)`.
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let base = 2u32
            .checked_pow(attempt.saturating_sub(1))
            .and_then(|factor| self.initial.checked_mul(factor))
            .map_or(self.max, |delay| delay.min(self.max));
        base.mul_f64(1.0 - self.jitter * unit.clamp(0.0, 1.0))
    }

    pub(crate) fn validate(&self) -> Result<(), &'static str> {
        if self.initial.is_zero() {
            return Err("the initial backoff delay is zero");
        }
        if self.initial > self.max {
            return Err("the initial backoff delay exceeds the maximum");
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err("the backoff jitter is not between 0 and 1");
        }
        Ok(())
    }
}

/// How a restarted child gets its thread.
///
/// | mode | a restart | thread-locals | kernel policy | cost |
/// |---|---|---|---|---|
/// | `FreshThread` (default) | a new thread runs the next instance | fresh | applied afresh from the new grant | a thread spawn per restart; in a burst of restarts decided on the failing thread, the spawn happens while the instance before runs, and the restart wakes the thread |
/// | `InPlace` | the thread that unwound runs the entry again with a re-issued grant | survive from the previous instance | the one applied at the first start, still in force (it was derived from the same grant; rules follow directories, not descriptors) | none beyond the re-issue |
///
/// Either way the restart follows the supervisor's rules (strategy,
/// intensity, backoff), the grant is re-issued and the old one revoked with
/// its instance, and the old and new instances never run at once. Where
/// the restart concerns the child alone — a one-for-one supervisor, no
/// backoff, no kernel policy, no limits — the ending instance starts its
/// successor itself, recording the restart in the supervisor's restart
/// window, and the supervisor reports it (`Restarting`, `Restarted`) as
/// soon as it hears; otherwise the supervisor's thread starts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RestartMode {
    /// A new thread per instance.
    #[default]
    FreshThread,
    /// The same thread, again, after the unwind.
    InPlace,
}

/// Per-child settings shared by every kind of child.
#[derive(Debug, Clone)]
pub(crate) struct ChildSettings {
    pub(crate) name: String,
    pub(crate) restart: Restart,
    pub(crate) shutdown: Duration,
    pub(crate) backoff: Option<Backoff>,
    pub(crate) significant: bool,
    pub(crate) poison_threshold: u32,
    pub(crate) limits: Limits,
    pub(crate) restart_mode: RestartMode,
}

/// A fresh instance: the entry function with its re-issued grant.
pub(crate) trait Instance: Send {
    /// The capabilities this instance's grant holds, with their descriptors
    /// (what a kernel policy is derived from).
    #[allow(dead_code, reason = "read by the feature-gated kernel lockdown")]
    fn inventory(&self) -> Inventory<'_>;

    /// Runs the entry function, consuming the grant.
    fn run(self: Box<Self>, cx: &Context) -> Result<(), BoxError>;
}

struct Prepared<G, E> {
    entry: fn(G, &Context) -> Result<(), E>,
    grant: G,
}

impl<G, E> Instance for Prepared<G, E>
where
    G: Grant,
    E: Into<BoxError> + 'static,
{
    fn inventory(&self) -> Inventory<'_> {
        self.grant.inventory()
    }

    fn run(self: Box<Self>, cx: &Context) -> Result<(), BoxError> {
        // The box is freed before the entry runs: a frame that still owned
        // it would free it on a panic's way out, and every frame with
        // something to drop makes the unwinder stop and resume there (a
        // tenth of an in-place restart's unwinding, measured).
        let Self { entry, grant } = unboxed(self);
        entry(grant, cx).map_err(Into::into)
    }
}

/// Moves a value out of its box; the box is freed when this returns.
#[inline]
#[allow(
    clippy::boxed_local,
    reason = "taking the box is the point: its caller holds nothing to free"
)]
fn unboxed<T>(boxed: Box<T>) -> T {
    *boxed
}

/// A child specification with its grant and entry type erased.
pub(crate) trait WorkerFactory: Send {
    /// Re-issues the grant (subject to every one of `revokers`) and binds it
    /// to the entry.
    fn instance(&self, revokers: &[&Revoker]) -> Result<Box<dyn Instance>, ReissueError>;
    /// The grant's capabilities, for status and capability maps.
    fn capabilities(&self) -> Vec<(String, Capability)>;
    /// Compiles a kernel policy from the specification's grant.
    fn compile_policy(&self, lockdown: Lockdown) -> Result<Policy, LockdownError>;
    /// A copy with a re-issued grant, for pools.
    fn duplicate(&self) -> Result<Box<dyn WorkerFactory>, ReissueError>;

    /// Takes the lockdown mode for a confinement of the factory's own (a
    /// process child's); `false` when the supervisor applies it to the
    /// instance thread.
    fn confine_with(&mut self, _lockdown: Lockdown) -> bool {
        false
    }

    /// Takes the limits the factory's instances enforce themselves (a
    /// process child's resource limits) and returns what the watchdog
    /// still watches.
    fn take_limits(&mut self, limits: Limits) -> Limits {
        limits
    }

    /// Whether instances run in a child process: revoking one kills it, so
    /// a supervisor waits for it instead of detaching it, and status and
    /// maps show it as a process.
    fn runs_in_process(&self) -> bool {
        false
    }

    /// What status and maps show the child as.
    fn tier(&self) -> crate::supervisor::NodeKind {
        if self.runs_in_process() {
            crate::supervisor::NodeKind::Process
        } else {
            crate::supervisor::NodeKind::Worker
        }
    }

    /// How instances can be made from another thread than the
    /// supervisor's, when they can: an instance of a thread child that
    /// ends may start its successor itself.
    fn reissuer(&self) -> Option<Arc<dyn Reissue>> {
        None
    }

    /// Takes how a process child is started; nothing for other children.
    #[cfg(all(feature = "process", target_os = "linux"))]
    fn spawn_by(&mut self, _spawning: crate::process::Spawning) {}
}

/// Makes instances from a specification's grant, from any thread: the
/// supervisor's, or — when an instance that ended starts its successor
/// itself (see `supervisor::relaunch`) — the instance's own.
pub(crate) trait Reissue: Send + Sync {
    /// Re-issues the grant (subject to every one of `revokers`) and binds it
    /// to the entry.
    fn instance(&self, revokers: &[&Revoker]) -> Result<Box<dyn Instance>, ReissueError>;
}

/// A thread child's entry and original grant. The grant is behind a lock
/// because the supervisor and an ending instance may both re-issue it.
struct Shared<G, E> {
    entry: fn(G, &Context) -> Result<(), E>,
    grant: parking_lot::Mutex<G>,
}

impl<G, E> Reissue for Shared<G, E>
where
    G: Grant,
    E: Into<BoxError> + 'static,
{
    fn instance(&self, revokers: &[&Revoker]) -> Result<Box<dyn Instance>, ReissueError> {
        let mut grant = self.grant.lock().reissue()?;
        for revoker in revokers {
            grant.attach_revoker(revoker);
        }
        Ok(Box::new(Prepared {
            entry: self.entry,
            grant,
        }))
    }
}

struct Worker<G, E> {
    shared: Arc<Shared<G, E>>,
}

impl<G, E> Worker<G, E> {
    fn new(entry: fn(G, &Context) -> Result<(), E>, grant: G) -> Self {
        Self {
            shared: Arc::new(Shared {
                entry,
                grant: parking_lot::Mutex::new(grant),
            }),
        }
    }
}

impl<G, E> WorkerFactory for Worker<G, E>
where
    G: Grant,
    E: Into<BoxError> + 'static,
{
    fn instance(&self, revokers: &[&Revoker]) -> Result<Box<dyn Instance>, ReissueError> {
        self.shared.instance(revokers)
    }

    fn compile_policy(&self, lockdown: Lockdown) -> Result<Policy, LockdownError> {
        Policy::compile(lockdown, &self.shared.grant.lock().inventory())
    }

    fn capabilities(&self) -> Vec<(String, Capability)> {
        capabilities_of(&*self.shared.grant.lock())
    }

    fn duplicate(&self) -> Result<Box<dyn WorkerFactory>, ReissueError> {
        let grant = self.shared.grant.lock().reissue()?;
        Ok(Box::new(Worker::new(self.shared.entry, grant)))
    }

    fn reissuer(&self) -> Option<Arc<dyn Reissue>> {
        Some(Arc::clone(&self.shared) as Arc<dyn Reissue>)
    }
}

/// What a grant holds, field by field, for status and maps.
pub(crate) fn capabilities_of(grant: &impl Grant) -> Vec<(String, Capability)> {
    grant
        .inventory()
        .iter()
        .map(|held| (held.field().to_owned(), held.capability().clone()))
        .collect()
}

fn default_settings(name: String) -> ChildSettings {
    ChildSettings {
        name,
        restart: Restart::Permanent,
        shutdown: Duration::from_secs(5),
        backoff: None,
        significant: false,
        poison_threshold: 3,
        limits: Limits::new(),
        restart_mode: RestartMode::FreshThread,
    }
}

/// The specification of one supervised component: a name, an entry function,
/// the grant every instance receives a fresh copy of, and how it restarts.
///
/// The entry is a function pointer, `fn(G, &Context) -> Result<(), E>`: a
/// closure that captures anything does not coerce to one, so nothing reaches
/// a component except through its grant.
///
/// ```compile_fail
/// use compartment::{Child, Context};
/// let secret = String::from("captured");
/// let child = Child::new("leaky", move |_: (), _: &Context| -> Result<(), String> {
///     Err(secret.clone()) // error: a capturing closure is not a fn pointer
/// }, ());
/// ```
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use compartment::{Backoff, Child, Context, Restart};
///
/// fn ticker(limit: u32, cx: &Context) -> Result<(), std::io::Error> {
///     for _ in 0..limit {
///         cx.check()?;
///     }
///     Ok(())
/// }
///
/// let child = Child::new("ticker", ticker, 10u32)
///     .restart(Restart::Transient)
///     .shutdown(Duration::from_secs(1))
///     .backoff(Backoff::exponential(Duration::from_millis(10), Duration::from_secs(5)));
/// assert_eq!(child.name(), "ticker");
/// ```
pub struct Child {
    pub(crate) settings: ChildSettings,
    pub(crate) factory: Box<dyn WorkerFactory>,
    /// The kernel policy asked for, compiled at the first start.
    pub(crate) lockdown: Option<LockdownRequest>,
}

/// A child's lockdown: the request, and its policy once compiled (once per
/// specification; every start only applies it).
#[derive(Debug, Clone)]
pub(crate) struct LockdownRequest {
    pub(crate) lockdown: Lockdown,
    pub(crate) policy: Option<Arc<Policy>>,
}

impl fmt::Debug for Child {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Child")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Child {
    /// A permanent child with a 5 s shutdown timeout, no backoff, not
    /// significant, dead-lettering a message after 3 crashes in a row.
    pub fn new<G, E>(
        name: impl Into<String>,
        entry: fn(G, &Context) -> Result<(), E>,
        grant: G,
    ) -> Self
    where
        G: Grant,
        E: Into<BoxError> + 'static,
    {
        Self {
            settings: default_settings(name.into()),
            factory: Box::new(Worker::new(entry, grant)),
            lockdown: None,
        }
    }

    /// A child that runs in a confined child process: the same tree, the
    /// same restart rules and events, the same kind of grant (made
    /// [`Portable`](crate::process::Portable)), with a wall that holds
    /// against hostile native code (see [`process`](crate::process)).
    ///
    /// `entry` names the function with [`entry!`](crate::entry); the same
    /// entry must be passed to [`process::init`](crate::process::init).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use compartment::{Child, Context, Supervisor, entry};
    ///
    /// fn tenant(quota: u64, _cx: &Context) -> Result<(), std::io::Error> {
    ///     assert!(quota > 0);
    ///     Ok(())
    /// }
    ///
    /// fn main() -> Result<(), Box<dyn std::error::Error>> {
    ///     compartment::process::init(&[&entry!(tenant)])?;
    ///     let system = Supervisor::new("host")
    ///         .child(Child::process("tenant", entry!(tenant), 64u64))
    ///         .start()?;
    ///     system.shutdown();
    ///     Ok(())
    /// }
    /// ```
    #[cfg(all(feature = "process", target_os = "linux"))]
    pub fn process<G, E>(
        name: impl Into<String>,
        entry: crate::process::Entry<G, E>,
        grant: G,
    ) -> Self
    where
        G: crate::process::Portable,
        E: Into<BoxError> + 'static,
    {
        Self {
            settings: default_settings(name.into()),
            factory: Box::new(crate::process::ProcessWorker::new(entry, grant)),
            lockdown: None,
        }
    }

    /// A child that runs a WebAssembly module whose only imports are its
    /// grant: the same tree, the same restart rules and events, a boundary
    /// that holds against hostile code inside the process (see
    /// [`wasm`](crate::wasm)). Each instance instantiates `module` afresh
    /// on a supervised thread, with the grant's capabilities as its
    /// handles. Its restarts are [`RestartMode::InPlace`] unless set
    /// otherwise: a module reaches no state of its thread, so a trap
    /// leaves nothing there for the next instance to inherit.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::wasm::WasmModule;
    /// use compartment::{Child, Restart, Supervisor};
    ///
    /// let module = WasmModule::new(r#"(module (func (export "_start")))"#)?;
    /// let system = Supervisor::new("host")
    ///     .child(Child::wasm("plugin", module, ()).restart(Restart::Transient))
    ///     .start()?;
    /// system.shutdown();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(all(feature = "wasm", target_os = "linux"))]
    pub fn wasm<G: Grant>(
        name: impl Into<String>,
        module: crate::wasm::WasmModule,
        grant: G,
    ) -> Self {
        let mut settings = default_settings(name.into());
        settings.restart_mode = RestartMode::InPlace;
        Self {
            settings,
            factory: Box::new(crate::wasm::WasmWorker::new(module, grant)),
            lockdown: None,
        }
    }

    /// How a [process child](Self::process) is started: cloned from the
    /// zygote (the default) or by running the program again (see
    /// [`Spawning`](crate::process::Spawning)). Has no effect on a thread
    /// child.
    #[cfg(all(feature = "process", target_os = "linux"))]
    #[must_use]
    pub fn spawning(mut self, spawning: crate::process::Spawning) -> Self {
        self.factory.spawn_by(spawning);
        self
    }

    /// The child's name within its supervisor.
    pub fn name(&self) -> &str {
        &self.settings.name
    }

    /// When the child is restarted.
    #[must_use]
    pub fn restart(mut self, restart: Restart) -> Self {
        self.settings.restart = restart;
        self
    }

    /// How long an instance may take to stop after it is asked to. One that
    /// takes longer is reported as `ShutdownTimedOut`, its capabilities are
    /// revoked and its thread is detached: a thread cannot be killed.
    #[must_use]
    pub fn shutdown(mut self, timeout: Duration) -> Self {
        self.settings.shutdown = timeout;
        self
    }

    /// Waits between restarts of this child.
    #[must_use]
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.settings.backoff = Some(backoff);
        self
    }

    /// Marks the child significant for its supervisor's
    /// [`AutoShutdown`](crate::AutoShutdown). Only transient and temporary
    /// children may be significant.
    #[must_use]
    pub fn significant(mut self, significant: bool) -> Self {
        self.settings.significant = significant;
        self
    }

    /// How restarted instances get their thread; see [`RestartMode`].
    #[must_use]
    pub fn restart_mode(mut self, mode: RestartMode) -> Self {
        self.settings.restart_mode = mode;
        self
    }

    /// Limits every instance's CPU time, wall-clock time and memory (see
    /// [`limits`](crate::limits)); an instance over a limit is cancelled
    /// and faulted with `BudgetExceeded`.
    ///
    /// A process child (`Child::process`, feature `process`) enforces its
    /// CPU budget, memory and threads itself, with resource limits
    /// (`RLIMIT_CPU`, `RLIMIT_DATA`); its wall-clock deadline is watched as
    /// a thread's.
    #[must_use]
    pub fn limits(mut self, limits: Limits) -> Self {
        self.settings.limits = self.factory.take_limits(limits);
        self
    }

    /// Confines every instance's thread with a kernel policy derived from
    /// its grant (see [`lockdown`](crate::lockdown)). For a
    /// process child (`Child::process`), which is always confined, this
    /// chooses between `Require` (the default) and `BestEffort` for its
    /// whole confinement. Without the `lockdown`
    /// feature, or off Linux, nothing can be enforced: a `Require` child
    /// then does not start, and a `BestEffort` one reports that.
    #[must_use]
    pub fn lockdown(mut self, lockdown: Lockdown) -> Self {
        if self.factory.confine_with(lockdown) {
            return self;
        }
        self.lockdown = Some(LockdownRequest {
            lockdown,
            policy: None,
        });
        self
    }

    /// After how many instances in a row died handling the same message the
    /// message goes to the dead-letter sink instead of being delivered again.
    #[must_use]
    pub fn poison_threshold(mut self, crashes: u32) -> Self {
        self.settings.poison_threshold = crashes;
        self
    }

    /// A copy of this specification under another name, with a re-issued
    /// grant: how a pool makes its members.
    pub(crate) fn duplicate(&self, name: String) -> Result<Child, ReissueError> {
        Ok(Child {
            settings: ChildSettings {
                name,
                ..self.settings.clone()
            },
            factory: self.factory.duplicate()?,
            lockdown: self.lockdown.clone(),
        })
    }

    /// The child's kernel policy, compiled on first use from the
    /// specification's grant.
    pub(crate) fn policy(&mut self) -> Option<Result<Arc<Policy>, LockdownError>> {
        let request = self.lockdown.as_mut()?;
        if let Some(policy) = &request.policy {
            return Some(Ok(Arc::clone(policy)));
        }
        Some(self.factory.compile_policy(request.lockdown).map(|policy| {
            let policy = Arc::new(policy);
            request.policy = Some(Arc::clone(&policy));
            policy
        }))
    }

    pub(crate) fn backoff_delay(&self, attempt: u32, random: &Random) -> Option<Duration> {
        let backoff = self.settings.backoff?;
        let unit = random
            .next_u64()
            .map_or(0.5, |r| (r >> 11) as f64 / (1u64 << 53) as f64);
        Some(backoff.delay(attempt, unit))
    }
}
