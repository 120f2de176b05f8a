//! A channel's feeds: the rings that process children's bridged senders
//! write into, which the channel's receivers on the supervisor's side read
//! themselves.
//!
//! A message from a child's sender could reach a receiver through the
//! bridge's pump, which takes it from the ring and puts it into the
//! channel; but then three threads (the child's sender, the pump and the
//! receiver) take turns on every message, and on a machine with two cores
//! that is the stream's bound. So a receiver that finds the channel empty
//! takes the next message from a feeding ring itself, and the pump stands
//! aside ([`Registration::pump_may_park`]) once receivers do so. From then
//! on the pump puts messages into the channel only while a receiver sleeps
//! or selects there ([`Feeds::arm`]), after a while in which no receive
//! read the ring (its receivers no longer look, or are gone), and once the
//! child is gone.
//!
//! Order: every move from a ring into the channel happens under the
//! feed's lock, and a receiver reads a ring only under that lock and only
//! when the channel is empty, so a message never overtakes one from the
//! same ring that is already in the channel. While the pump waits for room
//! to put a message into a full channel, receivers leave the ring alone.
//!
//! Credit: whoever reads the ring grants the child credits for the room
//! the channel has, as the pump did alone before, under the same lock; a
//! message still in the ring counts as outstanding, so the messages between
//! the two ends never exceed the channel's free room by more than one.

use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use crossbeam_channel as cb;
use parking_lot::{Mutex, MutexGuard};

use super::bridge::{CLOSED, MESSAGE, Protocol, ROOM};
use super::ring::RingReader;
use super::wire::send_word_now;
use crate::channel::Sender;
use crate::signal::Signal;

/// How long a pump stands aside without a receiver reading its ring
/// before it puts the ring's messages into the channel itself: the
/// receivers may have stopped looking (busy elsewhere, or gone).
const ASIDE_AT_MOST: Duration = Duration::from_millis(10);

/// The feeds of one channel, shared by all its endpoints.
pub(crate) struct Feeds<T> {
    shared: Arc<Shared<T>>,
}

struct Shared<T> {
    /// How many feeds `list` holds: what a receive looks at first.
    count: AtomicUsize,
    /// Receivers asleep on the channel, or selecting on it.
    sleepers: AtomicUsize,
    list: Mutex<Vec<Arc<Feed<T>>>>,
}

impl<T> Clone for Feeds<T> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T> Default for Feeds<T> {
    fn default() -> Self {
        Self {
            shared: Arc::new(Shared {
                count: AtomicUsize::new(0),
                sleepers: AtomicUsize::new(0),
                list: Mutex::new(Vec::new()),
            }),
        }
    }
}

impl<T> Feeds<T> {
    /// Whether any ring feeds the channel now.
    #[inline]
    pub(crate) fn any(&self) -> bool {
        self.shared.count.load(Ordering::Acquire) != 0
    }

    /// The next message from a feeding ring, for a receiver that found
    /// `channel` empty; `None` when no ring has one it may take now.
    pub(crate) fn take(&self, channel: &cb::Receiver<T>) -> Option<T> {
        if !self.any() {
            return None;
        }
        // The feeds' locks are taken under the list's, never the other
        // way round.
        self.shared
            .list
            .lock()
            .iter()
            .find_map(|feed| feed.take(channel))
    }

    /// Before a receiver sleeps on the channel (or selects on it): the
    /// pumps put their rings' messages there until it is
    /// [`disarm`](Self::disarm)ed.
    pub(crate) fn arm(&self) {
        // Counted even without a feed: one may register while it sleeps.
        self.shared.sleepers.fetch_add(1, Ordering::SeqCst);
        if self.any() {
            for feed in self.shared.list.lock().iter() {
                feed.nudge();
            }
        }
    }

    /// After a wait that [`arm`](Self::arm) began.
    pub(crate) fn disarm(&self) {
        self.shared.sleepers.fetch_sub(1, Ordering::SeqCst);
    }

    fn register(&self, feed: &Arc<Feed<T>>) {
        let mut list = self.shared.list.lock();
        list.push(Arc::clone(feed));
        self.shared.count.store(list.len(), Ordering::Release);
    }

    fn unregister(&self, feed: &Arc<Feed<T>>) {
        let mut list = self.shared.list.lock();
        list.retain(|other| !Arc::ptr_eq(other, feed));
        self.shared.count.store(list.len(), Ordering::Release);
    }
}

/// How many messages a receiver that reads a ring takes out of it at
/// once: the first is its own, the others go into the channel for the
/// receives after it, so that the lock and the look at the ring (a line
/// the child's writer has just written) are paid once for all of them.
const TAKEN_AT_ONCE: usize = 32;

/// One ring feeding a channel, registered while its pump runs.
pub(crate) struct Feed<T> {
    state: Mutex<FeedState<T>>,
    /// The channel the ring feeds.
    into: cb::Sender<T>,
    decode: fn(&[u8]) -> Option<T>,
    /// How many times receivers read the ring themselves: written under
    /// the lock, read by the pump without it.
    taken: AtomicU64,
    /// Wakes a pump that stands aside.
    nudge: (cb::Sender<()>, cb::Receiver<()>),
}

/// A feed registered with its channel, as its pump holds it: dropped when
/// the pump ends, however it ends, it unregisters the feed, so that no
/// receive reads a ring nobody serves.
pub(crate) struct Registration<T> {
    feed: Arc<Feed<T>>,
    feeds: Feeds<T>,
}

impl<T> std::ops::Deref for Registration<T> {
    type Target = Feed<T>;

    fn deref(&self) -> &Feed<T> {
        &self.feed
    }
}

impl<T> Drop for Registration<T> {
    fn drop(&mut self) {
        self.feeds.unregister(&self.feed);
    }
}

impl<T> Registration<T> {
    /// Whether the pump may stand aside now: receivers read the ring
    /// themselves (one has since the pump last delivered for want of
    /// readers), and none sleeps on the channel.
    pub(crate) fn pump_may_park(&self, standing: &mut Standing) -> bool {
        let taken = self.taken.load(Ordering::Relaxed);
        if taken != standing.taken_seen {
            standing.taken_seen = taken;
            standing.aside = true;
        }
        standing.aside && self.feeds.shared.sleepers.load(Ordering::SeqCst) == 0
    }
}

/// Whether a pump stands aside for the receivers that read its ring.
#[derive(Debug, Default)]
pub(crate) struct Standing {
    /// Receivers read the ring themselves: the pump delivers only while
    /// one sleeps. Until one first does, it delivers everything, for
    /// receivers that were asleep before the ring fed the channel.
    aside: bool,
    /// How many reads by receivers the pump has seen.
    taken_seen: u64,
}

/// The ring and what reading it owes the child, under the feed's lock.
pub(crate) struct FeedState<T> {
    ring: RingReader,
    /// A message taken out of the ring that found the channel full: the
    /// ring's next.
    pending: Option<T>,
    /// The bridge's socket, for words to the child.
    socket: UnixStream,
    capacity: usize,
    /// Messages the child may still send on the credits granted.
    outstanding: usize,
    /// The pump waits for room for a message it took: the ring's next one
    /// is younger.
    delivering: bool,
    /// The child broke the bridge's protocol in the ring: nobody reads it.
    broken: bool,
    protocol: Protocol,
    bridge: String,
}

/// What reading the ring gave.
pub(crate) enum Taken<T> {
    Message(T),
    /// Nothing whole to take now.
    Empty,
    /// The child broke the protocol (and was killed for it).
    Broken,
}

impl<T> Feed<T> {
    /// Registers a feed for `ring` (whose bridge's socket is `socket`)
    /// with the channel of `tx`, until the registration is dropped; the
    /// child starts with one credit.
    pub(crate) fn start(
        tx: &Sender<T>,
        ring: RingReader,
        socket: UnixStream,
        protocol: Protocol,
        bridge: String,
        decode: fn(&[u8]) -> Option<T>,
    ) -> Registration<T> {
        let capacity = tx.capacity();
        let feed = Arc::new(Self {
            state: Mutex::new(FeedState {
                ring,
                pending: None,
                socket,
                capacity,
                outstanding: 1,
                delivering: false,
                broken: false,
                protocol,
                bridge,
            }),
            into: tx.crossbeam().clone(),
            decode,
            taken: AtomicU64::new(0),
            nudge: cb::bounded(1),
        });
        let feeds = tx.feeds();
        feeds.register(&feed);
        Registration { feed, feeds }
    }

    /// The ring's state, for the pump.
    pub(crate) fn lock(&self) -> MutexGuard<'_, FeedState<T>> {
        self.state.lock()
    }

    /// A receiver's take: the ring's next message, if the channel is empty
    /// and nobody else reads the ring or moves from it now.
    fn take(&self, channel: &cb::Receiver<T>) -> Option<T> {
        let mut state = self.state.try_lock()?;
        // Under the lock, an empty channel holds nothing moved from this
        // ring that the next message could overtake.
        if state.broken || state.delivering || !channel.is_empty() {
            return None;
        }
        let Taken::Message(first) = state.read(self.decode) else {
            return None;
        };
        for _ in 1..TAKEN_AT_ONCE {
            if self.into.is_full() {
                break;
            }
            match state.read(self.decode) {
                Taken::Message(message) => {
                    // Filled meanwhile by a sender of this process.
                    if let Err(full) = self.into.try_send(message) {
                        state.pending = Some(full.into_inner());
                        break;
                    }
                }
                Taken::Empty | Taken::Broken => break,
            }
        }
        let queued = channel.len() + usize::from(state.pending.is_some());
        state.grant_due(queued);
        // Under the lock: no other writer.
        let taken = self.taken.load(Ordering::Relaxed);
        self.taken.store(taken + 1, Ordering::Relaxed);
        Some(first)
    }

    /// The ring's next message, for the pump, which holds the lock.
    pub(crate) fn read(&self, state: &mut FeedState<T>) -> Taken<T> {
        state.read(self.decode)
    }

    fn nudge(&self) {
        let _ = self.nudge.0.try_send(());
    }

    /// Stands the pump aside until a receiver arms, `gone` is raised, or
    /// a while has passed; after a while in which no receive read the
    /// ring, the pump delivers until one does again.
    pub(crate) fn park(&self, gone: &Signal, standing: &mut Standing) {
        let mut select = cb::Select::new_biased();
        select.recv(gone.watch());
        select.recv(&self.nudge.1);
        match select.select_timeout(ASIDE_AT_MOST) {
            Ok(operation) if operation.index() == 0 => {
                let _ = operation.recv(gone.watch());
            }
            Ok(operation) => {
                let _ = operation.recv(&self.nudge.1);
            }
            Err(_) => {
                if self.taken.load(Ordering::Relaxed) == standing.taken_seen {
                    standing.aside = false;
                }
            }
        }
    }
}

impl<T> FeedState<T> {
    /// The ring's next message; word to the child if it waits for room.
    fn read(&mut self, decode: fn(&[u8]) -> Option<T>) -> Taken<T> {
        if self.broken {
            return Taken::Broken;
        }
        if let Some(pending) = self.pending.take() {
            return Taken::Message(pending);
        }
        let next = match self.ring.next() {
            Ok(None) => Taken::Empty,
            Ok(Some(frame)) => match frame.split_first() {
                Some((&MESSAGE, bytes)) => match decode(bytes) {
                    Some(message) => Taken::Message(message),
                    None => self.broke("a message that does not decode"),
                },
                _ => self.broke("a frame that is not a message"),
            },
            Err(broken) => self.broke(broken),
        };
        if self.ring.writer_waits() {
            self.send_room();
        }
        if matches!(next, Taken::Message(_)) {
            // A child that writes past its credits only finds the channel
            // full, and the pump waiting on it.
            self.outstanding = self.outstanding.saturating_sub(1);
        }
        next
    }

    fn broke(&mut self, what: impl std::fmt::Display) -> Taken<T> {
        self.broken = true;
        self.protocol.broken(&self.bridge, what);
        Taken::Broken
    }

    /// Marks the pump as waiting for room for a message it took (or done
    /// with it).
    pub(crate) fn set_delivering(&mut self, delivering: bool) {
        self.delivering = delivering;
    }

    /// Grants the child credits for the room the channel has (`queued`:
    /// its length now), in batches of a quarter of the channel, or one
    /// when the child has none left.
    pub(crate) fn grant_due(&mut self, queued: usize) {
        let batch = (self.capacity / 4).max(1);
        if self.outstanding != 0 && self.outstanding + batch > self.capacity {
            return;
        }
        let room = self.capacity.saturating_sub(queued).max(1);
        let more = room.saturating_sub(self.outstanding);
        if self.outstanding == 0 || more >= batch {
            let more = more.max(1);
            if self.ring.grant(more as u64) {
                self.send_room();
            }
            self.outstanding += more;
        }
    }

    /// Tells the child's sender that waits that it has credit or room.
    fn send_room(&self) {
        // A child that is gone needs no word; one whose socket is full
        // has words to read already.
        let _ = send_word_now(&self.socket, ROOM);
    }

    /// Closes the channel for the child: its next send fails.
    pub(crate) fn close(&self) {
        self.ring.close();
        let _ = send_word_now(&self.socket, CLOSED);
    }

    /// Before the pump sleeps on the socket: see [`RingReader::may_sleep`].
    pub(crate) fn may_sleep(&self) -> bool {
        self.ring.may_sleep()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::{self, Receiver};
    use crate::process::bridge::decode;
    use crate::process::ring::{self, RingWriter};

    /// A channel fed by a ring, as a bridged sender's pump registers it,
    /// with the child's end of the ring and what the child was killed for.
    struct Fed {
        tx: Sender<u64>,
        rx: Receiver<u64>,
        feed: Registration<u64>,
        child: RingWriter,
        killed: Arc<Mutex<Vec<String>>>,
        _child_socket: UnixStream,
    }

    fn fed(capacity: usize) -> Fed {
        let (tx, rx) = channel::bounded(capacity).unwrap();
        let (memory, ring) = ring::from_child().unwrap();
        let child = RingWriter::map(memory).unwrap();
        let (socket, child_socket) = UnixStream::pair().unwrap();
        let killed = Arc::new(Mutex::new(Vec::new()));
        let protocol = Protocol::new({
            let killed = Arc::clone(&killed);
            move |reason| killed.lock().push(reason)
        });
        let feed = Feed::start(
            &tx,
            ring,
            socket,
            protocol,
            "the test's bridge".to_owned(),
            decode::<u64>,
        );
        Fed {
            tx,
            rx,
            feed,
            child,
            killed,
            _child_socket: child_socket,
        }
    }

    impl Fed {
        /// The child writes `frame` into the ring.
        fn write(&mut self, frame: &[u8]) {
            assert!(self.child.fits(frame.len()));
            self.child.put(frame, false);
        }

        fn send(&mut self, message: u64) {
            let mut frame = vec![MESSAGE];
            frame.extend(postcard::to_allocvec(&message).unwrap());
            self.write(&frame);
        }
    }

    #[test]
    fn a_receive_takes_from_the_ring_after_what_the_channel_holds_and_in_order() {
        let mut fed = fed(8);
        for message in 1..=40 {
            fed.send(message);
        }
        fed.tx.send(100).unwrap();
        let received: Vec<u64> = std::iter::from_fn(|| fed.rx.try_recv().ok()).collect();
        let mut expected = vec![100];
        expected.extend(1..=40);
        assert_eq!(received, expected);
        // What a receive took out of the ring beyond its own message went
        // into the channel, never past its capacity.
        assert!(fed.rx.is_empty());
    }

    #[test]
    fn a_receive_leaves_the_ring_alone_while_the_pump_waits_for_room() {
        let mut fed = fed(8);
        fed.send(1);
        fed.feed.lock().set_delivering(true);
        assert!(fed.rx.try_recv().is_err());
        fed.feed.lock().set_delivering(false);
        assert_eq!(fed.rx.try_recv().unwrap(), 1);
    }

    #[test]
    fn a_broken_frame_a_receive_reads_kills_the_child_and_ends_the_ring() {
        for (frame, told) in [
            (vec![7, 0], "a frame that is not a message"),
            (vec![MESSAGE, 0xff], "a message that does not decode"),
        ] {
            let mut fed = fed(8);
            fed.write(&frame);
            assert!(fed.rx.try_recv().is_err());
            let killed = fed.killed.lock().clone();
            assert_eq!(killed.len(), 1, "{killed:?}");
            assert!(killed[0].contains("broke the protocol"), "{killed:?}");
            assert!(killed[0].contains(told), "{killed:?}");
            // Nothing after it is read, by a receive or by the pump.
            fed.send(1);
            assert!(fed.rx.try_recv().is_err());
            assert!(matches!(fed.feed.read(&mut fed.feed.lock()), Taken::Broken));
            assert_eq!(fed.killed.lock().len(), 1);
        }
    }

    #[test]
    fn the_pump_stands_aside_while_receives_read_and_none_sleeps() {
        let mut fed = fed(8);
        let mut standing = Standing::default();
        // No receive has read the ring: the pump delivers (a receiver may
        // have slept on the channel before the ring fed it).
        assert!(!fed.feed.pump_may_park(&mut standing));
        fed.send(1);
        assert_eq!(fed.rx.try_recv().unwrap(), 1);
        assert!(fed.feed.pump_may_park(&mut standing));
        assert!(fed.feed.pump_may_park(&mut standing));
        // A receiver about to sleep needs the pump.
        fed.rx.arm();
        assert!(!fed.feed.pump_may_park(&mut standing));
        fed.rx.disarm();
        assert!(fed.feed.pump_may_park(&mut standing));
        // The arm's nudge ends the pump's next wait at once, and leaves
        // it aside.
        let gone = Signal::new();
        fed.feed.park(&gone, &mut standing);
        assert!(fed.feed.pump_may_park(&mut standing));
        // A while with no read: the pump delivers again until one reads.
        fed.feed.park(&gone, &mut standing);
        assert!(!fed.feed.pump_may_park(&mut standing));
        fed.send(2);
        assert_eq!(fed.rx.try_recv().unwrap(), 2);
        assert!(fed.feed.pump_may_park(&mut standing));
        // The child's end wakes it at once too.
        gone.raise();
        fed.feed.park(&gone, &mut standing);
        assert!(fed.feed.pump_may_park(&mut standing));
    }

    #[test]
    fn a_receive_that_owes_the_child_a_word_never_waits_on_its_socket() {
        let mut fed = fed(8);
        // The child reads none of its words, and its socket is full.
        while send_word_now(&fed.feed.lock().socket, ROOM).is_ok() {}
        fed.send(1);
        fed.child.wait_for_word();
        assert_eq!(fed.rx.try_recv().unwrap(), 1);
    }

    #[test]
    fn a_feed_whose_pump_ended_is_read_no_more() {
        let Fed {
            tx,
            rx,
            feed,
            mut child,
            ..
        } = fed(8);
        let mut frame = vec![MESSAGE];
        frame.extend(postcard::to_allocvec(&1u64).unwrap());
        child.put(&frame, false);
        drop(feed);
        assert!(!tx.feeds().any());
        assert!(rx.try_recv().is_err());
    }
}
