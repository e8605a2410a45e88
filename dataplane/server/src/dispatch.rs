//! Running a keyspace command where its keys live: here, on one other shard, or split over
//! several. The mesh side (answering other shards' requests) lives here too.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use ember_resp::{encode, Protocol};
use ember_store::{Entry, Keyspace};

use crate::client::Client;
use crate::commands::{
    self, CommandError, CommandResult, CommandSpec, Ctx, Handler, KeyspaceFn, Split,
};
use crate::shard::{AdminRequest, HoldToken, Shard, ShardReply, ShardRequest};

/// Runs `handler` against this shard's keyspace, writing the reply into `out`.
#[allow(clippy::too_many_arguments)]
pub fn run_local(
    shard: &Shard,
    handler: KeyspaceFn,
    db: usize,
    protocol: Protocol,
    no_touch: bool,
    now_ms: u64,
    args: &[&[u8]],
    out: &mut Vec<u8>,
) -> CommandResult {
    let mut keyspace = shard.keyspace.borrow_mut();
    let config = shard.config.borrow();
    let mut ctx = Ctx {
        keyspace: &mut keyspace,
        db,
        protocol,
        now_ms,
        out,
        config: &config,
        stats: &shard.stats,
        no_touch,
    };
    handler(&mut ctx, args)
}

fn keyspace_handler(spec: &CommandSpec) -> KeyspaceFn {
    match spec.handler {
        Handler::Keyspace(handler) => handler,
        _ => unreachable!("only keyspace commands are routed by key"),
    }
}

/// Where a keyspace command's keys live.
pub enum Route {
    /// All on this shard (or no keys).
    Local,
    /// All on one other shard.
    Remote(usize),
    /// On several shards.
    Split,
}

/// Finds where the keys of `args` live.
pub fn route(shard: &Shard, spec: &CommandSpec, args: &[&[u8]]) -> Route {
    if shard.offload_sim {
        return route_through_offload(shard, spec, args);
    }
    if shard.count() == 1 {
        return Route::Local;
    }
    let mut owner = None;
    for position in spec.keys.positions(args.len()) {
        let key_owner = shard.owner_of(args[position]);
        match owner {
            None => owner = Some(key_owner),
            Some(previous) if previous != key_owner => return Route::Split,
            Some(_) => {}
        }
    }
    match owner {
        Some(owner) if owner != shard.index => Route::Remote(owner),
        _ => Route::Local,
    }
}

/// [`route`] with the key slots computed by the offload (`--offload sim`): the simulated
/// `slot_hash` module hashes every key and counts its cycles. A simulation failure is reported
/// and the software slot function answers instead, so a request never fails for it.
fn route_through_offload(shard: &Shard, spec: &CommandSpec, args: &[&[u8]]) -> Route {
    let keys: Vec<&[u8]> = spec.keys.positions(args.len()).map(|p| args[p]).collect();
    if keys.is_empty() {
        return Route::Local;
    }
    let slots = shard
        .offload
        .borrow_mut()
        .key_slots(&keys)
        .unwrap_or_else(|error| {
            eprintln!("ember: offload failed ({error}); using the software slot function");
            keys.iter()
                .map(|key| ember_store::slot::key_slot(key))
                .collect()
        });
    let mut owners = slots
        .iter()
        .map(|&slot| crate::shard::owner_of_slot(slot, shard.count()));
    let first = owners.next().expect("at least one key");
    if owners.any(|owner| owner != first) {
        Route::Split
    } else if first == shard.index {
        Route::Local
    } else {
        Route::Remote(first)
    }
}

/// Runs a keyspace command whose keys are not all local; the reply goes into `out`.
/// Returns whether the reply is an error.
pub async fn run_elsewhere(
    shard: &Rc<Shard>,
    client: &Client,
    spec: &CommandSpec,
    route: Route,
    args: &[&[u8]],
    now_ms: u64,
    out: &mut Vec<u8>,
) -> bool {
    let reply_start = out.len();
    match route {
        Route::Local => unreachable!("local commands run inline"),
        Route::Remote(owner) => {
            let reply = execute_on(shard, owner, client, args, client.hold, now_ms).await;
            out.extend_from_slice(&reply);
        }
        Route::Split => {
            let result = match spec.split {
                Split::None => Err(CommandError::from(
                    "ERR keys of this command must live on one shard",
                )),
                Split::Gather => gather(shard, client, spec, args, now_ms, out).await,
                Split::Sum => sum(shard, client, spec, args, now_ms, out).await,
                Split::Pairs => pairs(shard, client, spec, args, now_ms, out).await,
                Split::Scratch => scratch(shard, client, spec, args, now_ms, out).await,
            };
            if let Err(error) = result {
                encode::error(out, &error.0);
            }
        }
    }
    out.get(reply_start) == Some(&b'-')
}

/// Runs the command `args` on shard `owner` (here or there) and returns its encoded reply.
async fn execute_on(
    shard: &Rc<Shard>,
    owner: usize,
    client: &Client,
    args: &[&[u8]],
    token: Option<HoldToken>,
    now_ms: u64,
) -> Vec<u8> {
    if owner == shard.index {
        let mut out = Vec::new();
        let index = commands::lookup(args[0]).expect("routed commands exist");
        let handler = keyspace_handler(&commands::COMMANDS[index]);
        if let Err(error) = run_local(
            shard,
            handler,
            client.db,
            client.protocol,
            client.no_touch,
            now_ms,
            args,
            &mut out,
        ) {
            encode::error(&mut out, &error.0);
        }
        return out;
    }
    let request = ShardRequest::Execute {
        db: client.db,
        protocol: client.protocol,
        no_touch: client.no_touch,
        args: args.iter().map(|arg| arg.to_vec()).collect(),
        token,
    };
    match shard.call(owner, request).await {
        ShardReply::Encoded(bytes) => bytes,
        other => panic!("Execute answered with {other:?}"),
    }
}

/// Groups key positions by owning shard, in shard order.
fn group_by_owner(
    shard: &Shard,
    spec: &CommandSpec,
    args: &[&[u8]],
) -> BTreeMap<usize, Vec<usize>> {
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for position in spec.keys.positions(args.len()) {
        groups
            .entry(shard.owner_of(args[position]))
            .or_default()
            .push(position);
    }
    groups
}

/// Splits an encoded array reply into its elements' encodings.
fn array_elements(reply: &[u8]) -> Result<Vec<&[u8]>, CommandError> {
    if reply.first() == Some(&b'-') {
        let message =
            String::from_utf8_lossy(&reply[1..reply.len().saturating_sub(2)]).into_owned();
        return Err(message.into());
    }
    let header_end = reply
        .windows(2)
        .position(|w| w == b"\r\n")
        .ok_or(CommandError::from("ERR bad shard reply"))?;
    let count = ember_resp::parse_i64(&reply[1..header_end])
        .ok_or(CommandError::from("ERR bad shard reply"))?;
    let mut elements = Vec::with_capacity(count.max(0) as usize);
    let mut at = header_end + 2;
    for _ in 0..count {
        let (_, consumed) = ember_resp::parse_frame(&reply[at..])
            .ok()
            .flatten()
            .ok_or(CommandError::from("ERR bad shard reply"))?;
        elements.push(&reply[at..at + consumed]);
        at += consumed;
    }
    Ok(elements)
}

/// Runs the command once per owning shard with that shard's keys, every shard involved held
/// meanwhile so that the whole is atomic as in Redis (a cross-shard MSET or MSETNX is seen whole
/// or not at all). Returns each shard's encoded reply with the argument positions of its keys.
async fn run_per_owner(
    shard: &Rc<Shard>,
    client: &Client,
    spec: &CommandSpec,
    args: &[&[u8]],
    now_ms: u64,
) -> Vec<(Vec<u8>, Vec<usize>)> {
    let groups = group_by_owner(shard, spec, args);
    let owners: BTreeSet<usize> = groups.keys().copied().collect();
    let (token, taken) = hold_owners(shard, client, &owners).await;
    let mut replies = Vec::with_capacity(groups.len());
    for (owner, positions) in groups {
        let mut sub_args = vec![args[0]];
        sub_args.extend(positions.iter().map(|&p| args[p]));
        let reply = execute_on(shard, owner, client, &sub_args, Some(token), now_ms).await;
        replies.push((reply, positions));
    }
    if taken {
        release_all(shard, &owners, token).await;
    }
    replies
}

/// MGET over several shards: each shard answers for its keys; values go back in request order.
async fn gather(
    shard: &Rc<Shard>,
    client: &Client,
    spec: &CommandSpec,
    args: &[&[u8]],
    now_ms: u64,
    out: &mut Vec<u8>,
) -> CommandResult {
    let replies = run_per_owner(shard, client, spec, args, now_ms).await;
    let mut values: Vec<Vec<u8>> = vec![Vec::new(); args.len()];
    for (reply, positions) in &replies {
        for (element, &position) in array_elements(reply)?.into_iter().zip(positions) {
            values[position] = element.to_vec();
        }
    }
    encode::array_len(out, args.len() - 1);
    for value in &values[1..] {
        out.extend_from_slice(value);
    }
    Ok(())
}

fn integer_reply(reply: &[u8]) -> Result<i64, CommandError> {
    if reply.first() == Some(&b':') {
        return ember_resp::parse_i64(&reply[1..reply.len() - 2])
            .ok_or(CommandError::from("ERR bad shard reply"));
    }
    Err(String::from_utf8_lossy(
        reply
            .get(1..reply.len().saturating_sub(2))
            .unwrap_or_default(),
    )
    .into_owned()
    .into())
}

/// DEL, EXISTS, TOUCH, UNLINK over several shards: the counts add up, atomically as in Redis.
async fn sum(
    shard: &Rc<Shard>,
    client: &Client,
    spec: &CommandSpec,
    args: &[&[u8]],
    now_ms: u64,
    out: &mut Vec<u8>,
) -> CommandResult {
    let replies = run_per_owner(shard, client, spec, args, now_ms).await;
    let mut total = 0;
    for (reply, _) in &replies {
        total += integer_reply(reply)?;
    }
    encode::integer(out, total);
    Ok(())
}

/// Holds every shard in `owners` (ascending, so two operations never wait on each other).
pub async fn hold_all(shard: &Rc<Shard>, owners: &BTreeSet<usize>, token: HoldToken) {
    for &owner in owners {
        if owner == shard.index {
            shard.gate.hold(token).await;
        } else {
            shard.call(owner, ShardRequest::Hold { token }).await;
        }
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

pub async fn release_all(shard: &Rc<Shard>, owners: &BTreeSet<usize>, token: HoldToken) {
    for &owner in owners {
        if owner == shard.index {
            shard.gate.release(token);
        } else {
            shard.call(owner, ShardRequest::Release { token }).await;
        }
    }
}

/// MSET over several shards, under a hold so no reader sees half of it.
async fn pairs(
    shard: &Rc<Shard>,
    client: &Client,
    spec: &CommandSpec,
    args: &[&[u8]],
    now_ms: u64,
    out: &mut Vec<u8>,
) -> CommandResult {
    if args.len() % 2 == 0 {
        return Err(commands::arity_message(spec.name).into());
    }
    let groups = group_by_owner(shard, spec, args);
    let owners: BTreeSet<usize> = groups.keys().copied().collect();
    let (token, taken) = hold_owners(shard, client, &owners).await;
    for (owner, positions) in &groups {
        let mut sub_args = vec![args[0]];
        for &position in positions {
            sub_args.push(args[position]);
            sub_args.push(args[position + 1]);
        }
        execute_on(shard, *owner, client, &sub_args, Some(token), now_ms).await;
    }
    if taken {
        release_all(shard, &owners, token).await;
    }
    encode::ok(out);
    Ok(())
}

/// Any multi-key command over several shards: hold the shards, copy the keys into a scratch
/// keyspace, run the command there, and write back every key whose entry changed.
async fn scratch(
    shard: &Rc<Shard>,
    client: &Client,
    spec: &CommandSpec,
    args: &[&[u8]],
    now_ms: u64,
    out: &mut Vec<u8>,
) -> CommandResult {
    let handler = keyspace_handler(spec);
    let db = client.db;
    // Every key with its database: COPY ... DB n reads and writes its destination in database
    // n. An invalid DB argument leaves every key in the client's database; the handler then
    // refuses the command before it touches a key.
    let destination_db = if spec.name == "copy" {
        copy_destination_db(args).unwrap_or(db)
    } else {
        db
    };
    let keys: BTreeSet<(usize, &[u8])> = spec
        .keys
        .positions(args.len())
        .map(|p| (if p == 2 { destination_db } else { db }, args[p]))
        .collect();
    let mut by_owner: BTreeMap<(usize, usize), Vec<&[u8]>> = BTreeMap::new();
    for &(key_db, key) in &keys {
        by_owner
            .entry((shard.owner_of(key), key_db))
            .or_default()
            .push(key);
    }
    let owners: BTreeSet<usize> = by_owner.keys().map(|&(owner, _)| owner).collect();
    let (token, taken) = hold_owners(shard, client, &owners).await;
    let mut before: BTreeMap<(usize, &[u8]), Option<Entry>> = BTreeMap::new();
    for (&(owner, key_db), owned) in &by_owner {
        let entries = fetch(shard, owner, key_db, owned, now_ms).await;
        before.extend(owned.iter().map(|&key| (key_db, key)).zip(entries));
    }
    let mut scratch = Keyspace::new();
    for (&(key_db, key), entry) in &before {
        if let Some(entry) = entry {
            scratch.insert(key_db, key, entry.value.clone(), entry.expire_at_ms, now_ms);
        }
    }
    let result = {
        let config = shard.config.borrow();
        let mut ctx = Ctx {
            keyspace: &mut scratch,
            db,
            protocol: client.protocol,
            now_ms,
            out,
            config: &config,
            stats: &shard.stats,
            no_touch: client.no_touch,
        };
        handler(&mut ctx, args)
    };
    for (&(owner, key_db), owned) in &by_owner {
        let changed: Vec<(Vec<u8>, Option<Entry>)> = owned
            .iter()
            .filter_map(|&key| {
                let after = scratch.peek(key_db, key, now_ms).cloned();
                let unchanged = match (&before[&(key_db, key)], &after) {
                    (Some(old), Some(new)) => {
                        old.value == new.value && old.expire_at_ms == new.expire_at_ms
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
    if taken {
        release_all(shard, &owners, token).await;
    }
    result
}

/// The database of COPY's last `DB n` option (the one that counts), when it names a valid one.
fn copy_destination_db(args: &[&[u8]]) -> Option<usize> {
    let position = (3..args.len().saturating_sub(1)).rfind(|&p| commands::is(args[p], "DB"))?;
    commands::keys::parse_db(args[position + 1]).ok()
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

async fn fetch(
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
        other => panic!("Fetch answered with {other:?}"),
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

fn apply_entries(shard: &Shard, db: usize, entries: Vec<(Vec<u8>, Option<Entry>)>, now_ms: u64) {
    let mut keyspace = shard.keyspace.borrow_mut();
    for (key, entry) in entries {
        match entry {
            Some(entry) => {
                keyspace.insert(db, &key, entry.value, entry.expire_at_ms, now_ms);
            }
            None => {
                keyspace.remove(db, &key, now_ms);
            }
        }
    }
}

/// True when `request` can be answered without waiting (so the mesh receiver answers it inline).
pub fn answerable_now(shard: &Shard, request: &ShardRequest) -> bool {
    match request {
        ShardRequest::Execute { token, .. } => !shard.gate.blocks(*token),
        ShardRequest::Release { .. } | ShardRequest::Fetch { .. } | ShardRequest::Store { .. } => {
            true
        }
        ShardRequest::Hold { .. } => !shard.gate.blocks(None),
        ShardRequest::Admin { token, .. } => !shard.gate.blocks(*token),
        ShardRequest::Inference(request) => request
            .gate_token()
            .is_none_or(|token| !shard.gate.blocks(token)),
    }
}

/// Answers another shard's request.
pub async fn answer(shard: &Rc<Shard>, request: ShardRequest) -> ShardReply {
    let now_ms = crate::stats::unix_time_ms();
    match request {
        ShardRequest::Execute {
            db,
            protocol,
            no_touch,
            args,
            token,
        } => {
            shard.gate.enter(token).await;
            let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
            let mut out = Vec::new();
            let handler = commands::lookup(args[0])
                .map(|index| &commands::COMMANDS[index])
                .map(keyspace_handler);
            match handler {
                Some(handler) => {
                    if let Err(error) = run_local(
                        shard, handler, db, protocol, no_touch, now_ms, &args, &mut out,
                    ) {
                        encode::error(&mut out, &error.0);
                    }
                }
                None => encode::error(&mut out, "ERR unknown command"),
            }
            ShardReply::Encoded(out)
        }
        ShardRequest::Hold { token } => {
            shard.gate.hold(token).await;
            ShardReply::Done
        }
        ShardRequest::Release { token } => {
            shard.gate.release(token);
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
            crate::cluster::admin(shard, request, now_ms)
        }
        ShardRequest::Inference(request) => {
            if let Some(token) = request.gate_token() {
                shard.gate.enter(token).await;
            }
            ShardReply::Inference(crate::inference::answer(shard, request))
        }
    }
}

/// Sends `request` to every shard (this one included, answered directly) and collects replies
/// in shard order. `hold` is the caller's hold token inside a transaction.
pub async fn broadcast(
    shard: &Rc<Shard>,
    hold: Option<HoldToken>,
    request: AdminRequest,
) -> Vec<ShardReply> {
    let mut replies = Vec::with_capacity(shard.count());
    for index in 0..shard.count() {
        replies.push(admin_on(shard, hold, index, request.clone()).await);
    }
    replies
}

/// Sends `request` to one shard.
pub async fn admin_on(
    shard: &Rc<Shard>,
    hold: Option<HoldToken>,
    index: usize,
    request: AdminRequest,
) -> ShardReply {
    if index == shard.index {
        shard.gate.enter(hold).await;
        crate::cluster::admin(shard, request, crate::stats::unix_time_ms())
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
