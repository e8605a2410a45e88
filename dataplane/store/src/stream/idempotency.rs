//! Redis 8.6's idempotent production: XADD's `IDMP pid iid` and `IDMPAUTO pid`, and XCFGSET.
//!
//! A producer (pid) names each message with an idempotent ID (iid), its own or one computed
//! from the message's fields. The stream remembers, per producer, the iids it added recently
//! and the entry each became; an XADD repeating a remembered pair adds nothing and answers the
//! entry's ID, so a producer that retries after a lost reply or a crash adds a message at most
//! once. An iid is remembered for `IDMP-DURATION` seconds, and a producer keeps at most
//! `IDMP-MAXSIZE` of them (its oldest go first).

use std::collections::{HashMap, VecDeque};

use super::{StreamId, StreamValue};
use crate::compact::CompactBytes;

/// `IDMP-DURATION`'s default, seconds.
pub const IDMP_DURATION_DEFAULT_S: u64 = 100;
/// `IDMP-DURATION`'s range, seconds.
pub const IDMP_DURATION_RANGE_S: (u64, u64) = (1, 86_400);
/// `IDMP-MAXSIZE`'s default, iids per producer.
pub const IDMP_MAXSIZE_DEFAULT: u64 = 100;
/// `IDMP-MAXSIZE`'s range.
pub const IDMP_MAXSIZE_RANGE: (u64, u64) = (1, 10_000);

/// One producer's remembered iids, oldest first, and where each went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Producer {
    order: VecDeque<(CompactBytes, u64)>,
    entries: HashMap<CompactBytes, StreamId>,
}

/// A stream's idempotency settings, memory and counters (XINFO STREAM's `idmp-*`, `pids-*`,
/// `iids-*` fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotency {
    /// How long an iid is remembered, seconds.
    pub duration_s: u64,
    /// Most iids remembered per producer.
    pub max_size: u64,
    producers: HashMap<CompactBytes, Producer>,
    /// iids remembered over the stream's life.
    pub iids_added: u64,
    /// XADDs that repeated a remembered iid and added nothing.
    pub iids_duplicates: u64,
}

impl Default for Idempotency {
    fn default() -> Self {
        Self {
            duration_s: IDMP_DURATION_DEFAULT_S,
            max_size: IDMP_MAXSIZE_DEFAULT,
            producers: HashMap::new(),
            iids_added: 0,
            iids_duplicates: 0,
        }
    }
}

impl Idempotency {
    /// Producers with an iid remembered.
    pub fn pids_tracked(&self) -> usize {
        self.producers.len()
    }

    /// iids remembered now.
    pub fn iids_tracked(&self) -> usize {
        self.producers
            .values()
            .map(|producer| producer.order.len())
            .sum()
    }

    /// Forgets the iids older than the duration.
    fn expire(&mut self, now_ms: u64) {
        let oldest_kept = now_ms.saturating_sub(self.duration_s.saturating_mul(1000));
        self.producers.retain(|_, producer| {
            while producer
                .order
                .front()
                .is_some_and(|&(_, added_ms)| added_ms < oldest_kept)
            {
                let (iid, _) = producer.order.pop_front().expect("checked");
                producer.entries.remove(&iid);
            }
            !producer.order.is_empty()
        });
    }

    fn heap_len(&self) -> usize {
        self.producers
            .iter()
            .map(|(pid, producer)| {
                pid.heap_len()
                    + producer
                        .order
                        .iter()
                        .map(|(iid, _)| 2 * iid.heap_len() + 64)
                        .sum::<usize>()
            })
            .sum()
    }
}

/// The iid IDMPAUTO computes from an entry's fields: the XOR of XXH3-128 over each field's
/// name and value, so the same fields give the same iid in any order.
pub fn auto_iid(fields: &[&[u8]]) -> [u8; 16] {
    let mut iid = 0u128;
    let mut pair = Vec::new();
    for chunk in fields.chunks(2) {
        pair.clear();
        for item in chunk {
            pair.extend_from_slice(item);
        }
        iid ^= xxhash_rust::xxh3::xxh3_128(&pair);
    }
    iid.to_be_bytes()
}

impl StreamValue {
    /// The entry an earlier XADD of `pid`'s `iid` became, if the stream still remembers it;
    /// a hit counts as a duplicate.
    pub fn idempotent_entry(&mut self, pid: &[u8], iid: &[u8], now_ms: u64) -> Option<StreamId> {
        let idmp = self.idmp.as_mut()?;
        idmp.expire(now_ms);
        let found = idmp.producers.get(pid)?.entries.get(iid).copied()?;
        idmp.iids_duplicates += 1;
        Some(found)
    }

    /// Remembers that `pid`'s `iid` became entry `id`.
    pub fn remember_idempotent(&mut self, pid: &[u8], iid: &[u8], id: StreamId, now_ms: u64) {
        let idmp = self.idmp.get_or_insert_with(Box::default);
        idmp.expire(now_ms);
        let max_size = idmp.max_size as usize;
        let producer = idmp.producers.entry(CompactBytes::new(pid)).or_default();
        let iid = CompactBytes::new(iid);
        producer.entries.insert(iid.clone(), id);
        producer.order.push_back((iid, now_ms));
        while producer.order.len() > max_size {
            let (old, _) = producer.order.pop_front().expect("longer than max_size");
            producer.entries.remove(&old);
        }
        idmp.iids_added += 1;
    }

    /// XCFGSET: new settings (each `None` keeps its value); every producer's memory is
    /// cleared, as Redis does.
    pub fn configure_idempotency(&mut self, duration_s: Option<u64>, max_size: Option<u64>) {
        let idmp = self.idmp.get_or_insert_with(Box::default);
        if let Some(duration_s) = duration_s {
            idmp.duration_s = duration_s;
        }
        if let Some(max_size) = max_size {
            idmp.max_size = max_size;
        }
        idmp.producers.clear();
    }

    /// The idempotency state, when the stream has been given one (an IDMP XADD or XCFGSET).
    pub fn idempotency(&self) -> Option<&Idempotency> {
        self.idmp.as_deref()
    }

    pub(super) fn idempotency_heap_len(&self) -> usize {
        self.idmp.as_ref().map_or(0, |idmp| {
            std::mem::size_of::<Idempotency>() + idmp.heap_len()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ms: u64) -> StreamId {
        StreamId::new(ms, 0)
    }

    #[test]
    fn a_remembered_iid_answers_its_entry_until_it_expires() {
        let mut stream = StreamValue::new();
        assert_eq!(stream.idempotent_entry(b"p", b"i", 0), None);
        stream.remember_idempotent(b"p", b"i", id(1), 1_000);
        assert_eq!(stream.idempotent_entry(b"p", b"i", 50_000), Some(id(1)));
        assert_eq!(stream.idempotent_entry(b"q", b"i", 50_000), None);
        // The default duration is 100 s.
        assert_eq!(stream.idempotent_entry(b"p", b"i", 100_999), Some(id(1)));
        assert_eq!(stream.idempotent_entry(b"p", b"i", 101_001), None);
        let idmp = stream.idempotency().unwrap();
        assert_eq!((idmp.iids_added, idmp.iids_duplicates), (1, 2));
        assert_eq!((idmp.pids_tracked(), idmp.iids_tracked()), (0, 0));
    }

    #[test]
    fn a_producer_keeps_its_newest_iids_up_to_max_size() {
        let mut stream = StreamValue::new();
        stream.configure_idempotency(None, Some(2));
        for ms in 1..=3 {
            stream.remember_idempotent(b"p", &[ms as u8], id(ms), 0);
        }
        assert_eq!(stream.idempotent_entry(b"p", &[1], 0), None);
        assert_eq!(stream.idempotent_entry(b"p", &[3], 0), Some(id(3)));
        assert_eq!(stream.idempotency().unwrap().iids_tracked(), 2);
        // XCFGSET forgets every producer's iids.
        stream.configure_idempotency(Some(5), None);
        assert_eq!(stream.idempotent_entry(b"p", &[3], 0), None);
        assert_eq!(stream.idempotency().unwrap().duration_s, 5);
    }

    #[test]
    fn auto_iids_ignore_field_order_and_see_every_byte() {
        let a = auto_iid(&[b"f", b"1", b"g", b"2"]);
        assert_eq!(a, auto_iid(&[b"g", b"2", b"f", b"1"]));
        assert_ne!(a, auto_iid(&[b"f", b"1", b"g", b"3"]));
        assert_ne!(a, auto_iid(&[b"f", b"1"]));
    }
}
