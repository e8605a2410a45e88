//! Triton's dynamic-batching policy, as a plain data structure with the clock passed in, so that every rule is
//! tested without a runtime:
//! - requests queue in arrival order, each with its row count (its batch dimension);
//! - a batch is due when the queued rows reach `batch_rows_max`, or when the oldest request has waited
//!   `delay_max` (Triton's `max_queue_delay_microseconds`);
//! - a batch takes whole requests in order while they fit in `batch_rows_max`; a request larger than that runs
//!   alone (RedisAI's behaviour for inputs over BATCHSIZE), never split.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Most requests one model's queue may hold on one shard: past this, new requests get an error instead of
/// growing the queue without bound (a client that floods a slow model is refused, not the shard's memory).
pub const QUEUE_REQUESTS_MAX: usize = 65_536;

/// When a batch leaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchPolicy {
    /// Rows at which a batch leaves at once (`--max-batch`, AI.MODELSTORE's BATCHSIZE). 0 or 1: no batching.
    pub batch_rows_max: usize,
    /// Longest the oldest queued request waits for company (`--max-delay-us`).
    pub delay_max: Duration,
}

impl BatchPolicy {
    fn batches(&self) -> bool {
        self.batch_rows_max > 1
    }
}

struct Queued<T> {
    request: T,
    rows: usize,
    enqueued_at: Instant,
}

/// The queue of one model on one shard.
pub struct BatchQueue<T> {
    policy: BatchPolicy,
    queued: VecDeque<Queued<T>>,
    rows_queued: usize,
}

/// Why a request was not queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueFull {
    /// [`QUEUE_REQUESTS_MAX`] requests are already waiting.
    Full,
}

impl<T> BatchQueue<T> {
    /// An empty queue.
    pub fn new(policy: BatchPolicy) -> Self {
        BatchQueue {
            policy,
            queued: VecDeque::new(),
            rows_queued: 0,
        }
    }

    /// True when nothing waits.
    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.queued.is_empty()
    }

    /// Queues a request of `rows` rows that arrived at `now`.
    ///
    /// # Errors
    /// [`QueueFull::Full`] when [`QUEUE_REQUESTS_MAX`] requests already wait; the request is handed back.
    pub fn push(&mut self, request: T, rows: usize, now: Instant) -> Result<(), (QueueFull, T)> {
        if self.queued.len() >= QUEUE_REQUESTS_MAX {
            return Err((QueueFull::Full, request));
        }
        self.rows_queued += rows;
        self.queued.push_back(Queued {
            request,
            rows,
            enqueued_at: now,
        });
        Ok(())
    }

    /// When the next batch is due: now if it is full, else when the oldest request's delay runs out; `None` when
    /// the queue is empty.
    pub fn due_at(&self) -> Option<Instant> {
        let oldest = self.queued.front()?;
        if !self.policy.batches() || self.rows_queued >= self.policy.batch_rows_max {
            return Some(oldest.enqueued_at);
        }
        Some(oldest.enqueued_at + self.policy.delay_max)
    }

    /// True when a batch should leave at `now`.
    #[cfg(test)]
    fn is_due(&self, now: Instant) -> bool {
        self.due_at().is_some_and(|due| due <= now)
    }

    /// Takes the next batch: whole requests in arrival order while their rows fit, at least one. Returns each
    /// request with its row count; empty when nothing is queued.
    pub fn take_batch(&mut self) -> Vec<(T, usize)> {
        let limit = if self.policy.batches() {
            self.policy.batch_rows_max
        } else {
            1
        };
        let mut batch = Vec::new();
        let mut rows = 0;
        while let Some(next) = self.queued.front() {
            let fits = if self.policy.batches() {
                rows + next.rows <= limit
            } else {
                batch.is_empty()
            };
            if !batch.is_empty() && !fits {
                break;
            }
            let taken = self.queued.pop_front().expect("front() was Some");
            rows += taken.rows;
            self.rows_queued -= taken.rows;
            batch.push((taken.request, taken.rows));
            if rows >= limit {
                break;
            }
        }
        batch
    }

    /// Empties the queue (the model was deleted or replaced): the requests, for an error reply each.
    pub fn drain(&mut self) -> Vec<T> {
        self.rows_queued = 0;
        self.queued.drain(..).map(|q| q.request).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(batch_rows_max: usize, delay_us: u64) -> BatchPolicy {
        BatchPolicy {
            batch_rows_max,
            delay_max: Duration::from_micros(delay_us),
        }
    }

    fn ids(batch: Vec<(u32, usize)>) -> Vec<u32> {
        batch.into_iter().map(|(id, _)| id).collect()
    }

    #[test]
    fn a_full_batch_leaves_at_once() {
        let t0 = Instant::now();
        let mut queue = BatchQueue::new(policy(8, 1_000));
        queue.push(1, 4, t0).unwrap();
        assert!(!queue.is_due(t0), "half full and fresh: waits");
        queue.push(2, 4, t0).unwrap();
        assert!(queue.is_due(t0), "full: due now");
        assert_eq!(ids(queue.take_batch()), vec![1, 2]);
        assert!(queue.is_empty());
    }

    #[test]
    fn the_oldest_request_waits_at_most_the_delay() {
        let t0 = Instant::now();
        let mut queue = BatchQueue::new(policy(64, 500));
        queue.push(1, 1, t0).unwrap();
        queue.push(2, 1, t0 + Duration::from_micros(400)).unwrap();
        assert_eq!(
            queue.due_at(),
            Some(t0 + Duration::from_micros(500)),
            "due by the oldest, not the newest"
        );
        assert!(!queue.is_due(t0 + Duration::from_micros(499)));
        assert!(queue.is_due(t0 + Duration::from_micros(500)));
        assert_eq!(ids(queue.take_batch()), vec![1, 2]);
    }

    #[test]
    fn batches_take_whole_requests_in_order() {
        let t0 = Instant::now();
        let mut queue = BatchQueue::new(policy(10, 0));
        for (id, rows) in [(1, 4), (2, 4), (3, 4), (4, 1)] {
            queue.push(id, rows, t0).unwrap();
        }
        assert_eq!(
            queue.take_batch(),
            vec![(1, 4), (2, 4)],
            "request 3 does not fit and is not split"
        );
        assert_eq!(queue.take_batch(), vec![(3, 4), (4, 1)]);
        assert!(queue.take_batch().is_empty());
    }

    #[test]
    fn an_oversized_request_runs_alone() {
        let t0 = Instant::now();
        let mut queue = BatchQueue::new(policy(8, 1_000));
        queue.push(1, 20, t0).unwrap();
        queue.push(2, 1, t0).unwrap();
        assert!(queue.is_due(t0));
        assert_eq!(ids(queue.take_batch()), vec![1]);
        assert_eq!(ids(queue.take_batch()), vec![2]);
    }

    #[test]
    fn unbatched_runs_one_request_at_a_time_without_waiting() {
        let t0 = Instant::now();
        let mut queue = BatchQueue::new(policy(0, 0));
        queue.push(1, 3, t0).unwrap();
        queue.push(2, 3, t0).unwrap();
        assert!(queue.is_due(t0));
        assert_eq!(ids(queue.take_batch()), vec![1]);
        assert_eq!(ids(queue.take_batch()), vec![2]);
    }

    #[test]
    fn the_queue_is_bounded_and_drains() {
        let t0 = Instant::now();
        let mut queue = BatchQueue::new(policy(4, 10));
        for id in 0..QUEUE_REQUESTS_MAX {
            queue.push(id, 1, t0).unwrap();
        }
        assert_eq!(
            queue.push(usize::MAX, 1, t0).unwrap_err(),
            (QueueFull::Full, usize::MAX)
        );
        assert_eq!(queue.drain().len(), QUEUE_REQUESTS_MAX);
        assert!(queue.is_empty() && queue.due_at().is_none());
    }

    /// Seeded random arrivals: every request comes out exactly once, in order, no batch over the limit unless it
    /// is a single oversized request, and no request is held past its deadline by a check at that deadline.
    #[test]
    fn random_arrivals_keep_every_invariant() {
        for seed in 0..50u64 {
            let mut state = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let mut next = |bound: u64| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (state >> 33) % bound
            };
            let t0 = Instant::now();
            let limit = 1 + next(32) as usize;
            let mut queue = BatchQueue::new(policy(limit, 100));
            let mut out = Vec::new();
            let mut now = t0;
            for id in 0..500u32 {
                now += Duration::from_micros(next(50));
                queue
                    .push(id, 1 + next(limit as u64 + 4) as usize, now)
                    .unwrap();
                while queue.is_due(now) || (next(4) == 0 && !queue.is_empty()) {
                    let batch = queue.take_batch();
                    let rows: usize = batch.iter().map(|(_, r)| r).sum();
                    assert!(
                        rows <= limit || batch.len() == 1,
                        "seed {seed}: batch of {rows} rows over {limit}"
                    );
                    out.extend(ids(batch));
                }
            }
            while !queue.is_empty() {
                out.extend(ids(queue.take_batch()));
            }
            assert_eq!(out, (0..500).collect::<Vec<_>>(), "seed {seed}");
        }
    }
}
