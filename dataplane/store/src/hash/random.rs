//! HRANDFIELD's sampling.

use std::borrow::Cow;

use rand::Rng;

use super::{HashValue, Repr};

impl HashValue {
    /// HRANDFIELD key count: for a positive `count`, that many distinct live fields (all of
    /// them, in the hash's order, when `count` is at least the size) in random order; for a
    /// negative one, `-count` independent uniform picks that may repeat; none for 0. As in Redis
    /// 7.4 (whose tests say so), due fields not yet removed can be picked.
    pub fn random_fields(&self, count: i64, rng: &mut impl Rng) -> Vec<(Cow<'_, [u8]>, &[u8])> {
        let len = self.len();
        // Packed fields are found by walking the buffer, so gather them once; a table's are
        // indexed directly.
        let packed: Vec<_> = match &self.repr {
            Repr::Packed(packed) => packed.iter().collect(),
            Repr::Table(_) => Vec::new(),
        };
        let pair = |at: usize| match &self.repr {
            Repr::Packed(_) => (packed[at].name.bytes(), packed[at].value),
            Repr::Table(table) => {
                let (name, value) = table.records.get(at);
                (Cow::Borrowed(name), value)
            }
        };
        if len == 0 || count == 0 {
            return Vec::new();
        }
        if count < 0 {
            let picks = count.unsigned_abs();
            return (0..picks).map(|_| pair(rng.gen_range(0..len))).collect();
        }
        let wanted = usize::try_from(count).unwrap_or(usize::MAX);
        if wanted >= len {
            return (0..len).map(pair).collect();
        }
        // rand picks Floyd's method for few of many and a partial shuffle otherwise.
        rand::seq::index::sample(rng, len, wanted)
            .into_iter()
            .map(pair)
            .collect()
    }

    /// HRANDFIELD key: one uniformly random stored field.
    pub fn random_field(&self, rng: &mut impl Rng) -> Option<(Cow<'_, [u8]>, &[u8])> {
        self.random_fields(1, rng).into_iter().next()
    }
}
