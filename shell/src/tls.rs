//! TLS with rustls and its `ring` provider (no aws-lc, which needs cmake and a C toolchain to
//! build): the node's certificate for its public interface, FTPS and (with `--tls-mgmt`) its
//! management interface, reloaded on SIGHUP; and the client side, for peers whose addresses
//! are `https://`.
//!
//! One [`Identity`] holds the certificate and key of `--tls-cert`/`--tls-key`. Every server
//! configuration made from it (HTTP, FTPS) asks it for the pair at each handshake, so a reload
//! reaches every interface at once, and connections already open keep the pair they started
//! with. A reload that fails (a missing file, a key that does not match) keeps the old pair
//! and says why in the log.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::sync::{watch, OnceCell};

use crate::net::BoxConn;
use crate::settings::FlagError;

/// A TLS handshake, server or client side, must be over within this: a client that opens a
/// connection and sends nothing, or a few bytes a minute, would otherwise hold a connection
/// slot (and a session) for as long as it likes. As the header timeout of plain connections,
/// but shorter: a handshake is a few round trips.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The crypto provider: ring's. Made explicitly rather than installed process-wide, so that no
/// crate's default (aws-lc) can be picked up by accident.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificate chain and private key of `--tls-cert` and `--tls-key`, as currently loaded.
pub struct Identity {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key, not even its bytes' length.
        f.debug_struct("Identity").field("cert", &self.cert).field("key", &self.key).finish_non_exhaustive()
    }
}

impl Identity {
    /// Reads both files; an error names the flag whose file is wrong.
    pub fn load(cert: &Path, key: &Path) -> Result<Identity, FlagError> {
        let pair = load_pair(cert, key)?;
        Ok(Identity { cert: cert.to_owned(), key: key.to_owned(), current: RwLock::new(Arc::new(pair)) })
    }

    /// Reads both files again and, when they make a good pair, serves it from the next
    /// handshake on. Otherwise the old pair stays, and the error says why.
    pub fn reload(&self) -> Result<(), FlagError> {
        let pair = load_pair(&self.cert, &self.key)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(pair);
        Ok(())
    }

    fn current(&self) -> Arc<CertifiedKey> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// A server configuration that takes its pair from this identity at each handshake.
    /// TLS 1.2 and 1.3 (rustls' defaults; 1.2 for older FTP clients), no client certificates;
    /// `alpn`: the protocols offered (`http/1.1` for HTTP; none for FTP, whose clients
    /// rarely send any).
    pub fn server_config(self: &Arc<Self>, alpn: &[&[u8]]) -> Arc<ServerConfig> {
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Resolver(self.clone())));
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }
}

/// Hands out the identity's current pair.
#[derive(Debug)]
struct Resolver(Arc<Identity>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.current())
    }
}

fn tls_error(flag: &'static str, file: &Path, why: impl fmt::Display) -> FlagError {
    FlagError { flag, reason: format!("{}: {why}", file.display()) }
}

/// The certificates of a PEM file: at least one.
fn read_certs(flag: &'static str, file: &Path) -> Result<Vec<CertificateDer<'static>>, FlagError> {
    let bytes = std::fs::read(file).map_err(|e| tls_error(flag, file, format!("cannot read it: {e}")))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_error(flag, file, format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(tls_error(flag, file, "no certificate in it (expected PEM, -----BEGIN CERTIFICATE-----)"));
    }
    Ok(certs)
}

/// The pair of `--tls-cert` and `--tls-key`, checked: the certificate parses, the key is one
/// ring can sign with, and it is the key of the first certificate.
fn load_pair(cert: &Path, key: &Path) -> Result<CertifiedKey, FlagError> {
    let certs = read_certs("tls-cert", cert)?;
    let bytes = std::fs::read(key).map_err(|e| tls_error("tls-key", key, format!("cannot read it: {e}")))?;
    let der = PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
        tls_error("tls-key", key, format!("no private key in it (expected PEM, -----BEGIN PRIVATE KEY-----): {e}"))
    })?;
    let signing = provider()
        .key_provider
        .load_private_key(der)
        .map_err(|e| tls_error("tls-key", key, format!("the key cannot be used: {e}")))?;
    let pair = CertifiedKey::new(certs, signing);
    match pair.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(pair),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => Err(tls_error(
            "tls-key",
            key,
            format!("it is not the key of the certificate in {} (--tls-cert)", cert.display()),
        )),
        Err(e) => Err(tls_error("tls-cert", cert, format!("the certificate cannot be read: {e}"))),
    }
}

/// Reloads `identity` at every SIGHUP until `shutdown` fires. A failed reload is logged with
/// its reason, and the old pair keeps being served.
pub async fn reload_on_sighup(identity: Arc<Identity>, mut shutdown: watch::Receiver<bool>) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => return tracing::warn!("TLS: cannot listen for SIGHUP, the certificate will not be reloaded: {e}"),
    };
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            got = hup.recv() => if got.is_none() { return },
        }
        let id = identity.clone();
        match tokio::task::spawn_blocking(move || id.reload()).await {
            Ok(Ok(())) => tracing::info!("TLS: SIGHUP: certificate and key reloaded from {}", identity.cert.display()),
            Ok(Err(e)) => tracing::warn!("TLS: SIGHUP: reload failed, still serving the previous certificate: {e}"),
            Err(e) => tracing::warn!("TLS: SIGHUP: reload failed, still serving the previous certificate: {e}"),
        }
    }
}

/// Accepts a TLS connection on `conn` within [`HANDSHAKE_TIMEOUT`].
pub async fn accept(config: Arc<ServerConfig>, conn: BoxConn) -> io::Result<BoxConn> {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(conn)).await {
        Ok(Ok(tls)) => Ok(Box::pin(tls) as BoxConn),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out")),
    }
}

/// What verifies the certificates of `https://` peers: the CA bundle of `--tls-ca` when given
/// (the cluster's own CA; the platform's roots are then not trusted for peers), otherwise the
/// platform's roots (the system's CA store, as `rustls-native-certs` finds it), read once, at
/// the first `https://` peer.
pub struct PeerTls {
    ca: Option<PathBuf>,
    config: OnceCell<Arc<ClientConfig>>,
}

impl fmt::Debug for PeerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerTls").field("ca", &self.ca).finish_non_exhaustive()
    }
}

impl PeerTls {
    /// With `--tls-ca`, its bundle is read now, so that a bad one stops the node at start.
    pub fn new(ca: Option<&Path>) -> Result<PeerTls, FlagError> {
        let config = OnceCell::new();
        if let Some(file) = ca {
            let mut roots = RootCertStore::empty();
            for cert in read_certs("tls-ca", file)? {
                roots.add(cert).map_err(|e| tls_error("tls-ca", file, format!("not a CA certificate: {e}")))?;
            }
            config.set(client_config(roots)).expect("a new cell is empty");
        }
        Ok(PeerTls { ca: ca.map(Path::to_owned), config })
    }

    /// Verifies with the platform's roots (read at the first `https://` peer).
    pub fn platform() -> PeerTls {
        PeerTls { ca: None, config: OnceCell::new() }
    }

    /// The client configuration, reading the platform's roots the first time if there is no
    /// `--tls-ca`.
    async fn config(&self) -> io::Result<Arc<ClientConfig>> {
        self.config
            .get_or_try_init(|| async {
                let roots = tokio::task::spawn_blocking(platform_roots).await.map_err(io::Error::other)??;
                Ok(client_config(roots))
            })
            .await
            .cloned()
    }

    /// Opens TLS on `conn`, a connection to `host`, within [`HANDSHAKE_TIMEOUT`]. The peer's
    /// certificate must be valid for `host` (a name or an IP address) and chain to the roots.
    pub async fn connect(&self, conn: BoxConn, host: &str) -> io::Result<BoxConn> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(host.to_owned()).map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("{host:?} is not a TLS server name: {e}"))
        })?;
        let connector = tokio_rustls::TlsConnector::from(self.config().await?);
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(name, conn)).await {
            Ok(Ok(tls)) => Ok(Box::pin(tls) as BoxConn),
            Ok(Err(e)) => Err(io::Error::new(e.kind(), format!("TLS handshake with {host}: {e}"))),
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, format!("TLS handshake with {host} timed out"))),
        }
    }
}

fn client_config(roots: RootCertStore) -> Arc<ClientConfig> {
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

fn platform_roots() -> io::Result<RootCertStore> {
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::warn!("TLS: reading the platform's CA certificates: {e}");
    }
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "the platform has no CA certificates to verify https:// peers with (give --tls-ca)",
        ));
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_files_name_their_flag() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "hello\n").unwrap();
        let missing = dir.path().join("missing.pem");
        let e = Identity::load(&missing, &garbage).unwrap_err();
        assert_eq!(e.flag, "tls-cert", "{e}");
        assert!(e.to_string().contains("cannot read it"), "{e}");
        let e = Identity::load(&garbage, &garbage).unwrap_err();
        assert_eq!(e.flag, "tls-cert", "{e}");
        assert!(e.to_string().contains("no certificate"), "{e}");
        let e = PeerTls::new(Some(&garbage)).unwrap_err();
        assert_eq!(e.flag, "tls-ca", "{e}");
        assert!(PeerTls::new(None).is_ok(), "without --tls-ca nothing is read at start");
    }
}
