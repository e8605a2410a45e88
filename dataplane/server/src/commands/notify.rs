//! Keyspace notifications (`notify-keyspace-events`): commands call [`notify`] after a change,
//! with Redis's class and event name; when the class is on, the event is published as
//! `__keyspace@<db>__:<key>` (message: the event) and `__keyevent@<db>__:<event>` (message: the
//! key) through the Pub/Sub path: delivered to this shard's subscribers at once, and to the
//! other shards' before the command's reply leaves ([`super::pubsub::forward_events`]).
//!
//! How a family raises its events: after the change, `notify(ctx, notify::HASH, "hset", key)`;
//! after a removal that may have emptied the key, [`notify_change`], which adds `del` when the
//! key went, as Redis does. Keys that expire raise `expired` by themselves, and hashes whose
//! fields the active field expiry removed raise `hexpired` (the store logs both for
//! [`after_command`] and the active expiry). Eviction calls [`publish_event`] with [`EVICTED`]
//! and `"evicted"` for each key it removes.

use ember_store::{Expiry, Keyspace};

use super::Ctx;
use crate::shard::pubsub::{Namespace, PubSub};

/// `K`: publish on `__keyspace@<db>__:<key>`.
pub const KEYSPACE: u32 = 1 << 0;
/// `E`: publish on `__keyevent@<db>__:<event>`.
pub const KEYEVENT: u32 = 1 << 1;
/// `g`: generic commands (DEL, EXPIRE, RENAME...).
pub const GENERIC: u32 = 1 << 2;
/// `$`: string commands.
pub const STRING: u32 = 1 << 3;
/// `l`: list commands.
pub const LIST: u32 = 1 << 4;
/// `s`: set commands.
pub const SET: u32 = 1 << 5;
/// `h`: hash commands.
pub const HASH: u32 = 1 << 6;
/// `z`: sorted set commands.
pub const ZSET: u32 = 1 << 7;
/// `x`: keys that expired.
pub const EXPIRED: u32 = 1 << 8;
/// `e`: keys that were evicted.
pub const EVICTED: u32 = 1 << 9;
/// `t`: stream commands.
pub const STREAM: u32 = 1 << 10;
/// `m`: reads of missing keys (not part of `A`).
pub const KEY_MISS: u32 = 1 << 11;
/// `d`: module events.
pub const MODULE: u32 = 1 << 13;
/// `n`: new keys (not part of `A`).
pub const NEW: u32 = 1 << 14;
/// `A`: every class but `m` and `n`.
pub const ALL: u32 =
    GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

/// Parses a `notify-keyspace-events` value as Redis's `keyspaceEventsStringToFlags`.
///
/// # Errors
/// Redis's reason when a character names no class.
pub fn parse_classes(text: &str) -> Result<u32, String> {
    let mut flags = 0;
    for character in text.chars() {
        flags |= match character {
            'A' => ALL,
            'g' => GENERIC,
            '$' => STRING,
            'l' => LIST,
            's' => SET,
            'h' => HASH,
            'z' => ZSET,
            'x' => EXPIRED,
            'e' => EVICTED,
            'K' => KEYSPACE,
            'E' => KEYEVENT,
            't' => STREAM,
            'm' => KEY_MISS,
            'd' => MODULE,
            'n' => NEW,
            _ => return Err("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".into()),
        };
    }
    Ok(flags)
}

/// Writes `flags` as Redis's `keyspaceEventsFlagsToString` does (CONFIG GET's form).
pub fn format_classes(flags: u32) -> String {
    let mut text = String::new();
    if flags & ALL == ALL {
        text.push('A');
    } else {
        for (class, character) in [
            (GENERIC, 'g'),
            (STRING, '$'),
            (LIST, 'l'),
            (SET, 's'),
            (HASH, 'h'),
            (ZSET, 'z'),
            (EXPIRED, 'x'),
            (EVICTED, 'e'),
            (STREAM, 't'),
            (MODULE, 'd'),
            (NEW, 'n'),
        ] {
            if flags & class != 0 {
                text.push(character);
            }
        }
    }
    for (class, character) in [(KEYSPACE, 'K'), (KEYEVENT, 'E'), (KEY_MISS, 'm')] {
        if flags & class != 0 {
            text.push(character);
        }
    }
    text
}

/// The CONFIG SET check of `notify-keyspace-events`: the value in Redis's canonical form.
///
/// # Errors
/// Redis's reason for an unknown class character.
pub fn canonical_classes(_previous: &str, value: &str) -> Result<String, String> {
    parse_classes(value).map(format_classes)
}

/// Raises keyspace event `event` of `class` on `key` in the command's database. One branch
/// when the class is off.
pub fn notify(ctx: &mut Ctx<'_>, class: u32, event: &str, key: &[u8]) {
    let flags = ctx.config.notify_keyspace_events;
    if flags & class == 0 {
        return;
    }
    // Keys that expired while the command looked them up come first, as in Redis, where
    // the lookup raises `expired` before the command raises its own event; then `new` for
    // the keys it created (Redis raises it when the key is added).
    publish_expired(ctx.keyspace, ctx.pubsub, ctx.config, ctx.now_ms);
    publish_new(ctx.keyspace, ctx.pubsub, ctx.config, ctx.now_ms);
    publish_event(
        ctx.pubsub, ctx.config, flags, ctx.db, event, key, ctx.now_ms,
    );
}

/// Before a keyspace command: the store records the keys the command creates while the `n`
/// class is on (and a keyspace or keyevent channel is).
pub fn before_command(keyspace: &mut Keyspace, config: &crate::config::Config) {
    let flags = config.notify_keyspace_events;
    keyspace.record_new(flags & NEW != 0 && flags & (KEYSPACE | KEYEVENT) != 0);
}

/// Raises `new` for every key the store recorded as created.
fn publish_new(
    keyspace: &mut Keyspace,
    pubsub: &PubSub,
    config: &crate::config::Config,
    now_ms: u64,
) {
    let flags = config.notify_keyspace_events;
    if flags & NEW == 0 {
        return;
    }
    for (db, key) in keyspace.take_new() {
        publish_event(pubsub, config, flags, db, "new", key.as_bytes(), now_ms);
    }
}

/// Raises `event` of `class` on `key` after a change, then `del` when the change removed the
/// key's last element (and so the key), as Redis's collection commands do. Call it only when
/// the command changed something.
pub fn notify_change(ctx: &mut Ctx<'_>, class: u32, event: &str, key: &[u8]) {
    if ctx.config.notify_keyspace_events & (class | GENERIC) == 0 {
        return;
    }
    notify(ctx, class, event, key);
    if ctx.keyspace.peek(ctx.db, key, ctx.now_ms).is_none() {
        notify(ctx, GENERIC, "del", key);
    }
}

/// Raises `keymiss` (class `m`) when a read command is about to find `key` missing; the read
/// paths call it before their lookup. One branch when the class is off.
pub fn note_read(ctx: &mut Ctx<'_>, key: &[u8]) {
    if ctx.config.notify_keyspace_events & KEY_MISS != 0
        && ctx.keyspace.peek(ctx.db, key, ctx.now_ms).is_none()
    {
        notify(ctx, KEY_MISS, "keymiss", key);
    }
}

/// [`notify`] for a key in database `db` rather than the command's (MOVE, COPY ... DB).
pub fn notify_in(ctx: &mut Ctx<'_>, db: usize, class: u32, event: &str, key: &[u8]) {
    let flags = ctx.config.notify_keyspace_events;
    if flags & class == 0 {
        return;
    }
    publish_expired(ctx.keyspace, ctx.pubsub, ctx.config, ctx.now_ms);
    publish_new(ctx.keyspace, ctx.pubsub, ctx.config, ctx.now_ms);
    publish_event(ctx.pubsub, ctx.config, flags, db, event, key, ctx.now_ms);
}

/// Called after every keyspace command: raises `expired` for the keys its lookups expired,
/// and keeps the store recording them only while the `x` class is on.
pub fn after_command(
    keyspace: &mut Keyspace,
    pubsub: &PubSub,
    config: &crate::config::Config,
    now_ms: u64,
) {
    if config.notify_keyspace_events == 0 && !keyspace.has_expired() {
        return;
    }
    publish_expired(keyspace, pubsub, config, now_ms);
    publish_new(keyspace, pubsub, config, now_ms);
}

/// Raises `expired` for every key the store recorded, and turns the recording on or off to
/// follow the configuration (also called by the active expiry after each cycle).
pub fn publish_expired(
    keyspace: &mut Keyspace,
    pubsub: &PubSub,
    config: &crate::config::Config,
    now_ms: u64,
) {
    let flags = config.notify_keyspace_events;
    let wanted = flags & (EXPIRED | HASH) != 0 && flags & (KEYSPACE | KEYEVENT) != 0;
    // The append-only file logs a `DEL` where a key expired: its replay keeps every key live
    // until the record that removed it (crate::aof).
    let logged = crate::aof::on();
    keyspace.record_expired(wanted || logged);
    if !wanted && !logged {
        return;
    }
    for (db, key, expiry) in keyspace.take_expired() {
        let key = key.as_bytes();
        if logged && matches!(expiry, Expiry::Key | Expiry::Fields { emptied: true }) {
            crate::aof::append(db, &[b"DEL", key]);
        }
        if !wanted {
            continue;
        }
        match expiry {
            Expiry::Key if flags & EXPIRED != 0 => {
                publish_event(pubsub, config, flags, db, "expired", key, now_ms);
            }
            Expiry::Key => {}
            Expiry::Fields { emptied } => {
                if flags & HASH != 0 {
                    publish_event(pubsub, config, flags, db, "hexpired", key, now_ms);
                }
                if emptied && flags & GENERIC != 0 {
                    publish_event(pubsub, config, flags, db, "del", key, now_ms);
                }
            }
        }
    }
}

/// Publishes one event on the keyspace and keyevent channels the configuration asks for:
/// delivered here now, queued for the other shards.
pub fn publish_event(
    pubsub: &PubSub,
    config: &crate::config::Config,
    flags: u32,
    db: usize,
    event: &str,
    key: &[u8],
    now_ms: u64,
) {
    let limit = config.pubsub_output_limit;
    if flags & KEYSPACE != 0 {
        let mut channel = format!("__keyspace@{db}__:").into_bytes();
        channel.extend_from_slice(key);
        pubsub.deliver(Namespace::Global, &channel, event.as_bytes(), limit, now_ms);
        pubsub.queue_forward(channel, event.as_bytes().to_vec());
    }
    if flags & KEYEVENT != 0 {
        let channel = format!("__keyevent@{db}__:{event}").into_bytes();
        pubsub.deliver(Namespace::Global, &channel, key, limit, now_ms);
        pubsub.queue_forward(channel, key.to_vec());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_parse_and_print_as_redis() {
        // (value set, CONFIG GET's answer), checked against redis-server 7.0.15.
        let cases: &[(&str, &str)] = &[
            ("", ""),
            ("KEA", "AKE"),
            ("AKE", "AKE"),
            ("gK$lshzxetdnm", "AKm"),
            ("$lshzxegtdn", "A"),
            ("EKn", "nKE"),
            ("gE$", "g$E"),
            ("Kx", "xK"),
        ];
        for (value, printed) in cases {
            assert_eq!(
                canonical_classes("", value).as_deref(),
                Ok(*printed),
                "{value}"
            );
        }
        assert_eq!(
            parse_classes("Kq"),
            Err("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".to_string())
        );
    }
}
