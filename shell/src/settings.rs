//! The command line, checked: every value that can be wrong is parsed here, before the scan of
//! the tree starts, so that a typo costs a second and not a scan of a large tree. What can only
//! fail later (a port already taken, a multicast route the host lacks) is the caller's.

use std::fmt;
use std::net::{SocketAddr, SocketAddrV4};
use std::path::Path;
use std::sync::Arc;

use dftp_core::cluster_auth::Keys;
use dftp_core::{Mount, PeerAddr, Rule, Rules};
use smol_str::SmolStr;

use crate::config::Cli;
use crate::net::parse_listen;
use crate::tls::{Identity, PeerTls};

/// The flags of a node, each parsed into what it means.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The flags as given, for the values clap already checked (durations, ports, sizes).
    pub cli: Cli,
    pub name: SmolStr,
    pub cluster: SmolStr,
    pub mount: Mount,
    pub http_listen: SocketAddr,
    pub mgmt_listen: SocketAddr,
    /// `None`: FTP is off.
    pub ftp_listen: Option<SocketAddr>,
    /// `None`: discovery is off.
    pub discovery: Option<SocketAddrV4>,
    pub advertise_http: Option<PeerAddr>,
    pub advertise_mgmt: Option<PeerAddr>,
    pub joins: Vec<PeerAddr>,
    /// `--auth` and `--auth-file`: who may read and write where.
    pub rules: Rules,
    /// `--cluster-secret-file`: the keys that sign and check the cluster's messages.
    pub cluster_keys: Option<Keys>,
    /// `--tls-cert` and `--tls-key`: the certificate the node serves with. `None`: plain.
    pub identity: Option<Arc<Identity>>,
    /// `--tls-ca`: how `https://` peers are verified.
    pub peer_tls: Arc<PeerTls>,
}

/// A flag whose value is wrong, and why. The daemon exits with status 2 on it, as for a flag
/// clap refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagError {
    pub flag: &'static str,
    pub reason: String,
}

impl fmt::Display for FlagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "--{}: {}", self.flag, self.reason)
    }
}

impl std::error::Error for FlagError {}

fn bad(flag: &'static str) -> impl Fn(String) -> FlagError {
    move |reason| FlagError { flag, reason }
}

impl Settings {
    /// Checks every flag; the first wrong one is named in the error.
    pub fn from_cli(cli: Cli) -> Result<Settings, FlagError> {
        let name = match &cli.node_name {
            Some(n) => n.clone(),
            None => gethostname::gethostname().to_string_lossy().into_owned(),
        };
        let name = dftp_core::wire::check_name(&name).map_err(|e| bad("node-name")(format!("{name:?}: {e}")))?;
        let cluster = dftp_core::wire::check_name(&cli.cluster_name)
            .map_err(|e| bad("cluster-name")(format!("{:?}: {e}", cli.cluster_name)))?;
        let mount = Mount::parse(&cli.dfsmount).map_err(|e| bad("dfsmount")(format!("{:?}: {e}", cli.dfsmount)))?;
        let http_listen = parse_listen(&cli.http_listen).map_err(bad("http-listen"))?;
        let mgmt_listen = parse_listen(&cli.http_mgmt_listen).map_err(bad("http-mgmt-listen"))?;
        let ftp_listen = match cli.ftp_listen.as_str() {
            "" => None,
            s => Some(parse_listen(s).map_err(bad("ftp-listen"))?),
        };
        if cli.ftp_greeting.chars().any(char::is_control) {
            return Err(bad("ftp-greeting")("the greeting must be one line without control characters".into()));
        }
        let discovery = match cli.multicast_discovery_addr.as_str() {
            "" => None,
            s => Some(parse_group(s).map_err(bad("multicast-discovery-addr"))?),
        };
        let peer = |flag: &'static str, s: &str| PeerAddr::parse(s).map_err(|e| bad(flag)(format!("{s:?}: {e}")));
        let advertise_http = cli.advertise_http.as_deref().map(|s| peer("advertise-http", s)).transpose()?;
        let advertise_mgmt = cli.advertise_mgmt.as_deref().map(|s| peer("advertise-mgmt", s)).transpose()?;
        let joins = cli.join.iter().map(|j| peer("join", j)).collect::<Result<Vec<_>, _>>()?;
        let rules = rules(&cli)?;
        let cluster_keys = cli.cluster_secret_file.as_deref().map(cluster_keys).transpose()?;
        let identity = match (&cli.tls_cert, &cli.tls_key) {
            (Some(cert), Some(key)) => Some(Arc::new(Identity::load(cert, key)?)),
            (None, None) => None,
            // clap makes each require the other; this is for callers that build a Cli by hand.
            (Some(_), None) => return Err(bad("tls-cert")("needs --tls-key".into())),
            (None, Some(_)) => return Err(bad("tls-key")("needs --tls-cert".into())),
        };
        let peer_tls = Arc::new(PeerTls::new(cli.tls_ca.as_deref())?);
        Ok(Settings {
            cli,
            name,
            cluster,
            mount,
            http_listen,
            mgmt_listen,
            ftp_listen,
            discovery,
            advertise_http,
            advertise_mgmt,
            joins,
            rules,
            cluster_keys,
            identity,
            peer_tls,
        })
    }
}

/// The keys of `--cluster-secret-file`. As ssh does with private keys, a file that its group or
/// others may read (or write) is refused: the key would not be a secret.
fn cluster_keys(file: &Path) -> Result<Keys, FlagError> {
    use std::os::unix::fs::PermissionsExt;
    let fail = |why: String| bad("cluster-secret-file")(format!("{}: {why}", file.display()));
    let meta = std::fs::metadata(file).map_err(|e| fail(format!("cannot read it: {e}")))?;
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(fail(format!(
            "permissions {:03o} are too open: the cluster secret must be readable by its owner only (chmod 600)",
            mode & 0o777
        )));
    }
    let bytes = std::fs::read(file).map_err(|e| fail(format!("cannot read it: {e}")))?;
    Keys::from_file(&bytes).map_err(|e| fail(e.to_string()))
}

/// Where a rule was given, to name it in an error.
enum Origin<'a> {
    /// The n-th `--auth` (from 1).
    Flag(usize),
    /// A line (from 1) of `--auth-file`.
    Line(&'a Path, usize),
}

impl Origin<'_> {
    /// An error about the rule from here; `column` of the rule's text, when known.
    fn error(&self, column: Option<usize>, reason: impl fmt::Display) -> FlagError {
        let at = column.map(|c| format!(", column {c}")).unwrap_or_default();
        match self {
            Origin::Flag(n) => bad("auth")(format!("rule {n}{at}: {reason}")),
            Origin::Line(file, n) => bad("auth-file")(format!("{} line {n}{at}: {reason}", file.display())),
        }
    }
}

/// The rules of `--auth` and `--auth-file`, in that order. An error names the flag and the
/// rule (for the file: the line), and never quotes the rule, which holds a password.
fn rules(cli: &Cli) -> Result<Rules, FlagError> {
    let mut origins = Vec::new();
    let mut parsed = Vec::new();
    for (i, arg) in cli.auth.iter().enumerate() {
        let origin = Origin::Flag(i + 1);
        parsed.push(Rule::parse(&arg.0).map_err(|e| origin.error(Some(e.column), e.reason))?);
        origins.push(origin);
    }
    let text;
    if let Some(file) = &cli.auth_file {
        let read = |why: String| bad("auth-file")(format!("cannot read {}: {why}", file.display()));
        let bytes = std::fs::read(file).map_err(|e| read(e.to_string()))?;
        text = String::from_utf8(bytes).map_err(|_| read("it is not UTF-8".into()))?;
        for (n, line) in text.lines().enumerate() {
            let rule = line.trim_end();
            let indent = rule.len() - rule.trim_start().len();
            let rule = rule.trim_start();
            if rule.is_empty() || rule.starts_with('#') {
                continue;
            }
            let origin = Origin::Line(file, n + 1);
            let column = |c: usize| c + line[..indent].chars().count();
            parsed.push(Rule::parse(rule).map_err(|e| origin.error(Some(column(e.column)), e.reason))?);
            origins.push(origin);
        }
    }
    Rules::new(parsed).map_err(|e| origins[e.index].error(None, e.reason))
}

/// A multicast group: an IPv4 multicast address and a port.
fn parse_group(s: &str) -> Result<SocketAddrV4, String> {
    let addr: SocketAddrV4 =
        s.parse().map_err(|_| format!("{s:?}: expected an IPv4 group and port like 224.0.0.9:7041"))?;
    if !addr.ip().is_multicast() {
        return Err(format!("{s:?}: {} is not a multicast address (224.0.0.0/4)", addr.ip()));
    }
    if addr.port() == 0 {
        return Err(format!("{s:?}: the port must not be 0"));
    }
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn settings(args: &[&str]) -> Result<Settings, FlagError> {
        let mut argv = vec!["dftp"];
        if !args.contains(&"--node-name") {
            argv.extend(["--node-name", "n"]);
        }
        argv.extend_from_slice(args);
        Settings::from_cli(Cli::try_parse_from(argv).unwrap())
    }

    #[test]
    fn defaults_are_valid() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.discovery, Some("224.0.0.9:7041".parse().unwrap()));
        assert_eq!(s.http_listen, "0.0.0.0:7040".parse().unwrap());
        assert_eq!(s.ftp_listen, Some("0.0.0.0:2121".parse().unwrap()));
        assert!(s.joins.is_empty() && s.advertise_http.is_none());
        let off = settings(&["--ftp-listen", "", "--multicast-discovery-addr", ""]).unwrap();
        assert_eq!((off.ftp_listen, off.discovery), (None, None));
    }

    #[test]
    fn each_bad_value_names_its_flag() {
        for (args, flag) in [
            (&["--node-name", ""][..], "node-name"),
            (&["--node-name", "a\nb"], "node-name"),
            (&["--cluster-name", ""], "cluster-name"),
            (&["--dfsmount", "a/../b"], "dfsmount"),
            (&["--http-listen", "nocolon"], "http-listen"),
            (&["--http-mgmt-listen", ":99999"], "http-mgmt-listen"),
            (&["--ftp-listen", "x:y"], "ftp-listen"),
            (&["--ftp-greeting", "two\nlines"], "ftp-greeting"),
            (&["--multicast-discovery-addr", "10.0.0.1:7041"], "multicast-discovery-addr"),
            (&["--multicast-discovery-addr", "224.0.0.9"], "multicast-discovery-addr"),
            (&["--multicast-discovery-addr", "224.0.0.9:0"], "multicast-discovery-addr"),
            (&["--advertise-http", "noport"], "advertise-http"),
            (&["--advertise-mgmt", "h:x"], "advertise-mgmt"),
            (&["--join", "ok:1", "--join", "nocolon"], "join"),
            (&["--auth", "alice:pw@/a", "--auth", "bob:pw@/b:xx"], "auth"),
            (&["--auth", "@/a", "--auth", "@/b"], "auth"),
            (&["--auth-file", "/nonexistent/dftp-auth-file"], "auth-file"),
            (&["--cluster-secret-file", "/nonexistent/dftp-cluster-key"], "cluster-secret-file"),
            (&["--tls-cert", "/nonexistent/dftp-cert.pem", "--tls-key", "/nonexistent/k.pem"], "tls-cert"),
            (&["--tls-ca", "/nonexistent/dftp-ca.pem"], "tls-ca"),
        ] {
            let e = settings(args).expect_err(&format!("{args:?}"));
            assert_eq!(e.flag, flag, "{args:?}: {e}");
            assert!(e.to_string().starts_with(&format!("--{flag}: ")), "{e}");
        }
    }

    #[test]
    fn rules_from_flags_and_a_file() {
        let dir = std::env::temp_dir().join(format!("dftp-settings-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("rules");
        std::fs::write(&file, "# who may do what\n\n  alice:s3cret@/home/alice:rw  \r\n\t# indented comment\n@/pub\n")
            .unwrap();
        let file_arg = file.to_str().unwrap();
        let s = settings(&["--auth", "bob:b@/b", "--auth-file", file_arg]).unwrap();
        assert!(s.rules.has_accounts());
        assert_eq!(s.rules.users().collect::<Vec<_>>(), ["alice", "bob"]);
        assert!(s.rules.login("alice", &dftp_core::Secret::new("s3cret")).is_ok());
        assert!(s.rules.anonymous_may_read_something());
        assert!(!format!("{s:?}").contains("s3cret"), "the settings print no password");
        assert!(!settings(&[]).unwrap().rules.has_accounts());

        // Errors name the flag, the rule or the file and line, and the column; never the password.
        let mut errors = Vec::new();
        let e = settings(&["--auth", "bob:b@/b", "--auth", "carol:SECRETPW@/c:xy"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--auth: rule 2, column 18: unknown access `:xy`: use `:ro` (read) or `:rw` (read and write)"
        );
        errors.push(e);
        std::fs::write(&file, "# rules\n@/pub\n  dave:SECRETPW@pub\n").unwrap();
        let e = settings(&["--auth-file", file_arg]).unwrap_err();
        assert_eq!(e.flag, "auth-file");
        let want = format!("--auth-file: {} line 3, column 20: no `@/PATH` in the rule", file.display());
        assert!(e.to_string().starts_with(&want), "{e}");
        errors.push(e);
        std::fs::write(&file, "bob:SECRETPW@/x\n").unwrap();
        let e = settings(&["--auth", "bob:b@/b", "--auth-file", file_arg]).unwrap_err();
        let want = format!("--auth-file: {} line 1: a second rule for user bob", file.display());
        assert!(e.to_string().starts_with(&want), "{e}");
        errors.push(e);
        std::fs::write(&file, b"\xff\xfe").unwrap();
        let e = settings(&["--auth-file", file_arg]).unwrap_err();
        assert!(e.to_string().contains("not UTF-8"), "{e}");
        for e in errors {
            assert!(!e.to_string().contains("SECRETPW"), "{e}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
