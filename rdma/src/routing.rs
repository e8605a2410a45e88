//! Which shard (read region) owns a key: Redis Cluster's slot function, the very one the
//! server's router uses (`ember_store::slot`, a pure function DESIGN.md lets ember-rdma use), so
//! a one-sided client routes exactly as the server does.

pub use ember_store::slot::{crc16_xmodem, hash_tag, key_slot, shard_of_slot};

/// Slots in the key space (Redis Cluster's 16384), as a count of table entries.
pub const SLOT_COUNT: usize = ember_store::slot::SLOT_COUNT as usize;

/// A range of slots owned by one region: `first..=last`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotRange {
    /// First slot.
    pub first: u16,
    /// Last slot, inclusive.
    pub last: u16,
    /// Index of the region (in the order the server exposed them).
    pub region: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_cluster_vectors() {
        let cases: [(&[u8], u16); 6] = [
            (b"123456789", 0x31C3 & 16383),
            (b"foo", 12182),
            (b"{user1000}.following", key_slot(b"user1000")),
            (b"foo{}{bar}", key_slot(b"foo{}{bar}")),
            (b"foo{{bar}}zap", key_slot(b"{bar")),
            (b"", 0),
        ];
        assert_eq!(crc16_xmodem(b"123456789"), 0x31C3);
        for (key, slot) in cases {
            assert_eq!(key_slot(key), slot, "{}", String::from_utf8_lossy(key));
        }
        assert_eq!(hash_tag(b"foo{}{bar}"), b"foo{}{bar}");
    }
}
