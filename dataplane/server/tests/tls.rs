//! TLS on `tls-port`: certificates made at test time with the `openssl` command (a CA, a server
//! and a client certificate, and a client certificate of another CA), then ember served to a
//! rustls client, to `redis-cli --tls` and to redis-py over TLS: plain and TLS ports side by
//! side, TLS alone, client certificates under each `tls-auth-clients`, plain text sent to the
//! TLS port, large values and long pipelines, and the settings rustls cannot honour.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{free_port, Ember, READ_TIMEOUT};
use futures_rustls::pki_types::pem::PemObject;
use futures_rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use futures_rustls::rustls::crypto::ring::default_provider;
use futures_rustls::rustls::{
    version, ClientConfig, ClientConnection, ProtocolVersion, RootCertStore, StreamOwned,
    SupportedProtocolVersion,
};

/// The files of one test's certificates, removed with their folder on drop.
struct Certificates {
    dir: PathBuf,
}

impl Certificates {
    /// Makes them with `openssl`, or returns None (after saying why) when it is not installed.
    fn make(test: &str) -> Option<Self> {
        if Command::new("openssl").arg("version").output().is_err() {
            eprintln!("skipped: the openssl command is not installed (Debian's openssl package)");
            return None;
        }
        let dir = std::env::temp_dir().join(format!("ember-tls-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the certificates' folder");
        let certificates = Self { dir };
        certificates.ca("ca");
        certificates.ca("other-ca");
        certificates.leaf(
            "server",
            "ca",
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        );
        certificates.leaf(
            "client",
            "ca",
            "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
        );
        certificates.leaf(
            "stranger",
            "other-ca",
            "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
        );
        Some(certificates)
    }

    fn openssl(&self, args: &[&str]) {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(&self.dir)
            .output()
            .expect("run openssl");
        assert!(
            output.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn ca(&self, name: &str) {
        self.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.crt"),
            "-days",
            "2",
            "-subj",
            &format!("/CN=Ember test {name}"),
        ]);
    }

    fn leaf(&self, name: &str, ca: &str, extensions: &str) {
        std::fs::write(self.dir.join(format!("{name}.ext")), extensions).expect("write ext");
        self.openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN={name}"),
        ]);
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.crt"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-out",
            &format!("{name}.crt"),
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
        ]);
    }

    /// The path of file `name` (`ca.crt`, `client.key`, ...).
    fn path(&self, name: &str) -> String {
        self.dir
            .join(name)
            .to_str()
            .expect("UTF-8 path")
            .to_string()
    }

    /// Ember's arguments for a TLS port with the server certificate and the CA.
    fn server_args(&self, tls_port: u16, auth_clients: &str) -> Vec<String> {
        [
            "--tls-port",
            &tls_port.to_string(),
            "--tls-cert-file",
            &self.path("server.crt"),
            "--tls-key-file",
            &self.path("server.key"),
            "--tls-ca-cert-file",
            &self.path("ca.crt"),
            "--tls-auth-clients",
            auth_clients,
        ]
        .map(String::from)
        .to_vec()
    }

    /// A rustls client configuration trusting the CA, with the client certificate `client`
    /// (`client`, `stranger`) or none, limited to `versions` when given.
    fn client_config(
        &self,
        client: Option<&str>,
        versions: Option<&[&'static SupportedProtocolVersion]>,
    ) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(self.path("ca.crt")).expect("ca.crt") {
            roots.add(cert.expect("CA certificate")).expect("add CA");
        }
        let builder = ClientConfig::builder_with_provider(Arc::new(default_provider()));
        let builder = match versions {
            Some(versions) => builder.with_protocol_versions(versions),
            None => builder.with_safe_default_protocol_versions(),
        }
        .expect("protocol versions")
        .with_root_certificates(roots);
        let config = match client {
            None => builder.with_no_client_auth(),
            Some(name) => {
                let certs = CertificateDer::pem_file_iter(self.path(&format!("{name}.crt")))
                    .expect("client certificate")
                    .collect::<Result<Vec<_>, _>>()
                    .expect("client certificate");
                let key = PrivateKeyDer::from_pem_file(self.path(&format!("{name}.key")))
                    .expect("client key");
                builder
                    .with_client_auth_cert(certs, key)
                    .expect("client certificate and key")
            }
        };
        Arc::new(config)
    }
}

impl Drop for Certificates {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A TLS client connection speaking raw RESP.
struct TlsClient {
    stream: StreamOwned<ClientConnection, TcpStream>,
    input: Vec<u8>,
}

impl TlsClient {
    /// Connects to 127.0.0.1:`port` and runs the handshake; Err with the reason when refused.
    fn connect(port: u16, config: Arc<ClientConfig>) -> Result<Self, String> {
        let tcp = TcpStream::connect(("127.0.0.1", port)).map_err(|error| error.to_string())?;
        Self::over(tcp, config)
    }

    /// Connects from source address `source` (bound before the connect).
    fn connect_from(source: &str, port: u16, config: Arc<ClientConfig>) -> Result<Self, String> {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .map_err(|error| error.to_string())?;
        let source: std::net::SocketAddr = format!("{source}:0").parse().unwrap();
        socket
            .bind(&source.into())
            .map_err(|error| error.to_string())?;
        let target: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        socket
            .connect(&target.into())
            .map_err(|error| error.to_string())?;
        Self::over(socket.into(), config)
    }

    fn over(tcp: TcpStream, config: Arc<ClientConfig>) -> Result<Self, String> {
        tcp.set_read_timeout(Some(READ_TIMEOUT)).expect("timeout");
        let name = ServerName::try_from("localhost").expect("server name");
        let connection = ClientConnection::new(config, name).map_err(|error| error.to_string())?;
        let mut stream = StreamOwned::new(connection, tcp);
        while stream.conn.is_handshaking() {
            stream
                .conn
                .complete_io(&mut stream.sock)
                .map_err(|error| error.to_string())?;
        }
        Ok(Self {
            stream,
            input: Vec::new(),
        })
    }

    fn protocol_version(&self) -> Option<ProtocolVersion> {
        self.stream.conn.protocol_version()
    }

    /// Sends `bytes` as they are.
    fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// Sends one command and reads its reply (Err when the server closed or refused).
    fn command(&mut self, args: &[&[u8]]) -> std::io::Result<Vec<u8>> {
        self.send(&encode(args))?;
        self.reply()
    }

    /// Reads one whole reply.
    fn reply(&mut self) -> std::io::Result<Vec<u8>> {
        loop {
            if !self.input.is_empty() {
                if let Some(len) = common::reply_len(&self.input) {
                    return Ok(self.input.drain(..len).collect());
                }
            }
            let mut chunk = vec![0u8; 64 * 1024];
            let read = self.stream.read(&mut chunk)?;
            if read == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            self.input.extend_from_slice(&chunk[..read]);
        }
    }
}

/// A request in RESP.
fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Starts ember with `args` and waits for its TLS ready line (for runs without a plain port).
struct TlsOnlyEmber {
    child: Child,
    lines: Arc<std::sync::Mutex<String>>,
}

impl TlsOnlyEmber {
    /// The child and what it printed, once it said `ready` (Ok) or exited (Err with its log).
    fn start(args: &[String]) -> Result<Self, String> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ember"))
            .args(["--bind", "127.0.0.1", "--threads", "2"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ember");
        let lines: Arc<std::sync::Mutex<String>> = Arc::default();
        let stderr = child.stderr.take().expect("stderr");
        let stderr_lines = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                stderr_lines.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        let stdout = child.stdout.take().expect("stdout");
        let stdout_lines = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                stdout_lines.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        let ember = Self { child, lines };
        let mut ember = ember;
        while Instant::now() < deadline {
            if ember
                .log()
                .contains("ember: ready to accept TLS connections on")
            {
                return Ok(ember);
            }
            if let Ok(Some(_)) = ember.child.try_wait() {
                std::thread::sleep(Duration::from_millis(100)); // the log's last lines
                return Err(ember.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!("no ready line in 20 s; log:\n{}", ember.log()))
    }

    fn log(&self) -> String {
        self.lines.lock().unwrap().clone()
    }
}

impl Drop for TlsOnlyEmber {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_side_by_side(certificates: &Certificates, auth_clients: &str) -> (Ember, u16) {
    let tls_port = free_port();
    let mut args = vec!["--port".to_string(), free_port().to_string()];
    args.extend(certificates.server_args(tls_port, auth_clients));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    (Ember::start_with(&args), tls_port)
}

#[test]
fn plain_and_tls_ports_side_by_side() {
    let Some(certificates) = Certificates::make("side") else {
        return;
    };
    let (ember, tls_port) = start_side_by_side(&certificates, "no");
    let mut plain = ember.connect(false);
    let mut tls =
        TlsClient::connect(tls_port, certificates.client_config(None, None)).expect("handshake");
    assert_eq!(tls.command(&[b"PING"]).unwrap(), b"+PONG\r\n");
    let _: () = redis::cmd("SET")
        .arg("from-plain")
        .arg("p")
        .query(&mut plain)
        .unwrap();
    assert_eq!(
        tls.command(&[b"GET", b"from-plain"]).unwrap(),
        b"$1\r\np\r\n"
    );
    assert_eq!(
        tls.command(&[b"SET", b"from-tls", b"t"]).unwrap(),
        b"+OK\r\n"
    );
    let value: String = redis::cmd("GET").arg("from-tls").query(&mut plain).unwrap();
    assert_eq!(value, "t");
    // CONFIG GET shows the TLS settings, on either port.
    let reply = tls.command(&[b"CONFIG", b"GET", b"tls-port"]).unwrap();
    let expected = format!(
        "*2\r\n$8\r\ntls-port\r\n${}\r\n{tls_port}\r\n",
        tls_port.to_string().len()
    );
    assert_eq!(String::from_utf8_lossy(&reply), expected);
    let settings: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("tls-auth-clients")
        .query(&mut plain)
        .unwrap();
    assert_eq!(settings, ["tls-auth-clients", "no"]);
    // Both ports' clients are listed (the TLS port as their local address).
    let clients: String = redis::cmd("CLIENT").arg("LIST").query(&mut plain).unwrap();
    assert!(
        clients.contains(&format!("laddr=127.0.0.1:{tls_port}")),
        "{clients}"
    );
    // CLIENT KILL from the plain port ends the TLS connection.
    let id = tls.command(&[b"CLIENT", b"ID"]).unwrap();
    let id = String::from_utf8_lossy(&id[1..id.len() - 2]).into_owned();
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(&id)
        .query(&mut plain)
        .unwrap();
    assert_eq!(killed, 1);
    assert!(tls.command(&[b"PING"]).is_err());
}

#[test]
fn tls_only_when_port_is_zero() {
    let Some(certificates) = Certificates::make("only") else {
        return;
    };
    let tls_port = free_port();
    let mut args = vec!["--port".to_string(), "0".to_string()];
    args.extend(certificates.server_args(tls_port, "no"));
    let ember = TlsOnlyEmber::start(&args).expect("ember starts");
    let log = ember.log();
    assert!(
        !log.contains("ember: ready to accept connections on"),
        "a plain port was opened: {log}"
    );
    let mut tls =
        TlsClient::connect(tls_port, certificates.client_config(None, None)).expect("handshake");
    assert_eq!(tls.command(&[b"PING"]).unwrap(), b"+PONG\r\n");
}

#[test]
fn client_certificates_under_tls_auth_clients() {
    let Some(certificates) = Certificates::make("auth") else {
        return;
    };
    // yes: a certificate of the CA is required.
    let (ember, tls_port) = start_side_by_side(&certificates, "yes");
    let with_cert = certificates.client_config(Some("client"), None);
    let mut client = TlsClient::connect(tls_port, with_cert.clone()).expect("handshake");
    assert_eq!(client.command(&[b"PING"]).unwrap(), b"+PONG\r\n");
    for refused in [None, Some("stranger")] {
        // Under TLS 1.3 the client finishes its side first: the refusal shows at the first read.
        let outcome = TlsClient::connect(tls_port, certificates.client_config(refused, None))
            .map_err(|error| error.to_string())
            .and_then(|mut client| {
                client
                    .command(&[b"PING"])
                    .map_err(|error| error.to_string())
            });
        assert!(
            outcome.is_err(),
            "client certificate {refused:?} accepted: {outcome:?}"
        );
    }
    // The refused handshakes are logged, and the first client is still served.
    assert_eq!(client.command(&[b"PING"]).unwrap(), b"+PONG\r\n");
    let log = ember.log();
    assert!(
        log.contains("TLS handshake: peer sent no certificates"),
        "{log}"
    );
    drop(ember);

    // optional: no certificate is fine, a certificate of another CA is not.
    let (_ember, tls_port) = start_side_by_side(&certificates, "optional");
    let mut anonymous =
        TlsClient::connect(tls_port, certificates.client_config(None, None)).expect("handshake");
    assert_eq!(anonymous.command(&[b"PING"]).unwrap(), b"+PONG\r\n");
    let mut known = TlsClient::connect(tls_port, with_cert).expect("handshake");
    assert_eq!(known.command(&[b"PING"]).unwrap(), b"+PONG\r\n");
    let stranger = TlsClient::connect(tls_port, certificates.client_config(Some("stranger"), None))
        .and_then(|mut client| {
            client
                .command(&[b"PING"])
                .map_err(|error| error.to_string())
        });
    assert!(stranger.is_err(), "{stranger:?}");
}

#[test]
fn plain_text_on_the_tls_port_closes_only_that_connection() {
    let Some(certificates) = Certificates::make("badhello") else {
        return;
    };
    let (mut ember, tls_port) = start_side_by_side(&certificates, "no");
    let mut tls =
        TlsClient::connect(tls_port, certificates.client_config(None, None)).expect("handshake");
    assert_eq!(tls.command(&[b"SET", b"k", b"v"]).unwrap(), b"+OK\r\n");
    let mut raw = TcpStream::connect(("127.0.0.1", tls_port)).unwrap();
    raw.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    raw.write_all(b"PING\r\n").unwrap();
    let mut reply = Vec::new();
    // The server answers with at most a TLS alert (content type 21), then closes.
    let _ = raw.read_to_end(&mut reply);
    assert!(
        reply.is_empty() || reply[0] == 0x15,
        "plain text got {:?}",
        reply.escape_ascii().to_string()
    );
    assert_eq!(tls.command(&[b"GET", b"k"]).unwrap(), b"$1\r\nv\r\n");
    ember.assert_serving("k", b"v");
    // The shard closes the socket before it writes the line, and the log is read through a
    // pipe: the line may come a moment after the client saw the close.
    common::wait_until("the handshake error in the log", || {
        let log = ember.log();
        log.contains("error accepting a client connection") && log.contains("TLS handshake")
    });
}

#[test]
fn large_values_and_pipelines_over_tls() {
    let Some(certificates) = Certificates::make("large") else {
        return;
    };
    let (ember, tls_port) = start_side_by_side(&certificates, "no");
    let mut tls =
        TlsClient::connect(tls_port, certificates.client_config(None, None)).expect("handshake");
    // 8 MB, far past a TLS record (16 KB) and the connection's 1 MB flush threshold.
    let value: Vec<u8> = (0..8 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    assert_eq!(tls.command(&[b"SET", b"big", &value]).unwrap(), b"+OK\r\n");
    let reply = tls.command(&[b"GET", b"big"]).unwrap();
    let header = format!("${}\r\n", value.len());
    assert!(reply.starts_with(header.as_bytes()));
    assert_eq!(&reply[header.len()..reply.len() - 2], &value[..]);
    // The plain port reads the same bytes.
    let mut plain = ember.connect(false);
    let read: Vec<u8> = redis::cmd("GET").arg("big").query(&mut plain).unwrap();
    assert_eq!(read, value);

    // 20 000 requests in one write, replies read back in order.
    let count = 20_000;
    let mut batch = Vec::new();
    for i in 0..count {
        let key = format!("key:{i}");
        batch.extend(encode(&[b"SET", key.as_bytes(), i.to_string().as_bytes()]));
        batch.extend(encode(&[b"GET", key.as_bytes()]));
    }
    tls.send(&batch).unwrap();
    for i in 0..count {
        assert_eq!(tls.reply().unwrap(), b"+OK\r\n");
        let text = i.to_string();
        let expected = format!("${}\r\n{text}\r\n", text.len());
        assert_eq!(tls.reply().unwrap(), expected.as_bytes(), "reply {i}");
    }
    let size: i64 = redis::cmd("DBSIZE").query(&mut plain).unwrap();
    assert_eq!(size, count + 1);
}

#[test]
fn tls_protocols_limit_the_versions() {
    let Some(certificates) = Certificates::make("versions") else {
        return;
    };
    let tls_port = free_port();
    let mut args = vec!["--port".to_string(), "0".to_string()];
    args.extend(certificates.server_args(tls_port, "no"));
    args.extend(["--tls-protocols".to_string(), "TLSv1.2".to_string()]);
    let _ember = TlsOnlyEmber::start(&args).expect("ember starts");
    let mut client =
        TlsClient::connect(tls_port, certificates.client_config(None, None)).expect("handshake");
    assert_eq!(client.protocol_version(), Some(ProtocolVersion::TLSv1_2));
    assert_eq!(client.command(&[b"PING"]).unwrap(), b"+PONG\r\n");
    let only_13 = certificates.client_config(None, Some(&[&version::TLS13]));
    assert!(TlsClient::connect(tls_port, only_13).is_err());
}

#[test]
fn bad_tls_settings_stop_the_start() {
    let Some(certificates) = Certificates::make("settings") else {
        return;
    };
    let port = free_port().to_string();
    let cert = certificates.path("server.crt");
    let key = certificates.path("server.key");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--tls-port", &port],
            "tls-port needs tls-cert-file and tls-key-file",
        ),
        (
            vec![
                "--tls-port",
                &port,
                "--tls-cert-file",
                &cert,
                "--tls-key-file",
                &key,
            ],
            "Either tls-ca-cert-file or tls-ca-cert-dir must be specified",
        ),
        (
            vec![
                "--tls-port",
                &port,
                "--tls-cert-file",
                &cert,
                "--tls-key-file",
                &cert,
                "--tls-auth-clients",
                "no",
            ],
            "no private key in tls-key-file",
        ),
        (
            vec![
                "--tls-port",
                &port,
                "--tls-cert-file",
                &cert,
                "--tls-key-file",
                &key,
                "--tls-auth-clients",
                "no",
                "--tls-protocols",
                "TLSv1.4",
            ],
            "Invalid tls-protocols specified",
        ),
        (
            vec![
                "--tls-port",
                &port,
                "--tls-cert-file",
                &cert,
                "--tls-key-file",
                &key,
                "--tls-auth-clients",
                "no",
                "--tls-ciphers",
                "RC4-MD5",
            ],
            "tls-ciphers 'RC4-MD5' names no cipher rustls implements",
        ),
    ];
    for (args, expected) in cases {
        let args: Vec<String> = args.into_iter().map(String::from).collect();
        match TlsOnlyEmber::start(&args) {
            Ok(ember) => panic!("{args:?} started: {}", ember.log()),
            Err(log) => assert!(log.contains(expected), "{args:?}: {log}"),
        }
    }
}

#[test]
fn tls_ca_cert_dir_is_read() {
    let Some(certificates) = Certificates::make("cadir") else {
        return;
    };
    let dir = certificates.dir.join("cas");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(certificates.dir.join("ca.crt"), dir.join("a.pem")).unwrap();
    std::fs::write(dir.join("README"), "not a certificate").unwrap();
    let tls_port = free_port();
    let args: Vec<String> = [
        "--port",
        "0",
        "--tls-port",
        &tls_port.to_string(),
        "--tls-cert-file",
        &certificates.path("server.crt"),
        "--tls-key-file",
        &certificates.path("server.key"),
        "--tls-ca-cert-dir",
        dir.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec();
    let _ember = TlsOnlyEmber::start(&args).expect("ember starts");
    let mut client = TlsClient::connect(tls_port, certificates.client_config(Some("client"), None))
        .expect("handshake");
    assert_eq!(client.command(&[b"PING"]).unwrap(), b"+PONG\r\n");
    let stranger = TlsClient::connect(tls_port, certificates.client_config(Some("stranger"), None))
        .and_then(|mut client| {
            client
                .command(&[b"PING"])
                .map_err(|error| error.to_string())
        });
    assert!(stranger.is_err());
}

/// True when this redis-cli was built with TLS.
fn redis_cli_has_tls() -> bool {
    let help = Command::new("redis-cli").arg("--help").output();
    let has = help.is_ok_and(|output| {
        String::from_utf8_lossy(&output.stdout).contains("--tls")
            || String::from_utf8_lossy(&output.stderr).contains("--tls")
    });
    if !has {
        eprintln!("skipped: redis-cli is missing or built without TLS");
    }
    has
}

fn redis_cli(port: u16, tls_args: &[String], command: &[&str]) -> (bool, String) {
    let output = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(tls_args)
        .args(command)
        .output()
        .expect("run redis-cli");
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

#[test]
fn redis_cli_over_tls() {
    if !redis_cli_has_tls() {
        return;
    }
    let Some(certificates) = Certificates::make("cli") else {
        return;
    };
    let (_ember, tls_port) = start_side_by_side(&certificates, "yes");
    let with_cert: Vec<String> = [
        "--tls",
        "--cacert",
        &certificates.path("ca.crt"),
        "--cert",
        &certificates.path("client.crt"),
        "--key",
        &certificates.path("client.key"),
    ]
    .map(String::from)
    .to_vec();
    assert_eq!(
        redis_cli(tls_port, &with_cert, &["SET", "cli", "over tls"]).1,
        "OK\n"
    );
    assert_eq!(
        redis_cli(tls_port, &with_cert, &["GET", "cli"]).1,
        "over tls\n"
    );
    let without_cert: Vec<String> = ["--tls", "--cacert", &certificates.path("ca.crt")]
        .map(String::from)
        .to_vec();
    let (_, text) = redis_cli(tls_port, &without_cert, &["PING"]);
    assert!(!text.contains("PONG"), "{text}");
}

#[test]
fn redis_py_over_tls() {
    let Some((python, python_path)) = common::python_with_redis_py() else {
        eprintln!("skipped: redis-py is not installed (ci/setup-servertests.sh)");
        return;
    };
    let Some(certificates) = Certificates::make("py") else {
        return;
    };
    let (_ember, tls_port) = start_side_by_side(&certificates, "yes");
    let script = r#"
import sys, redis
port, ca, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
r = redis.Redis(port=port, ssl=True, ssl_ca_certs=ca, ssl_certfile=cert, ssl_keyfile=key)
r.set("py", "x" * 300000)
assert r.get("py") == b"x" * 300000
p = r.pipeline(transaction=False)
for i in range(1000):
    p.incr("counter")
assert p.execute()[-1] == 1000
print("with certificate:", r.ping())
try:
    redis.Redis(port=port, ssl=True, ssl_ca_certs=ca).ping()
    print("without certificate: served")
except redis.exceptions.ConnectionError:
    print("without certificate: refused")
"#;
    let output = Command::new(&python)
        .env("PYTHONPATH", &python_path)
        .args(["-c", script])
        .arg(tls_port.to_string())
        .args([
            certificates.path("ca.crt"),
            certificates.path("client.crt"),
            certificates.path("client.key"),
        ])
        .output()
        .expect("run python");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{text}");
    assert_eq!(
        text,
        "with certificate: True\nwithout certificate: refused\n"
    );
}

#[test]
fn protected_mode_applies_to_tls_clients() {
    let Some(certificates) = Certificates::make("protected") else {
        return;
    };
    let (_ember, tls_port) = start_side_by_side(&certificates, "no");
    let config = certificates.client_config(None, None);
    // Redis sends the error once the handshake is done, over TLS, then closes.
    let mut outside = TlsClient::connect_from("127.0.0.2", tls_port, config.clone())
        .expect("the handshake comes first");
    let _ = outside.send(b"PING\r\n");
    let denied = outside.reply().expect("the DENIED error");
    assert!(
        denied.starts_with(b"-DENIED Redis is running in protected mode"),
        "{}",
        String::from_utf8_lossy(&denied)
    );
    assert!(outside.reply().is_err(), "the connection stays open");
    let mut inside = TlsClient::connect_from("127.0.0.1", tls_port, config).expect("handshake");
    assert_eq!(inside.command(&[b"PING"]).unwrap(), b"+PONG\r\n");
}

#[test]
fn tls_beside_io_uring() {
    let Some(certificates) = Certificates::make("uring") else {
        return;
    };
    let tls_port = free_port();
    let mut args = vec!["--port".to_string(), free_port().to_string()];
    args.extend(certificates.server_args(tls_port, "no"));
    args.extend(["--io-uring", "yes", "--threads", "2", "--busy-poll-us", "0"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let ember = Ember::start_with(&args);
    let mut tls =
        TlsClient::connect(tls_port, certificates.client_config(None, None)).expect("handshake");
    let value = vec![b'u'; 1 << 20];
    assert_eq!(tls.command(&[b"SET", b"big", &value]).unwrap(), b"+OK\r\n");
    let mut batch = Vec::new();
    for _ in 0..2000 {
        batch.extend(encode(&[b"INCR", b"n"]));
    }
    tls.send(&batch).unwrap();
    for i in 1..=2000 {
        assert_eq!(tls.reply().unwrap(), format!(":{i}\r\n").as_bytes());
    }
    // The plain port, on the ring, reads what TLS wrote.
    let mut plain = ember.connect(false);
    let read: Vec<u8> = redis::cmd("GET").arg("big").query(&mut plain).unwrap();
    assert_eq!(read, value);
    let n: i64 = redis::cmd("GET").arg("n").query(&mut plain).unwrap();
    assert_eq!(n, 2000);
}

#[test]
fn config_set_reloads_the_tls_settings() {
    let Some(certificates) = Certificates::make("reload") else {
        return;
    };
    let (ember, tls_port) = start_side_by_side(&certificates, "yes");
    let mut plain = ember.connect(false);
    let mut with_cert =
        TlsClient::connect(tls_port, certificates.client_config(Some("client"), None))
            .expect("handshake");
    let anonymous = || {
        TlsClient::connect(tls_port, certificates.client_config(None, None))
            .and_then(|mut c| c.command(&[b"PING"]).map_err(|error| error.to_string()))
    };
    assert!(anonymous().is_err());
    let set = |con: &mut redis::Connection, name: &str, value: &str| {
        redis::cmd("CONFIG")
            .arg("SET")
            .arg(name)
            .arg(value)
            .query::<()>(con)
            .map_err(|error| error.to_string())
    };
    set(&mut plain, "tls-auth-clients", "no").unwrap();
    assert_eq!(anonymous().unwrap(), b"+PONG\r\n");
    // A file that cannot be loaded fails the CONFIG SET, and the settings in use stay.
    let error = set(&mut plain, "tls-cert-file", "/nonexistent/server.crt").unwrap_err();
    assert!(
        error.contains("Unable to update TLS configuration. Check server logs."),
        "{error}"
    );
    let value: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("tls-cert-file")
        .query(&mut plain)
        .unwrap();
    assert_eq!(value[1], certificates.path("server.crt"));
    assert_eq!(anonymous().unwrap(), b"+PONG\r\n");
    assert!(ember
        .log()
        .contains("cannot read tls-cert-file /nonexistent/server.crt"));
    let error = set(&mut plain, "tls-port", "1").unwrap_err();
    assert!(error.contains("can't set immutable config"), "{error}");
    // The connection opened before keeps being served.
    assert_eq!(with_cert.command(&[b"PING"]).unwrap(), b"+PONG\r\n");
}

#[test]
fn maxclients_closes_tls_clients_without_plain_text() {
    let Some(certificates) = Certificates::make("maxclients") else {
        return;
    };
    let tls_port = free_port();
    let mut args = vec!["--port".to_string(), "0".to_string()];
    args.extend(certificates.server_args(tls_port, "no"));
    args.extend(["--maxclients".to_string(), "1".to_string()]);
    let _ember = TlsOnlyEmber::start(&args).expect("ember starts");
    let config = certificates.client_config(None, None);
    let mut first = TlsClient::connect(tls_port, config.clone()).expect("handshake");
    assert_eq!(first.command(&[b"PING"]).unwrap(), b"+PONG\r\n");
    // The second is closed before its handshake: rustls sees the end, not "-ERR" as a record.
    let second = TlsClient::connect(tls_port, config).and_then(|mut client| {
        client
            .command(&[b"PING"])
            .map_err(|error| error.to_string())
    });
    let error = second.expect_err("a client past maxclients was served");
    assert!(!error.contains("InvalidContentType"), "{error}");
    assert_eq!(first.command(&[b"PING"]).unwrap(), b"+PONG\r\n");
}
