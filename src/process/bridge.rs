//! Channel endpoints across the process boundary.
//!
//! Each endpoint in a process child's grant is a socket to the supervisor's
//! process, with a pump thread at each end.
//!
//! - **Sending** (the child holds a `Sender`): the component's own thread
//!   writes each message into the bridge's ring, memory both processes map
//!   (see `ring` and `outbox`), so a message `send` accepted
//!   survives the process, and a stream of messages makes no system call.
//!   Each send spends a credit; credits are granted in the ring for the
//!   room the real channel has (at least one), and more as room frees up.
//!   On the supervisor's side the ring feeds the real channel (see
//!   `feed`): a receive that finds the channel empty reads the ring itself,
//!   and the parent's pump puts messages into the channel (blocking while
//!   it is full) only while a receiver sleeps or selects there, while no
//!   receive reads the ring, and once the child is gone. Back-pressure
//!   reaches the component, and the messages between the two ends never
//!   exceed the channel's free room by more than one. The socket carries
//!   only words for a side that sleeps: the child's doorbell for a pump
//!   asleep on an empty ring, the word of credit or room for a sender that
//!   waits, and the closing of the channel. A sender of requests (see
//!   `calls`) writes its frames to the socket instead.
//! - **Receiving** (the child holds a `Receiver`): each receive on the
//!   component's own thread first asks for one message, unless it asked
//!   already and nothing came yet, and then takes what comes (an [`Inbox`]):
//!   from the ring itself while it looks for it, or from a local channel of
//!   capacity 1 that the child's pump fills for a receive that sleeps. Asking
//!   again says the last message taken was handled, as a thread's next `recv`
//!   does. The parent's pump answers each request from the child's mailbox (a
//!   message an earlier instance died handling) or the real channel, and
//!   keeps the last message it sent: when the child dies, that one was in
//!   flight (named in the fault, delivered again, dead-lettered past the
//!   poison threshold). Messages stay in the real channel until asked for, so
//!   its capacity and order hold as for a thread. A plain receiver's asks and
//!   answers travel in a ring of their own (asking is granting the parent's
//!   pump one message), so that while messages flow neither side makes a
//!   system call; the socket carries only words for a side that sleeps and
//!   the closing of the channel. A receiver of requests (see `calls`) asks
//!   and is answered on its socket.

use std::fmt;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel as cb;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::feed::{Feed, Registration, Standing, Taken};
use super::outbox::{Outbox, OutboxRing, OutboxWay, Writing};
use super::portable::{PackError, Packing, Portable, Unpacking};
use super::ring::{self, Credit, RingReader, RingWriter};
use super::wire::{self, read_frame, write_frame};
use crate::channel::{self, HandlerCrash, Receiver, Sender, TrySendError};
use crate::context::describe;
use crate::fault;
use crate::mailbox::{Mailbox, Tracked};
use crate::signal::Signal;

/// The child asks for the next message (and has handled the last one).
pub(super) const WANT: u8 = 0;
/// A message follows.
pub(super) const MESSAGE: u8 = 1;
/// The channel is closed for this endpoint: disconnected or revoked.
pub(super) const CLOSED: u8 = 2;
/// The message was put into the channel: one credit for the next.
pub(super) const ACCEPTED: u8 = 3;
/// The child published a frame in its ring while the supervisor's pump
/// slept.
pub(crate) const DOORBELL: u8 = 8;
/// The supervisor's pump granted credit or made room in a ring whose
/// writer waits for either.
pub(super) const ROOM: u8 = 9;

/// A shared writing end: frames from several threads, whole.
pub(super) type Writer = Arc<parking_lot::Mutex<UnixStream>>;

/// How a bridged sender turns a message into a frame, and what it keeps of
/// the message once the frame is written (a request keeps its reply
/// endpoint until the answer comes back).
pub(crate) trait Codec<T>: Send + Sync {
    /// Writes the frame for `message` into `frame` (which it clears
    /// first); `false` if it cannot be encoded.
    fn encode(&self, message: &T, frame: &mut Vec<u8>) -> bool;

    /// `message` was written.
    fn sent(&self, message: T);
}

/// Plain messages: encoded with postcard, dropped once written.
struct Plain;

impl<T: Serialize> Codec<T> for Plain {
    fn encode(&self, message: &T, frame: &mut Vec<u8>) -> bool {
        frame.clear();
        frame.push(MESSAGE);
        // The buffer is lent to postcard and comes back with the message
        // after the tag; a message that fails (or panics) loses it.
        let buffer = std::mem::take(frame);
        match fault::contain(|| postcard::to_extend(message, buffer)) {
            Ok(Ok(encoded)) => {
                *frame = encoded;
                true
            }
            _ => false,
        }
    }

    fn sent(&self, message: T) {
        let _ = fault::drop_contained(message);
    }
}

/// The supervisor's end of one bridged endpoint.
pub(crate) trait ParentPump: Send {
    /// Serves the child until it closes its end, `serving.gone` is raised
    /// or the child breaks the bridge's protocol; returns what the child
    /// left: the message it was handling, callers it had not answered.
    fn run(self: Box<Self>, serving: &Serving<'_>) -> Left;
}

/// What the supervisor's pumps serve a child with.
pub(crate) struct Serving<'a> {
    /// Raised once the child is gone.
    pub(crate) gone: &'a Signal,
    /// Messages an earlier instance died handling, to deliver again.
    pub(crate) mailbox: &'a Mailbox,
    /// What the child may send.
    pub(crate) protocol: Protocol,
}

/// How the supervisor's side holds a child to its bridges' protocol. The
/// runtime on the child's side never breaks it; only code that writes to
/// its descriptors itself does, so a child that breaks it is killed, and
/// nothing it sent is kept.
#[derive(Clone)]
pub(crate) struct Protocol {
    kill: Arc<dyn Fn(String) + Send + Sync>,
}

impl Protocol {
    /// Holds a child to the protocol by `kill`ing it, with the reason.
    pub(crate) fn new(kill: impl Fn(String) + Send + Sync + 'static) -> Self {
        Self {
            kill: Arc::new(kill),
        }
    }

    /// The child sent `what` on `socket` (which [`bridge_name`] names for
    /// a channel's bridge).
    pub(crate) fn broken(&self, socket: &str, what: impl fmt::Display) {
        (self.kill)(format!("it broke the protocol of {socket}: {what}"));
    }

    /// The child's next frame on `bridge`; `None` once it has closed its
    /// end or died (a frame cut short by its death included), or sent a
    /// frame longer than a bridge carries.
    pub(crate) fn next_frame(&self, bridge: &str, stream: &mut impl Read) -> Option<Vec<u8>> {
        self.checked(bridge, read_frame(stream))
    }

    /// The child's next packet on `socket`, as [`Protocol::next_frame`]
    /// for frames: a packet longer than a control packet, or with more
    /// descriptors than one carries, breaks the protocol.
    pub(crate) fn next_packet(
        &self,
        socket: &str,
        fd: BorrowedFd<'_>,
    ) -> Option<(Vec<u8>, Vec<OwnedFd>)> {
        self.checked(socket, wire::recv_packet(fd))
    }

    /// What was read from `socket`: the readers answer `InvalidData` for
    /// what is past their limits, which breaks the protocol; any other
    /// error means the child closed its end or died.
    fn checked<T>(&self, socket: &str, read: io::Result<Option<T>>) -> Option<T> {
        match read {
            Ok(read) => read,
            Err(err) if err.kind() == io::ErrorKind::InvalidData => {
                self.broken(socket, err);
                None
            }
            Err(_) => None,
        }
    }
}

/// What a bridged endpoint leaves to its proxy once the child is gone.
#[derive(Default)]
pub(crate) struct Left {
    /// The message the child was handling, to deliver again or dead-letter.
    pub(crate) in_flight: Option<Tracked>,
    /// The callers whose requests the child held when it ended.
    pub(crate) callers: Option<AnswerCallers>,
}

/// Answers callers with how their child ended if it died, or (`None`) that
/// no answer comes. The proxy calls it once it knows which.
pub(crate) type AnswerCallers = Box<dyn FnOnce(Option<&HandlerCrash>) + Send>;

/// How a bridged receiver in a process child gets its messages. Each
/// receive first asks for one, unless it asked already and nothing came
/// yet; asking again says the last one taken was handled. A plain
/// receiver asks by granting the supervisor's pump one message in its
/// ring, and takes what comes there itself while it looks for a message;
/// only a receive that sleeps has its pump put the message into the local
/// channel, so that while messages flow no thread of the child stands
/// between the ring and the component. A receiver of requests asks on its
/// socket and takes them from the local channel its pump fills from there.
pub(crate) struct Inbox<T> {
    /// Where the asks go (and word for a pump that waits for one).
    socket: Writer,
    /// An ask is out and its message not yet taken.
    outstanding: AtomicBool,
    /// A plain receiver's ring; `None` for a receiver of requests.
    ring: Option<InboxRing<T>>,
}

/// A plain receiver's ring, as its receiving threads and pump read it.
struct InboxRing<T> {
    reader: parking_lot::Mutex<RingReader>,
    /// How a message's bytes become the message.
    decode: fn(&[u8]) -> Option<T>,
    /// A message that a receive about to sleep found in the ring: the
    /// next receive's.
    kept: parking_lot::Mutex<Option<T>>,
    /// A frame that was not a message that decodes ended the channel for
    /// this endpoint, as the pump's end does.
    ended: AtomicBool,
}

impl<T> fmt::Debug for Inbox<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inbox")
            .field("outstanding", &self.outstanding)
            .field("ringed", &self.ring.is_some())
            .finish_non_exhaustive()
    }
}

impl<T> Inbox<T> {
    /// Asks on `socket`, or in `ring` if it has one.
    fn new(socket: Writer, ring: Option<InboxRing<T>>) -> Self {
        Self {
            socket,
            outstanding: AtomicBool::new(false),
            ring,
        }
    }

    /// Asks for the next message, unless an ask is outstanding.
    pub(crate) fn ask(&self) {
        if self.outstanding.swap(true, Ordering::AcqRel) {
            return;
        }
        // In a ring, a pump asleep for want of an ask is owed word of it.
        let word = match &self.ring {
            Some(ring) => ring.reader.lock().grant(1).then_some(ROOM),
            None => Some(WANT),
        };
        if let Some(word) = word {
            // A closed socket means the supervisor's side is gone: the pump
            // then closes the local channel, and the receive sees it.
            let _ = write_frame(&mut *self.socket.lock(), &[word]);
        }
    }

    /// The message asked for was taken.
    #[inline]
    pub(crate) fn took(&self) {
        self.outstanding.store(false, Ordering::Release);
    }

    /// The next message if one is here now, outside the local channel: one
    /// an earlier receive kept, or a whole one in the ring.
    ///
    /// # Errors
    ///
    /// [`Wake::Disconnected`](channel::Wake::Disconnected) once a frame
    /// that is not a message ended the channel for this endpoint.
    pub(crate) fn pull(&self) -> Result<Option<T>, channel::Wake> {
        let Some(ring) = &self.ring else {
            return Ok(None);
        };
        if let Some(kept) = ring.kept.lock().take() {
            return Ok(Some(kept));
        }
        if ring.ended.load(Ordering::Acquire) {
            return Err(channel::Wake::Disconnected);
        }
        ring.read(&self.socket)
    }

    /// Before a receive sleeps on the local channel: raises the ring's
    /// reader flag, so that the pump puts what comes there. `false` if a
    /// message came meanwhile (kept for the next [`pull`](Self::pull)) or
    /// the channel ended: the receive looks again instead.
    pub(crate) fn arm(&self) -> bool {
        let Some(ring) = &self.ring else {
            return true;
        };
        loop {
            if ring.kept.lock().is_some() || ring.ended.load(Ordering::Acquire) {
                return false;
            }
            if ring.reader.lock().may_sleep() {
                return true;
            }
            match ring.read(&self.socket) {
                Ok(Some(message)) => {
                    *ring.kept.lock() = Some(message);
                    return false;
                }
                // A part of a longer message: look again.
                Ok(None) => {}
                Err(_) => return false,
            }
        }
    }
}

impl<T> InboxRing<T> {
    /// The next whole message in the ring, if one is there; word to the
    /// supervisor's pump if it waits for the room this read freed.
    fn read(&self, words: &Writer) -> Result<Option<T>, channel::Wake> {
        let (next, writer_waits) = {
            let mut reader = self.reader.lock();
            let next = reader.next().map(|frame| {
                frame.map(|frame| match frame.split_first() {
                    Some((&MESSAGE, bytes)) => (self.decode)(bytes),
                    _ => None,
                })
            });
            (next, reader.writer_waits())
        };
        if writer_waits {
            let _ = write_frame(&mut *words.lock(), &[ROOM]);
        }
        match next {
            Ok(None) => Ok(None),
            Ok(Some(Some(message))) => Ok(Some(message)),
            // The supervisor's side writes only messages that its own
            // encoding made; one that does not decode here ends the
            // channel for this endpoint, as on a socket.
            Ok(Some(None)) | Err(_) => {
                self.ended.store(true, Ordering::Release);
                Err(channel::Wake::Disconnected)
            }
        }
    }
}

/// The child's end of one bridged endpoint: a body for its own thread.
pub(crate) struct ChildPump {
    pub(crate) run: Box<dyn FnOnce() + Send>,
}

impl fmt::Debug for ChildPump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildPump").finish_non_exhaustive()
    }
}

pub(super) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    fault::contain(|| postcard::from_bytes(bytes)).ok()?.ok()
}

fn tracked<T: fmt::Debug + Send + 'static>(
    channel: channel::ChannelId,
    message: T,
    attempts: u32,
) -> Tracked {
    Tracked {
        channel,
        message: Box::new(message),
        describe: describe::<T>,
        attempts,
    }
}

struct SendingPump<T> {
    tx: Sender<T>,
    socket: UnixStream,
    ring: RingReader,
}

impl<T> ParentPump for SendingPump<T>
where
    T: DeserializeOwned + Send + 'static,
{
    fn run(self: Box<Self>, serving: &Serving<'_>) -> Left {
        let Self { tx, socket, ring } = *self;
        let bridge = bridge_name::<T>("Sender");
        let Some(mut words) = Words::new(serving, &bridge, &socket, DOORBELL, NOT_A_MESSAGE) else {
            return Left::default();
        };
        let feed = Feed::start(
            &tx,
            ring,
            socket,
            serving.protocol.clone(),
            bridge.clone(),
            decode::<T>,
        );
        // The child may send as many messages as the channel has room for
        // (at least one, so that a full channel pushes back here, on its
        // next message).
        feed.lock().grant_due(tx.len());
        pump_into(&tx, &feed, &mut words);
        Left::default()
    }
}

/// How a pump that finds a frame of the wrong kind says so.
const NOT_A_MESSAGE: &str = "a frame that is not a message";

/// Puts the child's messages from `feed`'s ring into the channel of `tx`
/// while a receiver sleeps there, or none reads the ring itself (see
/// `feed`), until the child is gone and its ring read to the end.
/// Frames the child wrote before it died are still read and delivered.
fn pump_into<T>(tx: &Sender<T>, feed: &Registration<T>, words: &mut Words<'_>) {
    let gone = words.serving.gone;
    let mut ended = false;
    let mut standing = Standing::default();
    let mut looks = 0;
    loop {
        if !ended && feed.pump_may_park(&mut standing) {
            feed.park(gone, &mut standing);
            ended = gone.is_raised();
            continue;
        }
        let mut state = feed.lock();
        let message = match feed.read(&mut state) {
            Taken::Message(message) => message,
            Taken::Broken => return,
            Taken::Empty => {
                drop(state);
                if ended {
                    return;
                }
                if looks < wire::PATIENCE {
                    // While it is patient, the pump looks at the ring
                    // alone (the socket carries nothing for a pump that is
                    // awake) and at `gone`, which the proxy raises once it
                    // has reaped the child, then waits for this pump: a
                    // restart waits for it. What the ring holds is read
                    // first.
                    ended = gone.is_raised();
                    looks += 1;
                    std::thread::yield_now();
                    continue;
                }
                looks = 0;
                if !words.has_more() && !feed.lock().may_sleep() {
                    continue;
                }
                match words.next() {
                    Said::Word => {}
                    Said::Broke => return,
                    Said::Gone => ended = true,
                }
                continue;
            }
        };
        looks = 0;
        // Delivered if the channel has room, even once the child is gone
        // (what it sent before it died was sent); waiting for room ends
        // with the child. The move happens under the feed's lock, so that
        // no receiver reads the next message first.
        let sent = match tx.try_send(message) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(message)) => {
                state.set_delivering(true);
                drop(state);
                // About to wait: what the child wrote on the socket
                // meanwhile is read first, so a frame that breaks the
                // protocol is not left unread behind a full channel.
                if !words.unread_are_words() {
                    let _ = fault::drop_contained(message);
                    return;
                }
                let sent = tx.send_with(message, &[gone], None).map_err(|(m, _)| m);
                state = feed.lock();
                state.set_delivering(false);
                sent
            }
            Err(other) => Err(other.into_inner()),
        };
        if let Err(message) = sent {
            let _ = fault::drop_contained(message);
            state.close();
            return;
        }
        state.grant_due(tx.len());
    }
}

/// The child's words on a ring's socket, as a pump on the supervisor's
/// side reads them: besides the socket's end, an honest child sends only
/// one word that way (its doorbell, or word that it asked or made room).
struct Words<'a> {
    serving: &'a Serving<'a>,
    bridge: &'a str,
    word: u8,
    /// What any other frame is called when it breaks the protocol.
    other: &'static str,
    reading: io::BufReader<UnixStream>,
}

/// What came on a ring's socket from the child.
enum Said {
    Word,
    /// Its end: closed or dead.
    Gone,
    /// Anything else: the protocol is broken (and the child killed for it).
    Broke,
}

impl<'a> Words<'a> {
    /// Reads `socket`'s words through a handle of its own; `None` if none
    /// can be had.
    fn new(
        serving: &'a Serving<'a>,
        bridge: &'a str,
        socket: &UnixStream,
        word: u8,
        other: &'static str,
    ) -> Option<Self> {
        Some(Self {
            serving,
            bridge,
            word,
            other,
            reading: io::BufReader::new(socket.try_clone().ok()?),
        })
    }

    /// The child broke the bridge's protocol with `what`.
    fn broken(&self, what: impl fmt::Display) {
        self.serving.protocol.broken(self.bridge, what);
    }

    /// Whether the socket has a word (or its end) to read now.
    fn has_more(&self) -> bool {
        !self.reading.buffer().is_empty()
            || wire::ready_now(self.reading.get_ref().as_fd(), rustix::event::PollFlags::IN)
                // Readable, closed, or a `poll` that failed: reading says which.
                .map_or(true, |ready| !ready.is_empty())
    }

    /// Reads the child's next word, waiting for it.
    fn next(&mut self) -> Said {
        match self
            .serving
            .protocol
            .next_frame(self.bridge, &mut self.reading)
        {
            Some(frame) if frame == [self.word] => Said::Word,
            Some(_) => {
                self.broken(self.other);
                Said::Broke
            }
            None => Said::Gone,
        }
    }

    /// Reads what is already on the socket without waiting: `false` if the
    /// child broke the protocol there.
    fn unread_are_words(&mut self) -> bool {
        while self.has_more() {
            match self.next() {
                Said::Word => {}
                Said::Broke => return false,
                // Gone: what it published is delivered all the same.
                Said::Gone => return true,
            }
        }
        true
    }
}

struct ReceivingPump<T> {
    rx: Receiver<T>,
    socket: UnixStream,
    ring: RingWriter,
}

impl<T> ParentPump for ReceivingPump<T>
where
    T: Serialize + fmt::Debug + Send + 'static,
{
    fn run(mut self: Box<Self>, serving: &Serving<'_>) -> Left {
        let bridge = bridge_name::<T>("Receiver");
        let id = self.rx.id();
        let mut in_flight: Option<(T, u32)> = None;
        let Some(mut words) = Words::new(
            serving,
            &bridge,
            &self.socket,
            ROOM,
            "a frame other than asking for the next message",
        ) else {
            return Left::default();
        };
        let mut frame = Vec::new();
        // The child asks for each message by granting it in the ring.
        while self.wait_for(&mut words, |ring| match ring.take_credit() {
            Credit::Taken => Some(true),
            Credit::None => Some(false),
            Credit::Closed => None,
        }) {
            // Asking again: the last message sent was handled.
            if let Some((handled, _)) = in_flight.take() {
                let _ = fault::drop_contained(handled);
            }
            let next = match serving.mailbox.take::<T>(id) {
                Some(kept) => Some(kept),
                None => match self.rx.try_recv() {
                    Ok(message) => Some((message, 0)),
                    // About to wait: what the child wrote on the socket
                    // meanwhile is read first, so a frame that breaks the
                    // protocol is not left unread behind an empty channel.
                    Err(_) if !words.unread_are_words() => break,
                    Err(_) => self
                        .rx
                        .recv_patiently(&[serving.gone], None, wire::PATIENCE)
                        .ok()
                        .map(|message| (message, 0)),
                },
            };
            let Some((message, attempts)) = next else {
                let _ = write_frame(&mut self.socket, &[CLOSED]);
                break;
            };
            let encoded = Codec::<T>::encode(&Plain, &message, &mut frame);
            in_flight = Some((message, attempts));
            if !encoded || !self.write(&mut words, &frame) {
                break;
            }
        }
        Left {
            in_flight: in_flight.map(|(message, attempts)| tracked(id, message, attempts)),
            callers: None,
        }
    }
}

impl<T> ReceivingPump<T> {
    /// Waits until `ready` says the pump may go on (an ask taken, room
    /// found; `None`: what no honest child publishes). It looks patiently,
    /// then raises its flag, looks once more and sleeps until the child's
    /// word. `false` once the child is gone or broke the protocol.
    fn wait_for(
        &mut self,
        words: &mut Words<'_>,
        mut ready: impl FnMut(&mut RingWriter) -> Option<bool>,
    ) -> bool {
        let mut looks = 0;
        loop {
            if looks == wire::PATIENCE {
                self.ring.wait_for_word();
            }
            match ready(&mut self.ring) {
                Some(true) => return true,
                None => {
                    words.broken("a ring its reader closed");
                    return false;
                }
                // A child that is gone is not looked for any longer: the
                // proxy raises `gone` once it has reaped it, then waits for
                // this pump.
                Some(false) if words.serving.gone.is_raised() => return false,
                Some(false) if looks < wire::PATIENCE => {
                    looks += 1;
                    std::thread::yield_now();
                }
                Some(false) => match words.next() {
                    Said::Word => looks = 0,
                    Said::Gone | Said::Broke => return false,
                },
            }
        }
    }

    /// Writes `frame` into the ring, in parts as the child reads, and
    /// rings the doorbell of a child asleep on an empty ring: `false` once
    /// the child is gone or broke the protocol.
    fn write(&mut self, words: &mut Words<'_>, frame: &[u8]) -> bool {
        let mut parts = RingWriter::parts(frame).peekable();
        while let Some(part) = parts.next() {
            if !self.wait_for(words, |ring| Some(ring.fits(part.len()))) {
                return false;
            }
            if self.ring.put(part, parts.peek().is_some())
                && write_frame(&mut self.socket, &[DOORBELL]).is_err()
            {
                return false;
            }
        }
        true
    }
}

/// The child's pump for a ringed sender: passes on the supervisor's side's
/// word that the ring has credit or room again, to the sender that waits,
/// and ends (disconnecting that word) when the channel closes or the
/// supervisor's side is gone. It sleeps between frames: words come only
/// when a sender waits.
fn pump_words(word: cb::Sender<()>, socket: UnixStream) {
    let mut socket = io::BufReader::new(socket);
    while let Ok(Some(frame)) = read_frame(&mut socket) {
        if frame != [ROOM] {
            break;
        }
        // A word not yet taken says it already.
        let _ = word.try_send(());
    }
}

/// The child's receiving pump for a plain receiver: it sleeps on the
/// socket, and when the supervisor's side rings the doorbell of a receive
/// asleep on the local channel (see [`Inbox::arm`]), puts the message from
/// the ring there (one message per ask, so it always fits). It ends, and
/// so closes the local channel, when the channel is closed for this
/// endpoint or the supervisor's side is gone.
fn pump_receives<T>(local: cb::Sender<T>, socket: UnixStream, inbox: Arc<Inbox<T>>) {
    let Some(ring) = &inbox.ring else {
        return;
    };
    let mut socket = io::BufReader::new(socket);
    while let Ok(Some(frame)) = read_frame(&mut socket) {
        if frame != [DOORBELL] {
            // Closed for this endpoint.
            break;
        }
        loop {
            match ring.read(&inbox.socket) {
                Ok(Some(message)) => {
                    if local.send(message).is_err() {
                        return;
                    }
                    break;
                }
                // Nothing, or a part of a longer message: sleep again,
                // with the flag raised for what comes.
                Ok(None) => {
                    if ring.reader.lock().may_sleep() {
                        break;
                    }
                }
                Err(_) => return,
            }
        }
    }
}

/// How a broken protocol names an endpoint's bridge: `its bridge for a
/// Sender<Job>`.
pub(super) fn bridge_name<T>(endpoint: &str) -> String {
    format!(
        "its bridge for a {endpoint}<{}>",
        crate::capability::short_type_name(std::any::type_name::<T>())
    )
}

pub(super) fn socket(fd: OwnedFd) -> UnixStream {
    UnixStream::from(fd)
}

/// What [`pack_endpoint`] packed, in the child: the socket (and a second
/// handle on it, for writing from another thread), the channel's id and
/// capacity.
fn unpack_endpoint(
    unpacking: &mut Unpacking,
) -> Result<(UnixStream, UnixStream, (u64, usize)), PackError> {
    let socket = socket(unpacking.descriptor()?);
    let writing = socket.try_clone()?;
    Ok((socket, writing, unpacking.data()?))
}

/// Rebuilds a sending endpoint in the child whose frames go to the socket:
/// an outbox that writes with `codec` on the sending thread, holding one
/// credit to start with (the first message needs no acknowledgement) and
/// room for as many as the channel's capacity, and a pump that reads what
/// the supervisor's side answers (`pump` gets the credits to hand out and
/// the socket).
pub(super) fn unpack_sender<T, C>(
    unpacking: &mut Unpacking,
    codec: C,
    pump: impl FnOnce(cb::Sender<()>, UnixStream) + Send + 'static,
) -> Result<Sender<T>, PackError>
where
    C: Codec<T> + 'static,
{
    let (socket, writing, (id, capacity)) = unpack_endpoint(unpacking)?;
    let (credit_tx, credit) = cb::bounded(capacity.max(1));
    let _ = credit_tx.send(());
    unpacking.pumps.push(ChildPump {
        run: Box::new(move || pump(credit_tx, socket)),
    });
    let outbox = Outbox {
        codec: Box::new(codec),
        socket: Arc::new(parking_lot::Mutex::new(writing)),
        way: OutboxWay::Socket { credit },
    };
    Ok(channel::bridged_sender(outbox, id, capacity))
}

/// Rebuilds a sending endpoint in the child whose frames and credits go
/// through a ring (its descriptor follows the socket's and the data), and
/// the pump that passes on the supervisor's side's word.
fn unpack_ringed_sender<T>(unpacking: &mut Unpacking) -> Result<Sender<T>, PackError>
where
    T: Serialize + Send + 'static,
{
    let (socket, writing, (id, capacity)) = unpack_endpoint(unpacking)?;
    let writer = RingWriter::map(unpacking.descriptor()?)?;
    let (word_tx, word) = cb::bounded(1);
    unpacking.pumps.push(ChildPump {
        run: Box::new(move || pump_words(word_tx, socket)),
    });
    let outbox = Outbox {
        codec: Box::new(Plain),
        socket: Arc::new(parking_lot::Mutex::new(writing)),
        way: OutboxWay::Ring(OutboxRing {
            writer: parking_lot::Mutex::new(Writing {
                ring: writer,
                frame: Vec::new(),
            }),
            word,
        }),
    };
    Ok(channel::bridged_sender(outbox, id, capacity))
}

/// Rebuilds a receiving endpoint in the child: a local channel of capacity
/// 1 that `pump` fills from the socket, and an [`Inbox`] that asks for each
/// next message on the receiving thread (`pump` also gets the shared
/// writing end, for what it answers itself).
pub(super) fn unpack_receiver<T: Send + 'static>(
    unpacking: &mut Unpacking,
    pump: impl FnOnce(cb::Sender<T>, UnixStream, Writer) + Send + 'static,
) -> Result<Receiver<T>, PackError> {
    let (socket, asking, (id, capacity)) = unpack_endpoint(unpacking)?;
    let writer: Writer = Arc::new(parking_lot::Mutex::new(asking));
    let inbox = Inbox::new(Arc::clone(&writer), None);
    Ok(receiver_over(
        unpacking,
        (id, capacity),
        inbox,
        move |local, _| pump(local, socket, writer),
    ))
}

/// Rebuilds a plain receiving endpoint in the child, whose asks and
/// messages go through a ring (its descriptor follows the socket's and
/// the data).
fn unpack_ringed_receiver<T>(unpacking: &mut Unpacking) -> Result<Receiver<T>, PackError>
where
    T: DeserializeOwned + Send + 'static,
{
    let (socket, asking, (id, capacity)) = unpack_endpoint(unpacking)?;
    let ring = InboxRing {
        reader: parking_lot::Mutex::new(RingReader::map(unpacking.descriptor()?)?),
        decode: decode::<T>,
        kept: parking_lot::Mutex::new(None),
        ended: AtomicBool::new(false),
    };
    let inbox = Inbox::new(Arc::new(parking_lot::Mutex::new(asking)), Some(ring));
    Ok(receiver_over(
        unpacking,
        (id, capacity),
        inbox,
        move |local, inbox| pump_receives(local, socket, inbox),
    ))
}

/// A receiving endpoint that gets its messages through `inbox`, and the
/// pump that fills its local channel of capacity 1.
fn receiver_over<T: Send + 'static>(
    unpacking: &mut Unpacking,
    (id, capacity): (u64, usize),
    inbox: Inbox<T>,
    pump: impl FnOnce(cb::Sender<T>, Arc<Inbox<T>>) + Send + 'static,
) -> Receiver<T> {
    let inbox = Arc::new(inbox);
    let (tx, rx) = cb::bounded(1);
    let pumps = Arc::clone(&inbox);
    unpacking.pumps.push(ChildPump {
        run: Box::new(move || pump(tx, pumps)),
    });
    channel::bridged_receiver(rx, id, capacity, inbox)
}

/// Packs one endpoint: a socket pair whose parent end `pump` serves, the
/// child end passed as a descriptor, and the channel's id and capacity.
pub(super) fn pack_endpoint(
    packing: &mut Packing,
    capability: &'static str,
    gate: &crate::revoke::Gate,
    (id, capacity): (channel::ChannelId, usize),
    pump: impl FnOnce(UnixStream) -> Box<dyn ParentPump>,
) -> Result<(), PackError> {
    packing.gate(capability, gate)?;
    let (parent, child) = wire::stream_pair()?;
    packing.bridge(child, pump(socket(parent)));
    packing.data(&(id.get(), capacity))
}

impl<T> Portable for Sender<T>
where
    T: Serialize + DeserializeOwned + fmt::Debug + Send + 'static,
{
    fn pack(&self, packing: &mut Packing) -> Result<(), PackError> {
        let tx = self.clone();
        let (memory, ring) = ring::from_child()?;
        pack_endpoint(
            packing,
            "Sender",
            &self.gate,
            (self.id(), self.capacity()),
            |socket| Box::new(SendingPump { tx, socket, ring }),
        )?;
        packing.descriptors.push(memory);
        Ok(())
    }

    fn unpack(unpacking: &mut Unpacking) -> Result<Self, PackError> {
        unpack_ringed_sender(unpacking)
    }
}

impl<T> Portable for Receiver<T>
where
    T: Serialize + DeserializeOwned + fmt::Debug + Send + 'static,
{
    fn pack(&self, packing: &mut Packing) -> Result<(), PackError> {
        let rx = self.clone();
        let (memory, ring) = ring::to_child()?;
        pack_endpoint(
            packing,
            "Receiver",
            &self.gate,
            (self.id(), self.capacity()),
            |socket| Box::new(ReceivingPump { rx, socket, ring }),
        )?;
        packing.descriptors.push(memory);
        Ok(())
    }

    fn unpack(unpacking: &mut Unpacking) -> Result<Self, PackError> {
        unpack_ringed_receiver(unpacking)
    }
}

#[cfg(test)]
#[allow(
    clippy::disallowed_methods,
    reason = "the tests stand in for a child's threads and the supervisor's pump"
)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::channel::SendTimeoutError;

    /// What a pump would hold: the socket's far end and the sender of
    /// words.
    type PumpsEnds = (UnixStream, cb::Sender<()>);

    /// A child's sender over a ring that nobody reads, holding `credits`,
    /// and the ring's reader.
    fn unread_sender(credits: usize) -> (Sender<Vec<u8>>, RingReader, PumpsEnds) {
        let (memory, mut reader) = ring::from_child().unwrap();
        reader.grant(credits as u64 - 1);
        let (near, far) = UnixStream::pair().unwrap();
        let (word_tx, word) = cb::bounded(1);
        let outbox = Outbox {
            codec: Box::new(Plain),
            socket: Arc::new(parking_lot::Mutex::new(near)),
            way: OutboxWay::Ring(OutboxRing {
                writer: parking_lot::Mutex::new(Writing {
                    ring: RingWriter::map(memory).unwrap(),
                    frame: Vec::new(),
                }),
                word,
            }),
        };
        let sender = channel::bridged_sender(outbox, 1, credits);
        (sender, reader, (far, word_tx))
    }

    #[test]
    fn a_send_cut_short_waiting_for_room_keeps_its_credit_and_abandons_its_parts() {
        let (tx, mut reader, _pumps) = unread_sender(1);
        // Longer than the ring: its first parts go in, then it waits.
        let long = vec![7u8; 200_000];
        match tx.send_timeout(long, Duration::from_millis(1)) {
            Err(SendTimeoutError::Timeout(message)) => assert_eq!(message.len(), 200_000),
            other => panic!("expected a timeout, got {other:?}"),
        }
        // The one credit was not spent: a short message still goes.
        tx.try_send(vec![1, 2, 3]).unwrap();
        let mut frames = Vec::new();
        while let Some(frame) = reader.next().unwrap() {
            frames.push(frame.to_vec());
        }
        let mut expected = Vec::new();
        assert!(Codec::<Vec<u8>>::encode(
            &Plain,
            &vec![1u8, 2, 3],
            &mut expected
        ));
        assert_eq!(frames, vec![expected], "the long one was abandoned whole");
    }

    #[test]
    fn a_send_behind_one_that_waits_for_room_keeps_its_own_deadline() {
        let (tx, mut reader, (_far, word_tx)) = unread_sender(2);
        let waiting = {
            let tx = tx.clone();
            std::thread::spawn(move || tx.send(vec![7u8; 200_000]))
        };
        // Its first parts fill the ring; then it waits, holding the writer.
        while !reader.writer_waits() {
            std::thread::yield_now();
        }
        match tx.send_timeout(vec![1], Duration::from_millis(1)) {
            Err(SendTimeoutError::Timeout(message)) => assert_eq!(message, vec![1]),
            other => panic!("expected a timeout, got {other:?}"),
        }
        // The channel closes: the one that waits hears it.
        drop(word_tx);
        assert!(waiting.join().unwrap().is_err());
    }
}
