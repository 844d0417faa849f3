//! Command-line flags. The original's flags keep their names and defaults, and its single-dash
//! spelling (`-dfsroot=/x`) still works, so existing scripts keep running.

use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// dftp: one distributed file tree over HTTP and FTP, projected from directories that already
/// exist on several machines. Every node runs this daemon; nodes find each other by multicast or
/// by --join, and serve any file of the cluster by fetching it from the node that owns it.
#[derive(Parser, Debug, Clone)]
#[command(name = "dftp", version, about, long_about = None)]
pub struct Cli {
    /// Local directory whose tree this node serves (made absolute; must exist).
    #[arg(long, default_value = ".")]
    pub dfsroot: PathBuf,

    /// Path inside the cluster tree where the local tree appears (empty: at the root).
    #[arg(long, default_value = "")]
    pub dfsmount: String,

    /// This node's name in the cluster (default: the hostname). Must be unique in the cluster.
    #[arg(long)]
    pub node_name: Option<String>,

    /// host:port of the public HTTP interface (an empty host listens on every interface).
    #[arg(long, default_value = ":7040")]
    pub http_listen: String,

    /// host:port of the cluster management HTTP interface (peers talk to it).
    #[arg(long, default_value = ":7041")]
    pub http_mgmt_listen: String,

    /// host:port of the public FTP interface (bound to exactly that host; an empty host listens
    /// on every interface, an empty value turns FTP off).
    #[arg(long, default_value = ":2121")]
    pub ftp_listen: String,

    /// Ports FTP passive data connections (PASV, EPSV) listen on, as FIRST-LAST.
    #[arg(long, default_value = "49152-49407", value_parser = parse_port_range)]
    pub ftp_passive_ports: RangeInclusive<u16>,

    /// Text of the FTP greeting (the 220 reply).
    #[arg(long, default_value = "dftp: one tree over every node")]
    pub ftp_greeting: String,

    /// FTP sessions open at once, at most; a client beyond them gets `421` and is disconnected.
    /// Each session holds at most one passive port, so keep this within --ftp-passive-ports.
    #[arg(long, value_name = "N", default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..))]
    pub ftp_max_sessions: u32,

    /// FTP control connections idle for this long (no command, no transfer) are closed.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub ftp_idle_timeout: Duration,

    /// Multicast group host:port for peer discovery; an empty value disables discovery.
    #[arg(long, default_value = "224.0.0.9:7041")]
    pub multicast_discovery_addr: String,

    /// IPv4 address of the interface to send and receive multicast on.
    #[arg(long, default_value = "0.0.0.0")]
    pub multicast_interface: std::net::Ipv4Addr,

    /// Cluster name; nodes ignore announcements of other clusters on the same multicast group.
    #[arg(long, default_value = "dftp")]
    pub cluster_name: String,

    /// Management address (host:port, or https://host:port for one served over TLS) of a node to
    /// greet at start; repeatable. Retried until it answers.
    #[arg(long = "join", value_name = "HOST:PORT")]
    pub join: Vec<String>,

    /// How often to announce this node on the multicast group.
    #[arg(long, default_value = "55s", value_parser = parse_duration)]
    pub announce_interval: Duration,

    /// How often to greet every peer, to check it is alive and resynchronise.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub ping_interval: Duration,

    /// A peer silent for this long is removed with its files. Its updates are signs of life,
    /// and so are its answers to our greetings while we have had all its updates.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub peer_timeout: Duration,

    /// How our nodes watch whether their peers are alive: `swim` (each node probes one peer per
    /// --swim-probe-interval, asks 3 others to probe it when it does not answer, and declares it
    /// down after a suspicion of 4·log10(N) probe intervals: constant traffic per node) or
    /// `ping` (every peer greeted every --ping-interval, as the original does). Peers that do
    /// not speak SWIM, the original's nodes, are greeted every --ping-interval either way.
    #[arg(long, default_value = "swim", value_parser = parse_membership)]
    pub membership: dftp_core::swim::Membership,

    /// With --membership swim: how often each node probes one peer (memberlist's LAN default).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub swim_probe_interval: Duration,

    /// How often every peer gets a full update of this node's files.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub full_update_interval: Duration,

    /// How peers are kept in sync between updates: `digest` sends each peer that speaks digests
    /// a small digest of this node's files every --digest-interval, and only the parts that
    /// differ when they do (peers that do not, such as the original's nodes, still get a full
    /// update every --full-update-interval); `full` sends every peer a full update every
    /// --full-update-interval, as the original does.
    #[arg(long, default_value = "digest", value_parser = parse_anti_entropy)]
    pub anti_entropy: dftp_core::anti_entropy::Mode,

    /// How often each peer that speaks digests gets one (--anti-entropy digest). A digest is a
    /// few hundred bytes, so a minute bounds how long a silently lost change goes unnoticed at
    /// a sixth of the cost of the pings.
    #[arg(long, default_value = "1m", value_parser = parse_duration)]
    pub digest_interval: Duration,

    /// How often to rescan the whole local tree when changes cannot be watched (e.g. the
    /// inotify watch limit was reached).
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub rescan_interval: Duration,

    /// Address to advertise to peers for the public HTTP interface (default: derived from
    /// --http-listen; an empty host lets each peer use the address it sees us from).
    #[arg(long)]
    pub advertise_http: Option<String>,

    /// Address to advertise to peers for the management interface (default: from
    /// --http-mgmt-listen).
    #[arg(long)]
    pub advertise_mgmt: Option<String>,

    /// Threads serving the public HTTP interface, each keeping the connections it accepted
    /// (default: one per core). 1 serves it from the runtime shared with everything else.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub http_threads: Option<u16>,

    /// Connections each HTTP interface (public, management) keeps open at most; further
    /// clients wait in the kernel's queue until one closes. Each interface has its own, so
    /// that clients holding every public slot leave the peers' management traffic alone.
    #[arg(long, value_name = "N", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// Slowest a request body may come (PUT and PATCH uploads, management updates), in bytes
    /// per second on average after its first 10 s; a slower one is cut off (408, or a failed
    /// upload that changes nothing). Any body is cut off after a minute without a byte.
    /// 0: no minimum rate.
    #[arg(long, value_name = "BYTES_PER_SEC", default_value_t = dftp_core::pace::Pace::DEFAULT_MIN_RATE)]
    pub body_min_rate: u64,

    /// Largest accepted POST /update/ body, in bytes (a full update of 1M files is ~250 MB).
    #[arg(long, default_value_t = 1 << 30)]
    pub max_update_bytes: u64,

    /// Update bodies (POST /update/) read and parsed at once; further ones wait up to 30 s for
    /// their turn, then get 503 (their sender sends a full update later). Each parse holds the
    /// records of its body, so this bounds the memory a flood of bodies can take.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent_updates: u32,

    /// An access rule (repeatable): USER:PASSWORD@/PATH[:ro|:rw][,/PATH[:ro|:rw]...] grants a
    /// user those paths and everything below them, read-only (:ro, the default) or read-write
    /// (:rw); @/PATH... grants them to anonymous clients. PASSWORD is clear text, or a bcrypt
    /// ($2y$, htpasswd -nbB) or SHA-512 crypt ($6$, mkpasswd -m sha-512) hash. Without any rule
    /// everybody may read everything and nobody may write; with rules, clients have exactly what
    /// they grant. Rules given here show in `ps`: prefer --auth-file.
    #[arg(long = "auth", value_name = "RULE", value_parser = |s: &str| Ok::<_, String>(RuleArg(s.to_owned())))]
    pub auth: Vec<RuleArg>,

    /// A file of access rules as --auth takes them, one per line; empty lines and lines that
    /// start with # are skipped.
    #[arg(long, value_name = "FILE")]
    pub auth_file: Option<PathBuf>,

    /// The cluster secret: a file with one key (at least 32 characters; `openssl rand -hex 32`)
    /// or two, one per line, while the key changes: messages are then signed with both, and
    /// either is accepted (so the key rotates without downtime). Every management request, answer and multicast packet is then signed with it,
    /// and unsigned ones are refused. It must be readable by its owner only (mode 600 or 400).
    /// Every node of the cluster needs it.
    #[arg(long, value_name = "FILE")]
    pub cluster_secret_file: Option<PathBuf>,

    /// PEM file of the certificate (and its chain, leaf first) that the public HTTP interface
    /// is served with: HTTPS only, no plain HTTP on that port. FTP then offers explicit FTPS
    /// (AUTH TLS) with it too. Needs --tls-key. Read again on SIGHUP (a failed reload is logged
    /// and the old certificate kept).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM file of the private key of --tls-cert (PKCS#8, PKCS#1 or SEC1). Read again on
    /// SIGHUP.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// PEM bundle of the CA certificates that peers with https:// addresses are verified
    /// against (the cluster's own CA). Without it, the platform's CA store is used.
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,

    /// Serve the management interface over TLS too (with --tls-cert), and advertise both
    /// interfaces to peers as https://HOST:PORT, so that the cluster's own traffic (greetings,
    /// updates) is encrypted. Every peer must then be a dftp node that trusts the certificate
    /// (see --tls-ca); the original's nodes cannot join.
    #[arg(long, requires = "tls_cert")]
    pub tls_mgmt: bool,

    /// FTP: accounts with passwords must secure the control connection with AUTH TLS before
    /// USER/PASS (a plain USER gets 534), and protect their data connections (PROT P).
    /// Anonymous sessions may stay plain. Needs --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub ftps_required: bool,
}

/// The text of an `--auth` rule as given. It holds a password: it never prints (the flags are
/// kept, with `Debug`, in the settings).
#[derive(Clone)]
pub struct RuleArg(pub String);

impl std::fmt::Debug for RuleArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RuleArg(***)")
    }
}

/// The environment variable a flag can also come from: `DFTP_` and the flag's name in capitals,
/// `-` written `_` (`--http-listen`: `DFTP_HTTP_LISTEN`).
pub fn env_name(long: &str) -> String {
    format!("DFTP_{}", long.to_ascii_uppercase().replace('-', "_"))
}

/// The command line with every long flag also read from its environment variable
/// ([`env_name`]), as container users expect. A flag given on the command line wins over the
/// variable, which wins over the default. `DFTP_JOIN` takes several addresses separated by
/// commas (so does `--join`); `DFTP_AUTH` holds one rule (a rule holds commas): several rules
/// belong in `DFTP_AUTH_FILE`.
///
/// Every flag gets its variable here, so that none can be forgotten.
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    Cli::command().mut_args(|arg| {
        let Some(long) = arg.get_long().filter(|l| !matches!(*l, "help" | "version")).map(str::to_owned) else {
            return arg;
        };
        // `--help` names the variables but never shows their values: DFTP_AUTH holds a password.
        let arg = arg.env(env_name(&long)).hide_env_values(true);
        if long == "join" {
            arg.value_delimiter(',')
        } else {
            arg
        }
    })
}

/// Parses the arguments (after [`normalize_args`]) and the `DFTP_*` variables, or says why not.
pub fn try_parse(args: Vec<String>) -> Result<Cli, clap::Error> {
    use clap::FromArgMatches;
    let mut cmd = command();
    let matches = cmd.try_get_matches_from_mut(args)?;
    Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut cmd))
}

/// Rewrites `-dfsroot=/x` and `-dfsroot /x` to their double-dash form.
///
/// Every long flag gets the single-dash spelling, the original's and ours alike, so that no
/// flag can be forgotten here; clap's short `-h` and `-V` keep working.
pub fn normalize_args<I: IntoIterator<Item = String>>(args: I) -> Vec<String> {
    use clap::CommandFactory;
    let command = Cli::command();
    let long: Vec<&str> = command.get_arguments().filter_map(|a| a.get_long()).chain(["help", "version"]).collect();
    args.into_iter()
        .enumerate()
        .map(|(i, a)| {
            if i == 0 || a.starts_with("--") || !a.starts_with('-') {
                return a;
            }
            let name = a[1..].split('=').next().unwrap_or("");
            if long.contains(&name) {
                format!("-{a}")
            } else {
                a
            }
        })
        .collect()
}

/// Parses `500ms`, `10s`, `5m`, `1h`, `1d`, sums of them as Go and systemd write them (`1h30m`,
/// `2m30s`, `1d12h`), or a bare number of seconds.
fn parse_anti_entropy(s: &str) -> Result<dftp_core::anti_entropy::Mode, String> {
    s.parse()
}

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let shape = || format!("{s:?} is not a duration like 500ms, 10s, 5m, 1h or 1h30m");
    if s.is_empty() {
        return Err(shape());
    }
    let mut secs = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_end);
        let unit_end = tail.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_end);
        let n: f64 = num.parse().map_err(|_| shape())?;
        // A bare number is seconds, but only alone: in `1h30` the 30 is ambiguous.
        if unit.is_empty() && !(rest.len() == s.len() && tail.is_empty()) {
            return Err(format!("{s:?}: {num} has no unit (use ms, s, m, h or d)"));
        }
        secs += n * match unit {
            "ms" => 0.001,
            "" | "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            _ => return Err(format!("{s:?}: unknown unit {unit:?} (use ms, s, m, h or d)")),
        };
        rest = tail;
    }
    if !secs.is_finite() || secs <= 0.0 || secs > 1e9 {
        return Err(format!("{s:?} is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses `--membership`.
pub fn parse_membership(s: &str) -> Result<dftp_core::swim::Membership, String> {
    match s {
        "swim" => Ok(dftp_core::swim::Membership::Swim),
        "ping" => Ok(dftp_core::swim::Membership::Ping),
        _ => Err(format!("{s:?}: expected swim or ping")),
    }
}

/// Parses a port range `FIRST-LAST` (or a single port).
pub fn parse_port_range(s: &str) -> Result<RangeInclusive<u16>, String> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let port = |p: &str| p.trim().parse::<u16>().map_err(|_| format!("{s:?}: expected a port range like 49152-49407"));
    let (a, b) = (port(a)?, port(b)?);
    if a == 0 || a > b {
        return Err(format!("{s:?}: expected FIRST-LAST with 0 < FIRST <= LAST"));
    }
    Ok(a..=b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("2m30s").unwrap(), Duration::from_secs(150));
        assert_eq!(parse_duration("1d12h").unwrap(), Duration::from_secs(36 * 3600));
        assert_eq!(parse_duration("1s500ms").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        for bad in ["10x", "", "0s", "h", "1h30", "30 1h", "1h-5m", "1..5s", "ms", "1e9d"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn port_ranges() {
        assert_eq!(parse_port_range("49152-49407").unwrap(), 49152..=49407);
        assert_eq!(parse_port_range("2000").unwrap(), 2000..=2000);
        for bad in ["", "0-10", "10-5", "a-b", "1-70000", "1-2-3"] {
            assert!(parse_port_range(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn every_flag_has_its_variable() {
        let cmd = command();
        let mut count = 0;
        for arg in cmd.get_arguments() {
            let Some(long) = arg.get_long().filter(|l| !matches!(*l, "help" | "version")) else { continue };
            assert_eq!(arg.get_env().and_then(|e| e.to_str()), Some(env_name(long).as_str()), "--{long}");
            count += 1;
        }
        assert!(count > 20, "{count} flags");
        assert_eq!(env_name("http-mgmt-listen"), "DFTP_HTTP_MGMT_LISTEN");
    }

    #[test]
    fn single_dash_flags() {
        let args =
            normalize_args(["dftp", "-dfsroot=/x", "-node-name", "a", "--http-listen=:1", "-x"].map(String::from));
        assert_eq!(args, vec!["dftp", "--dfsroot=/x", "--node-name", "a", "--http-listen=:1", "-x"]);
        let cli =
            Cli::try_parse_from(normalize_args(["dftp", "-dfsroot=/srv", "-join=h:1"].map(String::from))).unwrap();
        assert_eq!(cli.dfsroot, PathBuf::from("/srv"));
        assert_eq!(cli.join, vec!["h:1"]);
    }
}
