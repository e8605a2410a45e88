//! Score comparisons that fail on NaN.
//!
//! Every check of a backend's scores against a reference goes through here. The obvious fold,
//! `errors.fold(0.0, f32::max)`, ignores NaN (`f32::max` returns the other operand), so an all-NaN
//! output would compare as a perfect match; and `(got - want).abs() > tolerance` is false for NaN, so
//! a NaN score would pass that test too. Here a NaN on either side is an infinite difference.

/// The largest absolute difference between `got[i]` and `want[i]`: `+inf` when either side holds a
/// NaN anywhere or the lengths differ (so `difference <= tolerance` fails), `0.0` for two empty slices.
pub fn max_abs_difference(got: &[f32], want: &[f32]) -> f32 {
    if got.len() != want.len() {
        return f32::INFINITY;
    }
    let mut largest = 0.0f32;
    for (a, b) in got.iter().zip(want) {
        let difference = (a - b).abs();
        if difference.is_nan() {
            return f32::INFINITY;
        }
        if difference > largest {
            largest = difference;
        }
    }
    largest
}

/// True when every `got[i]` is within `tolerance` of `want[i]` and neither side holds a NaN; false
/// when the lengths differ.
pub fn within(got: &[f32], want: &[f32], tolerance: f32) -> bool {
    max_abs_difference(got, want) <= tolerance
}

/// True when `got` is within `tolerance` of `want` and neither is NaN: the one-score form of [`within`].
pub fn score_within(got: f32, want: f32, tolerance: f32) -> bool {
    // Written so that NaN fails: a NaN difference makes `<=` false.
    (got - want).abs() <= tolerance
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences() {
        let nan = f32::NAN;
        let cases: &[(&str, &[f32], &[f32], f32)] = &[
            ("empty", &[], &[], 0.0),
            ("equal", &[0.25, 0.5], &[0.25, 0.5], 0.0),
            ("largest wins", &[0.0, 1.0, 2.0], &[0.5, 1.0, 2.25], 0.5),
            ("sign ignored", &[-1.0], &[1.0], 2.0),
            ("NaN got first", &[nan, 0.0], &[0.0, 0.0], f32::INFINITY),
            ("NaN got last", &[0.0, nan], &[0.0, 0.0], f32::INFINITY),
            ("NaN want", &[0.0], &[nan], f32::INFINITY),
            ("all NaN", &[nan, nan], &[0.5, 0.5], f32::INFINITY),
            ("NaN both", &[nan], &[nan], f32::INFINITY),
            ("infinity", &[f32::INFINITY], &[0.0], f32::INFINITY),
            ("lengths differ", &[0.0], &[0.0, 0.0], f32::INFINITY),
        ];
        for &(name, got, want, expected) in cases {
            assert_eq!(max_abs_difference(got, want), expected, "{name}");
            assert_eq!(within(got, want, 1.0), expected <= 1.0, "{name}");
        }
    }

    #[test]
    fn single_scores() {
        let cases = [
            ("equal", 0.5, 0.5, true),
            ("inside", 0.5, 0.500_001, true),
            ("outside", 0.5, 0.6, false),
            ("NaN got", f32::NAN, 0.5, false),
            ("NaN want", 0.5, f32::NAN, false),
        ];
        for (name, got, want, expected) in cases {
            assert_eq!(score_within(got, want, 1e-5), expected, "{name}");
        }
    }
}
