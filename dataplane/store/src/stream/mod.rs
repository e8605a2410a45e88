//! Stream values (XADD, XRANGE, XDEL, XTRIM, XSETID, consumer groups...), as Redis 7.2 keeps
//! them.
//!
//! Entries live in packed blocks, a B-tree from each block's first ID to the block, as Redis
//! keeps listpacks under a radix tree: a block takes entries until it holds
//! `stream-node-max-entries` (deleted ones counted, as Redis counts them) or until the size
//! Redis's listpack would have reaches `stream-node-max-bytes` (computed entry by entry, see
//! `block.rs`), and then a new block starts. Approximate trimming (`~`) removes whole blocks
//! only, so its results follow the same block boundaries as Redis's;
//! `tests/stream_redis.rs` checks that against a real redis-server.
//!
//! The bookkeeping XINFO shows is kept as Redis keeps it: the last generated ID, the number of
//! entries ever added, the largest deleted ID, and the first entry's ID.
//!
//! ```
//! use ember_store::stream::{AddId, StreamId, StreamLimits, StreamValue};
//!
//! let limits = StreamLimits::default();
//! let mut stream = StreamValue::new();
//! let id = stream.add(AddId::Explicit(StreamId::new(5, 1)), &[&b"f"[..], b"v"], 0, &limits);
//! assert_eq!(id, Ok(StreamId::new(5, 1)));
//! let auto = stream.add(AddId::Auto, &[&b"f"[..], b"w"], 5, &limits).unwrap();
//! assert_eq!(auto, StreamId::new(5, 2));
//! assert_eq!(stream.range(StreamId::MIN, StreamId::MAX, 0).len(), 2);
//! ```

mod block;
mod claim;
mod group;
#[cfg(test)]
mod group_tests;
mod id;
mod idempotency;
mod references;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;

use crate::compact::CompactBytes;
use block::Block;

pub use group::{
    AutoClaim, ClaimOptions, Consumer, ConsumerGroup, ConsumerInfo, GroupInfo, GroupRead,
    GroupStart, PendingEntry, PendingInfo, PendingSummary, ReadFrom,
};
pub use id::{parse_add_id, parse_id, parse_range_bound, AddId, StreamId};
pub use idempotency::{
    auto_iid, Idempotency, IDMP_DURATION_DEFAULT_S, IDMP_DURATION_RANGE_S, IDMP_MAXSIZE_DEFAULT,
    IDMP_MAXSIZE_RANGE,
};
pub use references::{DeleteOutcome, RefPolicy};

/// `stream-node-max-bytes`'s default: a block takes entries up to about 4 KB.
pub const NODE_BYTES_MAX_DEFAULT: usize = 4096;
/// `stream-node-max-entries`'s default.
pub const NODE_ENTRIES_MAX_DEFAULT: usize = 100;
/// Redis's ceiling on one node's listpack (`STREAM_LISTPACK_MAX_SIZE`).
const LISTPACK_BYTES_MAX: usize = 1 << 30;
/// Approximate trimming without LIMIT removes at most this many blocks' worth of entries per
/// call (Redis's default LIMIT is 100 × `stream-node-max-entries`), so one XADD never stalls.
pub const APPROXIMATE_TRIM_NODES_MAX: usize = 100;

/// The settings that shape blocks (CONFIG's values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamLimits {
    /// `stream-node-max-bytes`; 0 means Redis's ceiling of 1 GB.
    pub node_bytes_max: usize,
    /// `stream-node-max-entries`; 0 means no count limit.
    pub node_entries_max: usize,
}

impl Default for StreamLimits {
    fn default() -> Self {
        Self {
            node_bytes_max: NODE_BYTES_MAX_DEFAULT,
            node_entries_max: NODE_ENTRIES_MAX_DEFAULT,
        }
    }
}

/// Stream failures; Display is Redis's reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamError {
    /// An ID argument that does not parse.
    InvalidId,
    /// `(ID` as a start with nothing after it.
    InvalidStart,
    /// `(ID` as an end with nothing before it.
    InvalidEnd,
    /// XADD with an ID at or below the last one.
    IdTooSmall,
    /// XADD with ID 0-0.
    IdZero,
    /// XADD after the last possible ID.
    Exhausted,
    /// XSETID below the last entry's ID.
    SetIdBelowTop,
    /// XSETID ENTRIESADDED below the length.
    SetIdEntriesAddedTooSmall,
    /// XSETID below its own MAXDELETEDID.
    SetIdBelowMaxDeleted,
    /// XGROUP CREATE of an existing group.
    BusyGroup,
    /// No such consumer group (the server words the reply for the command; see
    /// [`StreamError::no_group_reply`]).
    NoGroup,
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::InvalidId => "ERR Invalid stream ID specified as stream command argument",
            Self::InvalidStart => "ERR invalid start ID for the interval",
            Self::InvalidEnd => "ERR invalid end ID for the interval",
            Self::IdTooSmall => {
                "ERR The ID specified in XADD is equal or smaller than the target stream top item"
            }
            Self::IdZero => "ERR The ID specified in XADD must be greater than 0-0",
            Self::Exhausted => {
                "ERR The stream has exhausted the last possible ID, unable to add more items"
            }
            Self::SetIdBelowTop => {
                "ERR The ID specified in XSETID is smaller than the target stream top item"
            }
            Self::SetIdEntriesAddedTooSmall => {
                "ERR The entries_added specified in XSETID is smaller than the target stream length"
            }
            Self::SetIdBelowMaxDeleted => {
                "ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id"
            }
            Self::BusyGroup => "BUSYGROUP Consumer Group name already exists",
            Self::NoGroup => "NOGROUP No such consumer group",
        })
    }
}

impl std::error::Error for StreamError {}

/// Which command a NOGROUP reply is for: Redis words it differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoGroupContext {
    /// XREADGROUP.
    ReadGroup,
    /// XGROUP SETID / CREATECONSUMER / DELCONSUMER, XINFO CONSUMERS.
    Group,
    /// XACK, XPENDING, XCLAIM, XAUTOCLAIM.
    Key,
}

impl StreamError {
    /// The NOGROUP reply Redis gives for `key` and `group` in `context`.
    pub fn no_group_reply(key: &[u8], group: &[u8], context: NoGroupContext) -> String {
        let (key, group) = (String::from_utf8_lossy(key), String::from_utf8_lossy(group));
        match context {
            NoGroupContext::ReadGroup => format!(
                "NOGROUP No such key '{key}' or consumer group '{group}' in XREADGROUP with GROUP option"
            ),
            NoGroupContext::Group => {
                format!("NOGROUP No such consumer group '{group}' for key name '{key}'")
            }
            NoGroupContext::Key => format!("NOGROUP No such key '{key}' or consumer group '{group}'"),
        }
    }
}

/// One entry: its ID and its fields and values, alternating.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEntry {
    /// The entry's ID.
    pub id: StreamId,
    /// Field, value, field, value...
    pub fields: Vec<Vec<u8>>,
}

/// How XTRIM (or XADD's trimming) picks what goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrimStrategy {
    /// MAXLEN: keep at most this many entries.
    MaxLen(usize),
    /// MINID: drop entries below this ID.
    MinId(StreamId),
}

/// XTRIM's arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrimOptions {
    /// MAXLEN or MINID.
    pub strategy: TrimStrategy,
    /// `~`: remove whole blocks only.
    pub approximate: bool,
    /// LIMIT: entries to remove at most (only with `~`); `None` for Redis's default, 0 for none.
    pub limit: Option<usize>,
}

/// What XINFO STREAM shows besides entries and groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamInfo {
    /// Entries.
    pub length: usize,
    /// Blocks (Redis's `radix-tree-keys`).
    pub blocks: usize,
    /// The last ID generated or set.
    pub last_generated_id: StreamId,
    /// The largest ID ever deleted by XDEL (0-0 if none).
    pub max_deleted_entry_id: StreamId,
    /// Entries ever added.
    pub entries_added: u64,
    /// The first entry's ID (0-0 when empty).
    pub recorded_first_entry_id: StreamId,
    /// Consumer groups.
    pub groups: usize,
}

/// A stream.
#[derive(Clone, Default)]
pub struct StreamValue {
    blocks: BTreeMap<StreamId, Block>,
    length: usize,
    last_id: StreamId,
    first_id: StreamId,
    max_deleted_entry_id: StreamId,
    entries_added: u64,
    groups: BTreeMap<CompactBytes, ConsumerGroup>,
    /// XADD's IDMP memory and XCFGSET's settings, once either is used (Redis 8.6).
    idmp: Option<Box<Idempotency>>,
}

impl StreamValue {
    /// An empty stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// What dropping the stream frees, as Redis's lazy free counts it: a block each, and a
    /// group each with its pending entries.
    pub fn free_effort(&self) -> usize {
        self.blocks.len()
            + self
                .groups
                .values()
                .map(|group| 1 + group.pending.len())
                .sum::<usize>()
    }

    /// Entries (XLEN).
    pub fn len(&self) -> usize {
        self.length
    }

    /// True when there is no entry (a stream key may still exist then, unlike other types).
    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    /// The last ID generated or set (`$`).
    pub fn last_id(&self) -> StreamId {
        self.last_id
    }

    /// XADD of one entry (`fields`: field, value, ...) with the ID `id` asks for; the ID used.
    ///
    /// # Errors
    /// [`StreamError::IdZero`], [`StreamError::IdTooSmall`] or [`StreamError::Exhausted`] as
    /// Redis's XADD checks them.
    pub fn add(
        &mut self,
        id: AddId,
        fields: &[&[u8]],
        now_ms: u64,
        limits: &StreamLimits,
    ) -> Result<StreamId, StreamError> {
        if id == AddId::Explicit(StreamId::MIN) {
            return Err(StreamError::IdZero);
        }
        if self.last_id == StreamId::MAX {
            return Err(StreamError::Exhausted);
        }
        let new_id = match id {
            AddId::Auto if now_ms > self.last_id.ms => StreamId::new(now_ms, 0),
            AddId::Auto => self.last_id.next().ok_or(StreamError::Exhausted)?,
            AddId::AutoSeq(ms) if ms == self.last_id.ms => StreamId::new(
                ms,
                self.last_id
                    .seq
                    .checked_add(1)
                    .ok_or(StreamError::IdTooSmall)?,
            ),
            AddId::AutoSeq(ms) => StreamId::new(ms, 0),
            AddId::Explicit(id) => id,
        };
        if new_id <= self.last_id {
            return Err(StreamError::IdTooSmall);
        }
        self.append(new_id, fields, limits);
        Ok(new_id)
    }

    fn append(&mut self, id: StreamId, fields: &[&[u8]], limits: &StreamLimits) {
        let added_bytes: usize = fields.iter().map(|item| item.len()).sum();
        // Redis reads 0 or more than 1 GB as its listpack ceiling of 1 GB.
        let bytes_max = match limits.node_bytes_max {
            0 => LISTPACK_BYTES_MAX,
            bytes => bytes.min(LISTPACK_BYTES_MAX),
        };
        let tail_has_room = self.blocks.last_key_value().is_some_and(|(_, block)| {
            let bytes_ok = block.listpack_bytes() + added_bytes < bytes_max;
            let entries_ok = limits.node_entries_max == 0 || block.fill() < limits.node_entries_max;
            bytes_ok && entries_ok
        });
        if !tail_has_room {
            if let Some(mut tail) = self.blocks.last_entry() {
                tail.get_mut().seal();
            }
        }
        if tail_has_room {
            let mut tail = self.blocks.last_entry().expect("checked above");
            let master_id = *tail.key();
            tail.get_mut().push(id, master_id, fields);
        } else {
            let mut block = Block::default();
            block.push(id, id, fields);
            self.blocks.insert(id, block);
        }
        if self.length == 0 {
            self.first_id = id;
        }
        self.length += 1;
        self.entries_added += 1;
        self.last_id = id;
    }

    /// XRANGE start end COUNT count (0 for no limit), both ends inclusive.
    pub fn range(&self, start: StreamId, end: StreamId, count: usize) -> Vec<StreamEntry> {
        let mut found = Vec::new();
        if start > end {
            return found;
        }
        let first_block = self
            .blocks
            .range(..=start)
            .next_back()
            .map_or(StreamId::MIN, |(&key, _)| key);
        'blocks: for (_, block) in self.blocks.range(first_block..=end) {
            for (id, fields) in block.entries() {
                if id < start {
                    continue;
                }
                if id > end || (count != 0 && found.len() == count) {
                    break 'blocks;
                }
                found.push(entry(id, &fields));
            }
        }
        found
    }

    /// XREVRANGE end start COUNT count: the same interval, newest first.
    pub fn rev_range(&self, start: StreamId, end: StreamId, count: usize) -> Vec<StreamEntry> {
        let mut found = Vec::new();
        if start > end {
            return found;
        }
        for (_, block) in self.blocks.range(..=end).rev() {
            let mut in_block: Vec<StreamEntry> = block
                .entries()
                .filter(|(id, _)| (start..=end).contains(id))
                .map(|(id, fields)| entry(id, &fields))
                .collect();
            in_block.reverse();
            for item in in_block {
                if count != 0 && found.len() == count {
                    return found;
                }
                found.push(item);
            }
            if block.first_id().is_some_and(|first| first <= start) {
                break;
            }
        }
        found
    }

    /// The entry with this ID, if present.
    pub fn get(&self, id: StreamId) -> Option<StreamEntry> {
        self.range(id, id, 1).pop()
    }

    /// True when an entry with this ID is present.
    pub fn contains(&self, id: StreamId) -> bool {
        self.blocks
            .range(..=id)
            .next_back()
            .is_some_and(|(_, block)| block.index_of(id).is_some())
    }

    /// The first and last entries.
    pub fn edges(&self) -> Option<(StreamEntry, StreamEntry)> {
        let first = self.range(StreamId::MIN, StreamId::MAX, 1).pop()?;
        let last = self.rev_range(StreamId::MIN, StreamId::MAX, 1).pop()?;
        Some((first, last))
    }

    /// XDEL: removes the entries with these IDs; how many were there.
    pub fn delete(&mut self, ids: &[StreamId]) -> usize {
        let mut deleted = 0;
        let mut first_deleted = false;
        for &id in ids {
            let Some((&key, block)) = self.blocks.range_mut(..=id).next_back() else {
                continue;
            };
            let Some(at) = block.index_of(id) else {
                continue;
            };
            block.remove_where(|index, _| index == at);
            if block.is_empty() {
                self.blocks.remove(&key);
            }
            self.length -= 1;
            deleted += 1;
            first_deleted |= id == self.first_id;
            self.max_deleted_entry_id = self.max_deleted_entry_id.max(id);
        }
        if deleted > 0 && (self.length == 0 || first_deleted) {
            self.refresh_first_id();
        }
        deleted
    }

    fn refresh_first_id(&mut self) {
        // An exact trim can empty a block without removing it, as Redis leaves such a node.
        self.first_id = self
            .blocks
            .values()
            .find_map(Block::first_id)
            .unwrap_or(StreamId::MIN);
    }

    /// XTRIM (and XADD's MAXLEN / MINID): how many entries went. Whole blocks go first, oldest
    /// first; an approximate trim stops at the first block it cannot remove whole, an exact one
    /// removes entries inside that block too. Consumer groups keep their references to what
    /// went (Redis 8.2's KEEPREF; see [`StreamValue::trim_with`]).
    pub fn trim(&mut self, options: TrimOptions, limits: &StreamLimits) -> usize {
        self.trim_with(options, RefPolicy::KeepRef, limits)
    }

    /// [`StreamValue::trim`] under a policy for the groups' references (XTRIM's and XADD's
    /// KEEPREF, DELREF, ACKED): ACKED stops before the first entry some group has not read
    /// and acknowledged; DELREF takes the entries that went out of every group's PEL.
    pub fn trim_with(
        &mut self,
        options: TrimOptions,
        policy: RefPolicy,
        limits: &StreamLimits,
    ) -> usize {
        let floor = match policy {
            RefPolicy::Acked => self.acknowledged_floor(),
            RefPolicy::KeepRef | RefPolicy::DelRef => None,
        };
        let referenced = match policy {
            RefPolicy::DelRef => self.referenced_entries(),
            RefPolicy::KeepRef | RefPolicy::Acked => Vec::new(),
        };
        let deleted = self.trim_below(options, floor, limits);
        for id in referenced {
            if !self.contains(id) {
                self.drop_references(id);
            }
        }
        deleted
    }

    fn trim_below(
        &mut self,
        options: TrimOptions,
        floor: Option<StreamId>,
        limits: &StreamLimits,
    ) -> usize {
        let below_floor = |id: StreamId| floor.is_none_or(|floor| id < floor);
        let limit = match (options.approximate, options.limit) {
            (false, _) => 0,
            (true, Some(limit)) => limit,
            (true, None) => APPROXIMATE_TRIM_NODES_MAX * limits.node_entries_max,
        };
        let mut deleted = 0;
        while let Some((&key, block)) = self.blocks.first_key_value() {
            let entries = block.len();
            if limit != 0 && deleted + entries > limit {
                break;
            }
            let remove_whole = below_floor(block.last_appended)
                && match options.strategy {
                    TrimStrategy::MaxLen(max_len) => self.length - entries >= max_len,
                    TrimStrategy::MinId(min_id) => block.last_appended < min_id,
                };
            if remove_whole {
                self.blocks.remove(&key);
                self.length -= entries;
                deleted += entries;
                continue;
            }
            if options.approximate {
                break;
            }
            let block = self.blocks.get_mut(&key).expect("first block");
            let removed = match options.strategy {
                TrimStrategy::MaxLen(max_len) => {
                    let excess = self.length.saturating_sub(max_len);
                    block.remove_where(|index, id| index < excess && below_floor(id))
                }
                TrimStrategy::MinId(min_id) => {
                    block.remove_where(|_, id| id < min_id && below_floor(id))
                }
            };
            self.length -= removed;
            deleted += removed;
            break;
        }
        if deleted > 0 {
            self.refresh_first_id();
        }
        deleted
    }

    /// XSETID last-id [ENTRIESADDED n] [MAXDELETEDID id].
    ///
    /// # Errors
    /// [`StreamError::SetIdBelowMaxDeleted`], [`StreamError::SetIdBelowTop`] or
    /// [`StreamError::SetIdEntriesAddedTooSmall`], checked in Redis's order.
    pub fn set_id(
        &mut self,
        last_id: StreamId,
        entries_added: Option<u64>,
        max_deleted_entry_id: Option<StreamId>,
    ) -> Result<(), StreamError> {
        if max_deleted_entry_id.is_some_and(|max_deleted| last_id < max_deleted) {
            return Err(StreamError::SetIdBelowMaxDeleted);
        }
        if self.length > 0 {
            let top = self.edges().map(|(_, last)| last.id).expect("not empty");
            if last_id < top {
                return Err(StreamError::SetIdBelowTop);
            }
            if entries_added.is_some_and(|added| added < self.length as u64) {
                return Err(StreamError::SetIdEntriesAddedTooSmall);
            }
        }
        self.last_id = last_id;
        if let Some(added) = entries_added {
            self.entries_added = added;
        }
        if let Some(max_deleted) = max_deleted_entry_id.filter(|&id| id != StreamId::MIN) {
            self.max_deleted_entry_id = max_deleted;
        }
        Ok(())
    }

    /// XINFO STREAM's counters.
    pub fn info(&self) -> StreamInfo {
        StreamInfo {
            length: self.length,
            blocks: self.blocks.len(),
            last_generated_id: self.last_id,
            max_deleted_entry_id: self.max_deleted_entry_id,
            entries_added: self.entries_added,
            recorded_first_entry_id: self.first_id,
            groups: self.groups.len(),
        }
    }

    /// True when an XDEL tombstone may lie in `start..=end` (Redis's
    /// `streamRangeHasTombstones`), which makes a group's read counter unreliable.
    fn range_has_tombstones(&self, start: StreamId, end: StreamId) -> bool {
        if self.length == 0 || self.max_deleted_entry_id == StreamId::MIN {
            return false;
        }
        if self.first_id > self.max_deleted_entry_id {
            return false;
        }
        (start..=end).contains(&self.max_deleted_entry_id)
    }

    /// The logical position (entries added up to and including it) of `id`, when it can be
    /// known (Redis's `streamEstimateDistanceFromFirstEverEntry`).
    fn entries_read_at(&self, id: StreamId) -> Option<u64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if self.length == 0 && id <= self.last_id {
            return Some(self.entries_added);
        }
        match id.cmp(&self.last_id) {
            std::cmp::Ordering::Equal => return Some(self.entries_added),
            std::cmp::Ordering::Greater => return None,
            std::cmp::Ordering::Less => {}
        }
        if self.max_deleted_entry_id == StreamId::MIN || self.max_deleted_entry_id < self.first_id {
            if id < self.first_id {
                return Some(self.entries_added - self.length as u64);
            }
            if id == self.first_id {
                return Some(self.entries_added - self.length as u64 + 1);
            }
        }
        None
    }

    /// RESTORE: the counters a payload carries, once its entries are appended.
    pub(crate) fn restore_counters(
        &mut self,
        last_id: StreamId,
        first_id: StreamId,
        max_deleted_entry_id: StreamId,
        entries_added: u64,
    ) {
        self.last_id = last_id;
        self.first_id = first_id;
        self.max_deleted_entry_id = max_deleted_entry_id;
        self.entries_added = entries_added;
    }

    /// RESTORE: the consumer groups, to fill.
    pub(crate) fn groups_mut(&mut self) -> &mut BTreeMap<CompactBytes, ConsumerGroup> {
        &mut self.groups
    }

    /// RESTORE of a version 1 payload: a group's read counter, estimated as Redis does.
    pub(crate) fn estimated_entries_read(&self, id: StreamId) -> Option<u64> {
        self.entries_read_at(id)
    }

    /// Rough heap bytes: the blocks' buffers and the groups' pending entries.
    pub fn heap_len(&self) -> usize {
        let blocks: usize = self
            .blocks
            .values()
            .map(|block| {
                block.data.capacity()
                    + std::mem::size_of::<Block>()
                    + std::mem::size_of::<StreamId>()
            })
            .sum();
        blocks
            + self
                .groups
                .values()
                .map(ConsumerGroup::heap_len)
                .sum::<usize>()
            + self.idempotency_heap_len()
    }
}

fn entry(id: StreamId, fields: &[&[u8]]) -> StreamEntry {
    StreamEntry {
        id,
        fields: fields.iter().map(|item| item.to_vec()).collect(),
    }
}

impl PartialEq for StreamValue {
    /// Same entries, counters and consumer groups (the cross-shard path writes a stream back
    /// only when it differs, and a group read changes nothing but the groups).
    fn eq(&self, other: &Self) -> bool {
        self.info() == other.info()
            && self.groups == other.groups
            && self.idmp == other.idmp
            && self.range(StreamId::MIN, StreamId::MAX, 0)
                == other.range(StreamId::MIN, StreamId::MAX, 0)
    }
}

impl fmt::Debug for StreamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamValue")
            .field("info", &self.info())
            .finish()
    }
}
