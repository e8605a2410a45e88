//! An exact sliding-window limiter: `CL.WINDOW key limit window_ms [cost]` allows a request
//! when the costs of the requests allowed in the last `window_ms` milliseconds, plus its own,
//! come to at most `limit`. Unlike GCRA (which smooths) or fixed windows (which allow twice the
//! limit across a boundary), no window of `window_ms` ever holds more than `limit`.
//!
//! The state is the log of allowed requests, `(time_ms, cost)` pairs, oldest first, packed as
//! 16 little-endian bytes each in an ordinary string key whose TTL ends when the newest entry
//! leaves the window. One shard owns the key, so concurrent callers are served one at a time.

/// Bytes per log entry: time (u64) and cost (u64), little-endian.
pub const ENTRY_BYTES: usize = 16;

/// Largest `limit`: bounds the log at `limit` entries of 16 bytes (1.6 MB), since every
/// allowed request may have cost 1.
pub const LIMIT_MAX: i64 = 100_000;

/// Longest window: 30 days, far beyond any rate limit and well inside u64 milliseconds.
pub const WINDOW_MS_MAX: i64 = 30 * 24 * 3600 * 1000;

/// One allowed request in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// When it was allowed, milliseconds since the epoch.
    pub time_ms: u64,
    /// What it cost.
    pub cost: u64,
}

/// What CL.WINDOW answers, and the log to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The request was refused.
    pub limited: bool,
    /// Cost still allowed in the window after this request.
    pub remaining: i64,
    /// Milliseconds until a request of this cost would be allowed; -1 when allowed, or when
    /// the cost exceeds the limit (never).
    pub retry_after_ms: i64,
    /// Milliseconds until the window is empty (0 when it is).
    pub reset_after_ms: i64,
    /// The log after the request, oldest first; empty means the key goes.
    pub log: Vec<Entry>,
}

/// Latest time a stored entry may carry, milliseconds since the epoch (about the year 10900):
/// anything later was not written by CL.WINDOW, and refusing it keeps `time + window` in u64.
pub const TIME_MS_MAX: u64 = 1 << 48;

/// Decodes a stored log; `None` when the bytes are not one (a string set by someone else):
/// a length that is not whole entries, more entries than any limit allows, times out of order
/// or past [`TIME_MS_MAX`], or a cost above [`LIMIT_MAX`].
pub fn decode(bytes: &[u8]) -> Option<Vec<Entry>> {
    if bytes.len() % ENTRY_BYTES != 0 || bytes.len() / ENTRY_BYTES > LIMIT_MAX as usize {
        return None;
    }
    let log: Vec<Entry> = bytes
        .chunks_exact(ENTRY_BYTES)
        .map(|chunk| Entry {
            time_ms: u64::from_le_bytes(chunk[..8].try_into().expect("8 bytes")),
            cost: u64::from_le_bytes(chunk[8..].try_into().expect("8 bytes")),
        })
        .collect();
    let ordered = log
        .windows(2)
        .all(|pair| pair[0].time_ms <= pair[1].time_ms);
    let in_range = log
        .iter()
        .all(|entry| entry.time_ms <= TIME_MS_MAX && entry.cost <= LIMIT_MAX as u64);
    (ordered && in_range).then_some(log)
}

/// Encodes a log for storage.
pub fn encode(log: &[Entry]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(log.len() * ENTRY_BYTES);
    for entry in log {
        bytes.extend_from_slice(&entry.time_ms.to_le_bytes());
        bytes.extend_from_slice(&entry.cost.to_le_bytes());
    }
    bytes
}

/// One request of `cost` at `now_ms` against `log`. `limit` and `window_ms` must be in range
/// (checked where they enter); time never runs backwards within a key's log (a clock step back
/// counts as the newest entry's time).
pub fn request(mut log: Vec<Entry>, limit: i64, window_ms: i64, cost: i64, now_ms: u64) -> Outcome {
    assert!((1..=LIMIT_MAX).contains(&limit) && (1..=WINDOW_MS_MAX).contains(&window_ms));
    assert!(cost >= 0);
    let (limit, window_ms, cost) = (limit as u64, window_ms as u64, cost as u64);
    let now_ms = log
        .last()
        .map_or(now_ms, |newest| newest.time_ms.max(now_ms));
    log.retain(|entry| entry.time_ms + window_ms > now_ms);
    let used: u64 = log.iter().map(|entry| entry.cost).sum();
    let allowed = used.saturating_add(cost) <= limit;
    let retry_after_ms = if allowed || cost > limit {
        -1
    } else {
        let mut freed = 0u64;
        let mut retry = -1i64;
        for entry in &log {
            freed += entry.cost;
            if used - freed + cost <= limit {
                retry = (entry.time_ms + window_ms - now_ms) as i64;
                break;
            }
        }
        retry
    };
    if allowed && cost > 0 {
        match log.last_mut() {
            Some(newest) if newest.time_ms == now_ms => newest.cost += cost,
            _ => log.push(Entry {
                time_ms: now_ms,
                cost,
            }),
        }
    }
    let used_after = if allowed { used + cost } else { used };
    let reset_after_ms = log
        .last()
        .map_or(0, |newest| (newest.time_ms + window_ms - now_ms) as i64);
    Outcome {
        limited: !allowed,
        remaining: (limit - used_after.min(limit)) as i64,
        retry_after_ms,
        reset_after_ms,
        log,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Limit 3 per 1000 ms: a hand-computed sequence.
    #[test]
    fn hand_computed_sequence() {
        // (time, cost, limited, remaining, retry_after, reset_after)
        let cases: &[(u64, i64, bool, i64, i64, i64)] = &[
            (0, 1, false, 2, -1, 1000),
            (100, 1, false, 1, -1, 1000),
            (200, 1, false, 0, -1, 1000),
            (300, 1, true, 0, 700, 900),
            (999, 1, true, 0, 1, 201),
            (1000, 1, false, 0, -1, 1000),
            (1000, 0, false, 0, -1, 1000),
            (1150, 2, true, 1, 50, 850),
            (1200, 5, true, 2, -1, 800),
            (2500, 0, false, 3, -1, 0),
        ];
        let mut log = Vec::new();
        for (index, &(now, cost, limited, remaining, retry, reset)) in cases.iter().enumerate() {
            let outcome = request(log, 3, 1000, cost, now);
            assert_eq!(
                (
                    outcome.limited,
                    outcome.remaining,
                    outcome.retry_after_ms,
                    outcome.reset_after_ms
                ),
                (limited, remaining, retry, reset),
                "case {index}"
            );
            log = outcome.log;
        }
        assert!(log.is_empty());
    }

    #[test]
    fn encoding_round_trips_and_refuses_foreign_strings() {
        let log = vec![
            Entry {
                time_ms: 5,
                cost: 1,
            },
            Entry {
                time_ms: 9,
                cost: 3,
            },
        ];
        assert_eq!(decode(&encode(&log)), Some(log));
        assert_eq!(decode(b"hello"), None);
        let backwards = encode(&[
            Entry {
                time_ms: 9,
                cost: 1,
            },
            Entry {
                time_ms: 5,
                cost: 1,
            },
        ]);
        assert_eq!(decode(&backwards), None);
        assert_eq!(decode(&[0xff; ENTRY_BYTES]), None, "time past TIME_MS_MAX");
        let costly = encode(&[Entry {
            time_ms: 1,
            cost: LIMIT_MAX as u64 + 1,
        }]);
        assert_eq!(decode(&costly), None);
    }
}
