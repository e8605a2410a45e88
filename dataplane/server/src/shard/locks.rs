//! Holds: how an operation that spans shards stays atomic.
//!
//! Two mechanisms, each used only where atomicity needs it:
//! - a [`Gate`] per shard, held by one operation at a time (EXEC, cross-shard writes, the scratch
//!   path). Holds are always taken in ascending shard order, so two operations never wait on each
//!   other, and the last shard of an operation is never held at all: its part runs in one step
//!   when the message arrives.
//! - [`MultiWrites`], a process-wide pair of counters that every multi-shard write bumps before it
//!   takes its first hold and after its last part is applied. A multi-shard read (MGET, EXISTS)
//!   reads every shard at once without holding any, and is valid when no multi-shard write began
//!   or was under way meanwhile; otherwise it runs again under holds. So reads never serialize
//!   other clients, and a cross-shard MSET is still seen whole or not at all.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Waker;

/// A key-holding operation's identity while it holds shards: (origin shard, sequence).
pub type HoldToken = (usize, u64);

/// Makes local work wait while another shard's atomic operation holds this shard.
#[derive(Default)]
pub struct Gate {
    held_by: Cell<Option<HoldToken>>,
    waiters: RefCell<Vec<Waker>>,
}

impl Gate {
    /// True when a hold other than `token` is in force.
    pub fn blocks(&self, token: Option<HoldToken>) -> bool {
        match self.held_by.get() {
            None => false,
            Some(holder) => Some(holder) != token,
        }
    }

    /// Waits until the gate does not block `token`.
    pub async fn enter(&self, token: Option<HoldToken>) {
        std::future::poll_fn(|cx| {
            if self.blocks(token) {
                self.waiters.borrow_mut().push(cx.waker().clone());
                std::task::Poll::Pending
            } else {
                std::task::Poll::Ready(())
            }
        })
        .await;
    }

    /// Waits until free, then holds for `token`.
    pub async fn hold(&self, token: HoldToken) {
        loop {
            self.enter(None).await;
            if self.held_by.get().is_none() {
                self.held_by.set(Some(token));
                return;
            }
        }
    }

    /// Releases the hold of `token` and wakes every waiter.
    pub fn release(&self, token: HoldToken) {
        if self.held_by.get() == Some(token) {
            self.held_by.set(None);
            for waker in self.waiters.borrow_mut().drain(..) {
                waker.wake();
            }
        }
    }
}

/// Counters of multi-shard writes, shared by every shard (a sequence lock over the keyspace).
#[derive(Debug, Default)]
pub struct MultiWrites {
    started: AtomicU64,
    finished: AtomicU64,
}

/// What a multi-shard read saw before it began; [`MultiWrites::still_valid`] checks it after.
#[derive(Debug, Clone, Copy)]
pub struct ReadStamp {
    started: u64,
}

impl MultiWrites {
    /// Marks a multi-shard write as begun: call before its first hold or part.
    pub fn begin(&self) {
        self.started.fetch_add(1, Ordering::SeqCst);
    }

    /// Marks a multi-shard write as complete: call after its last part is applied.
    pub fn end(&self) {
        self.finished.fetch_add(1, Ordering::SeqCst);
    }

    /// The stamp for an optimistic read, or `None` while a multi-shard write is under way (then
    /// the read takes holds instead).
    pub fn read_stamp(&self) -> Option<ReadStamp> {
        let started = self.started.load(Ordering::SeqCst);
        let finished = self.finished.load(Ordering::SeqCst);
        debug_assert!(finished <= started, "a write ends after it begins");
        (started == finished).then_some(ReadStamp { started })
    }

    /// True when no multi-shard write began since `stamp`: the parts read form one snapshot.
    pub fn still_valid(&self, stamp: ReadStamp) -> bool {
        self.started.load(Ordering::SeqCst) == stamp.started
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_between_the_stamps_invalidates_a_read() {
        let writes = MultiWrites::default();
        let stamp = writes.read_stamp().expect("no write under way");
        assert!(writes.still_valid(stamp));
        writes.begin();
        assert!(writes.read_stamp().is_none(), "a write under way");
        assert!(!writes.still_valid(stamp));
        writes.end();
        let later = writes.read_stamp().expect("the write ended");
        assert!(writes.still_valid(later));
    }

    #[test]
    fn gate_blocks_everyone_but_its_holder() {
        let gate = Gate::default();
        assert!(!gate.blocks(None));
        let token = (1, 7);
        futures_lite::future::block_on(gate.hold(token));
        assert!(gate.blocks(None));
        assert!(!gate.blocks(Some(token)));
        assert!(gate.blocks(Some((0, 7))));
        gate.release(token);
        assert!(!gate.blocks(None));
    }
}
