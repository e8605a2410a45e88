//! The runtime seam: the only module that names glommio. Shards, listeners, streams, channels,
//! timers and task queues are reached through these few functions and types, so another
//! thread-per-core runtime can replace glommio by rewriting this file alone.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, RawFd};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use glommio::channels::channel_mesh::MeshBuilder;
use glommio::{LocalExecutorBuilder, Placement};

use crate::bell::MeshBell;

pub use futures_lite::{AsyncReadExt, AsyncWriteExt};
pub use glommio::net::{TcpListener, TcpStream};
pub use glommio::task::JoinHandle as Task;
pub use glommio::TaskQueueHandle;

/// Messages between shards travel over a full mesh of bounded single-producer channels. With
/// bells (socket rings on), every message sent also rings the receiving shard's [`MeshBell`]
/// (for a shard that sleeps outside glommio's loop, in its socket ring).
pub struct MeshSenders<T: Send> {
    senders: glommio::channels::channel_mesh::Senders<T>,
    bells: Option<Arc<[MeshBell]>>,
}

impl<T: Send> MeshSenders<T> {
    /// Sends `message` to shard `target`, waiting while its channel is full.
    ///
    /// # Errors
    /// When the channel is closed (the peer is shutting down) or `target` is this shard.
    pub async fn send_to(&self, target: usize, message: T) -> glommio::Result<(), T> {
        let sent = self.senders.send_to(target, message).await;
        if let (Ok(()), Some(bells)) = (&sent, &self.bells) {
            bells[target].ring();
        }
        sent
    }

    /// Sends `message` to shard `target` if its channel has room (the mesh's non-waiting send,
    /// as glommio's `Senders` has it).
    ///
    /// # Errors
    /// When the channel is full or closed, or `target` is this shard.
    #[allow(dead_code)]
    pub fn try_send_to(&self, target: usize, message: T) -> glommio::Result<(), T> {
        let sent = self.senders.try_send_to(target, message);
        if let (Ok(()), Some(bells)) = (&sent, &self.bells) {
            bells[target].ring();
        }
        sent
    }
}

/// The receiving side of the mesh, one stream per peer.
pub type MeshReceiver<T> = glommio::channels::shared_channel::ConnectedReceiver<T>;

/// Starts `shard_count` executors, shard `i` pinned to CPU `cpus[i % cpus.len()]`, each
/// spinning `busy_poll` before it parks, runs `shard_main(index, senders, receivers)` on each,
/// and waits for all of them to finish. `mesh_bells`: give each shard a [`MeshBell`] that
/// every message to it rings (only a shard that sleeps in its socket ring reads it).
///
/// # Errors
/// When an executor cannot be created (no such CPU, io_uring refused by the kernel).
pub fn run_shards<T, F, Fut>(
    shard_count: usize,
    cpus: &[usize],
    busy_poll: Duration,
    channel_capacity: usize,
    mesh_bells: bool,
    shard_main: F,
) -> io::Result<()>
where
    T: Send + 'static,
    F: Fn(usize, MeshSenders<T>, Vec<(usize, MeshReceiver<T>)>) -> Fut + Send + Clone + 'static,
    Fut: Future<Output = ()> + 'static,
{
    assert!(shard_count > 0, "at least one shard");
    let mesh: MeshBuilder<T, _> = MeshBuilder::full(shard_count, channel_capacity);
    let bells: Option<Arc<[MeshBell]>> = if mesh_bells {
        let bells = (0..shard_count)
            .map(|_| MeshBell::new())
            .collect::<io::Result<Vec<_>>>()?;
        Some(bells.into())
    } else {
        None
    };
    let mut handles = Vec::with_capacity(shard_count);
    for index in 0..shard_count {
        let placement = if cpus.is_empty() {
            Placement::Unbound
        } else {
            Placement::Fixed(cpus[index % cpus.len()])
        };
        let mesh = mesh.clone();
        let shard_main = shard_main.clone();
        let bells = bells.clone();
        let handle = LocalExecutorBuilder::new(placement)
            .name(&format!("ember-shard-{index}"))
            .spin_before_park(busy_poll)
            .spawn(move || async move {
                let (senders, mut receivers) = mesh.join().await.expect("mesh join");
                let peer = senders.peer_id();
                if let Some(bells) = &bells {
                    crate::bell::install(bells.clone(), peer);
                }
                let senders = MeshSenders { senders, bells };
                shard_main(peer, senders, receivers.streams()).await;
            })
            .map_err(|error| io::Error::other(format!("cannot start shard {index}: {error}")))?;
        handles.push(handle);
    }
    for handle in handles {
        handle
            .join()
            .map_err(|error| io::Error::other(format!("shard failed: {error}")))?;
    }
    Ok(())
}

/// Binds a listener with SO_REUSEPORT, so every shard can bind the same address; with its
/// descriptor, which stays open as long as the listener (to watch it in the shard's ring).
///
/// # Errors
/// When the address is in use by another program or cannot be bound.
pub fn listen(address: SocketAddr) -> io::Result<(TcpListener, RawFd)> {
    use socket2::{Domain, Protocol, SockAddr, Socket, Type};
    // As glommio's own `TcpListener::bind`, which does not show its descriptor.
    let socket = Socket::new(
        Domain::for_address(address),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    socket.set_reuse_port(true)?;
    socket.bind(&SockAddr::from(address))?;
    socket.listen(1024)?;
    let fd = socket.into_raw_fd();
    // SAFETY: `fd` is a bound, listening socket that nothing else owns; the listener closes it.
    Ok((unsafe { TcpListener::from_raw_fd(fd) }, fd))
}

/// Runs `future` on this shard's current task queue.
pub fn spawn<T: 'static>(future: impl Future<Output = T> + 'static) -> Task<T> {
    glommio::spawn_local(future).detach()
}

/// Runs `future` on task queue `queue` of this shard.
pub fn spawn_into<T: 'static>(
    future: impl Future<Output = T> + 'static,
    queue: TaskQueueHandle,
) -> Task<T> {
    glommio::spawn_local_into(future, queue)
        .expect("task queue exists")
        .detach()
}

/// A task queue for background work (expiry, metrics, inference) with `shares` relative to
/// the default queue's 1000, so cache requests keep their latency.
pub fn background_queue(name: &str, shares: usize) -> TaskQueueHandle {
    glommio::executor().create_task_queue(
        glommio::Shares::Static(shares),
        glommio::Latency::NotImportant,
        name,
    )
}

/// Lets other task queues run if this task has used its time slice (between slices of a long batch).
pub async fn yield_if_needed() {
    glommio::yield_if_needed().await;
}

/// Lets the other runnable tasks of this task queue run first, without a turn of the runtime's I/O loop.
pub async fn yield_now() {
    futures_lite::future::yield_now().await;
}

/// Sleeps without blocking the shard.
pub async fn sleep(duration: Duration) {
    glommio::timer::sleep(duration).await;
}

/// Time this shard's executor spent running tasks (its busy time).
pub fn busy_time() -> Duration {
    glommio::executor().executor_stats().executor_runtime()
}

/// An eventfd that the runtime's reactor can wait on, so that a shard parked inside the
/// runtime's own io_uring wakes when another ring (the shard's socket ring, which signals the
/// eventfd when it has work) needs it.
///
/// The wait is a read of the eventfd submitted to glommio's main ring, the one glommio sleeps
/// on: glommio offers no wait on an arbitrary descriptor's readiness, but it does read any file
/// through io_uring, and a read of an empty eventfd completes when the eventfd is signalled.
/// The eventfd is therefore blocking (io_uring would answer a non-blocking one with EAGAIN);
/// [`Doorbell::drain`] empties it without blocking.
pub struct Doorbell {
    file: glommio::io::BufferedFile,
    fd: RawFd,
}

/// Bytes of an eventfd's counter.
const EVENTFD_COUNTER_LEN: usize = 8;

impl Doorbell {
    /// A new, silent doorbell.
    ///
    /// # Errors
    /// When the kernel refuses an eventfd.
    pub fn new() -> io::Result<Rc<Self>> {
        // SAFETY: eventfd takes no pointers.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a new descriptor that nothing else owns; the file closes it on drop.
        let file = unsafe { glommio::io::BufferedFile::from_raw_fd(fd) };
        debug_assert_eq!(file.as_raw_fd(), fd);
        Ok(Rc::new(Self { file, fd }))
    }

    /// The eventfd, to register with a ring.
    pub fn fd(&self) -> RawFd {
        self.fd
    }

    /// Completes once the doorbell has rung (at once if it rang since the last wait or drain),
    /// and silences it.
    ///
    /// # Errors
    /// When the runtime's read of the eventfd fails.
    pub async fn rung(self: Rc<Self>) -> io::Result<()> {
        self.file
            .read_at(0, EVENTFD_COUNTER_LEN)
            .await
            .map(drop)
            .map_err(|error| io::Error::other(error.to_string()))
    }

    /// Silences the doorbell without waiting (one `preadv2` with RWF_NOWAIT), so that the next
    /// wait sleeps until it rings again instead of waking for a ring already answered.
    pub fn drain(&self) {
        let mut counter = [0u8; EVENTFD_COUNTER_LEN];
        let iovec = libc::iovec {
            iov_base: counter.as_mut_ptr().cast(),
            iov_len: counter.len(),
        };
        // SAFETY: one iovec pointing at `counter`, which outlives the call. An empty eventfd
        // answers EAGAIN (RWF_NOWAIT), a kernel without RWF_NOWAIT for eventfds EOPNOTSUPP:
        // both leave the doorbell as it was, which only costs a spurious wake.
        unsafe {
            libc::preadv2(self.fd, &iovec, 1, -1, libc::RWF_NOWAIT);
        }
    }
}
