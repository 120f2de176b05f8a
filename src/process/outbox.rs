//! A bridged sender's outbox in a process child: where the component's
//! messages go, on its own thread, and how a send waits for credit or
//! room (see `bridge` for the two ends, `ring` for the ring).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel as cb;

use super::bridge::{Codec, DOORBELL};
use super::ring::{Credit, RING_BYTES, RingWriter};
use super::wire::write_frame;
use crate::channel::{Wake, deadline_after, interrupts, passed, recv_interruptible, stopped};
use crate::revoke::Gate;
use crate::signal::Signal;

/// In a process child, where a bridged sender's messages go: written on
/// the sending thread itself — into the bridge's ring, memory the
/// supervisor's process maps too, or to the bridge's socket — so that a
/// message `send` accepted reaches the supervisor's side even if the
/// process dies the next instant. Each send spends a credit the
/// supervisor's side granted for room in the real channel, and waits for
/// one when none is left — the back-pressure of a full channel.
pub(crate) struct Outbox<T> {
    /// How a message becomes a frame, and what is kept of it once written.
    pub(crate) codec: Box<dyn Codec<T>>,
    pub(crate) socket: Arc<parking_lot::Mutex<std::os::unix::net::UnixStream>>,
    pub(crate) way: OutboxWay,
}

/// How an outbox's frames and credits travel.
pub(crate) enum OutboxWay {
    /// Frames on the socket; a token per credit, which the bridge's pump
    /// hands out as the supervisor's side grants them (disconnected when
    /// the channel is closed for this endpoint).
    Socket { credit: cb::Receiver<()> },
    /// Frames and credits in the bridge's ring.
    Ring(OutboxRing),
}

/// A bridged sender's ring, and word from the supervisor's side that the
/// ring has credit or room again (disconnected when the channel closes).
/// One sender at a time holds the writer, waits included: a frame's parts
/// are written in one piece, and the word wakes the one that waits.
pub(crate) struct OutboxRing {
    pub(crate) writer: parking_lot::Mutex<Writing>,
    pub(crate) word: cb::Receiver<()>,
}

/// A ring's writer, and the buffer each of its frames is encoded into.
pub(crate) struct Writing {
    pub(crate) ring: RingWriter,
    pub(crate) frame: Vec<u8>,
}

/// How a send may wait: its gate, the caller's interrupts and deadline;
/// `None` for a send that may not wait.
type Waiting<'a> = Option<(&'a Gate, &'a [&'a Signal], Option<Instant>)>;

impl<T> Outbox<T> {
    pub(crate) fn send(
        &self,
        message: T,
        gate: &Gate,
        extra: &[&Signal],
        deadline: Option<Instant>,
    ) -> Result<(), (T, Wake)> {
        if let Some(wake) = stopped(gate, extra) {
            return Err((message, wake));
        }
        self.send_waiting(message, Some((gate, extra, deadline)))
    }

    pub(crate) fn try_send(&self, message: T) -> Result<(), (T, Wake)> {
        self.send_waiting(message, None)
    }

    fn send_waiting(&self, message: T, waiting: Waiting<'_>) -> Result<(), (T, Wake)> {
        match &self.way {
            OutboxWay::Socket { credit } => {
                let written = self.write_to_socket(credit, &message, waiting);
                self.keep(written, message)
            }
            OutboxWay::Ring(ring) => {
                let written = self.write_to_ring(ring, &message, waiting);
                self.keep(written, message)
            }
        }
    }

    /// What the codec keeps of a written message (a request's number and
    /// reply endpoint) is kept under the lock its frame was encoded and
    /// written under (`held`), so that it matches the frame when several
    /// threads send at once.
    fn keep<Held>(&self, written: Result<Held, Wake>, message: T) -> Result<(), (T, Wake)> {
        match written {
            Ok(held) => {
                self.codec.sent(message);
                drop(held);
                Ok(())
            }
            Err(wake) => Err((message, wake)),
        }
    }

    /// Writes `message`'s frame to the socket; on success, the socket's
    /// lock is still held.
    fn write_to_socket(
        &self,
        credit: &cb::Receiver<()>,
        message: &T,
        waiting: Waiting<'_>,
    ) -> Result<parking_lot::MutexGuard<'_, std::os::unix::net::UnixStream>, Wake> {
        match (credit.try_recv(), waiting) {
            (Ok(()), _) => {}
            (Err(cb::TryRecvError::Disconnected), _) => return Err(Wake::Disconnected),
            (Err(cb::TryRecvError::Empty), None) => return Err(Wake::Timeout),
            (Err(cb::TryRecvError::Empty), Some((gate, _, _))) if gate.is_woken() => {
                return Err(Wake::Stopped);
            }
            (Err(cb::TryRecvError::Empty), Some((gate, extra, deadline))) => {
                let (interrupts, own) = interrupts(gate, extra);
                recv_interruptible(credit, &interrupts, deadline)
                    .map_err(|interrupt| Wake::from_interrupt(interrupt, own))?;
            }
        }
        let mut socket = self.socket.lock();
        let mut frame = Vec::new();
        if !self.codec.encode(message, &mut frame) {
            return Err(Wake::Disconnected);
        }
        write_frame(&mut *socket, &frame).map_err(|_| Wake::Disconnected)?;
        Ok(socket)
    }

    /// Writes `message`'s frame into the ring; on success, the ring's
    /// writer is still held.
    fn write_to_ring<'a>(
        &self,
        ring: &'a OutboxRing,
        message: &T,
        waiting: Waiting<'_>,
    ) -> Result<parking_lot::MutexGuard<'a, Writing>, Wake> {
        let mut writing = lock_writer(ring, waiting)?;
        let Writing {
            ring: writer,
            frame,
        } = &mut *writing;
        wait_until(ring, writer, waiting, |writer| match writer.take_credit() {
            Credit::Taken => Ok(true),
            Credit::None => Ok(false),
            Credit::Closed => Err(Wake::Disconnected),
        })?;
        // A long frame's buffer is not kept for the short ones.
        if frame.capacity() > RING_BYTES {
            *frame = Vec::new();
        }
        if !self.codec.encode(message, frame) {
            writer.give_back_credit();
            return Err(Wake::Disconnected);
        }
        let mut parts = RingWriter::parts(frame).peekable();
        let mut begun = false;
        while let Some(part) = parts.next() {
            let room = wait_until(ring, writer, waiting, |writer| Ok(writer.fits(part.len())));
            if let Err(wake) = room {
                // Not sent: its credit is for the next message.
                writer.give_back_credit();
                if begun && writer.abandon() {
                    self.ring_doorbell();
                }
                return Err(wake);
            }
            if writer.put(part, parts.peek().is_some()) {
                self.ring_doorbell();
            }
            begun = true;
        }
        Ok(writing)
    }

    /// Tells the supervisor's pump, asleep on the socket, that the ring
    /// holds more.
    fn ring_doorbell(&self) {
        // A socket that is closed means the supervisor's side is gone,
        // which the next send hears.
        let _ = write_frame(&mut *self.socket.lock(), &[DOORBELL]);
    }
}

/// Takes the ring's writer, waiting while another sender holds it (which
/// may itself wait for credit or room) for as long as `waiting` allows.
fn lock_writer<'a>(
    ring: &'a OutboxRing,
    waiting: Waiting<'_>,
) -> Result<parking_lot::MutexGuard<'a, Writing>, Wake> {
    if let Some(writer) = ring.writer.try_lock() {
        return Ok(writer);
    }
    let Some((gate, extra, deadline)) = waiting else {
        return Err(Wake::Timeout);
    };
    // The holder may wait long, for a consumer to make room: the lock is
    // taken in short waits, between which this send's own interrupts and
    // deadline are looked at.
    const TURN: Duration = Duration::from_millis(5);
    loop {
        if let Some(wake) = stopped(gate, extra) {
            return Err(wake);
        }
        if gate.is_woken() {
            return Err(Wake::Stopped);
        }
        let until = [deadline, deadline_after(TURN)].into_iter().flatten().min();
        let locked = match until {
            Some(until) => ring.writer.try_lock_until(until),
            // No instant can stand for the turn's end: wait for the lock.
            None => Some(ring.writer.lock()),
        };
        if let Some(writer) = locked {
            return Ok(writer);
        }
        if passed(deadline) {
            return Err(Wake::Timeout);
        }
    }
}

/// Waits until `ready` says the writer may go on (credit taken, room
/// found), as `waiting` allows (`None`: not at all). A writer that may
/// wait looks patiently first, yielding between looks: while the reader
/// reads, credit and room come within microseconds, and a sleep would
/// cost the wake of a word. Before each sleep the writer raises its flag
/// and asks `ready` once more, so that the reader, having moved on, either
/// was seen to or sends word.
fn wait_until(
    ring: &OutboxRing,
    writer: &mut RingWriter,
    waiting: Waiting<'_>,
    mut ready: impl FnMut(&mut RingWriter) -> Result<bool, Wake>,
) -> Result<(), Wake> {
    let mut looks = 0;
    loop {
        if ready(writer)? {
            return Ok(());
        }
        let patient = waiting.is_some_and(|(_, _, deadline)| !passed(deadline));
        if patient && looks < super::wire::PATIENCE {
            looks += 1;
            std::thread::yield_now();
            continue;
        }
        looks = 0;
        writer.wait_for_word();
        if ready(writer)? {
            return Ok(());
        }
        let Some((gate, extra, deadline)) = waiting else {
            return Err(Wake::Timeout);
        };
        let (interrupts, own) = interrupts(gate, extra);
        recv_interruptible(&ring.word, &interrupts, deadline)
            .map_err(|interrupt| Wake::from_interrupt(interrupt, own))?;
    }
}
