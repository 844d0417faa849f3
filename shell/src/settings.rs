//! The command line, checked: every value that can be wrong is parsed here, before the scan of
//! the tree starts, so that a typo costs a second and not a scan of a large tree. What can only
//! fail later (a port already taken, a multicast route the host lacks) is the caller's.

use std::fmt;
use std::net::{SocketAddr, SocketAddrV4};

use dftp_core::{Mount, PeerAddr};
use smol_str::SmolStr;

use crate::config::Cli;
use crate::net::parse_listen;

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
        })
    }
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
        ] {
            let e = settings(args).expect_err(&format!("{args:?}"));
            assert_eq!(e.flag, flag, "{args:?}: {e}");
            assert!(e.to_string().starts_with(&format!("--{flag}: ")), "{e}");
        }
    }
}
