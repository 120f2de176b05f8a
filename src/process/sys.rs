//! The process tier's audited `unsafe` code: creating processes, leaving
//! them without running the parent's exit handlers, and the few calls the
//! confinement needs that have no safe binding.
//!
//! Every function here is called only in a process that has one thread (the
//! zygote, forked while `main` was still single-threaded, the processes it
//! creates, and a program started again as a child, in `init` at the top
//! of its `main`), so the child of a fork or clone is a complete copy — no
//! lock is held by a thread that does not exist in it — and no other thread
//! reads the environment while it changes.

#![allow(unsafe_code)]

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// What a process-creating call returned in the process that called it.
#[derive(Debug)]
pub(super) enum Spawned {
    /// This is the new process.
    Child,
    /// This is the caller; the new process has this id.
    Parent {
        pid: i32,
        /// A pidfd for it, when one was asked for.
        pidfd: Option<OwnedFd>,
    },
}

/// The kernel's `struct clone_args`, first version (64 bytes).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
}

/// Forks the calling single-threaded process through the C library, which
/// also brings the child's thread bookkeeping up to date.
pub(super) fn fork() -> io::Result<Spawned> {
    // SAFETY: callers run in a process with one thread (see the module
    // documentation), so the child inherits no lock held elsewhere; the
    // C library's fork runs its own handlers and fixes the thread record.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Spawned::Child),
        pid => Ok(Spawned::Parent { pid, pidfd: None }),
    }
}

/// Creates a process whose parent is the caller's parent (the supervisor,
/// when the zygote calls it), in the new namespaces `namespaces` names
/// (`CLONE_NEW*` flags), with a pidfd for it returned to the caller.
///
/// The new process is a copy of the single-threaded caller. Its C-library
/// thread record still names the caller's thread, so it must not use
/// anything that reads it (`raise`, `abort`, `pthread_kill`): a child's
/// init only maps its ids, forks through [`fork`] (which brings the
/// record up to date in its child), waits and exits.
pub(super) fn clone_beside(namespaces: u64) -> io::Result<Spawned> {
    let mut pidfd: RawFd = -1;
    let args = CloneArgs {
        flags: (libc::CLONE_PARENT | libc::CLONE_PIDFD) as u64 | namespaces,
        pidfd: std::ptr::addr_of_mut!(pidfd) as u64,
        // With `CLONE_PARENT` the kernel uses the caller's own exit signal.
        exit_signal: 0,
        ..CloneArgs::default()
    };
    // SAFETY: `args` is a valid `clone_args` of the size passed, `pidfd`
    // outlives the call, no stack is shared (no `CLONE_VM`), and the caller
    // is single-threaded, so the child is a complete copy of it.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            std::ptr::addr_of!(args),
            size_of::<CloneArgs>(),
        )
    };
    match pid {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Spawned::Child),
        pid => Ok(Spawned::Parent {
            pid: pid as i32,
            // SAFETY: the kernel wrote a new descriptor that nothing else owns.
            pidfd: Some(unsafe { OwnedFd::from_raw_fd(pidfd) }),
        }),
    }
}

/// Removes every variable from the calling process's environment and
/// erases the program's original argument and environment strings: a
/// process child's environment is its grant's `Env`, and the program's
/// variables and arguments (tokens, keys, paths) are the supervisor's.
///
/// Removing the variables leaves their text where the kernel placed it, at
/// the top of the main thread's stack, and the arguments stay readable
/// through `std::env::args`; a zygote's children are copies of that
/// memory, so the text itself is overwritten with zeros. Every argument
/// then reads as an empty string.
#[allow(
    clippy::disallowed_methods,
    reason = "the granting side empties a process child's environment before any child code runs"
)]
pub(super) fn forget_the_program() {
    for (name, _) in std::env::vars_os() {
        // SAFETY: callers run in a process with one thread (see the module
        // documentation), so no other thread reads the environment while
        // it changes.
        unsafe { std::env::remove_var(name) };
    }
    let Some(blocks) = program_strings() else {
        return;
    };
    for (start, end) in blocks {
        if start == 0 || end <= start {
            continue;
        }
        // SAFETY: `start..end` is the argument or environment block the
        // kernel wrote into this process's initial stack, as
        // `/proc/self/stat` reports it: mapped and writable for the life of
        // the process. No Rust reference covers it. The C library and the
        // standard library hold only raw pointers to the NUL-terminated
        // strings in it (the variables were removed above, so the
        // environment array no longer points there), and with one thread
        // nothing reads them meanwhile; zeroed, each reads as an empty
        // string.
        unsafe { std::ptr::write_bytes(start as *mut u8, 0, end - start) };
    }
}

/// The address ranges of this process's original argument and environment
/// strings: fields 48 to 51 of `/proc/self/stat`.
fn program_strings() -> Option<[(usize, usize); 2]> {
    #[allow(
        clippy::disallowed_methods,
        reason = "the granting side reads its own process's memory layout"
    )]
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) is in parentheses and may hold anything;
    // the fields after it start at field 3.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<usize> = after_name
        .split_whitespace()
        .skip(45)
        .take(4)
        .map(|field| field.parse().ok())
        .collect::<Option<_>>()?;
    match fields[..] {
        [arg_start, arg_end, env_start, env_end] => {
            Some([(arg_start, arg_end), (env_start, env_end)])
        }
        _ => None,
    }
}

/// Moves the calling process into new namespaces.
pub(super) fn unshare(flags: libc::c_int) -> io::Result<()> {
    // SAFETY: `unshare` takes no pointers; the flags the process tier
    // passes (namespaces only, never `CLONE_FILES` or `CLONE_FS` sharing
    // changes) leave the process's memory and descriptors untouched.
    if unsafe { libc::unshare(flags) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Closes every descriptor from `first` to `last`, inclusive.
pub(super) fn close_range(first: u32, last: u32) -> io::Result<()> {
    // SAFETY: closing descriptors is memory-safe; callers pass only ranges
    // that exclude every descriptor they keep an `OwnedFd` for.
    if unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Ends the calling process at once with `code`, without running exit
/// handlers or flushing buffers it inherited from its parent.
pub(super) fn exit_now(code: i32) -> ! {
    // SAFETY: `_exit` is always safe to call; it never returns.
    unsafe { libc::_exit(code) }
}

/// Waits for the child `pid` and returns its raw wait status.
pub(super) fn wait_raw(pid: i32) -> io::Result<libc::c_int> {
    let mut status: libc::c_int = 0;
    loop {
        // SAFETY: `status` lives on this stack for the duration of the call.
        let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
        if waited == pid {
            return Ok(status);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}
