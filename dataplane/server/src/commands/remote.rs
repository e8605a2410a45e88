//! The serving side of the mesh: answering what other shards ask of this one, and asking every
//! shard at once for the commands that span them all.

use std::rc::Rc;

use ember_resp::{Protocol, ReplySink};

use super::multikey::{admit, apply_entries, run_local_as};
use crate::runtime::{self, MeshReceiver};
use crate::shard::{
    AdminRequest, HoldToken, MeshMessage, PackedArgs, Ran, Shard, ShardReply, ShardRequest,
};

/// Serves the requests and replies that arrive from shard `peer` until the mesh closes.
pub async fn serve_peer(shard: Rc<Shard>, peer: usize, receiver: MeshReceiver<MeshMessage>) {
    let mut inbox = runtime::MeshInbox::new(receiver, peer);
    while let Some(message) = inbox.next().await {
        // One clock read for the whole batch (read again after a request that waited), as
        // Redis reads it once a command.
        let mut now_ms = crate::stats::unix_time_ms();
        match message {
            MeshMessage::Batch(mut messages) => {
                if messages.len() > 1 {
                    prefetch_keys(&shard, &messages);
                }
                for message in messages.drain(..) {
                    if let Some((id, request)) = serve_now(&shard, peer, message, now_ms) {
                        serve_request(&shard, peer, id, request).await;
                        now_ms = crate::stats::unix_time_ms();
                    }
                }
                shard.mesh.recycle(peer, messages);
            }
            message => {
                if let Some((id, request)) = serve_now(&shard, peer, message, now_ms) {
                    serve_request(&shard, peer, id, request).await;
                }
            }
        }
        // The replies answered inline leave together, one message for the whole batch.
        shard.mesh.flush_to(peer);
    }
}

/// Warms the cache for the keys of a batch's keyspace commands before they run, as a
/// connection does for its pipeline's local keys (`exec::prefetch_ahead`): each lookup's
/// misses then overlap the others'. The key is taken to be the first argument, as it is for
/// nearly every keyspace command; a wrong guess fetches a line that goes unused.
fn prefetch_keys(shard: &Shard, messages: &[MeshMessage]) {
    let executes = messages.iter().filter_map(|message| match message {
        MeshMessage::Request {
            request: ShardRequest::Execute { caller, args, .. },
            ..
        } => Some((caller.db, args)),
        _ => None,
    });
    // The keys of the first keyspace request's database (a client's batch has one).
    let Some((db, _)) = executes.clone().next() else {
        return;
    };
    let keyspace = shard.keyspace.borrow();
    if keyspace.len(db) >= super::exec::PREFETCH_MIN_KEYS {
        keyspace.prefetch(
            db,
            executes
                .filter(|&(request_db, _)| request_db == db)
                .filter_map(|(_, args)| args.get(1)),
        );
    }
}

/// Serves what needs no waiting: delivers a reply, or answers a plain keyspace request inline
/// (its reply gathered for the peer). Returns any other request.
fn serve_now(
    shard: &Rc<Shard>,
    peer: usize,
    message: MeshMessage,
    now_ms: u64,
) -> Option<(u64, ShardRequest)> {
    match message {
        MeshMessage::Reply { id, reply } => {
            shard.mesh.deliver(id, reply);
            None
        }
        MeshMessage::Request { id, request } => match answer_plain(shard, &request, now_ms) {
            Some(reply) => {
                reply_after_events(shard, peer, id, reply, true);
                None
            }
            None => Some((id, request)),
        },
        MeshMessage::Batch(_) => {
            unreachable!("a batch holds requests and replies only (Mesh::gather)")
        }
    }
}

/// Answers a request that may wait (for a hold, a model, another shard): inline when it does
/// not wait for a hold, otherwise in a task of its own.
async fn serve_request(shard: &Rc<Shard>, peer: usize, id: u64, request: ShardRequest) {
    // Invalidations raised by a part of a transaction wait for its release, so a BCAST
    // client gets one message per prefix for the whole transaction.
    let defer_tracking = matches!(request, ShardRequest::Execute { token: Some(_), .. });
    if answerable_now(shard, &request) {
        // The replies gathered so far do not wait for this one (a model's run, a flush).
        shard.mesh.flush_to(peer);
        let reply = answer(shard, request).await;
        reply_after_events(shard, peer, id, reply, !defer_tracking);
    } else {
        // Waits for a hold to end; must not stop replies from this peer meanwhile.
        let shard = shard.clone();
        runtime::spawn(async move {
            let reply = answer(&shard, request).await;
            super::pubsub::forward_events(&shard).await;
            if !defer_tracking && shard.tracking.has_pending() {
                super::tracking::flush(&shard).await;
            }
            shard.mesh.reply(peer, id, reply);
        });
    }
}

/// Replies to request `id` of shard `peer`. Keyspace events and invalidations (with
/// `flush_tracking`) that the request raised go to the other shards before the reply; that
/// waits for their answers, which must not stop this peer's messages, so it runs in a task.
fn reply_after_events(
    shard: &Rc<Shard>,
    peer: usize,
    id: u64,
    reply: ShardReply,
    flush_tracking: bool,
) {
    let tracking = flush_tracking && shard.tracking.has_pending();
    if !shard.pubsub.has_forwards() && !tracking {
        return shard.mesh.reply_batched(peer, id, reply);
    }
    let events = shard.pubsub.take_forwards();
    let shard = shard.clone();
    runtime::spawn(async move {
        super::pubsub::forward(&shard, events).await;
        if tracking {
            super::tracking::flush(&shard).await;
        }
        shard.mesh.reply(peer, id, reply);
    });
}

/// True when `request` can be answered without waiting (so the receiver answers it inline).
fn answerable_now(shard: &Shard, request: &ShardRequest) -> bool {
    match request {
        // A request whose keys are held waits in a task of its own, so it never holds up the
        // rest of this peer's messages; any other runs inline (cross-shard writes hold a few
        // keys at a time, so the gate is busy most of the time under MSET, rarely on these keys).
        ShardRequest::Execute {
            args,
            caller,
            token,
            ..
        } => !shard.gate.busy() || !execute_blocked(shard, args, caller.db, *token),
        ShardRequest::Release { .. } | ShardRequest::Fetch { .. } | ShardRequest::Store { .. } => {
            true
        }
        ShardRequest::Hold { .. } => !shard.gate.busy(),
        // Talks to another server: always in a task of its own.
        ShardRequest::Migrate { .. } => false,
        // Publishing and Pub/Sub figures never touch the keyspace: holds do not apply.
        ShardRequest::PubSub(_) => true,
        // Tracking's tables and deliveries never touch the keyspace's values.
        ShardRequest::Tracking(_) => true,
        // Copies live beside the keyspace, never in it: holds do not apply.
        ShardRequest::LocalTier(_) => true,
        // Lines for monitors: queued, never waits.
        ShardRequest::Monitor => true,
        // Delivers invalidations to other shards and waits for them: a task of its own.
        ShardRequest::Evict => false,
        ShardRequest::TryHold { .. } => true,
        // Refused, never waits, when its keys are held.
        ShardRequest::TryExecute { .. } => true,
        ShardRequest::Admin { token, .. } => !shard.gate.blocks(*token),
        ShardRequest::Inference(request) => request
            .gate_token()
            .is_none_or(|token| !shard.gate.blocks(token)),
        ShardRequest::Blocking(request) => super::blocking::answerable_now(shard, request),
    }
}

/// True when an Execute of `args` would wait at the gate: the shard is held by another, or one
/// of its keys is (see [`admit`]). An unknown command never waits (it is refused).
fn execute_blocked(shard: &Shard, args: &PackedArgs, db: usize, token: Option<HoldToken>) -> bool {
    let args = args.slices();
    let Some(spec) = super::lookup(args[0]).map(|index| &super::COMMANDS[index]) else {
        return false;
    };
    shard.gate.keys_blocked(token, db, &spec.key_args(&args))
}

/// Answers at once, with no `async` path, the common request: a keyspace command that asks
/// for no hold while nothing here is held (so [`admit`] has nothing to wait for). `None` for
/// any other request.
fn answer_plain(shard: &Shard, request: &ShardRequest, now_ms: u64) -> Option<ShardReply> {
    match request {
        ShardRequest::Execute {
            caller,
            protocol,
            args,
            token: None,
            hold: false,
        } if !shard.gate.busy() => {
            let reply = execute_now(shard, *caller, *protocol, &args.slices(), now_ms);
            // A command run for another shard's client allocates here (crate::memory).
            crate::memory::after_command(shard);
            Some(reply)
        }
        _ => None,
    }
}

/// Runs a keyspace command for another shard's `caller` (after [`admit`]) and returns its reply.
async fn execute(
    shard: &Rc<Shard>,
    caller: super::multikey::Caller,
    protocol: Protocol,
    args: &PackedArgs,
    token: Option<HoldToken>,
    hold: bool,
    now_ms: u64,
) -> ShardReply {
    let args = args.slices();
    if let Some(spec) = super::lookup(args[0]).map(|index| &super::COMMANDS[index]) {
        if matches!(spec.handler, super::Handler::Keyspace(_)) {
            admit(shard, spec, &args, caller.db, token, hold).await;
        }
    }
    execute_now(shard, caller, protocol, &args, now_ms)
}

/// Runs a keyspace command for another shard's `caller`, its admission done.
fn execute_now(
    shard: &Shard,
    caller: super::multikey::Caller,
    protocol: Protocol,
    args: &[&[u8]],
    now_ms: u64,
) -> ShardReply {
    let mut out = ReplySink::values(protocol);
    let Some(super::Handler::Keyspace(handler)) =
        super::lookup(args[0]).map(|index| super::COMMANDS[index].handler)
    else {
        out.error("ERR only keyspace commands cross the mesh");
        return ShardReply::Reply(out.into_reply());
    };
    let started = crate::clock::now();
    // A script's command runs at the script's time, wherever it runs.
    let now_ms = caller.time_ms.map_or(now_ms, std::num::NonZeroU64::get);
    if let Err(error) = run_local_as(shard, handler, caller, now_ms, args, &mut out) {
        out.error(&error.0);
    }
    let micros = crate::clock::since_us(started);
    // Rare: only a run as long as the slow log's threshold sends its arguments back.
    let slow_args = shard
        .config
        .borrow()
        .slowlog_logs(micros)
        .then(|| Box::new(PackedArgs::new(args.iter().copied())));
    ShardReply::Ran(Ran {
        reply: out.into_reply(),
        micros,
        slow_args,
    })
}

/// Answers another shard's request.
async fn answer(shard: &Rc<Shard>, request: ShardRequest) -> ShardReply {
    let reply = answer_request(shard, request).await;
    // A command run for another shard's client allocates here (crate::memory).
    crate::memory::after_command(shard);
    reply
}

async fn answer_request(shard: &Rc<Shard>, request: ShardRequest) -> ShardReply {
    let now_ms = crate::stats::unix_time_ms();
    match request {
        ShardRequest::Execute {
            caller,
            protocol,
            args,
            token,
            hold,
        } => execute(shard, caller, protocol, &args, token, hold, now_ms).await,
        ShardRequest::TryExecute {
            caller,
            protocol,
            args,
        } => {
            if shard.gate.busy() && execute_blocked(shard, &args, caller.db, None) {
                return ShardReply::Refused(args);
            }
            execute(shard, caller, protocol, &args, None, false, now_ms).await
        }
        ShardRequest::Migrate {
            db,
            protocol,
            client_id,
            args,
        } => super::migrate::run_forwarded(shard, db, protocol, client_id, &args, now_ms).await,
        ShardRequest::Hold { token } => {
            shard.gate.hold(token).await;
            ShardReply::Done
        }
        ShardRequest::TryHold { token } => {
            ShardReply::Integer(i64::from(shard.gate.try_hold(token)))
        }
        ShardRequest::Release { token } => {
            shard.gate.release(token);
            super::blocking::serve_ready(shard);
            ShardReply::Done
        }
        ShardRequest::Fetch { db, keys, .. } => {
            let keyspace = shard.keyspace.borrow();
            ShardReply::Entries(
                keys.iter()
                    .map(|key| keyspace.peek(db, key, now_ms).cloned())
                    .collect(),
            )
        }
        ShardRequest::Store { db, entries, .. } => {
            apply_entries(shard, db, entries, now_ms);
            ShardReply::Done
        }
        ShardRequest::Admin { request, token } => {
            shard.gate.enter(token).await;
            crate::commands::server::admin::admin(shard, request, now_ms)
        }
        ShardRequest::PubSub(request) => super::pubsub::answer(shard, request),
        ShardRequest::Tracking(request) => super::tracking::answer(shard, request),
        ShardRequest::LocalTier(request) => crate::shard::local_tier::answer(shard, request),
        ShardRequest::Monitor => {
            super::monitor::deliver(shard);
            ShardReply::Done
        }
        ShardRequest::Evict => ShardReply::Evicted(
            crate::memory::evict_step(shard, crate::memory::Gauge::Estimate).await,
        ),
        ShardRequest::Inference(request) => {
            if let Some(token) = request.gate_token() {
                shard.gate.enter(token).await;
            }
            ShardReply::Inference(crate::inference::answer(shard, request))
        }
        ShardRequest::Blocking(request) => super::blocking::answer(shard, request).await,
    }
}

/// Sends `request` to every shard at once (this one included, answered directly) and collects
/// the replies in shard order. `hold` is the caller's hold token inside a transaction.
pub async fn broadcast(
    shard: &Rc<Shard>,
    hold: Option<HoldToken>,
    request: AdminRequest,
) -> Vec<ShardReply> {
    let mut pending = Vec::with_capacity(shard.count());
    for index in (0..shard.count()).filter(|&index| index != shard.index) {
        let message = ShardRequest::Admin {
            request: request.clone(),
            token: hold,
        };
        pending.push((index, shard.send(index, message).await));
    }
    let mut local = Some(admin_here(shard, hold, request).await);
    let mut replies = Vec::with_capacity(shard.count());
    let mut pending = pending.into_iter();
    for index in 0..shard.count() {
        if index == shard.index {
            replies.push(local.take().expect("one local reply"));
        } else {
            let (remote, reply) = pending.next().expect("a reply per other shard");
            debug_assert_eq!(remote, index);
            replies.push(reply.await);
        }
    }
    replies
}

async fn admin_here(
    shard: &Rc<Shard>,
    hold: Option<HoldToken>,
    request: AdminRequest,
) -> ShardReply {
    shard.gate.enter(hold).await;
    crate::commands::server::admin::admin(shard, request, crate::stats::unix_time_ms())
}

/// Sends `request` to one shard.
pub async fn admin_on(
    shard: &Rc<Shard>,
    hold: Option<HoldToken>,
    index: usize,
    request: AdminRequest,
) -> ShardReply {
    if index == shard.index {
        admin_here(shard, hold, request).await
    } else {
        shard
            .call(
                index,
                ShardRequest::Admin {
                    request,
                    token: hold,
                },
            )
            .await
    }
}
