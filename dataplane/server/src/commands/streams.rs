//! Stream commands: XADD, XRANGE, XREAD, consumer groups.

use super::CommandSpec;

/// This family's commands, in COMMAND's order.
pub static COMMANDS: &[CommandSpec] = &[];
