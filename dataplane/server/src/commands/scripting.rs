//! Lua scripting and functions: EVAL, EVALSHA, SCRIPT, FUNCTION, FCALL.

use super::CommandSpec;

/// This family's commands, in COMMAND's order.
pub static COMMANDS: &[CommandSpec] = &[];
