//! A minimal level-triggered epoll wrapper: the load generator drives many
//! connections from one thread, never one thread per connection.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// What a registered socket should wake the poller for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interest {
    /// Wake when bytes can be read.
    Read,
    /// Wake when bytes can be read or the send buffer has room again.
    ReadWrite,
}

impl Interest {
    fn bits(self) -> u32 {
        let read = (libc::EPOLLIN | libc::EPOLLRDHUP) as u32;
        match self {
            Interest::Read => read,
            Interest::ReadWrite => read | libc::EPOLLOUT as u32,
        }
    }
}

/// One epoll instance, closed on drop.
pub struct Poller {
    fd: OwnedFd,
    events: Vec<libc::epoll_event>,
}

/// One readiness report: the token given at registration and what is ready.
#[derive(Clone, Copy, Debug)]
pub struct Readiness {
    /// The token the socket was registered with.
    pub token: u64,
    /// Bytes (or end of stream, or an error) are waiting to be read.
    pub readable: bool,
    /// The send buffer has room.
    pub writable: bool,
}

/// Most readiness reports taken from the kernel per wait; more wait for the next call.
const EVENTS_PER_WAIT_MAX: usize = 256;

impl Poller {
    /// Creates an epoll instance.
    ///
    /// # Errors
    /// Returns the operating system's error when `epoll_create1` fails (out of descriptors).
    pub fn new() -> io::Result<Self> {
        // SAFETY: epoll_create1 takes no pointers; a negative result is checked below.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let empty = libc::epoll_event { events: 0, u64: 0 };
        Ok(Poller {
            fd,
            events: vec![empty; EVENTS_PER_WAIT_MAX],
        })
    }

    /// Registers `socket` under `token`.
    ///
    /// # Errors
    /// Returns the operating system's error from `epoll_ctl`.
    pub fn add(&self, socket: RawFd, token: u64, interest: Interest) -> io::Result<()> {
        self.control(libc::EPOLL_CTL_ADD, socket, token, interest)
    }

    /// Changes what `socket` is watched for.
    ///
    /// # Errors
    /// Returns the operating system's error from `epoll_ctl`.
    pub fn modify(&self, socket: RawFd, token: u64, interest: Interest) -> io::Result<()> {
        self.control(libc::EPOLL_CTL_MOD, socket, token, interest)
    }

    fn control(
        &self,
        operation: i32,
        socket: RawFd,
        token: u64,
        interest: Interest,
    ) -> io::Result<()> {
        let mut event = libc::epoll_event {
            events: interest.bits(),
            u64: token,
        };
        // SAFETY: both descriptors are open (the caller owns `socket`), and `event` is a valid
        // epoll_event that outlives the call; the kernel copies it.
        let result = unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), operation, socket, &mut event) };
        if result < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Waits up to `timeout_ms` (0: return at once, as a spinning client does; -1: forever)
    /// and appends what is ready to `ready`, which it clears first.
    ///
    /// # Errors
    /// Returns the operating system's error from `epoll_wait`, except EINTR, which reads as
    /// nothing ready.
    pub fn wait(&mut self, ready: &mut Vec<Readiness>, timeout_ms: i32) -> io::Result<()> {
        ready.clear();
        // SAFETY: `events` holds EVENTS_PER_WAIT_MAX initialised entries and the kernel writes at
        // most that many, as the length argument says.
        let count = unsafe {
            libc::epoll_wait(
                self.fd.as_raw_fd(),
                self.events.as_mut_ptr(),
                EVENTS_PER_WAIT_MAX as i32,
                timeout_ms,
            )
        };
        if count < 0 {
            let error = io::Error::last_os_error();
            if error.kind() == io::ErrorKind::Interrupted {
                return Ok(());
            }
            return Err(error);
        }
        let read_bits = (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32;
        for event in &self.events[..count as usize] {
            let bits = event.events;
            ready.push(Readiness {
                token: event.u64,
                readable: bits & read_bits != 0,
                writable: bits & libc::EPOLLOUT as u32 != 0,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn reports_readable_socket_with_its_token() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let mut poller = Poller::new().unwrap();
        poller.add(server.as_raw_fd(), 7, Interest::Read).unwrap();
        let mut ready = Vec::new();
        poller.wait(&mut ready, 0).unwrap();
        assert!(ready.is_empty(), "nothing sent yet: {ready:?}");
        client.write_all(b"x").unwrap();
        poller.wait(&mut ready, 1000).unwrap();
        assert_eq!(ready.len(), 1);
        assert_eq!(ready[0].token, 7);
        assert!(ready[0].readable);
        assert!(!ready[0].writable);
        poller
            .modify(server.as_raw_fd(), 8, Interest::ReadWrite)
            .unwrap();
        poller.wait(&mut ready, 1000).unwrap();
        assert_eq!(ready[0].token, 8);
        assert!(ready[0].writable);
    }
}
