//! The two-sided messages a client and a server exchange over SEND/RECV: writes, GETs of values
//! that are not published, and the routing table.
//!
//! A request is `op: u8, id: u32, fields`; a reply is `status: u8, id: u32, fields`; lengths are
//! u32 little-endian and every one is checked against the bytes actually there.

use crate::error::{Error, ErrorKind, Result};
use crate::routing::SlotRange;

const OP_GET: u8 = 1;
const OP_SET: u8 = 2;
const OP_DELETE: u8 = 3;
const OP_ROUTING: u8 = 4;
const OP_AUTH: u8 = 5;

const STATUS_OK: u8 = 0;
const STATUS_VALUE: u8 = 1;
const STATUS_NIL: u8 = 2;
const STATUS_DELETED: u8 = 3;
const STATUS_ROUTING: u8 = 4;
const STATUS_ERROR: u8 = 5;

/// Routing ranges one reply carries at most (one per shard would do; this bounds a peer).
pub const ROUTING_RANGES_MAX: usize = 16384;

/// A request from client to server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request<'a> {
    /// GET key.
    Get {
        /// The key.
        key: &'a [u8],
    },
    /// SET key value.
    Set {
        /// The key.
        key: &'a [u8],
        /// The value.
        value: &'a [u8],
    },
    /// DEL key.
    Delete {
        /// The key.
        key: &'a [u8],
    },
    /// Which region owns which slots.
    Routing,
    /// AUTH username password: the session's later messages run as that ACL user.
    Auth {
        /// The user name.
        username: &'a [u8],
        /// The password.
        password: &'a [u8],
    },
}

/// A reply from server to client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply<'a> {
    /// The write was applied (and, for a published key, is visible to one-sided READs).
    Ok,
    /// GET found this value.
    Value(&'a [u8]),
    /// GET found nothing.
    Nil,
    /// DEL: whether the key existed.
    Deleted(bool),
    /// The routing table.
    Routing(Vec<SlotRange>),
    /// The server refused the request.
    Error(&'a str),
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8]> {
        let end = self
            .at
            .checked_add(len)
            .filter(|&end| end <= self.bytes.len());
        let end = end.ok_or_else(|| {
            Error::new(
                ErrorKind::Protocol,
                format!(
                    "message of {} bytes cut short at {}",
                    self.bytes.len(),
                    self.at
                ),
            )
        })?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().expect("2")))
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4")))
    }

    fn field(&mut self) -> Result<&'a [u8]> {
        let len = self.u32()? as usize;
        self.take(len)
    }

    fn finish(&self) -> Result<()> {
        if self.at != self.bytes.len() {
            return Err(Error::new(
                ErrorKind::Protocol,
                "trailing bytes after message",
            ));
        }
        Ok(())
    }
}

fn put_field(out: &mut Vec<u8>, field: &[u8]) {
    out.extend_from_slice(&(field.len() as u32).to_le_bytes());
    out.extend_from_slice(field);
}

impl<'a> Request<'a> {
    /// Appends the encoding of this request with `id` to `out`.
    pub fn encode(&self, id: u32, out: &mut Vec<u8>) {
        let op = match self {
            Request::Get { .. } => OP_GET,
            Request::Set { .. } => OP_SET,
            Request::Delete { .. } => OP_DELETE,
            Request::Routing => OP_ROUTING,
            Request::Auth { .. } => OP_AUTH,
        };
        out.push(op);
        out.extend_from_slice(&id.to_le_bytes());
        match self {
            Request::Get { key } | Request::Delete { key } => put_field(out, key),
            Request::Set { key, value } => {
                put_field(out, key);
                put_field(out, value);
            }
            Request::Routing => {}
            Request::Auth { username, password } => {
                put_field(out, username);
                put_field(out, password);
            }
        }
    }

    /// Decodes a request and its id.
    ///
    /// # Errors
    /// `Protocol` for an unknown op, a length past the end, or trailing bytes.
    pub fn decode(bytes: &'a [u8]) -> Result<(u32, Self)> {
        let mut cursor = Cursor { bytes, at: 0 };
        let op = cursor.u8()?;
        let id = cursor.u32()?;
        let request = match op {
            OP_GET => Request::Get {
                key: cursor.field()?,
            },
            OP_SET => Request::Set {
                key: cursor.field()?,
                value: cursor.field()?,
            },
            OP_DELETE => Request::Delete {
                key: cursor.field()?,
            },
            OP_ROUTING => Request::Routing,
            OP_AUTH => Request::Auth {
                username: cursor.field()?,
                password: cursor.field()?,
            },
            other => {
                return Err(Error::new(
                    ErrorKind::Protocol,
                    format!("unknown request op {other}"),
                ))
            }
        };
        cursor.finish()?;
        Ok((id, request))
    }
}

impl<'a> Reply<'a> {
    /// Appends the encoding of this reply with `id` to `out`.
    pub fn encode(&self, id: u32, out: &mut Vec<u8>) {
        let status = match self {
            Reply::Ok => STATUS_OK,
            Reply::Value(_) => STATUS_VALUE,
            Reply::Nil => STATUS_NIL,
            Reply::Deleted(_) => STATUS_DELETED,
            Reply::Routing(_) => STATUS_ROUTING,
            Reply::Error(_) => STATUS_ERROR,
        };
        out.push(status);
        out.extend_from_slice(&id.to_le_bytes());
        match self {
            Reply::Ok | Reply::Nil => {}
            Reply::Value(value) => put_field(out, value),
            Reply::Deleted(existed) => out.push(u8::from(*existed)),
            Reply::Routing(ranges) => {
                out.extend_from_slice(&(ranges.len() as u32).to_le_bytes());
                for range in ranges {
                    out.extend_from_slice(&range.first.to_le_bytes());
                    out.extend_from_slice(&range.last.to_le_bytes());
                    out.extend_from_slice(&range.region.to_le_bytes());
                }
            }
            Reply::Error(text) => put_field(out, text.as_bytes()),
        }
    }

    /// Decodes a reply and its id.
    ///
    /// # Errors
    /// `Protocol` for an unknown status, a bad length, a routing table over
    /// [`ROUTING_RANGES_MAX`], or trailing bytes.
    pub fn decode(bytes: &'a [u8]) -> Result<(u32, Self)> {
        let mut cursor = Cursor { bytes, at: 0 };
        let status = cursor.u8()?;
        let id = cursor.u32()?;
        let reply = match status {
            STATUS_OK => Reply::Ok,
            STATUS_VALUE => Reply::Value(cursor.field()?),
            STATUS_NIL => Reply::Nil,
            STATUS_DELETED => Reply::Deleted(cursor.u8()? != 0),
            STATUS_ROUTING => {
                let count = cursor.u32()? as usize;
                if count > ROUTING_RANGES_MAX {
                    return Err(Error::new(
                        ErrorKind::Protocol,
                        format!("{count} routing ranges exceed {ROUTING_RANGES_MAX}"),
                    ));
                }
                let mut ranges = Vec::with_capacity(count);
                for _ in 0..count {
                    ranges.push(SlotRange {
                        first: cursor.u16()?,
                        last: cursor.u16()?,
                        region: cursor.u32()?,
                    });
                }
                Reply::Routing(ranges)
            }
            STATUS_ERROR => Reply::Error(
                std::str::from_utf8(cursor.field()?)
                    .map_err(|_| Error::new(ErrorKind::Protocol, "error text is not UTF-8"))?,
            ),
            other => {
                return Err(Error::new(
                    ErrorKind::Protocol,
                    format!("unknown reply status {other}"),
                ))
            }
        };
        cursor.finish()?;
        Ok((id, reply))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_replies_round_trip() {
        let requests = [
            Request::Get { key: b"k" },
            Request::Set {
                key: b"k",
                value: b"",
            },
            Request::Delete { key: b"" },
            Request::Routing,
            Request::Auth {
                username: b"reader",
                password: b"secret",
            },
        ];
        for (id, request) in requests.iter().enumerate() {
            let mut bytes = Vec::new();
            request.encode(id as u32, &mut bytes);
            assert_eq!(Request::decode(&bytes).unwrap(), (id as u32, *request));
        }
        let replies = [
            Reply::Ok,
            Reply::Value(b"v"),
            Reply::Nil,
            Reply::Deleted(true),
            Reply::Routing(vec![SlotRange {
                first: 0,
                last: 16383,
                region: 0,
            }]),
            Reply::Error("ERR no"),
        ];
        for (id, reply) in replies.iter().enumerate() {
            let mut bytes = Vec::new();
            reply.encode(id as u32, &mut bytes);
            assert_eq!(Reply::decode(&bytes).unwrap(), (id as u32, reply.clone()));
        }
    }

    #[test]
    fn malformed_messages_are_errors_not_panics() {
        let cases: [&[u8]; 6] = [
            b"",
            &[OP_GET, 0, 0, 0],
            &[OP_GET, 0, 0, 0, 0, 255, 255, 255, 255],
            &[99, 0, 0, 0, 0],
            &[OP_ROUTING, 0, 0, 0, 0, 1],
            &[OP_SET, 0, 0, 0, 0, 1, 0, 0, 0, b'k'],
        ];
        for (i, case) in cases.iter().enumerate() {
            assert_eq!(
                Request::decode(case).unwrap_err().kind(),
                ErrorKind::Protocol,
                "case {i}"
            );
        }
        let reply: &[u8] = &[STATUS_ROUTING, 0, 0, 0, 0, 255, 255, 255, 255];
        assert_eq!(
            Reply::decode(reply).unwrap_err().kind(),
            ErrorKind::Protocol
        );
    }
}
