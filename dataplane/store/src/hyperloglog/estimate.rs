//! The cardinality estimate from the registers' histogram: Otmar Ertl's improved estimator
//! ("New cardinality estimation algorithms for HyperLogLog sketches", arXiv:1702.01284), the
//! one Redis 5 and later use, computed in the same order so that the rounding agrees.

use super::{Registers, REGISTER_COUNT, RUN_BITS};

/// Histogram slots: any 6-bit register value, though only 0..=51 occur in a value Redis wrote.
pub(super) const HISTOGRAM_LEN: usize = 64;
/// How many registers hold each value.
pub(super) type Histogram = [u32; HISTOGRAM_LEN];

/// The estimator's limit constant for an infinite number of registers, 1 / (2 ln 2).
const ALPHA_INF: f64 = 0.721_347_520_444_481_7;

pub(super) fn histogram_of(registers: &Registers) -> Histogram {
    let mut histogram = [0u32; HISTOGRAM_LEN];
    for &register in registers {
        histogram[usize::from(register) % HISTOGRAM_LEN] += 1;
    }
    histogram
}

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let previous = z;
        z += x * y;
        y += y;
        if previous == z {
            return z;
        }
    }
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let previous = z;
        y *= 0.5;
        // powf, not a multiplication: C's pow(…, 2) is what Redis calls.
        z -= (1.0 - x).powf(2.0) * y;
        if previous == z {
            return z / 3.0;
        }
    }
}

pub(super) fn estimate(histogram: &Histogram) -> u64 {
    let m = REGISTER_COUNT as f64;
    let q = RUN_BITS as usize;
    let mut z = m * tau((m - f64::from(histogram[q + 1])) / m);
    for j in (1..=q).rev() {
        z += f64::from(histogram[j]);
        z *= 0.5;
    }
    z += m * sigma(f64::from(histogram[0]) / m);
    // f64::round rounds half away from zero, as C's llroundl does.
    (ALPHA_INF * m * m / z).round() as u64
}
