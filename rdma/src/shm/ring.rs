//! A single-producer single-consumer ring of variable-length messages in shared memory, with an
//! eventfd doorbell for a consumer that has stopped busy-polling.
//!
//! Layout, from the ring's base offset (each control word on its own cache line so that producer
//! and consumer do not false-share):
//!
//! ```text
//! +0    head: u64      bytes ever pushed (written by the producer only)
//! +64   tail: u64      bytes ever popped (written by the consumer only)
//! +128  waiting: u64   1 while the consumer is parked or about to park on the doorbell
//! +192  data: capacity bytes (a power of two); records are [len: u32][0: u32][payload, padded to 8]
//! ```
//!
//! A record never wraps: when it does not fit before the end, the producer writes a wrap marker
//! (`len == WRAP_MARKER`) and starts again at offset 0. The consumer checks every length it reads,
//! because the peer writing the ring may be buggy or hostile.
//!
//! Wake-up without lost doorbells: the producer stores head, then (SeqCst fence) reads `waiting`;
//! the consumer stores `waiting = 1`, then (SeqCst fence) reads head. At least one of them sees the
//! other's store, so either the consumer finds the message or the producer rings the doorbell.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::memory::SharedMemory;
use crate::error::{Error, ErrorKind, Result};

const HEAD_OFFSET: usize = 0;
const TAIL_OFFSET: usize = 64;
const WAITING_OFFSET: usize = 128;
const DATA_OFFSET: usize = 192;
const RECORD_HEADER_LEN: usize = 8;
const WRAP_MARKER: u32 = u32::MAX;

/// Smallest ring: room for a few small messages.
pub const RING_CAPACITY_MIN: usize = 4096;
/// Largest ring: 64 MiB, far more than any request batch needs.
pub const RING_CAPACITY_MAX: usize = 1 << 26;

/// Bytes of shared memory a ring of `capacity` data bytes occupies.
pub fn ring_len(capacity: usize) -> usize {
    DATA_OFFSET + capacity
}

/// The largest message a ring of `capacity` accepts: half the ring, so that a wrap marker plus one
/// message always fit in an empty ring.
pub fn message_len_max(capacity: usize) -> usize {
    capacity / 2 - RECORD_HEADER_LEN
}

/// An eventfd used as a doorbell; it may be shared by several rings (a server parks on one doorbell
/// for all its connections).
#[derive(Debug)]
pub struct Doorbell {
    fd: OwnedFd,
}

impl Doorbell {
    /// A new non-blocking eventfd.
    ///
    /// # Errors
    /// `Io` when eventfd fails.
    pub fn new() -> Result<Self> {
        // SAFETY: eventfd with documented flags; the result is checked.
        let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if raw < 0 {
            return Err(Error::last_os("eventfd"));
        }
        // SAFETY: raw is a fresh descriptor nothing else owns.
        Ok(Self {
            fd: unsafe { OwnedFd::from_raw_fd(raw) },
        })
    }

    /// Wraps an eventfd received from the peer.
    pub fn from_fd(fd: OwnedFd) -> Self {
        Self { fd }
    }

    /// The descriptor, to hand to a peer.
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Wakes whoever waits on the doorbell.
    pub fn ring(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to a valid eventfd. A full counter (EAGAIN) means
        // a wake-up is already pending, which is all we want.
        unsafe {
            libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8);
        }
    }

    /// Blocks until the doorbell rings or `timeout` passes, then clears it.
    ///
    /// # Errors
    /// `Io` when poll fails for a reason other than EINTR.
    pub fn wait(&self, timeout: Duration) -> Result<()> {
        let mut pollfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let timeout_ms = timeout.as_millis().clamp(1, i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd.
        let ready = unsafe { libc::poll(&mut pollfd, 1, timeout_ms) };
        if ready < 0 {
            let os = std::io::Error::last_os_error();
            if os.kind() != std::io::ErrorKind::Interrupted {
                return Err(Error::io("poll doorbell", &os));
            }
        }
        let mut count: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64 from a non-blocking eventfd (EAGAIN when empty).
        unsafe {
            libc::read(self.fd.as_raw_fd(), (&mut count as *mut u64).cast(), 8);
        }
        Ok(())
    }
}

/// One end of a ring: a producer or a consumer, never both.
#[derive(Debug)]
pub struct Ring {
    memory: Arc<SharedMemory>,
    base: usize,
    capacity: usize,
    /// The producer's head or the consumer's tail: each side keeps its own index privately and
    /// publishes it; the other side's index is reloaded only when needed.
    position: u64,
    /// The other side's index as last seen (tail for the producer, head for the consumer).
    peer_position: u64,
}

impl Ring {
    /// Attaches to the ring at `base` in `memory` with `capacity` data bytes; `memory` must be
    /// zeroed there when the ring is new.
    ///
    /// # Errors
    /// `Protocol` when the capacity is not a power of two within bounds or the ring does not fit
    /// in `memory` (the values may come from a peer).
    pub fn attach(memory: Arc<SharedMemory>, base: usize, capacity: usize) -> Result<Self> {
        let fits = base % 64 == 0
            && base
                .checked_add(ring_len(capacity))
                .is_some_and(|end| end <= memory.len());
        if !capacity.is_power_of_two()
            || !(RING_CAPACITY_MIN..=RING_CAPACITY_MAX).contains(&capacity)
            || !fits
        {
            return Err(Error::new(
                ErrorKind::Protocol,
                format!(
                    "ring at {base} with capacity {capacity} is not a power of two in \
                     {RING_CAPACITY_MIN}..={RING_CAPACITY_MAX} inside {} bytes",
                    memory.len()
                ),
            ));
        }
        Ok(Self {
            memory,
            base,
            capacity,
            position: 0,
            peer_position: 0,
        })
    }

    fn initialise_producer(&mut self) {
        self.position = self.load(HEAD_OFFSET, Ordering::Acquire);
        self.peer_position = self.load(TAIL_OFFSET, Ordering::Acquire);
    }

    fn load(&self, field: usize, order: Ordering) -> u64 {
        self.memory.load_u64(self.base + field, order)
    }

    fn store(&self, field: usize, value: u64, order: Ordering) {
        self.memory.store_u64(self.base + field, value, order)
    }

    /// The largest message this ring accepts.
    pub fn message_len_max(&self) -> usize {
        message_len_max(self.capacity)
    }
}

/// The producing end of a ring.
#[derive(Debug)]
pub struct Producer {
    ring: Ring,
    doorbell: Arc<Doorbell>,
}

impl Producer {
    /// The producer of `ring`; `doorbell` wakes the consumer.
    pub fn new(mut ring: Ring, doorbell: Arc<Doorbell>) -> Self {
        ring.initialise_producer();
        Self { ring, doorbell }
    }

    /// Pushes one message and rings the doorbell when the consumer is parked.
    ///
    /// # Errors
    /// `TooLarge` when the message exceeds [`Ring::message_len_max`]; `WouldBlock` when the ring
    /// has no room now (the consumer is behind); `Protocol` when the consumer's tail is past the
    /// head or more than a ring behind (a hostile or broken peer).
    pub fn push(&mut self, message: &[u8]) -> Result<()> {
        let ring = &mut self.ring;
        if message.len() > ring.message_len_max() {
            return Err(Error::new(
                ErrorKind::TooLarge,
                format!(
                    "message of {} bytes exceeds the ring's limit of {}",
                    message.len(),
                    ring.message_len_max()
                ),
            ));
        }
        let record_len = RECORD_HEADER_LEN + message.len().next_multiple_of(8);
        let physical = (ring.position as usize) & (ring.capacity - 1);
        let skip = if physical + record_len > ring.capacity {
            ring.capacity - physical
        } else {
            0
        };
        let needed = (skip + record_len) as u64;
        if free_len(ring.position, ring.peer_position, ring.capacity)? < needed {
            ring.peer_position = ring.load(TAIL_OFFSET, Ordering::Acquire);
            if free_len(ring.position, ring.peer_position, ring.capacity)? < needed {
                return Err(Error::new(ErrorKind::WouldBlock, "ring full"));
            }
        }
        let data = ring.base + DATA_OFFSET;
        let mut at = physical;
        if skip > 0 {
            ring.memory
                .store_u64(data + at, u64::from(WRAP_MARKER), Ordering::Relaxed);
            at = 0;
        }
        ring.memory.write(data + at + RECORD_HEADER_LEN, message);
        ring.memory
            .store_u64(data + at, message.len() as u64, Ordering::Relaxed);
        ring.position += needed;
        ring.store(HEAD_OFFSET, ring.position, Ordering::Release);
        fence(Ordering::SeqCst);
        if ring.load(WAITING_OFFSET, Ordering::Relaxed) != 0 {
            self.doorbell.ring();
        }
        Ok(())
    }
}

/// Bytes free in a ring whose producer is at `head` and consumer at `tail`.
///
/// # Errors
/// `Protocol` when the tail, which the consumer writes (the peer, when we produce), is past the
/// head or more than a ring behind it.
fn free_len(head: u64, tail: u64, capacity: usize) -> Result<u64> {
    match head.checked_sub(tail) {
        Some(used) if used <= capacity as u64 => Ok(capacity as u64 - used),
        _ => Err(Error::new(
            ErrorKind::Protocol,
            format!("ring tail {tail} is not within a ring behind the head {head}"),
        )),
    }
}

/// The consuming end of a ring.
#[derive(Debug)]
pub struct Consumer {
    ring: Ring,
    scratch: Vec<u8>,
}

impl Consumer {
    /// The consumer of `ring`.
    pub fn new(mut ring: Ring) -> Self {
        ring.position = ring.load(TAIL_OFFSET, Ordering::Acquire);
        ring.peer_position = ring.position;
        Self {
            ring,
            scratch: Vec::new(),
        }
    }

    /// Whether a message is waiting (reloads the producer's head).
    pub fn has_message(&mut self) -> bool {
        self.ring.peer_position = self.ring.load(HEAD_OFFSET, Ordering::Acquire);
        self.ring.peer_position != self.ring.position
    }

    /// Pops one message into `on_message`; returns whether there was one.
    ///
    /// # Errors
    /// `Protocol` when the producer wrote a record that breaks the ring's rules (a length past
    /// the limit, a head that ran ahead of the ring); the ring is then unusable.
    pub fn pop(&mut self, on_message: impl FnOnce(&[u8])) -> Result<bool> {
        let ring = &mut self.ring;
        if ring.peer_position == ring.position {
            ring.peer_position = ring.load(HEAD_OFFSET, Ordering::Acquire);
            if ring.peer_position == ring.position {
                return Ok(false);
            }
        }
        if ring.peer_position.wrapping_sub(ring.position) > ring.capacity as u64 {
            return Err(Error::new(
                ErrorKind::Protocol,
                "ring head ran past the tail",
            ));
        }
        let data = ring.base + DATA_OFFSET;
        let mut physical = (ring.position as usize) & (ring.capacity - 1);
        let mut len_word = ring.memory.load_u64(data + physical, Ordering::Relaxed);
        if len_word == u64::from(WRAP_MARKER) {
            ring.position += (ring.capacity - physical) as u64;
            physical = 0;
            len_word = ring.memory.load_u64(data, Ordering::Relaxed);
        }
        let len = len_word as usize;
        // The length is the peer's: bound it before any arithmetic on it.
        let record_len = RECORD_HEADER_LEN + len.min(ring.capacity).next_multiple_of(8);
        if len > ring.message_len_max()
            || physical + record_len > ring.capacity
            || ring.position + record_len as u64 > ring.peer_position
        {
            return Err(Error::new(
                ErrorKind::Protocol,
                format!("ring record of {len} bytes breaks the ring's bounds"),
            ));
        }
        self.scratch.resize(len, 0);
        ring.memory
            .read(data + physical + RECORD_HEADER_LEN, &mut self.scratch)?;
        ring.position += record_len as u64;
        ring.store(TAIL_OFFSET, ring.position, Ordering::Release);
        on_message(&self.scratch);
        Ok(true)
    }

    /// Announces that the consumer is about to park; returns true when a message arrived in the
    /// meantime (then do not park). Pair with [`Consumer::unpark`] after waking.
    pub fn prepare_park(&mut self) -> bool {
        self.ring.store(WAITING_OFFSET, 1, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        self.has_message()
    }

    /// Clears the parked flag so that producers stop ringing.
    pub fn unpark(&mut self) {
        self.ring.store(WAITING_OFFSET, 0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(capacity: usize) -> (Producer, Consumer, Arc<Doorbell>) {
        let memory = Arc::new(SharedMemory::create("ring", ring_len(capacity)).unwrap());
        let doorbell = Arc::new(Doorbell::new().unwrap());
        let producer = Producer::new(
            Ring::attach(memory.clone(), 0, capacity).unwrap(),
            doorbell.clone(),
        );
        let consumer = Consumer::new(Ring::attach(memory, 0, capacity).unwrap());
        (producer, consumer, doorbell)
    }

    #[test]
    fn messages_of_every_length_cross_the_wrap_in_order() {
        let (mut producer, mut consumer, _) = pair(RING_CAPACITY_MIN);
        for round in 0..5_000usize {
            let len = (round * 7) % 300;
            let message: Vec<u8> = (0..len).map(|i| (i + round) as u8).collect();
            producer.push(&message).unwrap();
            let mut got = None;
            assert!(consumer.pop(|bytes| got = Some(bytes.to_vec())).unwrap());
            assert_eq!(got.unwrap(), message, "round {round}");
        }
        assert!(!consumer.pop(|_| {}).unwrap());
    }

    #[test]
    fn full_ring_refuses_then_accepts_after_a_pop() {
        let (mut producer, mut consumer, _) = pair(RING_CAPACITY_MIN);
        let message = [7u8; 100];
        let mut pushed = 0;
        while producer.push(&message).is_ok() {
            pushed += 1;
        }
        assert!(pushed >= 30, "only {pushed} fitted");
        assert_eq!(
            producer.push(&message).unwrap_err().kind(),
            ErrorKind::WouldBlock
        );
        assert!(consumer.pop(|_| {}).unwrap());
        producer.push(&message).unwrap();
    }

    #[test]
    fn too_large_message_is_refused() {
        let (mut producer, _, _) = pair(RING_CAPACITY_MIN);
        let message = vec![0u8; message_len_max(RING_CAPACITY_MIN) + 1];
        assert_eq!(
            producer.push(&message).unwrap_err().kind(),
            ErrorKind::TooLarge
        );
    }

    #[test]
    fn hostile_length_is_a_protocol_error() {
        let memory = Arc::new(SharedMemory::create("ring", ring_len(RING_CAPACITY_MIN)).unwrap());
        memory.store_u64(HEAD_OFFSET, 64, Ordering::Release);
        memory.store_u64(DATA_OFFSET, 1 << 40, Ordering::Release);
        let mut consumer = Consumer::new(Ring::attach(memory, 0, RING_CAPACITY_MIN).unwrap());
        assert_eq!(
            consumer.pop(|_| {}).unwrap_err().kind(),
            ErrorKind::Protocol
        );
    }

    #[test]
    fn hostile_lengths_near_the_word_limit_are_protocol_errors() {
        // Found by the shm_ring fuzz target: a length near 2^64 overflowed while its record
        // length was computed, before the bound check (a panic where overflow checks are on).
        for len_word in [
            u64::MAX - 1,
            u64::MAX - 7,
            u64::MAX << 3,
            u64::from(u32::MAX) - 1,
        ] {
            let memory =
                Arc::new(SharedMemory::create("ring", ring_len(RING_CAPACITY_MIN)).unwrap());
            memory.store_u64(HEAD_OFFSET, 64, Ordering::Release);
            memory.store_u64(DATA_OFFSET, len_word, Ordering::Release);
            let mut consumer = Consumer::new(Ring::attach(memory, 0, RING_CAPACITY_MIN).unwrap());
            assert_eq!(
                consumer.pop(|_| {}).unwrap_err().kind(),
                ErrorKind::Protocol,
                "length word {len_word:#x}"
            );
        }
    }

    #[test]
    fn hostile_tail_is_a_protocol_error_for_the_producer() {
        // Found by the shm_ring fuzz target: a tail written past the head made the free-space
        // arithmetic underflow (a panic where overflow checks are on).
        let capacity = RING_CAPACITY_MIN as u64;
        let head = 2 * capacity;
        let cases: &[(&str, u64, Option<ErrorKind>)] = &[
            (
                "tail with room behind the head",
                head - capacity + 1024,
                None,
            ),
            ("tail past the head", head + 8, Some(ErrorKind::Protocol)),
            (
                "tail far past the head",
                u64::MAX,
                Some(ErrorKind::Protocol),
            ),
            (
                "tail more than a ring behind",
                head - capacity - 8,
                Some(ErrorKind::Protocol),
            ),
        ];
        for (name, tail, expected) in cases {
            let (mut producer, _, _) = pair(RING_CAPACITY_MIN);
            // The producer is at `head` and last saw a full ring, so it reloads the tail.
            producer.ring.position = head;
            producer.ring.peer_position = head - capacity;
            let memory = producer.ring.memory.clone();
            memory.store_u64(TAIL_OFFSET, *tail, Ordering::Release);
            let found = producer.push(b"x").err().map(|error| error.kind());
            assert_eq!(found, *expected, "case {name}");
        }
    }

    #[test]
    fn parked_consumer_is_woken_by_the_doorbell() {
        let (mut producer, mut consumer, doorbell) = pair(RING_CAPACITY_MIN);
        assert!(!consumer.prepare_park());
        let thread = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            producer.push(b"wake").unwrap();
        });
        let started = std::time::Instant::now();
        doorbell.wait(Duration::from_secs(10)).unwrap();
        consumer.unpark();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(consumer.pop(|bytes| assert_eq!(bytes, b"wake")).unwrap());
        thread.join().unwrap();
    }
}
