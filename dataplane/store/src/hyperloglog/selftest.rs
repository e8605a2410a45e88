//! PFSELFTEST: checks that the sparse and the dense representations agree, register by
//! register and estimate by estimate, and that the estimate stays within the error
//! HyperLogLog promises, as Redis's self-test does for its own encoding.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::{HyperLogLog, REGISTER_COUNT};

/// Distinct elements added, checked at every tenfold step from 10.
const ELEMENTS_MAX: u64 = 100_000;

/// Runs the self-test; the first disagreement found, in Redis's `TESTFAILED` wording.
///
/// # Errors
/// A description of what disagreed.
pub fn self_test() -> Result<(), String> {
    let mut rng = SmallRng::seed_from_u64(0x5eed_4a11);
    // Sparse as long as it can be (no `hll-sparse-max-bytes` limit), and dense from the start.
    let mut sparse = HyperLogLog::new();
    let mut dense = HyperLogLog::new();
    dense
        .to_dense()
        .map_err(|error| format!("TESTFAILED to dense: {error}"))?;
    let salt: u64 = rng.gen();
    let mut checkpoint = 10;
    for added in 1..=ELEMENTS_MAX {
        let element = (salt ^ added).to_le_bytes();
        let sparse_grew = sparse
            .add(&element, usize::MAX)
            .map_err(|error| format!("TESTFAILED sparse add: {error}"))?;
        let dense_grew = dense
            .add(&element, usize::MAX)
            .map_err(|error| format!("TESTFAILED dense add: {error}"))?;
        if sparse_grew != dense_grew {
            return Err(format!(
                "TESTFAILED the encodings disagree on element {added}"
            ));
        }
        if added != checkpoint {
            continue;
        }
        checkpoint *= 10;
        let (sparse_registers, dense_registers) = (
            sparse
                .registers()
                .map_err(|error| format!("TESTFAILED {error}"))?,
            dense
                .registers()
                .map_err(|error| format!("TESTFAILED {error}"))?,
        );
        if let Some(at) =
            (0..REGISTER_COUNT).find(|&at| sparse_registers[at] != dense_registers[at])
        {
            return Err(format!("TESTFAILED Register error at {at}"));
        }
        let mut converted = sparse.clone();
        converted
            .to_dense()
            .map_err(|error| format!("TESTFAILED to dense: {error}"))?;
        if converted.registers().ok().as_deref() != Some(&*dense_registers) {
            return Err(format!(
                "TESTFAILED conversion to dense at {added} elements"
            ));
        }
        let (sparse_count, dense_count) = (
            sparse
                .count()
                .map_err(|error| format!("TESTFAILED {error}"))?,
            dense
                .count()
                .map_err(|error| format!("TESTFAILED {error}"))?,
        );
        if sparse_count != dense_count {
            return Err(format!(
                "TESTFAILED sparse and dense estimates differ at {added}: {sparse_count} {dense_count}"
            ));
        }
        // Six standard errors of 1.04 / sqrt(m), as Redis's test allows, and at least one.
        let allowed = (added as f64 * 6.0 * 1.04 / (REGISTER_COUNT as f64).sqrt()).max(1.0);
        if (dense_count as f64 - added as f64).abs() > allowed {
            return Err(format!(
                "TESTFAILED too big error. card:{added} abserr:{}",
                (dense_count as f64 - added as f64).abs()
            ));
        }
    }
    // A value read back from its bytes is the same value.
    let reread = HyperLogLog::from_bytes(dense.as_bytes().to_vec())
        .map_err(|error| format!("TESTFAILED {error}"))?;
    if reread.as_bytes() != dense.as_bytes() {
        return Err("TESTFAILED the dense value does not read back".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_self_test_passes() {
        assert_eq!(super::self_test(), Ok(()));
    }
}
