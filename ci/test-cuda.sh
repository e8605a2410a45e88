#!/usr/bin/env bash
# The native CUDA backend's checks that must not skip in CI: every kernels/cuda/*.cu compiles
# with NVRTC (from the wheel that ci/setup-cuda.sh installs). The GPU tests ran (and, with no
# GPU, skipped with a message) in the workspace test run before this.
set -euo pipefail
cd "$(dirname "$0")/.."
EMBER_REQUIRE_NVRTC=1 cargo test --release -p ember-kernels --test nvrtc_compile -- --nocapture
