//! ACL users as Redis 7.0 has them: ACL SETUSER (every rule, selectors included), GETUSER,
//! DELUSER, USERS, LIST, CAT, GENPASS, LOG, DRYRUN, WHOAMI, SAVE and LOAD (the `aclfile`), AUTH
//! and HELLO AUTH as a named user, `requirepass` as the default user's password, and the
//! permission check every command takes (commands and subcommands, keys with read/write access,
//! Pub/Sub channels), with Redis's NOPERM errors and ACL LOG entries.
//!
//! Users are process-wide: every shard sees a change at once. A connection holds its user (the
//! `default` user when it holds none); a change applies at its next command, and a deleted
//! user's connections are closed at theirs. The check costs one relaxed load for a user who
//! may run everything; a restricted user takes a read lock and walks a precomputed bitmap, with
//! no allocation unless the command's keys move (a key finder).

mod rules;
mod sha256;
mod tables;

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

pub use rules::CATALOGUE;
use rules::{RuleError, UserState, Verdict};

use super::{is, CommandError, CommandResult, ConnectionCtx, CATEGORY_NAMES, COMMANDS};
use crate::client::Client;
use crate::shard::Shard;

/// A user, shared by the connections authenticated as it.
#[derive(Debug)]
pub struct AclUser {
    /// The user name.
    pub name: Vec<u8>,
    state: RwLock<Arc<UserState>>,
    /// Changes with every change of the user, unique across users and time, so a shard's
    /// snapshot ([`AclUser::with_state`]) knows when it is stale.
    version: AtomicU64,
    /// True while the user may run everything (the check's fast path).
    unrestricted: AtomicBool,
    /// Set when ACL DELUSER or ACL LOAD removed the user: its connections close.
    deleted: AtomicBool,
}

/// Source of [`AclUser::version`]s.
static VERSIONS: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// Each shard thread's snapshots of the users it checks, by (user, version): the check reads
    /// them without touching the user's lock, whose cache line every shard would share.
    static SNAPSHOTS: std::cell::RefCell<Vec<(*const AclUser, u64, Arc<UserState>)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Snapshots one thread keeps before it starts over.
const SNAPSHOTS_MAX: usize = 64;

impl AclUser {
    fn new(name: &[u8], state: UserState) -> Self {
        let unrestricted = state.unrestricted();
        Self {
            name: name.to_vec(),
            state: RwLock::new(Arc::new(state)),
            version: AtomicU64::new(VERSIONS.fetch_add(1, Ordering::Relaxed)),
            unrestricted: AtomicBool::new(unrestricted),
            deleted: AtomicBool::new(false),
        }
    }

    /// A user that may run everything and is in no list, for the append-only file's replay:
    /// Redis's loading client checks no ACL either (the log holds what users were allowed).
    pub fn internal() -> Arc<Self> {
        Arc::new(Self::new(b"default", UserState::default_user()))
    }

    fn read(&self) -> Arc<UserState> {
        self.state
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Runs `f` on this thread's snapshot of the user, taken again when the user changed.
    fn with_state<R>(&self, f: impl FnOnce(&UserState) -> R) -> R {
        let version = self.version.load(Ordering::Acquire);
        let me = self as *const AclUser;
        SNAPSHOTS.with(|snapshots| {
            let mut snapshots = snapshots.borrow_mut();
            let position = match snapshots.iter().position(|(user, _, _)| *user == me) {
                Some(position) => {
                    if snapshots[position].1 != version {
                        snapshots[position] = (me, version, self.read());
                    }
                    position
                }
                None => {
                    if snapshots.len() >= SNAPSHOTS_MAX {
                        snapshots.clear();
                    }
                    snapshots.push((me, version, self.read()));
                    snapshots.len() - 1
                }
            };
            f(&snapshots[position].2)
        })
    }

    fn replace(&self, state: UserState) {
        let unrestricted = state.unrestricted();
        *self
            .state
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(state);
        self.version
            .store(VERSIONS.fetch_add(1, Ordering::Relaxed), Ordering::Release);
        self.unrestricted.store(unrestricted, Ordering::Release);
    }

    fn delete(&self) {
        self.deleted.store(true, Ordering::Release);
        self.unrestricted.store(false, Ordering::Release);
    }

    /// True when ACL DELUSER or ACL LOAD removed the user.
    pub fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::Acquire)
    }

    /// True when the user may read every key (one-sided reads of the message transports are
    /// refused to a user who may not): the root or a selector with `~*`, `allkeys` or `%R~*`
    /// that also allows GET.
    pub fn reads_all_keys(&self) -> bool {
        if self.unrestricted.load(Ordering::Acquire) {
            return true;
        }
        let get = super::lookup(b"get").expect("GET is in the table");
        self.read().selectors.iter().any(|selector| {
            selector.reads_all_keys() && selector.check(get, get, &[b"get", b""]) == Verdict::Ok
        })
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// The command is not allowed.
    Command,
    /// The key at this argument position is not allowed.
    Key(usize),
    /// The channel at this argument position is not allowed.
    Channel(usize),
    /// The user was deleted: the connection closes.
    Deleted,
    /// An option that reads keys named by the data (SORT's BY and GET) while the user may not
    /// read every key: the command's own error, not logged.
    Option(&'static str),
}

impl Denied {
    /// The refusal of a command sent by a client (Redis 7.0's NOPERM errors).
    pub fn message(self, index: usize, args: &[&[u8]]) -> String {
        match self {
            Denied::Command | Denied::Deleted => format!(
                "NOPERM this user has no permissions to run the '{}' command",
                fullname(index, args)
            ),
            Denied::Key(_) => {
                "NOPERM this user has no permissions to access one of the keys used as arguments"
                    .to_owned()
            }
            Denied::Channel(_) => {
                "NOPERM this user has no permissions to access one of the channels used as arguments"
                    .to_owned()
            }
            Denied::Option(message) => message.to_owned(),
        }
    }

    /// The refusal of a command a script calls.
    pub fn script_message(self) -> &'static str {
        match self {
            Denied::Command | Denied::Deleted => {
                "ERR The user executing the script can't run this command or subcommand"
            }
            Denied::Key(_) => "ERR The user executing the script can't access at least one of the keys mentioned in the command arguments",
            Denied::Channel(_) => "ERR The user executing the script can't publish to the channel mentioned in the command",
            Denied::Option(message) => message,
        }
    }
}

/// True when Redis 7.0's container `container` has the subcommand `sub` (any case).
pub fn has_subcommand(container: &str, sub: &[u8]) -> bool {
    tables::SUBCOMMANDS.iter().any(|(parent, name, _, _)| {
        *parent == container && name.as_bytes().eq_ignore_ascii_case(sub)
    })
}

/// The name Redis gives a request's command: `client|kill` for a container's subcommand.
fn fullname(index: usize, args: &[&[u8]]) -> String {
    let id = CATALOGUE.request_id(index, args);
    if id != index || CATALOGUE.commands[index].subcommands.is_empty() {
        return CATALOGUE.commands[id].fullname.clone();
    }
    match args.get(1) {
        Some(sub) => format!(
            "{}|{}",
            COMMANDS[index].name,
            String::from_utf8_lossy(sub).to_ascii_lowercase()
        ),
        None => COMMANDS[index].name.to_owned(),
    }
}

/// Where a refused command came from, for ACL LOG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogContext {
    /// A client's command.
    Toplevel,
    /// A command inside MULTI (queued or run by EXEC).
    Multi,
    /// A script's redis.call.
    Lua,
}

impl LogContext {
    /// The context of a command `client` sends.
    pub fn of(client: &Client) -> Self {
        if client.script {
            LogContext::Lua
        } else if client.multi.is_some() || client.hold.is_some() {
            LogContext::Multi
        } else {
            LogContext::Toplevel
        }
    }

    fn name(self) -> &'static str {
        match self {
            LogContext::Toplevel => "toplevel",
            LogContext::Multi => "multi",
            LogContext::Lua => "lua",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    Command,
    Key,
    Channel,
    Auth,
}

impl Reason {
    fn name(self) -> &'static str {
        match self {
            Reason::Command => "command",
            Reason::Key => "key",
            Reason::Channel => "channel",
            Reason::Auth => "auth",
        }
    }
}

/// One ACL LOG entry.
#[derive(Debug, Clone)]
struct LogEntry {
    count: u64,
    reason: Reason,
    context: LogContext,
    object: Vec<u8>,
    username: Vec<u8>,
    created_ms: u64,
    client_info: String,
}

/// Entries within this many milliseconds of each other, alike otherwise, are one entry.
const LOG_GROUPING_MS: u64 = 60_000;

/// The users, the default user and the ACL log, shared by every shard.
#[derive(Debug)]
pub struct Users {
    default: Arc<AclUser>,
    users: Mutex<BTreeMap<Vec<u8>, Arc<AclUser>>>,
    log: Mutex<VecDeque<LogEntry>>,
    /// The `requirepass` last applied to the default user.
    requirepass: Mutex<Option<String>>,
}

impl Default for Users {
    fn default() -> Self {
        let default = Arc::new(AclUser::new(b"default", UserState::default_user()));
        let mut users = BTreeMap::new();
        users.insert(b"default".to_vec(), default.clone());
        Self {
            default,
            users: Mutex::new(users),
            log: Mutex::new(VecDeque::new()),
            requirepass: Mutex::new(None),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Users {
    /// The users at start-up: the default user, then the `aclfile` when one is configured.
    ///
    /// # Errors
    /// Why the ACL file does not load (the server then does not start, as Redis).
    pub fn from_config(config: &crate::config::Config) -> Result<Self, String> {
        let users = Self::default();
        users.sync_requirepass(config);
        let path = config.value("aclfile").to_owned();
        if !path.is_empty() {
            users.load_file(&path, config)?;
        }
        Ok(users)
    }

    /// The `default` user.
    pub fn default_user(&self) -> &Arc<AclUser> {
        &self.default
    }

    /// True when a user named `name` exists (CLIENT KILL USER).
    pub fn user_exists(&self, name: &[u8]) -> bool {
        lock(&self.users).contains_key(name)
    }

    fn get(&self, name: &[u8]) -> Option<Arc<AclUser>> {
        lock(&self.users).get(name).cloned()
    }

    /// Applies `requirepass` to the default user when it changed since last applied (Redis
    /// sets the default user's password when the parameter is set).
    pub fn sync_requirepass(&self, config: &crate::config::Config) {
        let mut applied = lock(&self.requirepass);
        if applied.as_deref() == Some(config.requirepass.as_str()) {
            return;
        }
        *applied = Some(config.requirepass.clone());
        let mut state = UserState::clone(&self.default.read());
        state.passwords.clear();
        state.nopass = config.requirepass.is_empty();
        if !state.nopass {
            state
                .passwords
                .push(sha256::hex(config.requirepass.as_bytes()));
        }
        self.default.replace(state);
    }

    /// True when an unauthenticated client may read every key: the default user is on, needs
    /// no password, and may GET any key (the message transports serve one-sided READs only
    /// then).
    pub fn open_to_anyone(&self, shard: &Shard) -> bool {
        self.starts_authenticated(shard) && self.default.reads_all_keys()
    }

    /// True when a new connection is authenticated at once: the default user is on and needs
    /// no password.
    pub fn starts_authenticated(&self, shard: &Shard) -> bool {
        self.sync_requirepass(&shard.config.borrow());
        let state = self.default.read();
        state.enabled && state.nopass
    }

    /// Checks `client`'s user may run `args` (command `index`); refusals are logged.
    ///
    /// # Errors
    /// Why the user may not.
    #[inline]
    pub fn check(
        &self,
        shard: &Shard,
        client: &Client,
        index: usize,
        args: &[&[u8]],
    ) -> Result<(), Denied> {
        let user = client.user.as_ref().unwrap_or(&self.default);
        if user.unrestricted.load(Ordering::Relaxed) {
            return Ok(());
        }
        self.check_slow(shard, client, user, index, args)
    }

    #[cold]
    fn check_slow(
        &self,
        shard: &Shard,
        client: &Client,
        user: &AclUser,
        index: usize,
        args: &[&[u8]],
    ) -> Result<(), Denied> {
        if user.is_deleted() {
            return Err(Denied::Deleted);
        }
        let denied = match user.with_state(|state| state.check(index, args)) {
            // A queued command is checked again when EXEC runs it, where Redis's SORT refuses.
            Verdict::Ok if client.multi.is_some() => return Ok(()),
            Verdict::Ok => {
                return match super::sort::option_reading_every_key(index, args) {
                    Some(message)
                        if !user.with_state(|state| state.reads_every_key_for(index, args)) =>
                    {
                        Err(Denied::Option(message))
                    }
                    _ => Ok(()),
                };
            }
            Verdict::Command => Denied::Command,
            Verdict::Key(position) => Denied::Key(position),
            Verdict::Channel(position) => Denied::Channel(position),
        };
        let (reason, object) = match denied {
            Denied::Key(position) => (Reason::Key, args[position].to_vec()),
            Denied::Channel(position) => (Reason::Channel, args[position].to_vec()),
            _ => (Reason::Command, fullname(index, args).into_bytes()),
        };
        self.log(
            shard,
            client,
            reason,
            LogContext::of(client),
            object,
            &user.name,
        );
        Err(denied)
    }

    /// Checks `user` (`None`: default) may run `args` without logging (redis.acl_check_cmd).
    pub fn allows(&self, user: Option<&Arc<AclUser>>, index: usize, args: &[&[u8]]) -> bool {
        let user = user.unwrap_or(&self.default);
        user.unrestricted.load(Ordering::Relaxed)
            || (!user.is_deleted() && user.read().check(index, args) == Verdict::Ok)
    }

    /// The user `name` when `password` authenticates it (on, and `nopass` or a matching
    /// password); a failure is logged with `command` (AUTH or HELLO) as its object.
    pub fn authenticate(
        &self,
        shard: &Shard,
        client: &Client,
        name: &[u8],
        password: &[u8],
        command: &[u8],
    ) -> Option<Arc<AclUser>> {
        self.sync_requirepass(&shard.config.borrow());
        let found = self.get(name).filter(|user| {
            let state = user.read();
            state.enabled && (state.nopass || state.passwords.contains(&sha256::hex(password)))
        });
        if found.is_none() {
            let context = if client.multi.is_some() {
                LogContext::Multi
            } else {
                LogContext::Toplevel
            };
            self.log(shard, client, Reason::Auth, context, command.to_vec(), name);
        }
        found
    }

    /// True when the default user has no password (AUTH with one argument is then refused).
    pub fn default_nopass(&self, shard: &Shard) -> bool {
        self.sync_requirepass(&shard.config.borrow());
        self.default.read().nopass
    }

    fn log(
        &self,
        shard: &Shard,
        client: &Client,
        reason: Reason,
        context: LogContext,
        object: Vec<u8>,
        username: &[u8],
    ) {
        let now = crate::stats::unix_time_ms();
        let client_info = client.handle.info_line();
        let max_len =
            usize::try_from(shard.config.borrow().integer("acllog-max-len")).unwrap_or_default();
        let mut log = lock(&self.log);
        let matching = log.iter().take(10).position(|entry| {
            entry.reason == reason
                && entry.context == context
                && entry.created_ms.abs_diff(now) <= LOG_GROUPING_MS
                && entry.object == object
                && entry.username == username
        });
        if let Some(position) = matching {
            let mut entry = log.remove(position).expect("found");
            entry.count += 1;
            entry.created_ms = now;
            entry.client_info = client_info;
            log.push_front(entry);
            return;
        }
        log.push_front(LogEntry {
            count: 1,
            reason,
            context,
            object,
            username: username.to_vec(),
            created_ms: now,
            client_info,
        });
        log.truncate(max_len);
    }

    /// Replaces every user with those of the ACL file at `path` (the default user keeps its
    /// identity and takes the file's rules, or Redis's defaults when the file has none). On an
    /// error nothing changes.
    fn load_file(&self, path: &str, config: &crate::config::Config) -> Result<(), String> {
        let text = std::fs::read_to_string(path).map_err(|error| {
            format!(
                "Error loading ACLs, opening file '{path}': {}",
                io_message(&error)
            )
        })?;
        let all_channels = pubsub_default_all(config);
        let mut loaded: BTreeMap<Vec<u8>, UserState> = BTreeMap::new();
        let mut errors = String::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let words: Vec<&[u8]> = line.split_ascii_whitespace().map(str::as_bytes).collect();
            let number = number + 1;
            if words[0] != b"user" || words.len() < 2 {
                errors.push_str(&format!("{path}:{number} should start with user keyword. "));
                continue;
            }
            let name = words[1];
            if rules::has_spaces(name) {
                errors.push_str(&format!(
                    "{path}:{number}: username '{}' contains invalid characters. ",
                    String::from_utf8_lossy(name)
                ));
                continue;
            }
            if loaded.contains_key(name) {
                errors.push_str(&format!(
                    "WARNING: Duplicate user '{}' found on line {number}. ",
                    String::from_utf8_lossy(name)
                ));
                continue;
            }
            let merged = match rules::merge_selectors(&words[2..]) {
                Ok(merged) => merged,
                Err(position) => {
                    errors.push_str(&format!(
                        "{path}:{number}: Unmatched parenthesis in acl selector starting at '{}'. ",
                        String::from_utf8_lossy(words[2 + position])
                    ));
                    continue;
                }
            };
            let mut state = UserState::new(all_channels);
            for rule in &merged {
                if let Err(error) = state.apply(rule, all_channels) {
                    errors.push_str(&format!("{path}:{number}: {}. ", error.message()));
                    break;
                }
            }
            loaded.insert(name.to_vec(), state);
        }
        if !errors.is_empty() {
            errors.truncate(errors.trim_end().len());
            return Err(errors);
        }
        let mut users = lock(&self.users);
        for (name, user) in std::mem::take(&mut *users) {
            if name != b"default" {
                user.delete();
            }
        }
        self.default.replace(
            loaded
                .remove(b"default".as_slice())
                .unwrap_or_else(UserState::default_user),
        );
        users.insert(b"default".to_vec(), self.default.clone());
        for (name, state) in loaded {
            users.insert(name.clone(), Arc::new(AclUser::new(&name, state)));
        }
        Ok(())
    }

    /// Writes every user to the ACL file at `path`, through a temporary file renamed over it.
    fn save_file(&self, path: &str) -> std::io::Result<()> {
        let mut text = String::new();
        for (name, user) in lock(&self.users).iter() {
            text.push_str("user ");
            text.push_str(&String::from_utf8_lossy(name));
            text.push(' ');
            text.push_str(&user.read().describe());
            text.push('\n');
        }
        let temporary = format!("{path}.tmp-{}", std::process::id());
        std::fs::write(&temporary, text)?;
        std::fs::rename(&temporary, path)
    }
}

fn io_message(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::NotFound => "No such file or directory".to_owned(),
        std::io::ErrorKind::PermissionDenied => "Permission denied".to_owned(),
        _ => error.to_string(),
    }
}

/// `acl-pubsub-default allchannels`: new users and selectors may use every channel.
fn pubsub_default_all(config: &crate::config::Config) -> bool {
    config.value("acl-pubsub-default") == "allchannels"
}

const HELP: &[&str] = &[
    "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CAT [<category>]",
    "    List all commands that belong to <category>, or all command categories",
    "    when no category is specified.",
    "DELUSER <username> [<username> ...]",
    "    Delete a list of users.",
    "DRYRUN <username> <command> [<arg> ...]",
    "    Returns whether the user can execute the given command without executing the command.",
    "GETUSER <username>",
    "    Get the user's details.",
    "GENPASS [<bits>]",
    "    Generate a secure 256-bit user password. The optional `bits` argument can",
    "    be used to specify a different size.",
    "LIST",
    "    Show users details in config file format.",
    "LOAD",
    "    Reload users from the ACL file.",
    "LOG [<count> | RESET]",
    "    Show the ACL log entries.",
    "SAVE",
    "    Save the current config to the ACL file.",
    "SETUSER <username> <attribute> [<attribute> ...]",
    "    Create or modify a user with the specified attributes.",
    "USERS",
    "    List all the registered usernames.",
    "WHOAMI",
    "    Return the current connection username.",
    "HELP",
    "    Print this help.",
];

/// ACL SETUSER | GETUSER | DELUSER | USERS | LIST | CAT | GENPASS | LOG | DRYRUN | WHOAMI |
/// SAVE | LOAD | HELP
pub fn acl(ctx: &mut ConnectionCtx<'_>, args: &[&[u8]]) -> CommandResult {
    let users = &ctx.shard.shared.acl;
    users.sync_requirepass(&ctx.shard.config.borrow());
    let sub = args[1];
    if is(sub, "SETUSER") && args.len() >= 3 {
        return set_user(ctx, args[2], &args[3..]);
    }
    if is(sub, "DELUSER") && args.len() >= 3 {
        if args[2..].iter().any(|name| *name == b"default") {
            return Err("ERR The 'default' user cannot be removed".into());
        }
        let mut table = lock(&users.users);
        let mut removed = 0;
        for name in &args[2..] {
            if let Some(user) = table.remove(*name) {
                user.delete();
                removed += 1;
            }
        }
        drop(table);
        ctx.out.integer(removed);
        return Ok(());
    }
    if is(sub, "GETUSER") && args.len() == 3 {
        match users.get(args[2]) {
            Some(user) => get_user(ctx, &user.read()),
            None => ctx.out.null(),
        }
        return Ok(());
    }
    if (is(sub, "USERS") || is(sub, "LIST")) && args.len() == 2 {
        let table: Vec<(Vec<u8>, Arc<AclUser>)> = lock(&users.users)
            .iter()
            .map(|(name, user)| (name.clone(), user.clone()))
            .collect();
        ctx.out.array_len(table.len());
        for (name, user) in table {
            if is(sub, "USERS") {
                ctx.out.bulk(&name);
            } else {
                let line = format!(
                    "user {} {}",
                    String::from_utf8_lossy(&name),
                    user.read().describe()
                );
                ctx.out.bulk(line.as_bytes());
            }
        }
        return Ok(());
    }
    if is(sub, "WHOAMI") && args.len() == 2 {
        let name = match &ctx.client.user {
            Some(user) => user.name.clone(),
            None => b"default".to_vec(),
        };
        ctx.out.bulk(&name);
        return Ok(());
    }
    if (is(sub, "LOAD") || is(sub, "SAVE"))
        && ctx
            .shard
            .config
            .borrow()
            .value("aclfile")
            .to_owned()
            .is_empty()
    {
        return Err("ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.".into());
    }
    if is(sub, "LOAD") && args.len() == 2 {
        let config = ctx.shard.config.borrow();
        let path = config.value("aclfile").to_owned();
        users
            .load_file(&path, &config)
            .map_err(|error| CommandError::from(format!("ERR {error}")))?;
        drop(config);
        if ctx
            .client
            .user
            .as_ref()
            .is_some_and(|user| user.is_deleted())
        {
            ctx.client.close_after_reply = true;
        }
        ctx.out.ok();
        return Ok(());
    }
    if is(sub, "SAVE") && args.len() == 2 {
        let path = ctx.shard.config.borrow().value("aclfile").to_owned();
        users.save_file(&path).map_err(|_| {
            CommandError::from("ERR There was an error trying to save the ACLs. Please check the server logs for more information")
        })?;
        ctx.out.ok();
        return Ok(());
    }
    if is(sub, "CAT") && args.len() == 2 {
        ctx.out.array_len(CATEGORY_NAMES.len());
        for (_, name) in CATEGORY_NAMES {
            ctx.out.bulk(name.as_bytes());
        }
        return Ok(());
    }
    if is(sub, "CAT") && args.len() == 3 {
        let Some((position, _)) = rules::Catalogue::category(args[2]) else {
            let name = String::from_utf8_lossy(args[2]);
            let name: String = name.chars().take(128).collect();
            return Err(format!("ERR Unknown category '{name}'").into());
        };
        let ids = &CATALOGUE.by_category[position];
        ctx.out.array_len(ids.len());
        for &id in ids {
            ctx.out.bulk(CATALOGUE.commands[id].fullname.as_bytes());
        }
        return Ok(());
    }
    if is(sub, "GENPASS") && (args.len() == 2 || args.len() == 3) {
        let bits = match args.get(2) {
            Some(arg) => {
                ember_resp::parse_i64(arg).ok_or(CommandError::from(super::errors::NOT_INTEGER))?
            }
            None => 256,
        };
        if bits <= 0 || bits > 4096 {
            return Err("ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096".into());
        }
        let chars = (bits as usize).div_ceil(4);
        let password: String = (0..chars)
            .map(|_| char::from(b"0123456789abcdef"[rand::random::<usize>() % 16]))
            .collect();
        ctx.out.bulk(password.as_bytes());
        return Ok(());
    }
    if is(sub, "LOG") && (args.len() == 2 || args.len() == 3) {
        return log_command(ctx, args);
    }
    if is(sub, "DRYRUN") && args.len() >= 4 {
        return dry_run(ctx, args[2], &args[3..]);
    }
    if is(sub, "HELP") && args.len() == 2 {
        ctx.out.array_len(HELP.len());
        for line in HELP {
            ctx.out.simple(line.as_bytes());
        }
        return Ok(());
    }
    let mut fullname = b"acl|".to_vec();
    fullname.extend_from_slice(sub);
    let sub_text = String::from_utf8_lossy(sub);
    match CATALOGUE.lookup(&fullname) {
        None => Err(format!(
            "ERR unknown subcommand '{}'. Try ACL HELP.",
            sub_text.chars().take(128).collect::<String>()
        )
        .into()),
        Some(id) if !super::arity_ok(CATALOGUE.commands[id].arity, args.len()) => Err(format!(
            "ERR wrong number of arguments for '{}' command",
            CATALOGUE.commands[id].fullname
        )
        .into()),
        Some(_) => Err(format!(
            "ERR unknown subcommand or wrong number of arguments for '{sub_text}'. Try ACL HELP."
        )
        .into()),
    }
}

thread_local! {
    /// Users whose channel permissions ACL SETUSER just narrowed, on this shard's thread: the
    /// executor closes their subscribers of what they lost before the reply leaves.
    static REVOKED: std::cell::RefCell<Vec<Arc<AclUser>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Closes, on every shard, the subscribers of users whose channels were just narrowed (Redis's
/// ACLKillPubsubClientsIfNeeded); nothing to do (one thread-local look) after other commands.
pub async fn close_revoked_subscribers(
    shard: &std::rc::Rc<Shard>,
    hold: Option<crate::shard::HoldToken>,
) {
    let users = REVOKED.with(|revoked| std::mem::take(&mut *revoked.borrow_mut()));
    for user in users {
        crate::commands::remote::broadcast(
            shard,
            hold,
            crate::shard::AdminRequest::AclRevoke { user },
        )
        .await;
    }
}

/// This shard's connections subscribed as `user` to a channel or pattern it may no longer use.
pub fn revoked_subscribers(
    shard: &Shard,
    user: &Arc<AclUser>,
) -> Vec<std::rc::Rc<crate::client::ClientHandle>> {
    let is_default = Arc::ptr_eq(user, &shard.shared.acl.default);
    let state = user.read();
    shard.pubsub.revoked(
        |theirs| match theirs {
            Some(theirs) => std::ptr::eq(theirs, Arc::as_ptr(user)),
            None => is_default,
        },
        |name, pattern| state.channel_allowed(name, pattern),
    )
}

fn set_user(ctx: &mut ConnectionCtx<'_>, name: &[u8], rules_given: &[&[u8]]) -> CommandResult {
    let users = &ctx.shard.shared.acl;
    if rules::has_spaces(name) {
        return Err("ERR Usernames can't contain spaces or null characters".into());
    }
    let merged = rules::merge_selectors(rules_given).map_err(|position| {
        CommandError::from(format!(
            "ERR Unmatched parenthesis in acl selector starting at '{}'.",
            String::from_utf8_lossy(rules_given[position])
        ))
    })?;
    let all_channels = pubsub_default_all(&ctx.shard.config.borrow());
    let existing = users.get(name);
    let mut state = match &existing {
        Some(user) => UserState::clone(&user.read()),
        None => UserState::new(all_channels),
    };
    for rule in &merged {
        state
            .apply(rule, all_channels)
            .map_err(|error: RuleError| {
                CommandError::from(format!(
                    "ERR Error in ACL SETUSER modifier '{}': {}",
                    String::from_utf8_lossy(rule),
                    error.message()
                ))
            })?;
    }
    match existing {
        Some(user) => {
            let narrowed = {
                let before = user.read();
                !state.selectors.iter().any(|selector| selector.all_channels)
                    && before.selectors.iter().any(|selector| {
                        selector.all_channels
                            || selector
                                .channels
                                .iter()
                                .any(|channel| !state.channel_allowed(channel, true))
                    })
            };
            user.replace(state);
            if narrowed {
                REVOKED.with(|revoked| revoked.borrow_mut().push(user));
            }
        }
        None => {
            lock(&users.users).insert(name.to_vec(), Arc::new(AclUser::new(name, state)));
        }
    }
    ctx.out.ok();
    Ok(())
}

fn describe_selector(out: &mut ember_resp::ReplySink, selector: &rules::Selector) {
    out.bulk(b"commands");
    out.bulk(selector.describe_commands().as_bytes());
    out.bulk(b"keys");
    out.bulk(selector.describe_keys().as_bytes());
    out.bulk(b"channels");
    out.bulk(selector.describe_channels().as_bytes());
}

fn get_user(ctx: &mut ConnectionCtx<'_>, state: &UserState) {
    let out = &mut *ctx.out;
    out.map_len(6);
    out.bulk(b"flags");
    let flags = state.flags();
    out.set_len(flags.len());
    for flag in flags {
        out.bulk(flag.as_bytes());
    }
    out.bulk(b"passwords");
    out.array_len(state.passwords.len());
    for hash in &state.passwords {
        out.bulk(hash.as_bytes());
    }
    describe_selector(out, state.root());
    out.bulk(b"selectors");
    out.array_len(state.selectors.len() - 1);
    for selector in &state.selectors[1..] {
        out.map_len(3);
        describe_selector(out, selector);
    }
}

fn log_command(ctx: &mut ConnectionCtx<'_>, args: &[&[u8]]) -> CommandResult {
    let users = &ctx.shard.shared.acl;
    let mut count = 10;
    if let Some(arg) = args.get(2) {
        if arg.eq_ignore_ascii_case(b"RESET") {
            lock(&users.log).clear();
            ctx.out.ok();
            return Ok(());
        }
        count = ember_resp::parse_i64(arg)
            .ok_or(CommandError::from(super::errors::NOT_INTEGER))?
            .max(0) as usize;
    }
    let entries: Vec<LogEntry> = lock(&users.log).iter().take(count).cloned().collect();
    let now = crate::stats::unix_time_ms();
    let out = &mut *ctx.out;
    out.array_len(entries.len());
    for entry in entries {
        out.map_len(7);
        out.bulk(b"count");
        out.integer(entry.count as i64);
        out.bulk(b"reason");
        out.bulk(entry.reason.name().as_bytes());
        out.bulk(b"context");
        out.bulk(entry.context.name().as_bytes());
        out.bulk(b"object");
        out.bulk(&entry.object);
        out.bulk(b"username");
        out.bulk(&entry.username);
        out.bulk(b"age-seconds");
        out.double(now.saturating_sub(entry.created_ms) as f64 / 1000.0);
        out.bulk(b"client-info");
        out.bulk(entry.client_info.as_bytes());
    }
    Ok(())
}

fn dry_run(ctx: &mut ConnectionCtx<'_>, name: &[u8], command: &[&[u8]]) -> CommandResult {
    let Some(user) = ctx.shard.shared.acl.get(name) else {
        return Err(format!("ERR User '{}' not found", String::from_utf8_lossy(name)).into());
    };
    let not_found = || {
        CommandError::from(format!(
            "ERR Command '{}' not found",
            String::from_utf8_lossy(command[0])
        ))
    };
    let index = super::lookup(command[0]).ok_or_else(not_found)?;
    let id = CATALOGUE.request_id(index, command);
    if !CATALOGUE.commands[index].subcommands.is_empty() && id == index && command.len() >= 2 {
        return Err(not_found());
    }
    let entry = &CATALOGUE.commands[id];
    if !super::arity_ok(entry.arity, command.len()) {
        return Err(format!(
            "ERR wrong number of arguments for '{}' command",
            entry.fullname
        )
        .into());
    }
    let message = match user.read().check(index, command) {
        Verdict::Ok => {
            ctx.out.ok();
            return Ok(());
        }
        Verdict::Command => format!(
            "This user has no permissions to run the '{}' command",
            entry.fullname
        ),
        Verdict::Key(position) => format!(
            "This user has no permissions to access the '{}' key",
            String::from_utf8_lossy(command[position])
        ),
        Verdict::Channel(position) => format!(
            "This user has no permissions to access the '{}' channel",
            String::from_utf8_lossy(command[position])
        ),
    };
    ctx.out.bulk(message.as_bytes());
    Ok(())
}
