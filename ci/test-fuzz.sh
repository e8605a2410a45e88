#!/usr/bin/env bash
# Every fuzz target briefly: builds them (cargo-fuzz, nightly, AddressSanitizer, debug assertions)
# and runs each from a scratch copy of its committed corpus, so that the fuzzer's new inputs never
# land in the work tree. A crash, a failed check or a leak fails the script (libFuzzer exits
# non-zero and leaves the input that did it under the scratch folder, printed below).
# EMBER_FUZZ_SECONDS sets each target's run (default 15 s: nine targets, about two and a half
# minutes of runs after the build).
# Long runs: `cd fuzz && cargo +nightly fuzz run TARGET` (README, "Fuzzing").
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${EMBER_FUZZ_SECONDS:-15}"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
cargo +nightly fuzz build
for target in $(cargo +nightly fuzz list); do
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
    if ! cargo +nightly fuzz run "$target" "$scratch/$target" -- \
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
