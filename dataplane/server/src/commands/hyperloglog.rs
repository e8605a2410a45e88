//! HyperLogLog commands: PFADD, PFCOUNT, PFMERGE, on strings in Redis's HLL format.

use super::CommandSpec;

/// This family's commands, in COMMAND's order.
pub static COMMANDS: &[CommandSpec] = &[];
