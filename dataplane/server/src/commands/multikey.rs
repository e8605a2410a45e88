//! Keyspace commands whose keys are not all on the connection's shard: one other shard, or
//! several. Replies cross the mesh as [`Reply`] values and are put together here, never parsed.
//!
//! - Reads over several shards (MGET, EXISTS, TOUCH) fan out to every shard at once, one round
//!   trip each, with no hold; [`MultiWrites`](crate::shard::MultiWrites) tells whether a
//!   multi-shard write overlapped, and only then the read runs again under holds.
//! - Writes over several shards (MSET, DEL, UNLINK) hold every shard involved but the last, in
//!   ascending order, each part running as its hold is taken; the last part runs in one step.
//!   With two shards that is one round trip, and no other client waits longer than that.
//! - Anything else that spans shards (MSETNX, RENAME, COPY, LCS) holds the shards, copies the
//!   keys into a scratch keyspace, runs there and writes back what changed.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use ember_resp::{Reply, ReplySink};
use ember_store::{Entry, Keyspace};
use smallvec::SmallVec;

use super::{CommandFlags, CommandResult, CommandSpec, Ctx, KeyspaceFn, Split};
use crate::client::Client;
use crate::shard::tracking::Caller as TrackingCaller;
use crate::shard::{HoldToken, PackedArgs, Ran, Shard, ShardReply, ShardRequest};

/// Runs `handler` against this shard's keyspace, writing the reply into `out`.
pub fn run_local(
    shard: &Shard,
    handler: KeyspaceFn,
    client: &Client,
    now_ms: u64,
    args: &[&[u8]],
    out: &mut ReplySink,
) -> CommandResult {
    run_local_as(
        shard,
        handler,
        Caller::of(shard.index, client),
        now_ms,
        args,
        out,
    )
}

/// A caller as the mesh describes it.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    /// Its database.
    pub db: usize,
    /// CLIENT NO-TOUCH.
    pub no_touch: bool,
    /// A script ([`Client::script`]).
    pub script: bool,
    /// The client for client tracking (NOLOOP, the keys it reads).
    pub tracking: TrackingCaller,
    /// A script's hold: its records go to its block of the append-only file
    /// ([`crate::aof::in_block`]).
    pub block: Option<crate::aof::BlockId>,
    /// A script's time ([`Client::time_ms`]), which its commands on another shard use too.
    pub time_ms: Option<std::num::NonZeroU64>,
}

impl Caller {
    /// How `client`, whose connection is on shard `shard_index`, calls.
    pub fn of(shard_index: usize, client: &Client) -> Self {
        Self {
            db: client.db,
            no_touch: client.no_touch,
            script: client.script,
            tracking: super::tracking::caller(shard_index, &client.handle),
            block: if client.script {
                client.hold.map(crate::aof::block_id)
            } else {
                None
            },
            time_ms: client.time_ms,
        }
    }
}

/// [`run_local`] for a caller described by its database, NO-TOUCH, script flag and tracking
/// alone (the mesh).
pub fn run_local_as(
    shard: &Shard,
    handler: KeyspaceFn,
    caller: Caller,
    now_ms: u64,
    args: &[&[u8]],
    out: &mut ReplySink,
) -> CommandResult {
    crate::aof::in_block(caller.block, || {
        run_local_logged(shard, handler, caller, now_ms, args, out)
    })
}

/// [`run_local_as`], its records going where [`crate::aof::in_block`] says.
fn run_local_logged(
    shard: &Shard,
    handler: KeyspaceFn,
    caller: Caller,
    now_ms: u64,
    args: &[&[u8]],
    out: &mut ReplySink,
) -> CommandResult {
    super::tracking::before_command(shard, caller.tracking);
    let hotkeys_timer = shard.hotkeys.recording().then(std::time::Instant::now);
    let mut propagation = crate::aof::Propagation::new();
    let result = {
        let mut keyspace = shard.keyspace.borrow_mut();
        let changes_before = keyspace.stats().changes;
        let result = run_in(
            &mut keyspace,
            shard,
            handler,
            caller,
            now_ms,
            args,
            out,
            &mut propagation,
        );
        if propagation.is_on() {
            let wrote = result.is_ok()
                && (keyspace.stats().changes != changes_before
                    || !matches!(out.outcome(), ember_resp::Outcome::Error(_)))
                && super::lookup(args[0])
                    .is_some_and(|index| super::COMMANDS[index].has(CommandFlags::WRITE));
            propagation.finish(caller.db, args, wrote);
        }
        result
    };
    if let Some(started) = hotkeys_timer {
        if let Some(index) = super::lookup(args[0]) {
            let elapsed_us = started.elapsed().as_micros() as u64;
            shard.hotkeys.record_cpu(index, args, elapsed_us);
        }
    }
    super::tracking::after_command(shard, caller.tracking, args);
    crate::shard::local_tier::after_command(shard, caller.db, args, now_ms);
    // Keys this command filled may serve blocked clients, in the same step.
    super::blocking::after_command(shard, caller.db, args);
    result
}

/// Runs `handler` against `keyspace` (the shard's own, or a scratch copy of some of its keys)
/// with the shard's configuration and statistics.
#[allow(clippy::too_many_arguments)] // One call site per keyspace (the shard's, a scratch one).
fn run_in(
    keyspace: &mut Keyspace,
    shard: &Shard,
    handler: KeyspaceFn,
    caller: Caller,
    now_ms: u64,
    args: &[&[u8]],
    out: &mut ReplySink,
    propagation: &mut crate::aof::Propagation,
) -> CommandResult {
    let config = shard.config.borrow();
    // Keys that expired outside a command (a SCAN, a fence) are logged as deleted before this
    // command's record, which may write them again.
    if propagation.is_on() && keyspace.has_expired() {
        super::notify::publish_expired(keyspace, &shard.pubsub, &config, now_ms);
    }
    let mut ctx = Ctx {
        keyspace,
        db: caller.db,
        protocol: out.protocol(),
        now_ms,
        out,
        config: &config,
        stats: &shard.stats,
        no_touch: caller.no_touch,
        script: caller.script,
        pubsub: &shard.pubsub,
        protection: &shard.protection,
        propagation,
    };
    super::notify::before_command(ctx.keyspace, &config);
    let result = handler(&mut ctx, args);
    super::notify::after_command(ctx.keyspace, &shard.pubsub, &config, now_ms);
    result
}

/// Waits until a keyspace command on `args` may run on this shard: with `hold`, holds its keys
/// for `token` first (a part of a cross-shard write before its last).
pub async fn admit(
    shard: &Shard,
    spec: &CommandSpec,
    args: &[&[u8]],
    db: usize,
    token: Option<HoldToken>,
    hold: bool,
) {
    let gate = &shard.gate;
    if !hold && !gate.busy() {
        return; // The common case: nothing is held, nothing to look at.
    }
    let keys = spec.key_args(args);
    match (hold, token) {
        (true, Some(token)) => gate.lock_keys(token, db, &keys).await,
        (_, token) => gate.enter_keys(token, db, &keys).await,
    }
}

/// Runs `handler` here and returns its reply as a value.
fn local_reply(
    shard: &Shard,
    handler: KeyspaceFn,
    client: &Client,
    now_ms: u64,
    args: &[&[u8]],
) -> Reply {
    let mut sink = ReplySink::values(client.protocol);
    if let Err(error) = run_local(shard, handler, client, now_ms, args, &mut sink) {
        sink.error(&error.0);
    }
    sink.into_reply()
}

/// The request that runs `args` on another shard for `client`.
pub fn execute_request(
    shard_index: usize,
    client: &Client,
    args: PackedArgs,
    token: Option<HoldToken>,
    hold: bool,
) -> ShardRequest {
    execute_request_as(Caller::of(shard_index, client), client, args, token, hold)
}

/// [`execute_request`] for `caller`, `client` described otherwise than it is (another
/// database, another time).
pub fn execute_request_as(
    caller: Caller,
    client: &Client,
    args: PackedArgs,
    token: Option<HoldToken>,
    hold: bool,
) -> ShardRequest {
    ShardRequest::Execute {
        caller,
        protocol: client.protocol,
        args,
        token,
        hold,
    }
}

/// The reply value inside a shard's answer to an Execute.
pub fn into_reply(reply: ShardReply) -> Reply {
    into_ran(reply).reply
}

/// A shard's answer to an Execute as a [`Ran`]; an answer that is not a run (the mesh's error
/// when the owner did not answer in time) ran for no time.
pub fn into_ran(reply: ShardReply) -> Ran {
    let reply = match reply {
        ShardReply::Ran(ran) => return ran,
        ShardReply::Reply(reply) => reply,
        other => Reply::Error(format!("ERR unexpected shard answer {other:?}").into()),
    };
    Ran {
        reply,
        micros: 0,
        slow_args: None,
    }
}

/// Runs a command whose keys all live on shard `owner` (another one), writes its reply and
/// returns how long it ran there.
pub async fn run_remote(
    shard: &Rc<Shard>,
    client: &Client,
    owner: usize,
    args: &[&[u8]],
    out: &mut ReplySink,
) -> u64 {
    run_remote_at(shard, client, owner, args, None, out).await
}

/// [`run_remote`] at time `time_ms` on the owner (a script's time, DEBUG OBJECT's), or at the
/// owner's own clock.
pub async fn run_remote_at(
    shard: &Rc<Shard>,
    client: &Client,
    owner: usize,
    args: &[&[u8]],
    time_ms: Option<std::num::NonZeroU64>,
    out: &mut ReplySink,
) -> u64 {
    let mut caller = Caller::of(shard.index, client);
    caller.time_ms = time_ms.or(caller.time_ms);
    let args = PackedArgs::new(args.iter().copied());
    let request = execute_request_as(caller, client, args, client.hold, false);
    let ran = into_ran(shard.call(owner, request).await);
    ran.reply.write_to(out);
    ran.micros
}

/// One shard's share of a split command: its owner, the argument positions of its keys and the
/// arguments it runs.
struct Part {
    owner: usize,
    positions: Vec<usize>,
    args: PackedArgs,
}

/// Splits a command by the owners of its keys, in ascending shard order. A key's value (MSET)
/// travels with it. Each key's owner is computed once; the parts are few (at most one per
/// shard), so a sorted vector beats a map.
fn parts(shard: &Shard, spec: &CommandSpec, args: &[&[u8]]) -> Vec<Part> {
    let with_values = spec.split == Split::Pairs;
    let positions = spec.key_positions(args);
    let mut parts: Vec<Part> = Vec::with_capacity(shard.count().min(positions.len()));
    for position in positions {
        let owner = shard.owner_of(args[position]);
        let index = match parts.binary_search_by_key(&owner, |part| part.owner) {
            Ok(index) => index,
            Err(index) => {
                let mut packed = PackedArgs::default();
                packed.push(args[0]);
                parts.insert(
                    index,
                    Part {
                        owner,
                        positions: Vec::new(),
                        args: packed,
                    },
                );
                index
            }
        };
        let part = &mut parts[index];
        part.positions.push(position);
        part.args.push(args[position]);
        if with_values {
            part.args.push(args[position + 1]);
        }
    }
    parts
}

/// Runs a keyspace command whose keys live on several shards; the reply goes into `out`.
///
/// A command split into parts sets `ran_us` to how long its parts ran, each on its shard,
/// added up: its time, as Redis times execution only (not the trips between the shards, nor
/// waits for holds or behind other commands).
#[allow(clippy::too_many_arguments)]
pub async fn run_split(
    shard: &Rc<Shard>,
    client: &Client,
    spec: &CommandSpec,
    handler: KeyspaceFn,
    args: &[&[u8]],
    now_ms: u64,
    out: &mut ReplySink,
    ran_us: &mut Option<u64>,
) -> CommandResult {
    match spec.split {
        Split::None => Err("ERR keys of this command must live on one shard".into()),
        Split::Pairs if args.len() % 2 == 0 => Err(super::arity_message(spec.name).into()),
        Split::Gather | Split::Sum | Split::Pairs => {
            let mut parts = parts(shard, spec, args);
            let write = spec.has(CommandFlags::WRITE) || client.hold.is_some();
            let mut ran = 0;
            let replies = if write {
                None
            } else {
                run_read(shard, client, spec, handler, &mut parts, now_ms, &mut ran).await
            };
            let replies = match replies {
                Some(replies) => replies,
                None => {
                    if !write {
                        // The optimistic read gave its arguments away: split again.
                        parts = self::parts(shard, spec, args);
                    }
                    run_held(
                        shard, client, spec, handler, &mut parts, now_ms, write, &mut ran,
                    )
                    .await
                }
            };
            *ran_us = Some(ran);
            write_combined(spec.split, args.len(), &parts, replies, out)
        }
        Split::Scratch => scratch(shard, client, spec, handler, args, now_ms, out).await,
    }
}

/// Puts the parts' replies together into `out`: MGET's values in request order (each written
/// as it is taken from its part, with no reply vector in between), counts added up, MSET's OK.
/// The first error of any part is the reply.
fn write_combined(
    split: Split,
    arg_count: usize,
    parts: &[Part],
    replies: Vec<Reply>,
    out: &mut ReplySink,
) -> CommandResult {
    debug_assert_eq!(parts.len(), replies.len(), "one reply per part");
    if let Some(message) = replies.iter().find_map(Reply::error_message) {
        return Err(message.to_owned().into());
    }
    match split {
        Split::Gather => {
            let mut values: SmallVec<[std::vec::IntoIter<Reply>; 4]> = SmallVec::new();
            for (part, reply) in parts.iter().zip(replies) {
                let Reply::Array(items) = reply else {
                    return Err("ERR a shard's part of MGET was not an array".into());
                };
                if items.len() != part.positions.len() {
                    return Err("ERR a shard's part of MGET has the wrong number of values".into());
                }
                values.push(items.into_iter());
            }
            // The part that answers each argument position (0, the command name, answers none).
            let mut from: SmallVec<[u16; 64]> = SmallVec::from_elem(0, arg_count);
            for (index, part) in parts.iter().enumerate() {
                let index = u16::try_from(index).expect("at most 1024 shards");
                for &position in &part.positions {
                    from[position] = index;
                }
            }
            out.array_len(arg_count - 1);
            for &index in &from[1..] {
                match values[usize::from(index)].next() {
                    Some(value) => value.write_to(out),
                    None => out.null(),
                }
            }
            Ok(())
        }
        Split::Sum => {
            let total = replies.iter().filter_map(Reply::as_integer).sum();
            out.integer(total);
            Ok(())
        }
        Split::Pairs => {
            out.ok();
            Ok(())
        }
        Split::None | Split::Scratch => unreachable!("only fan-out splits combine"),
    }
}

/// Reads every part at once with no hold, moving each remote part's arguments into its
/// request. Valid when no multi-shard write began meanwhile; otherwise (rarely) `None`: the
/// caller splits again and reads under holds, so it is always one snapshot.
///
/// Adds the parts' run times to `ran` ([`run_split`]), as [`run_held`] does.
async fn run_read(
    shard: &Rc<Shard>,
    client: &Client,
    spec: &CommandSpec,
    handler: KeyspaceFn,
    parts: &mut [Part],
    now_ms: u64,
    ran: &mut u64,
) -> Option<Vec<Reply>> {
    let writes = &shard.shared.multi_writes;
    let stamp = writes.read_stamp()?;
    let mut pending = Vec::with_capacity(parts.len());
    for part in parts.iter_mut().filter(|part| part.owner != shard.index) {
        let args = std::mem::take(&mut part.args);
        let request = execute_request(shard.index, client, args, None, false);
        pending.push(shard.send(part.owner, request).await);
    }
    let mut pending = pending.into_iter();
    let mut replies = Vec::with_capacity(parts.len());
    for part in parts.iter() {
        let reply = if part.owner == shard.index {
            let args = part.args.slices();
            admit(shard, spec, &args, client.db, None, false).await;
            timed_local_reply(shard, handler, client, now_ms, &args, ran)
        } else {
            timed_reply(
                pending.next().expect("a request per remote part").await,
                ran,
            )
        };
        replies.push(reply);
    }
    if writes.still_valid(stamp) {
        return Some(replies);
    }
    shard.stats.count_read_retry();
    None
}

/// Runs every part under holds: the parts before the last hold their shard (ascending order)
/// and run as the hold is taken; the last runs in one step; then the holds are released. Inside
/// EXEC every shard is held already and the parts just run. `write` marks a multi-shard write
/// for [`run_read`]'s check; the parts' run times are added to `ran`.
#[allow(clippy::too_many_arguments)]
async fn run_held(
    shard: &Rc<Shard>,
    client: &Client,
    spec: &CommandSpec,
    handler: KeyspaceFn,
    parts: &mut [Part],
    now_ms: u64,
    write: bool,
    ran: &mut u64,
) -> Vec<Reply> {
    let mut replies = Vec::with_capacity(parts.len());
    if let Some(token) = client.hold {
        for part in parts.iter_mut() {
            replies.push(
                run_part(
                    shard,
                    client,
                    spec,
                    handler,
                    part,
                    now_ms,
                    Some(token),
                    false,
                    ran,
                )
                .await,
            );
        }
        return replies;
    }
    let writes = &shard.shared.multi_writes;
    if write {
        writes.begin();
    }
    let token = shard.new_hold_token();
    if write && parts.len() == 2 && parts[1].owner == shard.index {
        if let Some(replies) =
            try_pair_from_above(shard, client, spec, handler, parts, now_ms, token, ran).await
        {
            writes.end();
            return replies;
        }
    }
    let (last, held) = parts.split_last_mut().expect("a split command has parts");
    for part in held.iter_mut() {
        replies.push(
            run_part(
                shard,
                client,
                spec,
                handler,
                part,
                now_ms,
                Some(token),
                true,
                ran,
            )
            .await,
        );
    }
    replies.push(run_part(shard, client, spec, handler, last, now_ms, None, false, ran).await);
    if write {
        writes.end();
    }
    for part in held.iter() {
        release(shard, part.owner, token).await;
    }
    replies
}

/// A write over two shards started on the higher one (this shard): holds its keys here, then
/// asks the lower shard to run its part in one step if none of those keys is held there, runs
/// this part and releases: one round trip and no hold of the other shard (the ordered path
/// holds the lower shard's keys for a round trip and sends a release after). Atomic all the
/// same: both parts run while this shard's keys are held, and the lower part runs in one step.
/// No deadlock: while it holds keys here it never waits on the other shard, which refuses
/// instead. `None` (nothing written, nothing held) when refused: the caller then takes the
/// ordered path.
#[allow(clippy::too_many_arguments)]
async fn try_pair_from_above(
    shard: &Rc<Shard>,
    client: &Client,
    spec: &CommandSpec,
    handler: KeyspaceFn,
    parts: &mut [Part],
    now_ms: u64,
    token: HoldToken,
    ran: &mut u64,
) -> Option<Vec<Reply>> {
    let [lower, here] = parts else {
        unreachable!("two parts")
    };
    let args = here.args.slices();
    admit(shard, spec, &args, client.db, Some(token), true).await;
    let request = ShardRequest::TryExecute {
        caller: Caller::of(shard.index, client),
        protocol: client.protocol,
        args: std::mem::take(&mut lower.args),
    };
    let replies = match shard.call(lower.owner, request).await {
        ShardReply::Refused(args) => {
            lower.args = args;
            None
        }
        reply => {
            let reply = timed_reply(reply, ran);
            if reply.error_message().is_some() {
                // The other shard failed (or did not answer in time): nothing is written here.
                Some(vec![reply, Reply::Null])
            } else {
                Some(vec![
                    reply,
                    timed_local_reply(shard, handler, client, now_ms, &args, ran),
                ])
            }
        }
    };
    release(shard, shard.index, token).await;
    replies
}

/// Runs one part, here or on its shard (its arguments move into the request); with `hold`,
/// holds the part's keys there for `token` first.
#[allow(clippy::too_many_arguments)]
async fn run_part(
    shard: &Rc<Shard>,
    client: &Client,
    spec: &CommandSpec,
    handler: KeyspaceFn,
    part: &mut Part,
    now_ms: u64,
    token: Option<HoldToken>,
    hold: bool,
    ran: &mut u64,
) -> Reply {
    if part.owner != shard.index {
        let args = std::mem::take(&mut part.args);
        let request = execute_request(shard.index, client, args, token, hold);
        return timed_reply(shard.call(part.owner, request).await, ran);
    }
    let args = part.args.slices();
    admit(shard, spec, &args, client.db, token, hold).await;
    timed_local_reply(shard, handler, client, now_ms, &args, ran)
}

/// The reply of a part another shard ran, its run time added to `ran`.
fn timed_reply(reply: ShardReply, ran: &mut u64) -> Reply {
    let Ran { reply, micros, .. } = into_ran(reply);
    *ran += micros;
    reply
}

/// [`local_reply`], its run time added to `ran`.
fn timed_local_reply(
    shard: &Shard,
    handler: KeyspaceFn,
    client: &Client,
    now_ms: u64,
    args: &[&[u8]],
    ran: &mut u64,
) -> Reply {
    let started = crate::clock::now();
    let reply = local_reply(shard, handler, client, now_ms, args);
    *ran += crate::clock::since_us(started);
    reply
}

/// Holds every shard in `owners` (ascending, so two operations never wait on each other).
pub async fn hold_all(shard: &Rc<Shard>, owners: &BTreeSet<usize>, token: HoldToken) {
    if only_this_shard(shard, owners) && shard.gate.try_hold(token) {
        return; // Nothing to wait for: the common case of a script whose keys are all here.
    }
    for &owner in owners {
        if owner == shard.index {
            shard.gate.hold(token).await;
        } else {
            shard.call(owner, ShardRequest::Hold { token }).await;
        }
    }
}

/// True when `owners` is this shard alone.
fn only_this_shard(shard: &Shard, owners: &BTreeSet<usize>) -> bool {
    owners.len() == 1 && owners.first() == Some(&shard.index)
}

/// Releases `token`'s hold of this shard, and serves the clients blocked on keys it filled.
fn release_here(shard: &Rc<Shard>, token: HoldToken) {
    shard.gate.release(token);
    super::blocking::serve_ready(shard);
}

/// Releases `token`'s hold of shard `owner`; a remote release needs no answer.
async fn release(shard: &Rc<Shard>, owner: usize, token: HoldToken) {
    if owner == shard.index {
        release_here(shard, token);
    } else {
        shard.notify(owner, ShardRequest::Release { token }).await;
    }
}

/// Releases every shard in `owners`.
pub async fn release_all(shard: &Rc<Shard>, owners: &BTreeSet<usize>, token: HoldToken) {
    if only_this_shard(shard, owners) {
        return release_here(shard, token);
    }
    for &owner in owners {
        release(shard, owner, token).await;
    }
}

/// The token to act under: the transaction's when EXEC already holds every shard, else a new
/// hold of `owners` (true when this call took it and must release it).
async fn hold_owners(
    shard: &Rc<Shard>,
    client: &Client,
    owners: &BTreeSet<usize>,
) -> (HoldToken, bool) {
    if let Some(token) = client.hold {
        return (token, false);
    }
    let token = shard.new_hold_token();
    hold_all(shard, owners, token).await;
    (token, true)
}

/// Any multi-key command over several shards: hold the shards, copy the keys into a scratch
/// keyspace, run the command there, and write back every key whose entry changed.
async fn scratch(
    shard: &Rc<Shard>,
    client: &Client,
    spec: &CommandSpec,
    handler: KeyspaceFn,
    args: &[&[u8]],
    now_ms: u64,
    out: &mut ReplySink,
) -> CommandResult {
    let db = client.db;
    // Every key with its database: COPY ... DB n reads and writes its destination in database
    // n. An invalid DB argument leaves every key in the client's database; the handler then
    // refuses the command before it touches a key.
    let destination_db = if spec.has(CommandFlags::DB_OPTION) {
        destination_db(args).unwrap_or(db)
    } else {
        db
    };
    let keys: BTreeSet<(usize, &[u8])> = spec
        .key_positions(args)
        .into_iter()
        .map(|p| (if p == 2 { destination_db } else { db }, args[p]))
        .collect();
    let mut by_owner: BTreeMap<(usize, usize), Vec<&[u8]>> = BTreeMap::new();
    for &(key_db, key) in &keys {
        by_owner
            .entry((shard.owner_of(key), key_db))
            .or_default()
            .push(key);
    }
    let reads_named_keys = spec.reads_named_keys(args);
    let owners: BTreeSet<usize> = if reads_named_keys {
        (0..shard.count()).collect()
    } else {
        by_owner.keys().map(|&(owner, _)| owner).collect()
    };
    let write = spec.has(CommandFlags::WRITE);
    if write {
        shard.shared.multi_writes.begin();
    }
    let (token, taken) = hold_owners(shard, client, &owners).await;
    let mut before: BTreeMap<(usize, &[u8]), Option<Entry>> = BTreeMap::new();
    for (&(owner, key_db), owned) in &by_owner {
        let entries = fetch(shard, owner, key_db, owned, now_ms).await;
        before.extend(owned.iter().map(|&key| (key_db, key)).zip(entries));
    }
    // Keys named by the data (SORT's patterns), fetched once the first key's value is known.
    let named_keys = match (spec.lookups, spec.key_positions(args).first()) {
        (Some(lookups), Some(&first)) if reads_named_keys => match &before[&(db, args[first])] {
            Some(entry) => (lookups.keys)(args, &entry.value),
            None => Vec::new(),
        },
        _ => Vec::new(),
    };
    let mut named_by_owner: BTreeMap<(usize, usize), Vec<&[u8]>> = BTreeMap::new();
    for key in &named_keys {
        if !before.contains_key(&(db, key.as_slice())) {
            named_by_owner
                .entry((shard.owner_of(key), db))
                .or_default()
                .push(key);
        }
    }
    for (&(owner, key_db), owned) in &named_by_owner {
        let entries = fetch(shard, owner, key_db, owned, now_ms).await;
        before.extend(owned.iter().map(|&key| (key_db, key)).zip(entries));
    }
    let mut scratch = Keyspace::new();
    for (&(key_db, key), entry) in &before {
        if let Some(entry) = entry {
            scratch.insert(
                key_db,
                key,
                entry.value.clone(),
                entry.expire_at_ms(),
                now_ms,
            );
        }
    }
    let caller = Caller::of(shard.index, client);
    let result = crate::aof::in_block(caller.block, || {
        let mut propagation = crate::aof::Propagation::new();
        let changes_before = scratch.stats().changes;
        let result = run_in(
            &mut scratch,
            shard,
            handler,
            caller,
            now_ms,
            args,
            out,
            &mut propagation,
        );
        // Logged here, at the moment every key it read or wrote is held; the owners'
        // write-backs below are not logged again.
        let wrote = write && result.is_ok() && scratch.stats().changes != changes_before;
        propagation.finish(db, args, wrote);
        result
    });
    for (&(owner, key_db), owned) in &by_owner {
        let changed: Vec<(Vec<u8>, Option<Entry>)> = owned
            .iter()
            .filter_map(|&key| {
                let after = scratch.peek(key_db, key, now_ms).cloned();
                let unchanged = match (&before[&(key_db, key)], &after) {
                    (Some(old), Some(new)) => {
                        old.value == new.value && old.expire_at_ms() == new.expire_at_ms()
                    }
                    (None, None) => true,
                    _ => false,
                };
                (!unchanged).then(|| (key.to_vec(), after))
            })
            .collect();
        if !changed.is_empty() {
            store(shard, owner, key_db, changed, now_ms).await;
        }
    }
    if write {
        shard.shared.multi_writes.end();
    }
    if taken {
        release_all(shard, &owners, token).await;
    }
    result
}

/// The database of the last `DB n` option (the one that counts), when it names a valid one.
fn destination_db(args: &[&[u8]]) -> Option<usize> {
    let position = (3..args.len().saturating_sub(1)).rfind(|&p| super::is(args[p], "DB"))?;
    super::keys::parse_db(args[position + 1]).ok()
}

/// The entry versions of `keys` in `db`, asked of each key's owner (no hold: a snapshot).
pub async fn versions(
    shard: &Rc<Shard>,
    db: usize,
    keys: &[&[u8]],
    now_ms: u64,
) -> Vec<Option<u32>> {
    let mut versions = Vec::with_capacity(keys.len());
    for key in keys {
        let entry = fetch(shard, shard.owner_of(key), db, &[key], now_ms).await;
        versions.push(
            entry
                .into_iter()
                .next()
                .flatten()
                .map(|entry| entry.version),
        );
    }
    versions
}

/// True when every WATCHed key still has the version it had when watched (EXEC, under a hold
/// of every shard).
pub async fn versions_unchanged(
    shard: &Rc<Shard>,
    watched: &[(usize, Vec<u8>, Option<u32>)],
    now_ms: u64,
) -> bool {
    for (db, key, version) in watched {
        if versions(shard, *db, &[key.as_slice()], now_ms).await[0] != *version {
            return false;
        }
    }
    true
}

/// The entries of `keys` in `db` on shard `owner`, read without waiting for holds (the caller
/// holds the keys, or wants a snapshot).
pub async fn fetch(
    shard: &Rc<Shard>,
    owner: usize,
    db: usize,
    keys: &[&[u8]],
    now_ms: u64,
) -> Vec<Option<Entry>> {
    if owner == shard.index {
        let keyspace = shard.keyspace.borrow();
        return keys
            .iter()
            .map(|key| keyspace.peek(db, key, now_ms).cloned())
            .collect();
    }
    let request = ShardRequest::Fetch {
        db,
        keys: keys.iter().map(|k| k.to_vec()).collect(),
    };
    match shard.call(owner, request).await {
        ShardReply::Entries(entries) => entries,
        // The shard did not answer: the keys read as absent, and WATCH then aborts EXEC.
        _ => vec![None; keys.len()],
    }
}

async fn store(
    shard: &Rc<Shard>,
    owner: usize,
    db: usize,
    entries: Vec<(Vec<u8>, Option<Entry>)>,
    now_ms: u64,
) {
    if owner == shard.index {
        apply_entries(shard, db, entries, now_ms);
    } else {
        shard.call(owner, ShardRequest::Store { db, entries }).await;
    }
}

/// Writes back entries copied out of the scratch keyspace (`None` removes the key).
pub fn apply_entries(
    shard: &Shard,
    db: usize,
    entries: Vec<(Vec<u8>, Option<Entry>)>,
    now_ms: u64,
) {
    let mut keyspace = shard.keyspace.borrow_mut();
    for (key, entry) in &entries {
        match entry {
            Some(entry) => {
                keyspace.insert(db, key, entry.value.clone(), entry.expire_at_ms(), now_ms);
            }
            None => {
                keyspace.remove(db, key, now_ms);
            }
        }
    }
    drop(keyspace);
    super::tracking::collect(shard);
    super::blocking::after_store(shard, db, entries.iter().map(|(key, _)| key.as_slice()));
}
