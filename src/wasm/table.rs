//! The handle table: a module's grant as numbered handles, the way WASI
//! preview 1 hands a program its descriptors.
//!
//! Handles 0, 1 and 2 are standard input (empty), output and error (kept as
//! the tail a fault shows). The grant's directories follow as preopens,
//! named after their fields (`/originals` for a field `originals`), then
//! its files and channel endpoints, which the module finds by field name
//! (`compartment.lookup`). Directories and files the module opens take the
//! lowest free numbers. Clocks, randomness and the environment are not
//! handles: the WASI calls that read them answer from the grant, and
//! refuse (`ENOTCAPABLE`) when it holds none.

use std::collections::BTreeMap;
use std::time::Instant;

use super::WasmError;
use super::errno::Errno;
use crate::caps::{Dir, Env, File, MonotonicClock, Random, ReadOnlyDir, ReadOnlyFile, SystemClock};
use crate::channel::{HandlerCrash, ReplyTo, Request};
use crate::channel::{Receiver, Sender};
use crate::grant::{Grant, Inventory};

/// The most handles a module may hold, its grant's among them (a grant
/// larger than this still becomes handles; the module opens no more).
pub(crate) const MAX_HANDLES: usize = 1024;

/// Bytes of the module's output a fault keeps: the last of them.
pub(crate) const OUTPUT_TAIL: usize = 4096;

/// One entry of the table.
pub(crate) enum Handle {
    /// Standard input: always at its end.
    Stdin,
    /// Standard output or error: kept as the output's tail.
    Output,
    /// A directory; `preopen` is its name when the grant held it.
    Dir {
        dir: Dir,
        preopen: Option<String>,
    },
    ReadOnlyDir {
        dir: ReadOnlyDir,
        preopen: Option<String>,
    },
    File {
        file: File,
        append: bool,
    },
    ReadOnlyFile(ReadOnlyFile),
    Sender(Sender<Vec<u8>>),
    Receiver(Receiver<Vec<u8>>),
    /// Makes calls: the sending end of a request channel.
    Caller(Sender<Request<Vec<u8>, Vec<u8>>>),
    /// Serves calls: the receiving end of a request channel.
    Server(Receiver<Request<Vec<u8>, Vec<u8>>>),
    /// The reply endpoint of a request being served.
    Reply(ReplyTo<Vec<u8>>),
}

impl Handle {
    /// What the handle is, for messages.
    fn kind(&self) -> &'static str {
        match self {
            Handle::Stdin => "standard input",
            Handle::Output => "an output stream",
            Handle::Dir { .. } => "a directory",
            Handle::ReadOnlyDir { .. } => "a read-only directory",
            Handle::File { .. } => "a file",
            Handle::ReadOnlyFile(_) => "a read-only file",
            Handle::Sender(_) => "a channel's sending end",
            Handle::Receiver(_) => "a channel's receiving end",
            Handle::Caller(_) => "a request channel's sending end",
            Handle::Server(_) => "a request channel's receiving end",
            Handle::Reply(_) => "a reply endpoint",
        }
    }
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kind())
    }
}

/// A module's handles, and the capabilities that are not handles.
#[derive(Debug)]
pub(crate) struct Table {
    handles: Vec<Option<Handle>>,
    /// Handles by the field they came from.
    names: BTreeMap<String, u32>,
    /// A message received on a handle that the module's buffer could not
    /// hold, waiting for the next receive on it.
    pub(crate) pending: BTreeMap<u32, Vec<u8>>,
    /// A request received on a serving handle whose body the module's
    /// buffer could not hold.
    pub(crate) pending_requests: BTreeMap<u32, Request<Vec<u8>, Vec<u8>>>,
    pub(crate) env: Option<Env>,
    pub(crate) monotonic: Option<MonotonicClock>,
    pub(crate) system: Option<SystemClock>,
    pub(crate) random: Option<Random>,
    /// Where the monotonic clock's nanoseconds count from: its reading when
    /// the table was made.
    pub(crate) origin: Option<Instant>,
    /// The last bytes the module wrote to its output and error.
    pub(crate) output: Vec<u8>,
}

impl Table {
    /// The table for `grant`: each capability it holds, re-issued into a
    /// handle (so the table's copies share the grant's revocation
    /// switches). Plain data stays on the host's side.
    ///
    /// # Errors
    ///
    /// [`WasmError::NotImportable`] for a capability no module can hold
    /// (a network, a channel of another message type than bytes),
    /// [`WasmError::Reissue`] when a descriptor cannot be duplicated.
    pub(crate) fn of(grant: &impl Grant) -> Result<Table, WasmError> {
        let mut table = Table {
            handles: vec![
                Some(Handle::Stdin),
                Some(Handle::Output),
                Some(Handle::Output),
            ],
            names: BTreeMap::new(),
            pending: BTreeMap::new(),
            pending_requests: BTreeMap::new(),
            env: None,
            monotonic: None,
            system: None,
            random: None,
            origin: None,
            output: Vec::new(),
        };
        let inventory: Inventory<'_> = grant.inventory();
        // Directories first, so that preopens are the lowest numbers after
        // the standard streams, in field order.
        for directories in [true, false] {
            for held in inventory.iter() {
                let Some(object) = held.object() else {
                    continue;
                };
                let object: &dyn std::any::Any = object;
                let field = held.field();
                let is_directory = object.is::<Dir>() || object.is::<ReadOnlyDir>();
                if is_directory != directories {
                    continue;
                }
                table.import(field, object, held.capability())?;
            }
        }
        Ok(table)
    }

    fn import(
        &mut self,
        field: &str,
        object: &dyn std::any::Any,
        capability: &crate::capability::Capability,
    ) -> Result<(), WasmError> {
        let reissued = |err: crate::grant::ReissueError| WasmError::Reissue {
            field: field.to_owned(),
            source: err,
        };
        let preopen = || Some(format!("/{}", field.replace(['.', '[', ']'], "/")));
        let handle = if let Some(dir) = object.downcast_ref::<Dir>() {
            Handle::Dir {
                dir: dir.reissue().map_err(reissued)?,
                preopen: preopen(),
            }
        } else if let Some(dir) = object.downcast_ref::<ReadOnlyDir>() {
            Handle::ReadOnlyDir {
                dir: dir.reissue().map_err(reissued)?,
                preopen: preopen(),
            }
        } else if let Some(file) = object.downcast_ref::<File>() {
            Handle::File {
                file: file.reissue().map_err(reissued)?,
                append: false,
            }
        } else if let Some(file) = object.downcast_ref::<ReadOnlyFile>() {
            Handle::ReadOnlyFile(file.reissue().map_err(reissued)?)
        } else if let Some(tx) = object.downcast_ref::<Sender<Vec<u8>>>() {
            Handle::Sender(tx.reissue().map_err(reissued)?)
        } else if let Some(rx) = object.downcast_ref::<Receiver<Vec<u8>>>() {
            Handle::Receiver(rx.reissue().map_err(reissued)?)
        } else if let Some(tx) = object.downcast_ref::<Sender<Request<Vec<u8>, Vec<u8>>>>() {
            Handle::Caller(tx.reissue().map_err(reissued)?)
        } else if let Some(rx) = object.downcast_ref::<Receiver<Request<Vec<u8>, Vec<u8>>>>() {
            Handle::Server(rx.reissue().map_err(reissued)?)
        } else {
            return self.import_other(field, object, capability);
        };
        let number = self.place(handle);
        self.names.insert(field.to_owned(), number);
        Ok(())
    }

    /// What is not a handle: clocks, randomness, the environment; plain
    /// data is skipped.
    fn import_other(
        &mut self,
        field: &str,
        object: &dyn std::any::Any,
        capability: &crate::capability::Capability,
    ) -> Result<(), WasmError> {
        let reissued = |err: crate::grant::ReissueError| WasmError::Reissue {
            field: field.to_owned(),
            source: err,
        };
        if let Some(env) = object.downcast_ref::<Env>() {
            self.env = Some(env.reissue().map_err(reissued)?);
        } else if let Some(clock) = object.downcast_ref::<MonotonicClock>() {
            let clock = clock.reissue().map_err(reissued)?;
            self.origin = clock.now().ok();
            self.monotonic = Some(clock);
        } else if let Some(clock) = object.downcast_ref::<SystemClock>() {
            self.system = Some(clock.reissue().map_err(reissued)?);
        } else if let Some(random) = object.downcast_ref::<Random>() {
            self.random = Some(random.reissue().map_err(reissued)?);
        } else if !matches!(capability, crate::capability::Capability::Data { .. }) {
            return Err(WasmError::NotImportable {
                field: field.to_owned(),
                capability: capability.to_string(),
            });
        }
        Ok(())
    }

    /// Puts `handle` at the lowest free number, if the module may hold
    /// one more: `EMFILE` past [`MAX_HANDLES`], so that a module cannot
    /// take the process's descriptors from everyone else.
    pub(crate) fn insert(&mut self, handle: Handle) -> Result<u32, Errno> {
        if !self.has_room() {
            return Err(Errno::MFILE);
        }
        Ok(self.place(handle))
    }

    /// Whether the module may hold one more handle.
    pub(crate) fn has_room(&self) -> bool {
        self.handles.len() < MAX_HANDLES || self.handles.iter().any(Option::is_none)
    }

    /// Puts `handle` at the lowest free number, room or not: for the
    /// grant's own, and for a caller that checked [`has_room`](Self::has_room).
    pub(crate) fn place(&mut self, handle: Handle) -> u32 {
        match self.handles.iter().position(Option::is_none) {
            Some(free) => {
                self.handles[free] = Some(handle);
                free as u32
            }
            None => {
                self.handles.push(Some(handle));
                (self.handles.len() - 1) as u32
            }
        }
    }

    pub(crate) fn get(&self, number: i32) -> Option<&Handle> {
        self.handles.get(usize::try_from(number).ok()?)?.as_ref()
    }

    pub(crate) fn get_mut(&mut self, number: i32) -> Option<&mut Handle> {
        self.handles
            .get_mut(usize::try_from(number).ok()?)?
            .as_mut()
    }

    /// Takes the handle out, leaving its number free.
    pub(crate) fn remove(&mut self, number: i32) -> Option<Handle> {
        let handle = self.handles.get_mut(usize::try_from(number).ok()?)?.take();
        self.pending.remove(&(number as u32));
        self.pending_requests.remove(&(number as u32));
        handle
    }

    /// Moves handle `from` to number `to`, closing what `to` held.
    pub(crate) fn renumber(&mut self, from: i32, to: i32) -> bool {
        let (Ok(from), Ok(to)) = (usize::try_from(from), usize::try_from(to)) else {
            return false;
        };
        if to >= self.handles.len() || self.handles.get(from).is_none_or(Option::is_none) {
            return false;
        }
        let moved = self.handles[from].take();
        self.handles[to] = moved;
        true
    }

    /// The handle the grant's field `name` became.
    /// Answers every request the module held when it trapped with the
    /// trap, as a thread's panic answers the requests it held.
    pub(crate) fn crash_replies(&mut self, crash: &HandlerCrash) {
        for slot in &mut self.handles {
            if matches!(slot, Some(Handle::Reply(_)))
                && let Some(Handle::Reply(mut reply)) = slot.take()
            {
                reply.crashed(crash.clone());
            }
        }
    }

    pub(crate) fn lookup(&self, name: &str) -> Option<u32> {
        self.names.get(name).copied()
    }

    /// Keeps the last [`OUTPUT_TAIL`] bytes of what the module wrote.
    pub(crate) fn record_output(&mut self, bytes: &[u8]) {
        let tail = &bytes[bytes.len().saturating_sub(OUTPUT_TAIL)..];
        self.output.extend_from_slice(tail);
        if self.output.len() > OUTPUT_TAIL {
            let cut = self.output.len() - OUTPUT_TAIL;
            self.output.drain(..cut);
        }
    }
}
