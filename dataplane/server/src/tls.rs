//! TLS on `tls-port`, with rustls (ring as the crypto provider), beside or instead of the plain
//! port. A TLS connection is served by the same request loop as a plain one
//! ([`crate::connection::serve`]) through [`Stream`]: its reads give the plaintext that rustls
//! decrypted, its writes are encrypted before they reach the socket. TLS connections always use
//! the runtime's sockets, also with `--io-uring yes` (the ring's receive hands over ciphertext
//! the request loop cannot parse) and without the busy-polling spinner.
//!
//! The settings keep Redis's names. What rustls allows of them:
//! - `tls-protocols`: `TLSv1.2` and `TLSv1.3` (empty: both); `TLSv1` and `TLSv1.1` are ignored
//!   with a warning, and a list of nothing else is refused.
//! - `tls-ciphers` (TLS 1.2) takes OpenSSL's names of the ECDHE suites with AES-GCM or
//!   ChaCha20-Poly1305 (`ECDHE-RSA-AES256-GCM-SHA384`, ...), and `DEFAULT`, `ALL` or `HIGH` for
//!   all of them; `tls-ciphersuites` (TLS 1.3) takes `TLS_AES_128_GCM_SHA256`,
//!   `TLS_AES_256_GCM_SHA384` and `TLS_CHACHA20_POLY1305_SHA256`. Other words of a list
//!   (exclusions like `!aNULL`, suites rustls does not implement) are skipped; a list with no
//!   usable suite is refused.
//! - `tls-auth-clients` `yes` requires a client certificate signed by a CA of
//!   `tls-ca-cert-file` or `tls-ca-cert-dir` (every PEM certificate in the folder's files),
//!   `optional` verifies one when sent, `no` asks for none.
//! - `tls-prefer-server-ciphers`, `tls-session-caching` and `tls-session-cache-size` apply;
//!   `tls-session-cache-timeout` is accepted, and the cache drops its oldest sessions instead.
//! - `tls-key-file-pass` cannot open an encrypted key (rustls reads unencrypted PEM keys only);
//!   `tls-dh-params-file` is unused (rustls offers ECDHE groups only); `tls-replication`,
//!   `tls-cluster` and the `tls-client-*` files are accepted for outgoing links Ember has none of.
//!
//! CONFIG SET of a `tls-*` setting (all but `tls-port`) builds the new configuration at once, so
//! a certificate that cannot be loaded fails the CONFIG SET as in Redis; new connections then use
//! it (certificate rotation), the ones already open keep theirs.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures_lite::{AsyncRead, AsyncWrite, AsyncWriteExt};
use futures_rustls::pki_types::pem::PemObject;
use futures_rustls::pki_types::{CertificateDer, PrivateKeyDer};
use futures_rustls::rustls::crypto::ring::{cipher_suite, default_provider};
use futures_rustls::rustls::server::{
    NoServerSessionStorage, ServerSessionMemoryCache, WebPkiClientVerifier,
};
use futures_rustls::rustls::{
    version, RootCertStore, ServerConfig, SupportedCipherSuite, SupportedProtocolVersion,
};
use futures_rustls::server::TlsStream;
use futures_rustls::TlsAcceptor;

use crate::config::Config;
use crate::runtime::TcpStream;

/// The acceptor for `tls-port`'s connections, or `None` when `tls-port` is 0.
///
/// # Errors
/// What is wrong with the TLS settings or their files, for the start-up error.
pub fn acceptor(config: &Config) -> Result<Option<TlsAcceptor>, String> {
    if config.integer("tls-port") == 0 {
        return Ok(None);
    }
    let server = server_config(config).map_err(|why| format!("TLS: {why}"))?;
    Ok(Some(TlsAcceptor::from(Arc::new(server))))
}

/// The acceptor of new TLS connections: set at start-up, replaced by CONFIG SET.
static ACCEPTOR: Mutex<Option<TlsAcceptor>> = Mutex::new(None);

/// Makes `acceptor` the one new TLS connections use.
pub fn install(acceptor: Option<TlsAcceptor>) {
    *ACCEPTOR.lock().expect("the TLS acceptor is never poisoned") = acceptor;
}

/// The acceptor new TLS connections use now.
pub fn current() -> Option<TlsAcceptor> {
    ACCEPTOR
        .lock()
        .expect("the TLS acceptor is never poisoned")
        .clone()
}

/// True for the names of TLS settings (any case).
pub fn is_setting(name: &str) -> bool {
    name.to_ascii_lowercase().starts_with("tls-")
}

/// CONFIG SET of TLS settings: with TLS on, loads `config`'s and makes it the one new
/// connections use. With TLS off the settings are only stored, as in Redis.
///
/// # Errors
/// Why the new settings cannot be used; the old ones stay.
pub fn reconfigure(config: &Config) -> Result<(), String> {
    if current().is_none() {
        return Ok(());
    }
    if let Some(acceptor) = acceptor(config)? {
        install(Some(acceptor));
    }
    Ok(())
}

fn server_config(config: &Config) -> Result<ServerConfig, String> {
    let cert_file = config.value("tls-cert-file");
    let key_file = config.value("tls-key-file");
    if cert_file.is_empty() || key_file.is_empty() {
        return Err("tls-port needs tls-cert-file and tls-key-file".into());
    }
    let certs = CertificateDer::pem_file_iter(cert_file)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|error| format!("cannot read tls-cert-file {cert_file}: {error}"))?;
    if certs.is_empty() {
        return Err(format!("no certificate in tls-cert-file {cert_file}"));
    }
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|error| match error {
        futures_rustls::pki_types::pem::Error::NoItemsFound => format!(
            "no private key in tls-key-file {key_file} (encrypted keys, tls-key-file-pass, \
             are not supported)"
        ),
        error => format!("cannot read tls-key-file {key_file}: {error}"),
    })?;

    let mut provider = default_provider();
    provider.cipher_suites = cipher_suites(
        config.value("tls-ciphersuites"),
        config.value("tls-ciphers"),
    )?;
    let provider = Arc::new(provider);
    let versions = protocol_versions(config.value("tls-protocols"))?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|error| format!("tls-protocols and ciphers: {error}"))?;

    let auth = config.value("tls-auth-clients");
    let ca_file = config.value("tls-ca-cert-file");
    let ca_dir = config.value("tls-ca-cert-dir");
    let needs_ca = auth != "no"
        || config.value("tls-cluster") == "yes"
        || config.value("tls-replication") == "yes";
    if needs_ca && ca_file.is_empty() && ca_dir.is_empty() {
        // Redis's start-up error, word for word.
        return Err(
            "Either tls-ca-cert-file or tls-ca-cert-dir must be specified when \
                    tls-cluster, tls-replication or tls-auth-clients are enabled!"
                .into(),
        );
    }
    let builder = if auth == "no" {
        builder.with_no_client_auth()
    } else {
        let roots = root_store(ca_file, ca_dir)?;
        let mut verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
        if auth == "optional" {
            verifier = verifier.allow_unauthenticated();
        }
        let verifier = verifier
            .build()
            .map_err(|error| format!("client certificate verifier: {error}"))?;
        builder.with_client_cert_verifier(verifier)
    };
    let mut server = builder
        .with_single_cert(certs, key)
        .map_err(|error| format!("tls-cert-file and tls-key-file: {error}"))?;
    server.ignore_client_order = config.value("tls-prefer-server-ciphers") == "yes";
    let cache_size = config.integer("tls-session-cache-size") as usize;
    server.session_storage = if config.value("tls-session-caching") == "yes" && cache_size > 0 {
        ServerSessionMemoryCache::new(cache_size)
    } else {
        Arc::new(NoServerSessionStorage {})
    };
    Ok(server)
}

/// The CAs client certificates are verified against: the certificates of `file`, and of every
/// file in `dir` (OpenSSL's hashed names are links to PEM files; other files are skipped).
fn root_store(file: &str, dir: &str) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    if !file.is_empty() {
        let certs = CertificateDer::pem_file_iter(file)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|error| format!("cannot read tls-ca-cert-file {file}: {error}"))?;
        for cert in certs {
            roots
                .add(cert)
                .map_err(|error| format!("tls-ca-cert-file {file}: {error}"))?;
        }
    }
    if !dir.is_empty() {
        let entries = std::fs::read_dir(dir)
            .map_err(|error| format!("cannot read tls-ca-cert-dir {dir}: {error}"))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if !path.is_file() {
                continue;
            }
            let Ok(certs) = CertificateDer::pem_file_iter(&path) else {
                continue;
            };
            roots.add_parsable_certificates(certs.flatten());
        }
    }
    if roots.is_empty() {
        return Err("no CA certificate in tls-ca-cert-file or tls-ca-cert-dir".into());
    }
    Ok(roots)
}

/// `tls-protocols`: Redis's words, of which rustls implements TLS 1.2 and 1.3.
fn protocol_versions(text: &str) -> Result<Vec<&'static SupportedProtocolVersion>, String> {
    if text.trim().is_empty() {
        return Ok(vec![&version::TLS13, &version::TLS12]);
    }
    let mut versions = Vec::new();
    for word in text.split_whitespace() {
        match word.to_ascii_lowercase().as_str() {
            "tlsv1.3" => versions.push(&version::TLS13),
            "tlsv1.2" => versions.push(&version::TLS12),
            "tlsv1" | "tlsv1.1" => {
                eprintln!("ember: TLS: {word} is not supported (rustls implements TLSv1.2 and TLSv1.3); ignored");
            }
            _ => {
                return Err(
                    "Invalid tls-protocols specified. Use a combination of 'TLSv1', \
                            'TLSv1.1', 'TLSv1.2' and 'TLSv1.3'."
                        .into(),
                )
            }
        }
    }
    if versions.is_empty() {
        return Err(format!(
            "tls-protocols '{text}' names no protocol rustls implements (TLSv1.2, TLSv1.3)"
        ));
    }
    Ok(versions)
}

/// The TLS 1.3 suites by their OpenSSL (IANA) names.
fn tls13_suites() -> [(&'static str, SupportedCipherSuite); 3] {
    [
        (
            "TLS_AES_256_GCM_SHA384",
            cipher_suite::TLS13_AES_256_GCM_SHA384,
        ),
        (
            "TLS_CHACHA20_POLY1305_SHA256",
            cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
        ),
        (
            "TLS_AES_128_GCM_SHA256",
            cipher_suite::TLS13_AES_128_GCM_SHA256,
        ),
    ]
}

/// The TLS 1.2 suites by their OpenSSL names.
fn tls12_suites() -> [(&'static str, SupportedCipherSuite); 6] {
    [
        (
            "ECDHE-ECDSA-AES256-GCM-SHA384",
            cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        ),
        (
            "ECDHE-RSA-AES256-GCM-SHA384",
            cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        ),
        (
            "ECDHE-ECDSA-CHACHA20-POLY1305",
            cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        ),
        (
            "ECDHE-RSA-CHACHA20-POLY1305",
            cipher_suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        ),
        (
            "ECDHE-ECDSA-AES128-GCM-SHA256",
            cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        ),
        (
            "ECDHE-RSA-AES128-GCM-SHA256",
            cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        ),
    ]
}

/// The suites offered: `tls-ciphersuites`' TLS 1.3 ones, then `tls-ciphers`' TLS 1.2 ones, each
/// list in its own order (the order that counts under `tls-prefer-server-ciphers`).
fn cipher_suites(tls13: &str, tls12: &str) -> Result<Vec<SupportedCipherSuite>, String> {
    let mut suites = pick_suites("tls-ciphersuites", tls13, &tls13_suites())?;
    suites.extend(pick_suites("tls-ciphers", tls12, &tls12_suites())?);
    Ok(suites)
}

/// The suites of `known` that an OpenSSL-style list names (all of them when it is empty).
fn pick_suites(
    parameter: &str,
    list: &str,
    known: &[(&'static str, SupportedCipherSuite)],
) -> Result<Vec<SupportedCipherSuite>, String> {
    let all = || known.iter().map(|&(_, suite)| suite).collect::<Vec<_>>();
    if list.trim().is_empty() {
        return Ok(all());
    }
    let mut suites = Vec::new();
    for word in list.split([':', ',', ' ']).filter(|word| !word.is_empty()) {
        if ["DEFAULT", "ALL", "HIGH"].contains(&word) {
            for suite in all() {
                if !suites.contains(&suite) {
                    suites.push(suite);
                }
            }
        } else if let Some(&(_, suite)) = known.iter().find(|(name, _)| *name == word) {
            if !suites.contains(&suite) {
                suites.push(suite);
            }
        }
    }
    if suites.is_empty() {
        let names: Vec<&str> = known.iter().map(|&(name, _)| name).collect();
        return Err(format!(
            "{parameter} '{list}' names no cipher rustls implements ({})",
            names.join(", ")
        ));
    }
    Ok(suites)
}

/// Runs the TLS handshake on an accepted connection.
///
/// # Errors
/// The handshake failed (the peer sent no TLS, no valid client certificate, or left).
pub async fn handshake(acceptor: &TlsAcceptor, stream: TcpStream) -> io::Result<Stream> {
    let tls = acceptor.accept(stream).await?;
    Ok(Stream::Tls(Box::new(tls)))
}

/// A client connection's bytes: the socket itself, or TLS over it.
pub enum Stream {
    /// A connection to the plain port.
    Plain(TcpStream),
    /// A connection to `tls-port`, past its handshake.
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    /// True for a TLS connection.
    pub fn is_tls(&self) -> bool {
        matches!(self, Self::Tls(_))
    }

    /// Sends what is still queued (TLS: with a close_notify alert), then closes the socket.
    pub async fn close(mut self) -> io::Result<()> {
        AsyncWriteExt::close(&mut self).await
    }
}

impl AsRawFd for Stream {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Self::Plain(stream) => stream.as_raw_fd(),
            Self::Tls(stream) => stream.get_ref().0.as_raw_fd(),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
            Self::Tls(stream) => Pin::new(&mut **stream).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(stream) => Pin::new(stream).poll_write(cx, buf),
            Self::Tls(stream) => Pin::new(&mut **stream).poll_write(cx, buf),
        }
    }

    /// A plain socket sends at each write, so only TLS has anything to flush.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(_) => Poll::Ready(Ok(())),
            Self::Tls(stream) => Pin::new(&mut **stream).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(stream) => Pin::new(stream).poll_close(cx),
            Self::Tls(stream) => Pin::new(&mut **stream).poll_close(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols() {
        assert_eq!(protocol_versions("").unwrap().len(), 2);
        assert_eq!(protocol_versions("TLSv1.2").unwrap(), vec![&version::TLS12]);
        assert_eq!(
            protocol_versions("tlsv1.1 TLSv1.3").unwrap(),
            vec![&version::TLS13]
        );
        assert!(protocol_versions("TLSv1 TLSv1.1").is_err());
        assert!(protocol_versions("SSLv3")
            .unwrap_err()
            .starts_with("Invalid tls-protocols"));
    }

    #[test]
    fn ciphers() {
        let all = cipher_suites("", "").unwrap();
        assert_eq!(all.len(), 9);
        let picked = cipher_suites(
            "TLS_CHACHA20_POLY1305_SHA256",
            "!aNULL:ECDHE-RSA-AES128-GCM-SHA256:AES128-SHA",
        )
        .unwrap();
        assert_eq!(
            picked,
            vec![
                cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
                cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
            ]
        );
        assert_eq!(cipher_suites("", "HIGH").unwrap().len(), 9);
        assert!(cipher_suites("", "RC4-MD5")
            .unwrap_err()
            .starts_with("tls-ciphers 'RC4-MD5' names no cipher"));
    }
}
