//! Commands that involve every shard: DBSIZE, FLUSHDB/FLUSHALL, SWAPDB, KEYS, SCAN, RANDOMKEY,
//! INFO, CONFIG, CLIENT, SLOWLOG, LATENCY, DEBUG, SHUTDOWN. The origin shard broadcasts an
//! [`AdminRequest`] and combines the replies.

use std::fmt::Write as _;
use std::rc::Rc;

use ember_resp::ReplySink;
use ember_store::{DATABASE_COUNT, SEGMENT_COUNT};

use crate::client::{Client, ClientType, KillFilter};
use crate::commands::connection::validate_client_name;
use crate::commands::remote::{admin_on, broadcast};
use crate::commands::{
    errors, is, parse_integer, unknown_subcommand_message, CommandError, CommandResult, ServerOp,
};
use crate::shard::{AdminRequest, HoldToken, Shard, ShardReply};
use crate::stats::{Counters, LatencyRequest, ShardInfo, SlowlogRequest};

/// Sends `request` to every shard; with the append-only file on, while every shard is held,
/// logging `args` (run in `db`) at that moment: a command that changes keys of every shard has
/// one place in the log's order.
async fn broadcast_logged(
    shard: &Rc<Shard>,
    hold: Option<HoldToken>,
    request: AdminRequest,
    db: usize,
    args: &[&[u8]],
) {
    if crate::aof::on() {
        crate::persistence::every_shard_held_then(shard, hold, request, || {
            // A script's records so far go first (its block ends here).
            if let Some(hold) = hold {
                crate::aof::end_block(hold);
            }
            crate::aof::append(db, args);
        })
        .await;
    } else {
        broadcast(shard, hold, request).await;
    }
}

/// Answers an [`AdminRequest`] against this shard.
pub fn admin(shard: &Rc<Shard>, request: AdminRequest, now_ms: u64) -> ShardReply {
    match request {
        AdminRequest::DbSize { db } => ShardReply::Integer(shard.keyspace.borrow().len(db) as i64),
        AdminRequest::Snapshot => {
            ShardReply::Snapshot(Box::new(crate::persistence::encode_shard(shard, now_ms)))
        }
        AdminRequest::BeginSnapshot { generation } => {
            if crate::persistence::begin_background_part(shard, generation, now_ms) {
                ShardReply::Done
            } else {
                ShardReply::Reply(ember_resp::Reply::Error(
                    "ERR a shard is still encoding an earlier background save that failed".into(),
                ))
            }
        }
        AdminRequest::InsertKeys { keys, replace } => {
            ShardReply::Integer(crate::persistence::insert_keys(shard, keys, replace) as i64)
        }
        AdminRequest::Changes => {
            ShardReply::Integer(shard.keyspace.borrow().stats().changes as i64)
        }
        AdminRequest::MemoryUsage { db, key } => ShardReply::Integer(
            shard
                .keyspace
                .borrow()
                .entry_bytes(db, &key, crate::stats::unix_time_ms())
                .map_or(-1, |bytes| bytes as i64),
        ),
        AdminRequest::FlushDb { db, lazy } => {
            let flushed = shard.keyspace.borrow_mut().take_database(db);
            crate::lazyfree::free_database(flushed, lazy);
            crate::shard::local_tier::flushed(shard);
            crate::commands::blocking::note_database(shard, Some(db));
            crate::commands::tracking::flushed(shard);
            ShardReply::Done
        }
        AdminRequest::FlushAll { lazy } => {
            for db in 0..ember_store::DATABASE_COUNT {
                let flushed = shard.keyspace.borrow_mut().take_database(db);
                crate::lazyfree::free_database(flushed, lazy);
            }
            crate::shard::local_tier::flushed(shard);
            crate::commands::blocking::note_database(shard, None);
            crate::commands::tracking::flushed(shard);
            ShardReply::Done
        }
        AdminRequest::SwapDb { first, second } => {
            shard.keyspace.borrow_mut().swap_databases(first, second);
            crate::shard::local_tier::flushed(shard);
            crate::commands::blocking::note_database(shard, Some(first));
            crate::commands::blocking::note_database(shard, Some(second));
            ShardReply::Done
        }
        AdminRequest::Keys { db, pattern } => ShardReply::Keys(
            shard
                .keyspace
                .borrow()
                .keys_matching(db, &pattern, now_ms)
                .into_iter()
                .map(|k| k.to_vec())
                .collect(),
        ),
        AdminRequest::Scan {
            db,
            segment,
            count,
            pattern,
            type_name,
        } => {
            let keyspace = shard.keyspace.borrow();
            let step = keyspace.scan(db, segment, count, now_ms, |key, entry| {
                pattern
                    .as_ref()
                    .is_none_or(|p| ember_store::glob::glob_match(p, key))
                    && type_name
                        .as_ref()
                        .is_none_or(|t| t.eq_ignore_ascii_case(entry.value.type_name().as_bytes()))
            });
            ShardReply::Scan {
                keys: step.keys.into_iter().map(|k| k.to_vec()).collect(),
                next_segment: step.next_segment,
            }
        }
        AdminRequest::RandomKey { db } => {
            let mut random = |bound: usize| rand::random::<usize>() % bound.max(1);
            let key = shard.keyspace.borrow().random_key(db, &mut random, now_ms);
            ShardReply::Keys(key.into_iter().map(|k| k.to_vec()).collect())
        }
        AdminRequest::ConfigSet { pairs } => {
            let mut config = shard.config.borrow_mut();
            let mut tracking_bound = false;
            for (name, value) in pairs {
                // Validated by the origin; a failure here would mean shards disagree on validity.
                config
                    .set(&name, &value)
                    .expect("CONFIG SET validated by the origin shard");
                tracking_bound |= name.eq_ignore_ascii_case("tracking-table-max-keys");
            }
            crate::shard::configure_keyspace(&mut shard.keyspace.borrow_mut(), &config);
            drop(config);
            if tracking_bound {
                // Redis applies a lower bound before the next command any client sends, which
                // may be a command queued in a transaction on another shard: every shard trims
                // its own table now, and its invalidations go out before CONFIG SET's reply.
                crate::commands::tracking::collect(shard);
            }
            ShardReply::Done
        }
        AdminRequest::ScriptsFlushed => {
            shard.flush_scripts();
            ShardReply::Done
        }
        AdminRequest::ResetStats => {
            // Bytes sent straight to subscribers count in the stats being reset.
            shard.pubsub.take_sent_len();
            shard.stats.reset();
            shard.local_tier.hits.set(0);
            crate::lazyfree::reset_stats();
            ShardReply::Done
        }
        AdminRequest::Info => ShardReply::Info(Box::new(shard_info(shard))),
        AdminRequest::ClientList => ShardReply::Lines(
            shard
                .clients
                .borrow()
                .values()
                // A killed connection is gone for CLIENT LIST at once, as Redis frees it inside
                // CLIENT KILL (here its task ends a moment later).
                .filter(|client| !client.killed.get())
                .map(|client| client.info_line())
                .collect(),
        ),
        AdminRequest::ClientUnblock { client_id, kind } => {
            ShardReply::Integer(i64::from(shard.blocking.unblock_client(client_id, kind)))
        }
        AdminRequest::ClientKill { filter } => {
            let victims: Vec<_> = shard
                .clients
                .borrow()
                .values()
                // One killed a moment ago (its task not ended yet) is gone already, as for
                // CLIENT LIST: Redis frees it inside the first CLIENT KILL.
                .filter(|c| !c.killed.get() && filter.selects(c))
                .cloned()
                .collect();
            for victim in &victims {
                if victim.id == filter.requester_id {
                    // The caller: its connection sends this command's reply, then closes.
                    victim.killed.set(true);
                } else {
                    victim.kill();
                }
            }
            ShardReply::Integer(victims.len() as i64)
        }
        AdminRequest::AclRevoke { user } => {
            let victims = crate::commands::acl::revoked_subscribers(shard, &user);
            for victim in &victims {
                victim.kill();
            }
            ShardReply::Integer(victims.len() as i64)
        }
        AdminRequest::Slowlog(request) => {
            let (entries, len) = shard.stats.slowlog(request);
            match request {
                SlowlogRequest::Len => ShardReply::Integer(len as i64),
                _ => ShardReply::Slowlog(entries),
            }
        }
        AdminRequest::Latency(request) => ShardReply::Latency(shard.stats.latency(&request)),
        AdminRequest::Hotkeys(request) => crate::commands::hotkeys::answer(shard, request),
    }
}

fn shard_info(shard: &Shard) -> ShardInfo {
    let output = &shard.stats.net_output_bytes;
    output.set(output.get() + shard.pubsub.take_sent_len());
    let keyspace = shard.keyspace.borrow();
    let databases: Vec<_> = (0..DATABASE_COUNT)
        .map(|db| keyspace.database_info(db))
        .collect();
    let (lua_bytes, library_lua_bytes) = shard.scripting().lua_bytes();
    ShardInfo {
        counters: crate::stats::Counters {
            local_tier_hits: shard.local_tier.hits.get(),
            local_tier_copies: shard.local_tier.copy_count() as u64,
            ..shard.stats.counters()
        },
        databases: databases
            .iter()
            .map(|info| (info.keys, info.expires))
            .collect(),
        table_bytes: databases
            .iter()
            .map(|info| (info.table_bytes, info.expires_bytes))
            .collect(),
        lua_bytes,
        library_lua_bytes,
        commands: shard.stats.command_stats(|id| {
            crate::commands::acl::CATALOGUE.commands[id]
                .fullname
                .as_str()
        }),
        errors: shard.stats.error_stats(),
        clients: shard.clients.borrow().len(),
        busy_us: crate::runtime::busy_time().as_micros() as u64,
        expired_keys: keyspace.stats().expired_keys,
        changes: keyspace.stats().changes,
        offload_cycles: shard.offload.borrow().cycles(),
        gpu_cache: shard.inference.device_rows_stats(),
        tinylfu_window: crate::stats::TinyLfuWindow::of(keyspace.admission_window()),
    }
}

/// Runs a cross-shard command for `client`, writing the reply into `out`.
pub async fn run(
    op: ServerOp,
    shard: &Rc<Shard>,
    client: &mut Client,
    args: &[&[u8]],
    out: &mut ReplySink,
) -> CommandResult {
    let hold = client.hold;
    match op {
        ServerOp::DbSize => {
            let total: i64 = broadcast(shard, hold, AdminRequest::DbSize { db: client.db })
                .await
                .iter()
                .map(integer)
                .sum();
            out.integer(total);
        }
        ServerOp::FlushDb | ServerOp::FlushAll => {
            if args.len() > 2 || (args.len() == 2 && !is(args[1], "ASYNC") && !is(args[1], "SYNC"))
            {
                return Err(errors::SYNTAX.into());
            }
            // ASYNC, or neither and `lazyfree-lazy-user-flush yes`: the keys are freed in the
            // background (crate::lazyfree), unless `maxmemory` is set.
            let lazy = {
                let config = shard.config.borrow();
                let asked = match args.get(1) {
                    Some(mode) => is(mode, "ASYNC"),
                    None => config.lazyfree_lazy_user_flush,
                };
                crate::lazyfree::lazy(&config, asked)
            };
            let request = if op == ServerOp::FlushDb {
                AdminRequest::FlushDb {
                    db: client.db,
                    lazy,
                }
            } else {
                AdminRequest::FlushAll { lazy }
            };
            broadcast_logged(shard, hold, request, client.db, args).await;
            // With `save` points set, the emptied dataset is saved at once, as Redis does.
            if op == ServerOp::FlushAll
                && crate::persistence::has_save_points(&shard.config.borrow())
            {
                crate::persistence::wait_for_save(shard).await;
                let _ = crate::persistence::save(shard, hold).await;
            }
            out.ok();
        }
        ServerOp::SwapDb => {
            let first = parse_integer(args[1])
                .map_err(|_| CommandError::from("ERR invalid first DB index"))?;
            let second = parse_integer(args[2])
                .map_err(|_| CommandError::from("ERR invalid second DB index"))?;
            let in_range = |index: i64| index >= 0 && (index as usize) < DATABASE_COUNT;
            if !in_range(first) || !in_range(second) {
                return Err(errors::DB_INDEX.into());
            }
            broadcast_logged(
                shard,
                hold,
                AdminRequest::SwapDb {
                    first: first as usize,
                    second: second as usize,
                },
                client.db,
                args,
            )
            .await;
            out.ok();
        }
        ServerOp::Keys => {
            let mut keys = Vec::new();
            for reply in broadcast(
                shard,
                hold,
                AdminRequest::Keys {
                    db: client.db,
                    pattern: args[1].to_vec(),
                },
            )
            .await
            {
                if let ShardReply::Keys(found) = reply {
                    keys.extend(found);
                }
            }
            out.array_len(keys.len());
            for key in &keys {
                out.bulk(key);
            }
        }
        ServerOp::Scan => scan(shard, client, args, out).await?,
        ServerOp::RandomKey => {
            let start = rand::random::<usize>() % shard.count();
            for offset in 0..shard.count() {
                let index = (start + offset) % shard.count();
                if let ShardReply::Keys(keys) = admin_on(
                    shard,
                    hold,
                    index,
                    AdminRequest::RandomKey { db: client.db },
                )
                .await
                {
                    if let Some(key) = keys.first() {
                        out.bulk(key);
                        return Ok(());
                    }
                }
            }
            out.null();
        }
        ServerOp::Info => info(shard, hold, args, out).await,
        ServerOp::Config => config(shard, client, args, out).await?,
        ServerOp::Client => client_command(shard, client, args, out).await?,
        ServerOp::Slowlog => slowlog(shard, hold, args, out).await?,
        ServerOp::Latency => latency(shard, hold, args, out).await?,
        ServerOp::Hotkeys => crate::commands::hotkeys::run(shard, hold, args, out).await?,
        ServerOp::Shutdown => shutdown(shard, client, args).await?,
        ServerOp::Save => {
            crate::persistence::save(shard, hold)
                .await
                .map_err(|error| format!("ERR {error}"))?;
            out.ok();
        }
        ServerOp::BgSave => {
            let schedule = match args {
                [_] => false,
                [_, option] if is(option, "SCHEDULE") => true,
                _ => return Err(errors::SYNTAX.into()),
            };
            match crate::persistence::background_save(shard, hold, schedule)
                .await
                .map_err(|error| format!("ERR {error}"))?
            {
                crate::persistence::Background::Started => {
                    out.simple(b"Background saving started");
                }
                crate::persistence::Background::Scheduled => {
                    out.simple(b"Background saving scheduled");
                }
            }
        }
        ServerOp::BgRewriteAof => {
            match crate::aof::rewrite(shard, hold)
                .await
                .map_err(|error| format!("ERR {error}"))?
            {
                crate::aof::Rewrite::Started => {
                    out.simple(b"Background append only file rewriting started");
                }
                crate::aof::Rewrite::Scheduled => {
                    out.simple(b"Background append only file rewriting scheduled");
                }
            }
        }
        ServerOp::Wait => {
            let replicas = parse_integer(args[1])?;
            let timeout = crate::commands::blocking::parse_timeout_ms(args[2])?;
            crate::commands::blocking::wait_for_replicas(shard, client, replicas, timeout).await?;
            out.integer(0);
        }
        ServerOp::WaitAof => {
            let local = parse_integer(args[1])?;
            if !(0..=1).contains(&local) {
                return Err("ERR value is out of range, value must between 0 and 1".into());
            }
            let replicas = parse_integer(args[2])?;
            if replicas < 0 {
                return Err(crate::commands::lists::COUNT_NOT_POSITIVE.into());
            }
            let timeout = crate::commands::blocking::parse_timeout_ms(args[3])?;
            if local == 1 && !crate::aof::on() {
                return Err(
                    "ERR WAITAOF cannot be used when numlocal is set but appendonly is disabled."
                        .into(),
                );
            }
            // Everything this client wrote is in the log's buffer or file: synced now.
            let synced = crate::aof::on();
            if synced {
                crate::aof::write_and_sync();
            }
            crate::commands::blocking::wait_for_replicas(shard, client, replicas, timeout).await?;
            out.array_len(2);
            out.integer(i64::from(synced));
            out.integer(0);
        }
        ServerOp::Debug if args.len() == 3 && is(args[1], "OBJECT") => {
            debug_allowed(shard, client)?;
            debug_object(shard, client, args[2], out).await?;
        }
        ServerOp::Debug if args.len() == 2 && is(args[1], "LOADAOF") => {
            debug_allowed(shard, client)?;
            crate::aof::load_again(shard, hold).await?;
            out.ok();
        }
        ServerOp::Debug if args.len() >= 2 && is(args[1], "RELOAD") => {
            debug_allowed(shard, client)?;
            debug_reload(shard, hold, &args[2..]).await?;
            out.ok();
        }
        ServerOp::Debug => debug(shard, client, args, out)?,
        ServerOp::Memory => crate::commands::memory::run(shard, client, args, out).await?,
    }
    Ok(())
}

/// SHUTDOWN [NOSAVE | SAVE] [NOW] [FORCE] [ABORT]: saves first when asked to, or when `save`
/// points are set and NOSAVE is not given (a save under way is waited for), then exits. A failed
/// save keeps the server running unless FORCE. No shutdown ever waits for replicas (Ember has
/// none), so ABORT finds none in progress and NOW changes nothing.
async fn shutdown(shard: &Rc<Shard>, client: &Client, args: &[&[u8]]) -> CommandResult {
    let (mut save, mut no_save, mut force, mut abort, mut now) =
        (false, false, false, false, false);
    for option in &args[1..] {
        if is(option, "SAVE") {
            save = true;
        } else if is(option, "NOSAVE") {
            no_save = true;
        } else if is(option, "FORCE") {
            force = true;
        } else if is(option, "ABORT") {
            abort = true;
        } else if is(option, "NOW") {
            now = true;
        } else {
            return Err(errors::SYNTAX.into());
        }
    }
    if (save && no_save) || (abort && (save || no_save || force || now)) {
        return Err(errors::SYNTAX.into());
    }
    if abort {
        return Err("ERR No shutdown in progress.".into());
    }
    // The log first: written and synced whatever the options, as Redis flushes it.
    crate::aof::write_and_sync();
    let wanted = save || (!no_save && crate::persistence::has_save_points(&shard.config.borrow()));
    if wanted {
        crate::persistence::wait_for_save(shard).await;
        if let Err(error) = crate::persistence::save(shard, client.hold).await {
            eprintln!("ember: Error trying to save the DB, can't exit: {error}");
            if !force {
                return Err("ERR Errors trying to SHUTDOWN. Check logs.".into());
            }
        }
    }
    eprintln!(
        "ember: SHUTDOWN requested by client {}; exiting",
        client.handle.id
    );
    crate::runtime::stop_listening();
    std::process::exit(0);
}

/// DEBUG RELOAD [MERGE] [NOFLUSH] [NOSAVE]: saves the dataset to the RDB file (unless NOSAVE),
/// empties every database and the libraries (unless NOFLUSH) and loads the file again, as Redis
/// does to check that every value survives its encoding. With NOFLUSH a key or library also in
/// the file is an error, unless MERGE, where the file's replace them.
async fn debug_reload(
    shard: &Rc<Shard>,
    hold: Option<HoldToken>,
    options: &[&[u8]],
) -> CommandResult {
    let (mut save, mut flush, mut merge) = (true, true, false);
    for option in options {
        if is(option, "NOSAVE") {
            save = false;
        } else if is(option, "NOFLUSH") {
            flush = false;
        } else if is(option, "MERGE") {
            merge = true;
        } else {
            return Err(
                "ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.".into(),
            );
        }
    }
    if save {
        crate::persistence::wait_for_save(shard).await;
        crate::persistence::save(shard, hold)
            .await
            .map_err(|error| format!("ERR Error trying to save the DB: {error}"))?;
    }
    let mode = match (flush, merge) {
        (true, _) => crate::persistence::Reload::Flush,
        (false, false) => crate::persistence::Reload::Keep,
        (false, true) => crate::persistence::Reload::Merge,
    };
    let path = crate::persistence::file_path(&shard.config.borrow());
    crate::persistence::replace_dataset(shard, hold, Some(&path), mode)
        .await
        .map_err(|error| {
            eprintln!("ember: DEBUG RELOAD: {error}");
            CommandError::from("ERR Error trying to load the RDB dump, check server logs.")
        })
}

/// DEBUG OBJECT key: Redis's line about the value; Ember reports the encoding OBJECT ENCODING
/// gives (asked of the key's shard) and no address, LRU or serialized length.
async fn debug_object(
    shard: &Rc<Shard>,
    client: &Client,
    key: &[u8],
    out: &mut ReplySink,
) -> CommandResult {
    use crate::shard::router::{self, Route};
    let index = crate::commands::lookup(b"object").expect("OBJECT is in the table");
    let spec = &crate::commands::COMMANDS[index];
    let crate::commands::Handler::Keyspace(handler) = spec.handler else {
        unreachable!("OBJECT runs on the keyspace")
    };
    let args: [&[u8]; 3] = [b"OBJECT", b"ENCODING", key];
    let mut sink = ReplySink::values(client.protocol);
    // At a time before any TTL: Redis's DEBUG OBJECT finds a key whose TTL passed and that
    // nothing removed yet (its tests use that to see that a key is still stored); OBJECT only
    // peeks.
    const BEFORE_ANY_TTL_MS: u64 = 1;
    match router::route(shard, spec, &args) {
        Route::Remote(owner) => {
            crate::commands::multikey::run_remote_at(
                shard,
                client,
                owner,
                &args,
                std::num::NonZeroU64::new(BEFORE_ANY_TTL_MS),
                &mut sink,
            )
            .await;
        }
        _ => crate::commands::multikey::run_local(
            shard,
            handler,
            client,
            BEFORE_ANY_TTL_MS,
            &args,
            &mut sink,
        )?,
    }
    match sink.into_reply() {
        ember_resp::Reply::Bulk(encoding) => {
            let line = format!(
                "Value at:0x0 refcount:1 encoding:{} serializedlength:0 lru:0 lru_seconds_idle:0",
                String::from_utf8_lossy(&encoding)
            );
            out.simple(line.as_bytes());
            Ok(())
        }
        _ => Err(errors::NO_SUCH_KEY.into()),
    }
}

fn integer(reply: &ShardReply) -> i64 {
    match reply {
        ShardReply::Integer(value) => *value,
        _ => 0,
    }
}

/// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]. The cursor is
/// `shard * SEGMENT_COUNT + segment`; segments never move, so it stays valid while keys come
/// and go.
async fn scan(
    shard: &Rc<Shard>,
    client: &Client,
    args: &[&[u8]],
    out: &mut ReplySink,
) -> CommandResult {
    let hold = client.hold;
    let cursor = parse_cursor(args[1]).ok_or(CommandError::from("ERR invalid cursor"))?;
    let (mut pattern, mut count, mut type_name) = (None, 10usize, None);
    let mut index = 2;
    while index < args.len() {
        let value = args
            .get(index + 1)
            .ok_or(CommandError::from(errors::SYNTAX))?;
        if is(args[index], "MATCH") {
            pattern = (*value != b"*").then(|| value.to_vec());
        } else if is(args[index], "COUNT") {
            let parsed = parse_integer(value)?;
            if parsed < 1 {
                return Err(errors::SYNTAX.into());
            }
            count = parsed as usize;
        } else if is(args[index], "TYPE") {
            type_name = Some(value.to_vec());
        } else {
            return Err(errors::SYNTAX.into());
        }
        index += 2;
    }
    let positions = (shard.count() * SEGMENT_COUNT) as u64;
    let mut position = if cursor >= positions {
        positions
    } else {
        cursor
    };
    let mut keys = Vec::new();
    // Skip empty stretches within one call, but never walk more than a bounded number of steps.
    const STEPS_MAX: usize = 16;
    for _ in 0..STEPS_MAX {
        if position >= positions {
            break;
        }
        let (owner, segment) = (
            (position as usize) / SEGMENT_COUNT,
            (position as usize) % SEGMENT_COUNT,
        );
        let request = AdminRequest::Scan {
            db: client.db,
            segment,
            count,
            pattern: pattern.clone(),
            type_name: type_name.clone(),
        };
        let ShardReply::Scan {
            keys: found,
            next_segment,
        } = admin_on(shard, hold, owner, request).await
        else {
            return Err("ERR scan failed".into());
        };
        keys.extend(found);
        position = match next_segment {
            Some(next) => (owner * SEGMENT_COUNT + next) as u64,
            None => ((owner + 1) * SEGMENT_COUNT) as u64,
        };
        if !keys.is_empty() {
            break;
        }
    }
    let next_cursor = if position >= positions { 0 } else { position };
    out.array_len(2);
    out.bulk(next_cursor.to_string().as_bytes());
    out.array_len(keys.len());
    for key in &keys {
        out.bulk(key);
    }
    Ok(())
}

/// A SCAN cursor as Redis reads it (`strtoul`): an optional sign, then digits; a negative
/// cursor wraps around, as in C, and lands past the end.
fn parse_cursor(arg: &[u8]) -> Option<u64> {
    let (negative, digits) = match arg.first() {
        Some(b'-') => (true, &arg[1..]),
        Some(b'+') => (false, &arg[1..]),
        _ => (false, arg),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let magnitude: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(if negative {
        magnitude.wrapping_neg()
    } else {
        magnitude
    })
}

/// Figures of every shard, added up.
pub async fn gather_info(
    shard: &Rc<Shard>,
    hold: Option<HoldToken>,
) -> (ShardInfo, Vec<ShardInfo>) {
    let mut total = ShardInfo {
        databases: vec![(0, 0); DATABASE_COUNT],
        table_bytes: vec![(0, 0); DATABASE_COUNT],
        ..ShardInfo::default()
    };
    let mut per_shard = Vec::new();
    for reply in broadcast(shard, hold, AdminRequest::Info).await {
        let ShardReply::Info(info) = reply else {
            continue;
        };
        total.counters.add(&info.counters);
        for (sum, (keys, expires)) in total.databases.iter_mut().zip(&info.databases) {
            sum.0 += keys;
            sum.1 += expires;
        }
        for (name, stat) in &info.commands {
            match total.commands.get_mut(name) {
                Some(existing) => existing.merge(stat),
                None => {
                    total.commands.insert(name, stat.clone());
                }
            }
        }
        for (code, count) in &info.errors {
            *total.errors.entry(code.clone()).or_insert(0) += count;
        }
        for (sum, (main, expires)) in total.table_bytes.iter_mut().zip(&info.table_bytes) {
            sum.0 += main;
            sum.1 += expires;
        }
        total.lua_bytes += info.lua_bytes;
        total.library_lua_bytes += info.library_lua_bytes;
        total.clients += info.clients;
        total.busy_us += info.busy_us;
        total.expired_keys += info.expired_keys;
        total.changes += info.changes;
        total.offload_cycles += info.offload_cycles;
        total.gpu_cache.add(&info.gpu_cache);
        total.tinylfu_window.add(&info.tinylfu_window);
        per_shard.push(*info);
    }
    (total, per_shard)
}

/// Bytes the allocator reports as allocated (Redis's used_memory).
pub fn used_memory_bytes() -> u64 {
    crate::memory::allocated_bytes()
}

/// Redis's human-readable byte counts (`1.50M`).
pub fn human_bytes(bytes: u64) -> String {
    let units = [("G", 1u64 << 30), ("M", 1 << 20), ("K", 1 << 10)];
    for (suffix, size) in units {
        if bytes >= size {
            return format!("{:.2}{suffix}", bytes as f64 / size as f64);
        }
    }
    format!("{bytes}B")
}

const DEFAULT_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "errorstats",
    "cluster",
    "keyspace",
    "protection",
    "ember",
    "gpu",
];
const ALL_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "commandstats",
    "errorstats",
    "latencystats",
    "cluster",
    "keyspace",
    "protection",
    "ember",
    "gpu",
];

async fn info(shard: &Rc<Shard>, hold: Option<HoldToken>, args: &[&[u8]], out: &mut ReplySink) {
    let requested: Vec<String> = args[1..]
        .iter()
        .map(|a| String::from_utf8_lossy(a).to_ascii_lowercase())
        .collect();
    // Redis's union of what each argument names: `default`, `all`/`everything`, or a section;
    // each section once, in Redis's order.
    let wanted = |section: &str| {
        requested.iter().any(|name| match name.as_str() {
            "default" => DEFAULT_SECTIONS.contains(&section),
            "all" | "everything" => true,
            name => name == section,
        })
    };
    let sections: Vec<&str> = ALL_SECTIONS
        .iter()
        .copied()
        .filter(|section| {
            if requested.is_empty() {
                DEFAULT_SECTIONS.contains(section)
            } else {
                wanted(section)
            }
        })
        .collect();
    // used_memory is read before the shards' figures are gathered: their copies of every
    // command's latency histogram (~28 KB each) are INFO's own, and counted 3x a command's
    // cost into the figure when read after.
    let used_memory = sections
        .contains(&"memory")
        .then(|| crate::memory::GAUGE.refresh());
    let (total, per_shard) = gather_info(shard, hold).await;
    let mut text = format_info(shard, &sections, &total, &per_shard, used_memory);
    if sections.contains(&"stats") {
        // Pub/Sub figures count names over every shard, so they are asked for apart.
        let lines = crate::commands::pubsub::info_lines(shard).await;
        if let Some(at) = text
            .find("tracking_total_keys:")
            .or_else(|| text.find("total_error_replies:"))
        {
            text.insert_str(at, &lines);
        }
    }
    out.verbatim(text.as_bytes());
}

fn format_info(
    shard: &Shard,
    sections: &[&str],
    total: &ShardInfo,
    per_shard: &[ShardInfo],
    used_memory: Option<u64>,
) -> String {
    let config = shard.config.borrow();
    let shared = &shard.shared;
    let now_s = crate::stats::unix_time_ms() / 1000;
    let mut text = String::new();
    let counters: Counters = total.counters;
    for section in sections {
        if !text.is_empty() {
            text.push_str("\r\n");
        }
        let title = match *section {
            "commandstats" => "Commandstats".to_string(),
            "errorstats" => "Errorstats".to_string(),
            "latencystats" => "Latencystats".to_string(),
            "gpu" => "GPU".to_string(),
            other => {
                let mut chars = other.chars();
                chars
                    .next()
                    .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                    .unwrap_or_default()
            }
        };
        let _ = write!(text, "# {title}\r\n");
        let mut line = |key: &str, value: String| {
            let _ = write!(text, "{key}:{value}\r\n");
        };
        match *section {
            "server" => {
                line("redis_version", "7.2.4".into());
                line("redis_mode", "standalone".into());
                line("ember_version", env!("CARGO_PKG_VERSION").into());
                line(
                    "os",
                    format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
                );
                line("arch_bits", (usize::BITS).to_string());
                line("multiplexing_api", "io_uring".into());
                line("process_id", std::process::id().to_string());
                line(
                    "tcp_port",
                    shared
                        .port
                        .load(std::sync::atomic::Ordering::Relaxed)
                        .to_string(),
                );
                line(
                    "uptime_in_seconds",
                    now_s.saturating_sub(shared.started_at_s).to_string(),
                );
                line(
                    "uptime_in_days",
                    (now_s.saturating_sub(shared.started_at_s) / 86400).to_string(),
                );
                line("hz", config.hz.to_string());
                line(
                    "executable",
                    std::env::current_exe()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default(),
                );
            }
            "clients" => {
                line("connected_clients", total.clients.to_string());
                line("maxclients", config.maxclients.to_string());
                line(
                    "blocked_clients",
                    shard
                        .shared
                        .blocked_clients
                        .load(std::sync::atomic::Ordering::Relaxed)
                        .to_string(),
                );
                let [tracking_clients, ..] = crate::commands::tracking::info_figures(shard);
                line("tracking_clients", tracking_clients.to_string());
            }
            "memory" => {
                let gauge = &crate::memory::GAUGE;
                let used = used_memory.unwrap_or_else(|| gauge.refresh());
                let figures = crate::commands::memory::Figures::gather(shard, total, used);
                line("used_memory", used.to_string());
                line("used_memory_human", human_bytes(used));
                line("used_memory_rss", figures.rss.to_string());
                line("used_memory_rss_human", human_bytes(figures.rss));
                let peak = gauge.peak_bytes();
                line("used_memory_peak", peak.to_string());
                line("used_memory_peak_human", human_bytes(peak));
                line(
                    "used_memory_peak_perc",
                    format!("{:.2}%", used as f64 * 100.0 / peak.max(1) as f64),
                );
                line("used_memory_overhead", figures.overhead().to_string());
                line("used_memory_startup", figures.startup.to_string());
                line("used_memory_dataset", figures.dataset().to_string());
                line(
                    "used_memory_dataset_perc",
                    format!("{:.2}%", figures.dataset_percentage()),
                );
                line(
                    "allocator_allocated",
                    figures.allocator.allocated.to_string(),
                );
                line("allocator_active", figures.allocator.active.to_string());
                line("allocator_resident", figures.allocator.resident.to_string());
                let system = crate::commands::memory::total_system_memory();
                line("total_system_memory", system.to_string());
                line("total_system_memory_human", human_bytes(system));
                // Each shard has an interpreter for scripts and one for function libraries,
                // as Redis 7 has one of each.
                line("used_memory_lua", figures.lua.to_string());
                line("used_memory_vm_eval", figures.lua.to_string());
                line("used_memory_lua_human", human_bytes(figures.lua));
                line("used_memory_scripts_eval", figures.scripts.to_string());
                let scripts = &shard.shared.scripts;
                line("number_of_cached_scripts", scripts.cached().to_string());
                let (libraries, functions) =
                    scripts.libraries.read().expect("libraries lock").counts();
                line("number_of_functions", functions.to_string());
                line("number_of_libraries", libraries.to_string());
                line("used_memory_vm_functions", figures.library_lua.to_string());
                let vm_total = figures.lua + figures.library_lua;
                line("used_memory_vm_total", vm_total.to_string());
                line("used_memory_vm_total_human", human_bytes(vm_total));
                line("used_memory_functions", figures.functions.to_string());
                let script_bytes = figures.scripts + figures.functions;
                line("used_memory_scripts", script_bytes.to_string());
                line("used_memory_scripts_human", human_bytes(script_bytes));
                line("maxmemory", config.maxmemory.to_string());
                line("maxmemory_human", human_bytes(config.maxmemory));
                line("maxmemory_policy", config.maxmemory_policy.clone());
                let names = [
                    ("allocator_frag_ratio", "allocator_frag_bytes"),
                    ("allocator_rss_ratio", "allocator_rss_bytes"),
                    ("rss_overhead_ratio", "rss_overhead_bytes"),
                    ("mem_fragmentation_ratio", "mem_fragmentation_bytes"),
                ];
                for ((ratio, bytes), (ratio_name, bytes_name)) in
                    figures.fragmentation().into_iter().zip(names)
                {
                    line(ratio_name, format!("{ratio:.2}"));
                    line(bytes_name, bytes.to_string());
                }
                // No AOF or replication buffers: eviction counts every byte.
                line("mem_not_counted_for_evict", "0".into());
                line("mem_replication_backlog", "0".into());
                line("mem_total_replication_buffers", "0".into());
                line("mem_clients_slaves", "0".into());
                line("mem_clients_normal", figures.clients.to_string());
                line("mem_cluster_links", "0".into());
                line("mem_aof_buffer", "0".into());
                line("mem_allocator", crate::commands::memory::allocator_name());
                line("active_defrag_running", "0".into());
                line(
                    "lazyfree_pending_objects",
                    crate::lazyfree::pending_objects().to_string(),
                );
                line(
                    "lazyfreed_objects",
                    crate::lazyfree::freed_objects().to_string(),
                );
            }
            "persistence" => {
                for (name, value) in shared.persistence.info_lines(total.changes) {
                    line(name, value);
                }
                for (name, value) in crate::aof::info_lines() {
                    line(name, value);
                }
            }
            "stats" => {
                line(
                    "total_connections_received",
                    counters.connections_received.to_string(),
                );
                line(
                    "total_commands_processed",
                    counters.commands_processed.to_string(),
                );
                line(
                    "total_net_input_bytes",
                    counters.net_input_bytes.to_string(),
                );
                line(
                    "total_net_output_bytes",
                    counters.net_output_bytes.to_string(),
                );
                line(
                    "rejected_connections",
                    counters.rejected_connections.to_string(),
                );
                line("expired_keys", total.expired_keys.to_string());
                line("evicted_keys", counters.evicted_keys.to_string());
                line(
                    "lazyfreed_objects",
                    crate::lazyfree::freed_objects().to_string(),
                );
                line(
                    "evicted_clients",
                    crate::limits::evicted_clients().to_string(),
                );
                line("keyspace_hits", counters.keyspace_hits.to_string());
                line("keyspace_misses", counters.keyspace_misses.to_string());
                line(
                    "migrate_cached_sockets",
                    crate::commands::migrate::cached_links().to_string(),
                );
                let [_, keys, items, prefixes] = crate::commands::tracking::info_figures(shard);
                line("tracking_total_keys", keys.to_string());
                line("tracking_total_items", items.to_string());
                line("tracking_total_prefixes", prefixes.to_string());
                line("total_error_replies", counters.error_replies.to_string());
                // allkeys-tinylfu's admission window: new keys eviction does not touch yet,
                // and the share of the keys the hill climber gives it (0 under other policies).
                let window = &total.tinylfu_window;
                line("tinylfu_window_keys", window.keys.to_string());
                line("tinylfu_window_candidates", window.candidates.to_string());
                line("tinylfu_window_share", format!("{:.4}", window.share()));
            }
            "replication" => {
                line("role", "master".into());
                line("connected_slaves", "0".into());
                // No replication: Redis's figures of a master without replicas. The id is
                // the process's own (its start and pid), stable while it runs.
                line("master_failover_state", "no-failover".into());
                let id = format!("{}-{}", shared.started_at_s, std::process::id());
                line("master_replid", crate::scripting::sha1::hex(id.as_bytes()));
                line("master_replid2", "0".repeat(40));
                line("master_repl_offset", "0".into());
                line("second_repl_offset", "-1".into());
                line("repl_backlog_active", "0".into());
                line("repl_backlog_size", "1048576".into());
                line("repl_backlog_first_byte_offset", "0".into());
                line("repl_backlog_histlen", "0".into());
            }
            "cpu" => {
                let (user, system) = process_cpu_seconds();
                line("used_cpu_sys", format!("{system:.6}"));
                line("used_cpu_user", format!("{user:.6}"));
            }
            "modules" => {}
            "commandstats" => {
                for (name, stat) in &total.commands {
                    line(
                        &format!("cmdstat_{name}"),
                        format!(
                            "calls={},usec={},usec_per_call={:.2},rejected_calls={},failed_calls={}",
                            stat.calls,
                            stat.usec,
                            stat.usec as f64 / stat.calls.max(1) as f64,
                            stat.rejected_calls,
                            stat.failed_calls
                        ),
                    );
                }
            }
            "errorstats" => {
                for (code, count) in &total.errors {
                    line(&format!("errorstat_{code}"), format!("count={count}"));
                }
            }
            "latencystats" => {
                for (name, stat) in &total.commands {
                    if stat.calls == 0 {
                        continue;
                    }
                    let histogram = &stat.latency_us;
                    line(
                        &format!("latency_percentiles_usec_{name}"),
                        format!(
                            "p50={:.3},p99={:.3},p99.9={:.3}",
                            histogram.value_at_quantile(0.5) as f64,
                            histogram.value_at_quantile(0.99) as f64,
                            histogram.value_at_quantile(0.999) as f64
                        ),
                    );
                }
            }
            "cluster" => line("cluster_enabled", "0".into()),
            "keyspace" => {
                for (db, (keys, expires)) in total.databases.iter().enumerate() {
                    if *keys > 0 {
                        line(
                            &format!("db{db}"),
                            format!("keys={keys},expires={expires},avg_ttl=0"),
                        );
                    }
                }
            }
            "protection" => {
                for (name, value) in shared.protection.counters.info_lines() {
                    line(name, value.to_string());
                }
            }
            "ember" => {
                line("shards", shared.shard_count.to_string());
                line("busy_poll_us", config.busy_poll_us.to_string());
                line("cross_shard_hops", counters.cross_shard_hops.to_string());
                line("local_tier_hits", counters.local_tier_hits.to_string());
                line("local_tier_copies", counters.local_tier_copies.to_string());
                line("offload", shard.offload.borrow().name().to_string());
                line("offload_cycles", total.offload_cycles.to_string());
                for (index, info) in per_shard.iter().enumerate() {
                    line(
                        &format!("shard{index}"),
                        format!(
                            "clients={},commands={},busy_us={},keys={}",
                            info.clients,
                            info.counters.commands_processed,
                            info.busy_us,
                            info.databases.iter().map(|d| d.0).sum::<usize>()
                        ),
                    );
                }
                line("hardware", shared.hardware.clone());
            }
            // The GPU embedding cache of RECOMMEND on the native backend, over every shard (zero until a
            // RECOMMEND starts it; see `inference::device_rows`).
            "gpu" => {
                for (name, value) in total.gpu_cache.info_lines() {
                    line(name, value);
                }
            }
            _ => {}
        }
    }
    text
}

/// (user, system) CPU seconds of this process, from /proc/self/stat.
pub fn process_cpu_seconds() -> (f64, f64) {
    let ticks_per_second = 100.0; // USER_HZ on Linux.
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|text| {
            let after_name = &text[text.rfind(')')? + 2..];
            let fields: Vec<&str> = after_name.split_whitespace().collect();
            Some((
                fields.get(11)?.parse::<f64>().ok()? / ticks_per_second,
                fields.get(12)?.parse::<f64>().ok()? / ticks_per_second,
            ))
        })
        .unwrap_or((0.0, 0.0))
}

const CONFIG_HELP: &[&str] = &[
    "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET <pattern>",
    "    Return parameters matching the glob-like <pattern> and their values.",
    "SET <directive> <value>",
    "    Set the configuration <directive> to <value>.",
    "RESETSTAT",
    "    Reset statistics reported by the INFO command.",
    "REWRITE",
    "    Rewrite the configuration file.",
    "HELP",
    "    Print this help.",
];

async fn config(
    shard: &Rc<Shard>,
    client: &Client,
    args: &[&[u8]],
    out: &mut ReplySink,
) -> CommandResult {
    let hold = client.hold;
    let subcommand = args[1];
    if is(subcommand, "GET") && args.len() >= 3 {
        let config = shard.config.borrow();
        let mut pairs = Vec::new();
        for pattern in &args[2..] {
            for pair in config.get_matching(&String::from_utf8_lossy(pattern)) {
                if !pairs.iter().any(|(name, _)| *name == pair.0) {
                    pairs.push(pair);
                }
            }
        }
        out.map_len(pairs.len());
        for (name, value) in pairs {
            out.bulk(name.as_bytes());
            out.bulk(value.as_bytes());
        }
    } else if is(subcommand, "SET") && args.len() >= 4 && args.len() % 2 == 0 {
        let mut pairs = Vec::new();
        let mut trial = shard.config.borrow().clone();
        let mut seen = Vec::new();
        for pair in args[2..].chunks_exact(2) {
            let (name, value) = (
                String::from_utf8_lossy(pair[0]).into_owned(),
                String::from_utf8_lossy(pair[1]).into_owned(),
            );
            if let Some(canonical) = crate::config::Config::canonical_name(&name) {
                if seen.contains(&canonical) {
                    return Err(format!(
                        "ERR CONFIG SET failed (possibly related to argument '{name}') - duplicate parameter"
                    )
                    .into());
                }
                seen.push(canonical);
            }
            trial
                .set(&name, &value)
                .map_err(|error| CommandError::from(error.0))?;
            pairs.push((name, value));
        }
        // New TLS settings apply to the next TLS connections, once they load (crate::tls).
        if let Some((name, _)) = pairs.iter().find(|(name, _)| crate::tls::is_setting(name)) {
            if let Err(why) = crate::tls::reconfigure(&trial) {
                eprintln!("ember: CONFIG SET: {why}");
                return Err(format!("ERR CONFIG SET failed (possibly related to argument '{name}') - Unable to update TLS configuration. Check server logs.").into());
            }
        }
        let appendonly = pairs
            .iter()
            .rev()
            .find(|(name, _)| name.eq_ignore_ascii_case("appendonly"))
            .map(|(_, value)| value.eq_ignore_ascii_case("yes"));
        broadcast(shard, hold, AdminRequest::ConfigSet { pairs }).await;
        crate::aof::configure(&shard.config.borrow());
        match appendonly {
            Some(true) if !crate::aof::on() => {
                if let Err(why) = crate::aof::begin(shard, hold).await {
                    eprintln!("ember: CONFIG SET appendonly yes: {why}");
                    return Err("ERR CONFIG SET failed (possibly related to argument 'appendonly') - Unable to turn on AOF. Check server logs.".into());
                }
            }
            Some(false) if crate::aof::on() => crate::aof::stop(),
            _ => {}
        }
        out.ok();
    } else if is(subcommand, "RESETSTAT") && args.len() == 2 {
        broadcast(shard, hold, AdminRequest::ResetStats).await;
        out.ok();
    } else if is(subcommand, "REWRITE") && args.len() == 2 {
        return Err("ERR The server is running without a config file".into());
    } else if is(subcommand, "HELP") && args.len() == 2 {
        help(out, CONFIG_HELP);
    } else {
        let known = ["GET", "SET", "RESETSTAT", "REWRITE", "HELP"];
        return Err(misused_subcommand("config", &known, subcommand));
    }
    Ok(())
}

pub(crate) fn help(out: &mut ReplySink, lines: &[&str]) {
    out.array_len(lines.len());
    for line in lines {
        out.simple(line.as_bytes());
    }
}

const CLIENT_HELP: &[&str] = &[
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are: ID, ADDR, LADDR, SKIPME.",
    "UNBLOCK <clientid> [TIMEOUT|ERROR]",
    "    Unblock the specified blocked client.",
    "PAUSE <timeout> [WRITE|ALL]",
    "    Suspend all, or just write, clients for <timeout> milliseconds.",
    "UNPAUSE",
    "    Stop the current client pause, resuming traffic.",
    "LIST [options ...]",
    "    Return information about client connections.",
    "GETNAME",
    "    Return the name of the current connection.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "SETINFO <option> <value>",
    "    Set client meta attr. Options are: LIB-NAME, LIB-VER.",
    "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
    "         [OPTIN] [OPTOUT] [NOLOOP]",
    "    Control server assisted client side caching.",
    "TRACKINGINFO",
    "    Report tracking status for the current connection.",
    "CACHING (YES|NO)",
    "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
    "GETREDIR",
    "    Return the client ID we are redirecting to when tracking is enabled.",
    "REPLY (ON|OFF|SKIP)",
    "    Control the replies sent to the current connection.",
    "NO-EVICT (ON|OFF)",
    "    Protect current client connection from eviction.",
    "NO-TOUCH (ON|OFF)",
    "    Will not touch LRU/LFU stats when this mode is on.",
    "HELP",
    "    Print this help.",
];

fn on_off(arg: &[u8]) -> Result<bool, CommandError> {
    if is(arg, "ON") {
        Ok(true)
    } else if is(arg, "OFF") {
        Ok(false)
    } else {
        Err(errors::SYNTAX.into())
    }
}

async fn client_command(
    shard: &Rc<Shard>,
    client: &mut Client,
    args: &[&[u8]],
    out: &mut ReplySink,
) -> CommandResult {
    let hold = client.hold;
    let subcommand = args[1];
    let handle = client.handle.clone();
    let wrong_arity = || subcommand_arity_error("client", subcommand);
    if is(subcommand, "ID") {
        if args.len() != 2 {
            return Err(wrong_arity());
        }
        out.integer(handle.id as i64);
    } else if is(subcommand, "SETNAME") {
        if args.len() != 3 {
            return Err(wrong_arity());
        }
        validate_client_name(args[2])?;
        *handle.name.borrow_mut() = String::from_utf8_lossy(args[2]).into_owned();
        out.ok();
    } else if is(subcommand, "GETNAME") {
        if args.len() != 2 {
            return Err(wrong_arity());
        }
        let name = handle.name.borrow();
        if name.is_empty() {
            out.null();
        } else {
            out.bulk(name.as_bytes());
        }
    } else if is(subcommand, "SETINFO") {
        if args.len() != 4 {
            return Err(wrong_arity());
        }
        let value = String::from_utf8_lossy(args[3]).into_owned();
        if value.contains(|c: char| !c.is_ascii_graphic()) {
            return Err(format!(
                "ERR {} cannot contain spaces, newlines or special characters.",
                String::from_utf8_lossy(args[2]).to_ascii_lowercase()
            )
            .into());
        }
        if is(args[2], "LIB-NAME") {
            *handle.lib_name.borrow_mut() = value;
        } else if is(args[2], "LIB-VER") {
            *handle.lib_ver.borrow_mut() = value;
        } else {
            return Err(format!(
                "ERR Unrecognized option '{}'",
                String::from_utf8_lossy(args[2])
            )
            .into());
        }
        out.ok();
    } else if is(subcommand, "INFO") {
        if args.len() != 2 {
            return Err(wrong_arity());
        }
        out.verbatim(format!("{}\n", handle.info_line()).as_bytes());
    } else if is(subcommand, "LIST") {
        let mut ids: Option<Vec<u64>> = None;
        let mut index = 2;
        while index < args.len() {
            if is(args[index], "TYPE") && index + 1 < args.len() {
                let kind = String::from_utf8_lossy(args[index + 1]).to_ascii_lowercase();
                if !["normal", "master", "replica", "slave", "pubsub"].contains(&kind.as_str()) {
                    return Err(format!("ERR Unknown client type '{kind}'").into());
                }
                if kind != "normal" {
                    ids = Some(Vec::new());
                }
                index += 2;
            } else if is(args[index], "ID") && index + 1 < args.len() {
                let mut wanted = Vec::new();
                index += 1;
                while index < args.len() {
                    let id = parse_integer(args[index])
                        .ok()
                        .filter(|id| *id > 0)
                        .ok_or(CommandError::from("ERR Invalid client ID"))?;
                    wanted.push(id as u64);
                    index += 1;
                }
                ids = Some(wanted);
            } else {
                return Err(errors::SYNTAX.into());
            }
        }
        let mut text = String::new();
        for reply in broadcast(shard, hold, AdminRequest::ClientList).await {
            if let ShardReply::Lines(lines) = reply {
                for line in lines {
                    let id: u64 = line
                        .split_whitespace()
                        .next()
                        .and_then(|f| f.strip_prefix("id="))
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    if ids.as_ref().is_none_or(|ids| ids.contains(&id)) {
                        text.push_str(&line);
                        text.push('\n');
                    }
                }
            }
        }
        out.verbatim(text.as_bytes());
    } else if is(subcommand, "KILL") {
        client_kill(shard, client, args, out).await?;
    } else if is(subcommand, "UNBLOCK") {
        let (client_id, kind) =
            crate::commands::blocking::parse_client_unblock(args).map_err(|error| {
                if error.0.is_empty() {
                    wrong_arity()
                } else {
                    error
                }
            })?;
        let unblocked: i64 =
            broadcast(shard, hold, AdminRequest::ClientUnblock { client_id, kind })
                .await
                .iter()
                .map(integer)
                .sum();
        out.integer(unblocked);
    } else if is(subcommand, "PAUSE") {
        if !(3..=4).contains(&args.len()) {
            return Err(wrong_arity());
        }
        let all = match args.get(3) {
            None => true,
            Some(mode) if is(mode, "ALL") => true,
            Some(mode) if is(mode, "WRITE") => false,
            Some(_) => return Err("ERR CLIENT PAUSE mode must be WRITE or ALL".into()),
        };
        let timeout_ms = parse_integer(args[2])
            .map_err(|_| CommandError::from("ERR timeout is not an integer or out of range"))?;
        if timeout_ms < 0 {
            return Err("ERR timeout is negative".into());
        }
        let now_ms = crate::stats::unix_time_ms();
        let until_ms = now_ms.saturating_add(timeout_ms as u64);
        let until_ms = shard.shared.pause.pause(now_ms, until_ms, all);
        ember_store::keyspace::pause_expiry_until(until_ms);
        out.ok();
    } else if is(subcommand, "UNPAUSE") {
        if args.len() != 2 {
            return Err(wrong_arity());
        }
        shard.shared.pause.unpause();
        ember_store::keyspace::pause_expiry_until(0);
        out.ok();
    } else if is(subcommand, "NO-EVICT") {
        if args.len() != 3 {
            return Err(wrong_arity());
        }
        client.no_evict = on_off(args[2])?;
        client.handle.limits.no_evict.set(client.no_evict);
        out.ok();
    } else if is(subcommand, "NO-TOUCH") {
        if args.len() != 3 {
            return Err(wrong_arity());
        }
        client.no_touch = on_off(args[2])?;
        out.ok();
    } else if is(subcommand, "REPLY") {
        if args.len() != 3 {
            return Err(wrong_arity());
        }
        if is(args[2], "ON") {
            client.reply_off = false;
            client.reply_skip_next = false;
            client.reply_skip_current = false;
            out.ok();
        } else if is(args[2], "OFF") {
            client.reply_off = true;
        } else if is(args[2], "SKIP") {
            client.reply_skip_next = !client.reply_off;
        } else {
            return Err(errors::SYNTAX.into());
        }
    } else if is(subcommand, "TRACKING") {
        if args.len() < 3 {
            return Err(wrong_arity());
        }
        crate::commands::tracking::client_tracking(shard, client, args, out).await?;
    } else if is(subcommand, "CACHING") {
        if args.len() != 3 {
            return Err(wrong_arity());
        }
        crate::commands::tracking::client_caching(client, args, out)?;
    } else if is(subcommand, "GETREDIR") {
        if args.len() != 2 {
            return Err(wrong_arity());
        }
        crate::commands::tracking::client_getredir(client, out);
    } else if is(subcommand, "TRACKINGINFO") {
        if args.len() != 2 {
            return Err(wrong_arity());
        }
        crate::commands::tracking::client_trackinginfo(client, out);
    } else if is(subcommand, "HELP") {
        help(out, CLIENT_HELP);
    } else {
        return Err(unknown_subcommand_message("client", subcommand).into());
    }
    Ok(())
}

async fn client_kill(
    shard: &Rc<Shard>,
    client: &Client,
    args: &[&[u8]],
    out: &mut ReplySink,
) -> CommandResult {
    let hold = client.hold;
    let legacy = args.len() == 3;
    let own_id = client.handle.id;
    let mut filter = KillFilter {
        requester_id: own_id,
        ..KillFilter::default()
    };
    if legacy {
        filter.addr = Some(String::from_utf8_lossy(args[2]).into_owned());
    } else {
        if args.len() < 3 {
            return Err("ERR wrong number of arguments for 'client|kill' command".into());
        }
        filter.skip_id = Some(own_id);
        // As Redis reads them: an option with no value after it is a syntax error.
        for pair in args[2..].chunks(2) {
            let [option, value] = pair else {
                return Err(errors::SYNTAX.into());
            };
            if is(option, "ID") {
                let id = parse_integer(value)
                    .ok()
                    .filter(|id| *id > 0)
                    .ok_or(CommandError::from("ERR client-id should be greater than 0"))?;
                filter.id = Some(id as u64);
            } else if is(option, "ADDR") {
                filter.addr = Some(String::from_utf8_lossy(value).into_owned());
            } else if is(option, "LADDR") {
                filter.laddr = Some(String::from_utf8_lossy(value).into_owned());
            } else if is(option, "SKIPME") {
                filter.skip_id = match value.to_ascii_lowercase().as_slice() {
                    b"yes" => Some(own_id),
                    b"no" => None,
                    _ => return Err(errors::SYNTAX.into()),
                };
            } else if is(option, "TYPE") {
                let client_type = ClientType::parse(value).ok_or_else(|| {
                    CommandError::from(format!(
                        "ERR Unknown client type '{}'",
                        String::from_utf8_lossy(value)
                    ))
                })?;
                filter.client_type = Some(client_type);
            } else if is(option, "USER") {
                if !shard.shared.acl.user_exists(value) {
                    return Err(
                        format!("ERR No such user '{}'", String::from_utf8_lossy(value)).into(),
                    );
                }
                filter.user = Some(String::from_utf8_lossy(value).into_owned());
            } else if is(option, "MAXAGE") {
                let max_age_s = parse_integer(value)?;
                // Redis 7.4's MAXAGE: a negative or zero age selects every connection.
                filter.max_age_s = Some(u64::try_from(max_age_s).unwrap_or(0));
            } else {
                return Err(errors::SYNTAX.into());
            }
        }
    }
    let killed: i64 = broadcast(shard, hold, AdminRequest::ClientKill { filter })
        .await
        .iter()
        .map(integer)
        .sum();
    if legacy {
        if killed == 0 {
            return Err("ERR No such client".into());
        }
        out.ok();
    } else {
        out.integer(killed);
    }
    Ok(())
}

async fn slowlog(
    shard: &Rc<Shard>,
    hold: Option<HoldToken>,
    args: &[&[u8]],
    out: &mut ReplySink,
) -> CommandResult {
    let subcommand = args[1];
    if is(subcommand, "GET") && args.len() <= 3 {
        let count = match args.get(2) {
            Some(arg) => {
                let count = parse_integer(arg)?;
                if count < -1 {
                    return Err("ERR count should be greater than or equal to -1".into());
                }
                count
            }
            None => 10,
        };
        let mut entries = Vec::new();
        for reply in broadcast(
            shard,
            hold,
            AdminRequest::Slowlog(SlowlogRequest::Get { count }),
        )
        .await
        {
            if let ShardReply::Slowlog(found) = reply {
                entries.extend(found);
            }
        }
        // Newest first: ids are one sequence over the shards.
        entries.sort_by_key(|entry| std::cmp::Reverse(entry.id));
        if count >= 0 {
            entries.truncate(count as usize);
        }
        out.array_len(entries.len());
        for entry in &entries {
            out.array_len(6);
            out.integer(entry.id as i64);
            out.integer(entry.timestamp_s as i64);
            out.integer(entry.duration_us as i64);
            out.array_len(entry.args.len());
            for arg in &entry.args {
                out.bulk(arg);
            }
            out.bulk(entry.client_addr.as_bytes());
            out.bulk(entry.client_name.as_bytes());
        }
    } else if is(subcommand, "LEN") && args.len() == 2 {
        let total: i64 = broadcast(shard, hold, AdminRequest::Slowlog(SlowlogRequest::Len))
            .await
            .iter()
            .map(integer)
            .sum();
        out.integer(total);
    } else if is(subcommand, "RESET") && args.len() == 2 {
        broadcast(shard, hold, AdminRequest::Slowlog(SlowlogRequest::Reset)).await;
        out.ok();
    } else if is(subcommand, "HELP") && args.len() == 2 {
        help(
            out,
            &[
                "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "GET [<count>]",
                "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
                "LEN",
                "    Return the length of the slowlog.",
                "RESET",
                "    Reset the slowlog.",
                "HELP",
                "    Print this help.",
            ],
        );
    } else {
        return Err(unknown_subcommand_message("slowlog", subcommand).into());
    }
    Ok(())
}

async fn latency(
    shard: &Rc<Shard>,
    hold: Option<HoldToken>,
    args: &[&[u8]],
    out: &mut ReplySink,
) -> CommandResult {
    let subcommand = args[1];
    if is(subcommand, "RESET") {
        let names: Vec<String> = args[2..]
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let mut reset = std::collections::BTreeSet::new();
        for reply in broadcast(
            shard,
            hold,
            AdminRequest::Latency(LatencyRequest::Reset(names)),
        )
        .await
        {
            if let ShardReply::Latency(events) = reply {
                reset.extend(events.into_iter().map(|event| event.name));
            }
        }
        out.integer(reset.len() as i64);
        return Ok(());
    }
    if is(subcommand, "HISTOGRAM") {
        return latency_histogram(shard, hold, &args[2..], out).await;
    }
    let mut merged: std::collections::BTreeMap<&'static str, (Vec<(u64, u64)>, u64)> =
        std::collections::BTreeMap::new();
    for reply in broadcast(shard, hold, AdminRequest::Latency(LatencyRequest::All)).await {
        if let ShardReply::Latency(events) = reply {
            for event in events {
                let entry = merged.entry(event.name).or_default();
                entry.0.extend(event.samples);
                entry.1 = entry.1.max(event.max_ms);
            }
        }
    }
    for (samples, _) in merged.values_mut() {
        samples.sort_unstable();
    }
    if is(subcommand, "LATEST") && args.len() == 2 {
        out.array_len(merged.len());
        for (name, (samples, max_ms)) in &merged {
            let (time, latest) = samples.last().copied().unwrap_or((0, 0));
            out.array_len(4);
            out.bulk(name.as_bytes());
            out.integer(time as i64);
            out.integer(latest as i64);
            out.integer(*max_ms as i64);
        }
    } else if is(subcommand, "DOCTOR") && args.len() == 2 {
        let threshold_ms = shard.config.borrow().latency_monitor_threshold_ms;
        out.verbatim(latency_report(&merged, threshold_ms).as_bytes());
    } else if is(subcommand, "HISTORY") && args.len() == 3 {
        let name = String::from_utf8_lossy(args[2]).into_owned();
        let samples = merged
            .get(name.as_str())
            .map(|(samples, _)| samples.clone())
            .unwrap_or_default();
        out.array_len(samples.len());
        for (time, value) in samples {
            out.array_len(2);
            out.integer(time as i64);
            out.integer(value as i64);
        }
    } else if is(subcommand, "HELP") && args.len() == 2 {
        help(
            out,
            &[
                "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "DOCTOR",
                "    Return a human readable latency analysis report.",
                "LATEST",
                "    Return the latest latency samples for all events.",
                "HISTORY <event>",
                "    Return timestamp-latency pairs for the event.",
                "RESET [<event> ...]",
                "    Reset latency data of one or more <event> classes.",
                "    (default: reset all data for all event classes)",
                "HISTOGRAM [COMMAND ...]",
                "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
                "    If no commands are specified then all histograms are replied.",
                "HELP",
                "    Print this help.",
            ],
        );
    } else {
        let known = ["LATEST", "DOCTOR", "HISTORY", "HELP", "GRAPH"];
        return Err(misused_subcommand("latency", &known, subcommand));
    }
    Ok(())
}

/// LATENCY DOCTOR's report: each event's spikes (count, average, worst, latest) and what
/// usually causes them.
fn latency_report(
    events: &std::collections::BTreeMap<&'static str, (Vec<(u64, u64)>, u64)>,
    threshold_ms: u64,
) -> String {
    use std::fmt::Write;
    if threshold_ms == 0 {
        return "The latency monitor is off (latency-monitor-threshold is 0): set it to a number \
                of milliseconds, for example CONFIG SET latency-monitor-threshold 100, to record \
                events that take longer.\n"
            .to_owned();
    }
    if events.is_empty() {
        return format!(
            "No event took {threshold_ms} ms or more (latency-monitor-threshold) since the \
             monitor started or was last reset.\n"
        );
    }
    let mut report =
        format!("Events that took {threshold_ms} ms or more (latency-monitor-threshold):\n\n");
    for (position, (name, (samples, max_ms))) in events.iter().enumerate() {
        let count = samples.len().max(1) as u64;
        let average = samples.iter().map(|(_, ms)| ms).sum::<u64>() / count;
        let (time, latest) = samples.last().copied().unwrap_or((0, 0));
        let _ = writeln!(
            report,
            "{}. {name}: {} spikes, average {average} ms, worst {max_ms} ms, latest {latest} ms \
             (at Unix time {time}).",
            position + 1,
            samples.len(),
        );
        let advice = match *name {
            "command" => {
                "   Commands ran slowly: SLOWLOG GET names them; O(N) commands on big \
                          keys (KEYS, SMEMBERS, HGETALL, LRANGE 0 -1, DEL of a big key) are the \
                          usual cause, and SCAN, UNLINK or smaller keys the usual cure."
            }
            "fast-command" => {
                "   O(1) commands ran slowly: the machine itself stalls (another \
                               process on the shard's core, swapping, a noisy neighbour)."
            }
            "expire-cycle" => {
                "   Many keys expired at once: spread their TTLs (add jitter), or \
                               lower active-expire-effort."
            }
            _ => "   See SLOWLOG GET and INFO for what ran at that time.",
        };
        let _ = writeln!(report, "{advice}");
    }
    report
}

/// LATENCY HISTOGRAM [command ...]: for each command (every command that ran, or those named,
/// a container naming its subcommands), its calls and their cumulative latency by
/// power-of-two microseconds, from the figures INFO latencystats reads, as Redis 7 answers.
async fn latency_histogram(
    shard: &Rc<Shard>,
    hold: Option<HoldToken>,
    names: &[&[u8]],
    out: &mut ReplySink,
) -> CommandResult {
    let (total, _) = gather_info(shard, hold).await;
    let ran = |stat: &&crate::stats::CommandStat| stat.calls > 0;
    let mut shown: Vec<(&str, &crate::stats::CommandStat)> = Vec::new();
    if names.is_empty() {
        shown.extend(
            total
                .commands
                .iter()
                .map(|(name, stat)| (*name, stat))
                .filter(|(_, stat)| ran(stat)),
        );
    }
    for name in names {
        let name = String::from_utf8_lossy(name).to_ascii_lowercase();
        let Some(id) = crate::commands::acl::CATALOGUE.lookup(name.as_bytes()) else {
            continue; // Redis skips a name it does not know.
        };
        let fullname = crate::commands::acl::CATALOGUE.commands[id]
            .fullname
            .as_str();
        for (known, stat) in &total.commands {
            let sub = known
                .strip_prefix(fullname)
                .is_some_and(|rest| rest.starts_with('|'));
            if (*known == fullname || sub) && ran(&stat) {
                shown.push((known, stat));
            }
        }
    }
    out.map_len(shown.len());
    for (name, stat) in shown {
        out.bulk(name.as_bytes());
        out.map_len(2);
        out.bulk(b"calls");
        out.integer(stat.calls as i64);
        out.bulk(b"histogram_usec");
        let buckets = stat.cumulative_buckets();
        out.map_len(buckets.len());
        for (bound_us, calls) in buckets {
            out.integer(bound_us as i64);
            out.integer(calls as i64);
        }
    }
    Ok(())
}

/// The error for `container`'s `subcommand` that matched none of its forms: Redis's arity
/// error when it is one of `known` (given the wrong number of arguments), else its unknown
/// subcommand error.
fn misused_subcommand(container: &str, known: &[&str], subcommand: &[u8]) -> CommandError {
    if known.iter().any(|name| is(subcommand, name)) {
        subcommand_arity_error(container, subcommand)
    } else {
        unknown_subcommand_message(container, subcommand).into()
    }
}

/// "wrong number of arguments for 'container|subcommand' command", as Redis words it.
fn subcommand_arity_error(container: &str, subcommand: &[u8]) -> CommandError {
    CommandError::from(format!(
        "ERR wrong number of arguments for '{container}|{}' command",
        String::from_utf8_lossy(subcommand).to_ascii_lowercase()
    ))
}

/// Redis 7's gate of a protected command (DEBUG, MODULE): its `enable-<name>-command` option is
/// no, yes, or local (connections from this host only).
pub(crate) fn command_enabled(shard: &Shard, client: &Client, name: &str) -> CommandResult {
    let option = format!("enable-{}-command", name.to_ascii_lowercase());
    let allowed = match shard.config.borrow().value(&option) {
        "yes" => true,
        "local" => is_local_address(&client.handle.addr),
        _ => false,
    };
    if !allowed {
        return Err(format!("ERR {name} command not allowed. If the {option} option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.").into());
    }
    Ok(())
}

/// DEBUG's gate, which every DEBUG subcommand passes first.
fn debug_allowed(shard: &Shard, client: &Client) -> CommandResult {
    command_enabled(shard, client, "DEBUG")
}

fn debug(shard: &Shard, client: &Client, args: &[&[u8]], out: &mut ReplySink) -> CommandResult {
    debug_allowed(shard, client)?;
    let subcommand = args[1];
    if is(subcommand, "PANIC") && args.len() == 2 {
        // A shard that panics takes the process down with a message (server::run's hook):
        // its keys cannot be served by another.
        panic!(
            "DEBUG PANIC from client id={} addr={}",
            client.handle.id, client.handle.addr
        );
    } else if is(subcommand, "SLEEP") && args.len() == 3 {
        let seconds = crate::commands::parse_float(args[2])?;
        if !(0.0..=3600.0).contains(&seconds) {
            return Err(errors::NOT_FLOAT.into());
        }
        // DEBUG SLEEP blocks the server on purpose (tests use it to simulate a stall); here it
        // blocks this shard only.
        std::thread::sleep(std::time::Duration::from_secs_f64(seconds));
        out.ok();
    } else if is(subcommand, "QUICKLIST-PACKED-THRESHOLD") && args.len() == 3 {
        // Redis's lists store an element above this size in a node of its own; Ember's lists
        // have no such nodes (any element size is stored the same way), so the threshold is
        // checked and accepted, and has nothing to change.
        let text = String::from_utf8_lossy(args[2]).to_ascii_lowercase();
        // Redis's memtoull also takes a plain `b` for bytes.
        let bytes = match text.strip_suffix('b') {
            Some(number) if number.bytes().all(|byte| byte.is_ascii_digit()) => {
                number.parse::<i64>().ok()
            }
            _ => crate::config::parse_memory(&text),
        };
        if bytes.is_none_or(|size| size < 0) {
            return Err(
                "ERR argument must be a memory value bigger than 1 and smaller than 4gb".into(),
            );
        }
        out.ok();
    } else if let Some((_, switch)) = DEBUG_SWITCHES
        .iter()
        .find(|(name, _)| is(subcommand, name) && args.len() == 3)
    {
        let on = crate::commands::parse_integer(args[2])? != 0;
        switch.store(on, std::sync::atomic::Ordering::Relaxed);
        out.ok();
    } else if is(subcommand, "PROTOCOL") && args.len() == 3 {
        debug_protocol(args[2], out)?;
    } else if is(subcommand, "LOG") && args.len() == 3 {
        eprintln!("ember: DEBUG LOG: {}", String::from_utf8_lossy(args[2]));
        out.ok();
    } else if is(subcommand, "HELP") {
        help(
            out,
            &[
                "DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "LOG <message>",
                "    Write <message> to the server log.",
                "LOADAOF",
                "    Flush the AOF buffers on disk and reload the AOF in memory.",
                "PANIC",
                "    Crash the server simulating a panic.",
                "PAUSE-CRON <0|1>",
                "    Stop periodic cron job processing.",
                "PROTOCOL <type>",
                "    Reply with a test value of the specified type. <type> can be: string,",
                "    integer, double, bignum, null, array, set, map, attrib, push, verbatim,",
                "    true, false.",
                "RELOAD [option ...]",
                "    Save the RDB on disk and reload it back to memory. NOSAVE: skip the save.",
                "SET-ACTIVE-EXPIRE <0|1>",
                "    Setting it to 0 disables expiring keys in background when they are not",
                "    accessed (otherwise the Redis behavior). Setting it to 1 reenables back the",
                "    default.",
                "SET-DISABLE-DENY-SCRIPTS <0|1>",
                "    Setting it to 1 lets scripts call commands flagged noscript (Redis's tests",
                "    use it); 0 refuses them again (the default).",
                "SLEEP <seconds>",
                "    Stop the server for <seconds>. Decimals allowed.",
                "HELP",
                "    Print this help.",
            ],
        );
    } else {
        // DEBUG has no subcommand table in Redis: its error covers arity too.
        return Err(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
            String::from_utf8_lossy(&subcommand[..subcommand.len().min(128)])
        )
        .into());
    }
    Ok(())
}

/// DEBUG PROTOCOL: one value of each kind RESP has, as Redis's, for testing clients and
/// scripts' conversions.
fn debug_protocol(name: &[u8], out: &mut ReplySink) -> CommandResult {
    let name = String::from_utf8_lossy(name).to_ascii_lowercase();
    match name.as_str() {
        "string" => out.bulk(b"Hello World"),
        "integer" => out.integer(12345),
        // Redis's test value, not an approximation of pi.
        #[allow(clippy::approx_constant)]
        "double" => out.double(3.141),
        "bignum" => out.big_number(b"1234567999999999999999999999999999999"),
        "null" => out.null(),
        "array" | "set" => {
            if name == "set" {
                out.set_len(3);
            } else {
                out.array_len(3);
            }
            (0..3).for_each(|j| out.integer(j));
        }
        "map" => {
            out.map_len(3);
            for j in 0..3 {
                out.integer(j);
                out.boolean(j == 1);
            }
        }
        "attrib" => {
            out.attribute(&[
                ember_resp::Reply::Bulk(b"key-popularity".to_vec()),
                ember_resp::Reply::Array(vec![
                    ember_resp::Reply::Bulk(b"key:123".to_vec()),
                    ember_resp::Reply::Integer(90),
                ]),
            ]);
            out.bulk(b"Some real reply following the attribute");
        }
        "push" => {
            if out.protocol() != ember_resp::Protocol::Resp3 {
                return Err("ERR RESP2 is not supported by this command".into());
            }
            // A push is not the command's reply: a reply follows it (values, a script's
            // call, keep the reply alone).
            if out.holds_bytes() {
                out.push_len(2);
                out.bulk(b"server-cpu-usage");
                out.integer(42);
            }
            out.bulk(b"Some real reply following the push reply");
        }
        "true" => out.boolean(true),
        "false" => out.boolean(false),
        "verbatim" => out.verbatim(b"This is a verbatim\nstring"),
        _ => {
            return Err("ERR Wrong protocol type name. Please use one of the following: string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false".into())
        }
    }
    Ok(())
}

/// DEBUG's on/off subcommands (`<0|1>`) and the switch each sets.
static DEBUG_SWITCHES: [(&str, &std::sync::atomic::AtomicBool); 3] = [
    ("SET-ACTIVE-EXPIRE", &ACTIVE_EXPIRE),
    ("SET-DISABLE-DENY-SCRIPTS", &DENY_SCRIPTS_DISABLED),
    ("PAUSE-CRON", &CRON_PAUSED),
];

/// DEBUG PAUSE-CRON: true stops each shard's periodic work (active expiry, the tracking
/// table's trim), as Redis's tests pause its cron.
static CRON_PAUSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// True while DEBUG PAUSE-CRON 1 holds the shards' periodic work.
pub fn cron_paused() -> bool {
    CRON_PAUSED.load(std::sync::atomic::Ordering::Relaxed)
}

/// DEBUG SET-DISABLE-DENY-SCRIPTS: true lets scripts call commands flagged noscript.
static DENY_SCRIPTS_DISABLED: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// True while DEBUG SET-DISABLE-DENY-SCRIPTS 1 lets scripts call noscript commands.
pub fn deny_scripts_disabled() -> bool {
    DENY_SCRIPTS_DISABLED.load(std::sync::atomic::Ordering::Relaxed)
}

/// DEBUG SET-ACTIVE-EXPIRE: false stops the active expiry on every shard (keys then expire only
/// when read), as Redis's tests use it.
static ACTIVE_EXPIRE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// True unless DEBUG SET-ACTIVE-EXPIRE 0 stopped the active expiry.
pub fn active_expire_enabled() -> bool {
    ACTIVE_EXPIRE.load(std::sync::atomic::Ordering::Relaxed)
}

/// True for a peer address (`ip:port`) on this host: loopback, as Redis's `islocalClient`.
fn is_local_address(addr: &str) -> bool {
    addr.parse::<std::net::SocketAddr>()
        .is_ok_and(|address| address.ip().is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_cursors_parse_as_strtoul() {
        let cases: &[(&[u8], Option<u64>)] = &[
            (b"0", Some(0)),
            (b"123", Some(123)),
            (b"+5", Some(5)),
            (b"-1", Some(u64::MAX)),
            (b"18446744073709551615", Some(u64::MAX)),
            (b"18446744073709551616", None),
            (b"", None),
            (b"-", None),
            (b"abc", None),
            (b" 1", None),
            (b"1 ", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_cursor(text), *expected, "{:?}", text.escape_ascii());
        }
    }

    #[test]
    fn human() {
        assert_eq!(human_bytes(512), "512B");
        assert_eq!(human_bytes(1536), "1.50K");
        assert_eq!(human_bytes(3 << 20), "3.00M");
    }
}
