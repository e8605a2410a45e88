//! The seam through which the server runs a fixed-function stage either in software or on
//! (simulated) hardware: `ember --offload sim` picks [`SimulatedOffload`], the default is
//! [`SoftwareOffload`]. Both give the same answers bit for bit (the co-simulation tests prove
//! it); the simulated one also counts the clock cycles the hardware took.
//!
//! Calls take batches, because a hardware stage earns its keep on streams: a batch is one
//! burst of back-to-back packets through the module.
//!
//! The stateless stages are here. The stateful ones (Bloom filter, rate limiter, text filter)
//! keep their state in the store, per key; their modules are driven directly through
//! [`crate::modules`] until the server gives a key's state to a hardware table.
//!
//! How the server wires it (`ember --offload sim|software`): build one `Box<dyn Offload>` per
//! shard at start-up (`SimulatedOffload::new()`, refusing the flag with the error's message when
//! [`SimError::is_unavailable`]), call `key_slots` from the router for a pipeline batch's keys,
//! `checksums` where the one-sided read region stores items, `dot_products` in the scoring path,
//! and report `cycles()` in INFO.

use crate::modules::{
    complete_events, resp_reference_events, Crc32cSim, DotI8Sim, RespTokenizerSim, SlotHashSim,
    TokenEvent,
};
use crate::sim::{Backpressure, SimError};

/// A provider of Ember's offloadable stages.
pub trait Offload {
    /// Short name for logs and INFO: `software` or `sim`.
    fn name(&self) -> &'static str;

    /// Redis Cluster slot of every key (`ember_store::slot::key_slot`).
    ///
    /// # Errors
    /// When the hardware path fails (a stalled or misbehaving model).
    fn key_slots(&mut self, keys: &[&[u8]]) -> Result<Vec<u16>, SimError>;

    /// CRC-32C of every message (`ember_rdma::checksum::crc32c`).
    ///
    /// # Errors
    /// When the hardware path fails.
    fn checksums(&mut self, messages: &[&[u8]]) -> Result<Vec<u32>, SimError>;

    /// Dot product of every pair of int8 vectors (`ember_kernels::dot::dot_i8`).
    ///
    /// # Errors
    /// When the vectors of a pair differ in length (or, in hardware, exceed
    /// [`crate::modules::DOT_LEN_MAX`]), or the hardware path fails.
    fn dot_products(&mut self, pairs: &[(&[i8], &[i8])]) -> Result<Vec<i32>, SimError>;

    /// Argument and request boundaries of each connection stream, as ember-resp's parser finds
    /// them (whole requests only; the first error or inline request ends a stream's events).
    ///
    /// # Errors
    /// When the hardware path fails.
    fn tokenize(&mut self, streams: &[&[u8]]) -> Result<Vec<Vec<TokenEvent>>, SimError>;

    /// Slot of one key.
    ///
    /// # Errors
    /// When the hardware path fails.
    fn key_slot(&mut self, key: &[u8]) -> Result<u16, SimError> {
        Ok(self.key_slots(&[key])?[0])
    }

    /// Clock cycles spent in hardware so far (0 in software).
    fn cycles(&self) -> u64;
}

/// Ember's software path: the reference functions themselves.
#[derive(Debug, Default)]
pub struct SoftwareOffload;

impl Offload for SoftwareOffload {
    fn name(&self) -> &'static str {
        "software"
    }

    fn key_slots(&mut self, keys: &[&[u8]]) -> Result<Vec<u16>, SimError> {
        Ok(keys
            .iter()
            .map(|key| ember_store::slot::key_slot(key))
            .collect())
    }

    fn checksums(&mut self, messages: &[&[u8]]) -> Result<Vec<u32>, SimError> {
        Ok(messages
            .iter()
            .map(|message| ember_rdma::checksum::crc32c(message))
            .collect())
    }

    fn dot_products(&mut self, pairs: &[(&[i8], &[i8])]) -> Result<Vec<i32>, SimError> {
        pairs
            .iter()
            .enumerate()
            .map(|(index, (a, b))| {
                if a.len() == b.len() {
                    Ok(ember_kernels::dot::dot_i8(a, b))
                } else {
                    Err(SimError::input(format!(
                        "vector pair {index} has lengths {} and {}",
                        a.len(),
                        b.len()
                    )))
                }
            })
            .collect()
    }

    fn tokenize(&mut self, streams: &[&[u8]]) -> Result<Vec<Vec<TokenEvent>>, SimError> {
        Ok(streams
            .iter()
            .map(|stream| resp_reference_events(stream))
            .collect())
    }

    fn cycles(&self) -> u64 {
        0
    }
}

/// The stages run through the Verilated modules, without back-pressure.
pub struct SimulatedOffload {
    slot_hash: SlotHashSim,
    crc32c: Crc32cSim,
    dot_i8: DotI8Sim,
    resp_tokenizer: RespTokenizerSim,
}

impl SimulatedOffload {
    /// Instantiates every simulated module.
    ///
    /// # Errors
    /// When this build has no simulator ([`SimError::is_unavailable`]): the server should then
    /// refuse `--offload sim` with that message.
    pub fn new() -> Result<Self, SimError> {
        Ok(Self {
            slot_hash: SlotHashSim::new()?,
            crc32c: Crc32cSim::new()?,
            dot_i8: DotI8Sim::new()?,
            resp_tokenizer: RespTokenizerSim::new()?,
        })
    }
}

impl Offload for SimulatedOffload {
    fn name(&self) -> &'static str {
        "sim"
    }

    fn key_slots(&mut self, keys: &[&[u8]]) -> Result<Vec<u16>, SimError> {
        self.slot_hash.key_slots(keys, &mut Backpressure::none())
    }

    fn checksums(&mut self, messages: &[&[u8]]) -> Result<Vec<u32>, SimError> {
        self.crc32c.checksums(messages, &mut Backpressure::none())
    }

    fn dot_products(&mut self, pairs: &[(&[i8], &[i8])]) -> Result<Vec<i32>, SimError> {
        self.dot_i8.dot_products(pairs, &mut Backpressure::none())
    }

    fn tokenize(&mut self, streams: &[&[u8]]) -> Result<Vec<Vec<TokenEvent>>, SimError> {
        let events = self
            .resp_tokenizer
            .tokenize(streams, &mut Backpressure::none())?;
        Ok(events
            .iter()
            .map(|events| complete_events(events))
            .collect())
    }

    fn cycles(&self) -> u64 {
        self.slot_hash.cycles()
            + self.crc32c.cycles()
            + self.dot_i8.cycles()
            + self.resp_tokenizer.cycles()
    }
}
