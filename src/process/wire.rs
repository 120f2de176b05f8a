//! What crosses between a supervisor, its zygote and a process child: the
//! messages (postcard), packets with descriptors on the control sockets
//! (`SOCK_SEQPACKET`, `SCM_RIGHTS`), and length-prefixed frames on the
//! channel bridges (`SOCK_STREAM`).

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};
use serde::{Deserialize, Serialize};

use crate::fault::PanicLocation;

/// The most descriptors one packet carries: the kernel's `SCM_MAX_FD`.
pub(crate) const MAX_DESCRIPTORS: usize = 253;

/// The largest control packet: a spawn request with a grant's plain data.
pub(crate) const MAX_PACKET: usize = 128 * 1024;

/// The largest bridged message.
pub(crate) const MAX_FRAME: usize = 16 * 1024 * 1024;

/// A supervisor's request to its zygote. The descriptors travel with it:
/// the control socket's child end, the output pipe's write end, the child
/// end of the init's report socket, then the grant's own in the order it
/// packed them.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SpawnRequest {
    pub(crate) entry: String,
    pub(crate) fingerprint: u64,
    /// The supervisor's process id: the child checks that it is still its
    /// parent once it has asked to die with it.
    pub(crate) supervisor: i32,
    pub(crate) path: String,
    pub(crate) instance: u64,
    pub(crate) confinement: Confinement,
    pub(crate) grant: Vec<u8>,
    /// The child's own part of its seccomp table (on top of the part its
    /// zygote attached for every child), compiled once per specification
    /// for a component whose process id is [`COMPONENT_PID`]; empty if it
    /// could not be (the child then compiles its own).
    pub(crate) seccomp: Vec<u64>,
}

/// A request's grant carries its plain data, which may be one tenant's
/// secret, and a zygote's children are copies of the zygote's memory,
/// freed blocks included: every copy of it is erased before it is freed.
impl Drop for SpawnRequest {
    fn drop(&mut self) {
        erase(&mut self.grant);
    }
}

/// Overwrites `bytes` with zeros, for memory that is about to be freed in
/// a process whose children are copies of it.
pub(crate) fn erase(bytes: &mut [u8]) {
    bytes.fill(0);
    // The writes are to memory about to be freed; this keeps them.
    std::hint::black_box(bytes);
}

/// The component's process id in its own pid namespace: the second
/// process, after the namespace's init.
pub(crate) const COMPONENT_PID: u32 = 2;

/// How a process child is confined, decided on the supervisor's side.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct Confinement {
    /// `Require`: refuse to run the entry if any part is missing.
    pub(crate) require: bool,
    /// `RLIMIT_CPU` in whole seconds.
    pub(crate) cpu_seconds: Option<u64>,
    /// `RLIMIT_DATA` in bytes.
    pub(crate) data_bytes: Option<u64>,
    /// `RLIMIT_NOFILE`.
    pub(crate) open_files: u64,
    /// Threads the entry may start through its context.
    pub(crate) threads: Option<usize>,
}

/// The zygote's answer to a spawn request, and whether a child it made
/// ahead ended unused (killed while it waited). That child's parent is
/// the supervisor's process, which alone can reap it: its pidfd comes
/// last with the answer.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ZygoteAnswer {
    pub(crate) reply: ZygoteReply,
    pub(crate) ended_unused: bool,
}

/// What the zygote did with a request; `Spawned` carries the child's
/// pidfd.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ZygoteReply {
    Spawned {
        pid: i32,
    },
    Refused {
        reason: String,
    },
    /// The kernel (or a filter) refuses the zygote's `clone3`: start
    /// children by running the program again.
    CannotClone {
        reason: String,
    },
}

/// From the supervisor to a running child.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ToChild {
    /// Stop: the child's context is cancelled.
    Cancel,
}

/// From a child to its supervisor.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum FromChild {
    /// Confined as required (or as far as the host allows, under
    /// `BestEffort`); the entry is about to run.
    Confined {
        enforced: Vec<String>,
        missing: Vec<String>,
    },
    /// The confinement could not be put in place as required; the entry
    /// never ran.
    Refused { missing: String },
    /// The entry ended.
    Ended(Ending),
}

/// How a component's process ended, as its init's `waitpid` saw it: the
/// init's one report, on a socket of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum ComponentExit {
    /// It exited with this code.
    Code(i32),
    /// This signal ended it.
    Signal(i32),
}

impl ComponentExit {
    /// The exit a raw `waitpid` status describes.
    pub(crate) fn of(status: libc::c_int) -> Self {
        if libc::WIFSIGNALED(status) {
            Self::Signal(libc::WTERMSIG(status))
        } else if libc::WIFEXITED(status) {
            Self::Code(libc::WEXITSTATUS(status))
        } else {
            Self::Code(1)
        }
    }
}

/// How an entry ended, as the child saw it.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Ending {
    Returned,
    Failed {
        message: String,
        sources: Vec<String>,
    },
    Panicked {
        message: String,
        location: Option<PanicLocation>,
    },
    /// Its grant could not be rebuilt in the child.
    Unpacked {
        reason: String,
    },
}

pub(crate) fn encode<T: Serialize>(value: &T) -> io::Result<Vec<u8>> {
    postcard::to_stdvec(value).map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err))
}

pub(crate) fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> io::Result<T> {
    postcard::from_bytes(bytes).map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err))
}

/// A connected pair of packet sockets, closed on exec.
pub(crate) fn packet_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )?)
}

/// A connected pair of stream sockets, closed on exec.
pub(crate) fn stream_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )?)
}

/// What is ready on `fd` now, of `events`, without waiting: empty if
/// nothing is.
pub(crate) fn ready_now(
    fd: BorrowedFd<'_>,
    events: rustix::event::PollFlags,
) -> io::Result<rustix::event::PollFlags> {
    let mut polled = [rustix::event::PollFd::new(&fd, events)];
    let now = rustix::event::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    rustix::event::poll(&mut polled, Some(&now))?;
    Ok(polled[0].revents())
}

/// How many times a bridge's reader looks for its next frame, giving up
/// its core between looks, before it sleeps in the kernel. A look is a
/// zero-timeout `poll` and a `sched_yield`, about 1 µs on an idle core
/// here, so a reader that finds nothing spends about 100 µs of CPU before
/// it sleeps — once per pause in the flow, not per message — and a frame
/// that comes in the meantime is read without a wake-up (a sleeping
/// reader's wake-up is 10–20 µs on this machine, and a round trip through
/// a child is several hops).
pub(crate) const PATIENCE: u32 = 100;

/// A bridge's socket, read patiently: a read that would wait first looks
/// for data [`PATIENCE`] times, and only then sleeps in `read`.
pub(crate) struct Patient<S>(pub(crate) S);

impl<S: Read + AsFd> Read for Patient<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        for _ in 0..PATIENCE {
            match ready_now(self.0.as_fd(), rustix::event::PollFlags::IN) {
                Ok(ready) if ready.is_empty() => std::thread::yield_now(),
                // Readable, closed, or a `poll` that failed: `read` says which.
                _ => break,
            }
        }
        self.0.read(buf)
    }
}

/// Sends one packet with `descriptors` attached.
pub(crate) fn send_packet(
    socket: BorrowedFd<'_>,
    bytes: &[u8],
    descriptors: &[BorrowedFd<'_>],
) -> io::Result<()> {
    if descriptors.len() > MAX_DESCRIPTORS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} descriptors, more than one message carries ({MAX_DESCRIPTORS})",
                descriptors.len()
            ),
        ));
    }
    let mut space =
        vec![MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_DESCRIPTORS))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !descriptors.is_empty() && !control.push(SendAncillaryMessage::ScmRights(descriptors)) {
        return Err(io::Error::other("the descriptors do not fit one message"));
    }
    loop {
        match rustix::net::sendmsg(
            socket,
            &[IoSlice::new(bytes)],
            &mut control,
            SendFlags::NOSIGNAL,
        ) {
            Ok(sent) if sent == bytes.len() => return Ok(()),
            Ok(_) => return Err(io::Error::other("a control packet was cut short")),
            Err(rustix::io::Errno::INTR) => continue,
            Err(err) => return Err(err.into()),
        }
    }
}

/// Receives one packet and the descriptors attached to it; `None` when the
/// other side has closed.
pub(crate) fn recv_packet(socket: BorrowedFd<'_>) -> io::Result<Option<(Vec<u8>, Vec<OwnedFd>)>> {
    // The next packet's length, without taking it: most are a few bytes,
    // and a buffer of the largest would be cleared for each.
    let length = loop {
        match rustix::net::recv(
            socket,
            &mut [0u8; 0][..],
            RecvFlags::PEEK | RecvFlags::TRUNC,
        ) {
            Ok((_, length)) => break length,
            Err(rustix::io::Errno::INTR) => continue,
            Err(err) => return Err(err.into()),
        }
    };
    let mut bytes = vec![0u8; length.clamp(1, MAX_PACKET)];
    let mut space =
        vec![MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_DESCRIPTORS))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let received = loop {
        match rustix::net::recvmsg(
            socket,
            &mut [IoSliceMut::new(&mut bytes)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        ) {
            Ok(received) => break received,
            Err(rustix::io::Errno::INTR) => continue,
            Err(err) => return Err(err.into()),
        }
    };
    let descriptors: Vec<OwnedFd> = control
        .drain()
        .flat_map(|message| match message {
            RecvAncillaryMessage::ScmRights(fds) => fds.collect::<Vec<_>>(),
            _ => Vec::new(),
        })
        .collect();
    if received.flags.contains(ReturnFlags::TRUNC) || received.flags.contains(ReturnFlags::CTRUNC) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "a control packet or its descriptors were cut short",
        ));
    }
    if received.bytes == 0 && descriptors.is_empty() {
        return Ok(None);
    }
    bytes.truncate(received.bytes);
    Ok(Some((bytes, descriptors)))
}

/// Writes one length-prefixed frame.
pub(crate) fn write_frame(stream: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    let length = u32::try_from(bytes.len())
        .ok()
        .filter(|&length| length as usize <= MAX_FRAME)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "a message of {} bytes, more than a bridge carries ({MAX_FRAME})",
                    bytes.len()
                ),
            )
        })?;
    // One write: a frame is never split between two writers, and a small
    // one costs one system call.
    let mut frame = Vec::with_capacity(bytes.len() + 4);
    frame.extend_from_slice(&length.to_le_bytes());
    frame.extend_from_slice(bytes);
    stream.write_all(&frame)
}

/// Writes a one-byte frame, a word, to a child's stream socket without
/// waiting for room. A socket with no room holds words the child has not
/// read yet, and those wake it as this one would; a thread on the
/// supervisor's side that owes a child a word (a channel's receive among
/// them) never waits on the child. A word is written whole or not at all:
/// the kernel takes a write this small into one buffer or refuses it.
pub(crate) fn send_word_now(socket: &impl AsFd, word: u8) -> io::Result<()> {
    let mut frame = [0u8; 5];
    frame[..4].copy_from_slice(&1u32.to_le_bytes());
    frame[4] = word;
    let flags = SendFlags::DONTWAIT | SendFlags::NOSIGNAL;
    match rustix::net::send(socket, &frame, flags)? {
        5 => Ok(()),
        sent => Err(io::Error::other(format!(
            "a word cut short after {sent} bytes"
        ))),
    }
}

/// Reads one length-prefixed frame; `None` when the other side has closed
/// between frames.
pub(crate) fn read_frame(stream: &mut impl Read) -> io::Result<Option<Vec<u8>>> {
    let mut length = [0u8; 4];
    match stream.read_exact(&mut length) {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(err) => return Err(err),
    }
    let length = u32::from_le_bytes(length) as usize;
    if length > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a frame of {length} bytes, more than a bridge carries"),
        ));
    }
    let mut bytes = vec![0u8; length];
    stream.read_exact(&mut bytes)?;
    Ok(Some(bytes))
}

/// Sends a message with no descriptors on a control socket.
pub(crate) fn send<T: Serialize>(socket: &impl AsFd, message: &T) -> io::Result<()> {
    send_packet(socket.as_fd(), &encode(message)?, &[])
}
