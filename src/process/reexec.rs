//! Starting a process child by running this program again, instead of from
//! the zygote: where `clone3` with a pidfd is not available (or refused by
//! a container's filter), or when a child asks for it
//! ([`Spawning::Reexec`]).
//!
//! The supervisor starts its own executable with a clean environment that
//! names the role, its standard input a packet socket; it sends the spawn
//! request and the grant's descriptors over that socket, as it would to the
//! zygote, and opens a pidfd for the new process, its own child. The new
//! process reaches [`init`](super::init) at the top of `main`, finds the
//! role, reads its request and continues exactly as a zygote's clone does
//! (namespaces, init, component). A fresh program image costs a start of
//! about a millisecond more than a clone of the zygote.

use std::os::fd::{AsFd, OwnedFd};
use std::process::{Command, Stdio};

use super::child::Launch;
use super::entry::Registered;
use super::wire::{self, SpawnRequest};
use super::zygote::Started;

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
    #[default]
    Zygote,
    /// This program started again, in a fresh image: nothing of the
    /// parent's memory at `init` time is in the child.
    Reexec,
}

/// Starts this program again as a process child for `request`.
pub(crate) fn spawn(request: &SpawnRequest, descriptors: &[&OwnedFd]) -> Result<Started, String> {
    let bytes = wire::encode(request).map_err(|err| err.to_string())?;
    let (ours, theirs) =
        wire::packet_pair().map_err(|err| format!("a socket for the child: {err}"))?;
    #[allow(
        clippy::disallowed_methods,
        reason = "the supervisor, on the granting side, starts its own program again as a process child"
    )]
    let child = {
        let program =
            std::env::current_exe().map_err(|err| format!("this program's path: {err}"))?;
        Command::new(program)
            .env_clear()
            .env(ROLE, VERSION)
            .stdin(Stdio::from(theirs))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|err| format!("this program could not be started again: {err}"))?
    };
    let pid = child.id();
    // Our own child, not yet waited for: its id cannot have been reused.
    let pidfd = rustix::process::Pid::from_raw(pid as i32)
        .ok_or_else(|| "the child has no process id".to_owned())
        .and_then(|pid| {
            rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
                .map_err(|err| format!("a pidfd for the child: {err}"))
        })?;
    // The pidfd waits for it; the `Child` handle is not needed (dropping it
    // neither waits nor kills).
    drop(child);
    let borrowed: Vec<_> = descriptors.iter().map(|fd| fd.as_fd()).collect();
    if let Err(err) = wire::send_packet(ours.as_fd(), &bytes, &borrowed) {
        let _ = rustix::process::pidfd_send_signal(&pidfd, rustix::process::Signal::KILL);
        return Err(format!("the child could not be handed its request: {err}"));
    }
    Ok(Started {
        pid: pid as i32,
        pidfd,
    })
}

/// In a program started by [`spawn`]: runs the request it was sent and
/// never returns. Returns at once in any other program.
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
    super::sys::clear_environment();
    // The request comes on standard input, the socket `spawn` handed over.
    let Ok(Some((bytes, descriptors))) = wire::recv_packet(std::io::stdin().as_fd()) else {
        super::sys::exit_now(75)
    };
    let Ok(request) = wire::decode::<SpawnRequest>(&bytes) else {
        super::sys::exit_now(75)
    };
    let Some(entry) = entries
        .iter()
        .find(|entry| entry.name() == request.entry && entry.fingerprint() == request.fingerprint)
    else {
        // The control socket came first: say why, as the zygote would.
        if let Some(control) = descriptors.first() {
            let missing = format!(
                "no entry `{}` with this child's types was passed to compartment::process::init",
                request.entry
            );
            let _ = wire::send(control, &wire::FromChild::Refused { missing });
        }
        super::sys::exit_now(76)
    };
    entry.launch(Launch {
        request,
        descriptors,
        zygote: None,
        network_shared: false,
    })
}
