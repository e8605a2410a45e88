//! Pub/Sub: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, PUBLISH, PUBSUB, and the sharded
//! channels' SSUBSCRIBE, SUNSUBSCRIBE, SPUBLISH, with Redis's replies in RESP2 and RESP3.
//!
//! Subscriptions live on the connection's shard ([`crate::shard::pubsub`]); PUBLISH delivers
//! on its own shard and asks every other shard at once to deliver too, and the receivers'
//! counts add up. A connection with subscriptions writes the messages pushed to it between
//! its requests and while it waits for the next one ([`next_input`]); while it waits with
//! nothing else pending, a message goes straight to its socket on the shard's ring.

mod introspect;

pub use introspect::info_lines;

use std::collections::HashMap;
use std::future::Future;
use std::rc::Rc;

use ember_resp::{Protocol, ReplySink};
use smallvec::SmallVec;

use super::{
    command, CommandFlags, CommandResult, CommandSpec, ConnectionCtx, KeySpec, ALL_KEYS, NO_KEYS,
    ONE_KEY,
};
use crate::client::Client;
use crate::shard::pubsub::{Namespace, PubSubRequest, Subscriber};
use crate::shard::{PendingReply, Shard, ShardReply, ShardRequest};

/// PUBLISH, SPUBLISH and PUBSUB: they ask every shard, so the executor awaits them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PubSubOp {
    /// PUBLISH
    Publish,
    /// SPUBLISH
    SPublish,
    /// PUBSUB
    PubSub,
}

type F = CommandFlags;
/// Redis's flags of the subscribing commands.
const SUBSCRIBING: F = F::PUBSUB
    .union(F::NOSCRIPT)
    .union(F::LOADING)
    .union(F::STALE)
    .union(F::PUBSUB_CONTEXT);
/// Redis's flags of PUBLISH and SPUBLISH.
const PUBLISHING: F = F::PUBSUB.union(F::LOADING).union(F::STALE).union(F::FAST);
/// SUNSUBSCRIBE's channels are all its arguments (Redis declares them as keys).
const FROM_FIRST: KeySpec = ALL_KEYS;

use super::Handler::{Connection, PubSub};

/// This family's commands, in COMMAND's order.
pub static COMMANDS: &[CommandSpec] = &[
    command(
        "subscribe",
        -2,
        SUBSCRIBING,
        NO_KEYS,
        "pubsub",
        "2.0.0",
        "Listens for messages published to channels.",
        Connection(subscribe),
    ),
    command(
        "unsubscribe",
        -1,
        SUBSCRIBING,
        NO_KEYS,
        "pubsub",
        "2.0.0",
        "Stops listening to messages posted to channels.",
        Connection(unsubscribe),
    ),
    command(
        "psubscribe",
        -2,
        SUBSCRIBING,
        NO_KEYS,
        "pubsub",
        "2.0.0",
        "Listens for messages published to channels that match one or more patterns.",
        Connection(psubscribe),
    ),
    command(
        "punsubscribe",
        -1,
        SUBSCRIBING,
        NO_KEYS,
        "pubsub",
        "2.0.0",
        "Stops listening to messages published to channels that match one or more patterns.",
        Connection(punsubscribe),
    ),
    command(
        "ssubscribe",
        -2,
        SUBSCRIBING,
        FROM_FIRST,
        "pubsub",
        "7.0.0",
        "Listens for messages published to shard channels.",
        Connection(ssubscribe),
    ),
    command(
        "sunsubscribe",
        -1,
        SUBSCRIBING,
        FROM_FIRST,
        "pubsub",
        "7.0.0",
        "Stops listening to messages posted to shard channels.",
        Connection(sunsubscribe),
    ),
    command(
        "publish",
        3,
        PUBLISHING,
        NO_KEYS,
        "pubsub",
        "2.0.0",
        "Posts a message to a channel.",
        PubSub(PubSubOp::Publish),
    ),
    command(
        "spublish",
        3,
        PUBLISHING,
        ONE_KEY,
        "pubsub",
        "7.0.0",
        "Post a message to a shard channel",
        PubSub(PubSubOp::SPublish),
    ),
    command(
        "pubsub",
        -2,
        F::empty(),
        NO_KEYS,
        "pubsub",
        "2.8.0",
        "A container for Pub/Sub commands.",
        PubSub(PubSubOp::PubSub),
    ),
];

/// What a connection listens to: three sets of names, each remembering the order of
/// subscription (UNSUBSCRIBE with no argument answers in that order).
#[derive(Debug, Default)]
pub struct Subscriptions {
    /// Created at the first subscription; the shard's tables hold it too.
    subscriber: Option<Rc<Subscriber>>,
    channels: HashMap<Vec<u8>, u64>,
    patterns: HashMap<Vec<u8>, u64>,
    shard_channels: HashMap<Vec<u8>, u64>,
    next_sequence: u64,
}

/// Which of a connection's three sets a command works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Set {
    Channels,
    Patterns,
    ShardChannels,
}

impl Set {
    fn namespace(self) -> Namespace {
        match self {
            Self::Channels | Self::Patterns => Namespace::Global,
            Self::ShardChannels => Namespace::Shard,
        }
    }

    fn is_pattern(self) -> bool {
        self == Self::Patterns
    }

    /// The confirmation's first element.
    fn verb(self, subscribing: bool) -> &'static [u8] {
        match (self, subscribing) {
            (Self::Channels, true) => b"subscribe",
            (Self::Channels, false) => b"unsubscribe",
            (Self::Patterns, true) => b"psubscribe",
            (Self::Patterns, false) => b"punsubscribe",
            (Self::ShardChannels, true) => b"ssubscribe",
            (Self::ShardChannels, false) => b"sunsubscribe",
        }
    }
}

impl Subscriptions {
    fn names(&mut self, set: Set) -> &mut HashMap<Vec<u8>, u64> {
        match set {
            Set::Channels => &mut self.channels,
            Set::Patterns => &mut self.patterns,
            Set::ShardChannels => &mut self.shard_channels,
        }
    }

    /// The count a confirmation carries: channels and patterns together, shard channels alone
    /// (Redis's `clientSubscriptionsCount` and `clientShardSubscriptionsCount`).
    fn count(&self, set: Set) -> usize {
        match set {
            Set::Channels | Set::Patterns => self.channels.len() + self.patterns.len(),
            Set::ShardChannels => self.shard_channels.len(),
        }
    }

    /// Shows the counts in CLIENT LIST.
    fn publish_counts(&self, handle: &crate::client::ClientHandle) {
        handle.subscription_counts.set([
            self.channels.len(),
            self.patterns.len(),
            self.shard_channels.len(),
        ]);
    }

    /// True while the connection listens to anything (Redis's `CLIENT_PUBSUB`).
    pub fn active(&self) -> bool {
        !(self.channels.is_empty() && self.patterns.is_empty() && self.shard_channels.is_empty())
    }

    /// The names of `set` in subscription order.
    fn ordered(&self, set: Set) -> Vec<Vec<u8>> {
        let names = match set {
            Set::Channels => &self.channels,
            Set::Patterns => &self.patterns,
            Set::ShardChannels => &self.shard_channels,
        };
        let mut ordered: Vec<(&Vec<u8>, u64)> = names.iter().map(|(n, s)| (n, *s)).collect();
        ordered.sort_unstable_by_key(|(_, sequence)| *sequence);
        ordered.into_iter().map(|(name, _)| name.clone()).collect()
    }
}

/// True for a RESP2 connection with subscriptions: it may only run the commands flagged
/// [`CommandFlags::PUBSUB_CONTEXT`], and PING answers `["pong", message]`.
pub fn in_resp2_context(client: &Client) -> bool {
    client.protocol == Protocol::Resp2 && client.subscriptions.active()
}

/// Redis's refusal of other commands in that context. Redis names a container's subcommand as
/// `container|subcommand`; the table does not list subcommands, so the containers Ember has
/// are named here.
pub fn context_error(spec: &CommandSpec, args: &[&[u8]]) -> String {
    const CONTAINERS: &[&str] = &[
        "client", "config", "object", "pubsub", "command", "slowlog", "latency", "function",
        "memory", "acl", "script", "xinfo", "xgroup", "cluster",
    ];
    let name = match args.get(1) {
        Some(sub) if CONTAINERS.contains(&spec.name) => format!(
            "{}|{}",
            spec.name,
            String::from_utf8_lossy(sub).to_ascii_lowercase()
        ),
        _ => spec.name.to_string(),
    };
    format!("ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context")
}

/// SUBSCRIBE channel [channel ...]
pub fn subscribe(ctx: &mut ConnectionCtx<'_>, args: &[&[u8]]) -> CommandResult {
    add(ctx, Set::Channels, &args[1..]);
    Ok(())
}

/// PSUBSCRIBE pattern [pattern ...]
pub fn psubscribe(ctx: &mut ConnectionCtx<'_>, args: &[&[u8]]) -> CommandResult {
    add(ctx, Set::Patterns, &args[1..]);
    Ok(())
}

/// SSUBSCRIBE shardchannel [shardchannel ...]
pub fn ssubscribe(ctx: &mut ConnectionCtx<'_>, args: &[&[u8]]) -> CommandResult {
    add(ctx, Set::ShardChannels, &args[1..]);
    Ok(())
}

/// UNSUBSCRIBE [channel ...]
pub fn unsubscribe(ctx: &mut ConnectionCtx<'_>, args: &[&[u8]]) -> CommandResult {
    drop_names(ctx, Set::Channels, &args[1..]);
    Ok(())
}

/// PUNSUBSCRIBE [pattern ...]
pub fn punsubscribe(ctx: &mut ConnectionCtx<'_>, args: &[&[u8]]) -> CommandResult {
    drop_names(ctx, Set::Patterns, &args[1..]);
    Ok(())
}

/// SUNSUBSCRIBE [shardchannel ...]
pub fn sunsubscribe(ctx: &mut ConnectionCtx<'_>, args: &[&[u8]]) -> CommandResult {
    drop_names(ctx, Set::ShardChannels, &args[1..]);
    Ok(())
}

/// Subscribes to each name (again is no change) and confirms each.
fn add(ctx: &mut ConnectionCtx<'_>, set: Set, names: &[&[u8]]) {
    let client = &mut *ctx.client;
    let subscriber = client
        .subscriptions
        .subscriber
        .get_or_insert_with(|| Subscriber::new(client.handle.clone(), client.protocol))
        .clone();
    subscriber.set_protocol(client.protocol);
    subscriber.user.replace(client.user.clone());
    let subscriptions = &mut client.subscriptions;
    for name in names {
        let sequence = subscriptions.next_sequence;
        if !subscriptions.names(set).contains_key(*name) {
            subscriptions.names(set).insert(name.to_vec(), sequence);
            subscriptions.next_sequence += 1;
            ctx.shard
                .pubsub
                .add(set.namespace(), set.is_pattern(), name, &subscriber);
        }
        confirm(
            ctx.out,
            set.verb(true),
            Some(name),
            subscriptions.count(set),
        );
    }
    subscriptions.publish_counts(&client.handle);
}

/// Unsubscribes from each name, or from every name of `set` when none is given, and confirms
/// each (a name not subscribed is confirmed too, as Redis does).
fn drop_names(ctx: &mut ConnectionCtx<'_>, set: Set, names: &[&[u8]]) {
    let id = ctx.client.handle.id;
    let subscriptions = &mut ctx.client.subscriptions;
    let names: Vec<Vec<u8>> = if names.is_empty() {
        subscriptions.ordered(set)
    } else {
        names.iter().map(|name| name.to_vec()).collect()
    };
    if names.is_empty() {
        confirm(ctx.out, set.verb(false), None, subscriptions.count(set));
        return;
    }
    for name in &names {
        if subscriptions.names(set).remove(name).is_some() {
            ctx.shard
                .pubsub
                .remove(set.namespace(), set.is_pattern(), name, id);
        }
        confirm(
            ctx.out,
            set.verb(false),
            Some(name),
            subscriptions.count(set),
        );
    }
    subscriptions.publish_counts(&ctx.client.handle);
}

/// A (un)subscription confirmation: a push in RESP3, an array in RESP2.
fn confirm(out: &mut ReplySink, verb: &[u8], name: Option<&[u8]>, count: usize) {
    out.push_len(3);
    out.bulk(verb);
    match name {
        Some(name) => out.bulk(name),
        None => out.null(),
    }
    out.integer(count as i64);
}

/// Drops every subscription of `client` without confirmations (RESET, disconnection).
pub fn unsubscribe_all(shard: &Shard, client: &mut Client) {
    let id = client.handle.id;
    let subscriptions = &mut client.subscriptions;
    for set in [Set::Channels, Set::Patterns, Set::ShardChannels] {
        for (name, _) in subscriptions.names(set).drain() {
            shard
                .pubsub
                .remove(set.namespace(), set.is_pattern(), &name, id);
        }
    }
    subscriptions.subscriber = None;
    subscriptions.publish_counts(&client.handle);
}

/// Runs PUBLISH, SPUBLISH or PUBSUB.
pub async fn run(
    op: PubSubOp,
    shard: &Shard,
    client: &Client,
    args: &[&[u8]],
    out: &mut ReplySink,
) -> CommandResult {
    match op {
        PubSubOp::Publish | PubSubOp::SPublish => {
            if let Some(publishing) = start_publish(op, shard, client, args, out).await {
                let receivers = publishing.receivers().await;
                out.integer(receivers as i64);
            }
            Ok(())
        }
        PubSubOp::PubSub => introspect::introspect(shard, args, out).await,
    }
}

/// A PUBLISH delivered here and sent to the other shards, whose counts of receivers are on
/// their way.
pub struct Publishing<'s> {
    /// Receivers on this shard.
    local: usize,
    others: SmallVec<[PendingReply<'s>; 1]>,
}

impl Publishing<'_> {
    /// Receivers on every shard, once each shard has delivered.
    pub async fn receivers(self) -> usize {
        let mut receivers = self.local;
        for reply in self.others {
            if let ShardReply::Integer(count) = reply.await {
                receivers += count as usize;
            }
        }
        receivers
    }
}

/// Starts PUBLISH or SPUBLISH (`op`): delivers here and sends the message to every other
/// shard. `None` when the reply is already written (a channel filter dropped the message);
/// otherwise the reply is the count of receivers of what is returned. A (RESP3) publisher
/// listening to its own channel finds the message in `out`, before the reply, as from Redis.
pub async fn start_publish<'s>(
    op: PubSubOp,
    shard: &'s Shard,
    client: &Client,
    args: &[&[u8]],
    out: &mut ReplySink,
) -> Option<Publishing<'s>> {
    debug_assert!(matches!(op, PubSubOp::Publish | PubSubOp::SPublish));
    let namespace = if op == PubSubOp::Publish {
        Namespace::Global
    } else {
        Namespace::Shard
    };
    // A filter attached to the channel drops or masks the message before fan-out.
    let Some(message) = super::filter::screen(shard, args[1], args[2]) else {
        out.integer(0);
        return None;
    };
    let publishing = send_publish(shard, namespace, args[1], &message).await;
    take_pushes(client, out);
    Some(publishing)
}

/// Sends `message` on `channel` to every other shard (one mesh message each, whatever the
/// number of subscribers there), then delivers it here: the shards deliver at the same time,
/// each to its own subscribers.
async fn send_publish<'s>(
    shard: &'s Shard,
    namespace: Namespace,
    channel: &[u8],
    message: &[u8],
) -> Publishing<'s> {
    let mut others = SmallVec::new();
    for index in (0..shard.count()).filter(|&index| index != shard.index) {
        let request = PubSubRequest::Publish {
            namespace,
            channel: channel.to_vec(),
            message: message.to_vec(),
        };
        others.push(shard.send(index, ShardRequest::PubSub(request)).await);
    }
    let limit = shard.config.borrow().pubsub_output_limit;
    let now_ms = crate::stats::unix_time_ms();
    let local = shard
        .pubsub
        .deliver(namespace, channel, message, limit, now_ms);
    Publishing { local, others }
}

/// Sends `request` to every other shard at once and returns their replies.
pub async fn ask_others(shard: &Shard, request: &PubSubRequest) -> Vec<ShardReply> {
    let mut pending = Vec::with_capacity(shard.count());
    for index in (0..shard.count()).filter(|&index| index != shard.index) {
        pending.push(
            shard
                .send(index, ShardRequest::PubSub(request.clone()))
                .await,
        );
    }
    let mut replies = Vec::with_capacity(pending.len());
    for reply in pending {
        replies.push(reply.await);
    }
    replies
}

/// Sends the keyspace events raised here to every other shard and waits until each has
/// delivered them, so that a reply sent after this follows its events everywhere.
pub async fn forward_events(shard: &Shard) {
    forward(shard, shard.pubsub.take_forwards()).await;
}

/// Sends `events` (taken from this shard's queue) to every other shard and waits until each
/// has delivered them.
pub async fn forward(shard: &Shard, events: Vec<crate::shard::pubsub::Publication>) {
    if events.is_empty() {
        return;
    }
    let mut pending = Vec::with_capacity(events.len() * shard.count());
    for index in (0..shard.count()).filter(|&index| index != shard.index) {
        for event in &events {
            let request = PubSubRequest::Publish {
                namespace: Namespace::Global,
                channel: event.channel.clone(),
                message: event.message.clone(),
            };
            pending.push(shard.send(index, ShardRequest::PubSub(request)).await);
        }
    }
    for reply in pending {
        reply.await;
    }
}

/// Answers another shard's Pub/Sub request (never waits: nothing here touches the keyspace,
/// so holds do not apply).
pub fn answer(shard: &Shard, request: PubSubRequest) -> ShardReply {
    let pubsub = &shard.pubsub;
    match request {
        PubSubRequest::Publish {
            namespace,
            channel,
            message,
        } => {
            let limit = shard.config.borrow().pubsub_output_limit;
            let now_ms = crate::stats::unix_time_ms();
            let receivers = pubsub.deliver(namespace, &channel, &message, limit, now_ms);
            ShardReply::Integer(receivers as i64)
        }
        PubSubRequest::Channels { namespace, pattern } => {
            ShardReply::Keys(pubsub.channel_names(namespace, pattern.as_deref()))
        }
        PubSubRequest::NumSub {
            namespace,
            channels,
        } => ShardReply::Counts(
            channels
                .iter()
                .map(|channel| pubsub.subscriber_count(namespace, channel))
                .collect(),
        ),
        PubSubRequest::Patterns => ShardReply::Keys(pubsub.pattern_names()),
    }
}

/// Waits for what comes first: the connection's next input (`read`), or messages pushed to it
/// (`None`; take them with [`take_pushes`]). A connection with no subscription just reads.
/// Dropping `read` when messages come first loses nothing: every read path of a connection
/// takes bytes only when it returns them.
pub async fn next_input<T>(client: &Client, read: impl Future<Output = T>) -> Option<T> {
    let pushes = &client.handle.pushes;
    let Some(subscriber) = client.subscriptions.subscriber.as_ref() else {
        // Only a RESP3 connection (client tracking's invalidations) or a monitor takes
        // pushes outside Pub/Sub; any connection is woken to give back its buffers when idle
        // (`None` as well, with nothing to take).
        return futures_lite::future::or(async { Some(read.await) }, async {
            pushes.ready().await;
            None
        })
        .await;
    };
    subscriber.written();
    // The connection flushed all its output before it came to read: while it waits, a
    // message may go straight to its socket (when one was attached with [`attach_socket`]).
    let _waiting = subscriber.waiting();
    futures_lite::future::or(async { Some(read.await) }, async {
        futures_lite::future::or(subscriber.ready(), pushes.ready()).await;
        None
    })
    .await
}

/// Gives the subscriber of `client`, if it has one, the connection's socket on the shard's
/// ring, through which messages reach it while it waits for input ([`next_input`]).
pub fn attach_socket(client: &Client, socket: Option<&crate::io::Socket>) {
    if let (Some(subscriber), Some(socket)) = (client.subscriptions.subscriber.as_ref(), socket) {
        subscriber.attach(|| socket.share());
    }
}

/// Moves the messages pushed to `client` into its output, after the replies already there
/// (only into a connection's output: a script's value sink leaves them queued).
pub fn take_pushes(client: &Client, out: &mut ReplySink) {
    if !out.holds_bytes() {
        return;
    }
    if let Some(subscriber) = client.subscriptions.subscriber.as_ref() {
        subscriber.set_protocol(client.protocol);
        subscriber.take_into(out.bytes_mut());
    }
    client.handle.pushes.take_into(out.bytes_mut());
}
