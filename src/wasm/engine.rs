//! The process's wasm engine: one compiler, one pool of instance slots, one
//! set of imports, and the ticker that lets a running module be
//! interrupted.
//!
//! One engine serves every tree: a module is compiled when its child is
//! specified, before any tree exists, and the pool's address space is
//! reserved once. Modules run with epoch interruption: the ticker advances
//! the epoch every millisecond while any module runs, and at each tick a
//! module checks whether its instance was cancelled (by its supervisor, or
//! by the watchdog for its CPU budget or deadline) and traps if it was.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, Linker, PoolingAllocationConfig};

use super::WasmError;
use super::host::Host;

/// How often the epoch advances while modules run: how long a module that
/// never calls the host can run on after its instance was cancelled.
const TICK: Duration = Duration::from_millis(1);

/// Instances that may run at once, process-wide: the pool's slots.
pub(crate) const POOL_SLOTS: u32 = 1000;

/// The largest linear memory a module may have (a 32-bit memory's whole
/// range); a child's memory limit is usually far below it.
const MAX_MEMORY: usize = 4 << 30;

/// Bytes of each slot's memory and table zeroed in place rather than given
/// back to the kernel when its instance ends: one wasm page.
const KEEP_RESIDENT: usize = 64 << 10;

/// How many slots' decommits are batched into one flush.
const DECOMMIT_BATCH: usize = 16;

/// How many frames of a trap's backtrace a fault keeps.
const BACKTRACE_FRAMES: usize = 32;

struct Runtime {
    engine: Engine,
    linker: Linker<Host>,
}

static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

fn runtime() -> Result<&'static Runtime, WasmError> {
    RUNTIME
        .get_or_init(|| {
            let mut pool = PoolingAllocationConfig::new();
            pool.total_core_instances(POOL_SLOTS)
                .total_memories(POOL_SLOTS)
                .total_tables(POOL_SLOTS)
                .max_memory_size(MAX_MEMORY)
                // A slot's first pages are zeroed in place when its instance
                // ends, and what lies beyond is decommitted in batches:
                // giving pages back to the kernel flushes every core's TLB,
                // which would otherwise cost each restart more than the
                // instantiation does.
                .linear_memory_keep_resident(KEEP_RESIDENT)
                .table_keep_resident(KEEP_RESIDENT)
                .decommit_batch_size(DECOMMIT_BATCH);
            let mut config = Config::new();
            config
                .epoch_interruption(true)
                .wasm_backtrace_max_frames(std::num::NonZeroUsize::new(BACKTRACE_FRAMES))
                .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
            let engine = Engine::new(&config).map_err(|err| err.to_string())?;
            let mut linker = Linker::new(&engine);
            super::wasi::add(&mut linker).map_err(|err| err.to_string())?;
            super::channels::add(&mut linker).map_err(|err| err.to_string())?;
            Ok(Runtime { engine, linker })
        })
        .as_ref()
        .map_err(|reason| WasmError::Engine {
            reason: reason.clone(),
        })
}

/// The process's engine.
pub(crate) fn engine() -> Result<&'static Engine, WasmError> {
    runtime().map(|runtime| &runtime.engine)
}

/// The imports every module may use: WASI preview 1 and `compartment`.
pub(crate) fn linker() -> Result<&'static Linker<Host>, WasmError> {
    runtime().map(|runtime| &runtime.linker)
}

/// Modules running now.
static RUNNING: AtomicUsize = AtomicUsize::new(0);

/// Whether the ticker has parked (or is about to), for want of modules.
static PARKED: AtomicBool = AtomicBool::new(false);

/// How many ticks with no module running the ticker waits before it
/// parks: a module restarting does not have to wake it.
const IDLE_TICKS: u32 = 100;

/// The ticker's thread, once started.
static TICKER: OnceLock<Result<std::thread::Thread, String>> = OnceLock::new();

/// A module running: the ticker advances the epoch while one exists.
#[derive(Debug)]
pub(crate) struct Running(());

impl Running {
    /// Counts a module as running, starting the ticker on first use.
    ///
    /// # Errors
    ///
    /// [`WasmError::Ticker`] when its thread cannot start: without it a
    /// running module could not be interrupted.
    pub(crate) fn start() -> Result<Running, WasmError> {
        let ticker = TICKER
            .get_or_init(|| {
                let engine = engine().map_err(|err| err.to_string())?;
                crate::ceiling::spawn("compartment-wasm-epoch".to_owned(), move || tick(engine))
                    .map(|handle| handle.thread().clone())
                    .map_err(|err| err.to_string())
            })
            .as_ref()
            .map_err(|reason| WasmError::Ticker {
                reason: reason.clone(),
            })?;
        // Sequentially consistent with the ticker's store of `PARKED` and
        // load of `RUNNING`: either it sees this module, or this sees it
        // parked and wakes it.
        RUNNING.fetch_add(1, Ordering::SeqCst);
        if PARKED.load(Ordering::SeqCst) {
            ticker.unpark();
        }
        Ok(Running(()))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The ticker: advances the epoch every [`TICK`] while modules run, and
/// parks once none has for [`IDLE_TICKS`].
fn tick(engine: &'static Engine) {
    let mut idle = 0;
    loop {
        std::thread::sleep(TICK);
        if RUNNING.load(Ordering::SeqCst) > 0 {
            idle = 0;
            engine.increment_epoch();
            continue;
        }
        idle += 1;
        if idle < IDLE_TICKS {
            continue;
        }
        PARKED.store(true, Ordering::SeqCst);
        while RUNNING.load(Ordering::SeqCst) == 0 {
            std::thread::park();
        }
        PARKED.store(false, Ordering::SeqCst);
        idle = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Polls `condition` for up to a minute: the ticker runs on its own.
    #[allow(
        clippy::disallowed_methods,
        reason = "a test's patience is wall-clock time"
    )]
    fn eventually(what: &str, condition: impl Fn() -> bool) {
        let give_up = std::time::Instant::now() + Duration::from_secs(60);
        while !condition() {
            assert!(
                std::time::Instant::now() < give_up,
                "never happened: {what}"
            );
            std::thread::yield_now();
        }
    }

    #[test]
    fn a_parked_ticker_wakes_for_the_next_module() {
        drop(Running::start().unwrap());
        eventually("the ticker parks with no module running", || {
            PARKED.load(Ordering::SeqCst)
        });
        let running = Running::start().unwrap();
        eventually("the ticker wakes for the next", || {
            !PARKED.load(Ordering::SeqCst)
        });
        drop(running);
    }
}
