//! Bitmap commands on strings: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD.

use super::CommandSpec;

/// This family's commands, in COMMAND's order.
pub static COMMANDS: &[CommandSpec] = &[];
