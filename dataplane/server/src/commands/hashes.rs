//! Hash commands: HSET, HGET, HDEL... and per-field expiry (HEXPIRE, HTTL...).

use super::CommandSpec;

/// This family's commands, in COMMAND's order.
pub static COMMANDS: &[CommandSpec] = &[];
