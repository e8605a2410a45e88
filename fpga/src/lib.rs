//! ember-fpga: Verilog modules of Ember's fixed-function data-plane stages, co-simulated from
//! Rust with Verilator and checked bit for bit against the software that Ember runs.
//!
//! The modules live in `fpga/rtl`, one per file, each with an AXI-Stream interface. `build.rs`
//! verilates them when Verilator is installed and compiles them with a small generated C++
//! shim; [`sim`] wraps the shim safely and drives a model clock by clock; [`modules`] has one
//! driver per module; [`offload`] is the seam through which the server runs a stage either in
//! software or through the simulator, counting clock cycles. The XOR networks of the CRC
//! modules are generated from the Rust reference by [`generate`].
//!
//! ```
//! use ember_fpga::offload::{Offload, SoftwareOffload};
//! let mut offload = SoftwareOffload::default();
//! assert_eq!(offload.key_slot(b"{user1000}.following").unwrap(), 3443);
//! ```
#![deny(missing_docs)]

pub mod generate;
pub mod modules;
pub mod offload;
pub mod sim;
