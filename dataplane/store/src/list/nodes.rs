//! A list's nodes and counters in 16 bytes: most lists are one node, kept inline with the
//! list's counters in that node's header (one allocation for the whole list, as a listpack is);
//! a longer list boxes a deque of nodes and its counters.

use std::collections::VecDeque;

use super::node::Node;

/// The list's nodes.
#[derive(Clone)]
pub(super) enum Nodes {
    /// At most one node (none while it is empty); the list's counters live in its header.
    One(Node),
    /// Two nodes or more.
    Many(Box<Many>),
}

/// The multi-node form.
#[derive(Clone)]
pub(super) struct Many {
    nodes: VecDeque<Node>,
    len: usize,
    /// The list's counters word (see `ListValue`).
    word: u64,
}

impl Default for Nodes {
    fn default() -> Self {
        Self::One(Node::default())
    }
}

impl Nodes {
    /// Number of nodes.
    pub(super) fn len(&self) -> usize {
        match self {
            Self::One(node) => usize::from(node.count() > 0),
            Self::Many(many) => many.nodes.len(),
        }
    }

    /// The nodes, head first.
    pub(super) fn iter(&self) -> impl DoubleEndedIterator<Item = &Node> + '_ {
        let (front, back): (&[Node], &[Node]) = match self {
            Self::One(node) if node.count() == 0 => (&[], &[]),
            Self::One(node) => (std::slice::from_ref(node), &[]),
            Self::Many(many) => many.nodes.as_slices(),
        };
        front.iter().chain(back)
    }

    /// Elements in the list.
    pub(super) fn list_len(&self) -> usize {
        match self {
            Self::One(node) => node.count(),
            Self::Many(many) => many.len,
        }
    }

    /// Sets the element count after the nodes changed (a single node counts its own).
    pub(super) fn set_list_len(&mut self, len: usize) {
        match self {
            Self::One(node) => debug_assert_eq!(node.count(), len),
            Self::Many(many) => many.len = len,
        }
    }

    /// The list's counters word.
    pub(super) fn word(&self) -> u64 {
        match self {
            Self::One(node) => node.list_word(),
            Self::Many(many) => many.word,
        }
    }

    pub(super) fn set_word(&mut self, word: u64) {
        match self {
            Self::One(node) => node.set_list_word(word),
            Self::Many(many) => many.word = word,
        }
    }

    /// The deque, converting a single node into one.
    fn many(&mut self) -> &mut Many {
        if let Self::One(node) = self {
            let node = std::mem::take(node);
            let (len, word) = (node.count(), node.list_word());
            let mut nodes = VecDeque::with_capacity(2);
            if len > 0 {
                nodes.push_back(node);
            }
            *self = Self::Many(Box::new(Many { nodes, len, word }));
        }
        match self {
            Self::Many(many) => many,
            Self::One(_) => unreachable!("converted above"),
        }
    }

    /// Back to a single inline node once at most one is left.
    fn normalize(&mut self) {
        if let Self::Many(many) = self {
            if many.nodes.len() <= 1 {
                let mut node = many.nodes.pop_front().unwrap_or_default();
                node.set_list_word(many.word);
                *self = Self::One(node);
            }
        }
    }

    /// An empty single node takes `node`'s place (keeping the counters); true when it did.
    fn fill_empty(&mut self, node: &mut Node) -> bool {
        match self {
            Self::One(only) if only.count() == 0 => {
                let word = only.list_word();
                *only = std::mem::take(node);
                only.set_list_word(word);
                true
            }
            _ => false,
        }
    }

    pub(super) fn push_front(&mut self, mut node: Node) {
        if !self.fill_empty(&mut node) {
            self.many().nodes.push_front(node);
        }
    }

    pub(super) fn push_back(&mut self, mut node: Node) {
        if !self.fill_empty(&mut node) {
            self.many().nodes.push_back(node);
        }
    }

    pub(super) fn insert(&mut self, at: usize, mut node: Node) {
        if !self.fill_empty(&mut node) {
            self.many().nodes.insert(at, node);
        }
    }

    pub(super) fn remove(&mut self, at: usize) {
        match self {
            Self::One(node) => {
                assert_eq!(at, 0, "a single node is node 0");
                node.clear();
            }
            Self::Many(many) => {
                many.nodes.remove(at);
                self.normalize();
            }
        }
    }

    /// Drops the nodes left empty.
    pub(super) fn drop_empty(&mut self) {
        if let Self::Many(many) = self {
            many.nodes.retain(|node| node.count() > 0);
            self.normalize();
        }
    }

    /// Bytes of the nodes' buffers and of the deque and its box.
    pub(super) fn heap_len(&self) -> usize {
        let buffers: usize = self.iter().map(Node::heap_len).sum();
        match self {
            Self::One(node) if node.count() == 0 => node.heap_len(),
            Self::One(_) => buffers,
            Self::Many(many) => {
                buffers
                    + std::mem::size_of::<Many>()
                    + many.nodes.capacity() * std::mem::size_of::<Node>()
            }
        }
    }
}

impl std::ops::Index<usize> for Nodes {
    type Output = Node;
    fn index(&self, at: usize) -> &Node {
        match self {
            Self::One(node) => {
                assert_eq!(at, 0, "a single node is node 0");
                node
            }
            Self::Many(many) => &many.nodes[at],
        }
    }
}

impl std::ops::IndexMut<usize> for Nodes {
    fn index_mut(&mut self, at: usize) -> &mut Node {
        match self {
            Self::One(node) => {
                assert_eq!(at, 0, "a single node is node 0");
                node
            }
            Self::Many(many) => &mut many.nodes[at],
        }
    }
}
