//! Redis 8.2's control over consumer groups' references when entries go: XDELEX, XACKDEL, and
//! the KEEPREF / DELREF / ACKED options of XADD's and XTRIM's trimming.
//!
//! A group refers to an entry while the entry sits in its pending entries list (delivered,
//! not acknowledged), and has not finished with it while it has not been delivered at all (its
//! ID is above the group's last-delivered ID). XDEL and plain trimming (KEEPREF) leave the
//! pending references dangling; DELREF removes them from every group; ACKED deletes only what
//! every group has read and acknowledged.

use super::{StreamError, StreamId, StreamValue};

/// What happens to consumer groups' references to the entries that go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RefPolicy {
    /// Delete the entries; pending lists keep their references (XDEL's behaviour).
    #[default]
    KeepRef,
    /// Delete the entries and every group's references to them.
    DelRef,
    /// Delete only entries every group has read and acknowledged.
    Acked,
}

impl RefPolicy {
    /// The policy a command's word names, in any case.
    pub fn parse(word: &[u8]) -> Option<Self> {
        if word.eq_ignore_ascii_case(b"KEEPREF") {
            Some(Self::KeepRef)
        } else if word.eq_ignore_ascii_case(b"DELREF") {
            Some(Self::DelRef)
        } else if word.eq_ignore_ascii_case(b"ACKED") {
            Some(Self::Acked)
        } else {
            None
        }
    }
}

/// XDELEX's and XACKDEL's answer for one ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// No such entry (XDELEX), or no such pending entry in the group (XACKDEL): -1.
    NotFound,
    /// Deleted (XACKDEL: acknowledged, and deleted or already gone): 1.
    Deleted,
    /// Kept because a group still refers to it (ACKED; XACKDEL has acknowledged it): 2.
    Referenced,
}

impl DeleteOutcome {
    /// The reply's integer.
    pub fn code(self) -> i64 {
        match self {
            Self::NotFound => -1,
            Self::Deleted => 1,
            Self::Referenced => 2,
        }
    }
}

impl StreamValue {
    /// True when every group has been delivered `id` and has acknowledged it.
    pub fn acknowledged_by_all(&self, id: StreamId) -> bool {
        self.groups
            .values()
            .all(|group| id <= group.last_id && !group.pending.contains_key(&id))
    }

    /// The first ID some group has not read and acknowledged: every entry below it is done
    /// with. `None` when no group refers to anything (no groups).
    pub(super) fn acknowledged_floor(&self) -> Option<StreamId> {
        self.groups
            .values()
            .map(|group| {
                let unread = group.last_id.next().unwrap_or(StreamId::MAX);
                group
                    .pending
                    .keys()
                    .next()
                    .map_or(unread, |&first| first.min(unread))
            })
            .min()
    }

    /// The pending entries of every group that are still in the stream.
    pub(super) fn referenced_entries(&self) -> Vec<StreamId> {
        let mut ids: Vec<StreamId> = self
            .groups
            .values()
            .flat_map(|group| group.pending.keys().copied())
            .filter(|&id| self.contains(id))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Takes `id` out of every group's pending entries list.
    pub(super) fn drop_references(&mut self, id: StreamId) {
        for group in self.groups.values_mut() {
            group.forget(id);
        }
    }

    /// Deletes the entry `id` under `policy`, it being known to be in the stream.
    fn delete_present(&mut self, id: StreamId, policy: RefPolicy) -> DeleteOutcome {
        if policy == RefPolicy::Acked && !self.acknowledged_by_all(id) {
            return DeleteOutcome::Referenced;
        }
        self.delete(&[id]);
        if policy == RefPolicy::DelRef {
            self.drop_references(id);
        }
        DeleteOutcome::Deleted
    }

    /// XDELEX: deletes each of `ids` under `policy`, answering for each. DELREF also clears
    /// the references of an ID that is no longer in the stream (its answer stays -1).
    pub fn delete_with(&mut self, ids: &[StreamId], policy: RefPolicy) -> Vec<DeleteOutcome> {
        ids.iter()
            .map(|&id| {
                if self.contains(id) {
                    self.delete_present(id, policy)
                } else {
                    if policy == RefPolicy::DelRef {
                        self.drop_references(id);
                    }
                    DeleteOutcome::NotFound
                }
            })
            .collect()
    }

    /// XACKDEL: acknowledges each of `ids` in `group`, then deletes it under `policy`.
    ///
    /// # Errors
    /// [`StreamError::NoGroup`].
    pub fn ack_delete(
        &mut self,
        group: &[u8],
        ids: &[StreamId],
        policy: RefPolicy,
    ) -> Result<Vec<DeleteOutcome>, StreamError> {
        self.group_mut(group)?;
        Ok(ids
            .iter()
            .map(|&id| {
                let acknowledged = self.group_mut(group).expect("checked").forget(id);
                if !acknowledged {
                    DeleteOutcome::NotFound
                } else if self.contains(id) {
                    self.delete_present(id, policy)
                } else {
                    DeleteOutcome::Deleted
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::{AddId, GroupStart, ReadFrom, StreamLimits, TrimOptions, TrimStrategy};

    fn stream_of(count: u64) -> StreamValue {
        let mut stream = StreamValue::new();
        let limits = StreamLimits::default();
        for ms in 1..=count {
            let fields = [b"f".to_vec(), b"v".to_vec()];
            let fields: Vec<&[u8]> = fields.iter().map(Vec::as_slice).collect();
            stream
                .add(AddId::Explicit(StreamId::new(ms, 0)), &fields, 0, &limits)
                .unwrap();
        }
        stream
    }

    fn id(ms: u64) -> StreamId {
        StreamId::new(ms, 0)
    }

    /// Creates `group` at the start of the stream and delivers its first `count` entries to
    /// consumer `c`.
    fn group_reading(stream: &mut StreamValue, group: &[u8], count: usize) {
        stream
            .create_group(group, GroupStart::Id(StreamId::MIN), None)
            .unwrap();
        stream
            .read_group(group, b"c", ReadFrom::New, count, false, 0)
            .unwrap();
    }

    fn codes(outcomes: Vec<DeleteOutcome>) -> Vec<i64> {
        outcomes.into_iter().map(DeleteOutcome::code).collect()
    }

    #[test]
    fn delete_with_each_policy() {
        let mut stream = stream_of(5);
        // The group reads 1..=3; 1 and 2 stay pending, 3 is acknowledged; 4 and 5 are unread.
        group_reading(&mut stream, b"g", 3);
        stream.ack(b"g", &[id(3)]).unwrap();
        assert_eq!(
            codes(stream.delete_with(&[id(1), id(3), id(4), id(9)], RefPolicy::Acked)),
            [2, 1, 2, -1]
        );
        assert_eq!(stream.len(), 4);
        assert_eq!(codes(stream.delete_with(&[id(1)], RefPolicy::KeepRef)), [1]);
        assert!(stream.group(b"g").unwrap().pending.contains_key(&id(1)));
        assert_eq!(codes(stream.delete_with(&[id(2)], RefPolicy::DelRef)), [1]);
        assert!(!stream.group(b"g").unwrap().pending.contains_key(&id(2)));
        // DELREF clears the dangling reference KEEPREF left.
        assert_eq!(codes(stream.delete_with(&[id(1)], RefPolicy::DelRef)), [-1]);
        assert!(stream.group(b"g").unwrap().pending.is_empty());
    }

    #[test]
    fn ack_delete_acknowledges_then_deletes() {
        let mut stream = stream_of(3);
        for group in [&b"a"[..], b"b"] {
            group_reading(&mut stream, group, 3);
        }
        // Group b still has 1 pending: ACKED keeps it after a's acknowledgement.
        assert_eq!(
            codes(
                stream
                    .ack_delete(b"a", &[id(1), id(1)], RefPolicy::Acked)
                    .unwrap()
            ),
            [2, -1]
        );
        assert!(stream.contains(id(1)));
        assert_eq!(
            codes(stream.ack_delete(b"b", &[id(1)], RefPolicy::Acked).unwrap()),
            [1]
        );
        assert!(!stream.contains(id(1)));
        // KEEPREF deletes and leaves b's reference; DELREF clears it.
        assert_eq!(
            codes(
                stream
                    .ack_delete(b"a", &[id(2)], RefPolicy::KeepRef)
                    .unwrap()
            ),
            [1]
        );
        assert!(stream.group(b"b").unwrap().pending.contains_key(&id(2)));
        assert_eq!(
            codes(
                stream
                    .ack_delete(b"a", &[id(3)], RefPolicy::DelRef)
                    .unwrap()
            ),
            [1]
        );
        assert!(!stream.group(b"b").unwrap().pending.contains_key(&id(3)));
        assert_eq!(
            stream.ack_delete(b"nope", &[id(3)], RefPolicy::KeepRef),
            Err(StreamError::NoGroup)
        );
    }

    #[test]
    fn trim_with_acked_stops_at_what_a_group_still_needs() {
        let limits = StreamLimits::default();
        let exact = |max_len| TrimOptions {
            strategy: TrimStrategy::MaxLen(max_len),
            approximate: false,
            limit: None,
        };
        let mut stream = stream_of(10);
        group_reading(&mut stream, b"g", 6);
        stream.ack(b"g", &[id(1), id(2), id(3), id(5)]).unwrap();
        // 4 is pending: ACKED trims 1..=3 only, however short MAXLEN asks.
        assert_eq!(stream.trim_with(exact(2), RefPolicy::Acked, &limits), 3);
        assert_eq!(stream.edges().unwrap().0.id, id(4));
        stream.ack(b"g", &[id(4), id(6)]).unwrap();
        // Now 7..=10 are unread: the floor is 7.
        assert_eq!(stream.trim_with(exact(0), RefPolicy::Acked, &limits), 3);
        assert_eq!(stream.len(), 4);
        // DELREF removes the pending references of what it trims.
        stream
            .read_group(b"g", b"c", ReadFrom::New, 2, false, 0)
            .unwrap();
        assert_eq!(stream.trim_with(exact(3), RefPolicy::DelRef, &limits), 1);
        let pending: Vec<StreamId> = stream
            .group(b"g")
            .unwrap()
            .pending
            .keys()
            .copied()
            .collect();
        assert_eq!(pending, [id(8)]);
        // No groups: ACKED trims as KEEPREF does.
        let mut plain = stream_of(10);
        assert_eq!(plain.trim_with(exact(4), RefPolicy::Acked, &limits), 6);
    }
}
