//! Geo commands: GEOADD, GEOSEARCH... over sorted sets, as Redis stores them.

use super::CommandSpec;

/// This family's commands, in COMMAND's order.
pub static COMMANDS: &[CommandSpec] = &[];
