//! The dftp daemon: turns sockets, files and the clock into core events, and core actions into
//! I/O. It holds no rule of the cluster; those live in `dftp-core`.

pub mod accounts;
pub mod blocking;
pub mod body;
pub mod cluster_secret;
pub mod config;
pub mod content;
pub mod descriptors;
pub mod discovery;
pub mod diskread;
pub mod driver;
pub mod ftp;
pub mod localfs;
pub mod memory;
pub mod metrics;
pub mod mgmt;
pub mod net;
pub mod peers;
pub mod public;
pub mod respond;
pub mod sendfile;
pub mod server;
pub mod settings;
pub mod tls;
pub mod traffic;
pub mod upstream;
pub mod watcher;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use dftp_core::{Config, DfsPath, Event, Meta, Node, PeerAddr, Scheme, Span};
use tokio::sync::watch;

use crate::blocking::Blocking;
use crate::config::Cli;
use crate::driver::{Clock, Driver, Handle};
use crate::localfs::LocalFs;
use crate::net::Net;
use crate::peers::PeerClient;
use crate::settings::Settings;

/// The address peers should use for a listener: the configured one, or the host given in the
/// listen flag (empty for every interface, so that peers fill in the address they see us from)
/// with the port actually bound.
fn advertised(explicit: Option<PeerAddr>, listen: &str, bound: SocketAddr) -> Result<PeerAddr, String> {
    if let Some(a) = explicit {
        return Ok(a);
    }
    let host = listen.rsplit_once(':').map(|(h, _)| h).unwrap_or("");
    let host = if host == "0.0.0.0" || host == "[::]" { "" } else { host };
    PeerAddr::parse(&format!("{host}:{}", bound.port())).map_err(|e| e.to_string())
}

/// Everything a running node needs from outside.
pub struct Env {
    pub net: Arc<dyn Net>,
    pub fs: Arc<dyn LocalFs>,
    /// Wall-clock milliseconds at start (the clock then moves with `tokio::time`).
    pub start_unix_ms: u64,
    /// Where blocking work runs: tokio's blocking threads, or inline in the simulator.
    pub blocking: Blocking,
    /// Called once the node is serving, with a handle to its driver (the simulator reads each
    /// node's snapshots through it).
    pub on_ready: Option<OnReady>,
    /// The seed of SWIM's choices ([`dftp_core::swim::SwimConfig::seed`]): `None` takes one
    /// from the OS; the simulator gives one derived from its own, to replay a run exactly.
    pub swim_seed: Option<u64>,
}

/// See [`Env::on_ready`].
pub type OnReady = Box<dyn FnOnce(&Handle) + Send>;

impl Env {
    /// The environment of the daemon: blocking work on tokio's blocking threads, no hook.
    pub fn new(net: Arc<dyn Net>, fs: Arc<dyn LocalFs>, start_unix_ms: u64) -> Env {
        Env { net, fs, start_unix_ms, blocking: Blocking::Threads, on_ready: None, swim_seed: None }
    }
}

/// A random seed from the OS, for SWIM's choices of whom to probe.
fn os_seed() -> u64 {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 8];
    ring::rand::SystemRandom::new().fill(&mut b).expect("the system's random source works");
    u64::from_le_bytes(b)
}

/// Threads that serve the public interface: `--http-threads`, or one per core.
fn public_threads(cli: &Cli) -> usize {
    cli.http_threads.map_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()), usize::from)
}

/// Runs a node until `shutdown` fires. The flags were checked before ([`Settings::from_cli`]);
/// what fails here is what only trying can tell (a port taken, an unreadable tree).
pub async fn run(settings: Settings, env: Env, shutdown: watch::Receiver<bool>) -> Result<(), String> {
    let Settings {
        cli,
        name,
        cluster,
        mount,
        http_listen: http_addr,
        mgmt_listen: mgmt_addr,
        ftp_listen,
        discovery,
        advertise_http,
        advertise_mgmt,
        joins,
        rules,
        cluster_keys,
        identity,
        peer_tls,
    } = settings;

    // Scan before serving, as the original does: a node answers with its whole tree or not at all.
    let started = Instant::now();
    let fs = env.fs.clone();
    let report = env
        .blocking
        .run(move || fs.scan_at_start())
        .await
        .map_err(|e| format!("scan: {e}"))?
        .map_err(|e| format!("scan: {e}"))?;
    if report.leftovers_removed > 0 {
        tracing::info!("removed {} temporary file(s) of writes a crash interrupted", report.leftovers_removed);
    }
    tracing::info!(
        "local scan finished, {} file(s) found in {:.2?} ({} entries; {} symlink(s) not followed, {} non-UTF-8 name(s), {} name(s) with control characters or backslashes and {} error(s) skipped)",
        report.files,
        started.elapsed(),
        report.entries.len(),
        report.skipped_symlinks,
        report.skipped_non_utf8,
        report.skipped_bad_names,
        report.errors
    );
    let local: Vec<(DfsPath, Meta)> =
        report.entries.into_iter().filter_map(|(p, m)| mount.to_cluster(&p).ok().map(|p| (p, m))).collect();

    let http_listener =
        env.net.bind(http_addr).await.map_err(|e| format!("cannot listen on {http_addr} (--http-listen): {e}"))?;
    let mgmt_listener =
        env.net.bind(mgmt_addr).await.map_err(|e| format!("cannot listen on {mgmt_addr} (--http-mgmt-listen): {e}"))?;
    let public_bound = http_listener.local_addr().map_err(|e| e.to_string())?;
    let mgmt_bound = mgmt_listener.local_addr().map_err(|e| e.to_string())?;
    // What each interface is served with, and so how peers must speak to it: an interface
    // served over TLS is advertised as `https://`, explicitly given addresses included (plain
    // HTTP would not be answered there). An explicit `https://` address of a plain interface
    // is kept: a TLS proxy in front of it.
    let public_tls = identity.as_ref().map(|id| id.server_config(&[b"http/1.1"]));
    let mgmt_tls = identity.as_ref().filter(|_| cli.tls_mgmt).map(|id| id.server_config(&[b"http/1.1"]));
    let upgrade = |addr: PeerAddr, tls: bool| if tls { addr.with_scheme(Scheme::Https) } else { addr };
    let ftp = match ftp_listen {
        Some(addr) => Some(ftp::bind(addr, &cli, identity.as_ref().map(|id| id.server_config(&[]))).await?),
        None => None,
    };
    let public_addr = upgrade(advertised(advertise_http, &cli.http_listen, public_bound)?, public_tls.is_some());
    let mgmt_pub = upgrade(advertised(advertise_mgmt, &cli.http_mgmt_listen, mgmt_bound)?, mgmt_tls.is_some());

    let multicast = match discovery {
        None => None,
        Some(group) => match env.net.multicast(group.into(), cli.multicast_interface).await {
            Ok(s) => {
                tracing::info!("multicast discovery on {group}");
                Some(s)
            }
            // Most containers and many VMs have no multicast route. Discovery is a convenience:
            // the node still serves, and peers still meet it through --join and POST /join/.
            Err(e) => {
                tracing::warn!(
                    "multicast discovery on {group} (interface {}) could not start: {e}. \
                     Serving without it: join peers with --join HOST:PORT or POST /join/ \
                     (pass --multicast-discovery-addr '' to turn discovery off and silence this)",
                    cli.multicast_interface
                );
                None
            }
        },
    };

    let mut cfg = Config::new(&name, &cluster, public_addr.clone(), mgmt_pub.clone(), env.start_unix_ms);
    let ms = |d: std::time::Duration| Span::from_millis(d.as_millis() as u64);
    cfg.ping_interval = ms(cli.ping_interval);
    cfg.peer_timeout = ms(cli.peer_timeout);
    cfg.full_update_interval = ms(cli.full_update_interval);
    cfg.digest_interval = ms(cli.digest_interval);
    cfg.anti_entropy = cli.anti_entropy;
    cfg.announce_interval = multicast.as_ref().map(|_| ms(cli.announce_interval));
    cfg.mount = mount.clone();
    cfg.authenticated = cluster_keys.is_some();
    cfg.membership = cli.membership;
    cfg.swim.probe_period = ms(cli.swim_probe_interval);
    cfg.swim.seed = env.swim_seed.unwrap_or_else(os_seed);

    let clock = Clock::new(env.start_unix_ms);
    let guard = cluster_keys.map(|keys| Arc::new(cluster_secret::Guard::new(keys, clock)));
    if guard.is_some() {
        tracing::info!("cluster secret: management requests, answers and multicast packets are signed");
    }
    let node = Node::new(cfg, clock.now());
    let timeouts = peers::Timeouts::for_intervals(cli.ping_interval, cli.peer_timeout);
    let client = PeerClient::with_tls(env.net.clone(), peer_tls).with_timeouts(timeouts).with_guard(guard.clone());
    let multicast = multicast.map(|s| client.traffic().count_datagrams(s));
    let (driver, handle) = Driver::new(node, clock, client.clone(), multicast.clone(), env.blocking);
    let driver_task = tokio::spawn(driver.run(shutdown.clone()));
    let scanned = local.len();
    handle.ask(Event::LocalScan(local)).await;
    if scanned > memory::TRIM_ABOVE {
        memory::trim(env.blocking).await;
    }

    tracing::info!("node {name} of cluster {cluster}: public at {public_addr}, management at {mgmt_pub}");
    tracing::info!("HTTP public interface listening on {public_bound}...");
    tracing::info!("HTTP mgmt interface listening on {mgmt_bound}...");
    let watch_task = tokio::spawn(watcher::run(
        env.fs.clone(),
        mount.clone(),
        handle.clone(),
        cli.rescan_interval,
        shutdown.clone(),
    ));
    let content = content::Content::new(env.fs.clone(), client);
    if rules.has_accounts() {
        tracing::info!("access by rules: {} user(s)", rules.users().count());
    }
    let accounts = Arc::new(accounts::Accounts::new(rules, env.blocking));
    let writer = content::Writer::new(&content, handle.clone(), mount.clone());
    let ftp_task = ftp.map(|f| {
        tokio::spawn(f.serve(handle.clone(), content.clone(), accounts.clone(), writer.clone(), shutdown.clone()))
    });
    let pace = dftp_core::pace::Pace::new(cli.body_min_rate);
    let public = public::Public::new(handle.clone(), content, writer, accounts).with_body_pace(pace).handler();
    let public = metrics::instrument(handle.metrics().clone(), metrics::Interface::Http, public);
    let mgmt = mgmt::handler(handle.clone(), cli.max_update_bytes, cli.max_concurrent_updates, pace, guard.clone());
    let public_slots = server::Slots::new(cli.max_connections);
    let servers = [
        match (http_listener.share(), public_threads(&cli)) {
            (Some(shared), threads) if threads > 1 => {
                drop(http_listener);
                tokio::spawn(server::serve_on_threads(
                    "public HTTP",
                    shared,
                    threads,
                    public,
                    public_slots,
                    public_tls,
                    shutdown.clone(),
                ))
            }
            _ => tokio::spawn(server::serve(
                "public HTTP",
                http_listener,
                public,
                public_slots,
                public_tls,
                shutdown.clone(),
            )),
        },
        tokio::spawn(server::serve(
            "management HTTP",
            mgmt_listener,
            mgmt,
            server::Slots::new(cli.max_connections),
            mgmt_tls,
            shutdown.clone(),
        )),
    ];
    if let Some(id) = &identity {
        tracing::info!(
            "TLS: the public interface{}{} served with {}; SIGHUP reloads it",
            if cli.tls_mgmt { ", the management interface" } else { "" },
            if ftp_listen.is_some() { " and FTPS (AUTH TLS)" } else { "" },
            cli.tls_cert.as_deref().map(|p| p.display().to_string()).unwrap_or_default()
        );
        tokio::spawn(tls::reload_on_sighup(id.clone(), shutdown.clone()));
    }
    let discovery = multicast.map(|s| tokio::spawn(discovery::listen(s, handle.clone(), guard.clone())));
    if !joins.is_empty() {
        handle.send(Event::JoinConfigured(joins)).await;
    }
    if let Some(hook) = env.on_ready {
        hook(&handle);
    }
    drop(handle);
    for s in servers {
        let _ = s.await;
    }
    if let Some(f) = ftp_task {
        let _ = f.await;
    }
    if let Some(d) = discovery {
        d.abort();
    }
    let _ = watch_task.await;
    let _ = driver_task.await;
    tracing::info!("stopped");
    Ok(())
}
