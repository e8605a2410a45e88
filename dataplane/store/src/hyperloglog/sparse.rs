//! The sparse representation: run-length opcodes over the 16384 registers, in order.
//!
//! | opcode    | bits                  | meaning                                  |
//! |-----------|-----------------------|------------------------------------------|
//! | ZERO      | `00xxxxxx`            | x+1 registers (1..=64) are 0             |
//! | XZERO     | `01xxxxxx yyyyyyyy`   | x·256+y+1 registers (1..=16384) are 0    |
//! | VAL       | `1vvvvvxx`            | x+1 registers (1..=4) hold v+1 (1..=32)  |

use super::estimate::Histogram;
use super::{dense, HllError, Registers, HEADER_LEN, REGISTER_COUNT};

/// Largest value a VAL opcode holds; a larger register needs the dense form.
pub const VAL_VALUE_MAX: u8 = 32;
/// Most registers one VAL opcode covers.
pub const VAL_RUN_MAX: usize = 4;
/// Most registers one ZERO opcode covers.
pub const ZERO_RUN_MAX: usize = 64;
/// Most registers one XZERO opcode covers.
pub const XZERO_RUN_MAX: usize = 16384;
/// Opcodes after the edit's predecessor that Redis scans for adjacent VALs to merge.
const MERGE_SCAN_OPCODES: usize = 5;

const KIND_MASK: u8 = 0xc0;
const XZERO_BIT: u8 = 0x40;
const VAL_BIT: u8 = 0x80;

/// One decoded opcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    /// `run` zero registers in one byte.
    Zero {
        /// Registers covered, 1..=64.
        run: usize,
    },
    /// `run` zero registers in two bytes.
    Xzero {
        /// Registers covered, 1..=16384.
        run: usize,
    },
    /// `run` registers holding `value`.
    Val {
        /// The registers' value, 1..=32.
        value: u8,
        /// Registers covered, 1..=4.
        run: usize,
    },
}

impl Opcode {
    /// Registers covered.
    pub fn run(self) -> usize {
        match self {
            Self::Zero { run } | Self::Xzero { run } | Self::Val { run, .. } => run,
        }
    }

    /// Bytes the opcode takes.
    pub fn len(self) -> usize {
        match self {
            Self::Xzero { .. } => 2,
            Self::Zero { .. } | Self::Val { .. } => 1,
        }
    }

    /// False: an opcode is never empty (for clippy's `len` without `is_empty` rule).
    pub fn is_empty(self) -> bool {
        false
    }
}

fn is_val(byte: u8) -> bool {
    byte & VAL_BIT != 0
}

/// Decodes the opcode at `at`. An XZERO cut off by the end reads its second byte as 0, which
/// is what Redis reads there (the string's terminating NUL).
pub fn decode(body: &[u8], at: usize) -> Opcode {
    let byte = body[at];
    match byte & KIND_MASK {
        0 => Opcode::Zero {
            run: usize::from(byte & 0x3f) + 1,
        },
        XZERO_BIT => {
            let low = body.get(at + 1).copied().unwrap_or(0);
            Opcode::Xzero {
                run: (usize::from(byte & 0x3f) << 8 | usize::from(low)) + 1,
            }
        }
        _ => Opcode::Val {
            value: (byte >> 2 & 0x1f) + 1,
            run: usize::from(byte & 0x3) + 1,
        },
    }
}

fn val_byte(value: u8, run: usize) -> u8 {
    debug_assert!((1..=VAL_VALUE_MAX).contains(&value) && (1..=VAL_RUN_MAX).contains(&run));
    VAL_BIT | (value - 1) << 2 | (run - 1) as u8
}

/// Appends the opcode Redis writes for `run` zero registers (ZERO up to 64, else XZERO).
fn push_zero_opcode(out: &mut Vec<u8>, run: usize) {
    debug_assert!((1..=XZERO_RUN_MAX).contains(&run));
    if run > ZERO_RUN_MAX {
        let stored = run - 1;
        out.push(XZERO_BIT | (stored >> 8) as u8);
        out.push(stored as u8);
    } else {
        out.push((run - 1) as u8);
    }
}

/// Appends `run` zero registers as XZERO opcodes (a new value's body).
pub(super) fn push_zero_run(out: &mut Vec<u8>, mut run: usize) {
    while run > 0 {
        let step = run.min(XZERO_RUN_MAX);
        let stored = step - 1;
        out.push(XZERO_BIT | (stored >> 8) as u8);
        out.push(stored as u8);
        run -= step;
    }
}

/// The opcodes of a sparse body, in order.
pub fn opcodes(body: &[u8]) -> impl Iterator<Item = Opcode> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        if at >= body.len() {
            return None;
        }
        let opcode = decode(body, at);
        at += opcode.len();
        Some(opcode)
    })
}

/// What [`raise`] did.
pub(super) enum Raise {
    Unchanged,
    Changed,
    /// The register needs a value VAL cannot hold, or the edit would pass the size limit:
    /// convert to dense and set it there.
    NeedsDense,
}

/// Raises register `index` to `run` in the sparse value `bytes` (header included), as Redis's
/// `hllSparseSet` does: find the opcode covering the register, split it into at most three,
/// then merge equal VALs near the edit.
pub(super) fn raise(
    bytes: &mut Vec<u8>,
    index: usize,
    run: u8,
    sparse_bytes_max: usize,
) -> Result<Raise, HllError> {
    raise_from(bytes, index, run, sparse_bytes_max, (HEADER_LEN, 0)).map(|(raise, _)| raise)
}

/// Bytes after the start of an edit (the opcode before the one raised) that the edit may touch:
/// the split writes at most 5 bytes in place of at most 2, and the merge looks at most
/// [`MERGE_SCAN_OPCODES`] opcodes of at most 2 bytes.
const EDIT_REACH: usize = 32;

/// Where an edit happened: from `start` (old offsets) for less than [`EDIT_REACH`] bytes, and by
/// how much the value's length changed. The opcode at `start` still starts there afterwards,
/// covering registers from `start_first` (a merge folds later opcodes into it, never it into an
/// earlier one).
pub(super) struct Edit {
    start: usize,
    start_first: usize,
    delta: isize,
}

/// [`raise`], scanning from `from`: an opcode's offset and the first register it covers, or
/// the first opcode, `(HEADER_LEN, 0)`.
fn raise_from(
    bytes: &mut Vec<u8>,
    index: usize,
    run: u8,
    sparse_bytes_max: usize,
    from: (usize, usize),
) -> Result<(Raise, Option<Edit>), HllError> {
    if run > VAL_VALUE_MAX {
        return Ok((Raise::NeedsDense, None));
    }
    // Step 1: the opcode covering `index`, the one before it, and the first register it covers.
    let (mut at, mut first) = from;
    let (mut previous, mut previous_first, mut span) = (None, first, 0);
    while at < bytes.len() {
        let opcode = decode(bytes, at);
        span = opcode.run();
        if index < first + span {
            break;
        }
        (previous, previous_first) = (Some(at), first);
        at += opcode.len();
        first += span;
    }
    if span == 0 || at >= bytes.len() {
        return Err(HllError::Corrupted);
    }
    let length_before = bytes.len();
    let (start, start_first) = match previous {
        Some(previous) => (previous, previous_first),
        None => (at, first),
    };
    let edit = |bytes: &Vec<u8>| Edit {
        start,
        start_first,
        delta: bytes.len() as isize - length_before as isize,
    };
    let opcode = decode(bytes, at);
    // Step 2: the trivial cases edit one byte in place.
    match opcode {
        Opcode::Val { value, .. } if value >= run => return Ok((Raise::Unchanged, None)),
        Opcode::Val { run: 1, .. } | Opcode::Zero { run: 1 } => {
            bytes[at] = val_byte(run, 1);
            merge_adjacent_vals(bytes, previous.unwrap_or(HEADER_LEN));
            return Ok((Raise::Changed, Some(edit(bytes))));
        }
        _ => {}
    }
    // The general case: split into (before, the register, after).
    let last = first + span - 1;
    let mut sequence = Vec::with_capacity(5);
    match opcode {
        Opcode::Val { value, .. } => {
            if index != first {
                sequence.push(val_byte(value, index - first));
            }
            sequence.push(val_byte(run, 1));
            if index != last {
                sequence.push(val_byte(value, last - index));
            }
        }
        Opcode::Zero { .. } | Opcode::Xzero { .. } => {
            if index != first {
                push_zero_opcode(&mut sequence, index - first);
            }
            sequence.push(val_byte(run, 1));
            if index != last {
                push_zero_opcode(&mut sequence, last - index);
            }
        }
    }
    // Step 3: put the sequence in place of the opcode, unless that grows past the limit.
    if sequence.len() > opcode.len()
        && bytes.len() + sequence.len() - opcode.len() > sparse_bytes_max
    {
        return Ok((Raise::NeedsDense, None));
    }
    let replaced_end = (at + opcode.len()).min(bytes.len());
    bytes.splice(at..replaced_end, sequence);
    // Step 4.
    merge_adjacent_vals(bytes, previous.unwrap_or(HEADER_LEN));
    Ok((Raise::Changed, Some(edit(bytes))))
}

/// Opcodes between two marks of an [`OpcodeIndex`].
const MARK_EVERY: usize = 16;

/// Marks on a sparse value's opcodes, kept through the raises of one PFADD, so that each raise
/// scans from the mark before its register instead of from the first opcode (Redis scans the
/// whole value for every element). Each mark is an opcode's offset and the first register it
/// covers; an edit drops the marks it may have moved and shifts those after it, so the bytes
/// written are exactly those of [`raise`].
pub(super) struct OpcodeIndex {
    marks: Vec<(usize, usize)>,
    /// Marks when last built: below half of them, the index is built again.
    built_with: usize,
}

impl OpcodeIndex {
    /// Marks every [`MARK_EVERY`]th opcode of the sparse value `bytes` (header included).
    pub(super) fn new(bytes: &[u8]) -> Self {
        let mut marks = Vec::new();
        let (mut at, mut first, mut count) = (HEADER_LEN, 0, 0);
        while at < bytes.len() {
            if count % MARK_EVERY == MARK_EVERY - 1 {
                marks.push((at, first));
            }
            let opcode = decode(bytes, at);
            first += opcode.run();
            at += opcode.len();
            count += 1;
        }
        let built_with = marks.len();
        Self { marks, built_with }
    }

    /// [`raise`] of register `index`, scanning from the mark before the last one at or before
    /// the register (the scan must pass an opcode before the one it finds: the merge starts
    /// there), then keeping the marks true.
    pub(super) fn raise(
        &mut self,
        bytes: &mut Vec<u8>,
        index: usize,
        run: u8,
        sparse_bytes_max: usize,
    ) -> Result<Raise, HllError> {
        let at_or_before = self.marks.partition_point(|&(_, first)| first <= index);
        let from = match at_or_before {
            0 | 1 => (HEADER_LEN, 0),
            found => self.marks[found - 2],
        };
        let (raise, edit) = raise_from(bytes, index, run, sparse_bytes_max, from)?;
        if let Some(Edit {
            start,
            start_first,
            delta,
        }) = edit
        {
            self.marks.retain_mut(|(offset, _)| {
                if *offset < start {
                    true
                } else if *offset < start + EDIT_REACH {
                    false
                } else {
                    *offset = offset.wrapping_add_signed(delta);
                    true
                }
            });
            // The edited opcode's predecessor is a sure mark: it replaces those dropped.
            let position = self.marks.partition_point(|&(offset, _)| offset < start);
            self.marks.insert(position, (start, start_first));
            if self.marks.len() * 2 < self.built_with {
                *self = Self::new(bytes);
            }
        }
        Ok(raise)
    }
}

/// Redis's step 4: from `at`, within a few opcodes, fold each VAL into an equal VAL right after
/// it while the pair covers at most four registers. Not a full normalisation, on purpose: the
/// bytes must come out as Redis's do.
fn merge_adjacent_vals(bytes: &mut Vec<u8>, mut at: usize) {
    let mut scans_left = MERGE_SCAN_OPCODES;
    while at < bytes.len() && scans_left > 0 {
        scans_left -= 1;
        match decode(bytes, at) {
            Opcode::Xzero { .. } => at += 2,
            Opcode::Zero { .. } => at += 1,
            Opcode::Val { value, run } => {
                if let Some(&next) = bytes.get(at + 1) {
                    if let (
                        true,
                        Opcode::Val {
                            value: next_value,
                            run: next_run,
                        },
                    ) = (is_val(next), decode(bytes, at + 1))
                    {
                        if next_value == value && run + next_run <= VAL_RUN_MAX {
                            bytes[at + 1] = val_byte(value, run + next_run);
                            bytes.remove(at);
                            // Stay here: the merged VAL may merge with the one after it.
                            continue;
                        }
                    }
                }
                at += 1;
            }
        }
    }
}

/// Writes the registers of a sparse `body` into dense `registers` (all zero on entry).
pub(super) fn write_dense(body: &[u8], registers: &mut [u8]) -> Result<(), HllError> {
    let mut index = 0;
    for opcode in opcodes(body) {
        if let Opcode::Val { value, run } = opcode {
            if index + run > REGISTER_COUNT {
                break;
            }
            for register in index..index + run {
                dense::set(registers, register, value);
            }
        }
        index += opcode.run();
    }
    if index == REGISTER_COUNT {
        Ok(())
    } else {
        Err(HllError::Corrupted)
    }
}

pub(super) fn histogram(body: &[u8], histogram: &mut Histogram) -> Result<(), HllError> {
    let mut index = 0;
    for opcode in opcodes(body) {
        let value = match opcode {
            Opcode::Val { value, .. } => usize::from(value),
            Opcode::Zero { .. } | Opcode::Xzero { .. } => 0,
        };
        histogram[value] += opcode.run() as u32;
        index += opcode.run();
    }
    if index == REGISTER_COUNT {
        Ok(())
    } else {
        Err(HllError::Corrupted)
    }
}

pub(super) fn merge_into(body: &[u8], maxima: &mut Registers) -> Result<(), HllError> {
    let mut index = 0;
    for opcode in opcodes(body) {
        if let Opcode::Val { value, run } = opcode {
            if index + run > REGISTER_COUNT {
                break;
            }
            for maximum in &mut maxima[index..index + run] {
                *maximum = (*maximum).max(value);
            }
        }
        index += opcode.run();
    }
    if index == REGISTER_COUNT {
        Ok(())
    } else {
        Err(HllError::Corrupted)
    }
}
