//! Generators for what the hardware needs from the Rust reference: the XOR equations of the
//! CRC modules.
//!
//! A CRC is linear over GF(2), so an 8-byte step of it is a matrix. Rather than write the step
//! as a loop over bits (which synthesises to a chain 64 stages deep), the matrices are found by
//! probing the reference functions of Ember itself with unit vectors, and written out as one
//! XOR equation per output bit. Three maps per CRC:
//!
//! - the data term: what 8 message bytes add to the state when they are processed from state 0;
//! - the 8-byte shift: what 8 bytes do to the state (the same as 8 zero bytes from it);
//! - the unshift by `k` zero bytes, the inverse of the shift by `k` bytes: a packet's last beat
//!   is processed as 8 bytes with its missing bytes as zeros at the end, and the unshift takes
//!   those zeros back out, so the loop that carries the state from beat to beat stays one
//!   fixed XOR network with no multiplexer in it. The unshift is feed-forward, so it is
//!   pipelined: 0..3 bytes in one stage, 0, 4 or 8 in the next.
//!
//! `cargo run -p ember-fpga --bin ember-fpga-gen` rewrites the files; a test checks that the
//! committed files are what this module produces.

use std::fmt::Write as _;

/// A linear map over GF(2): `rows[j]` has bit `i` set when input bit `i` feeds output bit `j`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BitMatrix {
    /// One mask of input bits per output bit.
    pub rows: Vec<u64>,
    /// Number of input bits (at most 64).
    pub input_bits: u32,
}

impl BitMatrix {
    /// Finds the matrix of a linear function by applying it to every unit vector.
    pub fn probe(input_bits: u32, output_bits: u32, function: impl Fn(u64) -> u64) -> Self {
        let mut rows = vec![0u64; output_bits as usize];
        for input in 0..input_bits {
            let image = function(1u64 << input);
            for (output, row) in rows.iter_mut().enumerate() {
                if image >> output & 1 == 1 {
                    *row |= 1u64 << input;
                }
            }
        }
        Self { rows, input_bits }
    }

    /// The matrix applied to `input`.
    pub fn apply(&self, input: u64) -> u64 {
        self.rows.iter().enumerate().fold(0, |output, (bit, row)| {
            output | (u64::from((row & input).count_ones() & 1) << bit)
        })
    }

    /// The inverse of a square matrix, by Gauss-Jordan elimination; `None` when singular.
    pub fn inverse(&self) -> Option<Self> {
        let size = self.rows.len();
        assert_eq!(
            size as u32, self.input_bits,
            "only square matrices have inverses"
        );
        let mut left = self.rows.clone();
        let mut right: Vec<u64> = (0..size).map(|bit| 1u64 << bit).collect();
        for column in 0..size {
            let pivot = (column..size).find(|&row| left[row] >> column & 1 == 1)?;
            left.swap(column, pivot);
            right.swap(column, pivot);
            for row in 0..size {
                if row != column && left[row] >> column & 1 == 1 {
                    left[row] ^= left[column];
                    right[row] ^= right[column];
                }
            }
        }
        Some(Self {
            rows: right,
            input_bits: self.input_bits,
        })
    }
}

/// The three maps of one CRC, for a state of `state_bits` bits and 8-byte beats.
#[derive(Debug, Clone)]
pub struct CrcEquations {
    /// Module name prefix: `crc32c` or `crc16`.
    pub name: &'static str,
    /// Width of the CRC state.
    pub state_bits: u32,
    /// Data term of an 8-byte beat (64 inputs, byte 0 in bits 7:0).
    pub data_term: BitMatrix,
    /// State advanced over 8 bytes.
    pub shift8: BitMatrix,
    /// `unshift[k]`: the inverse of the state advanced over `k` zero bytes, `k` in 0..=8.
    pub unshift: Vec<BitMatrix>,
    /// Where the reference comes from, for the generated header.
    pub reference: &'static str,
}

/// Raw CRC-32C state update (no initial or final XOR) over `bytes`, from Ember's reference.
pub fn crc32c_raw(state: u32, bytes: &[u8]) -> u32 {
    !ember_rdma::checksum::crc32c_append(!state, bytes)
}

/// Raw CRC16-XMODEM state update over `bytes` from `state`, from Ember's reference.
///
/// The reference starts from state 0 only, so a state is reached by a 2-byte prefix: the map
/// from 2-byte messages to states is a bijection for a 16-bit CRC.
pub fn crc16_raw(state: u16, bytes: &[u8]) -> u16 {
    let mut message = crc16_prefix_for_state(state).to_vec();
    message.extend_from_slice(bytes);
    ember_store::slot::crc16_xmodem(&message)
}

/// A 2-byte message whose CRC16 is `state`: by linearity, the XOR of basis prefixes, each found
/// once by search.
fn crc16_prefix_for_state(state: u16) -> [u8; 2] {
    use std::sync::OnceLock;
    static BASIS: OnceLock<[u16; 16]> = OnceLock::new();
    let basis = BASIS.get_or_init(|| {
        let mut basis = [0u16; 16];
        for (bit, prefix) in basis.iter_mut().enumerate() {
            *prefix = (0..=u16::MAX)
                .find(|candidate| {
                    ember_store::slot::crc16_xmodem(&candidate.to_be_bytes()) == 1 << bit
                })
                .expect("2-byte messages reach every CRC16 state");
        }
        basis
    });
    let prefix = (0..16)
        .filter(|bit| state >> bit & 1 == 1)
        .fold(0u16, |acc, bit| acc ^ basis[bit]);
    prefix.to_be_bytes()
}

fn crc_equations(
    name: &'static str,
    state_bits: u32,
    reference: &'static str,
    raw: impl Fn(u64, &[u8]) -> u64,
) -> CrcEquations {
    let data_term = BitMatrix::probe(64, state_bits, |data| raw(0, &data.to_le_bytes()));
    let shift8 = BitMatrix::probe(state_bits, state_bits, |state| raw(state, &[0; 8]));
    let unshift = (0..=8)
        .map(|zero_bytes| {
            BitMatrix::probe(state_bits, state_bits, |state| {
                raw(state, &vec![0; zero_bytes])
            })
            .inverse()
            .expect("a CRC shift is invertible when its polynomial has a constant term")
        })
        .collect();
    CrcEquations {
        name,
        state_bits,
        data_term,
        shift8,
        unshift,
        reference,
    }
}

/// The CRC-32C maps, from `ember_rdma::checksum::crc32c_append`.
pub fn crc32c_equations() -> CrcEquations {
    crc_equations(
        "crc32c",
        32,
        "ember_rdma::checksum::crc32c_append",
        |state, bytes| u64::from(crc32c_raw(state as u32, bytes)),
    )
}

/// The CRC16-XMODEM maps, from `ember_store::slot::crc16_xmodem`.
pub fn crc16_equations() -> CrcEquations {
    crc_equations(
        "crc16",
        16,
        "ember_store::slot::crc16_xmodem",
        |state, bytes| u64::from(crc16_raw(state as u16, bytes)),
    )
}

/// One generated file: a path relative to the `fpga` folder and its contents.
#[derive(Debug, Clone)]
pub struct GeneratedFile {
    /// Path relative to the `fpga` folder, e.g. `rtl/crc32c_shift8.v`.
    pub path: String,
    /// Full text of the file.
    pub contents: String,
}

/// Every generated file, in a stable order.
pub fn generated_files() -> Vec<GeneratedFile> {
    let mut files = Vec::new();
    for equations in [crc32c_equations(), crc16_equations()] {
        files.push(data_term_file(&equations));
        files.push(shift8_file(&equations));
        files.push(unshift_file(&equations));
    }
    files
}

fn header(equations: &CrcEquations, module: &str, what: &str) -> String {
    format!(
        "// {module}: {what}\n\
         //\n\
         // Generated by `cargo run -p ember-fpga --bin ember-fpga-gen` from {reference}\n\
         // (fpga/src/generate.rs); do not edit. One XOR equation per output bit, found by probing the\n\
         // Rust reference with unit vectors. Purely combinational: no clock, no latency.\n\
         `resetall\n\
         `default_nettype none\n\n",
        reference = equations.reference
    )
}

fn xor_expression(row: u64, input: &str) -> String {
    if row == 0 {
        return "1'b0".to_string();
    }
    (0..64)
        .filter(|bit| row >> bit & 1 == 1)
        .map(|bit| format!("{input}[{bit}]"))
        .collect::<Vec<_>>()
        .join(" ^ ")
}

fn assignments(out: &mut String, matrix: &BitMatrix, output: &str, input: &str) {
    for (bit, row) in matrix.rows.iter().enumerate() {
        writeln!(
            out,
            "    assign {output}[{bit}] = {};",
            xor_expression(*row, input)
        )
        .expect("String write");
    }
}

fn data_term_file(equations: &CrcEquations) -> GeneratedFile {
    let module = format!("{}_data_term", equations.name);
    let width = equations.state_bits;
    let mut text = header(
        equations,
        &module,
        "what 8 message bytes add to the CRC state, processed from state 0.\n\
         // Interface: data[7:0] is the first byte; a byte that is not part of the message must be 0.",
    );
    writeln!(
        text,
        "module {module} (\n    input  wire [63:0] data,\n    output wire [{}:0] term\n);",
        width - 1
    )
    .expect("String write");
    assignments(&mut text, &equations.data_term, "term", "data");
    text.push_str("endmodule\n\n`resetall\n");
    GeneratedFile {
        path: format!("rtl/{module}.v"),
        contents: text,
    }
}

fn shift8_file(equations: &CrcEquations) -> GeneratedFile {
    let module = format!("{}_shift8", equations.name);
    let width = equations.state_bits;
    let mut text = header(
        equations,
        &module,
        "the CRC state advanced over 8 bytes (the state part of a beat).",
    );
    writeln!(
        text,
        "module {module} (\n    input  wire [{w}:0] state,\n    output wire [{w}:0] shifted\n);",
        w = width - 1
    )
    .expect("String write");
    assignments(&mut text, &equations.shift8, "shifted", "state");
    text.push_str("endmodule\n\n`resetall\n");
    GeneratedFile {
        path: format!("rtl/{module}.v"),
        contents: text,
    }
}

fn unshift_file(equations: &CrcEquations) -> GeneratedFile {
    let module = format!("{}_unshift", equations.name);
    let width = equations.state_bits;
    let mut text = header(
        equations,
        &module,
        "takes zero_bytes (0..8) trailing zero bytes back out of a CRC state.\n\
         // Interface: pipelined in two registered stages that advance when enable is high: the\n\
         // first takes out zero_bytes[1:0] bytes, the second 4 * zero_bytes[3:2]. Latency 2.",
    )
    .replace(
        "Purely combinational: no clock, no latency.",
        "Two register stages, no reset (data only).",
    );
    writeln!(
        text,
        "module {module} (\n    input  wire        clk,\n    input  wire        enable,\n    \
         input  wire [{w}:0] state,\n    input  wire [3:0]  zero_bytes,\n    output reg  [{w}:0] unshifted\n);",
        w = width - 1
    )
    .expect("String write");
    writeln!(
        text,
        "    reg [{}:0] partial_reg;\n    reg [1:0] high_reg;",
        width - 1
    )
    .expect("String write");
    for (zero_bytes, input) in [
        (1, "state"),
        (2, "state"),
        (3, "state"),
        (4, "partial_reg"),
        (8, "partial_reg"),
    ] {
        writeln!(text, "    wire [{}:0] by{zero_bytes};", width - 1).expect("String write");
        assignments(
            &mut text,
            &equations.unshift[zero_bytes],
            &format!("by{zero_bytes}"),
            input,
        );
    }
    text.push_str(
        "    always @(posedge clk) begin\n        if (enable) begin\n            case (zero_bytes[1:0])\n\
         \x20               2'd1: partial_reg <= by1;\n\
         \x20               2'd2: partial_reg <= by2;\n\
         \x20               2'd3: partial_reg <= by3;\n\
         \x20               default: partial_reg <= state;\n\
         \x20           endcase\n\
         \x20           high_reg <= zero_bytes[3:2];\n\
         \x20           case (high_reg)\n\
         \x20               2'd1: unshifted <= by4;\n\
         \x20               2'd2: unshifted <= by8;\n\
         \x20               default: unshifted <= partial_reg;\n\
         \x20           endcase\n        end\n    end\nendmodule\n\n`resetall\n",
    );
    GeneratedFile {
        path: format!("rtl/{module}.v"),
        contents: text,
    }
}

/// The tables of the `ac_match` module for a text filter: the class of every byte, and the
/// transition table indexed by `state << class_bits | class`, each entry
/// `accepting(next) << state_bits | next`. Entries for classes and states the filter does not
/// have are 0 (never read: no byte maps to such a class, no transition leads to such a state).
///
/// # Errors
/// When the filter has more states than `2^state_bits` or more classes than `2^class_bits`.
pub fn ac_tables(
    filter: &ember_store::text_filter::TextFilter,
    state_bits: u32,
    class_bits: u32,
) -> Result<(Vec<u16>, Vec<u16>), String> {
    if filter.state_count() > 1 << state_bits {
        return Err(format!(
            "{} states do not fit {state_bits} state bits",
            filter.state_count()
        ));
    }
    if filter.class_count() > 1 << class_bits {
        return Err(format!(
            "{} byte classes do not fit {class_bits} class bits",
            filter.class_count()
        ));
    }
    let classes = (0..=255u8)
        .map(|byte| u16::from(filter.byte_class(byte)))
        .collect();
    let mut transitions = vec![0u16; 1 << (state_bits + class_bits)];
    for state in 0..filter.state_count() as u32 {
        for class in 0..filter.class_count() {
            let next = filter.next_state(state, class as u8);
            let accepting = u16::from(filter.is_accepting(next));
            transitions[((state as usize) << class_bits) | class] =
                accepting << state_bits | next as u16;
        }
    }
    Ok((classes, transitions))
}

/// Software model of the beat-parallel CRC datapath, built only from the generated matrices:
/// every beat full except the last, the last beat's missing bytes as trailing zeros, then the
/// unshift. Tests compare it with the reference so that the equations are known right before
/// any simulator runs.
pub fn beat_parallel_crc(equations: &CrcEquations, initial_state: u64, bytes: &[u8]) -> u64 {
    let mut state = initial_state;
    let mut trailing_zero_bytes = 8usize;
    let mut chunks = bytes.chunks(8).peekable();
    if chunks.peek().is_none() {
        // An empty packet is one beat with no bytes.
        state = equations.shift8.apply(state);
    }
    for chunk in chunks {
        let mut beat = [0u8; 8];
        beat[..chunk.len()].copy_from_slice(chunk);
        state = equations.shift8.apply(state) ^ equations.data_term.apply(u64::from_le_bytes(beat));
        trailing_zero_bytes = 8 - chunk.len();
    }
    equations.unshift[trailing_zero_bytes].apply(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_round_trips() {
        let equations = crc32c_equations();
        for zero_bytes in 0..=8 {
            let forward = BitMatrix::probe(32, 32, |state| {
                u64::from(crc32c_raw(state as u32, &vec![0; zero_bytes]))
            });
            for state in [1u64, 0xdead_beef, 0xffff_ffff, 0x8000_0001] {
                assert_eq!(
                    equations.unshift[zero_bytes].apply(forward.apply(state)),
                    state
                );
            }
        }
    }

    #[test]
    fn crc16_state_injection() {
        for state in [0u16, 1, 0x8000, 0x1234, 0xffff] {
            assert_eq!(crc16_raw(state, &[]), state);
        }
        // Continuing from the state after "1234" is the same as hashing the whole message.
        let after = ember_store::slot::crc16_xmodem(b"1234");
        assert_eq!(
            crc16_raw(after, b"56789"),
            ember_store::slot::crc16_xmodem(b"123456789")
        );
    }

    #[test]
    fn beat_parallel_model_matches_references() {
        let crc32c = crc32c_equations();
        let crc16 = crc16_equations();
        let mut message = Vec::new();
        for len in 0..200usize {
            let bytes = &message[..];
            let hardware = !beat_parallel_crc(&crc32c, 0xffff_ffff, bytes) as u32;
            assert_eq!(
                hardware,
                ember_rdma::checksum::crc32c(bytes),
                "crc32c length {len}"
            );
            let hardware = beat_parallel_crc(&crc16, 0, bytes) as u16;
            assert_eq!(
                hardware,
                ember_store::slot::crc16_xmodem(bytes),
                "crc16 length {len}"
            );
            message.push((len as u8).wrapping_mul(151).wrapping_add(7));
        }
    }
}
