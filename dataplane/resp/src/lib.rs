//! ember-resp: RESP2/RESP3 parsing and encoding for Ember. No I/O.
//!
//! - [`RequestParser`] reads client requests (multibulk and inline) incrementally, checking every
//!   peer-sent length against [`Limits`] before it sizes anything, and keeps no copy of the input.
//! - [`encode`] appends replies to a connection's output buffer in RESP2 or RESP3.
//! - [`reply`] holds replies as values ([`Reply`]) and the [`ReplySink`] a server's handlers write
//!   into: RESP bytes at a connection, values everywhere else.
//! - [`frame`] parses whole reply frames for clients (the load generator, tests).
//!
//! ```
//! use ember_resp::{encode, Limits, RequestParser};
//!
//! let input = b"*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n";
//! let mut parser = RequestParser::new(Limits::default());
//! let consumed = parser.parse(input).unwrap().unwrap();
//! assert_eq!(consumed, input.len());
//! let args = parser.args(input);
//! assert_eq!(args.get(1), b"hi");
//! let mut out = Vec::new();
//! encode::bulk(&mut out, args.get(1));
//! assert_eq!(out, b"$2\r\nhi\r\n");
//! ```
#![deny(missing_docs)]

pub mod encode;
mod error;
pub mod frame;
pub mod reply;
mod request;

pub use encode::Protocol;
pub use error::{ProtocolError, ProtocolErrorKind};
pub use frame::{parse_frame, Frame};
pub use reply::{Outcome, Reply, ReplySink};
pub use request::{parse_i64, split_args, Args, Limits, RequestParser};
