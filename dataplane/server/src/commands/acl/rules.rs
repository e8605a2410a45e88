//! A user's permissions as Redis 7.0 keeps them: flags, password hashes, a root selector and
//! more selectors, each with a command bitmap (commands and subcommands by id), allowed first
//! arguments, key patterns with read/write permissions and channel patterns; the ACL SETUSER
//! rules that change them, and the canonical rule strings ACL LIST and GETUSER describe them by.

use std::sync::LazyLock;

use super::tables::{KEY_ACCESS, SUBCOMMANDS};
use crate::commands::{AclCategories, CommandFlags, CATEGORY_NAMES, COMMANDS};

/// Read permission on a key pattern (`%R~`).
pub const READ: u8 = 1;
/// Write permission on a key pattern (`%W~`).
pub const WRITE: u8 = 2;

/// One entry of the ACL command catalogue: a command of the table or a subcommand.
pub struct AclCommand {
    /// `get`, `client|kill`.
    pub fullname: String,
    /// Its ACL categories (a container has only `@slow`, as in Redis).
    pub categories: AclCategories,
    /// The container's id, for a subcommand.
    pub parent: Option<usize>,
    /// Subcommand ids, for a container.
    pub subcommands: Vec<usize>,
    /// Arity, for a subcommand (the executor and DRYRUN check it).
    pub arity: i32,
    /// The access of each key spec ([`READ`] | [`WRITE`]); empty when unknown.
    pub key_access: Vec<u8>,
    /// Where the ACL checks find its keys.
    pub keys: AclKeys,
}

/// Where the ACL checks find a command's keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AclKeys {
    /// The command table's key positions.
    Table,
    /// After the script's numkeys (EVAL, FCALL...), which the table does not declare.
    Script,
    /// None: a shard channel is not a key for Redis's ACLs (SPUBLISH, SSUBSCRIBE).
    None,
}

/// Every command and subcommand, by ACL id: ids below `COMMANDS.len()` are the table's
/// indexes, subcommands follow.
pub struct Catalogue {
    /// The entries, by id.
    pub commands: Vec<AclCommand>,
    /// For each category of [`CATEGORY_NAMES`], the ids in it.
    pub by_category: Vec<Vec<usize>>,
}

/// The catalogue, built once from the command table and [`SUBCOMMANDS`].
pub static CATALOGUE: LazyLock<Catalogue> = LazyLock::new(|| {
    let parse_access = |text: &str| -> Vec<u8> {
        text.split(' ')
            .map(|spec| {
                let mut access = 0;
                if spec.contains('r') {
                    access |= READ;
                }
                if spec.contains('w') {
                    access |= WRITE;
                }
                access
            })
            .collect()
    };
    let access_of = |fullname: &str| {
        KEY_ACCESS
            .iter()
            .find(|(name, _)| *name == fullname)
            .map(|(_, access)| parse_access(access))
    };
    let mut commands: Vec<AclCommand> = COMMANDS
        .iter()
        .map(|spec| AclCommand {
            fullname: spec.name.to_owned(),
            categories: spec.categories,
            parent: None,
            subcommands: Vec::new(),
            arity: spec.arity,
            keys: match spec.name {
                "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro" => {
                    AclKeys::Script
                }
                "spublish" | "ssubscribe" | "sunsubscribe" => AclKeys::None,
                _ => AclKeys::Table,
            },
            key_access: access_of(spec.name).unwrap_or_else(|| {
                // No key spec known: the command's flags say how it uses its keys.
                if spec.has(CommandFlags::WRITE) {
                    vec![READ | WRITE]
                } else {
                    vec![READ]
                }
            }),
        })
        .collect();
    for (container, sub, arity, categories) in SUBCOMMANDS {
        let Some(parent) = crate::commands::lookup(container.as_bytes()) else {
            continue;
        };
        let fullname = format!("{container}|{sub}");
        let mut flags = AclCategories::empty();
        for name in categories.split(' ') {
            if let Some((flag, _)) = CATEGORY_NAMES.iter().find(|(_, known)| *known == name) {
                flags |= *flag;
            }
        }
        let id = commands.len();
        commands[parent].subcommands.push(id);
        // Redis's containers are @slow, COMMAND @connection too; their subcommands carry
        // the rest.
        commands[parent].categories = if *container == "command" {
            AclCategories::SLOW | AclCategories::CONNECTION
        } else {
            AclCategories::SLOW
        };
        commands.push(AclCommand {
            key_access: access_of(&fullname).unwrap_or_default(),
            fullname,
            categories: flags,
            parent: Some(parent),
            subcommands: Vec::new(),
            arity: *arity,
            keys: AclKeys::Table,
        });
    }
    let by_category = CATEGORY_NAMES
        .iter()
        .map(|(flag, _)| {
            (0..commands.len())
                .filter(|&id| commands[id].categories.contains(*flag))
                .collect()
        })
        .collect();
    Catalogue {
        commands,
        by_category,
    }
});

impl Catalogue {
    /// The id of `name` (`get`, `config|get`), as Redis's ACL lookup: at most one `|`, and the
    /// part after it must be a subcommand of a container.
    pub fn lookup(&self, name: &[u8]) -> Option<usize> {
        let mut parts = name.split(|&byte| byte == b'|');
        let base = crate::commands::lookup(parts.next()?)?;
        match (parts.next(), parts.next()) {
            (None, _) => Some(base),
            (Some(sub), None) => self.subcommand(base, sub),
            _ => None,
        }
    }

    /// The id of subcommand `sub` of the container at `base`.
    pub fn subcommand(&self, base: usize, sub: &[u8]) -> Option<usize> {
        self.commands[base].subcommands.iter().copied().find(|&id| {
            let fullname = self.commands[id].fullname.as_bytes();
            let name = &fullname[fullname.iter().position(|&b| b == b'|').unwrap_or(0) + 1..];
            name.eq_ignore_ascii_case(sub)
        })
    }

    /// The id a request runs as: its subcommand's for a container, else the command's.
    pub fn request_id(&self, index: usize, args: &[&[u8]]) -> usize {
        if self.commands[index].subcommands.is_empty() {
            return index;
        }
        args.get(1)
            .and_then(|sub| self.subcommand(index, sub))
            .unwrap_or(index)
    }

    /// The category flag named `name`, case-insensitively.
    pub fn category(name: &[u8]) -> Option<(usize, AclCategories)> {
        CATEGORY_NAMES
            .iter()
            .enumerate()
            .find(|(_, (_, known))| name.eq_ignore_ascii_case(known.as_bytes()))
            .map(|(position, (flag, _))| (position, *flag))
    }
}

/// Why a rule was refused: Redis's errno classes, each with its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleError {
    /// EINVAL
    Syntax,
    /// ENOENT
    UnknownCommand,
    /// EEXIST
    KeyAfterAll,
    /// EISDIR
    ChannelAfterAll,
    /// ENODEV
    NoSuchPassword,
    /// EBADMSG
    BadHash,
    /// ECHILD
    FirstArgOfSubcommand,
}

impl RuleError {
    /// Redis's description.
    pub fn message(self) -> &'static str {
        match self {
            RuleError::Syntax => "Syntax error",
            RuleError::UnknownCommand => "Unknown command or category name in ACL",
            RuleError::KeyAfterAll => "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns",
            RuleError::ChannelAfterAll => "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels",
            RuleError::NoSuchPassword => "The password you are trying to remove from the user does not exist",
            RuleError::BadHash => "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters",
            RuleError::FirstArgOfSubcommand => "Allowing first-arg of a subcommand is not supported",
        }
    }
}

/// What a selector allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    /// One bit per catalogue id.
    bits: Vec<u64>,
    /// Redis's ALLCOMMANDS flag: set by `+@all`, cleared when any bit is cleared.
    pub all_commands: bool,
    /// Redis's reserved "future commands" bit: set by `+@all`, cleared only by `-@all`.
    future: bool,
    /// First arguments allowed for a command whose bit is clear (`+select|0`).
    first_args: Vec<(usize, Vec<String>)>,
    /// `allkeys` / `~*`.
    pub all_keys: bool,
    /// Key patterns with their permissions ([`READ`] | [`WRITE`]).
    pub keys: Vec<(Vec<u8>, u8)>,
    /// `allchannels` / `&*`.
    pub all_channels: bool,
    /// Channel patterns.
    pub channels: Vec<Vec<u8>>,
}

/// Whether a selector allows a request, and if not, why (Redis's ACL_DENIED_* order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    /// Allowed.
    Ok,
    /// The command (or subcommand) is not allowed.
    Command,
    /// The key at this argument position is not allowed.
    Key(usize),
    /// The channel at this argument position is not allowed.
    Channel(usize),
}

impl Verdict {
    fn rank(self) -> (u8, usize) {
        match self {
            Verdict::Ok => (0, 0),
            Verdict::Command => (1, 0),
            Verdict::Key(position) => (2, position),
            Verdict::Channel(position) => (4, position),
        }
    }
}

impl Selector {
    /// A selector allowing nothing (channels as `acl-pubsub-default` says).
    pub fn new(all_channels: bool) -> Self {
        Self {
            bits: vec![0; CATALOGUE.commands.len().div_ceil(64)],
            all_commands: false,
            future: false,
            first_args: Vec::new(),
            all_keys: false,
            keys: Vec::new(),
            all_channels,
            channels: Vec::new(),
        }
    }

    /// True when the bit of `id` is set.
    pub fn bit(&self, id: usize) -> bool {
        self.bits[id / 64] & (1 << (id % 64)) != 0
    }

    fn set_bit(&mut self, id: usize, value: bool) {
        if value {
            self.bits[id / 64] |= 1 << (id % 64);
        } else {
            self.bits[id / 64] &= !(1 << (id % 64));
            self.all_commands = false;
        }
    }

    /// Allows or denies a command, and a container's subcommands with it.
    fn change(&mut self, id: usize, allow: bool) {
        self.set_bit(id, allow);
        self.first_args.retain(|(known, _)| *known != id);
        for &sub in &CATALOGUE.commands[id].subcommands {
            self.set_bit(sub, allow);
        }
    }

    fn set_category(&mut self, category: usize, allow: bool) {
        for &id in &CATALOGUE.by_category[category] {
            self.change(id, allow);
        }
    }

    fn set_all(&mut self, allow: bool) {
        self.bits.fill(if allow { u64::MAX } else { 0 });
        self.all_commands = allow;
        self.future = allow;
        self.first_args.clear();
    }

    /// Applies one selector rule (Redis's ACLSetSelector).
    pub fn apply(&mut self, op: &[u8]) -> Result<(), RuleError> {
        let is = |word: &str| op.eq_ignore_ascii_case(word.as_bytes());
        if is("allkeys") || is("~*") {
            self.all_keys = true;
            self.keys.clear();
        } else if is("resetkeys") {
            self.all_keys = false;
            self.keys.clear();
        } else if is("allchannels") || is("&*") {
            self.all_channels = true;
            self.channels.clear();
        } else if is("resetchannels") {
            self.all_channels = false;
            self.channels.clear();
        } else if is("allcommands") || is("+@all") {
            self.set_all(true);
        } else if is("nocommands") || is("-@all") {
            self.set_all(false);
        } else if op[0] == b'~' || op[0] == b'%' {
            if self.all_keys {
                return Err(RuleError::KeyAfterAll);
            }
            let (flags, pattern) = if op[0] == b'%' {
                let mut flags = 0;
                let mut offset = 1;
                loop {
                    match op.get(offset).map(u8::to_ascii_uppercase) {
                        Some(b'R') if flags & READ == 0 => flags |= READ,
                        Some(b'W') if flags & WRITE == 0 => flags |= WRITE,
                        Some(b'~') => {
                            offset += 1;
                            break;
                        }
                        _ => return Err(RuleError::Syntax),
                    }
                    offset += 1;
                }
                (flags, &op[offset..])
            } else {
                (READ | WRITE, &op[1..])
            };
            if has_spaces(pattern) {
                return Err(RuleError::Syntax);
            }
            match self.keys.iter_mut().find(|(known, _)| known == pattern) {
                Some((_, known_flags)) => *known_flags |= flags,
                None => self.keys.push((pattern.to_vec(), flags)),
            }
            self.all_keys = false;
        } else if op[0] == b'&' {
            if self.all_channels {
                return Err(RuleError::ChannelAfterAll);
            }
            let pattern = &op[1..];
            if has_spaces(pattern) {
                return Err(RuleError::Syntax);
            }
            if !self.channels.iter().any(|known| known == pattern) {
                self.channels.push(pattern.to_vec());
            }
        } else if op[0] == b'+' && op.get(1) != Some(&b'@') {
            let name = &op[1..];
            match name.iter().rposition(|&byte| byte == b'|') {
                None => {
                    let id = CATALOGUE.lookup(name).ok_or(RuleError::UnknownCommand)?;
                    self.change(id, true);
                }
                Some(bar) => {
                    let id = CATALOGUE
                        .lookup(&name[..bar])
                        .ok_or(RuleError::UnknownCommand)?;
                    let command = &CATALOGUE.commands[id];
                    if command.parent.is_some() {
                        return Err(RuleError::FirstArgOfSubcommand);
                    }
                    let sub = &name[bar + 1..];
                    if sub.is_empty() {
                        return Err(RuleError::Syntax);
                    }
                    if command.subcommands.is_empty() {
                        let sub = String::from_utf8_lossy(sub).into_owned();
                        match self.first_args.iter_mut().find(|(known, _)| *known == id) {
                            Some((_, args)) => {
                                if !args.iter().any(|known| known.eq_ignore_ascii_case(&sub)) {
                                    args.push(sub);
                                }
                            }
                            None => self.first_args.push((id, vec![sub])),
                        }
                    } else {
                        let sub_id = CATALOGUE
                            .subcommand(id, sub)
                            .ok_or(RuleError::UnknownCommand)?;
                        self.change(sub_id, true);
                    }
                }
            }
        } else if op[0] == b'-' && op.get(1) != Some(&b'@') {
            let id = CATALOGUE
                .lookup(&op[1..])
                .ok_or(RuleError::UnknownCommand)?;
            self.change(id, false);
        } else if (op[0] == b'+' || op[0] == b'-') && op.get(1) == Some(&b'@') {
            let (position, _) = Catalogue::category(&op[2..]).ok_or(RuleError::UnknownCommand)?;
            self.set_category(position, op[0] == b'+');
        } else {
            return Err(RuleError::Syntax);
        }
        Ok(())
    }

    /// Whether this selector allows the request `args` of command `index` running as `id`.
    pub fn check(&self, index: usize, id: usize, args: &[&[u8]]) -> Verdict {
        let spec = &COMMANDS[index];
        if !self.all_commands && !spec.has(CommandFlags::NO_AUTH) && !self.bit(id) {
            let allowed = args.len() >= 2
                && self
                    .first_args
                    .iter()
                    .find(|(known, _)| *known == id)
                    .is_some_and(|(_, first)| {
                        let position = if CATALOGUE.commands[id].parent.is_some() {
                            2
                        } else {
                            1
                        };
                        args.get(position).is_some_and(|arg| {
                            first
                                .iter()
                                .any(|known| known.as_bytes().eq_ignore_ascii_case(arg))
                        })
                    });
            if !allowed {
                return Verdict::Command;
            }
        }
        let entry = &CATALOGUE.commands[id];
        if !self.all_keys && entry.keys != AclKeys::None {
            let access = &entry.key_access;
            let check = |nth: usize, position: usize, count: usize| -> Option<Verdict> {
                let key = args.get(position)?;
                let needed = key_access(spec.name, access, nth, count, args);
                let allowed = self.keys.iter().any(|(pattern, flags)| {
                    flags & needed == needed && ember_store::glob::glob_match(pattern, key)
                });
                (!allowed).then_some(Verdict::Key(position))
            };
            let finder = match entry.keys {
                AclKeys::Script => Some(crate::commands::key_finders::script_keys as fn(_) -> _),
                _ => spec.key_finder,
            };
            match finder {
                Some(finder) => {
                    let positions = finder(args);
                    let count = positions.len();
                    for (nth, position) in positions.into_iter().enumerate() {
                        if let Some(verdict) = check(nth, position, count) {
                            return verdict;
                        }
                    }
                }
                None => {
                    let count = spec.keys.positions(args.len()).count();
                    for (nth, position) in spec.keys.positions(args.len()).enumerate() {
                        if let Some(verdict) = check(nth, position, count) {
                            return verdict;
                        }
                    }
                }
            }
        }
        if !self.all_channels {
            if let Some((first, pattern)) = channel_args(spec.name) {
                let last = if spec.name.ends_with("publish") {
                    2
                } else {
                    args.len()
                };
                let last = last.min(args.len());
                for (position, channel) in args.iter().enumerate().take(last).skip(first) {
                    let allowed = self.channels.iter().any(|known| {
                        if pattern {
                            known == channel
                        } else {
                            ember_store::glob::glob_match(known, channel)
                        }
                    });
                    if !allowed {
                        return Verdict::Channel(position);
                    }
                }
            }
        }
        Verdict::Ok
    }

    /// True when the selector may read every key (`~*`, `allkeys` or `%R~*`).
    pub fn reads_all_keys(&self) -> bool {
        self.all_keys
            || self
                .keys
                .iter()
                .any(|(pattern, flags)| flags & READ != 0 && pattern == b"*")
    }

    /// The command rules, as Redis's ACLDescribeSelectorCommandRules: `+@all` or `-@all`, the
    /// categories that best fit, then single commands and first arguments.
    pub fn describe_commands(&self) -> String {
        let mut rules = String::new();
        let additive = !self.future;
        let mut fake = Selector::new(false);
        if additive {
            rules.push_str("-@all ");
        } else {
            rules.push_str("+@all ");
            fake.set_all(true);
        }
        let mut temp = self.clone();
        let mut applied = vec![false; CATEGORY_NAMES.len()];
        loop {
            let mut best = None;
            let (mut min_diff, mut max_same) = (usize::MAX, 0);
            for (position, ids) in CATALOGUE.by_category.iter().enumerate() {
                if applied[position] {
                    continue;
                }
                let on = ids.iter().filter(|&&id| temp.bit(id)).count();
                let off = ids.len() - on;
                let (diff, same) = if additive { (off, on) } else { (on, off) };
                if same > diff && (diff < min_diff || (diff == min_diff && same > max_same)) {
                    best = Some(position);
                    min_diff = diff;
                    max_same = same;
                }
            }
            let Some(best) = best else {
                break;
            };
            let name = CATEGORY_NAMES[best].1;
            fake.set_category(best, additive);
            temp.set_category(best, !additive);
            rules.push_str(if additive { "+@" } else { "-@" });
            rules.push_str(name);
            rules.push(' ');
            applied[best] = true;
        }
        let emit = |id: usize, rules: &mut String, fake: &mut Selector| {
            let user_bit = self.bit(id);
            if user_bit != fake.bit(id) {
                rules.push(if user_bit { '+' } else { '-' });
                rules.push_str(&CATALOGUE.commands[id].fullname);
                rules.push(' ');
                fake.change(id, user_bit);
            }
        };
        for index in 0..COMMANDS.len() {
            emit(index, &mut rules, &mut fake);
            for &sub in &CATALOGUE.commands[index].subcommands {
                emit(sub, &mut rules, &mut fake);
            }
            if !self.bit(index) {
                if let Some((_, args)) = self.first_args.iter().find(|(id, _)| *id == index) {
                    for arg in args {
                        rules.push('+');
                        rules.push_str(&CATALOGUE.commands[index].fullname);
                        rules.push('|');
                        rules.push_str(arg);
                        rules.push(' ');
                    }
                }
            }
        }
        rules.pop();
        rules
    }

    /// Key patterns as GETUSER shows them (`~*`, or `%R~a ~b`).
    pub fn describe_keys(&self) -> String {
        if self.all_keys {
            return "~*".to_owned();
        }
        let patterns: Vec<String> = self.keys.iter().map(describe_pattern).collect();
        patterns.join(" ")
    }

    /// Channel patterns as GETUSER shows them (`&*`, or `&a &b`).
    pub fn describe_channels(&self) -> String {
        if self.all_channels {
            return "&*".to_owned();
        }
        let patterns: Vec<String> = self
            .channels
            .iter()
            .map(|channel| format!("&{}", String::from_utf8_lossy(channel)))
            .collect();
        patterns.join(" ")
    }

    /// The whole selector as ACL LIST writes it (Redis's ACLDescribeSelector).
    pub fn describe(&self) -> String {
        let mut out = String::new();
        if self.all_keys {
            out.push_str("~* ");
        } else {
            for pattern in &self.keys {
                out.push_str(&describe_pattern(pattern));
                out.push(' ');
            }
        }
        if self.all_channels {
            out.push_str("&* ");
        } else {
            out.push_str("resetchannels ");
            for channel in &self.channels {
                out.push('&');
                out.push_str(&String::from_utf8_lossy(channel));
                out.push(' ');
            }
        }
        out.push_str(&self.describe_commands());
        out
    }
}

fn describe_pattern((pattern, flags): &(Vec<u8>, u8)) -> String {
    let prefix = match *flags {
        READ => "%R~",
        WRITE => "%W~",
        _ => "~",
    };
    format!("{prefix}{}", String::from_utf8_lossy(pattern))
}

/// The access the `nth` of `count` keys of a request needs. Redis's key specs are matched to
/// Ember's key positions in order; when a command names fewer keys than it has specs, the last
/// key takes the last spec (SORT's and GEORADIUS's STORE).
fn key_access(name: &str, access: &[u8], nth: usize, count: usize, args: &[&[u8]]) -> u8 {
    if name == "set" {
        // Redis's SET key spec depends on its GET option.
        let get = args
            .iter()
            .skip(3)
            .any(|arg| arg.eq_ignore_ascii_case(b"GET"));
        return if get { READ | WRITE } else { WRITE };
    }
    if name == "bitfield" {
        // And BITFIELD's on whether it writes: only GETs read.
        let writes = args
            .iter()
            .skip(2)
            .any(|arg| arg.eq_ignore_ascii_case(b"SET") || arg.eq_ignore_ascii_case(b"INCRBY"));
        return if writes { READ | WRITE } else { READ };
    }
    if access.is_empty() {
        return 0;
    }
    let spec = if nth > 0 && nth + 1 == count && access.len() > 2 {
        access.len() - 1
    } else {
        nth.min(access.len() - 1)
    };
    access[spec]
}

/// For the commands that name channels: the first channel argument and whether the channels
/// are patterns (matched literally against the user's patterns).
fn channel_args(name: &str) -> Option<(usize, bool)> {
    match name {
        "publish" | "spublish" | "subscribe" | "ssubscribe" => Some((1, false)),
        "psubscribe" => Some((1, true)),
        _ => None,
    }
}

/// Redis refuses spaces and NUL in user names and patterns.
pub fn has_spaces(text: &[u8]) -> bool {
    text.iter()
        .any(|&byte| byte == 0 || byte.is_ascii_whitespace() || byte == 0x0b)
}

/// A user: flags, password hashes and selectors (the root first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserState {
    /// `on`.
    pub enabled: bool,
    /// `nopass`.
    pub nopass: bool,
    /// `sanitize-payload` (true) or `skip-sanitize-payload` (false), once either was set.
    pub sanitize: Option<bool>,
    /// SHA-256 hex of each password.
    pub passwords: Vec<String>,
    /// The root selector, then `(...)` selectors.
    pub selectors: Vec<Selector>,
}

impl UserState {
    /// A new user: off, no password, no permission.
    pub fn new(all_channels: bool) -> Self {
        Self {
            enabled: false,
            nopass: false,
            sanitize: None,
            passwords: Vec::new(),
            selectors: vec![Selector::new(all_channels)],
        }
    }

    /// Redis's default user: on, nopass, everything.
    pub fn default_user() -> Self {
        let mut user = Self::new(true);
        user.enabled = true;
        user.nopass = true;
        user.selectors[0].set_all(true);
        user.selectors[0].all_keys = true;
        user
    }

    /// The root selector.
    pub fn root(&self) -> &Selector {
        &self.selectors[0]
    }

    /// Applies one ACL SETUSER rule (Redis's ACLSetUser); `all_channels` is
    /// `acl-pubsub-default`.
    pub fn apply(&mut self, op: &[u8], all_channels: bool) -> Result<(), RuleError> {
        let is = |word: &str| op.eq_ignore_ascii_case(word.as_bytes());
        if op.is_empty() {
            return Ok(());
        }
        if is("on") {
            self.enabled = true;
        } else if is("off") {
            self.enabled = false;
        } else if is("skip-sanitize-payload") {
            self.sanitize = Some(false);
        } else if is("sanitize-payload") {
            self.sanitize = Some(true);
        } else if is("nopass") {
            self.nopass = true;
            self.passwords.clear();
        } else if is("resetpass") {
            self.nopass = false;
            self.passwords.clear();
        } else if op[0] == b'>' || op[0] == b'#' {
            let hash = if op[0] == b'>' {
                super::sha256::hex(&op[1..])
            } else {
                valid_hash(&op[1..])?
            };
            if !self.passwords.contains(&hash) {
                self.passwords.push(hash);
            }
            self.nopass = false;
        } else if op[0] == b'<' || op[0] == b'!' {
            let hash = if op[0] == b'<' {
                super::sha256::hex(&op[1..])
            } else {
                valid_hash(&op[1..])?
            };
            let position = self
                .passwords
                .iter()
                .position(|known| *known == hash)
                .ok_or(RuleError::NoSuchPassword)?;
            self.passwords.remove(position);
        } else if op[0] == b'(' && op[op.len() - 1] == b')' {
            let mut selector = Selector::new(all_channels);
            for rule in op[1..op.len() - 1]
                .split(|byte| byte.is_ascii_whitespace())
                .filter(|rule| !rule.is_empty())
            {
                selector.apply(rule)?;
            }
            self.selectors.push(selector);
        } else if is("clearselectors") {
            self.selectors.truncate(1);
        } else if is("reset") {
            self.nopass = false;
            self.passwords.clear();
            let root = &mut self.selectors[0];
            root.all_keys = false;
            root.keys.clear();
            root.all_channels = all_channels;
            root.channels.clear();
            self.enabled = false;
            self.sanitize = Some(true);
            self.selectors.truncate(1);
            self.selectors[0].set_all(false);
        } else {
            self.selectors[0].apply(op)?;
        }
        Ok(())
    }

    /// Whether the user may run the request: the first selector that allows it, or the most
    /// relevant refusal (Redis's order: a channel, then a key, the later argument first).
    pub fn check(&self, index: usize, args: &[&[u8]]) -> Verdict {
        let id = CATALOGUE.request_id(index, args);
        let mut relevant = Verdict::Command;
        for selector in &self.selectors {
            let verdict = selector.check(index, id, args);
            if verdict == Verdict::Ok {
                return Verdict::Ok;
            }
            if verdict.rank() > relevant.rank() {
                relevant = verdict;
            }
        }
        relevant
    }

    /// True when a selector that allows the request may read every key (Redis's
    /// `ACLUserCheckCmdWithUnrestrictedKeyAccess`): SORT's BY and GET options need that.
    pub fn reads_every_key_for(&self, index: usize, args: &[&[u8]]) -> bool {
        let id = CATALOGUE.request_id(index, args);
        self.selectors.iter().any(|selector| {
            selector.reads_all_keys() && selector.check(index, id, args) == Verdict::Ok
        })
    }

    /// True when some selector allows the channel `name` (a PSUBSCRIBE pattern when
    /// `pattern`: matched literally), as Redis decides which subscribers to close.
    pub fn channel_allowed(&self, name: &[u8], pattern: bool) -> bool {
        self.selectors.iter().any(|selector| {
            selector.all_channels
                || selector.channels.iter().any(|known| {
                    if pattern {
                        known == name
                    } else {
                        ember_store::glob::glob_match(known, name)
                    }
                })
        })
    }

    /// True when the user may run everything: the root allows every command, key and channel.
    pub fn unrestricted(&self) -> bool {
        let root = self.root();
        root.all_commands && root.all_keys && root.all_channels
    }

    /// The flags as GETUSER lists them.
    pub fn flags(&self) -> Vec<&'static str> {
        let mut flags = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            flags.push("nopass");
        }
        match self.sanitize {
            Some(false) => flags.push("skip-sanitize-payload"),
            Some(true) => flags.push("sanitize-payload"),
            None => {}
        }
        flags
    }

    /// The user as ACL LIST and the ACL file write it, after `user <name> `.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for flag in self.flags() {
            out.push_str(flag);
            out.push(' ');
        }
        for hash in &self.passwords {
            out.push('#');
            out.push_str(hash);
            out.push(' ');
        }
        out.push_str(&self.selectors[0].describe());
        for selector in &self.selectors[1..] {
            out.push_str(" (");
            out.push_str(&selector.describe());
            out.push(')');
        }
        out
    }
}

fn valid_hash(hash: &[u8]) -> Result<String, RuleError> {
    if hash.len() != 64
        || !hash
            .iter()
            .all(|&b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(RuleError::BadHash);
    }
    Ok(String::from_utf8_lossy(hash).into_owned())
}

/// Joins the arguments of a `(...)` selector given as several arguments, as Redis does;
/// `Err` names the argument whose parenthesis is never closed.
pub fn merge_selectors<'a>(args: &[&'a [u8]]) -> Result<Vec<std::borrow::Cow<'a, [u8]>>, usize> {
    let mut merged = Vec::new();
    let mut open: Option<(usize, Vec<u8>)> = None;
    for (position, arg) in args.iter().enumerate() {
        if let Some((_, selector)) = open.as_mut() {
            selector.push(b' ');
            selector.extend_from_slice(arg);
            if arg.last() == Some(&b')') {
                let (_, selector) = open.take().expect("open");
                merged.push(std::borrow::Cow::Owned(selector));
            }
            continue;
        }
        if arg.first() == Some(&b'(') && arg.last() != Some(&b')') {
            open = Some((position, arg.to_vec()));
            continue;
        }
        merged.push(std::borrow::Cow::Borrowed(*arg));
    }
    match open {
        Some((position, _)) => Err(position),
        None => Ok(merged),
    }
}
