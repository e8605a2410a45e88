//! The Rust client: `connect`, `get` (one-sided, with a message GET for what is not published),
//! `set` and `delete` by message, and `mget`.
//!
//! ```no_run
//! let mut client = ember_rdma::client::Client::connect("/tmp/ember.shm")?;
//! client.set(b"greeting", b"hello")?;
//! assert_eq!(client.get(b"greeting")?.as_deref(), Some(&b"hello"[..]));
//! # Ok::<(), ember_rdma::Error>(())
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result};
use crate::fabric::{CompletionKind, Connection, Fabric, LocalBuffer};
use crate::layout::{Layout, HEADER_LEN, NEIGHBOURHOOD_LEN};
use crate::message::{Reply, Request};
use crate::reader::{self, Lookup, ReaderStats, RemoteMemory};
use crate::routing::{key_slot, SLOT_COUNT};
use crate::shm::{ShmConnection, ShmFabric};

/// Replies kept for requests not yet awaited: an MGET pipelines at most this many, and a reply to
/// a request that timed out is eventually pushed out.
pub const EARLY_REPLIES_MAX: usize = 4096;

/// How long the client waits for things that should take microseconds.
#[derive(Clone, Copy, Debug)]
pub struct ClientConfig {
    /// A READ whose completion has not come by then is treated as lost (100 ms: a healthy READ
    /// takes microseconds, so this only fires on a broken path).
    pub read_timeout: Duration,
    /// A request whose reply has not come by then fails with `Timeout` (5 s: the server may be
    /// busy with a large batch).
    pub reply_timeout: Duration,
    /// Busy-poll this long for a reply before parking on the doorbell.
    pub spin_before_park: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            read_timeout: Duration::from_millis(100),
            reply_timeout: Duration::from_secs(5),
            spin_before_park: Duration::from_micros(50),
        }
    }
}

/// Client counters: the reader's plus the transport's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// One-sided lookup outcomes and detected faults.
    pub reader: ReaderStats,
    /// GETs answered by message because the key was not published (or the lookup gave up).
    pub fallbacks: u64,
    /// READs whose completion never came.
    pub read_timeouts: u64,
    /// Completions or replies that belonged to nothing outstanding (late, after a timeout).
    pub stray_completions: u64,
    /// Requests sent by message.
    pub requests: u64,
}

/// A client of one Ember server over any fabric.
#[derive(Debug)]
pub struct Client<C: Connection> {
    connection: C,
    layouts: Vec<Layout>,
    slot_region: Vec<u32>,
    read_buffer: LocalBuffer,
    next_work_id: u64,
    next_request_id: u32,
    reply: Vec<u8>,
    /// Replies that arrived while another was awaited (pipelined MGET), by request id.
    early_replies: VecDeque<(u32, Vec<u8>)>,
    request: Vec<u8>,
    config: ClientConfig,
    stats: ClientStats,
}

impl Client<ShmConnection> {
    /// Connects through the shm provider to the server's socket at `path`.
    ///
    /// # Errors
    /// As [`Fabric::connect`] and [`Client::new`].
    pub fn connect(path: &str) -> Result<Self> {
        Self::new(ShmFabric::default().connect(path)?, ClientConfig::default())
    }
}

struct ReadPort<'a, C: Connection> {
    connection: &'a mut C,
    buffer: LocalBuffer,
    next_work_id: &'a mut u64,
    timeout: Duration,
    stats: &'a mut ClientStats,
    /// Replies that arrive while a READ is awaited are kept for `wait_reply`.
    early_replies: &'a mut VecDeque<(u32, Vec<u8>)>,
}

fn keep_early_reply(early_replies: &mut VecDeque<(u32, Vec<u8>)>, message: &[u8]) {
    let Some(id) = message
        .get(1..5)
        .map(|b| u32::from_le_bytes(b.try_into().expect("4")))
    else {
        return;
    };
    if early_replies.len() == EARLY_REPLIES_MAX {
        early_replies.pop_front();
    }
    early_replies.push_back((id, message.to_vec()));
}

impl<C: Connection> RemoteMemory for ReadPort<'_, C> {
    fn read(&mut self, region: u32, offset: u64, len: usize) -> Result<&[u8]> {
        let work_id = *self.next_work_id;
        *self.next_work_id += 1;
        self.connection
            .post_read(work_id, region, offset, self.buffer, 0, len)?;
        let mut started: Option<Instant> = None;
        loop {
            let mut done = false;
            let mut failed = false;
            let mut stray = 0;
            let early_replies = &mut *self.early_replies;
            self.connection.poll(&mut |completion| {
                if completion.kind == CompletionKind::Read && completion.work_id == work_id {
                    done = true;
                    failed = !completion.success;
                } else if completion.kind == CompletionKind::Recv {
                    keep_early_reply(early_replies, completion.message);
                } else {
                    stray += 1;
                }
            })?;
            self.stats.stray_completions += stray;
            if failed {
                return Err(Error::new(
                    ErrorKind::Disconnected,
                    "READ completed with an error",
                ));
            }
            if done {
                return Ok(&self.connection.buffer(self.buffer)[..len]);
            }
            // The clock is read only once a first poll came back empty: on shm the completion
            // is always there at once.
            let started = *started.get_or_insert_with(Instant::now);
            if started.elapsed() > self.timeout {
                self.stats.read_timeouts += 1;
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!("READ completion lost (waited {:?})", self.timeout),
                ));
            }
        }
    }
}

impl<C: Connection> Client<C> {
    /// Wraps a connection: READs every region's header and asks the server for its routing.
    ///
    /// # Errors
    /// `Protocol` when a region header or the routing table is malformed; transport errors.
    pub fn new(mut connection: C, config: ClientConfig) -> Result<Self> {
        let regions = connection.remote_regions().to_vec();
        let header_buffer = connection.register(HEADER_LEN)?;
        let mut stats = ClientStats::default();
        let mut next_work_id = 1;
        let mut layouts = Vec::with_capacity(regions.len());
        let mut early_replies = VecDeque::new();
        for region in &regions {
            let mut port = ReadPort {
                connection: &mut connection,
                buffer: header_buffer,
                next_work_id: &mut next_work_id,
                timeout: config.read_timeout,
                stats: &mut stats,
                early_replies: &mut early_replies,
            };
            let layout = Layout::decode_header(port.read(region.index, 0, HEADER_LEN)?)?;
            if layout.region_len() > region.len {
                return Err(Error::new(
                    ErrorKind::Protocol,
                    "region header claims more than was exposed",
                ));
            }
            layouts.push(layout);
        }
        let read_len = layouts
            .iter()
            .map(Layout::item_len_max)
            .max()
            .unwrap_or(0)
            .max(NEIGHBOURHOOD_LEN);
        let read_buffer = connection.register(read_len)?;
        let mut client = Self {
            connection,
            layouts,
            slot_region: vec![u32::MAX; SLOT_COUNT],
            read_buffer,
            next_work_id,
            next_request_id: 1,
            reply: Vec::new(),
            early_replies,
            request: Vec::new(),
            config,
            stats,
        };
        client.load_routing()?;
        Ok(client)
    }

    fn load_routing(&mut self) -> Result<()> {
        let id = self.send(Request::Routing)?;
        self.wait_reply(id)?;
        let reply = std::mem::take(&mut self.reply);
        let result = match Reply::decode(&reply)? {
            (_, Reply::Routing(ranges)) => {
                for range in ranges {
                    let valid = range.first <= range.last
                        && (range.last as usize) < SLOT_COUNT
                        && (range.region as usize) < self.layouts.len();
                    if !valid {
                        return Err(Error::new(
                            ErrorKind::Protocol,
                            format!("bad routing range {range:?}"),
                        ));
                    }
                    self.slot_region[range.first as usize..=range.last as usize].fill(range.region);
                }
                Ok(())
            }
            (_, other) => Err(unexpected(&other)),
        };
        self.reply = reply;
        result
    }

    /// Counters.
    pub fn stats(&self) -> ClientStats {
        self.stats
    }

    /// The underlying connection (tests inject faults through it).
    pub fn connection_mut(&mut self) -> &mut C {
        &mut self.connection
    }

    /// One-sided only: looks `key` up without asking the server; the value lands in `value`.
    /// `Miss` and `GaveUp` mean "ask by message"; [`Client::get`] does that.
    ///
    /// # Errors
    /// Transport errors (a lost completion is `Timeout`).
    pub fn get_one_sided(&mut self, key: &[u8], value: &mut Vec<u8>) -> Result<Lookup> {
        let region = self.slot_region[key_slot(key) as usize];
        let Some(layout) = self.layouts.get(region as usize) else {
            return Ok(Lookup::Miss);
        };
        let mut port = ReadPort {
            connection: &mut self.connection,
            buffer: self.read_buffer,
            next_work_id: &mut self.next_work_id,
            timeout: self.config.read_timeout,
            stats: &mut self.stats,
            early_replies: &mut self.early_replies,
        };
        let mut reader_stats = port.stats.reader;
        let outcome = reader::lookup(
            &mut port,
            region,
            layout,
            key,
            unix_time_ms(),
            value,
            &mut reader_stats,
        );
        self.stats.reader = reader_stats;
        outcome
    }

    /// GET into `value`: one-sided when published, by message otherwise; returns whether the key
    /// exists. A READ that times out also falls back to the message path.
    ///
    /// # Errors
    /// Transport errors on the message path; `Server` when the server refuses.
    pub fn get_into(&mut self, key: &[u8], value: &mut Vec<u8>) -> Result<bool> {
        match self.get_one_sided(key, value) {
            Ok(Lookup::Hit) => return Ok(true),
            Ok(Lookup::Miss | Lookup::GaveUp) => {}
            Err(error) if error.kind() == ErrorKind::Timeout => {}
            Err(error) => return Err(error),
        }
        self.stats.fallbacks += 1;
        self.get_by_message(key, value)
    }

    /// GET by message only (two-sided), whether or not the key is published: the path
    /// [`Client::get_into`] falls back to, exposed for comparisons.
    ///
    /// # Errors
    /// Transport errors; `Server` when the server refuses.
    pub fn get_by_message(&mut self, key: &[u8], value: &mut Vec<u8>) -> Result<bool> {
        let id = self.send(Request::Get { key })?;
        self.wait_reply(id)?;
        match Reply::decode(&self.reply)?.1 {
            Reply::Value(bytes) => {
                value.clear();
                value.extend_from_slice(bytes);
                Ok(true)
            }
            Reply::Nil => Ok(false),
            other => Err(unexpected(&other)),
        }
    }

    /// GET: the value, or `None` when the key does not exist.
    ///
    /// # Errors
    /// As [`Client::get_into`].
    pub fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let mut value = Vec::new();
        Ok(self.get_into(key, &mut value)?.then_some(value))
    }

    /// MGET: one-sided for every published key, then the rest by message, pipelined.
    ///
    /// # Errors
    /// As [`Client::get_into`].
    pub fn mget(&mut self, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>> {
        let mut values: Vec<Option<Vec<u8>>> = vec![None; keys.len()];
        let mut pending = VecDeque::new();
        for (i, key) in keys.iter().enumerate() {
            let mut value = Vec::new();
            let outcome = match self.get_one_sided(key, &mut value) {
                Err(error) if error.kind() == ErrorKind::Timeout => Lookup::GaveUp,
                other => other?,
            };
            if outcome == Lookup::Hit {
                values[i] = Some(value);
            } else {
                self.stats.fallbacks += 1;
                pending.push_back((i, self.send(Request::Get { key })?));
            }
        }
        while let Some((i, id)) = pending.pop_front() {
            self.wait_reply(id)?;
            values[i] = match Reply::decode(&self.reply)?.1 {
                Reply::Value(bytes) => Some(bytes.to_vec()),
                Reply::Nil => None,
                other => return Err(unexpected(&other)),
            };
        }
        Ok(values)
    }

    /// SET by message; when it returns, one-sided GETs see the new value.
    ///
    /// # Errors
    /// Transport errors; `Server` when the server refuses (out of memory, too large).
    pub fn set(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        let id = self.send(Request::Set { key, value })?;
        self.wait_reply(id)?;
        match Reply::decode(&self.reply)?.1 {
            Reply::Ok => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// AUTH by message: the session's later messages run as `username` and are limited by its
    /// ACL rules, as a RESP connection's.
    ///
    /// # Errors
    /// `Server` with the server's refusal (`WRONGPASS ...`).
    pub fn auth(&mut self, username: &[u8], password: &[u8]) -> Result<()> {
        let id = self.send(Request::Auth { username, password })?;
        self.wait_reply(id)?;
        match Reply::decode(&self.reply)?.1 {
            Reply::Ok => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// DEL by message; returns whether the key existed.
    ///
    /// # Errors
    /// As [`Client::set`].
    pub fn delete(&mut self, key: &[u8]) -> Result<bool> {
        let id = self.send(Request::Delete { key })?;
        self.wait_reply(id)?;
        match Reply::decode(&self.reply)?.1 {
            Reply::Deleted(existed) => Ok(existed),
            other => Err(unexpected(&other)),
        }
    }

    fn send(&mut self, request: Request<'_>) -> Result<u32> {
        let id = self.next_request_id;
        self.next_request_id = self.next_request_id.wrapping_add(1);
        self.request.clear();
        request.encode(id, &mut self.request);
        let work_id = self.next_work_id;
        self.next_work_id += 1;
        let started = Instant::now();
        loop {
            match self.connection.post_send(work_id, &self.request) {
                Ok(()) => break,
                Err(error) if error.kind() == ErrorKind::WouldBlock => {
                    // The server is behind: drain our completions so the queue moves, then retry.
                    self.connection.poll(&mut |_| {})?;
                    if started.elapsed() > self.config.reply_timeout {
                        return Err(Error::new(ErrorKind::Timeout, "send queue stayed full"));
                    }
                    std::hint::spin_loop();
                }
                Err(error) => return Err(error),
            }
        }
        self.stats.requests += 1;
        Ok(id)
    }

    fn wait_reply(&mut self, id: u32) -> Result<()> {
        let started = Instant::now();
        if let Some(at) = self
            .early_replies
            .iter()
            .position(|(early, _)| *early == id)
        {
            let (_, reply) = self.early_replies.remove(at).expect("position is in range");
            self.reply = reply;
            return self.check_reply();
        }
        loop {
            let mut found = false;
            let reply = &mut self.reply;
            let early_replies = &mut self.early_replies;
            self.connection.poll(&mut |completion| {
                if completion.kind != CompletionKind::Recv {
                    return;
                }
                let Some(reply_id) = completion
                    .message
                    .get(1..5)
                    .map(|b| u32::from_le_bytes(b.try_into().expect("4")))
                else {
                    return;
                };
                if !found && reply_id == id {
                    reply.clear();
                    reply.extend_from_slice(completion.message);
                    found = true;
                } else {
                    // A pipelined reply, or a late one to a request that timed out.
                    keep_early_reply(early_replies, completion.message);
                }
            })?;
            if found {
                return self.check_reply();
            }
            let waited = started.elapsed();
            if waited > self.config.reply_timeout {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!("no reply to request {id} in {waited:?}"),
                ));
            }
            if waited > self.config.spin_before_park {
                if !self.connection.is_connected() {
                    return Err(Error::new(ErrorKind::Disconnected, "server went away"));
                }
                self.connection.park(Duration::from_millis(10))?;
            }
        }
    }
}

impl<C: Connection> Client<C> {
    fn check_reply(&self) -> Result<()> {
        if let (_, Reply::Error(text)) = Reply::decode(&self.reply)? {
            return Err(Error::new(ErrorKind::Server, text));
        }
        Ok(())
    }
}

/// The client's clock for expiry checks. On the shm provider server and client share it; over
/// verbs the hosts' clocks must agree to within the precision expiry needs (NTP/PTP).
fn unix_time_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}

fn unexpected(reply: &Reply<'_>) -> Error {
    Error::new(ErrorKind::Protocol, format!("unexpected reply {reply:?}"))
}
