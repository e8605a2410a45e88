//! The skiplist class of a sorted set, each member's bytes stored once.
//!
//! The pairs live in one vector; a hash table of `u32` indexes into it finds a member's score,
//! and the order is runs ("chunks") of at most [`CHUNK_CAPACITY`] `u32` indexes, sorted by
//! (score, member) and compared through the vector. A map of members to scores beside an ordered
//! set of (score, member), as before, held every member twice (24 bytes each) and cost ~33 bytes
//! a map bucket and ~48 a tree element; here a member costs its 32-byte pair, a 5-byte bucket and
//! about 5 bytes of order. Finding a position is two binary searches (over the chunks' last
//! elements, then in one chunk); a rank adds up the lengths of the chunks before it, n / 128
//! additions rather than the walk of n elements the ordered set needed.

use std::cmp::Ordering;
use std::hash::BuildHasher;

use hashbrown::HashTable;

use super::Score;
use crate::compact::CompactBytes;
use crate::split::SplitBytes;

/// Indexes a chunk holds at most; a chunk that reaches it splits in two. 128 `u32`s are one
/// 512-byte allocation, jemalloc's size class of exactly that size.
const CHUNK_CAPACITY: usize = 128;

/// A chunk that falls below this many indexes merges with its neighbour when both fit in one.
const CHUNK_MERGE_BELOW: usize = CHUNK_CAPACITY / 4;

/// Indexes a chunk gets when a set is built in order (room for inserts before it splits).
const CHUNK_FILL: usize = CHUNK_CAPACITY * 3 / 4;

/// A place in the order: a chunk and an index in it. The end is `(chunks, 0)`; every other place
/// names an element, so two places are equal exactly when they name the same one.
type Place = (usize, usize);

/// The skiplist class.
#[derive(Clone, Default)]
pub(super) struct Indexed {
    /// (member, score) pairs, in no particular order.
    pairs: Vec<(CompactBytes, f64)>,
    /// Index into `pairs` of each member, hashed by the member's bytes.
    index: HashTable<u32>,
    hasher: foldhash::fast::RandomState,
    /// Indexes into `pairs`, by (score, member), in runs of at most [`CHUNK_CAPACITY`].
    chunks: Vec<Vec<u32>>,
}

impl Indexed {
    /// The class holding `pairs`, given lowest first (a packed set converting).
    pub(super) fn from_ordered<'a>(pairs: impl Iterator<Item = (SplitBytes<'a>, f64)>) -> Self {
        let mut indexed = Self::default();
        for (member, score) in pairs {
            let at = indexed.push_pair(&member.bytes(), score);
            match indexed.chunks.last_mut() {
                Some(chunk) if chunk.len() < CHUNK_FILL => chunk.push(at),
                _ => {
                    let mut chunk = Vec::with_capacity(CHUNK_CAPACITY);
                    chunk.push(at);
                    indexed.chunks.push(chunk);
                }
            }
        }
        indexed
    }

    /// Members.
    pub(super) fn len(&self) -> usize {
        self.pairs.len()
    }

    fn find(&self, member: &[u8]) -> Option<usize> {
        let hash = self.hasher.hash_one(member);
        self.index
            .find(hash, |&at| self.pairs[at as usize].0.as_bytes() == member)
            .map(|&at| at as usize)
    }

    /// The score of `member`.
    pub(super) fn score(&self, member: &[u8]) -> Option<f64> {
        self.find(member).map(|at| self.pairs[at].1)
    }

    /// Appends a pair and indexes it by member; returns its index.
    fn push_pair(&mut self, member: &[u8], score: f64) -> u32 {
        let at = u32::try_from(self.pairs.len()).expect("a sorted set has fewer than 2^32 members");
        self.pairs.push((CompactBytes::new(member), score));
        let hash = self.hasher.hash_one(member);
        let (pairs, hasher) = (&self.pairs, &self.hasher);
        self.index.insert_unique(hash, at, |&at| {
            hasher.hash_one(pairs[at as usize].0.as_bytes())
        });
        at
    }

    /// Stores a member that is not in the set yet.
    pub(super) fn insert_new(&mut self, member: &[u8], score: f64) {
        let at = self.push_pair(member, score);
        self.order_insert(at);
    }

    /// Gives the present `member` a new score.
    pub(super) fn set_score(&mut self, member: &[u8], score: f64) {
        let at = self.find(member).expect("the member is present");
        let place = self.place_of(at);
        self.order_remove(place);
        self.pairs[at].1 = score;
        self.order_insert(at as u32);
    }

    /// Removes `member`; false when it was not there.
    pub(super) fn remove(&mut self, member: &[u8]) -> bool {
        let hash = self.hasher.hash_one(member);
        let pairs = &self.pairs;
        let Ok(found) = self
            .index
            .find_entry(hash, |&at| pairs[at as usize].0.as_bytes() == member)
        else {
            return false;
        };
        let at = found.remove().0 as usize;
        let place = self.place_of(at);
        self.order_remove(place);
        // The last pair moves into the freed index: repoint its bucket and its place.
        let last = self.pairs.len() - 1;
        if at != last {
            let last_place = self.place_of(last);
            let hash = self.hasher.hash_one(self.pairs[last].0.as_bytes());
            *self
                .index
                .find_mut(hash, |&index| index as usize == last)
                .expect("every member is indexed") = at as u32;
            self.chunks[last_place.0][last_place.1] = at as u32;
        }
        self.pairs.swap_remove(at);
        true
    }

    /// How many members order before `member`, and its score.
    pub(super) fn rank(&self, member: &[u8]) -> Option<(usize, f64)> {
        let at = self.find(member)?;
        let (chunk, offset) = self.place_of(at);
        let below = self.chunks[..chunk].iter().map(Vec::len).sum::<usize>() + offset;
        Some((below, self.pairs[at].1))
    }

    /// The pairs in order.
    pub(super) fn iter(&self) -> Iter<'_> {
        Iter {
            indexed: self,
            front: (0, 0),
            back: (self.chunks.len(), 0),
        }
    }

    /// The pairs of ranks `first` to below `end` (0-based, lowest score first), in order:
    /// a seek over the runs' lengths, not a walk of the pairs before `first`.
    pub(super) fn rank_range(&self, first: usize, end: usize) -> Iter<'_> {
        let front = self.place_at(first);
        let back = self.place_at(end.max(first));
        Iter {
            indexed: self,
            front,
            back,
        }
    }

    /// The place of the pair of rank `rank`, or the end.
    fn place_at(&self, mut rank: usize) -> Place {
        for (chunk, run) in self.chunks.iter().enumerate() {
            if rank < run.len() {
                return (chunk, rank);
            }
            rank -= run.len();
        }
        (self.chunks.len(), 0)
    }

    /// The pairs whose scores are at least `low` and below `high` (to the end when `None`), in
    /// order.
    pub(super) fn score_range(&self, low: f64, high: Option<f64>) -> Iter<'_> {
        let front = self.lower_bound(Score(low), b"");
        let back = high.map_or((self.chunks.len(), 0), |high| {
            self.lower_bound(Score(high), b"")
        });
        // An empty range when the bounds cross: callers check, this only keeps it safe.
        let back = back.max(front);
        Iter {
            indexed: self,
            front,
            back,
        }
    }

    /// Rough heap bytes: the pairs, the members' own heap, the index and the chunks.
    pub(super) fn heap_len(&self) -> usize {
        self.pairs.capacity() * std::mem::size_of::<(CompactBytes, f64)>()
            + self
                .pairs
                .iter()
                .map(|(member, _)| member.heap_len())
                .sum::<usize>()
            + self.index.capacity() * (std::mem::size_of::<u32>() + 1)
            + self.chunks.capacity() * std::mem::size_of::<Vec<u32>>()
            + self.chunks.len() * CHUNK_CAPACITY * std::mem::size_of::<u32>()
    }

    #[inline]
    fn pair(&self, at: u32) -> (&[u8], f64) {
        let (member, score) = &self.pairs[at as usize];
        (member.as_bytes(), *score)
    }

    /// How the pair at `at` orders against (score, member).
    fn compare(&self, at: u32, score: Score, member: &[u8]) -> Ordering {
        let (own_member, own_score) = self.pair(at);
        Score(own_score)
            .cmp(&score)
            .then_with(|| own_member.cmp(member))
    }

    /// The place of the first pair at or after (score, member), or the end.
    fn lower_bound(&self, score: Score, member: &[u8]) -> Place {
        let chunk = self.chunks.partition_point(|chunk| {
            let last = *chunk.last().expect("chunks are never empty");
            self.compare(last, score, member) == Ordering::Less
        });
        if chunk == self.chunks.len() {
            return (chunk, 0);
        }
        let offset = self.chunks[chunk]
            .partition_point(|&at| self.compare(at, score, member) == Ordering::Less);
        (chunk, offset)
    }

    /// The place of the pair at index `at` (which is in the order).
    fn place_of(&self, at: usize) -> Place {
        let (member, score) = &self.pairs[at];
        let place = self.lower_bound(Score(*score), member.as_bytes());
        debug_assert_eq!(self.chunks[place.0][place.1] as usize, at);
        place
    }

    /// Puts the pair at index `at` (not in the order) in its place.
    fn order_insert(&mut self, at: u32) {
        let (member, score) = &self.pairs[at as usize];
        let (mut chunk, mut offset) = self.lower_bound(Score(*score), member.as_bytes());
        if self.chunks.is_empty() {
            self.chunks.push(Vec::with_capacity(CHUNK_CAPACITY));
        } else if chunk == self.chunks.len() {
            // After the last pair: the end of the last chunk.
            chunk -= 1;
            offset = self.chunks[chunk].len();
        }
        let run = &mut self.chunks[chunk];
        run.insert(offset, at);
        if run.len() == CHUNK_CAPACITY {
            let mut right = Vec::with_capacity(CHUNK_CAPACITY);
            right.extend(run.drain(CHUNK_CAPACITY / 2..));
            self.chunks.insert(chunk + 1, right);
        }
    }

    /// Takes the pair at `place` out of the order.
    fn order_remove(&mut self, (chunk, offset): Place) {
        let run = &mut self.chunks[chunk];
        run.remove(offset);
        if run.is_empty() {
            self.chunks.remove(chunk);
            return;
        }
        if run.len() < CHUNK_MERGE_BELOW {
            // Merge with the next chunk (or the previous one) when both fit in one.
            let (left, right) = if chunk + 1 < self.chunks.len() {
                (chunk, chunk + 1)
            } else if chunk > 0 {
                (chunk - 1, chunk)
            } else {
                return;
            };
            if self.chunks[left].len() + self.chunks[right].len() < CHUNK_CAPACITY {
                let moved = self.chunks.remove(right);
                self.chunks[left].extend(moved);
            }
        }
    }
}

/// Pairs of an [`Indexed`] set in order, from both ends.
pub(super) struct Iter<'a> {
    indexed: &'a Indexed,
    /// The next pair from the front.
    front: Place,
    /// Just after the next pair from the back.
    back: Place,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], f64);

    // Inlined into the caller's loop (a rank range called it through another codegen unit
    // for each pair, the pair coming back through the stack).
    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.front == self.back {
            return None;
        }
        let (chunk, offset) = self.front;
        let chunks = &self.indexed.chunks;
        let at = chunks[chunk][offset];
        self.front = if offset + 1 == chunks[chunk].len() {
            (chunk + 1, 0)
        } else {
            (chunk, offset + 1)
        };
        Some(self.indexed.pair(at))
    }
}

impl DoubleEndedIterator for Iter<'_> {
    #[inline]
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.front == self.back {
            return None;
        }
        let (chunk, offset) = self.back;
        let chunks = &self.indexed.chunks;
        self.back = if offset == 0 {
            (chunk - 1, chunks[chunk - 1].len() - 1)
        } else {
            (chunk, offset - 1)
        };
        Some(self.indexed.pair(chunks[self.back.0][self.back.1]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic generator for the randomized comparison below.
    fn next(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    fn check(indexed: &Indexed, model: &std::collections::BTreeSet<(Score, Vec<u8>)>) {
        let got: Vec<(Vec<u8>, f64)> = indexed.iter().map(|(m, s)| (m.to_vec(), s)).collect();
        let want: Vec<(Vec<u8>, f64)> = model.iter().map(|(s, m)| (m.clone(), s.0)).collect();
        assert_eq!(got, want);
        let back: Vec<(Vec<u8>, f64)> =
            indexed.iter().rev().map(|(m, s)| (m.to_vec(), s)).collect();
        assert_eq!(back, want.iter().rev().cloned().collect::<Vec<_>>());
        assert_eq!(indexed.len(), model.len());
        for chunk in &indexed.chunks {
            assert!(!chunk.is_empty() && chunk.len() < CHUNK_CAPACITY);
        }
    }

    #[test]
    fn follows_an_ordered_set_through_random_changes() {
        let mut state = 0x2545_f491_4f6c_dd1d;
        let mut indexed = Indexed::default();
        let mut model = std::collections::BTreeSet::new();
        let mut scores = std::collections::HashMap::new();
        for step in 0..20_000 {
            let member = format!("m{}", next(&mut state) % 1500).into_bytes();
            // Few distinct scores, so ties ordered by member are common.
            let score = (next(&mut state) % 50) as f64 - 25.0;
            match next(&mut state) % 4 {
                0 | 1 => match scores.get(&member).copied() {
                    None => {
                        indexed.insert_new(&member, score);
                        model.insert((Score(score), member.clone()));
                        scores.insert(member, score);
                    }
                    Some(old) => {
                        indexed.set_score(&member, score);
                        model.remove(&(Score(old), member.clone()));
                        model.insert((Score(score), member.clone()));
                        scores.insert(member, score);
                    }
                },
                _ => {
                    let removed = scores.remove(&member);
                    assert_eq!(indexed.remove(&member), removed.is_some());
                    if let Some(old) = removed {
                        model.remove(&(Score(old), member.clone()));
                    }
                }
            }
            if step % 997 == 0 {
                check(&indexed, &model);
                for (rank, (score, member)) in model.iter().enumerate() {
                    assert_eq!(indexed.rank(member), Some((rank, score.0)));
                    assert_eq!(indexed.score(member), Some(score.0));
                }
                let want: Vec<(Vec<u8>, f64)> =
                    model.iter().map(|(s, m)| (m.clone(), s.0)).collect();
                for (first, end) in [(0, 1), (0, 500), (3, 200), (130, 131), (400, 2000)] {
                    let got: Vec<_> = indexed
                        .rank_range(first, end)
                        .map(|(m, s)| (m.to_vec(), s))
                        .collect();
                    let end = end.min(want.len());
                    let expected = want.get(first.min(end)..end).unwrap_or_default();
                    assert_eq!(got, expected, "ranks {first}..{end}");
                    let back: Vec<_> = indexed
                        .rank_range(first, end)
                        .rev()
                        .map(|(m, s)| (m.to_vec(), s))
                        .collect();
                    assert_eq!(back.len(), expected.len());
                }
                for low in [-30.0, -3.0, 0.0, 7.5, 24.0, 30.0] {
                    for high in [None, Some(-25.0), Some(0.0), Some(10.0), Some(40.0)] {
                        let got: Vec<_> = indexed
                            .score_range(low, high)
                            .map(|(m, s)| (m.to_vec(), s))
                            .collect();
                        let want: Vec<_> = model
                            .iter()
                            .filter(|(s, _)| s.0 >= low && high.is_none_or(|h| s.0 < h))
                            .map(|(s, m)| (m.clone(), s.0))
                            .collect();
                        assert_eq!(got, want, "[{low}, {high:?})");
                    }
                }
            }
        }
        check(&indexed, &model);
        let members: Vec<Vec<u8>> = scores.keys().cloned().collect();
        for member in members {
            assert!(indexed.remove(&member));
        }
        assert_eq!((indexed.len(), indexed.chunks.len()), (0, 0));
    }

    #[test]
    fn built_in_order_and_iterated_from_both_ends() {
        let pairs: Vec<(Vec<u8>, f64)> = (0..1000)
            .map(|i| (format!("member:{i:06}").into_bytes(), f64::from(i / 3)))
            .collect();
        let indexed = Indexed::from_ordered(pairs.iter().map(|(m, s)| (SplitBytes::whole(m), *s)));
        assert_eq!(indexed.len(), 1000);
        let mut iter = indexed.iter();
        let mut front = Vec::new();
        let mut back = Vec::new();
        // Alternate ends until they meet: every pair once.
        while let Some(pair) = iter.next() {
            front.push(pair);
            match iter.next_back() {
                Some(pair) => back.push(pair),
                None => break,
            }
        }
        back.reverse();
        front.extend(back);
        let want: Vec<(&[u8], f64)> = pairs.iter().map(|(m, s)| (m.as_slice(), *s)).collect();
        assert_eq!(front, want);
        assert_eq!(indexed.rank(b"member:000500"), Some((500, 166.0)));
    }
}
