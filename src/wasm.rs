//! The wasm tier (feature `wasm`, Linux): a component that is a
//! WebAssembly module, under the same tree, whose only imports are its
//! grant.
//!
//! A module can touch nothing but its own linear memory and the functions
//! it imports; here those are WASI preview 1 and the crate's `compartment`
//! module, both answered from the grant's capabilities. That makes a
//! module the one boundary that holds against hostile code *inside* the
//! process: code that reads `/etc/passwd`, calls `abort`, or writes through
//! a wild pointer reaches nothing it was not handed.
//!
//! # Running a module
//!
//! Compile it once with [`WasmModule::new`] and specify the child with
//! [`Child::wasm`](crate::Child::wasm). Restart types, strategies,
//! intensity, backoff, events, `status()` and the capability map work as
//! for threads: each instance runs the module on an ordinary supervised
//! instance thread, from a fresh instantiation (from a pool of slots, so a
//! restart is an instantiation).
//!
//! ```
//! use compartment::caps::ReadOnlyDir;
//! use compartment::channel::{self, Receiver, Sender};
//! use compartment::wasm::WasmModule;
//! use compartment::{Child, Grant, Restart, Supervisor};
//!
//! // A plugin that answers every message with its length, in one byte.
//! let module = WasmModule::new(r#"
//!     (module
//!       (import "compartment" "lookup" (func $lookup (param i32 i32 i32) (result i32)))
//!       (import "compartment" "recv" (func $recv (param i32 i32 i32 i32) (result i32)))
//!       (import "compartment" "send" (func $send (param i32 i32 i32) (result i32)))
//!       (memory (export "memory") 1)
//!       (data (i32.const 0) "jobs") (data (i32.const 8) "lengths")
//!       (func (export "_start")
//!         (drop (call $lookup (i32.const 0) (i32.const 4) (i32.const 16)))
//!         (drop (call $lookup (i32.const 8) (i32.const 7) (i32.const 20)))
//!         (loop $next
//!           (if (i32.eqz (call $recv (i32.load (i32.const 16)) (i32.const 64) (i32.const 256) (i32.const 24)))
//!             (then
//!               (i32.store8 (i32.const 32) (i32.load (i32.const 24)))
//!               (drop (call $send (i32.load (i32.const 20)) (i32.const 32) (i32.const 1)))
//!               (br $next))))))
//! "#)?;
//!
//! #[derive(Grant)]
//! struct Plugin {
//!     jobs: Receiver<Vec<u8>>,
//!     lengths: Sender<Vec<u8>>,
//! }
//!
//! let (jobs, inbox) = channel::bounded(4)?;
//! let (out, lengths) = channel::bounded(4)?;
//! let system = Supervisor::new("host")
//!     .child(Child::wasm("plugin", module, Plugin { jobs: inbox, lengths: out }))
//!     .start()?;
//! jobs.send(b"hello".to_vec())?;
//! assert_eq!(lengths.recv()?, vec![5]);
//! system.shutdown();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The grant is the import table
//!
//! Each capability of the grant becomes a numbered handle, the way WASI
//! hands a program its descriptors: the standard streams are 0, 1 and 2
//! (input is empty; output and error are kept as the tail a fault shows),
//! the grant's directories follow as *preopens* named after their fields
//! (`/originals` for a field `originals`), then its files and channel
//! endpoints, which the module finds by field name (`compartment.lookup`).
//!
//! - A [`Dir`](crate::caps::Dir) and a
//!   [`ReadOnlyDir`](crate::caps::ReadOnlyDir) keep their rights: every
//!   `path_*` call goes through the capability, which resolves the path
//!   beneath the directory and refuses one that leads outside
//!   (`ENOTCAPABLE`); a read-only directory has no way to write, and what
//!   is opened beneath it is read-only. No host path is ever opened.
//! - Channel endpoints carry bytes (`Vec<u8>`): `Sender`, `Receiver`, and
//!   for request/reply `Sender<Request<Vec<u8>, Vec<u8>>>` and
//!   `Receiver<Request<..>>` (see the `compartment` imports below).
//! - [`MonotonicClock`](crate::caps::MonotonicClock),
//!   [`SystemClock`](crate::caps::SystemClock) and
//!   [`Random`](crate::caps::Random) answer `clock_time_get` and
//!   `random_get`; without them those calls are refused.
//! - [`Env`](crate::caps::Env) is the environment (`environ_get`); the
//!   arguments are the child's path.
//! - Plain data stays on the host's side; a [`Net`](crate::caps::Net) or a
//!   channel of another message type cannot be handed to a module: the
//!   child does not start, and its fault names the field.
//!
//! # The `compartment` imports
//!
//! What WASI has no word for: bounded channels with back-pressure,
//! request/reply, and cancellation. Each returns a WASI `errno`.
//!
//! | import | signature | what it does |
//! |---|---|---|
//! | `lookup` | `(name, name_len, out_handle) -> errno` | the handle of the grant's field `name` |
//! | `send` | `(handle, ptr, len) -> errno` | sends, waiting while the channel is full |
//! | `try_send` | `(handle, ptr, len) -> errno` | sends if there is room now (`EAGAIN`) |
//! | `recv` | `(handle, buf, buf_len, out_len) -> errno` | receives, waiting; the message is in flight until the next receive |
//! | `try_recv` | `(handle, buf, buf_len, out_len) -> errno` | receives if a message is queued (`EAGAIN`) |
//! | `call` | `(handle, req, req_len, buf, buf_len, out_len) -> errno` | sends a request and waits for its answer |
//! | `serve` | `(handle, buf, buf_len, out_len, out_reply) -> errno` | receives a request; its reply endpoint becomes a handle |
//! | `reply` | `(reply, ptr, len) -> errno` | answers a request, closing the reply handle |
//! | `cancelled` | `() -> i32` | 1 once the instance is cancelled |
//!
//! A receive into a buffer too small answers `E2BIG` with the length
//! needed, and keeps the message for the next receive on that handle. `EPIPE` means disconnected, `ENOTCAPABLE`
//! revoked, `ECANCELED` cancelled.
//!
//! # Faults and limits
//!
//! - A trap is a [`FaultKind::Trapped`](crate::FaultKind::Trapped) with the
//!   trap, the module's backtrace and its output's tail; `proc_exit(0)` is
//!   a return, another status a fault. The callers of requests the module
//!   held unanswered get [`CallError::Crashed`](crate::channel::CallError::Crashed)
//!   with the trap, as a thread's panic answers them.
//! - [`Limits::memory`](crate::Limits::memory) bounds the module's linear
//!   memory: a `memory.grow` past it fails, and a module that then traps
//!   is faulted with the memory budget.
//! - A CPU budget and a deadline are watched as a thread's: the watchdog
//!   cancels the instance, and cancellation interrupts a running module
//!   within a millisecond (epoch interruption), however it loops.
//! - At most a thousand module instances run at once in a process (the
//!   pool's slots); one more fails to start, saying so
//!   ([`WasmError::PoolFull`]).
//! - A module holds at most 1024 handles, its grant's among them: opening
//!   more answers `EMFILE`, so a module cannot take the process's
//!   descriptors from everyone else. Files open without waiting (a fifo
//!   with no writer reads as empty rather than wedging the instance's
//!   thread), and what the host reads for a call is bounded before it is
//!   read: paths of 4096 bytes, 1024 buffers per read or write, 4096
//!   subscriptions per `poll_oneoff`.
//! - Restarts are in place by default
//!   ([`RestartMode::InPlace`](crate::RestartMode::InPlace)): a module
//!   reaches no state of its thread, so nothing is left there for the
//!   next instance.

mod channels;
mod engine;
mod errno;
mod host;
mod memory;
mod table;
mod wasi;
mod worker;

use std::fmt;
use std::sync::Arc;

pub(crate) use worker::WasmWorker;

/// Why a module could not be compiled, or an instance not started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WasmError {
    /// The runtime could not be set up (its pool's address space could not
    /// be reserved, say).
    #[error("the wasm engine could not start: {reason}")]
    Engine {
        /// What the runtime said.
        reason: String,
    },
    /// The bytes are not a valid module.
    #[error("the module does not compile: {reason}")]
    Compile {
        /// What the compiler said.
        reason: String,
    },
    /// The module imports something the host does not provide.
    #[error("the module's imports cannot be met: {reason}")]
    Link {
        /// Which import, in the runtime's words.
        reason: String,
    },
    /// The module has no export to run with that name and type.
    #[error("the module has no function `{export}` taking and returning nothing: {reason}")]
    NoEntry {
        /// The export looked for.
        export: String,
        /// What the runtime said.
        reason: String,
    },
    /// A capability in the grant cannot be handed to a module.
    #[error(
        "the grant's `{field}` ({capability}) cannot be handed to a wasm module: modules hold directories, files, byte channels (Vec<u8>), clocks, randomness and an environment"
    )]
    NotImportable {
        /// The field.
        field: String,
        /// What it is.
        capability: String,
    },
    /// A capability could not be re-issued into the module's handles.
    #[error("the grant's `{field}` could not be re-issued for the module: {source}")]
    Reissue {
        /// The field.
        field: String,
        /// Why.
        #[source]
        source: crate::grant::ReissueError,
    },
    /// Every slot of the process's pool of instances is taken: as many
    /// modules as it has slots are running.
    #[error(
        "the module could not be instantiated: all {slots} instance slots of the process are in use"
    )]
    PoolFull {
        /// How many modules may run at once.
        slots: u32,
    },
    /// The module could not be instantiated (its initial memory is over
    /// its limit, its start function trapped).
    #[error("the module could not be instantiated: {reason}")]
    Instantiate {
        /// What the runtime said.
        reason: String,
    },
    /// The thread that interrupts running modules could not start.
    #[error("the wasm epoch ticker could not start: {reason}")]
    Ticker {
        /// Why.
        reason: String,
    },
}

/// A compiled WebAssembly module, ready to run as a child
/// ([`Child::wasm`](crate::Child::wasm)): compiled once, instantiated for
/// every instance. Cloning it shares the compiled code.
///
/// # Examples
///
/// ```
/// use compartment::wasm::WasmModule;
///
/// let module = WasmModule::new(r#"(module (func (export "_start")))"#)?;
/// assert_eq!(module.entry(), "_start");
/// let run = module.with_entry("run");
/// assert!(run.is_err(), "no such export");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct WasmModule {
    pre: Arc<wasmtime::InstancePre<host::Host>>,
    entry: Arc<str>,
}

impl fmt::Debug for WasmModule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WasmModule")
            .field("entry", &self.entry)
            .finish_non_exhaustive()
    }
}

/// The export run when none is named: a WASI command's.
const COMMAND_ENTRY: &str = "_start";

impl WasmModule {
    /// Compiles `module`, in WebAssembly's binary or text format (the
    /// bytes of a `.wasm` file or the source of a `.wat` one), and checks
    /// that the host provides its imports. It runs its `_start` export (a
    /// WASI command's entry); see [`with_entry`](Self::with_entry).
    ///
    /// # Errors
    ///
    /// [`WasmError::Compile`], [`WasmError::Link`] for an import neither
    /// WASI preview 1 nor `compartment` provides, [`WasmError::Engine`].
    pub fn new(module: impl AsRef<[u8]>) -> Result<Self, WasmError> {
        let engine = engine::engine()?;
        let module =
            wasmtime::Module::new(engine, module.as_ref()).map_err(|err| WasmError::Compile {
                reason: format!("{err:#}"),
            })?;
        let pre = engine::linker()?
            .instantiate_pre(&module)
            .map_err(|err| WasmError::Link {
                reason: format!("{err:#}"),
            })?;
        let module = Self {
            pre: Arc::new(pre),
            entry: Arc::from(COMMAND_ENTRY),
        };
        // A reactor has no `_start`: its entry is named with `with_entry`.
        Ok(module)
    }

    /// The same module, running its export `export` (a function that
    /// takes and returns nothing) instead.
    ///
    /// # Errors
    ///
    /// [`WasmError::NoEntry`] when the module exports no such function.
    pub fn with_entry(&self, export: &str) -> Result<Self, WasmError> {
        let module = self.pre.module();
        let fits = module.get_export(export).is_some_and(|ty| {
            ty.func()
                .is_some_and(|func| func.params().len() == 0 && func.results().len() == 0)
        });
        if !fits {
            return Err(WasmError::NoEntry {
                export: export.to_owned(),
                reason: "not exported as a function of no parameters and no results".to_owned(),
            });
        }
        Ok(Self {
            pre: Arc::clone(&self.pre),
            entry: Arc::from(export),
        })
    }

    /// The export each instance runs.
    pub fn entry(&self) -> &str {
        &self.entry
    }

    pub(crate) fn pre(&self) -> &wasmtime::InstancePre<host::Host> {
        &self.pre
    }
}
