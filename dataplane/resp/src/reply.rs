//! Replies: what a server answers, as a value until it reaches a connection.
//!
//! Every handler writes its reply through a [`ReplySink`]. At a connection the sink encodes RESP2
//! or RESP3 straight into the output buffer (no value is built on the hot path); on the far side of
//! the mesh, in EXEC and in the message transports, the same handler writes into a sink that
//! builds a [`Reply`] value, which travels as a value and is encoded once, by the connection that
//! asked. Nothing inside Ember parses RESP that Ember produced.

use std::borrow::Cow;

use crate::{encode, Protocol};

/// A reply as a value: what crosses the mesh and what EXEC and scripts collect.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `+text`.
    Simple(Cow<'static, str>),
    /// `-message`, code first.
    Error(Cow<'static, str>),
    /// `:n`.
    Integer(i64),
    /// A bulk string.
    Bulk(Vec<u8>),
    /// The null bulk string (`_` in RESP3).
    Null,
    /// The null array (`_` in RESP3).
    NullArray,
    /// An array.
    Array(Vec<Reply>),
    /// A map, keys and values alternating (a flat array in RESP2).
    Map(Vec<Reply>),
    /// A set (an array in RESP2).
    Set(Vec<Reply>),
    /// A push (an array in RESP2).
    Push(Vec<Reply>),
    /// A double (a bulk string in RESP2).
    Double(f64),
    /// A boolean (an integer in RESP2).
    Boolean(bool),
    /// Verbatim text (a bulk string in RESP2).
    Verbatim(Vec<u8>),
    /// A big number's digits (a bulk string in RESP2).
    BigNumber(Vec<u8>),
}

impl Reply {
    /// `+OK`.
    pub const OK: Reply = Reply::Simple(Cow::Borrowed("OK"));

    /// Writes this reply into `sink`.
    pub fn write_to(&self, sink: &mut ReplySink) {
        match self {
            Self::Simple(text) => sink.simple(text.as_bytes()),
            Self::Error(message) => sink.error(message),
            Self::Integer(value) => sink.integer(*value),
            Self::Bulk(bytes) => sink.bulk(bytes),
            Self::Null => sink.null(),
            Self::NullArray => sink.null_array(),
            Self::Array(items) => {
                sink.array_len(items.len());
                items.iter().for_each(|item| item.write_to(sink));
            }
            Self::Map(items) => {
                debug_assert!(items.len() % 2 == 0, "a map holds pairs");
                sink.map_len(items.len() / 2);
                items.iter().for_each(|item| item.write_to(sink));
            }
            Self::Set(items) => {
                sink.set_len(items.len());
                items.iter().for_each(|item| item.write_to(sink));
            }
            Self::Push(items) => {
                sink.push_len(items.len());
                items.iter().for_each(|item| item.write_to(sink));
            }
            Self::Double(value) => sink.double(*value),
            Self::Boolean(value) => sink.boolean(*value),
            Self::Verbatim(text) => sink.verbatim(text),
            Self::BigNumber(digits) => sink.big_number(digits),
        }
    }

    /// The error message when this reply is an error.
    pub fn error_message(&self) -> Option<&str> {
        match self {
            Self::Error(message) => Some(message),
            _ => None,
        }
    }

    /// The integer when this reply is one.
    pub fn as_integer(&self) -> Option<i64> {
        match self {
            Self::Integer(value) => Some(*value),
            _ => None,
        }
    }
}

/// What kind of container is being filled, and how many items it still waits for.
#[derive(Debug)]
struct OpenContainer {
    kind: ContainerKind,
    items: Vec<Reply>,
    remaining: usize,
}

#[derive(Debug, Clone, Copy)]
enum ContainerKind {
    Array,
    Map,
    Set,
    Push,
}

/// Builds [`Reply`] values from a handler's stream of headers and items.
#[derive(Debug, Default)]
pub struct ReplyBuilder {
    open: Vec<OpenContainer>,
    /// The first finished reply: most sinks hold one (a script's call, a mesh request), and
    /// keeping it here leaves `more` unallocated.
    first: Option<Reply>,
    /// Finished replies after the first.
    more: Vec<Reply>,
}

impl ReplyBuilder {
    fn item(&mut self, reply: Reply) {
        let mut reply = reply;
        loop {
            let Some(top) = self.open.last_mut() else {
                if self.first.is_none() {
                    self.first = Some(reply);
                } else {
                    self.more.push(reply);
                }
                return;
            };
            top.items.push(reply);
            top.remaining -= 1;
            if top.remaining > 0 {
                return;
            }
            let finished = self.open.pop().expect("a container is open");
            reply = match finished.kind {
                ContainerKind::Array => Reply::Array(finished.items),
                ContainerKind::Map => Reply::Map(finished.items),
                ContainerKind::Set => Reply::Set(finished.items),
                ContainerKind::Push => Reply::Push(finished.items),
            };
        }
    }

    fn container(&mut self, kind: ContainerKind, len: usize) {
        if len == 0 {
            self.item(match kind {
                ContainerKind::Array => Reply::Array(Vec::new()),
                ContainerKind::Map => Reply::Map(Vec::new()),
                ContainerKind::Set => Reply::Set(Vec::new()),
                ContainerKind::Push => Reply::Push(Vec::new()),
            });
            return;
        }
        // A handler announces at most what it will write; capacity is bounded so that a wrong
        // count cannot reserve unbounded memory.
        self.open.push(OpenContainer {
            kind,
            items: Vec::with_capacity(len.min(1024)),
            remaining: len,
        });
    }
}

/// Bytes a frame adds beyond its payload, at most: its type byte, a length or a formatted
/// number (20 digits, or a double's 24 characters), and two line ends.
const FRAME_SMALL_MAX: usize = 48;

/// Capacity up to which a connection's reply buffer grows by doubling, as a `Vec` does.
const DOUBLING_MAX: usize = 16 * 1024;

/// Makes room in a connection's reply buffer for `additional` more bytes. Past
/// [`DOUBLING_MAX`] the buffer grows by a quarter (jemalloc's large size classes are a quarter
/// apart), not by doubling: a pipeline's replies are memory that `maxmemory` counts until they
/// are sent, and a doubled buffer holds up to twice their bytes. Replies of 36 KiB (a pipeline
/// of 64 GETs, half of them hits of 1 KiB) held a 64 KiB buffer, more than a 40 KB limit's
/// worth of keys, and each command's eviction made room for it with the keys being read; they
/// hold 40 KiB now. The copies stay linear in the bytes written (at most five times them).
fn make_room(out: &mut Vec<u8>, additional: usize) {
    let needed = out.len() + additional;
    let capacity = out.capacity();
    if needed <= capacity || capacity < DOUBLING_MAX {
        // Within capacity, or small: `Vec`'s own growth (doubling).
        return;
    }
    out.reserve_exact((capacity + capacity / 4).max(needed) - out.len());
}

enum Target {
    /// RESP bytes for a connection.
    Resp(Vec<u8>),
    /// Values for the mesh, EXEC and the message transports.
    Values(ReplyBuilder),
}

/// How the first item of a command's reply began: nothing yet, a value, or an error (which the
/// statistics count as the command failing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing written since [`ReplySink::begin`].
    Empty,
    /// A reply that is not an error.
    Value,
    /// An error reply, with its message.
    Error(String),
}

/// Where a handler writes its reply: RESP bytes for a connection, or values.
pub struct ReplySink {
    target: Target,
    protocol: Protocol,
    outcome: Outcome,
}

impl ReplySink {
    /// A sink that encodes into `buffer` in `protocol`.
    pub fn resp(buffer: Vec<u8>, protocol: Protocol) -> Self {
        Self {
            target: Target::Resp(buffer),
            protocol,
            outcome: Outcome::Empty,
        }
    }

    /// A sink that builds values.
    pub fn values(protocol: Protocol) -> Self {
        Self {
            target: Target::Values(ReplyBuilder::default()),
            protocol,
            outcome: Outcome::Empty,
        }
    }

    /// The protocol replies are written for (handlers that shape replies by protocol read it).
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Changes the protocol (HELLO).
    pub fn set_protocol(&mut self, protocol: Protocol) {
        self.protocol = protocol;
    }

    /// Starts a command's reply: [`ReplySink::outcome`] then says how it began.
    pub fn begin(&mut self) {
        self.outcome = Outcome::Empty;
    }

    /// How the reply written since [`ReplySink::begin`] began.
    pub fn outcome(&self) -> &Outcome {
        &self.outcome
    }

    /// The encoded bytes (a RESP sink), for the connection's writer.
    pub fn bytes_mut(&mut self) -> &mut Vec<u8> {
        match &mut self.target {
            Target::Resp(buffer) => buffer,
            Target::Values(_) => unreachable!("only a connection's sink holds bytes"),
        }
    }

    /// True for a connection's sink (RESP bytes), false for a value sink.
    pub fn holds_bytes(&self) -> bool {
        matches!(self.target, Target::Resp(_))
    }

    /// Bytes pending in a RESP sink (0 for a value sink).
    pub fn pending_len(&self) -> usize {
        match &self.target {
            Target::Resp(buffer) => buffer.len(),
            Target::Values(_) => 0,
        }
    }

    /// The replies built so far (a value sink), in order; the sink is left empty.
    pub fn take_replies(&mut self) -> Vec<Reply> {
        let builder = self.builder();
        let Some(first) = builder.first.take() else {
            return Vec::new();
        };
        let mut replies = Vec::with_capacity(1 + builder.more.len());
        replies.push(first);
        replies.append(&mut builder.more);
        replies
    }

    /// The one reply written into a value sink (an error when the handler wrote none), taken
    /// without allocating.
    pub fn take_reply(&mut self) -> Reply {
        let builder = self.builder();
        debug_assert!(builder.more.is_empty(), "one reply per command");
        builder
            .first
            .take()
            .unwrap_or(Reply::Error(Cow::Borrowed("ERR no reply")))
    }

    /// The one reply written into a value sink (an error when the handler wrote none).
    pub fn into_reply(mut self) -> Reply {
        self.take_reply()
    }

    fn builder(&mut self) -> &mut ReplyBuilder {
        match &mut self.target {
            Target::Values(builder) => {
                debug_assert!(builder.open.is_empty(), "every container was filled");
                builder
            }
            Target::Resp(_) => unreachable!("a connection's sink holds bytes"),
        }
    }

    fn note(&mut self, error: Option<&str>) {
        if self.outcome == Outcome::Empty {
            self.outcome = match error {
                Some(message) => Outcome::Error(message.to_owned()),
                None => Outcome::Value,
            };
        }
    }

    /// `+text`.
    pub fn simple(&mut self, text: &[u8]) {
        self.note(None);
        match &mut self.target {
            Target::Resp(out) => {
                make_room(out, text.len() + FRAME_SMALL_MAX);
                encode::simple(out, text)
            }
            Target::Values(builder) => builder.item(Reply::Simple(Cow::Owned(
                String::from_utf8_lossy(text).into_owned(),
            ))),
        }
    }

    /// `+OK`.
    pub fn ok(&mut self) {
        self.note(None);
        match &mut self.target {
            Target::Resp(out) => {
                make_room(out, FRAME_SMALL_MAX);
                encode::ok(out)
            }
            Target::Values(builder) => builder.item(Reply::OK),
        }
    }

    /// `-message`.
    pub fn error(&mut self, message: &str) {
        self.note(Some(message));
        match &mut self.target {
            Target::Resp(out) => {
                make_room(out, message.len() + FRAME_SMALL_MAX);
                encode::error(out, message)
            }
            Target::Values(builder) => builder.item(Reply::Error(Cow::Owned(message.to_owned()))),
        }
    }

    /// `:n`.
    pub fn integer(&mut self, value: i64) {
        self.note(None);
        match &mut self.target {
            Target::Resp(out) => {
                make_room(out, FRAME_SMALL_MAX);
                encode::integer(out, value)
            }
            Target::Values(builder) => builder.item(Reply::Integer(value)),
        }
    }

    /// A bulk string.
    pub fn bulk(&mut self, bytes: &[u8]) {
        self.note(None);
        match &mut self.target {
            Target::Resp(out) => {
                make_room(out, bytes.len() + FRAME_SMALL_MAX);
                encode::bulk(out, bytes)
            }
            Target::Values(builder) => builder.item(Reply::Bulk(bytes.to_vec())),
        }
    }

    /// A bulk string held in two pieces (`head`, then `tail`), written without joining them.
    pub fn bulk_parts(&mut self, head: &[u8], tail: &[u8]) {
        self.note(None);
        match &mut self.target {
            Target::Resp(out) => {
                make_room(out, head.len() + tail.len() + FRAME_SMALL_MAX);
                encode::bulk_parts(out, head, tail)
            }
            Target::Values(builder) => builder.item(Reply::Bulk([head, tail].concat())),
        }
    }

    /// An integer as a bulk string.
    pub fn bulk_integer(&mut self, value: i64) {
        self.bulk(itoa::Buffer::new().format(value).as_bytes());
    }

    /// The null bulk string.
    pub fn null(&mut self) {
        self.note(None);
        match &mut self.target {
            Target::Resp(out) => {
                make_room(out, FRAME_SMALL_MAX);
                encode::null(out, self.protocol)
            }
            Target::Values(builder) => builder.item(Reply::Null),
        }
    }

    /// The null array.
    pub fn null_array(&mut self) {
        self.note(None);
        match &mut self.target {
            Target::Resp(out) => {
                make_room(out, FRAME_SMALL_MAX);
                encode::null_array(out, self.protocol)
            }
            Target::Values(builder) => builder.item(Reply::NullArray),
        }
    }

    fn container(&mut self, kind: ContainerKind, len: usize) {
        self.note(None);
        let protocol = self.protocol;
        match &mut self.target {
            Target::Resp(out) => {
                make_room(out, FRAME_SMALL_MAX);
                match kind {
                    ContainerKind::Array => encode::array_len(out, len),
                    ContainerKind::Map => encode::map_len(out, len, protocol),
                    ContainerKind::Set => encode::set_len(out, len, protocol),
                    ContainerKind::Push => encode::push_len(out, len, protocol),
                }
            }
            Target::Values(builder) => {
                let items = if matches!(kind, ContainerKind::Map) {
                    len * 2
                } else {
                    len
                };
                builder.container(kind, items);
            }
        }
    }

    /// An array of `len` items that follow.
    pub fn array_len(&mut self, len: usize) {
        self.container(ContainerKind::Array, len);
    }

    /// A map of `len` pairs that follow.
    pub fn map_len(&mut self, len: usize) {
        self.container(ContainerKind::Map, len);
    }

    /// A set of `len` items that follow.
    pub fn set_len(&mut self, len: usize) {
        self.container(ContainerKind::Set, len);
    }

    /// A push of `len` items that follow.
    pub fn push_len(&mut self, len: usize) {
        self.container(ContainerKind::Push, len);
    }

    /// A double.
    pub fn double(&mut self, value: f64) {
        self.note(None);
        match &mut self.target {
            Target::Resp(out) => {
                make_room(out, FRAME_SMALL_MAX);
                encode::double(out, value, self.protocol)
            }
            Target::Values(builder) => builder.item(Reply::Double(value)),
        }
    }

    /// A boolean.
    pub fn boolean(&mut self, value: bool) {
        self.note(None);
        match &mut self.target {
            Target::Resp(out) => {
                make_room(out, FRAME_SMALL_MAX);
                encode::boolean(out, value, self.protocol)
            }
            Target::Values(builder) => builder.item(Reply::Boolean(value)),
        }
    }

    /// Verbatim text.
    pub fn verbatim(&mut self, text: &[u8]) {
        self.note(None);
        match &mut self.target {
            Target::Resp(out) => {
                make_room(out, text.len() + FRAME_SMALL_MAX);
                encode::verbatim(out, text, self.protocol)
            }
            Target::Values(builder) => builder.item(Reply::Verbatim(text.to_vec())),
        }
    }

    /// A big number, its digits as given.
    pub fn big_number(&mut self, digits: &[u8]) {
        self.note(None);
        match &mut self.target {
            Target::Resp(out) => {
                make_room(out, digits.len() + FRAME_SMALL_MAX);
                encode::big_number(out, digits, self.protocol)
            }
            Target::Values(builder) => builder.item(Reply::BigNumber(digits.to_vec())),
        }
    }

    /// An attribute (RESP3's `|`: `pairs`, keys and values alternating) ahead of the reply
    /// that follows; nothing in RESP2 or for values, where attributes do not travel (Redis
    /// sends them to RESP3 clients only, and its scripts never see them).
    pub fn attribute(&mut self, pairs: &[Reply]) {
        if self.protocol != Protocol::Resp3 || !self.holds_bytes() {
            return;
        }
        if let Target::Resp(out) = &mut self.target {
            out.push(b'|');
            out.extend_from_slice((pairs.len() / 2).to_string().as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        let outcome = self.outcome.clone();
        pairs.iter().for_each(|item| item.write_to(self));
        // The reply after it says how the command went.
        self.outcome = outcome;
    }

    /// A whole reply value.
    pub fn reply(&mut self, reply: &Reply) {
        reply.write_to(self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_batch_of_replies_grows_its_buffer_by_quarters() {
        let mut sink = ReplySink::resp(Vec::new(), Protocol::Resp2);
        let value = vec![b'v'; 1024];
        let mut capacities = Vec::new();
        for _ in 0..64 {
            sink.bulk(&value);
            sink.null();
            let out = sink.bytes_mut();
            if capacities.last() != Some(&out.capacity()) {
                capacities.push(out.capacity());
            }
            // Well past the doubling, at most a quarter (and a frame) beyond the bytes held.
            if out.capacity() > 2 * DOUBLING_MAX {
                assert!(out.capacity() <= out.len() + out.len() / 4 + 1024 + FRAME_SMALL_MAX);
            }
        }
        let out = sink.bytes_mut();
        assert_eq!(out.len(), 64 * (7 + 1024 + 2 + 5));
        assert!(out.capacity() < 84 * 1024, "{capacities:?}");
        assert!(
            capacities.windows(2).any(|pair| pair[0] >= DOUBLING_MAX
                && pair[1] <= pair[0] + pair[0] / 4 + 1024 + FRAME_SMALL_MAX),
            "{capacities:?}"
        );
    }

    #[test]
    fn value_sinks_give_back_what_was_written() {
        let mut one = ReplySink::values(Protocol::Resp2);
        one.integer(7);
        assert_eq!(one.take_reply(), Reply::Integer(7));
        assert_eq!(
            one.take_reply(),
            Reply::Error(Cow::Borrowed("ERR no reply"))
        );
        let mut three = ReplySink::values(Protocol::Resp2);
        three.integer(1);
        three.array_len(2);
        three.bulk(b"x");
        three.bulk_parts(b"y", b"z");
        three.integer(3);
        assert_eq!(
            three.take_replies(),
            vec![
                Reply::Integer(1),
                Reply::Array(vec![
                    Reply::Bulk(b"x".to_vec()),
                    Reply::Bulk(b"yz".to_vec())
                ]),
                Reply::Integer(3)
            ]
        );
        assert!(three.take_replies().is_empty());
    }

    /// Writes the same reply through both sinks; the value, encoded, equals the direct bytes.
    fn both_ways(protocol: Protocol, write: impl Fn(&mut ReplySink)) -> (Vec<u8>, Vec<u8>) {
        let mut direct = ReplySink::resp(Vec::new(), protocol);
        write(&mut direct);
        let mut values = ReplySink::values(protocol);
        write(&mut values);
        let mut encoded = ReplySink::resp(Vec::new(), protocol);
        for reply in values.take_replies() {
            reply.write_to(&mut encoded);
        }
        (
            std::mem::take(direct.bytes_mut()),
            std::mem::take(encoded.bytes_mut()),
        )
    }

    #[test]
    fn values_encode_as_the_direct_path() {
        type Case = (&'static str, fn(&mut ReplySink));
        let cases: &[Case] = &[
            ("ok", |s| s.ok()),
            ("nested", |s| {
                s.array_len(3);
                s.bulk(b"a");
                s.array_len(2);
                s.integer(1);
                s.null();
                s.map_len(1);
                s.bulk(b"k");
                s.double(1.5);
            }),
            ("empty containers", |s| {
                s.array_len(2);
                s.set_len(0);
                s.map_len(0);
            }),
            ("errors and scalars", |s| {
                s.error("ERR x");
                s.boolean(true);
                s.verbatim(b"text");
                s.null_array();
                s.bulk_integer(-7);
            }),
            ("a bulk string in pieces", |s| {
                s.array_len(3);
                s.bulk_parts(b"member:0000", b"42");
                s.bulk_parts(b"", b"whole");
                s.bulk_parts(b"", b"");
            }),
        ];
        for protocol in [Protocol::Resp2, Protocol::Resp3] {
            for (name, write) in cases {
                let (direct, via_values) = both_ways(protocol, write);
                assert_eq!(direct, via_values, "{name} in {protocol:?}");
            }
        }
    }

    #[test]
    fn outcome_is_the_first_item() {
        let mut sink = ReplySink::values(Protocol::Resp2);
        sink.begin();
        assert_eq!(sink.outcome(), &Outcome::Empty);
        sink.array_len(1);
        sink.error("ERR inner");
        assert_eq!(
            sink.outcome(),
            &Outcome::Value,
            "an error inside an array is not a failure"
        );
        sink.begin();
        sink.error("ERR top");
        assert_eq!(sink.outcome(), &Outcome::Error("ERR top".into()));
    }
}
