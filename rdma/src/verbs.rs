//! The verbs provider: RDMA NICs and SoftRoCE through the `sideway` crate, which opens
//! libibverbs at run time, so this builds and starts on machines without RDMA.
//!
//! Reliable-connection queue pairs; connection set-up by exchanging queue-pair numbers (with PSN,
//! LID and GID) over TCP, the way `ibv_rc_pingpong` does. The server also sends, for every exposed
//! region, the address, rkey and length a READ needs. Memory registration: exposed regions are
//! registered with remote-read access once per listener; local buffers per connection.
//!
//! Work ids: the provider keeps the top two bits of a verbs `wr_id` for the kind of work, so
//! callers' ids must stay below 2^62.
//!
//! SoftRoCE set-up (no NIC needed; README has the full steps):
//! `modprobe rdma_rxe; rdma link add rxe0 type rxe netdev IFACE`, then `ibv_devices` lists `rxe0`.

use crate::error::{Error, ErrorKind, Result};

/// Message bytes per RECV slot; a message over this is refused with `TooLarge`.
pub const MESSAGE_LEN_MAX: usize = 64 * 1024;
/// RECVs kept posted per connection: how many messages may arrive before the consumer polls.
pub const RECV_DEPTH: usize = 64;
/// SENDs and READs in flight per connection (the send queue depth).
pub const SEND_QUEUE_DEPTH: usize = 128;
const HELLO_MAGIC: &[u8; 8] = b"EMBRVRB1";
/// Regions one hello may announce.
pub const REGION_COUNT_MAX: usize = 64;

/// What each side of a connection tells the other over TCP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Queue-pair number.
    pub qp_number: u32,
    /// First packet sequence number this side sends.
    pub psn: u32,
    /// Port LID (InfiniBand; 0 on RoCE).
    pub lid: u16,
    /// Port GID (RoCE needs it; all zero when unused).
    pub gid: [u8; 16],
    /// Regions a peer may READ: (address, rkey, length).
    pub regions: Vec<(u64, u32, u64)>,
}

impl Endpoint {
    /// Encodes for the TCP exchange.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(38 + 20 * self.regions.len());
        out.extend_from_slice(HELLO_MAGIC);
        out.extend_from_slice(&self.qp_number.to_le_bytes());
        out.extend_from_slice(&self.psn.to_le_bytes());
        out.extend_from_slice(&self.lid.to_le_bytes());
        out.extend_from_slice(&self.gid);
        out.extend_from_slice(&(self.regions.len() as u32).to_le_bytes());
        for (address, rkey, len) in &self.regions {
            out.extend_from_slice(&address.to_le_bytes());
            out.extend_from_slice(&rkey.to_le_bytes());
            out.extend_from_slice(&len.to_le_bytes());
        }
        out
    }

    /// Bytes of the fixed part, before the regions.
    pub const FIXED_LEN: usize = 8 + 4 + 4 + 2 + 16 + 4;
    /// Bytes per region entry.
    pub const REGION_LEN: usize = 8 + 4 + 8;

    /// Decodes the fixed part and returns it with the count of region entries that follow.
    ///
    /// # Errors
    /// `Protocol` on a bad magic or more than [`REGION_COUNT_MAX`] regions.
    pub fn decode_fixed(bytes: &[u8; Self::FIXED_LEN]) -> Result<(Self, usize)> {
        if &bytes[0..8] != HELLO_MAGIC {
            return Err(Error::new(
                ErrorKind::Protocol,
                "not an Ember verbs peer (bad magic)",
            ));
        }
        let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4"));
        let count = u32_at(34) as usize;
        if count > REGION_COUNT_MAX {
            return Err(Error::new(
                ErrorKind::Protocol,
                format!("peer announces {count} regions, over {REGION_COUNT_MAX}"),
            ));
        }
        let mut gid = [0u8; 16];
        gid.copy_from_slice(&bytes[18..34]);
        Ok((
            Self {
                qp_number: u32_at(8),
                psn: u32_at(12) & 0x00FF_FFFF,
                lid: u16::from_le_bytes([bytes[16], bytes[17]]),
                gid,
                regions: Vec::with_capacity(count),
            },
            count,
        ))
    }

    /// Decodes one region entry.
    pub fn decode_region(bytes: &[u8; Self::REGION_LEN]) -> (u64, u32, u64) {
        (
            u64::from_le_bytes(bytes[0..8].try_into().expect("8")),
            u32::from_le_bytes(bytes[8..12].try_into().expect("4")),
            u64::from_le_bytes(bytes[12..20].try_into().expect("8")),
        )
    }
}

/// Lists the RDMA devices libibverbs sees, or says why there are none.
///
/// # Errors
/// `Unavailable` with the reason: verbs support not built, libibverbs missing, or no device
/// (the message names the SoftRoCE command that would create one).
pub fn devices() -> Result<Vec<String>> {
    imp::devices()
}

#[cfg(not(feature = "verbs"))]
mod imp {
    use super::*;

    pub fn devices() -> Result<Vec<String>> {
        Err(Error::new(
            ErrorKind::Unavailable,
            "verbs support was not built (ember-rdma's `verbs` feature is off)",
        ))
    }
}

#[cfg(feature = "verbs")]
pub use imp::{VerbsConnection, VerbsFabric, VerbsListener};

#[cfg(feature = "verbs")]
mod imp {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::Arc;
    use std::time::Duration;

    use sideway::ibverbs::address::{AddressHandleAttribute, Gid};
    use sideway::ibverbs::completion::{BasicCompletionQueue, WorkCompletionStatus};
    use sideway::ibverbs::device::{DeviceInfo, DeviceList};
    use sideway::ibverbs::device_context::{DeviceContext, Mtu};
    use sideway::ibverbs::memory_region::MemoryRegion;
    use sideway::ibverbs::protection_domain::ProtectionDomain;
    use sideway::ibverbs::queue_pair::{
        BasicQueuePair, PostSendGuard, QueuePair, QueuePairAttribute, QueuePairState,
        SetScatterGatherEntry, WorkRequestFlags,
    };
    use sideway::ibverbs::AccessFlags;

    use super::*;
    use crate::fabric::{
        Completion, CompletionKind, Connection, Fabric, Listener, LocalBuffer, RemoteRegion,
    };
    use crate::shm::memory::SharedMemory;

    const KIND_SHIFT: u32 = 62;
    const KIND_READ: u64 = 1;
    const KIND_SEND: u64 = 2;
    const KIND_RECV: u64 = 3;
    const ID_MASK: u64 = (1 << KIND_SHIFT) - 1;

    fn unavailable(what: impl std::fmt::Display) -> Error {
        Error::new(ErrorKind::Unavailable, what.to_string())
    }

    pub fn devices() -> Result<Vec<String>> {
        let list = DeviceList::new().map_err(|e| {
            // libibverbs returns no list at all when the kernel has no verbs support loaded.
            let reason = if std::path::Path::new("/sys/class/infiniband_verbs").exists() {
                format!("libibverbs cannot list devices ({e})")
            } else {
                "the kernel has no verbs support loaded (/sys/class/infiniband_verbs is missing)"
                    .to_string()
            };
            unavailable(format!(
                "no RDMA device ({reason}; ibv_devices lists none); for SoftRoCE run \
                 `modprobe rdma_rxe; rdma link add rxe0 type rxe netdev IFACE`"
            ))
        })?;
        let names: Vec<String> = list.iter().map(|device| device.name()).collect();
        if names.is_empty() {
            return Err(unavailable(
                "no RDMA device (ibv_devices lists none); for SoftRoCE run \
                 `modprobe rdma_rxe; rdma link add rxe0 type rxe netdev IFACE`",
            ));
        }
        Ok(names)
    }

    /// The verbs provider: which device and port, and which GID index (RoCE v2 is usually 1).
    #[derive(Clone, Debug)]
    pub struct VerbsFabric {
        /// Device name (`mlx5_0`, `rxe0`); `None` takes the first device.
        pub device: Option<String>,
        /// Port number on the device, from 1.
        pub port: u8,
        /// GID table index used for RoCE addressing.
        pub gid_index: u8,
    }

    impl Default for VerbsFabric {
        fn default() -> Self {
            Self {
                device: None,
                port: 1,
                gid_index: 1,
            }
        }
    }

    struct Device {
        context: Arc<DeviceContext>,
        pd: Arc<ProtectionDomain>,
    }

    impl VerbsFabric {
        fn open(&self) -> Result<Device> {
            let list = DeviceList::new()
                .map_err(|e| unavailable(format!("libibverbs cannot list devices: {e}")))?;
            let device = match &self.device {
                Some(name) => list.iter().find(|device| &device.name() == name),
                None => list.iter().next(),
            };
            let Some(device) = device else {
                return Err(match &self.device {
                    Some(name) => unavailable(format!("no RDMA device named {name}")),
                    None => devices()
                        .err()
                        .unwrap_or_else(|| unavailable("no RDMA device")),
                });
            };
            let context = device
                .open()
                .map_err(|e| unavailable(format!("cannot open {}: {e}", device.name())))?;
            let pd = context
                .alloc_pd()
                .map_err(|e| unavailable(format!("cannot allocate a protection domain: {e}")))?;
            Ok(Device { context, pd })
        }

        fn local_endpoint(&self, device: &Device, qp: &BasicQueuePair) -> Result<Endpoint> {
            let port = device
                .context
                .query_port(self.port)
                .map_err(|e| unavailable(format!("query port {}: {e}", self.port)))?;
            // RoCE needs a GID; InfiniBand may have none at this index, then the LID routes.
            let gid = device
                .context
                .query_gid(self.port, u32::from(self.gid_index))
                .map(|gid| gid.raw)
                .unwrap_or([0; 16]);
            Ok(Endpoint {
                qp_number: qp.qp_number(),
                psn: psn(),
                lid: port.lid(),
                gid,
                regions: Vec::new(),
            })
        }

        fn connection(
            &self,
            device: Device,
            mut stream: TcpStream,
            exposed: &[(Arc<SharedMemory>, Arc<MemoryRegion>)],
        ) -> Result<VerbsConnection> {
            let cq = device
                .context
                .create_cq_builder()
                .setup_cqe((SEND_QUEUE_DEPTH + RECV_DEPTH) as u32)
                .build()
                .map_err(|e| unavailable(format!("create completion queue: {e}")))?;
            let mut qp = device
                .pd
                .create_qp_builder()
                .setup_send_cq(Arc::clone(&cq))
                .setup_recv_cq(Arc::clone(&cq))
                .setup_max_send_wr(SEND_QUEUE_DEPTH as u32)
                .setup_max_recv_wr(RECV_DEPTH as u32)
                .build()
                .map_err(|e| unavailable(format!("create queue pair: {e}")))?;
            let mut attr = QueuePairAttribute::new();
            attr.setup_state(QueuePairState::Init)
                .setup_pkey_index(0)
                .setup_port(self.port)
                .setup_access_flags(AccessFlags::LocalWrite | AccessFlags::RemoteRead);
            qp.modify(&attr)
                .map_err(|e| unavailable(format!("queue pair to INIT: {e}")))?;
            let mut local = self.local_endpoint(&device, &qp)?;
            local.regions = exposed
                .iter()
                .map(|(memory, mr)| (memory.base() as u64, mr.rkey(), memory.len() as u64))
                .collect();
            stream
                .write_all(&local.encode())
                .map_err(|e| Error::io("send queue-pair info", &e))?;
            let remote = read_endpoint(&mut stream)?;
            self.ready(&mut qp, &local, &remote)?;
            let mut connection = VerbsConnection::new(device, cq, qp, stream, remote.regions)?;
            connection.post_all_recvs()?;
            Ok(connection)
        }

        fn ready(
            &self,
            qp: &mut BasicQueuePair,
            local: &Endpoint,
            remote: &Endpoint,
        ) -> Result<()> {
            let mut attr = QueuePairAttribute::new();
            attr.setup_state(QueuePairState::ReadyToReceive)
                .setup_path_mtu(Mtu::Mtu1024)
                .setup_dest_qp_num(remote.qp_number)
                .setup_rq_psn(remote.psn)
                .setup_max_dest_read_atomic(16)
                .setup_min_rnr_timer(12);
            let mut address = AddressHandleAttribute::new();
            address
                .setup_dest_lid(remote.lid)
                .setup_port(self.port)
                .setup_service_level(0);
            if remote.gid != [0; 16] {
                address
                    .setup_grh_src_gid_index(self.gid_index)
                    .setup_grh_dest_gid(&Gid { raw: remote.gid })
                    .setup_grh_hop_limit(1);
            }
            attr.setup_address_vector(&address);
            qp.modify(&attr)
                .map_err(|e| unavailable(format!("queue pair to RTR: {e}")))?;
            let mut attr = QueuePairAttribute::new();
            attr.setup_state(QueuePairState::ReadyToSend)
                .setup_sq_psn(local.psn)
                .setup_timeout(14)
                .setup_retry_cnt(7)
                .setup_rnr_retry(7)
                .setup_max_read_atomic(16);
            qp.modify(&attr)
                .map_err(|e| unavailable(format!("queue pair to RTS: {e}")))?;
            Ok(())
        }
    }

    fn psn() -> u32 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        (nanos ^ std::process::id().rotate_left(8)) & 0x00FF_FFFF
    }

    fn read_endpoint(stream: &mut TcpStream) -> Result<Endpoint> {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| Error::io("socket timeout", &e))?;
        let mut fixed = [0u8; Endpoint::FIXED_LEN];
        stream
            .read_exact(&mut fixed)
            .map_err(|e| Error::io("read queue-pair info", &e))?;
        let (mut endpoint, count) = Endpoint::decode_fixed(&fixed)?;
        for _ in 0..count {
            let mut entry = [0u8; Endpoint::REGION_LEN];
            stream
                .read_exact(&mut entry)
                .map_err(|e| Error::io("read region info", &e))?;
            endpoint.regions.push(Endpoint::decode_region(&entry));
        }
        Ok(endpoint)
    }

    /// A registered buffer: the memory and its registration (dropped after the registration).
    struct Registered {
        mr: Arc<MemoryRegion>,
        bytes: Box<[u8]>,
    }

    impl Registered {
        fn new(pd: &Arc<ProtectionDomain>, len: usize) -> Result<Self> {
            let bytes = vec![0u8; len].into_boxed_slice();
            // SAFETY: `bytes` is a live heap allocation of `len` bytes that this struct owns and
            // never reallocates; `mr` is declared first, so it is deregistered before the bytes
            // are freed.
            let mr = unsafe { pd.reg_mr(bytes.as_ptr() as usize, len, AccessFlags::LocalWrite) }
                .map_err(|e| unavailable(format!("register {len} bytes: {e}")))?;
            Ok(Self { mr, bytes })
        }

        fn address(&self, offset: usize) -> u64 {
            self.bytes.as_ptr() as u64 + offset as u64
        }
    }

    /// One RC queue pair to a peer.
    pub struct VerbsConnection {
        // Field order is drop order: the queue pair goes before the memory it names, and the
        // completion queue, protection domain and device context last.
        qp: BasicQueuePair,
        buffers: Vec<Registered>,
        recv_slots: Registered,
        send_slots: Registered,
        cq: Arc<BasicCompletionQueue>,
        _device: Device,
        stream: TcpStream,
        remote: Vec<(u64, u32, u64)>,
        remote_regions: Vec<RemoteRegion>,
        send_slot_next: usize,
        in_flight: usize,
        /// Completions taken from the queue by one poll, reused so polling allocates nothing.
        finished: Vec<(u64, bool, usize)>,
    }

    impl std::fmt::Debug for VerbsConnection {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("VerbsConnection")
                .field("qp_number", &self.qp.qp_number())
                .field("remote_regions", &self.remote_regions)
                .field("in_flight", &self.in_flight)
                .finish()
        }
    }

    impl VerbsConnection {
        fn new(
            device: Device,
            cq: Arc<BasicCompletionQueue>,
            qp: BasicQueuePair,
            stream: TcpStream,
            remote: Vec<(u64, u32, u64)>,
        ) -> Result<Self> {
            let recv_slots = Registered::new(&device.pd, RECV_DEPTH * MESSAGE_LEN_MAX)?;
            let send_slots = Registered::new(&device.pd, SEND_QUEUE_DEPTH * MESSAGE_LEN_MAX)?;
            let remote_regions = remote
                .iter()
                .enumerate()
                .map(|(index, &(_, _, len))| RemoteRegion {
                    index: index as u32,
                    len,
                })
                .collect();
            stream
                .set_nonblocking(true)
                .map_err(|e| Error::io("socket non-blocking", &e))?;
            Ok(Self {
                qp,
                buffers: Vec::new(),
                recv_slots,
                send_slots,
                cq,
                _device: device,
                stream,
                remote,
                remote_regions,
                send_slot_next: 0,
                in_flight: 0,
                finished: Vec::with_capacity(SEND_QUEUE_DEPTH + RECV_DEPTH),
            })
        }

        fn post_recv(&mut self, slot: usize) -> Result<()> {
            let address = self.recv_slots.address(slot * MESSAGE_LEN_MAX);
            let lkey = self.recv_slots.mr.lkey();
            let mut guard = self.qp.start_post_recv();
            let handle = guard.construct_wr((KIND_RECV << KIND_SHIFT) | slot as u64);
            // SAFETY: the slot lies inside `recv_slots`, registered with local write and owned by
            // this connection, which outlives the queue pair's use of it.
            unsafe { handle.setup_sge(lkey, address, MESSAGE_LEN_MAX as u32) };
            guard
                .post()
                .map_err(|e| Error::new(ErrorKind::Disconnected, format!("post RECV: {e}")))
        }

        fn post_all_recvs(&mut self) -> Result<()> {
            (0..RECV_DEPTH).try_for_each(|slot| self.post_recv(slot))
        }

        fn check_in_flight(&self) -> Result<()> {
            if self.in_flight >= SEND_QUEUE_DEPTH {
                return Err(Error::new(ErrorKind::WouldBlock, "send queue full"));
            }
            Ok(())
        }
    }

    impl Connection for VerbsConnection {
        fn register(&mut self, len: usize) -> Result<LocalBuffer> {
            if len == 0 || len > crate::shm::LOCAL_BUFFER_LEN_MAX {
                return Err(Error::new(
                    ErrorKind::Config,
                    format!("local buffer of {len} bytes"),
                ));
            }
            let registered = Registered::new(&self._device.pd, len)?;
            self.buffers.push(registered);
            Ok(LocalBuffer(self.buffers.len() as u32 - 1))
        }

        fn buffer(&self, buffer: LocalBuffer) -> &[u8] {
            &self.buffers[buffer.0 as usize].bytes
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
            self.check_in_flight()?;
            let &(base, rkey, region_len) = self.remote.get(remote as usize).ok_or_else(|| {
                Error::new(ErrorKind::Protocol, format!("no remote region {remote}"))
            })?;
            let buffer = self.buffers.get(local.0 as usize).ok_or_else(|| {
                Error::new(ErrorKind::Config, format!("no local buffer {}", local.0))
            })?;
            let fits_remote = remote_offset
                .checked_add(len as u64)
                .is_some_and(|end| end <= region_len);
            let fits_local = local_offset
                .checked_add(len)
                .is_some_and(|end| end <= buffer.bytes.len());
            if !fits_remote || !fits_local || work_id > ID_MASK {
                return Err(Error::new(
                    ErrorKind::Protocol,
                    format!("READ of {len} bytes at {remote_offset} (local {local_offset}) out of range"),
                ));
            }
            let (lkey, address) = (buffer.mr.lkey(), buffer.address(local_offset));
            let mut guard = self.qp.start_post_send();
            let handle = guard
                .construct_wr(
                    (KIND_READ << KIND_SHIFT) | work_id,
                    WorkRequestFlags::Signaled,
                )
                .setup_read(rkey, base + remote_offset);
            // SAFETY: the target range was checked to lie inside a buffer registered with local
            // write and owned by this connection.
            unsafe { handle.setup_sge(lkey, address, len as u32) };
            guard
                .post()
                .map_err(|e| Error::new(ErrorKind::Disconnected, format!("post READ: {e}")))?;
            self.in_flight += 1;
            Ok(())
        }

        fn post_send(&mut self, work_id: u64, message: &[u8]) -> Result<()> {
            if message.len() > MESSAGE_LEN_MAX {
                return Err(Error::new(
                    ErrorKind::TooLarge,
                    format!(
                        "message of {} bytes exceeds {MESSAGE_LEN_MAX}",
                        message.len()
                    ),
                ));
            }
            self.check_in_flight()?;
            if work_id > ID_MASK {
                return Err(Error::new(
                    ErrorKind::Config,
                    "work id uses the provider's top bits",
                ));
            }
            // Slots are used round-robin and at most SEND_QUEUE_DEPTH operations are in flight,
            // so the slot taken now finished its previous SEND.
            let slot = self.send_slot_next;
            self.send_slot_next = (slot + 1) % SEND_QUEUE_DEPTH;
            let offset = slot * MESSAGE_LEN_MAX;
            self.send_slots.bytes[offset..offset + message.len()].copy_from_slice(message);
            let (lkey, address) = (self.send_slots.mr.lkey(), self.send_slots.address(offset));
            let mut guard = self.qp.start_post_send();
            let handle = guard
                .construct_wr(
                    (KIND_SEND << KIND_SHIFT) | work_id,
                    WorkRequestFlags::Signaled,
                )
                .setup_send();
            // SAFETY: the slot lies inside `send_slots`, registered and owned by this connection,
            // and is not rewritten until this SEND completes (see above).
            unsafe { handle.setup_sge(lkey, address, message.len() as u32) };
            guard
                .post()
                .map_err(|e| Error::new(ErrorKind::Disconnected, format!("post SEND: {e}")))?;
            self.in_flight += 1;
            Ok(())
        }

        fn poll(&mut self, on_completion: &mut dyn FnMut(Completion<'_>)) -> Result<usize> {
            let mut finished = std::mem::take(&mut self.finished);
            finished.clear();
            if let Ok(poller) = self.cq.start_poll() {
                for wc in poller {
                    let ok = wc.status() == WorkCompletionStatus::Success as u32;
                    finished.push((wc.wr_id(), ok, wc.byte_len() as usize));
                }
            }
            let count = finished.len();
            for &(wr_id, success, len) in &finished {
                let id = wr_id & ID_MASK;
                match wr_id >> KIND_SHIFT {
                    KIND_RECV => {
                        let slot = id as usize;
                        let offset = slot * MESSAGE_LEN_MAX;
                        let len = len.min(MESSAGE_LEN_MAX);
                        on_completion(Completion {
                            work_id: 0,
                            kind: CompletionKind::Recv,
                            success,
                            message: &self.recv_slots.bytes[offset..offset + len],
                        });
                        if success {
                            self.post_recv(slot)?;
                        }
                    }
                    kind => {
                        self.in_flight = self.in_flight.saturating_sub(1);
                        let kind = if kind == KIND_READ {
                            CompletionKind::Read
                        } else {
                            CompletionKind::Send
                        };
                        on_completion(Completion {
                            work_id: id,
                            kind,
                            success,
                            message: &[],
                        });
                    }
                }
            }
            Ok(count)
        }

        fn park(&mut self, timeout: Duration) -> Result<()> {
            // Verbs completions are busy-polled; an idle peer sleeps in short steps instead of
            // arming a completion channel, which keeps one code path for all completions.
            std::thread::sleep(timeout.min(Duration::from_micros(100)));
            Ok(())
        }

        fn is_connected(&mut self) -> bool {
            let mut byte = [0u8; 1];
            match self.stream.peek(&mut byte) {
                Ok(0) => false,
                Ok(_) => true,
                Err(error) => error.kind() == std::io::ErrorKind::WouldBlock,
            }
        }
    }

    /// Accepts verbs connections on a TCP port.
    pub struct VerbsListener {
        fabric: VerbsFabric,
        listener: TcpListener,
        // Registrations before the memory they name (drop order).
        exposed: Vec<(Arc<SharedMemory>, Arc<MemoryRegion>)>,
        _exposed_device: Device,
    }

    impl std::fmt::Debug for VerbsListener {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("VerbsListener")
                .field("regions", &self.exposed.len())
                .finish()
        }
    }

    impl VerbsListener {
        /// The TCP address connections are set up through.
        ///
        /// # Errors
        /// `Io` when the socket cannot say.
        pub fn local_addr(&self) -> Result<std::net::SocketAddr> {
            self.listener
                .local_addr()
                .map_err(|e| Error::io("local_addr", &e))
        }
    }

    impl Listener for VerbsListener {
        type Connection = VerbsConnection;

        fn accept(&mut self) -> Result<Option<VerbsConnection>> {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    let _ = stream.set_nonblocking(false);
                    // The exposed regions were registered on the listener's protection domain;
                    // a READ from this queue pair must use the same one, so the connection gets
                    // a handle to that device rather than opening its own.
                    let device = Device {
                        context: Arc::clone(&self._exposed_device.context),
                        pd: Arc::clone(&self._exposed_device.pd),
                    };
                    match self.fabric.connection(device, stream, &self.exposed) {
                        Ok(connection) => Ok(Some(connection)),
                        Err(_) => Ok(None),
                    }
                }
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
                Err(error) => Err(Error::io("accept", &error)),
            }
        }
    }

    impl Fabric for VerbsFabric {
        type Connection = VerbsConnection;
        type Listener = VerbsListener;

        fn connect(&self, address: &str) -> Result<VerbsConnection> {
            let device = self.open()?;
            let stream = TcpStream::connect(address)
                .map_err(|e| Error::io(&format!("connect to {address}"), &e))?;
            self.connection(device, stream, &[])
        }

        fn listen(&self, address: &str, exposed: Vec<Arc<SharedMemory>>) -> Result<VerbsListener> {
            if exposed.len() > REGION_COUNT_MAX {
                return Err(Error::new(ErrorKind::Config, "too many regions"));
            }
            let device = self.open()?;
            let mut registered = Vec::with_capacity(exposed.len());
            for memory in exposed {
                // SAFETY: the mapping is valid for len bytes for as long as the Arc lives, and the
                // listener keeps the Arc next to the registration, which it drops first.
                let mr = unsafe {
                    device.pd.reg_mr(
                        memory.base() as usize,
                        memory.len(),
                        AccessFlags::LocalWrite | AccessFlags::RemoteRead,
                    )
                }
                .map_err(|e| unavailable(format!("register region for remote read: {e}")))?;
                registered.push((memory, mr));
            }
            let listener = TcpListener::bind(address)
                .map_err(|e| Error::io(&format!("bind {address}"), &e))?;
            listener
                .set_nonblocking(true)
                .map_err(|e| Error::io("listener non-blocking", &e))?;
            Ok(VerbsListener {
                fabric: self.clone(),
                listener,
                exposed: registered,
                _exposed_device: device,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_round_trips_and_bounds_regions() {
        let endpoint = Endpoint {
            qp_number: 0x1234,
            psn: 0xABCDEF,
            lid: 7,
            gid: [9; 16],
            regions: vec![(0x7f00_0000_1000, 0x55, 4096), (1, 2, 3)],
        };
        let bytes = endpoint.encode();
        let fixed: [u8; Endpoint::FIXED_LEN] = bytes[..Endpoint::FIXED_LEN].try_into().unwrap();
        let (mut decoded, count) = Endpoint::decode_fixed(&fixed).unwrap();
        for entry in bytes[Endpoint::FIXED_LEN..]
            .chunks_exact(Endpoint::REGION_LEN)
            .take(count)
        {
            decoded
                .regions
                .push(Endpoint::decode_region(entry.try_into().unwrap()));
        }
        assert_eq!(decoded, endpoint);
        let mut hostile = fixed;
        hostile[34..38].copy_from_slice(&1000u32.to_le_bytes());
        assert_eq!(
            Endpoint::decode_fixed(&hostile).unwrap_err().kind(),
            ErrorKind::Protocol
        );
        hostile[0] = b'X';
        assert_eq!(
            Endpoint::decode_fixed(&hostile).unwrap_err().kind(),
            ErrorKind::Protocol
        );
    }

    #[test]
    fn no_device_is_a_clear_unavailable_error() {
        match devices() {
            Ok(names) => eprintln!("RDMA devices present: {names:?}"),
            Err(error) => {
                assert_eq!(error.kind(), ErrorKind::Unavailable);
                eprintln!("skipped device part: {error}");
            }
        }
    }
}
