//! `Supervisor`: the specification of a supervisor and its children.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::error::SpecError;
use crate::caps::{MonotonicClock, Random};
use crate::channel::Sender;
use crate::component::{Child, ChildSettings, Restart};
use crate::event::{EventBus, Events};
use crate::runtime_clock::RuntimeClock;
use crate::supervisor::dead_letter::DeadLetter;

/// Which children a supervisor restarts when one fails, as in Erlang/OTP.
///
/// # Examples
///
/// ```
/// # use compartment::{Child, Context, Supervisor};
/// # fn idle(_: (), cx: &Context) -> Result<(), compartment::Cancelled> {
/// #     loop { cx.sleep(std::time::Duration::from_secs(60))?; }
/// # }
/// use compartment::Strategy;
/// let spec = Supervisor::new("app")
///     .strategy(Strategy::RestForOne) // a crash restarts the child and those started after it
///     .child(Child::new("db", idle, ()))
///     .child(Child::new("api", idle, ()));
/// spec.validate()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Strategy {
    /// Only the failed child.
    #[default]
    OneForOne,
    /// Every child: the others are stopped in reverse start order, then all
    /// are started again in start order. Temporary children stopped this way
    /// are not restarted.
    OneForAll,
    /// The failed child and every child started after it.
    RestForOne,
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Strategy::OneForOne => "one_for_one",
            Strategy::OneForAll => "one_for_all",
            Strategy::RestForOne => "rest_for_one",
        })
    }
}

/// When a supervisor shuts itself down because significant children ended
/// on their own, as in Erlang/OTP's `auto_shutdown`.
///
/// A significant child "ends" when it exits and is not restarted: a
/// transient child that returns `Ok`, or a temporary child that exits any
/// way. Children stopped by the supervisor itself never trigger it.
///
/// # Examples
///
/// ```
/// # use compartment::{Child, Context, Supervisor};
/// # fn idle(_: (), cx: &Context) -> Result<(), compartment::Cancelled> {
/// #     loop { cx.sleep(std::time::Duration::from_secs(60))?; }
/// # }
/// use compartment::{AutoShutdown, Restart};
/// let spec = Supervisor::new("app")
///     .auto_shutdown(AutoShutdown::AnySignificant)
///     .child(Child::new("main", idle, ()).restart(Restart::Transient).significant(true));
/// spec.validate()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AutoShutdown {
    /// Never; significant children are refused.
    #[default]
    Never,
    /// When any significant child ends.
    AnySignificant,
    /// When the last active significant child ends.
    AllSignificant,
}

/// How a nested supervisor that exceeded its restart intensity ends, as its
/// parent sees it.
///
/// Erlang/OTP ends such a supervisor with reason `shutdown`: its parent
/// restarts it only if it is permanent (a transient or temporary supervisor
/// stays down), and the give-up itself is reported by the supervisor's own
/// `GaveUp` and `Escalated` events. `Failure` makes the give-up a fault of
/// the parent's child instead, restarted like any failure.
///
/// | escalation | `Permanent` | `Transient` | `Temporary` |
/// |---|---|---|---|
/// | `Shutdown` (default, OTP) | restarted | not restarted | not restarted |
/// | `Failure` | restarted | restarted | not restarted |
///
/// # Examples
///
/// ```
/// use compartment::{Restart, Supervisor};
/// use compartment::supervisor::Escalation;
///
/// // Stays down once it gives up, as in OTP.
/// let quiet = Supervisor::new("workers").restart(Restart::Transient);
/// // Restarted by its parent after giving up.
/// let loud = Supervisor::new("workers")
///     .restart(Restart::Transient)
///     .escalation(Escalation::Failure);
/// # let _ = (quiet, loud);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Escalation {
    /// The parent sees a shutdown (OTP's behaviour).
    #[default]
    Shutdown,
    /// The parent sees a failure.
    Failure,
}

/// One entry of a supervisor's child list.
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "specifications are built once and moved a handful of times; a box per worker buys nothing"
)]
pub(crate) enum Node {
    Worker(Child),
    Supervisor(Box<Supervisor>),
}

impl Node {
    pub(crate) fn settings(&self) -> &ChildSettings {
        match self {
            Node::Worker(child) => &child.settings,
            Node::Supervisor(supervisor) => &supervisor.as_child,
        }
    }
}

/// The settings that apply to a whole tree, taken from its root.
#[derive(Debug, Clone)]
pub(crate) struct TreeSettings {
    pub(crate) clock: RuntimeClock,
    pub(crate) watchdog_period: Duration,
    pub(crate) random: Option<Random>,
    pub(crate) forward_panics: bool,
    pub(crate) backtraces: bool,
    pub(crate) dead_letters: Option<Sender<DeadLetter>>,
}

/// A supervisor specification: a strategy, a restart intensity, and children
/// started in order.
///
/// Nest supervisors with [`supervisor`](Self::supervisor) to build a tree;
/// start the root with [`start`](Self::start). The clock, randomness,
/// panic forwarding and dead-letter sink of the root apply to the whole tree.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use compartment::{Child, Context, Strategy, Supervisor};
///
/// fn idle(_: (), cx: &Context) -> Result<(), compartment::Cancelled> {
///     cx.sleep(Duration::from_secs(3600))
/// }
///
/// let system = Supervisor::new("app")
///     .strategy(Strategy::OneForOne)
///     .intensity(5, Duration::from_secs(10))
///     .child(Child::new("idle", idle, ()))
///     .start()?;
/// assert_eq!(system.status().find("app/idle").unwrap().instance, 1);
/// system.shutdown();
/// # Ok::<(), compartment::StartError>(())
/// ```
pub struct Supervisor {
    pub(crate) strategy: Strategy,
    pub(crate) max_restarts: u32,
    pub(crate) period: Duration,
    pub(crate) auto_shutdown: AutoShutdown,
    pub(crate) children: Vec<Node>,
    pub(crate) pool: Option<Child>,
    /// Why a pool could not make all its members, reported at start.
    pub(crate) pool_error: Option<String>,
    pub(crate) as_child: ChildSettings,
    pub(crate) escalation: Escalation,
    pub(crate) tree: TreeSettings,
    pub(crate) bus: Arc<EventBus>,
}

impl fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Supervisor")
            .field("name", &self.as_child.name)
            .field("strategy", &self.strategy)
            .field("max_restarts", &self.max_restarts)
            .field("period", &self.period)
            .field("auto_shutdown", &self.auto_shutdown)
            .field("children", &self.children)
            .finish_non_exhaustive()
    }
}

impl Supervisor {
    /// A `OneForOne` supervisor with OTP's default intensity (at most 1
    /// restart in 5 seconds) and no children.
    ///
    /// As a child of another supervisor it is permanent and waits for its
    /// children to stop however long they take (their own timeouts bound
    /// that).
    ///
    /// # Examples
    ///
    /// ```
    /// # use compartment::{Child, Context, Supervisor};
    /// # fn idle(_: (), cx: &Context) -> Result<(), compartment::Cancelled> {
    /// #     loop { cx.sleep(std::time::Duration::from_secs(60))?; }
    /// # }
    /// let system = Supervisor::new("app").child(Child::new("idle", idle, ())).start()?;
    /// system.shutdown();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[allow(
        clippy::disallowed_methods,
        reason = "a supervisor is the granting side: its default clock is the OS's"
    )]
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            strategy: Strategy::OneForOne,
            max_restarts: 1,
            period: Duration::from_secs(5),
            auto_shutdown: AutoShutdown::Never,
            children: Vec::new(),
            pool: None,
            pool_error: None,
            as_child: ChildSettings {
                name: name.into(),
                restart: Restart::Permanent,
                shutdown: Duration::MAX,
                backoff: None,
                significant: false,
                poison_threshold: 1,
                limits: crate::Limits::new(),
                restart_mode: crate::component::RestartMode::FreshThread,
            },
            escalation: Escalation::Shutdown,
            tree: TreeSettings {
                clock: RuntimeClock::Os,
                watchdog_period: Duration::from_millis(10),
                random: None,
                forward_panics: true,
                backtraces: false,
                dead_letters: None,
            },
            bus: Arc::new(EventBus::default()),
        }
    }

    /// A pool: `size` members made from `template` (each with its own
    /// re-issued grant), named `<template>-0`, `<template>-1`, ...; members
    /// restart independently, and the pool stops them all in parallel. More
    /// can be added at run time with
    /// [`System::add_pool_member`](crate::System::add_pool_member). This is
    /// OTP's `simple_one_for_one`.
    ///
    /// The supervisor's work per member's start, restart and stop, and per
    /// member added at run time or removed, does not grow with the pool's
    /// size. Nor does waking a member's thread, which the kernel's futex
    /// hash would otherwise make grow: since Linux 6.17 a process's hash is
    /// sized by its CPUs (16 buckets on two) and a wake walks the sleepers of
    /// one bucket, so once more than 64 of the crate's threads share each
    /// bucket, the crate asks the kernel for two buckets a thread
    /// (`prctl(PR_FUTEX_HASH, PR_FUTEX_HASH_SET_SLOTS)`). The hash only ever
    /// grows, and a process the application put on the shared hash stays
    /// there.
    ///
    /// # Examples
    ///
    /// ```
    /// # use compartment::{Child, Context, Supervisor};
    /// # fn idle(_: (), cx: &Context) -> Result<(), compartment::Cancelled> {
    /// #     loop { cx.sleep(std::time::Duration::from_secs(60))?; }
    /// # }
    /// // Four identical members, workers/w-0 to workers/w-3.
    /// let system = Supervisor::new("app")
    ///     .supervisor(Supervisor::pool("workers", Child::new("w", idle, ()), 4))
    ///     .start()?;
    /// assert_eq!(system.status().find("app/workers").map(|pool| pool.children.len()), Some(4));
    /// system.shutdown();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pool(name: impl Into<String>, mut template: Child, size: usize) -> Self {
        let mut pool = Self::new(name);
        // A locked-down template's policy is compiled once and shared by
        // every member: one program and one carrier thread for the pool, not
        // one per member. Listing the grant is user code, under the panic
        // guard; a policy that cannot be built here is built (and its error
        // reported) by each member's start instead.
        let _ = crate::fault::contain(|| template.policy());
        pool.children = Vec::with_capacity(size);
        for i in 0..size {
            let member_name = format!("{}-{i}", template.name());
            match template.duplicate(member_name) {
                Ok(member) => pool.children.push(Node::Worker(member)),
                Err(err) => {
                    // Reported by `start`, so no member goes missing silently.
                    pool.pool_error = Some(crate::fault::with_sources(&err));
                    break;
                }
            }
        }
        pool.pool = Some(template);
        pool
    }

    /// The supervisor's name.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(compartment::Supervisor::new("app").name(), "app");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.as_child.name
    }

    /// Sets the restart strategy.
    ///
    /// # Examples
    ///
    /// ```
    /// # use compartment::{Child, Context, Supervisor};
    /// # fn idle(_: (), cx: &Context) -> Result<(), compartment::Cancelled> {
    /// #     loop { cx.sleep(std::time::Duration::from_secs(60))?; }
    /// # }
    /// use compartment::Strategy;
    /// // A crash restarts every child: for children that depend on each other.
    /// let spec = Supervisor::new("app")
    ///     .strategy(Strategy::OneForAll)
    ///     .child(Child::new("db", idle, ()))
    ///     .child(Child::new("cache", idle, ()));
    /// spec.validate()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// At most `max_restarts` restarts within any window of `period`; one
    /// more makes the supervisor stop its children and fail. The window
    /// includes its boundary: a restart exactly `period` ago still counts.
    ///
    /// # Examples
    ///
    /// ```
    /// # use compartment::{Child, Context, Supervisor};
    /// # fn idle(_: (), cx: &Context) -> Result<(), compartment::Cancelled> {
    /// #     loop { cx.sleep(std::time::Duration::from_secs(60))?; }
    /// # }
    /// use std::time::Duration;
    /// // More than 5 restarts within 10 s: the supervisor gives up.
    /// let spec = Supervisor::new("app")
    ///     .intensity(5, Duration::from_secs(10))
    ///     .child(Child::new("idle", idle, ()));
    /// spec.validate()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn intensity(mut self, max_restarts: u32, period: Duration) -> Self {
        self.max_restarts = max_restarts;
        self.period = period;
        self
    }

    /// Sets the auto-shutdown policy for significant children.
    ///
    /// # Examples
    ///
    /// ```
    /// # use compartment::{Child, Context, Supervisor};
    /// # fn idle(_: (), cx: &Context) -> Result<(), compartment::Cancelled> {
    /// #     loop { cx.sleep(std::time::Duration::from_secs(60))?; }
    /// # }
    /// use compartment::AutoShutdown;
    /// let spec = Supervisor::new("app")
    ///     .auto_shutdown(AutoShutdown::AllSignificant)
    ///     .child(Child::new("job", idle, ()).restart(compartment::Restart::Transient).significant(true));
    /// spec.validate()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn auto_shutdown(mut self, policy: AutoShutdown) -> Self {
        self.auto_shutdown = policy;
        self
    }

    /// Adds a child; children start in the order they are added.
    ///
    /// # Examples
    ///
    /// ```
    /// # use compartment::{Child, Context, Supervisor};
    /// # fn idle(_: (), cx: &Context) -> Result<(), compartment::Cancelled> {
    /// #     loop { cx.sleep(std::time::Duration::from_secs(60))?; }
    /// # }
    /// let spec = Supervisor::new("app")
    ///     .child(Child::new("first", idle, ()))
    ///     .child(Child::new("second", idle, ())); // started after first, stopped before it
    /// spec.validate()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn child(mut self, child: Child) -> Self {
        self.children.push(Node::Worker(child));
        self
    }

    /// Adds a nested supervisor as a child.
    ///
    /// # Examples
    ///
    /// ```
    /// # use compartment::{Child, Context, Supervisor};
    /// # fn idle(_: (), cx: &Context) -> Result<(), compartment::Cancelled> {
    /// #     loop { cx.sleep(std::time::Duration::from_secs(60))?; }
    /// # }
    /// let system = Supervisor::new("app")
    ///     .supervisor(Supervisor::new("workers").child(Child::new("w", idle, ())))
    ///     .start()?;
    /// assert!(system.status().find("app/workers/w").is_some());
    /// system.shutdown();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn supervisor(mut self, supervisor: Supervisor) -> Self {
        self.children.push(Node::Supervisor(Box::new(supervisor)));
        self
    }

    /// When this supervisor, as a child, is restarted by its parent.
    ///
    /// # Examples
    ///
    /// ```
    /// # use compartment::{Child, Context, Supervisor};
    /// # fn idle(_: (), cx: &Context) -> Result<(), compartment::Cancelled> {
    /// #     loop { cx.sleep(std::time::Duration::from_secs(60))?; }
    /// # }
    /// use compartment::Restart;
    /// let spec = Supervisor::new("app")
    ///     .supervisor(Supervisor::new("batch").restart(Restart::Transient).child(Child::new("w", idle, ())));
    /// spec.validate()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn restart(mut self, restart: Restart) -> Self {
        self.as_child.restart = restart;
        self
    }

    /// How this supervisor ends, as its parent sees it, when it exceeds its
    /// restart intensity; see [`Escalation`].
    ///
    /// # Examples
    ///
    /// ```
    /// # use compartment::{Child, Context, Supervisor};
    /// # fn idle(_: (), cx: &Context) -> Result<(), compartment::Cancelled> {
    /// #     loop { cx.sleep(std::time::Duration::from_secs(60))?; }
    /// # }
    /// use compartment::supervisor::Escalation;
    /// // When this nested supervisor gives up, its parent sees a failure.
    /// let spec = Supervisor::new("app")
    ///     .supervisor(Supervisor::new("fragile").escalation(Escalation::Failure).child(Child::new("w", idle, ())));
    /// spec.validate()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn escalation(mut self, escalation: Escalation) -> Self {
        self.escalation = escalation;
        self
    }

    /// How long this supervisor, as a child, may take to stop.
    ///
    /// # Examples
    ///
    /// ```
    /// # use compartment::{Child, Context, Supervisor};
    /// # fn idle(_: (), cx: &Context) -> Result<(), compartment::Cancelled> {
    /// #     loop { cx.sleep(std::time::Duration::from_secs(60))?; }
    /// # }
    /// use std::time::Duration;
    /// let spec = Supervisor::new("app")
    ///     .supervisor(Supervisor::new("workers").shutdown(Duration::from_secs(30)).child(Child::new("w", idle, ())));
    /// spec.validate()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn shutdown(mut self, timeout: Duration) -> Self {
        self.as_child.shutdown = timeout;
        self
    }

    /// Marks this supervisor significant for its parent's auto-shutdown.
    ///
    /// # Examples
    ///
    /// ```
    /// # use compartment::{Child, Context, Supervisor};
    /// # fn idle(_: (), cx: &Context) -> Result<(), compartment::Cancelled> {
    /// #     loop { cx.sleep(std::time::Duration::from_secs(60))?; }
    /// # }
    /// use compartment::{AutoShutdown, Restart};
    /// let spec = Supervisor::new("app")
    ///     .auto_shutdown(AutoShutdown::AnySignificant)
    ///     .supervisor(Supervisor::new("job").restart(Restart::Transient).significant(true).child(Child::new("w", idle, ())));
    /// spec.validate()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn significant(mut self, significant: bool) -> Self {
        self.as_child.significant = significant;
        self
    }

    /// The clock for intensity windows, backoff, shutdown timeouts and
    /// [`Context::sleep`](crate::Context::sleep): a manual clock lets tests
    /// of these rules run without sleeping. Tree-wide; taken from the root.
    ///
    /// # Examples
    ///
    /// ```
    /// # use compartment::{Child, Context, Supervisor};
    /// # fn idle(_: (), cx: &Context) -> Result<(), compartment::Cancelled> {
    /// #     loop { cx.sleep(std::time::Duration::from_secs(60))?; }
    /// # }
    /// use compartment::caps::MonotonicClock;
    /// let (clock, _control) = MonotonicClock::manual(); // the test advances time
    /// let system = Supervisor::new("app").clock(clock).child(Child::new("idle", idle, ())).start()?;
    /// system.shutdown();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn clock(mut self, clock: MonotonicClock) -> Self {
        self.tree.clock = clock.time;
        self
    }

    /// How often the watchdog measures instances with [`Limits`](crate::Limits)
    /// (10 ms by default): an instance may overrun a limit by up to this
    /// much before it is cancelled. Tree-wide; taken from the root.
    ///
    /// # Examples
    ///
    /// ```
    /// # use compartment::{Child, Context, Supervisor};
    /// # fn idle(_: (), cx: &Context) -> Result<(), compartment::Cancelled> {
    /// #     loop { cx.sleep(std::time::Duration::from_secs(60))?; }
    /// # }
    /// use std::time::Duration;
    /// let spec = Supervisor::new("app")
    ///     .watchdog_period(Duration::from_millis(5))
    ///     .child(Child::new("idle", idle, ()));
    /// spec.validate()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn watchdog_period(mut self, period: Duration) -> Self {
        self.tree.watchdog_period = period;
        self
    }

    /// The source of backoff jitter (a seeded one makes delays
    /// reproducible). Tree-wide; taken from the root.
    ///
    /// # Examples
    ///
    /// ```
    /// # use compartment::{Child, Context, Supervisor};
    /// # fn idle(_: (), cx: &Context) -> Result<(), compartment::Cancelled> {
    /// #     loop { cx.sleep(std::time::Duration::from_secs(60))?; }
    /// # }
    /// use compartment::caps::Random;
    /// // Backoff jitter from a seeded source: the same delays on every run.
    /// let spec = Supervisor::new("app").random(Random::seeded(42)).child(Child::new("idle", idle, ()));
    /// spec.validate()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn random(mut self, random: Random) -> Self {
        self.tree.random = Some(random);
        self
    }

    /// Whether the application's panic hook also runs for panics on
    /// supervised threads (the default), or only the `Faulted` event
    /// reports them. Tree-wide; taken from the root.
    ///
    /// # Examples
    ///
    /// ```
    /// # use compartment::{Child, Context, Supervisor};
    /// # fn idle(_: (), cx: &Context) -> Result<(), compartment::Cancelled> {
    /// #     loop { cx.sleep(std::time::Duration::from_secs(60))?; }
    /// # }
    /// // Panics become Faulted events only; the application's hook does not print them.
    /// let system = Supervisor::new("app").forward_panics(false).child(Child::new("idle", idle, ())).start()?;
    /// system.shutdown();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn forward_panics(mut self, forward: bool) -> Self {
        self.tree.forward_panics = forward;
        self
    }

    /// Whether faults from panics carry a backtrace. Off by default:
    /// capturing one costs tens of microseconds per panic, whatever
    /// `RUST_BACKTRACE` says. Tree-wide; taken from the root.
    ///
    /// # Examples
    ///
    /// ```
    /// # use compartment::{Child, Context, Supervisor};
    /// # fn idle(_: (), cx: &Context) -> Result<(), compartment::Cancelled> {
    /// #     loop { cx.sleep(std::time::Duration::from_secs(60))?; }
    /// # }
    /// let system = Supervisor::new("app").capture_backtraces(true).child(Child::new("idle", idle, ())).start()?;
    /// system.shutdown();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn capture_backtraces(mut self, capture: bool) -> Self {
        self.tree.backtraces = capture;
        self
    }

    /// Where poison messages go. Without a sink they are reported by
    /// `DeadLettered` events and dropped. Tree-wide; taken from the root.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::channel::{self, Receiver};
    /// use compartment::{Child, Context, ContextError, Supervisor};
    ///
    /// fn fragile(jobs: Receiver<u32>, cx: &Context) -> Result<(), ContextError> {
    ///     loop {
    ///         if cx.recv(&jobs)? == 13 {
    ///             panic!("unlucky");
    ///         }
    ///     }
    /// }
    ///
    /// let (sink, letters) = channel::bounded(8)?;
    /// let (tx, jobs) = channel::bounded(8)?;
    /// let system = Supervisor::new("app")
    ///     .dead_letters(sink)
    ///     .child(Child::new("fragile", fragile, jobs).poison_threshold(2))
    ///     .start()?;
    /// tx.send(13)?;
    /// let letter = letters.recv()?; // set aside after two crashes on it
    /// assert_eq!(letter.description, "13");
    /// system.shutdown();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn dead_letters(mut self, sink: Sender<DeadLetter>) -> Self {
        self.tree.dead_letters = Some(sink);
        self
    }

    /// Subscribes to the tree's events, including its start, with a buffer
    /// of `capacity` events. Subscribe on the root.
    ///
    /// # Examples
    ///
    /// ```
    /// # use compartment::{Child, Context, Supervisor};
    /// # fn idle(_: (), cx: &Context) -> Result<(), compartment::Cancelled> {
    /// #     loop { cx.sleep(std::time::Duration::from_secs(60))?; }
    /// # }
    /// use compartment::event::EventKind;
    /// let spec = Supervisor::new("app").child(Child::new("idle", idle, ()));
    /// let events = spec.events(16); // subscribed before the first start
    /// let system = spec.start()?;
    /// let (started, _) = events.wait_for(std::time::Duration::from_secs(30), |e| matches!(e.kind, EventKind::Started));
    /// assert!(started.is_some());
    /// system.shutdown();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn events(&self, capacity: usize) -> Events {
        self.bus.subscribe(capacity)
    }

    /// Checks the whole tree for invalid names and combinations.
    ///
    /// # Examples
    ///
    /// ```
    /// # use compartment::{Child, Context, Supervisor};
    /// # fn idle(_: (), cx: &Context) -> Result<(), compartment::Cancelled> {
    /// #     loop { cx.sleep(std::time::Duration::from_secs(60))?; }
    /// # }
    /// use compartment::SpecError;
    /// let twice = Supervisor::new("app").child(Child::new("a", idle, ())).child(Child::new("a", idle, ()));
    /// assert!(matches!(twice.validate(), Err(SpecError::DuplicateName { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The first [`SpecError`] found.
    pub fn validate(&self) -> Result<(), SpecError> {
        validate_name(self.name())?;
        self.validate_at(self.name())
    }

    fn validate_at(&self, path: &str) -> Result<(), SpecError> {
        if self.period.is_zero() {
            return Err(SpecError::ZeroPeriod {
                supervisor: path.to_owned(),
            });
        }
        if self.pool.is_some() && self.auto_shutdown != AutoShutdown::Never {
            return Err(SpecError::AutoShutdownInPool {
                supervisor: path.to_owned(),
            });
        }
        if let Some(template) = &self.pool {
            validate_child(path, &template.settings, self.auto_shutdown)?;
        }
        let mut names = std::collections::HashSet::new();
        for node in &self.children {
            let settings = node.settings();
            if !names.insert(settings.name.as_str()) {
                return Err(SpecError::DuplicateName {
                    supervisor: path.to_owned(),
                    name: settings.name.clone(),
                });
            }
            validate_child(path, settings, self.auto_shutdown)?;
            if let Node::Supervisor(nested) = node {
                nested.validate_at(&format!("{path}/{}", settings.name))?;
            }
        }
        Ok(())
    }
}

pub(crate) fn validate_name(name: &str) -> Result<(), SpecError> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name.contains('/') {
        Some("it contains `/`, which separates path segments")
    } else if name.contains('#') {
        Some("it contains `#`, which separates the instance number")
    } else if name.chars().any(char::is_control) {
        Some("it contains a control character")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(SpecError::InvalidName {
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

pub(crate) fn validate_child(
    parent: &str,
    settings: &ChildSettings,
    auto_shutdown: AutoShutdown,
) -> Result<(), SpecError> {
    validate_name(&settings.name)?;
    let child = format!("{parent}/{}", settings.name);
    if settings.significant {
        if settings.restart == Restart::Permanent {
            return Err(SpecError::SignificantPermanent { child });
        }
        if auto_shutdown == AutoShutdown::Never {
            return Err(SpecError::SignificantWithoutAutoShutdown { child });
        }
    }
    if let Some(backoff) = &settings.backoff {
        backoff
            .validate()
            .map_err(|reason| SpecError::InvalidBackoff {
                child: child.clone(),
                reason,
            })?;
    }
    if settings.poison_threshold == 0 {
        return Err(SpecError::ZeroPoisonThreshold { child });
    }
    settings
        .limits
        .validate()
        .map_err(|reason| SpecError::InvalidLimits { child, reason })
}
