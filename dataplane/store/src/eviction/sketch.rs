//! TinyLFU's frequency estimate (Einziger, Friedman and Manes, 2017): a count-min sketch of
//! 8-bit counters (four rows, estimate = the smallest of a key's four counters), in front of
//! it a doorkeeper Bloom filter that absorbs each key's first occurrence so that one-hit keys
//! never reach the counters, and periodic aging: after `sample_size` increments every counter
//! is halved and the doorkeeper cleared, so the estimate follows recent popularity.

/// Rows of the count-min sketch (independent counters per key; the minimum is the estimate).
pub const DEPTH: usize = 4;

/// Largest value of a counter: 8 bits, where Caffeine has 4. With the sample floor below
/// ([`SAMPLE_MIN`]), a 4-bit counter saturated for every key a small cache should hold (in a
/// cache of 30 keys on Zipf 1.2, the 300 most popular keys all read 15), so the keys that
/// decide admission were ties: a hot key that left the cache was refused on its return
/// against a victim that was merely warm, and the cache drifted to a random draw of the warm
/// keys. That happens whenever something other than a new key takes the room (the server's
/// reply buffers while it answers a pipeline of hits take a tenth of a 40 KB limit): measured
/// with `ember-bench hitratio --keyspace-policies allkeys-tinylfu --pipeline 64 --reply-hold
/// 0.8` (Zipf 1.2, 500,000 requests, 0.1% of the working set), 49.31% hits with 4-bit counters,
/// 58.18% with 8-bit (allkeys-lfu 56.01%); without the pressure the two widths are within 0.7
/// points of each other on every generated trace and size.
pub const COUNTER_MAX: u64 = 255;

/// Bits of a counter.
const COUNTER_BITS: u64 = 8;

/// Counters per 64-bit word.
const COUNTERS_PER_WORD: u64 = 64 / COUNTER_BITS;

/// Increments between two halvings, per entry the cache holds: Caffeine's and the paper's
/// `W = 10 * C`, long enough to see a key's popularity, short enough to forget it.
pub const SAMPLE_PER_ENTRY: u64 = 10;

/// Fewest increments between two halvings, whatever the cache's size. In a cache of a hundred
/// keys, `10 * C` is a thousand requests, in which the keys that decide admission (those near
/// the hundredth most popular) occur about once: their estimates are 0, 1 or 2 by chance, and
/// the filter admits and rejects at random. Measured with `ember-bench hitratio` (Zipf 0.6 to
/// 1.2 and Zipf with scans, 100000 keys, seeds 1 to 3), a floor of 65536 raised W-TinyLFU by
/// 0.9 to 2.2 points at 0.1% and 1% of the working set, from 1.6 points behind the best policy
/// to within 0.12 of it; 131072 gained a little more on these static traces, but a longer
/// history is slower to follow a popularity that moves, so the floor stops here. Caches of
/// 6554 keys and more sample as Caffeine does.
pub const SAMPLE_MIN: u64 = 1 << 16;

/// Doorkeeper bits per increment of a sample: at most `sample_size` distinct keys reach it
/// between two clears; four bits each with two hash functions keep false positives near 15%.
pub const DOORKEEPER_BITS_PER_SAMPLE: u64 = 4;

/// Hash functions of the doorkeeper.
const DOORKEEPER_HASHES: u32 = 2;

/// Fewest counters per row: half of [`SAMPLE_MIN`], so that the distinct keys of one sample
/// of a small cache (up to thousands on a flat Zipf trace) rarely share all four counters with
/// a popular key. Measured on the same traces (seed 1): with the width of `WIDTH_PER_ENTRY`
/// alone (512 counters a row for a hundred keys) and the 65536-increment sample, W-TinyLFU's
/// largest gap to the best policy was 0.48 points; with this floor, 0.12. A minimum sketch
/// costs 128 KiB (four rows of 32768 8-bit counters) and its doorkeeper 32 KiB.
pub const WIDTH_MIN: u64 = SAMPLE_MIN / 2;

/// Counters per row for each entry the cache holds (rounded up to a power of two): Caffeine
/// gives its sketch one 64-bit word per entry, 16 4-bit counters, 4 of them per key, which is
/// four counters per entry in each of the four rows. Fewer make hash collisions inflate cold keys'
/// estimates in small caches, and admission turns into a coin toss.
pub const WIDTH_PER_ENTRY: u64 = 4;

/// SplitMix64's finaliser: a full-avalanche mix of a 64-bit key.
fn mix(mut value: u64) -> u64 {
    value = (value ^ (value >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    value = (value ^ (value >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    value ^ (value >> 31)
}

/// The sketch and its doorkeeper.
pub struct FrequencySketch {
    /// `DEPTH` rows of `width` 8-bit counters, row after row.
    table: Vec<u64>,
    width: u64,
    doorkeeper: Vec<u64>,
    doorkeeper_bits: u64,
    additions: u64,
    sample_size: u64,
    seed: u64,
}

impl FrequencySketch {
    /// A sketch sized for a cache of about `entries` keys.
    pub fn new(entries: u64, seed: u64) -> Self {
        let width = (entries.max(1).next_power_of_two() * WIDTH_PER_ENTRY).max(WIDTH_MIN);
        let sample_size = (entries.max(1) * SAMPLE_PER_ENTRY).max(SAMPLE_MIN);
        let doorkeeper_bits = (sample_size * DOORKEEPER_BITS_PER_SAMPLE).next_power_of_two();
        FrequencySketch {
            table: vec![0; (DEPTH as u64 * width / COUNTERS_PER_WORD) as usize],
            width,
            doorkeeper: vec![0; (doorkeeper_bits / 64).max(1) as usize],
            doorkeeper_bits,
            additions: 0,
            sample_size,
            seed,
        }
    }

    /// Sizes the sketch for a cache of about `entries` keys, keeping its counts: a keyspace
    /// that grows must not forget what it has seen. Widths and doorkeeper sizes are powers of
    /// two and a key's column is its hash masked to the width, so in a sketch twice as wide a
    /// key's counter sits at its old column or that plus the old width: each new counter (and
    /// doorkeeper bit) starts as the old one it folds onto, and every estimate is what it was.
    /// Never shrinks.
    pub fn grow_to(&mut self, entries: u64) {
        let mut grown = Self::new(entries, self.seed);
        if grown.width <= self.width && grown.doorkeeper_bits <= self.doorkeeper_bits {
            self.sample_size = self.sample_size.max(grown.sample_size);
            return;
        }
        let (old_row_words, new_row_words) = (self.row_words(), grown.row_words());
        for row in 0..DEPTH {
            for word in 0..new_row_words {
                grown.table[row * new_row_words + word] =
                    self.table[row * old_row_words + word % old_row_words];
            }
        }
        if grown.doorkeeper_bits >= self.doorkeeper_bits {
            let old_words = self.doorkeeper.len();
            for (word, bits) in grown.doorkeeper.iter_mut().enumerate() {
                *bits = self.doorkeeper[word % old_words];
            }
        }
        grown.additions = self.additions.min(grown.sample_size - 1);
        *self = grown;
    }

    /// 64-bit words per row of counters.
    fn row_words(&self) -> usize {
        (self.width / COUNTERS_PER_WORD) as usize
    }

    /// Increments between two agings.
    pub fn sample_size(&self) -> u64 {
        self.sample_size
    }

    /// Counters per row.
    pub fn width(&self) -> u64 {
        self.width
    }

    fn hashes(&self, key: u64) -> (u64, u64) {
        let first = mix(key ^ self.seed);
        (first, mix(first) | 1)
    }

    fn counter_position(&self, row: usize, first: u64, step: u64) -> (usize, u32) {
        let column = first.wrapping_add(step.wrapping_mul(row as u64)) & (self.width - 1);
        let index = row as u64 * self.width + column;
        (
            (index / COUNTERS_PER_WORD) as usize,
            ((index % COUNTERS_PER_WORD) * COUNTER_BITS) as u32,
        )
    }

    fn doorkeeper_position(&self, first: u64, step: u64, hash: u32) -> (usize, u64) {
        let bit = (first.rotate_left(32) ^ step.wrapping_mul(u64::from(hash) + 1))
            & (self.doorkeeper_bits - 1);
        ((bit / 64) as usize, 1 << (bit % 64))
    }

    fn doorkeeper_contains(&self, first: u64, step: u64) -> bool {
        (0..DOORKEEPER_HASHES).all(|hash| {
            let (word, mask) = self.doorkeeper_position(first, step, hash);
            self.doorkeeper[word] & mask != 0
        })
    }

    /// Records one occurrence of `key`.
    pub fn increment(&mut self, key: u64) {
        let (first, step) = self.hashes(key);
        if self.doorkeeper_contains(first, step) {
            for row in 0..DEPTH {
                let (word, shift) = self.counter_position(row, first, step);
                if (self.table[word] >> shift) & COUNTER_MAX < COUNTER_MAX {
                    self.table[word] += 1 << shift;
                }
            }
        } else {
            for hash in 0..DOORKEEPER_HASHES {
                let (word, mask) = self.doorkeeper_position(first, step, hash);
                self.doorkeeper[word] |= mask;
            }
        }
        self.additions += 1;
        if self.additions >= self.sample_size {
            self.age();
        }
    }

    /// The estimated occurrences of `key` in the current sample (0 to `COUNTER_MAX + 1`).
    pub fn frequency(&self, key: u64) -> u64 {
        let (first, step) = self.hashes(key);
        let counted = (0..DEPTH)
            .map(|row| {
                let (word, shift) = self.counter_position(row, first, step);
                (self.table[word] >> shift) & COUNTER_MAX
            })
            .min()
            .expect("DEPTH > 0");
        counted + u64::from(self.doorkeeper_contains(first, step))
    }

    /// Halves every counter and clears the doorkeeper.
    pub fn age(&mut self) {
        // Shifting a whole word right by one moves each counter's low bit into its
        // neighbour's high bit; the mask drops those bits.
        const HALVE_MASK: u64 = 0x7f7f_7f7f_7f7f_7f7f;
        for word in &mut self.table {
            *word = (*word >> 1) & HALVE_MASK;
        }
        self.doorkeeper.fill(0);
        self.additions /= 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_after_the_doorkeeper_and_saturates() {
        let mut sketch = FrequencySketch::new(1_000, 7);
        let cases: &[(u64, u64)] = &[
            // (increments of one key, expected estimate)
            (0, 0),
            (1, 1), // only the doorkeeper
            (2, 2), // doorkeeper + one counted
            (5, 5),
            (40, 40),
            (300, COUNTER_MAX + 1),
        ];
        for (index, &(increments, expected)) in cases.iter().enumerate() {
            let key = 1_000_000 + index as u64;
            for _ in 0..increments {
                sketch.increment(key);
            }
            assert_eq!(sketch.frequency(key), expected, "{increments} increments");
        }
    }

    #[test]
    fn small_caches_sample_at_least_the_floor_large_ones_as_caffeine() {
        let cases: &[(u64, u64, u64)] = &[
            // (entries, expected sample size, expected width)
            (1, SAMPLE_MIN, WIDTH_MIN),
            (100, SAMPLE_MIN, WIDTH_MIN),
            (6_553, SAMPLE_MIN, WIDTH_MIN),
            (6_554, 65_540, WIDTH_MIN),
            (100_000, 1_000_000, 131_072 * WIDTH_PER_ENTRY),
        ];
        for &(entries, sample_size, width) in cases {
            let sketch = FrequencySketch::new(entries, 1);
            assert_eq!(sketch.sample_size(), sample_size, "{entries} entries");
            assert_eq!(sketch.width(), width, "{entries} entries");
        }
    }

    #[test]
    fn growing_keeps_every_estimate() {
        // From the smallest sketch to one 64 times wider, with 2,000 keys counted 0 to 15
        // times; the seed is printed on failure by the assertion's message.
        let seed = 0x6709;
        let mut sketch = FrequencySketch::new(1_000, seed);
        for key in 0..2_000u64 {
            for _ in 0..key % 16 {
                sketch.increment(key);
            }
        }
        let before: Vec<u64> = (0..2_000).map(|key| sketch.frequency(key)).collect();
        let additions = sketch.additions;
        for entries in [1_000, 20_000, 200_000, 10_000] {
            sketch.grow_to(entries);
            let after: Vec<u64> = (0..2_000).map(|key| sketch.frequency(key)).collect();
            assert_eq!(after, before, "seed {seed}, grown to {entries}");
        }
        assert_eq!(sketch.width(), FrequencySketch::new(200_000, seed).width());
        assert_eq!(sketch.additions, additions);
        // New keys count in the wider sketch as in a fresh one.
        for _ in 0..3 {
            sketch.increment(1 << 40);
        }
        assert_eq!(sketch.frequency(1 << 40), 3);
    }

    #[test]
    fn aging_halves_counters_and_clears_the_doorkeeper() {
        let mut sketch = FrequencySketch::new(100, 3);
        for _ in 0..9 {
            sketch.increment(42);
        }
        assert_eq!(sketch.frequency(42), 9);
        // The sample ends after sample_size increments; count how many it takes.
        let mut increments = 9;
        let mut key = 1_000u64;
        loop {
            let before = sketch.additions;
            sketch.increment(key);
            key += 1;
            increments += 1;
            if sketch.additions < before {
                break;
            }
        }
        assert_eq!(
            increments,
            sketch.sample_size(),
            "ages exactly at the sample size"
        );
        assert_eq!(sketch.additions, sketch.sample_size() / 2);
        let mut fresh = FrequencySketch::new(100, 3);
        for _ in 0..9 {
            fresh.increment(42);
        }
        fresh.age();
        // Eight counted occurrences halve to four; the doorkeeper bit is gone.
        assert_eq!(fresh.frequency(42), 4);
    }
}
