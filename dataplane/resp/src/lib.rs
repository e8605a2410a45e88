//! ember-resp: RESP2/RESP3 parsing and encoding.
#![deny(missing_docs)]
