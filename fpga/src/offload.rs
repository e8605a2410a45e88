//! The seam through which the server runs a fixed-function stage either in software or on
//! (simulated) hardware: `ember --offload sim` picks [`SimulatedOffload`], the default is
//! [`SoftwareOffload`]. Both give the same answers bit for bit (the co-simulation tests prove
//! it); the simulated one also counts the clock cycles the hardware took.
//!
//! Calls take batches, because a hardware stage earns its keep on streams: a batch is one
//! burst of back-to-back packets through the module.

use crate::modules::{Crc32cSim, SlotHashSim};
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

    fn cycles(&self) -> u64 {
        0
    }
}

/// The stages run through the Verilated modules, without back-pressure.
pub struct SimulatedOffload {
    slot_hash: SlotHashSim,
    crc32c: Crc32cSim,
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

    fn cycles(&self) -> u64 {
        self.slot_hash.cycles() + self.crc32c.cycles()
    }
}
