//! WASI preview 1 (`wasi_snapshot_preview1`) over the grant: what an
//! ordinary program compiled for `wasm32-wasip1` calls, answered from the
//! handle table and nothing else.
//!
//! Every file operation goes through the grant's directory and file
//! capabilities, so a path is resolved beneath the directory it names and
//! refused (`ENOTCAPABLE`) when it leads outside, exactly as in a thread;
//! a read-only directory is a [`ReadOnlyDir`](crate::caps::ReadOnlyDir) here too, which has no way
//! to write. The arguments are the child's path; the environment is the
//! grant's [`Env`](crate::caps::Env); clocks and randomness are the
//! grant's, and refused when it holds none. There are no sockets.
//!
//! Answered `ENOTSUP`, because a capability has no such operation: setting
//! a file's times through its handle (`fd_filestat_set_times`; set them by
//! path, `path_filestat_set_times`), `fd_allocate`, changing a handle's
//! flags after it was opened, and the process and thread CPU clocks;
//! `proc_raise` is `ENOSYS`.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cap_std::fs::MetadataExt;
use wasmtime::{Caller, Linker};

use super::errno::{Answer, Errno};
use super::host::{Exit, Host, with};
use super::memory::{Guest, at};
use super::table::Handle;
use crate::caps::{FileType, FollowSymlinks, Metadata, OpenOptions, SystemTimeSpec};

const MODULE: &str = "wasi_snapshot_preview1";

// File types.
const UNKNOWN: u8 = 0;
const CHARACTER_DEVICE: u8 = 2;
const DIRECTORY: u8 = 3;
const REGULAR_FILE: u8 = 4;
const SYMBOLIC_LINK: u8 = 7;

// `oflags`.
const O_CREAT: i32 = 1;
const O_DIRECTORY: i32 = 2;
const O_EXCL: i32 = 4;
const O_TRUNC: i32 = 8;

// `fdflags`.
const FD_APPEND: i32 = 1;
const FD_DSYNC: i32 = 2;
const FD_RSYNC: i32 = 8;
const FD_SYNC: i32 = 16;

/// Every file is opened without waiting: opening a fifo would otherwise
/// wait for its other end, on the instance's thread, where cancellation
/// cannot reach. Reads and writes that would wait answer `EAGAIN`.
const NEVER_WAIT: i32 = rustix::fs::OFlags::NONBLOCK.bits() as i32;

/// The most subscriptions one `poll_oneoff` may make.
const MAX_SUBSCRIPTIONS: u32 = 4096;

// `lookupflags`.
const SYMLINK_FOLLOW: i32 = 1;

// `fstflags`.
const ATIM: i32 = 1;
const ATIM_NOW: i32 = 2;
const MTIM: i32 = 4;
const MTIM_NOW: i32 = 8;

// Rights.
const RIGHT_FD_READ: u64 = 1 << 1;
const RIGHT_FD_WRITE: u64 = 1 << 6;
/// What a readable file may do (read, seek, tell, advise, stat, sync).
const FILE_READ_RIGHTS: u64 = RIGHT_FD_READ | 1 << 2 | 1 << 5 | 1 << 7 | 1 << 21 | 1 | 1 << 4;
/// What a writable file may do besides.
const FILE_WRITE_RIGHTS: u64 = RIGHT_FD_WRITE | 1 << 3 | 1 << 8 | 1 << 22 | 1 << 23;
/// What a read-only directory may do: open, list, read links, stat.
const DIR_READ_RIGHTS: u64 = 1 << 13 | 1 << 14 | 1 << 15 | 1 << 18 | 1 << 21;
/// What a full directory may do besides: create, link, rename, remove,
/// set sizes and times, make symlinks.
const DIR_WRITE_RIGHTS: u64 = 1 << 9
    | 1 << 10
    | 1 << 11
    | 1 << 12
    | 1 << 16
    | 1 << 17
    | 1 << 19
    | 1 << 20
    | 1 << 24
    | 1 << 25
    | 1 << 26;

/// Adds every WASI preview 1 function to `linker`.
pub(crate) fn add(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    linker.func_wrap(
        MODULE,
        "args_sizes_get",
        |mut c: Caller<'_, Host>, count: i32, size: i32| {
            with(&mut c, |guest, host| sizes(guest, &host.args, count, size))
        },
    )?;
    linker.func_wrap(
        MODULE,
        "args_get",
        |mut c: Caller<'_, Host>, argv: i32, buf: i32| {
            with(&mut c, |guest, host| {
                guest.string_list(&host.args, argv, buf)
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "environ_sizes_get",
        |mut c: Caller<'_, Host>, count: i32, size: i32| {
            with(&mut c, |guest, host| {
                sizes(guest, &environment(host), count, size)
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "environ_get",
        |mut c: Caller<'_, Host>, environ: i32, buf: i32| {
            with(&mut c, |guest, host| {
                guest.string_list(&environment(host), environ, buf)
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "clock_res_get",
        |mut c: Caller<'_, Host>, id: i32, out: i32| {
            with(&mut c, |guest, host| {
                clock(host, id, 0)?;
                guest.put_u64(out, 1)
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "clock_time_get",
        |mut c: Caller<'_, Host>, id: i32, _precision: i64, out: i32| {
            with(&mut c, |guest, host| {
                let now = clock(host, id, 1)?;
                guest.put_u64(out, now)
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "random_get",
        |mut c: Caller<'_, Host>, buf: i32, len: i32| {
            with(&mut c, |guest, host| {
                let random = host.table.random.as_ref().ok_or(Errno::NOTCAPABLE)?;
                random
                    .fill(guest.bytes_mut(buf, len)?)
                    .map_err(|_| Errno::NOTCAPABLE)
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "proc_exit",
        |_: Caller<'_, Host>, status: i32| -> wasmtime::Result<()> {
            Err(wasmtime::Error::new(Exit(status)))
        },
    )?;
    linker.func_wrap(MODULE, "proc_raise", |_: Caller<'_, Host>, _signal: i32| {
        Errno::NOSYS.code()
    })?;
    linker.func_wrap(MODULE, "sched_yield", |_: Caller<'_, Host>| {
        std::thread::yield_now();
        0
    })?;
    for name in ["sock_accept", "sock_recv", "sock_send", "sock_shutdown"] {
        add_refusal(linker, name)?;
    }
    add_descriptors(linker)?;
    add_paths(linker)?;
    add_poll(linker)
}

/// The socket calls: a grant holds no sockets a module could use.
fn add_refusal(linker: &mut Linker<Host>, name: &str) -> wasmtime::Result<()> {
    match name {
        "sock_accept" => linker.func_wrap(
            MODULE,
            name,
            |_: Caller<'_, Host>, _: i32, _: i32, _: i32| Errno::NOTSUP.code(),
        )?,
        "sock_recv" => linker.func_wrap(
            MODULE,
            name,
            |_: Caller<'_, Host>, _: i32, _: i32, _: i32, _: i32, _: i32, _: i32| {
                Errno::NOTSUP.code()
            },
        )?,
        "sock_send" => linker.func_wrap(
            MODULE,
            name,
            |_: Caller<'_, Host>, _: i32, _: i32, _: i32, _: i32, _: i32| Errno::NOTSUP.code(),
        )?,
        _ => linker.func_wrap(MODULE, name, |_: Caller<'_, Host>, _: i32, _: i32| {
            Errno::NOTSUP.code()
        })?,
    };
    Ok(())
}

fn sizes(guest: &mut Guest<'_>, strings: &[String], count: i32, size: i32) -> Answer {
    guest.put_u32(count, strings.len() as u32)?;
    let bytes: usize = strings.iter().map(|s| s.len() + 1).sum();
    guest.put_u32(size, bytes as u32)
}

/// The grant's environment, as `NAME=value` strings (names it granted that
/// are set).
fn environment(host: &Host) -> Vec<String> {
    let Some(env) = &host.table.env else {
        return Vec::new();
    };
    match env.vars() {
        Ok(vars) => vars
            .map(|(name, value)| format!("{name}={}", value.to_string_lossy()))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Clock `id`'s reading in nanoseconds (`what` 1), or just whether the
/// grant has it (`what` 0).
fn clock(host: &Host, id: i32, what: u8) -> Result<u64, Errno> {
    match id {
        0 => {
            let clock = host.table.system.as_ref().ok_or(Errno::NOTCAPABLE)?;
            if what == 0 {
                return Ok(0);
            }
            let now = clock.now().map_err(|_| Errno::NOTCAPABLE)?;
            Ok(nanos_since_epoch(now))
        }
        1 => {
            let clock = host.table.monotonic.as_ref().ok_or(Errno::NOTCAPABLE)?;
            if what == 0 {
                return Ok(0);
            }
            let now = clock.now().map_err(|_| Errno::NOTCAPABLE)?;
            let origin = host.table.origin.unwrap_or(now);
            Ok(now.saturating_duration_since(origin).as_nanos() as u64)
        }
        2 | 3 => Err(Errno::NOTSUP),
        _ => Err(Errno::INVAL),
    }
}

fn nanos_since_epoch(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos() as u64)
}

fn file_type(kind: FileType) -> u8 {
    if kind.is_dir() {
        DIRECTORY
    } else if kind.is_file() {
        REGULAR_FILE
    } else if kind.is_symlink() {
        SYMBOLIC_LINK
    } else {
        UNKNOWN
    }
}

/// A `filestat` (64 bytes) for `meta` at `out`.
fn put_filestat(guest: &mut Guest<'_>, out: i32, meta: &Metadata) -> Answer {
    let time = |time: std::io::Result<cap_std::time::SystemTime>| {
        time.map_or(0, |time| nanos_since_epoch(time.into_std()))
    };
    guest.put_u64(out, meta.dev())?;
    guest.put_u64(at(out, 8)?, meta.ino())?;
    guest.write(
        at(out, 16)?,
        &[file_type(meta.file_type()), 0, 0, 0, 0, 0, 0, 0],
    )?;
    guest.put_u64(at(out, 24)?, meta.nlink())?;
    guest.put_u64(at(out, 32)?, meta.len())?;
    guest.put_u64(at(out, 40)?, time(meta.accessed()))?;
    guest.put_u64(at(out, 48)?, time(meta.modified()))?;
    guest.put_u64(at(out, 56)?, time(meta.created()))
}

/// A `filestat` for a stream without metadata (standard input and output).
fn put_device_filestat(guest: &mut Guest<'_>, out: i32) -> Answer {
    guest.write(out, &[0; 64])?;
    guest.write(at(out, 16)?, &[CHARACTER_DEVICE])
}

fn add_descriptors(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    linker.func_wrap(
        MODULE,
        "fd_write",
        |mut c: Caller<'_, Host>, fd: i32, iovs: i32, count: i32, out: i32| {
            with(&mut c, |guest, host| {
                let written = fd_write(guest, host, fd, iovs, count, None)?;
                guest.put_u32(out, written)
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_pwrite",
        |mut c: Caller<'_, Host>, fd: i32, iovs: i32, count: i32, offset: i64, out: i32| {
            with(&mut c, |guest, host| {
                let written = fd_write(guest, host, fd, iovs, count, Some(offset as u64))?;
                guest.put_u32(out, written)
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_read",
        |mut c: Caller<'_, Host>, fd: i32, iovs: i32, count: i32, out: i32| {
            with(&mut c, |guest, host| {
                let read = fd_read(guest, host, fd, iovs, count, None)?;
                guest.put_u32(out, read)
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_pread",
        |mut c: Caller<'_, Host>, fd: i32, iovs: i32, count: i32, offset: i64, out: i32| {
            with(&mut c, |guest, host| {
                let read = fd_read(guest, host, fd, iovs, count, Some(offset as u64))?;
                guest.put_u32(out, read)
            })
        },
    )?;
    linker.func_wrap(MODULE, "fd_close", |mut c: Caller<'_, Host>, fd: i32| {
        with(&mut c, |_, host| {
            host.table.remove(fd).map(drop).ok_or(Errno::BADF)
        })
    })?;
    linker.func_wrap(
        MODULE,
        "fd_renumber",
        |mut c: Caller<'_, Host>, from: i32, to: i32| {
            with(&mut c, |_, host| {
                host.table
                    .renumber(from, to)
                    .then_some(())
                    .ok_or(Errno::BADF)
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_seek",
        |mut c: Caller<'_, Host>, fd: i32, offset: i64, whence: i32, out: i32| {
            with(&mut c, |guest, host| {
                let from = match whence {
                    0 => SeekFrom::Start(u64::try_from(offset).map_err(|_| Errno::INVAL)?),
                    1 => SeekFrom::Current(offset),
                    2 => SeekFrom::End(offset),
                    _ => return Err(Errno::INVAL),
                };
                let at = seek(host, fd, from)?;
                guest.put_u64(out, at)
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_tell",
        |mut c: Caller<'_, Host>, fd: i32, out: i32| {
            with(&mut c, |guest, host| {
                let at = seek(host, fd, SeekFrom::Current(0))?;
                guest.put_u64(out, at)
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_fdstat_get",
        |mut c: Caller<'_, Host>, fd: i32, out: i32| {
            with(&mut c, |guest, host| {
                let (kind, flags, rights) = match host.table.get(fd).ok_or(Errno::BADF)? {
                    Handle::Stdin => (CHARACTER_DEVICE, 0, RIGHT_FD_READ),
                    Handle::Output => (CHARACTER_DEVICE, 0, RIGHT_FD_WRITE),
                    Handle::Dir { .. } => (DIRECTORY, 0, DIR_READ_RIGHTS | DIR_WRITE_RIGHTS),
                    Handle::ReadOnlyDir { .. } => (DIRECTORY, 0, DIR_READ_RIGHTS),
                    Handle::File { file, append } => {
                        let rights = file.rights();
                        let mut bits = 0;
                        if rights.read {
                            bits |= FILE_READ_RIGHTS;
                        }
                        if rights.write {
                            bits |= FILE_WRITE_RIGHTS;
                        }
                        (
                            REGULAR_FILE,
                            if *append { FD_APPEND as u16 } else { 0 },
                            bits,
                        )
                    }
                    Handle::ReadOnlyFile(_) => (REGULAR_FILE, 0, FILE_READ_RIGHTS),
                    _ => (UNKNOWN, 0, 0),
                };
                guest.write(out, &[kind, 0])?;
                guest.write(at(out, 2)?, &flags.to_le_bytes())?;
                guest.write(at(out, 4)?, &[0; 4])?;
                guest.put_u64(at(out, 8)?, rights)?;
                // What is opened beneath a directory may have its rights.
                let inheriting = if kind == DIRECTORY {
                    rights
                        | FILE_READ_RIGHTS
                        | if rights & DIR_WRITE_RIGHTS != 0 {
                            FILE_WRITE_RIGHTS
                        } else {
                            0
                        }
                } else {
                    0
                };
                guest.put_u64(at(out, 16)?, inheriting)
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_fdstat_set_flags",
        |mut c: Caller<'_, Host>, fd: i32, _flags: i32| {
            with(&mut c, |_, host| {
                host.table
                    .get(fd)
                    .map(|_| Err(Errno::NOTSUP))
                    .unwrap_or(Err(Errno::BADF))
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_fdstat_set_rights",
        |mut c: Caller<'_, Host>, fd: i32, _base: i64, _inheriting: i64| {
            // Rights only narrow, and what a handle may do is its type's.
            with(&mut c, |_, host| {
                host.table.get(fd).map(|_| ()).ok_or(Errno::BADF)
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_filestat_get",
        |mut c: Caller<'_, Host>, fd: i32, out: i32| {
            with(&mut c, |guest, host| {
                let meta = match host.table.get(fd).ok_or(Errno::BADF)? {
                    Handle::Stdin | Handle::Output => return put_device_filestat(guest, out),
                    Handle::Dir { dir, .. } => dir.dir_metadata()?,
                    Handle::ReadOnlyDir { dir, .. } => dir.dir_metadata()?,
                    Handle::File { file, .. } => file.metadata()?,
                    Handle::ReadOnlyFile(file) => file.metadata()?,
                    _ => return Err(Errno::BADF),
                };
                put_filestat(guest, out, &meta)
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_filestat_set_size",
        |mut c: Caller<'_, Host>, fd: i32, size: i64| {
            with(&mut c, |_, host| {
                match host.table.get(fd).ok_or(Errno::BADF)? {
                    Handle::File { file, .. } => Ok(file.set_len(size as u64)?),
                    Handle::ReadOnlyFile(_) | Handle::ReadOnlyDir { .. } => Err(Errno::NOTCAPABLE),
                    _ => Err(Errno::BADF),
                }
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_filestat_set_times",
        |mut c: Caller<'_, Host>, fd: i32, _atim: i64, _mtim: i64, _flags: i32| {
            // A capability sets times by path beneath a directory.
            with(&mut c, |_, host| {
                host.table
                    .get(fd)
                    .map(|_| Err(Errno::NOTSUP))
                    .unwrap_or(Err(Errno::BADF))
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_advise",
        |mut c: Caller<'_, Host>, fd: i32, _offset: i64, _len: i64, _advice: i32| {
            with(&mut c, |_, host| {
                host.table.get(fd).map(|_| ()).ok_or(Errno::BADF)
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_allocate",
        |mut c: Caller<'_, Host>, fd: i32, _offset: i64, _len: i64| {
            with(&mut c, |_, host| {
                host.table
                    .get(fd)
                    .map(|_| Err(Errno::NOTSUP))
                    .unwrap_or(Err(Errno::BADF))
            })
        },
    )?;
    linker.func_wrap(MODULE, "fd_sync", |mut c: Caller<'_, Host>, fd: i32| {
        with(&mut c, |_, host| sync(host, fd, false))
    })?;
    linker.func_wrap(MODULE, "fd_datasync", |mut c: Caller<'_, Host>, fd: i32| {
        with(&mut c, |_, host| sync(host, fd, true))
    })?;
    linker.func_wrap(
        MODULE,
        "fd_prestat_get",
        |mut c: Caller<'_, Host>, fd: i32, out: i32| {
            with(&mut c, |guest, host| {
                let name = preopen(host, fd)?;
                guest.write(out, &[0, 0, 0, 0])?;
                guest.put_u32(at(out, 4)?, name.len() as u32)
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_prestat_dir_name",
        |mut c: Caller<'_, Host>, fd: i32, path: i32, len: i32| {
            with(&mut c, |guest, host| {
                let name = preopen(host, fd)?;
                if name.len() > len as usize {
                    return Err(Errno::NAMETOOLONG);
                }
                guest.write(path, name.as_bytes())
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_readdir",
        |mut c: Caller<'_, Host>, fd: i32, buf: i32, len: i32, cookie: i64, out: i32| {
            with(&mut c, |guest, host| {
                let used = readdir(guest, host, fd, buf, len, cookie as u64)?;
                guest.put_u32(out, used)
            })
        },
    )?;
    Ok(())
}

fn preopen(host: &Host, fd: i32) -> Result<String, Errno> {
    match host.table.get(fd) {
        Some(Handle::Dir {
            preopen: Some(name),
            ..
        })
        | Some(Handle::ReadOnlyDir {
            preopen: Some(name),
            ..
        }) => Ok(name.clone()),
        // The C library looks for preopens until this answer.
        _ => Err(Errno::BADF),
    }
}

fn sync(host: &Host, fd: i32, data_only: bool) -> Answer {
    match host.table.get(fd).ok_or(Errno::BADF)? {
        Handle::File { file, .. } if data_only => Ok(file.sync_data()?),
        Handle::File { file, .. } => Ok(file.sync_all()?),
        Handle::ReadOnlyFile(_) | Handle::Dir { .. } | Handle::ReadOnlyDir { .. } => Ok(()),
        Handle::Output | Handle::Stdin => Ok(()),
        _ => Err(Errno::BADF),
    }
}

fn seek(host: &mut Host, fd: i32, from: SeekFrom) -> Result<u64, Errno> {
    match host.table.get_mut(fd).ok_or(Errno::BADF)? {
        Handle::File { file, .. } => Ok(file.seek(from)?),
        Handle::ReadOnlyFile(file) => Ok(file.seek(from)?),
        Handle::Dir { .. } | Handle::ReadOnlyDir { .. } => Err(Errno::ISDIR),
        Handle::Stdin | Handle::Output => Err(Errno::SPIPE),
        _ => Err(Errno::BADF),
    }
}

fn fd_write(
    guest: &mut Guest<'_>,
    host: &mut Host,
    fd: i32,
    iovs: i32,
    count: i32,
    at: Option<u64>,
) -> Result<u32, Errno> {
    let count = Guest::iovec_count(count)?;
    let mut written = 0u32;
    match host.table.get_mut(fd).ok_or(Errno::BADF)? {
        Handle::Output => {
            for index in 0..count {
                let (ptr, len) = guest.iovec(iovs, index)?;
                let bytes = guest.bytes(ptr, len)?;
                host.table.record_output(bytes);
                written = written.checked_add(len as u32).ok_or(Errno::INVAL)?;
            }
        }
        Handle::File { file, .. } => {
            for index in 0..count {
                let (ptr, len) = guest.iovec(iovs, index)?;
                let bytes = guest.bytes(ptr, len)?;
                let n = match at {
                    Some(offset) => {
                        let offset = offset
                            .checked_add(u64::from(written))
                            .ok_or(Errno::OVERFLOW)?;
                        file.write_at(bytes, offset)?
                    }
                    None => file.write(bytes)?,
                };
                // Within one call, less than 4 GiB: the count is refused
                // before it would not fit.
                written = written.checked_add(n as u32).ok_or(Errno::INVAL)?;
                if n < bytes.len() {
                    break;
                }
            }
        }
        Handle::ReadOnlyFile(_) | Handle::Stdin => return Err(Errno::BADF),
        Handle::Dir { .. } | Handle::ReadOnlyDir { .. } => return Err(Errno::ISDIR),
        _ => return Err(Errno::BADF),
    }
    Ok(written)
}

fn fd_read(
    guest: &mut Guest<'_>,
    host: &mut Host,
    fd: i32,
    iovs: i32,
    count: i32,
    at: Option<u64>,
) -> Result<u32, Errno> {
    let count = Guest::iovec_count(count)?;
    let mut read = 0u32;
    let handle = host.table.get_mut(fd).ok_or(Errno::BADF)?;
    for index in 0..count {
        let (ptr, len) = guest.iovec(iovs, index)?;
        let buf = guest.bytes_mut(ptr, len)?;
        let offset = at
            .map(|offset| offset.checked_add(u64::from(read)).ok_or(Errno::OVERFLOW))
            .transpose()?;
        let n = match (&mut *handle, offset) {
            (Handle::Stdin, _) => 0,
            (Handle::File { file, .. }, Some(offset)) => file.read_at(buf, offset)?,
            (Handle::File { file, .. }, None) => file.read(buf)?,
            (Handle::ReadOnlyFile(file), Some(offset)) => file.read_at(buf, offset)?,
            (Handle::ReadOnlyFile(file), None) => file.read(buf)?,
            (Handle::Dir { .. } | Handle::ReadOnlyDir { .. }, _) => return Err(Errno::ISDIR),
            _ => return Err(Errno::BADF),
        };
        read = read.checked_add(n as u32).ok_or(Errno::INVAL)?;
        if n < buf.len() {
            break;
        }
    }
    Ok(read)
}

/// One listed entry: its name and type.
struct Listed {
    name: Vec<u8>,
    kind: u8,
}

/// Writes the directory entries from `cookie` on as `dirent`s (24 bytes
/// and the name each) into `buf`; returns the bytes used (all of `len`
/// when there may be more).
fn readdir(
    guest: &mut Guest<'_>,
    host: &Host,
    fd: i32,
    buf: i32,
    len: i32,
    cookie: u64,
) -> Result<u32, Errno> {
    use std::os::unix::ffi::OsStrExt;
    let mut listed = vec![
        Listed {
            name: b".".to_vec(),
            kind: DIRECTORY,
        },
        Listed {
            name: b"..".to_vec(),
            kind: DIRECTORY,
        },
    ];
    match host.table.get(fd).ok_or(Errno::BADF)? {
        Handle::Dir { dir, .. } => {
            for entry in dir.entries()? {
                let entry = entry?;
                listed.push(Listed {
                    name: entry.name().as_bytes().to_vec(),
                    kind: file_type(entry.file_type()),
                });
            }
        }
        Handle::ReadOnlyDir { dir, .. } => {
            for entry in dir.entries()? {
                let entry = entry?;
                listed.push(Listed {
                    name: entry.name().as_bytes().to_vec(),
                    kind: file_type(entry.file_type()),
                });
            }
        }
        _ => return Err(Errno::NOTDIR),
    }
    let mut bytes = Vec::new();
    for (index, entry) in listed.iter().enumerate().skip(cookie as usize) {
        bytes.extend_from_slice(&(index as u64 + 1).to_le_bytes());
        bytes.extend_from_slice(&0u64.to_le_bytes());
        bytes.extend_from_slice(&(entry.name.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&[entry.kind, 0, 0, 0]);
        bytes.extend_from_slice(&entry.name);
        if bytes.len() >= len as usize {
            break;
        }
    }
    let used = bytes.len().min(len as usize);
    guest.write(buf, &bytes[..used])?;
    Ok(used as u32)
}

fn add_paths(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    linker.func_wrap(
        MODULE,
        "path_open",
        |mut c: Caller<'_, Host>,
         fd: i32,
         dirflags: i32,
         path: i32,
         len: i32,
         oflags: i32,
         rights: i64,
         _inheriting: i64,
         fdflags: i32,
         out: i32| {
            with(&mut c, |guest, host| {
                let path = guest.str(path, len)?.to_owned();
                let opened = open(host, fd, dirflags, &path, oflags, rights as u64, fdflags)?;
                let number = host.table.insert(opened)?;
                guest.put_u32(out, number)
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "path_create_directory",
        |mut c: Caller<'_, Host>, fd: i32, path: i32, len: i32| {
            with(&mut c, |guest, host| {
                let path = guest.str(path, len)?;
                Ok(writable_dir(host, fd)?.create_dir(path)?)
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "path_remove_directory",
        |mut c: Caller<'_, Host>, fd: i32, path: i32, len: i32| {
            with(&mut c, |guest, host| {
                let path = guest.str(path, len)?;
                Ok(writable_dir(host, fd)?.remove_dir(path)?)
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "path_unlink_file",
        |mut c: Caller<'_, Host>, fd: i32, path: i32, len: i32| {
            with(&mut c, |guest, host| {
                let path = guest.str(path, len)?;
                Ok(writable_dir(host, fd)?.remove_file_or_symlink(path)?)
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "path_rename",
        |mut c: Caller<'_, Host>,
         fd: i32,
         old: i32,
         old_len: i32,
         new_fd: i32,
         new: i32,
         new_len: i32| {
            with(&mut c, |guest, host| {
                let (old, new) = (guest.str(old, old_len)?, guest.str(new, new_len)?);
                let from = writable_dir(host, fd)?;
                let to = writable_dir(host, new_fd)?;
                Ok(from.rename(old, to, new)?)
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "path_link",
        |mut c: Caller<'_, Host>,
         fd: i32,
         _flags: i32,
         old: i32,
         old_len: i32,
         new_fd: i32,
         new: i32,
         new_len: i32| {
            with(&mut c, |guest, host| {
                let (old, new) = (guest.str(old, old_len)?, guest.str(new, new_len)?);
                let from = writable_dir(host, fd)?;
                let to = writable_dir(host, new_fd)?;
                Ok(from.hard_link(old, to, new)?)
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "path_symlink",
        |mut c: Caller<'_, Host>,
         target: i32,
         target_len: i32,
         fd: i32,
         link: i32,
         link_len: i32| {
            with(&mut c, |guest, host| {
                let (target, link) = (guest.str(target, target_len)?, guest.str(link, link_len)?);
                Ok(writable_dir(host, fd)?.symlink(target, link)?)
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "path_readlink",
        |mut c: Caller<'_, Host>,
         fd: i32,
         path: i32,
         len: i32,
         buf: i32,
         buf_len: i32,
         out: i32| {
            with(&mut c, |guest, host| {
                use std::os::unix::ffi::OsStrExt;
                let path = guest.str(path, len)?;
                let target = match host.table.get(fd).ok_or(Errno::BADF)? {
                    Handle::Dir { dir, .. } => dir.read_link_contents(path)?,
                    Handle::ReadOnlyDir { dir, .. } => dir.read_link_contents(path)?,
                    _ => return Err(Errno::NOTDIR),
                };
                let target = target.as_os_str().as_bytes();
                let used = target.len().min(buf_len as usize);
                guest.write(buf, &target[..used])?;
                guest.put_u32(out, used as u32)
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "path_filestat_get",
        |mut c: Caller<'_, Host>, fd: i32, flags: i32, path: i32, len: i32, out: i32| {
            with(&mut c, |guest, host| {
                let path = guest.str(path, len)?.to_owned();
                let follow = flags & SYMLINK_FOLLOW != 0;
                let meta = match host.table.get(fd).ok_or(Errno::BADF)? {
                    Handle::Dir { dir, .. } if follow => dir.metadata(&path)?,
                    Handle::Dir { dir, .. } => dir.symlink_metadata(&path)?,
                    Handle::ReadOnlyDir { dir, .. } if follow => dir.metadata(&path)?,
                    Handle::ReadOnlyDir { dir, .. } => dir.symlink_metadata(&path)?,
                    _ => return Err(Errno::NOTDIR),
                };
                put_filestat(guest, out, &meta)
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "path_filestat_set_times",
        |mut c: Caller<'_, Host>,
         fd: i32,
         flags: i32,
         path: i32,
         len: i32,
         atim: i64,
         mtim: i64,
         fst: i32| {
            with(&mut c, |guest, host| {
                let path = guest.str(path, len)?;
                let spec = |set: i32, now: i32, at: i64| {
                    if fst & now != 0 {
                        Some(SystemTimeSpec::SymbolicNow)
                    } else if fst & set != 0 {
                        Some(SystemTimeSpec::Absolute(
                            UNIX_EPOCH + Duration::from_nanos(at as u64),
                        ))
                    } else {
                        None
                    }
                };
                let (accessed, modified) = (spec(ATIM, ATIM_NOW, atim), spec(MTIM, MTIM_NOW, mtim));
                let dir = writable_dir(host, fd)?;
                if flags & SYMLINK_FOLLOW != 0 {
                    Ok(dir.set_times(path, accessed, modified)?)
                } else {
                    Ok(dir.set_symlink_times(path, accessed, modified)?)
                }
            })
        },
    )?;
    Ok(())
}

/// The full directory behind `fd`: a read-only one is `ENOTCAPABLE`.
fn writable_dir(host: &Host, fd: i32) -> Result<&crate::caps::Dir, Errno> {
    match host.table.get(fd).ok_or(Errno::BADF)? {
        Handle::Dir { dir, .. } => Ok(dir),
        Handle::ReadOnlyDir { .. } => Err(Errno::NOTCAPABLE),
        _ => Err(Errno::NOTDIR),
    }
}

/// `path_open`: a directory or a file beneath the directory `fd`, with the
/// rights its handle allows and no more.
fn open(
    host: &Host,
    fd: i32,
    dirflags: i32,
    path: &str,
    oflags: i32,
    rights: u64,
    fdflags: i32,
) -> Result<Handle, Errno> {
    let follow = dirflags & SYMLINK_FOLLOW != 0;
    let write = rights & RIGHT_FD_WRITE != 0 || fdflags & FD_APPEND != 0;
    let changes = write || oflags & (O_CREAT | O_TRUNC | O_EXCL) != 0;
    match host.table.get(fd).ok_or(Errno::BADF)? {
        Handle::ReadOnlyDir { dir, .. } => {
            if changes {
                return Err(Errno::NOTCAPABLE);
            }
            let is_dir = oflags & O_DIRECTORY != 0 || dir.is_dir(path);
            if is_dir {
                let opened = if follow {
                    dir.open_dir(path)?
                } else {
                    dir.open_dir_nofollow(path)?
                };
                return Ok(Handle::ReadOnlyDir {
                    dir: opened,
                    preopen: None,
                });
            }
            let mut options = OpenOptions::new();
            options.read(true).custom_flags(NEVER_WAIT);
            if !follow {
                options.follow(FollowSymlinks::No);
            }
            Ok(Handle::ReadOnlyFile(
                dir.open_for_reading_with(path, &options)?,
            ))
        }
        Handle::Dir { dir, .. } => {
            let wants_dir = oflags & O_DIRECTORY != 0 || (!changes && dir.is_dir(path));
            if wants_dir {
                if changes {
                    return Err(Errno::ISDIR);
                }
                let opened = if follow {
                    dir.open_dir(path)?
                } else {
                    dir.open_dir_nofollow(path)?
                };
                return Ok(Handle::Dir {
                    dir: opened,
                    preopen: None,
                });
            }
            let mut options = OpenOptions::new();
            let append = fdflags & FD_APPEND != 0;
            options
                .custom_flags(NEVER_WAIT)
                .read(rights & RIGHT_FD_READ != 0 || !write)
                .write(write && !append)
                .append(append)
                .create(oflags & O_CREAT != 0)
                .create_new(oflags & O_CREAT != 0 && oflags & O_EXCL != 0)
                .truncate(oflags & O_TRUNC != 0)
                .sync(fdflags & FD_SYNC != 0)
                .dsync(fdflags & FD_DSYNC != 0)
                .rsync(fdflags & FD_RSYNC != 0);
            if !follow {
                options.follow(FollowSymlinks::No);
            }
            Ok(Handle::File {
                file: dir.open_with(Path::new(path), &options)?,
                append,
            })
        }
        _ => Err(Errno::NOTDIR),
    }
}

fn add_poll(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    linker.func_wrap(
        MODULE,
        "poll_oneoff",
        |mut c: Caller<'_, Host>, subscriptions: i32, events: i32, count: i32, out: i32| {
            with(&mut c, |guest, host| {
                let written = poll(guest, host, subscriptions, events, count)?;
                guest.put_u32(out, written)
            })
        },
    )?;
    Ok(())
}

/// `poll_oneoff`: descriptors are always ready (files and the standard
/// streams never block here); without one, the call sleeps until its
/// earliest clock — on the tree's clock, and no longer than the instance
/// runs: cancellation ends it.
fn poll(
    guest: &mut Guest<'_>,
    host: &Host,
    subscriptions: i32,
    events: i32,
    count: i32,
) -> Result<u32, Errno> {
    let count = u32::try_from(count).map_err(|_| Errno::INVAL)?;
    if count == 0 || count > MAX_SUBSCRIPTIONS {
        return Err(Errno::INVAL);
    }
    let mut ready: Vec<(u64, u8)> = Vec::new();
    let mut earliest: Option<(u64, Duration)> = None;
    for i in 0..count {
        let entry = at(subscriptions, i.checked_mul(48).ok_or(Errno::FAULT)?)?;
        let userdata = guest.u64(entry)?;
        let tag = guest.bytes(at(entry, 8)?, 1)?[0];
        match tag {
            0 => {
                let timeout = guest.u64(at(entry, 24)?)?;
                let flags = guest.u32(at(entry, 40)?)? & 0xffff;
                let wait = if flags & 1 != 0 {
                    // An absolute time on the clock named; without that
                    // clock, the wait cannot be measured.
                    let id = guest.u32(at(entry, 16)?)? as i32;
                    let now = clock(host, id, 1)?;
                    Duration::from_nanos(timeout.saturating_sub(now))
                } else {
                    Duration::from_nanos(timeout)
                };
                if earliest.is_none_or(|(_, current)| wait < current) {
                    earliest = Some((userdata, wait));
                }
            }
            1 | 2 => ready.push((userdata, tag)),
            _ => return Err(Errno::INVAL),
        }
    }
    if ready.is_empty()
        && let Some((userdata, wait)) = earliest
    {
        if host.cx.sleep(wait).is_err() {
            return Err(Errno::CANCELED);
        }
        ready.push((userdata, 0));
    }
    for (i, (userdata, kind)) in ready.iter().enumerate() {
        let entry = at(events, u32::try_from(i * 32).map_err(|_| Errno::FAULT)?)?;
        guest.put_u64(entry, *userdata)?;
        guest.write(at(entry, 8)?, &[0, 0, *kind, 0, 0, 0, 0, 0])?;
        guest.write(at(entry, 16)?, &[0; 16])?;
    }
    Ok(ready.len() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_only_directory_hands_on_no_write_right() {
        assert_eq!(DIR_READ_RIGHTS & DIR_WRITE_RIGHTS, 0);
        assert_eq!(FILE_READ_RIGHTS & RIGHT_FD_WRITE, 0);
        assert_eq!(super::super::errno::code(Err(Errno::NOTCAPABLE)), 76);
    }
}
