//! Holds: how an operation that spans shards stays atomic.
//!
//! Two mechanisms, each used only where atomicity needs it:
//! - a [`Gate`] per shard, held whole by one operation at a time (EXEC, the scratch path), or key
//!   by key by cross-shard writes (MSET, DEL). Holds are always taken in ascending shard order, so
//!   two operations never wait on each other, and the last shard of an operation is never held at
//!   all: its part runs in one step when the message arrives.
//! - [`MultiWrites`], a process-wide pair of counters that every multi-shard write bumps before it
//!   takes its first hold and after its last part is applied. A multi-shard read (MGET, EXISTS)
//!   reads every shard at once without holding any, and is valid when no multi-shard write began
//!   or was under way meanwhile; otherwise it runs again under holds. So reads never serialize
//!   other clients, and a cross-shard MSET is still seen whole or not at all.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Waker;

use smallvec::SmallVec;

/// A key-holding operation's identity while it holds shards: (origin shard, sequence).
pub type HoldToken = (usize, u64);

/// Makes local work wait while another shard's atomic operation holds this shard, or holds
/// the keys it touches.
///
/// Two kinds of hold: the whole shard (EXEC, the scratch path), and a set of keys (the parts of
/// a cross-shard write before its last). A key hold stops only the requests that touch those
/// keys, so a cross-shard MSET waiting for its other shard does not stall unrelated clients.
#[derive(Default)]
pub struct Gate {
    held_by: Cell<Option<HoldToken>>,
    /// Keys held by cross-shard writes: (database, key, holder). A few at a time (the keys of
    /// the writes in flight), so a scan beats a map; empty when no such write is under way,
    /// which is the one check a request pays then.
    locked: RefCell<Vec<LockedKey>>,
    waiters: RefCell<Vec<Waker>>,
    /// Holds still waiting to be taken, and whether their release came first. A hold asked of
    /// another shard that did not answer in time (`shard-reply-timeout-ms`) is released by its
    /// origin while it may still be waiting here: without this it would be taken afterwards
    /// and never released, and the shard would stay held for ever.
    waiting_holds: RefCell<SmallVec<[(HoldToken, bool); 2]>>,
}

/// A key held by a cross-shard write. Under many concurrent MSETs the scan compares every held
/// key with every key of a request: the fingerprint settles almost every comparison without
/// reading the key's bytes.
struct LockedKey {
    db: usize,
    fingerprint: u64,
    key: Box<[u8]>,
    holder: HoldToken,
}

/// FNV-1a of `key`: cheap for the short keys of a command, and only ever compared within one
/// shard's held keys (a collision just compares the bytes).
fn fingerprint(key: &[u8]) -> u64 {
    key.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl Gate {
    /// True when a whole-shard hold other than `token` is in force.
    pub fn blocks(&self, token: Option<HoldToken>) -> bool {
        match self.held_by.get() {
            None => false,
            Some(holder) => Some(holder) != token,
        }
    }

    /// True when single keys are held (by [`Gate::enter_keys`]).
    pub fn keys_locked(&self) -> bool {
        !self.locked.borrow().is_empty()
    }

    /// True when any hold is in force (a request may have to wait: see [`Gate::enter_keys`]).
    pub fn busy(&self) -> bool {
        self.held_by.get().is_some() || !self.locked.borrow().is_empty()
    }

    /// True when a request of `token` on `keys` of `db` must wait: the shard is held by another,
    /// or one of the keys is.
    pub fn keys_blocked(&self, token: Option<HoldToken>, db: usize, keys: &[&[u8]]) -> bool {
        if self.blocks(token) {
            return true;
        }
        let locked = self.locked.borrow();
        if locked.is_empty() {
            return false;
        }
        let wanted: SmallVec<[u64; 8]> = keys.iter().map(|key| fingerprint(key)).collect();
        locked.iter().any(|held| {
            Some(held.holder) != token
                && held.db == db
                && wanted
                    .iter()
                    .zip(keys)
                    .any(|(&print, key)| print == held.fingerprint && *key == &held.key[..])
        })
    }

    async fn wait_until(&self, ready: impl Fn() -> bool) {
        std::future::poll_fn(|cx| {
            if ready() {
                std::task::Poll::Ready(())
            } else {
                self.waiters.borrow_mut().push(cx.waker().clone());
                std::task::Poll::Pending
            }
        })
        .await;
    }

    /// Waits until the gate does not block `token` (whole-shard holds only).
    pub async fn enter(&self, token: Option<HoldToken>) {
        self.wait_until(|| !self.blocks(token)).await;
    }

    /// Waits until a request of `token` may touch `keys` of `db`.
    pub async fn enter_keys(&self, token: Option<HoldToken>, db: usize, keys: &[&[u8]]) {
        self.wait_until(|| !self.keys_blocked(token, db, keys))
            .await;
    }

    /// Waits until `keys` of `db` are free, then holds them for `token`. All or none: a shard
    /// runs one task at a time, so nothing comes between the check and the hold.
    pub async fn lock_keys(&self, token: HoldToken, db: usize, keys: &[&[u8]]) {
        if self
            .wait_to_hold(token, || !self.keys_blocked(Some(token), db, keys))
            .await
        {
            self.lock_keys_now(token, db, keys);
        }
    }

    /// Holds `keys` of `db` for `token` at once: for a caller that knows nothing else holds them
    /// (a blocking fence starts only when the gate is not busy).
    pub fn lock_keys_now(&self, token: HoldToken, db: usize, keys: &[&[u8]]) {
        let mut locked = self.locked.borrow_mut();
        for key in keys {
            locked.push(LockedKey {
                db,
                fingerprint: fingerprint(key),
                key: Box::from(*key),
                holder: token,
            });
        }
    }

    /// Waits until nothing is held, then holds the whole shard for `token` (unless `token` was
    /// released meanwhile: then it holds nothing).
    pub async fn hold(&self, token: HoldToken) {
        if self.wait_to_hold(token, || !self.busy()).await {
            debug_assert!(!self.busy(), "nothing comes between the check and the hold");
            self.held_by.set(Some(token));
        }
    }

    /// Waits until `ready` for a hold of `token`; false when `token` was released before the
    /// hold could be taken (the hold must not be taken then).
    async fn wait_to_hold(&self, token: HoldToken, ready: impl Fn() -> bool) -> bool {
        if ready() {
            return true;
        }
        self.waiting_holds.borrow_mut().push((token, false));
        let cancelled = || {
            self.waiting_holds
                .borrow()
                .iter()
                .any(|&(waiting, released)| waiting == token && released)
        };
        self.wait_until(|| ready() || cancelled()).await;
        let mut waiting = self.waiting_holds.borrow_mut();
        let at = waiting
            .iter()
            .position(|&(waiting, _)| waiting == token)
            .expect("registered above");
        !waiting.swap_remove(at).1
    }

    /// Holds the whole shard for `token` if nothing is held now; never waits (so a holder that
    /// takes shards out of ascending order this way cannot deadlock). True when held.
    pub fn try_hold(&self, token: HoldToken) -> bool {
        if self.busy() {
            return false;
        }
        self.held_by.set(Some(token));
        true
    }

    /// Releases every hold of `token` (the shard, its keys) and wakes every waiter.
    pub fn release(&self, token: HoldToken) {
        let mut released = false;
        if self.held_by.get() == Some(token) {
            self.held_by.set(None);
            released = true;
        }
        {
            let mut locked = self.locked.borrow_mut();
            let before = locked.len();
            locked.retain(|held| held.holder != token);
            released |= locked.len() != before;
        }
        if !released {
            // Released before its hold was taken: the waiting hold is cancelled.
            for waiting in self.waiting_holds.borrow_mut().iter_mut() {
                if waiting.0 == token {
                    waiting.1 = true;
                    released = true;
                }
            }
        }
        if released {
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

    /// A hold released by its origin while it still waits here (the origin's wait timed out)
    /// is never taken: once the holder before it leaves, the shard is free.
    #[test]
    fn a_hold_released_while_it_waits_is_never_taken() {
        use std::future::Future;
        let gate = Gate::default();
        let (first, late) = ((0, 1), (1, 1));
        futures_lite::future::block_on(gate.hold(first));
        let mut waiting = Box::pin(gate.hold(late));
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        assert!(waiting.as_mut().poll(&mut cx).is_pending());
        gate.release(late);
        gate.release(first);
        assert!(waiting.as_mut().poll(&mut cx).is_ready());
        assert!(!gate.busy(), "the late hold was taken after its release");
        // The same for a key hold.
        futures_lite::future::block_on(gate.lock_keys(first, 0, &[b"k"]));
        let mut waiting = Box::pin(gate.lock_keys(late, 0, &[b"k"]));
        assert!(waiting.as_mut().poll(&mut cx).is_pending());
        gate.release(late);
        gate.release(first);
        assert!(waiting.as_mut().poll(&mut cx).is_ready());
        assert!(!gate.busy());
    }

    #[test]
    fn key_holds_stop_only_their_keys() {
        let gate = Gate::default();
        let writer = (0, 1);
        futures_lite::future::block_on(gate.lock_keys(writer, 0, &[b"a", b"b"]));
        let cases: &[(&str, Option<HoldToken>, usize, &[&[u8]], bool)] = &[
            ("another key", None, 0, &[b"c"], false),
            ("a held key", None, 0, &[b"c", b"b"], true),
            ("the same key in another database", None, 1, &[b"a"], false),
            ("the holder itself", Some(writer), 0, &[b"a"], false),
        ];
        for (name, token, db, keys, blocked) in cases {
            assert_eq!(gate.keys_blocked(*token, *db, keys), *blocked, "{name}");
        }
        assert!(
            gate.busy() && !gate.blocks(None),
            "keys held, the shard is not"
        );
        gate.release(writer);
        assert!(!gate.busy());
        assert!(!gate.keys_blocked(None, 0, &[b"a"]));
    }
}
