//! A bridge's ring: the frames one side of a process boundary sends the
//! other, written into memory both processes map, so that a stream of
//! messages costs no system call per message. A bridged sender's ring
//! carries the child's messages to the supervisor; a bridged receiver's
//! carries the supervisor's answers to the child's asks.
//!
//! One writer and one reader. The writer writes a frame — its length as a
//! little-endian `u32`, then its bytes, wrapping at the ring's end — and
//! then publishes the new end (`tail`); the reader reads up to `tail` and
//! publishes how far it has read (`head`), which frees the room, and how
//! many messages it grants the writer in all. Because the memory is the
//! supervisor's as much as the child's, a frame the child published is
//! there to read after the child dies, as a frame written to a socket is.
//!
//! Neither side waits on the memory: a side about to sleep raises its
//! flag in the ring and looks once more, and the other side, having moved
//! its end, sends a word over the bridge's socket when it finds the flag
//! raised (the reader's doorbell, the writer's credit or room). A frame
//! longer than a quarter of the ring goes in parts, each published as room
//! frees up; a send cut short between parts publishes that the frame is
//! abandoned, for which the writer always leaves room.
//!
//! The child may be hostile, and both ends trust nothing it publishes.
//! Reading what the child wrote ([`from_child`]), the supervisor keeps its
//! own `head` and takes from the memory only `tail`, the lengths and the
//! bytes, each checked before use and copied out before they are decoded;
//! a position or a length no honest writer publishes breaks the bridge's
//! protocol. Writing to the child ([`to_child`]), the supervisor keeps its
//! own `tail` and takes from the memory only `head` and the grants, which
//! at worst give it no room or more credit than asked for (what a child
//! could ask for anyway): every byte it writes stays inside the ring.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering, fence};

use super::shared_memory::SharedPages;

/// Bytes of frames a ring holds.
const DATA: usize = 64 * 1024;
/// The header's page: the four positions, each on its own cache line.
const HEADER: usize = 4096;
/// The whole shared memory of one ring.
pub(crate) const RING_BYTES: usize = HEADER + DATA;
/// The longest part of a frame.
const PART_MAX: usize = DATA / 4;
/// A part's length, with [`MORE`] set when more parts of its frame follow.
const LENGTH: usize = 4;
const MORE: u32 = 1 << 31;
/// In place of a part's length: the frame begun is abandoned.
const ABANDONED: u32 = u32::MAX;

/// How many bytes the reader frees between looks at the writer's flag,
/// unless it catches up first: a quarter of the ring, which a writer that
/// waits for room always has at least three of in the ring.
const FREED_BETWEEN_LOOKS: usize = DATA / 4;

/// The header's words, each on a cache line of its own.
const TAIL: usize = 0;
const HEAD: usize = 8;
const READER_ASLEEP: usize = 16;
const WRITER_WAITS: usize = 24;
/// How many messages the reader has granted the writer in all.
const GRANTED: usize = 32;
/// Raised by the reader: the channel is closed for this endpoint.
const CLOSED: usize = 40;
const WORDS: usize = 48;

/// What a hostile writer can make a ring say that an honest one never
/// does: the reader stops there and the bridge's protocol is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RingError {
    #[error("a ring position {0} bytes past what it was read to, more than the ring holds")]
    PastItsEnd(u64),
    #[error("a part of a frame cut short in its ring")]
    CutShort,
    #[error("a part of {0} bytes in its ring, longer than a ring's parts")]
    PartTooLong(usize),
    #[error(
        "a frame of more than {} bytes in its ring, longer than a bridge carries",
        super::wire::MAX_FRAME
    )]
    FrameTooLong,
}

/// The positions and bytes of one ring.
#[derive(Debug)]
struct Ring {
    pages: SharedPages,
}

impl Ring {
    fn word(&self, index: usize) -> &AtomicU64 {
        &self.pages.words(WORDS)[index]
    }

    /// Raises this side's flag at `index` before it sleeps; the caller
    /// looks once more after. The fence pairs with [`Ring::take_flag`]'s:
    /// of the two sides, at least one sees what the other did.
    fn raise_flag(&self, index: usize) {
        self.word(index).store(1, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    /// After this side moved on: whether the other side raised its flag at
    /// `index` to sleep, and is owed word. The flag is lowered, so the word
    /// is sent once.
    fn take_flag(&self, index: usize) -> bool {
        fence(Ordering::SeqCst);
        let flag = self.word(index);
        flag.load(Ordering::Relaxed) != 0 && flag.swap(0, Ordering::Relaxed) != 0
    }

    /// Copies `out.len()` bytes from the ring's position `at`.
    fn read(&self, at: u64, out: &mut [u8]) {
        let data = self.pages.bytes(HEADER, DATA);
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = data[wrap(at + i as u64)].load(Ordering::Relaxed);
        }
    }

    /// Writes `bytes` at the ring's position `at`.
    fn write(&self, at: u64, bytes: &[u8]) {
        let data = self.pages.bytes(HEADER, DATA);
        for (i, byte) in bytes.iter().enumerate() {
            data[wrap(at + i as u64)].store(*byte, Ordering::Relaxed);
        }
    }
}

fn wrap(position: u64) -> usize {
    // `DATA` is a power of two, and the cast keeps the low bits.
    (position % DATA as u64) as usize
}

/// Makes a ring for frames from the child: the reader for the
/// supervisor's pump, and the descriptor of its memory, to pass to the
/// child. The writer starts with one credit, so that its first message
/// needs no word from the reader.
pub(crate) fn from_child() -> std::io::Result<(OwnedFd, RingReader)> {
    let (fd, pages) = SharedPages::create("compartment-ring", RING_BYTES)?;
    let mut reader = RingReader::new(Ring { pages }, None);
    reader.grant(1);
    Ok((fd, reader))
}

/// Makes a ring for frames to the child: the writer for the supervisor's
/// pump, and the descriptor of its memory, to pass to the child. The
/// writer starts with no credit: the child grants one message per ask.
pub(crate) fn to_child() -> std::io::Result<(OwnedFd, RingWriter)> {
    let (fd, pages) = SharedPages::create("compartment-ring", RING_BYTES)?;
    Ok((fd, RingWriter::new(Ring { pages }, None)))
}

/// A ring's reading end: the supervisor's for frames from the child, the
/// child's for frames to it.
#[derive(Debug)]
pub(crate) struct RingReader {
    ring: Ring,
    /// How far this side has read: its own, never read back from the ring.
    head: u64,
    /// The writer's end as last read: the line it is on is the writer's,
    /// read again only once this side has caught up with it.
    tail_seen: u64,
    /// Bytes freed since the writer's flag was last looked at.
    freed: usize,
    /// Messages granted in all: this side's count, never read back.
    granted: u64,
    /// The frame being read: each next one is copied into it.
    frame: Vec<u8>,
    /// `frame` holds the first parts of a frame whose last is to come.
    partial: bool,
    /// In the child, the ring's memory, held as its writer holds it.
    _memory: Option<OwnedFd>,
}

impl RingReader {
    fn new(ring: Ring, memory: Option<OwnedFd>) -> Self {
        Self {
            ring,
            head: 0,
            tail_seen: 0,
            freed: 0,
            granted: 0,
            frame: Vec::new(),
            partial: false,
            _memory: memory,
        }
    }

    /// Maps, in the child, a ring the supervisor's side writes to.
    pub(crate) fn map(memory: OwnedFd) -> std::io::Result<Self> {
        let pages = SharedPages::map(memory.as_fd(), RING_BYTES)?;
        Ok(Self::new(Ring { pages }, Some(memory)))
    }

    /// Takes the next whole frame, if the child published one.
    ///
    /// # Errors
    ///
    /// What no honest writer publishes.
    pub(crate) fn next(&mut self) -> Result<Option<&[u8]>, RingError> {
        loop {
            if self.head == self.tail_seen {
                self.tail_seen = self.ring.word(TAIL).load(Ordering::Acquire);
            }
            let ready = self.tail_seen.wrapping_sub(self.head);
            if ready == 0 {
                return Ok(None);
            }
            if ready > DATA as u64 {
                return Err(RingError::PastItsEnd(ready));
            }
            if ready < LENGTH as u64 {
                return Err(RingError::CutShort);
            }
            let mut length = [0; LENGTH];
            self.ring.read(self.head, &mut length);
            let length = u32::from_le_bytes(length);
            if length == ABANDONED {
                self.advance(LENGTH);
                self.partial = false;
                continue;
            }
            let part = (length & !MORE) as usize;
            if part > PART_MAX {
                return Err(RingError::PartTooLong(part));
            }
            if (LENGTH + part) as u64 > ready {
                return Err(RingError::CutShort);
            }
            if !self.partial {
                self.frame.clear();
                // A long frame's buffer is not kept for the short ones.
                if self.frame.capacity() > DATA {
                    self.frame = Vec::new();
                }
            }
            let from = self.frame.len();
            if from + part > super::wire::MAX_FRAME {
                self.partial = false;
                return Err(RingError::FrameTooLong);
            }
            self.frame.resize(from + part, 0);
            self.ring
                .read(self.head + LENGTH as u64, &mut self.frame[from..]);
            self.advance(LENGTH + part);
            self.partial = length & MORE != 0;
            if !self.partial {
                return Ok(Some(&self.frame));
            }
        }
    }

    fn advance(&mut self, by: usize) {
        self.head += by as u64;
        self.freed += by;
        self.ring.word(HEAD).store(self.head, Ordering::Release);
    }

    /// Whether the writer waits for room (and is owed word of it): asked
    /// after each read. The flag is looked at once a quarter of the ring
    /// was freed since the last look, or once the reader has caught up:
    /// a writer waits only with three quarters of the ring still to read,
    /// so it hears of room before the reader runs dry.
    pub(crate) fn writer_waits(&mut self) -> bool {
        if self.freed < FREED_BETWEEN_LOOKS && self.head != self.tail_seen {
            return false;
        }
        self.freed = 0;
        self.ring.take_flag(WRITER_WAITS)
    }

    /// Grants the writer `count` more messages; answers whether it waits
    /// (for credit or room) and is owed word of it.
    pub(crate) fn grant(&mut self, count: u64) -> bool {
        self.granted += count;
        self.ring
            .word(GRANTED)
            .store(self.granted, Ordering::Release);
        self.freed = 0;
        self.ring.take_flag(WRITER_WAITS)
    }

    /// Tells the writer that the channel is closed for it: its next send
    /// fails. One that waits hears it from the socket.
    pub(crate) fn close(&self) {
        self.ring.word(CLOSED).store(1, Ordering::Release);
    }

    /// Raises the reader's flag before it sleeps: `false` if more came
    /// meanwhile (the flag is lowered again, and the reader reads on), else
    /// the writer rings the doorbell when it publishes more.
    pub(crate) fn may_sleep(&self) -> bool {
        self.ring.raise_flag(READER_ASLEEP);
        if self.ring.word(TAIL).load(Ordering::Acquire) == self.head {
            return true;
        }
        self.ring.word(READER_ASLEEP).store(0, Ordering::Relaxed);
        false
    }
}

/// Whether a message may be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Credit {
    Taken,
    /// All granted are spent: wait for word of more.
    None,
    Closed,
}

/// A ring's writing end: the child's for frames from it, the
/// supervisor's for frames to it.
#[derive(Debug)]
pub(crate) struct RingWriter {
    ring: Ring,
    /// How far this side has written.
    tail: u64,
    /// The reader's end as last read: read again only when the room it
    /// leaves is not enough.
    head_seen: u64,
    /// Messages written (or being written) in all.
    sent: u64,
    /// The reader's grants as last read: read again when spent.
    granted_seen: u64,
    /// In the child, the ring's memory, held as the endpoint's socket is:
    /// the child's descriptors are its grant's, each counted against its
    /// open-file limit, and this one gives it nothing its mapping does not
    /// (the memory is sealed at its size).
    _memory: Option<OwnedFd>,
}

impl RingWriter {
    fn new(ring: Ring, memory: Option<OwnedFd>) -> Self {
        let tail = ring.word(TAIL).load(Ordering::Acquire);
        let head_seen = ring.word(HEAD).load(Ordering::Acquire);
        Self {
            ring,
            tail,
            head_seen,
            sent: 0,
            granted_seen: 0,
            _memory: memory,
        }
    }

    /// Maps, in the child, a ring the supervisor's side reads.
    pub(crate) fn map(memory: OwnedFd) -> std::io::Result<Self> {
        let pages = SharedPages::map(memory.as_fd(), RING_BYTES)?;
        Ok(Self::new(Ring { pages }, Some(memory)))
    }

    /// Takes a credit for one message, if the reader granted one that is
    /// not spent, and the channel is not closed.
    pub(crate) fn take_credit(&mut self) -> Credit {
        if self.ring.word(CLOSED).load(Ordering::Acquire) != 0 {
            return Credit::Closed;
        }
        if self.sent == self.granted_seen {
            self.granted_seen = self.ring.word(GRANTED).load(Ordering::Acquire);
        }
        // A count the reader never publishes (below what was sent) grants
        // nothing.
        if self.granted_seen > self.sent {
            self.sent += 1;
            Credit::Taken
        } else {
            Credit::None
        }
    }

    /// Gives back the credit taken for a message that was not sent.
    pub(crate) fn give_back_credit(&mut self) {
        self.sent -= 1;
    }

    /// The parts `frame` is written in.
    pub(crate) fn parts(frame: &[u8]) -> std::slice::Chunks<'_, u8> {
        frame.chunks(PART_MAX)
    }

    /// Whether a part of `length` bytes fits now, leaving room to abandon
    /// its frame after it.
    pub(crate) fn fits(&mut self, length: usize) -> bool {
        let needs = LENGTH + length + LENGTH;
        let room = |head: u64| DATA - self.tail.wrapping_sub(head).min(DATA as u64) as usize;
        if room(self.head_seen) >= needs {
            return true;
        }
        self.head_seen = self.ring.word(HEAD).load(Ordering::Acquire);
        room(self.head_seen) >= needs
    }

    /// Raises the writer's flag before it waits for credit or room; the
    /// caller looks once more before it sleeps.
    pub(crate) fn wait_for_word(&self) {
        self.ring.raise_flag(WRITER_WAITS);
    }

    /// Publishes one part of a frame (`more`: not its last), which the
    /// caller made sure [`fits`](RingWriter::fits). Answers whether the
    /// reader sleeps and is owed the doorbell.
    pub(crate) fn put(&mut self, part: &[u8], more: bool) -> bool {
        // At most `PART_MAX`, so the length fits below `MORE`.
        let length = part.len() as u32 | if more { MORE } else { 0 };
        self.ring.write(self.tail, &length.to_le_bytes());
        self.ring.write(self.tail + LENGTH as u64, part);
        self.publish(LENGTH + part.len())
    }

    /// Publishes that the frame whose first parts were put will not be
    /// finished; there is always room for it (see [`RingWriter::fits`]).
    pub(crate) fn abandon(&mut self) -> bool {
        self.ring.write(self.tail, &ABANDONED.to_le_bytes());
        self.publish(LENGTH)
    }

    fn publish(&mut self, bytes: usize) -> bool {
        self.tail += bytes as u64;
        self.ring.word(TAIL).store(self.tail, Ordering::Release);
        self.ring.take_flag(READER_ASLEEP)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A repeatable stream of pseudo-random numbers (xorshift) from `seed`.
    fn random_from(mut seed: u64) -> impl FnMut() -> u64 {
        move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        }
    }

    fn pair() -> (RingReader, RingWriter) {
        let (fd, reader) = from_child().unwrap();
        let writer = RingWriter::map(fd).unwrap();
        (reader, writer)
    }

    /// Writes `frame` whole, part by part, reading as the ring fills.
    fn send(reader: &mut RingReader, writer: &mut RingWriter, frame: &[u8]) -> Vec<Vec<u8>> {
        let mut read = Vec::new();
        let mut parts = RingWriter::parts(frame).peekable();
        while let Some(part) = parts.next() {
            while !writer.fits(part.len()) {
                read.extend(reader.next().unwrap().map(<[u8]>::to_vec));
            }
            writer.put(part, parts.peek().is_some());
        }
        read
    }

    #[test]
    fn frames_come_out_whole_and_in_order_across_the_end() {
        let (mut reader, mut writer) = pair();
        // Frames of lengths that do not divide the ring, so they wrap at
        // every offset over many laps.
        for lap in 0..2_000u32 {
            let frame: Vec<u8> = (0..(lap % 97) as u8 + 1).map(|i| i ^ lap as u8).collect();
            assert!(send(&mut reader, &mut writer, &frame).is_empty());
            assert_eq!(reader.next(), Ok(Some(&frame[..])));
        }
        assert_eq!(reader.next(), Ok(None));
    }

    #[test]
    fn a_frame_longer_than_the_ring_goes_in_parts() {
        let (mut reader, mut writer) = pair();
        let long: Vec<u8> = (0..5 * DATA + 3).map(|i| (i % 251) as u8).collect();
        let mut read = send(&mut reader, &mut writer, &[1]);
        read.extend(send(&mut reader, &mut writer, &long));
        read.extend(send(&mut reader, &mut writer, &[2]));
        while let Some(frame) = reader.next().unwrap() {
            read.push(frame.to_vec());
        }
        assert_eq!(read, vec![vec![1], long, vec![2]]);
    }

    #[test]
    fn an_abandoned_frame_is_dropped_whole() {
        let (mut reader, mut writer) = pair();
        writer.put(&[9; 10], true);
        assert_eq!(reader.next(), Ok(None), "its last part is to come");
        writer.abandon();
        writer.put(&[1], false);
        assert_eq!(reader.next(), Ok(Some(&[1][..])));
    }

    #[test]
    fn a_full_ring_frees_room_as_it_is_read_and_says_so() {
        let (mut reader, mut writer) = pair();
        let part = [3; PART_MAX];
        let mut written = 0;
        while writer.fits(part.len()) {
            writer.put(&part, false);
            written += 1;
        }
        assert_eq!(written, 3, "four parts and their lengths do not fit");
        writer.wait_for_word();
        assert!(!writer.fits(part.len()));
        assert!(matches!(reader.next(), Ok(Some(_))));
        assert!(reader.writer_waits());
        assert!(!reader.writer_waits(), "said once");
        assert!(writer.fits(part.len()));
    }

    #[test]
    fn credits_are_granted_through_the_ring_and_closing_ends_them() {
        let (mut reader, mut writer) = pair();
        assert_eq!(writer.take_credit(), Credit::Taken, "one to start with");
        assert_eq!(writer.take_credit(), Credit::None);
        writer.wait_for_word();
        assert!(reader.grant(2), "the writer waits");
        assert_eq!(writer.take_credit(), Credit::Taken);
        writer.give_back_credit();
        assert_eq!(writer.take_credit(), Credit::Taken);
        assert_eq!(writer.take_credit(), Credit::Taken);
        assert_eq!(writer.take_credit(), Credit::None);
        assert!(!reader.grant(1), "nobody waits");
        reader.close();
        assert_eq!(writer.take_credit(), Credit::Closed);
    }

    #[test]
    fn the_doorbell_rings_only_for_a_sleeping_reader() {
        let (mut reader, mut writer) = pair();
        assert!(!writer.put(&[1], false));
        assert!(!reader.may_sleep(), "a frame is waiting");
        assert!(!writer.put(&[2], false), "the reader did not sleep");
        reader.next().unwrap();
        reader.next().unwrap();
        assert!(reader.may_sleep());
        assert!(writer.put(&[3], false));
        assert!(!writer.put(&[4], false), "rung once");
    }

    /// A hostile writer's positions and lengths, written straight into the
    /// memory: each is refused, none panics or reads out of the ring.
    #[test]
    fn what_no_honest_writer_publishes_is_refused() {
        let too_long = (PART_MAX as u32 + 1).to_le_bytes();
        let cases: [(&[u8], u64, RingError); 5] = [
            (&[], DATA as u64 + 1, RingError::PastItsEnd(DATA as u64 + 1)),
            (&[], u64::MAX, RingError::PastItsEnd(u64::MAX)),
            (&[5, 0, 0, 0, 1], 3, RingError::CutShort),
            (&[5, 0, 0, 0, 1], 5, RingError::CutShort),
            (&too_long, DATA as u64, RingError::PartTooLong(PART_MAX + 1)),
        ];
        for (bytes, tail, refusal) in cases {
            let (mut reader, writer) = pair();
            writer.ring.write(0, bytes);
            writer.ring.word(TAIL).store(tail, Ordering::Release);
            assert_eq!(reader.next(), Err(refusal));
        }
    }

    /// A hostile reader's positions, grants and flags, written straight
    /// into the memory of a ring the supervisor writes to the child: the
    /// writer never panics, takes no credit the reader did not publish,
    /// and hears that the ring was closed.
    #[test]
    fn what_no_honest_reader_publishes_leaves_the_writer_whole() {
        let mut random = random_from(0x2545_f491_4f6c_dd1d);
        for _ in 0..200 {
            let (fd, mut writer) = to_child().unwrap();
            let reader = RingReader::map(fd).unwrap();
            assert_eq!(writer.take_credit(), Credit::None, "none before an ask");
            let mut most_granted = 0;
            for _ in 0..50 {
                let word = [HEAD, GRANTED, READER_ASLEEP][random() as usize % 3];
                // Mostly small values; sometimes anything.
                let value = match random() % 4 {
                    0 => random(),
                    _ => random() % (2 * DATA as u64),
                };
                reader.ring.word(word).store(value, Ordering::Release);
                if word == GRANTED {
                    most_granted = most_granted.max(value);
                }
                if writer.take_credit() == Credit::Taken {
                    assert!(writer.sent <= most_granted, "a credit nobody granted");
                }
                let part = vec![7; random() as usize % PART_MAX + 1];
                if writer.fits(part.len()) {
                    writer.put(&part, random().is_multiple_of(2));
                }
            }
            reader.ring.word(CLOSED).store(1, Ordering::Release);
            assert_eq!(writer.take_credit(), Credit::Closed);
        }
    }

    #[test]
    fn a_ring_to_the_child_carries_one_message_per_ask() {
        let (fd, mut writer) = to_child().unwrap();
        let mut reader = RingReader::map(fd).unwrap();
        assert_eq!(writer.take_credit(), Credit::None);
        writer.wait_for_word();
        assert!(reader.grant(1), "the writer waits for the ask");
        assert_eq!(writer.take_credit(), Credit::Taken);
        assert_eq!(writer.take_credit(), Credit::None, "one per ask");
        assert!(writer.fits(3));
        writer.put(&[1, 2, 3], false);
        assert_eq!(reader.next(), Ok(Some(&[1, 2, 3][..])));
        assert_eq!(reader.next(), Ok(None));
    }

    #[test]
    fn a_frame_past_what_a_bridge_carries_is_refused() {
        let (mut reader, mut writer) = pair();
        let part = [0; PART_MAX];
        let refused = loop {
            if !writer.fits(part.len()) {
                match reader.next() {
                    Ok(None) => continue,
                    Ok(Some(_)) => panic!("no part ended its frame"),
                    Err(refused) => break refused,
                }
            }
            writer.put(&part, true);
        };
        assert_eq!(refused, RingError::FrameTooLong);
        assert!(!reader.partial, "nothing is kept of it");
    }

    /// Whatever a hostile writer leaves in the ring — random bytes and a
    /// random end, lap after lap — the reader answers with a frame, nothing
    /// or a refusal: it never panics, never reads outside the ring, and
    /// never hands out a frame longer than a bridge carries.
    #[test]
    fn a_ring_of_random_bytes_is_read_without_harm() {
        let mut random = random_from(0x9e37_79b9_7f4a_7c15);
        for _ in 0..200 {
            let (mut reader, writer) = pair();
            let mut tail = 0u64;
            for _ in 0..50 {
                let bytes: Vec<u8> = (0..random() % 64).map(|_| random() as u8).collect();
                writer.ring.write(tail, &bytes);
                // Mostly an end that moves on a little; sometimes anywhere.
                tail = match random() % 8 {
                    0 => random(),
                    _ => tail.wrapping_add(random() % 80),
                };
                writer.ring.word(TAIL).store(tail, Ordering::Release);
                match reader.next() {
                    Ok(Some(frame)) => assert!(frame.len() <= crate::process::wire::MAX_FRAME),
                    Ok(None) => {}
                    Err(_) => break,
                }
            }
        }
    }
}
