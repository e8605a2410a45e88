//! File descriptors over a Unix socket (SCM_RIGHTS): how the shm provider hands its memfds and
//! eventfds to a client.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use crate::error::{Error, ErrorKind, Result};

/// The most descriptors one handshake carries: rings, two doorbells and up to 64 regions.
pub const FD_COUNT_MAX: usize = 67;

fn control_len(fd_count: usize) -> usize {
    // SAFETY: CMSG_SPACE is a pure size computation.
    unsafe { libc::CMSG_SPACE((fd_count * std::mem::size_of::<RawFd>()) as u32) as usize }
}

/// Sends `bytes` with `fds` attached in one sendmsg.
///
/// # Errors
/// `Config` with more than [`FD_COUNT_MAX`] descriptors; `Io` when sendmsg fails or sends short.
pub fn send_with_fds(stream: &UnixStream, bytes: &[u8], fds: &[RawFd]) -> Result<()> {
    if fds.len() > FD_COUNT_MAX {
        return Err(Error::new(
            ErrorKind::Config,
            format!(
                "{} descriptors exceed the limit of {FD_COUNT_MAX}",
                fds.len()
            ),
        ));
    }
    // u64 storage keeps the control buffer aligned for cmsghdr.
    let mut control = vec![0u64; control_len(fds.len()).div_ceil(8)];
    let mut iov = libc::iovec {
        iov_base: bytes.as_ptr() as *mut libc::c_void,
        iov_len: bytes.len(),
    };
    // SAFETY: msghdr is plain data; all pointers set below point to live buffers of the stated
    // lengths for the duration of sendmsg.
    let mut header: libc::msghdr = unsafe { std::mem::zeroed() };
    header.msg_iov = &mut iov;
    header.msg_iovlen = 1;
    if !fds.is_empty() {
        header.msg_control = control.as_mut_ptr().cast();
        header.msg_controllen = control_len(fds.len());
        // SAFETY: the control buffer holds CMSG_SPACE(n fds) bytes, so the first header and its
        // data (n descriptors) fit; CMSG_FIRSTHDR is non-null because msg_controllen > 0.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&header);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of_val(fds) as u32) as usize;
            std::ptr::copy_nonoverlapping(
                fds.as_ptr(),
                libc::CMSG_DATA(cmsg).cast::<RawFd>(),
                fds.len(),
            );
        }
    }
    // SAFETY: header describes live buffers (see above); the socket is valid.
    let sent = unsafe { libc::sendmsg(stream.as_raw_fd(), &header, libc::MSG_NOSIGNAL) };
    if sent < 0 {
        return Err(Error::last_os("sendmsg"));
    }
    if sent as usize != bytes.len() {
        return Err(Error::new(
            ErrorKind::Io,
            format!("sendmsg sent {sent} of {} bytes", bytes.len()),
        ));
    }
    Ok(())
}

/// Receives up to `buffer.len()` bytes and any descriptors attached (at most [`FD_COUNT_MAX`]);
/// returns the byte count and the descriptors, owned (closed on drop).
///
/// # Errors
/// `Io` when recvmsg fails; `Protocol` when the peer attached more descriptors than fit
/// (the kernel truncates them).
pub fn recv_with_fds(stream: &UnixStream, buffer: &mut [u8]) -> Result<(usize, Vec<OwnedFd>)> {
    let mut control = vec![0u64; control_len(FD_COUNT_MAX).div_ceil(8)];
    let mut iov = libc::iovec {
        iov_base: buffer.as_mut_ptr().cast(),
        iov_len: buffer.len(),
    };
    // SAFETY: plain data; pointers below refer to live buffers for the duration of recvmsg.
    let mut header: libc::msghdr = unsafe { std::mem::zeroed() };
    header.msg_iov = &mut iov;
    header.msg_iovlen = 1;
    header.msg_control = control.as_mut_ptr().cast();
    header.msg_controllen = control_len(FD_COUNT_MAX);
    // SAFETY: header describes live buffers; the socket is valid.
    let received =
        unsafe { libc::recvmsg(stream.as_raw_fd(), &mut header, libc::MSG_CMSG_CLOEXEC) };
    if received < 0 {
        return Err(Error::last_os("recvmsg"));
    }
    let mut fds = Vec::new();
    // SAFETY: the kernel filled header.msg_control with well-formed cmsgs up to
    // msg_controllen; CMSG_NXTHDR stays within it; SCM_RIGHTS data holds descriptors that are
    // now ours, each taken into an OwnedFd exactly once.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&header);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data_len = (*cmsg).cmsg_len - libc::CMSG_LEN(0) as usize;
                let count = data_len / std::mem::size_of::<RawFd>();
                let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                for i in 0..count {
                    fds.push(OwnedFd::from_raw_fd(data.add(i).read_unaligned()));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&header, cmsg);
        }
    }
    if header.msg_flags & libc::MSG_CTRUNC != 0 {
        return Err(Error::new(
            ErrorKind::Protocol,
            "peer attached more descriptors than the handshake allows",
        ));
    }
    Ok((received as usize, fds))
}

/// Whether the peer of `stream` is still connected: a non-blocking peek that reads 0 bytes means
/// it closed (or died: the kernel closes a dead process's sockets).
pub fn peer_alive(stream: &UnixStream) -> bool {
    let mut byte = 0u8;
    // SAFETY: one-byte peek into a live byte; non-blocking.
    let peeked = unsafe {
        libc::recv(
            stream.as_raw_fd(),
            (&mut byte as *mut u8).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    if peeked == 0 {
        return false;
    }
    if peeked < 0 {
        let os = std::io::Error::last_os_error();
        return matches!(
            os.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
        );
    }
    true
}
