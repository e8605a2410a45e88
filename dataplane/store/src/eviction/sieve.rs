//! SIEVE (Zhang et al., NSDI'24): one FIFO queue, a visited bit per key and a hand. New keys
//! enter at the newest end unvisited; a hit only sets the bit (no move, so reads write no
//! list pointers). To evict, the hand walks from where it stopped toward the newest end
//! (wrapping to the oldest), clearing visited bits, and evicts the first unvisited key. Keys
//! that survive keep their place, so new keys are judged quickly and popular ones stay.

use super::list::{Arena, List, Weighted, NIL};
use super::{KeyId, KeyInfo, KeyMap};

#[derive(Clone, Copy)]
struct Node {
    key: KeyId,
    size_bytes: u64,
    visited: bool,
}

impl Weighted for Node {
    fn size_bytes(&self) -> u64 {
        self.size_bytes
    }
}

/// The SIEVE policy.
pub struct Sieve {
    arena: Arena<Node>,
    queue: List,
    index: KeyMap<u32>,
    /// The next node to examine, or `NIL` to start from the oldest.
    hand: u32,
}

impl Sieve {
    /// An empty SIEVE queue.
    pub fn new() -> Self {
        Sieve {
            arena: Arena::new(),
            queue: List::default(),
            index: KeyMap::default(),
            hand: NIL,
        }
    }

    fn unlink(&mut self, slot: u32) -> KeyId {
        if self.hand == slot {
            // The hand moves on to the node it would have examined next.
            self.hand = self.arena.newer(slot);
        }
        self.queue.unlink(&mut self.arena, slot);
        let node = self.arena.release(slot);
        self.index.remove(&node.key);
        node.key
    }
}

impl Default for Sieve {
    fn default() -> Self {
        Self::new()
    }
}

impl super::EvictionPolicy for Sieve {
    fn name(&self) -> &'static str {
        "sieve"
    }

    fn set_capacity_bytes(&mut self, _capacity_bytes: u64) {}

    fn len(&self) -> usize {
        self.queue.len()
    }

    fn on_insert(&mut self, key: KeyId, info: KeyInfo, _now_ms: u64) {
        let slot = self.arena.allocate(Node {
            key,
            size_bytes: info.size_bytes,
            visited: false,
        });
        assert!(
            self.index.insert(key, slot).is_none(),
            "key {key} inserted twice"
        );
        self.queue.push_newest(&mut self.arena, slot);
    }

    fn on_access(&mut self, key: KeyId, _now_ms: u64) {
        let slot = self.index[&key];
        self.arena.get_mut(slot).visited = true;
    }

    fn on_update(&mut self, key: KeyId, info: KeyInfo, _now_ms: u64) {
        let slot = self.index[&key];
        let node = self.arena.get_mut(slot);
        let old_size_bytes = node.size_bytes;
        node.size_bytes = info.size_bytes;
        // A write is a use of the key, as a read is.
        node.visited = true;
        self.queue.resize(old_size_bytes, info.size_bytes);
    }

    fn on_remove(&mut self, key: KeyId) {
        let slot = self.index[&key];
        self.unlink(slot);
    }

    fn choose_victim(&mut self, _now_ms: u64) -> Option<KeyId> {
        let mut slot = if self.hand == NIL {
            self.queue.oldest()?
        } else {
            self.hand
        };
        // Terminates: every step either finds an unvisited node or clears a bit, so within
        // two laps of the queue an unvisited node is found.
        while self.arena.get(slot).visited {
            self.arena.get_mut(slot).visited = false;
            slot = match self.arena.newer(slot) {
                NIL => self.queue.oldest().expect("queue is not empty"),
                newer => newer,
            };
        }
        self.hand = slot;
        Some(self.unlink(slot))
    }
}
