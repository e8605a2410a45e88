# Sourced by ci/setup.sh: the FPGA area. Verilator builds the co-simulation models
# (fpga/build.rs); Icarus and yosys parse the RTL in ci/test-fpga.sh (every module must read in
# all three); g++ compiles the Verilated models. Synthesis tools (nextpnr) are not needed by
# `make test`: fpga/synth/run.sh installs what it needs itself.
need_command verilator verilator
need_command iverilog iverilog
need_command yosys yosys
need_command g++ g++
