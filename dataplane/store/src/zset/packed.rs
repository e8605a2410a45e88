//! The listpack size class of a sorted set: the (score, member) pairs in order, back to back in
//! one exactly sized buffer whose 4-byte header is the pair count, as Redis's listpack keeps
//! them. A pair is
//!
//! - a header varint: the member's length shifted left by one, the low bit set when the score
//!   is kept as an integer;
//! - the score: a zigzag varint when it is an integer of magnitude at most 2^53 (every such
//!   integer is exact in an f64), else the f64's eight little-endian bytes;
//! - the member's bytes.
//!
//! A member of 13 bytes with a small integer score takes 15 bytes, where a `(Score,
//! CompactBytes)` pair takes 32. Lookups scan, as a listpack's do; the class holds at most
//! `zset-max-listpack-entries` short members. Walking from the end (ZREVRANGE) first collects
//! where each pair starts.

use std::cmp::Ordering;

use super::Score;
use crate::compact::PackedBuf;
use crate::varint;

/// Largest magnitude of a score kept as an integer: every integer up to it is exact in an f64.
const INT_SCORE_MAX: f64 = (1u64 << 53) as f64;

/// The pairs of a sorted set in the packed class, lowest (score, member) first.
#[derive(Clone, Default)]
pub(super) struct PackedPairs {
    buf: PackedBuf<4>,
}

/// A pair decoded from the buffer.
struct Decoded<'a> {
    member: &'a [u8],
    score: f64,
    /// Byte just after the pair.
    end: usize,
}

/// The integer a score is kept as, when it is one.
fn int_score(score: f64) -> Option<i64> {
    (score.fract() == 0.0 && score.abs() <= INT_SCORE_MAX).then_some(score as i64)
}

/// Appends the encoded pair to `out`.
fn encode(out: &mut Vec<u8>, member: &[u8], score: f64) {
    let int = int_score(score);
    varint::push(out, (member.len() as u64) << 1 | u64::from(int.is_some()));
    match int {
        Some(int) => varint::push(out, ((int << 1) ^ (int >> 63)) as u64),
        None => out.extend_from_slice(&score.to_le_bytes()),
    }
    out.extend_from_slice(member);
}

/// Decodes the pair that starts at `at`.
fn decode(data: &[u8], mut at: usize) -> Decoded<'_> {
    let header = varint::read(data, &mut at);
    let member_len = (header >> 1) as usize;
    let score = if header & 1 == 1 {
        let zigzag = varint::read(data, &mut at);
        (((zigzag >> 1) as i64) ^ -((zigzag & 1) as i64)) as f64
    } else {
        let bytes = data[at..at + 8].try_into().expect("eight bytes");
        at += 8;
        f64::from_le_bytes(bytes)
    };
    let member = &data[at..at + member_len];
    at += member_len;
    Decoded {
        member,
        score,
        end: at,
    }
}

/// (score, member) order, as the indexed class orders its pairs.
fn compare(score: f64, member: &[u8], other_score: f64, other_member: &[u8]) -> Ordering {
    Score(score)
        .cmp(&Score(other_score))
        .then_with(|| member.cmp(other_member))
}

impl PackedPairs {
    pub(super) fn len(&self) -> usize {
        u32::from_le_bytes(self.buf.header()) as usize
    }

    fn set_len(&mut self, len: usize) {
        let len = u32::try_from(len).expect("a packed sorted set holds fewer than 2^32 pairs");
        self.buf.set_header(len.to_le_bytes());
    }

    fn data(&self) -> &[u8] {
        self.buf.body()
    }

    /// The pairs in order.
    pub(super) fn iter(&self) -> PackedIter<'_> {
        PackedIter::new(self.data())
    }

    /// Byte offsets at which each pair starts, with the pair.
    fn pairs(&self) -> impl Iterator<Item = (usize, Decoded<'_>)> + '_ {
        let data = self.data();
        let mut at = 0;
        std::iter::from_fn(move || {
            (at < data.len()).then(|| {
                let start = at;
                let pair = decode(data, at);
                at = pair.end;
                (start, pair)
            })
        })
    }

    /// The rank (0 for the lowest pair) and score of `member`.
    pub(super) fn find(&self, member: &[u8]) -> Option<(usize, f64)> {
        self.pairs()
            .enumerate()
            .find(|(_, (_, pair))| pair.member == member)
            .map(|(rank, (_, pair))| (rank, pair.score))
    }

    /// Stores a member that is not in the set yet, in order.
    pub(super) fn insert(&mut self, member: &[u8], score: f64) {
        let at = self
            .pairs()
            .find(|(_, pair)| compare(pair.score, pair.member, score, member).is_ge())
            .map_or(self.data().len(), |(start, _)| start);
        let mut encoded = Vec::with_capacity(member.len() + 12);
        encode(&mut encoded, member, score);
        self.buf.splice(at..at, &encoded);
        self.set_len(self.len() + 1);
    }

    /// Removes `member`; false when it was not there.
    pub(super) fn remove(&mut self, member: &[u8]) -> bool {
        let Some((start, end)) = self
            .pairs()
            .find(|(_, pair)| pair.member == member)
            .map(|(start, pair)| (start, pair.end))
        else {
            return false;
        };
        self.buf.splice(start..end, &[]);
        self.set_len(self.len() - 1);
        true
    }

    /// The pairs whose scores are at least `low` and below `high` (to the end when `None`).
    pub(super) fn score_range(&self, low: f64, high: Option<f64>) -> PackedIter<'_> {
        let first_at_least = |bound: f64| {
            self.pairs()
                .find(|(_, pair)| Score(pair.score) >= Score(bound))
                .map_or(self.data().len(), |(start, _)| start)
        };
        let start = first_at_least(low);
        let end = high.map_or(self.data().len(), first_at_least).max(start);
        PackedIter::new(&self.data()[start..end])
    }

    /// Heap bytes held.
    pub(super) fn heap_len(&self) -> usize {
        self.buf.heap_len()
    }
}

/// Pairs of a packed sorted set, in order from either end, as (member, score).
#[derive(Clone)]
pub(super) struct PackedIter<'a> {
    /// Whole encoded pairs.
    data: &'a [u8],
    /// The pairs not yet returned are those of `data[front..back]`.
    front: usize,
    back: usize,
    /// Where the pairs start, collected at the first step from the end (the pairs carry no
    /// back-length); those not yet returned from the end.
    starts: Vec<usize>,
}

impl<'a> PackedIter<'a> {
    fn new(data: &'a [u8]) -> Self {
        PackedIter {
            data,
            front: 0,
            back: data.len(),
            starts: Vec::new(),
        }
    }

    /// No pairs.
    pub(super) fn empty() -> Self {
        Self::new(&[])
    }
}

impl<'a> Iterator for PackedIter<'a> {
    type Item = (&'a [u8], f64);

    fn next(&mut self) -> Option<Self::Item> {
        if self.front >= self.back {
            return None;
        }
        let pair = decode(self.data, self.front);
        self.front = pair.end;
        Some((pair.member, pair.score))
    }
}

impl DoubleEndedIterator for PackedIter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.front >= self.back {
            return None;
        }
        if self.starts.is_empty() {
            let mut at = self.front;
            while at < self.back {
                self.starts.push(at);
                at = decode(self.data, at).end;
            }
        }
        let start = self.starts.pop().expect("pairs left");
        let pair = decode(self.data, start);
        self.back = start;
        Some((pair.member, pair.score))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_round_trip_from_both_ends() {
        let long = vec![b'm'; 300];
        let cases: Vec<(&[u8], f64)> = vec![
            (b"", 0.0),
            (b"int", 7.0),
            (b"negative", -3.0),
            (b"big", 9_007_199_254_740_992.0),
            (b"beyond", 1e300),
            (b"fraction", 2.5),
            (b"infinite", f64::INFINITY),
            (b"negative-infinite", f64::NEG_INFINITY),
            (&long, 1.0),
        ];
        let mut pairs = PackedPairs::default();
        for (member, score) in &cases {
            pairs.insert(member, *score);
        }
        let mut expected = cases.clone();
        expected.sort_by(|a, b| compare(a.1, a.0, b.1, b.0));
        assert_eq!(pairs.len(), cases.len());
        assert_eq!(pairs.iter().collect::<Vec<_>>(), expected);
        let mut backwards: Vec<_> = pairs.iter().rev().collect();
        backwards.reverse();
        assert_eq!(backwards, expected);
        assert_eq!(pairs.heap_len(), 4 + pairs.data().len(), "exactly sized");
        // 13-byte members with small integer scores: 15 bytes a pair, after the 4-byte count.
        let mut small = PackedPairs::default();
        small.insert(b"member:000001", 1.0);
        assert_eq!(small.heap_len(), 4 + 15);
        assert_eq!(pairs.find(b"fraction"), Some((4, 2.5)));
        assert_eq!(pairs.find(b"absent"), None);
        assert!(pairs.remove(b"fraction"));
        assert!(!pairs.remove(b"fraction"));
        assert_eq!(pairs.len(), cases.len() - 1);
        assert_eq!(pairs.heap_len(), 4 + pairs.data().len(), "exactly sized");
        let in_range: Vec<f64> = pairs.score_range(0.0, Some(8.0)).map(|p| p.1).collect();
        assert_eq!(in_range, [0.0, 1.0, 7.0]);
        let from: Vec<f64> = pairs.score_range(7.0, None).rev().map(|p| p.1).collect();
        assert_eq!(from, [f64::INFINITY, 1e300, 9_007_199_254_740_992.0, 7.0]);
        assert_eq!(PackedIter::empty().count(), 0);
    }

    #[test]
    fn both_ends_meet_in_the_middle() {
        let mut pairs = PackedPairs::default();
        for i in 0..7 {
            pairs.insert(format!("m{i}").as_bytes(), f64::from(i));
        }
        let mut iter = pairs.iter();
        let mut seen = Vec::new();
        // Back, front, back, back, front...: every pair once, none twice.
        for step in 0..9 {
            let pair = if step % 3 == 1 {
                iter.next()
            } else {
                iter.next_back()
            };
            seen.push(pair.map(|(_, score)| score));
        }
        let expected = [6.0, 0.0, 5.0, 4.0, 1.0, 3.0, 2.0];
        let expected: Vec<Option<f64>> = expected.into_iter().map(Some).collect();
        assert_eq!(seen[..7], expected[..]);
        assert_eq!(seen[7..], [None, None]);
        let mut ranged = pairs.score_range(2.0, Some(5.0));
        assert_eq!(ranged.next_back().map(|p| p.1), Some(4.0));
        assert_eq!(ranged.next().map(|p| p.1), Some(2.0));
        assert_eq!(ranged.clone().rev().map(|p| p.1).collect::<Vec<_>>(), [3.0]);
    }

    #[test]
    fn negative_zero_is_kept_as_zero() {
        let mut pairs = PackedPairs::default();
        pairs.insert(b"z", -0.0);
        let (_, score) = pairs.iter().next().unwrap();
        assert!(score == 0.0 && score.is_sign_positive());
    }
}
