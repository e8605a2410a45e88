//! The seam between the server and ember-rdma: each shard's read region kept in step with its
//! keyspace (a [`KeyObserver`]), and the shared-memory / verbs listeners that let clients READ the
//! regions one-sided and send the rest (SET, DEL, GETs of unpublished values) as messages, which
//! run through the same command path as RESP requests.
//!
//! Only database 0 is published: the message protocol has no SELECT, so clients of these
//! transports always see database 0, as a Redis Cluster client does.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ember_rdma::fabric::{CompletionKind, Connection, Fabric, Listener};
use ember_rdma::message::{Reply, Request};
use ember_rdma::region::{ReadRegion, RegionConfig};
use ember_rdma::routing::{SlotRange, SLOT_COUNT};
use ember_rdma::shm::memory::SharedMemory;
use ember_rdma::shm::ShmFabric;
use ember_resp::{Reply as RespReply, ReplySink};
use ember_store::{ExpireAtMs, KeyObserver, Value};

use crate::client::{Client, ClientHandle};
use crate::config::Config;
use crate::runtime;
use crate::shard::{owner_of_slot, Shard};
use crate::stats::unix_time_ms;

/// Turns a reply may wait for room in a client's ring before the client is dropped.
const SEND_ATTEMPTS_MAX: usize = 100_000;
/// Transport sessions at once; more are refused, so a client loop cannot exhaust descriptors.
const SESSION_COUNT_MAX: usize = 1024;
/// How long the message loop sleeps when no client sent anything, right after activity: the
/// message path is the fallback (writes and unpublished GETs), so tens of microseconds of extra
/// latency buy a shard that an idle transport does not keep spinning.
const IDLE_SLEEP_MIN: Duration = Duration::from_micros(50);
/// The longest idle sleep, reached after a few milliseconds without a request: a first request
/// after a quiet spell waits at most this long.
const IDLE_SLEEP_MAX: Duration = Duration::from_millis(1);

/// What `ember --shm` / `--rdma` prepared before the shards started.
pub struct Setup {
    /// One region per shard, each taken once by its shard at start-up (a hand-off, not shared
    /// state: the Mutex is touched once per shard and never on a request path).
    regions: Vec<Mutex<Option<ReadRegion>>>,
    memories: Vec<Arc<SharedMemory>>,
    shm_path: Option<String>,
    verbs_address: Option<SocketAddr>,
}

/// Creates the regions when a transport is configured; `None` when neither is.
///
/// # Errors
/// When a region cannot be created (configuration out of bounds, no memory).
pub fn prepare(config: &Config, shard_count: usize) -> std::io::Result<Option<Arc<Setup>>> {
    let verbs_address = if config.value("rdma") == "yes" {
        match ember_rdma::verbs::devices() {
            Ok(devices) => {
                let rdma_port = config.value("rdma-port").parse::<u16>().unwrap_or(0);
                // 0: the port after the RESP port, so two servers on one host do not collide.
                let port = if rdma_port == 0 {
                    config.port.wrapping_add(1)
                } else {
                    rdma_port
                };
                let ip = config
                    .bind
                    .first()
                    .copied()
                    .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]));
                eprintln!(
                    "ember: --rdma: verbs devices {devices:?}; connection set-up on {ip}:{port}"
                );
                Some(SocketAddr::new(ip, port))
            }
            Err(error) => {
                eprintln!("ember: --rdma: {error}; serving TCP only");
                None
            }
        }
    } else {
        None
    };
    let shm_path = Some(config.value("shm").to_string()).filter(|path| !path.is_empty());
    if shm_path.is_none() && verbs_address.is_none() {
        return Ok(None);
    }
    let region_config = RegionConfig {
        value_len_max: config
            .memory_value("rdma-value-max-len")
            .min(u64::from(u32::MAX)) as u32,
        log_len: config.memory_value("rdma-log-size"),
        ..RegionConfig::default()
    };
    let mut regions = Vec::with_capacity(shard_count);
    let mut memories = Vec::with_capacity(shard_count);
    for index in 0..shard_count {
        let region = ReadRegion::create(&format!("ember-region-{index}"), region_config)
            .map_err(|error| std::io::Error::other(format!("read region: {error}")))?;
        memories.push(region.memory().clone());
        regions.push(Mutex::new(Some(region)));
    }
    Ok(Some(Arc::new(Setup {
        regions,
        memories,
        shm_path,
        verbs_address,
    })))
}

/// Keeps one shard's region in step with database 0 of its keyspace.
struct RegionObserver {
    region: ReadRegion,
    /// A string value's bytes (an integer is published as its text).
    scratch: Vec<u8>,
}

impl KeyObserver for RegionObserver {
    fn key_written(&mut self, db: usize, key: &[u8], value: &Value, expire_at_ms: ExpireAtMs) {
        if db != 0 {
            return;
        }
        if value.type_name() == "string" {
            self.scratch.clear();
            value.write_bytes(&mut self.scratch);
            // A value that cannot be published is removed from the region, so clients ask for
            // it by message and never read an older copy.
            let _ = self
                .region
                .publish_expiring(key, &self.scratch, expire_at_ms);
        } else {
            self.region.remove(key);
        }
    }

    fn key_removed(&mut self, db: usize, key: &[u8]) {
        if db == 0 {
            self.region.remove(key);
        }
    }

    fn database_flushed(&mut self, db: usize) {
        if db == 0 {
            self.region.clear();
        }
    }

    fn databases_swapped(&mut self, first: usize, second: usize) {
        // Database 0 now holds other keys; none of them is published until it is written again.
        if first == 0 || second == 0 {
            self.region.clear();
        }
    }
}

/// Installs this shard's observer; shard 0 also starts the listeners.
///
/// # Errors
/// When a listener cannot be bound.
pub fn start_shard(shard: &Rc<Shard>, setup: &Setup) -> std::io::Result<()> {
    let region = setup.regions[shard.index]
        .lock()
        .expect("region hand-off is never poisoned")
        .take()
        .expect("each shard takes its region once");
    shard
        .keyspace
        .borrow_mut()
        .add_observer(Box::new(RegionObserver {
            region,
            scratch: Vec::new(),
        }));
    if shard.index != 0 {
        return Ok(());
    }
    let routing = routing(shard.count());
    if let Some(path) = &setup.shm_path {
        let listener = ShmFabric::default()
            .listen(path, setup.memories.clone())
            .map_err(|error| std::io::Error::other(format!("--shm {path}: {error}")))?;
        eprintln!("ember: shared-memory transport on {path}");
        runtime::spawn(serve_messages(
            shard.clone(),
            listener,
            "shm",
            routing.clone(),
        ));
    }
    if let Some(address) = setup.verbs_address {
        match ember_rdma::verbs::VerbsFabric::default()
            .listen(&address.to_string(), setup.memories.clone())
        {
            Ok(listener) => {
                eprintln!("ember: verbs transport on {address}");
                runtime::spawn(serve_messages(shard.clone(), listener, "verbs", routing));
            }
            Err(error) => eprintln!("ember: --rdma: {error}; serving TCP only"),
        }
    }
    Ok(())
}

/// Slot ranges per shard, as the server splits them.
fn routing(shard_count: usize) -> Vec<SlotRange> {
    let mut ranges: Vec<SlotRange> = Vec::new();
    for slot in 0..SLOT_COUNT as u16 {
        let region = owner_of_slot(slot, shard_count) as u32;
        match ranges.last_mut() {
            Some(range) if range.region == region => range.last = slot,
            _ => ranges.push(SlotRange {
                first: slot,
                last: slot,
                region,
            }),
        }
    }
    ranges
}

/// Accepts connections and answers their messages, on shard 0.
async fn serve_messages<L: Listener + 'static>(
    shard: Rc<Shard>,
    mut listener: L,
    transport: &'static str,
    routing: Vec<SlotRange>,
) {
    let mut connections: Vec<(L::Connection, Client)> = Vec::new();
    let mut requests: Vec<u8> = Vec::new();
    let mut request_ends: Vec<usize> = Vec::new();
    let mut reply = Vec::new();
    let mut idle_sleep = IDLE_SLEEP_MIN;
    loop {
        // One-sided READs cannot be checked per user: the regions are mapped at the handshake.
        // So the transports serve only while an unauthenticated client could read every key
        // anyway (the default user is on, has no password, and may GET every key); otherwise
        // they refuse new sessions and close open ones.
        let open = shard.shared.acl.open_to_anyone(&shard);
        if !open && !connections.is_empty() {
            eprintln!("ember: {transport}: the default user no longer reads every key without a password; closing {} session(s)", connections.len());
            connections.clear();
        }
        while let Ok(Some(connection)) = listener.accept() {
            if !open {
                eprintln!("ember: {transport}: refusing a session: one-sided reads need a default user that reads every key without a password");
            } else if connections.len() < SESSION_COUNT_MAX {
                connections.push((connection, session_client(&shard, transport)));
            } else {
                eprintln!("ember: {transport}: {SESSION_COUNT_MAX} sessions open; refusing one");
            }
        }
        let mut answered = 0;
        let mut index = 0;
        while index < connections.len() {
            let (connection, client) = &mut connections[index];
            requests.clear();
            request_ends.clear();
            let polled = connection.poll(&mut |completion| {
                // The provider bounds how many messages one poll hands out.
                if completion.kind == CompletionKind::Recv {
                    requests.extend_from_slice(completion.message);
                    request_ends.push(requests.len());
                }
            });
            let mut healthy = polled.is_ok();
            let mut start = 0;
            for &end in &request_ends {
                let Ok((id, request)) = Request::decode(&requests[start..end]) else {
                    healthy = false;
                    break;
                };
                start = end;
                reply.clear();
                answer(&shard, client, id, request, &routing, &mut reply).await;
                if send(connection, &reply).await.is_err() {
                    healthy = false;
                    break;
                }
                answered += 1;
            }
            if healthy && (answered > 0 || connection.is_connected()) {
                index += 1;
            } else {
                connections.swap_remove(index);
            }
        }
        if answered == 0 {
            runtime::sleep(idle_sleep).await;
            idle_sleep = (idle_sleep * 2).min(IDLE_SLEEP_MAX);
        } else {
            idle_sleep = IDLE_SLEEP_MIN;
            futures_lite::future::yield_now().await;
        }
    }
}

/// Sends a reply, waiting (without blocking the shard) while the client's ring is full; a client
/// that leaves it full for [`SEND_ATTEMPTS_MAX`] turns is dropped.
async fn send<C: Connection>(connection: &mut C, reply: &[u8]) -> ember_rdma::Result<()> {
    let mut attempts = 0;
    loop {
        match connection.post_send(0, reply) {
            Err(error) if error.kind() == ember_rdma::ErrorKind::WouldBlock => {
                attempts += 1;
                if attempts >= SEND_ATTEMPTS_MAX {
                    return Err(error);
                }
                connection.poll(&mut |_| {})?;
                futures_lite::future::yield_now().await;
            }
            other => return other,
        }
    }
}

/// The client state a transport session runs its commands as: database 0, RESP2, the default
/// user (sessions are only accepted while it needs no password, see [`serve_messages`]); an
/// AUTH message changes the user, whose ACL rules then limit the session's messages.
fn session_client(shard: &Shard, transport: &str) -> Client {
    let id = shard.shared.next_client_id.fetch_add(1, Ordering::Relaxed);
    let handle = Rc::new(ClientHandle::detached(id, transport));
    Client::new(handle, shard.shared.acl.starts_authenticated(shard))
}

/// Runs a message request as the equivalent command and encodes the reply.
async fn answer(
    shard: &Rc<Shard>,
    client: &mut Client,
    id: u32,
    request: Request<'_>,
    routing: &[SlotRange],
    reply: &mut Vec<u8>,
) {
    let (args, expect): (Vec<&[u8]>, _) = match request {
        Request::Get { key } => (vec![b"GET", key], Expect::Value),
        Request::Set { key, value } => (vec![b"SET", key, value], Expect::Ok),
        Request::Delete { key } => (vec![b"DEL", key], Expect::Count),
        Request::Auth { username, password } => (vec![b"AUTH", username, password], Expect::Ok),
        Request::Routing => {
            Reply::Routing(routing.to_vec()).encode(id, reply);
            return;
        }
    };
    let mut out = ReplySink::values(client.protocol);
    crate::commands::exec::execute(shard, client, &args, unix_time_ms(), &mut out, None).await;
    encode_reply(id, expect, &out.into_reply(), reply);
}

enum Expect {
    Value,
    Ok,
    Count,
}

/// Turns a command's reply into a message reply.
fn encode_reply(id: u32, expect: Expect, resp: &RespReply, reply: &mut Vec<u8>) {
    match (resp, expect) {
        (RespReply::Error(message), _) => Reply::Error(message).encode(id, reply),
        (RespReply::Null, Expect::Value) => Reply::Nil.encode(id, reply),
        (RespReply::Bulk(value), Expect::Value) => Reply::Value(value).encode(id, reply),
        (RespReply::Simple(_), Expect::Ok) => Reply::Ok.encode(id, reply),
        (RespReply::Integer(count), Expect::Count) => Reply::Deleted(*count != 0).encode(id, reply),
        _ => Reply::Error("ERR unexpected reply").encode(id, reply),
    }
}
