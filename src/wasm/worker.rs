//! A wasm child's specification and instances: the module, the grant it is
//! handed, and how one run of the module ends as an instance's result.

use std::sync::Arc;

use parking_lot::Mutex;
use wasmtime::{Store, Trap, UpdateDeadline, WasmBacktrace};

use super::engine::{Running, engine};
use super::host::{Exit, Host, Limiter};
use super::table::Table;
use super::{WasmError, WasmModule};
use crate::capability::Capability;
use crate::channel::HandlerCrash;
use crate::component::{BoxError, Instance, Reissue, WorkerFactory, capabilities_of};
use crate::context::Context;
use crate::fault::{Decided, FaultKind};
use crate::grant::{Grant, Inventory, ReissueError};
use crate::limits::{Budget, Limits};
use crate::lockdown::{Lockdown, LockdownError, Policy};
use crate::revoke::Revoker;

/// The module and the original grant, shared by the specification and an
/// instance that starts its successor itself.
struct Shared<G> {
    module: WasmModule,
    grant: Mutex<G>,
    /// The most bytes the module's memory may grow to.
    memory: Mutex<Option<u64>>,
}

/// The factory of a wasm child.
pub(crate) struct WasmWorker<G> {
    shared: Arc<Shared<G>>,
}

impl<G: Grant> WasmWorker<G> {
    pub(crate) fn new(module: WasmModule, grant: G) -> Self {
        Self {
            shared: Arc::new(Shared {
                module,
                grant: Mutex::new(grant),
                memory: Mutex::new(None),
            }),
        }
    }
}

impl<G: Grant> Reissue for Shared<G> {
    fn instance(&self, revokers: &[&Revoker]) -> Result<Box<dyn Instance>, ReissueError> {
        let mut grant = self.grant.lock().reissue()?;
        for revoker in revokers {
            grant.attach_revoker(revoker);
        }
        Ok(Box::new(WasmInstance {
            module: self.module.clone(),
            grant,
            memory: *self.memory.lock(),
        }))
    }
}

impl<G: Grant> WorkerFactory for WasmWorker<G> {
    fn instance(&self, revokers: &[&Revoker]) -> Result<Box<dyn Instance>, ReissueError> {
        self.shared.instance(revokers)
    }

    fn capabilities(&self) -> Vec<(String, Capability)> {
        capabilities_of(&*self.shared.grant.lock())
    }

    fn compile_policy(&self, lockdown: Lockdown) -> Result<Policy, LockdownError> {
        Policy::compile(lockdown, &self.shared.grant.lock().inventory())
    }

    fn duplicate(&self) -> Result<Box<dyn WorkerFactory>, ReissueError> {
        let grant = self.shared.grant.lock().reissue()?;
        let worker = WasmWorker::new(self.shared.module.clone(), grant);
        *worker.shared.memory.lock() = *self.shared.memory.lock();
        Ok(Box::new(worker))
    }

    fn reissuer(&self) -> Option<Arc<dyn Reissue>> {
        Some(Arc::clone(&self.shared) as Arc<dyn Reissue>)
    }

    fn tier(&self) -> crate::supervisor::NodeKind {
        crate::supervisor::NodeKind::Wasm
    }

    fn take_limits(&mut self, limits: Limits) -> Limits {
        // The module's memory is its linear memory, which the store's
        // limiter bounds; the watchdog keeps the CPU budget and deadline
        // (it cancels, and the epoch ticker interrupts the module).
        *self.shared.memory.lock() = limits.memory_quota();
        limits.without_memory()
    }
}

/// One instance of a wasm child: the module to instantiate, and the
/// re-issued grant whose capabilities become its handles.
struct WasmInstance<G> {
    module: WasmModule,
    grant: G,
    memory: Option<u64>,
}

fn start_failed(err: WasmError) -> BoxError {
    Box::new(Decided(FaultKind::StartFailed {
        message: err.to_string(),
    }))
}

impl<G: Grant> Instance for WasmInstance<G> {
    fn inventory(&self) -> Inventory<'_> {
        self.grant.inventory()
    }

    fn run(self: Box<Self>, cx: &Context) -> Result<(), BoxError> {
        let WasmInstance {
            module,
            grant,
            memory,
        } = *self;
        let table = Table::of(&grant).map_err(start_failed)?;
        // The table holds copies under the same revocation switches.
        drop(grant);
        let engine = engine().map_err(start_failed)?;
        let running = Running::start().map_err(start_failed)?;
        let memory_limit = memory.map(|bytes| usize::try_from(bytes).unwrap_or(usize::MAX));
        let host = Host {
            table,
            cx: cx.share(),
            memory: None,
            limits: Limiter {
                memory: memory_limit,
                refused: None,
            },
            args: vec![cx.path().to_owned()],
        };
        let mut store = Store::new(engine, host);
        store.limiter(|host| &mut host.limits);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|store| {
            Ok(if store.data().cx.is_cancelled() {
                UpdateDeadline::Interrupt
            } else {
                UpdateDeadline::Continue(1)
            })
        });
        let result = module
            .pre()
            .instantiate(&mut store)
            .map_err(|err| {
                Err(
                    if err
                        .downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
                        .is_some()
                    {
                        WasmError::PoolFull {
                            slots: super::engine::POOL_SLOTS,
                        }
                    } else {
                        WasmError::Instantiate {
                            reason: format!("{err:#}"),
                        }
                    },
                )
            })
            .and_then(|instance| {
                store.data_mut().memory = instance.get_memory(&mut store, "memory");
                let entry = instance
                    .get_typed_func::<(), ()>(&mut store, module.entry())
                    .map_err(|err| {
                        Err(WasmError::NoEntry {
                            export: module.entry().to_owned(),
                            reason: err.to_string(),
                        })
                    })?;
                entry.call(&mut store, ()).map_err(Ok)
            });
        let mut host = store.into_data();
        drop(running);
        match result {
            Ok(()) => Ok(()),
            Err(Err(err)) => Err(start_failed(err)),
            // `proc_exit(0)` is a return.
            Err(Ok(err)) if matches!(err.downcast_ref::<Exit>(), Some(Exit(0))) => Ok(()),
            Err(Ok(err)) => Err(ended(err, &mut host, memory)),
        }
    }
}

/// How a module that did not return ended, as the instance's error: an
/// exit status, an interrupt for cancellation (the instance runner tells
/// shutdown from a budget), the memory budget, or a trap.
fn ended(err: wasmtime::Error, host: &mut Host, memory: Option<u64>) -> BoxError {
    if host.cx.is_cancelled() {
        // Stopped because it was asked to, or by the watchdog: the
        // instance runner knows which.
        return Box::new(Cancelled);
    }
    // However a module ends after its memory could not grow (a trap, an
    // exit after a failed allocation), the memory budget ended it.
    if let (Some(asked), Some(limit)) = (host.limits.refused, memory) {
        return Box::new(Decided(FaultKind::BudgetExceeded {
            budget: Budget::Memory {
                held: asked as u64,
                limit,
            },
            runaway: false,
        }));
    }
    let output = String::from_utf8_lossy(&host.table.output).into_owned();
    if let Some(exit) = err.downcast_ref::<Exit>() {
        let sources = if output.is_empty() {
            Vec::new()
        } else {
            vec![format!("its output ended: {}", output.trim_end())]
        };
        return Box::new(Decided(FaultKind::Error {
            message: exit.to_string(),
            sources,
        }));
    }
    let backtrace: Vec<String> = err
        .downcast_ref::<WasmBacktrace>()
        .map(|backtrace| {
            backtrace
                .frames()
                .iter()
                .map(|frame| {
                    let name = frame.func_name().map_or_else(
                        || format!("<function {}>", frame.func_index()),
                        str::to_owned,
                    );
                    match frame.module_offset() {
                        Some(offset) => format!("{name} at 0x{offset:x}"),
                        None => name,
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let trap = match err.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(),
        None => err.to_string(),
    };
    let message = match backtrace.first() {
        Some(innermost) => format!("trapped: {trap} in {innermost}"),
        None => format!("trapped: {trap}"),
    };
    host.table.crash_replies(&HandlerCrash {
        message,
        location: None,
    });
    Box::new(Decided(FaultKind::Trapped {
        trap,
        backtrace,
        output,
    }))
}

/// A module interrupted because its instance was cancelled.
#[derive(Debug)]
struct Cancelled;

impl std::fmt::Display for Cancelled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the module was interrupted: its instance was cancelled")
    }
}

impl std::error::Error for Cancelled {}
