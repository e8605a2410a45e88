//! A shard: one executor's share of Ember. It owns its keyspace, its copy of the configuration,
//! its statistics and its clients, and talks to other shards only by [`ShardRequest`] and
//! [`ShardReply`] messages over the mesh.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::Arc;
use std::task::Waker;

use ember_resp::Protocol;
use ember_store::slot::{key_slot, SLOT_COUNT};
use ember_store::{Entry, Keyspace};

use crate::client::ClientHandle;
use crate::config::Config;
use crate::runtime::{local_channel, LocalSender, MeshSenders};
use crate::stats::ShardStats;

/// State every shard reads and a few counters they share (atomics, off the per-request path).
#[derive(Debug)]
pub struct Shared {
    /// Connected clients, all shards together, for `maxclients`.
    pub connected_clients: AtomicUsize,
    /// Source of client ids, unique across shards.
    pub next_client_id: AtomicU64,
    /// Unix time (seconds) at start-up, for LASTSAVE and uptime.
    pub started_at_s: u64,
    /// The TCP port actually bound (the configured one, or the one the kernel chose for 0).
    pub port: AtomicUsize,
    /// Number of shards.
    pub shard_count: usize,
    /// Human-readable description of hardware paths found at start-up, for INFO.
    pub hardware: String,
}

/// A key-holding operation's identity while it holds shards: (origin shard, sequence).
pub type HoldToken = (usize, u64);

/// Work one shard asks of another.
#[derive(Debug)]
pub enum ShardRequest {
    /// Run a keyspace command here and return its encoded reply.
    Execute {
        db: usize,
        protocol: Protocol,
        no_touch: bool,
        args: Vec<Vec<u8>>,
        token: Option<HoldToken>,
    },
    /// Wait until no one holds this shard, then hold it for `token`.
    Hold { token: HoldToken },
    /// Stop holding for `token`.
    Release { token: HoldToken },
    /// Copies of the entries of `keys` (sent only by the holder of this shard).
    Fetch { db: usize, keys: Vec<Vec<u8>> },
    /// Write back entries (`None` removes), under a hold.
    Store {
        db: usize,
        entries: Vec<(Vec<u8>, Option<Entry>)>,
    },
    /// An operation over the whole shard, by the holder `token` if any.
    Admin {
        request: AdminRequest,
        token: Option<HoldToken>,
    },
    /// Tensors and models (crate::inference).
    Inference(crate::inference::InferenceRequest),
}

/// Whole-shard operations, broadcast to every shard by keyless commands.
#[derive(Debug, Clone)]
pub enum AdminRequest {
    /// Keys in `db`.
    DbSize { db: usize },
    /// FLUSHDB.
    FlushDb { db: usize },
    /// FLUSHALL.
    FlushAll,
    /// SWAPDB.
    SwapDb { first: usize, second: usize },
    /// KEYS pattern.
    Keys { db: usize, pattern: Vec<u8> },
    /// One SCAN step.
    Scan {
        db: usize,
        segment: usize,
        count: usize,
        pattern: Option<Vec<u8>>,
        type_name: Option<Vec<u8>>,
    },
    /// A random key of `db`.
    RandomKey { db: usize },
    /// CONFIG SET, already validated by the origin.
    ConfigSet { pairs: Vec<(String, String)> },
    /// CONFIG RESETSTAT.
    ResetStats,
    /// This shard's figures for INFO and metrics.
    Info,
    /// CLIENT LIST lines of this shard's clients.
    ClientList,
    /// CLIENT KILL by the given filter; returns how many were killed.
    ClientKill { filter: crate::client::KillFilter },
    /// SLOWLOG GET / LEN / RESET.
    Slowlog(crate::stats::SlowlogRequest),
    /// LATENCY LATEST / HISTORY / RESET.
    Latency(crate::stats::LatencyRequest),
}

/// A shard's answer.
#[derive(Debug)]
pub enum ShardReply {
    /// An encoded RESP reply.
    Encoded(Vec<u8>),
    /// An integer result.
    Integer(i64),
    /// Entries, in the order asked.
    Entries(Vec<Option<Entry>>),
    /// Keys.
    Keys(Vec<Vec<u8>>),
    /// A SCAN step: keys and the next segment.
    Scan {
        keys: Vec<Vec<u8>>,
        next_segment: Option<usize>,
    },
    /// Lines of text (CLIENT LIST).
    Lines(Vec<String>),
    /// Figures for INFO.
    Info(Box<crate::stats::ShardInfo>),
    /// Slow log entries.
    Slowlog(Vec<crate::stats::SlowlogEntry>),
    /// Latency events.
    Latency(Vec<crate::stats::LatencyEvent>),
    /// An inference answer.
    Inference(crate::inference::InferenceReply),
    /// Nothing to report.
    Done,
}

/// A message on the mesh.
#[derive(Debug)]
pub enum MeshMessage {
    /// A request with the id its reply will carry.
    Request { id: u64, request: ShardRequest },
    /// The reply to request `id`.
    Reply { id: u64, reply: ShardReply },
}

/// Makes local work wait while another shard's atomic operation holds this shard.
#[derive(Default)]
pub struct Gate {
    held_by: Cell<Option<HoldToken>>,
    waiters: RefCell<Vec<Waker>>,
}

impl Gate {
    /// True when a hold other than `token` is in force.
    pub fn blocks(&self, token: Option<HoldToken>) -> bool {
        match self.held_by.get() {
            None => false,
            Some(holder) => Some(holder) != token,
        }
    }

    /// Waits until the gate does not block `token`.
    pub async fn enter(&self, token: Option<HoldToken>) {
        std::future::poll_fn(|cx| {
            if self.blocks(token) {
                self.waiters.borrow_mut().push(cx.waker().clone());
                std::task::Poll::Pending
            } else {
                std::task::Poll::Ready(())
            }
        })
        .await;
    }

    /// Waits until free, then holds for `token`.
    pub async fn hold(&self, token: HoldToken) {
        loop {
            self.enter(None).await;
            if self.held_by.get().is_none() {
                self.held_by.set(Some(token));
                return;
            }
        }
    }

    /// Releases the hold of `token` and wakes every waiter.
    pub fn release(&self, token: HoldToken) {
        if self.held_by.get() == Some(token) {
            self.held_by.set(None);
            for waker in self.waiters.borrow_mut().drain(..) {
                waker.wake();
            }
        }
    }
}

/// One shard.
pub struct Shard {
    /// This shard's index, `0..shard_count`.
    pub index: usize,
    /// The keyspace this shard owns.
    pub keyspace: RefCell<Keyspace>,
    /// This shard's copy of the configuration.
    pub config: RefCell<Config>,
    /// Counters, slow log, latency events.
    pub stats: ShardStats,
    /// Clients connected to this shard, by id.
    pub clients: RefCell<HashMap<u64, Rc<ClientHandle>>>,
    /// Process-wide counters and facts.
    pub shared: Arc<Shared>,
    /// Holds taken by cross-shard atomic operations.
    pub gate: Gate,
    /// Where fixed-function stages run: Ember's software, or the FPGA modules' simulation
    /// (`--offload sim`), which the router then asks for every key's slot.
    pub offload: RefCell<Box<dyn ember_fpga::offload::Offload>>,
    /// `--offload sim`, read once at start so the router's check costs one load per command.
    pub offload_sim: bool,
    /// Models, tensors and batchers of this shard.
    pub inference: crate::inference::Inference,
    /// Busy polling of the connections' sockets (`--busy-poll-us` above 0).
    pub spin: Option<Rc<crate::spin::Spinner>>,
    mesh: MeshSenders<MeshMessage>,
    pending: RefCell<HashMap<u64, LocalSender<ShardReply>>>,
    next_request_id: Cell<u64>,
    next_hold_sequence: Cell<u64>,
}

impl Shard {
    /// A shard with an empty keyspace.
    pub fn new(
        index: usize,
        config: Config,
        shared: Arc<Shared>,
        mesh: MeshSenders<MeshMessage>,
    ) -> Self {
        let inference = crate::inference::Inference::new(Rc::new(config.inference.clone()));
        let offload_sim = config.value("offload") == "sim";
        let spin = if config.busy_poll_us == 0 {
            None
        } else {
            match crate::spin::Spinner::new(std::time::Duration::from_micros(config.busy_poll_us)) {
                Ok(spinner) => Some(Rc::new(spinner)),
                Err(error) => {
                    eprintln!("ember: busy polling off: no epoll instance: {error}");
                    None
                }
            }
        };
        let mut keyspace = Keyspace::new();
        keyspace.set_access_policy(config.access_policy());
        Self {
            index,
            keyspace: RefCell::new(keyspace),
            config: RefCell::new(config),
            stats: ShardStats::new(index, shared.shard_count),
            clients: RefCell::new(HashMap::new()),
            shared,
            gate: Gate::default(),
            offload_sim,
            offload: RefCell::new(Box::new(ember_fpga::offload::SoftwareOffload)),
            inference,
            spin,
            mesh,
            pending: RefCell::new(HashMap::new()),
            next_request_id: Cell::new(1),
            next_hold_sequence: Cell::new(1),
        }
    }

    /// Number of shards.
    pub fn count(&self) -> usize {
        self.shared.shard_count
    }

    /// The shard that owns `key`: slots are split into equal contiguous ranges.
    pub fn owner_of(&self, key: &[u8]) -> usize {
        if self.count() == 1 {
            return 0; // No CRC16 per key when there is one shard (RECOMMEND asks for thousands of rows).
        }
        owner_of_slot(key_slot(key), self.count())
    }

    /// A fresh token for an atomic cross-shard operation started here.
    pub fn new_hold_token(&self) -> HoldToken {
        let sequence = self.next_hold_sequence.get();
        self.next_hold_sequence.set(sequence + 1);
        (self.index, sequence)
    }

    /// Sends `request` to shard `target` (not this one) and waits for its reply.
    pub async fn call(&self, target: usize, request: ShardRequest) -> ShardReply {
        debug_assert_ne!(target, self.index, "local work does not cross the mesh");
        let id = self.next_request_id.get();
        self.next_request_id.set(id + 1);
        let (reply_tx, reply_rx) = local_channel(1);
        self.pending.borrow_mut().insert(id, reply_tx);
        self.stats
            .cross_shard_hops
            .set(self.stats.cross_shard_hops.get() + 1);
        if self
            .mesh
            .send_to(target, MeshMessage::Request { id, request })
            .await
            .is_err()
        {
            self.pending.borrow_mut().remove(&id);
            return ShardReply::Encoded(b"-ERR shard unavailable\r\n".to_vec());
        }
        reply_rx
            .recv()
            .await
            .unwrap_or_else(|| ShardReply::Encoded(b"-ERR shard unavailable\r\n".to_vec()))
    }

    /// Sends a reply back to shard `target`.
    pub async fn reply(&self, target: usize, id: u64, reply: ShardReply) {
        // A closed channel means the peer is shutting down; nobody awaits the reply then.
        let _ = self
            .mesh
            .send_to(target, MeshMessage::Reply { id, reply })
            .await;
    }

    /// Hands a reply that arrived from the mesh to the task awaiting it.
    pub fn deliver(&self, id: u64, reply: ShardReply) {
        if let Some(sender) = self.pending.borrow_mut().remove(&id) {
            let _ = sender.try_send(reply);
        }
    }
}

/// Which of `shard_count` shards owns `slot`.
pub fn owner_of_slot(slot: u16, shard_count: usize) -> usize {
    usize::from(slot) * shard_count / usize::from(SLOT_COUNT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_split_evenly() {
        assert_eq!(owner_of_slot(0, 1), 0);
        assert_eq!(owner_of_slot(16383, 1), 0);
        assert_eq!(owner_of_slot(8191, 2), 0);
        assert_eq!(owner_of_slot(8192, 2), 1);
        assert_eq!(owner_of_slot(16383, 3), 2);
    }
}
