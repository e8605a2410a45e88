//! Ember's server as a library: the `ember` binary (`main.rs`) is its command line, and the fuzz
//! targets in `fuzz/` reach the argument parsers (`commands`) and the config-file parser
//! (`config`) through it without a running server.

pub mod aof;
pub mod bell;
pub mod client;
pub mod clock;
pub mod commands;
pub mod config;
pub mod connection;
pub mod inference;
pub mod io;
pub mod lazyfree;
pub mod limits;
pub mod memory;
pub mod metrics;
pub mod persistence;
pub mod protection;
pub mod rdma;
pub mod runtime;
pub mod scripting;
pub mod server;
pub mod shard;
pub mod spin;
pub mod stats;
pub mod tls;

/// The unit tests run on jemalloc, as the `ember` binary does (`main.rs` sets it for the binary):
/// the memory gauge's tests read jemalloc's figures for the whole process.
#[cfg(test)]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The hardware paths found at start-up, said once in the log and in INFO: the CPU, each GPU the CUDA driver
/// reports (name, architecture, memory), the inference backends usable here and why each other one is not.
pub fn hardware_summary() -> String {
    // The server calls this with no arguments; the ONNX Runtime to probe is a flag, so read the inference flags
    // again (main has already refused bad ones).
    let args: Vec<String> = std::env::args().skip(1).collect();
    let ort_lib = inference::InferenceConfig::extract(&args)
        .ok()
        .and_then(|(config, _)| config.ort_lib);
    inference::backends::hardware_summary(ort_lib.as_deref())
}
