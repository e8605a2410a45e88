//! Doubly linked lists whose nodes live in one arena (a `Vec` with a free list), addressed by
//! `u32` slots: O(1) push, unlink and move without a heap allocation per key. SIEVE's queue,
//! S3-FIFO's two queues and W-TinyLFU's three segments are lists over one arena each, so a key
//! moves between segments by relinking, never by copying.

/// The slot number that means "no node".
pub(crate) const NIL: u32 = u32::MAX;

/// What a list node carries: anything that knows its byte size, so that lists keep their
/// byte totals without the caller adding them up.
pub(crate) trait Weighted: Copy {
    /// Bytes this node accounts for.
    fn size_bytes(&self) -> u64;
}

#[derive(Clone, Copy)]
struct Node<T> {
    value: T,
    /// Toward the newest end of the list the node is on.
    newer: u32,
    /// Toward the oldest end.
    older: u32,
}

/// The nodes of every list of one policy.
pub(crate) struct Arena<T> {
    nodes: Vec<Node<T>>,
    free: Vec<u32>,
}

impl<T: Weighted> Arena<T> {
    pub(crate) fn new() -> Self {
        Arena {
            nodes: Vec::new(),
            free: Vec::new(),
        }
    }

    /// Stores `value` in a node that is on no list yet.
    pub(crate) fn allocate(&mut self, value: T) -> u32 {
        let node = Node {
            value,
            newer: NIL,
            older: NIL,
        };
        if let Some(slot) = self.free.pop() {
            self.nodes[slot as usize] = node;
            slot
        } else {
            let slot = u32::try_from(self.nodes.len()).expect("fewer than 2^32 - 1 keys a policy");
            assert!(slot != NIL, "the arena is full");
            self.nodes.push(node);
            slot
        }
    }

    /// Frees a node that the caller has already unlinked, returning its value.
    pub(crate) fn release(&mut self, slot: u32) -> T {
        let node = self.nodes[slot as usize];
        debug_assert!(
            node.newer == NIL && node.older == NIL,
            "released while linked"
        );
        self.free.push(slot);
        node.value
    }

    pub(crate) fn get(&self, slot: u32) -> &T {
        &self.nodes[slot as usize].value
    }

    pub(crate) fn get_mut(&mut self, slot: u32) -> &mut T {
        &mut self.nodes[slot as usize].value
    }

    /// The neighbour toward the newest end, or `NIL`.
    pub(crate) fn newer(&self, slot: u32) -> u32 {
        self.nodes[slot as usize].newer
    }
}

/// One list: its two ends, its length and the bytes of its nodes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct List {
    newest: u32,
    oldest: u32,
    len: usize,
    bytes: u64,
}

impl Default for List {
    fn default() -> Self {
        List {
            newest: NIL,
            oldest: NIL,
            len: 0,
            bytes: 0,
        }
    }
}

impl List {
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn oldest(&self) -> Option<u32> {
        (self.oldest != NIL).then_some(self.oldest)
    }

    /// Links an unlinked node at the newest end.
    pub(crate) fn push_newest<T: Weighted>(&mut self, arena: &mut Arena<T>, slot: u32) {
        let previous_newest = self.newest;
        {
            let node = &mut arena.nodes[slot as usize];
            debug_assert!(
                node.newer == NIL && node.older == NIL,
                "pushed while linked"
            );
            node.older = previous_newest;
            node.newer = NIL;
        }
        if previous_newest == NIL {
            self.oldest = slot;
        } else {
            arena.nodes[previous_newest as usize].newer = slot;
        }
        self.newest = slot;
        self.len += 1;
        self.bytes += arena.nodes[slot as usize].value.size_bytes();
    }

    /// Unlinks a node that is on this list.
    pub(crate) fn unlink<T: Weighted>(&mut self, arena: &mut Arena<T>, slot: u32) {
        let Node {
            newer,
            older,
            value,
        } = arena.nodes[slot as usize];
        if newer == NIL {
            debug_assert_eq!(self.newest, slot, "unlinked from the wrong list");
            self.newest = older;
        } else {
            arena.nodes[newer as usize].older = older;
        }
        if older == NIL {
            debug_assert_eq!(self.oldest, slot, "unlinked from the wrong list");
            self.oldest = newer;
        } else {
            arena.nodes[older as usize].newer = newer;
        }
        let node = &mut arena.nodes[slot as usize];
        node.newer = NIL;
        node.older = NIL;
        assert!(self.len > 0, "unlinked from an empty list");
        self.len -= 1;
        self.bytes -= value.size_bytes();
    }

    /// Moves a node of this list to its newest end.
    pub(crate) fn move_to_newest<T: Weighted>(&mut self, arena: &mut Arena<T>, slot: u32) {
        if self.newest != slot {
            self.unlink(arena, slot);
            self.push_newest(arena, slot);
        }
    }

    /// Changes the byte size of a node on this list (its value must already say the new size).
    pub(crate) fn resize(&mut self, old_size_bytes: u64, new_size_bytes: u64) {
        self.bytes = self.bytes - old_size_bytes + new_size_bytes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy)]
    struct Item(u64);

    impl Weighted for Item {
        fn size_bytes(&self) -> u64 {
            self.0
        }
    }

    fn contents(list: &List, arena: &Arena<Item>) -> Vec<u64> {
        let mut out = Vec::new();
        let mut slot = list.oldest;
        while slot != NIL {
            out.push(arena.get(slot).0);
            slot = arena.newer(slot);
        }
        out
    }

    #[test]
    fn push_unlink_move_keep_order_and_bytes() {
        let mut arena = Arena::new();
        let mut list = List::default();
        let slots: Vec<u32> = (1..=4).map(|size| arena.allocate(Item(size))).collect();
        for &slot in &slots {
            list.push_newest(&mut arena, slot);
        }
        assert_eq!(contents(&list, &arena), [1, 2, 3, 4]);
        assert_eq!((list.len(), list.bytes()), (4, 10));
        list.move_to_newest(&mut arena, slots[0]);
        assert_eq!(contents(&list, &arena), [2, 3, 4, 1]);
        list.unlink(&mut arena, slots[2]);
        assert_eq!(contents(&list, &arena), [2, 4, 1]);
        assert_eq!((list.len(), list.bytes()), (3, 7));
        arena.release(slots[2]);
        let reused = arena.allocate(Item(9));
        assert_eq!(reused, slots[2], "a freed slot is reused");
        list.push_newest(&mut arena, reused);
        assert_eq!(contents(&list, &arena), [2, 4, 1, 9]);
        for slot in [slots[1], slots[3], slots[0], reused] {
            list.unlink(&mut arena, slot);
        }
        assert!(list.is_empty());
        assert_eq!((list.oldest(), list.bytes()), (None, 0));
    }
}
