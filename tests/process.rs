//! The process tier: faults that would take a thread-tier program down are
//! contained in a child process, the child holds nothing but its grant, and
//! its messages survive its crashes.
//!
//! This binary has its own `main` (`harness = false`,
//! `testkit::process_main`): the process tier's zygote must be forked while
//! the program has one thread, before any test runs. Each test waits for
//! the event that proves its point; none sleeps.

#![allow(
    clippy::disallowed_methods,
    reason = "the tests are the granting side, and their components try ambient calls on purpose"
)]

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::process::CommandExt;
use std::time::Duration;

use compartment::caps::{Dir, Env, MonotonicClock, Net, NetRule, ReadOnlyDir};
use compartment::channel::{self, CallError, Receiver, Request, Sender};
use compartment::event::{Event, EventKind, ExitReason};
use compartment::process::{Portable, Spawning};
use compartment::supervisor::NodeKind;
use compartment::testkit::{
    self, Host, Outcome, ProbeOptions, Report, Sandbox as TestkitSandbox, probe_hosted,
};
use compartment::{
    Child, Context, Fault, FaultKind, Grant, Limits, Lockdown, ProcessExit, Restart, Revoker,
    Supervisor, ambient_authority, entry,
};

/// Long enough for a loaded CI machine; only the failure path waits it out.
const PATIENCE: Duration = Duration::from_secs(60);

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

// ---- entries -------------------------------------------------------------

fn aborts(_: (), _: &Context) -> Result {
    std::process::abort()
}

/// Says it is running, then aborts.
fn aborts_once_ready(ready: Sender<u8>, _: &Context) -> Result {
    ready.send(1)?;
    std::process::abort()
}

fn exits(code: i32, _: &Context) -> Result {
    std::process::exit(code)
}

#[allow(unconditional_recursion, reason = "the point is to overflow the stack")]
fn recurse(depth: u64) -> u64 {
    let frame = [depth; 64];
    recurse(std::hint::black_box(frame[7]) + 1) + 1
}

fn overflows(_: (), _: &Context) -> Result {
    std::hint::black_box(recurse(0));
    Ok(())
}

fn segfaults(_: (), _: &Context) -> Result {
    let address = std::hint::black_box(8usize) as *const u8;
    // SAFETY: not safe at all — reading address 8 is the fault under test.
    let _ = unsafe { std::ptr::read_volatile(address) };
    Ok(())
}

fn panics(_: (), _: &Context) -> Result {
    panic!("a plugin bug")
}

fn returns_error(_: (), _: &Context) -> Result {
    Err("the plugin gave up".into())
}

/// Replaces the process's panic hook with one that aborts, then panics.
fn hijacks_panic_hook(_: (), _: &Context) -> Result {
    std::panic::set_hook(Box::new(|_| std::process::abort()));
    panic!("after the hook was replaced")
}

/// Leaves a busy thread of its own behind, as a global pool would, and
/// returns.
fn leaves_a_thread(_: (), _: &Context) -> Result {
    std::thread::spawn(|| {
        loop {
            std::hint::spin_loop();
        }
    });
    Ok(())
}

fn ignores_cancellation(ready: Sender<u8>, _: &Context) -> Result {
    ready.send(1)?;
    loop {
        std::hint::spin_loop();
    }
}

fn forks(_: (), _: &Context) -> Result {
    for _ in 0..64 {
        let _ = std::process::Command::new("/bin/sh").spawn();
    }
    Ok(())
}

fn hogs_memory(_: (), _: &Context) -> Result {
    let mut hog: Vec<Vec<u8>> = Vec::new();
    loop {
        hog.push(vec![1u8; 16 << 20]);
    }
}

fn burns_cpu(_: (), _: &Context) -> Result {
    let mut x = 0u64;
    loop {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
}

#[derive(Grant, Portable)]
struct Relay {
    inbox: Receiver<u32>,
    out: Sender<u32>,
    /// Where it notes which messages already crashed it once.
    notes: Dir,
}

/// Echoes every message; aborts the first time it sees an odd one, with
/// the message in flight.
fn relays(grant: Relay, cx: &Context) -> Result {
    while let Ok(message) = cx.recv(&grant.inbox) {
        let note = format!("{message}");
        if message % 2 == 1 && !grant.notes.exists(&note) {
            grant.notes.write(&note, b"")?;
            std::process::abort();
        }
        grant.out.send(message)?;
    }
    Ok(())
}

#[derive(Grant, Portable)]
struct Holder {
    dir: ReadOnlyDir,
    ready: Sender<u8>,
}

fn holds(grant: Holder, cx: &Context) -> Result {
    grant.ready.send(1)?;
    while !cx.is_cancelled() {
        cx.sleep(Duration::from_secs(3600))?;
    }
    drop(grant.dir);
    Ok(())
}

#[derive(Grant, Portable)]
struct Secret {
    ready: Sender<u8>,
    #[grant(data)]
    secret: String,
}

/// Holds its grant's secret until it is stopped.
fn keeps_a_secret(grant: Secret, cx: &Context) -> Result {
    grant.ready.send(1)?;
    while !cx.is_cancelled() {
        cx.sleep(Duration::from_secs(3600))?;
    }
    drop(std::hint::black_box(grant.secret));
    Ok(())
}

#[derive(Grant, Portable)]
struct Census {
    granted: ReadOnlyDir,
    report: Sender<Vec<String>>,
}

/// Reports every descriptor the process holds, by number and kind.
fn counts_descriptors(grant: Census, _: &Context) -> Result {
    let mut open = Vec::new();
    for fd in 0..4096 {
        // SAFETY: only borrowed for the two calls below, while it is open.
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        if rustix::io::fcntl_getfd(borrowed).is_err() {
            continue;
        }
        let kind = match rustix::fs::fstat(borrowed) {
            Ok(stat) => match rustix::fs::FileType::from_raw_mode(stat.st_mode) {
                rustix::fs::FileType::Directory => "directory",
                rustix::fs::FileType::Socket => "socket",
                rustix::fs::FileType::Fifo => "pipe",
                rustix::fs::FileType::RegularFile => "file",
                _ => "other",
            },
            Err(_) => "unknown",
        };
        open.push(format!("{fd}:{kind}"));
    }
    let _ = grant.granted.exists("x");
    grant.report.send(open)?;
    Ok(())
}

/// Serves doubling requests; a request for 0 is dropped unanswered, and a
/// request for 999 aborts the process mid-request.
fn doubles(requests: Receiver<Request<u64, u64>>, cx: &Context) -> Result {
    while let Ok(request) = cx.recv_untracked(&requests) {
        match request.body {
            0 => drop(request),
            777 => panic!("777 is not doubled"),
            998 => std::process::exit(3),
            999 => std::process::abort(),
            n => {
                let _ = request.reply.send(n * 2);
            }
        }
    }
    Ok(())
}

#[derive(Grant, Portable)]
struct Caller {
    server: Sender<Request<u64, u64>>,
    results: Sender<u64>,
}

/// Calls a server on the supervisor's side and reports the answers; then
/// makes the call the server panics on, and fails with what it was told.
fn calls_out(grant: Caller, _: &Context) -> Result {
    for n in 1..=20 {
        let answer = grant.server.call(n).map_err(|e| e.to_string())?;
        grant.results.send(answer)?;
    }
    match grant.server.call(0) {
        Err(CallError::Crashed(crash)) => Err(format!("told: {crash}").into()),
        other => Err(format!("expected the server's panic, got {other:?}").into()),
    }
}

fn squares(requests: Receiver<Request<u64, u64>>, cx: &Context) -> Result {
    while let Ok(request) = cx.recv_untracked(&requests) {
        if request.body == 0 {
            panic!("zero is not squared");
        }
        let _ = request.reply.send(request.body * request.body);
    }
    Ok(())
}

#[derive(Grant, Portable)]
struct Dialer {
    net: Net,
    #[grant(data)]
    granted: SocketAddr,
    #[grant(data)]
    other: SocketAddr,
    #[grant(data)]
    listen: SocketAddr,
    report: Sender<String>,
}

/// Connects where it may, is refused where it may not, cannot make a socket
/// of its own, and serves one connection on a listener its broker bound.
fn dials(g: Dialer, _: &Context) -> Result {
    let mut stream = g.net.connect_tcp(g.granted)?;
    stream.write_all(b"hello from the child")?;
    drop(stream);
    match g.net.connect_tcp(g.other) {
        Err(err) if err.is_refusal() => g.report.send("other port: refused".to_owned())?,
        other => g.report.send(format!("other port: {other:?}"))?,
    }
    match std::net::TcpStream::connect(g.granted) {
        Err(err) => g.report.send(format!("own socket: {:?}", err.kind()))?,
        Ok(_) => g.report.send("own socket: CONNECTED".to_owned())?,
    }
    let listener = g.net.bind_tcp(g.listen)?;
    g.report.send("listening".to_owned())?;
    let (mut peer, _) = listener.accept()?;
    let mut greeting = String::new();
    peer.read_to_string(&mut greeting)?;
    g.report.send(format!("accepted: {greeting}"))?;
    Ok(())
}

#[derive(Grant, Portable)]
struct Poisoned {
    inbox: Receiver<u32>,
    out: Sender<u32>,
}

/// Echoes every message but 7, which aborts the process each time.
fn chokes_on_seven(grant: Poisoned, cx: &Context) -> Result {
    while let Ok(message) = cx.recv(&grant.inbox) {
        if message == 7 {
            std::process::abort();
        }
        grant.out.send(message)?;
    }
    Ok(())
}

#[derive(Grant, Portable)]
struct Environment {
    env: Env,
    report: Sender<SeenEnvironment>,
    /// The supervisor's argument and environment blocks (start, end), at
    /// the addresses a zygote's child has them too.
    program: Vec<(u64, u64)>,
}

/// Variable names, the granted variable, non-empty arguments, and how many
/// bytes of the supervisor's argument and environment text are left.
type SeenEnvironment = (Vec<String>, String, Vec<String>, usize);

/// How a hostile child breaks its side of the protocol, writing to its
/// descriptors itself as no honest child's runtime does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
enum Forgery {
    /// An answer to a request it was never sent: the supervisor's side
    /// would have kept it, for as long as the child lived.
    AnswerNeverAsked,
    /// A second answer to a request it answered already.
    AnswerTwice,
    /// A frame of a kind no bridge has, on a bridge for requests it serves,
    UnknownFrame,
    /// on one for messages it receives,
    UnknownFrameToReceive,
    /// on one for messages it sends,
    UnknownFrameToSend,
    /// and on one for calls it makes.
    UnknownFrameToCall,
    /// A length past what a bridge carries.
    OversizedFrame,
    /// An end of its sender's ring further on than the ring holds,
    RingPastItsEnd,
    /// and a part in it longer than a ring's parts.
    RingPartTooLong,
    /// Its receiver's ring closed from its own, reading, end: only the
    /// writing side's reader closes a ring.
    RingClosedByItsReader,
    /// A report on its control socket that does not decode.
    GarbledReport,
}

#[derive(Grant, Portable)]
struct Forger {
    requests: Receiver<Request<u64, u64>>,
    #[grant(data)]
    forgery: Forgery,
}

#[derive(Grant, Portable)]
struct Fed {
    inbox: Receiver<u64>,
}

/// Asks for its next message with a frame of no known kind.
fn forges_on_a_receiver(grant: Fed, cx: &Context) -> Result {
    forge_frame(&[42], None)?;
    cx.recv(&grant.inbox)?;
    Err("cut off".into())
}

/// Sends a frame of no known kind, then messages until it cannot.
fn forges_on_a_sender(out: Sender<u64>, _: &Context) -> Result {
    forge_frame(&[42], None)?;
    loop {
        out.send(1)?;
    }
}

/// The bytes of a bridged sender's ring (a page of positions, then the
/// frames), as the runtime maps them.
const RING_BYTES: usize = 4096 + 64 * 1024;

/// Maps the memory of every ring among the process's descriptors: the
/// regular files of a ring's size.
fn rings() -> Vec<(BorrowedFd<'static>, *mut u8)> {
    (3..256)
        .filter_map(|fd| {
            // SAFETY: only borrowed for the calls below, while it is open;
            // the process keeps its rings open until it ends.
            let fd = unsafe { BorrowedFd::borrow_raw(fd) };
            let stat = rustix::fs::fstat(fd).ok()?;
            let file = rustix::fs::FileType::from_raw_mode(stat.st_mode)
                == rustix::fs::FileType::RegularFile;
            (file && stat.st_size == RING_BYTES as i64).then_some(fd)
        })
        .filter_map(|fd| {
            // SAFETY: a new shared mapping the kernel places, of a file at
            // least that long; never unmapped, as the process ends soon.
            let memory = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    RING_BYTES,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED,
                    fd.as_raw_fd(),
                    0,
                )
            };
            (memory != libc::MAP_FAILED).then_some((fd, memory.cast::<u8>()))
        })
        .collect()
}

/// Writes what no honest runtime writes into its sender's ring, then
/// rings the doorbell and sends nothing more (its runtime's next frame
/// would write over the forgery); fails with "cut off" if it lives on.
fn forges_in_its_ring(grant: RingForger, cx: &Context) -> Result {
    let (_, ring) = *rings().first().ok_or("no ring")?;
    // The ring's first frame (after the page of positions), then the end
    // of what is published (that page's first word). A whole message is
    // its length, 2, then its tag and the number 1 as postcard writes it.
    let (frame, end): (Vec<u8>, u64) = match grant.forgery {
        Forgery::RingPastItsEnd => (vec![2, 0, 0, 0, 1, 1], 64 * 1024 + 1),
        _ => ((16u32 * 1024 + 1).to_le_bytes().to_vec(), 100),
    };
    // SAFETY: both within the mapping, the end's word aligned; the memory
    // is shared with the supervisor, which reads it with atomics.
    unsafe {
        std::ptr::copy_nonoverlapping(frame.as_ptr(), ring.add(4096), frame.len());
        (*ring.cast::<std::sync::atomic::AtomicU64>())
            .store(end, std::sync::atomic::Ordering::Release);
    }
    // The doorbell, in case the supervisor's side sleeps.
    forge_frame(&[8], None)?;
    while !cx.is_cancelled() {
        cx.sleep(Duration::from_secs(60))?;
    }
    drop(grant.out);
    Err("cut off".into())
}

/// Closes its receiver's ring as only a ring's supervisor-side reader
/// does, then asks for a message; fails with "cut off" if it lives on.
fn closes_its_receivers_ring(grant: Fed, cx: &Context) -> Result {
    let (_, ring) = *rings().first().ok_or("no ring")?;
    // SAFETY: the closing word (the sixth line of the page of positions)
    // is within the mapping and aligned; the supervisor reads it with
    // atomics.
    unsafe {
        (*ring.cast::<std::sync::atomic::AtomicU64>().add(40))
            .store(1, std::sync::atomic::Ordering::Release);
    }
    cx.recv(&grant.inbox)?;
    Err("cut off".into())
}

#[derive(Grant, Portable)]
struct RingForger {
    out: Sender<u64>,
    #[grant(data)]
    forgery: Forgery,
}

/// Tries to shrink and to grow its rings' memory (were it to shrink, the
/// supervisor's process would die touching it), then reports how each try
/// ended, over a ring.
fn resizes_its_rings(report: Sender<Vec<String>>, _: &Context) -> Result {
    let mut tries = Vec::new();
    for (fd, _) in rings() {
        for size in [0, 4096, 1 << 20] {
            tries.push(match rustix::fs::ftruncate(fd, size) {
                Ok(()) => format!("resized to {size}"),
                Err(err) => format!("refused: {err}"),
            });
        }
    }
    report.send(tries)?;
    Ok(())
}

#[derive(Grant, Portable)]
struct Streamer {
    out: Sender<u64>,
    count: u64,
    /// How many `u64::MAX` follow the stream: one per receiver, each of
    /// which stops at the first it takes.
    ends: u64,
}

/// Sends `0..count`, then the ends.
fn streams(g: Streamer, _: &Context) -> Result {
    for message in 0..g.count {
        g.out.send(message)?;
    }
    for _ in 0..g.ends {
        g.out.send(u64::MAX)?;
    }
    Ok(())
}

#[derive(Grant)]
struct Selector {
    inbox: Receiver<u64>,
    idle: Receiver<u64>,
    report: Sender<Vec<u64>>,
}

/// A thread component that waits for `inbox` in a selection, takes what
/// it can until `u64::MAX`, and reports what it took.
fn selects(g: Selector, cx: &Context) -> Result {
    let mut taken = Vec::new();
    loop {
        let mut select = cx.select();
        let inbox = select.recv(&g.inbox);
        select.recv(&g.idle);
        if select.ready()? != inbox {
            continue;
        }
        // Another receiver may take the message first: this waits on.
        let message = cx.recv(&g.inbox)?;
        if message == u64::MAX {
            break;
        }
        taken.push(message);
    }
    g.report.send(taken)?;
    Ok(())
}

#[derive(Grant, Portable)]
struct Flood {
    out: Sender<u64>,
    ended: Sender<u64>,
}

/// Sends until a send fails, then says how many went.
fn floods(g: Flood, _: &Context) -> Result {
    let mut sent = 0;
    while g.out.send(sent).is_ok() {
        sent += 1;
    }
    g.ended.send(sent)?;
    Ok(())
}

#[derive(Grant, Portable)]
struct Pauser {
    out: Sender<u64>,
    go: Receiver<u8>,
}

/// How many messages [`streams_then_pauses`] sends before it pauses.
const BEFORE_THE_PAUSE: u64 = 20_000;

/// Sends a stream, waits for word, sends four more, then waits for its
/// end (no second word comes).
fn streams_then_pauses(g: Pauser, cx: &Context) -> Result {
    for message in 0..BEFORE_THE_PAUSE {
        g.out.send(message)?;
    }
    cx.recv(&g.go)?;
    for message in BEFORE_THE_PAUSE..BEFORE_THE_PAUSE + 4 {
        g.out.send(message)?;
    }
    let _ = cx.recv(&g.go);
    Ok(())
}

/// Sends messages of many lengths, from one byte to several times a ring,
/// each filled with its own number.
fn sends_long_and_short(out: Sender<Vec<u8>>, _: &Context) -> Result {
    for (number, length) in message_lengths().enumerate() {
        out.send(vec![number as u8; length])?;
    }
    Ok(())
}

#[derive(Grant, Portable)]
struct LongAndShort {
    inbox: Receiver<Vec<u8>>,
    report: Sender<(usize, bool)>,
    #[grant(data)]
    count: usize,
}

/// Receives `count` messages, each in one of the ways a component waits
/// for a message — a receive through its context, a selection, short
/// timeouts in a row — and reports each one's length and whether every
/// byte is its number's.
fn receives_long_and_short(grant: LongAndShort, cx: &Context) -> Result {
    for number in 0..grant.count {
        let message = match number % 3 {
            0 => cx.recv(&grant.inbox)?,
            1 => {
                let mut select = cx.select();
                select.recv(&grant.inbox);
                select.ready()?;
                cx.recv(&grant.inbox)?
            }
            _ => loop {
                match grant.inbox.recv_timeout(Duration::from_millis(1)) {
                    Ok(message) => break message,
                    Err(channel::RecvTimeoutError::Timeout) => {}
                    Err(err) => return Err(err.into()),
                }
            },
        };
        let whole = message.iter().all(|&byte| byte == number as u8);
        grant.report.send((message.len(), whole))?;
    }
    Ok(())
}

fn message_lengths() -> impl Iterator<Item = usize> {
    [1, 3, 16_000, 16_384, 16_385, 70_000, 5, 300_000, 12, 65_536]
        .into_iter()
        .cycle()
        .take(40)
}

/// Makes a call with a frame of no known kind, then a real one.
fn forges_on_a_caller(server: Sender<Request<u64, u64>>, _: &Context) -> Result {
    forge_frame(&[42], None)?;
    server.call(1)?;
    Err("cut off".into())
}

/// The descriptors of this process that are sockets of `kind`.
fn sockets_of(kind: libc::c_int) -> Vec<BorrowedFd<'static>> {
    (3..256)
        .filter(|&fd| {
            let mut found: libc::c_int = 0;
            let mut length = size_of::<libc::c_int>() as libc::socklen_t;
            // SAFETY: `found` and `length` are valid for writes of the sizes
            // given; a descriptor that is not a socket only fails.
            let asked = unsafe {
                libc::getsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_TYPE,
                    (&raw mut found).cast(),
                    &raw mut length,
                )
            };
            asked == 0 && found == kind
        })
        // SAFETY: the process keeps these open until it ends.
        .map(|fd| unsafe { BorrowedFd::borrow_raw(fd) })
        .collect()
}

/// Writes `frame` as a bridge frame (length first) to the child's one
/// bridge; `length` stands in for the frame's own if given.
fn forge_frame(frame: &[u8], length: Option<u32>) -> Result {
    let bridge = sockets_of(libc::SOCK_STREAM)
        .into_iter()
        .next()
        .ok_or("no bridge")?;
    let length = length.unwrap_or(u32::try_from(frame.len())?);
    let bytes = [&length.to_le_bytes()[..], frame].concat();
    rustix::io::write(bridge, &bytes)?;
    Ok(())
}

/// Serves doubling requests after breaking the protocol as `forgery` says;
/// fails with "cut off" if its requests stop coming (the protocol held, but
/// the child lives on).
fn forges(grant: Forger, cx: &Context) -> Result {
    // A numbered frame: tag, request number, postcard payload.
    let numbered = |tag: u8, number: u64, payload: &[u8]| {
        [&[tag][..], &number.to_le_bytes()[..], payload].concat()
    };
    match grant.forgery {
        Forgery::AnswerNeverAsked => forge_frame(&numbered(5, 1_000_000, &[42]), None)?,
        Forgery::AnswerTwice => {
            let request = cx.recv_untracked(&grant.requests)?;
            let number = request.body;
            let _ = request.reply.send(number * 2);
            forge_frame(&numbered(5, 0, &[42]), None)?;
        }
        Forgery::UnknownFrame => forge_frame(&[42], None)?,
        Forgery::UnknownFrameToReceive
        | Forgery::UnknownFrameToSend
        | Forgery::UnknownFrameToCall
        | Forgery::RingPastItsEnd
        | Forgery::RingPartTooLong
        | Forgery::RingClosedByItsReader => {
            return Err("forged elsewhere".into());
        }
        Forgery::OversizedFrame => forge_frame(&[], Some(u32::MAX))?,
        Forgery::GarbledReport => {
            for control in sockets_of(libc::SOCK_SEQPACKET) {
                rustix::io::write(control, &[0xff; 16])?;
            }
        }
    }
    while let Ok(request) = cx.recv_untracked(&grant.requests) {
        let number = request.body;
        let _ = request.reply.send(number * 2);
    }
    Err("cut off".into())
}

/// Reports a clean end it did not have, shuts the control socket so that
/// nothing more is said on it, then does what its policy kills it for.
fn lies_about_its_end(_: (), _: &Context) -> Result {
    let control = sockets_of(libc::SOCK_SEQPACKET)
        .into_iter()
        .next()
        .ok_or("no control socket")?;
    // The runtime's report of an entry that returned, as postcard writes it.
    rustix::io::write(control, &[2, 0])?;
    // SAFETY: a shutdown of a descriptor the process holds.
    unsafe { libc::shutdown(control.as_raw_fd(), libc::SHUT_WR) };
    let refused = std::process::Command::new("/bin/sh").exec();
    Err(format!("not killed by its policy: {refused}").into())
}

/// Reports the names of every environment variable the process has, and
/// what its grant's `Env` says of the one variable it names.
fn reads_environment(grant: Environment, _: &Context) -> Result {
    let names = std::env::vars_os()
        .map(|(name, _)| name.to_string_lossy().into_owned())
        .collect();
    let granted = grant
        .env
        .get("COMPARTMENT_TEST_GRANTED")?
        .unwrap_or_default()
        .to_owned();
    let arguments = std::env::args_os()
        .map(|argument| argument.to_string_lossy().into_owned())
        .filter(|argument| !argument.is_empty())
        .collect();
    // Hostile code reads its memory as it likes.
    let left = nonzero_bytes(&grant.program);
    grant.report.send((names, granted, arguments, left))?;
    Ok(())
}

/// How many bytes of `blocks` (this process's argument and environment
/// blocks, or a zygote child's copies of the supervisor's) are not zero.
fn nonzero_bytes(blocks: &[(u64, u64)]) -> usize {
    blocks
        .iter()
        .flat_map(|&(start, end)| start..end)
        // SAFETY: each range is the program's argument or environment
        // block, which the kernel mapped in the supervisor's process and
        // which a zygote's child, a copy of it, keeps at the same address.
        .filter(|&at| unsafe { std::ptr::read_volatile(at as usize as *const u8) } != 0)
        .count()
}

/// This process's argument and environment blocks, from `/proc/self/stat`.
fn program_blocks() -> Vec<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 1..];
    let fields: Vec<u64> = after_name
        .split_whitespace()
        .skip(45)
        .take(4)
        .map(|field| field.parse().unwrap())
        .collect();
    vec![(fields[0], fields[1]), (fields[2], fields[3])]
}

/// What the escape battery probes: a writable subdirectory and the
/// read-only tree around it.
#[derive(Grant, Portable)]
struct Probed {
    root: Dir,
    docs: ReadOnlyDir,
}

impl Probed {
    fn of(sandbox: &TestkitSandbox) -> Self {
        Self {
            root: sandbox.dir().unwrap().open_dir("docs/deep").unwrap(),
            docs: sandbox.read_only().unwrap(),
        }
    }
}

#[derive(Grant)]
struct ThreadBattery {
    probed: Probed,
    host: Host,
    results: Sender<Report>,
}

/// The battery from a locked-down thread, for comparison.
fn probes_from_a_thread(g: ThreadBattery, _: &Context) -> Result {
    let report = probe_hosted(&g.probed, &g.host, &battery_options());
    g.results.send(report)?;
    Ok(())
}

fn battery_options() -> ProbeOptions {
    ProbeOptions {
        ambient: true,
        beyond_threads: true,
        race_rounds: 100,
    }
}

fn unregistered(_: (), _: &Context) -> Result {
    Ok(())
}

fn keeps_time(clock: MonotonicClock, _: &Context) -> Result {
    clock.now()?;
    Ok(())
}

fn thread_panics(_: (), _: &Context) -> Result {
    panic!("a thread-tier panic after a child replaced its hook")
}

// ---- helpers -------------------------------------------------------------

/// Starts `child` alone under a supervisor and returns the first fault.
fn first_fault(child: Child) -> Fault {
    let supervisor = Supervisor::new("host").intensity(1000, Duration::from_secs(60));
    let events = supervisor.events(256);
    let system = supervisor
        .child(child.restart(Restart::Temporary))
        .start()
        .expect("the tree starts");
    let (fault, seen) = events.wait_for(PATIENCE, |e| matches!(e.kind, EventKind::Faulted { .. }));
    system.shutdown();
    match fault.map(|e| e.kind) {
        Some(EventKind::Faulted { fault }) => fault,
        _ => panic!("no fault; events: {seen:#?}"),
    }
}

fn died_by(fault: &Fault) -> &ProcessExit {
    match &fault.kind {
        FaultKind::Died { exit, .. } => exit,
        other => panic!("expected a process death, got {other:?} ({fault})"),
    }
}

fn start_failure(fault: &Fault) -> &str {
    match &fault.kind {
        FaultKind::StartFailed { message } => message,
        other => panic!("expected a start that failed, got {other:?} ({fault})"),
    }
}

fn signal(fault: &Fault) -> i32 {
    match died_by(fault) {
        ProcessExit::Signal { number, .. } => *number,
        other => panic!("expected a signal, got {other:?} ({fault})"),
    }
}

// ---- tests ---------------------------------------------------------------

fn abort_is_a_fault_not_the_end() {
    let fault = first_fault(Child::process("aborts", entry!(aborts), ()));
    assert_eq!(signal(&fault), libc::SIGABRT, "{fault}");
}

fn exit_is_a_fault_with_its_code() {
    let fault = first_fault(Child::process("exits", entry!(exits), 3));
    assert_eq!(died_by(&fault), &ProcessExit::Code(3));
}

fn stack_overflow_is_contained() {
    let fault = first_fault(Child::process("overflows", entry!(overflows), ()));
    assert!(
        [libc::SIGABRT, libc::SIGSEGV].contains(&signal(&fault)),
        "{fault}"
    );
}

fn segfault_through_unsafe_is_contained() {
    let fault = first_fault(Child::process("segfaults", entry!(segfaults), ()));
    assert_eq!(signal(&fault), libc::SIGSEGV, "{fault}");
}

fn panics_and_errors_are_reported_as_in_a_thread() {
    let fault = first_fault(Child::process("panics", entry!(panics), ()));
    match &fault.kind {
        FaultKind::Panic {
            message, location, ..
        } => {
            assert_eq!(message, "a plugin bug");
            let location = location.as_ref().expect("the child reports where");
            assert!(location.file.ends_with("process.rs"), "{location}");
        }
        other => panic!("{other:?}"),
    }
    let fault = first_fault(Child::process("errs", entry!(returns_error), ()));
    assert!(
        matches!(&fault.kind, FaultKind::Error { message, .. } if message == "the plugin gave up"),
        "{fault}"
    );
}

fn a_replaced_panic_hook_stays_in_its_process() {
    let supervisor = Supervisor::new("host").intensity(1000, Duration::from_secs(60));
    let events = supervisor.events(256);
    let system = supervisor
        .child(
            Child::process("hijacker", entry!(hijacks_panic_hook), ()).restart(Restart::Temporary),
        )
        .start()
        .unwrap();
    let (hijacked, seen) = events.wait_for(PATIENCE, |e| {
        matches!(&e.kind, EventKind::Faulted { .. }) && e.path.ends_with("hijacker")
    });
    let hijacked = hijacked.unwrap_or_else(|| panic!("{seen:#?}"));
    let EventKind::Faulted { fault } = hijacked.kind else {
        unreachable!()
    };
    assert_eq!(signal(&fault), libc::SIGABRT, "{fault}");
    // The hook the child installed never reached this process: a panic here
    // is still a fault, not an abort.
    system
        .add_child(
            "host",
            Child::new("thread", thread_panics, ()).restart(Restart::Temporary),
        )
        .unwrap();
    let (panicked, seen) = events.wait_for(PATIENCE, |e| {
        matches!(&e.kind, EventKind::Faulted { fault } if fault.is_panic())
            && e.path.ends_with("thread")
    });
    assert!(panicked.is_some(), "{seen:#?}");
    system.shutdown();
}

fn a_thread_left_behind_ends_with_its_process() {
    let supervisor = Supervisor::new("host");
    let events = supervisor.events(256);
    let system = supervisor
        .child(Child::process("pool", entry!(leaves_a_thread), ()).restart(Restart::Transient))
        .start()
        .unwrap();
    let (exited, seen) = events.wait_for(PATIENCE, |e| {
        matches!(
            e.kind,
            EventKind::Exited {
                reason: ExitReason::Normal
            }
        )
    });
    assert!(exited.is_some(), "{seen:#?}");
    system.shutdown();
}

fn shutdown_kills_a_child_that_ignores_it() {
    let (ready_tx, ready) = channel::bounded(1).unwrap();
    let supervisor = Supervisor::new("host");
    let events = supervisor.events(256);
    let system = supervisor
        .child(
            Child::process("spinner", entry!(ignores_cancellation), ready_tx)
                .shutdown(Duration::from_millis(200)),
        )
        .start()
        .unwrap();
    assert_eq!(ready.recv_timeout(PATIENCE).unwrap(), 1);
    system.remove_child("host/spinner").unwrap();
    let seen = events.drain();
    assert!(
        seen.iter()
            .any(|e| matches!(e.kind, EventKind::ShutdownTimedOut { .. })),
        "{seen:#?}"
    );
    // Killed and waited for, not detached.
    assert_eq!(system.leaked_threads(), 0);
    system.shutdown();
}

fn a_child_cannot_hide_how_it_died() {
    let fault = first_fault(Child::process("liar", entry!(lies_about_its_end), ()));
    assert_eq!(died_by(&fault), &ProcessExit::PolicyViolation, "{fault}");
}

fn a_fork_bomb_is_killed_by_its_policy() {
    let fault = first_fault(Child::process("bomb", entry!(forks), ()));
    assert_eq!(died_by(&fault), &ProcessExit::PolicyViolation, "{fault}");
}

fn a_memory_hog_meets_its_limit() {
    let child =
        Child::process("hog", entry!(hogs_memory), ()).limits(Limits::new().memory(256 << 20));
    let fault = first_fault(child);
    assert!(
        matches!(
            &fault.kind,
            FaultKind::BudgetExceeded {
                budget: compartment::Budget::Memory { .. },
                ..
            }
        ),
        "{fault}"
    );
}

fn a_cpu_burner_meets_its_budget() {
    let child = Child::process("burner", entry!(burns_cpu), ())
        .limits(Limits::new().cpu(Duration::from_secs(1)));
    let fault = first_fault(child);
    assert!(
        matches!(
            &fault.kind,
            FaultKind::BudgetExceeded {
                budget: compartment::Budget::Cpu { .. },
                ..
            }
        ),
        "{fault}"
    );
}

/// Sends `count` messages through a relay child that crashes once on each
/// odd one, started as `spawning` says, and checks every message arrives
/// once and every crash names its message.
fn relay_through_crashes(count: u32, spawning: Spawning) {
    let sandbox = common::Sandbox::new();
    let (inbox_tx, inbox) = channel::bounded(16).unwrap();
    let (out, results) = channel::bounded(256).unwrap();
    let supervisor = Supervisor::new("host").intensity(1000, Duration::from_secs(600));
    let events = supervisor.events(4096);
    let system = supervisor
        .child(
            Child::process(
                "relay",
                entry!(relays),
                Relay {
                    inbox,
                    out,
                    notes: sandbox.root(),
                },
            )
            .spawning(spawning),
        )
        .start()
        .unwrap();
    let feeder = std::thread::spawn(move || {
        for message in 0..count {
            inbox_tx.send(message).unwrap();
        }
        inbox_tx
    });
    let mut received: Vec<u32> = Vec::new();
    for _ in 0..count {
        match results.recv_timeout(PATIENCE) {
            Ok(message) => received.push(message),
            Err(_) => panic!(
                "after {received:?}: {:#?}",
                events.drain().iter().rev().take(6).collect::<Vec<_>>()
            ),
        }
    }
    let _inbox_tx = feeder.join().unwrap();
    received.sort_unstable();
    assert_eq!(received, (0..count).collect::<Vec<_>>());
    system.shutdown();
    let faults: Vec<Event> = events
        .drain()
        .into_iter()
        .filter(|e| matches!(e.kind, EventKind::Faulted { .. }))
        .collect();
    assert_eq!(
        faults.len(),
        count as usize / 2,
        "one crash per odd message"
    );
    for event in &faults {
        let EventKind::Faulted { fault } = &event.kind else {
            unreachable!()
        };
        let in_flight = fault
            .in_flight
            .as_ref()
            .expect("each crash names its message");
        let message: u32 = in_flight.description.parse().unwrap();
        assert_eq!(message % 2, 1, "{fault}");
        assert_eq!(in_flight.attempts, 1);
    }
}

fn no_message_is_lost_across_100_crashes() {
    relay_through_crashes(200, Spawning::Zygote);
}

fn no_message_is_lost_across_crashes_of_a_program_started_again() {
    relay_through_crashes(20, Spawning::Reexec);
}

fn a_poison_message_is_dead_lettered() {
    let (inbox_tx, inbox) = channel::bounded(8).unwrap();
    let (out, results) = channel::bounded(8).unwrap();
    let supervisor = Supervisor::new("host").intensity(100, Duration::from_secs(60));
    let events = supervisor.events(256);
    let system = supervisor
        .child(
            Child::process("choker", entry!(chokes_on_seven), Poisoned { inbox, out })
                .poison_threshold(3),
        )
        .start()
        .unwrap();
    for message in [5, 7, 9] {
        inbox_tx.send(message).unwrap();
    }
    let (letter, seen) = events.wait_for(PATIENCE, |e| {
        matches!(e.kind, EventKind::DeadLettered { .. })
    });
    match letter.map(|e| e.kind) {
        Some(EventKind::DeadLettered {
            description,
            attempts,
            ..
        }) => {
            assert_eq!(description, "7");
            assert_eq!(attempts, 3);
        }
        _ => panic!("{seen:#?}"),
    }
    // The messages around it arrive, once each.
    assert_eq!(results.recv_timeout(PATIENCE).unwrap(), 5);
    assert_eq!(results.recv_timeout(PATIENCE).unwrap(), 9);
    system.shutdown();
}

fn only_the_grants_descriptors_exist_in_the_child() {
    let sandbox = common::Sandbox::new();
    let (report, census) = channel::bounded(1).unwrap();
    let supervisor = Supervisor::new("host");
    let system = supervisor
        .child(
            Child::process(
                "census",
                entry!(counts_descriptors),
                Census {
                    granted: sandbox.root().into_read_only(),
                    report,
                },
            )
            .restart(Restart::Transient),
        )
        .start()
        .unwrap();
    let open = census.recv_timeout(PATIENCE).expect("the census arrives");
    system.shutdown();
    let kinds: Vec<&str> = open
        .iter()
        .map(|fd| fd.split(':').nth(1).unwrap())
        .collect();
    // Its output (1 and 2); its control socket and the copy its
    // cancellation thread reads; the granted directory; the sender's bridge,
    // the copy its credit pump reads, and the memory of its ring.
    assert_eq!(
        kinds.iter().filter(|k| **k == "pipe").count(),
        2,
        "{open:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "directory").count(),
        1,
        "{open:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "socket").count(),
        4,
        "{open:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "file").count(),
        1,
        "{open:?}"
    );
    assert_eq!(open.len(), 8, "{open:?}");
}

/// The processes of ours that wait in a pid namespace of their own: with
/// no tree running, the child the zygote made ahead of the next start.
fn made_ahead() -> Vec<i32> {
    let mut children = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let listed = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        children.extend(
            listed
                .split_whitespace()
                .map(|pid| pid.parse::<i32>().unwrap()),
        );
    }
    children.retain(|pid| {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let running = status
            .lines()
            .find_map(|line| line.strip_prefix("State:"))
            .is_some_and(|state| !state.trim().starts_with('Z'));
        let namespaced = status
            .lines()
            .find_map(|line| line.strip_prefix("NSpid:"))
            .is_some_and(|pids| pids.split_whitespace().count() > 1);
        running && namespaced
    });
    children
}

/// Waits for the zygote's next child made ahead other than `but`.
fn next_made_ahead(but: Option<i32>) -> i32 {
    wait_for_value(|| {
        let ahead: Vec<i32> = made_ahead()
            .into_iter()
            .filter(|pid| Some(*pid) != but)
            .collect();
        match ahead[..] {
            [pid] => Some(pid),
            [] => None,
            _ => panic!("expected one child made ahead, found {ahead:?}"),
        }
    })
}

fn a_start_takes_the_child_made_ahead_or_clones_one() {
    // The zygote keeps one child ready, and a start takes it.
    let ahead = next_made_ahead(None);
    let (system, pid) = secret_keeper("");
    assert_eq!(pid, ahead as u32, "the start took the child made ahead");
    // Once it has answered, the zygote makes the next.
    let next = next_made_ahead(Some(ahead));
    system.shutdown();
    // A child made ahead that dies waiting is not used: the next start
    // clones one, and then a new one is made ahead again.
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(next).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    // Dead, but not reaped: the kill has landed before the start asks.
    wait_for(next, |stat| stat == Some(ProcessStat::ZombieOfOurs));
    let (system, pid) = secret_keeper("");
    assert_ne!(pid, next as u32);
    next_made_ahead(Some(pid as i32));
    system.shutdown();
    // It was this process's child, not the zygote's: the supervisor's side
    // reaps it, and no zombie is left.
    wait_for(next, |stat| stat != Some(ProcessStat::ZombieOfOurs));
}

fn a_refused_start_keeps_the_child_made_ahead() {
    let ahead = next_made_ahead(None);
    let fault = first_fault(Child::process("stray", entry!(unregistered), ()));
    start_failure(&fault);
    // The refusal used nothing: the next start takes the same child.
    let (system, pid) = secret_keeper("");
    system.shutdown();
    assert_eq!(pid, ahead as u32, "the child made ahead was kept for it");
}

/// What `/proc` says of a process, as far as the tests above ask.
#[derive(Debug, PartialEq, Eq)]
enum ProcessStat {
    /// Ended and not yet reaped, by this process (its parent).
    ZombieOfOurs,
    /// Anything else: running, or some other process's.
    Other,
}

/// `pid`'s state, or `None` once no such process exists.
fn process_stat(pid: i32) -> Option<ProcessStat> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command's closing parenthesis: the state, then the parent.
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    let (state, parent) = (fields.next()?, fields.next()?);
    Some(
        if state == "Z" && parent == std::process::id().to_string() {
            ProcessStat::ZombieOfOurs
        } else {
            ProcessStat::Other
        },
    )
}

/// Waits until `pid`'s state satisfies `done`.
fn wait_for(pid: i32, done: impl Fn(Option<ProcessStat>) -> bool) {
    wait_for_value(|| done(process_stat(pid)).then_some(()));
}

/// Waits until `value` has one.
fn wait_for_value<T>(value: impl Fn() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        if let Some(value) = value() {
            return value;
        }
        assert!(std::time::Instant::now() < deadline, "nothing came in time");
        std::thread::yield_now();
    }
}

/// Starts a child that holds `secret` until it is stopped; returns its
/// tree and its pid (its init's).
fn secret_keeper(secret: &str) -> (compartment::System, u32) {
    let (ready_tx, ready) = channel::bounded(1).unwrap();
    let system = Supervisor::new("host")
        .child(
            Child::process(
                "keeper",
                entry!(keeps_a_secret),
                Secret {
                    ready: ready_tx,
                    secret: secret.to_owned(),
                },
            )
            .restart(Restart::Temporary),
        )
        .start()
        .unwrap();
    assert_eq!(ready.recv_timeout(PATIENCE).unwrap(), 1);
    let status = system.status();
    let keeper = status.find("host/keeper").expect("the child is listed");
    (system, keeper.process.as_ref().expect("it runs").pid)
}

/// Every writable mapping of the child whose init is `pid` (the init and
/// the component it forked), read from outside it.
fn writable_memory(pid: u32) -> Vec<u8> {
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap();
    let mut memory = process_memory(pid);
    for child in children.split_whitespace() {
        memory.extend(process_memory(child.parse().unwrap()));
    }
    memory
}

fn process_memory(pid: u32) -> Vec<u8> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let mut mem = std::fs::File::open(format!("/proc/{pid}/mem")).unwrap();
    let mut memory = Vec::new();
    for line in maps.lines() {
        let mut fields = line.split_whitespace();
        let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
            continue;
        };
        if !perms.starts_with("rw") {
            continue;
        }
        let (start, end) = range.split_once('-').unwrap();
        let start = u64::from_str_radix(start, 16).unwrap();
        let end = u64::from_str_radix(end, 16).unwrap();
        let mut region = vec![0u8; (end - start) as usize];
        use std::io::Seek;
        if mem.seek(std::io::SeekFrom::Start(start)).is_ok() && mem.read_exact(&mut region).is_ok()
        {
            memory.extend_from_slice(&region);
        }
    }
    memory
}

fn contains_text(memory: &[u8], text: &str) -> bool {
    memory
        .windows(text.len())
        .any(|window| window == text.as_bytes())
}

fn a_child_finds_nothing_of_an_earlier_childs_grant() {
    // A zygote's children are copies of its memory, which held every
    // earlier child's request: a tenant's grant must not reach the next.
    let first = format!("first-tenant-secret-{}", std::process::id());
    let (system, pid) = secret_keeper(&first);
    // The scan sees a grant's data where it is.
    assert!(contains_text(&writable_memory(pid), &first));
    system.shutdown();
    let second = format!("second-tenant-secret-{}", std::process::id());
    for _ in 0..2 {
        let (system, pid) = secret_keeper(&second);
        let memory = writable_memory(pid);
        assert!(contains_text(&memory, &second));
        assert!(
            !contains_text(&memory, &first),
            "the earlier child's grant is in a later child's memory"
        );
        system.shutdown();
    }
}

fn a_child_that_breaks_the_protocol_is_killed_for_it() {
    for (forgery, told) in [
        (
            Forgery::AnswerNeverAsked,
            "an answer to a request it was not sent",
        ),
        (Forgery::AnswerTwice, "or answered already"),
        (Forgery::UnknownFrame, "a frame that is not an answer"),
        (
            Forgery::UnknownFrameToReceive,
            "other than asking for the next message",
        ),
        (Forgery::UnknownFrameToSend, "a frame that is not a message"),
        (Forgery::UnknownFrameToCall, "a frame that is not a request"),
        (Forgery::OversizedFrame, "more than a bridge carries"),
        (Forgery::GarbledReport, "its control socket"),
        (Forgery::RingPastItsEnd, "more than the ring holds"),
        (Forgery::RingPartTooLong, "longer than a ring's parts"),
        (Forgery::RingClosedByItsReader, "a ring its reader closed"),
    ] {
        let (server, requests) = channel::bounded(4).unwrap();
        let (inbox_tx, inbox) = channel::bounded::<u64>(4).unwrap();
        let (out, _kept) = channel::bounded::<u64>(4).unwrap();
        let (calls, _unserved) = channel::bounded::<Request<u64, u64>>(4).unwrap();
        let forger = match forgery {
            Forgery::UnknownFrameToReceive => {
                Child::process("forger", entry!(forges_on_a_receiver), Fed { inbox })
            }
            Forgery::RingClosedByItsReader => {
                Child::process("forger", entry!(closes_its_receivers_ring), Fed { inbox })
            }
            Forgery::UnknownFrameToSend => {
                Child::process("forger", entry!(forges_on_a_sender), out)
            }
            Forgery::UnknownFrameToCall => {
                Child::process("forger", entry!(forges_on_a_caller), calls)
            }
            Forgery::RingPastItsEnd | Forgery::RingPartTooLong => Child::process(
                "forger",
                entry!(forges_in_its_ring),
                RingForger {
                    out: out.clone(),
                    forgery,
                },
            ),
            _ => Child::process("forger", entry!(forges), Forger { requests, forgery }),
        };
        let (witness, witnessed) = channel::bounded(1).unwrap();
        let supervisor = Supervisor::new("host");
        let events = supervisor.events(256);
        let system = supervisor
            .child(forger.restart(Restart::Temporary))
            .child(Child::new("witness", squares, witnessed))
            .start()
            .unwrap();
        if forgery == Forgery::AnswerTwice {
            assert_eq!(server.call_timeout(21, PATIENCE).unwrap(), 42);
        }
        let (fault, seen) =
            events.wait_for(PATIENCE, |e| matches!(e.kind, EventKind::Faulted { .. }));
        let Some(EventKind::Faulted { fault }) = fault.map(|e| e.kind) else {
            panic!("{forgery:?}: no fault; events: {seen:#?}");
        };
        match died_by(&fault) {
            ProcessExit::Killed { reason } => {
                assert!(
                    reason.contains("broke the protocol"),
                    "{forgery:?}: {reason}"
                );
                assert!(reason.contains(told), "{forgery:?}: {reason}");
            }
            other => panic!("{forgery:?}: expected a kill, got {other:?} ({fault})"),
        }
        // The rest of the tree serves on.
        assert_eq!(
            witness.call_timeout(7, PATIENCE).unwrap(),
            49,
            "{forgery:?}"
        );
        drop(inbox_tx);
        system.shutdown();
    }
}

fn a_child_cannot_resize_its_rings_memory() {
    let (report, reported) = channel::bounded(1).unwrap();
    let system = Supervisor::new("host")
        .child(
            Child::process("resizer", entry!(resizes_its_rings), report)
                .restart(Restart::Transient),
        )
        .start()
        .unwrap();
    let tries = reported.recv_timeout(PATIENCE).expect("the report arrives");
    system.shutdown();
    assert_eq!(tries.len(), 3, "one ring, three sizes: {tries:?}");
    assert!(
        tries.iter().all(|tried| tried.starts_with("refused")),
        "{tries:?}"
    );
}

/// A child streams to two threads and a selecting component at once, each
/// receiving its own way: every message arrives once, and each receiver
/// takes its share in the order it was sent, whether a receive read it
/// from the child's ring itself or found it in the channel.
fn a_stream_from_a_child_reaches_every_kind_of_receive_whole_and_in_order() {
    const COUNT: u64 = 30_000;
    let (out, received) = channel::bounded(16).unwrap();
    let (report, reports) = channel::bounded(3).unwrap();
    let (_idle_tx, idle) = channel::bounded(1).unwrap();
    let system = Supervisor::new("host")
        .child(
            Child::process(
                "streamer",
                entry!(streams),
                Streamer {
                    out,
                    count: COUNT,
                    ends: 3,
                },
            )
            .restart(Restart::Temporary),
        )
        .child(
            Child::new(
                "selector",
                selects,
                Selector {
                    inbox: received.clone(),
                    idle,
                    report: report.clone(),
                },
            )
            .restart(Restart::Temporary),
        )
        .start()
        .unwrap();
    let threads: Vec<_> = [false, true]
        .into_iter()
        .map(|timed| {
            let (received, report) = (received.clone(), report.clone());
            std::thread::spawn(move || {
                let mut taken = Vec::new();
                loop {
                    let message = if timed {
                        received.recv_timeout(PATIENCE).unwrap()
                    } else {
                        received.recv().unwrap()
                    };
                    if message == u64::MAX {
                        break;
                    }
                    taken.push(message);
                }
                report.send(taken).unwrap();
            })
        })
        .collect();
    drop(received);
    let mut all = Vec::new();
    for _ in 0..3 {
        let taken = reports
            .recv_timeout(PATIENCE)
            .expect("each receiver reports");
        assert!(
            taken.windows(2).all(|pair| pair[0] < pair[1]),
            "one receiver's messages out of order"
        );
        all.extend(taken);
    }
    for thread in threads {
        thread.join().unwrap();
    }
    all.sort_unstable();
    assert_eq!(all.len() as u64, COUNT);
    assert!(
        all.iter().copied().eq(0..COUNT),
        "a message lost or doubled"
    );
    system.shutdown();
}

/// Once every receiver is gone, a child's next sends fail instead of
/// waiting for room forever, even after receives read its ring
/// themselves.
fn a_childs_sends_fail_once_every_receiver_is_gone() {
    let (out, received) = channel::bounded(8).unwrap();
    let (ended_tx, ended) = channel::bounded(1).unwrap();
    let system = Supervisor::new("host")
        .child(
            Child::process(
                "flood",
                entry!(floods),
                Flood {
                    out,
                    ended: ended_tx,
                },
            )
            .restart(Restart::Temporary),
        )
        .start()
        .unwrap();
    for expected in 0..100 {
        assert_eq!(received.recv_timeout(PATIENCE).unwrap(), expected);
    }
    drop(received);
    let sent = ended.recv_timeout(PATIENCE).expect("the child's sends end");
    assert!(sent >= 100, "{sent}");
    system.shutdown();
}

/// A receiver that stopped looking still finds what a child sent after
/// it last received queued in the channel, though while the stream flowed
/// its receives read the child's ring themselves.
fn a_childs_messages_wait_in_the_channel_for_a_receiver_that_looks_later() {
    let (out, received) = channel::bounded(1024).unwrap();
    let (go_tx, go) = channel::bounded(1).unwrap();
    let system = Supervisor::new("host")
        .child(
            Child::process("pauser", entry!(streams_then_pauses), Pauser { out, go })
                .restart(Restart::Temporary),
        )
        .start()
        .unwrap();
    for expected in 0..BEFORE_THE_PAUSE {
        assert_eq!(received.recv_timeout(PATIENCE).unwrap(), expected);
    }
    go_tx.send(1).unwrap();
    let deadline = std::time::Instant::now() + PATIENCE;
    while received.len() < 4 {
        assert!(
            std::time::Instant::now() < deadline,
            "the messages never reached the channel"
        );
        std::thread::yield_now();
    }
    let rest: Vec<u64> = std::iter::from_fn(|| received.try_recv().ok()).collect();
    assert!(
        rest.iter()
            .copied()
            .eq(BEFORE_THE_PAUSE..BEFORE_THE_PAUSE + 4)
    );
    system.shutdown();
}

fn long_and_short_messages_cross_whole_and_in_order() {
    let (out, received) = channel::bounded(4).unwrap();
    let system = Supervisor::new("host")
        .child(
            Child::process("sender", entry!(sends_long_and_short), out).restart(Restart::Transient),
        )
        .start()
        .unwrap();
    for (number, length) in message_lengths().enumerate() {
        let message: Vec<u8> = received.recv_timeout(PATIENCE).expect("the next message");
        assert_eq!(message.len(), length, "message {number}");
        assert!(
            message.iter().all(|&byte| byte == number as u8),
            "message {number}"
        );
    }
    system.shutdown();
}

fn long_and_short_messages_reach_a_child_whole_and_in_order() {
    let lengths: Vec<usize> = message_lengths().collect();
    let (inbox_tx, inbox) = channel::bounded(4).unwrap();
    let (report, reports) = channel::bounded(lengths.len()).unwrap();
    let system = Supervisor::new("host")
        .child(
            Child::process(
                "receiver",
                entry!(receives_long_and_short),
                LongAndShort {
                    inbox,
                    report,
                    count: 2 * lengths.len(),
                },
            )
            .restart(Restart::Transient),
        )
        .start()
        .unwrap();
    let message = |number: usize| vec![number as u8; lengths[number % lengths.len()]];
    let expect = |number: usize, (length, whole): (usize, bool)| {
        assert_eq!(length, lengths[number % lengths.len()], "message {number}");
        assert!(whole, "message {number}");
    };
    // One at a time: each receive is waiting before its message is sent.
    for number in 0..lengths.len() {
        inbox_tx.send(message(number)).unwrap();
        expect(number, reports.recv_timeout(PATIENCE).expect("a report"));
    }
    // All at once: each receive finds its message queued or on its way.
    for number in lengths.len()..2 * lengths.len() {
        inbox_tx.send(message(number)).unwrap();
    }
    for number in lengths.len()..2 * lengths.len() {
        expect(number, reports.recv_timeout(PATIENCE).expect("a report"));
    }
    system.shutdown();
}

/// This process's open descriptors and its mappings of a ring's memory.
fn descriptors_and_rings() -> (usize, usize) {
    let descriptors = std::fs::read_dir("/proc/self/fd").unwrap().count();
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let rings = maps
        .lines()
        .filter(|line| line.contains("compartment-ring"))
        .count();
    (descriptors, rings)
}

fn restarts_leave_no_descriptor_or_ring_behind() {
    let (ready_tx, ready) = channel::bounded(1).unwrap();
    let system = Supervisor::new("host")
        .intensity(100_000, Duration::from_secs(1))
        .child(Child::process(
            "crasher",
            entry!(aborts_once_ready),
            ready_tx,
        ))
        .start()
        .unwrap();
    // Each message is a new instance running, after the last one's crash.
    let restarts = |count: usize| {
        for _ in 0..count {
            ready
                .recv_timeout(PATIENCE)
                .expect("the next instance runs");
        }
    };
    restarts(20);
    let (descriptors, rings) = descriptors_and_rings();
    restarts(200);
    let (after_descriptors, after_rings) = descriptors_and_rings();
    system.shutdown();
    // A restart under way may hold a few for a moment; one left behind per
    // restart would be 200.
    assert!(
        after_descriptors <= descriptors + 8,
        "{descriptors} descriptors after 20 restarts, {after_descriptors} after 220"
    );
    assert!(
        after_rings <= rings.max(1) + 1,
        "{rings} rings mapped after 20 restarts, {after_rings} after 220"
    );
    assert_eq!(descriptors_and_rings().1, 0, "a ring mapped after shutdown");
}

fn revoking_a_held_capability_kills_the_child_and_status_shows_it() {
    let sandbox = common::Sandbox::new();
    let (dir, revoker): (ReadOnlyDir, Revoker) = sandbox.root().into_read_only().revocable();
    let (ready_tx, ready) = channel::bounded(1).unwrap();
    let supervisor = Supervisor::new("host");
    let events = supervisor.events(256);
    let system = supervisor
        .child(
            Child::process(
                "holder",
                entry!(holds),
                Holder {
                    dir,
                    ready: ready_tx,
                },
            )
            .restart(Restart::Temporary),
        )
        .start()
        .unwrap();
    assert_eq!(ready.recv_timeout(PATIENCE).unwrap(), 1);
    // While it runs, status shows its process and the map draws one.
    let status = system.status();
    let holder = status.find("host/holder").expect("the child is listed");
    assert_eq!(holder.kind, NodeKind::Process);
    let process = holder
        .process
        .as_ref()
        .expect("a running process child has a process");
    assert!(process.pid > 0);
    assert!(
        process.resident.is_some_and(|bytes| bytes > 0),
        "{process:?}"
    );
    assert!(process.cpu.is_some(), "{process:?}");
    // Confined in full, and saying so.
    assert_eq!(process.missing, Vec::<String>::new());
    for part in ["namespaces", "empty read-only root", "Landlock"] {
        assert!(
            process.enforced.iter().any(|e| e.contains(part)),
            "{part}: {:?}",
            process.enforced
        );
    }
    // Its process lives in other user and network namespaces than the host.
    for namespace in ["user", "net"] {
        let ours = std::fs::read_link(format!("/proc/self/ns/{namespace}")).unwrap();
        let its = std::fs::read_link(format!("/proc/{}/ns/{namespace}", process.pid)).unwrap();
        assert_ne!(ours, its, "{namespace}");
    }
    assert!(system.capability_map().mermaid().contains("[[\"holder\"]]"));
    assert!(system.capability_map().text().contains("holder (process)"));
    revoker.revoke();
    let (fault, seen) = events.wait_for(PATIENCE, |e| matches!(e.kind, EventKind::Faulted { .. }));
    let Some(EventKind::Faulted { fault }) = fault.map(|e| e.kind) else {
        panic!("{seen:#?}")
    };
    match died_by(&fault) {
        ProcessExit::Killed { reason } => assert!(reason.contains("ReadOnlyDir"), "{reason}"),
        other => panic!("{other:?}"),
    }
    system.shutdown();
}

fn a_process_child_serves_calls() {
    let (server, requests) = channel::bounded(4).unwrap();
    let system = Supervisor::new("host")
        .intensity(100, Duration::from_secs(60))
        .child(Child::process("doubler", entry!(doubles), requests))
        .start()
        .unwrap();
    for n in 1..=50u64 {
        assert_eq!(server.call_timeout(n, PATIENCE).unwrap(), n * 2);
    }
    // A request dropped unanswered: the caller learns at once.
    assert!(matches!(
        server.call_timeout(0, PATIENCE),
        Err(CallError::NoReply)
    ));
    // A panic holding the request: the caller gets the panic, across the
    // process boundary.
    match server.call_timeout(777, PATIENCE) {
        Err(CallError::Crashed(crash)) => {
            assert_eq!(crash.message, "777 is not doubled");
            let at = crash.location.expect("the panic's location crosses");
            assert!(at.file.ends_with("process.rs"), "{at}");
        }
        other => panic!("expected the panic, got {other:?}"),
    }
    // A process that dies holding the request, where no unwinding answers
    // it: the caller is told how it died, and the restarted child serves
    // the next call.
    for (body, died) in [(999, "killed by SIGABRT"), (998, "exited with code 3")] {
        match server.call_timeout(body, PATIENCE) {
            Err(CallError::Crashed(crash)) => {
                assert!(crash.message.contains(died), "{crash}");
                assert_eq!(crash.location, None);
            }
            other => panic!("expected how the child died, got {other:?}"),
        }
        assert_eq!(server.call_timeout(21, PATIENCE).unwrap(), 42);
    }
    system.shutdown();
}

fn a_process_child_calls_a_thread_component() {
    let (server, requests) = channel::bounded(4).unwrap();
    let (results, answers) = channel::bounded(32).unwrap();
    let sup = Supervisor::new("host")
        .child(Child::new("squares", squares, requests))
        .child(
            Child::process("caller", entry!(calls_out), Caller { server, results })
                .restart(Restart::Temporary),
        );
    let events = sup.events(64);
    let system = sup.start().unwrap();
    let got: Vec<u64> = (0..20)
        .map(|_| answers.recv_timeout(PATIENCE).expect("each answer arrives"))
        .collect();
    assert_eq!(got, (1..=20u64).map(|n| n * n).collect::<Vec<_>>());
    // The server's panic reached the caller in its process.
    let (told, seen) = events.wait_for(
        PATIENCE,
        |e| matches!(&e.kind, EventKind::Faulted { fault } if fault.path.ends_with("caller")),
    );
    let Some(EventKind::Faulted { fault }) = told.map(|e| e.kind) else {
        panic!("{seen:#?}")
    };
    let message = fault.message();
    assert!(
        message.contains("told: zero is not squared at tests"),
        "{message}"
    );
    system.shutdown();
}

fn the_network_comes_through_the_broker() {
    let host = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let granted = host.local_addr().unwrap();
    let free = |_| {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    };
    let (other, listen) = (free(0), free(1));
    let loopback = IpAddr::from([127, 0, 0, 1]);
    let net = Net::new(
        [
            NetRule::connect(loopback, granted.port()..=granted.port()),
            NetRule::bind(loopback, listen.port()..=listen.port()),
        ],
        ambient_authority(),
    );
    let (report, reports) = channel::bounded(8).unwrap();
    let grant = Dialer {
        net,
        granted,
        other,
        listen,
        report,
    };
    let system = Supervisor::new("host")
        .child(Child::process("dialer", entry!(dials), grant).restart(Restart::Transient))
        .start()
        .unwrap();
    let (mut from_child, _) = host.accept().unwrap();
    let mut hello = String::new();
    from_child.read_to_string(&mut hello).unwrap();
    assert_eq!(hello, "hello from the child");
    let next = || reports.recv_timeout(PATIENCE).expect("the child reports");
    assert_eq!(next(), "other port: refused");
    assert_eq!(next(), "own socket: PermissionDenied");
    assert_eq!(next(), "listening");
    let mut to_child = std::net::TcpStream::connect(listen).unwrap();
    to_child.write_all(b"hello from the host").unwrap();
    drop(to_child);
    assert_eq!(next(), "accepted: hello from the host");
    system.shutdown();
}

fn a_deadline_kills_a_child_that_ignores_it() {
    let child = Child::process("late", entry!(burns_cpu), ())
        .limits(Limits::new().deadline(Duration::from_millis(300)))
        .shutdown(Duration::from_millis(100));
    let fault = first_fault(child);
    assert!(
        matches!(
            &fault.kind,
            FaultKind::BudgetExceeded {
                budget: compartment::Budget::Deadline { .. },
                ..
            }
        ),
        "{fault}"
    );
}

fn a_cpu_rate_is_refused_not_ignored() {
    let child = Child::process("rated", entry!(aborts), ())
        .limits(Limits::new().cpu_per(Duration::from_millis(10), Duration::from_millis(100)));
    let fault = first_fault(child);
    let message = start_failure(&fault);
    assert!(message.contains("cpu_per"), "{message}");
}

/// The variables of a process child started as `spawning` says: the names
/// it sees in its process, and the value of the one its `Env` grants.
fn child_environment(spawning: Spawning) -> SeenEnvironment {
    let env = Env::from_vars([("COMPARTMENT_TEST_GRANTED", "granted")]).unwrap();
    let (report, environment) = channel::bounded(1).unwrap();
    // A program started again has its own memory, at other addresses.
    let program = match spawning {
        Spawning::Zygote => program_blocks(),
        _ => Vec::new(),
    };
    let system = Supervisor::new("host")
        .child(
            Child::process(
                "reader",
                entry!(reads_environment),
                Environment {
                    env,
                    report,
                    program,
                },
            )
            .spawning(spawning)
            .restart(Restart::Transient),
        )
        .start()
        .unwrap();
    let seen = environment
        .recv_timeout(PATIENCE)
        .expect("the report arrives");
    system.shutdown();
    seen
}

fn the_child_sees_no_environment_but_its_grants() {
    // The supervisor's process has variables (cargo sets a dozen) and
    // arguments, and a thread sees them all: the child must see none of
    // them — not through `std::env`, nor in the memory it was copied from.
    assert!(std::env::vars_os().next().is_some());
    assert!(std::env::args_os().next().is_some());
    assert!(nonzero_bytes(&program_blocks()) > 0);
    for spawning in [Spawning::Zygote, Spawning::Reexec] {
        let (names, granted, arguments, left) = child_environment(spawning);
        assert_eq!(names, Vec::<String>::new(), "{spawning:?}");
        assert_eq!(granted, "granted", "{spawning:?}");
        assert_eq!(arguments, Vec::<String>::new(), "{spawning:?}");
        assert_eq!(
            left, 0,
            "{spawning:?}: bytes of the supervisor's arguments and environment"
        );
    }
}

fn the_escape_battery_finds_nothing_in_a_process_child() {
    let sandbox = TestkitSandbox::standard(ambient_authority()).unwrap();
    // From a locked-down thread, what only a process boundary stops gets
    // through, and what would end the process is skipped: the battery can
    // fail.
    let (results, reports) = channel::bounded(1).unwrap();
    let grant = ThreadBattery {
        probed: Probed::of(&sandbox),
        host: Host::start(ambient_authority()).unwrap(),
        results,
    };
    let system = Supervisor::new("host")
        .child(
            Child::new("battery", probes_from_a_thread, grant)
                .restart(Restart::Temporary)
                .lockdown(Lockdown::require()),
        )
        .start()
        .unwrap();
    let from_a_thread = reports.recv_timeout(PATIENCE).expect("the report arrives");
    system.shutdown();
    let through: Vec<&str> = from_a_thread
        .escapes()
        .iter()
        .map(|a| a.capability.as_str())
        .collect();
    for class in ["metadata", "/proc", "environment", "global registries"] {
        let label = format!("beyond threads: {class}");
        assert!(through.contains(&label.as_str()), "{from_a_thread}");
    }
    assert!(
        through.iter().all(|c| c.starts_with("beyond threads: ")),
        "only what a thread cannot be kept from gets through: {from_a_thread}"
    );
    let ending = |report: &Report| -> Vec<Outcome> {
        report
            .attempts
            .iter()
            .filter(|a| a.capability == "beyond threads: ending the process")
            .map(|a| a.outcome.clone())
            .collect()
    };
    assert!(
        ending(&from_a_thread)
            .iter()
            .all(|o| matches!(o, Outcome::Skipped(_))),
        "{from_a_thread}"
    );

    // From a process child, nothing gets through, and every attempt that
    // ends the process ends only the child: cloned from the zygote, and
    // started as a program of its own.
    for spawning in [Spawning::Zygote, Spawning::Reexec] {
        let report =
            testkit::probe_process_with(Probed::of(&sandbox), &battery_options(), |child| {
                child.spawning(spawning)
            })
            .unwrap();
        println!("== the escape battery in a process child ({spawning:?})\n{report}\n");
        battery_found_nothing(&report);
    }
    sandbox.canary().check().unwrap();
}

/// Checks a report of the battery made in a process child: every class was
/// tried, nothing got through, and what ends the process ended only it.
fn battery_found_nothing(report: &Report) {
    assert!(report.made().count() >= 150, "{report}");
    let made = |class: &str| report.made().filter(|a| a.capability == class).count();
    for (class, at_least) in [
        ("ambient: files", 5),
        ("ambient: metadata", 7),
        ("ambient: processes and threads", 2),
        ("ambient: process-wide state", 6),
        ("ambient: other processes", 2),
        ("ambient: sockets", 12),
        ("beyond threads: metadata", 3),
        ("beyond threads: /proc", 2),
        ("beyond threads: environment", 1),
        ("beyond threads: global registries", 1),
        ("beyond threads: ending the process", 4),
    ] {
        assert!(made(class) >= at_least, "{class}: {report}");
    }
    let ended: Vec<&Outcome> = report
        .attempts
        .iter()
        .filter(|a| a.capability == "beyond threads: ending the process")
        .map(|a| &a.outcome)
        .collect();
    assert_eq!(ended.len(), 4, "{report}");
    assert!(
        ended.iter().all(|o| matches!(o, Outcome::Contained(how) if how.starts_with("ended only its own process"))),
        "{report}"
    );
    let program = report
        .attempts
        .iter()
        .find(|a| a.attempt.starts_with("std::process::Command"))
        .expect("the battery tries to start a program");
    assert!(
        matches!(&program.outcome, Outcome::Failed(how) if how.contains("policy never allows")),
        "{report}"
    );
    report.assert_contained();
}

fn a_manual_clock_cannot_cross() {
    let (clock, _control) = MonotonicClock::manual();
    let fault = first_fault(Child::process("clocked", entry!(keeps_time), clock));
    let message = start_failure(&fault);
    assert!(message.contains("manual MonotonicClock"), "{message}");
}

fn an_entry_missing_from_init_fails_to_start() {
    let fault = first_fault(Child::process("stray", entry!(unregistered), ()));
    let message = start_failure(&fault);
    assert!(message.contains("unregistered"), "{message}");
}

// ---- the harness ---------------------------------------------------------

const TESTS: &[testkit::ProcessTest] = &[
    ("abort_is_a_fault_not_the_end", abort_is_a_fault_not_the_end),
    (
        "exit_is_a_fault_with_its_code",
        exit_is_a_fault_with_its_code,
    ),
    ("stack_overflow_is_contained", stack_overflow_is_contained),
    (
        "segfault_through_unsafe_is_contained",
        segfault_through_unsafe_is_contained,
    ),
    (
        "panics_and_errors_are_reported_as_in_a_thread",
        panics_and_errors_are_reported_as_in_a_thread,
    ),
    (
        "a_replaced_panic_hook_stays_in_its_process",
        a_replaced_panic_hook_stays_in_its_process,
    ),
    (
        "a_thread_left_behind_ends_with_its_process",
        a_thread_left_behind_ends_with_its_process,
    ),
    (
        "shutdown_kills_a_child_that_ignores_it",
        shutdown_kills_a_child_that_ignores_it,
    ),
    (
        "a_fork_bomb_is_killed_by_its_policy",
        a_fork_bomb_is_killed_by_its_policy,
    ),
    (
        "a_child_cannot_hide_how_it_died",
        a_child_cannot_hide_how_it_died,
    ),
    ("a_memory_hog_meets_its_limit", a_memory_hog_meets_its_limit),
    (
        "a_cpu_burner_meets_its_budget",
        a_cpu_burner_meets_its_budget,
    ),
    (
        "no_message_is_lost_across_100_crashes",
        no_message_is_lost_across_100_crashes,
    ),
    (
        "no_message_is_lost_across_crashes_of_a_program_started_again",
        no_message_is_lost_across_crashes_of_a_program_started_again,
    ),
    (
        "a_poison_message_is_dead_lettered",
        a_poison_message_is_dead_lettered,
    ),
    (
        "only_the_grants_descriptors_exist_in_the_child",
        only_the_grants_descriptors_exist_in_the_child,
    ),
    (
        "a_start_takes_the_child_made_ahead_or_clones_one",
        a_start_takes_the_child_made_ahead_or_clones_one,
    ),
    (
        "a_child_finds_nothing_of_an_earlier_childs_grant",
        a_child_finds_nothing_of_an_earlier_childs_grant,
    ),
    (
        "revoking_a_held_capability_kills_the_child_and_status_shows_it",
        revoking_a_held_capability_kills_the_child_and_status_shows_it,
    ),
    ("a_process_child_serves_calls", a_process_child_serves_calls),
    (
        "a_child_that_breaks_the_protocol_is_killed_for_it",
        a_child_that_breaks_the_protocol_is_killed_for_it,
    ),
    (
        "a_child_cannot_resize_its_rings_memory",
        a_child_cannot_resize_its_rings_memory,
    ),
    (
        "long_and_short_messages_cross_whole_and_in_order",
        long_and_short_messages_cross_whole_and_in_order,
    ),
    (
        "a_stream_from_a_child_reaches_every_kind_of_receive_whole_and_in_order",
        a_stream_from_a_child_reaches_every_kind_of_receive_whole_and_in_order,
    ),
    (
        "a_childs_sends_fail_once_every_receiver_is_gone",
        a_childs_sends_fail_once_every_receiver_is_gone,
    ),
    (
        "a_childs_messages_wait_in_the_channel_for_a_receiver_that_looks_later",
        a_childs_messages_wait_in_the_channel_for_a_receiver_that_looks_later,
    ),
    (
        "long_and_short_messages_reach_a_child_whole_and_in_order",
        long_and_short_messages_reach_a_child_whole_and_in_order,
    ),
    (
        "restarts_leave_no_descriptor_or_ring_behind",
        restarts_leave_no_descriptor_or_ring_behind,
    ),
    (
        "the_network_comes_through_the_broker",
        the_network_comes_through_the_broker,
    ),
    (
        "a_process_child_calls_a_thread_component",
        a_process_child_calls_a_thread_component,
    ),
    (
        "a_deadline_kills_a_child_that_ignores_it",
        a_deadline_kills_a_child_that_ignores_it,
    ),
    (
        "a_cpu_rate_is_refused_not_ignored",
        a_cpu_rate_is_refused_not_ignored,
    ),
    ("a_manual_clock_cannot_cross", a_manual_clock_cannot_cross),
    (
        "the_child_sees_no_environment_but_its_grants",
        the_child_sees_no_environment_but_its_grants,
    ),
    (
        "the_escape_battery_finds_nothing_in_a_process_child",
        the_escape_battery_finds_nothing_in_a_process_child,
    ),
    (
        "an_entry_missing_from_init_fails_to_start",
        an_entry_missing_from_init_fails_to_start,
    ),
    (
        "a_refused_start_keeps_the_child_made_ahead",
        a_refused_start_keeps_the_child_made_ahead,
    ),
];

fn main() {
    testkit::process_main(
        &[
            &entry!(aborts),
            &entry!(exits),
            &entry!(overflows),
            &entry!(segfaults),
            &entry!(panics),
            &entry!(returns_error),
            &entry!(hijacks_panic_hook),
            &entry!(leaves_a_thread),
            &entry!(ignores_cancellation),
            &entry!(forks),
            &entry!(lies_about_its_end),
            &entry!(forges_in_its_ring),
            &entry!(resizes_its_rings),
            &entry!(sends_long_and_short),
            &entry!(streams),
            &entry!(floods),
            &entry!(streams_then_pauses),
            &entry!(receives_long_and_short),
            &entry!(aborts_once_ready),
            &entry!(hogs_memory),
            &entry!(burns_cpu),
            &entry!(relays),
            &entry!(holds),
            &entry!(keeps_a_secret),
            &entry!(counts_descriptors),
            &entry!(keeps_time),
            &entry!(doubles),
            &entry!(forges),
            &entry!(forges_on_a_receiver),
            &entry!(closes_its_receivers_ring),
            &entry!(forges_on_a_sender),
            &entry!(forges_on_a_caller),
            &entry!(calls_out),
            &entry!(dials),
            &entry!(chokes_on_seven),
            &entry!(reads_environment),
            &testkit::probe_entry::<Probed>(),
        ],
        TESTS,
    )
}
