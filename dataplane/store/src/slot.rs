//! Redis Cluster key slots: CRC16-XMODEM of the key (or of its `{hash tag}`) modulo 16384.
//!
//! This is the one reference for the slot function: the server's router calls it, and the
//! FPGA `slot_hash` module is checked against it bit for bit.

/// Number of hash slots, as in Redis Cluster.
pub const SLOT_COUNT: u16 = 16384;

/// CRC16-XMODEM lookup table (polynomial 0x1021, initial value 0, no reflection).
const CRC16_TABLE: [u16; 256] = crc16_table();

const fn crc16_table() -> [u16; 256] {
    let mut table = [0u16; 256];
    let mut byte = 0;
    while byte < 256 {
        let mut crc = (byte as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
            bit += 1;
        }
        table[byte] = crc;
        byte += 1;
    }
    table
}

/// Bytes [`crc16_xmodem`] takes per step (slice-by-8).
const SLICE_LEN: usize = 8;

/// `CRC16_SLICES[k][x]`: the CRC of byte `x` followed by `k` zero bytes (register starting at
/// 0), so the eight bytes of a step are looked up independently and XORed together.
const CRC16_SLICES: [[u16; 256]; SLICE_LEN] = crc16_slices();

const fn crc16_slices() -> [[u16; 256]; SLICE_LEN] {
    let mut slices = [[0u16; 256]; SLICE_LEN];
    slices[0] = CRC16_TABLE;
    let mut k = 1;
    while k < SLICE_LEN {
        let mut byte = 0;
        while byte < 256 {
            let previous = slices[k - 1][byte];
            slices[k][byte] = (previous << 8) ^ CRC16_TABLE[(previous >> 8) as usize];
            byte += 1;
        }
        k += 1;
    }
    slices
}

/// CRC16-XMODEM over `bytes`, as Redis Cluster computes it.
///
/// Eight bytes a step (slice-by-8): the byte-at-a-time loop waits for each table lookup
/// before the next, and was about 5% of a 32-key MGET's CPU (every key's slot is computed to
/// split the command by shard). The CRC is linear, so the register folds into a step's first
/// two bytes and each byte's share comes from its own table.
pub fn crc16_xmodem(bytes: &[u8]) -> u16 {
    let mut steps = bytes.chunks_exact(SLICE_LEN);
    let mut crc = 0u16;
    for step in &mut steps {
        let [high, low] = crc.to_be_bytes();
        crc = CRC16_SLICES[7][usize::from(step[0] ^ high)]
            ^ CRC16_SLICES[6][usize::from(step[1] ^ low)]
            ^ CRC16_SLICES[5][usize::from(step[2])]
            ^ CRC16_SLICES[4][usize::from(step[3])]
            ^ CRC16_SLICES[3][usize::from(step[4])]
            ^ CRC16_SLICES[2][usize::from(step[5])]
            ^ CRC16_SLICES[1][usize::from(step[6])]
            ^ CRC16_SLICES[0][usize::from(step[7])];
    }
    steps.remainder().iter().fold(crc, |crc, &byte| {
        (crc << 8) ^ CRC16_TABLE[usize::from((crc >> 8) as u8 ^ byte)]
    })
}

/// The part of `key` that is hashed: the bytes inside the first `{...}` when that part is
/// non-empty, else the whole key (Redis Cluster's hash-tag rule).
pub fn hash_tag(key: &[u8]) -> &[u8] {
    if let Some(open) = key.iter().position(|&b| b == b'{') {
        if let Some(close_offset) = key[open + 1..].iter().position(|&b| b == b'}') {
            if close_offset > 0 {
                return &key[open + 1..open + 1 + close_offset];
            }
        }
    }
    key
}

/// The slot of `key`, in `0..SLOT_COUNT`.
pub fn key_slot(key: &[u8]) -> u16 {
    crc16_xmodem(hash_tag(key)) & (SLOT_COUNT - 1)
}

/// Which of `shard_count` shards owns `slot`: the slots split into equal contiguous ranges, so
/// the server's router and one-sided clients agree on every key's home.
pub fn shard_of_slot(slot: u16, shard_count: usize) -> usize {
    debug_assert!(shard_count > 0, "at least one shard");
    usize::from(slot) * shard_count / usize::from(SLOT_COUNT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_split_evenly() {
        let cases: &[(u16, usize, usize)] = &[
            (0, 1, 0),
            (16383, 1, 0),
            (8191, 2, 0),
            (8192, 2, 1),
            (16383, 3, 2),
        ];
        for &(slot, count, owner) in cases {
            assert_eq!(shard_of_slot(slot, count), owner, "slot {slot} of {count}");
        }
    }

    #[test]
    fn known_slots() {
        // Values as `CLUSTER KEYSLOT` reports them on Redis 7.
        let cases: &[(&[u8], u16)] = &[
            (b"", 0),
            (b"123456789", 12739),
            (b"foo", 12182),
            (b"bar", 5061),
            (b"{user1000}.following", 3443),
            (b"{user1000}.followers", 3443),
            (b"foo{}{bar}", 8363),
            (b"foo{{bar}}zap", 4015),
            (b"foo{bar}{zap}", 5061),
        ];
        for &(key, slot) in cases {
            assert_eq!(
                key_slot(key),
                slot,
                "key {:?}",
                String::from_utf8_lossy(key)
            );
        }
        assert_eq!(crc16_xmodem(b"123456789"), 0x31C3);
    }

    /// The byte-at-a-time definition, which slice-by-8 must match for every length.
    fn crc16_bytewise(bytes: &[u8]) -> u16 {
        bytes.iter().fold(0u16, |crc, &byte| {
            (crc << 8) ^ CRC16_TABLE[usize::from((crc >> 8) as u8 ^ byte)]
        })
    }

    #[test]
    fn slice_by_8_matches_bytewise() {
        let seed = 0x5eed_c0de_u64;
        let mut state = seed;
        for len in 0..=70 {
            for _ in 0..50 {
                let bytes: Vec<u8> = (0..len)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        state as u8
                    })
                    .collect();
                assert_eq!(
                    crc16_xmodem(&bytes),
                    crc16_bytewise(&bytes),
                    "seed {seed:#x}, bytes {bytes:?}"
                );
            }
        }
    }
}
