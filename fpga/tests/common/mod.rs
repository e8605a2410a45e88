//! Shared pieces of the co-simulation tests.
#![allow(dead_code)]

use std::fmt;

use ember_fpga::sim::{simulator_available, Backpressure};

/// Random vectors per module in a normal run; EMBER_FPGA_VECTORS overrides it (the long run
/// uses 1_000_000).
pub const VECTOR_COUNT_DEFAULT: usize = 100_000;

pub fn vector_count() -> usize {
    std::env::var("EMBER_FPGA_VECTORS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(VECTOR_COUNT_DEFAULT)
}

/// Some(()) when the simulator is there; None (after saying why) when the test must skip.
/// With EMBER_FPGA_REQUIRE_SIM set (as CI sets it), a missing simulator fails instead.
pub fn require_sim(test: &str) -> Option<()> {
    if simulator_available() {
        return Some(());
    }
    if std::env::var_os("EMBER_FPGA_REQUIRE_SIM").is_some() {
        panic!("{test}: EMBER_FPGA_REQUIRE_SIM is set but ember-fpga was built without Verilator");
    }
    eprintln!("skipped {test}: ember-fpga was built without Verilator (apt-get install verilator)");
    None
}

/// One back-pressure setting, with the seed that replays it.
pub struct Case {
    pub name: &'static str,
    pub seed: u64,
    pub source_valid_percent: u32,
    pub sink_ready_percent: u32,
}

impl Case {
    pub fn pressure(&self) -> Backpressure {
        Backpressure::random(
            self.seed,
            self.source_valid_percent,
            self.sink_ready_percent,
        )
    }
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "back-pressure {} (seed {:#x}, source valid {}%, sink ready {}%)",
            self.name, self.seed, self.source_valid_percent, self.sink_ready_percent
        )
    }
}

/// The back-pressure settings every module runs under.
pub fn pressures(seed: u64) -> Vec<Case> {
    let case = |name, index: u64, source_valid_percent, sink_ready_percent| Case {
        name,
        seed: seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(index),
        source_valid_percent,
        sink_ready_percent,
    };
    vec![
        case("none", 0, 100, 100),
        case("slow source", 1, 30, 100),
        case("slow sink", 2, 100, 30),
        case("both random", 3, 60, 60),
    ]
}
