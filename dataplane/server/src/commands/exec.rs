//! The executor: the one path every request takes, whoever sends it (a connection, EXEC, the
//! shared-memory and RDMA message transports): lookup, arity, auth, the MULTI queue, routing,
//! recording and the reply.
//!
//! A connection passes a [`Pipeline`]: a command whose keys all live on one other shard is then
//! sent and not awaited, so every remote command of a read batch is in flight at once; the
//! replies are put back in request order when the batch's output is written.

use std::collections::BTreeSet;
use std::rc::Rc;

use ember_resp::{Outcome, Protocol, Reply, ReplySink};
use smallvec::SmallVec;

use super::multikey::{self, execute_request, into_ran};
use super::pubsub::{PubSubOp, Publishing};
use super::{CommandFlags, CommandResult, ConnectionCtx, Handler, TransactionOp, COMMANDS};
use crate::client::{Client, ClientHandle};
use crate::shard::router::{self, Route};
use crate::shard::{PackedArgs, PendingReply, Ran, Shard};

/// Remote commands of a read batch whose replies are still on their way.
#[derive(Default)]
pub struct Pipeline<'s> {
    deferred: Vec<Deferred<'s>>,
}

/// A command sent to another shard and not yet answered.
struct Deferred<'s> {
    reply: DeferredReply<'s>,
    /// Where its reply goes in the output: bytes of the output written before it.
    offset: usize,
    /// The protocol the client spoke when it sent the command.
    protocol: Protocol,
    command_index: usize,
    /// Its statistics' entry: a subcommand's own ([`super::acl::CATALOGUE`]'s id).
    stat_id: usize,
    /// When it started here: a publication's time is its delivery's, here and on the other
    /// shards (a command's is the time it ran on the shard that owns its keys).
    started: crate::clock::Ticks,
    /// The client, for the slow log.
    client: Rc<ClientHandle>,
    /// The command's arguments while HOTKEYS records (its keys are counted at the reply) or,
    /// for a publication, while the slow log is on (an entry shows them; a command's come
    /// back with its reply when it ran long enough).
    args: Option<PackedArgs>,
}

/// What a deferred command's reply comes from.
enum DeferredReply<'s> {
    /// A keyspace command run by the shard that owns its keys.
    Command(PendingReply<'s>),
    /// PUBLISH or SPUBLISH, delivered here and on its way to the other shards: its reply is
    /// the count of receivers of all of them.
    Publish(Publishing<'s>),
}

impl<'s> DeferredReply<'s> {
    /// The reply, with, for a command, how long it ran on its shard and its arguments when
    /// that was long enough for the slow log.
    async fn reply(self) -> (Reply, Option<u64>, Option<Box<PackedArgs>>) {
        match self {
            Self::Command(pending) => {
                let Ran {
                    reply,
                    micros,
                    slow_args,
                } = into_ran(pending.await);
                (reply, Some(micros), slow_args)
            }
            Self::Publish(publishing) => (
                Reply::Integer(publishing.receivers().await as i64),
                None,
                None,
            ),
        }
    }
}

impl Pipeline<'_> {
    /// True when no command of the batch waits for its reply.
    pub fn is_idle(&self) -> bool {
        self.deferred.is_empty()
    }

    /// True when only publications wait for their replies: a later PUBLISH may then be
    /// deferred too without overtaking what an earlier command does elsewhere (a keyspace
    /// event raised by a remote write reaches this shard's subscribers before the write's
    /// reply, so it precedes a later PUBLISH only if that PUBLISH waits for the reply).
    fn only_publishes(&self) -> bool {
        self.deferred
            .iter()
            .all(|deferred| matches!(deferred.reply, DeferredReply::Publish(_)))
    }

    /// Waits for every deferred reply and puts each in its place in `out`, so the output holds
    /// every reply in request order.
    pub async fn drain(&mut self, shard: &Shard, out: &mut ReplySink) {
        if self.deferred.is_empty() {
            return;
        }
        // The batch's remote commands leave together, one message per shard.
        shard.mesh.flush_outbox();
        // Only the bytes written after the first deferred reply move; when every command of
        // the batch was remote there are none, and replies are written straight into `out`.
        let first_offset = self.deferred[0].offset;
        let later = out.bytes_mut().split_off(first_offset);
        let protocol = out.protocol();
        let mut copied = first_offset;
        for deferred in self.deferred.drain(..) {
            debug_assert!(deferred.offset >= copied, "replies are deferred in order");
            out.bytes_mut()
                .extend_from_slice(&later[copied - first_offset..deferred.offset - first_offset]);
            copied = deferred.offset;
            let (reply, ran_us, slow_args) = deferred.reply.reply().await;
            out.set_protocol(deferred.protocol);
            out.begin();
            let reply_start = out.pending_len();
            reply.write_to(out);
            let failed = note_failure(shard, out.outcome());
            let elapsed_us = ran_us.unwrap_or_else(|| crate::clock::since_us(deferred.started));
            shard
                .stats
                .record_call(deferred.stat_id, elapsed_us, failed);
            let args = slow_args
                .as_deref()
                .or(deferred.args.as_ref())
                .map(PackedArgs::slices);
            record_slow(
                shard,
                &deferred.client,
                deferred.command_index,
                args.as_deref(),
                elapsed_us,
            );
            if let Some(args) = deferred.args.as_ref().filter(|_| shard.hotkeys.recording()) {
                let reply_bytes = out.pending_len() - reply_start;
                shard
                    .hotkeys
                    .record_net(deferred.command_index, &args.slices(), reply_bytes);
            }
        }
        out.bytes_mut()
            .extend_from_slice(&later[copied - first_offset..]);
        out.set_protocol(protocol);
    }
}

/// A write while min-replicas-to-write asks for replicas Ember does not have.
pub const NOREPLICAS: &str = "NOREPLICAS Not enough good replicas to write.";

/// Runs one request and writes its reply into `out` (or, with a `pipeline`, may leave it on
/// its way: see [`Pipeline`]).
pub async fn execute<'s>(
    shard: &'s Rc<Shard>,
    client: &mut Client,
    args: &[&[u8]],
    now_ms: u64,
    out: &mut ReplySink,
    mut pipeline: Option<&mut Pipeline<'s>>,
) {
    // As Redis before each command: evict when a command took memory past the limit, so that
    // this one finds room, and a tracking client gets the invalidations of what was evicted
    // before this reply. Not between the commands of a transaction or a script, which hold
    // their shards, nor while the append-only file replays at start (as Redis's loading).
    if client.hold.is_none()
        && !client.script
        && crate::memory::recheck_pending()
        && !crate::aof::loading()
        && crate::memory::before_command(shard).await
    {
        super::pubsub::take_pushes(client, out);
    }
    let started = client.command_clock.start();
    // A command that returns before `finish` (refused, or left on its way to another shard)
    // leaves the next one to read the clock itself.
    client.command_clock.restart();
    out.begin();
    let reply_start = out.pending_len();
    client.handle.last_interaction_ms.set(now_ms);
    let Some(index) = command_index(client, args[0]) else {
        client.multi_failed |= client.multi.is_some();
        reply_error(shard, out, &super::unknown_command_message(args));
        return;
    };
    let spec = &COMMANDS[index];
    // Its statistics are a subcommand's own (`cmdstat_client|list`), as in Redis 7.
    let stat_id = super::acl::CATALOGUE.request_id(index, args);
    client.handle.last_command.set(Some(stat_id));
    // A container's subcommand has an arity of its own: `CONFIG GET` is refused as
    // 'config|get' whatever the handler would say.
    if let Some(name) = super::arity_refusal(index, stat_id, args.len()) {
        client.multi_failed |= client.multi.is_some();
        shard.stats.record_rejected(stat_id);
        reply_error(shard, out, &super::arity_message(name));
        return;
    }
    if !client.authenticated && !spec.has(CommandFlags::NO_AUTH) {
        shard.stats.record_rejected(stat_id);
        reply_error(shard, out, super::errors::NOAUTH);
        return;
    }
    if let Err(denied) = shard.shared.acl.check(shard, client, index, args) {
        if denied == super::acl::Denied::Deleted {
            // ACL DELUSER or ACL LOAD removed the connection's user: it closes, as in Redis.
            client.handle.killed.set(true);
            client.close_after_reply = true;
            return;
        }
        client.multi_failed |= client.multi.is_some();
        shard.stats.record_rejected(stat_id);
        reply_error(shard, out, &denied.message(index, args));
        return;
    }
    // A script's calls were checked by the script (scripting::run), as Redis's scriptVerifyOOM.
    // The replay of the append-only file at start is not refused: Redis loads a dataset over
    // maxmemory too, and evicts once it serves.
    if spec.has(CommandFlags::DENYOOM)
        && !client.script
        && crate::memory::refuses_growth(shard)
        && !crate::aof::loading()
    {
        client.multi_failed |= client.multi.is_some();
        shard.stats.record_rejected(stat_id);
        reply_error(shard, out, crate::memory::OOM_ERROR);
        return;
    }
    if spec.has(CommandFlags::WRITE) && shard.config.borrow().min_replicas_to_write > 0 {
        client.multi_failed |= client.multi.is_some();
        shard.stats.record_rejected(stat_id);
        reply_error(shard, out, NOREPLICAS);
        return;
    }
    // After a failed background save with `save` points set (stop-writes-on-bgsave-error):
    // writes, and PING, as Redis refuses them.
    if crate::persistence::writes_refused()
        && (spec.has(CommandFlags::WRITE) || spec.name == "ping")
    {
        client.multi_failed |= client.multi.is_some();
        shard.stats.record_rejected(stat_id);
        reply_error(shard, out, crate::persistence::MISCONF);
        return;
    }
    // While the append-only file cannot be written: writes, as Redis refuses them.
    if spec.has(CommandFlags::WRITE) && crate::aof::writes_refused() {
        client.multi_failed |= client.multi.is_some();
        shard.stats.record_rejected(stat_id);
        reply_error(shard, out, crate::aof::MISCONF);
        return;
    }
    if super::pubsub::in_resp2_context(client) && !spec.has(CommandFlags::PUBSUB_CONTEXT) {
        shard.stats.record_rejected(stat_id);
        reply_error(shard, out, &super::pubsub::context_error(spec, args));
        return;
    }
    // A script past busy-reply-threshold: only allow-busy commands run (a script's own
    // commands, which run under its hold, are not refused).
    if client.hold.is_none() && !spec.has(CommandFlags::ALLOW_BUSY) {
        if let Some(message) = shard.shared.scripts.busy_error() {
            shard.stats.record_rejected(stat_id);
            if client.multi.is_some()
                && matches!(spec.handler, Handler::Transaction(TransactionOp::Exec))
            {
                // Redis refuses EXEC as it refuses any command then, and the refusal ends the
                // transaction.
                client.multi = None;
                client.multi_failed = false;
                client.watched.clear();
                let message = format!("EXECABORT Transaction discarded because of: {message}");
                reply_error(shard, out, &message);
                return;
            }
            client.multi_failed |= client.multi.is_some();
            reply_error(shard, out, message);
            return;
        }
    }
    // CLIENT PAUSE holds it here: after the refusals above, which answer at once, as in Redis.
    let now_ms = if super::pause::wait_if_paused(shard, client, spec, args, now_ms).await {
        crate::stats::unix_time_ms()
    } else {
        now_ms
    };
    if client.multi.is_some() && spec.has(CommandFlags::NO_MULTI) {
        client.multi_failed = true;
        shard.stats.record_rejected(stat_id);
        reply_error(shard, out, "ERR Command not allowed inside a transaction");
        return;
    }
    if let Some(queue) = client.multi.as_mut() {
        if !spec.has(CommandFlags::TRANSACTION_CONTROL) {
            queue.push(args.iter().map(|arg| arg.to_vec()).collect());
            out.simple(b"QUEUED");
            return;
        }
    }
    // MONITOR shows a command as it starts (a script's commands after its EVAL, a blocking
    // command once), EXEC after the commands it ran, and a connection command after it ran
    // (SELECT shows the database it selected, as in Redis).
    let monitor_after = matches!(
        spec.handler,
        Handler::Transaction(TransactionOp::Exec) | Handler::Connection(_)
    );
    if super::monitor::active(shard) && !monitor_after {
        super::monitor::feed(shard, client, index, args);
        super::monitor::flush(shard).await;
    }
    // XREAD / XREADGROUP BLOCK outside a transaction or a script: read now, block if empty.
    let stream_block = match spec.handler {
        Handler::Keyspace(_) if client.hold.is_none() && spec.has(CommandFlags::BLOCKING) => {
            super::streams::blocking_form(args)
        }
        _ => None,
    };
    // How long a command sent to the shard that owns its keys ran there, or a command split
    // over shards ran on them: its time, not the trips' (as Redis times execution only).
    let mut ran_us = None;
    let result = match spec.handler {
        Handler::Keyspace(handler) if stream_block.is_some() => {
            if let Some(pipeline) = pipeline {
                pipeline.drain(shard, out).await;
                out.begin();
            }
            let blocking = stream_block.expect("matched");
            read_or_block(shard, client, spec, handler, blocking, args, now_ms, out).await
        }
        Handler::Keyspace(handler) => match router::route(shard, spec, args) {
            Route::Local => {
                multikey::admit(shard, spec, args, client.db, client.hold, false).await;
                multikey::run_local(shard, handler, client, now_ms, args, out)
            }
            Route::Remote(_)
                if crate::shard::local_tier::serve_get(
                    shard,
                    client,
                    args,
                    now_ms,
                    pipeline.as_deref().is_none_or(Pipeline::is_idle),
                    out,
                ) =>
            {
                if shard.hotkeys.recording() {
                    // Answered here, not by the owner, so HOTKEYS times it here.
                    let elapsed_us = crate::clock::since_us(started);
                    shard.hotkeys.record_cpu(index, args, elapsed_us);
                }
                Ok(())
            }
            Route::Remote(owner) => match pipeline.as_deref_mut() {
                Some(pipeline) if client.hold.is_none() => {
                    let request = execute_request(
                        shard.index,
                        client,
                        PackedArgs::new(args.iter().copied()),
                        None,
                        false,
                    );
                    let pending = shard.send_batched(owner, request);
                    pipeline.deferred.push(Deferred {
                        reply: DeferredReply::Command(pending),
                        offset: out.pending_len(),
                        protocol: client.protocol,
                        command_index: index,
                        stat_id,
                        started,
                        client: client.handle.clone(),
                        args: shard
                            .hotkeys
                            .recording()
                            .then(|| PackedArgs::new(args.iter().copied())),
                    });
                    return; // Recorded when the reply is drained.
                }
                _ => {
                    ran_us = Some(multikey::run_remote(shard, client, owner, args, out).await);
                    Ok(())
                }
            },
            Route::Split => {
                multikey::run_split(shard, client, spec, handler, args, now_ms, out, &mut ran_us)
                    .await
            }
        },
        // PUBLISH in a batch: delivered here and sent to the other shards, its count of
        // receivers awaited with the batch's other replies, so a pipeline of publications
        // costs one round trip between shards, not one each. Each shard delivers a
        // publisher's messages in the order it sends them either way (the mesh keeps order).
        Handler::PubSub(op @ (PubSubOp::Publish | PubSubOp::SPublish))
            if client.hold.is_none()
                && shard.count() > 1
                && pipeline.as_deref().is_some_and(Pipeline::only_publishes) =>
        {
            let pipeline = pipeline.expect("checked above");
            match super::pubsub::start_publish(op, shard, client, args, out).await {
                // A channel filter dropped the message: answered already.
                None => Ok(()),
                Some(publishing) => {
                    pipeline.deferred.push(Deferred {
                        reply: DeferredReply::Publish(publishing),
                        offset: out.pending_len(),
                        protocol: client.protocol,
                        command_index: index,
                        stat_id,
                        started,
                        client: client.handle.clone(),
                        args: (shard.hotkeys.recording()
                            || shard.config.borrow().slowlog_log_slower_than_us >= 0)
                            .then(|| PackedArgs::new(args.iter().copied())),
                    });
                    return; // Recorded when the reply is drained.
                }
            }
        }
        handler => {
            // Commands beyond the keyspace may read or change what earlier remote commands of
            // the batch did (the connection's state, models reading rows): those go first.
            if let Some(pipeline) = pipeline {
                pipeline.drain(shard, out).await;
                out.begin();
            }
            match handler {
                Handler::Keyspace(_) => unreachable!("matched above"),
                Handler::Connection(handler) => {
                    let result = handler(&mut ConnectionCtx { client, shard, out }, args);
                    out.set_protocol(client.protocol);
                    // ACL SETUSER may have taken channels from subscribed connections.
                    super::acl::close_revoked_subscribers(shard, client.hold).await;
                    result
                }
                Handler::Transaction(op) => transaction(shard, client, op, args, now_ms, out).await,
                Handler::Server(op) => {
                    crate::commands::server::admin::run(op, shard, client, args, out).await
                }
                Handler::Inference(op) => super::ai::run(op, shard, client, args, out).await,
                Handler::PubSub(op) => super::pubsub::run(op, shard, client, args, out).await,
                Handler::Script(op) => {
                    super::scripting::run(op, shard, client, args, now_ms, out).await
                }
                Handler::Blocking(command) => {
                    super::blocking::run(shard, client, command, args, out).await
                }
                Handler::Migrate => super::migrate::run(shard, client, args, now_ms, out).await,
            }
        }
    };
    if client.hold.is_none() && shard.tracking.has_pending() {
        // Invalidations reach their readers' shards before the reply leaves; inside a
        // transaction they wait for its end, so BCAST sends one message per prefix.
        super::tracking::flush(shard).await;
    }
    if shard.pubsub.has_forwards() {
        // Keyspace events this command raised reach every shard before its reply leaves.
        super::pubsub::forward_events(shard).await;
    }
    // EXEC's own run is recorded as one call of EXEC; its commands were recorded one by one.
    finish(
        shard, client, index, stat_id, args, started, ran_us, result, out,
    );
    // Any command may take memory (INFO or CONFIG their first statistics, a script its
    // library), not only the keyspace's; what ran on another shard is looked at there
    // (remote::answer).
    crate::memory::after_command(shard);
    if super::monitor::active(shard) {
        if monitor_after {
            super::monitor::feed(shard, client, index, args);
        }
        // A script's commands run by execute_now wait in the outbox.
        super::monitor::flush(shard).await;
        client.command_clock.restart();
    }
    // MULTI, EXEC, WATCH...: EXEC's commands were recorded one by one, so EXEC's own reply
    // and time would count them twice.
    if shard.hotkeys.recording() && !matches!(spec.handler, Handler::Transaction(_)) {
        client.command_clock.restart();
        let reply_bytes = out.pending_len().saturating_sub(reply_start);
        shard.hotkeys.record_net(index, args, reply_bytes);
        if !matches!(spec.handler, Handler::Keyspace(_)) {
            // Keyspace commands are timed where they ran (multikey::run_local_as).
            let elapsed_us = crate::clock::since_us(started);
            shard.hotkeys.record_cpu(index, &[], elapsed_us);
        }
    }
}

/// Most requests of a batch whose keys [`prefetch_ahead`] warms together: enough to overlap
/// the cache misses of a 16-deep pipeline, few enough that what it fetched is still cached
/// when the requests run.
pub const PREFETCH_AHEAD: usize = 16;

/// Fewest keys of a database for which [`prefetch_ahead`] reads ahead. A smaller table and its
/// keys stay in the CPU's caches, where reading ahead costs a second parse, hash and probe of
/// every request for nothing: 9% fewer SETs per CPU-second on one key at pipeline 16, none
/// gained at 1,000 or 10,000 keys; at 100,000 keys it bought 43% (`redis-benchmark -P 16 -r
/// 100000`, one shard pinned, bench/RESULTS.md, fourteenth session).
pub const PREFETCH_MIN_KEYS: usize = 1 << 15;

/// Commands whose third argument is a field or member of the collection their first key
/// names: [`prefetch_ahead`] warms that record too (in a hash or set of the table class, three
/// more dependent misses a lookup).
const MEMBER_COMMANDS: &[&str] = &[
    "hget",
    "hset",
    "hsetnx",
    "hmset",
    "hmget",
    "hexists",
    "hdel",
    "hincrby",
    "hincrbyfloat",
    "hstrlen",
    "sismember",
    "smismember",
    "sadd",
    "srem",
];

/// [`MEMBER_COMMANDS`] by command index.
static MEMBER_AT_2: std::sync::LazyLock<Vec<bool>> = std::sync::LazyLock::new(|| {
    COMMANDS
        .iter()
        .map(|spec| {
            MEMBER_COMMANDS
                .iter()
                .any(|name| spec.name.eq_ignore_ascii_case(name))
        })
        .collect()
});

/// Warms the CPU's cache for the next requests of a read batch: parses up to
/// [`PREFETCH_AHEAD`] whole requests at the start of `input` with `lookahead` (a parser of its
/// own; the one that runs them parses them again) and has the keyspace fetch the slot of each
/// one's first key that this shard owns ([`ember_store::Keyspace::prefetch`]), then the record
/// of each field or member that [`MEMBER_COMMANDS`] name
/// ([`ember_store::Keyspace::prefetch_members`]), so that their cache misses overlap instead of
/// coming one after another as the requests run (at 100,000 keys, three dependent misses a
/// lookup were a third of a shard's time for pipelined GETs; in a hash of 100,000 fields, the
/// field's lookup was 28% for HGETs). Changes nothing. Returns the bytes of `input` the
/// requests it looked at take: past them the caller reads ahead again. A batch of one request
/// is left alone (nothing to overlap), and so are keys in a database of fewer than
/// [`PREFETCH_MIN_KEYS`] keys; a batch on such a database that does not start with a member
/// command is not read ahead at all (all of `input` is returned).
pub fn prefetch_ahead(
    shard: &Shard,
    client: &Client,
    lookahead: &mut ember_resp::RequestParser,
    input: &[u8],
) -> usize {
    let many_keys = shard.keyspace.borrow().len(client.db) >= PREFETCH_MIN_KEYS;
    let mut keys: SmallVec<[std::ops::Range<usize>; PREFETCH_AHEAD]> = SmallVec::new();
    let mut members: SmallVec<[(std::ops::Range<usize>, std::ops::Range<usize>); PREFETCH_AHEAD]> =
        SmallVec::new();
    let (mut offset, mut requests) = (0, 0);
    while requests < PREFETCH_AHEAD {
        let Ok(Some(consumed)) = lookahead.parse(&input[offset..]) else {
            // Not whole yet (or malformed, which the running parser reports): stop here.
            lookahead.reset();
            break;
        };
        if requests == 0 && consumed == input.len() {
            return consumed; // A batch of one request (every request at pipeline 1).
        }
        let args = lookahead.args(&input[offset..]);
        let index = (args.len() > 1)
            .then(|| peek_command_index(client, args.get(0)))
            .flatten();
        let member = index
            .filter(|&index| MEMBER_AT_2[index] && args.len() > 2)
            .and_then(|_| args.input_range(2));
        if requests == 0 && !many_keys && member.is_none() {
            lookahead.reset();
            return input.len();
        }
        let key = index
            .and_then(|index| {
                let spec = &COMMANDS[index];
                match spec.key_finder {
                    Some(_) => None,
                    None => spec.keys.positions(args.len()).next(),
                }
            })
            .and_then(|position| args.input_range(position));
        if let Some(range) = key {
            let key = &input[offset..][range.clone()];
            if shard.count() == 1 || shard.owner_of(key) == shard.index {
                let key = offset + range.start..offset + range.end;
                if many_keys {
                    keys.push(key.clone());
                }
                if let Some(member) = member {
                    members.push((key, offset + member.start..offset + member.end));
                }
            }
        }
        offset += consumed;
        requests += 1;
    }
    if requests > 1 {
        let keyspace = shard.keyspace.borrow();
        if !keys.is_empty() {
            keyspace.prefetch(client.db, keys.iter().map(|range| &input[range.clone()]));
        }
        if !members.is_empty() {
            keyspace.prefetch_members(
                client.db,
                members
                    .iter()
                    .map(|(key, member)| (&input[key.clone()], &input[member.clone()])),
            );
        }
    }
    offset
}

/// [`command_index`] without remembering the command for the next lookup.
fn peek_command_index(client: &Client, name: &[u8]) -> Option<usize> {
    match client.last_command_index {
        Some(index) if name.eq_ignore_ascii_case(COMMANDS[index].name.as_bytes()) => Some(index),
        _ => super::lookup(name),
    }
}

/// The table index of command `name`, trying the client's last command first.
fn command_index(client: &mut Client, name: &[u8]) -> Option<usize> {
    let index = peek_command_index(client, name)?;
    client.last_command_index = Some(index);
    Some(index)
}

/// XREAD / XREADGROUP with BLOCK. Keys on one shard: the blocking command's first attempt
/// there reads what is there (one step, so no write slips in between the read and the wait).
/// Keys on several shards: the keyspace command reads what is there on all of them first, and
/// when that is nothing (the null array) the request blocks as `blocking`.
#[allow(clippy::too_many_arguments)]
async fn read_or_block(
    shard: &Rc<Shard>,
    client: &mut Client,
    spec: &'static super::CommandSpec,
    handler: super::KeyspaceFn,
    blocking: &'static super::blocking::BlockingCommand,
    args: &[&[u8]],
    now_ms: u64,
    out: &mut ReplySink,
) -> super::CommandResult {
    if !matches!(router::route(shard, spec, args), Route::Split) {
        return super::blocking::run(shard, client, blocking, args, out).await;
    }
    let mut sink = ReplySink::values(client.protocol);
    // Timed as a whole, as a blocking command is (from its start to its reply).
    let mut ran_us = None;
    multikey::run_split(
        shard,
        client,
        spec,
        handler,
        args,
        now_ms,
        &mut sink,
        &mut ran_us,
    )
    .await?;
    let reply = sink.into_reply();
    if matches!(reply, ember_resp::Reply::NullArray) {
        return super::blocking::run(shard, client, blocking, args, out).await;
    }
    reply.write_to(out);
    Ok(())
}

/// Counts an error reply in the error statistics; true when the reply was one.
fn note_failure(shard: &Shard, outcome: &Outcome) -> bool {
    match outcome {
        Outcome::Error(message) => {
            shard.stats.record_error(message);
            true
        }
        Outcome::Empty | Outcome::Value => false,
    }
}

async fn transaction(
    shard: &Rc<Shard>,
    client: &mut Client,
    op: TransactionOp,
    args: &[&[u8]],
    now_ms: u64,
    out: &mut ReplySink,
) -> super::CommandResult {
    match op {
        TransactionOp::Multi => super::transaction::multi(client, out),
        TransactionOp::Discard => super::transaction::discard(client, out),
        TransactionOp::Unwatch => {
            client.watched.clear();
            out.ok();
            Ok(())
        }
        TransactionOp::Watch => {
            if client.multi.is_some() {
                return Err("ERR WATCH inside MULTI is not allowed".into());
            }
            let keys = &args[1..];
            let versions = multikey::versions(shard, client.db, keys, now_ms).await;
            for (key, version) in keys.iter().zip(versions) {
                client.watched.push((client.db, key.to_vec(), version));
            }
            out.ok();
            Ok(())
        }
        TransactionOp::Exec => {
            if client.multi.is_none() {
                return Err("ERR EXEC without MULTI".into());
            }
            exec(shard, client, now_ms, out).await;
            Ok(())
        }
    }
}

/// EXEC: every shard is held (in ascending order, as every multi-shard operation takes them)
/// while the queued commands run, so no other client sees the transaction half done.
async fn exec(shard: &Rc<Shard>, client: &mut Client, now_ms: u64, out: &mut ReplySink) {
    let queue = client.multi.take().unwrap_or_default();
    // EXEC forgets the watched keys whatever happens, as Redis does.
    let watched = std::mem::take(&mut client.watched);
    if std::mem::take(&mut client.multi_failed) {
        out.error("EXECABORT Transaction discarded because of previous errors.");
        return;
    }
    let shards: BTreeSet<usize> = (0..shard.count()).collect();
    let token = shard.new_hold_token();
    let writes = &shard.shared.multi_writes;
    writes.begin();
    multikey::hold_all(shard, &shards, token).await;
    if !multikey::versions_unchanged(shard, &watched, now_ms).await {
        writes.end();
        multikey::release_all(shard, &shards, token).await;
        out.null_array();
        return;
    }
    client.hold = Some(token);
    out.array_len(queue.len());
    let logged = crate::aof::transaction();
    for queued in &queue {
        let args: SmallVec<[&[u8]; 16]> = queued.iter().map(Vec::as_slice).collect();
        Box::pin(execute(shard, client, &args, now_ms, out, None)).await;
    }
    drop(logged);
    client.hold = None;
    super::tracking::flush_held(shard, &shards).await;
    writes.end();
    multikey::release_all(shard, &shards, token).await;
}

/// Adds command `index`'s run to the slow log when it took long enough, and samples it for the
/// latency monitor.
///
/// Without `args` (a command run on another shard that was not slow there), the latency
/// monitor's sample alone.
fn record_slow(
    shard: &Shard,
    client: &ClientHandle,
    index: usize,
    args: Option<&[&[u8]]>,
    elapsed_us: u64,
) {
    let config = shard.config.borrow();
    if let Some(args) = args.filter(|_| {
        config.slowlog_logs(elapsed_us) && !COMMANDS[index].has(CommandFlags::SKIP_SLOWLOG)
    }) {
        let name = client.name.borrow().clone();
        let secrets = COMMANDS[index]
            .secrets
            .map(|secrets| secrets(args))
            .unwrap_or_default();
        shard.stats.slowlog_push(
            args,
            &secrets,
            elapsed_us,
            &client.addr,
            &name,
            config.slowlog_max_len,
        );
    }
    shard.stats.latency_sample(
        "command",
        elapsed_us / 1000,
        config.latency_monitor_threshold_ms,
    );
}

fn reply_error(shard: &Shard, out: &mut ReplySink, message: &str) {
    out.error(message);
    shard.stats.record_error(message);
}

/// [`execute`] for a script's `redis.call` whose command needs nothing but this shard: runs it
/// here and now, with no future, and answers true; answers false, with nothing run and nothing
/// written, when the command needs [`execute`] (another shard, a wait for a key, a command
/// beyond the keyspace, HOTKEYS recording, min-replicas-to-write).
///
/// The caller is a script (`client.hold` is its hold) that checked what [`execute`] checks
/// before running a command of a script: lookup, arity, ACL, OOM (scripting::run). Keyspace
/// events for other shards stay queued: the EVAL, EVALSHA or FCALL that runs the script
/// forwards them, in order, before its reply leaves, as [`execute`] does after every command.
pub(crate) fn execute_now(
    shard: &Rc<Shard>,
    client: &mut Client,
    index: usize,
    args: &[&[u8]],
    now_ms: u64,
    out: &mut ReplySink,
) -> bool {
    let spec = &COMMANDS[index];
    let Handler::Keyspace(handler) = spec.handler else {
        return false;
    };
    let simple = client.hold.is_some()
        && client.multi.is_none()
        && client.authenticated
        && !shard.hotkeys.recording()
        && !super::pubsub::in_resp2_context(client)
        && !(spec.has(CommandFlags::WRITE) && shard.config.borrow().min_replicas_to_write > 0)
        && matches!(router::route(shard, spec, args), Route::Local);
    if !simple {
        return false;
    }
    // The keys are found only when some are held apart from whole shards (a script holds its
    // shard, and runs here only when it holds it).
    if shard.gate.blocks(client.hold) {
        return false;
    }
    if shard.gate.keys_locked() {
        let keys = spec.key_args(args);
        if shard.gate.keys_blocked(client.hold, client.db, &keys) {
            return false;
        }
    }
    // Timed with the cheap clock: a script's calls cannot share clock reads as a connection's
    // commands do (see crate::clock).
    let started = crate::clock::now();
    out.begin();
    client.handle.last_interaction_ms.set(now_ms);
    let stat_id = super::acl::CATALOGUE.request_id(index, args);
    client.handle.last_command.set(Some(stat_id));
    if super::monitor::active(shard) {
        super::monitor::feed(shard, client, index, args);
    }
    let result = multikey::run_local(shard, handler, client, now_ms, args, out);
    let elapsed_us = crate::clock::elapsed_us(started, crate::clock::now());
    record(shard, client, index, stat_id, args, elapsed_us, result, out);
    true
}

/// Writes a failed command's error and counts the run of command `index` in the statistics
/// (its error once: a script's error raised by a failed `redis.call` was counted there), the
/// slow log and the latency monitor: its time since `started`, or `ran_us`, how long it ran
/// on the shard that owns its keys.
#[allow(clippy::too_many_arguments)]
fn finish(
    shard: &Shard,
    client: &mut Client,
    index: usize,
    stat_id: usize,
    args: &[&[u8]],
    started: crate::clock::Ticks,
    ran_us: Option<u64>,
    result: CommandResult,
    out: &mut ReplySink,
) {
    let ended = crate::clock::now();
    client.command_clock.end(ended);
    let elapsed_us = ran_us.unwrap_or_else(|| crate::clock::elapsed_us(started, ended));
    record(shard, client, index, stat_id, args, elapsed_us, result, out);
}

/// [`finish`] once the command's time is known.
#[allow(clippy::too_many_arguments)]
fn record(
    shard: &Shard,
    client: &mut Client,
    index: usize,
    stat_id: usize,
    args: &[&[u8]],
    elapsed_us: u64,
    result: CommandResult,
    out: &mut ReplySink,
) {
    if let Err(error) = result {
        out.error(&error.0);
    }
    let failed = if std::mem::take(&mut client.error_counted) {
        matches!(out.outcome(), Outcome::Error(_))
    } else {
        note_failure(shard, out.outcome())
    };
    shard.stats.record_call(stat_id, elapsed_us, failed);
    record_slow(shard, &client.handle, index, Some(args), elapsed_us);
}
