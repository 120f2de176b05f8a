//! Starting a process child by running this program again, instead of from
//! the zygote: where `clone3` with a pidfd is not available (or refused by
//! a container's filter), or when a child asks for it
//! ([`Spawning::Reexec`]).
//!
//! The supervisor starts its own executable with a clean environment that
//! names the role, its standard input a packet socket; it sends the spawn
//! request and the grant's descriptors over that socket, as it would to the
//! zygote. The new process reaches [`init`](super::init) at the top of
//! `main`, finds the role, makes itself ready as a zygote does (its own
//! user namespace, an empty network namespace and root), clones the child
//! beside itself, answers with the child's pidfd, and ends. A fresh program
//! image costs a start of about a millisecond more than a clone of the
//! zygote.

use std::os::fd::{AsFd, OwnedFd};
use std::process::{Command, Stdio};

use super::child;
use super::entry::Registered;
use super::wire::{self, SpawnRequest};
use super::zygote::{self, Started};

/// The environment variable that tells a program it was started as a
/// process child; its value is the protocol's version.
const ROLE: &str = "COMPARTMENT_PROCESS_CHILD";

const VERSION: &str = "1";

/// How process children are started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Spawning {
    /// Cloned from the zygote [`init`](super::init) forked: a fraction of a
    /// millisecond. Falls back to [`Reexec`](Self::Reexec) where the kernel
    /// (or a container's filter) refuses `clone3` with a pidfd.
    ///
    /// A copy shares its memory layout with the program as it was at
    /// `init`: the addresses of its code, stacks and heap, and the C
    /// library's stack-protector and pointer-guard values are the same in
    /// every child and in the supervisor. Against hostile code that looks
    /// for a memory bug to exploit in the supervisor or a sibling, that is
    /// one randomization fewer to defeat.
    #[default]
    Zygote,
    /// This program started again, in a fresh image: nothing of the
    /// parent's memory at `init` time is in the child, and its layout and
    /// secrets are its own. Costs a program's start per child.
    Reexec,
}

/// Starts this program again as a process child for `request`: the new
/// program acts as a zygote for that one child, which it clones beside
/// itself (the supervisor is the child's parent) before it ends.
pub(crate) fn spawn(request: &SpawnRequest, descriptors: &[&OwnedFd]) -> Result<Started, String> {
    let (ours, theirs) =
        wire::packet_pair().map_err(|err| format!("a socket for the child: {err}"))?;
    #[allow(
        clippy::disallowed_methods,
        reason = "the supervisor, on the granting side, starts its own program again as a process child"
    )]
    let mut program = {
        let path = std::env::current_exe().map_err(|err| format!("this program's path: {err}"))?;
        Command::new(path)
            .env_clear()
            .env(ROLE, VERSION)
            .stdin(Stdio::from(theirs))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|err| format!("this program could not be started again: {err}"))?
    };
    let started = zygote::ask(ours.as_fd(), request, descriptors);
    // It ends once it has answered (or failed to); the child it started is
    // the supervisor's own.
    if started.is_err() {
        let _ = program.kill();
    }
    let _ = program.wait();
    started?.ok_or_else(|| "the program started again could not create a process".to_owned())
}

/// In a program started by [`spawn`]: starts the child it is asked for and
/// ends. Returns at once in any other program.
pub(crate) fn serve_if_child(entries: &[&dyn Registered]) {
    #[allow(
        clippy::disallowed_methods,
        reason = "init, on the granting side, reads whether this program was started as a process child"
    )]
    let Some(role) = std::env::var_os(ROLE) else {
        return;
    };
    if role != VERSION {
        super::sys::exit_now(75);
    }
    // Started with nothing but the role, which the child has no use for.
    super::sys::forget_the_program();
    // The request comes on standard input, the socket `spawn` handed over.
    let Ok(socket) = std::io::stdin().as_fd().try_clone_to_owned() else {
        super::sys::exit_now(75)
    };
    let Ok(Some(packet)) = wire::recv_packet(socket.as_fd()) else {
        super::sys::exit_now(75)
    };
    let prepared = child::prepare();
    let answered = zygote::answer(entries, packet, &socket, &prepared, None);
    super::sys::exit_now(if answered.is_ok() { 0 } else { 75 })
}
