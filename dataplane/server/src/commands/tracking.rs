//! Client-side caching: CLIENT TRACKING, CACHING, GETREDIR and TRACKINGINFO, and the delivery
//! of invalidations, with Redis 7.2's semantics.
//!
//! - Default mode: a read-only command run for a tracking client remembers its keys on the
//!   shard that owns them ([`crate::shard::tracking::Tracking::remember`], as part of running
//!   the command, so no write can slip in between). The next change of such a key, by any
//!   client on any shard, by a transaction, a script, the expiry or the eviction, raises one
//!   invalidation per reader and forgets the key.
//! - BCAST: every shard keeps every BCAST client's prefixes; a change under a prefix is
//!   batched and sent after the command (or the transaction) as one message per prefix.
//! - Delivery: the owning shard sends each invalidation to the reader's shard, which sends it
//!   on as the reader's settings say now: a RESP3 push to the reader itself, or to the client
//!   it redirects to (a RESP3 push, or a `__redis__:invalidate` message to a RESP2 subscriber).
//!   The writer's reply leaves after the first hop is done, so a client that saw the reply
//!   finds the invalidation queued at the reader.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::Ordering;

use ember_resp::{encode, Protocol, ReplySink};

use super::{is, parse_integer, CommandError, CommandFlags, CommandResult, COMMANDS};
use crate::client::{Client, ClientHandle};
use crate::runtime;
use crate::shard::tracking::{BcastClient, Caller, Invalidation, Reader};
use crate::shard::{Shard, ShardReply, ShardRequest};

/// The Pub/Sub channel that RESP2 redirection targets receive invalidations on.
pub const INVALIDATE_CHANNEL: &[u8] = b"__redis__:invalidate";

/// A client's CLIENT TRACKING settings while tracking is on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrackingMode {
    /// BCAST: invalidations for every key under a prefix, read or not.
    pub bcast: bool,
    /// OPTIN: only reads after CLIENT CACHING YES are remembered.
    pub optin: bool,
    /// OPTOUT: reads after CLIENT CACHING NO are not remembered.
    pub optout: bool,
    /// NOLOOP: changes made by this client are not sent to it.
    pub noloop: bool,
    /// CLIENT CACHING was given for the next command (or transaction).
    pub caching: bool,
    /// REDIRECT's client id (0: none).
    pub redirect: u64,
    /// The shard the redirection target lives on.
    pub redirect_shard: usize,
    /// The redirection target was gone at a delivery.
    pub broken_redirect: bool,
    /// BCAST prefixes, sorted (Redis's radix tree order).
    pub prefixes: Vec<Vec<u8>>,
}

impl TrackingMode {
    /// True when the keys the client reads now are to be remembered.
    pub fn remembers(&self) -> bool {
        let opted_out = if self.optin {
            !self.caching
        } else {
            self.optout && self.caching
        };
        !self.bcast && !opted_out
    }
}

/// Tracking work one shard asks of another.
#[derive(Debug, Clone)]
pub enum TrackingRequest {
    /// Deliver these invalidations to their readers, which live here.
    Deliver(Vec<Invalidation>),
    /// Deliver an invalidation of `from` to the client `target`, which lives here.
    Redirect {
        target: u64,
        from: Reader,
        null_resp3: bool,
        keys: Option<Vec<Vec<u8>>>,
    },
    /// The redirection target `redirect` of the client `client` (which lives here) is gone.
    RedirectBroken { client: u64, redirect: u64 },
    /// Remember that `reader` read `keys` (owned here).
    Remember { reader: Reader, keys: Vec<Vec<u8>> },
    /// Record a BCAST client.
    Register(BcastClient),
    /// Forget the BCAST client `id`.
    Unregister { id: u64 },
    /// Whether client `id` is connected here: `Integer(1)` or `Integer(0)`.
    ClientExists { id: u64 },
    /// Deliver what is pending here before answering (the end of a transaction or script,
    /// whose parts here kept their invalidations for one batch).
    Flush,
}

/// The tracking side of `handle` running a command on its shard `shard_index`.
pub fn caller(shard_index: usize, handle: &ClientHandle) -> Caller {
    let remember = handle
        .tracking
        .borrow()
        .as_ref()
        .is_some_and(TrackingMode::remembers);
    Caller {
        reader: Reader {
            id: handle.id,
            shard: shard_index,
        },
        remember,
    }
}

/// Before a keyspace command runs here: who writes (NOLOOP).
pub fn before_command(shard: &Shard, caller: Caller) {
    shard.tracking.set_writer(caller.reader.id);
}

/// After a keyspace command ran here: remembers the keys of a read-only command for its
/// tracking caller, turns the changes the store logged into invalidations and keeps the table
/// within `tracking-table-max-keys`.
pub fn after_command(shard: &Shard, caller: Caller, args: &[&[u8]]) {
    let tracking = &shard.tracking;
    if caller.remember {
        if let Some(spec) = super::lookup(args[0]).map(|index| &COMMANDS[index]) {
            if spec.has(CommandFlags::READONLY) && !spec.has(CommandFlags::PUBSUB) {
                let positions = spec.key_positions(args);
                tracking.remember(
                    &mut shard.keyspace.borrow_mut(),
                    &shard.shared,
                    caller.reader,
                    positions.iter().map(|&position| args[position]),
                );
            }
        }
    }
    collect(shard);
    tracking.set_writer(0);
}

/// Turns the changes the store logged into invalidations (after writes that are no command:
/// the expiry, the eviction, a cross-shard write-back) and applies the table's bound.
pub fn collect(shard: &Shard) {
    let tracking = &shard.tracking;
    let tier = &shard.local_tier;
    let mut keyspace = shard.keyspace.borrow_mut();
    // The log may still hold keys logged for the tier after its last publication ended.
    if !tracking.active() && !tier.publishing() && !keyspace.has_modified() {
        return;
    }
    let versions = &shard.shared.tier_versions;
    tracking.collect(&mut keyspace, &shard.shared, |key| {
        tier.changed(shard.index, versions, key)
    });
    if tracking.has_keys() {
        let keys_max = shard.config.borrow().integer("tracking-table-max-keys") as usize;
        tracking.enforce_limit(&mut keyspace, &shard.shared, keys_max);
    }
}

/// Delivers the invalidations raised here: this shard's readers at once, the others' through
/// their shards, waiting until each of those has queued them.
pub async fn flush(shard: &Rc<Shard>) {
    let pending = shard.tracking.take_pending();
    let mut remote: BTreeMap<usize, Vec<Invalidation>> = BTreeMap::new();
    for invalidation in pending {
        if invalidation.reader.shard == shard.index {
            deliver(shard, invalidation);
        } else {
            remote
                .entry(invalidation.reader.shard)
                .or_default()
                .push(invalidation);
        }
    }
    let mut replies = Vec::with_capacity(remote.len());
    for (index, batch) in remote {
        let request = ShardRequest::Tracking(TrackingRequest::Deliver(batch));
        replies.push(shard.send(index, request).await);
    }
    for reply in replies {
        reply.await;
    }
}

/// At the end of a transaction or script that held `shards`: every shard delivers the
/// invalidations its parts kept, before the reply leaves (holds are released without a reply,
/// so this is the step that waits). Nothing to do while no client tracks.
pub async fn flush_held(shard: &Rc<Shard>, shards: &std::collections::BTreeSet<usize>) {
    if shard.shared.tracking_clients.load(Ordering::Relaxed) == 0 {
        return;
    }
    let mut replies = Vec::with_capacity(shards.len());
    for &index in shards.iter().filter(|&&index| index != shard.index) {
        let request = ShardRequest::Tracking(TrackingRequest::Flush);
        replies.push(shard.send(index, request).await);
    }
    for reply in replies {
        reply.await;
    }
    if shard.tracking.has_pending() {
        flush(shard).await;
    }
}

/// Most gone redirection targets remembered. Past it the set starts again empty: a reader
/// whose target is no longer in it learns of the break through the target's shard instead
/// (the same push, after the writer's reply), so the set stays bounded however many clients
/// come and go.
const GONE_REDIRECT_TARGETS_MAX: usize = 1 << 16;

/// Records that `handle` quit or disconnected, when it is a redirection target: readers that
/// redirect to it learn at once, on their own shard, that the redirection is broken.
pub fn note_gone(shard: &Shard, handle: &ClientHandle) {
    if handle.redirect_target.get() {
        let mut gone = shard
            .shared
            .gone_redirect_targets
            .lock()
            .expect("gone redirect targets lock");
        if gone.len() >= GONE_REDIRECT_TARGETS_MAX {
            gone.clear();
        }
        gone.insert(handle.id);
    }
}

/// True when redirection target `id` quit or disconnected.
fn redirect_gone(shard: &Shard, id: u64) -> bool {
    shard
        .shared
        .gone_redirect_targets
        .lock()
        .expect("gone redirect targets lock")
        .contains(&id)
}

/// Sends `request` to shard `target` in a task of its own, with no reply awaited (a
/// redirection's second hop: the caller may be serving the mesh).
fn notify_later(shard: &Rc<Shard>, target: usize, request: TrackingRequest) {
    let shard = shard.clone();
    runtime::spawn(async move {
        shard.notify(target, ShardRequest::Tracking(request)).await;
    });
}

/// Delivers one invalidation to its reader, which lives on this shard, as the reader's
/// settings say now.
fn deliver(shard: &Rc<Shard>, invalidation: Invalidation) {
    let Some(handle) = shard.clients.borrow().get(&invalidation.reader.id).cloned() else {
        return; // Disconnected: Redis drops the id lazily too.
    };
    let (redirect, redirect_shard) = {
        let mode = handle.tracking.borrow();
        let Some(mode) = mode.as_ref() else {
            return;
        };
        if mode.bcast != invalidation.bcast
            || (mode.noloop && invalidation.writer == handle.id && !invalidation.bcast)
        {
            return;
        }
        (mode.redirect, mode.redirect_shard)
    };
    // Redis encodes FLUSH's null in the protocol of the tracking client, even when the
    // message goes to a redirection target.
    let null_resp3 = handle.resp.get() >= 3;
    if redirect == 0 {
        if null_resp3 {
            push(&handle, true, invalidation.keys.as_deref(), null_resp3);
        }
        return;
    }
    if redirect_shard == shard.index {
        redirect_here(
            shard,
            redirect,
            invalidation.reader,
            null_resp3,
            invalidation.keys.as_deref(),
        );
    } else if redirect_gone(shard, redirect) {
        // Known here: the reader is told before the writer's reply leaves, as in Redis.
        mark_broken(shard, invalidation.reader.id, redirect);
    } else {
        let request = TrackingRequest::Redirect {
            target: redirect,
            from: invalidation.reader,
            null_resp3,
            keys: invalidation.keys,
        };
        notify_later(shard, redirect_shard, request);
    }
}

/// Delivers an invalidation of `from` to its redirection target `target` (on this shard).
fn redirect_here(
    shard: &Rc<Shard>,
    target: u64,
    from: Reader,
    null_resp3: bool,
    keys: Option<&[Vec<u8>]>,
) {
    // A target that ran QUIT is gone already, though its socket is still closing.
    let target_handle = shard
        .clients
        .borrow()
        .get(&target)
        .filter(|handle| !handle.quitting.get())
        .cloned();
    let Some(handle) = target_handle else {
        if from.shard == shard.index {
            mark_broken(shard, from.id, target);
        } else {
            let request = TrackingRequest::RedirectBroken {
                client: from.id,
                redirect: target,
            };
            notify_later(shard, from.shard, request);
        }
        return;
    };
    let resp3 = handle.resp.get() >= 3;
    // A RESP2 target receives them only as a Pub/Sub message, in Pub/Sub mode.
    if resp3 || handle.subscription_counts.get() != [0; 3] {
        push(&handle, resp3, keys, null_resp3);
    }
}

/// The redirection target of `client` is gone: its flag shows in CLIENT TRACKINGINFO, and a
/// RESP3 client is told with a `tracking-redir-broken` push, as at every later invalidation.
fn mark_broken(shard: &Shard, client: u64, redirect: u64) {
    let Some(handle) = shard.clients.borrow().get(&client).cloned() else {
        return;
    };
    if let Some(mode) = handle.tracking.borrow_mut().as_mut() {
        mode.broken_redirect = true;
    }
    if handle.resp.get() >= 3 {
        let queued = handle.pushes.push(|out| {
            encode::push_len(out, 2, Protocol::Resp3);
            encode::bulk(out, b"tracking-redir-broken");
            encode::integer(out, redirect as i64);
        });
        if !queued {
            handle.kill();
        }
    }
}

/// Queues one invalidation message for the connection `handle`.
fn push(handle: &ClientHandle, resp3: bool, keys: Option<&[Vec<u8>]>, null_resp3: bool) {
    let queued = handle.pushes.push(|out| {
        if resp3 {
            encode::push_len(out, 2, Protocol::Resp3);
            encode::bulk(out, b"invalidate");
        } else {
            encode::array_len(out, 3);
            encode::bulk(out, b"message");
            encode::bulk(out, INVALIDATE_CHANNEL);
        }
        match keys {
            Some(keys) => {
                encode::array_len(out, keys.len());
                for key in keys {
                    encode::bulk(out, key);
                }
            }
            None if null_resp3 => out.extend_from_slice(b"_\r\n"),
            None => out.extend_from_slice(b"$-1\r\n"),
        }
    });
    if !queued {
        eprintln!(
            "ember: closing client {} ({}): invalidations not read",
            handle.id, handle.addr
        );
        handle.kill();
    }
}

/// Answers another shard's tracking request.
pub fn answer(shard: &Rc<Shard>, request: TrackingRequest) -> ShardReply {
    match request {
        TrackingRequest::Deliver(batch) => {
            for invalidation in batch {
                deliver(shard, invalidation);
            }
        }
        TrackingRequest::Redirect {
            target,
            from,
            null_resp3,
            keys,
        } => redirect_here(shard, target, from, null_resp3, keys.as_deref()),
        TrackingRequest::RedirectBroken { client, redirect } => {
            mark_broken(shard, client, redirect);
        }
        TrackingRequest::Remember { reader, keys } => shard.tracking.remember(
            &mut shard.keyspace.borrow_mut(),
            &shard.shared,
            reader,
            keys.iter().map(Vec::as_slice),
        ),
        TrackingRequest::Register(client) => shard
            .tracking
            .register(&mut shard.keyspace.borrow_mut(), client),
        TrackingRequest::Unregister { id } => shard
            .tracking
            .unregister(&mut shard.keyspace.borrow_mut(), id),
        // The mesh's receiver delivers what is pending before it replies.
        TrackingRequest::Flush => {}
        TrackingRequest::ClientExists { id } => {
            // Asked for a REDIRECT: the client found is a redirection target from now on.
            let found = shard.clients.borrow().get(&id).cloned();
            if let Some(handle) = &found {
                handle.redirect_target.set(true);
            }
            return ShardReply::Integer(i64::from(found.is_some()));
        }
    }
    ShardReply::Done
}

/// FLUSHDB or FLUSHALL ran on this shard: the table empties, and every tracking client of this
/// shard gets a null invalidation (each shard runs the flush, so each client gets one).
pub fn flushed(shard: &Rc<Shard>) {
    shard
        .tracking
        .clear(&mut shard.keyspace.borrow_mut(), &shard.shared);
    let readers: Vec<u64> = shard
        .clients
        .borrow()
        .values()
        .filter(|handle| handle.tracking.borrow().is_some())
        .map(|handle| handle.id)
        .collect();
    for id in readers {
        let bcast = shard.clients.borrow().get(&id).is_some_and(|handle| {
            handle
                .tracking
                .borrow()
                .as_ref()
                .is_some_and(|mode| mode.bcast)
        });
        deliver(
            shard,
            Invalidation {
                reader: Reader {
                    id,
                    shard: shard.index,
                },
                keys: None,
                bcast,
                writer: 0,
            },
        );
    }
}

/// Remembers `keys` (any shard's) for a tracking caller outside a keyspace command's own run
/// (the keys a script declared).
pub async fn remember_keys(shard: &Rc<Shard>, reader: Reader, keys: &[&[u8]]) {
    let mut by_owner: BTreeMap<usize, Vec<Vec<u8>>> = BTreeMap::new();
    for key in keys {
        by_owner
            .entry(shard.owner_of(key))
            .or_default()
            .push(key.to_vec());
    }
    for (owner, keys) in by_owner {
        let request = TrackingRequest::Remember { reader, keys };
        if owner == shard.index {
            answer(shard, request);
        } else {
            shard.call(owner, ShardRequest::Tracking(request)).await;
        }
    }
}

/// After a request of a connection: CLIENT CACHING lasts for one command, or for the whole
/// transaction when given inside MULTI (Redis keeps it across CLIENT subcommands).
pub fn after_request(client: &Client, args: &[&[u8]]) {
    if client.multi.is_some() || is(args[0], "CLIENT") {
        return;
    }
    if let Some(mode) = client.handle.tracking.borrow_mut().as_mut() {
        mode.caching = false;
    }
}

/// Sends `request` to every shard (this one answered directly) and returns the replies of the
/// others, this one's first.
async fn everywhere(shard: &Rc<Shard>, request: TrackingRequest) -> Vec<ShardReply> {
    let mut replies = vec![answer(shard, request.clone())];
    let mut pending = Vec::with_capacity(shard.count());
    for index in (0..shard.count()).filter(|&index| index != shard.index) {
        pending.push(
            shard
                .send(index, ShardRequest::Tracking(request.clone()))
                .await,
        );
    }
    for reply in pending {
        replies.push(reply.await);
    }
    replies
}

/// The shard client `id` is connected to, if any.
async fn shard_of_client(shard: &Rc<Shard>, id: u64) -> Option<usize> {
    if let Some(handle) = shard.clients.borrow().get(&id) {
        handle.redirect_target.set(true);
        return Some(shard.index);
    }
    let request = TrackingRequest::ClientExists { id };
    for index in (0..shard.count()).filter(|&index| index != shard.index) {
        let reply = shard
            .call(index, ShardRequest::Tracking(request.clone()))
            .await;
        if matches!(reply, ShardReply::Integer(1)) {
            return Some(index);
        }
    }
    None
}

/// Turns tracking off for `handle` (CLIENT TRACKING OFF, disconnection).
pub async fn disable(shard: &Rc<Shard>, handle: &ClientHandle) {
    let Some(mode) = handle.tracking.borrow_mut().take() else {
        return;
    };
    shard
        .shared
        .tracking_clients
        .fetch_sub(1, Ordering::Relaxed);
    if mode.bcast {
        everywhere(shard, TrackingRequest::Unregister { id: handle.id }).await;
    }
}

/// The options of CLIENT TRACKING.
#[derive(Default)]
struct Options<'a> {
    redirect: u64,
    redirect_shard: usize,
    bcast: bool,
    optin: bool,
    optout: bool,
    noloop: bool,
    prefixes: Vec<&'a [u8]>,
}

/// CLIENT TRACKING ON|OFF [REDIRECT id] [BCAST] [PREFIX p ...] [OPTIN] [OPTOUT] [NOLOOP].
pub async fn client_tracking(
    shard: &Rc<Shard>,
    client: &Client,
    args: &[&[u8]],
    out: &mut ReplySink,
) -> CommandResult {
    let options = parse_options(shard, args).await?;
    let handle = &client.handle;
    if is(args[2], "OFF") {
        disable(shard, handle).await;
        out.ok();
        return Ok(());
    }
    if !is(args[2], "ON") {
        return Err(super::errors::SYNTAX.into());
    }
    let current = handle.tracking.borrow().clone();
    check_options(&options, current.as_ref())?;
    let mut mode = current.clone().unwrap_or_default();
    if current.is_none() {
        shard
            .shared
            .tracking_clients
            .fetch_add(1, Ordering::Relaxed);
    }
    mode.broken_redirect = false;
    mode.redirect = options.redirect;
    mode.redirect_shard = options.redirect_shard;
    mode.bcast = options.bcast;
    mode.optin = options.optin;
    mode.optout = options.optout;
    mode.noloop = options.noloop;
    if options.bcast {
        if options.prefixes.is_empty() {
            mode.prefixes.push(Vec::new());
        }
        mode.prefixes
            .extend(options.prefixes.iter().map(|prefix| prefix.to_vec()));
        mode.prefixes.sort_unstable();
        mode.prefixes.dedup();
        let registration = BcastClient {
            reader: Reader {
                id: handle.id,
                shard: shard.index,
            },
            prefixes: mode.prefixes.clone(),
            noloop: mode.noloop,
        };
        *handle.tracking.borrow_mut() = Some(mode);
        everywhere(shard, TrackingRequest::Register(registration)).await;
    } else {
        *handle.tracking.borrow_mut() = Some(mode);
    }
    out.ok();
    Ok(())
}

async fn parse_options<'a>(
    shard: &Rc<Shard>,
    args: &[&'a [u8]],
) -> Result<Options<'a>, CommandError> {
    let mut options = Options::default();
    let mut index = 3;
    while index < args.len() {
        let more = index + 1 < args.len();
        let arg = args[index];
        if is(arg, "REDIRECT") && more {
            index += 1;
            if options.redirect != 0 {
                return Err("ERR A client can only redirect to a single other client".into());
            }
            let id = parse_integer(args[index])
                .map_err(|_| CommandError::from(super::errors::NOT_INTEGER))?;
            let found = match u64::try_from(id) {
                Ok(id) if id > 0 => shard_of_client(shard, id).await,
                _ => None,
            };
            let Some(owner) = found else {
                return Err("ERR The client ID you want redirect to does not exist".into());
            };
            options.redirect = id as u64;
            options.redirect_shard = owner;
        } else if is(arg, "BCAST") {
            options.bcast = true;
        } else if is(arg, "OPTIN") {
            options.optin = true;
        } else if is(arg, "OPTOUT") {
            options.optout = true;
        } else if is(arg, "NOLOOP") {
            options.noloop = true;
        } else if is(arg, "PREFIX") && more {
            index += 1;
            options.prefixes.push(args[index]);
        } else {
            return Err(super::errors::SYNTAX.into());
        }
        index += 1;
    }
    Ok(options)
}

/// Redis's checks before CLIENT TRACKING ON, in its order.
fn check_options(options: &Options<'_>, current: Option<&TrackingMode>) -> CommandResult {
    if !options.bcast && !options.prefixes.is_empty() {
        return Err("ERR PREFIX option requires BCAST mode to be enabled".into());
    }
    if current.is_some_and(|mode| mode.bcast != options.bcast) {
        return Err("ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.".into());
    }
    if options.bcast && (options.optin || options.optout) {
        return Err("ERR OPTIN and OPTOUT are not compatible with BCAST".into());
    }
    if options.optin && options.optout {
        return Err("ERR You can't specify both OPTIN mode and OPTOUT mode".into());
    }
    if current.is_some_and(|mode| (options.optin && mode.optout) || (options.optout && mode.optin))
    {
        return Err("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.".into());
    }
    if options.bcast {
        check_prefixes(
            &options.prefixes,
            current.map_or(&[][..], |mode| &mode.prefixes),
        )?;
    }
    Ok(())
}

/// Two prefixes overlap when one starts the other: both would send the same key.
fn check_prefixes(prefixes: &[&[u8]], existing: &[Vec<u8>]) -> CommandResult {
    let overlap = |first: &[u8], second: &[u8]| {
        let len = first.len().min(second.len());
        first[..len] == second[..len]
    };
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    for (position, prefix) in prefixes.iter().enumerate() {
        if let Some(known) = existing.iter().find(|known| overlap(known, prefix)) {
            return Err(format!(
                "ERR Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                text(prefix),
                text(known)
            )
            .into());
        }
        if let Some(other) = prefixes[position + 1..]
            .iter()
            .find(|other| overlap(prefix, other))
        {
            return Err(format!(
                "ERR Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                text(prefix),
                text(other)
            )
            .into());
        }
    }
    Ok(())
}

/// CLIENT CACHING YES|NO.
pub fn client_caching(client: &Client, args: &[&[u8]], out: &mut ReplySink) -> CommandResult {
    let mut tracking = client.handle.tracking.borrow_mut();
    let Some(mode) = tracking.as_mut() else {
        return Err("ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled".into());
    };
    if is(args[2], "YES") {
        if !mode.optin {
            return Err(
                "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode."
                    .into(),
            );
        }
    } else if is(args[2], "NO") {
        if !mode.optout {
            return Err(
                "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode."
                    .into(),
            );
        }
    } else {
        return Err(super::errors::SYNTAX.into());
    }
    mode.caching = true;
    out.ok();
    Ok(())
}

/// CLIENT GETREDIR: the redirection (0 for none), or -1 with tracking off.
pub fn client_getredir(client: &Client, out: &mut ReplySink) {
    let redirect = client
        .handle
        .tracking
        .borrow()
        .as_ref()
        .map_or(-1, |mode| mode.redirect as i64);
    out.integer(redirect);
}

/// CLIENT TRACKINGINFO: flags, redirect and prefixes, as Redis 7.2 writes them.
pub fn client_trackinginfo(client: &Client, out: &mut ReplySink) {
    let tracking = client.handle.tracking.borrow();
    let mode = tracking.as_ref();
    let mut flags: Vec<&[u8]> = Vec::new();
    match mode {
        None => flags.push(b"off"),
        Some(mode) => {
            flags.push(b"on");
            if mode.bcast {
                flags.push(b"bcast");
            }
            if mode.optin {
                flags.push(b"optin");
                if mode.caching {
                    flags.push(b"caching-yes");
                }
            }
            if mode.optout {
                flags.push(b"optout");
                if mode.caching {
                    flags.push(b"caching-no");
                }
            }
            if mode.noloop {
                flags.push(b"noloop");
            }
            if mode.broken_redirect {
                flags.push(b"broken_redirect");
            }
        }
    }
    out.map_len(3);
    out.bulk(b"flags");
    out.set_len(flags.len());
    for flag in flags {
        out.bulk(flag);
    }
    out.bulk(b"redirect");
    out.integer(mode.map_or(-1, |mode| mode.redirect as i64));
    out.bulk(b"prefixes");
    let prefixes = mode.map_or(&[][..], |mode| &mode.prefixes[..]);
    out.array_len(prefixes.len());
    for prefix in prefixes {
        out.bulk(prefix);
    }
}

/// CLIENT LIST's view of tracking: the flag letters (`t`, `R`, `B`) and `redir`.
pub fn list_fields(handle: &ClientHandle) -> (&'static str, i64) {
    match handle.tracking.borrow().as_ref() {
        None => ("", -1),
        Some(mode) => {
            let flags = match (mode.broken_redirect, mode.bcast) {
                (false, false) => "t",
                (true, false) => "tR",
                (false, true) => "tB",
                (true, true) => "tRB",
            };
            (flags, mode.redirect as i64)
        }
    }
}

/// INFO's tracking figures: (`tracking_clients`, `tracking_total_keys`,
/// `tracking_total_items`, `tracking_total_prefixes`).
pub fn info_figures(shard: &Shard) -> [usize; 4] {
    let shared = &shard.shared;
    [
        shared.tracking_clients.load(Ordering::Relaxed),
        shared.tracking_keys.load(Ordering::Relaxed),
        shared.tracking_items.load(Ordering::Relaxed),
        shard.tracking.prefix_count(),
    ]
}

/// The keys a script declared are remembered when it ran a read-only command (what Redis 7.0
/// did and its test suite checks; 7.2 remembers the keys of the command itself, which the
/// script's commands also do here: a spurious invalidation is harmless to a client's cache,
/// a missing one is not).
pub async fn after_script(shard: &Rc<Shard>, client: &Client, declared: &[&[u8]]) {
    if declared.is_empty() {
        return;
    }
    let caller = caller(shard.index, &client.handle);
    if caller.remember {
        remember_keys(shard, caller.reader, declared).await;
    }
}
