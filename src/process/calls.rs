//! Request/reply across the process boundary: a `Receiver<Request<Q, A>>`
//! lets a process child serve calls made on the supervisor's side, a
//! `Sender<Request<Q, A>>` lets it call a server there.
//!
//! A request crosses as its body and the time left before its caller's
//! deadline, under a number; its reply endpoint stays on the side of the
//! caller, in a table under that number, until the answer crosses back.
//! A handler that panics holding a request answers its caller with the
//! panic, across the bridge too. A child that dies holding requests (a
//! signal, an abort, a kill) answers their callers `CallError::Crashed`
//! with how it died, once its proxy knows; a child that ends otherwise
//! has answered or dropped each request itself.

use std::collections::HashMap;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel as cb;
use parking_lot::Mutex;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::bridge::{
    ACCEPTED, CLOSED, Codec, Left, ParentPump, Serving, WANT, Writer, bridge_name, decode,
    pack_endpoint, unpack_receiver, unpack_sender,
};
use super::portable::{PackError, Packing, Portable, Unpacking};
use super::wire::{self, read_frame, write_frame};
use crate::channel::{HandlerCrash, PendingReply, Receiver, Reply, ReplyTo, Request, Sender};
use crate::fault;

/// A request: its number, then its body and the time its caller still waits.
const REQUEST: u8 = 4;
/// An answer: the request's number, then the answer.
const ANSWER: u8 = 5;
/// The request's reply endpoint was dropped unanswered.
const NO_REPLY: u8 = 6;
/// The request's handler panicked: its number, then the message and where.
const CRASHED: u8 = 7;

/// Reply endpoints waiting for their answer, by request number.
type Waiting<A> = Arc<Mutex<Table<A>>>;

/// Requests waiting for their answer, and, on a child's side, answers that
/// came before their request's reply endpoint was filed (a child files it
/// once its request is written, and the answer can be quicker).
///
/// The supervisor's side files each reply endpoint before its request is
/// written, so there an answer to a number not waiting is one the child
/// was never asked for (or gave twice): it is refused, never kept, so a
/// child cannot grow its supervisor's memory by answering.
struct Table<A> {
    replies: HashMap<u64, ReplyTo<A>>,
    /// `None` where answers cannot come first. In the map, `None`: the
    /// reply endpoint on the other side was dropped unanswered.
    early: Option<HashMap<u64, Option<Reply<A>>>>,
}

impl<A> Table<A> {
    /// The table of a side that files each reply before writing its
    /// request.
    fn filed_first() -> Self {
        Self {
            replies: HashMap::new(),
            early: None,
        }
    }

    /// The table of a side whose answers may come before their filing.
    fn answers_may_come_first() -> Self {
        Self {
            replies: HashMap::new(),
            early: Some(HashMap::new()),
        }
    }

    /// Files `reply` under `number`, or answers it at once if its answer
    /// came first.
    fn file(&mut self, number: u64, reply: ReplyTo<A>) {
        match self.early.as_mut().and_then(|early| early.remove(&number)) {
            Some(answer) => deliver(reply, answer),
            None => {
                self.replies.insert(number, reply);
            }
        }
    }

    /// Answers request `number`, or keeps the answer until it is filed
    /// where answers may come first; `false` for an answer to no request.
    fn answer(&mut self, number: u64, answer: Option<Reply<A>>) -> bool {
        match (self.replies.remove(&number), &mut self.early) {
            (Some(reply), _) => deliver(reply, answer),
            (None, Some(early)) => {
                early.insert(number, answer);
            }
            (None, None) => {
                let _ = fault::drop_contained(answer);
                return false;
            }
        }
        true
    }

    /// Every caller still waiting learns how the other side ended, when
    /// it died (`ended`), or else that no answer will come.
    fn close(&mut self, ended: Option<&HandlerCrash>) {
        let replies = std::mem::take(&mut self.replies);
        let early = self.early.as_mut().map(std::mem::take);
        if let Some(crash) = ended {
            for (_, mut reply) in replies {
                reply.crashed(crash.clone());
            }
        } else {
            let _ = fault::drop_contained(replies);
        }
        let _ = fault::drop_contained(early);
    }
}

/// Sends `answer` to its caller; with no answer, the dropped endpoint tells
/// the caller none will come.
fn deliver<A>(mut reply: ReplyTo<A>, answer: Option<Reply<A>>) {
    match answer {
        Some(Reply::Answer(answer)) => {
            if let Err(unsent) = reply.send(answer) {
                let _ = fault::drop_contained(unsent);
            }
        }
        Some(Reply::Crashed(crash)) => reply.crashed(crash),
        None => drop(reply),
    }
}

/// `[tag][number][payload]`.
fn numbered<T: Serialize>(tag: u8, number: u64, payload: &T) -> Option<Vec<u8>> {
    let mut frame = Vec::with_capacity(64);
    frame.push(tag);
    frame.extend_from_slice(&number.to_le_bytes());
    fault::contain(|| postcard::to_extend(payload, frame))
        .ok()?
        .ok()
}

/// The tag, number and payload of a numbered frame.
fn split(frame: &[u8]) -> Option<(u8, u64, &[u8])> {
    let (&tag, rest) = frame.split_first()?;
    let (number, payload) = rest.split_first_chunk::<8>()?;
    Some((tag, u64::from_le_bytes(*number), payload))
}

/// The time left before `deadline`, which crosses instead of the instant.
#[allow(
    clippy::disallowed_methods,
    reason = "a caller's deadline is real time; the time left is what crosses"
)]
fn time_left(deadline: Option<Instant>) -> Option<Duration> {
    deadline.map(|deadline| deadline.saturating_duration_since(Instant::now()))
}

#[allow(
    clippy::disallowed_methods,
    reason = "the caller's deadline, rebuilt on this side of the boundary"
)]
fn deadline_in(left: Option<Duration>) -> Option<Instant> {
    left.and_then(|left| Instant::now().checked_add(left))
}

/// Answers a caller from a numbered frame: the answer, the crash, or
/// nothing (the caller then sees `NoReply`, as for an answer that does not
/// decode: a `Deserialize` may refuse what its `Serialize` wrote). Returns
/// what is wrong with a frame that is none of these, or answers no request.
fn answer<A: DeserializeOwned>(waiting: &Waiting<A>, frame: &[u8]) -> Result<(), &'static str> {
    let (tag, number, payload) = split(frame).ok_or("a frame that is not an answer")?;
    let answer = match tag {
        ANSWER => decode::<A>(payload).map(Reply::Answer),
        CRASHED => decode::<HandlerCrash>(payload).map(Reply::Crashed),
        NO_REPLY => None,
        _ => return Err("a frame that is not an answer"),
    };
    if waiting.lock().answer(number, answer) {
        Ok(())
    } else {
        Err("an answer to a request it was not sent, or answered already")
    }
}

/// How a process child answers a request it serves: across the bridge,
/// from the thread that replies.
pub(crate) struct BridgedReply<A> {
    number: u64,
    writer: Writer,
    encode: fn(u64, &A) -> Option<Vec<u8>>,
    answered: bool,
}

impl<A> BridgedReply<A> {
    pub(crate) fn send(mut self, answer: A) -> Result<(), A> {
        let written = (self.encode)(self.number, &answer)
            .is_some_and(|frame| write_frame(&mut *self.writer.lock(), &frame).is_ok());
        if written {
            self.answered = true;
            let _ = fault::drop_contained(answer);
            Ok(())
        } else {
            Err(answer)
        }
    }

    pub(crate) fn crashed(mut self, crash: &HandlerCrash) {
        if let Some(frame) = numbered(CRASHED, self.number, crash)
            && write_frame(&mut *self.writer.lock(), &frame).is_ok()
        {
            self.answered = true;
        }
    }
}

impl<A> Drop for BridgedReply<A> {
    /// Dropped unanswered: the caller learns at once that no answer comes.
    fn drop(&mut self) {
        if !self.answered {
            let _ = write_frame(&mut *self.writer.lock(), &no_reply(self.number));
        }
    }
}

fn no_reply(number: u64) -> Vec<u8> {
    [&[NO_REPLY][..], &number.to_le_bytes()[..]].concat()
}

// ---- the child serves: Receiver<Request<Q, A>> ------------------------------

struct ServingPump<Q, A> {
    rx: Receiver<Request<Q, A>>,
    socket: UnixStream,
}

impl<Q, A> ParentPump for ServingPump<Q, A>
where
    Q: Serialize + Send + 'static,
    A: DeserializeOwned + Send + 'static,
{
    fn run(self: Box<Self>, serving: &Serving<'_>) -> Left {
        let ServingPump { rx, socket } = *self;
        let Ok(reading) = socket.try_clone() else {
            return Left::default();
        };
        let mut reading = wire::Patient(reading);
        let bridge = bridge_name::<Request<Q, A>>("Receiver");
        let mut writing = socket;
        let waiting = Arc::new(Mutex::new(Table::filed_first()));
        // Answers may come while this thread waits for the next request;
        // what breaks the protocol there ends this thread's loop too.
        let (wants_tx, wants) = cb::bounded::<()>(1);
        let answers = Arc::clone(&waiting);
        let protocol = serving.protocol.clone();
        let reader = crate::ceiling::spawn("compartment-bridge-answers".to_owned(), move || {
            while let Some(frame) = protocol.next_frame(&bridge, &mut reading) {
                if frame == [WANT] {
                    if wants_tx.send(()).is_err() {
                        break;
                    }
                    continue;
                }
                if let Err(what) = answer(&answers, &frame) {
                    protocol.broken(&bridge, what);
                    break;
                }
            }
        });
        let mut next_number = 0u64;
        if reader.is_ok() {
            while wants.recv().is_ok() {
                let Ok(request) = rx.recv_patiently(&[serving.gone], None, wire::PATIENCE) else {
                    let _ = write_frame(&mut writing, &[CLOSED]);
                    break;
                };
                let Request { body, reply } = request;
                let frame = numbered(REQUEST, next_number, &(&body, time_left(reply.deadline())));
                let _ = fault::drop_contained(body);
                waiting.lock().file(next_number, reply);
                next_number += 1;
                match frame {
                    Some(frame) if write_frame(&mut writing, &frame).is_ok() => {}
                    _ => break,
                }
            }
        }
        drop(wants);
        if let Ok(reader) = reader {
            let _ = reader.join();
        }
        // Requests the child still held when it ended are answered once its
        // proxy knows how it ended.
        Left {
            in_flight: None,
            callers: Some(Box::new(move |ended| waiting.lock().close(ended))),
        }
    }
}

/// The child's side: requests into the local channel, each with a reply
/// endpoint that answers across the bridge.
fn pump_requests<Q, A>(local: cb::Sender<Request<Q, A>>, socket: UnixStream, writer: Writer)
where
    Q: DeserializeOwned,
    A: Serialize,
{
    let mut socket = wire::Patient(socket);
    while let Ok(Some(frame)) = read_frame(&mut socket) {
        let Some((REQUEST, number, payload)) = split(&frame) else {
            break;
        };
        let Some((body, left)) = decode::<(Q, Option<Duration>)>(payload) else {
            break;
        };
        let reply = BridgedReply {
            number,
            writer: Arc::clone(&writer),
            encode: |number, answer: &A| numbered(ANSWER, number, answer),
            answered: false,
        };
        let request = Request {
            body,
            reply: ReplyTo::bridged(reply, deadline_in(left)),
        };
        if local.send(request).is_err() {
            break;
        }
    }
}

impl<Q, A> Portable for Receiver<Request<Q, A>>
where
    Q: Serialize + DeserializeOwned + Send + 'static,
    A: Serialize + DeserializeOwned + Send + 'static,
{
    fn pack(&self, packing: &mut Packing) -> Result<(), PackError> {
        let rx = self.clone();
        pack_endpoint(
            packing,
            "Receiver",
            &self.gate,
            (self.id(), self.capacity()),
            |socket| Box::new(ServingPump { rx, socket }),
        )
    }

    fn unpack(unpacking: &mut Unpacking) -> Result<Self, PackError> {
        unpack_receiver(unpacking, pump_requests::<Q, A>)
    }
}

// ---- the child calls: Sender<Request<Q, A>> ---------------------------------

struct CallingPump<Q, A> {
    tx: Sender<Request<Q, A>>,
    socket: UnixStream,
}

impl<Q, A> ParentPump for CallingPump<Q, A>
where
    Q: DeserializeOwned + Send + 'static,
    A: Serialize + Send + 'static,
{
    fn run(self: Box<Self>, serving: &Serving<'_>) -> Left {
        let CallingPump { tx, socket } = *self;
        let bridge = bridge_name::<Request<Q, A>>("Sender");
        let Ok(writer) = socket.try_clone() else {
            return Left::default();
        };
        let writer: Writer = Arc::new(Mutex::new(writer));
        let mut socket = wire::Patient(socket);
        // Waits for the answers of the calls made so far, while this thread
        // takes the next.
        let (calls_tx, calls) = cb::bounded::<(u64, PendingReply<A>)>(64);
        let answering = Arc::clone(&writer);
        let stop = serving.gone.watch().clone();
        let waiter = crate::ceiling::spawn("compartment-bridge-calls".to_owned(), move || {
            wait_for_answers(&calls, &stop, &answering);
        });
        while let Some(frame) = serving.protocol.next_frame(&bridge, &mut socket) {
            let request = match split(&frame) {
                Some((REQUEST, number, payload)) => decode::<(Q, Option<Duration>)>(payload)
                    .map(|request| (number, request))
                    .ok_or("a request that does not decode"),
                _ => Err("a frame that is not a request"),
            };
            let (number, (body, left)) = match request {
                Ok(request) => request,
                Err(what) => {
                    serving.protocol.broken(&bridge, what);
                    break;
                }
            };
            let (mut request, pending) = Request::new(body);
            request.reply.deadline = deadline_in(left);
            match tx.send_with(request, &[serving.gone], None) {
                Ok(()) => {
                    let accepted = write_frame(&mut *writer.lock(), &[ACCEPTED]).is_ok();
                    if !accepted || calls_tx.send((number, pending)).is_err() {
                        break;
                    }
                }
                Err((request, _)) => {
                    let _ = fault::drop_contained(request);
                    let _ = write_frame(&mut *writer.lock(), &[CLOSED]);
                    break;
                }
            }
        }
        drop(calls_tx);
        if let Ok(waiter) = waiter {
            let _ = waiter.join();
        }
        Left::default()
    }
}

/// Sends each answer (or the news that none will come) back to the child,
/// until no call is left and none can come, or the child is gone.
fn wait_for_answers<A: Serialize>(
    calls: &cb::Receiver<(u64, PendingReply<A>)>,
    gone: &cb::Receiver<crate::signal::Never>,
    writer: &Writer,
) {
    let mut waiting: Vec<(u64, PendingReply<A>)> = Vec::new();
    let mut more = true;
    while more || !waiting.is_empty() {
        let mut select = cb::Select::new();
        let stop = select.recv(gone);
        let new = more.then(|| select.recv(calls));
        let first = 1 + usize::from(more);
        for (_, pending) in &waiting {
            select.recv(&pending.inner);
        }
        let ready = select.select();
        let index = ready.index();
        if index == stop {
            let _ = ready.recv(gone);
            return;
        }
        if Some(index) == new {
            match ready.recv(calls) {
                Ok(call) => waiting.push(call),
                Err(_) => more = false,
            }
            continue;
        }
        let answered = ready.recv(&waiting[index - first].1.inner);
        let (number, _) = waiting.swap_remove(index - first);
        let frame = match answered {
            Ok(Reply::Answer(answer)) => {
                let frame = numbered(ANSWER, number, &answer);
                let _ = fault::drop_contained(answer);
                frame
            }
            Ok(Reply::Crashed(crash)) => numbered(CRASHED, number, &crash),
            Err(_) => Some(no_reply(number)),
        };
        if let Some(frame) = frame {
            let _ = write_frame(&mut *writer.lock(), &frame);
        }
    }
}

/// A request written by a child that calls: its body crosses, its reply
/// endpoint waits here under its number.
struct Calls<A> {
    waiting: Waiting<A>,
    next: AtomicU64,
}

impl<Q: Serialize, A: Send> Codec<Request<Q, A>> for Calls<A> {
    fn encode(&self, request: &Request<Q, A>, frame: &mut Vec<u8>) -> bool {
        let number = self.next.load(Ordering::Acquire);
        let encoded = numbered(
            REQUEST,
            number,
            &(&request.body, time_left(request.reply.deadline())),
        );
        encoded.map(|encoded| *frame = encoded).is_some()
    }

    fn sent(&self, request: Request<Q, A>) {
        let number = self.next.fetch_add(1, Ordering::AcqRel);
        let Request { body, reply } = request;
        let _ = fault::drop_contained(body);
        self.waiting.lock().file(number, reply);
    }
}

/// The child's side of its calls: credits for the next request, answers
/// for the waiting ones.
fn pump_answers<A: DeserializeOwned>(
    credit: cb::Sender<()>,
    socket: UnixStream,
    waiting: Waiting<A>,
) {
    let mut socket = wire::Patient(socket);
    while let Ok(Some(frame)) = read_frame(&mut socket) {
        if frame == [ACCEPTED] {
            if credit.send(()).is_err() {
                break;
            }
            continue;
        }
        if answer(&waiting, &frame).is_err() {
            break;
        }
    }
    waiting.lock().close(None);
}

impl<Q, A> Portable for Sender<Request<Q, A>>
where
    Q: Serialize + DeserializeOwned + Send + 'static,
    A: Serialize + DeserializeOwned + Send + 'static,
{
    fn pack(&self, packing: &mut Packing) -> Result<(), PackError> {
        let tx = self.clone();
        pack_endpoint(
            packing,
            "Sender",
            &self.gate,
            (self.id(), self.capacity()),
            |socket| Box::new(CallingPump { tx, socket }),
        )
    }

    fn unpack(unpacking: &mut Unpacking) -> Result<Self, PackError> {
        let waiting = Arc::new(Mutex::new(Table::answers_may_come_first()));
        let answers = Arc::clone(&waiting);
        let calls = Calls {
            waiting,
            next: AtomicU64::new(0),
        };
        unpack_sender(unpacking, calls, move |credit, socket| {
            pump_answers::<A>(credit, socket, answers)
        })
    }
}

#[cfg(test)]
#[allow(
    clippy::disallowed_methods,
    reason = "the tests stand in for a child's threads and the supervisor's side"
)]
mod tests {
    use super::*;
    use crate::channel::ReplyError;

    #[test]
    fn the_supervisors_side_keeps_no_answer_to_a_request_it_did_not_file() {
        let mut table = Table::<u64>::filed_first();
        let (request, pending) = Request::<(), u64>::new(());
        table.file(0, request.reply);
        // Not filed: refused, and nothing is kept for it.
        assert!(!table.answer(1, Some(Reply::Answer(7))));
        assert!(table.early.is_none());
        assert!(table.answer(0, Some(Reply::Answer(5))));
        assert_eq!(pending.recv(), Ok(5));
        // Answered already: refused too.
        assert!(!table.answer(0, Some(Reply::Answer(6))));
        assert!(table.replies.is_empty());
    }

    #[test]
    fn a_childs_side_keeps_an_answer_that_came_before_its_filing() {
        let mut table = Table::<u64>::answers_may_come_first();
        assert!(table.answer(0, Some(Reply::Answer(5))));
        assert!(table.answer(1, None));
        let (first, answered) = Request::<(), u64>::new(());
        let (second, unanswered) = Request::<(), u64>::new(());
        table.file(0, first.reply);
        table.file(1, second.reply);
        assert_eq!(answered.recv(), Ok(5));
        assert_eq!(unanswered.recv(), Err(ReplyError::NoReply));
        assert!(table.replies.is_empty());
    }

    /// Requests sent at once from many threads of a child each cross under
    /// a number of their own: the number a request is written with is the
    /// one its reply endpoint is filed under.
    #[test]
    fn concurrent_callers_in_a_child_each_get_a_number_of_their_own() {
        use super::super::outbox::{Outbox, OutboxWay};
        use crate::channel;
        let (near, far) = UnixStream::pair().unwrap();
        let threads = 8;
        let each = 500;
        let (credit_tx, credit) = cb::bounded(threads * each);
        for _ in 0..threads * each {
            credit_tx.send(()).unwrap();
        }
        let waiting = Arc::new(Mutex::new(Table::answers_may_come_first()));
        let outbox = Outbox {
            codec: Box::new(Calls::<u64> {
                waiting: Arc::clone(&waiting),
                next: AtomicU64::new(0),
            }),
            socket: Arc::new(Mutex::new(near)),
            way: OutboxWay::Socket { credit },
        };
        let tx: Sender<Request<u64, u64>> = channel::bridged_sender(outbox, 1, threads * each);
        let reading = std::thread::spawn(move || {
            let mut far = std::io::BufReader::new(far);
            (0..threads * each)
                .map(|_| {
                    let frame = read_frame(&mut far).unwrap().unwrap();
                    split(&frame).unwrap().1
                })
                .collect::<Vec<u64>>()
        });
        let senders: Vec<_> = (0..threads)
            .map(|_| {
                let tx = tx.clone();
                std::thread::spawn(move || {
                    for body in 0..each as u64 {
                        let (request, pending) = Request::new(body);
                        tx.send(request).unwrap();
                        drop(pending);
                    }
                })
            })
            .collect();
        for sender in senders {
            sender.join().unwrap();
        }
        let mut numbers = reading.join().unwrap();
        numbers.sort_unstable();
        numbers.dedup();
        assert_eq!(numbers.len(), threads * each, "numbers written twice");
        assert_eq!(
            waiting.lock().replies.len(),
            threads * each,
            "filed under other numbers"
        );
    }
}
