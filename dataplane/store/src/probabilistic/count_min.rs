//! A count-min sketch as RedisBloom builds one (`CMS.*`): `depth` rows of `width` 32-bit
//! counters; an item's count is the least of its counters, one per row (row `i` hashes with
//! MurmurHash2 seeded by `i`). Counters saturate at `u32::MAX`.

use std::fmt;

use super::{murmur_hash2, ModuleField};

/// Most counters (`width * depth`) one sketch may hold: 2^28, 1 GiB of 32-bit counters.
pub const COUNT_MIN_CELLS_MAX: u64 = 1 << 28;

/// Why a merge was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountMinError {
    /// A source's width or depth differs from the destination's.
    Dimensions,
    /// A weighted counter or total would leave `0..=u32::MAX` (counters) or `i64` (total).
    Overflow,
}

impl fmt::Display for CountMinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dimensions => write!(f, "width/depth is not equal"),
            Self::Overflow => write!(f, "MERGE overflow"),
        }
    }
}

impl std::error::Error for CountMinError {}

/// A count-min sketch.
#[derive(Debug, Clone, PartialEq)]
pub struct CountMinSketch {
    width: u32,
    depth: u32,
    /// Sum of every increment (CMS.INFO count).
    total: u64,
    counters: Vec<u32>,
}

impl CountMinSketch {
    /// A sketch of `width * depth` counters; `None` past [`COUNT_MIN_CELLS_MAX`].
    pub fn new(width: u64, depth: u64) -> Option<Self> {
        assert!(width >= 1 && depth >= 1, "checked where they enter");
        let cells = width
            .checked_mul(depth)
            .filter(|&cells| cells <= COUNT_MIN_CELLS_MAX)?;
        Some(Self {
            width: u32::try_from(width).ok()?,
            depth: u32::try_from(depth).ok()?,
            total: 0,
            counters: vec![0; cells as usize],
        })
    }

    /// RedisBloom's dimensions for an overestimate of at most `error` (a fraction of the
    /// total) with probability `1 - probability`: width `ceil(2 / error)`, depth
    /// `ceil(log10(probability) / log10(0.5))` (in single precision, as RedisBloom computes it).
    pub fn dimensions_for(error: f64, probability: f64) -> (u64, u64) {
        let width = (2.0 / error).ceil() as u64;
        let depth = ((probability as f32).log10() / 0.5f32.log10()).ceil() as u64;
        (width, depth)
    }

    fn cell(&self, item: &[u8], row: u32) -> usize {
        let column = murmur_hash2(item, row) % self.width;
        (row as usize) * self.width as usize + column as usize
    }

    /// Adds `increment` to `item`'s counters; the item's new estimate (`u32::MAX` once a
    /// counter saturated).
    pub fn increment(&mut self, item: &[u8], increment: u32) -> u32 {
        let mut least = u32::MAX;
        for row in 0..self.depth {
            let cell = self.cell(item, row);
            let counter = &mut self.counters[cell];
            *counter = counter.saturating_add(increment);
            least = least.min(*counter);
        }
        self.total = self.total.saturating_add(u64::from(increment));
        least
    }

    /// `item`'s estimate: never below its true count.
    pub fn query(&self, item: &[u8]) -> u32 {
        (0..self.depth)
            .map(|row| self.counters[self.cell(item, row)])
            .min()
            .expect("depth is at least 1")
    }

    /// The weighted sum of `sources`, a new sketch of this one's shape; `self` is only the
    /// destination's shape, so it may be among the sources, and a source named several times
    /// is read several times, never copied (CMS.MERGE borrows every source from the keyspace:
    /// `CMS.MERGE dst 100000 src src ...` must not cost 100000 copies of `src`).
    ///
    /// # Errors
    /// [`CountMinError::Dimensions`] when a source's shape differs, [`CountMinError::Overflow`]
    /// when a weighted counter leaves `0..=u32::MAX` or the total leaves `0..=i64::MAX`.
    pub fn merged(&self, sources: &[(&CountMinSketch, i64)]) -> Result<Self, CountMinError> {
        if sources
            .iter()
            .any(|(source, _)| (source.width, source.depth) != (self.width, self.depth))
        {
            return Err(CountMinError::Dimensions);
        }
        let mut counters = Vec::with_capacity(self.counters.len());
        for cell in 0..self.counters.len() {
            let mut sum: i64 = 0;
            for (source, weight) in sources {
                sum = i64::from(source.counters[cell])
                    .checked_mul(*weight)
                    .and_then(|product| sum.checked_add(product))
                    .ok_or(CountMinError::Overflow)?;
            }
            counters.push(u32::try_from(sum).map_err(|_| CountMinError::Overflow)?);
        }
        let mut total: i64 = 0;
        for (source, weight) in sources {
            total = i64::try_from(source.total)
                .ok()
                .and_then(|count| count.checked_mul(*weight))
                .and_then(|product| total.checked_add(product))
                .ok_or(CountMinError::Overflow)?;
        }
        Ok(Self {
            width: self.width,
            depth: self.depth,
            total: u64::try_from(total).map_err(|_| CountMinError::Overflow)?,
            counters,
        })
    }

    /// Counters per row.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Rows.
    pub fn depth(&self) -> u32 {
        self.depth
    }

    /// Sum of every increment.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Bytes used (MEMORY USAGE).
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.counters.len() * 4
    }

    /// The value as RedisBloom's `CMSRdbSave` writes it (encoding version 0): width, depth,
    /// total, and the counters row by row (32-bit little endian).
    pub fn rdb_fields(&self) -> Vec<ModuleField> {
        vec![
            ModuleField::Unsigned(u64::from(self.width)),
            ModuleField::Unsigned(u64::from(self.depth)),
            ModuleField::Unsigned(self.total),
            ModuleField::Buffer(
                self.counters
                    .iter()
                    .flat_map(|counter| counter.to_le_bytes())
                    .collect(),
            ),
        ]
    }

    /// A sketch from [`CountMinSketch::rdb_fields`]' stream; `None` when it does not describe
    /// one (zero or too large dimensions, a counter array of another length).
    pub fn from_rdb_fields(fields: &[ModuleField]) -> Option<Self> {
        let [ModuleField::Unsigned(width), ModuleField::Unsigned(depth), ModuleField::Unsigned(total), ModuleField::Buffer(bytes)] =
            fields
        else {
            return None;
        };
        if *width == 0 || *depth == 0 {
            return None;
        }
        let mut sketch = Self::new(*width, *depth)?;
        if bytes.len() != sketch.counters.len() * 4 {
            return None;
        }
        for (counter, chunk) in sketch.counters.iter_mut().zip(bytes.chunks_exact(4)) {
            *counter = u32::from_le_bytes(chunk.try_into().expect("chunks of 4"));
        }
        sketch.total = *total;
        Some(sketch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dimensions_follow_redisbloom() {
        assert_eq!(CountMinSketch::dimensions_for(0.001, 0.01), (2000, 7));
        assert_eq!(CountMinSketch::dimensions_for(0.01, 0.002), (200, 9));
    }

    #[test]
    fn counts_never_under_estimate() {
        let mut sketch = CountMinSketch::new(50, 4).unwrap();
        for index in 0..500u32 {
            sketch.increment(&(index % 37).to_le_bytes(), 1 + index % 3);
        }
        let mut truth = [0u32; 37];
        for index in 0..500u32 {
            truth[(index % 37) as usize] += 1 + index % 3;
        }
        for (item, &count) in truth.iter().enumerate() {
            assert!(sketch.query(&(item as u32).to_le_bytes()) >= count);
        }
        assert_eq!(
            sketch.total(),
            truth.iter().map(|&c| u64::from(c)).sum::<u64>()
        );
    }

    #[test]
    fn merge_weights_and_refusals() {
        let mut a = CountMinSketch::new(10, 2).unwrap();
        let mut b = CountMinSketch::new(10, 2).unwrap();
        a.increment(b"x", 3);
        b.increment(b"x", 4);
        let dest = CountMinSketch::new(10, 2).unwrap();
        let dest = dest.merged(&[(&a, 1), (&b, 2)]).unwrap();
        assert_eq!((dest.query(b"x"), dest.total()), (11, 11));
        assert_eq!(dest.merged(&[(&a, -1)]), Err(CountMinError::Overflow));
        // The destination among its sources, and one source named twice: read, not copied.
        let doubled = dest.merged(&[(&dest, 1), (&a, 1), (&a, 1)]).unwrap();
        assert_eq!((doubled.query(b"x"), doubled.total()), (17, 17));
        let other = CountMinSketch::new(11, 2).unwrap();
        assert_eq!(dest.merged(&[(&other, 1)]), Err(CountMinError::Dimensions));
        assert!(CountMinSketch::new(1 << 20, 1 << 20).is_none());
    }

    #[test]
    fn rdb_fields_round_trip() {
        let mut sketch = CountMinSketch::new(50, 3).unwrap();
        for index in 0..200u32 {
            sketch.increment(&index.to_le_bytes(), index % 7 + 1);
        }
        let fields = sketch.rdb_fields();
        assert_eq!(CountMinSketch::from_rdb_fields(&fields), Some(sketch));
        assert_eq!(CountMinSketch::from_rdb_fields(&fields[..3]), None);
        let mut wrong = fields.clone();
        wrong[0] = ModuleField::Unsigned(49);
        assert_eq!(CountMinSketch::from_rdb_fields(&wrong), None);
    }
}
