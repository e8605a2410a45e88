//! The fabric abstraction every provider implements: memory registration, connection set-up,
//! one-sided READ, two-sided SEND/RECV and completion polling by busy-poll.
//!
//! The shape follows verbs, because verbs is the strictest provider: work is *posted* with a
//! caller-chosen work id and finishes later as a [`Completion`] that [`Connection::poll`] hands
//! out. A READ lands in a local buffer the connection registered ([`Connection::register`]); a
//! RECV completion lends the received message to the callback, so no message is copied twice.

use std::sync::Arc;
use std::time::Duration;

use crate::error::Result;
use crate::shm::memory::SharedMemory;

/// A local buffer registered with a connection: READs land in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalBuffer(pub(crate) u32);

/// A region the peer exposed at connection set-up; READs name it by `index`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemoteRegion {
    /// Position in the peer's list of exposed regions.
    pub index: u32,
    /// Length in bytes; a READ past it is refused before it is posted.
    pub len: u64,
}

/// What finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompletionKind {
    /// A one-sided READ: its bytes are in the local buffer it named.
    Read,
    /// A SEND left (its buffer may be reused).
    Send,
    /// A message arrived; [`Completion::message`] holds it.
    Recv,
}

/// One finished piece of work.
#[derive(Debug)]
pub struct Completion<'a> {
    /// The id given when the work was posted (0 for a RECV).
    pub work_id: u64,
    /// What finished.
    pub kind: CompletionKind,
    /// Whether it succeeded; a failed completion usually means the connection is broken.
    pub success: bool,
    /// The received message for `Recv`, empty otherwise.
    pub message: &'a [u8],
}

/// A connected queue pair (verbs) or ring pair (shm).
pub trait Connection {
    /// Registers a local buffer of `len` bytes (zeroed) for READs to land in.
    ///
    /// # Errors
    /// `Config` when `len` is 0 or over the provider's limit; `Io`/`Unavailable` when the device
    /// refuses the registration.
    fn register(&mut self, len: usize) -> Result<LocalBuffer>;

    /// The bytes of a registered buffer. Panics on a buffer of another connection (a caller bug).
    fn buffer(&self, buffer: LocalBuffer) -> &[u8];

    /// The regions the peer exposed to us.
    fn remote_regions(&self) -> &[RemoteRegion];

    /// Posts a one-sided READ of `len` bytes at `remote_offset` of remote region `remote` into
    /// `local` at `local_offset`. The peer's CPU takes no part.
    ///
    /// # Errors
    /// `Protocol` when the ranges fall outside the regions; `WouldBlock` when too much work is
    /// outstanding; `Disconnected` when the connection is broken.
    fn post_read(
        &mut self,
        work_id: u64,
        remote: u32,
        remote_offset: u64,
        local: LocalBuffer,
        local_offset: usize,
        len: usize,
    ) -> Result<()>;

    /// Posts a two-sided SEND of `message`; the peer receives it through its `poll`.
    ///
    /// # Errors
    /// `TooLarge` over the provider's message limit; `WouldBlock` when the peer is behind;
    /// `Disconnected` when the connection is broken.
    fn post_send(&mut self, work_id: u64, message: &[u8]) -> Result<()>;

    /// Busy-polls once: hands every completion ready now to `on_completion` and returns how many
    /// there were. Never blocks.
    ///
    /// # Errors
    /// `Protocol` when the peer broke the transport's rules; `Disconnected` when it went away.
    fn poll(&mut self, on_completion: &mut dyn FnMut(Completion<'_>)) -> Result<usize>;

    /// Parks until a message may have arrived or `timeout` passed (a doorbell for idle peers);
    /// callers busy-poll first and park only when idle.
    ///
    /// # Errors
    /// `Io` when the wait itself fails.
    fn park(&mut self, timeout: Duration) -> Result<()>;

    /// Whether the peer is still there (checks the set-up socket without blocking).
    fn is_connected(&mut self) -> bool;
}

/// A server-side listener that accepts connections.
pub trait Listener {
    /// The connections it accepts.
    type Connection: Connection;

    /// Accepts one pending connection, if any, without blocking.
    ///
    /// # Errors
    /// `Io` when accepting fails; a peer that fails its handshake is dropped and `Ok(None)` is
    /// returned, so one bad client cannot stop the listener.
    fn accept(&mut self) -> Result<Option<Self::Connection>>;
}

/// A provider: how connections are set up and memory is exposed.
pub trait Fabric {
    /// Its connections.
    type Connection: Connection;
    /// Its listeners.
    type Listener: Listener<Connection = Self::Connection>;

    /// Connection set-up, client side: connects to a listener at `address` (a socket path for
    /// shm, `host:port` for verbs).
    ///
    /// # Errors
    /// `Io`/`Disconnected` when the address does not answer, `Protocol` on a bad handshake,
    /// `Unavailable` when the provider cannot run here.
    fn connect(&self, address: &str) -> Result<Self::Connection>;

    /// Connection set-up, server side: listens at `address`; every accepted peer may READ the
    /// `exposed` regions (memory registration for remote access), in this order.
    ///
    /// # Errors
    /// `Io` when the address cannot be bound; `Unavailable` when the provider cannot run here.
    fn listen(&self, address: &str, exposed: Vec<Arc<SharedMemory>>) -> Result<Self::Listener>;
}
