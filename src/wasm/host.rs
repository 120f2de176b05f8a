//! What a module's store holds: its handle table, its instance's context,
//! and the limits its memory and tables may grow to.

use std::fmt;

use wasmtime::{Caller, Extern, ResourceLimiter};

use super::errno::{Answer, Errno, code};
use super::memory::Guest;
use super::table::Table;
use crate::context::Context;

/// The most table elements a module may grow a table to.
const TABLE_ELEMENTS: usize = 100_000;

/// A module's side of the host.
pub(crate) struct Host {
    pub(crate) table: Table,
    /// The running instance's context: cancellation, the mailbox, the
    /// tree's clock.
    pub(crate) cx: Context,
    /// The module's exported memory, once instantiated.
    pub(crate) memory: Option<wasmtime::Memory>,
    pub(crate) limits: Limiter,
    /// `argv`: the child's path.
    pub(crate) args: Vec<String>,
}

impl fmt::Debug for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Host")
            .field("path", &self.cx.path())
            .finish_non_exhaustive()
    }
}

/// How far a module's memory and tables may grow, and the largest memory
/// it asked for past that (a module that then fails is faulted with the
/// memory budget).
#[derive(Debug, Default)]
pub(crate) struct Limiter {
    pub(crate) memory: Option<usize>,
    pub(crate) refused: Option<usize>,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.memory.is_none_or(|limit| desired <= limit);
        if !allowed {
            self.refused = self.refused.max(Some(desired));
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= TABLE_ELEMENTS)
    }
}

/// `proc_exit`: the module ends with this status.
#[derive(Debug)]
pub(crate) struct Exit(pub(crate) i32);

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the module exited with status {}", self.0)
    }
}

impl std::error::Error for Exit {}

/// Runs a host call with the module's memory and the host side, and turns
/// its answer into the `errno` the module sees.
pub(crate) fn with(
    caller: &mut Caller<'_, Host>,
    call: impl FnOnce(&mut Guest<'_>, &mut Host) -> Answer,
) -> i32 {
    let memory = match caller.data().memory {
        Some(memory) => Some(memory),
        // Called before instantiation finished (from a start function).
        None => caller.get_export("memory").and_then(Extern::into_memory),
    };
    let Some(memory) = memory else {
        return Errno::FAULT.code();
    };
    let (data, host) = memory.data_and_store_mut(caller);
    code(call(&mut Guest::new(data), host))
}
