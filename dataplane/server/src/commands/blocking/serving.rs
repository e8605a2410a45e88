//! The key side of the blocking facility: each key's FIFO queue of waiters on the shard that
//! owns it, serving them after the commands that fill their keys, and sending results home.

use std::rc::Rc;
use std::task::Poll;

use ember_resp::ReplySink;
use smallvec::SmallVec;

use super::{BlockingReply, BlockingRequest, KeyWaiter, PrepareFn, Served, WaiterId};
use crate::commands::{CommandError, Ctx};
use crate::runtime;
use crate::shard::{HoldToken, PackedArgs, Shard, ShardReply, ShardRequest};

/// Called after a command ran on this shard's keyspace: the command's keys that have waiters
/// are ready, and are served now unless the shard is held.
pub fn after_command(shard: &Shard, db: usize, args: &[&[u8]]) {
    let registry = &shard.blocking;
    if !registry.has_waiters() {
        return;
    }
    if let Some(index) = crate::commands::lookup(args[0]) {
        for position in crate::commands::COMMANDS[index].key_positions(args) {
            registry.note(db, args[position]);
        }
    }
    serve_ready(shard);
}

/// Called after entries were written back into this shard (the scratch path's keys).
pub fn after_store<'k>(shard: &Shard, db: usize, keys: impl IntoIterator<Item = &'k [u8]>) {
    let registry = &shard.blocking;
    if !registry.has_waiters() {
        return;
    }
    for key in keys {
        registry.note(db, key);
    }
    serve_ready(shard);
}

/// Serves the waiters of every ready key, in FIFO order per key, unless the shard is held (the
/// release calls this again).
pub fn serve_ready(shard: &Shard) {
    let registry = &shard.blocking;
    if registry.ready.borrow().is_empty() || shard.gate.busy() {
        return;
    }
    loop {
        let next = {
            let mut ready = registry.ready.borrow_mut();
            (!ready.is_empty()).then(|| ready.remove(0))
        };
        let Some((db, key)) = next else {
            break;
        };
        // Every waiter of the key is tried, first-blocked first: a pop that finds the key
        // empty leaves the rest unserved too, but a stream read waits for entries after its
        // own ID, so a later waiter may be served where an earlier one is not.
        let queued: Vec<WaiterId> = registry
            .queues
            .borrow()
            .get(&(db, key.clone()))
            .map(|queue| queue.iter().copied().collect())
            .unwrap_or_default();
        for id in queued {
            let waiter = registry.waiters.borrow().get(&id).cloned();
            let Some(waiter) = waiter else {
                continue;
            };
            let Ok(Some(served)) = serve_one(shard, &waiter, &key) else {
                continue;
            };
            registry.remove_waiter(id);
            deliver(shard, id, served);
            // A move may have made its destination ready for someone else.
            let args = waiter.args.slices();
            if let Some(index) = crate::commands::lookup(args[0]) {
                for position in crate::commands::COMMANDS[index].key_positions(&args) {
                    registry.note(db, args[position]);
                }
            }
        }
    }
}

/// Marks every key of `db` (every database when `None`) that has waiters as ready and serves
/// them: FLUSHDB, FLUSHALL and SWAPDB change keys without naming them.
pub fn note_database(shard: &Shard, db: Option<usize>) {
    let registry = &shard.blocking;
    if !registry.has_waiters() {
        return;
    }
    let slots: Vec<(usize, Vec<u8>)> = registry
        .queues
        .borrow()
        .keys()
        .filter(|(key_db, _)| db.is_none_or(|db| db == *key_db))
        .cloned()
        .collect();
    for (key_db, key) in slots {
        registry.note(key_db, &key);
    }
    serve_ready(shard);
}

/// Runs `waiter`'s serve function on `key` here.
pub(super) fn serve_one(
    shard: &Shard,
    waiter: &KeyWaiter,
    key: &[u8],
) -> Result<Option<Served>, CommandError> {
    let args = waiter.args.slices();
    let mut out = ReplySink::values(waiter.protocol);
    let taken = {
        let mut keyspace = shard.keyspace.borrow_mut();
        let config = shard.config.borrow();
        let mut ctx = Ctx {
            keyspace: &mut keyspace,
            db: waiter.db,
            protocol: waiter.protocol,
            now_ms: crate::stats::unix_time_ms(),
            out: &mut out,
            config: &config,
            stats: &shard.stats,
            no_touch: false,
            script: false,
            pubsub: &shard.pubsub,
            protection: &shard.protection,
        };
        (waiter.serve)(&mut ctx, &args, key)?
    };
    Ok(taken.map(|taken| Served {
        reply: out.into_reply(),
        undo: taken.undo,
        db: waiter.db,
    }))
}

/// Runs `waiter`'s prepare function here.
fn prepare_one(
    shard: &Shard,
    waiter: &KeyWaiter,
    prepare: PrepareFn,
) -> Result<Option<PackedArgs>, CommandError> {
    let args = waiter.args.slices();
    let mut out = ReplySink::values(waiter.protocol);
    let mut keyspace = shard.keyspace.borrow_mut();
    let config = shard.config.borrow();
    let mut ctx = Ctx {
        keyspace: &mut keyspace,
        db: waiter.db,
        protocol: waiter.protocol,
        now_ms: crate::stats::unix_time_ms(),
        out: &mut out,
        config: &config,
        stats: &shard.stats,
        no_touch: true,
        script: false,
        pubsub: &shard.pubsub,
        protection: &shard.protection,
    };
    prepare(&mut ctx, &args, &waiter.keys)
}

/// Hands `served` to its waiter's home: here directly, elsewhere through the outbox.
fn deliver(shard: &Shard, id: WaiterId, served: Served) {
    if id.0 == shard.index {
        deliver_home(shard, id.1, served);
        return;
    }
    let registry = &shard.blocking;
    registry.outbox.borrow_mut().push_back((id.0, id, served));
    if let Some(waker) = registry.outbox_waker.borrow_mut().take() {
        waker.wake();
    }
}

fn deliver_home(shard: &Shard, sequence: u64, served: Served) {
    let mut homes = shard.blocking.homes.borrow_mut();
    match homes.get_mut(&sequence) {
        Some(home) => {
            home.results.push(served);
            if let Some(waker) = home.waker.take() {
                waker.wake();
            }
        }
        // A home cancels every registration (and collects what they served) before it
        // forgets the wait, so a result always finds its home.
        None => debug_assert!(false, "a result for a finished wait"),
    }
}

/// Sends the outbox's results to their homes, in order, for as long as the shard runs.
async fn run_outbox(shard: Rc<Shard>) {
    loop {
        let next = std::future::poll_fn(|cx| {
            let registry = &shard.blocking;
            match registry.outbox.borrow_mut().pop_front() {
                Some(item) => Poll::Ready(item),
                None => {
                    *registry.outbox_waker.borrow_mut() = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await;
        let (home, id, served) = next;
        let request = ShardRequest::Blocking(BlockingRequest::Deliver { id, served });
        shard.notify(home, request).await;
    }
}

/// Answers a [`BlockingRequest`] on this shard.
pub async fn answer(shard: &Rc<Shard>, request: BlockingRequest) -> ShardReply {
    ShardReply::Blocking(match request {
        BlockingRequest::Register {
            waiter,
            block,
            token,
        } => register_here(shard, *waiter, block, token).await,
        BlockingRequest::Cancel { id } => BlockingReply::Cancelled(cancel_here(shard, id)),
        BlockingRequest::Deliver { id, served } => {
            deliver_home(shard, id.1, served);
            BlockingReply::Done
        }
    })
}

/// True when `request` can be answered without waiting for a hold.
pub fn answerable_now(shard: &Shard, request: &BlockingRequest) -> bool {
    match request {
        BlockingRequest::Register { .. } => !shard.gate.busy(),
        BlockingRequest::Cancel { .. } | BlockingRequest::Deliver { .. } => true,
    }
}

/// Tries to serve `waiter` from its keys here, in order; queues it when none can and `block`.
pub(super) async fn register_here(
    shard: &Rc<Shard>,
    mut waiter: KeyWaiter,
    block: bool,
    token: Option<HoldToken>,
) -> BlockingReply {
    {
        let keys: SmallVec<[&[u8]; 4]> = waiter.keys.iter().map(Vec::as_slice).collect();
        shard.gate.enter_keys(token, waiter.db, &keys).await;
    }
    if let Some(prepare) = waiter.prepare {
        match prepare_one(shard, &waiter, prepare) {
            Ok(Some(args)) => waiter.args = args,
            Ok(None) => {}
            Err(error) => return BlockingReply::Error(error.0.into_owned()),
        }
    }
    for key in &waiter.keys {
        match serve_one(shard, &waiter, key) {
            Ok(Some(served)) => {
                let args = waiter.args.slices();
                after_command(shard, waiter.db, &args);
                return BlockingReply::Served(served);
            }
            Ok(None) => {}
            Err(error) => return BlockingReply::Error(error.0.into_owned()),
        }
    }
    if !block {
        return BlockingReply::NotServed;
    }
    let registry = &shard.blocking;
    if !registry.outbox_started.replace(true) {
        runtime::spawn(run_outbox(shard.clone()));
    }
    {
        let mut queues = registry.queues.borrow_mut();
        for key in &waiter.keys {
            queues
                .entry((waiter.db, key.clone()))
                .or_default()
                .push_back(waiter.id);
        }
    }
    registry.waiters.borrow_mut().insert(waiter.id, waiter);
    BlockingReply::Registered
}

/// Takes waiter `id` off this shard's queues; a result served to it that is still in the
/// outbox comes back instead of going home later.
pub(super) fn cancel_here(shard: &Shard, id: WaiterId) -> Option<Served> {
    let registry = &shard.blocking;
    registry.remove_waiter(id);
    let mut outbox = registry.outbox.borrow_mut();
    let at = outbox.iter().position(|(_, queued, _)| *queued == id)?;
    outbox.remove(at).map(|(_, _, served)| served)
}
