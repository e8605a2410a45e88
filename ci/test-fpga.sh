#!/usr/bin/env bash
# FPGA checks beyond `cargo test`: every module lints clean under Verilator -Wall, parses as
# Verilog-2005 in Icarus and elaborates in yosys; then the quick latency tests run with
# EMBER_FPGA_REQUIRE_SIM=1, so that a build without the simulator fails here instead of the
# co-simulation tests of `cargo test --workspace` passing by skipping.
# The long run (a million vectors per module) is opt-in: EMBER_FPGA_VECTORS=1000000.
set -euo pipefail
cd "$(dirname "$0")/.."
modules=(slot_hash crc32c dot_i8 bloom_probe token_bucket ac_match resp_tokenizer)
for module in "${modules[@]}"; do
    verilator --lint-only -Wall -y fpga/rtl "fpga/rtl/$module.v" --top-module "$module"
    iverilog -g2005 -o /dev/null -y fpga/rtl -s "$module" "fpga/rtl/$module.v"
    # yosys notes (arrays of registers kept as registers) are not failures; errors are.
    if ! log=$(yosys -q -p "read_verilog fpga/rtl/*.v; hierarchy -check -top $module; proc" 2>&1); then
        echo "$log"
        exit 1
    fi
done
echo "fpga: ${#modules[@]} modules lint clean in Verilator, Icarus and yosys"
EMBER_FPGA_REQUIRE_SIM=1 cargo test --release -p ember-fpga --test latency
