#!/usr/bin/env bash
# Runs every test of Ember. Called by `make test` after ci/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
export RUST_BACKTRACE=1
# The integration tests start the release binary, built once here.
cargo build --release --bin ember --bin ember-bench
cargo test --workspace --release -- --test-threads 2
for extra in ci/test-*.sh; do
    [ -e "$extra" ] || continue
    echo "test: $extra"
    bash "$extra"
done
