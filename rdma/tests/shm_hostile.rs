//! A local client that turns on the shared memory the shm provider hands it: it takes the
//! memfds from the handshake itself and tries to shrink, grow and write them. Unsealed, one
//! `ftruncate` of a region to zero makes the server's next publish touch pages past the end of the
//! file: SIGBUS, and the whole server is gone. Sealed, every attempt fails, and the server goes on
//! publishing and serving.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::thread;
use std::time::{Duration, Instant};

use ember_rdma::client::{Client, ClientConfig};
use ember_rdma::fabric::Fabric;
use ember_rdma::region::RegionConfig;
use ember_rdma::server::{Handler, MemoryStore, MessageServer};
use ember_rdma::shm::{socket, ShmFabric};

const FABRIC: ShmFabric = ShmFabric {
    ring_capacity: 1 << 16,
};

/// Descriptors in the handshake before the regions: ring memfd, server doorbell, client doorbell.
const REGION_FD_FIRST: usize = 3;

fn config() -> RegionConfig {
    RegionConfig {
        bucket_count: 256,
        log_len: 64 * 1024,
        segment_count: 8,
        key_len_max: 32,
        value_len_max: 512,
    }
}

fn socket_path(name: &str) -> String {
    std::env::temp_dir()
        .join(format!(
            "ember-rdma-hostile-{name}-{}.sock",
            std::process::id()
        ))
        .to_str()
        .unwrap()
        .to_string()
}

/// The errno of the last failed call, or 0 when `result` says it succeeded.
fn outcome(failed: bool) -> i32 {
    if failed {
        std::io::Error::last_os_error().raw_os_error().unwrap_or(-1)
    } else {
        0
    }
}

fn file_len(fd: RawFd) -> i64 {
    // SAFETY: stat is plain data, filled by fstat for a valid descriptor.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fd is open for the whole test; stat points to writable memory.
    assert_eq!(unsafe { libc::fstat(fd, &mut stat) }, 0);
    stat.st_size
}

/// Maps `len` bytes of `fd` shared with `protection`; the errno, or 0 when it mapped (and then
/// unmaps it again).
fn try_map(fd: RawFd, len: usize, protection: i32) -> i32 {
    // SAFETY: a fresh mapping at an address the kernel picks; unmapped before returning.
    unsafe {
        let base = libc::mmap(
            std::ptr::null_mut(),
            len,
            protection,
            libc::MAP_SHARED,
            fd,
            0,
        );
        if base == libc::MAP_FAILED {
            return outcome(true);
        }
        libc::munmap(base, len);
        0
    }
}

/// A read-only shared mapping made writable afterwards; the errno, or 0 when it became writable.
fn try_mprotect_writable(fd: RawFd, len: usize) -> i32 {
    // SAFETY: as in try_map; the mapping is private to this function.
    unsafe {
        let base = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            fd,
            0,
        );
        assert_ne!(base, libc::MAP_FAILED, "a read-only mapping is allowed");
        let result = libc::mprotect(base, len, libc::PROT_READ | libc::PROT_WRITE);
        let errno = outcome(result != 0);
        libc::munmap(base, len);
        errno
    }
}

/// The same file opened again read-write through /proc (memfds are mode 0777).
fn reopen_read_write(fd: RawFd) -> OwnedFd {
    let path = CString::new(format!("/proc/self/fd/{fd}")).unwrap();
    // SAFETY: a valid path; the descriptor returned is owned below.
    let raw = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    assert!(raw >= 0, "reopen: {}", std::io::Error::last_os_error());
    // SAFETY: raw is a fresh descriptor nothing else owns.
    unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) }
}

fn try_truncate(fd: RawFd, len: i64) -> i32 {
    // SAFETY: a valid descriptor; no memory is passed.
    outcome(unsafe { libc::ftruncate(fd, len) } != 0)
}

fn try_write_byte(fd: RawFd, offset: i64) -> i32 {
    let byte = [0xA5u8];
    // SAFETY: a valid descriptor and a live one-byte buffer.
    outcome(unsafe { libc::pwrite(fd, byte.as_ptr().cast(), 1, offset) } != 1)
}

fn try_fallocate(fd: RawFd, mode: i32, offset: i64, len: i64) -> i32 {
    // SAFETY: a valid descriptor; no memory is passed.
    outcome(unsafe { libc::fallocate(fd, mode, offset, len) } != 0)
}

/// Frees the pages of `0..len` (reads then see zeros; the size stays).
fn try_punch_hole(fd: RawFd, len: i64) -> i32 {
    try_fallocate(
        fd,
        libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
        0,
        len,
    )
}

/// Every attempt on the memfds of one handshake: (name, errno; 0 means it worked). Names
/// ending in "(allowed)" are what a client may do with its own ring.
fn attack(path: &str) -> Vec<(&'static str, i32)> {
    let stream = UnixStream::connect(path).unwrap();
    let mut hello = vec![0u8; 4096];
    let (_, fds) = socket::recv_with_fds(&stream, &mut hello).unwrap();
    assert!(fds.len() > REGION_FD_FIRST, "no region in the handshake");
    let ring = fds[0].as_raw_fd();
    let region = fds[REGION_FD_FIRST].as_raw_fd();
    let (ring_len, region_len) = (file_len(ring), file_len(region));
    let reopened = reopen_read_write(region);
    let read_write = libc::PROT_READ | libc::PROT_WRITE;
    let attempts = vec![
        (
            "region: writable mapping",
            try_map(region, 4096, read_write),
        ),
        (
            "region: mapping made writable",
            try_mprotect_writable(region, 4096),
        ),
        ("region: write", try_write_byte(region, 0)),
        (
            "region: write past the end",
            try_write_byte(region, region_len),
        ),
        ("region: grow", try_truncate(region, region_len * 2)),
        (
            "region: grow by fallocate",
            try_fallocate(region, 0, region_len, 4096),
        ),
        (
            "region: reopened, write",
            try_write_byte(reopened.as_raw_fd(), 0),
        ),
        (
            "region: reopened, shrink",
            try_truncate(reopened.as_raw_fd(), 0),
        ),
        ("region: shrink to nothing", try_truncate(region, 0)),
        ("region: punch a hole", try_punch_hole(region, region_len)),
        ("ring: grow", try_truncate(ring, ring_len * 2)),
        ("ring: shrink to nothing", try_truncate(ring, 0)),
        (
            "ring: writable mapping (allowed)",
            try_map(ring, 4096, read_write),
        ),
        // Zeros, as a write would give: the ring's reader checks every record it pops.
        (
            "ring: punch a hole (allowed)",
            try_punch_hole(ring, ring_len),
        ),
    ];
    assert_eq!(file_len(region), region_len, "the region's size changed");
    assert_eq!(file_len(ring), ring_len, "the ring's size changed");
    attempts
}

#[test]
fn a_client_that_resizes_or_writes_its_memfds_cannot_crash_the_server() {
    let mut store = MemoryStore::new(config()).unwrap();
    store.set(b"canary", b"before").unwrap();
    let path = socket_path("resize");
    let mut server =
        MessageServer::listen_shm(FABRIC, &path, vec![store.region().memory().clone()]).unwrap();
    let hostile = thread::spawn({
        let path = path.clone();
        move || attack(&path)
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while !hostile.is_finished() {
        server
            .run_once(
                &mut store,
                Duration::from_micros(20),
                Duration::from_millis(1),
            )
            .unwrap();
        assert!(
            Instant::now() < deadline,
            "the hostile client never finished"
        );
    }
    let attempts = hostile.join().unwrap();
    for (name, errno) in &attempts {
        if name.ends_with("(allowed)") {
            assert_eq!(*errno, 0, "{name}: refused");
        } else {
            assert_ne!(*errno, 0, "{name}: it worked");
        }
    }
    // Publishes touch every part of the log (it is reclaimed several times over): any page
    // gone from the file would be SIGBUS here.
    for round in 0..2_000u32 {
        let key = format!("key:{}", round % 300);
        store
            .set(key.as_bytes(), &round.to_le_bytes().repeat(32))
            .unwrap();
    }
    store.set(b"canary", b"after").unwrap();
    let reader = thread::spawn(move || {
        let mut client =
            Client::new(FABRIC.connect(&path).unwrap(), ClientConfig::default()).unwrap();
        client.set(b"written", b"by a good client").unwrap();
        let mut value = Vec::new();
        let lookup = client.get_one_sided(b"canary", &mut value).unwrap();
        (lookup, value, client.get(b"written").unwrap())
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while !reader.is_finished() {
        server
            .run_once(
                &mut store,
                Duration::from_micros(20),
                Duration::from_millis(1),
            )
            .unwrap();
        assert!(Instant::now() < deadline, "the good client never finished");
    }
    let (lookup, value, written) = reader.join().unwrap();
    assert_eq!(
        (lookup, value),
        (ember_rdma::reader::Lookup::Hit, b"after".to_vec())
    );
    assert_eq!(written.as_deref(), Some(&b"by a good client"[..]));
}
