//! The shared-memory provider, for clients on the same host.
//!
//! Connection set-up: the server listens on a Unix socket. For each client it creates one memfd
//! holding two [rings](ring) (client to server, server to client) and an eventfd doorbell for the
//! client, then sends the client, in one message with SCM_RIGHTS, the ring memfd, the server's
//! doorbell, the client's doorbell and the memfd of every exposed region. The client maps the
//! regions read-only: a READ is a copy from that mapping and costs the server nothing. Every
//! memfd is sealed before it is sent (size fixed; regions also write-sealed), so a client that
//! resizes or writes what it was given gets an error instead of crashing the server. SEND
//! pushes into the peer's ring; RECV pops from ours. The Unix socket stays open only so that each
//! side notices when the other goes away.

pub mod memory;
pub mod ring;
pub mod socket;

use std::collections::VecDeque;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};
use crate::fabric::{
    Completion, CompletionKind, Connection, Fabric, Listener, LocalBuffer, RemoteRegion,
};
use memory::{PeerAccess, SharedMemory};
use ring::{ring_len, Consumer, Doorbell, Producer, Ring};

const HELLO_MAGIC: &[u8; 8] = b"EMBRSHM1";
/// Exposed regions per listener: one per shard, and no server runs more than 64 shards here.
pub const REGION_COUNT_MAX: usize = 64;
const HELLO_LEN_MAX: usize = 8 + 8 * 4 + 8 * REGION_COUNT_MAX;
/// Data bytes of each ring by default: 1 MiB holds thousands of requests in flight.
pub const RING_CAPACITY_DEFAULT: usize = 1 << 20;
/// Outstanding READ/SEND completions a connection queues before `post_*` says WouldBlock: the
/// depth of a verbs send queue, so that code written against shm also runs on verbs.
pub const WORK_OUTSTANDING_MAX: usize = 256;
/// Bytes a connection may register for local buffers in all.
pub const LOCAL_BUFFER_LEN_MAX: usize = 1 << 26;
/// RECV completions one `poll` hands out, so a flood of messages cannot starve READs.
const RECV_PER_POLL_MAX: usize = 64;

/// The shm provider. `ring_capacity` is the data size of each of a connection's two rings.
#[derive(Clone, Copy, Debug)]
pub struct ShmFabric {
    /// Data bytes per ring (a power of two, see [`ring::RING_CAPACITY_MIN`]).
    pub ring_capacity: usize,
}

impl Default for ShmFabric {
    fn default() -> Self {
        Self {
            ring_capacity: RING_CAPACITY_DEFAULT,
        }
    }
}

/// Listens on a Unix socket and sets up a connection per client.
#[derive(Debug)]
pub struct ShmListener {
    listener: UnixListener,
    exposed: Vec<Arc<SharedMemory>>,
    doorbell: Arc<Doorbell>,
    ring_capacity: usize,
    path: String,
}

/// One end of a shm connection.
#[derive(Debug)]
pub struct ShmConnection {
    stream: UnixStream,
    regions: Vec<Arc<SharedMemory>>,
    remote_regions: Vec<RemoteRegion>,
    tx: Producer,
    rx: Consumer,
    /// The doorbell this side parks on.
    own_doorbell: Arc<Doorbell>,
    buffers: Vec<Vec<u8>>,
    buffer_len_total: usize,
    done: VecDeque<(u64, CompletionKind)>,
}

impl ShmConnection {
    /// The doorbell this side parks on (a server shares one among all its connections).
    pub fn doorbell(&self) -> &Arc<Doorbell> {
        &self.own_doorbell
    }

    /// Announces that this side will park; true when a message is already waiting (do not park).
    pub fn prepare_park(&mut self) -> bool {
        self.rx.prepare_park()
    }

    /// Clears the parked flag after waking.
    pub fn unpark(&mut self) {
        self.rx.unpark();
    }

    /// The mapped regions the peer exposed (client side): the protocol reads its header locally.
    pub fn region_memory(&self, index: usize) -> Option<&Arc<SharedMemory>> {
        self.regions.get(index)
    }
}

impl ShmListener {
    /// The doorbell every connection of this listener rings when it sends to the server.
    pub fn doorbell(&self) -> &Arc<Doorbell> {
        &self.doorbell
    }

    /// The listening socket (so a server can also wake on new connections).
    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        self.listener.as_raw_fd()
    }

    fn handshake(&self, stream: UnixStream) -> Result<ShmConnection> {
        stream
            .set_nonblocking(false)
            .map_err(|e| Error::io("socket blocking", &e))?;
        let capacity = self.ring_capacity;
        let to_server_base = 0;
        let to_client_base = ring_len(capacity).next_multiple_of(64);
        let ring_memory = Arc::new(SharedMemory::create(
            "ember-shm-rings",
            to_client_base + ring_len(capacity),
        )?);
        ring_memory.seal_for_peers(PeerAccess::ReadWrite)?;
        let client_doorbell = Arc::new(Doorbell::new()?);
        let mut hello = Vec::with_capacity(HELLO_LEN_MAX);
        hello.extend_from_slice(HELLO_MAGIC);
        for word in [
            ring_memory.len(),
            capacity,
            to_client_base,
            self.exposed.len(),
        ] {
            hello.extend_from_slice(&(word as u64).to_le_bytes());
        }
        for region in &self.exposed {
            hello.extend_from_slice(&(region.len() as u64).to_le_bytes());
        }
        let mut fds = vec![
            ring_memory.raw_fd(),
            self.doorbell.raw_fd(),
            client_doorbell.raw_fd(),
        ];
        fds.extend(self.exposed.iter().map(|region| region.raw_fd()));
        socket::send_with_fds(&stream, &hello, &fds)?;
        stream
            .set_nonblocking(true)
            .map_err(|e| Error::io("socket non-blocking", &e))?;
        let rx = Consumer::new(Ring::attach(ring_memory.clone(), to_server_base, capacity)?);
        let tx = Producer::new(
            Ring::attach(ring_memory, to_client_base, capacity)?,
            client_doorbell,
        );
        Ok(ShmConnection::new(
            stream,
            Vec::new(),
            tx,
            rx,
            self.doorbell.clone(),
        ))
    }
}

impl Drop for ShmListener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Listener for ShmListener {
    type Connection = ShmConnection;

    fn accept(&mut self) -> Result<Option<ShmConnection>> {
        match self.listener.accept() {
            Ok((stream, _)) => match self.handshake(stream) {
                Ok(connection) => Ok(Some(connection)),
                // A client that vanishes mid-handshake must not take the listener down.
                Err(_) => Ok(None),
            },
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
            Err(error) => Err(Error::io("accept", &error)),
        }
    }
}

impl ShmConnection {
    fn new(
        stream: UnixStream,
        regions: Vec<Arc<SharedMemory>>,
        tx: Producer,
        rx: Consumer,
        own_doorbell: Arc<Doorbell>,
    ) -> Self {
        let remote_regions = regions
            .iter()
            .enumerate()
            .map(|(index, region)| RemoteRegion {
                index: index as u32,
                len: region.len() as u64,
            })
            .collect();
        Self {
            stream,
            regions,
            remote_regions,
            tx,
            rx,
            own_doorbell,
            buffers: Vec::new(),
            buffer_len_total: 0,
            done: VecDeque::new(),
        }
    }

    fn check_outstanding(&self) -> Result<()> {
        if self.done.len() >= WORK_OUTSTANDING_MAX {
            return Err(Error::new(
                ErrorKind::WouldBlock,
                format!("{WORK_OUTSTANDING_MAX} completions not yet polled"),
            ));
        }
        Ok(())
    }
}

fn read_hello(stream: &UnixStream) -> Result<(Vec<u8>, Vec<OwnedFd>)> {
    let mut hello = vec![0u8; HELLO_LEN_MAX];
    let (mut len, fds) = socket::recv_with_fds(stream, &mut hello)?;
    if len == 0 {
        return Err(Error::new(
            ErrorKind::Disconnected,
            "server closed during the handshake",
        ));
    }
    // The fixed part, then the region lengths it announces; a stream socket may split them.
    let mut reader = stream;
    let fixed = 8 + 8 * 4;
    while len < fixed {
        let n = reader
            .read(&mut hello[len..fixed])
            .map_err(|e| Error::io("read hello", &e))?;
        if n == 0 {
            return Err(Error::new(
                ErrorKind::Disconnected,
                "server closed during the handshake",
            ));
        }
        len += n;
    }
    if &hello[..8] != HELLO_MAGIC {
        return Err(Error::new(
            ErrorKind::Protocol,
            "not an Ember shm server (bad hello magic)",
        ));
    }
    let region_count = u64::from_le_bytes(hello[32..40].try_into().expect("8 bytes"));
    if region_count as usize > REGION_COUNT_MAX {
        return Err(Error::new(
            ErrorKind::Protocol,
            format!("server announces {region_count} regions, over {REGION_COUNT_MAX}"),
        ));
    }
    let total = fixed + 8 * region_count as usize;
    if len < total {
        reader
            .read_exact(&mut hello[len..total])
            .map_err(|e| Error::io("read hello", &e))?;
    }
    hello.truncate(total);
    Ok((hello, fds))
}

impl Fabric for ShmFabric {
    type Connection = ShmConnection;
    type Listener = ShmListener;

    fn connect(&self, address: &str) -> Result<ShmConnection> {
        let stream = UnixStream::connect(address)
            .map_err(|e| Error::io(&format!("connect to shm socket {address}"), &e))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| Error::io("socket timeout", &e))?;
        let (hello, fds) = read_hello(&stream)?;
        let word =
            |i: usize| u64::from_le_bytes(hello[8 + 8 * i..16 + 8 * i].try_into().expect("8"));
        let (ring_memory_len, capacity, to_client_base, region_count) = (
            word(0) as usize,
            word(1) as usize,
            word(2) as usize,
            word(3) as usize,
        );
        if fds.len() != 3 + region_count {
            return Err(Error::new(
                ErrorKind::Protocol,
                format!(
                    "hello carries {} descriptors, expected {}",
                    fds.len(),
                    3 + region_count
                ),
            ));
        }
        let mut fds = fds.into_iter();
        let mut next_fd = || fds.next().expect("count checked above");
        let ring_memory = Arc::new(SharedMemory::from_fd(next_fd(), ring_memory_len, true)?);
        let server_doorbell = Arc::new(Doorbell::from_fd(next_fd()));
        let client_doorbell = Arc::new(Doorbell::from_fd(next_fd()));
        let mut regions = Vec::with_capacity(region_count);
        for index in 0..region_count {
            let len = word(4 + index) as usize;
            // Read-only: a client can look at the server's data but never scribble on it.
            regions.push(Arc::new(SharedMemory::from_fd(next_fd(), len, false)?));
        }
        let tx = Producer::new(
            Ring::attach(ring_memory.clone(), 0, capacity)?,
            server_doorbell,
        );
        let rx = Consumer::new(Ring::attach(ring_memory, to_client_base, capacity)?);
        stream
            .set_nonblocking(true)
            .map_err(|e| Error::io("socket non-blocking", &e))?;
        Ok(ShmConnection::new(stream, regions, tx, rx, client_doorbell))
    }

    fn listen(&self, address: &str, exposed: Vec<Arc<SharedMemory>>) -> Result<ShmListener> {
        if exposed.len() > REGION_COUNT_MAX {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "{} regions exceed the limit of {REGION_COUNT_MAX}",
                    exposed.len()
                ),
            ));
        }
        // Sealed once here, before any client can receive them.
        for region in &exposed {
            region.seal_for_peers(PeerAccess::ReadOnly)?;
        }
        let ring_bytes = ring_len(self.ring_capacity);
        Ring::attach(
            Arc::new(SharedMemory::create("ember-shm-probe", ring_bytes)?),
            0,
            self.ring_capacity,
        )
        .map_err(|e| Error::new(ErrorKind::Config, e.to_string()))?;
        // A stale socket file from a previous run would make bind fail; remove it only when it is
        // a socket, never another kind of file.
        if let Ok(meta) = std::fs::symlink_metadata(address) {
            use std::os::unix::fs::FileTypeExt;
            if meta.file_type().is_socket() {
                let _ = std::fs::remove_file(address);
            }
        }
        let listener = UnixListener::bind(address)
            .map_err(|e| Error::io(&format!("bind shm socket {address}"), &e))?;
        // Whoever can connect can READ every published value without a password: only this
        // user may connect.
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(address, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| Error::io(&format!("chmod shm socket {address}"), &e))?;
        }
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::io("listener non-blocking", &e))?;
        Ok(ShmListener {
            listener,
            exposed,
            doorbell: Arc::new(Doorbell::new()?),
            ring_capacity: self.ring_capacity,
            path: address.to_string(),
        })
    }
}

impl Connection for ShmConnection {
    fn register(&mut self, len: usize) -> Result<LocalBuffer> {
        if len == 0 || self.buffer_len_total + len > LOCAL_BUFFER_LEN_MAX {
            return Err(Error::new(
                ErrorKind::Config,
                format!("local buffer of {len} bytes: zero or over {LOCAL_BUFFER_LEN_MAX} in all"),
            ));
        }
        self.buffer_len_total += len;
        self.buffers.push(vec![0u8; len]);
        Ok(LocalBuffer(self.buffers.len() as u32 - 1))
    }

    fn buffer(&self, buffer: LocalBuffer) -> &[u8] {
        &self.buffers[buffer.0 as usize]
    }

    fn remote_regions(&self) -> &[RemoteRegion] {
        &self.remote_regions
    }

    fn post_read(
        &mut self,
        work_id: u64,
        remote: u32,
        remote_offset: u64,
        local: LocalBuffer,
        local_offset: usize,
        len: usize,
    ) -> Result<()> {
        self.check_outstanding()?;
        let region = self
            .regions
            .get(remote as usize)
            .ok_or_else(|| Error::new(ErrorKind::Protocol, format!("no remote region {remote}")))?;
        let buffer = self
            .buffers
            .get_mut(local.0 as usize)
            .ok_or_else(|| Error::new(ErrorKind::Config, format!("no local buffer {}", local.0)))?;
        let target = local_offset
            .checked_add(len)
            .and_then(|end| buffer.get_mut(local_offset..end))
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Protocol,
                    format!("read of {len} bytes at {local_offset} overruns the local buffer"),
                )
            })?;
        let remote_offset = usize::try_from(remote_offset)
            .map_err(|_| Error::new(ErrorKind::Protocol, "remote offset overflows"))?;
        region.read(remote_offset, target)?;
        self.done.push_back((work_id, CompletionKind::Read));
        Ok(())
    }

    fn post_send(&mut self, work_id: u64, message: &[u8]) -> Result<()> {
        self.check_outstanding()?;
        self.tx.push(message)?;
        self.done.push_back((work_id, CompletionKind::Send));
        Ok(())
    }

    fn poll(&mut self, on_completion: &mut dyn FnMut(Completion<'_>)) -> Result<usize> {
        let mut count = 0;
        while let Some((work_id, kind)) = self.done.pop_front() {
            on_completion(Completion {
                work_id,
                kind,
                success: true,
                message: &[],
            });
            count += 1;
        }
        for _ in 0..RECV_PER_POLL_MAX {
            let popped = self.rx.pop(|message| {
                on_completion(Completion {
                    work_id: 0,
                    kind: CompletionKind::Recv,
                    success: true,
                    message,
                })
            })?;
            if !popped {
                break;
            }
            count += 1;
        }
        Ok(count)
    }

    fn park(&mut self, timeout: Duration) -> Result<()> {
        if !self.done.is_empty() || self.rx.prepare_park() {
            self.rx.unpark();
            return Ok(());
        }
        let waited = self.own_doorbell.wait(timeout);
        self.rx.unpark();
        waited
    }

    fn is_connected(&mut self) -> bool {
        socket::peer_alive(&self.stream)
    }
}
