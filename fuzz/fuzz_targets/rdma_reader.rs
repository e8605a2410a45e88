//! The one-sided GET client against hostile remote memory, and the message codec against
//! hostile bytes.
//!
//! Input drives, in order:
//! 1. publishes, removes and clears on a real `ReadRegion` (a small one, so its log is reclaimed
//!    constantly), remembered in a model of what is published;
//! 2. optionally, corruption of the region's bytes as a client READs them: byte overwrites,
//!    copies of one range over another (stale slots and items, forged headers);
//! 3. what a client does: decode the header (`Layout::decode_header`), refuse a region that
//!    claims more bytes than exposed, then `reader::lookup` keys.
//!
//! Checked: never a panic, never a READ outside the region the header describes; with no
//! corruption every lookup returns exactly the published value (or a miss when the key is not
//! published or its item expired); with corruption a hit is at least bytes that lie in the region
//! as the key followed by the value, within the value limit.
//! Then the rest of the input is decoded as a message `Request` and `Reply`: never a panic, and
//! what decodes re-encodes to bytes that decode to the same message.
#![no_main]

use std::collections::HashMap;

use ember_rdma::layout::{Layout, HEADER_LEN};
use ember_rdma::message::{Reply, Request};
use ember_rdma::reader::{self, Lookup, ReaderStats, RemoteMemory};
use ember_rdma::region::{ReadRegion, RegionConfig};
use libfuzzer_sys::arbitrary::{Result as ArbitraryResult, Unstructured};
use libfuzzer_sys::fuzz_target;

/// Region operations per input.
const OPS_MAX: usize = 64;
/// Corruptions per input.
const CORRUPTIONS_MAX: usize = 8;
/// Keys the ops publish: few, so that they collide in small indexes and are rewritten often.
const KEY_NAMES: [&[u8]; 6] = [
    b"a",
    b"b",
    b"user:1",
    b"user:2",
    b"k\x00",
    b"sixteen-byte-key",
];
/// Longest key published (one of `KEY_NAMES` is exactly this long; longer ones are refused).
const KEY_LEN_MAX: u32 = 16;
/// Longest value published.
const VALUE_LEN_MAX: u32 = 64;

/// Remote memory that is a copy of the region: a READ outside it is a reader bug.
struct CopiedRegion<'a> {
    bytes: &'a [u8],
    exposed_len: u64,
}

impl RemoteMemory for CopiedRegion<'_> {
    fn read(&mut self, region: u32, offset: u64, len: usize) -> ember_rdma::Result<&[u8]> {
        assert_eq!(region, 0, "READ of a region never exposed");
        let end = offset
            .checked_add(len as u64)
            .expect("READ range overflows");
        assert!(
            end <= self.exposed_len,
            "READ of {len} bytes at {offset} outside the {} bytes exposed",
            self.exposed_len
        );
        Ok(&self.bytes[offset as usize..end as usize])
    }
}

struct Published {
    value: Vec<u8>,
    /// Unix ms; 0 never expires (as the item header says).
    expire_at_ms: u64,
}

fn region_config(u: &mut Unstructured<'_>) -> ArbitraryResult<RegionConfig> {
    Ok(RegionConfig {
        bucket_count: 1 << u.int_in_range(0..=3)?,
        // 4 to 8 segments (of 256 or 512 bytes, chosen below: half a segment holds the largest
        // item, 120 bytes), so that the log is reclaimed after a few dozen publishes.
        segment_count: *u.choose(&[4, 5, 8])?,
        log_len: 0, // set by the caller from the segment count
        key_len_max: KEY_LEN_MAX,
        value_len_max: VALUE_LEN_MAX,
    })
}

fn fill_region(
    u: &mut Unstructured<'_>,
    region: &mut ReadRegion,
    model: &mut HashMap<Vec<u8>, Published>,
) -> ArbitraryResult<()> {
    for _ in 0..u.int_in_range(0..=OPS_MAX)? {
        let key = if u.ratio(1, 8)? {
            u.arbitrary::<Vec<u8>>()? // any key, too long or empty ones included
        } else {
            u.choose(&KEY_NAMES)?.to_vec()
        };
        match u.choose_index(8)? {
            0 => {
                region.remove(&key);
                model.remove(&key);
            }
            1 if u.ratio(1, 8)? => {
                region.clear();
                model.clear();
            }
            _ => {
                let value_len = u.int_in_range(0..=VALUE_LEN_MAX as usize + 2)?;
                let value: Vec<u8> = (0..value_len)
                    .map(|i| (i as u8) ^ key.len() as u8)
                    .collect();
                let expire_at_ms = if u.ratio(1, 4)? {
                    Some(u.int_in_range(1..=100)?)
                } else {
                    None
                };
                match region.publish_expiring(&key, &value, expire_at_ms) {
                    Ok(()) => {
                        let published = Published {
                            value,
                            expire_at_ms: expire_at_ms.unwrap_or(0),
                        };
                        model.insert(key, published);
                    }
                    Err(_) => {
                        model.remove(&key);
                    }
                }
            }
        }
        // The region may drop keys under log pressure: the model follows what it says.
        model.retain(|key, _| region.contains(key));
    }
    Ok(())
}

/// Overwrites and copies over the region's bytes.
fn corrupt(u: &mut Unstructured<'_>, bytes: &mut [u8]) -> ArbitraryResult<bool> {
    let mut corrupted = false;
    for _ in 0..u.int_in_range(0..=CORRUPTIONS_MAX)? {
        let len = bytes.len();
        let at = u.choose_index(len)?;
        if u.arbitrary()? {
            let patch: Vec<u8> = u.arbitrary()?;
            let end = (at + patch.len()).min(len);
            bytes[at..end].copy_from_slice(&patch[..end - at]);
        } else {
            let from = u.choose_index(len)?;
            let count = u.int_in_range(1..=128)?.min(len - at).min(len - from);
            bytes.copy_within(from..from + count, at);
        }
        corrupted = true;
    }
    Ok(corrupted)
}

fn contains_item(bytes: &[u8], key: &[u8], value: &[u8]) -> bool {
    if key.is_empty() && value.is_empty() {
        return true;
    }
    let mut item = key.to_vec();
    item.extend_from_slice(value);
    bytes.windows(item.len()).any(|window| window == item)
}

fn check_reader(u: &mut Unstructured<'_>) -> ArbitraryResult<()> {
    let mut config = region_config(u)?;
    let segment_len = *u.choose(&[256u64, 512])?;
    config.log_len = segment_len * u64::from(config.segment_count);
    let mut region = ReadRegion::create("ember-fuzz", config).expect("a valid configuration");
    let mut model = HashMap::new();
    fill_region(u, &mut region, &mut model)?;

    let memory = region.memory();
    let mut bytes = vec![0u8; memory.len()];
    memory.read(0, &mut bytes).expect("the whole mapping");
    let corrupted = corrupt(u, &mut bytes)?;

    let layout = match Layout::decode_header(&bytes[..HEADER_LEN]) {
        Ok(layout) => layout,
        Err(error) => {
            assert!(corrupted, "an intact header is refused: {error}");
            return Ok(());
        }
    };
    if !corrupted {
        assert_eq!(layout, region.layout());
    }
    if layout.region_len() > bytes.len() as u64 {
        assert!(corrupted, "an intact header claims more than the region");
        return Ok(()); // the client refuses such a region
    }
    let mut memory = CopiedRegion {
        bytes: &bytes,
        exposed_len: bytes.len() as u64,
    };
    let mut stats = ReaderStats::default();
    let mut value = Vec::new();
    let now_ms = u.int_in_range(0..=120)?;
    let mut keys: Vec<Vec<u8>> = KEY_NAMES.iter().map(|k| k.to_vec()).collect();
    keys.push(u.arbitrary()?);
    for key in &keys {
        value.clear();
        let found = reader::lookup(&mut memory, 0, &layout, key, now_ms, &mut value, &mut stats)
            .expect("a copied region never fails a READ");
        if corrupted {
            if found == Lookup::Hit {
                assert!(value.len() <= layout.value_len_max as usize);
                assert!(
                    contains_item(&bytes, key, &value),
                    "a hit on bytes not in the region"
                );
            }
            continue;
        }
        match model.get(key) {
            Some(published) if published.expire_at_ms == 0 || now_ms < published.expire_at_ms => {
                assert_eq!(found, Lookup::Hit, "published key {key:?} missed");
                assert_eq!(value, published.value, "wrong value for {key:?}");
            }
            _ => assert_eq!(
                found,
                Lookup::Miss,
                "unpublished or expired key {key:?} found"
            ),
        }
    }
    Ok(())
}

fn check_messages(bytes: &[u8]) {
    if let Ok((id, request)) = Request::decode(bytes) {
        let mut encoded = Vec::new();
        request.encode(id, &mut encoded);
        assert_eq!(
            Request::decode(&encoded).expect("re-encoded"),
            (id, request)
        );
    }
    if let Ok((id, reply)) = Reply::decode(bytes) {
        let mut encoded = Vec::new();
        reply.encode(id, &mut encoded);
        assert_eq!(Reply::decode(&encoded).expect("re-encoded"), (id, reply));
    }
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let _ = check_reader(&mut u);
    check_messages(u.take_rest());
});
