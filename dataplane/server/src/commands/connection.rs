//! Connection commands: AUTH, HELLO, PING, ECHO, SELECT, QUIT, RESET.

use std::sync::Arc;

use ember_resp::Protocol;

use super::keys::parse_db;
use super::{arity_message, errors, is, CommandError, CommandResult, ConnectionCtx};

const VERSION: &str = "7.2.4";

/// Authenticates the connection as `username` (the default user when `None`); Redis's errors,
/// and an ACL LOG entry for a failure (`command` names AUTH or HELLO there).
fn authenticate(
    ctx: &mut ConnectionCtx<'_>,
    username: Option<&[u8]>,
    password: &[u8],
    command: &[u8],
) -> Result<(), CommandError> {
    let users = &ctx.shard.shared.acl;
    if username.is_none() && users.default_nopass(ctx.shard) {
        return Err("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?".into());
    }
    let name = username.unwrap_or(b"default");
    let user = users
        .authenticate(ctx.shard, ctx.client, name, password, command)
        .ok_or_else(|| {
            CommandError::from("WRONGPASS invalid username-password pair or user is disabled.")
        })?;
    ctx.client.authenticated = true;
    let default = Arc::ptr_eq(&user, users.default_user());
    *ctx.client.handle.user.borrow_mut() = if default {
        String::new()
    } else {
        String::from_utf8_lossy(&user.name).into_owned()
    };
    ctx.client.user = (!default).then_some(user);
    Ok(())
}

/// AUTH [username] password
pub fn auth(ctx: &mut ConnectionCtx<'_>, args: &[&[u8]]) -> CommandResult {
    let (username, password) = match args.len() {
        2 => (None, args[1]),
        3 => (Some(args[1]), args[2]),
        _ => return Err(errors::SYNTAX.into()),
    };
    authenticate(ctx, username, password, args[0])?;
    ctx.out.ok();
    Ok(())
}

/// HELLO [protover [AUTH username password] [SETNAME clientname]]
pub fn hello(ctx: &mut ConnectionCtx<'_>, args: &[&[u8]]) -> CommandResult {
    let mut protocol = ctx.client.protocol;
    if args.len() >= 2 {
        let version = ember_resp::parse_i64(args[1]).ok_or(CommandError::from(
            "ERR Protocol version is not an integer or out of range",
        ))?;
        protocol = match version {
            2 => Protocol::Resp2,
            3 => Protocol::Resp3,
            _ => return Err("NOPROTO unsupported protocol version".into()),
        };
    }
    let mut name = None;
    let mut credentials = None;
    let mut index = 2;
    while index < args.len() {
        let remaining = args.len() - index - 1;
        if is(args[index], "AUTH") && remaining >= 2 {
            credentials = Some((args[index + 1], args[index + 2]));
            index += 3;
        } else if is(args[index], "SETNAME") && remaining >= 1 {
            name = Some(args[index + 1]);
            index += 2;
        } else {
            return Err(format!(
                "ERR Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(args[index])
            )
            .into());
        }
    }
    if let Some((username, password)) = credentials {
        authenticate(ctx, Some(username), password, args[0])?;
    }
    if !ctx.client.authenticated {
        return Err("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time".into());
    }
    if let Some(name) = name {
        validate_client_name(name)?;
        *ctx.client.handle.name.borrow_mut() = String::from_utf8_lossy(name).into_owned();
    }
    ctx.client.protocol = protocol;
    ctx.out.set_protocol(protocol);
    ctx.client.handle.resp.set(protocol.version());
    let out = &mut *ctx.out;
    out.map_len(7);
    out.bulk(b"server");
    out.bulk(b"redis");
    out.bulk(b"version");
    out.bulk(VERSION.as_bytes());
    out.bulk(b"proto");
    out.integer(protocol.version());
    out.bulk(b"id");
    out.integer(ctx.client.handle.id as i64);
    out.bulk(b"mode");
    out.bulk(b"standalone");
    out.bulk(b"role");
    out.bulk(b"master");
    out.bulk(b"modules");
    out.array_len(0);
    Ok(())
}

/// Client names may not contain spaces, newlines or other special characters.
pub fn validate_client_name(name: &[u8]) -> CommandResult {
    if name.iter().any(|&byte| !(b'!'..=b'~').contains(&byte)) {
        return Err(
            "ERR Client names cannot contain spaces, newlines or special characters.".into(),
        );
    }
    Ok(())
}

/// PING [message]
pub fn ping(ctx: &mut ConnectionCtx<'_>, args: &[&[u8]]) -> CommandResult {
    if args.len() <= 2 && super::pubsub::in_resp2_context(ctx.client) {
        // Redis answers ["pong", message] to a RESP2 subscriber.
        ctx.out.array_len(2);
        ctx.out.bulk(b"pong");
        ctx.out.bulk(args.get(1).copied().unwrap_or_default());
        return Ok(());
    }
    match args.len() {
        1 => ctx.out.simple(b"PONG"),
        2 => ctx.out.bulk(args[1]),
        _ => return Err(arity_message("ping").into()),
    }
    Ok(())
}

/// ECHO message
pub fn echo(ctx: &mut ConnectionCtx<'_>, args: &[&[u8]]) -> CommandResult {
    ctx.out.bulk(args[1]);
    Ok(())
}

/// SELECT index
pub fn select(ctx: &mut ConnectionCtx<'_>, args: &[&[u8]]) -> CommandResult {
    let db = parse_db(args[1])?;
    ctx.client.db = db;
    ctx.client.handle.db.set(db);
    ctx.out.ok();
    Ok(())
}

/// ASKING, READONLY, READWRITE: cluster commands; Ember, like a Redis without cluster support,
/// refuses them (ACL rules still name them). CLUSTER itself is in commands/migrate.rs.
pub fn cluster_only(_ctx: &mut ConnectionCtx<'_>, _args: &[&[u8]]) -> CommandResult {
    Err("ERR This instance has cluster support disabled".into())
}

/// QUIT
pub fn quit(ctx: &mut ConnectionCtx<'_>, _args: &[&[u8]]) -> CommandResult {
    ctx.client.close_after_reply = true;
    ctx.client.handle.quitting.set(true);
    super::tracking::note_gone(ctx.shard, &ctx.client.handle);
    ctx.out.ok();
    Ok(())
}

/// RESET
pub fn reset(ctx: &mut ConnectionCtx<'_>, _args: &[&[u8]]) -> CommandResult {
    let client = &mut *ctx.client;
    client.db = 0;
    client.handle.db.set(0);
    client.protocol = Protocol::Resp2;
    client.handle.resp.set(2);
    client.no_touch = false;
    client.no_evict = false;
    client.handle.limits.no_evict.set(false);
    client.multi = None;
    client.multi_failed = false;
    client.watched.clear();
    client.reply_off = false;
    client.reply_skip_next = false;
    client.reply_skip_current = false;
    client.tracking_reset = true;
    super::pubsub::unsubscribe_all(ctx.shard, client);
    super::monitor::stop(ctx.shard, client);
    client.handle.name.borrow_mut().clear();
    client.authenticated = ctx.shard.shared.acl.starts_authenticated(ctx.shard);
    client.user = None;
    client.handle.user.borrow_mut().clear();
    ctx.out.simple(b"RESET");
    Ok(())
}
