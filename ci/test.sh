#!/usr/bin/env bash
# Runs every test of Ember. Called by `make test` after ci/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
export RUST_BACKTRACE=1
# One build in the dev profile (optimised, see Cargo.toml) serves the unit tests and the binaries
# that the integration tests start (cargo hands them CARGO_BIN_EXE_ember).
cargo test --workspace -- --test-threads 2
for extra in ci/test-*.sh; do
    [ -e "$extra" ] || continue
    echo "test: $extra"
    bash "$extra"
done
