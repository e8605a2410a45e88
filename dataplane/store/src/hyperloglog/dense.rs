//! The dense representation: 16384 registers of 6 bits, packed least significant bits first.

use super::estimate::Histogram;
use super::{Registers, REGISTER_BITS, REGISTER_COUNT};

const REGISTER_MASK: u16 = (1 << REGISTER_BITS) - 1;

/// Register `index`. A register never spans past the last byte (the last one starts at bit 2 of
/// its byte), so the second byte of the window is read only when it exists.
pub(super) fn get(registers: &[u8], index: usize) -> u8 {
    let bit = index * REGISTER_BITS;
    let (byte, shift) = (bit / 8, bit % 8);
    let low = u16::from(registers[byte]);
    let high = u16::from(registers.get(byte + 1).copied().unwrap_or(0));
    (((low | high << 8) >> shift) & REGISTER_MASK) as u8
}

/// Sets register `index` to `value` (at most 63).
pub(super) fn set(registers: &mut [u8], index: usize, value: u8) {
    debug_assert!(u16::from(value) <= REGISTER_MASK);
    let bit = index * REGISTER_BITS;
    let (byte, shift) = (bit / 8, bit % 8);
    let high = registers.get(byte + 1).copied().unwrap_or(0);
    let mut window = u16::from(registers[byte]) | u16::from(high) << 8;
    window &= !(REGISTER_MASK << shift);
    window |= u16::from(value) << shift;
    registers[byte] = window as u8;
    if let Some(next) = registers.get_mut(byte + 1) {
        *next = (window >> 8) as u8;
    }
}

/// Raises register `index` to `value` if lower; true when it changed.
pub(super) fn raise(registers: &mut [u8], index: usize, value: u8) -> bool {
    if get(registers, index) >= value {
        return false;
    }
    set(registers, index, value);
    true
}

pub(super) fn histogram(registers: &[u8], histogram: &mut Histogram) {
    // Four registers fill three bytes exactly: decode them a group at a time.
    for group in registers.chunks_exact(3) {
        let word = u32::from(group[0]) | u32::from(group[1]) << 8 | u32::from(group[2]) << 16;
        for shift in [0, 6, 12, 18] {
            histogram[((word >> shift) & 63) as usize] += 1;
        }
    }
}

pub(super) fn merge_into(registers: &[u8], maxima: &mut Registers) {
    for (index, maximum) in maxima.iter_mut().enumerate().take(REGISTER_COUNT) {
        *maximum = (*maximum).max(get(registers, index));
    }
}
