//! The command table, the one place that knows every command: its arity, flags, key positions,
//! documentation and handler. COMMAND INFO/DOCS, routing to the owning shard and argument
//! checks all read it. Command families live one per file beside this one.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::LazyLock;

use ember_resp::{Protocol, ReplySink};
use ember_store::split::SplitBytes;
use ember_store::{Entry, Keyspace};

use crate::client::Client;
use crate::config::Config;
use crate::shard::Shard;
use crate::stats::ShardStats;

pub mod acl;
pub mod ai;
pub mod bitmaps;
pub mod blocking;
pub mod connection;
pub mod dump;
pub mod exec;
pub mod expiry_jitter;
pub mod filter;
pub mod geo;
pub mod hashes;
pub mod hotkeys;
pub mod hyperloglog;
pub mod key_finders;
pub mod key_specs;
pub mod keys;
pub mod lists;
pub mod memory;
pub mod migrate;
pub mod monitor;
pub mod multikey;
pub mod notify;
pub mod pause;
pub mod probabilistic;
pub mod protection;
pub mod pubsub;
pub mod recommend;
pub mod redact;
pub mod remote;
pub mod scripting;
pub mod server;
pub mod sets;
pub mod sort;
pub mod streams;
pub mod strings;
pub mod tracking;
pub mod transaction;
pub mod zset_pops;
pub mod zsets;

/// An error reply: the full message, code first (`ERR ...`, `WRONGTYPE ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandError(pub Cow<'static, str>);

impl From<&'static str> for CommandError {
    fn from(message: &'static str) -> Self {
        Self(Cow::Borrowed(message))
    }
}

impl From<String> for CommandError {
    fn from(message: String) -> Self {
        Self(Cow::Owned(message))
    }
}

/// What a handler returns; the reply itself is already in the sink when `Ok`.
pub type CommandResult = Result<(), CommandError>;

/// Redis 7.2's wording of the common errors.
pub mod errors {
    /// An argument or value that is not an integer.
    pub const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
    /// INCR and friends past i64.
    pub const OVERFLOW: &str = "ERR increment or decrement would overflow";
    /// An argument or value that is not a float.
    pub const NOT_FLOAT: &str = "ERR value is not a valid float";
    /// Options that do not parse.
    pub const SYNTAX: &str = "ERR syntax error";
    /// RENAME and friends on a missing key.
    pub const NO_SUCH_KEY: &str = "ERR no such key";
    /// SELECT and friends past the last database.
    pub const DB_INDEX: &str = "ERR DB index is out of range";
    /// A string grown past proto-max-bulk-len.
    pub const STRING_TOO_LONG: &str =
        "ERR string exceeds maximum allowed size (proto-max-bulk-len)";
    /// Commands before AUTH.
    pub const NOAUTH: &str = "NOAUTH Authentication required.";
    /// A command of one type on a key holding another.
    pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
}

/// Where a command's keys are: Redis's (first, last, step), `last` negative counting from the end.
#[derive(Debug, Clone, Copy)]
pub struct KeySpec {
    /// Position of the first key; 0 for none.
    pub first: i32,
    /// Position of the last key; -1 is the last argument.
    pub last: i32,
    /// Distance between keys.
    pub step: i32,
}

pub(crate) const NO_KEYS: KeySpec = KeySpec {
    first: 0,
    last: 0,
    step: 0,
};
pub(crate) const ONE_KEY: KeySpec = KeySpec {
    first: 1,
    last: 1,
    step: 1,
};
pub(crate) const TWO_KEYS: KeySpec = KeySpec {
    first: 1,
    last: 2,
    step: 1,
};
pub(crate) const ALL_KEYS: KeySpec = KeySpec {
    first: 1,
    last: -1,
    step: 1,
};
pub(crate) const PAIRS: KeySpec = KeySpec {
    first: 1,
    last: -1,
    step: 2,
};
pub(crate) const SECOND_ARG_KEY: KeySpec = KeySpec {
    first: 2,
    last: 2,
    step: 1,
};

impl KeySpec {
    /// Argument positions of the keys in a request of `arg_count` arguments.
    pub fn positions(&self, arg_count: usize) -> impl Iterator<Item = usize> {
        let count = arg_count as i32;
        let (first, step) = (self.first, self.step.max(1));
        let last = if self.last < 0 {
            count + self.last
        } else {
            self.last.min(count - 1)
        };
        let end = if self.first == 0 || first >= count {
            0
        } else {
            last + 1
        };
        (first.max(0)..end.max(first.max(0)))
            .step_by(step as usize)
            .map(|p| p as usize)
    }
}

/// Everything a keyspace command needs: the keyspace that owns its keys and the caller's state.
pub struct Ctx<'a> {
    /// The owning shard's keyspace.
    pub keyspace: &'a mut Keyspace,
    /// The caller's database.
    pub db: usize,
    /// The caller's protocol.
    pub protocol: Protocol,
    /// Current time, milliseconds since the epoch, read once per batch.
    pub now_ms: u64,
    /// Where the reply goes.
    pub out: &'a mut ReplySink,
    /// The owning shard's configuration.
    pub config: &'a Config,
    /// The owning shard's statistics (hits and misses).
    pub stats: &'a ShardStats,
    /// CLIENT NO-TOUCH of the caller.
    pub no_touch: bool,
    /// The caller is a script: SORT orders a set even when told not to sort, as Redis does, so
    /// a script's result does not depend on a set's layout.
    pub script: bool,
    /// The owning shard's Pub/Sub state, where keyspace events go ([`notify::notify`]).
    pub pubsub: &'a crate::shard::pubsub::PubSub,
    /// The owning shard's leases and the protection counters ([`protection`]).
    pub protection: &'a crate::protection::ShardProtection,
    /// What the append-only file logs for this command ([`crate::aof::Propagation`]).
    pub propagation: &'a mut crate::aof::Propagation,
}

/// True when a write's expiry time `at_ms` has passed at `now_ms`: the write deletes the key
/// instead, as Redis's; never while a log is replayed (its later records say what expired).
pub fn already_expired(at_ms: u64, now_ms: u64) -> bool {
    at_ms <= now_ms && !ember_store::value::expiry_suspended()
}

/// Logs `key`'s expiry as it is now ([`crate::aof`]): PEXPIREAT at its absolute time, PERSIST,
/// or DEL when the command removed the key.
pub fn propagate_expiry(ctx: &mut Ctx<'_>, key: &[u8]) {
    if !ctx.propagating() {
        return;
    }
    let expiry = ctx
        .keyspace
        .peek(ctx.db, key, ctx.now_ms)
        .map(Entry::expire_at_ms);
    match expiry {
        None => ctx.propagate(&[b"DEL", key]),
        Some(Some(at_ms)) => ctx.propagate(&[b"PEXPIREAT", key, at_ms.to_string().as_bytes()]),
        Some(None) => ctx.propagate(&[b"PERSIST", key]),
    }
}

/// Logs string `key` as it is now ([`crate::aof`]): SET with its value and absolute expiry, or
/// DEL when the command removed it. For writes whose replay would differ (a relative or
/// randomized expiry, a float increment).
pub fn propagate_string(ctx: &mut Ctx<'_>, key: &[u8]) {
    if !ctx.propagating() {
        return;
    }
    let state = ctx
        .keyspace
        .peek(ctx.db, key, ctx.now_ms)
        .map(|entry| (entry.value.to_vec(), entry.expire_at_ms()));
    match state {
        None => ctx.propagate(&[b"DEL", key]),
        Some((value, Some(at_ms))) => {
            ctx.propagate(&[b"SET", key, &value, b"PXAT", at_ms.to_string().as_bytes()])
        }
        Some((value, None)) => ctx.propagate(&[b"SET", key, &value]),
    }
}

impl Ctx<'_> {
    /// True when the append-only file logs this command: a handler whose command would not
    /// replay as it ran builds the records of its effect only then.
    pub fn propagating(&self) -> bool {
        self.propagation.is_on()
    }

    /// Logs `args` instead of the command's own arguments (more calls, more records).
    pub fn propagate(&mut self, args: &[&[u8]]) {
        self.propagation.replace(args);
    }
}

/// Reads `key` for a read command, counting the hit or miss; under CLIENT NO-TOUCH the key's
/// access time stays as it was.
pub fn read_entry<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> Option<&'c Entry> {
    read_for_reply(ctx, key).0
}

/// [`read_entry`], handing back the reply buffer too, for replies written from the entry.
pub fn read_for_reply<'c>(
    ctx: &'c mut Ctx<'_>,
    key: &[u8],
) -> (Option<&'c Entry>, &'c mut ReplySink) {
    notify::note_read(ctx, key);
    let entry = if ctx.no_touch {
        ctx.keyspace.peek(ctx.db, key, ctx.now_ms)
    } else {
        ctx.keyspace.get(ctx.db, key, ctx.now_ms)
    };
    ctx.stats.count_lookup(entry.is_some());
    (entry, &mut *ctx.out)
}

/// A string the store keeps in two pieces (a front-coded name, member or element) as one bulk
/// string, written from its pieces.
pub fn bulk_split(out: &mut ReplySink, bytes: SplitBytes<'_>) {
    let (head, tail) = bytes.parts();
    out.bulk_parts(head, tail);
}

/// What a connection-state command needs.
pub struct ConnectionCtx<'a> {
    /// The connection.
    pub client: &'a mut Client,
    /// The shard the connection lives on.
    pub shard: &'a Shard,
    /// Where the reply goes.
    pub out: &'a mut ReplySink,
}

/// A command that reads or writes keys; runs on the shard that owns them.
pub type KeyspaceFn = fn(&mut Ctx<'_>, &[&[u8]]) -> CommandResult;
/// A command that changes only the connection; runs where the connection lives.
pub type ConnectionFn = fn(&mut ConnectionCtx<'_>, &[&[u8]]) -> CommandResult;

/// Commands that involve every shard (INFO, CONFIG, CLIENT, FLUSHALL...); run by
/// [`server::admin`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerOp {
    /// DBSIZE
    DbSize,
    /// FLUSHDB
    FlushDb,
    /// FLUSHALL
    FlushAll,
    /// SWAPDB
    SwapDb,
    /// KEYS
    Keys,
    /// SCAN
    Scan,
    /// RANDOMKEY
    RandomKey,
    /// INFO
    Info,
    /// CONFIG
    Config,
    /// CLIENT
    Client,
    /// SLOWLOG
    Slowlog,
    /// LATENCY
    Latency,
    /// HOTKEYS
    Hotkeys,
    /// SHUTDOWN
    Shutdown,
    /// SAVE
    Save,
    /// BGSAVE
    BgSave,
    /// BGREWRITEAOF
    BgRewriteAof,
    /// DEBUG
    Debug,
    /// MEMORY
    Memory,
    /// WAIT: Ember has no replicas ([`blocking::wait_for_replicas`]).
    Wait,
    /// WAITAOF: nor an append-only file.
    WaitAof,
}

/// Inference commands; run by [`ai::run`] on the connection's shard, which holds every model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InferenceOp {
    /// AI.TENSORSET
    TensorSet,
    /// AI.TENSORGET
    TensorGet,
    /// AI.MODELSTORE
    ModelStore,
    /// AI.MODELGET
    ModelGet,
    /// AI.MODELDEL
    ModelDel,
    /// AI.MODELEXECUTE
    ModelExecute,
    /// AI.INFO
    Info,
    /// RECOMMEND
    Recommend,
}

/// MULTI, EXEC, DISCARD, WATCH, UNWATCH: the executor runs them, since EXEC runs other
/// commands and WATCH asks other shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionOp {
    /// MULTI
    Multi,
    /// EXEC
    Exec,
    /// DISCARD
    Discard,
    /// WATCH
    Watch,
    /// UNWATCH
    Unwatch,
}

/// How a command runs.
#[derive(Clone, Copy)]
pub enum Handler {
    /// On the shard owning its keys.
    Keyspace(KeyspaceFn),
    /// On the connection's shard, with the connection.
    Connection(ConnectionFn),
    /// Across every shard.
    Server(ServerOp),
    /// Inference, awaiting the shard's batcher.
    Inference(InferenceOp),
    /// Transactions, run by the executor.
    Transaction(TransactionOp),
    /// PUBLISH, SPUBLISH, PUBSUB: on the connection's shard, asking every other shard.
    PubSub(pubsub::PubSubOp),
    /// Scripts and functions ([`scripting::run`]).
    Script(scripting::ScriptOp),
    /// Commands that may block the client until a key can serve it ([`blocking`]).
    Blocking(&'static blocking::BlockingCommand),
    /// MIGRATE: holds its keys, talks to another server, deletes what it moved ([`migrate`]).
    Migrate,
}

/// What to do when a keyspace command's keys live on several shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// Every key must be on one shard (single-key commands never split).
    None,
    /// MGET: ask each shard for its keys, put the values back in request order.
    Gather,
    /// MSET: each shard sets its pairs (under a hold, so no reader sees half).
    Pairs,
    /// DEL, UNLINK, EXISTS, TOUCH: each shard counts its keys, the counts add up.
    Sum,
    /// Anything else (MSETNX, RENAME, COPY, LCS): hold the shards, copy the keys into a scratch
    /// keyspace, run there, write back what changed.
    Scratch,
}

bitflags::bitflags! {
    /// A command's flags: Redis's COMMAND flags, and two of Ember's own that the executor reads.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct CommandFlags: u32 {
        /// May modify the keyspace.
        const WRITE = 1 << 0;
        /// Only reads.
        const READONLY = 1 << 1;
        /// May grow memory: refused when over maxmemory under noeviction.
        const DENYOOM = 1 << 2;
        /// Administrative.
        const ADMIN = 1 << 3;
        /// Pub/Sub.
        const PUBSUB = 1 << 4;
        /// Not allowed in scripts.
        const NOSCRIPT = 1 << 5;
        /// May block the client.
        const BLOCKING = 1 << 6;
        /// Allowed while loading.
        const LOADING = 1 << 7;
        /// Allowed on a stale replica.
        const STALE = 1 << 8;
        /// Not shown in the slow log.
        const SKIP_SLOWLOG = 1 << 9;
        /// O(1) or O(log n).
        const FAST = 1 << 10;
        /// Allowed before AUTH.
        const NO_AUTH = 1 << 11;
        /// Allowed while a script runs too long.
        const ALLOW_BUSY = 1 << 12;
        /// Sentinel command.
        const SENTINEL = 1 << 13;
        /// Not allowed inside MULTI (WATCH, MULTI): answers an error there.
        const NO_MULTI = 1 << 14;
        /// Ember's: runs at once inside MULTI instead of being queued (EXEC, DISCARD, QUIT,
        /// RESET). Not a Redis flag; COMMAND does not show it.
        const TRANSACTION_CONTROL = 1 << 15;
        /// Ember's: the argument after `DB` names the destination key's database (COPY).
        /// Not a Redis flag; COMMAND does not show it.
        const DB_OPTION = 1 << 16;
        /// Ember's: allowed to a RESP2 connection with subscriptions (Redis's list: the
        /// (P|S)(UN)SUBSCRIBE commands, PING, QUIT, RESET). Not a Redis flag.
        const PUBSUB_CONTEXT = 1 << 17;
    }
}

/// Redis's names of the flags COMMAND shows, in Redis's order.
const FLAG_NAMES: &[(CommandFlags, &str)] = &[
    (CommandFlags::WRITE, "write"),
    (CommandFlags::READONLY, "readonly"),
    (CommandFlags::DENYOOM, "denyoom"),
    (CommandFlags::ADMIN, "admin"),
    (CommandFlags::PUBSUB, "pubsub"),
    (CommandFlags::NOSCRIPT, "noscript"),
    (CommandFlags::BLOCKING, "blocking"),
    (CommandFlags::LOADING, "loading"),
    (CommandFlags::STALE, "stale"),
    (CommandFlags::SKIP_SLOWLOG, "skip_slowlog"),
    (CommandFlags::FAST, "fast"),
    (CommandFlags::NO_AUTH, "no_auth"),
    (CommandFlags::SENTINEL, "sentinel"),
    (CommandFlags::NO_MULTI, "no_multi"),
    (CommandFlags::ALLOW_BUSY, "allow_busy"),
];

impl CommandFlags {
    /// The Redis flag names set, in Redis's order (COMMAND INFO).
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        FLAG_NAMES
            .iter()
            .filter(move |(flag, _)| self.contains(*flag))
            .map(|(_, name)| *name)
    }
}

bitflags::bitflags! {
    /// ACL categories (`+@read`, `-@dangerous`...), as Redis 7 assigns them.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct AclCategories: u32 {
        /// @keyspace
        const KEYSPACE = 1 << 0;
        /// @read
        const READ = 1 << 1;
        /// @write
        const WRITE = 1 << 2;
        /// @set
        const SET = 1 << 3;
        /// @sortedset
        const SORTEDSET = 1 << 4;
        /// @list
        const LIST = 1 << 5;
        /// @hash
        const HASH = 1 << 6;
        /// @string
        const STRING = 1 << 7;
        /// @bitmap
        const BITMAP = 1 << 8;
        /// @hyperloglog
        const HYPERLOGLOG = 1 << 9;
        /// @geo
        const GEO = 1 << 10;
        /// @stream
        const STREAM = 1 << 11;
        /// @pubsub
        const PUBSUB = 1 << 12;
        /// @admin
        const ADMIN = 1 << 13;
        /// @fast
        const FAST = 1 << 14;
        /// @slow
        const SLOW = 1 << 15;
        /// @blocking
        const BLOCKING = 1 << 16;
        /// @dangerous
        const DANGEROUS = 1 << 17;
        /// @connection
        const CONNECTION = 1 << 18;
        /// @transaction
        const TRANSACTION = 1 << 19;
        /// @scripting
        const SCRIPTING = 1 << 20;
    }
}

/// Redis's category names, in ACL CAT's order.
pub const CATEGORY_NAMES: &[(AclCategories, &str)] = &[
    (AclCategories::KEYSPACE, "keyspace"),
    (AclCategories::READ, "read"),
    (AclCategories::WRITE, "write"),
    (AclCategories::SET, "set"),
    (AclCategories::SORTEDSET, "sortedset"),
    (AclCategories::LIST, "list"),
    (AclCategories::HASH, "hash"),
    (AclCategories::STRING, "string"),
    (AclCategories::BITMAP, "bitmap"),
    (AclCategories::HYPERLOGLOG, "hyperloglog"),
    (AclCategories::GEO, "geo"),
    (AclCategories::STREAM, "stream"),
    (AclCategories::PUBSUB, "pubsub"),
    (AclCategories::ADMIN, "admin"),
    (AclCategories::FAST, "fast"),
    (AclCategories::SLOW, "slow"),
    (AclCategories::BLOCKING, "blocking"),
    (AclCategories::DANGEROUS, "dangerous"),
    (AclCategories::CONNECTION, "connection"),
    (AclCategories::TRANSACTION, "transaction"),
    (AclCategories::SCRIPTING, "scripting"),
];

impl AclCategories {
    /// Redis's rule: the group's category, @read/@write from the flags, @fast or @slow, and
    /// @admin with @dangerous for administrative commands.
    const fn derive(group: &str, flags: CommandFlags) -> Self {
        let mut categories = Self::group(group);
        if flags.contains(CommandFlags::WRITE) {
            categories = categories.union(Self::WRITE);
        }
        // Redis leaves the read-only scripting commands (EVAL_RO, FCALL_RO) out of @read.
        if flags.contains(CommandFlags::READONLY) && !categories.contains(Self::SCRIPTING) {
            categories = categories.union(Self::READ);
        }
        categories = categories.union(if flags.contains(CommandFlags::FAST) {
            Self::FAST
        } else {
            Self::SLOW
        });
        if flags.contains(CommandFlags::ADMIN) {
            categories = categories.union(Self::ADMIN).union(Self::DANGEROUS);
        }
        if flags.contains(CommandFlags::BLOCKING) {
            categories = categories.union(Self::BLOCKING);
        }
        categories
    }

    const fn group(group: &str) -> Self {
        match group.as_bytes() {
            b"generic" => Self::KEYSPACE,
            b"string" => Self::STRING,
            b"set" => Self::SET,
            b"sorted_set" => Self::SORTEDSET,
            b"list" => Self::LIST,
            b"hash" => Self::HASH,
            b"bitmap" => Self::BITMAP,
            b"hyperloglog" => Self::HYPERLOGLOG,
            b"geo" => Self::GEO,
            b"stream" => Self::STREAM,
            b"pubsub" => Self::PUBSUB,
            b"connection" => Self::CONNECTION,
            b"transactions" => Self::TRANSACTION,
            b"scripting" => Self::SCRIPTING,
            _ => Self::empty(),
        }
    }

    /// The category names set.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        CATEGORY_NAMES
            .iter()
            .filter(move |(category, _)| self.contains(*category))
            .map(|(_, name)| *name)
    }
}

/// One command: everything COMMAND, routing, the executor and (later) ACLs need to know.
#[derive(Clone)]
pub struct CommandSpec {
    /// Lower-case name.
    pub name: &'static str,
    /// Redis arity: exact when positive, at least `-arity` when negative (the name counts).
    pub arity: i32,
    /// Flags.
    pub flags: CommandFlags,
    /// ACL categories.
    pub categories: AclCategories,
    /// Key positions.
    pub keys: KeySpec,
    /// COMMAND DOCS group.
    pub group: &'static str,
    /// COMMAND DOCS summary.
    pub summary: &'static str,
    /// Redis version that introduced it.
    pub since: &'static str,
    /// How it runs.
    pub handler: Handler,
    /// How it splits across shards.
    pub split: Split,
    /// Where the keys are when a key count or a keyword places them (SINTERCARD, ZUNIONSTORE,
    /// XREAD...): Redis's "movablekeys". `keys` then only says what COMMAND INFO shows.
    pub key_finder: Option<KeyFinder>,
    /// Keys named by the data rather than the arguments (SORT's BY and GET patterns).
    pub lookups: Option<&'static Lookups>,
    /// Redis 7's key specifications (what COMMAND INFO and GETKEYSANDFLAGS show), from
    /// [`key_specs::of`]; empty for commands Redis does not have.
    pub key_specs: &'static [key_specs::KeySpecDef],
    /// The arguments that never reach the slow log (passwords, user rules): each shows as
    /// `(redacted)`, as Redis's `redactClientCommandArgument` does.
    pub secrets: Option<fn(&[&[u8]]) -> Vec<usize>>,
}

/// How a command reads keys that its data names (SORT's patterns name a key per element): the
/// router then holds every shard, and the scratch path copies those keys in before it runs.
#[derive(Debug)]
pub struct Lookups {
    /// True when these arguments read keys named by the data.
    pub wide: fn(&[&[u8]]) -> bool,
    /// The keys the arguments name through `value`, the value of the command's first key.
    pub keys: fn(&[&[u8]], &ember_store::Value) -> Vec<Vec<u8>>,
}

/// Finds the key positions of a command whose keys move, from its arguments; malformed
/// arguments give no keys (the handler then answers the error, on the caller's shard).
pub type KeyFinder = fn(&[&[u8]]) -> Vec<usize>;

impl CommandSpec {
    /// True when `flag` is set.
    pub fn has(&self, flag: CommandFlags) -> bool {
        self.flags.contains(flag)
    }

    /// Argument positions of the keys in `args` (the command name at 0).
    pub fn key_positions(&self, args: &[&[u8]]) -> Vec<usize> {
        match self.key_finder {
            Some(finder) => finder(args),
            None => self.keys.positions(args.len()).collect(),
        }
    }

    /// The keys `args` name (see [`Self::key_positions`]), without allocating for up to 8.
    pub fn key_args<'a>(&self, args: &[&'a [u8]]) -> smallvec::SmallVec<[&'a [u8]; 8]> {
        match self.key_finder {
            Some(finder) => finder(args).into_iter().map(|p| args[p]).collect(),
            None => self.keys.positions(args.len()).map(|p| args[p]).collect(),
        }
    }

    /// True when `args` make this command read keys its data names, on any shard.
    pub fn reads_named_keys(&self, args: &[&[u8]]) -> bool {
        self.lookups.is_some_and(|lookups| (lookups.wide)(args))
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) const fn command(
    name: &'static str,
    arity: i32,
    flags: CommandFlags,
    keys: KeySpec,
    group: &'static str,
    since: &'static str,
    summary: &'static str,
    handler: Handler,
) -> CommandSpec {
    CommandSpec {
        name,
        arity,
        flags,
        categories: AclCategories::derive(group, flags),
        keys,
        group,
        summary,
        since,
        handler,
        split: Split::None,
        key_finder: None,
        lookups: None,
        key_specs: key_specs::of(name),
        secrets: None,
    }
}

/// Declares which arguments are secrets (see [`CommandSpec::secrets`]).
pub(crate) const fn redacts(
    mut spec: CommandSpec,
    secrets: fn(&[&[u8]]) -> Vec<usize>,
) -> CommandSpec {
    spec.secrets = Some(secrets);
    spec
}

/// Declares the keys a command's data names (see [`CommandSpec::lookups`]).
pub(crate) const fn looks_up(mut spec: CommandSpec, lookups: &'static Lookups) -> CommandSpec {
    spec.lookups = Some(lookups);
    spec
}

/// Declares where a command's keys are when they move (see [`CommandSpec::key_finder`]).
pub(crate) const fn movable(mut spec: CommandSpec, finder: KeyFinder) -> CommandSpec {
    spec.key_finder = Some(finder);
    spec
}

pub(crate) const fn split(mut spec: CommandSpec, split: Split) -> CommandSpec {
    spec.split = split;
    spec
}

/// Adds Ember's own flags to a declaration.
pub(crate) const fn with(mut spec: CommandSpec, flags: CommandFlags) -> CommandSpec {
    spec.flags = spec.flags.union(flags);
    spec
}

/// Gives a command exactly Redis's ACL categories where its group's differ (WAIT is in the
/// generic group but in `@connection`, not `@keyspace`).
pub(crate) const fn categorized(mut spec: CommandSpec, categories: AclCategories) -> CommandSpec {
    spec.categories = categories;
    spec
}

/// Adds ACL categories Redis declares beyond those the group and flags give (`@dangerous`).
pub(crate) const fn in_categories(mut spec: CommandSpec, extra: AclCategories) -> CommandSpec {
    spec.categories = spec.categories.union(extra);
    spec
}

pub(crate) use Handler::{Connection, Inference, Keyspace as Ks, Server, Transaction};

pub(crate) type F = CommandFlags;
pub(crate) const R_FAST: F = F::READONLY.union(F::FAST);
pub(crate) const R: F = F::READONLY;
pub(crate) const W_FAST: F = F::WRITE.union(F::FAST);
pub(crate) const W: F = F::WRITE;
pub(crate) const W_OOM: F = F::WRITE.union(F::DENYOOM);
pub(crate) const W_OOM_FAST: F = F::WRITE.union(F::DENYOOM).union(F::FAST);
pub(crate) const CONN_NO_AUTH: F = F::NOSCRIPT
    .union(F::LOADING)
    .union(F::STALE)
    .union(F::FAST)
    .union(F::NO_AUTH)
    .union(F::ALLOW_BUSY);
pub(crate) const ADMIN: F = F::ADMIN
    .union(F::NOSCRIPT)
    .union(F::LOADING)
    .union(F::STALE);
pub(crate) const LOADING_STALE: F = F::LOADING.union(F::STALE);
/// REPLICAOF, SLAVEOF, FAILOVER: administrative, not from scripts, allowed on a stale replica.
pub(crate) const NO_REPLICATION: F = F::ADMIN.union(F::NOSCRIPT).union(F::STALE);
pub(crate) const LOADING_STALE_FAST: F = F::LOADING.union(F::STALE).union(F::FAST);
pub(crate) const TRANSACTION: F = F::NOSCRIPT
    .union(F::LOADING)
    .union(F::STALE)
    .union(F::FAST)
    .union(F::ALLOW_BUSY);

/// Every command Ember serves: the core table below, then each family's own table.
pub static COMMANDS: LazyLock<Vec<CommandSpec>> = LazyLock::new(|| {
    let families: [&[CommandSpec]; 16] = [
        CORE,
        sets::COMMANDS,
        zsets::COMMANDS,
        hashes::COMMANDS,
        lists::COMMANDS,
        bitmaps::COMMANDS,
        hyperloglog::COMMANDS,
        geo::COMMANDS,
        streams::COMMANDS,
        pubsub::COMMANDS,
        scripting::COMMANDS,
        sort::COMMANDS,
        probabilistic::COMMANDS,
        protection::COMMANDS,
        filter::COMMANDS,
        migrate::COMMANDS,
    ];
    let mut all = Vec::with_capacity(families.iter().map(|family| family.len()).sum());
    for family in families {
        all.extend(family.iter().cloned());
    }
    all
});

/// The commands of the first families (connection, server, strings, sets, sorted sets, keys,
/// inference). Newer families keep their table in their own file.
static CORE: &[CommandSpec] = &[
    // connection
    redacts(command("auth", -2, CONN_NO_AUTH, NO_KEYS, "connection", "1.0.0", "Authenticates the connection.", Connection(connection::auth)), redact::auth),
    redacts(command("acl", -2, ADMIN, NO_KEYS, "server", "6.0.0", "A container for Access List Control commands.", Connection(acl::acl)), redact::acl),
    redacts(command("hello", -1, CONN_NO_AUTH, NO_KEYS, "connection", "6.0.0", "Handshakes with the server.", Connection(connection::hello)), redact::hello),
    with(command("ping", -1, F::FAST, NO_KEYS, "connection", "1.0.0", "Returns the server's liveliness response.", Connection(connection::ping)), F::PUBSUB_CONTEXT),
    command("echo", 2, F::FAST, NO_KEYS, "connection", "1.0.0", "Returns the given string.", Connection(connection::echo)),
    command("select", 2, LOADING_STALE_FAST, NO_KEYS, "connection", "1.0.0", "Changes the selected database.", Connection(connection::select)),
    with(command("quit", -1, CONN_NO_AUTH, NO_KEYS, "connection", "1.0.0", "Closes the connection.", Connection(connection::quit)), F::TRANSACTION_CONTROL.union(F::PUBSUB_CONTEXT)),
    with(command("reset", 1, CONN_NO_AUTH, NO_KEYS, "connection", "6.2.0", "Resets the connection.", Connection(connection::reset)), F::TRANSACTION_CONTROL.union(F::PUBSUB_CONTEXT)),
    with(command("multi", 1, TRANSACTION, NO_KEYS, "transactions", "1.2.0", "Starts a transaction.", Transaction(TransactionOp::Multi)), F::TRANSACTION_CONTROL),
    with(command("exec", 1, F::NOSCRIPT.union(F::LOADING).union(F::STALE).union(F::SKIP_SLOWLOG), NO_KEYS, "transactions", "1.2.0", "Executes all commands in a transaction.", Transaction(TransactionOp::Exec)), F::TRANSACTION_CONTROL),
    with(command("watch", -2, TRANSACTION, ALL_KEYS, "transactions", "2.2.0", "Monitors changes to keys to determine the execution of a transaction.", Transaction(TransactionOp::Watch)), F::TRANSACTION_CONTROL),
    command("unwatch", 1, TRANSACTION, NO_KEYS, "transactions", "2.2.0", "Forgets about watched keys of a transaction.", Transaction(TransactionOp::Unwatch)),
    with(command("discard", 1, TRANSACTION, NO_KEYS, "transactions", "2.0.0", "Discards a transaction.", Transaction(TransactionOp::Discard)), F::TRANSACTION_CONTROL),
    command("client", -2, F::SENTINEL, NO_KEYS, "connection", "2.4.0", "A container for client connection commands.", Server(ServerOp::Client)),
    in_categories(command("readonly", 1, LOADING_STALE_FAST, NO_KEYS, "cluster", "3.0.0", "Enables read queries for a connection to a cluster replica node", Connection(connection::cluster_only)), AclCategories::CONNECTION),
    in_categories(command("readwrite", 1, LOADING_STALE_FAST, NO_KEYS, "cluster", "3.0.0", "Disables read queries for a connection to a cluster replica node", Connection(connection::cluster_only)), AclCategories::CONNECTION),
    // server
    in_categories(command("swapdb", 3, W_FAST, NO_KEYS, "server", "4.0.0", "Swaps two Redis databases.", Server(ServerOp::SwapDb)), AclCategories::KEYSPACE),
    command("command", -1, LOADING_STALE, NO_KEYS, "server", "2.8.13", "Returns detailed information about all commands.", Connection(server::command)),
    command("info", -1, LOADING_STALE, NO_KEYS, "server", "1.0.0", "Returns information and statistics about the server.", Server(ServerOp::Info)),
    redacts(command("config", -2, ADMIN, NO_KEYS, "server", "2.0.0", "A container for server configuration commands.", Server(ServerOp::Config)), redact::config),
    in_categories(command("dbsize", 1, R_FAST, NO_KEYS, "server", "1.0.0", "Returns the number of keys in the database.", Server(ServerOp::DbSize)), AclCategories::KEYSPACE),
    in_categories(command("flushdb", -1, W, NO_KEYS, "server", "1.0.0", "Removes all keys from the current database.", Server(ServerOp::FlushDb)), AclCategories::KEYSPACE),
    in_categories(command("flushall", -1, W, NO_KEYS, "server", "1.0.0", "Removes all keys from all databases.", Server(ServerOp::FlushAll)), AclCategories::KEYSPACE),
    command("time", 1, LOADING_STALE_FAST, NO_KEYS, "server", "2.6.0", "Returns the server time.", Connection(server::time)),
    with(command("save", 1, F::ADMIN.union(F::NOSCRIPT), NO_KEYS, "server", "1.0.0", "Synchronously saves the database(s) to disk.", Server(ServerOp::Save)), F::NO_MULTI),
    command("bgsave", -1, F::ADMIN.union(F::NOSCRIPT), NO_KEYS, "server", "1.0.0", "Asynchronously saves the database(s) to disk.", Server(ServerOp::BgSave)),
    command("bgrewriteaof", 1, F::ADMIN.union(F::NOSCRIPT), NO_KEYS, "server", "1.0.0", "Asynchronously rewrites the append-only file to disk.", Server(ServerOp::BgRewriteAof)),
    command("lastsave", 1, LOADING_STALE_FAST, NO_KEYS, "server", "1.0.0", "Returns the Unix timestamp of the last successful save to disk.", Connection(server::lastsave)),
    with(command("shutdown", -1, ADMIN, NO_KEYS, "server", "1.0.0", "Synchronously saves the database(s) to disk and shuts down the Redis server.", Server(ServerOp::Shutdown)), F::NO_MULTI.union(F::ALLOW_BUSY)),
    // Replication: Ember is a primary without replicas.
    categorized(command("wait", 3, F::NOSCRIPT, NO_KEYS, "generic", "3.0.0", "Blocks until the asynchronous replication of all preceding write commands sent by the connection is completed.", Server(ServerOp::Wait)), AclCategories::SLOW.union(AclCategories::CONNECTION)),
    categorized(command("waitaof", 4, F::NOSCRIPT, NO_KEYS, "generic", "7.2.0", "Blocks until all of the preceding write commands sent by the connection are written to the append-only file of the master and/or replicas.", Server(ServerOp::WaitAof)), AclCategories::SLOW.union(AclCategories::CONNECTION)),
    command("replicaof", 3, NO_REPLICATION, NO_KEYS, "server", "5.0.0", "Configures a server as replica of another, or promotes it to a master.", Connection(server::replicaof)),
    command("slaveof", 3, NO_REPLICATION, NO_KEYS, "server", "1.0.0", "Sets a Redis server as a replica of another, or promotes it to being a master.", Connection(server::replicaof)),
    command("failover", -1, NO_REPLICATION, NO_KEYS, "server", "6.2.0", "Starts a coordinated failover from a server to one of its replicas.", Connection(server::failover)),
    command("module", -2, F::empty(), NO_KEYS, "server", "4.0.0", "A container for module commands.", Connection(server::module)),
    in_categories(command("role", 1, F::NOSCRIPT.union(LOADING_STALE_FAST), NO_KEYS, "server", "2.8.12", "Returns the replication role.", Connection(server::role)), AclCategories::ADMIN.union(AclCategories::DANGEROUS)),
    command("debug", -2, ADMIN, NO_KEYS, "server", "1.0.0", "A container for debugging commands.", Server(ServerOp::Debug)),
    command("monitor", 1, ADMIN, NO_KEYS, "server", "1.0.0", "Listens for all requests received by the server in real-time.", Connection(monitor::monitor)),
    command("slowlog", -2, ADMIN, NO_KEYS, "server", "2.2.12", "A container for slow log commands.", Server(ServerOp::Slowlog)),
    command("latency", -2, ADMIN, NO_KEYS, "server", "2.8.13", "A container for latency diagnostics commands.", Server(ServerOp::Latency)),
    command("hotkeys", -2, ADMIN, NO_KEYS, "server", "8.6.0", "A container for hotkeys tracking commands.", Server(ServerOp::Hotkeys)),
    // strings
    command("get", 2, R_FAST, ONE_KEY, "string", "1.0.0", "Returns the string value of a key.", Ks(strings::get)),
    command("set", -3, W_OOM, ONE_KEY, "string", "1.0.0", "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.", Ks(strings::set)),
    command("setnx", 3, W_OOM_FAST, ONE_KEY, "string", "1.0.0", "Set the string value of a key only when the key doesn't exist.", Ks(strings::setnx)),
    command("setex", 4, W_OOM, ONE_KEY, "string", "2.0.0", "Sets the string value and expiration time of a key. Creates the key if it doesn't exist.", Ks(strings::setex)),
    command("psetex", 4, W_OOM, ONE_KEY, "string", "2.6.0", "Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist.", Ks(strings::psetex)),
    command("getset", 3, W_OOM_FAST, ONE_KEY, "string", "1.0.0", "Returns the previous string value of a key after setting it to a new value.", Ks(strings::getset)),
    command("getdel", 2, W_FAST, ONE_KEY, "string", "6.2.0", "Returns the string value of a key after deleting the key.", Ks(strings::getdel)),
    command("getex", -2, W_FAST, ONE_KEY, "string", "6.2.0", "Returns the string value of a key after setting its expiration time.", Ks(strings::getex)),
    // Redis 8.4's compare-and-set family and Valkey 9.0's DELIFEQ.
    command("digest", 2, R_FAST, ONE_KEY, "string", "8.4.0", "Returns the XXH3 hash of a string value.", Ks(strings::digest)),
    command("delex", -2, W_FAST, ONE_KEY, "string", "8.4.0", "Conditionally removes the specified key based on value or digest comparison.", Ks(strings::delex)),
    command("delifeq", 3, W_FAST, ONE_KEY, "string", "9.0.0", "Delete key if value matches string.", Ks(strings::delifeq)),
    split(movable(command("msetex", -4, W_OOM, NO_KEYS, "string", "8.4.0", "Atomically sets multiple string keys with a shared expiration in a single operation. Supports flexible argument parsing where condition and expiration flags can appear in any order.", Ks(strings::msetex)), key_finders::count_then_pairs), Split::Scratch),
    split(command("mget", -2, R_FAST, ALL_KEYS, "string", "1.0.0", "Atomically returns the string values of one or more keys.", Ks(strings::mget)), Split::Gather),
    split(command("mset", -3, W_OOM, PAIRS, "string", "1.0.1", "Atomically creates or modifies the string values of one or more keys.", Ks(strings::mset)), Split::Pairs),
    split(command("msetnx", -3, W_OOM, PAIRS, "string", "1.0.1", "Atomically modifies the string values of one or more keys only when all keys don't exist.", Ks(strings::msetnx)), Split::Scratch),
    command("incr", 2, W_OOM_FAST, ONE_KEY, "string", "1.0.0", "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", Ks(strings::incr)),
    command("decr", 2, W_OOM_FAST, ONE_KEY, "string", "1.0.0", "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", Ks(strings::decr)),
    command("incrby", 3, W_OOM_FAST, ONE_KEY, "string", "1.0.0", "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.", Ks(strings::incrby)),
    command("decrby", 3, W_OOM_FAST, ONE_KEY, "string", "1.0.0", "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.", Ks(strings::decrby)),
    command("incrbyfloat", 3, W_OOM_FAST, ONE_KEY, "string", "2.6.0", "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist.", Ks(strings::incrbyfloat)),
    command("append", 3, W_OOM_FAST, ONE_KEY, "string", "2.0.0", "Appends a string to the value of a key. Creates the key if it doesn't exist.", Ks(strings::append)),
    command("strlen", 2, R_FAST, ONE_KEY, "string", "2.2.0", "Returns the length of a string value.", Ks(strings::strlen)),
    command("getrange", 4, R, ONE_KEY, "string", "2.4.0", "Returns a substring of the string stored at a key.", Ks(strings::getrange)),
    command("substr", 4, R, ONE_KEY, "string", "1.0.0", "Returns a substring from a string value.", Ks(strings::getrange)),
    command("setrange", 4, W_OOM, ONE_KEY, "string", "2.2.0", "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.", Ks(strings::setrange)),
    split(command("lcs", -3, R, TWO_KEYS, "string", "7.0.0", "Finds the longest common substring.", Ks(strings::lcs)), Split::Scratch),
    // sets
    command("sadd", -3, W_OOM_FAST, ONE_KEY, "set", "1.0.0", "Adds one or more members to a set. Creates the key if it doesn't exist.", Ks(sets::sadd)),
    command("srem", -3, W_FAST, ONE_KEY, "set", "1.0.0", "Removes one or more members from a set. Deletes the set if the last member was removed.", Ks(sets::srem)),
    command("smembers", 2, R, ONE_KEY, "set", "1.0.0", "Returns all members of a set.", Ks(sets::smembers)),
    command("sismember", 3, R_FAST, ONE_KEY, "set", "1.0.0", "Determines whether a member belongs to a set.", Ks(sets::sismember)),
    command("smismember", -3, R_FAST, ONE_KEY, "set", "6.2.0", "Determines whether multiple members belong to a set.", Ks(sets::smismember)),
    command("scard", 2, R_FAST, ONE_KEY, "set", "1.0.0", "Returns the number of members in a set.", Ks(sets::scard)),
    command("srandmember", -2, R, ONE_KEY, "set", "1.0.0", "Get one or multiple random members from a set", Ks(sets::srandmember)),
    command("spop", -2, W_FAST, ONE_KEY, "set", "1.0.0", "Returns one or more random members from a set after removing them. Deletes the set if the last member was popped.", Ks(sets::spop)),
    // sorted sets
    command("zadd", -4, W_OOM_FAST, ONE_KEY, "sorted_set", "1.2.0", "Adds one or more members to a sorted set, or updates their scores. Creates the key if it doesn't exist.", Ks(zsets::zadd)),
    command("zincrby", 4, W_OOM_FAST, ONE_KEY, "sorted_set", "1.2.0", "Increments the score of a member in a sorted set.", Ks(zsets::zincrby)),
    command("zrem", -3, W_FAST, ONE_KEY, "sorted_set", "1.2.0", "Removes one or more members from a sorted set. Deletes the sorted set if all members were removed.", Ks(zsets::zrem)),
    command("zscore", 3, R_FAST, ONE_KEY, "sorted_set", "1.2.0", "Returns the score of a member in a sorted set.", Ks(zsets::zscore)),
    command("zmscore", -3, R_FAST, ONE_KEY, "sorted_set", "6.2.0", "Returns the score of one or more members in a sorted set.", Ks(zsets::zmscore)),
    command("zcard", 2, R_FAST, ONE_KEY, "sorted_set", "1.2.0", "Returns the number of members in a sorted set.", Ks(zsets::zcard)),
    command("zrank", -3, R_FAST, ONE_KEY, "sorted_set", "2.0.0", "Returns the index of a member in a sorted set ordered by ascending scores.", Ks(zsets::zrank)),
    command("zrevrank", -3, R_FAST, ONE_KEY, "sorted_set", "2.0.0", "Returns the index of a member in a sorted set ordered by descending scores.", Ks(zsets::zrevrank)),
    command("zcount", 4, R_FAST, ONE_KEY, "sorted_set", "2.0.0", "Returns the count of members in a sorted set that have scores within a range.", Ks(zsets::zcount)),
    command("zlexcount", 4, R_FAST, ONE_KEY, "sorted_set", "2.8.9", "Returns the number of members in a sorted set within a lexicographical range.", Ks(zsets::zlexcount)),
    command("zrange", -4, R, ONE_KEY, "sorted_set", "1.2.0", "Returns members in a sorted set within a range of indexes.", Ks(zsets::zrange)),
    command("zrevrange", -4, R, ONE_KEY, "sorted_set", "1.2.0", "Returns members in a sorted set within a range of indexes in reverse order.", Ks(zsets::zrevrange)),
    command("zrangebyscore", -4, R, ONE_KEY, "sorted_set", "1.0.5", "Returns members in a sorted set within a range of scores.", Ks(zsets::zrangebyscore)),
    command("zrevrangebyscore", -4, R, ONE_KEY, "sorted_set", "2.2.0", "Returns members in a sorted set within a range of scores in reverse order.", Ks(zsets::zrevrangebyscore)),
    command("zrangebylex", -4, R, ONE_KEY, "sorted_set", "2.8.9", "Returns members in a sorted set within a lexicographical range.", Ks(zsets::zrangebylex)),
    command("zrevrangebylex", -4, R, ONE_KEY, "sorted_set", "2.8.9", "Returns members in a sorted set within a lexicographical range in reverse order.", Ks(zsets::zrevrangebylex)),
    // keys
    split(command("del", -2, W, ALL_KEYS, "generic", "1.0.0", "Deletes one or more keys.", Ks(keys::del)), Split::Sum),
    split(command("unlink", -2, W_FAST, ALL_KEYS, "generic", "4.0.0", "Asynchronously deletes one or more keys.", Ks(keys::del)), Split::Sum),
    split(command("exists", -2, R_FAST, ALL_KEYS, "generic", "1.0.0", "Determines whether one or more keys exist.", Ks(keys::exists)), Split::Sum),
    split(command("touch", -2, R_FAST, ALL_KEYS, "generic", "3.2.1", "Returns the number of existing keys out of those specified after updating the time they were last accessed.", Ks(keys::touch)), Split::Sum),
    command("type", 2, R_FAST, ONE_KEY, "generic", "1.0.0", "Determines the type of value stored at a key.", Ks(keys::type_of)),
    command("expire", -3, W_FAST, ONE_KEY, "generic", "1.0.0", "Sets the expiration time of a key in seconds.", Ks(keys::expire)),
    command("pexpire", -3, W_FAST, ONE_KEY, "generic", "2.6.0", "Sets the expiration time of a key in milliseconds.", Ks(keys::pexpire)),
    command("expireat", -3, W_FAST, ONE_KEY, "generic", "1.2.0", "Sets the expiration time of a key to a Unix timestamp.", Ks(keys::expireat)),
    command("pexpireat", -3, W_FAST, ONE_KEY, "generic", "2.6.0", "Sets the expiration time of a key to a Unix milliseconds timestamp.", Ks(keys::pexpireat)),
    command("ttl", 2, R_FAST, ONE_KEY, "generic", "1.0.0", "Returns the expiration time in seconds of a key.", Ks(keys::ttl)),
    command("pttl", 2, R_FAST, ONE_KEY, "generic", "2.6.0", "Returns the expiration time in milliseconds of a key.", Ks(keys::pttl)),
    command("expiretime", 2, R_FAST, ONE_KEY, "generic", "7.0.0", "Returns the expiration time of a key as a Unix timestamp.", Ks(keys::expiretime)),
    command("pexpiretime", 2, R_FAST, ONE_KEY, "generic", "7.0.0", "Returns the expiration time of a key as a Unix milliseconds timestamp.", Ks(keys::pexpiretime)),
    command("persist", 2, W_FAST, ONE_KEY, "generic", "2.2.0", "Removes the expiration time of a key.", Ks(keys::persist)),
    split(command("rename", 3, W, TWO_KEYS, "generic", "1.0.0", "Renames a key and overwrites the destination.", Ks(keys::rename)), Split::Scratch),
    split(command("renamenx", 3, W_FAST, TWO_KEYS, "generic", "1.0.0", "Renames a key only when the target key name doesn't exist.", Ks(keys::renamenx)), Split::Scratch),
    split(with(command("copy", -3, W_OOM, TWO_KEYS, "generic", "6.2.0", "Copies the value of a key to a new key.", Ks(keys::copy)), F::DB_OPTION), Split::Scratch),
    command("move", 3, W_FAST, ONE_KEY, "generic", "1.0.0", "Moves a key to another database.", Ks(keys::move_key)),
    command("keys", 2, R, NO_KEYS, "generic", "1.0.0", "Returns all key names that match a pattern.", Server(ServerOp::Keys)),
    command("scan", -2, R, NO_KEYS, "generic", "2.8.0", "Iterates over the key names in the database.", Server(ServerOp::Scan)),
    command("randomkey", 1, R, NO_KEYS, "generic", "1.0.0", "Returns a random key name from the database.", Server(ServerOp::RandomKey)),
    command("memory", -2, R, SECOND_ARG_KEY, "server", "4.0.0", "A container for memory diagnostics commands.", Server(ServerOp::Memory)),
    command("dump", 2, R, ONE_KEY, "generic", "2.6.0", "Returns a serialized representation of the value stored at a key.", Ks(dump::dump)),
    in_categories(command("restore", -4, W_OOM, ONE_KEY, "generic", "2.6.0", "Creates a key from the serialized representation of a value.", Ks(dump::restore)), AclCategories::DANGEROUS),
    in_categories(command("restore-asking", -4, W_OOM, ONE_KEY, "server", "3.0.0", "An internal command for migrating keys in a cluster.", Ks(dump::restore)), AclCategories::DANGEROUS.union(AclCategories::KEYSPACE)),
    command("object", -2, R, SECOND_ARG_KEY, "generic", "2.2.3", "A container for object introspection commands.", Ks(keys::object)),
    // inference (RedisAI's commands and RECOMMEND); keys are routed inside the handlers
    command("ai.tensorset", -4, W_OOM, ONE_KEY, "inference", "1.2.7", "Stores a tensor.", Inference(InferenceOp::TensorSet)),
    command("ai.tensorget", -2, R, ONE_KEY, "inference", "1.2.7", "Returns a tensor's metadata, blob or values.", Inference(InferenceOp::TensorGet)),
    command("ai.modelstore", -6, W_OOM, ONE_KEY, "inference", "1.2.7", "Stores an ONNX model; every shard builds a session for it.", Inference(InferenceOp::ModelStore)),
    command("ai.modelget", -2, R, ONE_KEY, "inference", "1.2.7", "Returns a model's metadata or blob.", Inference(InferenceOp::ModelGet)),
    command("ai.modeldel", 2, W, ONE_KEY, "inference", "1.2.7", "Deletes a model.", Inference(InferenceOp::ModelDel)),
    command("ai.modelexecute", -8, W, ONE_KEY, "inference", "1.2.7", "Runs a model on input tensors, through the shard's dynamic batcher.", Inference(InferenceOp::ModelExecute)),
    command("ai.info", -1, R, NO_KEYS, "inference", "1.2.7", "Returns RedisAI's version, or a model's run statistics and batching figures.", Inference(InferenceOp::Info)),
    command("recommend", -6, R, NO_KEYS, "inference", "0.1.0", "Scores candidates for a user with a dense model over embedding rows in the keyspace; returns the top k.", Inference(InferenceOp::Recommend)),
];

/// Longest command name looked up; longer names are unknown without a copy.
const COMMAND_NAME_LEN_MAX: usize = 32;

/// FNV-1a over a command name: every request looks its name up, and names are a few bytes,
/// where SipHash's setup and finalisation cost more than the lookup itself (the map holds
/// only the table's own names, so no peer chooses its keys).
#[derive(Default)]
struct NameHasher(u64);

impl std::hash::Hasher for NameHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut hash = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &byte in bytes {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = hash;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type NameMap = HashMap<&'static [u8], usize, std::hash::BuildHasherDefault<NameHasher>>;

static BY_NAME: LazyLock<NameMap> = LazyLock::new(|| {
    COMMANDS
        .iter()
        .enumerate()
        .map(|(index, spec)| (spec.name.as_bytes(), index))
        .collect()
});

/// Finds a command by name, any case, returning its table index.
pub fn lookup(name: &[u8]) -> Option<usize> {
    if name.len() > COMMAND_NAME_LEN_MAX {
        return None;
    }
    let mut lower = [0u8; COMMAND_NAME_LEN_MAX];
    for (slot, byte) in lower.iter_mut().zip(name) {
        *slot = byte.to_ascii_lowercase();
    }
    BY_NAME.get(&lower[..name.len()]).copied()
}

/// True for a command that may block its client (BLPOP and its kin, XREAD and XREADGROUP):
/// the connection sends the replies of the commands before it first, as Redis does for a
/// client it blocks. The first-letter test keeps the table lookup off every other command's
/// path (the table test `blocking_commands_start_with_b_or_x` holds the table to it).
pub fn may_block(name: &[u8]) -> bool {
    matches!(
        name.first().map(u8::to_ascii_lowercase),
        Some(BLOCKING_FIRST_LETTER_LIST | BLOCKING_FIRST_LETTER_STREAM)
    ) && lookup(name).is_some_and(|index| COMMANDS[index].has(CommandFlags::BLOCKING))
}

/// The first letter of every blocking list and sorted-set command (BLPOP, BZPOPMIN...).
const BLOCKING_FIRST_LETTER_LIST: u8 = b'b';
/// The first letter of the blocking stream commands (XREAD, XREADGROUP).
const BLOCKING_FIRST_LETTER_STREAM: u8 = b'x';

/// True when `arg_count` arguments satisfy `arity`.
pub fn arity_ok(arity: i32, arg_count: usize) -> bool {
    if arity >= 0 {
        arg_count == arity as usize
    } else {
        arg_count >= arity.unsigned_abs() as usize
    }
}

/// The name in Redis's arity error for a request of `arg_count` arguments to command `index`,
/// which runs as catalogue id `id` (its subcommand's, for a container's subcommand): the
/// command's name when its own arity refuses the count, else the subcommand's full name
/// (`config|get`) when the subcommand's arity does, as Redis 7's lookup checks both; None when
/// the count fits.
pub fn arity_refusal(index: usize, id: usize, arg_count: usize) -> Option<&'static str> {
    if !arity_ok(COMMANDS[index].arity, arg_count) {
        return Some(COMMANDS[index].name);
    }
    let subcommand = &acl::CATALOGUE.commands[id];
    (id != index && !arity_ok(subcommand.arity, arg_count)).then_some(subcommand.fullname.as_str())
}

/// Redis's reply to an unknown command.
pub fn unknown_command_message(args: &[&[u8]]) -> String {
    let name = String::from_utf8_lossy(&args[0][..args[0].len().min(128)]).into_owned();
    let mut message = format!("ERR unknown command '{name}', with args beginning with: ");
    for arg in &args[1..] {
        if message.len() >= 128 + 60 {
            break;
        }
        let shown = &arg[..arg.len().min(128)];
        message.push_str(&format!("'{}' ", String::from_utf8_lossy(shown)));
    }
    message
}

/// Redis's reply to a wrong argument count.
pub fn arity_message(name: &str) -> String {
    format!("ERR wrong number of arguments for '{name}' command")
}

/// Redis's reply to an unknown subcommand.
pub fn unknown_subcommand_message(container: &str, subcommand: &[u8]) -> String {
    format!(
        "ERR unknown subcommand '{}'. Try {} HELP.",
        String::from_utf8_lossy(&subcommand[..subcommand.len().min(128)]),
        container.to_ascii_uppercase()
    )
}

/// Parses an integer argument as Redis does (`string2ll`).
///
/// # Errors
/// [`errors::NOT_INTEGER`].
pub fn parse_integer(arg: &[u8]) -> Result<i64, CommandError> {
    ember_resp::parse_i64(arg).ok_or_else(|| errors::NOT_INTEGER.into())
}

/// Parses a float argument as Redis's `strtold`-based parser: no spaces, no NaN.
///
/// # Errors
/// [`errors::NOT_FLOAT`].
pub fn parse_float(arg: &[u8]) -> Result<f64, CommandError> {
    let text = std::str::from_utf8(arg).map_err(|_| CommandError::from(errors::NOT_FLOAT))?;
    if text.is_empty()
        || text.starts_with(char::is_whitespace)
        || text.ends_with(char::is_whitespace)
    {
        return Err(errors::NOT_FLOAT.into());
    }
    let value: f64 = match text.to_ascii_lowercase().as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
        "-inf" | "-infinity" => f64::NEG_INFINITY,
        lower if lower.contains("nan") => return Err(errors::NOT_FLOAT.into()),
        _ => text
            .parse()
            .map_err(|_| CommandError::from(errors::NOT_FLOAT))?,
    };
    Ok(value)
}

/// True when `arg` equals `word`, ignoring ASCII case.
pub fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocking_commands_start_with_b_or_x() {
        for spec in COMMANDS
            .iter()
            .filter(|spec| spec.has(CommandFlags::BLOCKING))
        {
            assert!(
                may_block(spec.name.as_bytes()),
                "{} blocks but may_block misses it: give may_block its first letter",
                spec.name
            );
        }
        let cases: &[(&[u8], bool)] = &[
            (b"BRPOPLPUSH", true),
            (b"bzpopmin", true),
            (b"XREAD", true),
            (b"xreadgroup", true),
            (b"bitcount", false),
            (b"xadd", false),
            (b"get", false),
            (b"", false),
        ];
        for &(name, expected) in cases {
            assert_eq!(
                may_block(name),
                expected,
                "{}",
                String::from_utf8_lossy(name)
            );
        }
    }

    #[test]
    fn key_positions() {
        let cases: &[(KeySpec, usize, &[usize])] = &[
            (ONE_KEY, 2, &[1]),
            (ALL_KEYS, 4, &[1, 2, 3]),
            (PAIRS, 5, &[1, 3]),
            (TWO_KEYS, 3, &[1, 2]),
            (TWO_KEYS, 5, &[1, 2]),
            (SECOND_ARG_KEY, 3, &[2]),
            (SECOND_ARG_KEY, 2, &[]),
            (NO_KEYS, 3, &[]),
        ];
        for (spec, count, expected) in cases {
            assert_eq!(
                spec.positions(*count).collect::<Vec<_>>(),
                *expected,
                "{spec:?} with {count}"
            );
        }
    }

    #[test]
    fn lookup_any_case() {
        assert_eq!(COMMANDS[lookup(b"GeT").unwrap()].name, "get");
        assert!(lookup(b"nosuchcommand").is_none());
        assert!(lookup(&[b'a'; 100]).is_none());
        assert!(COMMANDS[lookup(b"auth").unwrap()].has(CommandFlags::NO_AUTH));
        assert!(!COMMANDS[lookup(b"get").unwrap()].has(CommandFlags::NO_AUTH));
    }

    #[test]
    fn messages() {
        assert_eq!(
            unknown_command_message(&[b"foo", b"a", b"b"]),
            "ERR unknown command 'foo', with args beginning with: 'a' 'b' "
        );
        assert_eq!(
            arity_message("get"),
            "ERR wrong number of arguments for 'get' command"
        );
    }
}
