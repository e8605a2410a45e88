//! Blocking commands (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN, BZPOPMAX, BZMPOP, and
//! later XREAD BLOCK / XREADGROUP BLOCK): a client waits until one of its keys can serve it.
//!
//! # How it works
//!
//! Two sides, each a part of every shard's [`Registry`]:
//!
//! - The **key side**, on the shard that owns a key: a FIFO queue of waiters per `(db, key)`.
//!   A waiter carries the whole request and its [`ServeFn`]. Registering is atomic with a first
//!   attempt ([`BlockingRequest::Register`]): the shard tries to serve the request from each of
//!   its keys and queues the waiter only if none could, so no push can slip in between. After
//!   every command that ran on the shard, [`after_command`] marks the keys of that command that
//!   have waiters as ready, and [`serve_ready`] serves them first-blocked first-served. While
//!   the shard is held (EXEC, a cross-shard write), serving waits for the release, so a blocked
//!   client sees the state after the transaction, as in Redis.
//! - **Order across shards.** A client may send a blocking command to a connection of shard X
//!   and then (through another client) the push to a connection of Y, the key's owner; X
//!   forwards the registration, which can reach Y after the push, or after a waiter that was
//!   sent later straight to Y. So a ready key is first *fenced*: its keys (and its waiters'
//!   keys here) are held against every command but new registrations, and every other shard
//!   answers a [`BlockingRequest::Fence`] after one turn of its loop (its readable sockets
//!   read, their requests run to their first wait), while this shard takes one too. The mesh
//!   is FIFO per pair of shards, so a registration whose bytes had arrived before the push was
//!   read is queued before the fence ends; queues are kept in the order the requests began
//!   ([`KeyWaiter`]'s `since`), and only then is the key served. The push's reply may leave
//!   first, but nothing reads or writes the held keys before the waiters are served, so
//!   every other client sees the push and the pops as one change. A fence costs a round trip
//!   between shards, so it is taken only where it can change the outcome: when a
//!   registration is on its way to the key's shard (`Shared::registrations_in_flight`), or
//!   when every waiter was served and the key still holds something. A request whose bytes
//!   its shard has not read yet begins later than every queued waiter, so it can only take
//!   what they leave.
//! - The **home side**, on the shard of the blocked connection ([`run`]): it registers the
//!   waiter on every shard that owns one of its keys, then waits for a result, its timeout,
//!   CLIENT UNBLOCK, or its connection closing. At the end it cancels its registrations
//!   ([`BlockingRequest::Cancel`], awaited, so every result served before the cancel is
//!   collected) and keeps the first result. A result beyond the first (keys on several shards,
//!   each of which served it at about the same time) is given back through the undo request the
//!   serving shard attached (pushing the element back where it was).
//!
//! Results served on another shard travel back as [`BlockingRequest::Deliver`]. A blocked
//! connection waits in its own task, so its shard goes on serving every other client.
//!
//! # Adding a blocking command
//!
//! Declare the command with `Handler::Blocking(&COMMAND)` where `COMMAND` is a
//! [`BlockingCommand`] (XREAD and XREADGROUP are keyspace commands that the executor hands to
//! [`run`] when they carry BLOCK: see `streams::blocking_form`):
//! - `parse` reads the request: the key positions, the timeout (see [`parse_timeout`]) and,
//!   for a move between keys, the destination ([`Parsed::push_to`]);
//! - `serve` runs on the key's shard with the request and one of its keys: it writes the reply
//!   into `ctx.out` and returns `Ok(Some(Taken { undo }))` when the key served it, `Ok(None)`
//!   when it cannot yet, or an error (answered at once on the first attempt; a registered
//!   waiter stays blocked);
//! - `prepare` (optional) checks and rewrites the request on each key's shard just before the
//!   first attempt there;
//! - `nil` writes the reply of a timeout.
//!
//! XREAD BLOCK's `serve` reads the entries after the ID it was given and returns no undo (a
//! read changes nothing); its `prepare` turns `$` into the stream's last ID on the key's shard.
//! Every waiter of a ready key is tried in FIFO order, not only the first in line: a pop that
//! finds the key empty fails for the rest too, but a stream waiter for a later ID must not hold
//! back one that the new entries serve.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use ember_resp::{Protocol, Reply, ReplySink};
use smallvec::SmallVec;

use super::{parse_float, CommandError, CommandResult, Ctx};
use crate::client::{Client, ClientHandle};
use crate::runtime;
use crate::shard::{HoldToken, PackedArgs, Shard, ShardReply, ShardRequest};

mod serving;
#[cfg(test)]
mod tests;

pub use serving::{after_command, after_store, answer, answerable_now, note_database, serve_ready};
use serving::{cancel_here, register_here};

/// How often a blocked connection checks that its peer is still there: a closed connection
/// must stop waiting (and stop being served) without a read, which would consume pipelined
/// requests.
const PEER_CHECK_INTERVAL: Duration = Duration::from_millis(20);

/// A waiter's identity: (home shard, sequence on that shard).
pub type WaiterId = (usize, u64);

/// What a key gave a waiter; the reply itself was written into the serving context.
#[derive(Debug, Clone)]
pub struct Taken {
    /// The request that puts back what was taken (run on the serving shard) when the home
    /// cannot use the result: another key served it first, or the client went away.
    pub undo: Option<PackedArgs>,
}

/// Serves a request from one key on the key's shard (see the module docs).
pub type ServeFn = fn(&mut Ctx<'_>, &[&[u8]], &[u8]) -> Result<Option<Taken>, CommandError>;

/// Checks and rewrites a request on a key's shard before its first attempt there, given the
/// keys of the request that live on that shard: XREAD turns `$` into the stream's last ID, so
/// the waiter queued there waits for entries after the ID of the time it blocked. `Ok(None)`
/// keeps the request as it is; an error is the command's answer.
pub type PrepareFn =
    fn(&mut Ctx<'_>, &[&[u8]], &[Vec<u8>]) -> Result<Option<PackedArgs>, CommandError>;

/// A blocking command's request, read.
pub struct Parsed {
    /// Argument positions of the keys it waits on, in the order they are tried.
    pub keys: SmallVec<[usize; 4]>,
    /// How long to wait; `None` for ever.
    pub timeout: Option<Duration>,
    /// BLMOVE: the destination's position and the push that completes the move when the
    /// destination lives on another shard than the source (the source's shard then only pops).
    pub push_to: Option<(usize, &'static str)>,
}

/// A blocking command's declaration (see the module docs).
pub struct BlockingCommand {
    /// Reads and checks the request.
    pub parse: fn(&[&[u8]]) -> Result<Parsed, CommandError>,
    /// Serves the request from one key.
    pub serve: ServeFn,
    /// Serves the request from its source key alone, when `push_to`'s key is elsewhere.
    pub serve_pop_only: Option<ServeFn>,
    /// Rewrites the request on each key's shard before it is tried there (XREAD's `$`).
    pub prepare: Option<PrepareFn>,
    /// The reply when the wait ends with nothing (a timeout, CLIENT UNBLOCK).
    pub nil: fn(&mut ReplySink),
    /// The reply when it could not block (inside MULTI) and nothing served it: BLMOVE answers
    /// a null bulk string there, but a null array on a timeout, as Redis does.
    pub nil_without_blocking: fn(&mut ReplySink),
}

/// A waiter queued on a key's shard.
#[derive(Debug, Clone)]
pub struct KeyWaiter {
    id: WaiterId,
    /// When its home shard began to run the request, soon after the request's bytes were read:
    /// a key's queue is kept in this order, so a request forwarded from another shard takes
    /// its place before one that a client sent later straight to the key's shard.
    since: Instant,
    db: usize,
    keys: Vec<Vec<u8>>,
    args: PackedArgs,
    protocol: Protocol,
    serve: ServeFn,
    prepare: Option<PrepareFn>,
}

/// A served request on its way home.
#[derive(Debug)]
pub struct Served {
    /// The reply, in the client's protocol.
    pub reply: Reply,
    /// What gives the result back.
    pub undo: Option<PackedArgs>,
    /// The database of the key that served it (where `undo` runs).
    db: usize,
}

/// Blocking work one shard asks of another.
#[derive(Debug)]
pub enum BlockingRequest {
    /// Serve the waiter now from one of its keys here, or (with `block`) queue it on them.
    Register {
        /// The waiter, with the keys that live on the receiving shard.
        waiter: Box<KeyWaiter>,
        /// Queue it when nothing serves it now.
        block: bool,
        /// The hold of the caller's transaction, if any.
        token: Option<HoldToken>,
    },
    /// Take the waiter off its keys' queues; answers any result it was served meanwhile.
    Cancel {
        /// The waiter.
        id: WaiterId,
    },
    /// Answered after one turn of the receiving shard's loop: its readable sockets read and
    /// the requests in them run as far as their first wait, so every blocking registration
    /// whose bytes had arrived before this request was sent is ahead of the answer on the mesh
    /// (see [`serve_ready`]).
    Fence,
    /// A result for a waiter whose home is the receiving shard.
    Deliver {
        /// The waiter.
        id: WaiterId,
        /// Its result.
        served: Served,
    },
}

/// The answer to a [`BlockingRequest`].
#[derive(Debug)]
pub enum BlockingReply {
    /// Served at once.
    Served(Served),
    /// Queued.
    Registered,
    /// Nothing to serve and not queued.
    NotServed,
    /// The request failed (WRONGTYPE on the first attempt).
    Error(String),
    /// Cancelled; any result served before the cancel that had not left yet.
    Cancelled(Option<Served>),
    /// Nothing to answer.
    Done,
}

/// The home side's state of one blocked request.
struct HomeWait {
    client_id: u64,
    results: Vec<Served>,
    unblocked: Option<UnblockKind>,
    waker: Option<Waker>,
}

/// CLIENT UNBLOCK's two ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnblockKind {
    /// As if the timeout had passed.
    Timeout,
    /// With an UNBLOCKED error.
    Error,
}

/// A shard's blocked waiters: its keys' queues and its own connections' waits.
#[derive(Default)]
pub struct Registry {
    next_sequence: Cell<u64>,
    queues: RefCell<HashMap<(usize, Vec<u8>), VecDeque<WaiterId>>>,
    waiters: RefCell<HashMap<WaiterId, KeyWaiter>>,
    ready: RefCell<Vec<(usize, Vec<u8>)>>,
    homes: RefCell<HashMap<u64, HomeWait>>,
    outbox: RefCell<VecDeque<(usize, WaiterId, Served)>>,
    outbox_waker: RefCell<Option<Waker>>,
    outbox_started: Cell<bool>,
    /// The hold of the fence in flight, if any: it holds the keys being fenced against every
    /// command but the registrations of new waiters.
    fence: Cell<Option<HoldToken>>,
    /// The ready keys that the fence in flight is for.
    fencing: RefCell<Vec<(usize, Vec<u8>)>>,
    /// Keys whose fence has ended: the next [`serve_ready`] serves them without another.
    fenced: RefCell<Vec<(usize, Vec<u8>)>>,
    /// The fence task, while it waits for a fence to run.
    fence_waker: RefCell<Option<Waker>>,
}

impl Registry {
    /// True while client `client_id` waits in a blocking command here.
    pub fn is_blocked(&self, client_id: u64) -> bool {
        self.homes
            .borrow()
            .values()
            .any(|home| home.client_id == client_id)
    }

    /// CLIENT UNBLOCK: ends the wait of client `client_id` if it is blocked here.
    pub fn unblock_client(&self, client_id: u64, kind: UnblockKind) -> bool {
        let mut homes = self.homes.borrow_mut();
        let Some(home) = homes.values_mut().find(|home| home.client_id == client_id) else {
            return false;
        };
        if home.unblocked.is_some() {
            return false;
        }
        home.unblocked = Some(kind);
        if let Some(waker) = home.waker.take() {
            waker.wake();
        }
        true
    }

    fn has_waiters(&self) -> bool {
        !self.queues.borrow().is_empty()
    }

    /// Marks `key` ready when someone waits on it.
    fn note(&self, db: usize, key: &[u8]) {
        if !self.queues.borrow().contains_key(&(db, key.to_vec())) {
            return;
        }
        let mut ready = self.ready.borrow_mut();
        if !ready
            .iter()
            .any(|(ready_db, ready_key)| *ready_db == db && ready_key == key)
        {
            ready.push((db, key.to_vec()));
        }
    }

    /// True when `key` of `db` has waiters that are about to be served (it is ready, or being
    /// fenced): a new waiter queues behind them rather than take what they are owed.
    fn awaits_serving(&self, db: usize, key: &[u8]) -> bool {
        let slot_is = |(slot_db, slot_key): &(usize, Vec<u8>)| *slot_db == db && slot_key == key;
        self.queues.borrow().contains_key(&(db, key.to_vec()))
            && (self.ready.borrow().iter().any(slot_is)
                || self.fencing.borrow().iter().any(slot_is))
    }

    fn remove_waiter(&self, id: WaiterId) -> Option<KeyWaiter> {
        let waiter = self.waiters.borrow_mut().remove(&id)?;
        let mut queues = self.queues.borrow_mut();
        for key in &waiter.keys {
            let slot = (waiter.db, key.clone());
            if let Some(queue) = queues.get_mut(&slot) {
                queue.retain(|queued| *queued != id);
                if queue.is_empty() {
                    queues.remove(&slot);
                }
            }
        }
        Some(waiter)
    }
}

/// Reads a blocking command's timeout in seconds (fractions allowed; 0 waits for ever).
///
/// # Errors
/// Redis's "timeout is not a float or out of range" and "timeout is negative".
pub fn parse_timeout(arg: &[u8]) -> Result<Option<Duration>, CommandError> {
    let seconds = parse_float(arg)
        .map_err(|_| CommandError::from("ERR timeout is not a float or out of range"))?;
    let milliseconds = seconds * 1000.0;
    // Redis adds the current time to the timeout in a signed 64-bit count of milliseconds:
    // past that (infinity included) it reads as negative.
    let limit_ms = (i64::MAX as u64 - crate::stats::unix_time_ms()) as f64;
    if milliseconds < 0.0 || milliseconds > limit_ms {
        return Err("ERR timeout is negative".into());
    }
    // Redis keeps whole milliseconds: a timeout under one millisecond is 0, which waits for
    // ever.
    let whole_ms = milliseconds as u64;
    Ok((whole_ms > 0).then(|| Duration::from_millis(whole_ms)))
}

/// CLIENT UNBLOCK id [TIMEOUT|ERROR]: the client id and how to end its wait. An empty error
/// message means a wrong number of arguments (the caller words it).
///
/// # Errors
/// Redis's replies to a bad id or reason.
pub fn parse_client_unblock(args: &[&[u8]]) -> Result<(u64, UnblockKind), CommandError> {
    if args.len() < 3 {
        return Err(CommandError::from(""));
    }
    if args.len() > 4 {
        return Err(
            "ERR unknown subcommand or wrong number of arguments for 'unblock'. Try CLIENT HELP."
                .into(),
        );
    }
    let client_id = super::parse_integer(args[2])?;
    let kind = match args.get(3) {
        None => UnblockKind::Timeout,
        Some(word) if super::is(word, "TIMEOUT") => UnblockKind::Timeout,
        Some(word) if super::is(word, "ERROR") => UnblockKind::Error,
        Some(_) => return Err("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR".into()),
    };
    Ok((u64::try_from(client_id).unwrap_or(0), kind))
}

/// How a wait ended.
enum WaitEnd {
    Served,
    TimedOut,
    Unblocked(UnblockKind),
    Disconnected,
}

/// Runs a blocking command for `client` (the executor's entry point).
pub async fn run(
    shard: &Rc<Shard>,
    client: &mut Client,
    command: &'static BlockingCommand,
    args: &[&[u8]],
    out: &mut ReplySink,
) -> CommandResult {
    let since = Instant::now();
    let parsed = (command.parse)(args)?;
    // Inside EXEC (every shard held) a blocking command answers at once, as in Redis.
    let may_block = client.hold.is_none();
    let sequence = open_home(shard, client.handle.id);
    let id = (shard.index, sequence);
    let source_owner = shard.owner_of(args[parsed.keys[0]]);
    let (serve, pop_only) = match (parsed.push_to, command.serve_pop_only) {
        (Some((destination, _)), Some(pop_only))
            if shard.owner_of(args[destination]) != source_owner =>
        {
            (pop_only, true)
        }
        _ => (command.serve, false),
    };
    // The keys by owner, owners in the order of their first key.
    let mut groups: Vec<(usize, Vec<Vec<u8>>)> = Vec::new();
    for &position in &parsed.keys {
        let key = args[position];
        let owner = shard.owner_of(key);
        match groups
            .iter_mut()
            .find(|(group_owner, _)| *group_owner == owner)
        {
            Some((_, keys)) => keys.push(key.to_vec()),
            None => groups.push((owner, vec![key.to_vec()])),
        }
    }
    let packed = PackedArgs::new(args.iter().copied());
    let mut registered_on = Vec::new();
    let mut first = None;
    let mut failure = None;
    for (owner, keys) in groups {
        let waiter = KeyWaiter {
            id,
            since,
            db: client.db,
            keys,
            args: packed.clone(),
            protocol: client.protocol,
            serve,
            prepare: command.prepare,
        };
        match register_on(shard, owner, waiter, may_block, client.hold).await {
            BlockingReply::Served(served) => {
                first = Some(served);
                break;
            }
            BlockingReply::Registered => registered_on.push(owner),
            BlockingReply::Error(message) => {
                failure = Some(message);
                break;
            }
            _ => {}
        }
    }
    let waited = !(first.is_some() || failure.is_some() || registered_on.is_empty());
    let end = if !waited {
        WaitEnd::Served
    } else {
        wait_blocked(shard, sequence, &client.handle, parsed.timeout).await
    };
    // A peer that closed less than PEER_CHECK_INTERVAL before a push is still queued, and gets
    // served: writing the element to its closed socket would lose it. Redis's event loop sees
    // the close first and never serves such a client, so the element goes back where it was.
    let end = match end {
        WaitEnd::Served if waited && peer_closed(&client.handle) => WaitEnd::Disconnected,
        other => other,
    };
    let mut results = finish(shard, id, &registered_on).await;
    if first.is_none() && !results.is_empty() {
        first = Some(results.remove(0));
    }
    for extra in results {
        give_back(shard, client, extra).await;
    }
    if let Some(message) = failure {
        if let Some(served) = first {
            give_back(shard, client, served).await;
        }
        return Err(message.into());
    }
    match end {
        WaitEnd::Disconnected | WaitEnd::Unblocked(UnblockKind::Error) => {
            if let Some(served) = first {
                give_back(shard, client, served).await;
            }
            if matches!(end, WaitEnd::Disconnected) {
                client.close_after_reply = true;
                (command.nil)(out);
                return Ok(());
            }
            return Err("UNBLOCKED client unblocked via CLIENT UNBLOCK".into());
        }
        WaitEnd::Served | WaitEnd::TimedOut | WaitEnd::Unblocked(UnblockKind::Timeout) => {}
    }
    let Some(served) = first else {
        if may_block {
            (command.nil)(out);
        } else {
            (command.nil_without_blocking)(out);
        }
        return Ok(());
    };
    if let (Some((destination, push)), true) = (parsed.push_to, pop_only) {
        // The source's shard only popped: the push to the destination's shard completes the
        // move (not atomically with the pop; a destination of the wrong type gives the
        // element back).
        let Reply::Bulk(element) = &served.reply else {
            served.reply.write_to(out);
            return Ok(());
        };
        let push_args: [&[u8]; 3] = [push.as_bytes(), args[destination], element];
        let reply = run_keyspace(shard, client, client.db, &push_args).await;
        if let Some(message) = reply.error_message() {
            let message = message.to_owned();
            give_back(shard, client, served).await;
            return Err(message.into());
        }
    }
    served.reply.write_to(out);
    Ok(())
}

/// WAIT and WAITAOF: Ember has no replicas, so none will ever acknowledge. A client that asks
/// for at least one acknowledgement waits out its timeout (`None`: until CLIENT UNBLOCK or its
/// connection closes), as on a Redis primary without replicas, and is then told that none
/// acknowledged; inside EXEC it is told at once, as a command there never blocks. The caller
/// writes the reply.
///
/// # Errors
/// The UNBLOCKED error when CLIENT UNBLOCK ... ERROR ended the wait.
pub async fn wait_for_replicas(
    shard: &Rc<Shard>,
    client: &mut Client,
    replicas: i64,
    timeout: Option<Duration>,
) -> CommandResult {
    if replicas <= 0 || client.hold.is_some() {
        return Ok(());
    }
    let sequence = open_home(shard, client.handle.id);
    let end = wait_blocked(shard, sequence, &client.handle, timeout).await;
    shard.blocking.homes.borrow_mut().remove(&sequence);
    match end {
        WaitEnd::Unblocked(UnblockKind::Error) => {
            Err("UNBLOCKED client unblocked via CLIENT UNBLOCK".into())
        }
        WaitEnd::Disconnected => {
            client.close_after_reply = true;
            Ok(())
        }
        WaitEnd::Served | WaitEnd::TimedOut | WaitEnd::Unblocked(UnblockKind::Timeout) => Ok(()),
    }
}

/// WAIT's and WAITAOF's timeout: whole milliseconds, 0 for none.
///
/// # Errors
/// Redis's replies to a timeout that is not an integer, or is negative.
pub fn parse_timeout_ms(arg: &[u8]) -> Result<Option<Duration>, CommandError> {
    let milliseconds = super::parse_integer(arg)
        .map_err(|_| CommandError::from("ERR timeout is not an integer or out of range"))?;
    if milliseconds < 0 {
        return Err("ERR timeout is negative".into());
    }
    Ok((milliseconds > 0).then(|| Duration::from_millis(milliseconds as u64)))
}

async fn register_on(
    shard: &Rc<Shard>,
    owner: usize,
    waiter: KeyWaiter,
    block: bool,
    token: Option<HoldToken>,
) -> BlockingReply {
    if owner == shard.index {
        return register_here(shard, waiter, block, token).await;
    }
    let request = ShardRequest::Blocking(BlockingRequest::Register {
        waiter: Box::new(waiter),
        block,
        token,
    });
    // Counted down by the owner once processed (serving::answer).
    shard.shared.registrations_in_flight[owner].fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    match shard.call(owner, request).await {
        ShardReply::Blocking(reply) => reply,
        ShardReply::Reply(reply) => BlockingReply::Error(
            reply
                .error_message()
                .unwrap_or("ERR unexpected shard answer")
                .to_owned(),
        ),
        other => BlockingReply::Error(format!("ERR unexpected shard answer {other:?}")),
    }
}

/// Opens the home side of a wait for client `client_id` on this shard: its sequence there.
fn open_home(shard: &Shard, client_id: u64) -> u64 {
    let sequence = shard.blocking.next_sequence.get() + 1;
    shard.blocking.next_sequence.set(sequence);
    shard.blocking.homes.borrow_mut().insert(
        sequence,
        HomeWait {
            client_id,
            results: Vec::new(),
            unblocked: None,
            waker: None,
        },
    );
    sequence
}

/// [`wait`], counted in INFO's `blocked_clients` meanwhile.
async fn wait_blocked(
    shard: &Rc<Shard>,
    sequence: u64,
    handle: &ClientHandle,
    timeout: Option<Duration>,
) -> WaitEnd {
    let blocked = &shard.shared.blocked_clients;
    blocked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let end = wait(shard, sequence, handle, timeout).await;
    blocked.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    end
}

/// Waits for a result, the timeout, CLIENT UNBLOCK or the peer going away.
async fn wait(
    shard: &Rc<Shard>,
    sequence: u64,
    handle: &ClientHandle,
    timeout: Option<Duration>,
) -> WaitEnd {
    let deadline = timeout.map(|timeout| Instant::now() + timeout);
    loop {
        {
            let homes = shard.blocking.homes.borrow();
            let home = homes.get(&sequence).expect("the wait is registered");
            if !home.results.is_empty() {
                return WaitEnd::Served;
            }
            if let Some(kind) = home.unblocked {
                return WaitEnd::Unblocked(kind);
            }
        }
        if handle.killed.get() || peer_closed(handle) {
            return WaitEnd::Disconnected;
        }
        let now = Instant::now();
        let step = match deadline {
            Some(deadline) if deadline <= now => return WaitEnd::TimedOut,
            Some(deadline) => (deadline - now).min(PEER_CHECK_INTERVAL),
            None => PEER_CHECK_INTERVAL,
        };
        let woken = std::future::poll_fn(|cx| {
            let mut homes = shard.blocking.homes.borrow_mut();
            let home = homes.get_mut(&sequence).expect("the wait is registered");
            if !home.results.is_empty() || home.unblocked.is_some() {
                Poll::Ready(())
            } else {
                home.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        });
        futures_lite::future::or(woken, runtime::sleep(step)).await;
    }
}

/// True when the connection's peer closed it (a read would return end of stream).
fn peer_closed(handle: &ClientHandle) -> bool {
    let mut byte = 0u8;
    // SAFETY: `fd` is the socket of this connection, whose task is the caller, so it is open;
    // MSG_PEEK leaves any data in place, and the buffer is one valid byte.
    let read = unsafe {
        libc::recv(
            handle.fd,
            std::ptr::addr_of_mut!(byte).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    read == 0
}

/// Cancels the waiter on every shard it is queued on and forgets the wait; every result it
/// was served, in arrival order.
async fn finish(shard: &Rc<Shard>, id: WaiterId, registered_on: &[usize]) -> Vec<Served> {
    let mut late = Vec::new();
    for &owner in registered_on {
        if owner == shard.index {
            late.extend(cancel_here(shard, id));
            continue;
        }
        let request = ShardRequest::Blocking(BlockingRequest::Cancel { id });
        if let ShardReply::Blocking(BlockingReply::Cancelled(Some(served))) =
            shard.call(owner, request).await
        {
            late.push(served);
        }
    }
    let home = shard.blocking.homes.borrow_mut().remove(&id.1);
    let mut results = home.map(|home| home.results).unwrap_or_default();
    results.extend(late);
    results
}

/// Puts back what `served` took, on the shard that served it.
async fn give_back(shard: &Rc<Shard>, client: &Client, served: Served) {
    if let Some(undo) = served.undo {
        run_keyspace(shard, client, served.db, &undo.slices()).await;
    }
}

/// Runs a single-key keyspace command (a push, an undo) in `db` on the shard that owns its
/// key, and returns its reply.
async fn run_keyspace(shard: &Rc<Shard>, client: &Client, db: usize, args: &[&[u8]]) -> Reply {
    let Some(index) = super::lookup(args[0]) else {
        return Reply::Error("ERR unknown command".into());
    };
    let spec = &super::COMMANDS[index];
    let super::Handler::Keyspace(handler) = spec.handler else {
        return Reply::Error("ERR not a keyspace command".into());
    };
    let owner = shard.owner_of(args[1]);
    let caller = super::multikey::Caller {
        db,
        ..super::multikey::Caller::of(shard.index, client)
    };
    if owner != shard.index {
        let args = PackedArgs::new(args.iter().copied());
        let request = super::multikey::execute_request_as(caller, client, args, client.hold, false);
        return super::multikey::into_reply(shard.call(owner, request).await);
    }
    super::multikey::admit(shard, spec, args, db, client.hold, false).await;
    let mut sink = ReplySink::values(client.protocol);
    let now_ms = crate::stats::unix_time_ms();
    if let Err(error) =
        super::multikey::run_local_as(shard, handler, caller, now_ms, args, &mut sink)
    {
        sink.error(&error.0);
    }
    sink.into_reply()
}

/// The reply of a blocking list or zset pop that timed out: the null array.
pub fn nil_array(out: &mut ReplySink) {
    out.null_array();
}

/// The reply of BLMOVE and BRPOPLPUSH that timed out: the null bulk string.
pub fn nil_bulk(out: &mut ReplySink) {
    out.null();
}
