//! Redis 7's key specifications: for each command (and each container's subcommand) where its
//! keys are and what it does with them (RO/RW/OW/RM and ACCESS, UPDATE, INSERT, DELETE...).
//! COMMAND INFO shows them in Redis's shape, COMMAND GETKEYSANDFLAGS reads their flags, and
//! their search types say which commands have "movablekeys". The command table takes each
//! command's entry from [`of`] when it is built; routing keeps using [`super::KeySpec`] and the
//! key finders, and a key's flags come from the specification that names its position.
//!
//! The entries are Redis 7.0.15's (its COMMAND output), plus the hash field-expiry commands of
//! Redis 7.4, the stream deletions of Redis 8.2 (XDELEX, XACKDEL) and the compare-and-set family
//! of Redis 8.4 (DIGEST, DELEX, MSETEX, with Valkey's DELIFEQ as DELEX); commands Redis does not have get one specification derived from their flags.

use std::borrow::Cow;

use super::{CommandFlags, CommandSpec};

bitflags::bitflags! {
    /// What a command does with a key (Redis's `CMD_KEY_*`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct KeyFlags: u16 {
        /// Read-only: reads the value, changes nothing.
        const RO = 1 << 0;
        /// Read-write: reads and changes the value.
        const RW = 1 << 1;
        /// Overwrite: changes the value without reading it.
        const OW = 1 << 2;
        /// Remove: deletes the key.
        const RM = 1 << 3;
        /// Returns, copies or uses the user data of the value.
        const ACCESS = 1 << 4;
        /// Updates data of the value (sets a new value, changes part of it).
        const UPDATE = 1 << 5;
        /// Adds data to the value and never changes what was there.
        const INSERT = 1 << 6;
        /// Deletes data from the value.
        const DELETE = 1 << 7;
        /// Not a key: a name in the key's slot (SPUBLISH's channel).
        const NOT_KEY = 1 << 8;
        /// The specification may miss keys (MIGRATE's KEYS).
        const INCOMPLETE = 1 << 9;
        /// The flags depend on the arguments (SET with GET, BITFIELD with SET).
        const VARIABLE_FLAGS = 1 << 10;
    }
}

/// Redis's names of the key flags, in its order.
const FLAG_NAMES: &[(KeyFlags, &str)] = &[
    (KeyFlags::RO, "RO"),
    (KeyFlags::RW, "RW"),
    (KeyFlags::OW, "OW"),
    (KeyFlags::RM, "RM"),
    (KeyFlags::ACCESS, "access"),
    (KeyFlags::UPDATE, "update"),
    (KeyFlags::INSERT, "insert"),
    (KeyFlags::DELETE, "delete"),
    (KeyFlags::NOT_KEY, "not_key"),
    (KeyFlags::INCOMPLETE, "incomplete"),
    (KeyFlags::VARIABLE_FLAGS, "variable_flags"),
];

impl KeyFlags {
    /// The flag names set, in Redis's order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        FLAG_NAMES
            .iter()
            .filter(move |(flag, _)| self.contains(*flag))
            .map(|(_, name)| *name)
    }
}

/// Where the search for a specification's keys begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begin {
    /// At this argument.
    Index(i32),
    /// After this keyword, searched from the argument given (from the end when negative).
    Keyword(&'static str, i32),
    /// Only the command knows (SORT's STORE).
    Unknown,
}

/// Which keys follow where the search began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Find {
    /// `(lastkey, keystep, limit)`: up to `lastkey` after the first (from the end when
    /// negative), every `keystep`; a `limit` above 1 takes that fraction of what is left.
    Range(i32, i32, i32),
    /// `(keynumidx, firstkey, keystep)`: a key count at `keynumidx`, the keys from `firstkey`.
    KeyNum(i32, i32, i32),
    /// Only the command knows.
    Unknown,
}

/// One key specification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySpecDef {
    /// What the command does with these keys.
    pub flags: KeyFlags,
    /// Where the search begins.
    pub begin: Begin,
    /// Which keys follow.
    pub find: Find,
    /// Redis's note, or empty.
    pub notes: &'static str,
}

const fn spec(flags: KeyFlags, begin: Begin, find: Find, notes: &'static str) -> KeySpecDef {
    KeySpecDef {
        flags,
        begin,
        find,
        notes,
    }
}

const NOT_KEY: KeyFlags = KeyFlags::NOT_KEY;
const OW_INSERT: KeyFlags = KeyFlags::OW.union(KeyFlags::INSERT);
const OW_UPDATE: KeyFlags = KeyFlags::OW.union(KeyFlags::UPDATE);
const RM_DELETE: KeyFlags = KeyFlags::RM.union(KeyFlags::DELETE);
const RO: KeyFlags = KeyFlags::RO;
const RO_ACCESS: KeyFlags = KeyFlags::RO.union(KeyFlags::ACCESS);
const RW_ACCESS: KeyFlags = KeyFlags::RW.union(KeyFlags::ACCESS);
const RW_ACCESS_DELETE: KeyFlags = KeyFlags::RW.union(KeyFlags::ACCESS).union(KeyFlags::DELETE);
const RW_ACCESS_INSERT: KeyFlags = KeyFlags::RW.union(KeyFlags::ACCESS).union(KeyFlags::INSERT);
const RW_ACCESS_UPDATE: KeyFlags = KeyFlags::RW.union(KeyFlags::ACCESS).union(KeyFlags::UPDATE);
const RW_ACCESS_UPDATE_VARIABLE_FLAGS: KeyFlags = KeyFlags::RW
    .union(KeyFlags::ACCESS)
    .union(KeyFlags::UPDATE)
    .union(KeyFlags::VARIABLE_FLAGS);
const RW_DELETE: KeyFlags = KeyFlags::RW.union(KeyFlags::DELETE);
const RW_DELETE_VARIABLE_FLAGS: KeyFlags = KeyFlags::RW
    .union(KeyFlags::DELETE)
    .union(KeyFlags::VARIABLE_FLAGS);
const RW_INSERT: KeyFlags = KeyFlags::RW.union(KeyFlags::INSERT);
const RW_UPDATE: KeyFlags = KeyFlags::RW.union(KeyFlags::UPDATE);

/// The key specifications of a command (`get`) or a container's subcommand (`object|freq`),
/// lower-case; empty for commands without keys and commands Redis does not have.
#[rustfmt::skip]
pub const fn of(name: &str) -> &'static [KeySpecDef] {
    match name.as_bytes() {
        b"append" => const { &[spec(RW_INSERT, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"bitcount" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"bitfield" => const { &[spec(RW_ACCESS_UPDATE_VARIABLE_FLAGS, Begin::Index(1), Find::Range(0, 1, 0), "This command allows both access and modification of the key")] },
        b"bitfield_ro" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"bitop" => const { &[
            spec(OW_UPDATE, Begin::Index(2), Find::Range(0, 1, 0), ""),
            spec(RO_ACCESS, Begin::Index(3), Find::Range(-1, 1, 0), ""),
        ] },
        b"bitpos" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"blmove" => const { &[
            spec(RW_ACCESS_DELETE, Begin::Index(1), Find::Range(0, 1, 0), ""),
            spec(RW_INSERT, Begin::Index(2), Find::Range(0, 1, 0), ""),
        ] },
        b"blmpop" => const { &[spec(RW_ACCESS_DELETE, Begin::Index(2), Find::KeyNum(0, 1, 1), "")] },
        b"blpop" => const { &[spec(RW_ACCESS_DELETE, Begin::Index(1), Find::Range(-2, 1, 0), "")] },
        b"brpop" => const { &[spec(RW_ACCESS_DELETE, Begin::Index(1), Find::Range(-2, 1, 0), "")] },
        b"brpoplpush" => const { &[
            spec(RW_ACCESS_DELETE, Begin::Index(1), Find::Range(0, 1, 0), ""),
            spec(RW_INSERT, Begin::Index(2), Find::Range(0, 1, 0), ""),
        ] },
        b"bzmpop" => const { &[spec(RW_ACCESS_DELETE, Begin::Index(2), Find::KeyNum(0, 1, 1), "")] },
        b"bzpopmax" => const { &[spec(RW_ACCESS_DELETE, Begin::Index(1), Find::Range(-2, 1, 0), "")] },
        b"bzpopmin" => const { &[spec(RW_ACCESS_DELETE, Begin::Index(1), Find::Range(-2, 1, 0), "")] },
        b"copy" => const { &[
            spec(RO_ACCESS, Begin::Index(1), Find::Range(0, 1, 0), ""),
            spec(OW_UPDATE, Begin::Index(2), Find::Range(0, 1, 0), ""),
        ] },
        b"decr" => const { &[spec(RW_ACCESS_UPDATE, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"decrby" => const { &[spec(RW_ACCESS_UPDATE, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"delex" => const { &[spec(RW_DELETE_VARIABLE_FLAGS, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"delifeq" => const { &[spec(RW_DELETE_VARIABLE_FLAGS, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"digest" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"del" => const { &[spec(RM_DELETE, Begin::Index(1), Find::Range(-1, 1, 0), "")] },
        b"dump" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"eval" => const { &[spec(RW_ACCESS_UPDATE, Begin::Index(2), Find::KeyNum(0, 1, 1), "We cannot tell how the keys will be used so we assume the worst, RW and UPDATE")] },
        b"eval_ro" => const { &[spec(RO_ACCESS, Begin::Index(2), Find::KeyNum(0, 1, 1), "We cannot tell how the keys will be used so we assume the worst, RO and ACCESS")] },
        b"evalsha" => const { &[spec(RW_ACCESS_UPDATE, Begin::Index(2), Find::KeyNum(0, 1, 1), "")] },
        b"evalsha_ro" => const { &[spec(RO_ACCESS, Begin::Index(2), Find::KeyNum(0, 1, 1), "")] },
        b"exists" => const { &[spec(RO, Begin::Index(1), Find::Range(-1, 1, 0), "")] },
        b"expire" => const { &[spec(RW_UPDATE, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"expireat" => const { &[spec(RW_UPDATE, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"expiretime" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"fcall" => const { &[spec(RW_ACCESS_UPDATE, Begin::Index(2), Find::KeyNum(0, 1, 1), "We cannot tell how the keys will be used so we assume the worst, RW and UPDATE")] },
        b"fcall_ro" => const { &[spec(RO_ACCESS, Begin::Index(2), Find::KeyNum(0, 1, 1), "We cannot tell how the keys will be used so we assume the worst, RO and ACCESS")] },
        b"geoadd" => const { &[spec(RW_UPDATE, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"geodist" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"geohash" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"geopos" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"georadius" => const { &[
            spec(RO_ACCESS, Begin::Index(1), Find::Range(0, 1, 0), ""),
            spec(OW_UPDATE, Begin::Keyword("STORE", 6), Find::Range(0, 1, 0), ""),
            spec(OW_UPDATE, Begin::Keyword("STOREDIST", 6), Find::Range(0, 1, 0), ""),
        ] },
        b"georadius_ro" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"georadiusbymember" => const { &[
            spec(RO_ACCESS, Begin::Index(1), Find::Range(0, 1, 0), ""),
            spec(OW_UPDATE, Begin::Keyword("STORE", 5), Find::Range(0, 1, 0), ""),
            spec(OW_UPDATE, Begin::Keyword("STOREDIST", 5), Find::Range(0, 1, 0), ""),
        ] },
        b"georadiusbymember_ro" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"geosearch" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"geosearchstore" => const { &[
            spec(OW_UPDATE, Begin::Index(1), Find::Range(0, 1, 0), ""),
            spec(RO_ACCESS, Begin::Index(2), Find::Range(0, 1, 0), ""),
        ] },
        b"get" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"getbit" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"getdel" => const { &[spec(RW_ACCESS_DELETE, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"getex" => const { &[spec(RW_ACCESS_UPDATE, Begin::Index(1), Find::Range(0, 1, 0), "RW and UPDATE because it changes the TTL")] },
        b"getrange" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"getset" => const { &[spec(RW_ACCESS_UPDATE, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"hdel" => const { &[spec(RW_DELETE, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"hexists" => const { &[spec(RO, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"hget" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"hgetall" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"hincrby" => const { &[spec(RW_ACCESS_UPDATE, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"hincrbyfloat" => const { &[spec(RW_ACCESS_UPDATE, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"hkeys" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"hlen" => const { &[spec(RO, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"hmget" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"hmset" => const { &[spec(RW_UPDATE, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"hrandfield" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"hscan" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"hset" => const { &[spec(RW_UPDATE, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"hsetnx" => const { &[spec(RW_INSERT, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"hstrlen" => const { &[spec(RO, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"hvals" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"incr" => const { &[spec(RW_ACCESS_UPDATE, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"incrby" => const { &[spec(RW_ACCESS_UPDATE, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"incrbyfloat" => const { &[spec(RW_ACCESS_UPDATE, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"lcs" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::Range(1, 1, 0), "")] },
        b"lindex" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"linsert" => const { &[spec(RW_INSERT, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"llen" => const { &[spec(RO, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"lmove" => const { &[
            spec(RW_ACCESS_DELETE, Begin::Index(1), Find::Range(0, 1, 0), ""),
            spec(RW_INSERT, Begin::Index(2), Find::Range(0, 1, 0), ""),
        ] },
        b"lmpop" => const { &[spec(RW_ACCESS_DELETE, Begin::Index(1), Find::KeyNum(0, 1, 1), "")] },
        b"lpop" => const { &[spec(RW_ACCESS_DELETE, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"lpos" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"lpush" => const { &[spec(RW_INSERT, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"lpushx" => const { &[spec(RW_INSERT, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"lrange" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"lrem" => const { &[spec(RW_DELETE, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"lset" => const { &[spec(RW_UPDATE, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"ltrim" => const { &[spec(RW_DELETE, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"memory|usage" => const { &[spec(RO, Begin::Index(2), Find::Range(0, 1, 0), "")] },
        b"migrate" => const { &[
            spec(RW_ACCESS_DELETE, Begin::Index(3), Find::Range(0, 1, 0), ""),
            spec(RW_ACCESS_DELETE.union(KeyFlags::INCOMPLETE), Begin::Keyword("KEYS", -2), Find::Range(-1, 1, 0), ""),
        ] },
        b"mget" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::Range(-1, 1, 0), "")] },
        b"move" => const { &[spec(RW_ACCESS_UPDATE, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"mset" => const { &[spec(OW_UPDATE, Begin::Index(1), Find::Range(-1, 2, 0), "")] },
        b"xackdel" => const { &[spec(KeyFlags::RW.union(KeyFlags::UPDATE).union(KeyFlags::DELETE), Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"xdelex" => const { &[spec(RW_DELETE, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"pfdebug" => const { &[spec(RW_ACCESS, Begin::Index(2), Find::Range(0, 1, 0), "")] },
        b"msetex" => const { &[spec(OW_UPDATE, Begin::Index(1), Find::KeyNum(0, 1, 2), "")] },
        b"msetnx" => const { &[spec(OW_INSERT, Begin::Index(1), Find::Range(-1, 2, 0), "")] },
        b"object|encoding" => const { &[spec(RO, Begin::Index(2), Find::Range(0, 1, 0), "")] },
        b"object|freq" => const { &[spec(RO, Begin::Index(2), Find::Range(0, 1, 0), "")] },
        b"object|idletime" => const { &[spec(RO, Begin::Index(2), Find::Range(0, 1, 0), "")] },
        b"object|refcount" => const { &[spec(RO, Begin::Index(2), Find::Range(0, 1, 0), "")] },
        b"persist" => const { &[spec(RW_UPDATE, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"pexpire" => const { &[spec(RW_UPDATE, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"pexpireat" => const { &[spec(RW_UPDATE, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"pexpiretime" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"pfadd" => const { &[spec(RW_INSERT, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"pfcount" => const { &[spec(RW_ACCESS, Begin::Index(1), Find::Range(-1, 1, 0), "RW because it may change the internal representation of the key, and propagate to replicas")] },
        b"pfmerge" => const { &[
            spec(RW_ACCESS_INSERT, Begin::Index(1), Find::Range(0, 1, 0), ""),
            spec(RO_ACCESS, Begin::Index(2), Find::Range(-1, 1, 0), ""),
        ] },
        b"psetex" => const { &[spec(OW_UPDATE, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"pttl" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"rename" => const { &[
            spec(RW_ACCESS_DELETE, Begin::Index(1), Find::Range(0, 1, 0), ""),
            spec(OW_UPDATE, Begin::Index(2), Find::Range(0, 1, 0), ""),
        ] },
        b"renamenx" => const { &[
            spec(RW_ACCESS_DELETE, Begin::Index(1), Find::Range(0, 1, 0), ""),
            spec(OW_INSERT, Begin::Index(2), Find::Range(0, 1, 0), ""),
        ] },
        b"restore" => const { &[spec(OW_UPDATE, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"restore-asking" => const { &[spec(OW_UPDATE, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"rpop" => const { &[spec(RW_ACCESS_DELETE, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"rpoplpush" => const { &[
            spec(RW_ACCESS_DELETE, Begin::Index(1), Find::Range(0, 1, 0), ""),
            spec(RW_INSERT, Begin::Index(2), Find::Range(0, 1, 0), ""),
        ] },
        b"rpush" => const { &[spec(RW_INSERT, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"rpushx" => const { &[spec(RW_INSERT, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"sadd" => const { &[spec(RW_INSERT, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"scard" => const { &[spec(RO, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"sdiff" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::Range(-1, 1, 0), "")] },
        b"sdiffstore" => const { &[
            spec(OW_UPDATE, Begin::Index(1), Find::Range(0, 1, 0), ""),
            spec(RO_ACCESS, Begin::Index(2), Find::Range(-1, 1, 0), ""),
        ] },
        b"set" => const { &[spec(RW_ACCESS_UPDATE_VARIABLE_FLAGS, Begin::Index(1), Find::Range(0, 1, 0), "RW and ACCESS due to the optional `GET` argument")] },
        b"setbit" => const { &[spec(RW_ACCESS_UPDATE, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"setex" => const { &[spec(OW_UPDATE, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"setnx" => const { &[spec(OW_INSERT, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"setrange" => const { &[spec(RW_UPDATE, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"sinter" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::Range(-1, 1, 0), "")] },
        b"sintercard" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::KeyNum(0, 1, 1), "")] },
        b"sinterstore" => const { &[
            spec(RW_UPDATE, Begin::Index(1), Find::Range(0, 1, 0), ""),
            spec(RO_ACCESS, Begin::Index(2), Find::Range(-1, 1, 0), ""),
        ] },
        b"sismember" => const { &[spec(RO, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"smembers" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"smismember" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"smove" => const { &[
            spec(RW_ACCESS_DELETE, Begin::Index(1), Find::Range(0, 1, 0), ""),
            spec(RW_INSERT, Begin::Index(2), Find::Range(0, 1, 0), ""),
        ] },
        b"sort" => const { &[
            spec(RO_ACCESS, Begin::Index(1), Find::Range(0, 1, 0), ""),
            spec(RO_ACCESS, Begin::Unknown, Find::Unknown, "For the optional BY/GET keyword. It is marked 'unknown' because the key names derive from the content of the key we sort"),
            spec(OW_UPDATE, Begin::Unknown, Find::Unknown, "For the optional STORE keyword. It is marked 'unknown' because the keyword can appear anywhere in the argument array"),
        ] },
        b"sort_ro" => const { &[
            spec(RO_ACCESS, Begin::Index(1), Find::Range(0, 1, 0), ""),
            spec(RO_ACCESS, Begin::Unknown, Find::Unknown, "For the optional BY/GET keyword. It is marked 'unknown' because the key names derive from the content of the key we sort"),
        ] },
        b"spop" => const { &[spec(RW_ACCESS_DELETE, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"spublish" => const { &[spec(NOT_KEY, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"srandmember" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"srem" => const { &[spec(RW_DELETE, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"sscan" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"ssubscribe" => const { &[spec(NOT_KEY, Begin::Index(1), Find::Range(-1, 1, 0), "")] },
        b"strlen" => const { &[spec(RO, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"substr" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"sunion" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::Range(-1, 1, 0), "")] },
        b"sunionstore" => const { &[
            spec(OW_UPDATE, Begin::Index(1), Find::Range(0, 1, 0), ""),
            spec(RO_ACCESS, Begin::Index(2), Find::Range(-1, 1, 0), ""),
        ] },
        b"sunsubscribe" => const { &[spec(NOT_KEY, Begin::Index(1), Find::Range(-1, 1, 0), "")] },
        b"touch" => const { &[spec(RO, Begin::Index(1), Find::Range(-1, 1, 0), "")] },
        b"ttl" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"type" => const { &[spec(RO, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"unlink" => const { &[spec(RM_DELETE, Begin::Index(1), Find::Range(-1, 1, 0), "")] },
        b"watch" => const { &[spec(RO, Begin::Index(1), Find::Range(-1, 1, 0), "")] },
        b"xack" => const { &[spec(RW_UPDATE, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"xadd" => const { &[spec(RW_UPDATE, Begin::Index(1), Find::Range(0, 1, 0), "UPDATE instead of INSERT because of the optional trimming feature")] },
        b"xautoclaim" => const { &[spec(RW_DELETE, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"xclaim" => const { &[spec(RW_UPDATE, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"xdel" => const { &[spec(RW_DELETE, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"xgroup|create" => const { &[spec(RW_INSERT, Begin::Index(2), Find::Range(0, 1, 0), "")] },
        b"xgroup|createconsumer" => const { &[spec(RW_INSERT, Begin::Index(2), Find::Range(0, 1, 0), "")] },
        b"xgroup|delconsumer" => const { &[spec(RW_DELETE, Begin::Index(2), Find::Range(0, 1, 0), "")] },
        b"xgroup|destroy" => const { &[spec(RW_DELETE, Begin::Index(2), Find::Range(0, 1, 0), "")] },
        b"xgroup|setid" => const { &[spec(RW_UPDATE, Begin::Index(2), Find::Range(0, 1, 0), "")] },
        b"xinfo|consumers" => const { &[spec(RO_ACCESS, Begin::Index(2), Find::Range(0, 1, 0), "")] },
        b"xinfo|groups" => const { &[spec(RO_ACCESS, Begin::Index(2), Find::Range(0, 1, 0), "")] },
        b"xinfo|stream" => const { &[spec(RO_ACCESS, Begin::Index(2), Find::Range(0, 1, 0), "")] },
        b"xlen" => const { &[spec(RO, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"xpending" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"xrange" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"xread" => const { &[spec(RO_ACCESS, Begin::Keyword("STREAMS", 1), Find::Range(-1, 1, 2), "")] },
        b"xreadgroup" => const { &[spec(RO_ACCESS, Begin::Keyword("STREAMS", 4), Find::Range(-1, 1, 2), "")] },
        b"xrevrange" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"xsetid" => const { &[spec(RW_UPDATE, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"xtrim" => const { &[spec(RW_DELETE, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"zadd" => const { &[spec(RW_UPDATE, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"zcard" => const { &[spec(RO, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"zcount" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"zdiff" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::KeyNum(0, 1, 1), "")] },
        b"zdiffstore" => const { &[
            spec(OW_UPDATE, Begin::Index(1), Find::Range(0, 1, 0), ""),
            spec(RO_ACCESS, Begin::Index(2), Find::KeyNum(0, 1, 1), ""),
        ] },
        b"zincrby" => const { &[spec(RW_ACCESS_UPDATE, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"zinter" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::KeyNum(0, 1, 1), "")] },
        b"zintercard" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::KeyNum(0, 1, 1), "")] },
        b"zinterstore" => const { &[
            spec(OW_UPDATE, Begin::Index(1), Find::Range(0, 1, 0), ""),
            spec(RO_ACCESS, Begin::Index(2), Find::KeyNum(0, 1, 1), ""),
        ] },
        b"zlexcount" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"zmpop" => const { &[spec(RW_ACCESS_DELETE, Begin::Index(1), Find::KeyNum(0, 1, 1), "")] },
        b"zmscore" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"zpopmax" => const { &[spec(RW_ACCESS_DELETE, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"zpopmin" => const { &[spec(RW_ACCESS_DELETE, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"zrandmember" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"zrange" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"zrangebylex" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"zrangebyscore" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"zrangestore" => const { &[
            spec(OW_UPDATE, Begin::Index(1), Find::Range(0, 1, 0), ""),
            spec(RO_ACCESS, Begin::Index(2), Find::Range(0, 1, 0), ""),
        ] },
        b"zrank" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"zrem" => const { &[spec(RW_DELETE, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"zremrangebylex" => const { &[spec(RW_DELETE, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"zremrangebyrank" => const { &[spec(RW_DELETE, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"zremrangebyscore" => const { &[spec(RW_DELETE, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"zrevrange" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"zrevrangebylex" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"zrevrangebyscore" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"zrevrank" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"zscan" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"zscore" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"zunion" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::KeyNum(0, 1, 1), "")] },
        b"zunionstore" => const { &[
            spec(OW_UPDATE, Begin::Index(1), Find::Range(0, 1, 0), ""),
            spec(RO_ACCESS, Begin::Index(2), Find::KeyNum(0, 1, 1), ""),
        ] },
        b"hexpire" | b"hexpireat" | b"hpexpire" | b"hpexpireat" | b"hpersist" | b"hsetex" => const { &[spec(RW_UPDATE, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"hexpiretime" | b"hpexpiretime" | b"httl" | b"hpttl" => const { &[spec(RO_ACCESS, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"hgetdel" => const { &[spec(RW_ACCESS_DELETE, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        b"hgetex" => const { &[spec(RW_ACCESS_UPDATE, Begin::Index(1), Find::Range(0, 1, 0), "")] },
        _ => &[],
    }
}

/// The subcommands of Ember's containers, as COMMAND LIST names them (`config|get`); they share
/// their container's ACL categories, and their keys are in their own specifications.
#[rustfmt::skip]
pub const SUBCOMMANDS: &[(&str, &[&str])] = &[
    ("acl", &["cat", "deluser", "dryrun", "genpass", "getuser", "help", "list", "load", "log", "save", "setuser", "users", "whoami"]),
    ("client", &["caching", "getname", "getredir", "help", "id", "info", "kill", "list", "no-evict", "no-touch", "pause", "reply", "setinfo", "setname", "tracking", "trackinginfo", "unblock", "unpause"]),
    // Every one answers that cluster support is disabled, as in a Redis without it.
    ("cluster", &["addslots", "addslotsrange", "bumpepoch", "count-failure-reports", "countkeysinslot", "delslots", "delslotsrange", "failover", "flushslots", "forget", "getkeysinslot", "help", "info", "keyslot", "links", "meet", "myid", "nodes", "replicas", "replicate", "reset", "saveconfig", "set-config-epoch", "setslot", "shards", "slaves", "slots"]),
    ("command", &["count", "docs", "getkeys", "getkeysandflags", "help", "info", "list"]),
    ("config", &["get", "help", "resetstat", "rewrite", "set"]),
    ("function", &["delete", "dump", "flush", "help", "kill", "list", "load", "restore", "stats"]),
    ("latency", &["doctor", "help", "histogram", "history", "latest", "reset"]),
    ("memory", &["doctor", "help", "malloc-stats", "purge", "stats", "usage"]),
    ("module", &["help", "list", "load", "loadex", "unload"]),
    ("object", &["encoding", "freq", "help", "idletime", "refcount"]),
    ("pubsub", &["channels", "help", "numpat", "numsub", "shardchannels", "shardnumsub"]),
    ("script", &["exists", "flush", "help", "kill", "load"]),
    ("slowlog", &["get", "help", "len", "reset"]),
    ("xgroup", &["create", "createconsumer", "delconsumer", "destroy", "help", "setid"]),
    ("xinfo", &["consumers", "groups", "help", "stream"]),
];

/// One specification for a command Redis does not have, from its table entry: its key
/// positions, read-only or "assume the worst" read-write by its flags.
fn derived(spec: &CommandSpec) -> Option<KeySpecDef> {
    let container = SUBCOMMANDS.iter().any(|(name, _)| *name == spec.name);
    if container || spec.keys.first == 0 && spec.key_finder.is_none() {
        return None;
    }
    let flags = if spec.has(CommandFlags::WRITE) {
        RW_ACCESS_UPDATE
    } else {
        RO_ACCESS
    };
    Some(match spec.key_finder {
        Some(_) => KeySpecDef {
            flags: flags.union(KeyFlags::INCOMPLETE),
            begin: Begin::Unknown,
            find: Find::Unknown,
            notes: "",
        },
        None => KeySpecDef {
            flags,
            begin: Begin::Index(spec.keys.first),
            find: Find::Range(
                if spec.keys.last < 0 {
                    spec.keys.last
                } else {
                    spec.keys.last - spec.keys.first
                },
                spec.keys.step,
                0,
            ),
            notes: "",
        },
    })
}

/// The key specifications of `spec`: Redis's, or one derived from the table entry.
pub fn specs(spec: &CommandSpec) -> Cow<'static, [KeySpecDef]> {
    if !spec.key_specs.is_empty() {
        return Cow::Borrowed(spec.key_specs);
    }
    match derived(spec) {
        Some(def) => Cow::Owned(vec![def]),
        None => Cow::Borrowed(&[]),
    }
}

/// The specifications that apply to `args` (the command name at 0): a container's
/// subcommand's when it has its own (`OBJECT FREQ key`), else the command's.
pub fn specs_for(spec: &CommandSpec, args: &[&[u8]]) -> Cow<'static, [KeySpecDef]> {
    if let Some(subcommand) = args.get(1).filter(|sub| sub.len() <= 32) {
        let name = format!(
            "{}|{}",
            spec.name,
            String::from_utf8_lossy(subcommand).to_ascii_lowercase()
        );
        let own = of(&name);
        if !own.is_empty() {
            return Cow::Borrowed(own);
        }
    }
    specs(spec)
}

/// Redis's "movablekeys": some specification does not start at a fixed argument or does not
/// name a fixed range.
pub fn movable(specs: &[KeySpecDef]) -> bool {
    specs
        .iter()
        .any(|def| !matches!((def.begin, def.find), (Begin::Index(_), Find::Range(..))))
}

/// The argument positions `def` names in `args`, as Redis walks a specification; none when
/// its search finds nothing or it is unknown.
pub fn positions(def: &KeySpecDef, args: &[&[u8]]) -> Vec<usize> {
    let count = args.len() as i64;
    let first = match def.begin {
        Begin::Index(index) => i64::from(index),
        Begin::Keyword(word, from) => {
            let from = i64::from(from);
            let found = if from >= 0 {
                (from..count).find(|&i| args[i as usize].eq_ignore_ascii_case(word.as_bytes()))
            } else {
                (1..=count + from)
                    .rev()
                    .find(|&i| args[i as usize].eq_ignore_ascii_case(word.as_bytes()))
            };
            match found {
                Some(index) => index + 1,
                None => return Vec::new(),
            }
        }
        Begin::Unknown => return Vec::new(),
    };
    if first <= 0 || first >= count {
        return Vec::new();
    }
    let (first, last, step) = match def.find {
        Find::Range(last_key, step, limit) => {
            let (last_key, limit) = (i64::from(last_key), i64::from(limit));
            let last = if last_key >= 0 {
                first + last_key
            } else if limit <= 1 {
                count + last_key
            } else {
                first + (count - first) / limit + last_key
            };
            (first, last, i64::from(step))
        }
        Find::KeyNum(count_at, first_key, step) => {
            let Some(keys) = args
                .get((first + i64::from(count_at)) as usize)
                .and_then(|arg| ember_resp::parse_i64(arg))
                .filter(|&keys| keys >= 0 && keys < count)
            else {
                return Vec::new();
            };
            let first = first + i64::from(first_key);
            (first, first + (keys - 1) * i64::from(step), i64::from(step))
        }
        Find::Unknown => return Vec::new(),
    };
    if last >= count || last < first {
        return Vec::new();
    }
    (first..=last)
        .step_by(step.max(1) as usize)
        .map(|p| p as usize)
        .collect()
}

/// The flags of the key at `position` of `args`: those of the specification that names it,
/// else of the last one only the command can resolve (SORT's STORE); arguments decide the
/// flags of SET (GET reads) and BITFIELD (only GET reads).
pub fn flags_at(name: &str, specs: &[KeySpecDef], args: &[&[u8]], position: usize) -> KeyFlags {
    let flags = specs
        .iter()
        .find(|def| positions(def, args).contains(&position))
        .or_else(|| {
            specs
                .iter()
                .rev()
                .find(|def| def.begin == Begin::Unknown || def.flags.contains(KeyFlags::INCOMPLETE))
        })
        .or(specs.last())
        .map_or(KeyFlags::empty(), |def| def.flags);
    if !flags.contains(KeyFlags::VARIABLE_FLAGS) {
        return flags;
    }
    match name {
        "set"
            if args
                .iter()
                .skip(3)
                .any(|arg| arg.eq_ignore_ascii_case(b"GET")) =>
        {
            RW_ACCESS_UPDATE
        }
        "set" => OW_UPDATE,
        "bitfield" if bitfield_reads_only(args) => RO_ACCESS,
        _ => flags.difference(KeyFlags::VARIABLE_FLAGS),
    }
}

/// True when BITFIELD's arguments are only GETs (and OVERFLOWs), as Redis decides its flags.
fn bitfield_reads_only(args: &[&[u8]]) -> bool {
    let mut index = 2;
    while index < args.len() {
        let left = args.len() - index - 1;
        let arg = args[index];
        if arg.eq_ignore_ascii_case(b"GET") && left >= 2 {
            index += 3;
        } else if arg.eq_ignore_ascii_case(b"OVERFLOW") && left >= 1 {
            index += 2;
        } else {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(name: &str, args: &[&str]) -> Vec<Vec<usize>> {
        let args: Vec<&[u8]> = args.iter().map(|arg| arg.as_bytes()).collect();
        of(name).iter().map(|def| positions(def, &args)).collect()
    }

    #[test]
    fn specifications_walk_as_redis() {
        assert_eq!(
            walk("lmove", &["lmove", "a", "b", "left", "right"]),
            [[1], [2]]
        );
        assert_eq!(walk("mset", &["mset", "a", "1", "b", "2"]), [vec![1, 3]]);
        assert_eq!(
            walk("zunionstore", &["zunionstore", "d", "2", "a", "b"]),
            [vec![1], vec![3, 4]]
        );
        assert_eq!(
            walk(
                "xreadgroup",
                &[
                    "xreadgroup",
                    "group",
                    "g",
                    "c",
                    "streams",
                    "s1",
                    "s2",
                    "0",
                    "0"
                ]
            ),
            [vec![5, 6]]
        );
        assert_eq!(
            walk(
                "georadius",
                &["georadius", "k", "0", "0", "1", "km", "store", "d"]
            ),
            [vec![1], vec![7], vec![]]
        );
        assert_eq!(walk("eval", &["eval", "s", "0"]), [Vec::<usize>::new()]);
        assert_eq!(
            walk("eval", &["eval", "s", "9", "k"]),
            [Vec::<usize>::new()]
        );
    }

    #[test]
    fn variable_flags() {
        let set: &[&[u8]] = &[b"set", b"k", b"v"];
        assert_eq!(flags_at("set", of("set"), set, 1), OW_UPDATE);
        let set_get: &[&[u8]] = &[b"set", b"k", b"v", b"get"];
        assert_eq!(flags_at("set", of("set"), set_get, 1), RW_ACCESS_UPDATE);
        let read: &[&[u8]] = &[b"bitfield", b"k", b"get", b"u8", b"0"];
        assert_eq!(flags_at("bitfield", of("bitfield"), read, 1), RO_ACCESS);
        let write: &[&[u8]] = &[b"bitfield", b"k", b"set", b"u8", b"0", b"1"];
        assert_eq!(
            flags_at("bitfield", of("bitfield"), write, 1),
            RW_ACCESS_UPDATE
        );
        let sort: &[&[u8]] = &[b"sort", b"k", b"store", b"d"];
        assert_eq!(flags_at("sort", of("sort"), sort, 3), OW_UPDATE);
        assert_eq!(flags_at("sort", of("sort"), sort, 1), RO_ACCESS);
    }
}
