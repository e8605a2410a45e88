//! What the load generator asks for: key names, values that can be checked, key choice
//! (uniform or Zipf) and the RESP encoding of GET and SET.
//!
//! Every value carries a pattern computed from its key, so a GET reply can be checked against
//! the key it was asked for: a server that answers fast with the wrong bytes fails the run.

use rand::rngs::SmallRng;
use rand::Rng;

/// Keys are `key:` followed by this many zero-padded decimal digits: fixed-width keys make the
/// request bytes the same length for every key (16 bytes with the prefix, as memtier's are).
pub const KEY_DIGITS: usize = 12;

/// The fixed prefix of every key, so that benchmark keys are easy to tell from others.
pub const KEY_PREFIX: &[u8] = b"key:";

/// Length of every key in bytes.
pub const KEY_LEN: usize = KEY_PREFIX.len() + KEY_DIGITS;

// encode_get and encode_set write the key's length as the literal `$16`.
const _: () = assert!(KEY_LEN == 16);

/// Most keys a run may use: 10^KEY_DIGITS names exist, but the Zipf set-up walks every key once,
/// and a key space this large already needs far more memory than one server holds.
pub const KEY_COUNT_MAX: u64 = 1_000_000_000;

/// Largest value a run may write. Bigger values stop being a cache benchmark and would only
/// stress the client's buffers; Redis's own default limit for a bulk string is 512 MiB.
pub const VALUE_SIZE_MAX: usize = 1 << 20;

/// How keys are drawn from the key space.
#[derive(Clone, Debug, PartialEq)]
pub enum KeyDistribution {
    /// Every key equally likely.
    Uniform,
    /// Key of rank r (0-based) drawn with probability proportional to 1 / (r + 1)^exponent,
    /// as YCSB's Zipfian generator; rank 0 is `key:000000000000`.
    Zipf {
        /// The skew, in (0, 1): YCSB's default is 0.99.
        exponent: f64,
    },
}

impl std::fmt::Display for KeyDistribution {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyDistribution::Uniform => write!(formatter, "uniform"),
            KeyDistribution::Zipf { exponent } => write!(formatter, "zipf({exponent})"),
        }
    }
}

/// Draws key indices in `0..key_count` with the configured distribution.
#[derive(Clone, Debug)]
pub struct KeyChooser {
    key_count: u64,
    zipf: Option<ZipfConstants>,
}

/// The constants of Gray et al.'s "Quickly generating billion-record synthetic databases"
/// method (the one YCSB uses): O(n) once, then O(1) per draw.
#[derive(Clone, Debug)]
struct ZipfConstants {
    exponent: f64,
    zeta_n: f64,
    alpha: f64,
    eta: f64,
    half_pow_exponent: f64,
}

impl KeyChooser {
    /// Builds a chooser over `key_count` keys.
    ///
    /// # Errors
    /// Returns a message when `key_count` is zero or over [`KEY_COUNT_MAX`], or when the Zipf
    /// exponent is outside (0, 1), where this method is defined.
    pub fn new(key_count: u64, distribution: &KeyDistribution) -> Result<Self, String> {
        if key_count == 0 || key_count > KEY_COUNT_MAX {
            return Err(format!(
                "key count {key_count} is out of range: it must be 1 to {KEY_COUNT_MAX}"
            ));
        }
        let zipf = match distribution {
            KeyDistribution::Uniform => None,
            KeyDistribution::Zipf { exponent } => {
                let exponent = *exponent;
                if !(exponent > 0.0 && exponent < 1.0) {
                    return Err(format!(
                        "zipf exponent {exponent} is out of range: it must be above 0 and below 1"
                    ));
                }
                Some(ZipfConstants::new(key_count, exponent))
            }
        };
        Ok(KeyChooser { key_count, zipf })
    }

    /// Draws one key index.
    pub fn next(&self, rng: &mut SmallRng) -> u64 {
        match &self.zipf {
            None => rng.gen_range(0..self.key_count),
            Some(zipf) => zipf.draw(self.key_count, rng.gen::<f64>()),
        }
    }
}

impl ZipfConstants {
    fn new(key_count: u64, exponent: f64) -> Self {
        let zeta = |count: u64| {
            (1..=count)
                .map(|rank| 1.0 / (rank as f64).powf(exponent))
                .sum::<f64>()
        };
        let zeta_n = zeta(key_count);
        let zeta_2 = zeta(2.min(key_count));
        let count = key_count as f64;
        let eta = if key_count < 2 {
            1.0
        } else {
            (1.0 - (2.0 / count).powf(1.0 - exponent)) / (1.0 - zeta_2 / zeta_n)
        };
        ZipfConstants {
            exponent,
            zeta_n,
            alpha: 1.0 / (1.0 - exponent),
            eta,
            half_pow_exponent: 0.5f64.powf(exponent),
        }
    }

    fn draw(&self, key_count: u64, uniform: f64) -> u64 {
        debug_assert!(self.exponent > 0.0 && self.exponent < 1.0);
        let scaled = uniform * self.zeta_n;
        if scaled < 1.0 || key_count < 2 {
            return 0;
        }
        if scaled < 1.0 + self.half_pow_exponent {
            return 1;
        }
        let rank =
            (key_count as f64 * (self.eta * uniform - self.eta + 1.0).powf(self.alpha)) as u64;
        rank.min(key_count - 1)
    }
}

/// Writes the name of key `index` (`key:000000000042`) into `out`.
pub fn write_key(out: &mut Vec<u8>, index: u64) {
    out.extend_from_slice(KEY_PREFIX);
    out.extend_from_slice(&key_digits(index));
}

fn key_digits(index: u64) -> [u8; KEY_DIGITS] {
    debug_assert!(index < KEY_COUNT_MAX);
    let mut digits = [b'0'; KEY_DIGITS];
    let mut rest = index;
    for slot in digits.iter_mut().rev() {
        *slot = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    digits
}

/// Writes the value that key `index` holds when this benchmark wrote it: the key's twelve
/// digits, then letters that depend on the index and the position, cut to `size` bytes.
pub fn write_value(out: &mut Vec<u8>, index: u64, size: usize) {
    out.extend_from_slice(&key_digits(index)[..size.min(KEY_DIGITS)]);
    for position in KEY_DIGITS..size {
        let letter = (index.wrapping_mul(7) + position as u64) % 26;
        out.push(b'a' + letter as u8);
    }
}

/// Whether `value` is exactly what [`write_value`] writes for key `index` at `size` bytes.
pub fn value_matches(value: &[u8], index: u64, size: usize, scratch: &mut Vec<u8>) -> bool {
    scratch.clear();
    write_value(scratch, index, size);
    value == scratch.as_slice()
}

/// Appends the RESP request `GET key:<index>`.
pub fn encode_get(out: &mut Vec<u8>, index: u64) {
    out.extend_from_slice(b"*2\r\n$3\r\nGET\r\n$16\r\n");
    write_key(out, index);
    out.extend_from_slice(b"\r\n");
}

/// Appends the RESP request `SET key:<index> <pattern value of value_size bytes>`.
pub fn encode_set(out: &mut Vec<u8>, index: u64, value_size: usize) {
    out.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$16\r\n");
    write_key(out, index);
    out.extend_from_slice(b"\r\n$");
    out.extend_from_slice(value_size.to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    write_value(out, index, value_size);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn keys_are_fixed_width() {
        let mut key = Vec::new();
        write_key(&mut key, 42);
        assert_eq!(key, b"key:000000000042");
    }

    #[test]
    fn values_carry_their_key_and_check_only_their_key() {
        let cases: [(u64, usize, &[u8]); 4] = [
            (42, 16, b"000000000042uvwx"),
            (42, 4, b"0000"),
            (0, 0, b""),
            (7, 14, b"000000000007jk"),
        ];
        let mut scratch = Vec::new();
        for (index, size, expected) in cases {
            let mut value = Vec::new();
            write_value(&mut value, index, size);
            assert_eq!(value, expected, "index {index} size {size}");
            assert!(value_matches(&value, index, size, &mut scratch));
        }
        let mut value = Vec::new();
        write_value(&mut value, 42, 16);
        assert!(!value_matches(&value, 43, 16, &mut scratch), "other key");
        assert!(!value_matches(&value, 42, 15, &mut scratch), "other size");
        value[15] ^= 1;
        assert!(!value_matches(&value, 42, 16, &mut scratch), "flipped byte");
    }

    #[test]
    fn encodes_get_and_set_as_resp_arrays() {
        let mut out = Vec::new();
        encode_get(&mut out, 5);
        assert_eq!(out, b"*2\r\n$3\r\nGET\r\n$16\r\nkey:000000000005\r\n");
        out.clear();
        encode_set(&mut out, 5, 13);
        assert_eq!(
            out,
            b"*3\r\n$3\r\nSET\r\n$16\r\nkey:000000000005\r\n$13\r\n000000000005v\r\n"
        );
    }

    #[test]
    fn refuses_bad_key_counts_and_exponents() {
        assert!(KeyChooser::new(0, &KeyDistribution::Uniform).is_err());
        assert!(KeyChooser::new(KEY_COUNT_MAX + 1, &KeyDistribution::Uniform).is_err());
        for exponent in [0.0, 1.0, 1.5, -0.5, f64::NAN] {
            assert!(
                KeyChooser::new(10, &KeyDistribution::Zipf { exponent }).is_err(),
                "exponent {exponent}"
            );
        }
    }

    #[test]
    fn uniform_draws_cover_the_key_space_evenly() {
        let seed = 11;
        let chooser = KeyChooser::new(10, &KeyDistribution::Uniform).unwrap();
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut counts = [0u32; 10];
        for _ in 0..100_000 {
            counts[chooser.next(&mut rng) as usize] += 1;
        }
        for (key, count) in counts.iter().enumerate() {
            assert!(
                (9_000..11_000).contains(count),
                "seed {seed}: key {key} drawn {count} times"
            );
        }
    }

    #[test]
    fn zipf_draws_follow_the_power_law() {
        let seed = 12;
        let key_count = 1000u64;
        let exponent = 0.99;
        let chooser = KeyChooser::new(key_count, &KeyDistribution::Zipf { exponent }).unwrap();
        let mut rng = SmallRng::seed_from_u64(seed);
        let draws = 400_000;
        let mut counts = vec![0u32; key_count as usize];
        for _ in 0..draws {
            let key = chooser.next(&mut rng);
            assert!(key < key_count);
            counts[key as usize] += 1;
        }
        let zeta: f64 = (1..=key_count)
            .map(|rank| 1.0 / (rank as f64).powf(exponent))
            .sum();
        // The head follows 1/r^s closely; the method approximates the tail.
        for rank in [0usize, 1, 9] {
            let expected = draws as f64 / ((rank + 1) as f64).powf(exponent) / zeta;
            let observed = counts[rank] as f64;
            assert!(
                (observed - expected).abs() < expected * 0.1,
                "seed {seed}: rank {rank} drawn {observed}, expected about {expected}"
            );
        }
        assert!(counts[0] > counts[500] * 100, "seed {seed}: no skew");
    }
}
