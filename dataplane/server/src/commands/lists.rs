//! List commands: LPUSH, RPOP, LRANGE... and the blocking pops.

use super::CommandSpec;

/// This family's commands, in COMMAND's order.
pub static COMMANDS: &[CommandSpec] = &[];
