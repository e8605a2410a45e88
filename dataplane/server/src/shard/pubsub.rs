//! A shard's Pub/Sub state: which of its own connections listen to which channels, patterns
//! and shard channels, and each subscribed connection's queue of pushed messages.
//!
//! Nothing here is shared between shards. A message published anywhere reaches every shard (the
//! publisher's shard delivers it to its own subscribers and sends it to the others over the
//! mesh as a [`PubSubRequest::Publish`]); each shard counts its own receivers and the counts add
//! up. Delivering never waits for a subscriber: the message is encoded into the subscriber's
//! queue and its connection task is woken to write it. A subscriber whose queue grows past
//! `client-output-buffer-limit pubsub` is cut, so one slow reader never slows anybody else.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

use ember_resp::{encode, Protocol};
use ember_store::glob::glob_match;

use crate::client::ClientHandle;
use crate::io::SocketRef;

/// Where a channel name lives: Redis keeps ordinary channels (with patterns) and shard channels
/// (SSUBSCRIBE, SPUBLISH) apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Namespace {
    /// SUBSCRIBE, PSUBSCRIBE and PUBLISH.
    Global,
    /// SSUBSCRIBE and SPUBLISH.
    Shard,
}

/// Pub/Sub work one shard asks of another.
#[derive(Debug, Clone)]
pub enum PubSubRequest {
    /// Deliver `message` to this shard's subscribers of `channel`; the reply counts receivers.
    Publish {
        namespace: Namespace,
        channel: Vec<u8>,
        message: Vec<u8>,
    },
    /// Channels with at least one subscriber here, matching `pattern` when given.
    Channels {
        namespace: Namespace,
        pattern: Option<Vec<u8>>,
    },
    /// Subscribers here of each of `channels`.
    NumSub {
        namespace: Namespace,
        channels: Vec<Vec<u8>>,
    },
    /// Patterns with at least one subscriber here.
    Patterns,
}

/// The output buffer limit of subscribed clients (`client-output-buffer-limit pubsub ...`),
/// Redis's three numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputLimit {
    /// Cut at once when this many bytes are pending (0: no hard limit).
    pub hard_bytes: u64,
    /// Cut when this many bytes stay pending for longer than `soft_seconds` (0: no soft limit).
    pub soft_bytes: u64,
    /// How long the soft limit may be exceeded.
    pub soft_seconds: u64,
}

impl OutputLimit {
    /// Redis's default for pub/sub clients: `32mb 8mb 60`.
    pub const PUBSUB_DEFAULT: Self = Self {
        hard_bytes: 32 * 1024 * 1024,
        soft_bytes: 8 * 1024 * 1024,
        soft_seconds: 60,
    };
}

/// Redis's client classes in `client-output-buffer-limit`, in the order CONFIG GET prints them.
const CLIENT_CLASSES: [&str; 3] = ["normal", "slave", "pubsub"];

/// Checks a `client-output-buffer-limit` value against the `previous` one and returns the
/// whole setting in Redis's form (every class, numbers in bytes): a value may name only some
/// classes, the others keep what they had.
///
/// # Errors
/// Redis's reasons: a count of words that is not a multiple of four, an unknown class, or a
/// number that does not parse.
pub fn merge_output_limits(previous: &str, value: &str) -> Result<String, String> {
    let mut limits: Vec<[u64; 3]> = CLIENT_CLASSES
        .iter()
        .map(|class| class_limit(previous, class).unwrap_or([0, 0, 0]))
        .collect();
    let words: Vec<&str> = value.split_whitespace().collect();
    if words.len() % 4 != 0 {
        return Err("Wrong number of arguments in buffer limit configuration.".into());
    }
    for group in words.chunks(4) {
        let class = match group[0].to_ascii_lowercase().as_str() {
            "normal" => 0,
            "slave" | "replica" => 1,
            "pubsub" => 2,
            _ => {
                return Err("Invalid client class specified in buffer limit configuration.".into())
            }
        };
        let number_error = || {
            "Error in hard, soft or soft_seconds setting in buffer limit configuration.".to_string()
        };
        let bytes = |word: &str| {
            crate::config::parse_memory(word)
                .and_then(|bytes| u64::try_from(bytes).ok())
                .ok_or_else(number_error)
        };
        let seconds = group[3].parse::<u64>().map_err(|_| number_error())?;
        limits[class] = [bytes(group[1])?, bytes(group[2])?, seconds];
    }
    Ok(CLIENT_CLASSES
        .iter()
        .zip(&limits)
        .map(|(class, [hard, soft, seconds])| format!("{class} {hard} {soft} {seconds}"))
        .collect::<Vec<_>>()
        .join(" "))
}

/// The three numbers of `class` in a setting written by [`merge_output_limits`].
pub fn class_limit(setting: &str, class: &str) -> Option<[u64; 3]> {
    let words: Vec<&str> = setting.split_whitespace().collect();
    let group = words.chunks(4).find(|group| group[0] == class)?;
    let mut numbers = [0u64; 3];
    for (number, word) in numbers.iter_mut().zip(&group[1..]) {
        *number = word.parse().ok()?;
    }
    Some(numbers)
}

/// The pub/sub class's limit in a setting written by [`merge_output_limits`].
pub fn pubsub_output_limit(setting: &str) -> OutputLimit {
    class_limit(setting, "pubsub").map_or(
        OutputLimit::PUBSUB_DEFAULT,
        |[hard_bytes, soft_bytes, soft_seconds]| OutputLimit {
            hard_bytes,
            soft_bytes,
            soft_seconds,
        },
    )
}

/// A subscribed connection as its shard sees it: where its pushed messages wait for the
/// connection task, which writes them between requests or while it waits for the next one.
#[derive(Debug)]
pub struct Subscriber {
    /// The connection (its id identifies the subscriber; CLIENT KILL reaches it through it).
    pub handle: Rc<ClientHandle>,
    /// The protocol messages are encoded in (RESP3 pushes or RESP2 arrays).
    protocol: Cell<Protocol>,
    /// Encoded messages not yet taken by the connection task.
    queue: RefCell<Vec<u8>>,
    /// Bytes taken by the connection task and not yet known to be written.
    writing_len: Cell<usize>,
    /// The connection task, while it waits.
    waker: RefCell<Option<Waker>>,
    /// Since when the soft limit has been exceeded (milliseconds since the epoch).
    soft_exceeded_since_ms: Cell<Option<u64>>,
    /// Past its output limit: nothing more is queued, the connection is closing.
    cut: Cell<bool>,
    /// The ACL user the connection subscribed as (`None`: default), whose channel permissions
    /// it keeps (ACL SETUSER closes it when they are revoked).
    pub user: RefCell<Option<std::sync::Arc<crate::commands::acl::AclUser>>>,
    /// The connection's socket on the shard's ring (none for TLS or without io_uring).
    socket: RefCell<Option<SocketRef>>,
    /// True while the connection's task waits for input with all its output handed to the
    /// socket ([`Subscriber::waiting`]): a message may then go straight to the socket.
    waiting: Cell<bool>,
}

/// Marks a subscriber's connection as waiting for input while it lives.
pub struct Waiting<'a>(&'a Subscriber);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.set(false);
    }
}

impl Subscriber {
    /// A subscriber for the connection `handle`, speaking `protocol`.
    pub fn new(handle: Rc<ClientHandle>, protocol: Protocol) -> Rc<Self> {
        Rc::new(Self {
            handle,
            protocol: Cell::new(protocol),
            queue: RefCell::new(Vec::new()),
            writing_len: Cell::new(0),
            waker: RefCell::new(None),
            soft_exceeded_since_ms: Cell::new(None),
            cut: Cell::new(false),
            user: RefCell::new(None),
            socket: RefCell::new(None),
            waiting: Cell::new(false),
        })
    }

    /// Gives the subscriber its connection's socket, once.
    pub fn attach(&self, socket: impl FnOnce() -> SocketRef) {
        let mut attached = self.socket.borrow_mut();
        if attached.is_none() {
            *attached = Some(socket());
        }
    }

    /// The connection's task waits for input and has handed all its output to the socket:
    /// until the returned guard drops, a message whose subscriber has nothing queued is copied
    /// straight into the socket's next send, without waking the task.
    pub fn waiting(&self) -> Waiting<'_> {
        self.waiting.set(true);
        Waiting(self)
    }

    /// The connection switched protocol (HELLO): later messages are encoded in the new one.
    pub fn set_protocol(&self, protocol: Protocol) {
        self.protocol.set(protocol);
    }

    /// Delivers one message, `frame` being its push encoded in the subscriber's protocol,
    /// unless the subscriber was cut. While the connection waits for input with nothing queued
    /// and nothing in flight, the frame goes straight to its socket (returns its length, the
    /// bytes sent); otherwise it is queued for the connection task, which is woken, and the
    /// subscriber is cut when its queue passes `limit` (returns 0).
    fn push(&self, frame: &[u8], limit: OutputLimit, now_ms: u64) -> usize {
        if self.cut.get() {
            return 0;
        }
        let mut queue = self.queue.borrow_mut();
        if queue.is_empty() && self.sent_directly(frame) {
            // Nothing pending: the soft limit's clock stops, as for an emptied queue.
            self.soft_exceeded_since_ms.set(None);
            return frame.len();
        }
        let was_empty = queue.is_empty();
        queue.extend_from_slice(frame);
        if was_empty {
            if let Some(waker) = self.waker.borrow_mut().take() {
                waker.wake();
            }
        }
        self.handle.limits.set_pushes_len(queue.len());
        let pending_len = (queue.len() + self.writing_len.get()) as u64;
        drop(queue);
        if self.over_limit(pending_len, limit, now_ms) {
            self.cut_off();
        }
        0
    }

    /// Sends `frame` on the socket at once if the connection waits with nothing of its own
    /// pending (no other push queued for it, nothing in flight on the socket): the frame then
    /// cannot overtake anything the connection sent or was given before.
    fn sent_directly(&self, frame: &[u8]) -> bool {
        if !self.waiting.get() || self.handle.killed.get() || !self.handle.pushes.is_empty() {
            return false;
        }
        self.socket
            .borrow()
            .as_ref()
            .is_some_and(|socket| socket.send_copy(frame))
    }

    /// Redis's rule (`checkClientOutputBufferLimits`): over the hard limit at once, or over the
    /// soft limit for longer than its seconds.
    fn over_limit(&self, pending_len: u64, limit: OutputLimit, now_ms: u64) -> bool {
        if limit.hard_bytes > 0 && pending_len >= limit.hard_bytes {
            return true;
        }
        if limit.soft_bytes == 0 || pending_len < limit.soft_bytes {
            self.soft_exceeded_since_ms.set(None);
            return false;
        }
        match self.soft_exceeded_since_ms.get() {
            None => {
                self.soft_exceeded_since_ms.set(Some(now_ms));
                false
            }
            Some(since_ms) => now_ms.saturating_sub(since_ms) > limit.soft_seconds * 1000,
        }
    }

    fn cut_off(&self) {
        self.cut.set(true);
        self.queue.borrow_mut().clear();
        self.queue.borrow_mut().shrink_to_fit();
        self.handle.limits.set_pushes_len(0);
        eprintln!(
            "ember: client {} ({}) closed for overcoming of output buffer limits",
            self.handle.id, self.handle.addr
        );
        self.handle.kill();
        if let Some(waker) = self.waker.borrow_mut().take() {
            waker.wake();
        }
    }

    /// Moves the queued messages to the end of `out` (the connection's output).
    pub fn take_into(&self, out: &mut Vec<u8>) {
        let mut queue = self.queue.borrow_mut();
        if queue.is_empty() {
            return;
        }
        self.writing_len.set(self.writing_len.get() + queue.len());
        self.handle.limits.set_pushes_len(0);
        if out.is_empty() {
            std::mem::swap(out, &mut queue);
        } else {
            out.extend_from_slice(&queue);
            queue.clear();
        }
    }

    /// What was taken has been written (the connection reads again).
    pub fn written(&self) {
        self.writing_len.set(0);
    }

    /// Waits until messages are queued (or the subscriber was cut).
    pub async fn ready(&self) {
        poll_fn(|cx| {
            if self.cut.get() || !self.queue.borrow().is_empty() {
                return Poll::Ready(());
            }
            *self.waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await;
    }
}

/// Subscribers of each name, in subscription order.
type Listeners = HashMap<Vec<u8>, Audience>;

/// The subscribers of one name: a list to deliver to, and where each is in it, so that a
/// connection joins or leaves in constant time however many listen (10,000 subscribers that
/// disconnect would otherwise cost 50 million comparisons).
#[derive(Debug, Default)]
struct Audience {
    subscribers: Vec<Rc<Subscriber>>,
    /// Client id to index in `subscribers`.
    positions: HashMap<u64, usize>,
}

impl Audience {
    fn len(&self) -> usize {
        self.subscribers.len()
    }

    fn is_empty(&self) -> bool {
        self.subscribers.is_empty()
    }

    fn iter(&self) -> std::slice::Iter<'_, Rc<Subscriber>> {
        self.subscribers.iter()
    }

    /// Adds `subscriber`, which is not in yet.
    fn add(&mut self, subscriber: &Rc<Subscriber>) {
        let previous = self
            .positions
            .insert(subscriber.handle.id, self.subscribers.len());
        assert!(previous.is_none(), "a connection listens to a name once");
        self.subscribers.push(subscriber.clone());
    }

    /// Removes the subscriber `id`, if in (the last one takes its place).
    fn remove(&mut self, id: u64) {
        let Some(position) = self.positions.remove(&id) else {
            return;
        };
        self.subscribers.swap_remove(position);
        if let Some(moved) = self.subscribers.get(position) {
            self.positions.insert(moved.handle.id, position);
        }
        debug_assert_eq!(self.positions.len(), self.subscribers.len());
    }
}

/// A message to send to every other shard (a keyspace event raised here).
#[derive(Debug, Clone)]
pub struct Publication {
    /// The channel.
    pub channel: Vec<u8>,
    /// The message.
    pub message: Vec<u8>,
}

/// One shard's subscriptions.
#[derive(Debug, Default)]
pub struct PubSub {
    channels: RefCell<Listeners>,
    patterns: RefCell<Listeners>,
    shard_channels: RefCell<Listeners>,
    /// Keyspace events raised by commands that ran here, still to be sent to the other shards;
    /// whoever ran the command sends them before its reply leaves, so a client that saw the
    /// reply can count on every subscriber having the event.
    forwards: RefCell<Vec<Publication>>,
    /// False with one shard: nothing is ever forwarded.
    forwarding: bool,
    /// The push being delivered, encoded in each protocol (buffers reused by every delivery).
    frames: RefCell<Frames>,
    /// Bytes sent straight to subscribers' sockets, not yet counted in the shard's stats.
    sent_len: Cell<u64>,
}

/// One push encoded in both protocols, each encoding made when first asked for: a message
/// reaches thousands of subscribers with one encoding and a copy each.
#[derive(Debug, Default)]
struct Frames {
    /// RESP2's array and RESP3's push; empty until asked for.
    encoded: [Vec<u8>; 2],
    /// The parts, each a bulk string (the same in both protocols; only the header differs).
    parts: Vec<u8>,
    part_count: usize,
}

impl Frames {
    /// Starts a new push of `parts`, one bulk string each.
    fn encode(&mut self, parts: &[&[u8]]) {
        self.parts.clear();
        for part in parts {
            encode::bulk(&mut self.parts, part);
        }
        self.part_count = parts.len();
        self.encoded[0].clear();
        self.encoded[1].clear();
    }

    /// The push in `protocol`.
    fn get(&mut self, protocol: Protocol) -> &[u8] {
        let index = usize::from(protocol == Protocol::Resp3);
        let frame = &mut self.encoded[index];
        if frame.is_empty() {
            encode::push_len(frame, self.part_count, protocol);
            frame.extend_from_slice(&self.parts);
        }
        frame
    }
}

impl PubSub {
    /// Empty state for a shard among `shard_count`.
    pub fn new(shard_count: usize) -> Self {
        Self {
            forwarding: shard_count > 1,
            ..Self::default()
        }
    }

    fn listeners(&self, namespace: Namespace, pattern: bool) -> &RefCell<Listeners> {
        match (namespace, pattern) {
            (Namespace::Shard, _) => &self.shard_channels,
            (Namespace::Global, false) => &self.channels,
            (Namespace::Global, true) => &self.patterns,
        }
    }

    /// Adds `subscriber` to the listeners of `name` (a pattern when `pattern`). The caller has
    /// checked that it was not listening yet.
    pub fn add(
        &self,
        namespace: Namespace,
        pattern: bool,
        name: &[u8],
        subscriber: &Rc<Subscriber>,
    ) {
        let mut listeners = self.listeners(namespace, pattern).borrow_mut();
        listeners.entry(name.to_vec()).or_default().add(subscriber);
    }

    /// Removes the subscriber `id` from the listeners of `name`.
    pub fn remove(&self, namespace: Namespace, pattern: bool, name: &[u8], id: u64) {
        let mut listeners = self.listeners(namespace, pattern).borrow_mut();
        if let Some(audience) = listeners.get_mut(name) {
            audience.remove(id);
            if audience.is_empty() {
                listeners.remove(name);
            }
        }
    }

    /// Delivers `message` on `channel` to this shard's subscribers (channel subscribers, then
    /// matching patterns; shard channels alone in [`Namespace::Shard`]) and returns how many
    /// received it, as Redis counts: once per channel subscriber and once per matching
    /// (pattern, subscriber). Each push is encoded once per protocol and copied to every
    /// subscriber that speaks it.
    pub fn deliver(
        &self,
        namespace: Namespace,
        channel: &[u8],
        message: &[u8],
        limit: OutputLimit,
        now_ms: u64,
    ) -> usize {
        let mut receivers = 0;
        let mut sent_len = 0;
        let kind: &[u8] = match namespace {
            Namespace::Global => b"message",
            Namespace::Shard => b"smessage",
        };
        let mut frames = self.frames.borrow_mut();
        // The tables stay borrowed while messages are queued: queuing (and cutting a slow
        // subscriber) only wakes or shuts down connections, which change the tables later, in
        // their own tasks.
        if let Some(direct) = self.listeners(namespace, false).borrow().get(channel) {
            frames.encode(&[kind, channel, message]);
            for subscriber in direct.iter() {
                sent_len += subscriber.push(frames.get(subscriber.protocol.get()), limit, now_ms);
            }
            receivers += direct.len();
        }
        if namespace == Namespace::Global {
            for (pattern, listeners) in self.patterns.borrow().iter() {
                if !glob_match(pattern, channel) {
                    continue;
                }
                frames.encode(&[b"pmessage", pattern, channel, message]);
                for subscriber in listeners.iter() {
                    sent_len +=
                        subscriber.push(frames.get(subscriber.protocol.get()), limit, now_ms);
                }
                receivers += listeners.len();
            }
        }
        self.sent_len.set(self.sent_len.get() + sent_len as u64);
        receivers
    }

    /// Bytes of messages sent straight to subscribers' sockets since the last call (the
    /// shard's `total_net_output_bytes` adds them).
    pub fn take_sent_len(&self) -> u64 {
        self.sent_len.replace(0)
    }

    /// The connections here that subscribed as a user for whom `mine` is true to a name
    /// `allowed` refuses (`allowed(name, is_pattern)`), once each.
    pub fn revoked(
        &self,
        mine: impl Fn(Option<&crate::commands::acl::AclUser>) -> bool,
        allowed: impl Fn(&[u8], bool) -> bool,
    ) -> Vec<Rc<ClientHandle>> {
        let mut victims: Vec<Rc<ClientHandle>> = Vec::new();
        let tables = [
            (&self.channels, false),
            (&self.shard_channels, false),
            (&self.patterns, true),
        ];
        for (table, pattern) in tables {
            for (name, listeners) in table.borrow().iter() {
                for subscriber in listeners.iter() {
                    let theirs = mine(subscriber.user.borrow().as_deref());
                    if theirs
                        && !allowed(name, pattern)
                        && !victims.iter().any(|known| known.id == subscriber.handle.id)
                    {
                        victims.push(subscriber.handle.clone());
                    }
                }
            }
        }
        victims
    }

    /// Channels (or shard channels) with a subscriber here, matching `pattern` if given.
    pub fn channel_names(&self, namespace: Namespace, pattern: Option<&[u8]>) -> Vec<Vec<u8>> {
        self.listeners(namespace, false)
            .borrow()
            .keys()
            .filter(|name| pattern.is_none_or(|pattern| glob_match(pattern, name)))
            .cloned()
            .collect()
    }

    /// Patterns with a subscriber here.
    pub fn pattern_names(&self) -> Vec<Vec<u8>> {
        self.patterns.borrow().keys().cloned().collect()
    }

    /// Subscribers here of `channel`.
    pub fn subscriber_count(&self, namespace: Namespace, channel: &[u8]) -> usize {
        self.listeners(namespace, false)
            .borrow()
            .get(channel)
            .map_or(0, Audience::len)
    }

    /// Queues a keyspace event for the other shards (nothing with one shard).
    pub fn queue_forward(&self, channel: Vec<u8>, message: Vec<u8>) {
        if self.forwarding {
            self.forwards
                .borrow_mut()
                .push(Publication { channel, message });
        }
    }

    /// True when keyspace events wait to be sent to the other shards.
    pub fn has_forwards(&self) -> bool {
        !self.forwards.borrow().is_empty()
    }

    /// The keyspace events waiting for the other shards, in the order they were raised.
    pub fn take_forwards(&self) -> Vec<Publication> {
        std::mem::take(&mut *self.forwards.borrow_mut())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscriber(id: u64) -> Rc<Subscriber> {
        let handle = ClientHandle::new(id, format!("127.0.0.1:{id}"), "127.0.0.1:6379".into(), -1);
        Subscriber::new(Rc::new(handle), Protocol::Resp2)
    }

    #[test]
    fn an_audience_adds_and_removes_in_any_order() {
        let mut audience = Audience::default();
        let everyone: Vec<Rc<Subscriber>> = (1..=5).map(subscriber).collect();
        for one in &everyone {
            audience.add(one);
        }
        // (removed ids, ids left)
        let steps: &[(&[u64], &[u64])] = &[
            (&[3], &[1, 2, 4, 5]),
            (&[3, 42], &[1, 2, 4, 5]),
            (&[5], &[1, 2, 4]),
            (&[1], &[2, 4]),
            (&[2, 4], &[]),
        ];
        for (removed, left) in steps {
            for id in *removed {
                audience.remove(*id);
            }
            let mut ids: Vec<u64> = audience.iter().map(|one| one.handle.id).collect();
            ids.sort_unstable();
            assert_eq!(ids, *left, "after removing {removed:?}");
            for (position, one) in audience.iter().enumerate() {
                assert_eq!(audience.positions[&one.handle.id], position);
            }
        }
        assert!(audience.is_empty());
        audience.add(&everyone[0]);
        assert_eq!(
            audience.len(),
            1,
            "a connection may listen again after leaving"
        );
    }

    #[test]
    fn frames_are_encoded_per_protocol() {
        let mut frames = Frames::default();
        frames.encode(&[b"message", b"ch", b"hi"]);
        let resp2 = b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n";
        let resp3 = b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n";
        assert_eq!(frames.get(Protocol::Resp3), resp3);
        assert_eq!(frames.get(Protocol::Resp2), resp2);
        frames.encode(&[b"pmessage", b"c*", b"ch", b""]);
        assert_eq!(
            frames.get(Protocol::Resp2),
            b"*4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$2\r\nch\r\n$0\r\n\r\n"
        );
    }

    #[test]
    fn output_limits_merge_as_redis() {
        let default = "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60";
        let cases: &[(&str, &str, Result<&str, &str>)] = &[
            ("empty value keeps all", "", Ok(default)),
            (
                "one class",
                "pubsub 1mb 0 0",
                Ok("normal 0 0 0 slave 268435456 67108864 60 pubsub 1048576 0 0"),
            ),
            (
                "replica alias and case",
                "PUBSUB 1k 2kb 3 replica 1 2 3",
                Ok("normal 0 0 0 slave 1 2 3 pubsub 1000 2048 3"),
            ),
            (
                "three words",
                "pubsub 1mb 0",
                Err("Wrong number of arguments in buffer limit configuration."),
            ),
            (
                "master is refused",
                "master 1 1 1",
                Err("Invalid client class specified in buffer limit configuration."),
            ),
            (
                "negative seconds",
                "pubsub 1k 2kb -1",
                Err("Error in hard, soft or soft_seconds setting in buffer limit configuration."),
            ),
            (
                "bad bytes",
                "pubsub x 1 1",
                Err("Error in hard, soft or soft_seconds setting in buffer limit configuration."),
            ),
        ];
        for (name, value, expected) in cases {
            let got = merge_output_limits(default, value);
            assert_eq!(got.as_deref().map_err(String::as_str), *expected, "{name}");
        }
        assert_eq!(pubsub_output_limit(default), OutputLimit::PUBSUB_DEFAULT);
    }
}
