//! Running as a service: every flag can come from a `DFTP_*` environment variable (a flag on the
//! command line wins), and `deploy/dftp.service` is a unit that `systemd-analyze verify`
//! accepts and whose hardening `systemd-analyze security` rates well.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dftp_e2e::*;

/// `dftp`, with none of the test's own `DFTP_*` variables.
fn dftp_command() -> Command {
    let mut cmd = Command::new(dftp_bin());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("DFTP_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// A dftp process started with the given flags and environment (and nothing else from the
/// test's environment that starts with `DFTP_`), killed when dropped.
struct Daemon {
    child: Child,
    log: tempfile::NamedTempFile,
}

impl Daemon {
    fn start(args: &[&str], env: &[(&str, String)]) -> Daemon {
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut cmd = dftp_command();
        // The e2e rule: no node sends multicast. As a flag, so that it holds whatever the
        // variables under test say.
        cmd.args(["--multicast-discovery-addr", ""]).args(args);
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        cmd.env("NO_COLOR", "1").env("RUST_LOG", "info");
        let child =
            cmd.stdin(Stdio::null()).stdout(log.reopen().unwrap()).stderr(log.reopen().unwrap()).spawn().unwrap();
        Daemon { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// Waits until `url` answers 200, or fails with the log if the process exits first.
    fn wait_up(&mut self, url: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("dftp exited with {status}:\n{}", self.log());
            }
            if try_http("GET", url, &[], None).is_ok_and(|r| r.status == 200) {
                return;
            }
            assert!(Instant::now() < deadline, "{url} not answering:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- dftp log ----\n{}", self.log());
        }
    }
}

fn addr() -> String {
    format!("127.0.0.1:{}", free_port())
}

#[test]
fn environment_variables_configure_a_node() {
    let root = awkward_tempdir("env-root");
    write_file(root.path(), "from-env.txt", b"env\n");
    let peer_root = awkward_tempdir("env-peer");
    write_file(peer_root.path(), "from-peer.txt", b"peer\n");
    let peer = Node::start(NodeOpts::new("peer", peer_root.path()));
    let other_root = awkward_tempdir("env-other");
    write_file(other_root.path(), "from-other.txt", b"other\n");
    let other = Node::start(NodeOpts::new("other", other_root.path()));

    let (http, mgmt, ftp) = (addr(), addr(), addr());
    let mut d = Daemon::start(
        &[],
        &[
            ("DFTP_DFSROOT", root.path().display().to_string()),
            ("DFTP_NODE_NAME", "envnode".into()),
            ("DFTP_CLUSTER_NAME", "dftp".into()),
            ("DFTP_HTTP_LISTEN", http.clone()),
            ("DFTP_HTTP_MGMT_LISTEN", mgmt.clone()),
            ("DFTP_FTP_LISTEN", ftp.clone()),
            // Several peers, separated by commas.
            ("DFTP_JOIN", format!("{},{}", peer.mgmt_addr(), other.mgmt_addr())),
            ("DFTP_PING_INTERVAL", "300ms".into()),
            ("DFTP_AUTH", "@/from-env.txt,/from-peer.txt".into()),
        ],
    );
    d.wait_up(&format!("http://{mgmt}/cluster/"));
    let cluster = get(&format!("http://{mgmt}/cluster/")).json();
    assert_eq!(cluster["Me"]["Name"], "envnode");
    assert_eq!(cluster["Me"]["PublicAddr"], http.as_str());
    // Joined both peers, and serves its root and theirs (the rule allows two of the three).
    let find = wait_until("the env node to list both peers' files", WAIT, || {
        let r = get(&format!("http://{http}/find/"));
        (r.text() == "/from-env.txt\n/from-peer.txt\n").then_some(r.text())
    });
    assert_eq!(find, "/from-env.txt\n/from-peer.txt\n");
    assert_eq!(get(&format!("http://{http}/fs/from-env.txt")).body, b"env\n");
    assert_eq!(get(&format!("http://{http}/fs/from-other.txt")).status, 401, "DFTP_AUTH applies");
    wait_until("the other node to know envnode", WAIT, || other.peers().contains("envnode").then_some(()));
    // FTP on the address of the variable.
    let ftp_greeting = wait_until("the FTP listener", WAIT, || {
        let mut s = std::net::TcpStream::connect(&ftp).ok()?;
        s.set_read_timeout(Some(WAIT)).unwrap();
        let mut buf = [0u8; 64];
        let n = std::io::Read::read(&mut s, &mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    });
    assert!(ftp_greeting.starts_with("220"), "{ftp_greeting}");
}

#[test]
fn a_flag_wins_over_its_variable() {
    let root = awkward_tempdir("env-flag");
    write_file(root.path(), "root.txt", b"flag root\n");
    let env_root = awkward_tempdir("env-flag-env");
    write_file(env_root.path(), "env-root.txt", b"env root\n");
    let (flag_http, env_http, mgmt) = (addr(), addr(), addr());
    let root_str = root.path().display().to_string();
    // Flags in the original's single-dash spelling win too; and a bad variable of a flag that
    // is given does not matter.
    let (flag2_http, mgmt2) = (addr(), addr());
    let mut d2 = Daemon::start(
        &["-node-name=dashflag", &format!("-http-listen={flag2_http}"), "-ftp-listen=", "-ping-interval=1s"],
        &[
            ("DFTP_NODE_NAME", "fromenv".into()),
            ("DFTP_DFSROOT", root_str.clone()),
            ("DFTP_HTTP_MGMT_LISTEN", mgmt2.clone()),
            ("DFTP_PING_INTERVAL", "not a duration".into()),
        ],
    );
    d2.wait_up(&format!("http://{mgmt2}/cluster/"));
    assert_eq!(get(&format!("http://{mgmt2}/cluster/")).json()["Me"]["Name"], "dashflag");
    assert_eq!(get(&format!("http://{flag2_http}/find/")).text(), "/root.txt\n");
    drop(d2);

    let mut d = Daemon::start(
        &["--node-name", "fromflag", "--http-listen", &flag_http, "--dfsroot", &root_str, "--ftp-listen", ""],
        &[
            ("DFTP_NODE_NAME", "fromenv".into()),
            ("DFTP_HTTP_LISTEN", env_http.clone()),
            ("DFTP_DFSROOT", env_root.path().display().to_string()),
            ("DFTP_HTTP_MGMT_LISTEN", mgmt.clone()),
        ],
    );
    d.wait_up(&format!("http://{mgmt}/cluster/"));
    let cluster = get(&format!("http://{mgmt}/cluster/")).json();
    assert_eq!(cluster["Me"]["Name"], "fromflag");
    assert_eq!(get(&format!("http://{flag_http}/find/")).text(), "/root.txt\n", "--dfsroot wins");
    assert!(try_http("GET", &format!("http://{env_http}/"), &[], None).is_err(), "nothing on the variable's address");
}

#[test]
fn a_bad_variable_is_refused_like_a_bad_flag() {
    let root = awkward_tempdir("env-bad");
    for (var, value, says) in [
        ("DFTP_HTTP_LISTEN", "nocolon", "--http-listen"),
        ("DFTP_PING_INTERVAL", "soon", "not a duration"),
        ("DFTP_MAX_CONNECTIONS", "0", "max-connections"),
    ] {
        let out = dftp_command()
            .args(["--multicast-discovery-addr", "", "--node-name", "bad"])
            .env("DFTP_DFSROOT", root.path())
            .env(var, value)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{var}={value}: {stderr}");
        assert!(stderr.contains(says), "{var}={value}: {stderr}");
    }
    // --help names each variable and never shows a value (DFTP_AUTH holds a password).
    let out = dftp_command().arg("--help").env("DFTP_AUTH", "alice:s3cret@/").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for var in ["DFTP_DFSROOT", "DFTP_HTTP_LISTEN", "DFTP_JOIN", "DFTP_AUTH_FILE", "DFTP_MAX_CONNECTIONS"] {
        assert!(help.contains(&format!("[env: {var}]")), "{var} missing from --help:\n{help}");
    }
    assert!(!help.contains("s3cret"), "{help}");
}

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join(rel)
}

/// The unit as shipped, with `ExecStart` pointing at the binary just built (verify checks that
/// the program exists): systemd accepts every line of it, and rates its hardening well.
#[test]
fn the_systemd_unit_verifies() {
    if Command::new("systemd-analyze").arg("--version").output().is_err() {
        eprintln!("skipping: systemd-analyze is not installed (.ci/run installs systemd)");
        return;
    }
    let unit = std::fs::read_to_string(repo_file("deploy/dftp.service")).unwrap();
    for line in [
        "User=dftp",
        "Restart=on-failure",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "LimitNOFILE=65536",
        "ExecStart=/usr/local/bin/dftp",
    ] {
        assert!(unit.lines().any(|l| l == line), "{line} missing from the unit");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dftp.service");
    let local = unit.replace("ExecStart=/usr/local/bin/dftp", &format!("ExecStart={}", dftp_bin().display()));
    std::fs::write(&path, local).unwrap();
    let out = Command::new("systemd-analyze").arg("verify").arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // verify exits 0 on an unknown key too, with a warning: any output is a failure.
    assert!(out.status.success() && stderr.trim().is_empty(), "systemd-analyze verify: {:?}\n{stderr}", out.status);

    // The exposure score (0 to 10, lower is better) must be at most 3.0.
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--threshold=30", "--no-pager"])
        .arg(&path)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "systemd-analyze security: {:?}\n{report}", out.status);
    assert!(report.contains("Overall exposure level for dftp.service"), "{report}");
}
