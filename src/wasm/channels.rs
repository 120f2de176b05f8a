//! The crate's own import module, `compartment`: what WASI has no word for
//! — the grant's channel endpoints (bounded, with back-pressure and
//! request/reply) and the instance's cancellation.
//!
//! Messages are bytes: a module's channels carry `Vec<u8>`, and the module
//! and the host agree on their encoding. A receive whose buffer is too
//! small answers `E2BIG` with the length needed and keeps the message for
//! the next receive on that handle. Every blocking call ends when the
//! instance is cancelled (`ECANCELED`).
//!
//! The imports are listed, with their signatures, in the module docs of
//! [`wasm`](crate::wasm).
//!
//! `EPIPE` means the channel is disconnected (or the caller stopped
//! waiting), `ENOTCAPABLE` that the endpoint was revoked.

use wasmtime::{Caller, Linker};

use super::errno::{Answer, Errno};
use super::host::{Host, with};
use super::memory::Guest;
use super::table::Handle;
use crate::channel::{Request, TryRecvError, TrySendError};
use crate::context::ContextError;

const MODULE: &str = "compartment";

fn context_errno(err: ContextError) -> Errno {
    match err {
        ContextError::Cancelled => Errno::CANCELED,
        ContextError::Disconnected => Errno::PIPE,
        ContextError::Revoked => Errno::NOTCAPABLE,
        ContextError::Timeout => Errno::TIMEDOUT,
    }
}

/// Writes `message` into the module's buffer and its length to `out_len`;
/// `Err` with the message back when the buffer is too small.
fn deliver(
    guest: &mut Guest<'_>,
    buf: i32,
    len: i32,
    out_len: i32,
    message: Vec<u8>,
) -> Result<(), (Errno, Option<Vec<u8>>)> {
    guest
        .put_u32(out_len, message.len() as u32)
        .map_err(|errno| (errno, Some(message.clone())))?;
    if message.len() > len as usize {
        return Err((Errno::TOOBIG, Some(message)));
    }
    guest
        .write(buf, &message)
        .map_err(|errno| (errno, Some(message)))
}

/// A receive on handle `fd`: what the last one kept, or the next message.
fn receive(
    guest: &mut Guest<'_>,
    host: &mut Host,
    fd: i32,
    buf: i32,
    len: i32,
    out_len: i32,
    wait: bool,
) -> Answer {
    let message = match host.table.pending.remove(&(fd as u32)) {
        Some(kept) => kept,
        None => {
            let Some(Handle::Receiver(rx)) = host.table.get(fd) else {
                return Err(Errno::BADF);
            };
            if wait {
                host.cx.recv(rx).map_err(context_errno)?
            } else {
                host.cx.check().map_err(|_| Errno::CANCELED)?;
                rx.try_recv().map_err(|err| match err {
                    TryRecvError::Empty => Errno::AGAIN,
                    TryRecvError::Disconnected => Errno::PIPE,
                    TryRecvError::Revoked => Errno::NOTCAPABLE,
                })?
            }
        }
    };
    deliver(guest, buf, len, out_len, message).map_err(|(errno, kept)| {
        if let Some(kept) = kept {
            host.table.pending.insert(fd as u32, kept);
        }
        errno
    })
}

/// Adds the `compartment` module to `linker`.
pub(crate) fn add(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    linker.func_wrap(
        MODULE,
        "lookup",
        |mut c: Caller<'_, Host>, name: i32, len: i32, out: i32| {
            with(&mut c, |guest, host| {
                let number = host
                    .table
                    .lookup(guest.str(name, len)?)
                    .ok_or(Errno::NOENT)?;
                guest.put_u32(out, number)
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "send",
        |mut c: Caller<'_, Host>, fd: i32, ptr: i32, len: i32| {
            with(&mut c, |guest, host| {
                let Some(Handle::Sender(tx)) = host.table.get(fd) else {
                    return Err(Errno::BADF);
                };
                let message = guest.bytes(ptr, len)?.to_vec();
                host.cx
                    .send(tx, message)
                    .map_err(|err| context_errno(err.error))
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "try_send",
        |mut c: Caller<'_, Host>, fd: i32, ptr: i32, len: i32| {
            with(&mut c, |guest, host| {
                let Some(Handle::Sender(tx)) = host.table.get(fd) else {
                    return Err(Errno::BADF);
                };
                let message = guest.bytes(ptr, len)?.to_vec();
                tx.try_send(message).map_err(|err| match err {
                    TrySendError::Full(_) => Errno::AGAIN,
                    TrySendError::Disconnected(_) => Errno::PIPE,
                    TrySendError::Revoked(_) => Errno::NOTCAPABLE,
                })
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "recv",
        |mut c: Caller<'_, Host>, fd: i32, buf: i32, len: i32, out_len: i32| {
            with(&mut c, |guest, host| {
                receive(guest, host, fd, buf, len, out_len, true)
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "try_recv",
        |mut c: Caller<'_, Host>, fd: i32, buf: i32, len: i32, out_len: i32| {
            with(&mut c, |guest, host| {
                receive(guest, host, fd, buf, len, out_len, false)
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "call",
        |mut c: Caller<'_, Host>,
         fd: i32,
         req: i32,
         req_len: i32,
         buf: i32,
         len: i32,
         out_len: i32| {
            with(&mut c, |guest, host| {
                let answer = match host.table.pending.remove(&(fd as u32)) {
                    // The answer to the last call, which did not fit.
                    Some(kept) => kept,
                    None => {
                        let Some(Handle::Caller(tx)) = host.table.get(fd) else {
                            return Err(Errno::BADF);
                        };
                        let body = guest.bytes(req, req_len)?.to_vec();
                        let (request, pending) = Request::new(body);
                        host.cx
                            .send(tx, request)
                            .map_err(|err| context_errno(err.error))?;
                        pending
                            .recv_or_cancelled(host.cx.cancellation())
                            .map_err(context_errno)?
                    }
                };
                deliver(guest, buf, len, out_len, answer).map_err(|(errno, kept)| {
                    if let Some(kept) = kept {
                        host.table.pending.insert(fd as u32, kept);
                    }
                    errno
                })
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "serve",
        |mut c: Caller<'_, Host>, fd: i32, buf: i32, len: i32, out_len: i32, out_reply: i32| {
            with(&mut c, |guest, host| {
                // Room for the reply handle first: a request taken is never
                // dropped for want of it.
                if !host.table.has_room() {
                    return Err(Errno::MFILE);
                }
                let request = match host.table.pending_requests.remove(&(fd as u32)) {
                    Some(kept) => kept,
                    None => {
                        let Some(Handle::Server(rx)) = host.table.get(fd) else {
                            return Err(Errno::BADF);
                        };
                        host.cx.recv_untracked(rx).map_err(context_errno)?
                    }
                };
                let delivered = guest
                    .put_u32(out_len, request.body.len() as u32)
                    .and_then(|()| {
                        if request.body.len() > len as usize {
                            Err(Errno::TOOBIG)
                        } else {
                            guest.write(buf, &request.body)
                        }
                    })
                    .and_then(|()| guest.put_u32(out_reply, 0));
                if let Err(errno) = delivered {
                    // Kept for the next `serve` on this handle.
                    host.table.pending_requests.insert(fd as u32, request);
                    return Err(errno);
                }
                let number = host.table.place(Handle::Reply(request.reply));
                guest.put_u32(out_reply, number)
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "reply",
        |mut c: Caller<'_, Host>, fd: i32, ptr: i32, len: i32| {
            with(&mut c, |guest, host| {
                match host.table.get(fd) {
                    Some(Handle::Reply(_)) => {}
                    _ => return Err(Errno::BADF),
                }
                let answer = guest.bytes(ptr, len)?.to_vec();
                let Some(Handle::Reply(reply)) = host.table.remove(fd) else {
                    return Err(Errno::BADF);
                };
                reply.send(answer).map_err(|_| Errno::PIPE)
            })
        },
    )?;
    linker.func_wrap(MODULE, "cancelled", |c: Caller<'_, Host>| {
        i32::from(c.data().cx.is_cancelled())
    })?;
    Ok(())
}
