//! The key side of the blocking facility: each key's FIFO queue of waiters on the shard that
//! owns it, serving them after the commands that fill their keys, and sending results home.

use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::Duration;

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

/// Serves the waiters of every ready key, in their queue's order, unless the shard is held (the
/// release calls this again).
///
/// A ready key is fenced ([`start_fence`]) when a registration from another shard is on its
/// way here: its keys are held, and it is served only once every shard (this one included)
/// has had one turn of its loop since. A client's blocking request that was sent before the
/// push that made the key ready, on a connection of any shard, has then registered, and takes
/// its place in the queue by the time it began. With none on its way, the key is served at
/// once, and fenced only when every waiter was served and it still holds something (a request
/// not read yet would have been served too).
pub fn serve_ready(shard: &Shard) {
    let registry = &shard.blocking;
    if registry.ready.borrow().is_empty() || shard.gate.busy() {
        return;
    }
    let mut to_fence: Vec<(usize, Vec<u8>)> = Vec::new();
    loop {
        let next = {
            let mut ready = registry.ready.borrow_mut();
            (!ready.is_empty()).then(|| ready.remove(0))
        };
        let Some((db, key)) = next else {
            break;
        };
        let fenced = {
            let mut fenced = registry.fenced.borrow_mut();
            let at = fenced
                .iter()
                .position(|(fenced_db, fenced_key)| *fenced_db == db && *fenced_key == key);
            at.map(|at| fenced.swap_remove(at)).is_some()
        };
        // With no registration on its way here, every waiter whose request began before the
        // push is queued, except one whose bytes its shard has not read yet (it begins later
        // than every waiter here): serve now, and fence only what is left for such a waiter.
        let settled = !fenced
            && shard.shared.registrations_in_flight[shard.index].load(Ordering::SeqCst) == 0;
        if !fenced && !settled {
            to_fence.push((db, key));
            continue;
        }
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
        if settled && !registry.queues.borrow().contains_key(&(db, key.clone())) && {
            let keyspace = shard.keyspace.borrow();
            keyspace
                .peek(db, &key, crate::stats::unix_time_ms())
                .is_some_and(|entry| !matches!(entry.value, ember_store::Value::Stream(_)))
        } {
            // Every waiter was served and the key still holds something: a request sent
            // before the push, not yet read, would take it in Redis. Hold it for a fence.
            // Not a stream: a read takes nothing, so a late XREAD reads what the served ones
            // read, a late `$` resolves after the entry, and a late `>` finds it delivered;
            // a fence there would change no outcome and only slow the shards down.
            to_fence.push((db, key));
        }
    }
    if !to_fence.is_empty() {
        start_fence(shard, to_fence);
    }
}

/// Holds the ready keys `keys` and the keys of their waiters that live here (so nobody sees
/// or takes what the waiters are owed), and asks every other shard for a [`Fence`] answer
/// while this one takes a turn of its own loop; then marks the keys fenced, releases them and
/// serves them. A registration whose bytes arrived anywhere before the push that made a key
/// ready is on the mesh ahead of its shard's answer, so it is queued, in the order its request
/// began ([`KeyWaiter::since`]), before the key is served.
///
/// [`Fence`]: BlockingRequest::Fence
fn start_fence(shard: &Shard, keys: Vec<(usize, Vec<u8>)>) {
    let registry = &shard.blocking;
    let token = shard.new_hold_token();
    {
        let queues = registry.queues.borrow();
        let waiters = registry.waiters.borrow();
        let mut held: Vec<(usize, Vec<u8>)> = Vec::new();
        let mut hold = |db: usize, key: &[u8]| {
            if shard.owner_of(key) == shard.index
                && !held
                    .iter()
                    .any(|(held_db, held_key)| *held_db == db && held_key == key)
            {
                held.push((db, key.to_vec()));
            }
        };
        for (db, key) in &keys {
            hold(*db, key);
            for id in queues.get(&(*db, key.clone())).into_iter().flatten() {
                let Some(waiter) = waiters.get(id) else {
                    continue;
                };
                let args = waiter.args.slices();
                if let Some(index) = crate::commands::lookup(args[0]) {
                    for position in crate::commands::COMMANDS[index].key_positions(&args) {
                        hold(waiter.db, args[position]);
                    }
                }
            }
        }
        for (db, key) in &held {
            shard.gate.lock_keys_now(token, *db, &[key.as_slice()]);
        }
    }
    registry.fence.set(Some(token));
    *registry.fencing.borrow_mut() = keys;
    // The fence task was started with the first waiter (a key is ready only when it has one).
    if let Some(waker) = registry.fence_waker.borrow_mut().take() {
        waker.wake();
    }
}

/// Runs this shard's fences, one at a time, for as long as the shard runs (see
/// [`start_fence`]).
async fn run_fences(shard: Rc<Shard>) {
    loop {
        let token = std::future::poll_fn(|cx| {
            let registry = &shard.blocking;
            match registry.fence.get() {
                Some(token) => Poll::Ready(token),
                None => {
                    *registry.fence_waker.borrow_mut() = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await;
        let mut pending = Vec::with_capacity(shard.count());
        for index in (0..shard.count()).filter(|&index| index != shard.index) {
            let request = ShardRequest::Blocking(BlockingRequest::Fence);
            pending.push(shard.send(index, request).await);
        }
        one_turn(&shard).await;
        for reply in pending {
            // An error (a shard that did not answer in time) ends the wait all the same.
            reply.await;
        }
        let registry = &shard.blocking;
        registry.fence.set(None);
        let keys = std::mem::take(&mut *registry.fencing.borrow_mut());
        {
            let mut ready = registry.ready.borrow_mut();
            for slot in &keys {
                if !ready.contains(slot) {
                    ready.push(slot.clone());
                }
            }
        }
        registry.fenced.borrow_mut().extend(keys);
        shard.gate.release(token);
        serve_ready(&shard);
    }
}

/// One turn of this shard's loop: the sockets that had data when it began have been read
/// and the requests in them have run up to their first wait (a blocking registration sent
/// over the mesh is on its way).
async fn one_turn(shard: &Shard) {
    let spinner = shard.spin.as_ref().filter(|spinner| spinner.spinning());
    let polls = spinner.map(|spinner| spinner.polls());
    // A timer goes through the runtime's loop, which reaps its I/O completions (the sockets'
    // readiness when the spinner does not run) and the other shards' messages.
    runtime::sleep(Duration::from_micros(1)).await;
    if let (Some(spinner), Some(polls)) = (spinner, polls) {
        // The spinner reads the sockets' readiness itself: wait for its next look. It may be
        // in its own pause (a timer), so this waits through the runtime's loop too, never in
        // a loop of yields that would keep the loop from its timers.
        while spinner.spinning() && spinner.polls() == polls {
            runtime::sleep(Duration::from_micros(1)).await;
        }
    }
    // The connections woken meanwhile were queued before this task: they run first.
    for _ in 0..FENCE_YIELDS {
        runtime::yield_now().await;
    }
}

/// Yields after a fence's turn, so that the connections it woke run before the answer (a
/// request's task reaches the mesh in one or two steps: read, then send).
const FENCE_YIELDS: usize = 3;

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
    // A served request is logged below as the pop it made (`aof::served_record`), not through
    // the context.
    let mut propagation = crate::aof::Propagation::default();
    let taken = {
        let mut keyspace = shard.keyspace.borrow_mut();
        let config = shard.config.borrow();
        let now_ms = crate::stats::unix_time_ms();
        if crate::aof::on() && keyspace.has_expired() {
            crate::commands::notify::publish_expired(&mut keyspace, &shard.pubsub, &config, now_ms);
        }
        let mut ctx = Ctx {
            keyspace: &mut keyspace,
            db: waiter.db,
            protocol: waiter.protocol,
            now_ms,
            out: &mut out,
            config: &config,
            stats: &shard.stats,
            no_touch: false,
            script: false,
            pubsub: &shard.pubsub,
            protection: &shard.protection,
            propagation: &mut propagation,
        };
        (waiter.serve)(&mut ctx, &args, key)?
    };
    // The pop it made, logged as a pop (the blocking form would wait on replay).
    if let Some(taken) = taken.as_ref().filter(|_| crate::aof::on()) {
        if !matches!(out.outcome(), ember_resp::Outcome::Error(_)) {
            let undo = taken.undo.as_ref().map(PackedArgs::slices);
            if let Some(record) = crate::aof::served_record(&args, undo.as_deref()) {
                let slices: Vec<&[u8]> = record.iter().map(Vec::as_slice).collect();
                crate::aof::append(waiter.db, &slices);
            }
        }
    }
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
    // A preparation reads (XREAD's `$`): nothing to log.
    let mut propagation = crate::aof::Propagation::default();
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
        propagation: &mut propagation,
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
        } => {
            let reply = register_here(shard, *waiter, block, token).await;
            shard.shared.registrations_in_flight[shard.index].fetch_sub(1, Ordering::SeqCst);
            reply
        }
        BlockingRequest::Cancel { id } => BlockingReply::Cancelled(cancel_here(shard, id)),
        BlockingRequest::Fence => {
            one_turn(shard).await;
            BlockingReply::Done
        }
        BlockingRequest::Deliver { id, served } => {
            deliver_home(shard, id.1, served);
            BlockingReply::Done
        }
    })
}

/// True when `request` can be answered without waiting for a hold.
pub fn answerable_now(shard: &Shard, request: &BlockingRequest) -> bool {
    match request {
        BlockingRequest::Register { waiter, token, .. } => {
            !shard.gate.busy() || !registration_blocked(shard, waiter, *token)
        }
        // Waits for a turn of the loop: in a task of its own.
        BlockingRequest::Fence => false,
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
        // A fence holds its keys against everyone but new waiters: they join the queue.
        shard
            .gate
            .enter_keys(token.or(shard.blocking.fence.get()), waiter.db, &keys)
            .await;
    }
    if let Some(prepare) = waiter.prepare {
        match prepare_one(shard, &waiter, prepare) {
            Ok(Some(args)) => waiter.args = args,
            Ok(None) => {}
            Err(error) => return BlockingReply::Error(error.0.into_owned()),
        }
    }
    let registry = &shard.blocking;
    for key in &waiter.keys {
        if block && registry.awaits_serving(waiter.db, key) {
            // The waiters already queued on this key are served first, with this one in its
            // place among them.
            continue;
        }
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
    if !registry.outbox_started.replace(true) {
        runtime::spawn(run_outbox(shard.clone()));
        runtime::spawn(run_fences(shard.clone()));
    }
    {
        let mut queues = registry.queues.borrow_mut();
        let waiters = registry.waiters.borrow();
        for key in &waiter.keys {
            let queue = queues.entry((waiter.db, key.clone())).or_default();
            // After every waiter that began no later than this one (most often the last).
            let at = queue
                .iter()
                .rposition(|queued| {
                    waiters
                        .get(queued)
                        .is_none_or(|queued| queued.since <= waiter.since)
                })
                .map_or(0, |at| at + 1);
            queue.insert(at, waiter.id);
        }
    }
    registry.waiters.borrow_mut().insert(waiter.id, waiter);
    BlockingReply::Registered
}

/// True when registering `waiter` would wait at the gate: the shard is held by another, or
/// one of its keys is by anything but a fence.
fn registration_blocked(shard: &Shard, waiter: &KeyWaiter, token: Option<HoldToken>) -> bool {
    let keys: SmallVec<[&[u8]; 4]> = waiter.keys.iter().map(Vec::as_slice).collect();
    shard
        .gate
        .keys_blocked(token.or(shard.blocking.fence.get()), waiter.db, &keys)
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
