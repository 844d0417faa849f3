use std::sync::Arc;

use clap::Parser;
use dftp::config::{normalize_args, Cli};
use dftp::localfs::StdFs;
use dftp::net::TokioNet;
use dftp::Env;

fn main() {
    dftp::memory::configure();
    let cli = Cli::parse_from(normalize_args(std::env::args()));
    tracing_subscriber::fmt()
        // libunftp's spans carry a dump of the whole FTP session: keep them out of the log.
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,libunftp=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let fs = match StdFs::new(&cli.dfsroot) {
        Ok(fs) => fs,
        Err(e) => {
            eprintln!("dftp: {e}");
            std::process::exit(2);
        }
    };
    tracing::info!("serving {}", fs.root().display());
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
        dftp::run(cli, env, stop_rx).await
    });
    if let Err(e) = result {
        eprintln!("dftp: {e}");
        std::process::exit(1);
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM can be handled");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
