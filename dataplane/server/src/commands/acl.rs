//! ACL users, as far as Redis 7.0's scripting needs them: ACL SETUSER (on/off, passwords,
//! commands by name and by category, key patterns), ACL DELUSER, ACL USERS, ACL WHOAMI, AUTH
//! as a named user, the NOPERM refusal of commands and keys, and `redis.acl_check_cmd`.
//!
//! The `default` user is not stored: it may run everything, and `requirepass` is its password.
//! Users are process-wide (every shard sees a change at once); a connection authenticated as a
//! user names it, and each command looks the user up, so a change applies to its connections
//! at their next command, as in Redis. Not here: selectors, `%R~`/`%W~` key permissions,
//! channel patterns, subcommand rules, ACL LOG/LIST/GETUSER/CAT/SAVE/LOAD.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::{is, CommandResult, CommandSpec, ConnectionCtx, CATEGORY_NAMES, COMMANDS};

/// One user's permissions.
#[derive(Debug, Clone)]
pub struct User {
    enabled: bool,
    nopass: bool,
    passwords: Vec<Vec<u8>>,
    /// Allowed commands, by index in [`COMMANDS`].
    commands: Vec<bool>,
    all_keys: bool,
    key_patterns: Vec<Vec<u8>>,
}

impl User {
    /// A new user: off, no password, no command, no key (Redis's `reset`).
    fn new() -> Self {
        Self {
            enabled: false,
            nopass: false,
            passwords: Vec::new(),
            commands: vec![false; COMMANDS.len()],
            all_keys: false,
            key_patterns: Vec::new(),
        }
    }

    /// Applies one ACL SETUSER rule; `Err` when Redis does not know it.
    fn apply(&mut self, rule: &[u8]) -> Result<(), ()> {
        match rule {
            _ if rule.eq_ignore_ascii_case(b"on") => self.enabled = true,
            _ if rule.eq_ignore_ascii_case(b"off") => self.enabled = false,
            _ if rule.eq_ignore_ascii_case(b"nopass") => {
                self.nopass = true;
                self.passwords.clear();
            }
            _ if rule.eq_ignore_ascii_case(b"resetpass") => {
                self.nopass = false;
                self.passwords.clear();
            }
            _ if rule.eq_ignore_ascii_case(b"allkeys") => self.all_keys = true,
            _ if rule.eq_ignore_ascii_case(b"resetkeys") => {
                self.all_keys = false;
                self.key_patterns.clear();
            }
            _ if rule.eq_ignore_ascii_case(b"allcommands") => self.commands.fill(true),
            _ if rule.eq_ignore_ascii_case(b"nocommands") => self.commands.fill(false),
            _ if rule.eq_ignore_ascii_case(b"reset") => *self = Self::new(),
            [b'>', password @ ..] => {
                self.nopass = false;
                if !self.passwords.iter().any(|known| known == password) {
                    self.passwords.push(password.to_vec());
                }
            }
            [b'<', password @ ..] => self.passwords.retain(|known| known != password),
            [b'~', pattern @ ..] => {
                if pattern == b"*" {
                    self.all_keys = true;
                } else if !self.all_keys {
                    self.key_patterns.push(pattern.to_vec());
                }
            }
            [sign @ (b'+' | b'-'), b'@', category @ ..] => {
                let allow = *sign == b'+';
                if category.eq_ignore_ascii_case(b"all") {
                    self.commands.fill(allow);
                    return Ok(());
                }
                let (flag, _) = CATEGORY_NAMES
                    .iter()
                    .find(|(_, name)| category.eq_ignore_ascii_case(name.as_bytes()))
                    .ok_or(())?;
                for (index, spec) in COMMANDS.iter().enumerate() {
                    if spec.categories.contains(*flag) {
                        self.commands[index] = allow;
                    }
                }
            }
            [sign @ (b'+' | b'-'), name @ ..] => {
                let index = super::lookup(name).ok_or(())?;
                self.commands[index] = *sign == b'+';
            }
            _ => return Err(()),
        }
        Ok(())
    }

    /// Whether the user may run `spec` (at `index`) with `args`.
    fn check(&self, index: usize, spec: &CommandSpec, args: &[&[u8]]) -> Result<(), Denied> {
        if !self.commands[index] {
            return Err(Denied::Command);
        }
        if self.all_keys {
            return Ok(());
        }
        for position in spec.key_positions(args) {
            let Some(key) = args.get(position) else {
                continue;
            };
            if !self
                .key_patterns
                .iter()
                .any(|pattern| ember_store::glob::glob_match(pattern, key))
            {
                return Err(Denied::Key);
            }
        }
        Ok(())
    }
}

/// Redis's commands with subcommands.
const CONTAINERS: &[&str] = &[
    "acl", "client", "cluster", "command", "config", "function", "latency", "memory", "module",
    "object", "pubsub", "script", "slowlog", "xgroup", "xinfo",
];

/// Why a user may not run a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// The command is not allowed.
    Command,
    /// One of its keys is not allowed.
    Key,
}

impl Denied {
    /// The refusal of a command sent by the client (a container command is named with its
    /// subcommand, `acl|whoami`, as Redis names it).
    pub fn message(self, spec: &CommandSpec, args: &[&[u8]]) -> String {
        match self {
            Denied::Command => {
                let name = match args.get(1) {
                    Some(sub) if CONTAINERS.contains(&spec.name) => format!(
                        "{}|{}",
                        spec.name,
                        String::from_utf8_lossy(sub).to_ascii_lowercase()
                    ),
                    _ => spec.name.to_owned(),
                };
                format!("NOPERM this user has no permissions to run the '{name}' command")
            }
            Denied::Key => {
                "NOPERM this user has no permissions to access one of the keys used as arguments"
                    .to_owned()
            }
        }
    }

    /// The refusal of a command a script calls.
    pub fn script_message(self) -> &'static str {
        match self {
            Denied::Command => "ERR The user executing the script can't run this command or subcommand",
            Denied::Key => "ERR The user executing the script can't access at least one of the keys mentioned in the command arguments",
        }
    }
}

/// The users other than `default`, shared by every shard.
#[derive(Debug, Default)]
pub struct Users {
    users: Mutex<HashMap<Vec<u8>, Arc<User>>>,
}

impl Users {
    fn get(&self, name: &[u8]) -> Option<Arc<User>> {
        self.users
            .lock()
            .expect("the ACL table is never poisoned")
            .get(name)
            .cloned()
    }

    /// Checks `user` (a connection's user other than `default`) may run `spec` with `args`; a
    /// deleted user may run nothing.
    ///
    /// # Errors
    /// Why the user may not.
    pub fn check(
        &self,
        user: &[u8],
        index: usize,
        spec: &CommandSpec,
        args: &[&[u8]],
    ) -> Result<(), Denied> {
        match self.get(user) {
            Some(found) => found.check(index, spec, args),
            None => Err(Denied::Command),
        }
    }

    /// True when `name` exists, is on, and `password` is one of its passwords (or it has
    /// `nopass`).
    pub fn authenticates(&self, name: &[u8], password: &[u8]) -> bool {
        self.get(name).is_some_and(|user| {
            user.enabled && (user.nopass || user.passwords.iter().any(|known| known == password))
        })
    }
}

/// ACL SETUSER | DELUSER | USERS | WHOAMI
pub fn acl(ctx: &mut ConnectionCtx<'_>, args: &[&[u8]]) -> CommandResult {
    let users = &ctx.shard.shared.acl;
    let sub = args[1];
    if is(sub, "SETUSER") && args.len() >= 3 {
        let name = args[2];
        if is(name, "default") {
            return Err("ERR Ember does not change the default user's permissions".into());
        }
        let mut user = users
            .get(name)
            .map_or_else(User::new, |user| (*user).clone());
        for rule in &args[3..] {
            if user.apply(rule).is_err() {
                return Err(format!(
                    "ERR Error in ACL SETUSER modifier '{}': Syntax error",
                    String::from_utf8_lossy(rule)
                )
                .into());
            }
        }
        users
            .users
            .lock()
            .expect("the ACL table is never poisoned")
            .insert(name.to_vec(), Arc::new(user));
        ctx.out.ok();
        return Ok(());
    }
    if is(sub, "DELUSER") && args.len() >= 3 {
        let mut table = users.users.lock().expect("the ACL table is never poisoned");
        if args[2..].iter().any(|name| is(name, "default")) {
            return Err("ERR The 'default' user cannot be removed".into());
        }
        let removed = args[2..]
            .iter()
            .filter(|name| table.remove(**name).is_some())
            .count();
        drop(table);
        ctx.out.integer(removed as i64);
        return Ok(());
    }
    if is(sub, "USERS") && args.len() == 2 {
        let mut names: Vec<Vec<u8>> = users
            .users
            .lock()
            .expect("the ACL table is never poisoned")
            .keys()
            .cloned()
            .collect();
        names.push(b"default".to_vec());
        names.sort();
        ctx.out.array_len(names.len());
        for name in &names {
            ctx.out.bulk(name);
        }
        return Ok(());
    }
    if is(sub, "WHOAMI") && args.len() == 2 {
        let name = ctx.client.user.clone();
        ctx.out.bulk(name.as_deref().unwrap_or(b"default"));
        return Ok(());
    }
    Err(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try ACL HELP.",
        String::from_utf8_lossy(sub)
    )
    .into())
}
