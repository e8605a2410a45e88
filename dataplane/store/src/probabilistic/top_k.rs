//! Top-k by HeavyKeeper as RedisBloom builds it (`TOPK.*`): a `depth x width` table of
//! (fingerprint, count) buckets, where a colliding item decays the resident's count with
//! probability `decay^count`, and a min-heap of the `k` heaviest items seen.
//!
//! Decay needs random draws: each sketch carries its own xorshift generator with a fixed seed,
//! so the same commands give the same answers (RedisBloom uses the process's `rand()`).

use super::murmur_hash2;

/// Most bytes one top-k's table and heap may take (`width * depth` buckets of 8 bytes and `k`
/// heap slots of 24), checked before either is allocated: TOPK.RESERVE's few bytes of arguments
/// must not make a shard allocate gigabytes. 512 MiB, the size of the largest string Redis
/// accepts by default (proto-max-bulk-len), is far past any useful sketch (RedisBloom's examples
/// use k in the tens and width in the thousands); RedisBloom itself refuses a size its allocator
/// cannot provide with the same "Insufficient memory" error.
pub const TOP_K_BYTES_MAX: u64 = 512 << 20;

/// Seed of the item fingerprint (RedisBloom's `GA`).
const FINGERPRINT_SEED: u32 = 1919;

/// Decay powers kept in a table (RedisBloom's `TOPK_DECAY_LOOKUP_TABLE`).
const DECAY_TABLE_LEN: usize = 256;

/// Seed of every sketch's generator (any odd constant: it only has to be fixed).
const RNG_SEED: u64 = 0x9e37_79b9_7f4a_7c15;

#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Bucket {
    fingerprint: u32,
    count: u32,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct HeapSlot {
    fingerprint: u32,
    count: u32,
    /// `None` for a slot never filled.
    item: Option<Box<[u8]>>,
}

/// A HeavyKeeper top-k.
#[derive(Debug, Clone, PartialEq)]
pub struct TopK {
    k: u32,
    width: u32,
    depth: u32,
    decay: f64,
    buckets: Vec<Bucket>,
    /// Min-heap on count: slot 0 is the lightest (the next to be expelled).
    heap: Vec<HeapSlot>,
    decay_powers: Vec<f64>,
    rng_state: u64,
}

impl TopK {
    /// The bytes a top-k of `k` items over a `width x depth` table allocates for its table and
    /// heap (not counting the items the heap comes to hold); at most a few times 2^64, so it
    /// cannot overflow a `u128`.
    pub fn bytes_for(k: u32, width: u32, depth: u32) -> u128 {
        let cells = u128::from(width) * u128::from(depth);
        cells * std::mem::size_of::<Bucket>() as u128
            + u128::from(k) * std::mem::size_of::<HeapSlot>() as u128
    }

    /// A top-k of `k` items over a `width x depth` table; `None` when its table and heap would
    /// take more than [`TOP_K_BYTES_MAX`] (checked before allocating either).
    pub fn new(k: u32, width: u32, depth: u32, decay: f64) -> Option<Self> {
        assert!(
            k >= 1 && width >= 1 && depth >= 1,
            "checked where they enter"
        );
        assert!(decay > 0.0 && decay <= 1.0, "checked where it enters");
        if Self::bytes_for(k, width, depth) > u128::from(TOP_K_BYTES_MAX) {
            return None;
        }
        let cells = u64::from(width) * u64::from(depth);
        Some(Self {
            k,
            width,
            depth,
            decay,
            buckets: vec![Bucket::default(); cells as usize],
            heap: vec![HeapSlot::default(); k as usize],
            decay_powers: (0..DECAY_TABLE_LEN)
                .map(|power| decay.powi(power as i32))
                .collect(),
            rng_state: RNG_SEED,
        })
    }

    /// A uniform draw in [0, 1).
    fn draw(&mut self) -> f64 {
        let mut x = self.rng_state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng_state = x;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `decay^count`, from the table where it can.
    fn decay_probability(&self, count: u32) -> f64 {
        let last = DECAY_TABLE_LEN - 1;
        let count = count as usize;
        if count < DECAY_TABLE_LEN {
            self.decay_powers[count]
        } else {
            self.decay_powers[last].powi((count / last) as i32) * self.decay_powers[count % last]
        }
    }

    fn heap_position(&self, item: &[u8], fingerprint: u32) -> Option<usize> {
        self.heap
            .iter()
            .position(|slot| slot.fingerprint == fingerprint && slot.item.as_deref() == Some(item))
    }

    /// Adds `increment` occurrences of `item`; the item expelled from the top-k to make room
    /// for it, if one was.
    pub fn add(&mut self, item: &[u8], increment: u32) -> Option<Box<[u8]>> {
        let fingerprint = murmur_hash2(item, FINGERPRINT_SEED);
        let heap_min = self.heap[0].count;
        let mut heaviest = 0u32;
        for row in 0..self.depth {
            let column = murmur_hash2(item, row) % self.width;
            let cell = (row * self.width + column) as usize;
            let bucket = self.buckets[cell];
            if bucket.count == 0 {
                self.buckets[cell] = Bucket {
                    fingerprint,
                    count: increment,
                };
                heaviest = heaviest.max(increment);
            } else if bucket.fingerprint == fingerprint {
                let count = bucket.count.saturating_add(increment);
                self.buckets[cell].count = count;
                heaviest = heaviest.max(count);
            } else {
                let mut remaining = increment;
                while remaining > 0 {
                    let count = self.buckets[cell].count;
                    if self.draw() < self.decay_probability(count) {
                        self.buckets[cell].count = count - 1;
                        if count == 1 {
                            self.buckets[cell] = Bucket {
                                fingerprint,
                                count: remaining,
                            };
                            heaviest = heaviest.max(remaining);
                            break;
                        }
                    }
                    remaining -= 1;
                }
            }
        }
        if heaviest < heap_min {
            return None;
        }
        if let Some(position) = self.heap_position(item, fingerprint) {
            // The table's count, not the larger of the two: it may have decayed.
            self.heap[position].count = heaviest;
            self.sift_down(position);
            return None;
        }
        let expelled = std::mem::replace(
            &mut self.heap[0],
            HeapSlot {
                fingerprint,
                count: heaviest,
                item: Some(item.into()),
            },
        );
        self.sift_down(0);
        expelled.item
    }

    fn sift_down(&mut self, mut position: usize) {
        let len = self.heap.len();
        loop {
            let left = 2 * position + 1;
            if left >= len {
                return;
            }
            let right = left + 1;
            let child = if right < len && self.heap[right].count < self.heap[left].count {
                right
            } else {
                left
            };
            if self.heap[child].count >= self.heap[position].count {
                return;
            }
            self.heap.swap(child, position);
            position = child;
        }
    }

    /// Whether `item` is in the top-k.
    pub fn contains(&self, item: &[u8]) -> bool {
        self.heap_position(item, murmur_hash2(item, FINGERPRINT_SEED))
            .is_some()
    }

    /// `item`'s estimated count (TOPK.COUNT).
    pub fn count(&self, item: &[u8]) -> u32 {
        let fingerprint = murmur_hash2(item, FINGERPRINT_SEED);
        let heap_min = self.heap[0].count;
        let in_heap = self.heap_position(item, fingerprint).is_some();
        (0..self.depth)
            .map(|row| {
                self.buckets[(row * self.width + murmur_hash2(item, row) % self.width) as usize]
            })
            .filter(|bucket| {
                bucket.fingerprint == fingerprint && (!in_heap || bucket.count >= heap_min)
            })
            .map(|bucket| bucket.count)
            .max()
            .unwrap_or(0)
    }

    /// The top-k items with their counts, heaviest first (TOPK.LIST).
    pub fn list(&self) -> Vec<(&[u8], u32)> {
        let mut items: Vec<(&[u8], u32)> = self
            .heap
            .iter()
            .filter(|slot| slot.count > 0)
            .filter_map(|slot| Some((slot.item.as_deref()?, slot.count)))
            .collect();
        items.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        items
    }

    /// The number of items kept.
    pub fn k(&self) -> u32 {
        self.k
    }

    /// Buckets per row.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Rows.
    pub fn depth(&self) -> u32 {
        self.depth
    }

    /// The decay base.
    pub fn decay(&self) -> f64 {
        self.decay
    }

    /// Bytes used (MEMORY USAGE).
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.buckets.len() * std::mem::size_of::<Bucket>()
            + self.heap.len() * std::mem::size_of::<HeapSlot>()
            + self
                .heap
                .iter()
                .filter_map(|slot| slot.item.as_ref())
                .map(|item| item.len())
                .sum::<usize>()
            + self.decay_powers.len() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heavy_items_win() {
        let mut top = TopK::new(3, 50, 4, 0.9).unwrap();
        let mut expelled = Vec::new();
        for round in 0..100u32 {
            for (item, weight) in [(&b"heavy"[..], 10), (b"middle", 5), (b"light", 2)] {
                top.add(item, weight);
            }
            if let Some(item) = top.add(format!("noise{round}").as_bytes(), 1) {
                expelled.push(item);
            }
        }
        let listed: Vec<&[u8]> = top.list().iter().map(|(item, _)| *item).collect();
        assert_eq!(listed, [&b"heavy"[..], b"middle", b"light"]);
        assert!(top.contains(b"heavy") && !top.contains(b"noise5"));
        assert_eq!(top.count(b"heavy"), 1000);
        // The three heavy items took the heap in the first round: no noise ever entered it.
        assert!(expelled.is_empty());
    }

    #[test]
    fn size_is_bounded_before_allocating() {
        // Named cases: (k, width, depth, accepted).
        let cases: [(&str, u32, u32, u32, bool); 6] = [
            ("defaults", 10, 8, 7, true),
            (
                "table at the bound",
                1,
                (TOP_K_BYTES_MAX / 8 / 2) as u32 - 3,
                2,
                true,
            ),
            ("table past the bound", 1, 1 << 26, 1, false),
            ("heap past the bound (k alone)", 50_000_000, 1, 1, false),
            ("largest dimensions", u32::MAX, u32::MAX, u32::MAX, false),
            ("table and heap together", 11_184_811, 1 << 25, 1, false),
        ];
        for (name, k, width, depth, accepted) in cases {
            let bytes = TopK::bytes_for(k, width, depth);
            assert_eq!(
                bytes <= u128::from(TOP_K_BYTES_MAX),
                accepted,
                "{name}: {bytes} bytes"
            );
            if !accepted {
                // Refused before allocating: a case past the bound would take gigabytes here.
                assert!(TopK::new(k, width, depth, 0.9).is_none(), "{name}");
            }
        }
        let top = TopK::new(10, 8, 7, 0.9).expect("defaults fit");
        assert!(top.memory_bytes() as u128 >= TopK::bytes_for(10, 8, 7));
    }

    #[test]
    fn first_adds_fill_empty_slots() {
        let mut top = TopK::new(2, 8, 7, 0.9).unwrap();
        assert_eq!(top.add(b"a", 1), None);
        assert_eq!(top.add(b"b", 1), None);
        let expelled = top.add(b"c", 5).expect("a full heap expels its lightest");
        assert!(&*expelled == b"a" || &*expelled == b"b");
        assert_eq!(top.list()[0], (&b"c"[..], 5));
    }
}
