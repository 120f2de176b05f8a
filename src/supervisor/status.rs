//! `Status`: a snapshot of the live tree.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::spec::Strategy;
use crate::caps::Capability;
use crate::fault::Fault;
use crate::limits::{Meter, Usage};
use crate::lockdown::Enforcement;
use crate::threads::ThreadGroup;

/// What a child is doing now.
///
/// | state | meaning | next |
/// |---|---|---|
/// | `Running` | an instance is running | `Restarting` after a fault, `Stopped` |
/// | `Restarting` | its supervisor is stopping the rest of the restart set | `Running`, `BackingOff` |
/// | `BackingOff` | waiting for its backoff delay | `Running` |
/// | `Stopped` | no instance, none scheduled | `Running` if its supervisor restarts it |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChildState {
    /// An instance is running.
    Running,
    /// A restart is under way.
    Restarting,
    /// A restart waits for its backoff delay.
    BackingOff,
    /// Not running.
    Stopped,
}

impl fmt::Display for ChildState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChildState::Running => "running",
            ChildState::Restarting => "restarting",
            ChildState::BackingOff => "backing off",
            ChildState::Stopped => "stopped",
        })
    }
}

/// Whether a tree node is a component or a supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeKind {
    /// A component on a thread.
    Worker,
    /// A component in a child process (`Child::process`, feature
    /// `process`).
    Process,
    /// A component that is a WebAssembly module (`Child::wasm`, feature
    /// `wasm`), run on a thread.
    Wasm,
    /// A supervisor, with its strategy.
    Supervisor {
        /// Its restart strategy.
        strategy: Strategy,
        /// Whether it is a pool.
        pool: bool,
    },
}

/// A process child's running process: what it uses, and how it is
/// confined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessUsage {
    /// The process's id (the child's init, which the supervisor waits on).
    pub pid: u32,
    /// Resident memory of the component's process, in bytes.
    pub resident: Option<u64>,
    /// CPU time the component's process has used.
    pub cpu: Option<Duration>,
    /// The parts of its confinement in force, once the child has reported
    /// them (namespaces, empty root, descriptors, limits, Landlock and
    /// seccomp).
    pub enforced: Vec<String>,
    /// The parts the host could not give: empty under `Require` (such a
    /// child does not run); under `BestEffort`, what it runs without.
    pub missing: Vec<String>,
}

/// One node of the live tree.
#[derive(Debug, Clone, PartialEq)]
pub struct ChildStatus {
    /// Its path, such as `app/workers/resizer`.
    pub path: String,
    /// Component or supervisor.
    pub kind: NodeKind,
    /// What it is doing.
    pub state: ChildState,
    /// The current (or last) instance number; 0 before the first start.
    pub instance: u64,
    /// How many times it was restarted.
    pub restarts: u64,
    /// Its most recent fault.
    pub last_fault: Option<Fault>,
    /// Instances that ignored shutdown and whose threads were detached.
    pub leaked_threads: usize,
    /// Threads the current instance started through
    /// [`Context::spawn`](crate::Context::spawn) that are running now.
    pub threads: usize,
    /// What the kernel enforces for the current instance, if it is locked
    /// down.
    pub lockdown: Option<Enforcement>,
    /// The current instance's resource use, if it has limits: CPU used,
    /// memory held, budget left.
    pub usage: Option<Usage>,
    /// A process child's running process: its id and what it uses, read
    /// from `/proc` when the status is taken.
    pub process: Option<ProcessUsage>,
    /// The capabilities its grant holds (components only), by field.
    pub capabilities: Vec<(String, Capability)>,
    /// Its children (supervisors only), in start order.
    pub children: Vec<ChildStatus>,
}

impl ChildStatus {
    /// The last segment of the path.
    pub fn name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }

    fn find(&self, path: &str) -> Option<&ChildStatus> {
        if self.path == path {
            return Some(self);
        }
        self.children.iter().find_map(|child| child.find(path))
    }

    fn walk<'a>(&'a self, out: &mut Vec<&'a ChildStatus>) {
        out.push(self);
        for child in &self.children {
            child.walk(out);
        }
    }
}

/// A snapshot of a running tree.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    /// The root supervisor and, below it, everything it supervises.
    pub root: ChildStatus,
    /// Detached threads in the whole tree, including those of children
    /// since removed.
    pub leaked_threads: usize,
}

impl Status {
    /// The node at `path`.
    pub fn find(&self, path: &str) -> Option<&ChildStatus> {
        self.root.find(path)
    }

    /// Every node, depth first in start order, the root first.
    pub fn nodes(&self) -> Vec<&ChildStatus> {
        let mut out = Vec::new();
        self.root.walk(&mut out);
        out
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn line(
            f: &mut fmt::Formatter<'_>,
            node: &ChildStatus,
            prefix: &str,
            last: bool,
            root: bool,
        ) -> fmt::Result {
            let (branch, next) = match (root, last) {
                (true, _) => ("", String::new()),
                (false, true) => ("└── ", format!("{prefix}    ")),
                (false, false) => ("├── ", format!("{prefix}│   ")),
            };
            write!(f, "{prefix}{branch}{}", node.name())?;
            if let NodeKind::Supervisor { strategy, pool } = node.kind {
                write!(f, " ({}{strategy})", if pool { "pool, " } else { "" })?;
            }
            write!(
                f,
                " {} #{} restarts={}",
                node.state, node.instance, node.restarts
            )?;
            if node.leaked_threads > 0 {
                write!(f, " leaked={}", node.leaked_threads)?;
            }
            if let Some(usage) = &node.usage {
                write!(f, " cpu={:?}", usage.cpu)?;
                if let Some(held) = usage.memory {
                    write!(f, " memory={held}B")?;
                }
            }
            if let Some(process) = &node.process {
                write!(f, " pid={}", process.pid)?;
                if let Some(resident) = process.resident {
                    write!(f, " rss={resident}B")?;
                }
                if let Some(cpu) = process.cpu {
                    write!(f, " cpu={cpu:?}")?;
                }
                if !process.missing.is_empty() {
                    write!(f, " [confined without: {}]", process.missing.join("; "))?;
                }
            }
            if let Some(enforcement) = &node.lockdown {
                write!(f, " [locked down: {enforcement}]")?;
            }
            if let Some(fault) = &node.last_fault {
                write!(f, " last fault: {}", fault.message())?;
            }
            writeln!(f)?;
            for (i, child) in node.children.iter().enumerate() {
                line(f, child, &next, i + 1 == node.children.len(), false)?;
            }
            Ok(())
        }
        line(f, &self.root, "", true, true)?;
        if self.leaked_threads > 0 {
            writeln!(f, "leaked threads: {}", self.leaked_threads)?;
        }
        Ok(())
    }
}

/// A supervisor's published view of its children, read by `status()`.
#[derive(Debug, Default)]
pub(crate) struct StatusBoard {
    /// One entry per child slot, in start order; `None` for children taken
    /// out of the tree.
    pub(crate) entries: Mutex<Vec<Option<BoardEntry>>>,
}

/// One child on a board: what its status is made of, sharing what the
/// slot holds (a board has an entry for every child, and a pool has
/// thousands); the status itself is made when a snapshot is taken.
#[derive(Debug, Clone)]
pub(crate) struct BoardEntry {
    pub(crate) path: Arc<str>,
    pub(crate) kind: NodeKind,
    pub(crate) state: ChildState,
    pub(crate) instance: u64,
    pub(crate) restarts: u64,
    pub(crate) last_fault: Option<Arc<Fault>>,
    pub(crate) leaked: usize,
    pub(crate) lockdown: Option<Enforcement>,
    pub(crate) capabilities: Arc<[(String, Capability)]>,
    /// A supervisor's own board, for its children.
    pub(crate) nested: Option<Arc<StatusBoard>>,
    /// The running instance's meter: usage is read live at snapshot time.
    pub(crate) meter: Option<Arc<Meter>>,
    /// The running instance's own threads, counted at snapshot time.
    pub(crate) threads: Option<Arc<ThreadGroup>>,
}

impl StatusBoard {
    /// The children on this board, recursively.
    pub(crate) fn snapshot(&self) -> Vec<ChildStatus> {
        let entries = self.entries.lock().clone();
        entries
            .into_iter()
            .flatten()
            .map(|entry| {
                #[cfg(all(feature = "process", target_os = "linux"))]
                let process = entry
                    .threads
                    .as_ref()
                    .and_then(|threads| threads.process())
                    .map(|running| crate::process::usage(&running));
                #[cfg(not(all(feature = "process", target_os = "linux")))]
                let process = None;
                ChildStatus {
                    path: entry.path.to_string(),
                    kind: entry.kind,
                    state: entry.state,
                    instance: entry.instance,
                    restarts: entry.restarts,
                    last_fault: entry.last_fault.as_deref().cloned(),
                    leaked_threads: entry.leaked,
                    threads: entry.threads.map_or(0, |threads| threads.live()),
                    lockdown: entry.lockdown,
                    usage: entry.meter.map(|meter| meter.usage()),
                    process,
                    capabilities: entry.capabilities.to_vec(),
                    children: entry
                        .nested
                        .map(|nested| nested.snapshot())
                        .unwrap_or_default(),
                }
            })
            .collect()
    }
}
