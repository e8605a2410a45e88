//! DUMP / RESTORE payloads: the store's RESTORE reader (`ember_store::dump::restore`) and its RDB
//! file reader on hostile bytes.
//!
//! The input is used three ways:
//! - as a payload, exactly as RESTORE gets it: the footer (version, CRC64) is judged as Redis's
//!   `verifyDumpPayload` judges it, checked against a reference written here (a bitwise CRC-64
//!   Jones and the version bound): `Checksum` exactly when the reference refuses it;
//! - as a payload whose footer is repaired: the last 10 bytes' version is kept and the CRC64 is
//!   written again, so that a mutated body of a real payload reaches the value reader; a version
//!   past `RDB_VERSION_MAX` must still be refused as `Checksum`, and the repaired payload with a
//!   wrong CRC as well;
//! - its body (the input less the footer) after an RDB file header, through `read_rdb_file`.
//!
//! Every value that decodes is re-encoded with `try_dump` (it must have a payload), and that
//! payload must decode to an equal value whose own payload is the same bytes (a fixed point).
//! A panic, or an allocation past libFuzzer's `-malloc_limit_mb` (ci/test-fuzz.sh sets it low for
//! this target: a payload of at most a few KiB justifies no large allocation), fails the run.
#![no_main]

use ember_store::dump::{read_rdb_file, restore, try_dump, verify, DumpError, RestoreLimits};
use ember_store::dump::{RDB_VERSION, RDB_VERSION_MAX};
use ember_store::Value;
use libfuzzer_sys::fuzz_target;

/// The time RESTORE runs at: hash field expiries before it are dropped, later ones kept.
const NOW_MS: u64 = 1_764_000_000_000;
/// Version (2 bytes) and CRC64 (8 bytes).
const FOOTER_LEN: usize = 10;

/// CRC-64/Jones as Redis's `crc64.c` computes it (reflected, polynomial 0xad93d23594c935a9,
/// initial value and final xor 0), one bit at a time: an independent reference for the store's
/// table-driven one.
fn reference_crc64(bytes: &[u8]) -> u64 {
    const POLY_REFLECTED: u64 = 0x95ac_9329_ac4b_c9b5;
    let mut crc = 0u64;
    for &byte in bytes {
        crc ^= u64::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLY_REFLECTED
            } else {
                crc >> 1
            };
        }
    }
    crc
}

/// Whether Redis's `verifyDumpPayload` accepts `payload`'s footer.
fn footer_accepted(payload: &[u8]) -> bool {
    if payload.len() < FOOTER_LEN {
        return false;
    }
    let footer = &payload[payload.len() - FOOTER_LEN..];
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    let crc = u64::from_le_bytes(footer[2..].try_into().expect("8 bytes"));
    version <= RDB_VERSION_MAX && reference_crc64(&payload[..payload.len() - 8]) == crc
}

/// `body`, `version` and the CRC64 of both.
fn with_footer(body: &[u8], version: u16) -> Vec<u8> {
    let mut payload = body.to_vec();
    payload.extend_from_slice(&version.to_le_bytes());
    let crc = reference_crc64(&payload);
    payload.extend_from_slice(&crc.to_le_bytes());
    payload
}

/// A decoded value re-encodes, and its payload decodes to an equal value with the same payload,
/// unless the value's size class changed on the way: the payload's type follows the encoding
/// (a hashtable hash is written as a hash, a listpack one as a listpack), and RESTORE picks the
/// encoding from what it reads, as Redis's loader does. A payload whose fields made the value a
/// hashtable (a long value in a field that has already expired, say) restores, without them, as
/// a listpack; Redis 7.4 converts on the fields it reads too, so its DUMP then RESTORE then DUMP
/// changes the type byte in the same way. From the second payload on it is a fixed point.
fn check_round_trip(value: &Value, limits: &RestoreLimits) {
    let payload = try_dump(value, NOW_MS).expect("a restored value has a DUMP payload");
    assert!(
        footer_accepted(&payload),
        "DUMP wrote a footer RESTORE refuses"
    );
    let again = restore(&payload, limits, NOW_MS).expect("DUMP's own payload restores");
    let payload_again = try_dump(&again, NOW_MS).expect("a restored value has a DUMP payload");
    if &again != value {
        // What DUMP cannot write: a consumer's active time, read from Redis 7.2's stream layout
        // (STREAM_LISTPACKS_3, RDB 11). DUMP writes Redis 7.0's encodings (RDB 10), whose reader
        // takes the seen time for it, as Redis 7.2 does. All that DUMP writes must survive.
        assert!(
            matches!(value, Value::Stream(_)),
            "DUMP then RESTORE changed the value"
        );
        assert_eq!(payload_again, payload, "DUMP then RESTORE changed a stream");
    }
    if payload_again == payload {
        return;
    }
    assert_ne!(
        again.encoding_name(),
        value.encoding_name(),
        "DUMP is not a fixed point in the same encoding"
    );
    let third = restore(&payload_again, limits, NOW_MS).expect("DUMP's own payload restores");
    assert_eq!(&third, value, "DUMP then RESTORE changed the value");
    assert_eq!(third.encoding_name(), again.encoding_name());
    let payload_third = try_dump(&third, NOW_MS).expect("a restored value has a DUMP payload");
    assert_eq!(payload_again, payload_third, "DUMP is not a fixed point");
}

/// Restores `payload`, whose footer the reference judged: a refused footer is `Checksum`, an
/// accepted one is never `Checksum` (the value is then read or `BadFormat`).
fn check_payload(payload: &[u8], limits: &RestoreLimits) {
    let accepted = footer_accepted(payload);
    assert_eq!(verify(payload).is_ok(), accepted, "verify's verdict");
    match restore(payload, limits, NOW_MS) {
        Ok(value) => {
            assert!(accepted, "a payload with a bad footer restored");
            check_round_trip(&value, limits);
        }
        Err(DumpError::Checksum) => assert!(!accepted, "a good footer refused as Checksum"),
        Err(DumpError::BadFormat) => assert!(accepted, "a bad footer reported as BadFormat"),
    }
}

fuzz_target!(|data: &[u8]| {
    let limits = RestoreLimits::default();
    check_payload(data, &limits);

    let (body, version) = match data.len().checked_sub(FOOTER_LEN) {
        Some(body_len) => (
            &data[..body_len],
            u16::from_le_bytes([data[body_len], data[body_len + 1]]),
        ),
        None => (data, RDB_VERSION),
    };
    let repaired = with_footer(body, version);
    check_payload(&repaired, &limits);
    let mut wrong_crc = repaired.clone();
    let last = wrong_crc.len() - 1;
    wrong_crc[last] ^= 0x01;
    assert_eq!(
        restore(&wrong_crc, &limits, NOW_MS),
        Err(DumpError::Checksum),
        "a wrong CRC64 was not refused"
    );

    // The body as a whole file, then with the checksum a file ending at the body's EOF needs.
    let mut file = format!("REDIS{:04}", version.min(9999)).into_bytes();
    file.extend_from_slice(body);
    let crc = reference_crc64(&file);
    let mut summed = file.clone();
    summed.extend_from_slice(&crc.to_le_bytes());
    for file in [file, summed] {
        match read_rdb_file(&file, &limits, NOW_MS) {
            Ok(read) => {
                assert!(version <= RDB_VERSION_MAX, "a newer RDB file was read");
                read.keys
                    .iter()
                    .for_each(|key| check_round_trip(&key.value, &limits));
            }
            // A newer version, or (from version 5) a checksum that does not match.
            Err(DumpError::Checksum) => {}
            Err(DumpError::BadFormat) => {}
        }
    }
});
