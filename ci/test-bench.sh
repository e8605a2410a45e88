#!/usr/bin/env bash
# ember-bench compare in its quick mode (one short round, 10 to 20 s): proves that the servers
# start pinned, the preload and every workload pass their reply checks, and the report and the
# plots are written. Its figures are not kept (a scratch output file); bench/RESULTS.md holds the
# figures of a full run.
set -euo pipefail
cd "$(dirname "$0")/.."
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
# EMBER_BENCH_TARGETS=redis checks the machinery without Ember.
targets="${EMBER_BENCH_TARGETS:-redis,ember,ember-busy-poll}"
./target/release/ember-bench compare --quick --targets "$targets" \
    --output "$scratch/RESULTS.md" --json "$scratch/samples.json" > "$scratch/stdout.md"
for plot in compare-throughput.svg compare-cpu.svg compare-latency.svg; do
    test -s "$scratch/results/$plot" || { echo "test-bench: $plot missing"; exit 1; }
done
grep -q "ember-bench compare: begin" "$scratch/RESULTS.md"
echo "test-bench: compare --quick ($targets) passed"
