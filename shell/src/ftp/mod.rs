//! The FTP interface (`--ftp-listen`): libunftp with our storage backend over the merged tree.
//!
//! We accept control connections ourselves, on exactly the address given (libunftp's own
//! `listen` would do too, but then a port already taken would only show up later, in a task),
//! and hand each to a libunftp session. Data connections use libunftp's per-session passive
//! listeners, bound in `--ftp-passive-ports` on the address the client reached us on (by
//! [`data_sockets`], with a large receive buffer for uploads); a listener the client never
//! connects to is closed after libunftp's 15 s accept timeout.
//!
//! Logins are checked against the node's rules ([`login`]); each session's user carries its
//! account ([`access::FtpUser`]), and [`access`] decides what it may read and change. Changes
//! are planned where the core routes them ([`plan`]) and made through the write layer, on this
//! node or on the one that takes the path ([`write`]).
//!
//! Each session also gets a command gate ([`gate`]), which answers before libunftp what libunftp
//! would answer wrongly: reads and writes the rules refuse (by [`access`]), writes that cannot
//! be made where they point (by [`plan`]), `RETR` and `SIZE` of a directory, and `STAT`.
//!
//! libunftp opens its sockets with tokio directly, so this cannot run in the simulator, which
//! passes `--ftp-listen ''` to turn FTP off.

mod access;
mod backend;
mod data_sockets;
mod gate;
mod listing;
mod login;
mod plan;
/// Also the source of the files of `?format=tar|zip` archives.
pub(crate) mod transfer;
mod write;

use std::io;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

pub use access::FtpUser;
pub use backend::{Backend, Shared};
use libunftp::options::{FtpsRequired, PassiveHost, SiteMd5};
use libunftp::{Server, ServerBuilder};
use slog::Drain;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::accounts::Accounts;
use crate::content::{Content, Writer};
use crate::driver::Handle;

/// The FTP settings from the command line.
#[derive(Clone, Debug)]
pub struct Options {
    pub passive_ports: RangeInclusive<u16>,
    pub greeting: String,
    pub idle_timeout: Duration,
    /// `--ftp-max-sessions`.
    pub max_sessions: usize,
    /// Explicit FTPS (`AUTH TLS`, then `PBSZ 0`/`PROT P` for the data connections), with the
    /// node's certificate (`--tls-cert`); `None`: plain FTP only.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// `--ftps-required`: every login but `anonymous` needs TLS on the control connection
    /// before `USER` (else `534`), and on its data connections (`PROT P` before `PASV`,
    /// `EPSV` or `PORT`, else `534`). Anonymous sessions, which carry no password, may stay
    /// plain.
    pub ftps_required: bool,
}

/// A bound FTP interface, not yet serving.
pub struct Ftp {
    listener: TcpListener,
    options: Options,
}

impl Ftp {
    /// Binds the control port.
    pub async fn bind(addr: SocketAddr, options: Options) -> io::Result<Ftp> {
        let listener = TcpListener::bind(addr).await?;
        Ok(Ftp { listener, options })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves sessions until `shutdown` fires, then closes the open ones.
    pub async fn serve(
        self,
        handle: Handle,
        content: Content,
        accounts: Arc<Accounts>,
        writer: Writer,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let login = Arc::new(login::Login::new(accounts.clone()));
        let shared = Arc::new(Shared { handle, content, accounts, writer });
        // libunftp wants the greeting for the life of the program: one small leak per start.
        let greeting: &'static str = Box::leak(self.options.greeting.clone().into_boxed_str());
        // libunftp logs every command and transfer at info level through slog; pass on only its
        // warnings and errors (to `log`, which the tracing subscriber picks up).
        let logger = slog::Logger::root(slog_stdlog::StdLog.filter_level(slog::Level::Warning).fuse(), slog::o!());
        let mut sessions = JoinSet::new();
        let (mut refused, mut last_warned) = (0u64, None);
        loop {
            tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok((mut stream, peer)) if sessions.len() >= self.options.max_sessions => {
                        // Told why, in a task: a client that does not read must not hold the loop.
                        let max = self.options.max_sessions;
                        refused += 1;
                        // Said at most every 10 s: a flood of connections must not flood the log.
                        if last_warned.is_none_or(|t: tokio::time::Instant| t.elapsed() >= Duration::from_secs(10)) {
                            tracing::warn!(
                                "FTP: refused {refused} session(s), the last from {peer}: {max} open already (--ftp-max-sessions)"
                            );
                            last_warned = Some(tokio::time::Instant::now());
                            refused = 0;
                        }
                        tokio::spawn(async move {
                            use tokio::io::AsyncWriteExt;
                            let line = format!("421 Too many sessions ({max} open); try again later\r\n");
                            let _ = tokio::time::timeout(Duration::from_secs(5), stream.write_all(line.as_bytes())).await;
                        });
                    }
                    Ok((stream, peer)) => {
                        let _ = stream.set_nodelay(true);
                        match session_server(&shared, &login, &self.options, greeting, &logger) {
                            Ok(server) => {
                                let open = shared.handle.metrics().ftp_session();
                                sessions.spawn(async move {
                                    let _open = open; // dropped when the session ends or is shut down
                                    if let Err(e) = server.service(stream).await {
                                        tracing::debug!("FTP session from {peer}: {e}");
                                    }
                                });
                            }
                            Err(e) => tracing::error!("FTP: cannot set up a session: {e}"),
                        }
                    }
                    Err(e) => {
                        // Out of file descriptors, most likely: wait rather than spin.
                        tracing::warn!("FTP: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
                _ = shutdown.changed() => break,
            }
        }
        drop(self.listener);
        // Dropping a session's future drops its shutdown notifier, which makes libunftp close
        // that control connection.
        sessions.shutdown().await;
    }
}

/// A libunftp server for one control connection.
fn session_server(
    shared: &Arc<Shared>,
    login: &Arc<login::Login>,
    options: &Options,
    greeting: &'static str,
    logger: &slog::Logger,
) -> Result<Server<Backend, FtpUser>, libunftp::ServerError> {
    // The gate and the back-end of one session share what the gate let through.
    let next_upload = Arc::new(write::NextUpload::default());
    let gate = gate::Gate::new(Backend::new(shared.clone(), next_upload.clone()));
    let shared = shared.clone();
    let backends = Box::new(move || Backend::new(shared.clone(), next_upload.clone()));
    let builder = ServerBuilder::<Backend, FtpUser>::with_user_detail_provider(backends, login.clone())
        .authenticator(login.clone())
        .command_gate(gate)
        .greeting(greeting)
        .idle_session_timeout(options.idle_timeout.as_secs().max(1))
        .passive_ports(options.passive_ports.clone())
        .passive_host(PassiveHost::FromConnection)
        .binder(data_sockets::DataSockets)
        .sitemd5(SiteMd5::None)
        .logger(logger.clone());
    let builder = match &options.tls {
        // The node's own configuration rather than libunftp's loader (`ftps(cert, key)`), so
        // that the certificate is the one SIGHUP reloads, checked as the HTTP interface's is.
        Some(config) => {
            let builder = builder.ftps_manual::<std::path::PathBuf>(config.clone());
            if options.ftps_required {
                builder.ftps_required(FtpsRequired::Accounts, FtpsRequired::Accounts)
            } else {
                builder
            }
        }
        None => builder,
    };
    builder.build()
}

/// Binds the FTP interface on `addr` (`--ftp-listen`), with the other `--ftp-*` options.
pub async fn bind(
    addr: std::net::SocketAddr,
    cli: &crate::config::Cli,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> Result<Ftp, String> {
    let options = Options {
        tls,
        ftps_required: cli.ftps_required,
        passive_ports: cli.ftp_passive_ports.clone(),
        greeting: cli.ftp_greeting.clone(),
        idle_timeout: cli.ftp_idle_timeout,
        max_sessions: cli.ftp_max_sessions as usize,
    };
    let ftp = Ftp::bind(addr, options).await.map_err(|e| format!("cannot listen on {addr} (--ftp-listen): {e}"))?;
    if let Ok(bound) = ftp.local_addr() {
        tracing::info!("FTP interface listening on {bound}...");
    }
    Ok(ftp)
}
