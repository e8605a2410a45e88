//! Driving a Verilated module clock by clock: the safe wrapper over the generated C++ shim,
//! random back-pressure, and a generic AXI-Stream runner that checks the module keeps the
//! AXI-Stream rules while it runs.

use std::ffi::c_void;
use std::fmt;
use std::ptr::NonNull;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

mod ports {
    #![allow(dead_code)]
    include!("ports.rs");
}
use ports::{ModuleSpec, MODULE_SPECS};

/// Cycles a stream may make no progress (no beat in, no result out) while the test bench is
/// offering both before the run is declared stalled. The deepest pipeline here is a few
/// clocks, and the longest internal sweep (a memory clear) is 2^16 clocks.
const STALL_CYCLES_MAX: u64 = 1 << 20;

/// Why a simulation could not run or failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimError {
    kind: SimErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum SimErrorKind {
    Unavailable,
    UnknownModule(&'static str),
    Stalled {
        module: &'static str,
        cycles: u64,
    },
    Protocol {
        module: &'static str,
        cycle: u64,
        rule: &'static str,
    },
    Input(String),
}

impl SimError {
    /// Whether the error is that this build has no simulator (Verilator was not installed).
    pub fn is_unavailable(&self) -> bool {
        self.kind == SimErrorKind::Unavailable
    }

    pub(crate) fn input(message: impl Into<String>) -> Self {
        Self {
            kind: SimErrorKind::Input(message.into()),
        }
    }
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            SimErrorKind::Unavailable => write!(
                f,
                "ember-fpga was built without the Verilator simulator (verilator was not installed)"
            ),
            SimErrorKind::UnknownModule(name) => write!(f, "no simulated module called {name}"),
            SimErrorKind::Stalled { module, cycles } => {
                write!(f, "{module} made no progress for {cycles} cycles")
            }
            SimErrorKind::Protocol {
                module,
                cycle,
                rule,
            } => {
                write!(
                    f,
                    "{module} broke the AXI-Stream rules at cycle {cycle}: {rule}"
                )
            }
            SimErrorKind::Input(message) => write!(f, "invalid input: {message}"),
        }
    }
}

impl std::error::Error for SimError {}

/// Whether this build carries the Verilator simulator.
pub fn simulator_available() -> bool {
    cfg!(ember_fpga_sim)
}

type NewFunction = unsafe extern "C" fn() -> *mut c_void;
type FreeFunction = unsafe extern "C" fn(*mut c_void);
type StepFunction = unsafe extern "C" fn(*mut c_void, *const u32, *mut u32, i32);

/// The shim's entry points for one module.
#[allow(dead_code)]
pub(crate) struct ModelFunctions {
    new: NewFunction,
    free: FreeFunction,
    step: StepFunction,
}

#[cfg(ember_fpga_sim)]
include!(concat!(env!("OUT_DIR"), "/ember_fpga_ffi.rs"));

#[cfg(not(ember_fpga_sim))]
fn model_functions(_name: &str) -> Option<ModelFunctions> {
    None
}

/// Where one port lives in the packed input or output words.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Port {
    offset: usize,
    width: u32,
}

fn words(width: u32) -> usize {
    width.div_ceil(32) as usize
}

impl Port {
    /// Width in bits.
    pub(crate) fn width(&self) -> u32 {
        self.width
    }
}

/// One Verilated module instance.
pub(crate) struct Model {
    spec: &'static ModuleSpec,
    handle: NonNull<c_void>,
    functions: ModelFunctions,
    inputs: Vec<u32>,
    outputs: Vec<u32>,
    cycles: u64,
}

impl Model {
    /// A new instance of `name`, held in reset for two clocks.
    pub(crate) fn new(name: &'static str) -> Result<Self, SimError> {
        let spec = MODULE_SPECS
            .iter()
            .find(|spec| spec.name == name)
            .ok_or(SimError {
                kind: SimErrorKind::UnknownModule(name),
            })?;
        let functions = model_functions(name).ok_or(SimError {
            kind: SimErrorKind::Unavailable,
        })?;
        // SAFETY: `new` is the shim's constructor for this module; it has no preconditions and
        // returns a heap object that only `free` releases (in Drop).
        let raw = unsafe { (functions.new)() };
        let handle = NonNull::new(raw).expect("the shim's constructor never returns null");
        let input_words = spec.inputs.iter().map(|port| words(port.width)).sum();
        let output_words = spec.outputs.iter().map(|port| words(port.width)).sum();
        let mut model = Self {
            spec,
            handle,
            functions,
            inputs: vec![0; input_words],
            outputs: vec![0; output_words],
            cycles: 0,
        };
        model.reset();
        Ok(model)
    }

    fn find(ports: &[ports::PortSpec], name: &str, module: &str) -> Port {
        let mut offset = 0;
        for port in ports {
            if port.name == name {
                return Port {
                    offset,
                    width: port.width,
                };
            }
            offset += words(port.width);
        }
        panic!("module {module} has no port {name} in src/ports.rs");
    }

    /// An input port by name.
    ///
    /// # Panics
    /// When the module has no such input (a bug in this crate, caught by any test).
    pub(crate) fn input(&self, name: &str) -> Port {
        Self::find(self.spec.inputs, name, self.spec.name)
    }

    /// An output port by name.
    ///
    /// # Panics
    /// When the module has no such output.
    pub(crate) fn output(&self, name: &str) -> Port {
        Self::find(self.spec.outputs, name, self.spec.name)
    }

    /// Sets an input of at most 64 bits; bits above its width are dropped.
    pub(crate) fn set(&mut self, port: Port, value: u64) {
        let value = if port.width >= 64 {
            value
        } else {
            value & ((1u64 << port.width) - 1)
        };
        self.inputs[port.offset] = value as u32;
        if port.width > 32 {
            self.inputs[port.offset + 1] = (value >> 32) as u32;
        }
    }

    /// Sets a wide input from 32-bit words, least significant first.
    pub(crate) fn set_words(&mut self, port: Port, values: &[u32]) {
        let count = words(port.width);
        assert_eq!(values.len(), count, "wide port needs {count} words");
        self.inputs[port.offset..port.offset + count].copy_from_slice(values);
        let spare_bits = count as u32 * 32 - port.width;
        if spare_bits > 0 {
            self.inputs[port.offset + count - 1] &= u32::MAX >> spare_bits;
        }
    }

    /// An output of at most 64 bits, as it was before the last clock edge.
    pub(crate) fn get(&self, port: Port) -> u64 {
        let low = u64::from(self.outputs[port.offset]);
        if port.width > 32 {
            low | u64::from(self.outputs[port.offset + 1]) << 32
        } else {
            low
        }
    }

    /// The packed output words, for comparing whole outputs from one cycle to the next.
    pub(crate) fn output_words(&self, port: Port) -> &[u32] {
        &self.outputs[port.offset..port.offset + words(port.width)]
    }

    fn clock(&mut self, reset: bool) {
        // SAFETY: the handle came from this module's constructor and is freed only in Drop;
        // `inputs` and `outputs` hold exactly the words the shim reads and writes for this
        // module, because both were sized from the same port table (src/ports.rs).
        unsafe {
            (self.functions.step)(
                self.handle.as_ptr(),
                self.inputs.as_ptr(),
                self.outputs.as_mut_ptr(),
                i32::from(reset),
            )
        };
    }

    /// One clock: inputs applied, outputs sampled, then the rising edge.
    pub(crate) fn step(&mut self) {
        self.clock(false);
        self.cycles += 1;
    }

    /// One clock that [`Model::cycles`] does not count: the test bench's own checks.
    pub(crate) fn step_uncounted(&mut self) {
        self.clock(false);
    }

    /// Holds reset for two clocks with every input at zero.
    pub(crate) fn reset(&mut self) {
        self.inputs.fill(0);
        self.clock(true);
        self.clock(true);
    }

    /// Clocks run since the model was made, reset excluded.
    pub(crate) fn cycles(&self) -> u64 {
        self.cycles
    }

    pub(crate) fn name(&self) -> &'static str {
        self.spec.name
    }
}

impl Drop for Model {
    fn drop(&mut self) {
        // SAFETY: the handle came from the matching constructor and is not used after this.
        unsafe { (self.functions.free)(self.handle.as_ptr()) };
    }
}

/// How often the test bench offers a beat and takes a result: random back-pressure on both
/// sides of a module, from a seed that replays it.
#[derive(Debug, Clone)]
pub struct Backpressure {
    rng: SmallRng,
    source_valid_percent: u32,
    sink_ready_percent: u32,
}

impl Backpressure {
    /// No back-pressure: a beat offered and a result taken every clock.
    pub fn none() -> Self {
        Self::random(0, 100, 100)
    }

    /// The source offers a new beat in a clock with probability `source_valid_percent`%, and
    /// the sink is ready with probability `sink_ready_percent`% (both clamped to 1..=100).
    pub fn random(seed: u64, source_valid_percent: u32, sink_ready_percent: u32) -> Self {
        Self {
            rng: SmallRng::seed_from_u64(seed),
            source_valid_percent: source_valid_percent.clamp(1, 100),
            sink_ready_percent: sink_ready_percent.clamp(1, 100),
        }
    }

    fn chance(&mut self, percent: u32) -> bool {
        percent >= 100 || self.rng.gen_range(0..100) < percent
    }
}

/// The handshake ports of a module with one AXI-Stream in and one out.
pub(crate) struct StreamPorts {
    pub(crate) s_tvalid: Port,
    pub(crate) s_tready: Port,
    pub(crate) m_tvalid: Port,
    pub(crate) m_tready: Port,
    pub(crate) m_tdata: Port,
}

impl StreamPorts {
    pub(crate) fn standard(model: &Model) -> Self {
        Self {
            s_tvalid: model.input("s_axis_tvalid"),
            s_tready: model.output("s_axis_tready"),
            m_tvalid: model.output("m_axis_tvalid"),
            m_tready: model.input("m_axis_tready"),
            m_tdata: model.output("m_axis_tdata"),
        }
    }
}

/// Clocks the runner keeps going after the last expected result, with the sink ready, to
/// catch a module that emits more results than it should (deeper than any pipeline here).
const DRAIN_CYCLES: u64 = 32;

/// Streams `beats` into the module and collects `expected_outputs` results, under
/// back-pressure. A beat, once offered, stays offered until taken (as AXI-Stream requires);
/// a result held while the sink is not ready must stay valid and unchanged, which is checked,
/// and so is that no result follows the last one expected.
pub(crate) fn run_stream<Beat, Output>(
    model: &mut Model,
    ports: &StreamPorts,
    beats: &[Beat],
    expected_outputs: usize,
    pressure: &mut Backpressure,
    load: impl FnMut(&mut Model, &Beat),
    read: impl FnMut(&Model) -> Output,
) -> Result<Vec<Output>, SimError> {
    run_stream_until(model, ports, beats, pressure, load, read, |outputs| {
        outputs.len() == expected_outputs
    })
}

/// As [`run_stream`], collecting results until `done` says the last has come.
pub(crate) fn run_stream_until<Beat, Output>(
    model: &mut Model,
    ports: &StreamPorts,
    beats: &[Beat],
    pressure: &mut Backpressure,
    mut load: impl FnMut(&mut Model, &Beat),
    mut read: impl FnMut(&Model) -> Output,
    done: impl Fn(&[Output]) -> bool,
) -> Result<Vec<Output>, SimError> {
    let mut outputs = Vec::new();
    let mut next_beat = 0;
    let mut offering = false;
    let mut held_output: Option<Vec<u32>> = None;
    let mut idle_cycles = 0u64;
    let protocol = |model: &Model, rule| {
        Err(SimError {
            kind: SimErrorKind::Protocol {
                module: model.name(),
                cycle: model.cycles(),
                rule,
            },
        })
    };
    while next_beat < beats.len() || !done(&outputs) {
        offering =
            next_beat < beats.len() && (offering || pressure.chance(pressure.source_valid_percent));
        if offering {
            load(model, &beats[next_beat]);
        }
        model.set(ports.s_tvalid, u64::from(offering));
        let sink_ready = pressure.chance(pressure.sink_ready_percent);
        model.set(ports.m_tready, u64::from(sink_ready));
        model.step();

        let mut progress = false;
        if offering && model.get(ports.s_tready) == 1 {
            next_beat += 1;
            offering = false;
            progress = true;
        }
        let output_valid = model.get(ports.m_tvalid) == 1;
        if let Some(held) = &held_output {
            if !output_valid || model.output_words(ports.m_tdata) != held.as_slice() {
                return protocol(
                    model,
                    "m_axis_tvalid dropped or m_axis_tdata changed before the handshake",
                );
            }
        }
        held_output = None;
        if output_valid {
            if sink_ready {
                if done(&outputs) {
                    return protocol(model, "more results than inputs call for");
                }
                outputs.push(read(model));
                progress = true;
            } else {
                held_output = Some(model.output_words(ports.m_tdata).to_vec());
            }
        }
        idle_cycles = if progress { 0 } else { idle_cycles + 1 };
        if idle_cycles > STALL_CYCLES_MAX {
            return Err(SimError {
                kind: SimErrorKind::Stalled {
                    module: model.name(),
                    cycles: idle_cycles,
                },
            });
        }
    }
    model.set(ports.s_tvalid, 0);
    model.set(ports.m_tready, 1);
    for _ in 0..DRAIN_CYCLES {
        model.step_uncounted();
        if model.get(ports.m_tvalid) == 1 {
            return protocol(model, "more results than inputs call for");
        }
    }
    Ok(outputs)
}

/// One beat of a byte stream: up to 8 bytes, low bytes first.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ByteBeat {
    pub(crate) data: u64,
    pub(crate) keep: u8,
    pub(crate) last: bool,
}

/// Splits packets into 8-byte beats; an empty packet is one beat with no bytes. Lanes outside
/// tkeep carry bytes of `junk`, so that a module that forgets to mask them is caught.
pub(crate) fn byte_beats<P: AsRef<[u8]>>(packets: &[P], junk: u64) -> Vec<ByteBeat> {
    let mut beats = Vec::new();
    for packet in packets {
        let bytes = packet.as_ref();
        if bytes.is_empty() {
            beats.push(ByteBeat {
                data: junk,
                keep: 0,
                last: true,
            });
            continue;
        }
        let chunk_count = bytes.len().div_ceil(8);
        for (index, chunk) in bytes.chunks(8).enumerate() {
            let mut data = junk.to_le_bytes();
            data[..chunk.len()].copy_from_slice(chunk);
            beats.push(ByteBeat {
                data: u64::from_le_bytes(data),
                keep: (((1u16 << chunk.len()) - 1) & 0xff) as u8,
                last: index + 1 == chunk_count,
            });
        }
    }
    beats
}
