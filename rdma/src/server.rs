//! The server side of the message path: accept connections, answer requests through a
//! [`Handler`], park on the doorbell when idle. The one-sided path needs none of this: clients
//! READ the region while the server thread sleeps.
//!
//! [`MemoryStore`] is a complete handler over a `HashMap` that keeps a [`ReadRegion`] in step; the
//! tests, the example and `ember-bench rdma` use it, and it shows the server what to call.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::error::Result;
use crate::fabric::{CompletionKind, Connection, Fabric, Listener};
use crate::message::{Reply, Request};
use crate::region::{ReadRegion, RegionConfig};
use crate::routing::SlotRange;
use crate::shm::{ShmFabric, ShmListener};

/// What the server does with requests that arrive by message.
pub trait Handler {
    /// GET: appends the value to `value` and returns true, or returns false for a missing key.
    ///
    /// # Errors
    /// An error text for the client (e.g. WRONGTYPE).
    fn get(&mut self, key: &[u8], value: &mut Vec<u8>) -> std::result::Result<bool, String>;
    /// SET; the handler publishes the value in its region before returning.
    ///
    /// # Errors
    /// An error text for the client (e.g. OOM).
    fn set(&mut self, key: &[u8], value: &[u8]) -> std::result::Result<(), String>;
    /// DEL; returns whether the key existed.
    ///
    /// # Errors
    /// An error text for the client.
    fn delete(&mut self, key: &[u8]) -> std::result::Result<bool, String>;
    /// Which exposed region owns which slots.
    fn routing(&self) -> Vec<SlotRange>;
}

/// Server counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Connections accepted.
    pub accepted: u64,
    /// Connections closed (peer gone or broke the protocol).
    pub closed: u64,
    /// Requests answered.
    pub requests: u64,
    /// Messages that did not decode (the connection is then closed).
    pub bad_messages: u64,
}

/// Connections a server keeps at once; more are accepted and closed at once, so that a client
/// loop cannot exhaust descriptors.
pub const CONNECTION_COUNT_MAX: usize = 1024;

/// Polls connections and answers their requests.
#[derive(Debug)]
pub struct MessageServer<L: Listener = ShmListener> {
    listener: L,
    connections: Vec<L::Connection>,
    reply: Vec<u8>,
    value: Vec<u8>,
    /// Requests drained from one connection, back to back, and where each ends: reused so that
    /// answering allocates nothing.
    requests: Vec<u8>,
    request_ends: Vec<usize>,
    last_accept: std::time::Instant,
    stats: ServerStats,
}

/// How often a busy server checks its listening socket: a syscall per poll would cost more than
/// the requests it answers, and a new client waits for its handshake at most this long.
const ACCEPT_INTERVAL: Duration = Duration::from_micros(500);

impl MessageServer<ShmListener> {
    /// Listens for shm clients at `path`, exposing `regions` for one-sided READs.
    ///
    /// # Errors
    /// As [`Fabric::listen`].
    pub fn listen_shm(
        fabric: ShmFabric,
        path: &str,
        regions: Vec<Arc<crate::shm::memory::SharedMemory>>,
    ) -> Result<Self> {
        Ok(Self::new(fabric.listen(path, regions)?))
    }
}

impl<L: Listener> MessageServer<L> {
    /// Serves the connections `listener` accepts.
    pub fn new(listener: L) -> Self {
        Self {
            listener,
            connections: Vec::new(),
            reply: Vec::new(),
            value: Vec::new(),
            requests: Vec::new(),
            request_ends: Vec::new(),
            last_accept: std::time::Instant::now(),
            stats: ServerStats::default(),
        }
    }

    /// The listener (for its address).
    pub fn listener(&self) -> &L {
        &self.listener
    }

    /// Counters.
    pub fn stats(&self) -> ServerStats {
        self.stats
    }

    /// Connections open now.
    pub fn connection_count(&self) -> usize {
        self.connections.len()
    }

    /// Accepts new clients, answers every waiting request, drops dead clients; returns how many
    /// requests it answered. Never blocks.
    ///
    /// # Errors
    /// `Io` only when accepting fails; a misbehaving client is disconnected, not reported.
    pub fn poll(&mut self, handler: &mut dyn Handler) -> Result<usize> {
        if self.last_accept.elapsed() >= ACCEPT_INTERVAL || self.connections.is_empty() {
            self.last_accept = std::time::Instant::now();
            self.accept_all()?;
        }
        self.serve_all(handler)
    }

    fn accept_all(&mut self) -> Result<()> {
        while let Some(connection) = self.listener.accept()? {
            self.stats.accepted += 1;
            if self.connections.len() < CONNECTION_COUNT_MAX {
                self.connections.push(connection);
            } else {
                self.stats.closed += 1;
            }
        }
        Ok(())
    }

    fn serve_all(&mut self, handler: &mut dyn Handler) -> Result<usize> {
        let mut answered = 0;
        let mut index = 0;
        while index < self.connections.len() {
            match self.serve(index, handler) {
                Ok(count) => {
                    answered += count;
                    index += 1;
                }
                Err(_) => {
                    // Dropping the connection unmaps the rings; the client's mappings stay valid
                    // for the client until it closes them.
                    self.connections.swap_remove(index);
                    self.stats.closed += 1;
                }
            }
        }
        Ok(answered)
    }

    /// Checks every connection's socket and drops those whose peer has gone (a client that died
    /// holding its mappings: the kernel closed its socket, and its mappings died with it).
    pub fn reap(&mut self) {
        let before = self.connections.len();
        self.connections
            .retain_mut(|connection| connection.is_connected());
        self.stats.closed += (before - self.connections.len()) as u64;
    }

    fn serve(&mut self, index: usize, handler: &mut dyn Handler) -> Result<usize> {
        let connection = &mut self.connections[index];
        let (requests, request_ends) = (&mut self.requests, &mut self.request_ends);
        requests.clear();
        request_ends.clear();
        connection.poll(&mut |completion| {
            if completion.kind == CompletionKind::Recv {
                requests.extend_from_slice(completion.message);
                request_ends.push(requests.len());
            }
        })?;
        let mut start = 0;
        for &end in &self.request_ends {
            let request = &self.requests[start..end];
            start = end;
            self.reply.clear();
            match Request::decode(request) {
                Ok((id, request)) => {
                    answer(handler, id, request, &mut self.value, &mut self.reply);
                }
                Err(error) => {
                    self.stats.bad_messages += 1;
                    return Err(error);
                }
            }
            self.stats.requests += 1;
            send_reply(&mut self.connections[index], &self.reply)?;
        }
        Ok(self.request_ends.len())
    }

    /// Busy-polls for `spin`, then sleeps up to `park` when nothing arrived (for providers
    /// without a doorbell); returns requests answered.
    ///
    /// # Errors
    /// As [`MessageServer::poll`].
    pub fn run_once_polling(
        &mut self,
        handler: &mut dyn Handler,
        spin: Duration,
        park: Duration,
    ) -> Result<usize> {
        let started = std::time::Instant::now();
        loop {
            let answered = self.poll(handler)?;
            if answered > 0 {
                return Ok(answered);
            }
            if started.elapsed() >= spin {
                break;
            }
            std::hint::spin_loop();
        }
        if let Some(connection) = self.connections.first_mut() {
            connection.park(park)?;
        } else {
            std::thread::sleep(park);
        }
        self.reap();
        self.poll(handler)
    }
}

impl MessageServer<ShmListener> {
    /// Busy-polls for `spin`, then parks on the doorbell for up to `park` when nothing arrives;
    /// returns requests answered. This is the loop of a dedicated server thread.
    ///
    /// # Errors
    /// As [`MessageServer::poll`].
    pub fn run_once(
        &mut self,
        handler: &mut dyn Handler,
        spin: Duration,
        park: Duration,
    ) -> Result<usize> {
        let started = std::time::Instant::now();
        loop {
            let answered = self.poll(handler)?;
            if answered > 0 {
                return Ok(answered);
            }
            if started.elapsed() >= spin {
                break;
            }
            std::hint::spin_loop();
        }
        let mut ready = false;
        for connection in &mut self.connections {
            ready |= connection.prepare_park();
        }
        if !ready {
            wait_doorbell_or_listener(self.listener.doorbell(), self.listener.raw_fd(), park)?;
        }
        for connection in &mut self.connections {
            connection.unpark();
        }
        self.reap();
        self.accept_all()?;
        self.serve_all(handler)
    }
}

/// Parks until a client rings the doorbell, a new client connects, or `timeout` passes.
fn wait_doorbell_or_listener(
    doorbell: &crate::shm::ring::Doorbell,
    listener: std::os::fd::RawFd,
    timeout: Duration,
) -> Result<()> {
    let mut fds = [
        libc::pollfd {
            fd: doorbell.raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: listener,
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    let timeout_ms = timeout.as_millis().clamp(1, i32::MAX as u128) as i32;
    // SAFETY: two valid pollfds in a live array.
    let ready = unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout_ms) };
    if ready < 0 {
        let os = std::io::Error::last_os_error();
        if os.kind() != std::io::ErrorKind::Interrupted {
            return Err(crate::error::Error::io("poll doorbell", &os));
        }
    }
    if fds[0].revents != 0 {
        doorbell.wait(Duration::from_millis(1))?; // clears the counter; returns at once
    }
    Ok(())
}

fn answer(
    handler: &mut dyn Handler,
    id: u32,
    request: Request<'_>,
    value: &mut Vec<u8>,
    reply: &mut Vec<u8>,
) {
    match request {
        Request::Get { key } => {
            value.clear();
            match handler.get(key, value) {
                Ok(true) => Reply::Value(value).encode(id, reply),
                Ok(false) => Reply::Nil.encode(id, reply),
                Err(text) => Reply::Error(&text).encode(id, reply),
            }
        }
        Request::Set { key, value } => match handler.set(key, value) {
            Ok(()) => Reply::Ok.encode(id, reply),
            Err(text) => Reply::Error(&text).encode(id, reply),
        },
        Request::Delete { key } => match handler.delete(key) {
            Ok(existed) => Reply::Deleted(existed).encode(id, reply),
            Err(text) => Reply::Error(&text).encode(id, reply),
        },
        Request::Routing => Reply::Routing(handler.routing()).encode(id, reply),
        // This server has no users: every session may do everything.
        Request::Auth { .. } => Reply::Ok.encode(id, reply),
    }
}

fn send_reply(connection: &mut impl Connection, reply: &[u8]) -> Result<()> {
    // Bounded: a client that stops draining its ring for a second is cut off rather than allowed
    // to stall the server.
    let started = std::time::Instant::now();
    loop {
        match connection.post_send(0, reply) {
            Ok(()) => return Ok(()),
            Err(error) if error.kind() == crate::error::ErrorKind::WouldBlock => {
                connection.poll(&mut |_| {})?;
                if started.elapsed() > Duration::from_secs(1) {
                    return Err(error);
                }
                std::hint::spin_loop();
            }
            Err(error) => return Err(error),
        }
    }
}

/// A reference handler: a `HashMap` whose every change is mirrored into a [`ReadRegion`].
#[derive(Debug)]
pub struct MemoryStore {
    map: HashMap<Vec<u8>, Vec<u8>>,
    region: ReadRegion,
}

impl MemoryStore {
    /// An empty store with a region of `config`.
    ///
    /// # Errors
    /// As [`ReadRegion::create`].
    pub fn new(config: RegionConfig) -> Result<Self> {
        Ok(Self {
            map: HashMap::new(),
            region: ReadRegion::create("ember-region", config)?,
        })
    }

    /// The region (to expose, or to inspect in tests).
    pub fn region(&self) -> &ReadRegion {
        &self.region
    }

    /// The region, mutably (tests drive reclamation through it).
    pub fn region_mut(&mut self) -> &mut ReadRegion {
        &mut self.region
    }

    /// FLUSHALL.
    pub fn clear(&mut self) {
        self.map.clear();
        self.region.clear();
    }
}

impl Handler for MemoryStore {
    fn get(&mut self, key: &[u8], value: &mut Vec<u8>) -> std::result::Result<bool, String> {
        match self.map.get(key) {
            Some(stored) => {
                value.extend_from_slice(stored);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn set(&mut self, key: &[u8], value: &[u8]) -> std::result::Result<(), String> {
        self.map.insert(key.to_vec(), value.to_vec());
        // A value too large to publish is simply served by message.
        let _ = self.region.publish(key, value);
        Ok(())
    }

    fn delete(&mut self, key: &[u8]) -> std::result::Result<bool, String> {
        self.region.remove(key);
        Ok(self.map.remove(key).is_some())
    }

    fn routing(&self) -> Vec<SlotRange> {
        vec![SlotRange {
            first: 0,
            last: crate::routing::SLOT_COUNT as u16 - 1,
            region: 0,
        }]
    }
}
