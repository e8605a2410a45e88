//! Safe drivers of the simulated modules: each feeds its inputs through the Verilated model
//! under the given back-pressure and returns what the hardware computed.

use crate::sim::{
    byte_beats, run_stream, Backpressure, ByteBeat, Model, Port, SimError, StreamPorts,
};

/// Junk for the lanes outside tkeep: fixed, so a run replays exactly, and not zero, so a
/// module that forgets to mask is caught.
const LANE_JUNK: u64 = 0xa5c3_7e19_5b2d_f084;

/// Ports of a byte-stream module with tdata/tkeep/tlast on its sink.
struct ByteStream {
    ports: StreamPorts,
    tdata: Port,
    tkeep: Port,
    tlast: Port,
}

impl ByteStream {
    fn new(model: &Model) -> Self {
        Self {
            ports: StreamPorts::standard(model),
            tdata: model.input("s_axis_tdata"),
            tkeep: model.input("s_axis_tkeep"),
            tlast: model.input("s_axis_tlast"),
        }
    }

    /// One result per packet.
    fn run<P: AsRef<[u8]>>(
        &self,
        model: &mut Model,
        packets: &[P],
        pressure: &mut Backpressure,
    ) -> Result<Vec<u64>, SimError> {
        let beats = byte_beats(packets, LANE_JUNK);
        let data = self.ports.m_tdata;
        run_stream(
            model,
            &self.ports,
            &beats,
            packets.len(),
            pressure,
            |model, beat: &ByteBeat| {
                model.set(self.tdata, beat.data);
                model.set(self.tkeep, u64::from(beat.keep));
                model.set(self.tlast, u64::from(beat.last));
            },
            |model| model.get(data),
        )
    }
}

/// The `slot_hash` module: Redis Cluster key slots, 8 bytes a clock.
pub struct SlotHashSim {
    model: Model,
    stream: ByteStream,
}

impl SlotHashSim {
    /// A new simulated instance, after reset.
    ///
    /// # Errors
    /// When this build has no simulator.
    pub fn new() -> Result<Self, SimError> {
        let model = Model::new("slot_hash")?;
        let stream = ByteStream::new(&model);
        Ok(Self { model, stream })
    }

    /// The slot of every key, as the hardware computes it.
    ///
    /// # Errors
    /// When the module stalls or breaks the AXI-Stream rules.
    pub fn key_slots<K: AsRef<[u8]>>(
        &mut self,
        keys: &[K],
        pressure: &mut Backpressure,
    ) -> Result<Vec<u16>, SimError> {
        let results = self.stream.run(&mut self.model, keys, pressure)?;
        Ok(results.into_iter().map(|slot| slot as u16).collect())
    }

    /// Clock cycles simulated so far.
    pub fn cycles(&self) -> u64 {
        self.model.cycles()
    }
}

/// The `crc32c` module: CRC-32C, 8 bytes a clock.
pub struct Crc32cSim {
    model: Model,
    stream: ByteStream,
}

impl Crc32cSim {
    /// A new simulated instance, after reset.
    ///
    /// # Errors
    /// When this build has no simulator.
    pub fn new() -> Result<Self, SimError> {
        let model = Model::new("crc32c")?;
        let stream = ByteStream::new(&model);
        Ok(Self { model, stream })
    }

    /// The CRC-32C of every message, as the hardware computes it.
    ///
    /// # Errors
    /// When the module stalls or breaks the AXI-Stream rules.
    pub fn checksums<M: AsRef<[u8]>>(
        &mut self,
        messages: &[M],
        pressure: &mut Backpressure,
    ) -> Result<Vec<u32>, SimError> {
        let results = self.stream.run(&mut self.model, messages, pressure)?;
        Ok(results.into_iter().map(|crc| crc as u32).collect())
    }

    /// Clock cycles simulated so far.
    pub fn cycles(&self) -> u64 {
        self.model.cycles()
    }
}

/// Clocks from a packet's last beat to its result, as each module's header states; the
/// latency tests hold the modules to them.
pub mod latency {
    /// `slot_hash`.
    pub const SLOT_HASH_CYCLES: u64 = 8;
    /// `crc32c`.
    pub const CRC32C_CYCLES: u64 = 5;
    /// `dot_i8`.
    pub const DOT_I8_CYCLES: u64 = 6;
}

/// Lanes of `dot_i8`: int8 pairs per beat.
pub const DOT_LANES: usize = 16;

/// Longest vector `dot_i8` takes: 2^16 products of at most 2^14 each stay below 2^31, so the
/// 32-bit accumulator never wraps.
pub const DOT_LEN_MAX: usize = 1 << 16;

/// One beat of `dot_i8`: 16 lanes of (a, b) and which lanes count.
struct DotBeat {
    words: [u32; 8],
    keep: u16,
    last: bool,
}

fn dot_beats(pairs: &[(&[i8], &[i8])]) -> Result<Vec<DotBeat>, SimError> {
    let mut beats = Vec::new();
    for (index, (a, b)) in pairs.iter().enumerate() {
        if a.len() != b.len() {
            return Err(SimError::input(format!(
                "vector pair {index} has lengths {} and {}",
                a.len(),
                b.len()
            )));
        }
        if a.len() > DOT_LEN_MAX {
            return Err(SimError::input(format!(
                "vector pair {index} has {} lanes, more than {DOT_LEN_MAX}",
                a.len()
            )));
        }
        let beat_count = a.len().div_ceil(DOT_LANES).max(1);
        for beat_index in 0..beat_count {
            // Lanes outside tkeep carry junk, which the module must ignore.
            let mut bytes = [0x5au8; 32];
            let start = beat_index * DOT_LANES;
            let end = (start + DOT_LANES).min(a.len());
            for lane in 0..end.saturating_sub(start) {
                bytes[lane] = a[start + lane] as u8;
                bytes[16 + lane] = b[start + lane] as u8;
            }
            let mut words = [0u32; 8];
            for (word, chunk) in words.iter_mut().zip(bytes.chunks_exact(4)) {
                *word = u32::from_le_bytes(chunk.try_into().expect("chunks of 4"));
            }
            let lanes = end.saturating_sub(start);
            beats.push(DotBeat {
                words,
                keep: ((1u32 << lanes) - 1) as u16,
                last: beat_index + 1 == beat_count,
            });
        }
    }
    Ok(beats)
}

/// The `dot_i8` module: 16 int8 multiply-accumulates a clock.
pub struct DotI8Sim {
    model: Model,
    ports: StreamPorts,
    tdata: Port,
    tkeep: Port,
    tlast: Port,
}

impl DotI8Sim {
    /// A new simulated instance, after reset.
    ///
    /// # Errors
    /// When this build has no simulator.
    pub fn new() -> Result<Self, SimError> {
        let model = Model::new("dot_i8")?;
        Ok(Self {
            ports: StreamPorts::standard(&model),
            tdata: model.input("s_axis_tdata"),
            tkeep: model.input("s_axis_tkeep"),
            tlast: model.input("s_axis_tlast"),
            model,
        })
    }

    /// The dot product of every pair of vectors, as the hardware computes it.
    ///
    /// # Errors
    /// When the vectors of a pair differ in length or are longer than [`DOT_LEN_MAX`], or the
    /// module stalls or breaks the AXI-Stream rules.
    pub fn dot_products(
        &mut self,
        pairs: &[(&[i8], &[i8])],
        pressure: &mut Backpressure,
    ) -> Result<Vec<i32>, SimError> {
        let beats = dot_beats(pairs)?;
        let (tdata, tkeep, tlast, data) = (self.tdata, self.tkeep, self.tlast, self.ports.m_tdata);
        let results = run_stream(
            &mut self.model,
            &self.ports,
            &beats,
            pairs.len(),
            pressure,
            |model, beat: &DotBeat| {
                model.set_words(tdata, &beat.words);
                model.set(tkeep, u64::from(beat.keep));
                model.set(tlast, u64::from(beat.last));
            },
            |model| model.get(data) as u32 as i32,
        )?;
        Ok(results)
    }

    /// Clock cycles simulated so far.
    pub fn cycles(&self) -> u64 {
        self.model.cycles()
    }
}
