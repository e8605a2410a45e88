#!/usr/bin/env bash
# Runs every test of Ember. Called by `make test` after ci/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
export RUST_BACKTRACE=1
# One build in the dev profile (optimised, see Cargo.toml) serves the unit tests and the binaries
# that the integration tests start (cargo hands them CARGO_BIN_EXE_ember).
cargo test --workspace --no-fail-fast -- --test-threads 2
# The area scripts below compare release builds (ember-bench compare starts target/release/ember).
cargo build --release --bin ember --bin ember-bench
# `make test` ran ci/setup.sh first: a framework that ci/test-frameworks-python.sh would skip as
# missing is then a failed install, and fails the run.
export EMBER_REQUIRE_FRAMEWORKS=1
for extra in ci/test-*.sh; do
    [ -e "$extra" ] || continue
    echo "test: $extra"
    bash "$extra"
done
