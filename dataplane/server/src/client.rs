//! A connected client: the state its commands change (database, protocol, name) and the handle
//! other shards reach it through for CLIENT LIST and CLIENT KILL.

use std::cell::{Cell, RefCell};
use std::os::fd::RawFd;
use std::rc::Rc;
use std::task::Waker;

use ember_resp::Protocol;

use crate::stats::unix_time_ms;

/// What CLIENT LIST reports of a client, and how CLIENT KILL reaches it.
#[derive(Debug)]
pub struct ClientHandle {
    /// Unique id across shards.
    pub id: u64,
    /// Peer address, `ip:port`.
    pub addr: String,
    /// Local address, `ip:port`.
    pub laddr: String,
    /// Socket descriptor, used only to shut the socket down on CLIENT KILL (from this shard).
    pub fd: RawFd,
    /// When the connection was accepted.
    pub created_at_ms: u64,
    /// Name set by CLIENT SETNAME / HELLO SETNAME.
    pub name: RefCell<String>,
    /// The ACL user the connection authenticated as (CLIENT LIST's `user`); empty for
    /// `default`.
    pub user: RefCell<String>,
    /// CLIENT SETINFO LIB-NAME.
    pub lib_name: RefCell<String>,
    /// CLIENT SETINFO LIB-VER.
    pub lib_ver: RefCell<String>,
    /// Selected database.
    pub db: Cell<usize>,
    /// Protocol version.
    pub resp: Cell<i64>,
    /// The last command run, as its id in the ACL catalogue (so a container's subcommand is
    /// `client|list`, as CLIENT LIST's `cmd` shows it); `None` before the first.
    pub last_command: Cell<Option<usize>>,
    /// When the last command arrived.
    pub last_interaction_ms: Cell<u64>,
    /// Set by CLIENT KILL; the connection closes at its next turn.
    pub killed: Cell<bool>,
    /// Set by QUIT: the connection ends once its reply is written. To client tracking it is
    /// gone from then on, as Redis frees a quitting client before it runs any later command
    /// (a redirection to it is broken, not delivered to a closing socket).
    pub quitting: Cell<bool>,
    /// Some CLIENT TRACKING ... REDIRECT named this client: when it goes, its id joins
    /// `Shared::gone_redirect_targets`.
    pub redirect_target: Cell<bool>,
    /// Pub/Sub channels, patterns and shard channels listened to (CLIENT LIST's sub, psub,
    /// ssub; flag P while any is non-zero).
    pub subscription_counts: Cell<[usize; 3]>,
    /// Encoded pushes for this connection that did not come from its own commands (client
    /// tracking's invalidations), written between replies or while it waits for input.
    pub pushes: Pushes,
    /// CLIENT TRACKING's state; `None` while tracking is off.
    pub tracking: RefCell<Option<crate::commands::tracking::TrackingMode>>,
    /// Buffer sizes for the output limits and client eviction (crate::limits).
    pub limits: crate::limits::ClientLimits,
}

/// Bytes a connection's [`Pushes`] may hold before the connection is closed: a client that
/// stops reading while keys it cached keep changing must not grow the server without bound
/// (Redis's default pubsub hard limit, 32 MiB).
pub const PUSHES_LEN_MAX: usize = 32 * 1024 * 1024;

/// A connection's queue of encoded pushes, filled by its shard (from any command) and drained
/// by the connection task.
#[derive(Debug, Default)]
pub struct Pushes {
    queue: RefCell<Vec<u8>>,
    waker: RefCell<Option<Waker>>,
    /// Set by the client cron when the connection has been idle long enough to give back its
    /// buffers (crate::connection); wakes the connection as a push does.
    trim: Cell<bool>,
}

impl Pushes {
    /// Appends what `encode` writes and wakes the connection if it waits; false when the
    /// queue passed [`PUSHES_LEN_MAX`] (the caller closes the connection).
    pub fn push(&self, encode: impl FnOnce(&mut Vec<u8>)) -> bool {
        let mut queue = self.queue.borrow_mut();
        let was_empty = queue.is_empty();
        encode(&mut queue);
        if was_empty && !queue.is_empty() {
            if let Some(waker) = self.waker.borrow_mut().take() {
                waker.wake();
            }
        }
        if queue.len() > PUSHES_LEN_MAX {
            queue.clear();
            return false;
        }
        true
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queue.borrow().is_empty()
    }

    /// Moves the queued pushes to the end of `out`.
    pub fn take_into(&self, out: &mut Vec<u8>) {
        let mut queue = self.queue.borrow_mut();
        if !queue.is_empty() {
            out.extend_from_slice(&queue);
            queue.clear();
        }
    }

    /// Asks the connection to give back its buffers, waking it if it waits.
    pub fn ask_trim(&self) {
        self.trim.set(true);
        if let Some(waker) = self.waker.borrow_mut().take() {
            waker.wake();
        }
    }

    /// True once after [`Pushes::ask_trim`].
    pub fn take_trim(&self) -> bool {
        self.trim.replace(false)
    }

    /// True while a trim is asked and not yet taken.
    pub fn trim_asked(&self) -> bool {
        self.trim.get()
    }

    /// Waits until something is queued, or a trim is asked.
    pub async fn ready(&self) {
        std::future::poll_fn(|cx| {
            if !self.queue.borrow().is_empty() || self.trim.get() {
                return std::task::Poll::Ready(());
            }
            // Every read of every connection waits here too: no clone when the waker is kept.
            let mut waker = self.waker.borrow_mut();
            if !waker
                .as_ref()
                .is_some_and(|kept| kept.will_wake(cx.waker()))
            {
                *waker = Some(cx.waker().clone());
            }
            std::task::Poll::Pending
        })
        .await;
    }
}

impl ClientHandle {
    /// A new client's handle: no name, database 0, RESP2, created now.
    pub fn new(id: u64, addr: String, laddr: String, fd: RawFd) -> Self {
        let now = unix_time_ms();
        Self {
            id,
            addr,
            laddr,
            fd,
            created_at_ms: now,
            name: RefCell::new(String::new()),
            user: RefCell::default(),
            lib_name: RefCell::new(String::new()),
            lib_ver: RefCell::new(String::new()),
            db: Cell::new(0),
            resp: Cell::new(2),
            last_command: Cell::new(None),
            last_interaction_ms: Cell::new(now),
            killed: Cell::new(false),
            quitting: Cell::new(false),
            redirect_target: Cell::new(false),
            subscription_counts: Cell::new([0; 3]),
            pushes: Default::default(),
            tracking: Default::default(),
            limits: Default::default(),
        }
    }

    /// The handle of a client that is no connection (a transport session, a command forwarded
    /// from another shard): no socket, `addr` and `laddr` both `origin`.
    pub fn detached(id: u64, origin: &str) -> Self {
        Self::new(id, origin.to_string(), origin.to_string(), -1)
    }

    /// The connection's client type.
    pub fn client_type(&self) -> ClientType {
        if self.subscription_counts.get() == [0; 3] {
            ClientType::Normal
        } else {
            ClientType::Pubsub
        }
    }

    /// The ACL user the connection is authenticated as.
    pub fn user_name(&self) -> String {
        match self.user.borrow().as_str() {
            "" => "default".to_string(),
            user => user.to_string(),
        }
    }

    /// The CLIENT LIST / CLIENT INFO line, in Redis 7.2's field order.
    pub fn info_line(&self) -> String {
        let now = unix_time_ms();
        let subscriptions = self.subscription_counts.get();
        let (tracking_flags, redirect) = crate::commands::tracking::list_fields(self);
        let mut flags = String::from(if subscriptions == [0; 3] { "N" } else { "P" });
        if !tracking_flags.is_empty() {
            // Redis lists only the letters that apply; N stands alone.
            if flags == "N" {
                flags.clear();
            }
            flags.push_str(tracking_flags);
        }
        format!(
            "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi=-1 qbuf={} qbuf-free={} argv-mem=0 multi-mem={} rbs=0 rbp=0 obl=0 oll=0 omem={} tot-mem={} events=r cmd={} user={} redir={} resp={} lib-name={} lib-ver={}",
            self.id,
            self.addr,
            self.laddr,
            self.fd,
            self.name.borrow(),
            now.saturating_sub(self.created_at_ms) / 1000,
            now.saturating_sub(self.last_interaction_ms.get()) / 1000,
            flags,
            self.db.get(),
            subscriptions[0],
            subscriptions[1],
            subscriptions[2],
            self.limits.query_len(),
            self.limits.query_free(),
            self.limits.multi_len(),
            self.limits.output_len(),
            self.limits.memory(),
            self.last_command.get().map_or("NULL", |id| {
                crate::commands::acl::CATALOGUE.commands[id].fullname.as_str()
            }),
            self.user_name(),
            redirect,
            self.resp.get(),
            self.lib_name.borrow(),
            self.lib_ver.borrow(),
        )
    }

    /// Closes the connection from outside its task: the socket is shut down, so the task's
    /// pending read returns and the task ends.
    pub fn kill(&self) {
        self.killed.set(true);
        // SAFETY: `fd` is the socket of a connection task on this same shard, still registered
        // in the shard's client table, so the descriptor is open and is that socket.
        // shutdown() does not close the descriptor; the task closes it when it ends.
        unsafe {
            libc::shutdown(self.fd, libc::SHUT_RDWR);
        }
    }
}

/// Which clients CLIENT KILL ends.
#[derive(Debug, Clone, Default)]
pub struct KillFilter {
    /// `ID id`.
    pub id: Option<u64>,
    /// `ADDR ip:port`, or the legacy single-argument form.
    pub addr: Option<String>,
    /// `LADDR ip:port`.
    pub laddr: Option<String>,
    /// `TYPE normal|pubsub`; `Some(None)` for the replication types, which no Ember client is.
    pub client_type: Option<Option<ClientType>>,
    /// `USER name`: connections authenticated as that user.
    pub user: Option<String>,
    /// `MAXAGE seconds`: connections older than that.
    pub max_age_s: Option<u64>,
    /// The caller's own id, spared unless `SKIPME no`.
    pub skip_id: Option<u64>,
    /// The caller's own id, never shut down from outside: when selected (`SKIPME no`) it is
    /// marked killed, and its connection closes after the reply to this CLIENT KILL is sent.
    pub requester_id: u64,
}

/// CLIENT KILL's and CLIENT LIST's client types that an Ember connection can be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientType {
    /// Neither subscribed nor a replica.
    Normal,
    /// Subscribed to a channel, pattern or shard channel.
    Pubsub,
}

impl ClientType {
    /// The type named `name` (any case): `Some(None)` for `master`, `replica` and `slave`,
    /// types that exist in Redis but that no Ember client has; `None` for an unknown name.
    pub fn parse(name: &[u8]) -> Option<Option<Self>> {
        match name.to_ascii_lowercase().as_slice() {
            b"normal" => Some(Some(Self::Normal)),
            b"pubsub" => Some(Some(Self::Pubsub)),
            b"master" | b"replica" | b"slave" => Some(None),
            _ => None,
        }
    }
}

impl KillFilter {
    /// True when `client` is selected.
    pub fn selects(&self, client: &ClientHandle) -> bool {
        self.id.is_none_or(|id| id == client.id)
            && self.addr.as_ref().is_none_or(|addr| *addr == client.addr)
            && self
                .laddr
                .as_ref()
                .is_none_or(|laddr| *laddr == client.laddr)
            && self
                .client_type
                .is_none_or(|wanted| wanted == Some(client.client_type()))
            && self
                .user
                .as_ref()
                .is_none_or(|user| *user == client.user_name())
            && self.max_age_s.is_none_or(|max_age_s| {
                unix_time_ms().saturating_sub(client.created_at_ms) / 1000 > max_age_s
            })
            && self.skip_id != Some(client.id)
    }
}

impl Client {
    /// A new connection's state: database 0, RESP2, no transaction.
    pub fn new(handle: Rc<ClientHandle>, authenticated: bool) -> Self {
        Self {
            handle,
            db: 0,
            protocol: Protocol::Resp2,
            authenticated,
            user: None,
            no_touch: false,
            script: false,
            time_ms: None,
            error_counted: false,
            no_evict: false,
            close_after_reply: false,
            reply_off: false,
            reply_skip_next: false,
            reply_skip_current: false,
            tracking_reset: false,
            multi: None,
            multi_failed: false,
            hold: None,
            watched: Vec::new(),
            subscriptions: Default::default(),
            monitor: false,
            command_clock: CommandClock::Unchained,
            last_command_index: None,
        }
    }
}

/// A connection's own state, changed by its commands.
#[derive(Debug)]
pub struct Client {
    /// The handle other shards see.
    pub handle: Rc<ClientHandle>,
    /// Selected database.
    pub db: usize,
    /// RESP2 or RESP3.
    pub protocol: Protocol,
    /// False until AUTH succeeds when a password is configured.
    pub authenticated: bool,
    /// The ACL user the connection authenticated as; `None` for `default`.
    pub user: Option<std::sync::Arc<crate::commands::acl::AclUser>>,
    /// CLIENT NO-TOUCH: reads do not change access times.
    pub no_touch: bool,
    /// A script's client (Lua's redis.call): SORT then orders what it would leave unordered.
    pub script: bool,
    /// A script's time: its commands see the clock as it was when it started, on every shard,
    /// as Redis's scripts do (a key does not expire in the middle of one). 8 bytes in the
    /// caller that carries it across the mesh: a time is never 0.
    pub time_ms: Option<std::num::NonZeroU64>,
    /// The error reply of the command just run was counted already (a script's error that
    /// its `redis.call` raised, counted when that call failed, as Redis counts it once).
    pub error_counted: bool,
    /// CLIENT NO-EVICT.
    pub no_evict: bool,
    /// QUIT: close once the pending replies are written.
    pub close_after_reply: bool,
    /// CLIENT REPLY OFF: replies are dropped (pushes still go out).
    pub reply_off: bool,
    /// CLIENT REPLY SKIP: the next command's reply is dropped.
    pub reply_skip_next: bool,
    /// The running command's reply is dropped (it came after CLIENT REPLY SKIP), unless the
    /// command is CLIENT REPLY ON, which clears this so that its own OK goes out (as Redis).
    pub reply_skip_current: bool,
    /// RESET ran: tracking goes off after its reply (turning BCAST off asks every shard).
    pub tracking_reset: bool,
    /// Commands queued since MULTI, or `None` outside a transaction.
    pub multi: Option<Vec<Vec<Vec<u8>>>>,
    /// A command queued since MULTI was refused (unknown, wrong arity): EXEC aborts.
    pub multi_failed: bool,
    /// The hold token while EXEC runs with every shard held.
    pub hold: Option<crate::shard::HoldToken>,
    /// WATCHed keys: (database, key, entry version when watched; `None` when absent).
    pub watched: Vec<(usize, Vec<u8>, Option<u32>)>,
    /// Pub/Sub channels, patterns and shard channels listened to.
    pub subscriptions: crate::commands::pubsub::Subscriptions,
    /// MONITOR: every command run on the server is pushed to this connection.
    pub monitor: bool,
    /// Where the executor's timing of the next command starts ([`CommandClock`]).
    pub command_clock: CommandClock,
    /// The table index of the command this client ran last: a client mostly repeats a few
    /// commands, and comparing its name with one entry costs less than the name lookup.
    pub last_command_index: Option<usize>,
}

/// Where the executor's timing of a command starts. Each command is timed for its
/// statistics (INFO commandstats and latencystats, the slow log), and a clock read costs about
/// as much as the lookup of a small key. A connection running the requests of a read batch one
/// after the other lets the time read at the end of one command be the start of the next, so a
/// command costs one clock read instead of two. The time a command is charged then also holds
/// its own parsing (tens of nanoseconds), as the time between two commands of a batch is nothing
/// else. The connection says [`CommandClock::Fresh`] whenever it waited between two commands
/// (for input, for a flush), so a wait is never charged to a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandClock {
    /// Every command reads the clock at its start (scripts, transports, EXEC's callers).
    Unchained,
    /// The next command reads the clock at its start, and leaves its end for the one after.
    Fresh,
    /// The previous command ended at this time, just before the next one started.
    Ended(crate::clock::Ticks),
}

impl CommandClock {
    /// The start of the command beginning now.
    pub fn start(&self) -> crate::clock::Ticks {
        match *self {
            Self::Ended(ended) => ended,
            Self::Unchained | Self::Fresh => crate::clock::now(),
        }
    }

    /// A command ended at `ended`.
    pub fn end(&mut self, ended: crate::clock::Ticks) {
        if *self != Self::Unchained {
            *self = Self::Ended(ended);
        }
    }

    /// The next command starts after a wait (or a command that was not timed here): it reads
    /// the clock itself.
    pub fn restart(&mut self) {
        if *self != Self::Unchained {
            *self = Self::Fresh;
        }
    }
}
