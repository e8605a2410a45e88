//! PUBSUB CHANNELS, NUMSUB, NUMPAT, SHARDCHANNELS, SHARDNUMSUB, HELP and INFO's Pub/Sub figures:
//! every shard's tables put together.

use ember_resp::ReplySink;

use super::super::{unknown_subcommand_message, CommandResult};
use super::ask_others;
use crate::shard::pubsub::{Namespace, PubSubRequest};
use crate::shard::{Shard, ShardReply};

/// PUBSUB's help, as Redis 7.0 prints it.
const PUBSUB_HELP: &[&str] = &[
    "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
    "HELP",
    "    Prints this help.",
];

/// PUBSUB CHANNELS | NUMSUB | NUMPAT | SHARDCHANNELS | SHARDNUMSUB | HELP: every shard's
/// figures put together (a channel listened to on several shards is one channel).
pub(super) async fn introspect(
    shard: &Shard,
    args: &[&[u8]],
    out: &mut ReplySink,
) -> CommandResult {
    let sub = String::from_utf8_lossy(args[1]).to_ascii_lowercase();
    // Redis's arity of each subcommand, checked before the subcommand runs.
    let arity = match sub.as_str() {
        "channels" | "shardchannels" | "numsub" | "shardnumsub" => -2,
        "numpat" | "help" => 2,
        _ => return Err(unknown_subcommand_message("pubsub", args[1]).into()),
    };
    if !super::super::arity_ok(arity, args.len()) {
        return Err(super::super::arity_message(&format!("pubsub|{sub}")).into());
    }
    match sub.as_str() {
        "help" => {
            out.array_len(PUBSUB_HELP.len());
            for line in PUBSUB_HELP {
                out.simple(line.as_bytes());
            }
        }
        "channels" | "shardchannels" => {
            if args.len() > 3 {
                let typed = String::from_utf8_lossy(args[1]);
                return Err(format!("ERR unknown subcommand or wrong number of arguments for '{typed}'. Try PUBSUB HELP.").into());
            }
            let namespace = if sub == "channels" {
                Namespace::Global
            } else {
                Namespace::Shard
            };
            let pattern = args.get(2).map(|pattern| pattern.to_vec());
            let mut names = shard.pubsub.channel_names(namespace, pattern.as_deref());
            let request = PubSubRequest::Channels { namespace, pattern };
            for reply in ask_others(shard, &request).await {
                if let ShardReply::Keys(more) = reply {
                    names.extend(more);
                }
            }
            names.sort_unstable();
            names.dedup();
            out.array_len(names.len());
            for name in &names {
                out.bulk(name);
            }
        }
        "numsub" | "shardnumsub" => {
            let namespace = if sub == "numsub" {
                Namespace::Global
            } else {
                Namespace::Shard
            };
            let channels: Vec<Vec<u8>> = args[2..].iter().map(|arg| arg.to_vec()).collect();
            let mut counts: Vec<usize> = channels
                .iter()
                .map(|channel| shard.pubsub.subscriber_count(namespace, channel))
                .collect();
            let request = PubSubRequest::NumSub {
                namespace,
                channels: channels.clone(),
            };
            for reply in ask_others(shard, &request).await {
                if let ShardReply::Counts(more) = reply {
                    for (count, more) in counts.iter_mut().zip(more) {
                        *count += more;
                    }
                }
            }
            out.array_len(channels.len() * 2);
            for (channel, count) in channels.iter().zip(&counts) {
                out.bulk(channel);
                out.integer(*count as i64);
            }
        }
        _ => {
            out.integer(global_patterns(shard).await.len() as i64);
        }
    }
    Ok(())
}

/// Every pattern listened to on any shard, once.
async fn global_patterns(shard: &Shard) -> Vec<Vec<u8>> {
    let mut patterns = shard.pubsub.pattern_names();
    for reply in ask_others(shard, &PubSubRequest::Patterns).await {
        if let ShardReply::Keys(more) = reply {
            patterns.extend(more);
        }
    }
    patterns.sort_unstable();
    patterns.dedup();
    patterns
}

/// INFO's `pubsub_channels`, `pubsub_patterns` and `pubsubshard_channels` lines, counted over
/// every shard (a name listened to on several shards counts once).
pub async fn info_lines(shard: &Shard) -> String {
    let mut channels = shard.pubsub.channel_names(Namespace::Global, None);
    let mut shard_channels = shard.pubsub.channel_names(Namespace::Shard, None);
    for (namespace, names) in [
        (Namespace::Global, &mut channels),
        (Namespace::Shard, &mut shard_channels),
    ] {
        let request = PubSubRequest::Channels {
            namespace,
            pattern: None,
        };
        for reply in ask_others(shard, &request).await {
            if let ShardReply::Keys(more) = reply {
                names.extend(more);
            }
        }
        names.sort_unstable();
        names.dedup();
    }
    let patterns = global_patterns(shard).await.len();
    format!(
        "pubsub_channels:{}\r\npubsub_patterns:{patterns}\r\npubsubshard_channels:{}\r\n",
        channels.len(),
        shard_channels.len()
    )
}
