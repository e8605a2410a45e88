// The top-level ports of every simulated module, in the order the C++ shim packs them.
//
// This file is included twice: by build.rs, which generates the shim from it, and by
// src/sim.rs, which packs and unpacks the same words. `clk` and `rst` are not listed: the shim
// drives them. Widths are those of each module with its default parameters (or the
// `parameters` overrides given to Verilator).

/// One port: its name in the Verilog and its width in bits.
#[derive(Debug, Clone, Copy)]
pub struct PortSpec {
    /// Port name, as in the Verilog.
    pub name: &'static str,
    /// Width in bits.
    pub width: u32,
}

/// One simulated module.
#[derive(Debug, Clone, Copy)]
pub struct ModuleSpec {
    /// Module name, which is also its file name in fpga/rtl.
    pub name: &'static str,
    /// Parameter overrides passed to Verilator (`-Gname=value`).
    pub parameters: &'static [(&'static str, &'static str)],
    /// Inputs, clk and rst excepted.
    pub inputs: &'static [PortSpec],
    /// Outputs.
    pub outputs: &'static [PortSpec],
}

const fn port(name: &'static str, width: u32) -> PortSpec {
    PortSpec { name, width }
}

/// Every module that build.rs verilates.
pub const MODULE_SPECS: &[ModuleSpec] = &[
    ModuleSpec {
        name: "slot_hash",
        parameters: &[],
        inputs: &[
            port("s_axis_tdata", 64),
            port("s_axis_tkeep", 8),
            port("s_axis_tvalid", 1),
            port("s_axis_tlast", 1),
            port("m_axis_tready", 1),
        ],
        outputs: &[port("s_axis_tready", 1), port("m_axis_tdata", 16), port("m_axis_tvalid", 1)],
    },
    ModuleSpec {
        name: "crc32c",
        parameters: &[],
        inputs: &[
            port("s_axis_tdata", 64),
            port("s_axis_tkeep", 8),
            port("s_axis_tvalid", 1),
            port("s_axis_tlast", 1),
            port("m_axis_tready", 1),
        ],
        outputs: &[port("s_axis_tready", 1), port("m_axis_tdata", 32), port("m_axis_tvalid", 1)],
    },
    ModuleSpec {
        name: "dot_i8",
        parameters: &[],
        inputs: &[
            port("s_axis_tdata", 256),
            port("s_axis_tkeep", 16),
            port("s_axis_tvalid", 1),
            port("s_axis_tlast", 1),
            port("m_axis_tready", 1),
        ],
        outputs: &[port("s_axis_tready", 1), port("m_axis_tdata", 32), port("m_axis_tvalid", 1)],
    },
    ModuleSpec {
        name: "bloom_probe",
        parameters: &[],
        inputs: &[port("s_axis_tdata", 66), port("s_axis_tvalid", 1), port("m_axis_tready", 1)],
        outputs: &[port("s_axis_tready", 1), port("m_axis_tdata", 8), port("m_axis_tvalid", 1)],
    },
    ModuleSpec {
        name: "token_bucket",
        parameters: &[],
        inputs: &[port("s_axis_tdata", 97), port("s_axis_tvalid", 1), port("m_axis_tready", 1)],
        outputs: &[port("s_axis_tready", 1), port("m_axis_tdata", 40), port("m_axis_tvalid", 1)],
    },
    ModuleSpec {
        name: "ac_match",
        parameters: &[],
        inputs: &[
            port("s_axis_tdata", 8),
            port("s_axis_tkeep", 1),
            port("s_axis_tvalid", 1),
            port("s_axis_tlast", 1),
            port("m_axis_tready", 1),
            port("cfg_valid", 1),
            port("cfg_select", 1),
            port("cfg_address", 16),
            port("cfg_data", 16),
        ],
        outputs: &[port("s_axis_tready", 1), port("m_axis_tdata", 64), port("m_axis_tvalid", 1)],
    },
    ModuleSpec {
        name: "resp_tokenizer",
        parameters: &[],
        inputs: &[
            port("s_axis_tdata", 8),
            port("s_axis_tkeep", 1),
            port("s_axis_tvalid", 1),
            port("s_axis_tlast", 1),
            port("m_axis_tready", 1),
        ],
        outputs: &[port("s_axis_tready", 1), port("m_axis_tdata", 80), port("m_axis_tvalid", 1)],
    },
];
