//! `System`: the handle on a running supervision tree.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel as cb;

use super::capability_map::CapabilityMap;
use super::child_path::ChildPath;
use super::control::{Control, Outcome};
use super::error::{ControlError, StartError};
use super::launch::{Launched, launch};
use super::spec::{Node, Supervisor};
use super::status::{ChildState, ChildStatus, NodeKind, Status, StatusBoard};
use super::tree::Tree;
use crate::caps::Random;
use crate::component::Child;
use crate::event::Events;
use crate::fault::{self, Fault};
use crate::limits::watchdog::Watchdog;
use crate::revoke::Revoker;

/// How a tree ended.
///
/// # Examples
///
/// ```
/// use compartment::{Supervisor, SystemExit};
/// let system = Supervisor::new("app").start()?;
/// assert_eq!(system.shutdown(), SystemExit::Shutdown);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SystemExit {
    /// [`System::shutdown`] stopped it.
    Shutdown,
    /// The root shut itself down because significant children ended.
    AutoShutdown,
    /// The root exceeded its restart intensity and gave up.
    Failed(Fault),
}

/// A running supervision tree.
///
/// Dropping it shuts the tree down (and waits for that), like
/// [`shutdown`](Self::shutdown).
///
/// # Examples
///
/// ```
/// # use compartment::{Child, Context, Supervisor};
/// # fn idle(_: (), cx: &Context) -> Result<(), compartment::Cancelled> {
/// #     loop { cx.sleep(std::time::Duration::from_secs(60))?; }
/// # }
/// use compartment::SystemExit;
/// let system = Supervisor::new("app").child(Child::new("idle", idle, ())).start()?;
/// println!("{}", system.capability_map().text());
/// assert_eq!(system.status().nodes().len(), 2); // app and app/idle
/// assert_eq!(system.shutdown(), SystemExit::Shutdown);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct System {
    tree: Arc<Tree>,
    path: String,
    strategy: super::spec::Strategy,
    pool: bool,
    control: cb::Sender<Control>,
    board: Arc<StatusBoard>,
    join: Option<JoinHandle<Option<Supervisor>>>,
    done: cb::Receiver<Outcome>,
    exit: Option<SystemExit>,
}

impl Supervisor {
    /// Validates the tree, then starts it: every supervisor on its own
    /// thread, every child in order, synchronously. If a child fails to
    /// start, the ones already started are stopped in reverse order and the
    /// error says which failed.
    ///
    /// # Examples
    ///
    /// ```
    /// # use compartment::{Child, Context, Supervisor};
    /// # fn idle(_: (), cx: &Context) -> Result<(), compartment::Cancelled> {
    /// #     loop { cx.sleep(std::time::Duration::from_secs(60))?; }
    /// # }
    /// let system = Supervisor::new("app").child(Child::new("idle", idle, ())).start()?;
    /// assert!(system.status().find("app/idle").is_some());
    /// system.shutdown();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`StartError::Invalid`] for an invalid specification,
    /// [`StartError::PanicAbort`] when panics cannot be caught,
    /// [`StartError::ChildFailed`], [`StartError::Spawn`].
    pub fn start(self) -> Result<System, StartError> {
        if cfg!(panic = "abort") {
            return Err(StartError::PanicAbort);
        }
        self.validate()?;
        if let Some(message) = &self.pool_error {
            return Err(StartError::ChildFailed {
                fault: Box::new(Fault {
                    path: self.name().to_owned(),
                    instance: 0,
                    kind: fault::FaultKind::StartFailed {
                        message: message.clone(),
                    },
                    in_flight: None,
                }),
            });
        }
        fault::install_panic_hook();
        #[allow(
            clippy::disallowed_methods,
            reason = "the supervisor is the granting side; its default jitter source is the OS's"
        )]
        let random = self
            .tree
            .random
            .clone()
            .unwrap_or_else(|| Random::os(cap_std::ambient_authority()));
        let tree = Arc::new(Tree {
            bus: Arc::clone(&self.bus),
            clock: self.tree.clock.clone(),
            random,
            forward_panics: self.tree.forward_panics,
            backtraces: self.tree.backtraces,
            dead_letters: self.tree.dead_letters.clone(),
            supervisors: Default::default(),
            leaked: Default::default(),
            watchdog: Watchdog::new(self.tree.watchdog_period, self.tree.clock.clone()),
            revoker: Revoker::new(),
        });
        let path = self.name().to_owned();
        let strategy = self.strategy;
        let pool = self.pool.is_some();
        let (done_tx, done) = cb::bounded(1);
        let Launched {
            started,
            join,
            control,
            board,
        } = launch(&tree, self, &path, 1, None, Some(done_tx))?;
        match started.recv() {
            Ok(Ok(())) => {
                tree.publish(&path, Some(1), crate::event::EventKind::Started);
                Ok(System {
                    tree,
                    path,
                    strategy,
                    pool,
                    control,
                    board,
                    join: Some(join),
                    done,
                    exit: None,
                })
            }
            Ok(Err(err)) => {
                let _ = join.join();
                Err(err)
            }
            Err(_) => {
                let _ = join.join();
                Err(StartError::Spawn {
                    path,
                    source: std::io::Error::other("the supervisor thread ended before starting"),
                })
            }
        }
    }
}

impl System {
    /// Subscribes to the tree's events from now on, with a buffer of
    /// `capacity` events.
    ///
    /// # Examples
    ///
    /// ```
    /// # use compartment::{Child, Context, Supervisor};
    /// # fn idle(_: (), cx: &Context) -> Result<(), compartment::Cancelled> {
    /// #     loop { cx.sleep(std::time::Duration::from_secs(60))?; }
    /// # }
    /// use compartment::event::EventKind;
    /// let system = Supervisor::new("app").start()?;
    /// let events = system.events(16);
    /// system.add_child("app", Child::new("idle", idle, ()))?;
    /// let (started, _) = events.wait_for(std::time::Duration::from_secs(30), |e| matches!(e.kind, EventKind::Started));
    /// assert!(started.is_some());
    /// system.shutdown();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn events(&self, capacity: usize) -> Events {
        self.tree.bus.subscribe(capacity)
    }

    /// A snapshot of the live tree.
    ///
    /// # Examples
    ///
    /// ```
    /// # use compartment::{Child, Context, Supervisor};
    /// # fn idle(_: (), cx: &Context) -> Result<(), compartment::Cancelled> {
    /// #     loop { cx.sleep(std::time::Duration::from_secs(60))?; }
    /// # }
    /// use compartment::supervisor::ChildState;
    /// let system = Supervisor::new("app").child(Child::new("idle", idle, ())).start()?;
    /// let idle = system.status().find("app/idle").cloned().expect("running");
    /// assert_eq!(idle.state, ChildState::Running);
    /// assert_eq!(idle.restarts, 0);
    /// system.shutdown();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn status(&self) -> Status {
        let running = self.exit.is_none() && self.join.as_ref().is_some_and(|j| !j.is_finished());
        Status {
            root: ChildStatus {
                path: self.path.clone(),
                kind: NodeKind::Supervisor {
                    strategy: self.strategy,
                    pool: self.pool,
                },
                state: if running {
                    ChildState::Running
                } else {
                    ChildState::Stopped
                },
                instance: 1,
                restarts: 0,
                last_fault: match &self.exit {
                    Some(SystemExit::Failed(fault)) => Some(fault.clone()),
                    _ => None,
                },
                leaked_threads: 0,
                threads: 0,
                lockdown: None,
                usage: None,
                process: None,
                capabilities: Vec::new(),
                children: self.board.snapshot(),
            },
            leaked_threads: self.tree.leaked(),
        }
    }

    /// The tree and each component's capabilities, for rendering as
    /// Mermaid, Graphviz DOT or text.
    ///
    /// # Examples
    ///
    /// ```
    /// # use compartment::{Child, Context, Supervisor};
    /// # fn idle(_: (), cx: &Context) -> Result<(), compartment::Cancelled> {
    /// #     loop { cx.sleep(std::time::Duration::from_secs(60))?; }
    /// # }
    /// let system = Supervisor::new("app").child(Child::new("idle", idle, ())).start()?;
    /// let map = system.capability_map();
    /// assert!(map.text().contains("idle"));
    /// assert!(map.mermaid().starts_with("flowchart"));
    /// system.shutdown();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn capability_map(&self) -> CapabilityMap {
        CapabilityMap::from_status(&self.status())
    }

    /// The child or supervisor at `path` (such as `app/workers/resizer`),
    /// checked against the live tree: a value to match its events with
    /// and to pass where a path is taken. See [`ChildPath`].
    ///
    /// # Examples
    ///
    /// ```
    /// # use compartment::{Child, Context, Supervisor};
    /// # fn idle(_: (), cx: &Context) -> Result<(), compartment::Cancelled> {
    /// #     loop { cx.sleep(std::time::Duration::from_secs(60))?; }
    /// # }
    /// let system = Supervisor::new("app").child(Child::new("idle", idle, ())).start()?;
    /// let idle = system.child("app/idle")?;
    /// assert_eq!(idle.name(), "idle");
    /// assert!(system.child("app/idel").is_err()); // a typo fails at once, not in a timeout
    /// system.shutdown();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ControlError::NotFound`] when nothing is running at `path`.
    pub fn child(&self, path: &str) -> Result<ChildPath, ControlError> {
        match self.status().find(path) {
            Some(_) => Ok(ChildPath::new(path)),
            None => Err(ControlError::NotFound {
                path: path.to_owned(),
            }),
        }
    }

    /// Threads detached because their instance ignored shutdown.
    ///
    /// # Examples
    ///
    /// ```
    /// # use compartment::{Child, Context, Supervisor};
    /// # fn idle(_: (), cx: &Context) -> Result<(), compartment::Cancelled> {
    /// #     loop { cx.sleep(std::time::Duration::from_secs(60))?; }
    /// # }
    /// let system = Supervisor::new("app").child(Child::new("idle", idle, ())).start()?;
    /// assert_eq!(system.leaked_threads(), 0); // every instance stopped when asked
    /// system.shutdown();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn leaked_threads(&self) -> usize {
        self.tree.leaked()
    }

    fn request<T>(
        &self,
        supervisor: &str,
        make: impl FnOnce(cb::Sender<Result<T, ControlError>>) -> Control,
    ) -> Result<T, ControlError> {
        let handle = self
            .tree
            .supervisors
            .lock()
            .get(supervisor)
            .cloned()
            .ok_or_else(|| self.not_found(supervisor))?;
        let (reply, answer) = cb::bounded(1);
        let stopped = || ControlError::Stopped {
            path: supervisor.to_owned(),
        };
        handle.control.send(make(reply)).map_err(|_| stopped())?;
        answer.recv().map_err(|_| stopped())?
    }

    fn not_found(&self, path: &str) -> ControlError {
        match self.status().find(path) {
            Some(node) if !matches!(node.kind, NodeKind::Supervisor { .. }) => {
                ControlError::NotASupervisor {
                    path: path.to_owned(),
                }
            }
            _ => ControlError::NotFound {
                path: path.to_owned(),
            },
        }
    }

    /// Starts `child` under the supervisor at `supervisor` (a path such as
    /// `app/workers`), after its existing children.
    ///
    /// # Examples
    ///
    /// ```
    /// # use compartment::{Child, Context, Supervisor};
    /// # fn idle(_: (), cx: &Context) -> Result<(), compartment::Cancelled> {
    /// #     loop { cx.sleep(std::time::Duration::from_secs(60))?; }
    /// # }
    /// let system = Supervisor::new("app").start()?;
    /// system.add_child("app", Child::new("late", idle, ()))?;
    /// assert!(system.status().find("app/late").is_some());
    /// assert!(system.add_child("nowhere", Child::new("x", idle, ())).is_err());
    /// system.shutdown();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ControlError::NotFound`], [`ControlError::NotASupervisor`],
    /// [`ControlError::Start`] for an invalid or duplicate child or one that
    /// fails to start.
    pub fn add_child(&self, supervisor: &str, child: Child) -> Result<(), ControlError> {
        self.request(supervisor, |reply| Control::Add {
            node: Box::new(Node::Worker(child)),
            reply,
        })
    }

    /// Starts a nested supervisor under the supervisor at `parent`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use compartment::{Child, Context, Supervisor};
    /// # fn idle(_: (), cx: &Context) -> Result<(), compartment::Cancelled> {
    /// #     loop { cx.sleep(std::time::Duration::from_secs(60))?; }
    /// # }
    /// let system = Supervisor::new("app").start()?;
    /// system.add_supervisor("app", Supervisor::new("workers").child(Child::new("w", idle, ())))?;
    /// assert!(system.status().find("app/workers/w").is_some());
    /// system.shutdown();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`add_child`](Self::add_child).
    pub fn add_supervisor(&self, parent: &str, supervisor: Supervisor) -> Result<(), ControlError> {
        self.request(parent, |reply| Control::Add {
            node: Box::new(Node::Supervisor(Box::new(supervisor))),
            reply,
        })
    }

    /// Stops the child at `path` (within its shutdown timeout) and removes it
    /// from its supervisor.
    ///
    /// # Examples
    ///
    /// ```
    /// # use compartment::{Child, Context, Supervisor};
    /// # fn idle(_: (), cx: &Context) -> Result<(), compartment::Cancelled> {
    /// #     loop { cx.sleep(std::time::Duration::from_secs(60))?; }
    /// # }
    /// let system = Supervisor::new("app").child(Child::new("idle", idle, ())).start()?;
    /// system.remove_child("app/idle")?;
    /// assert!(system.status().find("app/idle").is_none());
    /// system.shutdown();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ControlError::NotFound`] when no child has that path.
    pub fn remove_child(&self, path: impl AsRef<str>) -> Result<(), ControlError> {
        let path = path.as_ref();
        let (parent, name) = path
            .rsplit_once('/')
            .ok_or_else(|| ControlError::NotFound {
                path: path.to_owned(),
            })?;
        let name = name.to_owned();
        self.request(parent, |reply| Control::Remove { name, reply })
    }

    /// Starts one more member of the pool at `pool`; returns its path.
    ///
    /// # Examples
    ///
    /// ```
    /// # use compartment::{Child, Context, Supervisor};
    /// # fn idle(_: (), cx: &Context) -> Result<(), compartment::Cancelled> {
    /// #     loop { cx.sleep(std::time::Duration::from_secs(60))?; }
    /// # }
    /// let system = Supervisor::new("app")
    ///     .supervisor(Supervisor::pool("workers", Child::new("w", idle, ()), 2))
    ///     .start()?;
    /// let third = system.add_pool_member("app/workers")?;
    /// assert!(system.status().find(&third).is_some());
    /// system.shutdown();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ControlError::NotAPool`], [`ControlError::NotFound`],
    /// [`ControlError::Start`].
    pub fn add_pool_member(&self, pool: &str) -> Result<String, ControlError> {
        self.request(pool, |reply| Control::AddPoolMember { reply })
    }

    /// Waits up to `timeout` for the tree to end on its own (the root gave up
    /// or shut itself down); `None` if it is still running.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use compartment::{AutoShutdown, Child, Context, Restart, Supervisor, SystemExit};
    ///
    /// fn once(_: (), _: &Context) -> Result<(), std::io::Error> {
    ///     Ok(())
    /// }
    ///
    /// let mut system = Supervisor::new("app")
    ///     .auto_shutdown(AutoShutdown::AnySignificant)
    ///     .child(Child::new("once", once, ()).restart(Restart::Transient).significant(true))
    ///     .start()?;
    /// // The significant child ends, and so does the tree.
    /// assert_eq!(system.wait_timeout(Duration::from_secs(30)), Some(SystemExit::AutoShutdown));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<SystemExit> {
        if self.exit.is_none()
            && let Ok(outcome) = self.done.recv_timeout(timeout)
        {
            self.finish(outcome);
        }
        self.exit.clone()
    }

    /// Stops the whole tree, children before parents and each supervisor's
    /// children in reverse start order, and waits for it. Instances that
    /// ignore their shutdown timeout are revoked and detached, and the rest
    /// still shut down.
    ///
    /// # Examples
    ///
    /// ```
    /// # use compartment::{Child, Context, Supervisor};
    /// # fn idle(_: (), cx: &Context) -> Result<(), compartment::Cancelled> {
    /// #     loop { cx.sleep(std::time::Duration::from_secs(60))?; }
    /// # }
    /// use compartment::SystemExit;
    /// let system = Supervisor::new("app").child(Child::new("idle", idle, ())).start()?;
    /// assert_eq!(system.shutdown(), SystemExit::Shutdown);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shutdown(mut self) -> SystemExit {
        self.stop()
    }

    fn stop(&mut self) -> SystemExit {
        if let Some(exit) = &self.exit {
            return exit.clone();
        }
        let _ = self.control.send(Control::Shutdown);
        // The root always reports, from a guard if its thread dies; a
        // closed channel means it reported nothing and is gone.
        let outcome = self.done.recv().unwrap_or_else(|_| {
            Outcome::Failed(Fault::new(
                &self.path,
                1,
                fault::FaultKind::Panic {
                    message: "the root supervisor's thread ended without reporting".to_owned(),
                    location: None,
                    backtrace: None,
                },
            ))
        });
        self.finish(outcome);
        self.exit.clone().unwrap_or(SystemExit::Shutdown)
    }

    fn finish(&mut self, outcome: Outcome) {
        // The root has ended (or its thread died): nothing of this tree may
        // keep live capabilities, whatever still runs.
        self.tree.revoker.revoke();
        if let Some(join) = self.join.take() {
            let _ = join.join();
        }
        self.exit = Some(match outcome {
            Outcome::Shutdown => SystemExit::Shutdown,
            Outcome::Normal => SystemExit::AutoShutdown,
            Outcome::Failed(fault) | Outcome::GaveUp(fault) => SystemExit::Failed(fault),
        });
    }
}

impl Drop for System {
    fn drop(&mut self) {
        self.stop();
    }
}
