//! HINCRBY and HINCRBYFLOAT.

use super::{FieldTtl, HashError, HashLimits, HashValue};
use crate::value::parse_canonical_i64;

impl HashValue {
    /// HINCRBY: adds `delta` to the integer in `name` (0 when absent), keeping its expiry;
    /// the new value.
    ///
    /// # Errors
    /// [`HashError::NotAnInteger`] when the value is not a canonical integer,
    /// [`HashError::Overflow`] when the sum leaves the 64-bit range.
    pub fn incr_by(
        &mut self,
        name: &[u8],
        delta: i64,
        limits: &HashLimits,
        now_ms: u64,
    ) -> Result<i64, HashError> {
        let current = match self.get(name, now_ms) {
            Some(value) => parse_canonical_i64(value).ok_or(HashError::NotAnInteger)?,
            None => 0,
        };
        let next = current.checked_add(delta).ok_or(HashError::Overflow)?;
        self.set(
            name,
            next.to_string().as_bytes(),
            FieldTtl::Keep,
            limits,
            now_ms,
        );
        Ok(next)
    }

    /// HINCRBYFLOAT: adds `delta` to the number in `name` (0 when absent), keeping its
    /// expiry; the new value's text, which is also what is stored.
    ///
    /// # Errors
    /// [`HashError::NotAFloat`] when the value is not a number (Redis's `strtold` rules: no
    /// surrounding space, not NaN), [`HashError::NotFinite`] when the sum is not finite.
    pub fn incr_by_float(
        &mut self,
        name: &[u8],
        delta: f64,
        limits: &HashLimits,
        now_ms: u64,
    ) -> Result<String, HashError> {
        let current = match self.get(name, now_ms) {
            Some(value) => parse_float(value).ok_or(HashError::NotAFloat)?,
            None => 0.0,
        };
        let next = current + delta;
        if !next.is_finite() {
            return Err(HashError::NotFinite);
        }
        // Shortest text that reads back as the same double, never in exponent form, as the
        // server's INCRBYFLOAT writes it.
        let text = format!("{next}");
        self.set(name, text.as_bytes(), FieldTtl::Keep, limits, now_ms);
        Ok(text)
    }
}

/// A hash value read as a number as Redis's `string2ld` reads it: the whole text, no leading
/// space, not NaN (an infinity parses, and then fails the finiteness check of the sum).
fn parse_float(bytes: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(bytes).ok()?;
    if text.is_empty() || text.starts_with(|c: char| c.is_ascii_whitespace()) {
        return None;
    }
    let value: f64 = text.parse().ok()?;
    (!value.is_nan()).then_some(value)
}
