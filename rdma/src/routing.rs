//! Which shard (read region) owns a key: Redis Cluster's slot function.
//!
//! This repeats `ember_store::slot::key_slot` on purpose: ember-rdma must not depend on the store
//! (dependencies point one way, see DESIGN.md), and a client of ember-rdma has to route exactly as
//! the server does. The test vectors below are Redis's, so both copies are held to the same answers.

/// Slots in the key space (Redis Cluster's 16384).
pub const SLOT_COUNT: usize = 16384;

/// CRC16-XMODEM (polynomial 0x1021, initial 0), Redis Cluster's key hash.
pub fn crc16_xmodem(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in bytes {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The part of `key` that is hashed: the bytes inside the first `{...}` when non-empty.
pub fn hash_tag(key: &[u8]) -> &[u8] {
    if let Some(open) = key.iter().position(|&b| b == b'{') {
        if let Some(close) = key[open + 1..].iter().position(|&b| b == b'}') {
            if close > 0 {
                return &key[open + 1..open + 1 + close];
            }
        }
    }
    key
}

/// The slot of `key`.
pub fn key_slot(key: &[u8]) -> u16 {
    crc16_xmodem(hash_tag(key)) & (SLOT_COUNT as u16 - 1)
}

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
