//! List values (LPUSH, RPOP, LRANGE, LINSERT, LREM, LTRIM, LPOS, LMOVE...).
//!
//! Elements live in a deque of packed nodes, each a byte buffer of length-prefixed elements of
//! at most 2 KB, as Redis's quicklist is a list of listpacks: pushes and pops at either end
//! touch one small node, and an element costs its bytes plus one or two bytes of length rather
//! than a pointer and an allocation. Each node front codes its elements against an anchor of
//! its own (see `node`), so elements that share a prefix store it once per node; such an
//! element reads as two pieces, and the API hands out `Cow`s, borrowed for the others.
//!
//! Redis keeps a small list as a single `listpack` and converts it to a `quicklist` when it
//! outgrows `list-max-listpack-size`; [`ListValue::encoding_name`] reports the name Redis 7.2
//! would, from the listpack size Redis would compute for the same elements (integers packed as
//! integers, strings with their length and back-length bytes).
//!
//! Indexes are Redis's: 0 is the head, -1 the tail.
//!
//! ```
//! use ember_store::list::{End, ListLimits, ListValue};
//!
//! let limits = ListLimits::default();
//! let mut list = ListValue::new();
//! list.push(End::Back, &[&b"a"[..], b"b", b"c"], &limits);
//! assert_eq!(list.pop(End::Front, &limits), Some(b"a".to_vec()));
//! assert_eq!(list.range(0, -1), vec![&b"b"[..], b"c"]);
//! list.push(End::Back, &[&b"member:000001"[..], b"member:000002"], &limits);
//! assert_eq!(list.get(-1).as_deref(), Some(&b"member:000002"[..]));
//! assert_eq!(list.encoding_name(), "listpack");
//! ```

mod node;
mod nodes;
pub(crate) mod redis_size;
mod search;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::fmt;

use crate::split::SplitBytes;
use node::Node;
use nodes::Nodes;
pub use search::PositionQuery;

/// `list-max-listpack-size`'s default: -2, listpacks of at most 8 KB.
pub const LISTPACK_SIZE_DEFAULT: i64 = -2;

/// The setting that decides when a list leaves the single-listpack size class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListLimits {
    /// `list-max-listpack-size`: a positive value is a count of elements, -1 to -5 a size of
    /// 4, 8, 16, 32 or 64 KB.
    pub listpack_size: i64,
}

impl Default for ListLimits {
    fn default() -> Self {
        Self {
            listpack_size: LISTPACK_SIZE_DEFAULT,
        }
    }
}

/// One end of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The head: LPUSH, LPOP, LEFT.
    Front,
    /// The tail: RPUSH, RPOP, RIGHT.
    Back,
}

/// List failures; Display is Redis's reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListError {
    /// LSET past either end.
    IndexOutOfRange,
    /// LPOS with RANK 0.
    RankZero,
}

impl fmt::Display for ListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::IndexOutOfRange => "ERR index out of range",
            Self::RankZero => {
                "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list"
            }
        })
    }
}

impl std::error::Error for ListError {}

/// A list: 16 bytes, and for a list of one node (most lists) one exactly sized allocation.
#[derive(Clone, Default)]
pub struct ListValue {
    /// The nodes, with the list's counters: its length and a word whose top bit says that
    /// Redis would use a quicklist, and whose other bits are the bytes Redis's listpack would
    /// take for these elements beyond an empty listpack's.
    nodes: Nodes,
}

/// The counters word's quicklist bit.
const QUICKLIST_BIT: u64 = 1 << 63;

/// Redis's `start`/`stop` pair on a list of `len`: the inclusive range it selects, if any.
fn normalize_range(start: i64, stop: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 {
        (len + start).max(0)
    } else {
        start
    };
    let stop = if stop < 0 {
        len + stop
    } else {
        stop.min(len - 1)
    };
    (start <= stop && start < len).then_some((start as usize, stop as usize))
}

impl ListValue {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Elements (LLEN).
    pub fn len(&self) -> usize {
        self.nodes.list_len()
    }

    /// True when the list has no element (the keyspace never keeps such a list).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes Redis's listpack would take for these elements.
    fn listpack_bytes(&self) -> usize {
        redis_size::LISTPACK_EMPTY_BYTES + (self.nodes.word() & !QUICKLIST_BIT) as usize
    }

    fn set_listpack_bytes(&mut self, bytes: usize) {
        let extra = (bytes - redis_size::LISTPACK_EMPTY_BYTES) as u64;
        assert!(extra < QUICKLIST_BIT, "listpack bytes below 2^63");
        let word = self.nodes.word();
        self.nodes.set_word(word & QUICKLIST_BIT | extra);
    }

    /// True when Redis would keep these elements in a quicklist.
    fn quicklist(&self) -> bool {
        self.nodes.word() & QUICKLIST_BIT != 0
    }

    fn set_quicklist(&mut self, quicklist: bool) {
        let word = self.nodes.word();
        self.nodes.set_word(if quicklist {
            word | QUICKLIST_BIT
        } else {
            word & !QUICKLIST_BIT
        });
    }

    /// The elements, head to tail.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = Cow<'_, [u8]>> + '_ {
        self.elements().map(SplitBytes::bytes)
    }

    /// The elements as stored, head to tail, in both directions.
    fn elements(&self) -> impl DoubleEndedIterator<Item = SplitBytes<'_>> + '_ {
        self.nodes.iter().flat_map(|node| {
            // Nodes are small: collecting one lets the whole walk run in both directions.
            node.iter().collect::<Vec<_>>()
        })
    }

    /// The elements as stored, head to tail (no collecting: one direction only).
    fn elements_forward(&self) -> impl Iterator<Item = SplitBytes<'_>> + '_ {
        self.nodes.iter().flat_map(Node::iter)
    }

    /// Index `index` (negative from the tail) as a position, if inside the list.
    fn position(&self, index: i64) -> Option<usize> {
        let position = if index < 0 {
            self.len() as i64 + index
        } else {
            index
        };
        (0..self.len() as i64)
            .contains(&position)
            .then_some(position as usize)
    }

    /// The node holding `position` and the position within it.
    fn locate(&self, mut position: usize) -> (usize, usize) {
        let len = self.len();
        assert!(position < len);
        if position >= len / 2 {
            // Walk from the tail for the back half.
            let mut from_back = len - 1 - position;
            for at in (0..self.nodes.len()).rev() {
                let node = &self.nodes[at];
                if from_back < node.count() {
                    return (at, node.count() - 1 - from_back);
                }
                from_back -= node.count();
            }
        }
        for (at, node) in self.nodes.iter().enumerate() {
            if position < node.count() {
                return (at, position);
            }
            position -= node.count();
        }
        unreachable!("position checked against len")
    }

    /// LPUSH / RPUSH of `elements` in order (LPUSH a b c leaves c at the head); the new length.
    pub fn push(&mut self, end: End, elements: &[&[u8]], limits: &ListLimits) -> usize {
        let added: usize = elements.iter().map(|element| element.len()).sum();
        self.grow_encoding(added, elements.len(), limits);
        for element in elements {
            self.push_one(end, element);
        }
        self.len()
    }

    fn push_one(&mut self, end: End, element: &[u8]) {
        let len = self.len();
        let inserted = match (end, self.nodes.len()) {
            (_, 0) => false,
            (End::Front, _) => self.nodes[0].insert_if_room(0, element),
            (End::Back, nodes) => {
                let node = &mut self.nodes[nodes - 1];
                let count = node.count();
                node.insert_if_room(count, element)
            }
        };
        match end {
            _ if inserted => {}
            End::Front => self.nodes.push_front(Node::with(element)),
            End::Back => self.nodes.push_back(Node::with(element)),
        }
        self.nodes.set_list_len(len + 1);
        self.set_listpack_bytes(self.listpack_bytes() + redis_size::entry_bytes(element));
    }

    /// LPOP / RPOP of one element.
    pub fn pop(&mut self, end: End, limits: &ListLimits) -> Option<Vec<u8>> {
        let popped = self.pop_one(end)?;
        self.shrink_encoding(limits);
        Some(popped)
    }

    /// LPOP / RPOP with a count: up to `count` elements, in popping order.
    pub fn pop_many(&mut self, end: End, count: usize, limits: &ListLimits) -> Vec<Vec<u8>> {
        let popped: Vec<Vec<u8>> = (0..count.min(self.len()))
            .map_while(|_| self.pop_one(end))
            .collect();
        self.shrink_encoding(limits);
        popped
    }

    /// LPOP / RPOP of one element handed to `take` before it goes (a reply written straight
    /// from the list, with no copy of the element allocated), as the two pieces it is stored
    /// in: a prefix shared with its node's anchor (often empty), then the rest. False when the
    /// list is empty.
    pub fn pop_into(
        &mut self,
        end: End,
        limits: &ListLimits,
        take: impl FnOnce(&[u8], &[u8]),
    ) -> bool {
        let popped = self
            .pop_one_with(end, |element| {
                let (head, tail) = element.parts();
                take(head, tail);
            })
            .is_some();
        if popped {
            self.shrink_encoding(limits);
        }
        popped
    }

    fn pop_one(&mut self, end: End) -> Option<Vec<u8>> {
        let mut element = Vec::new();
        self.pop_one_with(end, |stored| element = stored.to_vec())?;
        Some(element)
    }

    /// Removes the element at `end`, first showing it to `seen`.
    fn pop_one_with(&mut self, end: End, seen: impl FnOnce(SplitBytes<'_>)) -> Option<()> {
        if self.is_empty() {
            return None;
        }
        let node_at = match end {
            End::Front => 0,
            End::Back => self.nodes.len() - 1,
        };
        let len = self.len() - 1;
        let mut entry_bytes = 0;
        let node = &mut self.nodes[node_at];
        node.pop(end, |element| {
            entry_bytes = node::entry_bytes(element);
            seen(element);
        });
        if node.count() == 0 {
            self.nodes.remove(node_at);
        }
        self.nodes.set_list_len(len);
        self.set_listpack_bytes(self.listpack_bytes() - entry_bytes);
        Some(())
    }

    /// Removes `range` of node `node_at` (element counts only; the caller keeps
    /// `listpack_bytes`), dropping the node when it empties.
    fn remove_in_node(&mut self, node_at: usize, range: std::ops::Range<usize>) {
        let len = self.len() - range.len();
        let node = &mut self.nodes[node_at];
        if range.len() == node.count() {
            self.nodes.remove(node_at);
        } else {
            node.remove_range(range);
        }
        self.nodes.set_list_len(len);
    }

    /// LINDEX.
    pub fn get(&self, index: i64) -> Option<Cow<'_, [u8]>> {
        let (node_at, at) = self.locate(self.position(index)?);
        Some(self.nodes[node_at].get(at).bytes())
    }

    /// LSET.
    ///
    /// # Errors
    /// [`ListError::IndexOutOfRange`] when `index` is outside the list.
    pub fn set(
        &mut self,
        index: i64,
        element: &[u8],
        limits: &ListLimits,
    ) -> Result<(), ListError> {
        let position = self.position(index).ok_or(ListError::IndexOutOfRange)?;
        self.grow_encoding(element.len(), 0, limits);
        let (node_at, at) = self.locate(position);
        let bytes = self.listpack_bytes() - node::entry_bytes(self.nodes[node_at].get(at))
            + redis_size::entry_bytes(element);
        if !self.nodes[node_at].replace_if_room(at, element) {
            // A longer element would take the node past its limit: it goes into a node of its
            // own in its place, between the two halves of the one it leaves.
            let len = self.len();
            let node = &mut self.nodes[node_at];
            node.remove_range(at..at + 1);
            if at == node.count() {
                self.nodes.insert(node_at + 1, Node::with(element));
            } else if at == 0 {
                self.nodes.insert(node_at, Node::with(element));
            } else {
                let tail = node.split_off(at);
                self.nodes.insert(node_at + 1, tail);
                self.nodes.insert(node_at + 1, Node::with(element));
            }
            // A single node counted its own elements, one fewer since the removal.
            self.nodes.set_list_len(len);
        }
        self.set_listpack_bytes(bytes);
        self.shrink_encoding(limits);
        Ok(())
    }

    /// Inserts `element` so that it ends up at `position` (0..=len).
    fn insert_at(&mut self, position: usize, element: &[u8]) {
        let len = self.len();
        if position == 0 || position == len {
            let end = if position == 0 { End::Front } else { End::Back };
            self.push_one(end, element);
            return;
        }
        let (node_at, at) = self.locate(position);
        let bytes = self.listpack_bytes() + redis_size::entry_bytes(element);
        if !self.nodes[node_at].insert_if_room(at, element) {
            if at == 0 {
                // Between two nodes: a node of its own keeps both untouched.
                self.nodes.insert(node_at, Node::with(element));
            } else {
                // Split the full node around the insertion point.
                let tail = self.nodes[node_at].split_off(at);
                self.nodes.insert(node_at + 1, tail);
                self.nodes.insert(node_at + 1, Node::with(element));
            }
        }
        self.nodes.set_list_len(len + 1);
        self.set_listpack_bytes(bytes);
    }

    /// LINSERT BEFORE|AFTER pivot: the new length, or `None` when `pivot` is not in the list
    /// (Redis then replies -1).
    pub fn insert(
        &mut self,
        pivot: &[u8],
        element: &[u8],
        after: bool,
        limits: &ListLimits,
    ) -> Option<usize> {
        let found = self
            .elements_forward()
            .position(|candidate| candidate == *pivot)?;
        self.grow_encoding(element.len(), 1, limits);
        self.insert_at(found + usize::from(after), element);
        Some(self.len())
    }

    /// LREM: removes up to `count` elements equal to `element` from the head (`count` > 0),
    /// from the tail (`count` < 0), or all of them (0); how many went.
    pub fn remove(&mut self, element: &[u8], count: i64, limits: &ListLimits) -> usize {
        let mut budget = if count == 0 {
            usize::MAX
        } else {
            count.unsigned_abs() as usize
        };
        let order: Vec<usize> = if count < 0 {
            (0..self.nodes.len()).rev().collect()
        } else {
            (0..self.nodes.len()).collect()
        };
        let len_before = self.len();
        let mut removed = 0;
        for node_at in order {
            if budget == 0 {
                break;
            }
            let node = &mut self.nodes[node_at];
            let matches: Vec<usize> = node
                .iter()
                .enumerate()
                .filter(|(_, candidate)| *candidate == *element)
                .map(|(index, _)| index)
                .collect();
            let chosen: Vec<usize> = if count < 0 {
                matches.into_iter().rev().take(budget).collect()
            } else {
                matches.into_iter().take(budget).collect()
            };
            if chosen.is_empty() {
                continue;
            }
            budget -= chosen.len();
            node.retain(|index, _| !chosen.contains(&index));
            removed += chosen.len();
        }
        let len = len_before - removed;
        self.nodes.drop_empty();
        self.nodes.set_list_len(len);
        self.set_listpack_bytes(self.listpack_bytes() - removed * redis_size::entry_bytes(element));
        self.shrink_encoding(limits);
        removed
    }

    /// LTRIM start stop: keeps only that range (nothing when it is empty).
    pub fn trim(&mut self, start: i64, stop: i64, limits: &ListLimits) {
        let len = self.len();
        let (from_front, from_back) = match normalize_range(start, stop, len) {
            Some((start, stop)) => (start, len - 1 - stop),
            None => (len, 0),
        };
        self.remove_from(End::Front, from_front);
        self.remove_from(End::Back, from_back);
        self.shrink_encoding(limits);
    }

    /// Drops `count` elements from one end, whole nodes at a time where possible.
    fn remove_from(&mut self, end: End, mut count: usize) {
        while count > 0 {
            let node_at = match end {
                End::Front => 0,
                End::Back => self.nodes.len() - 1,
            };
            let node = &self.nodes[node_at];
            let take = count.min(node.count());
            let range = match end {
                End::Front => 0..take,
                End::Back => node.count() - take..node.count(),
            };
            let dropped: usize = node
                .iter()
                .skip(range.start)
                .take(take)
                .map(node::entry_bytes)
                .sum();
            self.set_listpack_bytes(self.listpack_bytes() - dropped);
            self.remove_in_node(node_at, range);
            count -= take;
        }
    }

    /// LRANGE start stop.
    pub fn range(&self, start: i64, stop: i64) -> Vec<Cow<'_, [u8]>> {
        self.range_parts(start, stop)
            .into_iter()
            .map(SplitBytes::bytes)
            .collect()
    }

    /// LRANGE start stop, each element as stored (a prefix shared with its node's anchor,
    /// often empty, then the rest), for a reply that writes the pieces without joining them.
    pub fn range_parts(&self, start: i64, stop: i64) -> Vec<SplitBytes<'_>> {
        let Some((start, stop)) = normalize_range(start, stop, self.len()) else {
            return Vec::new();
        };
        let (mut node_at, mut at) = self.locate(start);
        let mut found = Vec::with_capacity(stop - start + 1);
        while found.len() < stop - start + 1 {
            let node = &self.nodes[node_at];
            found.extend(node.iter().skip(at).take(stop - start + 1 - found.len()));
            node_at += 1;
            at = 0;
        }
        found
    }

    /// LMOVE / RPOPLPUSH within one key: pops at `from` and pushes the element at `to`.
    pub fn rotate(&mut self, from: End, to: End, limits: &ListLimits) -> Option<Vec<u8>> {
        let element = self.pop_one(from)?;
        self.push(to, &[&element], limits);
        Some(element)
    }

    /// LMOVE / RPOPLPUSH between two keys: pops at `from` of `source`, pushes at `to` of
    /// `destination`.
    pub fn move_to(
        &mut self,
        from: End,
        destination: &mut ListValue,
        to: End,
        limits: &ListLimits,
    ) -> Option<Vec<u8>> {
        let element = self.pop(from, limits)?;
        destination.push(to, &[&element], limits);
        Some(element)
    }

    fn grow_encoding(&mut self, added_bytes: usize, added_count: usize, limits: &ListLimits) {
        if !self.quicklist()
            && redis_size::exceeds(
                limits.listpack_size,
                self.listpack_bytes() + added_bytes,
                self.len() + added_count,
            )
        {
            self.set_quicklist(true);
        }
    }

    /// Redis turns a quicklist back into a listpack after removals once its one node is at most
    /// half the limit. The node layout is not Redis's here, so this checks the whole list
    /// against half the limit.
    fn shrink_encoding(&mut self, limits: &ListLimits) {
        if self.quicklist()
            && redis_size::fits_half(limits.listpack_size, self.listpack_bytes(), self.len())
        {
            self.set_quicklist(false);
        }
        if self.is_empty() {
            self.set_listpack_bytes(redis_size::LISTPACK_EMPTY_BYTES);
        }
    }

    /// OBJECT ENCODING's answer: "listpack" or "quicklist".
    pub fn encoding_name(&self) -> &'static str {
        if self.quicklist() {
            "quicklist"
        } else {
            "listpack"
        }
    }

    /// Rough heap bytes: the nodes' buffers and the deque's slots.
    pub fn heap_len(&self) -> usize {
        self.nodes.heap_len()
    }

    /// Nodes (quicklist nodes; one for a listpack).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }
}

impl PartialEq for ListValue {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.elements_forward().eq(other.elements_forward())
    }
}

impl fmt::Debug for ListValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(
                self.iter()
                    .map(|element| String::from_utf8_lossy(&element).into_owned()),
            )
            .finish()
    }
}
