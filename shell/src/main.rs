use std::sync::Arc;

use dftp::config::{normalize_args, try_parse};
use dftp::localfs::StdFs;
use dftp::net::TokioNet;
use dftp::settings::Settings;
use dftp::Env;

fn main() {
    dftp::memory::configure();
    // A bad flag exits with status 2 here, before the tree is scanned.
    // Flags, and DFTP_* variables for the flags not given.
    let cli = try_parse(normalize_args(std::env::args())).unwrap_or_else(|e| e.exit());
    let settings = match Settings::from_cli(cli) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("dftp: {e}");
            std::process::exit(2);
        }
    };
    tracing_subscriber::fmt()
        // libunftp's spans carry a dump of the whole FTP session: keep them out of the log.
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,libunftp=warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(colour_logs())
        .init();
    let cli = &settings.cli;
    let fs = match StdFs::new(&cli.dfsroot) {
        Ok(fs) => fs,
        Err(e) => {
            eprintln!("dftp: {e}");
            std::process::exit(2);
        }
    };
    tracing::info!("serving {}", fs.root().display());
    dftp::descriptors::raise_limit(cli.max_connections);
    let start_unix_ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    let runtime = tokio::runtime::Runtime::new().expect("the tokio runtime starts");
    let result = runtime.block_on(async move {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutting down");
            let _ = stop_tx.send(true);
        });
        let env = Env::new(Arc::new(TokioNet), Arc::new(fs), start_unix_ms);
        dftp::run(settings, env, stop_rx).await
    });
    if let Err(e) = result {
        eprintln!("dftp: {e}");
        std::process::exit(1);
    }
}

/// Colours only for a person at a terminal: a log file, a pipe or journald gets plain text, and
/// so does anyone who sets `NO_COLOR` (no-color.org: any non-empty value).
fn colour_logs() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM can be handled");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
