//! The command line: `--help` explains every flag, `--version` works, the original's
//! single-dash spelling (`-dfsroot=/x`) works, and a missing root or a bad value exits non-zero
//! with a message that names the problem.

use std::process::{Command, Stdio};

use dftp_e2e::*;

/// Flags that must exist: the original's, and those the daemon adds.
const FLAGS: &[&str] = &[
    "dfsroot",
    "dfsmount",
    "node-name",
    "http-listen",
    "http-mgmt-listen",
    "ftp-listen",
    "multicast-discovery-addr",
    "cluster-name",
    "join",
    "multicast-interface",
    "announce-interval",
    "ping-interval",
    "peer-timeout",
    "full-update-interval",
    "max-update-bytes",
];

fn help_flags(help: &str) -> Vec<String> {
    help.lines()
        .filter(|l| l.trim_start().starts_with('-'))
        .filter_map(|l| l.split_whitespace().take(2).find(|w| w.starts_with("--")))
        .map(|w| w.trim_start_matches('-').trim_end_matches(',').split(['=', '<']).next().unwrap().to_string())
        .filter(|f| f != "help" && f != "version")
        .collect()
}

#[test]
fn help_explains_every_flag_and_version_works() {
    let out = run_dftp(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    let listed = help_flags(&help);
    for flag in FLAGS {
        assert!(listed.iter().any(|f| f == flag), "--{flag} missing from --help:\n{help}");
    }
    // Every flag has an explanation: the line after the flag's own (or the rest of its line).
    let lines: Vec<&str> = help.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim_start();
        if t.starts_with("--") && !t.starts_with("--help") && !t.starts_with("--version") {
            let own = t.split_once("  ").map(|(_, rest)| rest.trim()).unwrap_or("");
            let next = lines.get(i + 1).map(|l| l.trim()).unwrap_or("");
            assert!(!own.is_empty() || (!next.is_empty() && !next.starts_with('-')), "no explanation for {t}:\n{help}");
        }
    }
    assert!(help.contains("7040") && help.contains("7041") && help.contains("2121") && help.contains("224.0.0.9:7041"));

    for args in [&["--version"][..], &["-V"], &["-version"]] {
        let out = run_dftp(args);
        assert!(out.status.success(), "{args:?}");
        let v = String::from_utf8(out.stdout).unwrap();
        assert_eq!(v.trim(), format!("dftp {}", env!("CARGO_PKG_VERSION")), "{args:?}");
    }
    let out = run_dftp(&["-help"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), help);
}

#[test]
fn every_flag_has_the_single_dash_spelling() {
    let help = String::from_utf8(run_dftp(&["--help"]).stdout).unwrap();
    for flag in help_flags(&help) {
        // Not a complete command line: it must fail, but on the flag's value, not as unknown.
        let dash = format!("-{flag}");
        let out = run_dftp(&[&dash, "--dfsroot", "/nonexistent/dftp-e2e-root"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{dash}");
        assert!(!err.contains("unexpected argument"), "{dash} is not understood:\n{err}");
    }
}

#[test]
fn the_originals_single_dash_spelling_starts_a_node() {
    let root = awkward_tempdir("single-dash");
    write_file(root.path(), "somedir/a.txt", b"a text\n");
    let (http, mgmt) = (format!("127.0.0.1:{}", free_port()), format!("127.0.0.1:{}", free_port()));
    let mut child = Command::new(dftp_bin())
        .arg(format!("-dfsroot={}", root.path().display()))
        .arg("-node-name=old-style")
        .arg(format!("-http-listen={http}"))
        .args(["-http-mgmt-listen", &mgmt])
        .arg(format!("-ftp-listen=127.0.0.1:{}", free_port()))
        .arg("-multicast-discovery-addr=")
        .args(["-cluster-name", "oldies"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let find = wait_until("the node to answer", WAIT, || {
        assert!(child.try_wait().unwrap().is_none(), "the node exited");
        try_http("GET", &format!("http://{http}/find/"), &[], None).ok().filter(|r| r.status == 200)
    });
    let cluster = get(&format!("http://{mgmt}/cluster/"));
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(find.text(), "/somedir\n/somedir/a.txt\n");
    let table = cluster.json();
    assert_eq!((table["Name"].as_str(), table["Me"]["Name"].as_str()), (Some("oldies"), Some("old-style")));
}

/// Compound durations (`1h30m`) are accepted, and a log that goes to a file or a pipe has no
/// colour codes, even when `NO_COLOR` is not set.
#[test]
fn compound_durations_and_plain_logs() {
    let root = awkward_tempdir("plain-logs");
    let http = format!("127.0.0.1:{}", free_port());
    let log = tempfile::NamedTempFile::new().unwrap();
    let seed = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(dftp_bin())
        .arg("--dfsroot")
        .arg(root.path())
        .args(["--node-name", "plain", "--http-listen", &http])
        .args(["--http-mgmt-listen", &format!("127.0.0.1:{}", free_port())])
        .args(["--ftp-listen", "", "--multicast-discovery-addr", ""])
        .args(["--full-update-interval", "1h30m", "--peer-timeout", "1m30s", "--ping-interval", "1s500ms"])
        // A seed that refuses, so that a warning is logged too.
        .args(["--join", &seed])
        .env_remove("NO_COLOR")
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log.reopen().unwrap())
        .spawn()
        .unwrap();
    let seed = format!("greeting {}", seed);
    let text = wait_until("three failed greetings of the seed", WAIT, || {
        assert!(child.try_wait().unwrap().is_none(), "the node exited");
        let text = std::fs::read_to_string(log.path()).unwrap();
        let failed = text.lines().filter(|l| l.contains("DEBUG") && l.contains(&seed)).count();
        (failed >= 3).then_some(text)
    });
    assert_eq!(get(&format!("http://{http}/")).status, 200);
    let _ = child.kill();
    let _ = child.wait();
    // One warning at the first failure, with the address and the reason; the next one a minute on.
    let warnings: Vec<&str> = text.lines().filter(|l| l.contains("WARN") && l.contains("does not answer")).collect();
    assert_eq!(warnings.len(), 1, "{text}");
    assert!(warnings[0].contains(&seed) && warnings[0].contains("refused"), "{}", warnings[0]);
    assert!(text.contains("INFO"), "{text}");
    assert!(!text.contains('\u{1b}'), "colour codes in a log file:\n{text}");
}

#[test]
fn a_missing_root_or_a_bad_value_exits_with_a_clear_message() {
    // Loopback ports and no multicast, unless a case sets the flag itself.
    let ports = |extra: &[&str]| -> Vec<String> {
        let defaults = [
            ("--http-listen", "127.0.0.1:0"),
            ("--http-mgmt-listen", "127.0.0.1:0"),
            ("--ftp-listen", "127.0.0.1:0"),
            ("--multicast-discovery-addr", ""),
            ("--node-name", "n"),
        ];
        let mut v = Vec::new();
        for (flag, value) in defaults {
            if !extra.contains(&flag) {
                v.extend([flag.to_string(), value.to_string()]);
            }
        }
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let file = tempfile::NamedTempFile::new().unwrap();
    let file_path = file.path().to_str().unwrap().to_owned();
    let dir = awkward_tempdir("cli");
    let dir_path = dir.path().to_str().unwrap().to_owned();
    let cases: Vec<(Vec<String>, Vec<&str>)> = vec![
        (ports(&["--dfsroot", "/nonexistent/dftp-e2e-root"]), vec!["--dfsroot", "/nonexistent/dftp-e2e-root"]),
        (ports(&["-dfsroot=/nonexistent/dftp-e2e-root"]), vec!["--dfsroot", "/nonexistent/dftp-e2e-root"]),
        (ports(&["--dfsroot", &file_path]), vec!["--dfsroot", "not a directory"]),
        (ports(&["--dfsroot", &dir_path, "--ping-interval", "10x"]), vec!["--ping-interval", "10x"]),
        (ports(&["--dfsroot", &dir_path, "--join", "nocolon"]), vec!["--join", "nocolon"]),
        (ports(&["--dfsroot", &dir_path, "--max-update-bytes", "lots"]), vec!["--max-update-bytes"]),
        (ports(&["--dfsroot", &dir_path, "--no-such-flag"]), vec!["--no-such-flag"]),
        (
            ports(&["--dfsroot", &dir_path, "--http-listen", "127.0.0.1:99999"]),
            vec!["--http-listen", "127.0.0.1:99999"],
        ),
        (ports(&["--dfsroot", &dir_path, "--ftp-listen", "nocolon"]), vec!["--ftp-listen", "nocolon"]),
        (ports(&["--dfsroot", &dir_path, "--node-name", ""]), vec!["--node-name"]),
        (ports(&["--dfsroot", &dir_path, "--cluster-name", "two\nlines"]), vec!["--cluster-name"]),
        (ports(&["--dfsroot", &dir_path, "--dfsmount", "a/../b"]), vec!["--dfsmount", ".."]),
        (ports(&["--dfsroot", &dir_path, "--advertise-http", "noport"]), vec!["--advertise-http", "noport"]),
        (ports(&["--dfsroot", &dir_path, "--advertise-mgmt", "h:x"]), vec!["--advertise-mgmt", "h:x"]),
        (
            ports(&["--dfsroot", &dir_path, "--multicast-discovery-addr", "10.1.2.3:7041"]),
            vec!["--multicast-discovery-addr", "not a multicast address"],
        ),
        (ports(&["--dfsroot", &dir_path, "--peer-timeout", "1h30"]), vec!["--peer-timeout", "1h30"]),
        (ports(&["--dfsroot", &dir_path, "--ftp-passive-ports", "9-1"]), vec!["--ftp-passive-ports"]),
    ];
    for (args, wanted) in cases {
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run_dftp(&argv);
        let err = String::from_utf8_lossy(&out.stderr);
        // 2, as for any usage error, and before the tree is scanned: a typo costs no scan.
        assert_eq!(out.status.code(), Some(2), "{argv:?}:\n{err}");
        assert!(!err.contains("scan"), "{argv:?} scanned the tree first:\n{err}");
        for w in wanted {
            assert!(err.contains(w), "{argv:?}: the message does not mention {w:?}:\n{err}");
        }
        assert!(!err.contains("panicked"), "{argv:?} panicked:\n{err}");
    }
}
