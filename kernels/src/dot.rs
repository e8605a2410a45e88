//! Reference integer dot product used for embedding scoring; the FPGA `dot_i8` module is checked
//! against it bit for bit.

/// Sum of `a[i] * b[i]` over int8 vectors of equal length, accumulated exactly in i32.
///
/// # Panics
/// When the lengths differ (a caller bug, never peer input).
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    assert_eq!(a.len(), b.len(), "dot_i8 needs vectors of equal length");
    a.iter()
        .zip(b)
        .map(|(&x, &y)| i32::from(x) * i32::from(y))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases() {
        assert_eq!(dot_i8(&[], &[]), 0);
        assert_eq!(dot_i8(&[1, 2, 3], &[4, 5, 6]), 32);
        assert_eq!(dot_i8(&[-128; 16], &[-128; 16]), 16 * 16384);
        assert_eq!(dot_i8(&[127, -128], &[-128, 127]), -2 * 16256);
    }
}
