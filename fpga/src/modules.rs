//! Safe drivers of the simulated modules: each feeds its inputs through the Verilated model
//! under the given back-pressure and returns what the hardware computed.

use ember_store::rate_limit::{Decision, TokenBucketConfig};
use ember_store::text_filter::{ScanResult, TextFilter};

use crate::sim::{
    byte_beats, run_stream, run_stream_until, Backpressure, ByteBeat, Model, Port, SimError,
    StreamPorts,
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
    /// `bloom_probe`.
    pub const BLOOM_PROBE_CYCLES: u64 = 2;
    /// `token_bucket`.
    pub const TOKEN_BUCKET_CYCLES: u64 = 2;
    /// `ac_match`.
    pub const AC_MATCH_CYCLES: u64 = 3;
    /// `resp_tokenizer`.
    pub const RESP_TOKENIZER_CYCLES: u64 = 2;
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

/// Ports of a module that takes one request a beat.
struct RequestStream {
    ports: StreamPorts,
    tdata: Port,
}

impl RequestStream {
    fn new(model: &Model) -> Self {
        Self {
            ports: StreamPorts::standard(model),
            tdata: model.input("s_axis_tdata"),
        }
    }

    fn run(
        &self,
        model: &mut Model,
        requests: &[[u32; 4]],
        pressure: &mut Backpressure,
    ) -> Result<Vec<u64>, SimError> {
        let (tdata, data) = (self.tdata, self.ports.m_tdata);
        let words = tdata_words(tdata);
        run_stream(
            model,
            &self.ports,
            requests,
            requests.len(),
            pressure,
            |model, request: &[u32; 4]| model.set_words(tdata, &request[..words]),
            |model| model.get(data),
        )
    }
}

fn tdata_words(port: Port) -> usize {
    port.width().div_ceil(32) as usize
}

/// A request to `bloom_probe`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BloomRequest {
    /// BF.EXISTS of an item hash.
    Query(u64),
    /// BF.ADD of an item hash.
    Insert(u64),
    /// Clear every bit.
    Clear,
}

/// The `bloom_probe` module with its default parameters.
pub struct BloomProbeSim {
    model: Model,
    stream: RequestStream,
}

impl BloomProbeSim {
    /// Slices of the simulated filter (the module's SLICE_COUNT).
    pub const SLICE_COUNT: u32 = 4;
    /// Bits per slice, as a power of two (the module's SLICE_BITS_LOG2).
    pub const SLICE_BITS_LOG2: u32 = 12;

    /// A new simulated instance, after reset (its clear sweep runs on the first requests).
    ///
    /// # Errors
    /// When this build has no simulator.
    pub fn new() -> Result<Self, SimError> {
        let model = Model::new("bloom_probe")?;
        let stream = RequestStream::new(&model);
        Ok(Self { model, stream })
    }

    /// An empty software filter of the same shape, the reference.
    pub fn reference_filter() -> ember_store::bloom::BloomFilter {
        ember_store::bloom::BloomFilter::new(Self::SLICE_COUNT, Self::SLICE_BITS_LOG2)
            .expect("the module's parameters are within the filter's limits")
    }

    /// Runs the requests in order; one answer each: a query's "maybe present", an insert's
    /// "newly added", false for a clear.
    ///
    /// # Errors
    /// When the module stalls or breaks the AXI-Stream rules.
    pub fn run(
        &mut self,
        requests: &[BloomRequest],
        pressure: &mut Backpressure,
    ) -> Result<Vec<bool>, SimError> {
        let beats: Vec<[u32; 4]> = requests
            .iter()
            .map(|request| {
                let (hash, op) = match *request {
                    BloomRequest::Query(hash) => (hash, 0),
                    BloomRequest::Insert(hash) => (hash, 1),
                    BloomRequest::Clear => (0, 2),
                };
                [hash as u32, (hash >> 32) as u32, op, 0]
            })
            .collect();
        let results = self.stream.run(&mut self.model, &beats, pressure)?;
        Ok(results.into_iter().map(|result| result & 1 == 1).collect())
    }

    /// Clock cycles simulated so far.
    pub fn cycles(&self) -> u64 {
        self.model.cycles()
    }
}

/// A request to `token_bucket`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateRequest {
    /// Decide a request of `cost` tokens for `tenant` at `now_tick`.
    Check {
        /// Tenant index, below [`TokenBucketSim::TENANT_COUNT`].
        tenant: u32,
        /// The clock, in ticks.
        now_tick: u32,
        /// Tokens the request takes.
        cost: u32,
    },
    /// Set a tenant's limits and fill its bucket.
    Configure {
        /// Tenant index.
        tenant: u32,
        /// The limits.
        config: TokenBucketConfig,
        /// The clock, in ticks.
        now_tick: u32,
    },
}

/// The `token_bucket` module with its default parameters.
pub struct TokenBucketSim {
    model: Model,
    stream: RequestStream,
}

impl TokenBucketSim {
    /// Tenants the module holds (2^TENANT_BITS).
    pub const TENANT_COUNT: u32 = 256;

    /// A new simulated instance, after reset (its table sweep runs on the first requests).
    ///
    /// # Errors
    /// When this build has no simulator.
    pub fn new() -> Result<Self, SimError> {
        let model = Model::new("token_bucket")?;
        let stream = RequestStream::new(&model);
        Ok(Self { model, stream })
    }

    /// Runs the requests in order; one decision each (a configure answers allowed, with the
    /// burst as the tokens left).
    ///
    /// # Errors
    /// When a tenant is not below [`Self::TENANT_COUNT`], or the module stalls or breaks the
    /// AXI-Stream rules.
    pub fn run(
        &mut self,
        requests: &[RateRequest],
        pressure: &mut Backpressure,
    ) -> Result<Vec<Decision>, SimError> {
        let mut beats = Vec::with_capacity(requests.len());
        for request in requests {
            let (tenant, now_tick, amount, rate, op) = match *request {
                RateRequest::Check {
                    tenant,
                    now_tick,
                    cost,
                } => (tenant, now_tick, cost, 0, 0),
                RateRequest::Configure {
                    tenant,
                    config,
                    now_tick,
                } => (tenant, now_tick, config.burst, config.rate_per_tick, 1),
            };
            if tenant >= Self::TENANT_COUNT {
                return Err(SimError::input(format!(
                    "tenant {tenant} is outside 0..{}",
                    Self::TENANT_COUNT
                )));
            }
            beats.push([now_tick, amount, u32::from(rate) | tenant << 16, op]);
        }
        let results = self.stream.run(&mut self.model, &beats, pressure)?;
        Ok(results
            .into_iter()
            .map(|result| Decision {
                allowed: result >> 32 & 1 == 1,
                tokens_left: result as u32,
            })
            .collect())
    }

    /// Clock cycles simulated so far.
    pub fn cycles(&self) -> u64 {
        self.model.cycles()
    }
}

/// Longest text `ac_match` scans: its byte counter is 32 bits and all ones means "no match".
pub const TEXT_LEN_MAX: usize = u32::MAX as usize - 1;

/// One beat of `ac_match`: a byte, or none for an empty text.
struct TextBeat {
    byte: u8,
    keep: bool,
    last: bool,
}

/// The `ac_match` module with its default parameters.
pub struct AcMatchSim {
    model: Model,
    stream: ByteStreamNarrow,
    loaded: bool,
}

struct ByteStreamNarrow {
    ports: StreamPorts,
    tdata: Port,
    tkeep: Port,
    tlast: Port,
    cfg_valid: Port,
    cfg_select: Port,
    cfg_address: Port,
    cfg_data: Port,
}

impl AcMatchSim {
    /// DFA state bits of the module (STATE_BITS): at most 256 states.
    pub const STATE_BITS: u32 = 8;
    /// Byte class bits of the module (CLASS_BITS): at most 32 classes.
    pub const CLASS_BITS: u32 = 5;

    /// A new simulated instance, after reset, with no automaton loaded.
    ///
    /// # Errors
    /// When this build has no simulator.
    pub fn new() -> Result<Self, SimError> {
        let model = Model::new("ac_match")?;
        let stream = ByteStreamNarrow {
            ports: StreamPorts::standard(&model),
            tdata: model.input("s_axis_tdata"),
            tkeep: model.input("s_axis_tkeep"),
            tlast: model.input("s_axis_tlast"),
            cfg_valid: model.input("cfg_valid"),
            cfg_select: model.input("cfg_select"),
            cfg_address: model.input("cfg_address"),
            cfg_data: model.input("cfg_data"),
        };
        Ok(Self {
            model,
            stream,
            loaded: false,
        })
    }

    /// Writes the filter's tables into the module's RAMs through its configuration port, one
    /// entry a clock.
    ///
    /// # Errors
    /// When the filter has more states or byte classes than the module holds.
    pub fn load(&mut self, filter: &TextFilter) -> Result<(), SimError> {
        let (classes, transitions) =
            crate::generate::ac_tables(filter, Self::STATE_BITS, Self::CLASS_BITS)
                .map_err(SimError::input)?;
        let ports = &self.stream;
        self.model.set(ports.ports.s_tvalid, 0);
        self.model.set(ports.cfg_valid, 1);
        for (select, table) in [(0, &classes), (1, &transitions)] {
            self.model.set(ports.cfg_select, select);
            for (address, &entry) in table.iter().enumerate() {
                self.model.set(ports.cfg_address, address as u64);
                self.model.set(ports.cfg_data, u64::from(entry));
                self.model.step();
            }
        }
        self.model.set(ports.cfg_valid, 0);
        self.loaded = true;
        Ok(())
    }

    /// Scans every text with the loaded automaton.
    ///
    /// # Errors
    /// When no filter was loaded, a text is longer than [`TEXT_LEN_MAX`], or the module stalls
    /// or breaks the AXI-Stream rules.
    pub fn scan<T: AsRef<[u8]>>(
        &mut self,
        texts: &[T],
        pressure: &mut Backpressure,
    ) -> Result<Vec<ScanResult>, SimError> {
        if !self.loaded {
            return Err(SimError::input("no text filter loaded"));
        }
        let mut beats = Vec::new();
        for text in texts {
            let bytes = text.as_ref();
            if bytes.len() > TEXT_LEN_MAX {
                return Err(SimError::input(format!(
                    "text of {} bytes, more than {TEXT_LEN_MAX}",
                    bytes.len()
                )));
            }
            if bytes.is_empty() {
                beats.push(TextBeat {
                    byte: 0x7f,
                    keep: false,
                    last: true,
                });
            }
            for (index, &byte) in bytes.iter().enumerate() {
                beats.push(TextBeat {
                    byte,
                    keep: true,
                    last: index + 1 == bytes.len(),
                });
            }
        }
        let ports = &self.stream;
        let results = run_stream(
            &mut self.model,
            &ports.ports,
            &beats,
            texts.len(),
            pressure,
            |model, beat: &TextBeat| {
                model.set(ports.tdata, u64::from(beat.byte));
                model.set(ports.tkeep, u64::from(beat.keep));
                model.set(ports.tlast, u64::from(beat.last));
            },
            |model| model.get(ports.ports.m_tdata),
        )?;
        Ok(results
            .into_iter()
            .map(|result| {
                let first = (result >> 32) as u32;
                ScanResult {
                    first_match_end: (first != u32::MAX).then_some(first),
                    match_end_count: result as u32,
                }
            })
            .collect())
    }

    /// Clock cycles simulated so far (table loads included).
    pub fn cycles(&self) -> u64 {
        self.model.cycles()
    }
}

/// A protocol error the tokenizer reports (the multibulk kinds of
/// [`ember_resp::ProtocolErrorKind`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// A `*` header that is not a valid count.
    InvalidMultibulkLength,
    /// A `$` header that is not a valid length.
    InvalidBulkLength,
    /// An argument that does not start with `$`.
    ExpectedBulk {
        /// The byte found instead.
        found: u8,
    },
    /// A `*` header line with no end within the limit.
    MultibulkCountTooBig,
    /// A `$` header line with no end within the limit.
    BulkCountTooBig,
    /// An error code the module does not define (a hardware bug).
    Unknown(u32),
}

/// One event of `resp_tokenizer`; offsets count from the start of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenEvent {
    /// An argument: where its data starts, and its length.
    Argument {
        /// Offset of its first data byte.
        offset: u32,
        /// Its length.
        len: u32,
    },
    /// The end of a request.
    Request {
        /// Offset just past the request.
        end: u32,
        /// Its argument count (0 for `*0` and negative counts).
        argument_count: u32,
    },
    /// A protocol error; nothing follows in this stream.
    Error {
        /// Offset where it was detected.
        offset: u32,
        /// What went wrong.
        error: TokenError,
    },
    /// An inline request, left to software; nothing follows in this stream.
    Inline {
        /// Offset of the request.
        offset: u32,
    },
}

/// What Ember's software parser (ember-resp, default limits) makes of a whole stream, as
/// tokenizer events: the reference for `resp_tokenizer`. A trailing request that the stream
/// ends inside gives no event, as the parser then asks for more bytes.
pub fn resp_reference_events(stream: &[u8]) -> Vec<TokenEvent> {
    let mut parser = ember_resp::RequestParser::new(ember_resp::Limits::default());
    let mut events = Vec::new();
    let mut start = 0usize;
    while start < stream.len() {
        if stream[start] != b'*' {
            events.push(TokenEvent::Inline {
                offset: start as u32,
            });
            break;
        }
        let request = &stream[start..];
        match parser.parse(request) {
            Ok(Some(consumed)) => {
                let args = parser.args(request);
                for arg in args.iter() {
                    // The arguments of a multibulk request are slices of the input itself.
                    let offset = arg.as_ptr() as usize - stream.as_ptr() as usize;
                    events.push(TokenEvent::Argument {
                        offset: offset as u32,
                        len: arg.len() as u32,
                    });
                }
                start += consumed;
                events.push(TokenEvent::Request {
                    end: start as u32,
                    argument_count: args.len() as u32,
                });
            }
            Ok(None) => break,
            Err(error) => {
                use ember_resp::ProtocolErrorKind as Kind;
                let error_kind = match error.kind() {
                    Kind::InvalidMultibulkLength => TokenError::InvalidMultibulkLength,
                    Kind::InvalidBulkLength => TokenError::InvalidBulkLength,
                    Kind::ExpectedBulk { found } => TokenError::ExpectedBulk { found },
                    Kind::MultibulkCountTooBig => TokenError::MultibulkCountTooBig,
                    Kind::BulkCountTooBig => TokenError::BulkCountTooBig,
                    _ => TokenError::Unknown(u32::MAX),
                };
                events.push(TokenEvent::Error {
                    offset: (start + error.offset()) as u32,
                    error: error_kind,
                });
                break;
            }
        }
    }
    events
}

/// The events of a stream without the arguments of requests that never completed (the stream
/// ended inside them, or an error stopped them): the tokenizer reports arguments as they come,
/// the parser only whole requests.
pub fn complete_events(events: &[TokenEvent]) -> Vec<TokenEvent> {
    let mut kept = Vec::with_capacity(events.len());
    let mut in_completed_request = false;
    for event in events.iter().rev() {
        match event {
            TokenEvent::Argument { .. } if !in_completed_request => continue,
            TokenEvent::Argument { .. } => {}
            TokenEvent::Request { .. } => in_completed_request = true,
            TokenEvent::Error { .. } | TokenEvent::Inline { .. } => in_completed_request = false,
        }
        kept.push(*event);
    }
    kept.reverse();
    kept
}

/// Kind codes of the tokenizer's events (tdata[3:0]).
const EVENT_STREAM_END: u64 = 5;

/// The `resp_tokenizer` module with default limits.
pub struct RespTokenizerSim {
    model: Model,
    ports: StreamPorts,
    tdata: Port,
    tkeep: Port,
    tlast: Port,
}

impl RespTokenizerSim {
    /// A new simulated instance, after reset.
    ///
    /// # Errors
    /// When this build has no simulator.
    pub fn new() -> Result<Self, SimError> {
        let model = Model::new("resp_tokenizer")?;
        Ok(Self {
            ports: StreamPorts::standard(&model),
            tdata: model.input("s_axis_tdata"),
            tkeep: model.input("s_axis_tkeep"),
            tlast: model.input("s_axis_tlast"),
            model,
        })
    }

    /// Tokenizes every stream (one connection's bytes each); the events of each, without its
    /// closing stream-end event (whose length is checked).
    ///
    /// # Errors
    /// When a stream is longer than 2^32 - 1 bytes, the module stalls, breaks the AXI-Stream
    /// rules, or reports a stream length that is not the stream's.
    pub fn tokenize<S: AsRef<[u8]>>(
        &mut self,
        streams: &[S],
        pressure: &mut Backpressure,
    ) -> Result<Vec<Vec<TokenEvent>>, SimError> {
        let mut beats = Vec::new();
        for stream in streams {
            let bytes = stream.as_ref();
            if bytes.len() >= u32::MAX as usize {
                return Err(SimError::input(format!(
                    "stream of {} bytes, offsets are 32 bits",
                    bytes.len()
                )));
            }
            if bytes.is_empty() {
                beats.push(TextBeat {
                    byte: b'*',
                    keep: false,
                    last: true,
                });
            }
            for (index, &byte) in bytes.iter().enumerate() {
                beats.push(TextBeat {
                    byte,
                    keep: true,
                    last: index + 1 == bytes.len(),
                });
            }
        }
        let (tdata, tkeep, tlast, data) = (self.tdata, self.tkeep, self.tlast, self.ports.m_tdata);
        let stream_count = streams.len();
        let raw: Vec<[u32; 3]> = run_stream_until(
            &mut self.model,
            &self.ports,
            &beats,
            pressure,
            |model, beat: &TextBeat| {
                model.set(tdata, u64::from(beat.byte));
                model.set(tkeep, u64::from(beat.keep));
                model.set(tlast, u64::from(beat.last));
            },
            |model| {
                let words = model.output_words(data);
                [words[0], words[1], words[2]]
            },
            |events| {
                events
                    .iter()
                    .filter(|words| u64::from(words[0] & 0xf) == EVENT_STREAM_END)
                    .count()
                    == stream_count
            },
        )?;
        let mut per_stream = Vec::with_capacity(stream_count);
        let mut current = Vec::new();
        for words in raw {
            let word =
                u128::from(words[0]) | u128::from(words[1]) << 32 | u128::from(words[2]) << 64;
            let kind = (word & 0xf) as u64;
            let offset = (word >> 4) as u32;
            let value = (word >> 36) as u32;
            let byte = (word >> 68) as u8;
            let event = match kind {
                1 => TokenEvent::Argument { offset, len: value },
                2 => TokenEvent::Request {
                    end: offset,
                    argument_count: value,
                },
                3 => TokenEvent::Error {
                    offset,
                    error: match value {
                        1 => TokenError::InvalidMultibulkLength,
                        2 => TokenError::InvalidBulkLength,
                        3 => TokenError::ExpectedBulk { found: byte },
                        4 => TokenError::MultibulkCountTooBig,
                        5 => TokenError::BulkCountTooBig,
                        other => TokenError::Unknown(other),
                    },
                },
                4 => TokenEvent::Inline { offset },
                EVENT_STREAM_END => {
                    let expected = streams[per_stream.len()].as_ref().len();
                    if offset as usize != expected {
                        return Err(SimError::input(format!(
                            "hardware reported a stream of {offset} bytes, not {expected}"
                        )));
                    }
                    per_stream.push(std::mem::take(&mut current));
                    continue;
                }
                other => {
                    return Err(SimError::input(format!(
                        "hardware emitted unknown event kind {other}"
                    )))
                }
            };
            current.push(event);
        }
        Ok(per_stream)
    }

    /// Clock cycles simulated so far.
    pub fn cycles(&self) -> u64 {
        self.model.cycles()
    }
}
