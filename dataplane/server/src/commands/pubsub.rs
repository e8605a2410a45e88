//! Pub/Sub: SUBSCRIBE, PUBLISH, PSUBSCRIBE, sharded channels.

use super::CommandSpec;

/// This family's commands, in COMMAND's order.
pub static COMMANDS: &[CommandSpec] = &[];
