//! Consumer groups: XGROUP, XREADGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM and the data of
//! XINFO GROUPS / CONSUMERS, as Redis 7.2 defines them.
//!
//! A group has a last-delivered ID, a read counter (for XINFO's lag), a pending entries list
//! (PEL: delivered, not yet acknowledged) and consumers, each with its own view of the PEL.

use std::collections::{BTreeMap, BTreeSet};

use super::{StreamEntry, StreamError, StreamId, StreamValue};
use crate::compact::CompactBytes;

/// A delivered entry awaiting XACK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEntry {
    /// The consumer it was last delivered to.
    pub consumer: CompactBytes,
    /// When it was last delivered, Unix milliseconds.
    pub delivery_time_ms: u64,
    /// How many times it was delivered.
    pub delivery_count: u64,
}

/// A consumer of a group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Consumer {
    /// Last time it interacted (read, claimed, was created), Unix milliseconds.
    pub seen_time_ms: u64,
    /// Last time it got entries, if ever (Redis 7.2's `active-time`).
    pub active_time_ms: Option<u64>,
    /// Its pending entries.
    pub pending: BTreeSet<StreamId>,
}

/// A consumer group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumerGroup {
    /// The last ID delivered to the group.
    pub last_id: StreamId,
    /// Entries the group has read, when known (Redis's `entries-read`).
    pub entries_read: Option<u64>,
    /// The group's pending entries.
    pub pending: BTreeMap<StreamId, PendingEntry>,
    /// Its consumers, by name.
    pub consumers: BTreeMap<CompactBytes, Consumer>,
}

impl ConsumerGroup {
    pub(super) fn heap_len(&self) -> usize {
        self.pending.len() * (std::mem::size_of::<PendingEntry>() + 16 + 16)
            + self.consumers.len() * (std::mem::size_of::<Consumer>() + 24)
    }

    pub(super) fn consumer_mut(&mut self, name: &[u8], now_ms: u64) -> &mut Consumer {
        if !self.consumers.contains_key(name) {
            self.consumers.insert(
                CompactBytes::new(name),
                Consumer {
                    seen_time_ms: now_ms,
                    ..Consumer::default()
                },
            );
        }
        let consumer = self.consumers.get_mut(name).expect("just ensured");
        consumer.seen_time_ms = now_ms;
        consumer
    }

    /// Drops `id` from the PEL and its consumer's view; true when it was pending.
    pub(super) fn forget(&mut self, id: StreamId) -> bool {
        let Some(pending) = self.pending.remove(&id) else {
            return false;
        };
        if let Some(consumer) = self.consumers.get_mut(pending.consumer.as_bytes()) {
            consumer.pending.remove(&id);
        }
        true
    }

    /// Delivers `id` to `consumer` now: a fresh PEL entry, or the existing one moved over.
    pub(super) fn assign(
        &mut self,
        id: StreamId,
        consumer: &[u8],
        delivery_time_ms: u64,
        delivery_count: u64,
    ) {
        self.forget(id);
        self.pending.insert(
            id,
            PendingEntry {
                consumer: CompactBytes::new(consumer),
                delivery_time_ms,
                delivery_count,
            },
        );
        self.consumers
            .get_mut(consumer)
            .expect("consumer created before assignment")
            .pending
            .insert(id);
    }
}

/// Where XGROUP CREATE / SETID start a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupStart {
    /// `$`: the stream's last ID.
    LastId,
    /// An explicit ID.
    Id(StreamId),
}

/// XREADGROUP's ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFrom {
    /// `>`: entries never delivered to the group.
    New,
    /// An ID: the consumer's own pending entries after it.
    History(StreamId),
}

/// One entry XREADGROUP returns; history reads return `None` fields for a pending entry that
/// was deleted since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRead {
    /// The entry's ID.
    pub id: StreamId,
    /// Its fields and values, alternating, or `None` if it is gone.
    pub fields: Option<Vec<Vec<u8>>>,
}

/// XPENDING's summary form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSummary {
    /// Pending entries.
    pub count: usize,
    /// Lowest and highest pending IDs, when any.
    pub bounds: Option<(StreamId, StreamId)>,
    /// Consumers with pending entries and how many, by name.
    pub consumers: Vec<(CompactBytes, usize)>,
}

/// One line of XPENDING's extended form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingInfo {
    /// The entry's ID.
    pub id: StreamId,
    /// Its consumer.
    pub consumer: CompactBytes,
    /// Milliseconds since its last delivery.
    pub idle_ms: u64,
    /// Deliveries so far.
    pub delivery_count: u64,
}

/// XCLAIM's options.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClaimOptions {
    /// The delivery time IDLE or TIME asked for, Unix milliseconds (IDLE n is now - n); a
    /// negative or future one becomes now, as in Redis.
    pub delivery_time_ms: Option<i64>,
    /// RETRYCOUNT.
    pub retry_count: Option<u64>,
    /// FORCE: create PEL entries for IDs that exist in the stream but are not pending.
    pub force: bool,
    /// JUSTID: do not count a delivery, return IDs only.
    pub just_id: bool,
    /// LASTID: raise the group's last ID to this.
    pub last_id: Option<StreamId>,
}

/// XAUTOCLAIM's reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoClaim {
    /// The cursor for the next call (0-0 when the PEL was walked to the end).
    pub next: StreamId,
    /// The claimed entries (fields empty with JUSTID).
    pub claimed: Vec<StreamEntry>,
    /// Pending IDs found deleted from the stream, and dropped from the PEL.
    pub deleted: Vec<StreamId>,
}

/// XINFO GROUPS' line for one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    /// The group's name.
    pub name: CompactBytes,
    /// Consumers.
    pub consumers: usize,
    /// Pending entries.
    pub pending: usize,
    /// Last delivered ID.
    pub last_delivered_id: StreamId,
    /// Entries read, when known.
    pub entries_read: Option<u64>,
    /// Entries not yet delivered to the group, when known.
    pub lag: Option<u64>,
}

/// XINFO CONSUMERS' line for one consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerInfo {
    /// The consumer's name.
    pub name: CompactBytes,
    /// Its pending entries.
    pub pending: usize,
    /// Milliseconds since it last interacted.
    pub idle_ms: u64,
    /// Milliseconds since it last got entries; `None` (Redis's -1) if never.
    pub inactive_ms: Option<u64>,
}

impl StreamValue {
    /// The group called `name`.
    pub fn group(&self, name: &[u8]) -> Option<&ConsumerGroup> {
        self.groups.get(name)
    }

    pub(super) fn group_mut(&mut self, name: &[u8]) -> Result<&mut ConsumerGroup, StreamError> {
        self.groups.get_mut(name).ok_or(StreamError::NoGroup)
    }

    /// The groups, by name.
    pub fn groups(&self) -> impl Iterator<Item = (&[u8], &ConsumerGroup)> + '_ {
        self.groups
            .iter()
            .map(|(name, group)| (name.as_bytes(), group))
    }

    fn start_id(&self, start: GroupStart) -> StreamId {
        match start {
            GroupStart::LastId => self.last_id,
            GroupStart::Id(id) => id,
        }
    }

    /// XGROUP CREATE (ENTRIESREAD as `entries_read`).
    ///
    /// # Errors
    /// [`StreamError::BusyGroup`] when the group exists.
    pub fn create_group(
        &mut self,
        name: &[u8],
        start: GroupStart,
        entries_read: Option<u64>,
    ) -> Result<(), StreamError> {
        if self.groups.contains_key(name) {
            return Err(StreamError::BusyGroup);
        }
        let group = ConsumerGroup {
            last_id: self.start_id(start),
            entries_read,
            ..ConsumerGroup::default()
        };
        self.groups.insert(CompactBytes::new(name), group);
        Ok(())
    }

    /// XGROUP SETID.
    ///
    /// # Errors
    /// [`StreamError::NoGroup`].
    pub fn set_group_id(
        &mut self,
        name: &[u8],
        start: GroupStart,
        entries_read: Option<u64>,
    ) -> Result<(), StreamError> {
        let last_id = self.start_id(start);
        let group = self.group_mut(name)?;
        group.last_id = last_id;
        group.entries_read = entries_read;
        Ok(())
    }

    /// XGROUP DESTROY: true when the group existed.
    pub fn destroy_group(&mut self, name: &[u8]) -> bool {
        self.groups.remove(name).is_some()
    }

    /// XGROUP CREATECONSUMER: true when the consumer is new.
    ///
    /// # Errors
    /// [`StreamError::NoGroup`].
    pub fn create_consumer(
        &mut self,
        group: &[u8],
        consumer: &[u8],
        now_ms: u64,
    ) -> Result<bool, StreamError> {
        let group = self.group_mut(group)?;
        if group.consumers.contains_key(consumer) {
            return Ok(false);
        }
        group.consumer_mut(consumer, now_ms);
        Ok(true)
    }

    /// XGROUP DELCONSUMER: the consumer's pending entries, which are dropped from the PEL too
    /// (0 when there was no such consumer).
    ///
    /// # Errors
    /// [`StreamError::NoGroup`].
    pub fn delete_consumer(&mut self, group: &[u8], consumer: &[u8]) -> Result<usize, StreamError> {
        let group = self.group_mut(group)?;
        let Some(removed) = group.consumers.remove(consumer) else {
            return Ok(0);
        };
        for id in &removed.pending {
            group.pending.remove(id);
        }
        Ok(removed.pending.len())
    }

    /// XREADGROUP of this stream for `consumer` (created if missing), at most `count` entries
    /// (0 for no limit). New entries advance the group and, unless `no_ack`, join the PEL;
    /// history reads count a new delivery of each pending entry still present.
    ///
    /// # Errors
    /// [`StreamError::NoGroup`].
    pub fn read_group(
        &mut self,
        group_name: &[u8],
        consumer: &[u8],
        from: ReadFrom,
        count: usize,
        no_ack: bool,
        now_ms: u64,
    ) -> Result<Vec<GroupRead>, StreamError> {
        let group = self.groups.get(group_name).ok_or(StreamError::NoGroup)?;
        let reads = match from {
            ReadFrom::New => {
                let Some(start) = group.last_id.next() else {
                    return Ok(Vec::new());
                };
                let entries = self.range(start, StreamId::MAX, count);
                self.deliver_new(group_name, consumer, &entries, no_ack, now_ms);
                entries
                    .into_iter()
                    .map(|entry| GroupRead {
                        id: entry.id,
                        fields: Some(entry.fields),
                    })
                    .collect()
            }
            ReadFrom::History(after) => {
                self.read_history(group_name, consumer, after, count, now_ms)
            }
        };
        let group = self.groups.get_mut(group_name).expect("looked up above");
        let seen = group.consumer_mut(consumer, now_ms);
        if !reads.is_empty() {
            seen.active_time_ms = Some(now_ms);
        }
        Ok(reads)
    }

    fn deliver_new(
        &mut self,
        group_name: &[u8],
        consumer: &[u8],
        entries: &[StreamEntry],
        no_ack: bool,
        now_ms: u64,
    ) {
        for entry in entries {
            // The read counter stays exact only while no tombstone lies ahead of the group.
            let tombstones_ahead = self.range_has_tombstones(entry.id, StreamId::MAX);
            let estimate = self.entries_read_at(entry.id);
            let has_entries = self.entries_added > 0;
            let group = self.groups.get_mut(group_name).expect("checked by caller");
            if entry.id > group.last_id {
                group.entries_read = match group.entries_read {
                    Some(read) if !tombstones_ahead => Some(read + 1),
                    _ if has_entries => estimate,
                    current => current,
                };
                group.last_id = entry.id;
            }
            group.consumer_mut(consumer, now_ms);
            if !no_ack {
                group.assign(entry.id, consumer, now_ms, 1);
            }
        }
    }

    fn read_history(
        &mut self,
        group_name: &[u8],
        consumer: &[u8],
        after: StreamId,
        count: usize,
        now_ms: u64,
    ) -> Vec<GroupRead> {
        let Some(start) = after.next() else {
            return Vec::new();
        };
        let ids: Vec<StreamId> = self.groups[group_name]
            .consumers
            .get(consumer)
            .map(|seen| {
                seen.pending
                    .range(start..)
                    .take(if count == 0 { usize::MAX } else { count })
                    .copied()
                    .collect()
            })
            .unwrap_or_default();
        let mut reads = Vec::with_capacity(ids.len());
        for id in ids {
            let fields = self.get(id).map(|entry| entry.fields);
            if fields.is_some() {
                let group = self.groups.get_mut(group_name).expect("checked by caller");
                let pending = group
                    .pending
                    .get_mut(&id)
                    .expect("consumer PEL ⊆ group PEL");
                pending.delivery_time_ms = now_ms;
                pending.delivery_count += 1;
            }
            reads.push(GroupRead { id, fields });
        }
        reads
    }

    /// XACK: how many of `ids` were pending in the group.
    ///
    /// # Errors
    /// [`StreamError::NoGroup`].
    pub fn ack(&mut self, group: &[u8], ids: &[StreamId]) -> Result<usize, StreamError> {
        let group = self.group_mut(group)?;
        Ok(ids.iter().filter(|&&id| group.forget(id)).count())
    }

    /// XINFO GROUPS.
    pub fn group_infos(&self) -> Vec<GroupInfo> {
        self.groups
            .iter()
            .map(|(name, group)| GroupInfo {
                name: name.clone(),
                consumers: group.consumers.len(),
                pending: group.pending.len(),
                last_delivered_id: group.last_id,
                entries_read: group.entries_read,
                lag: self.group_lag(group),
            })
            .collect()
    }

    /// The group's lag as Redis's `streamReplyWithCGLag` computes it.
    fn group_lag(&self, group: &ConsumerGroup) -> Option<u64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if let Some(read) = group.entries_read {
            if !self.range_has_tombstones(group.last_id, StreamId::MAX) {
                return Some(self.entries_added.saturating_sub(read));
            }
        }
        self.entries_read_at(group.last_id)
            .map(|read| self.entries_added.saturating_sub(read))
    }

    /// XINFO CONSUMERS.
    ///
    /// # Errors
    /// [`StreamError::NoGroup`].
    pub fn consumer_infos(
        &self,
        group: &[u8],
        now_ms: u64,
    ) -> Result<Vec<ConsumerInfo>, StreamError> {
        let group = self.groups.get(group).ok_or(StreamError::NoGroup)?;
        Ok(group
            .consumers
            .iter()
            .map(|(name, consumer)| ConsumerInfo {
                name: name.clone(),
                pending: consumer.pending.len(),
                idle_ms: now_ms.saturating_sub(consumer.seen_time_ms),
                inactive_ms: consumer
                    .active_time_ms
                    .map(|active| now_ms.saturating_sub(active)),
            })
            .collect())
    }
}
