//! ember-fpga: Verilog modules of Ember's fixed-function stages, co-simulated from Rust.
#![deny(missing_docs)]
