//! MULTI and DISCARD. EXEC and WATCH ask other shards, so the executor runs them
//! ([`super::exec`]); every transaction command is declared in the table like any other.

use ember_resp::ReplySink;

use super::CommandResult;
use crate::client::Client;

/// MULTI
pub fn multi(client: &mut Client, out: &mut ReplySink) -> CommandResult {
    if client.multi.is_some() {
        return Err("ERR MULTI calls can not be nested".into());
    }
    client.multi = Some(Vec::new());
    client.multi_failed = false;
    out.ok();
    Ok(())
}

/// DISCARD
pub fn discard(client: &mut Client, out: &mut ReplySink) -> CommandResult {
    if client.multi.take().is_none() {
        return Err("ERR DISCARD without MULTI".into());
    }
    client.multi_failed = false;
    client.watched.clear();
    out.ok();
    Ok(())
}
