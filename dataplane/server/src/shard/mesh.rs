//! The mesh: typed requests and replies between shards, over bounded channels built once at
//! start. A caller sends a request and gets a [`PendingReply`] that it may await at once or
//! later, so a connection sends every remote command of its pipeline before it waits for any;
//! a pipeline's remote commands for one shard are gathered and leave as one message
//! ([`Mesh::send_batched`]), and their replies come back as one. Replies land in reusable slots
//! (no channel per request); a slot that waits longer than `shard-reply-timeout-ms` is answered
//! with an error, so a shard that stops answering costs its callers an error, never a hang.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use ember_resp::{Protocol, Reply};
use ember_store::Entry;
use smallvec::SmallVec;

use super::locks::HoldToken;
use crate::runtime::MeshSenders;

/// Request id that asks for no reply (a release sent after the work is done).
pub const NO_REPLY: u64 = 0;

/// Bits of a request id that name its slot; the rest is a sequence, so a late reply to a slot
/// that has been reused since is recognised and dropped.
const SLOT_INDEX_BITS: u32 = 24;
const SLOT_INDEX_MASK: u64 = (1 << SLOT_INDEX_BITS) - 1;
/// The largest batch vector a shard keeps for the next batch to a peer ([`Mesh::recycle`]):
/// a deep pipeline's batch of thousands goes back to the allocator.
const SPARE_MESSAGES_MAX: usize = 256;
/// Set in a slot's id once it timed out: the late reply's id no longer matches it.
const TIMED_OUT: u64 = 1 << 63;

/// A request's arguments moved into one buffer: one allocation however many there are, and
/// none for a short request (a GET or a small SET), whose bytes travel inside the message. An
/// allocation made on one shard and freed on the other was a tenth of a microsecond a remote
/// command under pipelined GETs: the freeing shard hands the memory back to the allocating
/// one's arena, and its cache lines cross the cores twice.
#[derive(Debug, Clone, Default)]
pub struct PackedArgs {
    bytes: SmallVec<[u8; PACKED_INLINE_BYTES]>,
    ends: SmallVec<[u32; 4]>,
}

/// Bytes of arguments a [`PackedArgs`] holds without an allocation: a GET or SET of a key of a
/// few dozen bytes (with the four ends inline, the struct is as large as it was with a
/// vector's three words and eight ends).
const PACKED_INLINE_BYTES: usize = 32;

impl PackedArgs {
    /// Packs `args`.
    pub fn new<'a>(args: impl IntoIterator<Item = &'a [u8]> + Clone) -> Self {
        let total: usize = args.clone().into_iter().map(<[u8]>::len).sum();
        let mut packed = Self {
            bytes: SmallVec::with_capacity(total),
            ends: SmallVec::new(),
        };
        for arg in args {
            packed.push(arg);
        }
        packed
    }

    /// Appends one argument.
    pub fn push(&mut self, arg: &[u8]) {
        self.bytes.extend_from_slice(arg);
        // Requests are bounded by client-query-buffer-limit (at most 1 GiB by default, far
        // below 4 GiB), so an offset fits in 32 bits.
        self.ends
            .push(u32::try_from(self.bytes.len()).expect("request under 4 GiB"));
    }

    /// Argument `index`, if there is one.
    pub fn get(&self, index: usize) -> Option<&[u8]> {
        let end = *self.ends.get(index)? as usize;
        let start = index
            .checked_sub(1)
            .map_or(0, |before| self.ends[before] as usize);
        Some(&self.bytes[start..end])
    }

    /// The arguments as slices.
    pub fn slices(&self) -> SmallVec<[&[u8]; 16]> {
        let mut start = 0;
        self.ends
            .iter()
            .map(|&end| {
                let arg = &self.bytes[start..end as usize];
                start = end as usize;
                arg
            })
            .collect()
    }
}

/// Work one shard asks of another.
#[derive(Debug)]
pub enum ShardRequest {
    /// Run a keyspace command here and return its reply. With `hold`, first hold this shard for
    /// `token` and keep holding it after (a cross-shard write's parts before its last).
    Execute {
        /// Who asks: database, NO-TOUCH, script flag, tracking identity.
        caller: crate::commands::multikey::Caller,
        protocol: Protocol,
        args: PackedArgs,
        token: Option<HoldToken>,
        hold: bool,
    },
    /// Run a MIGRATE whose keys all live here, for a client of another shard that holds
    /// nothing and tracks nothing (commands::migrate): the keys are then held, read and
    /// deleted here, with no round trip between shards.
    Migrate {
        db: usize,
        protocol: Protocol,
        /// The caller's client id.
        client_id: u64,
        args: PackedArgs,
    },
    /// Run a keyspace command here in one step if neither this shard nor any of its keys is
    /// held, and return its reply; otherwise answer [`ShardReply::Refused`] with the arguments
    /// and run nothing. Never waits: a cross-shard write whose caller already holds its own
    /// keys sends it to a lower shard (commands::multikey), which may not wait on holds.
    TryExecute {
        caller: crate::commands::multikey::Caller,
        protocol: Protocol,
        args: PackedArgs,
    },
    /// Wait until no one holds this shard, then hold it for `token`.
    Hold { token: HoldToken },
    /// Hold this shard for `token` only if nothing holds it now (a script that needs a shard
    /// below those it holds): answers `Integer(1)` when held, `Integer(0)` when not.
    TryHold { token: HoldToken },
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
    /// Publishing and Pub/Sub figures (commands::pubsub).
    PubSub(super::pubsub::PubSubRequest),
    /// Blocked clients' waits (crate::commands::blocking).
    Blocking(crate::commands::blocking::BlockingRequest),
    /// Client tracking (crate::commands::tracking).
    Tracking(crate::commands::tracking::TrackingRequest),
    /// Copies of hot keys (shard::local_tier).
    LocalTier(super::local_tier::LocalTierRequest),
    /// MONITOR lines wait in this shard's inbox (commands::monitor); sent with no reply.
    Monitor,
    /// A command may have taken memory past `maxmemory`: evict this shard's share of the
    /// excess now, before that connection's next command runs (crate::memory).
    Evict,
}

/// Whole-shard operations, broadcast to every shard by keyless commands.
#[derive(Debug, Clone)]
pub enum AdminRequest {
    /// Keys in `db`.
    DbSize { db: usize },
    /// Every live key encoded for an RDB file at once (SAVE).
    Snapshot,
    /// Marks the moment of BGSAVE number `generation`; the encoding follows between requests.
    BeginSnapshot { generation: u64 },
    /// The keyspace's change counter (the `save` points).
    Changes,
    /// Keys read from an RDB file, put in place (DEBUG RELOAD, DEBUG LOADAOF).
    /// With `replace` false, a key already there stays and is counted (the reply's integer).
    InsertKeys {
        keys: Vec<ember_store::dump::RdbKey>,
        replace: bool,
    },
    /// MEMORY USAGE of `key` in `db` (-1: no such key).
    MemoryUsage { db: usize, key: Vec<u8> },
    /// FLUSHDB; `lazy`: its keys are freed in the background (crate::lazyfree).
    FlushDb { db: usize, lazy: bool },
    /// FLUSHALL.
    FlushAll { lazy: bool },
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
    /// SCRIPT FLUSH emptied the script cache: the shard drops its compiled scripts and
    /// collects its interpreter's garbage now, as Redis resets its interpreter.
    ScriptsFlushed,
    /// This shard's figures for INFO and metrics.
    Info,
    /// CLIENT LIST lines of this shard's clients.
    ClientList,
    /// CLIENT KILL by the given filter; returns how many were killed.
    ClientKill { filter: crate::client::KillFilter },
    /// ACL SETUSER took channels from this user: its subscribers of those close.
    AclRevoke {
        user: std::sync::Arc<crate::commands::acl::AclUser>,
    },
    /// CLIENT UNBLOCK: ends the wait of that client if it is blocked on this shard.
    ClientUnblock {
        client_id: u64,
        kind: crate::commands::blocking::UnblockKind,
    },
    /// SLOWLOG GET / LEN / RESET.
    Slowlog(crate::stats::SlowlogRequest),
    /// LATENCY LATEST / HISTORY / RESET.
    Latency(crate::stats::LatencyRequest),
    /// HOTKEYS START / STOP / RESET / GET.
    Hotkeys(crate::commands::hotkeys::HotkeysRequest),
}

/// A shard's answer.
#[derive(Debug)]
pub enum ShardReply {
    /// A command's reply.
    Reply(Reply),
    /// A keyspace command run for another shard's client ([`ShardRequest::Execute`],
    /// [`ShardRequest::TryExecute`]): its reply and how long it ran here.
    Ran(Ran),
    /// An integer result.
    Integer(i64),
    /// A [`ShardRequest::TryExecute`] that did not run (its keys were held): its arguments.
    Refused(PackedArgs),
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
    /// Counts, in the order asked (PUBSUB NUMSUB).
    Counts(Vec<usize>),
    /// A blocking-wait answer.
    Blocking(crate::commands::blocking::BlockingReply),
    /// What a [`ShardRequest::Evict`] did.
    Evicted(crate::memory::Step),
    /// One shard's HOTKEYS figures.
    Hotkeys(Box<crate::commands::hotkeys::ShardHotkeys>),
    /// This shard's keys encoded for an RDB file.
    Snapshot(Box<ember_store::keyspace::Snapshot>),
    /// Nothing to report.
    Done,
}

/// What a keyspace command run for another shard's client gives back besides its reply: the
/// time it ran on the shard that owns its keys, which is what the caller's shard counts in the
/// command's statistics, the slow log and the latency monitor (as Redis counts execution only:
/// not the trip between the shards, nor a wait behind another command there), and, when that
/// time was long enough for the slow log, its arguments, which the caller's shard logs with its
/// client's address and name (it keeps no copy of its own).
#[derive(Debug)]
pub struct Ran {
    pub reply: Reply,
    pub micros: u64,
    pub slow_args: Option<Box<PackedArgs>>,
}

/// A message on the mesh.
#[derive(Debug)]
pub enum MeshMessage {
    /// A request with the id its reply will carry ([`NO_REPLY`]: none is wanted).
    Request { id: u64, request: ShardRequest },
    /// The reply to request `id`.
    Reply { id: u64, reply: ShardReply },
    /// Messages gathered for one peer, in order (never nested): the remote commands of a
    /// connection's batch ([`Mesh::send_batched`]), and the owner's replies to them
    /// ([`Mesh::reply_batched`]). One push, one bell and one receive carry them all.
    Batch(Vec<MeshMessage>),
}

enum SlotState {
    Waiting(Option<Waker>),
    Ready(ShardReply),
    /// The caller went away; the slot is freed when the reply comes (or times out).
    Abandoned,
    Free,
}

struct Slot {
    id: u64,
    target: usize,
    /// When it was sent, on the cheap clock (a read of `Instant` was 1% of a shard serving
    /// another's GETs).
    sent_at: crate::clock::Ticks,
    state: SlotState,
}

thread_local! {
    /// Set when a reply that arrived woke the task awaiting it (a connection): that task has
    /// not run yet (it was woken by another task, the receiver), and the socket ring's driver
    /// lets it run, and queue its client's reply, before the shard sleeps.
    static REPLY_WOKE_TASK: Cell<bool> = const { Cell::new(false) };
}

/// Takes the news that a reply woke the task awaiting it since the last take.
pub fn take_reply_woke_task() -> bool {
    REPLY_WOKE_TASK.with(|woke| woke.replace(false))
}

/// This shard's side of the mesh: its senders, the messages waiting for room in a full channel,
/// and the slots its requests' replies land in.
pub struct Mesh {
    index: usize,
    senders: MeshSenders<MeshMessage>,
    slots: RefCell<Vec<Slot>>,
    free: RefCell<Vec<usize>>,
    next_sequence: Cell<u64>,
    /// By target shard: messages that found its channel full, in order, for
    /// [`overflow_loop`] to send as room appears.
    overflow: RefCell<Vec<VecDeque<MeshMessage>>>,
    /// By target shard: [`overflow_loop`] is waiting to send a message taken from the front
    /// of that overflow queue (later messages queue behind it meanwhile).
    overflow_sending: Vec<Cell<bool>>,
    /// [`overflow_loop`], while no message waits.
    overflow_task: RefCell<Option<Waker>>,
    /// By target shard: messages gathered to leave as one ([`Mesh::send_batched`]), sent by
    /// [`Mesh::flush_outbox`] or before any other message to that shard.
    outbox: RefCell<Vec<Vec<MeshMessage>>>,
    /// True while some outbox holds a message.
    outbox_waiting: Cell<bool>,
    /// By peer: the emptied vector of the last batch that came from it, which carries the next
    /// batch to it ([`Mesh::recycle`]).
    spare: RefCell<Vec<Vec<MeshMessage>>>,
}

impl Mesh {
    /// The mesh side of shard `index` of `count`.
    pub fn new(index: usize, count: usize, senders: MeshSenders<MeshMessage>) -> Self {
        Self {
            index,
            senders,
            slots: RefCell::new(Vec::new()),
            free: RefCell::new(Vec::new()),
            next_sequence: Cell::new(1),
            overflow: RefCell::new((0..count).map(|_| VecDeque::new()).collect()),
            overflow_sending: (0..count).map(|_| Cell::new(false)).collect(),
            overflow_task: RefCell::new(None),
            outbox: RefCell::new((0..count).map(|_| Vec::new()).collect()),
            outbox_waiting: Cell::new(false),
            spare: RefCell::new((0..count).map(|_| Vec::new()).collect()),
        }
    }

    /// Sends `message` to shard `target` after everything sent to it before, never waiting.
    ///
    /// The channel to `target` holds `MESH_CHANNEL_CAPACITY` messages; past that, messages wait
    /// in order in this shard's overflow queue for `target`, which [`overflow_loop`] sends as
    /// the channel makes room. Nothing else ever waits to send: when a shard's receiver waited
    /// to send a reply into a full channel while the other shard's receiver waited the same way
    /// (both channels full of requests, a shard asleep under a deep pipeline), both shards
    /// stopped for good.
    fn push(&self, target: usize, message: MeshMessage) {
        if self.outbox_waiting.get() {
            // What was gathered for `target` goes first: messages to a shard keep their order.
            self.flush_to(target);
        }
        self.push_now(target, message);
    }

    fn push_now(&self, target: usize, message: MeshMessage) {
        let mut overflow = self.overflow.borrow_mut();
        if !overflow[target].is_empty() || self.overflow_sending[target].get() {
            overflow[target].push_back(message);
            return;
        }
        match self.senders.try_send_to(target, message) {
            Ok(()) => {}
            Err(glommio::GlommioError::WouldBlock(glommio::ResourceType::Channel(message))) => {
                overflow[target].push_back(message);
                drop(overflow);
                if let Some(task) = self.overflow_task.borrow_mut().take() {
                    task.wake();
                }
            }
            Err(error) => {
                drop(overflow);
                self.unsent(target, error);
            }
        }
    }

    /// A message the channel to `target` refused for good (the peer is shutting down): its
    /// request, if it wants a reply, fails now.
    fn unsent(&self, target: usize, error: glommio::GlommioError<MeshMessage>) {
        if let glommio::GlommioError::Closed(glommio::ResourceType::Channel(message)) = error {
            self.fail_unsent(target, message);
        }
    }

    fn fail_unsent(&self, target: usize, message: MeshMessage) {
        match message {
            MeshMessage::Request { id, .. } if id != NO_REPLY => {
                self.fulfil(id, unavailable(target));
            }
            MeshMessage::Batch(messages) => {
                for message in messages {
                    self.fail_unsent(target, message);
                }
            }
            MeshMessage::Request { .. } | MeshMessage::Reply { .. } => {}
        }
    }

    /// Sends `request` to shard `target` (not this one) with the other messages gathered for
    /// it, when this shard next flushes its outbox ([`Mesh::flush_outbox`]: a connection does
    /// before it waits for its batch's replies), or before any other message to `target`.
    /// Awaiting the returned reply sends it too. A connection's remote commands then cost the
    /// mesh one message each way per batch, not one per command: each message was a push
    /// and a pop of 168 bytes through the channel on two cores, the bell's count and a wake-up.
    pub fn send_batched(&self, target: usize, request: ShardRequest) -> PendingReply<'_> {
        debug_assert_ne!(target, self.index, "local work does not cross the mesh");
        let id = self.take_slot(target);
        self.gather(target, MeshMessage::Request { id, request });
        self.pending(id)
    }

    /// The reply to request `id`, to await.
    fn pending(&self, id: u64) -> PendingReply<'_> {
        PendingReply {
            mesh: self,
            id,
            done: false,
        }
    }

    /// Gathers the reply to request `id` of shard `target`, which leaves at this shard's next
    /// flush of `target`'s outbox ([`Mesh::flush_to`]; the receiver flushes after each message
    /// it took).
    pub fn reply_batched(&self, target: usize, id: u64, reply: ShardReply) {
        if id != NO_REPLY {
            self.gather(target, MeshMessage::Reply { id, reply });
        }
    }

    fn gather(&self, target: usize, message: MeshMessage) {
        let mut outbox = self.outbox.borrow_mut();
        let messages = &mut outbox[target];
        if messages.capacity() == 0 {
            *messages = std::mem::take(&mut self.spare.borrow_mut()[target]);
        }
        messages.push(message);
        self.outbox_waiting.set(true);
    }

    /// Sends every message gathered for any shard.
    pub fn flush_outbox(&self) {
        if !self.outbox_waiting.replace(false) {
            return;
        }
        let shards = self.outbox.borrow().len();
        for target in 0..shards {
            self.send_gathered(target);
        }
    }

    /// Sends the messages gathered for shard `target`.
    pub fn flush_to(&self, target: usize) {
        if self.outbox_waiting.get() {
            self.send_gathered(target);
            let outbox = self.outbox.borrow();
            self.outbox_waiting
                .set(outbox.iter().any(|messages| !messages.is_empty()));
        }
    }

    fn send_gathered(&self, target: usize) {
        let mut messages = {
            let mut outbox = self.outbox.borrow_mut();
            if outbox[target].is_empty() {
                return;
            }
            std::mem::take(&mut outbox[target])
        };
        let message = if messages.len() == 1 {
            let message = messages.pop().expect("one message");
            // The vector stays for the next message gathered.
            self.outbox.borrow_mut()[target] = messages;
            message
        } else {
            MeshMessage::Batch(messages)
        };
        self.push_now(target, message);
    }

    /// Keeps the emptied vector of a batch that came from `peer` to carry the next batch to
    /// it: vectors then go back and forth between two shards instead of each being allocated
    /// by one and freed by the other (which hands the memory back to the allocating shard's
    /// arena). One of at most [`SPARE_MESSAGES_MAX`] messages is kept.
    pub fn recycle(&self, peer: usize, messages: Vec<MeshMessage>) {
        debug_assert!(messages.is_empty(), "only an emptied batch is kept");
        let mut spare = self.spare.borrow_mut();
        if spare[peer].capacity() == 0 && messages.capacity() <= SPARE_MESSAGES_MAX {
            spare[peer] = messages;
        }
    }

    fn take_slot(&self, target: usize) -> u64 {
        let sequence = self.next_sequence.get();
        self.next_sequence.set(sequence + 1);
        let mut slots = self.slots.borrow_mut();
        let index = self.free.borrow_mut().pop().unwrap_or_else(|| {
            slots.push(Slot {
                id: 0,
                target,
                sent_at: crate::clock::now(),
                state: SlotState::Free,
            });
            slots.len() - 1
        });
        assert!(
            (index as u64) <= SLOT_INDEX_MASK,
            "slot index fits its bits"
        );
        let id = (sequence << SLOT_INDEX_BITS) | index as u64;
        let slot = &mut slots[index];
        debug_assert!(
            matches!(slot.state, SlotState::Free),
            "a taken slot was free"
        );
        *slot = Slot {
            id,
            target,
            sent_at: crate::clock::now(),
            state: SlotState::Waiting(None),
        };
        id
    }

    /// Sends `request` to shard `target` (not this one); the reply is awaited through the
    /// returned [`PendingReply`]. A plain call that never waits ([`Mesh::push`]): a request
    /// sent through the channel's `async` send was moved through every layer's future (the
    /// message is 168 bytes), and those copies were the largest single cost of a command
    /// served by another shard.
    #[inline]
    pub fn send_now(&self, target: usize, request: ShardRequest) -> PendingReply<'_> {
        debug_assert_ne!(target, self.index, "local work does not cross the mesh");
        let id = self.take_slot(target);
        self.push(target, MeshMessage::Request { id, request });
        self.pending(id)
    }

    /// Sends `request` with no reply wanted.
    pub async fn notify(&self, target: usize, request: ShardRequest) {
        self.push(
            target,
            MeshMessage::Request {
                id: NO_REPLY,
                request,
            },
        );
    }

    /// Sends a reply back to shard `target`.
    pub fn reply(&self, target: usize, id: u64, reply: ShardReply) {
        if id != NO_REPLY {
            self.push(target, MeshMessage::Reply { id, reply });
        }
    }

    /// True while messages wait in an overflow queue.
    fn overflowing(&self) -> bool {
        self.overflow.borrow().iter().any(|queue| !queue.is_empty())
    }

    /// Hands a reply that arrived from the mesh to the task awaiting it.
    pub fn deliver(&self, id: u64, reply: ShardReply) {
        self.fulfil(id, reply);
    }

    fn fulfil(&self, id: u64, reply: ShardReply) {
        let index = (id & SLOT_INDEX_MASK) as usize;
        let mut slots = self.slots.borrow_mut();
        let Some(slot) = slots.get_mut(index) else {
            return;
        };
        if slot.id != id {
            return; // A late reply to a request that timed out (its slot is marked or reused).
        }
        match std::mem::replace(&mut slot.state, SlotState::Free) {
            SlotState::Waiting(waker) => {
                slot.state = SlotState::Ready(reply);
                drop(slots);
                if let Some(waker) = waker {
                    REPLY_WOKE_TASK.with(|woke| woke.set(true));
                    waker.wake();
                }
            }
            SlotState::Abandoned => {
                slot.id = 0;
                drop(slots);
                self.free.borrow_mut().push(index);
            }
            state @ (SlotState::Ready(_) | SlotState::Free) => {
                // Answered twice cannot happen: a timeout changes the slot's id first.
                slot.state = state;
                debug_assert!(false, "a slot answered twice");
            }
        }
    }

    /// Answers with an error every request that has waited longer than `timeout`.
    pub fn expire_overdue(&self, timeout: Duration) {
        let now = crate::clock::now();
        let timeout_us = u64::try_from(timeout.as_micros()).unwrap_or(u64::MAX);
        let overdue: Vec<(u64, usize)> = self
            .slots
            .borrow()
            .iter()
            .filter(|slot| {
                matches!(slot.state, SlotState::Waiting(_) | SlotState::Abandoned)
                    && crate::clock::elapsed_us(slot.sent_at, now) > timeout_us
            })
            .map(|slot| (slot.id, slot.target))
            .collect();
        for (id, target) in overdue {
            let error = format!(
                "ERR shard {target} did not answer within {} ms",
                timeout.as_millis()
            );
            self.fulfil(id, ShardReply::Reply(Reply::Error(error.into())));
            // Mark the slot so that the real reply, if it ever comes, no longer matches.
            let index = (id & SLOT_INDEX_MASK) as usize;
            let mut slots = self.slots.borrow_mut();
            if slots[index].id == id {
                slots[index].id = id | TIMED_OUT;
            }
        }
    }
}

fn unavailable(target: usize) -> ShardReply {
    ShardReply::Reply(Reply::Error(
        format!("ERR shard {target} is unavailable").into(),
    ))
}

/// A reply on its way: await it (once).
pub struct PendingReply<'a> {
    mesh: &'a Mesh,
    id: u64,
    done: bool,
}

impl PendingReply<'_> {
    fn index(&self) -> usize {
        (self.id & SLOT_INDEX_MASK) as usize
    }
}

impl Future for PendingReply<'_> {
    type Output = ShardReply;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<ShardReply> {
        assert!(!self.done, "a pending reply is awaited once");
        let index = self.index();
        let mut slots = self.mesh.slots.borrow_mut();
        let slot = &mut slots[index];
        debug_assert_eq!(slot.id & !TIMED_OUT, self.id, "the slot is this request's");
        match std::mem::replace(&mut slot.state, SlotState::Free) {
            SlotState::Waiting(_) => {
                slot.state = SlotState::Waiting(Some(cx.waker().clone()));
                drop(slots);
                // The request may still be gathered with others: it leaves now.
                self.mesh.flush_outbox();
                Poll::Pending
            }
            SlotState::Ready(reply) => {
                slot.id = 0;
                drop(slots);
                self.mesh.free.borrow_mut().push(index);
                self.done = true;
                Poll::Ready(reply)
            }
            SlotState::Abandoned | SlotState::Free => {
                unreachable!("only a dropped request abandons its slot")
            }
        }
    }
}

impl Drop for PendingReply<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let index = self.index();
        let mut slots = self.mesh.slots.borrow_mut();
        let slot = &mut slots[index];
        match slot.state {
            SlotState::Waiting(_) => {
                slot.state = SlotState::Abandoned;
                drop(slots);
                // A request whose caller went away still runs, as one Redis has read does.
                self.mesh.flush_outbox();
            }
            SlotState::Ready(_) => {
                slot.state = SlotState::Free;
                slot.id = 0;
                drop(slots);
                self.mesh.free.borrow_mut().push(index);
            }
            SlotState::Abandoned | SlotState::Free => {}
        }
    }
}

/// This shard's overflow task: sends the messages that found a channel full, in order, each
/// once its channel has room (see [`Mesh::push`]).
pub async fn overflow_loop(shard: std::rc::Rc<super::Shard>) {
    let mesh = &shard.mesh;
    loop {
        std::future::poll_fn(|cx| {
            if mesh.overflowing() {
                Poll::Ready(())
            } else {
                *mesh.overflow_task.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await;
        for target in 0..mesh.overflow_sending.len() {
            loop {
                let Some(message) = mesh.overflow.borrow_mut()[target].pop_front() else {
                    break;
                };
                // Later messages queue behind this one while it waits for room.
                mesh.overflow_sending[target].set(true);
                let sent = mesh.senders.send_to(target, message).await;
                mesh.overflow_sending[target].set(false);
                if let Err(error) = sent {
                    mesh.unsent(target, error);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_on_the_mesh_stays_small() {
        // Every message is copied into the channel and out of it on another core: the short
        // arguments inline in a request must not make it larger.
        assert!(std::mem::size_of::<PackedArgs>() <= 64);
        assert!(std::mem::size_of::<MeshMessage>() <= 168);
    }

    #[test]
    fn packed_args_round_trip() {
        let args: [&[u8]; 4] = [b"mset", b"", b"key", b"a value"];
        let packed = PackedArgs::new(args.iter().copied());
        assert_eq!(packed.slices().as_slice(), &args);
        for (index, arg) in args.iter().enumerate() {
            assert_eq!(packed.get(index), Some(*arg));
        }
        assert_eq!(packed.get(args.len()), None);
        assert_eq!(
            PackedArgs::new(std::iter::empty::<&[u8]>()).slices().len(),
            0
        );
    }
}
