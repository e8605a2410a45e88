//! S3-FIFO (Yang et al., SOSP'23): a small FIFO `S` (10% of the bytes) where new keys prove
//! themselves, a main FIFO `M` (the rest) run as a 2-bit CLOCK, and a ghost FIFO `G` of
//! recently evicted keys (names only, as many bytes as `M`). Hits raise a 2-bit counter and
//! move nothing. Eviction takes from `S` while it holds at least its 10%: a key read at least
//! twice there moves to `M`, any other is evicted and remembered in `G`. A key written again
//! while remembered in `G` goes straight to `M`. `M` reinserts keys with a nonzero counter
//! (decrementing it) and evicts the first with zero. Most one-hit keys therefore leave from
//! `S` quickly, which is where S3-FIFO's low miss ratio comes from.
//!
//! Eviction yields one key per call: where the paper's `evictS` moves a key into a full `M`
//! and evicts from `M` inside the same call, this engine returns that `M` victim and resumes
//! the scan of `S` on the next call, so the same keys leave in the same order.

use super::list::{Arena, List, Weighted};
use super::{KeyId, KeyInfo, KeyMap};
use std::collections::VecDeque;

/// Share of the capacity held by the small queue: the paper's 10%, chosen there on 10 traces.
pub const SMALL_SHARE_PERCENT: u64 = 10;

/// Largest value of the per-key access counter (two bits, as the paper).
pub const FREQUENCY_MAX: u8 = 3;

/// A key leaving `S` moves to `M` when read at least this often there (the paper's
/// `t.freq > 1`); fewer reads evict it to the ghost queue.
pub const MOVE_TO_MAIN_FREQUENCY: u8 = 2;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Queue {
    Small,
    Main,
}

#[derive(Clone, Copy)]
struct Node {
    key: KeyId,
    size_bytes: u64,
    frequency: u8,
    queue: Queue,
}

impl Weighted for Node {
    fn size_bytes(&self) -> u64 {
        self.size_bytes
    }
}

/// Names of recently evicted keys in FIFO order, bounded by the bytes they stood for.
struct Ghost {
    order: VecDeque<(KeyId, u64, u64)>,
    /// Key to the sequence number of its newest entry in `order`.
    members: KeyMap<u64>,
    bytes: u64,
    next_sequence: u64,
}

impl Ghost {
    fn insert(&mut self, key: KeyId, size_bytes: u64, capacity_bytes: u64) {
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        self.order.push_back((key, size_bytes, sequence));
        self.members.insert(key, sequence);
        self.bytes += size_bytes;
        while self.bytes > capacity_bytes {
            let Some((old_key, old_size_bytes, old_sequence)) = self.order.pop_front() else {
                break;
            };
            self.bytes -= old_size_bytes;
            if self.members.get(&old_key) == Some(&old_sequence) {
                self.members.remove(&old_key);
            }
        }
    }

    /// Whether `key` is remembered; it is forgotten either way (its entry in `order` ages out).
    fn take(&mut self, key: KeyId) -> bool {
        self.members.remove(&key).is_some()
    }
}

/// The S3-FIFO policy.
pub struct S3Fifo {
    arena: Arena<Node>,
    small: List,
    main: List,
    ghost: Ghost,
    index: KeyMap<u32>,
    capacity_bytes: u64,
}

impl S3Fifo {
    /// An empty cache of `capacity_bytes`.
    pub fn new(capacity_bytes: u64) -> Self {
        S3Fifo {
            arena: Arena::new(),
            small: List::default(),
            main: List::default(),
            ghost: Ghost {
                order: VecDeque::new(),
                members: KeyMap::default(),
                bytes: 0,
                next_sequence: 0,
            },
            index: KeyMap::default(),
            capacity_bytes,
        }
    }

    fn small_target_bytes(&self) -> u64 {
        self.capacity_bytes * SMALL_SHARE_PERCENT / 100
    }

    fn main_target_bytes(&self) -> u64 {
        self.capacity_bytes - self.small_target_bytes()
    }

    fn list_of(&mut self, queue: Queue) -> &mut List {
        match queue {
            Queue::Small => &mut self.small,
            Queue::Main => &mut self.main,
        }
    }

    fn drop_node(&mut self, slot: u32) -> Node {
        let queue = self.arena.get(slot).queue;
        match queue {
            Queue::Small => self.small.unlink(&mut self.arena, slot),
            Queue::Main => self.main.unlink(&mut self.arena, slot),
        }
        let node = self.arena.release(slot);
        self.index.remove(&node.key);
        node
    }

    /// The paper's `evictM`: reinsert keys with a nonzero counter, evict the first at zero.
    fn evict_main(&mut self) -> Option<KeyId> {
        loop {
            let slot = self.main.oldest()?;
            let node = self.arena.get_mut(slot);
            if node.frequency > 0 {
                node.frequency -= 1;
                self.main.move_to_newest(&mut self.arena, slot);
            } else {
                return Some(self.drop_node(slot).key);
            }
        }
    }

    /// The paper's `evictS`, yielding early when a promotion overfills `M`.
    fn evict_small(&mut self) -> Option<KeyId> {
        while let Some(slot) = self.small.oldest() {
            let node = *self.arena.get(slot);
            if node.frequency >= MOVE_TO_MAIN_FREQUENCY {
                self.small.unlink(&mut self.arena, slot);
                let moved = self.arena.get_mut(slot);
                moved.frequency = 0;
                moved.queue = Queue::Main;
                self.main.push_newest(&mut self.arena, slot);
                if self.main.bytes() > self.main_target_bytes() {
                    return self.evict_main();
                }
            } else {
                let node = self.drop_node(slot);
                let ghost_capacity_bytes = self.main_target_bytes();
                self.ghost
                    .insert(node.key, node.size_bytes, ghost_capacity_bytes);
                return Some(node.key);
            }
        }
        None
    }
}

impl super::EvictionPolicy for S3Fifo {
    fn name(&self) -> &'static str {
        "s3fifo"
    }

    fn set_capacity_bytes(&mut self, capacity_bytes: u64) {
        self.capacity_bytes = capacity_bytes;
    }

    fn len(&self) -> usize {
        self.small.len() + self.main.len()
    }

    fn on_insert(&mut self, key: KeyId, info: KeyInfo, _now_ms: u64) {
        let queue = if self.ghost.take(key) {
            Queue::Main
        } else {
            Queue::Small
        };
        let slot = self.arena.allocate(Node {
            key,
            size_bytes: info.size_bytes,
            frequency: 0,
            queue,
        });
        assert!(
            self.index.insert(key, slot).is_none(),
            "key {key} inserted twice"
        );
        match queue {
            Queue::Small => self.small.push_newest(&mut self.arena, slot),
            Queue::Main => self.main.push_newest(&mut self.arena, slot),
        }
    }

    fn on_access(&mut self, key: KeyId, _now_ms: u64) {
        let node = self.arena.get_mut(self.index[&key]);
        node.frequency = (node.frequency + 1).min(FREQUENCY_MAX);
    }

    fn on_update(&mut self, key: KeyId, info: KeyInfo, now_ms: u64) {
        let slot = self.index[&key];
        let node = self.arena.get_mut(slot);
        let (old_size_bytes, queue) = (node.size_bytes, node.queue);
        node.size_bytes = info.size_bytes;
        self.list_of(queue).resize(old_size_bytes, info.size_bytes);
        // A write is a use of the key, as a read is.
        self.on_access(key, now_ms);
    }

    fn on_remove(&mut self, key: KeyId) {
        let slot = self.index[&key];
        self.drop_node(slot);
    }

    fn choose_victim(&mut self, _now_ms: u64) -> Option<KeyId> {
        if self.small.bytes() >= self.small_target_bytes() || self.main.is_empty() {
            if let Some(victim) = self.evict_small() {
                return Some(victim);
            }
        }
        self.evict_main()
    }
}
