//! The physical floor for a loopback round trip on this machine: two threads that both
//! busy-poll non-blocking TCP sockets and bounce a request-sized message, pinned where the
//! server and the load run. No server can answer a GET faster than this echo.

use crate::load::pin_current_thread;
use hdrhistogram::Histogram;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// Bytes bounced per round trip: the size of a GET of a 16-byte key.
pub const MESSAGE_LEN: usize = 35;

/// How long either side waits for the other before the measurement is abandoned.
const STALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Measures echo round trips for `duration`, the echo thread pinned to `server_cpu` and the
/// caller's thread pinned to `client_cpu` for the measurement (restored afterwards).
/// Returns round-trip latencies in nanoseconds.
///
/// # Errors
/// Returns a message when a socket cannot be set up, a CPU cannot be pinned, or either side
/// stalls for longer than five seconds.
pub fn measure(
    duration: Duration,
    server_cpu: Option<usize>,
    client_cpu: Option<usize>,
) -> Result<Histogram<u64>, String> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|error| format!("echo bind failed: {error}"))?;
    let address = listener
        .local_addr()
        .map_err(|error| format!("echo address: {error}"))?;
    std::thread::scope(|scope| {
        let echo = std::thread::Builder::new()
            .name("echo".to_string())
            .spawn_scoped(scope, move || echo_side(listener, server_cpu))
            .map_err(|error| format!("cannot start the echo thread: {error}"))?;
        let measured = std::thread::Builder::new()
            .name("echo-client".to_string())
            .spawn_scoped(scope, move || client_side(address, duration, client_cpu))
            .map_err(|error| format!("cannot start the echo client: {error}"))?
            .join()
            .map_err(|_| "the echo client panicked".to_string())?;
        let echoed = echo
            .join()
            .map_err(|_| "the echo thread panicked".to_string())?;
        echoed?;
        measured
    })
}

fn setup(stream: &TcpStream) -> Result<(), String> {
    stream
        .set_nodelay(true)
        .and_then(|()| stream.set_nonblocking(true))
        .map_err(|error| format!("echo socket set-up failed: {error}"))
}

fn echo_side(listener: TcpListener, cpu: Option<usize>) -> Result<(), String> {
    if let Some(cpu) = cpu {
        pin_current_thread(cpu)?;
    }
    let (mut stream, _) = listener
        .accept()
        .map_err(|error| format!("echo accept failed: {error}"))?;
    setup(&stream)?;
    let mut message = [0u8; MESSAGE_LEN];
    loop {
        match spin_read_exact(&mut stream, &mut message)? {
            false => return Ok(()),
            true => spin_write_all(&mut stream, &message)?,
        }
    }
}

fn client_side(
    address: std::net::SocketAddr,
    duration: Duration,
    cpu: Option<usize>,
) -> Result<Histogram<u64>, String> {
    if let Some(cpu) = cpu {
        pin_current_thread(cpu)?;
    }
    let mut stream =
        TcpStream::connect(address).map_err(|error| format!("echo connect failed: {error}"))?;
    setup(&stream)?;
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)
        .map_err(|error| format!("histogram: {error}"))?;
    let request = [b'e'; MESSAGE_LEN];
    let mut answer = [0u8; MESSAGE_LEN];
    let start = Instant::now();
    while start.elapsed() < duration {
        let sent = Instant::now();
        spin_write_all(&mut stream, &request)?;
        if !spin_read_exact(&mut stream, &mut answer)? {
            return Err("the echo side closed early".to_string());
        }
        histogram.saturating_record(sent.elapsed().as_nanos() as u64);
        if answer != request {
            return Err("the echo came back changed".to_string());
        }
    }
    Ok(histogram)
}

/// Fills `buffer`, spinning on WouldBlock. False when the peer closed before the first byte.
fn spin_read_exact(stream: &mut TcpStream, buffer: &mut [u8]) -> Result<bool, String> {
    let mut filled = 0;
    let mut waiting_since: Option<Instant> = None;
    while filled < buffer.len() {
        match stream.read(&mut buffer[filled..]) {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => return Err("echo peer closed mid-message".to_string()),
            Ok(read) => filled += read,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                // Checking the clock only every so often keeps the spin tight.
                let since = *waiting_since.get_or_insert_with(Instant::now);
                if since.elapsed() > STALL_TIMEOUT {
                    return Err("echo peer stalled".to_string());
                }
                std::hint::spin_loop();
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(format!("echo receive failed: {error}")),
        }
    }
    Ok(true)
}

fn spin_write_all(stream: &mut TcpStream, buffer: &[u8]) -> Result<(), String> {
    let mut sent = 0;
    while sent < buffer.len() {
        match stream.write(&buffer[sent..]) {
            Ok(0) => return Err("echo peer stopped accepting bytes".to_string()),
            Ok(written) => sent += written,
            Err(error)
                if error.kind() == io::ErrorKind::WouldBlock
                    || error.kind() == io::ErrorKind::Interrupted =>
            {
                std::hint::spin_loop();
            }
            Err(error) => return Err(format!("echo send failed: {error}")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_round_trips() {
        let histogram = measure(Duration::from_millis(200), None, None).unwrap();
        // Two spinning threads on a busy machine may manage only a few round trips: the test
        // checks that they are made and timed, not how many.
        assert!(!histogram.is_empty(), "no round trip");
        // A loopback round trip is at least a few hundred nanoseconds.
        assert!(histogram.min() > 100, "min {} ns", histogram.min());
    }
}
