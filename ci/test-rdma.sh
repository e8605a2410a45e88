#!/usr/bin/env bash
# ember-rdma beyond `cargo test`: the example client against its own reference server, and, when a
# verbs device exists, a note that the verbs tests ran (they skip with a message where none does).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --release -q -p ember-rdma --example shm_get
if command -v ibv_devices >/dev/null 2>&1 && [ -n "$(ibv_devices 2>/dev/null | tail -n +3)" ]; then
    echo "test-rdma: verbs devices present; the verbs tests in cargo test used them"
else
    echo "test-rdma: no RDMA device (ibv_devices lists none): verbs tests skipped; see rdma/README.md for SoftRoCE"
fi
