//! A shard: one executor's share of Ember. It owns its keyspace, its copy of the configuration,
//! its statistics and its clients, and talks to other shards only by [`ShardRequest`] and
//! [`ShardReply`] messages over the [`mesh`]. [`locks`] keeps operations that span shards
//! atomic; [`router`] says which shard owns a key.

pub mod local_tier;
pub mod locks;
pub mod mesh;
pub mod pubsub;
pub mod router;
pub mod tracking;

pub use locks::{Gate, HoldToken, MultiWrites};
pub use mesh::{
    AdminRequest, Mesh, MeshMessage, PackedArgs, PendingReply, Ran, ShardReply, ShardRequest,
};
pub use router::owner_of_slot;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::Arc;

use ember_store::Keyspace;

use crate::client::ClientHandle;
use crate::config::Config;
use crate::runtime::MeshSenders;
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
    /// RDB snapshots: the last save, the one under way, the file loaded at start.
    pub persistence: crate::persistence::Persistence,
    /// The TCP port actually bound (the configured one, or the one the kernel chose for 0).
    pub port: AtomicUsize,
    /// Shards whose listeners are bound: shard 0 announces "ready" only once every shard
    /// listens, so that the first clients spread over all of them (a connection stays on the
    /// shard that accepted it).
    pub listening: AtomicUsize,
    /// Number of shards.
    pub shard_count: usize,
    /// Human-readable description of hardware paths found at start-up, for INFO.
    pub hardware: String,
    /// Multi-shard writes begun and finished, so multi-shard reads need no holds.
    pub multi_writes: MultiWrites,
    /// Scripts and function libraries every shard can call, and the busy script if any.
    pub scripts: Arc<crate::scripting::Registry>,
    /// ACL users other than `default`.
    pub acl: crate::commands::acl::Users,
    /// Clients blocked in BLPOP and friends, all shards together (INFO's blocked_clients).
    pub blocked_clients: AtomicUsize,
    /// CLIENT PAUSE.
    pub pause: crate::commands::pause::Pause,
    /// Per shard, the blocking registrations other shards sent it that it has not yet
    /// processed: a key that becomes ready while none is on its way needs no fence before its
    /// waiters are served (commands::blocking).
    pub registrations_in_flight: Box<[AtomicUsize]>,
    /// Per shard, the keys it held when its eviction loop last looked (while `maxmemory` is
    /// set): each shard evicts its part of the excess in proportion (crate::memory).
    pub shard_keys: Box<[AtomicUsize]>,
    /// Per shard, its thread's bytes allocated less freed as jemalloc counts them, published
    /// after each command (with or without `maxmemory`, so that a limit set later starts from
    /// true counts): the memory gauge's estimate between two reads of jemalloc's figure
    /// (crate::memory).
    pub shard_net_bytes: Box<[crate::memory::PublishedCount]>,
    /// Clients with CLIENT TRACKING on, all shards together (INFO's tracking_clients).
    pub tracking_clients: AtomicUsize,
    /// Redirection targets (clients some CLIENT TRACKING ... REDIRECT named) that quit or
    /// disconnected: a reader's shard sees at once that its redirection is broken, with no
    /// trip to the target's shard ([`crate::commands::tracking`]). Ids are never reused; the
    /// set is bounded (`GONE_REDIRECT_TARGETS_MAX`).
    pub gone_redirect_targets: std::sync::Mutex<std::collections::HashSet<u64>>,
    /// Keys in the tracking tables of all shards (INFO's tracking_total_keys; the bound
    /// `tracking-table-max-keys` applies to it).
    pub tracking_keys: AtomicUsize,
    /// (key, client) pairs in the tracking tables (INFO's tracking_total_items).
    pub tracking_items: AtomicUsize,
    /// Traffic protection: filter rules and INFO's `# Protection` counters.
    pub protection: Arc<crate::protection::Registry>,
    /// The local tier's version stripes, every shard's (shard::local_tier).
    pub tier_versions: local_tier::Versions,
    /// Connections in MONITOR mode, per shard.
    pub monitors: crate::commands::monitor::Watchers,
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
    /// Requests to other shards and the slots their replies land in.
    pub mesh: Mesh,
    /// This shard's connections' subscriptions, and keyspace events for the other shards.
    pub pubsub: pubsub::PubSub,
    /// This shard's Lua interpreter and compiled scripts ([`Shard::scripting`]); replaced by a
    /// fresh one, without an interpreter, when SCRIPT FLUSH leaves it nothing to hold.
    scripting: RefCell<Rc<crate::scripting::Engine>>,
    /// Clients blocked on this shard's keys, and this shard's blocked connections.
    pub blocking: crate::commands::blocking::Registry,
    /// Client tracking: readers of this shard's keys, BCAST clients, invalidations to send.
    pub tracking: tracking::Tracking,
    /// Leases of this shard's keys and this shard's copy of the compiled filters.
    pub protection: crate::protection::ShardProtection,
    /// HOTKEYS: this shard's session and its heavy-hitter sketches.
    pub hotkeys: crate::commands::hotkeys::Recorder,
    /// Copies of other shards' hot keys, and this shard's published hot keys.
    pub local_tier: local_tier::LocalTier,
    /// This shard's connections in MONITOR mode, and lines for other shards' monitors.
    pub monitors: crate::commands::monitor::ShardMonitors,
    /// Eviction under `maxmemory`: the pool, and when the gauge is read (crate::memory).
    pub memory: crate::memory::ShardMemory,
    next_hold_sequence: Cell<u64>,
}

/// Sets what `keyspace` takes from `config`, at start and after each CONFIG SET:
/// maxmemory-policy and the lfu-* parameters decide what reads record in each key and whether
/// the keyspace keeps a read history (allkeys-tinylfu); lazyfree-lazy-expire and maxmemory,
/// where the values of expired keys are freed.
pub fn configure_keyspace(keyspace: &mut Keyspace, config: &Config) {
    keyspace.set_access_policy(config.access_policy());
    keyspace.set_read_history(config.read_history());
    crate::lazyfree::configure(keyspace, config);
}

impl Shard {
    /// This shard's scripting engine: its Lua interpreter (created by the first script that
    /// needs it) and what is compiled in it.
    pub fn scripting(&self) -> Rc<crate::scripting::Engine> {
        self.scripting.borrow().clone()
    }

    /// SCRIPT FLUSH on this shard: the scripts' interpreter and what was compiled in it go
    /// (the next script creates a fresh one), as Redis resets its eval interpreter; the
    /// function libraries' interpreter stays. An engine a run still holds (a run cannot
    /// outlast the flush, but nothing here depends on it) forgets its scripts instead.
    pub fn flush_scripts(&self) {
        let mut slot = self.scripting.borrow_mut();
        let engine = std::mem::take(&mut *slot);
        *slot = match Rc::try_unwrap(engine) {
            Ok(engine) => Rc::new(engine.without_scripts(&self.shared.scripts)),
            Err(shared) => {
                shared.forget_scripts(&self.shared.scripts);
                shared
            }
        };
    }

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
        let shard_count = shared.shard_count;
        let protection = crate::protection::ShardProtection::new(shared.protection.clone());
        configure_keyspace(&mut keyspace, &config);
        Self {
            index,
            keyspace: RefCell::new(keyspace),
            config: RefCell::new(config),
            stats: ShardStats::new(),
            clients: RefCell::new(HashMap::new()),
            shared,
            gate: Gate::default(),
            offload_sim,
            offload: RefCell::new(Box::new(ember_fpga::offload::SoftwareOffload)),
            inference,
            spin,
            mesh: Mesh::new(index, shard_count, mesh),
            pubsub: pubsub::PubSub::new(shard_count),
            scripting: RefCell::new(Rc::default()),
            blocking: crate::commands::blocking::Registry::default(),
            tracking: tracking::Tracking::default(),
            protection,
            hotkeys: crate::commands::hotkeys::Recorder::default(),
            local_tier: local_tier::LocalTier::default(),
            monitors: Default::default(),
            memory: crate::memory::ShardMemory::new(index),
            next_hold_sequence: Cell::new(1),
        }
    }

    /// Number of shards.
    pub fn count(&self) -> usize {
        self.shared.shard_count
    }

    /// The shard that owns `key`: slots are split into equal contiguous ranges.
    pub fn owner_of(&self, key: &[u8]) -> usize {
        router::owner_of_key(key, self.count())
    }

    /// A fresh token for an atomic cross-shard operation started here.
    pub fn new_hold_token(&self) -> HoldToken {
        let sequence = self.next_hold_sequence.get();
        self.next_hold_sequence.set(sequence + 1);
        (self.index, sequence)
    }

    /// Sends `request` to shard `target` (not this one) and waits for its reply.
    pub async fn call(&self, target: usize, request: ShardRequest) -> ShardReply {
        self.send(target, request).await.await
    }

    /// Sends `request` to shard `target` (not this one); its reply is awaited later.
    /// `async` for its callers' sake: it never waits (see [`Shard::send_now`]).
    pub async fn send(&self, target: usize, request: ShardRequest) -> PendingReply<'_> {
        self.send_now(target, request)
    }

    /// [`Shard::send`] as a plain call.
    #[inline]
    pub fn send_now(&self, target: usize, request: ShardRequest) -> PendingReply<'_> {
        self.count_hop();
        self.mesh.send_now(target, request)
    }

    /// [`Shard::send_now`] gathered with the other messages for `target`
    /// ([`Mesh::send_batched`]): a connection's remote commands of one batch.
    #[inline]
    pub fn send_batched(&self, target: usize, request: ShardRequest) -> PendingReply<'_> {
        self.count_hop();
        self.mesh.send_batched(target, request)
    }

    /// Sends `request` to shard `target` with no reply wanted.
    pub async fn notify(&self, target: usize, request: ShardRequest) {
        self.count_hop();
        self.mesh.notify(target, request).await;
    }

    fn count_hop(&self) {
        let hops = &self.stats.cross_shard_hops;
        hops.set(hops.get() + 1);
    }
}
