//! Protected mode as Redis 7.0: with `protected-mode yes` and no password for the default user,
//! a client that is not 127.0.0.1 or ::1 reads Redis's DENIED error and is disconnected. A
//! client bound to 127.0.0.2 before it connects is such a client, on this host.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use common::{Ember, RedisOracle, READ_TIMEOUT};
use socket2::{Domain, Socket, Type};

/// Connects to 127.0.0.1:`port` from `source`, sends PING, and returns all it reads until the
/// server closes or the read times out.
fn ping_from(source: &str, port: u16) -> String {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    let source: SocketAddr = format!("{source}:0").parse().unwrap();
    socket
        .bind(&source.into())
        .expect("bind the source address");
    let target: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    socket.connect(&target.into()).expect("connect");
    let mut stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    stream.write_all(b"PING\r\n").unwrap();
    let mut reply = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(read) => {
                reply.extend_from_slice(&chunk[..read]);
                // A served client gets its reply and stays connected; a denied one is closed.
                if reply.ends_with(b"\r\n") && !reply.starts_with(b"-DENIED") {
                    break;
                }
            }
        }
    }
    String::from_utf8_lossy(&reply).into_owned()
}

#[test]
fn non_loopback_clients_are_denied_as_by_redis() {
    let ember = Ember::start_with(&["--threads", "2"]);
    let denied = ping_from("127.0.0.2", ember.port);
    assert!(
        denied.starts_with("-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user."),
        "{denied}"
    );
    assert!(denied.ends_with("accepting connections from the outside.\r\n"));
    assert_eq!(ping_from("127.0.0.1", ember.port), "+PONG\r\n");
    // Redis's words exactly, and the rejection counted as Redis counts it.
    if let Some(redis) = RedisOracle::start() {
        assert_eq!(denied, ping_from("127.0.0.2", redis.port));
    }
    let mut con = ember.connect(false);
    let info: String = redis::cmd("INFO").arg("stats").query(&mut con).unwrap();
    assert!(info.contains("rejected_connections:1\r\n"), "{info}");

    // CONFIG SET protected-mode no lets the client in at once.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("protected-mode")
        .arg("no")
        .query(&mut con)
        .unwrap();
    assert_eq!(ping_from("127.0.0.2", ember.port), "+PONG\r\n");
}

#[test]
fn a_password_or_protected_mode_no_lets_clients_in() {
    let with_password = Ember::start_with(&["--threads", "1", "--requirepass", "secret"]);
    assert_eq!(
        ping_from("127.0.0.2", with_password.port),
        "-NOAUTH Authentication required.\r\n"
    );
    let unprotected = Ember::start_with(&["--threads", "1", "--protected-mode", "no"]);
    assert_eq!(ping_from("127.0.0.2", unprotected.port), "+PONG\r\n");
}
