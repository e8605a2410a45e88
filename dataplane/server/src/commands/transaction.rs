//! MULTI, EXEC, DISCARD. EXEC itself runs in the connection (it runs other commands, so it is
//! asynchronous); the table's entry for it is what COMMAND reports.

use ember_resp::encode;

use super::{CommandResult, ConnectionCtx};

/// MULTI
pub fn multi(ctx: &mut ConnectionCtx<'_>, _args: &[&[u8]]) -> CommandResult {
    if ctx.client.multi.is_some() {
        return Err("ERR MULTI calls can not be nested".into());
    }
    ctx.client.multi = Some(Vec::new());
    ctx.client.multi_failed = false;
    encode::ok(ctx.out);
    Ok(())
}

/// DISCARD
pub fn discard(ctx: &mut ConnectionCtx<'_>, _args: &[&[u8]]) -> CommandResult {
    if ctx.client.multi.take().is_none() {
        return Err("ERR DISCARD without MULTI".into());
    }
    ctx.client.multi_failed = false;
    ctx.client.watched.clear();
    encode::ok(ctx.out);
    Ok(())
}

/// UNWATCH
pub fn unwatch(ctx: &mut ConnectionCtx<'_>, _args: &[&[u8]]) -> CommandResult {
    ctx.client.watched.clear();
    encode::ok(ctx.out);
    Ok(())
}

/// WATCH runs in the connection (it asks the keys' shards for their versions); never called.
pub fn watch_outside_connection(_ctx: &mut ConnectionCtx<'_>, _args: &[&[u8]]) -> CommandResult {
    unreachable!("the connection runs WATCH itself")
}

/// EXEC reaches this only outside a transaction (the connection runs a real one itself).
pub fn exec_outside_connection(_ctx: &mut ConnectionCtx<'_>, _args: &[&[u8]]) -> CommandResult {
    Err("ERR EXEC without MULTI".into())
}
