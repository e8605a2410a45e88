#!/usr/bin/env bash
# Every fuzz target briefly: builds them (cargo-fuzz, nightly, debug assertions) and runs each from
# a scratch copy of its committed corpus, so that the fuzzer's new inputs never land in the work
# tree. A crash, a failed check or a leak fails the script (libFuzzer exits non-zero and leaves
# the input that did it under the scratch folder, printed below).
# Two builds: the targets on Ember's libraries (parsers, store, one-sided reader) with
# AddressSanitizer in fuzz/target; the two that reach the server's own code through the
# ember-server library (command_args, config_file: the `server` feature of fuzz/Cargo.toml)
# without a sanitizer in fuzz/target/server, because that library brings the whole server's
# dependency tree (see SERVER_BUILD below for what keeps it short and what it gives up).
# EMBER_FUZZ_SECONDS sets each target's run (default 15 s: nine targets, two minutes and a quarter
# of runs after the builds).
# Long runs: `cd fuzz && cargo +nightly fuzz run TARGET` (README, "Fuzzing").
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${EMBER_FUZZ_SECONDS:-15}"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

# command_args and config_file: what keeps their build short, and what it gives up.
# - No AddressSanitizer, their own target dir (other flags than the ASan build). The handlers and
#   the config parser they run are safe Rust, whose out-of-bounds accesses and overflows panic
#   without a sanitizer; lost: ASan's view of the few unsafe blocks they reach, and LeakSanitizer.
# - opt-level 1 and 16 codegen units, where the other targets build at 3 and 1: the server's
#   dependency tree (glommio, rustls and ring, Lua, jemalloc, cudarc, ort) is most of the build.
#   The binaries run slower per input (long runs can build at the defaults, README "Fuzzing").
# - the FPGA crate without its Verilator simulator (no target reaches it; it is C++ to build),
#   and jemalloc as the workspace's build of it when there is one of the same version
#   (ci/test.sh builds the workspace first): its configure and make are minutes of the build.
SERVER_TARGETS=(command_args config_file)
SERVER_BUILD=(-s none --features server --target-dir target/server --codegen-units 16)
SERVER_ENV=(CARGO_PROFILE_RELEASE_OPT_LEVEL=1 EMBER_FPGA_NO_SIM=1)
jemalloc_version="$(grep -A1 '^name = "tikv-jemalloc-sys"$' Cargo.lock | sed -n 's/^version = ".*+\(.*\)"$/\1/p' || true)"
for built in ../target/release/build/tikv-jemalloc-sys-*/out ../target/debug/build/tikv-jemalloc-sys-*/out; do
    if [ -n "$jemalloc_version" ] && [ -f "$built/lib/libjemalloc_pic.a" ] &&
        grep -qF "\"$jemalloc_version\"" "$built/include/jemalloc/jemalloc.h"; then
        SERVER_ENV+=(JEMALLOC_OVERRIDE="$(cd "$built/lib" && pwd)/libjemalloc_pic.a")
        break
    fi
done
server_fuzz() {
    env "${SERVER_ENV[@]}" cargo +nightly fuzz "$1" "${SERVER_BUILD[@]}" "${@:2}"
}

is_server_target() {
    local name
    for name in "${SERVER_TARGETS[@]}"; do
        [ "$name" = "$1" ] && return 0
    done
    return 1
}

cargo +nightly fuzz build
for target in "${SERVER_TARGETS[@]}"; do
    server_fuzz build "$target"
done
for target in $(cargo +nightly fuzz list); do
    fuzz=(cargo +nightly fuzz)
    if is_server_target "$target"; then
        fuzz=(server_fuzz)
    fi
    options=()
    case "$target" in
        resp_*) options=(-dict=dict/resp.dict) ;;
        glob) options=(-dict=dict/glob.dict) ;;
        # A payload of a few KiB justifies no large allocation: one past 64 MiB is a failure.
        dump_payload) options=(-malloc_limit_mb=64) ;;
    esac
    mkdir -p "$scratch/$target" "$scratch/artifacts/$target"
    cp corpus/"$target"/* "$scratch/$target/"
    echo "test-fuzz: $target for ${seconds} s"
    if ! "${fuzz[@]}" run "$target" "$scratch/$target" -- \
        -max_total_time="$seconds" -artifact_prefix="$scratch/artifacts/$target/" \
        "${options[@]}" -print_final_stats=1 >"$scratch/$target.log" 2>&1; then
        tail -n 60 "$scratch/$target.log"
        echo "test-fuzz: $target failed; the input that did it:"
        ls -l "$scratch/artifacts/$target/"
        exit 1
    fi
    grep -E "^stat::number_of_executed_units" "$scratch/$target.log" | sed "s/^/test-fuzz: $target /"
done
echo "test-fuzz: every target ran without a crash"
