//! MIGRATE host port key|"" destination-db timeout [COPY] [REPLACE] [AUTH password]
//! [AUTH2 username password] [KEYS key...]: moves keys to another server (Redis or Ember) as
//! Redis 7.2 does (`migrateCommand` in its cluster.c): each key's DUMP payload
//! ([`super::dump::payload`]) goes to the target in a RESTORE, after AUTH and SELECT when they
//! are needed, and the keys the target acknowledged are deleted here unless COPY.
//!
//! The keys are held (key holds, [`crate::shard::locks::Gate`]) from the read to the delete, so
//! no other client sees or changes a key half moved, as in Redis where MIGRATE blocks the
//! server; clients of other keys keep being served while the socket waits, since the socket is
//! the runtime's own (non-blocking) stream. Connections to targets are cached per shard for
//! [`CACHED_LINK_IDLE_S`] seconds, as Redis's `migrate_cached_sockets`.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ember_resp::{Protocol, ReplySink};

use super::{
    command, errors, in_categories, is, movable, parse_integer, redacts,
    unknown_subcommand_message, AclCategories, CommandResult, CommandSpec, Connection,
    ConnectionCtx, Handler, KeySpec, F, NO_KEYS, W,
};
use crate::client::{Client, ClientHandle};
use crate::runtime::{self, AsyncReadExt, AsyncWriteExt, TcpStream};
use crate::shard::{HoldToken, PackedArgs, Shard, ShardReply, ShardRequest};

/// This family's commands: MIGRATE, and the cluster commands a Redis without cluster mode
/// has (they live in Redis's cluster.c with MIGRATE) and refuses.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    redacts(in_categories(movable(command("migrate", -6, W, MIGRATE_KEY, "generic", "2.6.0", "Atomically transfers a key from one Redis instance to another.", Handler::Migrate), migrate_keys), AclCategories::DANGEROUS), super::redact::migrate),
    command("cluster", -2, F::empty(), NO_KEYS, "cluster", "3.0.0", "A container for cluster commands.", Connection(cluster)),
    in_categories(command("asking", 1, F::FAST, NO_KEYS, "cluster", "3.0.0", "Sent by cluster clients after an -ASK redirect.", Connection(super::connection::cluster_only)), AclCategories::CONNECTION),
];

/// CLUSTER subcommand ...: Redis's reply without cluster mode, after its container checks.
fn cluster(_ctx: &mut ConnectionCtx<'_>, args: &[&[u8]]) -> CommandResult {
    if !super::acl::has_subcommand("cluster", args[1]) {
        return Err(unknown_subcommand_message("cluster", args[1]).into());
    }
    // Scripts may not call CLUSTER RESET, Redis's one `noscript` subcommand of CLUSTER: the
    // script's call path refuses it before this runs (scripting/run.rs).
    Err("ERR This instance has cluster support disabled".into())
}

/// What COMMAND INFO shows for MIGRATE's keys: the one at 3 (the KEYS form moves them).
const MIGRATE_KEY: KeySpec = KeySpec {
    first: 3,
    last: 3,
    step: 1,
};

/// Seconds a cached connection may stay unused before it is closed (Redis's
/// `MIGRATE_SOCKET_CACHE_TTL`).
pub const CACHED_LINK_IDLE_S: u64 = 10;
/// Cached connections per shard at most (Redis's `MIGRATE_SOCKET_CACHE_ITEMS`): a client naming
/// many targets cannot make a shard keep a socket for each.
const CACHED_LINKS_MAX: usize = 64;
/// Longest reply line read from a target: its replies to AUTH, SELECT and RESTORE are one line
/// each; a longer one is a protocol error, not a reason to buffer without end.
const REPLY_LINE_LEN_MAX: usize = 64 * 1024;
/// Redis's timeout when MIGRATE's is not positive, in milliseconds.
const DEFAULT_TIMEOUT_MS: u64 = 1000;

/// Where MIGRATE's keys are (Redis's `migrateGetKeys`): argument 3, or everything after KEYS
/// when argument 3 is empty; the AUTH and AUTH2 values are skipped, so a password spelled
/// "KEYS" is not the keyword.
pub fn migrate_keys(args: &[&[u8]]) -> Vec<usize> {
    let mut index = 6;
    while index < args.len() {
        let arg = args[index];
        if is(arg, "KEYS") {
            if !args[3].is_empty() {
                return Vec::new(); // MIGRATE itself refuses this.
            }
            return (index + 1..args.len()).collect();
        }
        if is(arg, "AUTH") {
            index += 1;
        } else if is(arg, "AUTH2") {
            index += 2;
        }
        index += 1;
    }
    if args.len() > 3 {
        vec![3]
    } else {
        Vec::new()
    }
}

/// A MIGRATE request, parsed.
struct Request<'a> {
    host: &'a [u8],
    port: &'a [u8],
    db: i64,
    timeout: Duration,
    copy: bool,
    replace: bool,
    username: Option<&'a [u8]>,
    password: Option<&'a [u8]>,
    keys: Vec<&'a [u8]>,
}

/// Parses MIGRATE's arguments in Redis's order of checks: the options, then the timeout, then
/// the database.
fn parse<'a>(args: &[&'a [u8]]) -> Result<Request<'a>, super::CommandError> {
    let (mut copy, mut replace) = (false, false);
    let (mut username, mut password) = (None, None);
    let mut keys = vec![args[3]];
    let mut index = 6;
    while index < args.len() {
        let more = args.len() - 1 - index;
        let arg = args[index];
        if is(arg, "COPY") {
            copy = true;
        } else if is(arg, "REPLACE") {
            replace = true;
        } else if is(arg, "AUTH") {
            if more == 0 {
                return Err(errors::SYNTAX.into());
            }
            password = Some(args[index + 1]);
            index += 1;
        } else if is(arg, "AUTH2") {
            if more < 2 {
                return Err(errors::SYNTAX.into());
            }
            username = Some(args[index + 1]);
            password = Some(args[index + 2]);
            index += 2;
        } else if is(arg, "KEYS") {
            if !args[3].is_empty() {
                return Err("ERR When using MIGRATE KEYS option, the key argument must be set to the empty string".into());
            }
            keys = args[index + 1..].to_vec();
            break;
        } else {
            return Err(errors::SYNTAX.into());
        }
        index += 1;
    }
    let timeout_ms = parse_integer(args[5])?;
    let db = parse_integer(args[4])?;
    let timeout_ms = if timeout_ms <= 0 {
        DEFAULT_TIMEOUT_MS
    } else {
        timeout_ms as u64
    };
    Ok(Request {
        host: args[1],
        port: args[2],
        db,
        timeout: Duration::from_millis(timeout_ms),
        copy,
        replace,
        username,
        password,
        keys,
    })
}

/// One key to move: its name, RESTORE's TTL (0 for none) and its DUMP payload.
struct Moving<'a> {
    key: &'a [u8],
    ttl_ms: u64,
    payload: Vec<u8>,
}

/// Runs MIGRATE for `client` on its shard.
pub async fn run(
    shard: &Rc<Shard>,
    client: &Client,
    args: &[&[u8]],
    now_ms: u64,
    out: &mut ReplySink,
) -> CommandResult {
    let request = parse(args)?;
    let mut by_owner: BTreeMap<usize, Vec<&[u8]>> = BTreeMap::new();
    for &key in &request.keys {
        by_owner.entry(shard.owner_of(key)).or_default().push(key);
    }
    if let Some(owner) = forward_to(shard, client, &by_owner) {
        let request = ShardRequest::Migrate {
            db: client.db,
            protocol: client.protocol,
            client_id: client.handle.id,
            args: PackedArgs::new(args.iter().copied()),
        };
        super::multikey::into_reply(shard.call(owner, request).await).write_to(out);
        return Ok(());
    }
    let owners: BTreeSet<usize> = by_owner.keys().copied().collect();
    // Inside EXEC (or a script holding every shard) the keys are held already.
    let (token, taken) = match client.hold {
        Some(token) => (token, false),
        None => (shard.new_hold_token(), true),
    };
    if taken {
        for (&owner, keys) in &by_owner {
            hold_keys(shard, client, owner, keys, token).await;
        }
    }
    let result = migrate_held(shard, client, &request, &by_owner, token, now_ms, out).await;
    if taken {
        super::multikey::release_all(shard, &owners, token).await;
    }
    result
}

/// The shard to hand the whole MIGRATE to: the one other shard that owns every key, when the
/// client holds nothing (not inside EXEC or a script) and tracks nothing (a forwarded DEL would
/// not know it as the writer, for NOLOOP). Run there, the keys are held, read and deleted
/// without three round trips between shards per key.
fn forward_to(
    shard: &Shard,
    client: &Client,
    by_owner: &BTreeMap<usize, Vec<&[u8]>>,
) -> Option<usize> {
    let mut owners = by_owner.keys();
    let (Some(&owner), None) = (owners.next(), owners.next()) else {
        return None;
    };
    let plain =
        client.hold.is_none() && !client.script && client.handle.tracking.borrow().is_none();
    (owner != shard.index && plain).then_some(owner)
}

/// Runs a MIGRATE that another shard forwarded ([`forward_to`]) as its client would, and
/// returns the reply.
pub async fn run_forwarded(
    shard: &Rc<Shard>,
    db: usize,
    protocol: Protocol,
    client_id: u64,
    args: &PackedArgs,
    now_ms: u64,
) -> ShardReply {
    let mut client = Client::new(
        Rc::new(ClientHandle::detached(client_id, "forwarded")),
        true,
    );
    client.db = db;
    client.protocol = protocol;
    let args = args.slices();
    let mut out = ReplySink::values(protocol);
    if let Err(error) = run(shard, &client, &args, now_ms, &mut out).await {
        out.error(&error.0);
    }
    ShardReply::Reply(out.into_reply())
}

/// Holds `keys` of the client's database on shard `owner` for `token` (ascending shard order,
/// as every holder takes them).
async fn hold_keys(
    shard: &Rc<Shard>,
    client: &Client,
    owner: usize,
    keys: &[&[u8]],
    token: HoldToken,
) {
    if owner == shard.index {
        shard.gate.lock_keys(token, client.db, keys).await;
        return;
    }
    // An EXISTS run with `hold` takes the key holds on its shard before it runs; its count is
    // not needed.
    let mut args = PackedArgs::default();
    args.push(b"EXISTS");
    for key in keys {
        args.push(key);
    }
    let request = super::multikey::execute_request(shard.index, client, args, Some(token), true);
    shard.call(owner, request).await;
}

/// MIGRATE once its keys are held: read them, send them, delete what the target took.
async fn migrate_held(
    shard: &Rc<Shard>,
    client: &Client,
    request: &Request<'_>,
    by_owner: &BTreeMap<usize, Vec<&[u8]>>,
    token: HoldToken,
    now_ms: u64,
    out: &mut ReplySink,
) -> CommandResult {
    let db = client.db;
    let mut entries: HashMap<&[u8], ember_store::Entry> = HashMap::new();
    for (&owner, keys) in by_owner {
        let found = super::multikey::fetch(shard, owner, db, keys, now_ms).await;
        for (&key, entry) in keys.iter().zip(found) {
            if let Some(entry) = entry {
                entries.insert(key, entry);
            }
        }
    }
    // Redis's order: the keys found, in request order (a key named twice moves twice).
    let present: Vec<&[u8]> = request
        .keys
        .iter()
        .copied()
        .filter(|key| entries.contains_key(key))
        .collect();
    if present.is_empty() {
        out.simple(b"NOKEY");
        return Ok(());
    }
    let mut moving = Vec::with_capacity(present.len());
    for key in present {
        let entry = &entries[key];
        let ttl_ms = match entry.expire_at_ms() {
            None => 0,
            // Expired since it was read: Redis skips it.
            Some(at) if at < now_ms => continue,
            Some(at) => (at - now_ms).max(1),
        };
        let payload = super::dump::payload(&entry.value, now_ms)?;
        moving.push(Moving {
            key,
            ttl_ms,
            payload,
        });
    }
    let outcome = transfer(request, &moving).await;
    if !request.copy && !outcome.acknowledged.is_empty() {
        delete(shard, client, &outcome.acknowledged, token, now_ms).await;
    }
    match outcome.reply {
        Ok(()) => {
            out.ok();
            Ok(())
        }
        Err(message) => Err(message.into()),
    }
}

/// Deletes the keys the target acknowledged, on their shards, as DEL does (keyspace events,
/// tracking, blocked clients).
async fn delete(shard: &Rc<Shard>, client: &Client, keys: &[&[u8]], token: HoldToken, now_ms: u64) {
    let mut by_owner: BTreeMap<usize, PackedArgs> = BTreeMap::new();
    for key in keys {
        by_owner
            .entry(shard.owner_of(key))
            .or_insert_with(|| {
                let mut args = PackedArgs::default();
                args.push(b"DEL");
                args
            })
            .push(key);
    }
    let writes = &shard.shared.multi_writes;
    let several = by_owner.len() > 1;
    if several {
        writes.begin();
    }
    for (owner, args) in by_owner {
        if owner == shard.index {
            let mut sink = ReplySink::values(client.protocol);
            let args = args.slices();
            // A DEL of keys this request holds cannot fail.
            let _ = super::multikey::run_local(
                shard,
                super::keys::del,
                client,
                now_ms,
                &args,
                &mut sink,
            );
        } else {
            let request =
                super::multikey::execute_request(shard.index, client, args, Some(token), false);
            shard.call(owner, request).await;
        }
    }
    if several {
        writes.end();
    }
}

/// What the exchange with the target gave: the keys it acknowledged, and MIGRATE's reply (OK,
/// or the error to answer).
struct Outcome<'a> {
    acknowledged: Vec<&'a [u8]>,
    reply: Result<(), String>,
}

/// Which step of the exchange failed, for Redis's IOERR text.
#[derive(Clone, Copy, Debug)]
enum Step {
    Writing,
    Reading,
}

/// A socket failure during an exchange.
#[derive(Debug)]
struct Failure {
    step: Step,
    timed_out: bool,
    /// No RESTORE reply was read: the target may have applied nothing, so one retry on a new
    /// connection is safe.
    nothing_read: bool,
}

/// How one exchange ended: the keys the target acknowledged, the first error line it sent
/// (without its `-`), and the socket's failure, if any.
struct Exchange<'a> {
    acknowledged: Vec<&'a [u8]>,
    target_error: Option<Vec<u8>>,
    failure: Option<Failure>,
}

/// Sends the commands to the target (a cached connection or a new one) and reads the replies,
/// with Redis's one retry on a fresh connection when a cached one turns out closed.
async fn transfer<'a>(request: &Request<'_>, moving: &[Moving<'a>]) -> Outcome<'a> {
    let name = cache_name(request.host, request.port);
    let mut may_retry = true;
    loop {
        let cached = take_link(&name);
        let connected = match cached {
            Some(link) => Ok(link),
            None => match resolve(request.host, request.port) {
                Ok(address) => connect(address, request.timeout).await,
                Err(_) => {
                    return Outcome {
                        acknowledged: Vec::new(),
                        reply: Err("IOERR error or timeout connecting to the client".into()),
                    }
                }
            },
        };
        let (link, exchange) = match connected {
            Ok(mut link) => {
                let select = link.last_db != Some(request.db);
                let commands = encode_commands(request, moving, select);
                let exchange = exchange(&mut link, request, moving, select, &commands).await;
                (Some(link), exchange)
            }
            // Redis connects without blocking and takes the socket as connected when it
            // becomes writable or the wait times out: a refused or slow connection fails at
            // the write.
            Err(error) => (
                None,
                Exchange {
                    acknowledged: Vec::new(),
                    target_error: None,
                    failure: Some(Failure {
                        step: Step::Writing,
                        timed_out: error.kind() == io::ErrorKind::TimedOut,
                        nothing_read: true,
                    }),
                },
            ),
        };
        let Exchange {
            acknowledged,
            target_error,
            failure,
        } = exchange;
        if let Some(error) = target_error {
            // The target's database is no longer known after an error; a failed socket closes.
            if let (Some(mut link), None) = (link, &failure) {
                link.last_db = None;
                put_link(name, link);
            }
            return Outcome {
                acknowledged,
                reply: Err(format!(
                    "ERR Target instance replied with error: {}",
                    String::from_utf8_lossy(&error)
                )),
            };
        }
        let Some(failure) = failure else {
            let mut link = link.expect("an exchange without failure had a connection");
            link.last_db = Some(request.db);
            put_link(name, link);
            return Outcome {
                acknowledged,
                reply: Ok(()),
            };
        };
        // The connection is dropped (closed): the next MIGRATE connects afresh.
        drop(link);
        if may_retry && failure.nothing_read && !failure.timed_out {
            may_retry = false;
            continue;
        }
        let step = match failure.step {
            Step::Writing => "writing",
            Step::Reading => "reading",
        };
        return Outcome {
            acknowledged,
            reply: Err(format!("IOERR error or timeout {step} to target instance")),
        };
    }
}

/// Writes `commands` and reads a reply to each: AUTH's, SELECT's, then one per key, as Redis
/// reads them: a key is acknowledged when its RESTORE, AUTH and SELECT all succeeded.
async fn exchange<'a>(
    link: &mut Link,
    request: &Request<'_>,
    moving: &[Moving<'a>],
    select: bool,
    commands: &[u8],
) -> Exchange<'a> {
    let mut exchange = Exchange {
        acknowledged: Vec::new(),
        target_error: None,
        failure: None,
    };
    let failure = |step, error: io::Error, nothing_read| Failure {
        step,
        timed_out: error.kind() == io::ErrorKind::TimedOut,
        nothing_read,
    };
    if let Err(error) = link.write_all(commands, request.timeout).await {
        exchange.failure = Some(failure(Step::Writing, error, true));
        return exchange;
    }
    // An error from AUTH or SELECT fails every key.
    let mut session_error = None;
    for expected in [request.password.is_some(), select] {
        if !expected {
            continue;
        }
        match link.read_line(request.timeout).await {
            Ok(line) => {
                if line.first() == Some(&b'-') && session_error.is_none() {
                    session_error = Some(line[1..].to_vec());
                }
            }
            Err(error) => {
                exchange.failure = Some(failure(Step::Reading, error, true));
                return exchange;
            }
        }
    }
    for (index, moved) in moving.iter().enumerate() {
        let line = match link.read_line(request.timeout).await {
            Ok(line) => line,
            Err(error) => {
                exchange.failure = Some(failure(Step::Reading, error, index == 0));
                return exchange;
            }
        };
        let error = match (&session_error, line.first()) {
            (Some(error), _) => Some(error.clone()),
            (None, Some(b'-')) => Some(line[1..].to_vec()),
            (None, _) => None,
        };
        match error {
            Some(error) => {
                exchange.target_error.get_or_insert(error);
            }
            None => exchange.acknowledged.push(moved.key),
        }
    }
    exchange
}

/// The commands sent to the target: AUTH (with AUTH or AUTH2), SELECT when the connection's
/// database differs, then a RESTORE per key (with REPLACE when asked).
fn encode_commands(request: &Request<'_>, moving: &[Moving<'_>], select: bool) -> Vec<u8> {
    let mut buffer = Vec::with_capacity(
        moving
            .iter()
            .map(|moved| moved.payload.len() + moved.key.len() + 64)
            .sum::<usize>()
            + 128,
    );
    if let Some(password) = request.password {
        match request.username {
            Some(username) => ember_resp::encode::command(
                &mut buffer,
                [&b"AUTH"[..], username, password].into_iter(),
            ),
            None => ember_resp::encode::command(&mut buffer, [&b"AUTH"[..], password].into_iter()),
        }
    }
    if select {
        let db = request.db.to_string();
        ember_resp::encode::command(&mut buffer, [&b"SELECT"[..], db.as_bytes()].into_iter());
    }
    for moved in moving {
        let ttl = moved.ttl_ms.to_string();
        let mut args: Vec<&[u8]> = vec![b"RESTORE", moved.key, ttl.as_bytes(), &moved.payload];
        if request.replace {
            args.push(b"REPLACE");
        }
        ember_resp::encode::command(&mut buffer, args.into_iter());
    }
    buffer
}

/// A connection to a target, with what was read past the last reply line and the database it
/// has selected (`None`: unknown, so the next MIGRATE sends SELECT).
struct Link {
    stream: TcpStream,
    input: Vec<u8>,
    last_db: Option<i64>,
    last_used: Instant,
}

impl Link {
    /// Writes `bytes`; each write to the socket may wait `timeout` at most (Redis bounds each
    /// 64 KiB chunk so), so a large payload is not cut for its size.
    async fn write_all(&mut self, bytes: &[u8], timeout: Duration) -> io::Result<()> {
        self.stream
            .set_write_timeout(Some(timeout))
            .map_err(io::Error::from)?;
        self.stream.write_all(bytes).await?;
        self.stream.flush().await
    }

    /// One reply line, without its `\r\n`.
    async fn read_line(&mut self, timeout: Duration) -> io::Result<Vec<u8>> {
        self.stream
            .set_read_timeout(Some(timeout))
            .map_err(io::Error::from)?;
        loop {
            if let Some(end) = self.input.iter().position(|&byte| byte == b'\n') {
                let mut line: Vec<u8> = self.input.drain(..=end).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(line);
            }
            if self.input.len() > REPLY_LINE_LEN_MAX {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "reply line too long",
                ));
            }
            let mut chunk = [0u8; 1024];
            let read = self.stream.read(&mut chunk).await?;
            if read == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.input.extend_from_slice(&chunk[..read]);
        }
    }
}

/// Connects to `address` within `timeout`.
async fn connect(address: SocketAddr, timeout: Duration) -> io::Result<Link> {
    let stream = TcpStream::connect_timeout(address, timeout)
        .await
        .map_err(io::Error::from)?;
    stream.set_nodelay(true).map_err(io::Error::from)?;
    Ok(Link {
        stream,
        input: Vec::new(),
        last_db: None,
        last_used: Instant::now(),
    })
}

/// The target's address. A name is resolved by the system's resolver, as Redis does.
fn resolve(host: &[u8], port: &[u8]) -> io::Result<SocketAddr> {
    let invalid = || io::Error::from(io::ErrorKind::InvalidInput);
    let host = std::str::from_utf8(host).map_err(|_| invalid())?;
    // Redis reads the port with atoi: leading digits, 0 without any.
    let digits = port.iter().take_while(|byte| byte.is_ascii_digit()).count();
    let port: u16 = match digits {
        0 => 0,
        _ => std::str::from_utf8(&port[..digits])
            .ok()
            .and_then(|port| port.parse().ok())
            .ok_or_else(invalid)?,
    };
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    (host, port).to_socket_addrs()?.next().ok_or_else(invalid)
}

/// The cache's name of a target: `host:port` as the client spelled them.
fn cache_name(host: &[u8], port: &[u8]) -> Vec<u8> {
    let mut name = Vec::with_capacity(host.len() + port.len() + 1);
    name.extend_from_slice(host);
    name.push(b':');
    name.extend_from_slice(port);
    name
}

thread_local! {
    /// This shard's cached connections, by target name. A connection in use is out of the
    /// cache, so two MIGRATEs never share one.
    static LINKS: RefCell<HashMap<Vec<u8>, Link>> = RefCell::new(HashMap::new());
    /// True while this shard's task closing idle connections runs.
    static REAPER_RUNNING: Cell<bool> = const { Cell::new(false) };
}

/// Cached connections of every shard (INFO's `migrate_cached_sockets`).
static CACHED_LINKS: AtomicUsize = AtomicUsize::new(0);

/// The number of cached connections to MIGRATE targets, over every shard.
pub fn cached_links() -> usize {
    CACHED_LINKS.load(Ordering::Relaxed)
}

fn take_link(name: &[u8]) -> Option<Link> {
    let link = LINKS.with(|links| links.borrow_mut().remove(name))?;
    CACHED_LINKS.fetch_sub(1, Ordering::Relaxed);
    if link.last_used.elapsed() > Duration::from_secs(CACHED_LINK_IDLE_S) {
        return None; // Past its time: closed, as the reaper would have.
    }
    Some(link)
}

fn put_link(name: Vec<u8>, mut link: Link) {
    link.last_used = Instant::now();
    LINKS.with(|links| {
        let mut links = links.borrow_mut();
        if links.contains_key(&name) {
            return; // Another MIGRATE cached one meanwhile: this one closes.
        }
        if links.len() >= CACHED_LINKS_MAX {
            // Redis drops one at random; any will do.
            let victim = links.keys().next().cloned().expect("the cache is full");
            links.remove(&victim);
            CACHED_LINKS.fetch_sub(1, Ordering::Relaxed);
        }
        links.insert(name, link);
        CACHED_LINKS.fetch_add(1, Ordering::Relaxed);
    });
    if !REAPER_RUNNING.with(|running| running.replace(true)) {
        runtime::spawn(reap_idle_links());
    }
}

/// Closes this shard's connections unused for [`CACHED_LINK_IDLE_S`] seconds, once a second
/// (Redis's cron does it), until none is left.
async fn reap_idle_links() {
    loop {
        runtime::sleep(Duration::from_secs(1)).await;
        let left = LINKS.with(|links| {
            let mut links = links.borrow_mut();
            let before = links.len();
            links.retain(|_, link| {
                link.last_used.elapsed() <= Duration::from_secs(CACHED_LINK_IDLE_S)
            });
            CACHED_LINKS.fetch_sub(before - links.len(), Ordering::Relaxed);
            links.len()
        });
        if left == 0 {
            REAPER_RUNNING.with(|running| running.set(false));
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_as_redis_finds_them() {
        let cases: &[(&[&str], &[usize])] = &[
            (&["migrate", "h", "p", "k", "0", "5000"], &[3]),
            (
                &["migrate", "h", "p", "", "0", "5000", "KEYS", "a", "b"],
                &[7, 8],
            ),
            (
                &[
                    "migrate", "h", "p", "", "0", "5000", "AUTH", "KEYS", "KEYS", "rw",
                ],
                &[9],
            ),
            (
                &[
                    "migrate", "h", "p", "", "0", "5000", "AUTH2", "KEYS", "123", "KEYS", "rw",
                ],
                &[10],
            ),
            (&["migrate", "h", "p", "k", "0", "5000", "KEYS", "a"], &[]),
            (
                &["migrate", "h", "p", "k", "0", "5000", "COPY", "REPLACE"],
                &[3],
            ),
        ];
        for (args, expected) in cases {
            let args: Vec<&[u8]> = args.iter().map(|arg| arg.as_bytes()).collect();
            assert_eq!(migrate_keys(&args), *expected, "{args:?}");
        }
    }

    #[test]
    fn parse_errors_in_redis_order() {
        let cases: &[(&[&str], &str)] = &[
            (&["migrate", "h", "p", "k", "0", "x", "BOGUS"], errors::SYNTAX),
            (&["migrate", "h", "p", "k", "0", "5000", "AUTH"], errors::SYNTAX),
            (&["migrate", "h", "p", "k", "0", "5000", "AUTH2", "u"], errors::SYNTAX),
            (&["migrate", "h", "p", "k", "0", "5000", "KEYS", "a"], "ERR When using MIGRATE KEYS option, the key argument must be set to the empty string"),
            (&["migrate", "h", "p", "k", "x", "y"], errors::NOT_INTEGER),
            (&["migrate", "h", "p", "k", "x", "5000"], errors::NOT_INTEGER),
        ];
        for (args, expected) in cases {
            let args: Vec<&[u8]> = args.iter().map(|arg| arg.as_bytes()).collect();
            let error = parse(&args).err().expect("an error");
            assert_eq!(error.0, *expected, "{args:?}");
        }
        let args: Vec<&[u8]> = [
            "migrate", "h", "p", "", "3", "-1", "COPY", "AUTH2", "u", "pw", "KEYS", "a", "b",
        ]
        .iter()
        .map(|arg| arg.as_bytes())
        .collect();
        let request = parse(&args).expect("parses");
        assert_eq!(request.db, 3);
        assert_eq!(request.timeout, Duration::from_millis(DEFAULT_TIMEOUT_MS));
        assert!(request.copy && !request.replace);
        assert_eq!(request.username, Some(&b"u"[..]));
        assert_eq!(request.password, Some(&b"pw"[..]));
        assert_eq!(request.keys, vec![&b"a"[..], &b"b"[..]]);
    }
}
