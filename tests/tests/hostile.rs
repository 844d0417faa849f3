//! The hostile-input suite (issue 14, item 7): one table of cases, each what an attacker sends
//! to one interface of a real node (public HTTP, management HTTP, FTP; multicast in a test of
//! its own below, inside a private network namespace), and the answer it must get (a status
//! class, an FTP reply code, a closed connection). Most cases are raw bytes on a
//! `std::net::TcpStream`, exactly as an attacker writes them; some are small scripts (slow
//! heads, many idle connections, forged tags, a huge update body).
//!
//! After every case the same checks run against every node of the suite:
//! - the process is alive (not exited, not a zombie);
//! - it answers a real request (a GET of a file: 200 with the right bytes; the management
//!   interface answers too) within [`LIVENESS`], and an FTP session works after FTP cases;
//! - no byte of a canary file placed *outside* the served roots, and no local path of the
//!   temporary directory, shows in anything the case received;
//! - the canary and everything else outside the roots is untouched on disk;
//! - its open descriptors (`/proc/PID/fd`) come back to within [`FD_MARGIN`] of their count
//!   before the case, once the case's connections are closed (polled, with a generous deadline).
//!
//! The attacks of issue 14 fixed earlier (tests/tests/{cluster_secret,containment,limits,
//! ftp_limits,mgmt,root_replaced,browser_walls}.rs) are replayed here as cases; the nodes are
//! `plain` (no secret, no accounts, with a peer `peer`), and `secret` (`--cluster-secret-file`,
//! `--auth` accounts). Failures are collected, so that one run names every failing case.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dftp_core::cluster_auth::{BodyDigest, Keys, HEADER};
use dftp_core::Time;
use dftp_e2e::ftp::{connect_from, ftp_addr, with_ftp, Control};
use dftp_e2e::signing::{nonce, now};
use dftp_e2e::*;
use serde_json::json;

/// How long a node may take to answer a real request after a case. The issue asks for "within
/// a second"; that is a liveness check, not a measure of speed (the standards forbid timed
/// assertions on this shared, noisy machine), so the bound is one only a hung node would miss.
const LIVENESS: Duration = Duration::from_secs(30);

/// Descriptors a node may hold above its count before a case once the case is over: pooled
/// connections to its peer and timers come and go.
const FD_MARGIN: usize = 12;

/// How long descriptors may take to come back (connections closing, timeouts of greetings).
const FD_WAIT: Duration = Duration::from_secs(90);

/// `--max-update-bytes` of the plain node: what bounds the memory an update body may take.
const MAX_UPDATE: usize = 16 << 20;

const KEY: &str = "3f1c0e5a9b7d2c4e6f8a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e";
const WRONG_KEY: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const USER: &str = "alice";
const PASSWORD: &str = "correct horse";

// ---- the world --------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Iface {
    Http,
    Mgmt,
    Ftp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum On {
    Plain,
    Secret,
}

/// The nodes under attack, their roots, and what must never leak.
struct World {
    base: tempfile::TempDir,
    plain: Node,
    peer: Node,
    secret: Node,
    plain_root: PathBuf,
    secret_root: PathBuf,
    /// The content of `real.txt` in every root: what the liveness GET must get.
    real: Vec<u8>,
    /// A file outside every root; no byte of it may ever be sent.
    canary: Vec<u8>,
    /// Entries of the base directory (outside the roots) at the start: none may appear.
    outside: Vec<String>,
    keys: Keys,
    wrong_keys: Keys,
}

impl World {
    fn node(&self, on: On) -> &Node {
        match on {
            On::Plain => &self.plain,
            On::Secret => &self.secret,
        }
    }

    fn addr(&self, on: On, iface: Iface) -> SocketAddr {
        let n = self.node(on);
        match iface {
            Iface::Http => n.http,
            Iface::Mgmt => n.mgmt,
            Iface::Ftp => ftp_addr(n),
        }
    }

    fn nodes(&self) -> [&Node; 3] {
        [&self.plain, &self.peer, &self.secret]
    }

    fn start() -> World {
        let base = tempfile::Builder::new().prefix("dftp e2e hostile ü#?&").tempdir().unwrap();
        let canary = format!("CANARY-{}-{:x}", std::process::id(), now().0).into_bytes();
        std::fs::write(base.path().join("canary.txt"), &canary).unwrap();
        let real = pseudo_random(4096, 11).iter().map(|b| b'a' + b % 26).collect::<Vec<u8>>();
        let (plain_root, peer_root, secret_root) =
            (base.path().join("plain root"), base.path().join("peer root"), base.path().join("secret root"));
        for root in [&plain_root, &peer_root, &secret_root] {
            std::fs::create_dir(root).unwrap();
            write_file(root, "real.txt", &real);
            // Links out of the root: never followed, listed or served.
            std::os::unix::fs::symlink("../canary.txt", root.join("out-link")).unwrap();
            std::os::unix::fs::symlink("..", root.join("out-dir")).unwrap();
            std::os::unix::fs::symlink(base.path().join("canary.txt"), root.join("abs-link")).unwrap();
        }
        write_file(&plain_root, "sub/x.txt", b"x\n");
        write_file(&plain_root, "javascript:alert(1)", b"a name that is a script URL\n");
        write_file(&plain_root, "<img src=x onerror=alert(1)>.txt", b"markup in a name\n");
        write_file(&plain_root, "x\n/forged", b"a newline in a name\n");
        write_file(&plain_root, "esc\u{1b}[31mred.txt", b"an escape in a name\n");
        write_file(&plain_root, "swap.txt", b"a file that becomes a FIFO\n");
        for i in 0..1000 {
            write_file(&plain_root, &format!("many/d{}/f{i:04}.txt", i % 10), format!("file {i}\n").as_bytes());
        }
        write_file(&peer_root, "peer.txt", b"the peer's file\n");
        write_file(&secret_root, "movable.txt", b"may be moved by alice\n");
        let outside = entries(base.path());

        let keys_dir = base.path().join("keys");
        std::fs::create_dir(&keys_dir).unwrap();
        let key_file = keys_dir.join("key");
        std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let mut outside = [outside, vec!["keys".to_string()]].concat();
        outside.sort();

        let plain = Node::start(
            with_ftp(NodeOpts::new("plain", &plain_root))
                .arg("--ftp-max-sessions=4")
                .arg(&format!("--max-update-bytes={MAX_UPDATE}")),
        );
        let peer = Node::start(NodeOpts::new("peer", &peer_root).join(&plain.mgmt_addr()));
        let secret = Node::start(
            with_ftp(NodeOpts::new("secret", &secret_root))
                .arg("--cluster-secret-file")
                .arg(key_file.to_str().unwrap())
                .arg("--auth")
                .arg(&format!("{USER}:{PASSWORD}@/:rw"))
                .arg("--auth")
                .arg("@/:ro"),
        );
        wait_until("plain to list the peer's file", WAIT, || plain.find().contains("/peer.txt\n").then_some(()));
        wait_until("the peer to list plain's file", WAIT, || peer.find().contains("/sub/x.txt\n").then_some(()));
        World {
            base,
            plain,
            peer,
            secret,
            plain_root,
            secret_root,
            real,
            canary,
            outside,
            keys: Keys::new(KEY.as_bytes(), None).unwrap(),
            wrong_keys: Keys::new(WRONG_KEY.as_bytes(), None).unwrap(),
        }
    }

    /// The local paths that must never show in an answer.
    fn local_paths(&self) -> Vec<String> {
        let base = self.base.path().to_string_lossy().into_owned();
        vec![base.clone(), encode_path(base.trim_start_matches('/')), "dftp e2e hostile".into(), "dftp%20e2e".into()]
    }

    /// A request to `on`'s management interface signed with `keys`, made at `at`.
    fn signed(&self, on: On, keys: &Keys, method: &str, path: &str, body: &[u8], at: Time) -> Vec<u8> {
        let stamp = keys.sign_request(method, path, at, nonce(), BodyDigest::of(body));
        let ctype = if path == "/update/" { "application/json" } else { "application/x-www-form-urlencoded" };
        exchange(
            self.addr(on, Iface::Mgmt),
            &request(method, path, &[("Content-Type", ctype), (HEADER, &stamp)], Some(body)),
        )
    }
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

// ---- raw exchanges --------------------------------------------------------------------------

/// Sends `bytes` (as far as the node takes them) and returns everything it sends back until it
/// closes the connection or is silent for [`LIVENESS`].
fn exchange(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(LIVENESS)).unwrap();
    s.set_write_timeout(Some(LIVENESS)).unwrap();
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// One HTTP/1.1 request with `Host` and `Connection: close` (and a `Content-Length` for a body).
fn request(method: &str, target: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Vec<u8> {
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n").into_bytes();
    for (k, v) in headers {
        req.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    if let Some(b) = body {
        req.extend_from_slice(format!("Content-Length: {}\r\n", b.len()).as_bytes());
    }
    req.extend_from_slice(b"\r\n");
    req.extend_from_slice(body.unwrap_or_default());
    req
}

fn get_req(target: &str) -> Vec<u8> {
    request("GET", target, &[], None)
}

/// `Authorization: Basic` of these bytes, as they are.
fn basic(raw: &[u8]) -> String {
    use base64::Engine;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

fn status_of(bytes: &[u8]) -> Option<u16> {
    if !bytes.starts_with(b"HTTP/") {
        return None;
    }
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(64)]).into_owned();
    head.split_whitespace().nth(1).and_then(|s| s.parse().ok())
}

/// Every status line in a stream of answers (pipelined requests).
fn statuses(bytes: &[u8]) -> Vec<u16> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while let Some(i) = rest.windows(9).position(|w| w == b"HTTP/1.1 ") {
        if let Some(s) = std::str::from_utf8(&rest[i + 9..(i + 12).min(rest.len())]).ok().and_then(|s| s.parse().ok()) {
            out.push(s);
        }
        rest = &rest[i + 9..];
    }
    out
}

// ---- the node's state ---------------------------------------------------------------------------

/// Whether the process runs (a child that exited is a zombie until it is waited for).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X')))
        .unwrap_or(false)
}

fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

/// A field of `/proc/PID/status` in KiB (`VmRSS`, `VmHWM`).
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("no {field}"));
    line[field.len() + 1..].trim().trim_end_matches("kB").trim().parse().unwrap()
}

// ---- cases ------------------------------------------------------------------------------------

/// What a case must be answered.
#[derive(Clone, Copy, Debug)]
enum Expect {
    Status(u16),
    /// Any status of this class (4: 4xx).
    Class(u16),
    /// One of these statuses; 0 stands for a connection closed without an answer.
    OneOf(&'static [u16]),
    /// A 4xx, or the connection closed without an answer (bytes no HTTP parser should take).
    Refused,
    /// An answer below 500, or none (the request may well be served: the point is the checks
    /// that follow).
    NoServerError,
    /// An FTP reply code.
    Ftp(u32),
    /// An FTP reply of this class (5: 5xx).
    FtpClass(u32),
    /// The case asserted what it expects itself.
    Checked,
}

/// What a case got: an HTTP status (none when the connection closed unanswered), an FTP code,
/// and every byte it received (checked for leaks).
struct Outcome {
    status: Option<u16>,
    ftp: Option<u32>,
    bytes: Vec<u8>,
}

impl Outcome {
    fn http(bytes: Vec<u8>) -> Outcome {
        Outcome { status: status_of(&bytes), ftp: None, bytes }
    }

    fn ftp(code: u32, bytes: Vec<u8>) -> Outcome {
        Outcome { status: None, ftp: Some(code), bytes }
    }

    fn checked(bytes: Vec<u8>) -> Outcome {
        Outcome { status: None, ftp: None, bytes }
    }
}

type Run = Box<dyn Fn(&World) -> Outcome>;

struct Case {
    name: String,
    iface: Iface,
    on: On,
    run: Run,
    expect: Expect,
}

/// A case that sends `bytes` on one connection and reads the answer.
fn raw(name: &str, iface: Iface, on: On, bytes: Vec<u8>, expect: Expect) -> Case {
    let run: Run = Box::new(move |w: &World| Outcome::http(exchange(w.addr(on, iface), &bytes)));
    Case { name: name.into(), iface, on, run, expect }
}

fn custom(name: &str, iface: Iface, on: On, expect: Expect, f: impl Fn(&World) -> Outcome + 'static) -> Case {
    Case { name: name.into(), iface, on, run: Box::new(f), expect }
}

/// Sends 96 MiB of update records owned by `owner`, chunked (no length announced), and checks
/// that the node's peak memory grew by less than three times `--max-update-bytes` and that none
/// of the records went in.
fn huge_update(w: &World, owner: &str) -> Outcome {
    let pid = w.plain.pid();
    let before = status_kib(pid, "VmHWM");
    let record = format!(
        "{{\"FullName\":\"junk/{}\",\"Dir\":false,\"LastInfoUpdated\":1,\"OwnerNode\":\"{owner}\"}}",
        "j".repeat(1000)
    );
    let mut s = TcpStream::connect(w.plain.mgmt).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let head = "POST /update/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    let mut ok = s.write_all(head.as_bytes()).is_ok();
    let mut chunk = format!("{{\"SenderNodeName\":\"{owner}\",\"Full\":true,\"UpdateTime\":1,\"Files\":[");
    let mut sent = 0;
    while ok && sent < 96 << 20 {
        while chunk.len() < 1 << 20 {
            chunk.push_str(&record);
            chunk.push(',');
        }
        ok = s.write_all(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes()).is_ok();
        sent += chunk.len();
        chunk.clear();
    }
    if ok {
        let _ = s.write_all(b"3\r\n{}]\r\n1\r\n}\r\n0\r\n\r\n");
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let grown = status_kib(pid, "VmHWM").saturating_sub(before);
    assert!(grown < 3 * (MAX_UPDATE as u64 >> 10), "a 96 MiB body grew the node's peak memory by {grown} KiB");
    assert!(!w.plain.find().contains("/junk/"), "the records of {owner} were taken");
    Outcome::http(out)
}

fn check_expect(expect: Expect, out: &Outcome) -> Result<(), String> {
    let s = out.status;
    let ok = match expect {
        Expect::Status(want) => s == Some(want),
        Expect::Class(c) => s.is_some_and(|s| s / 100 == c),
        Expect::OneOf(set) => set.contains(&s.unwrap_or(0)),
        Expect::Refused => s.is_none_or(|s| s / 100 == 4),
        Expect::NoServerError => s.is_none_or(|s| s < 500),
        Expect::Ftp(code) => out.ftp == Some(code),
        Expect::FtpClass(c) => out.ftp.is_some_and(|code| code / 100 == c),
        Expect::Checked => true,
    };
    if ok {
        Ok(())
    } else {
        let head = String::from_utf8_lossy(&out.bytes[..out.bytes.len().min(300)]).into_owned();
        Err(format!("expected {expect:?}, got status {s:?} / FTP {:?}: {head:?}", out.ftp))
    }
}

/// Nothing from outside the roots, and no local path, in `bytes`.
fn check_leaks(w: &World, what: &str, bytes: &[u8]) -> Result<(), String> {
    if contains(bytes, &w.canary) {
        return Err(format!("{what}: sent the canary from outside the root"));
    }
    for p in w.local_paths() {
        if contains(bytes, p.as_bytes()) {
            return Err(format!("{what}: showed the local path {p:?}"));
        }
    }
    Ok(())
}

/// A real GET of `real.txt`, as a client would make it; its answer within [`LIVENESS`].
fn real_get(addr: SocketAddr) -> Result<Vec<u8>, String> {
    let mut s = TcpStream::connect_timeout(&addr, LIVENESS).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(LIVENESS)).unwrap();
    s.write_all(&get_req("/fs/real.txt")).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).map_err(|e| format!("no whole answer within {LIVENESS:?}: {e}"))?;
    Ok(out)
}

/// An FTP session that logs in and downloads `real.txt` (sessions of the case may take a moment
/// to be given back: polled).
fn ftp_works(w: &World, node: &Node) -> Result<(), String> {
    let deadline = Instant::now() + LIVENESS;
    loop {
        let tried = catch_unwind(AssertUnwindSafe(|| {
            let mut c = Control::login(node);
            let data = c.passive();
            c.send("RETR real.txt");
            let first = c.reply().code;
            let bytes = dftp_e2e::ftp::read_all(data);
            let last = c.reply().code;
            let _ = c.cmd("QUIT");
            (first, bytes, last)
        }));
        match tried {
            Ok((150, bytes, 226)) if bytes == w.real => return Ok(()),
            Ok(other) => return Err(format!("FTP RETR real.txt on {}: {:?}", node.name, (other.0, other.2))),
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(200)),
            Err(_) => return Err(format!("no FTP session on {} within {LIVENESS:?}", node.name)),
        }
    }
}

/// The checks after every case.
fn check_after(w: &World, case: &Case, out: &Outcome, fds_before: &[usize]) -> Result<(), String> {
    check_expect(case.expect, out)?;
    check_leaks(w, "the case's answer", &out.bytes)?;
    for (node, before) in w.nodes().into_iter().zip(fds_before) {
        if !alive(node.pid()) {
            return Err(format!("{} is no longer running", node.name));
        }
        let answer = real_get(node.http)?;
        let r = parse_response(&answer).map_err(|e| format!("GET /fs/real.txt on {}: {e}", node.name))?;
        if r.status != 200 || r.body != w.real {
            return Err(format!("GET /fs/real.txt on {}: {} {:?}", node.name, r.status, r.text()));
        }
        check_leaks(w, "the real GET", &answer)?;
        // The management interface answers too (401 without a tag on the node with a secret).
        let mgmt = exchange(node.mgmt, &get_req("/cluster/"));
        let want = if std::ptr::eq(node, &w.secret) { 401 } else { 200 };
        if status_of(&mgmt) != Some(want) {
            return Err(format!("GET /cluster/ on {}: {:?}", node.name, status_of(&mgmt)));
        }
        let deadline = Instant::now() + FD_WAIT;
        let mut fds = fd_count(node.pid());
        while fds > before + FD_MARGIN {
            if Instant::now() > deadline {
                return Err(format!("{} holds {fds} descriptors, {before} before the case", node.name));
            }
            std::thread::sleep(Duration::from_millis(250));
            fds = fd_count(node.pid());
        }
    }
    if case.iface == Iface::Ftp {
        ftp_works(w, w.node(case.on))?;
    }
    if std::fs::read(w.base.path().join("canary.txt")).ok().as_deref() != Some(&w.canary[..]) {
        return Err("the canary outside the root was changed".into());
    }
    let outside = entries(w.base.path());
    if outside != w.outside {
        return Err(format!("outside the roots, {:?} became {outside:?}", w.outside));
    }
    Ok(())
}

// ---- the table ----------------------------------------------------------------------------------

use Expect::*;
use Iface::{Ftp as FtpI, Http, Mgmt};
use On::{Plain, Secret};

fn traversal_cases() -> Vec<Case> {
    let targets = [
        "/fs/..",
        "/fs/../canary.txt",
        "/fs/../../../../../../etc/passwd",
        "/fs/sub/../../canary.txt",
        "/fs/%2e%2e/canary.txt",
        "/fs/%2E%2E%2Fcanary.txt",
        "/fs/..%2fcanary.txt",
        "/fs/sub%2f..%2f..%2fcanary.txt",
        "/fs/..%5ccanary.txt",
        "/fs/%5c..%5ccanary.txt",
        "/fs/..\\canary.txt",
        "/fs/%00",
        "/fs/real.txt%00",
        "/fs/%00/../canary.txt",
        "/fs/%c0%ae%c0%ae/canary.txt",
        "/fs/%e0%80%ae%e0%80%ae/canary.txt",
        "/fs/%c0%af..%c0%afcanary.txt",
        "/fs/%ff%fe",
        "/fs//etc/passwd",
        "/fs/out-link",
        "/fs/abs-link",
        "/fs/out-dir/canary.txt",
        "/fs/out-dir/",
        "/fs/out-dir%2fcanary.txt",
        "/../canary.txt",
        "/find/../fs/../canary.txt",
    ];
    let mut cases: Vec<Case> =
        targets.iter().map(|t| raw(&format!("traversal GET {t}"), Http, Plain, get_req(t), Class(4))).collect();
    cases.push(raw(
        "traversal HEAD /fs/../canary.txt",
        Http,
        Plain,
        request("HEAD", "/fs/../canary.txt", &[], None),
        Class(4),
    ));
    cases.push(custom("traversal in absolute form", Http, Plain, Class(4), |w| {
        Outcome::http(exchange(w.plain.http, &get_req(&format!("http://{}/fs/../canary.txt", w.plain.http))))
    }));
    cases.push(raw("traversal on the node with accounts", Http, Secret, get_req("/fs/%2e%2e/canary.txt"), Class(4)));
    cases
}

fn request_line_cases() -> Vec<Case> {
    let long_url = format!("/fs/{}", "a".repeat(100_000));
    let long_header = format!("X-Junk: {}", "j".repeat(100_000));
    let huge_header = format!("X-Junk: {}", "j".repeat(2 << 20));
    let many_headers: String = (0..500).map(|i| format!("X-H{i}: v\r\n")).collect();
    vec![
        raw("a 100 KB URL", Http, Plain, get_req(&long_url), Refused),
        raw(
            "a 100 KB header",
            Http,
            Plain,
            format!("GET /fs/real.txt HTTP/1.1\r\nHost: x\r\n{long_header}\r\nConnection: close\r\n\r\n").into_bytes(),
            NoServerError,
        ),
        raw(
            "a 2 MiB header",
            Http,
            Plain,
            format!("GET /fs/real.txt HTTP/1.1\r\nHost: x\r\n{huge_header}\r\nConnection: close\r\n\r\n").into_bytes(),
            Refused,
        ),
        raw(
            "500 headers",
            Http,
            Plain,
            format!("GET /fs/real.txt HTTP/1.1\r\nHost: x\r\n{many_headers}Connection: close\r\n\r\n").into_bytes(),
            Refused,
        ),
        raw(
            "500 headers on the management interface",
            Mgmt,
            Plain,
            format!("GET /cluster/ HTTP/1.1\r\nHost: x\r\n{many_headers}Connection: close\r\n\r\n").into_bytes(),
            Refused,
        ),
        raw(
            "a header name with a space",
            Http,
            Plain,
            b"GET / HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n".to_vec(),
            Refused,
        ),
        raw(
            "a header line without a colon",
            Http,
            Plain,
            b"GET / HTTP/1.1\r\nHost: x\r\nnocolon\r\n\r\n".to_vec(),
            Refused,
        ),
        raw(
            "an obsolete folded header",
            Http,
            Plain,
            b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n folded\r\nConnection: close\r\n\r\n".to_vec(),
            Refused,
        ),
        raw(
            "a NUL in a header value",
            Http,
            Plain,
            b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n".to_vec(),
            Refused,
        ),
        raw("an invented method", Http, Plain, request("FOO", "/fs/real.txt", &[], None), Class(4)),
        raw("an invented method outside /fs/", Http, Plain, request("FOO", "/find/", &[], None), Status(405)),
        raw("TRACE", Http, Plain, request("TRACE", "/", &[], None), Class(4)),
        raw("PROPFIND", Http, Plain, request("PROPFIND", "/fs/", &[("Depth", "infinity")], None), Class(4)),
        raw(
            "CONNECT",
            Http,
            Plain,
            b"CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\nConnection: close\r\n\r\n".to_vec(),
            Refused,
        ),
        raw("a lower-case method", Http, Plain, request("get", "/fs/real.txt", &[], None), Class(4)),
        raw("a 10 KB method", Http, Plain, request(&"M".repeat(10_000), "/", &[], None), Refused),
        raw("HTTP/0.9", Http, Plain, b"GET /fs/real.txt\r\n\r\n".to_vec(), Refused),
        raw("HTTP/2.0 on HTTP/1", Http, Plain, b"GET / HTTP/2.0\r\nHost: x\r\n\r\n".to_vec(), OneOf(&[0, 400, 505])),
        raw("HTTP/9.9", Http, Plain, b"GET / HTTP/9.9\r\nHost: x\r\n\r\n".to_vec(), OneOf(&[0, 400, 505])),
        raw("the HTTP/2 preface", Http, Plain, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(), OneOf(&[0, 400, 505])),
        raw("a TLS ClientHello", Http, Plain, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage".to_vec(), Refused),
        raw("4 KB of NUL bytes", Http, Plain, vec![0; 4096], Refused),
        raw("4 KB of NUL bytes to management", Mgmt, Plain, vec![0; 4096], Refused),
        raw("blank lines only", Http, Plain, b"\r\n\r\n\r\n\r\n".to_vec(), Refused),
        raw("a target with a space", Http, Plain, b"GET /fs/a b HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), Refused),
        raw("a target without a slash", Http, Plain, get_req("fs/real.txt"), Refused),
        raw("an asterisk target", Http, Plain, request("OPTIONS", "*", &[], None), NoServerError),
        raw(
            "no Host header",
            Http,
            Plain,
            b"GET /fs/real.txt HTTP/1.1\r\nConnection: close\r\n\r\n".to_vec(),
            NoServerError,
        ),
        raw(
            "two Host headers",
            Http,
            Plain,
            request("GET", "/fs/real.txt", &[("Host", "evil.example")], None),
            NoServerError,
        ),
        raw(
            "a bare LF request",
            Http,
            Plain,
            b"GET /fs/real.txt HTTP/1.1\nHost: x\nConnection: close\n\n".to_vec(),
            NoServerError,
        ),
    ]
}

fn framing_cases() -> Vec<Case> {
    let update = |extra: &str, body: &str| {
        format!(
            "POST /update/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{extra}Connection: close\r\n\r\n{body}"
        )
        .into_bytes()
    };
    let put = |extra: &str, body: &str| {
        format!("PUT /fs/new.txt HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n{body}").into_bytes()
    };
    let smuggled = "GET /fs/../canary.txt HTTP/1.1\r\nHost: x\r\n\r\n";
    vec![
        raw(
            "CL and TE together (smuggling)",
            Mgmt,
            Plain,
            update("Content-Length: 4\r\nTransfer-Encoding: chunked\r\n", &format!("0\r\n\r\n{smuggled}")),
            Refused,
        ),
        raw(
            "TE and CL together on a PUT",
            Http,
            Secret,
            put("Transfer-Encoding: chunked\r\nContent-Length: 3\r\n", &format!("0\r\n\r\n{smuggled}")),
            Refused,
        ),
        raw("two Content-Lengths", Mgmt, Plain, update("Content-Length: 2\r\nContent-Length: 3\r\n", "{}x"), Refused),
        raw("Content-Length: -1", Mgmt, Plain, update("Content-Length: -1\r\n", "{}"), Refused),
        raw("Content-Length: 1e3", Mgmt, Plain, update("Content-Length: 1e3\r\n", "{}"), Refused),
        raw("Content-Length: +2", Mgmt, Plain, update("Content-Length: +2\r\n", "{}"), Refused),
        raw(
            "Content-Length: 2^64",
            Mgmt,
            Plain,
            update("Content-Length: 18446744073709551616\r\n", "{}"),
            Refused,
        ),
        raw(
            "a Content-Length beyond the body",
            Mgmt,
            Plain,
            b"POST /update/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{}"
                .to_vec(),
            Checked,
        ),
        raw("TE: chunked, identity", Mgmt, Plain, update("Transfer-Encoding: chunked, identity\r\n", "0\r\n\r\n"), Refused),
        raw("TE: gzip", Mgmt, Plain, update("Transfer-Encoding: gzip\r\n", "0\r\n\r\n"), Refused),
        raw("TE: xchunked", Http, Secret, put("Transfer-Encoding: xchunked\r\n", "0\r\n\r\n"), Refused),
        raw("a chunk size that is not hex", Mgmt, Plain, update("Transfer-Encoding: chunked\r\n", "zz\r\n{}\r\n0\r\n\r\n"), Refused),
        raw(
            "a chunk size over 64 bits",
            Mgmt,
            Plain,
            update("Transfer-Encoding: chunked\r\n", "fffffffffffffffffffffff\r\n{}\r\n0\r\n\r\n"),
            Refused,
        ),
        raw(
            "a chunk without its CRLF",
            Mgmt,
            Plain,
            update("Transfer-Encoding: chunked\r\n", "2\r\n{}XX0\r\n\r\n"),
            Refused,
        ),
        raw(
            "a 100 KB chunk extension",
            Mgmt,
            Plain,
            update("Transfer-Encoding: chunked\r\n", &format!("2;{}\r\n{{}}\r\n0\r\n\r\n", "e".repeat(100_000))),
            Refused,
        ),
        raw(
            "a chunked body cut short",
            Mgmt,
            Plain,
            b"POST /update/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{\"Fi"
                .to_vec(),
            Checked,
        ),
        raw(
            "a body on a GET with a smuggled request in it",
            Http,
            Plain,
            format!("GET /fs/real.txt HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{smuggled}", smuggled.len())
                .into_bytes(),
            Checked,
        ),
    ]
}

/// A Range case: whatever the status, a `206` must carry exactly the bytes its Content-Range
/// names, inside the file.
fn range_case(spec: &'static str, allowed: &'static [u16]) -> Case {
    custom(&format!("Range: {spec}"), Http, Plain, OneOf(allowed), move |w| {
        let bytes = exchange(w.plain.http, &request("GET", "/fs/real.txt", &[("Range", spec)], None));
        let r = parse_response(&bytes).expect("an answer");
        match r.status {
            200 => assert_eq!(r.body, w.real, "a 200 sends the whole file"),
            206 => {
                let cr = r.header("content-range").expect("a 206 has a Content-Range");
                let (range, size) = cr.trim_start_matches("bytes ").split_once('/').unwrap();
                let (a, b) = range.split_once('-').unwrap();
                let (a, b): (usize, usize) = (a.parse().unwrap(), b.parse().unwrap());
                assert_eq!(size.parse::<usize>().unwrap(), w.real.len());
                assert!(a <= b && b < w.real.len(), "{cr}");
                assert_eq!(r.body, w.real[a..=b], "{cr}");
            }
            _ => {}
        }
        Outcome::http(bytes)
    })
}

fn header_cases() -> Vec<Case> {
    let many_ranges: &'static str =
        Box::leak((0..1000).map(|i| format!("{i}-{i}")).collect::<Vec<_>>().join(",").into_boxed_str());
    let mut cases = vec![
        range_case("bytes=0-0,2-3", &[200, 206, 416]),
        range_case("bytes=5-2", &[200, 416]),
        range_case("bytes=0-99999999999999999999999999", &[200, 206, 416]),
        range_case("bytes=99999999-", &[416]),
        range_case("bytes=-0", &[200, 416]),
        range_case("bytes=--1", &[200, 416]),
        // RFC 9110 asks for a Range of an unknown unit, or a suffix longer than the file, to be
        // ignored (200) or served whole (206); tower-http's ServeDir, which serves local files,
        // answers 416 to both. Not a hazard, so both are allowed here.
        range_case("lines=0-1", &[200, 416]),
        range_case("bytes=18446744073709551615-", &[416]),
        range_case("bytes=-18446744073709551615", &[200, 206, 416]),
        range_case(many_ranges, &[200, 206, 416]),
        // A DEL in a header value: hyper refuses the request.
        range_case("bytes=0-1;\u{7f}", &[200, 206, 400, 416]),
    ];
    let auth = |name: &str, value: String, expect: Expect| {
        custom(name, Http, Secret, expect, move |w| {
            let mut req = b"GET /fs/real.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: ".to_vec();
            req.extend_from_slice(value.as_bytes());
            req.extend_from_slice(b"\r\n\r\n");
            Outcome::http(exchange(w.secret.http, &req))
        })
    };
    cases.extend([
        auth("Authorization: garbage base64", "Basic !!!not base64!!!".into(), Status(401)),
        auth("Authorization: no colon", basic(b"nocolon"), Status(401)),
        auth("Authorization: a wrong password", basic(format!("{USER}:wrong").as_bytes()), Status(401)),
        auth("Authorization: invalid UTF-8", basic(b"\xff\xfe:\xc0\xaf"), Status(401)),
        auth("Authorization: a NUL in the user", basic(format!("{USER}\0:{PASSWORD}").as_bytes()), Status(401)),
        auth("Authorization: Bearer", "Bearer abc.def.ghi".into(), Status(401)),
        auth("Authorization: Basic and nothing", "Basic".into(), Status(401)),
        auth("Authorization: 60 KB", basic(&vec![b'u'; 60_000]), Refused),
        auth("Authorization: a 60 KB password", basic(format!("{USER}:{}", "p".repeat(60_000)).as_bytes()), Refused),
        auth("Authorization: a control character", "Basic \u{7f}\u{1}".into(), Refused),
    ]);
    cases.push(raw(
        "If-Modified-Since: garbage",
        Http,
        Plain,
        request("GET", "/fs/real.txt", &[("If-Modified-Since", "yesterday at noon, roughly")], None),
        Status(200),
    ));
    cases.push(raw(
        "If-Range: garbage with a Range",
        Http,
        Plain,
        request("GET", "/fs/real.txt", &[("If-Range", "\"\\\""), ("Range", "bytes=0-1")], None),
        OneOf(&[200, 206]),
    ));
    cases.push(raw(
        "If-None-Match: 10,000 tags",
        Http,
        Plain,
        request("GET", "/fs/real.txt", &[("If-None-Match", &"\"x\",".repeat(10_000))], None),
        Status(200),
    ));
    cases.push(raw(
        "If-Unmodified-Since: a date in year 99999",
        Http,
        Plain,
        request("GET", "/fs/real.txt", &[("If-Unmodified-Since", "Sat, 01 Jan 99999 00:00:00 GMT")], None),
        OneOf(&[200, 412]),
    ));
    cases
}

fn write_cases() -> Vec<Case> {
    let creds = basic(format!("{USER}:{PASSWORD}").as_bytes());
    let dav =
        move |name: &str, method: &'static str, target: &'static str, headers: Vec<(&'static str, String)>, expect| {
            let creds = creds.clone();
            custom(name, Http, Secret, expect, move |w| {
                let mut h: Vec<(&str, &str)> = vec![("Authorization", creds.as_str())];
                h.extend(headers.iter().map(|(k, v)| (*k, v.as_str())));
                let body: Option<&[u8]> = (method == "PUT" || method == "PATCH").then_some(b"evil".as_slice());
                let out = Outcome::http(exchange(w.secret.http, &request(method, target, &h, body)));
                assert_eq!(std::fs::read(w.secret_root.join("movable.txt")).unwrap(), b"may be moved by alice\n");
                out
            })
        };
    let s = |v: &str| v.to_string();
    vec![
        dav(
            "MOVE to ../canary.txt",
            "MOVE",
            "/fs/movable.txt",
            vec![("Destination", s("/fs/../canary.txt"))],
            Class(4),
        ),
        dav("MOVE to %2e%2e", "MOVE", "/fs/movable.txt", vec![("Destination", s("/fs/%2e%2e/canary.txt"))], Class(4)),
        dav(
            "COPY to another host",
            "COPY",
            "/fs/movable.txt",
            vec![("Destination", s("http://evil.example/fs/stolen.txt"))],
            OneOf(&[400, 403, 502]),
        ),
        dav(
            "COPY to a path outside /fs/",
            "COPY",
            "/fs/movable.txt",
            vec![("Destination", s("/etc/passwd"))],
            Class(4),
        ),
        dav("COPY to garbage", "COPY", "/fs/movable.txt", vec![("Destination", s("::::"))], Class(4)),
        dav(
            "COPY with a 60 KB Destination",
            "COPY",
            "/fs/movable.txt",
            vec![("Destination", format!("/fs/{}", "d/".repeat(30_000)))],
            Refused,
        ),
        dav(
            "COPY with Overwrite: maybe",
            "COPY",
            "/fs/movable.txt",
            vec![("Destination", s("/fs/copy.txt")), ("Overwrite", s("maybe"))],
            Status(400),
        ),
        dav("MOVE without a Destination", "MOVE", "/fs/movable.txt", vec![], Status(400)),
        dav("PUT to ../", "PUT", "/fs/../escape.txt", vec![], Class(4)),
        dav("PUT to %2e%2e", "PUT", "/fs/%2e%2e/escape.txt", vec![], Class(4)),
        dav("PUT through a link out of the root", "PUT", "/fs/out-dir/escape.txt", vec![], Class(4)),
        dav("PUT over a link out of the root", "PUT", "/fs/out-link", vec![], Class(4)),
        dav("PUT of a name with a newline", "PUT", "/fs/new%0Aline.txt", vec![], Class(4)),
        dav("MKCOL of a name with an escape", "MKCOL", "/fs/esc%1Bdir", vec![], Class(4)),
        dav("DELETE of the root", "DELETE", "/fs/", vec![], Class(4)),
        dav(
            "PATCH at a 2^64 offset",
            "PATCH",
            "/fs/movable.txt",
            vec![("X-Update-Range", s("bytes=18446744073709551616-"))],
            Status(400),
        ),
        dav("PATCH without its header", "PATCH", "/fs/movable.txt", vec![], Status(400)),
        raw("PUT without an account", Http, Plain, request("PUT", "/fs/new.txt", &[], Some(b"x")), Class(4)),
        raw("DELETE without an account", Http, Plain, request("DELETE", "/fs/real.txt", &[], None), Class(4)),
    ]
}

fn listing_cases() -> Vec<Case> {
    let long_query = format!("/fs/?{}", "sort=name&".repeat(5_000));
    let mut cases = vec![
        raw("?sort=%ff", Http, Plain, get_req("/fs/?sort=%ff"), OneOf(&[200, 400])),
        raw("?sort=bogus", Http, Plain, get_req("/fs/?sort=bogus"), Status(400)),
        raw("?order=sideways", Http, Plain, get_req("/fs/?sort=name&order=sideways"), Status(400)),
        raw("?%zz=%zz", Http, Plain, get_req("/fs/?%zz=%zz&&&=&"), OneOf(&[200, 400])),
        raw("a 50 KB query", Http, Plain, get_req(&long_query), OneOf(&[200, 400, 414])),
        raw("?redirN=-1", Http, Plain, get_req("/fs/real.txt?redirN=-1"), NoServerError),
        raw("?redirN=2^64", Http, Plain, get_req("/fs/real.txt?redirN=18446744073709551616"), NoServerError),
        raw("?format=%00", Http, Plain, get_req("/fs/?format=%00"), OneOf(&[200, 400])),
        custom("?format= with markup is not reflected", Http, Plain, OneOf(&[200, 400]), |w| {
            let bytes =
                exchange(w.plain.http, &get_req("/fs/?format=%3Cscript%3Ealert(1)%3C/script%3E&sort=%3Cscript%3E"));
            // The refusal names the bad value, as plain text that no browser sniffs into HTML.
            let r = parse_response(&bytes).unwrap();
            let ctype = r.header("content-type").unwrap_or_default();
            assert!(ctype.starts_with("text/plain") || !contains(&bytes, b"<script>"), "markup reflected as {ctype}");
            assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
            Outcome::http(bytes)
        }),
        custom("a javascript: name in a listing", Http, Plain, Status(200), |w| {
            let bytes = exchange(w.plain.http, &get_req("/fs/"));
            let r = parse_response(&bytes).unwrap();
            let page = r.text().to_ascii_lowercase();
            assert!(page.contains("alert(1)"), "the file is listed: {page}");
            assert!(!page.contains("href=\"javascript:") && !page.contains("href='javascript:"), "{page}");
            assert!(!page.contains("<img src=x"), "markup in a name is escaped: {page}");
            let csp = r.header("content-security-policy").unwrap_or_default();
            assert!(csp.starts_with("default-src 'none'") && !csp.contains("script"), "{csp}");
            Outcome::http(bytes)
        }),
        custom("a javascript: name is served sandboxed", Http, Plain, Status(200), |w| {
            let bytes = exchange(w.plain.http, &get_req("/fs/javascript:alert(1)"));
            let r = parse_response(&bytes).unwrap();
            assert_eq!(r.header("content-security-policy"), Some("sandbox"));
            Outcome::http(bytes)
        }),
        custom("names with control characters in the JSON listing", Http, Plain, Status(200), |w| {
            let bytes = exchange(w.plain.http, &get_req("/fs/?format=json"));
            let r = parse_response(&bytes).unwrap();
            let names: Vec<String> = r.json()["entries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["name"].as_str().unwrap().to_owned())
                .collect();
            assert!(names.iter().all(|n| !n.contains(|c: char| c.is_control())), "{names:?}");
            assert!(names.contains(&"real.txt".to_string()), "{names:?}");
            Outcome::http(bytes)
        }),
        custom("a newline in a name forges no line of /find/", Http, Plain, Status(200), |w| {
            let bytes = exchange(w.plain.http, &get_req("/find/"));
            let r = parse_response(&bytes).unwrap();
            let text = r.text();
            assert!(text.lines().all(|l| l != "/forged" && l != "/x" && !l.contains('\u{1b}')), "{text}");
            assert!(text.lines().any(|l| l == "/real.txt"), "{text}");
            Outcome::http(bytes)
        }),
    ];
    let finds: [(&str, String, Expect); 8] = [
        ("/find/ ?q=*a*a*a… (2,000 stars)", format!("/find/?q={}b", "*a".repeat(2000)), OneOf(&[200, 400])),
        ("/find/ ?q=**** (5,000 stars)", format!("/find/?q={}", "*".repeat(5000)), OneOf(&[200, 400])),
        ("/find/ ?q=a huge [ class", format!("/find/?q=%5B{}%5D", "a-z0-9".repeat(5000)), OneOf(&[200, 400, 414])),
        ("/find/ ?q=[[[[ unclosed", format!("/find/?q={}", "%5B".repeat(2000)), OneOf(&[200, 400])),
        ("/find/ ?q=[!] and [^]", "/find/?q=%5B!%5D%5B%5E%5D".into(), OneOf(&[200, 400])),
        ("/find/ ?type=zz", "/find/?type=zz".into(), Status(400)),
        ("/find/ ?q=%00", "/find/?q=%00".into(), OneOf(&[200, 400])),
        ("/find/ ?prefix=../..", "/find/?prefix=..%2F..%2F".into(), Status(200)),
    ];
    for (name, target, expect) in finds {
        cases.push(raw(name, Http, Plain, get_req(&target), expect));
    }
    cases
}

/// Makes closing `s` send a reset (SO_LINGER of 0), as a client that crashes does.
fn reset_on_close(s: &TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    let len = std::mem::size_of::<libc::linger>() as libc::socklen_t;
    let set = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const _ as *const libc::c_void,
            len,
        )
    };
    assert_eq!(set, 0, "SO_LINGER");
}

/// Reads the first `n` bytes of an answer, then drops the connection.
fn read_some(addr: SocketAddr, req: &[u8], n: usize) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(LIVENESS)).unwrap();
    s.write_all(req).unwrap();
    let mut out = vec![0; n];
    let mut got = 0;
    while got < n {
        match s.read(&mut out[got..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => got += k,
        }
    }
    out.truncate(got);
    out
}

fn archive_and_abuse_cases() -> Vec<Case> {
    vec![
        custom("a file swapped for a FIFO", Http, Plain, Checked, |w| {
            let path = w.plain_root.join("swap.txt");
            std::fs::remove_file(&path).unwrap();
            let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
            // Nobody ever writes to it: an open that blocked would hang this GET.
            let bytes = exchange(w.plain.http, &get_req("/fs/swap.txt"));
            let status = status_of(&bytes).expect("an answer, not a hang");
            assert!(status >= 400, "a FIFO is not served: {status}");
            Outcome::http(bytes)
        }),
        custom("a tar of the root, dropped after 4 KiB", Http, Plain, Checked, |w| {
            let bytes = read_some(w.plain.http, &get_req("/fs/?format=tar"), 4096);
            assert_eq!(status_of(&bytes), Some(200));
            Outcome::checked(bytes)
        }),
        custom("a zip of the root, dropped after 4 KiB", Http, Plain, Checked, |w| {
            let bytes = read_some(w.plain.http, &get_req("/fs/?format=zip"), 4096);
            assert_eq!(status_of(&bytes), Some(200));
            Outcome::checked(bytes)
        }),
        custom("a whole tar of the root", Http, Plain, Status(200), |w| {
            let bytes = exchange(w.plain.http, &get_req("/fs/?format=tar"));
            assert!(contains(&bytes, b"f0999.txt"), "every file is in it");
            assert!(!contains(&bytes, b"out-link") && !contains(&bytes, b"out-dir"), "no link is in it");
            Outcome::http(bytes)
        }),
        custom("ten zips of 1,000 files at once", Http, Plain, Checked, |w| {
            let addr = w.plain.http;
            let threads: Vec<_> = (0..10)
                .map(|_| std::thread::spawn(move || read_some(addr, &get_req("/fs/many/?format=zip"), 1 << 20)))
                .collect();
            let mut all = Vec::new();
            for t in threads {
                let bytes = t.join().unwrap();
                assert_eq!(status_of(&bytes), Some(200));
                all.extend(bytes);
            }
            Outcome::checked(all)
        }),
        raw("HEAD of a tar", Http, Plain, request("HEAD", "/fs/?format=tar", &[], None), Status(200)),
        raw("?format=tar&format=zip", Http, Plain, get_req("/fs/sub/?format=tar&format=zip"), Status(200)),
        custom("a slow head (slowloris) does not hold others up", Http, Plain, Checked, |w| {
            let mut slow = TcpStream::connect(w.plain.http).unwrap();
            let head = b"GET /fs/real.txt HTTP/1.1\r\nHost: x\r\nX-Slow: ";
            for b in head.iter() {
                let _ = slow.write_all(&[*b]);
                std::thread::sleep(Duration::from_millis(20));
            }
            let others = real_get(w.plain.http).unwrap();
            assert_eq!(status_of(&others), Some(200), "another client is served meanwhile");
            for _ in 0..50 {
                let _ = slow.write_all(b"y");
                std::thread::sleep(Duration::from_millis(20));
            }
            Outcome::checked(others)
        }),
        custom("a slow upload dropped half way leaves nothing", Http, Secret, Checked, |w| {
            let mut s = TcpStream::connect(w.secret.http).unwrap();
            let creds = basic(format!("{USER}:{PASSWORD}").as_bytes());
            let head = format!(
                "PUT /fs/slow.txt HTTP/1.1\r\nHost: x\r\nAuthorization: {creds}\r\nContent-Length: 100000\r\n\r\n"
            );
            s.write_all(head.as_bytes()).unwrap();
            for _ in 0..30 {
                let _ = s.write_all(&[b'x'; 10]);
                std::thread::sleep(Duration::from_millis(50));
            }
            drop(s);
            wait_until("no part file left", LIVENESS, || part_files(&w.secret_root).is_empty().then_some(()));
            assert!(!w.secret_root.join("slow.txt").exists(), "a cut upload made no file");
            Outcome::checked(Vec::new())
        }),
        custom("200 idle connections", Http, Plain, Checked, |w| {
            let idle: Vec<TcpStream> = (0..200).filter_map(|_| TcpStream::connect(w.plain.http).ok()).collect();
            assert_eq!(idle.len(), 200);
            let bytes = real_get(w.plain.http).unwrap();
            assert_eq!(status_of(&bytes), Some(200), "served beside 200 idle connections");
            Outcome::checked(bytes)
        }),
        custom("100 idle management connections", Mgmt, Plain, Checked, |w| {
            let idle: Vec<TcpStream> = (0..100).filter_map(|_| TcpStream::connect(w.plain.mgmt).ok()).collect();
            assert_eq!(idle.len(), 100);
            assert_eq!(status_of(&exchange(w.plain.mgmt, &get_req("/cluster/"))), Some(200));
            drop(idle);
            Outcome::checked(Vec::new())
        }),
        custom("1,000 pipelined requests", Http, Plain, Checked, |w| {
            let mut reqs = b"GET /fs/real.txt HTTP/1.1\r\nHost: x\r\n\r\n".repeat(999);
            reqs.extend_from_slice(&get_req("/fs/real.txt"));
            let bytes = exchange(w.plain.http, &reqs);
            let got = statuses(&bytes);
            assert_eq!(got.len(), 1000, "every pipelined request is answered, in turn");
            assert!(got.iter().all(|s| *s == 200));
            Outcome::checked(bytes)
        }),
        custom("garbage pipelined after a request", Http, Plain, Checked, |w| {
            let mut reqs = b"GET /fs/real.txt HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
            reqs.extend_from_slice(b"\x00\x01GARBAGE\r\n\r\n");
            let bytes = exchange(w.plain.http, &reqs);
            let got = statuses(&bytes);
            assert_eq!(got.first(), Some(&200), "{got:?}");
            assert!(got.len() == 1 || got[1] == 400, "{got:?}");
            Outcome::checked(bytes)
        }),
        custom("a request cut off and reset", Http, Plain, Checked, |w| {
            for _ in 0..20 {
                let s = TcpStream::connect(w.plain.http).unwrap();
                let _ = (&s).write_all(b"GET /fs/many/?format=tar HTTP/1.1\r\nHost: x\r\n\r\n");
                reset_on_close(&s);
                let mut b = [0u8; 16];
                let _ = (&s).read(&mut b);
                drop(s);
            }
            Outcome::checked(Vec::new())
        }),
        custom("half-closed after the request line", Http, Plain, Refused, |w| {
            let mut s = TcpStream::connect(w.plain.http).unwrap();
            s.set_read_timeout(Some(LIVENESS)).unwrap();
            s.write_all(b"GET /fs/real.txt HTTP/1.1\r\n").unwrap();
            s.shutdown(Shutdown::Write).unwrap();
            let mut out = Vec::new();
            let _ = s.read_to_end(&mut out);
            Outcome::http(out)
        }),
    ]
}

// ---- management ---------------------------------------------------------------------------------

fn update_body(sender: &str, epoch: u64, seq: u64, files: &[(&str, &str, bool)]) -> Vec<u8> {
    let files: Vec<Value> = files
        .iter()
        .map(|(path, owner, deletion)| {
            json!({"FullName": path, "Basename": path.rsplit('/').next().unwrap(), "Dir": false,
                   "LastModified": 1477174081, "LastInfoUpdated": 4102444800u64, "SizeInBytes": 6,
                   "FileMode": 420, "OwnerNode": owner, "Deletion": deletion})
        })
        .collect();
    serde_json::to_vec(&json!({"SenderNodeName": sender, "Full": false, "UpdateTime": 1795605982,
        "Epoch": epoch, "Seq": seq, "Files": files}))
    .unwrap()
}

fn post_update(on: On, body: Vec<u8>) -> impl Fn(&World) -> Vec<u8> {
    move |w| {
        exchange(w.addr(on, Mgmt), &request("POST", "/update/", &[("Content-Type", "application/json")], Some(&body)))
    }
}

fn post_form_raw(on: On, path: &'static str, body: Vec<u8>) -> impl Fn(&World) -> Vec<u8> {
    move |w| {
        let h = [("Content-Type", "application/x-www-form-urlencoded")];
        exchange(w.addr(on, Mgmt), &request("POST", path, &h, Some(&body)))
    }
}

/// A listener that counts connections and the most held open at once, holding each until the
/// listener is dropped (a peer that never answers).
struct Silent {
    addr: SocketAddr,
    total: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Silent {
    fn start() -> Silent {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (total, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (t, m, st) = (total.clone(), most.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut held: Vec<TcpStream> = Vec::new();
            while !st.load(Ordering::SeqCst) {
                if let Ok((c, _)) = listener.accept() {
                    t.fetch_add(1, Ordering::SeqCst);
                    held.push(c);
                }
                // Connections the node gave up on are not held any more.
                held.retain(|c| {
                    c.set_nonblocking(true).ok();
                    let mut b = [0u8; 4096];
                    !matches!((&*c).read(&mut b), Ok(0))
                });
                m.fetch_max(held.len(), Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        Silent { addr, total, most, stop }
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn mgmt_cases() -> Vec<Case> {
    let upd = |name: &str, on: On, body: Vec<u8>, expect: Expect| {
        let f = post_update(on, body);
        custom(name, Mgmt, on, expect, move |w| Outcome::http(f(w)))
    };
    let form = |name: &str, on: On, path: &'static str, body: &[u8], expect: Expect| {
        let f = post_form_raw(on, path, body.to_vec());
        custom(name, Mgmt, on, expect, move |w| Outcome::http(f(w)))
    };
    let deep = format!("{{\"SenderNodeName\":\"x\",\"Files\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
    let mut long_name = b"{\"SenderNodeName\":\"".to_vec();
    long_name.extend(std::iter::repeat_n(b'n', 1 << 20));
    long_name.extend_from_slice(b"\",\"Files\":[]}");
    let many_fields: String = (0..20_000).map(|i| format!("f{i}=v&")).collect();
    let mut cases = vec![
        raw("GET /update/", Mgmt, Plain, get_req("/update/"), Status(405)),
        upd("deeply nested JSON", Plain, deep.into_bytes(), Status(400)),
        upd(
            "a number of 10^999999",
            Plain,
            b"{\"SenderNodeName\":\"peer\",\"UpdateTime\":1e999999,\"Files\":[]}".to_vec(),
            Status(400),
        ),
        upd(
            "an UpdateTime over 64 bits",
            Plain,
            b"{\"SenderNodeName\":\"peer\",\"UpdateTime\":99999999999999999999999,\"Files\":[]}".to_vec(),
            Status(400),
        ),
        upd("a negative Seq", Plain, b"{\"SenderNodeName\":\"peer\",\"Seq\":-1,\"Files\":[]}".to_vec(), Status(400)),
        upd(
            "invalid UTF-8 in a name",
            Plain,
            b"{\"SenderNodeName\":\"peer\",\"Files\":[{\"FullName\":\"\xff\xfe\"}]}".to_vec(),
            Status(400),
        ),
        upd(
            "a lone surrogate escape",
            Plain,
            b"{\"SenderNodeName\":\"peer\",\"Files\":[{\"FullName\":\"\\ud800\"}]}".to_vec(),
            OneOf(&[200, 400]),
        ),
        upd("a 1 MiB sender name", Plain, long_name, OneOf(&[200, 400])),
        upd(
            "duplicate keys",
            Plain,
            b"{\"SenderNodeName\":\"peer\",\"SenderNodeName\":\"x\",\"Files\":[]}".to_vec(),
            OneOf(&[200, 400]),
        ),
        upd(
            "Files of the wrong type",
            Plain,
            b"{\"SenderNodeName\":\"peer\",\"Files\":{\"a\":1}}".to_vec(),
            Status(400),
        ),
        form(
            // Form decoding replaces invalid UTF-8 with U+FFFD, as the original's Go does: a
            // strange name, not a hazard.
            "a greeting with invalid UTF-8",
            Plain,
            "/cluster/",
            b"name=%ff%fe&public-addr=127.0.0.1:1&mgmt-addr=127.0.0.1:1",
            OneOf(&[200, 400]),
        ),
        form(
            "a greeting with a newline in the name",
            Plain,
            "/cluster/",
            b"name=a%0Ab&public-addr=127.0.0.1:1&mgmt-addr=127.0.0.1:1",
            Status(400),
        ),
        form("a greeting with 20,000 fields", Plain, "/cluster/", many_fields.as_bytes(), OneOf(&[400, 413])),
        form(
            "a greeting with port 99999",
            Plain,
            "/cluster/",
            b"name=x&public-addr=127.0.0.1:99999&mgmt-addr=127.0.0.1:1",
            Status(400),
        ),
        form("a join with port 99999", Plain, "/join/", b"peer=%5B%3A%3A1%5D%3A99999", Status(400)),
        form("a join with nothing", Plain, "/join/", b"peer=", Status(400)),
        form(
            "a join with a 60 KB host",
            Plain,
            "/join/",
            format!("peer={}:1", "h".repeat(60_000)).as_bytes(),
            Class(4),
        ),
        form("a join with a NUL", Plain, "/join/", b"peer=127.0.0.1%00:1", Status(400)),
    ];
    cases.extend([
        // From a stranger, the body ends at its first record (403, the rest unread); in a
        // peer's name, it is parsed as it comes and cut at --max-update-bytes (413). Either
        // way the node's peak memory stays within a few times that limit.
        custom("a 96 MiB update of unknown length from a stranger", Mgmt, Plain, Status(403), |w| {
            huge_update(w, "stranger")
        }),
        custom("a 96 MiB update of unknown length in a peer's name", Mgmt, Plain, Status(413), |w| {
            huge_update(w, "peer")
        }),
        raw(
            "an update declaring 1 GiB",
            Mgmt,
            Plain,
            b"POST /update/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1073741824\r\n\r\n{"
                .to_vec(),
            Status(413),
        ),
        custom("an update in the peer's name taking over a file", Mgmt, Plain, Checked, |w| {
            let out = post_update(Plain, update_body("peer", 1, 1, &[("real.txt", "peer", false)]))(w);
            assert!(status_of(&out).is_some_and(|s| s < 500));
            assert_eq!(w.plain.owner_in_listing("", "real.txt").as_deref(), Some("plain"));
            Outcome::checked(out)
        }),
        custom("an update in the peer's name injecting a file of ours", Mgmt, Plain, Checked, |w| {
            let out = post_update(Plain, update_body("peer", 1, 2, &[("injected.txt", "plain", false)]))(w);
            assert!(status_of(&out).is_some_and(|s| s < 500));
            assert!(!w.plain.find().contains("/injected.txt"), "{}", w.plain.find());
            Outcome::checked(out)
        }),
        custom("an update in the peer's name deleting our files", Mgmt, Plain, Checked, |w| {
            let out = post_update(Plain, update_body("peer", 1, 3, &[("real.txt", "plain", true), ("sub", "plain", true)]))(w);
            assert!(status_of(&out).is_some_and(|s| s < 500));
            assert!(w.plain.find().contains("/sub/x.txt\n"), "{}", w.plain.find());
            Outcome::checked(out)
        }),
        custom("an update with names holding newlines", Mgmt, Plain, Checked, |w| {
            let out = post_update(
                Plain,
                update_body("peer", 1, 4, &[("a\n/etc/passwd", "peer", false), ("e\u{1b}[2J", "peer", false)]),
            )(w);
            assert!(status_of(&out).is_some_and(|s| s < 500));
            let find = w.plain.find();
            assert!(!find.lines().any(|l| l == "/etc/passwd") && !find.contains('\u{1b}'), "{find}");
            Outcome::checked(out)
        }),
        custom("an update at Epoch and Seq u64::MAX", Mgmt, Plain, Checked, |w| {
            let out = post_update(Plain, update_body("peer", u64::MAX, u64::MAX, &[("real.txt", "plain", true)]))(w);
            assert!(status_of(&out).is_some_and(|s| s < 500));
            let again = post_update(Plain, update_body("peer", u64::MAX, 0, &[("x.txt", "peer", false)]))(w);
            assert!(status_of(&again).is_some_and(|s| s < 500));
            assert!(w.plain.find().contains("/real.txt\n"));
            Outcome::checked([out, again].concat())
        }),
        custom("an update of 20,000 files in the peer's name", Mgmt, Plain, NoServerError, |w| {
            let names: Vec<String> = (0..20_000).map(|i| format!("flood/{i}")).collect();
            let files: Vec<(&str, &str, bool)> = names.iter().map(|n| (n.as_str(), "plain", false)).collect();
            Outcome::http(post_update(Plain, update_body("peer", 1, 5, &files))(w))
        }),
        custom("a greeting in the peer's name from another address", Mgmt, Plain, Status(200), |w| {
            let evil = Silent::start();
            let body = format!("name=peer&public-addr={0}&mgmt-addr={0}", evil.addr).into_bytes();
            let out = post_form_raw(Plain, "/cluster/", body)(w);
            // Its files still come from the peer, at its own address.
            let r = get(&w.plain.url("/fs/peer.txt"));
            assert_eq!((r.status, r.body.as_slice()), (200, &b"the peer's file\n"[..]));
            let table = get(&w.plain.mgmt_url("/cluster/")).json();
            assert_eq!(table["Peers"]["peer"]["PublicAddr"], w.peer.http.to_string());
            assert_eq!(evil.total.load(Ordering::SeqCst), 0, "the node asked the claimed address");
            Outcome::http(out)
        }),
        custom("30 joins of one silent address hold one connection", Mgmt, Plain, Checked, |w| {
            let evil = Silent::start();
            let body = format!("peer={}", evil.addr).into_bytes();
            let mut all = Vec::new();
            for _ in 0..30 {
                let out = post_form_raw(Plain, "/join/", body.clone())(w);
                assert_eq!(status_of(&out), Some(200));
                all.extend(out);
            }
            wait_until("the node to greet the address", LIVENESS, || (evil.total.load(Ordering::SeqCst) > 0).then_some(()));
            std::thread::sleep(Duration::from_secs(1));
            let most = evil.most.load(Ordering::SeqCst);
            assert!(most <= 1, "{most} connections to one address at once");
            Outcome::checked(all)
        }),
    ]);
    cases.extend(secret_cases());
    cases
}

fn secret_cases() -> Vec<Case> {
    let json_update = || update_body("b", 1, u64::MAX, &[("evil.txt", "b", false)]);
    let unsigned =
        |name: &str, method: &'static str, path: &'static str, body: Vec<u8>, headers: Vec<(&'static str, String)>| {
            custom(name, Mgmt, Secret, Status(401), move |w| {
                let ctype = if path == "/update/" { "application/json" } else { "application/x-www-form-urlencoded" };
                let mut h: Vec<(&str, &str)> = vec![("Content-Type", ctype)];
                h.extend(headers.iter().map(|(k, v)| (*k, v.as_str())));
                Outcome::http(exchange(w.secret.mgmt, &request(method, path, &h, Some(&body))))
            })
        };
    let s = |v: &str| v.to_string();
    let mut cases = vec![
        unsigned("an unsigned update", "POST", "/update/", json_update(), vec![]),
        unsigned("a garbled tag", "POST", "/update/", json_update(), vec![(HEADER, s("v1.1.2.3"))]),
        unsigned("an empty tag", "POST", "/update/", json_update(), vec![(HEADER, s(""))]),
        unsigned("a tag of 60 KB", "POST", "/update/", json_update(), vec![(HEADER, "v1.".repeat(20_000))]),
        unsigned(
            "a tag with a time over 64 bits",
            "POST",
            "/update/",
            json_update(),
            vec![(HEADER, s("v1.99999999999999999999999.00.00"))],
        ),
        unsigned(
            "a greeting with an invented name",
            "POST",
            "/cluster/",
            b"name=mallory&public-addr=127.0.0.1:9&mgmt-addr=127.0.0.1:9".to_vec(),
            vec![],
        ),
        unsigned(
            "a greeting in a peer's name",
            "POST",
            "/cluster/",
            b"name=b&public-addr=127.0.0.1:9&mgmt-addr=127.0.0.1:9".to_vec(),
            vec![],
        ),
        unsigned("an unsigned join", "POST", "/join/", b"peer=127.0.0.1:9".to_vec(), vec![]),
        unsigned("an unsigned read of the table", "GET", "/cluster/", Vec::new(), vec![]),
    ];
    let signed = |name: &str, expect: Expect, f: fn(&World) -> Vec<u8>| {
        custom(name, Mgmt, Secret, expect, move |w| Outcome::http(f(w)))
    };
    cases.extend([
        signed("a tag of the wrong key", Status(401), |w| {
            w.signed(
                Secret,
                &w.wrong_keys,
                "POST",
                "/update/",
                &update_body("b", 1, u64::MAX, &[("evil.txt", "b", false)]),
                now(),
            )
        }),
        signed("a tag ten minutes old", Status(401), |w| {
            w.signed(
                Secret,
                &w.keys,
                "POST",
                "/update/",
                b"{\"SenderNodeName\":\"b\",\"Files\":[]}",
                Time(now().0 - 600_000),
            )
        }),
        signed("a tag ten minutes ahead", Status(401), |w| {
            w.signed(
                Secret,
                &w.keys,
                "POST",
                "/update/",
                b"{\"SenderNodeName\":\"b\",\"Files\":[]}",
                Time(now().0 + 600_000),
            )
        }),
        signed("a tag of time 0", Status(401), |w| w.signed(Secret, &w.keys, "GET", "/cluster/", b"", Time(0))),
        signed("a tag of another path", Status(401), |w| {
            let stamp = w.keys.sign_request("GET", "/metrics", now(), nonce(), BodyDigest::of(b""));
            exchange(w.secret.mgmt, &request("GET", "/cluster/", &[(HEADER, &stamp)], None))
        }),
        signed("a tag over another body", Status(401), |w| {
            let stamp = w.keys.sign_request("POST", "/join/", now(), nonce(), BodyDigest::of(b"peer=127.0.0.1:1"));
            let h = [("Content-Type", "application/x-www-form-urlencoded"), (HEADER, stamp.as_str())];
            exchange(w.secret.mgmt, &request("POST", "/join/", &h, Some(b"peer=127.0.0.1:9")))
        }),
        signed("a replayed nonce", Status(401), |w| {
            let stamp = w.keys.sign_request("GET", "/cluster/", now(), nonce(), BodyDigest::of(b""));
            let req = request("GET", "/cluster/", &[(HEADER, &stamp)], Some(b""));
            let first = exchange(w.secret.mgmt, &req);
            assert_eq!(status_of(&first), Some(200), "the first use is taken");
            exchange(w.secret.mgmt, &req)
        }),
        signed("signed deeply nested JSON", Status(400), |w| {
            let deep = format!("{{\"SenderNodeName\":\"b\",\"Files\":{}{}}}", "[".repeat(10_000), "]".repeat(10_000));
            w.signed(Secret, &w.keys, "POST", "/update/", deep.as_bytes(), now())
        }),
        signed("a signed update from a stranger changes nothing", NoServerError, |w| {
            let out = w.signed(
                Secret,
                &w.keys,
                "POST",
                "/update/",
                &update_body("stranger", 1, 1, &[("real.txt", "secret", true)]),
                now(),
            );
            assert!(w.secret.find().contains("/real.txt\n"));
            out
        }),
    ]);
    cases
}

// ---- FTP ----------------------------------------------------------------------------------------

/// `EPSV`, `RETR path` over it: the reply code and the bytes of the data connection.
fn ftp_retr(node: &Node, path: &str) -> Outcome {
    let mut c = Control::login(node);
    let data = c.passive();
    data.set_read_timeout(Some(LIVENESS)).unwrap();
    let r = c.cmd(&format!("RETR {path}"));
    let mut bytes = Vec::new();
    let mut text = r.text().into_bytes();
    if r.code == 150 {
        let _ = (&data).read_to_end(&mut bytes);
        text.extend(c.reply().text().into_bytes());
    }
    drop(data);
    bytes.extend(text);
    Outcome::ftp(r.code, bytes)
}

/// One command after login (and, for a listing, its data).
fn ftp_cmd(node: &Node, line: &str) -> Outcome {
    let mut c = Control::login(node);
    let listing = line.starts_with("LIST") || line.starts_with("NLST") || line.starts_with("MLSD");
    let data = listing.then(|| c.passive());
    let r = c.cmd(line);
    let mut bytes = r.text().into_bytes();
    if let Some(data) = data {
        if r.code == 150 {
            bytes.extend(dftp_e2e::ftp::read_all(data));
            bytes.extend(c.reply().text().into_bytes());
        }
    }
    // No QUIT: libunftp ends a session after a command it cannot parse (its 501 is the answer).
    Outcome::ftp(r.code, bytes)
}

/// Raw bytes on a fresh control connection: every reply until the node closes it or is silent.
fn ftp_raw(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// The code of the last reply in a stream of FTP replies.
fn last_code(bytes: &[u8]) -> u32 {
    let text = String::from_utf8_lossy(bytes);
    text.lines()
        .rev()
        .find_map(|l| l.get(..3).and_then(|c| c.parse().ok()).filter(|_| l.as_bytes().get(3) == Some(&b' ')))
        .unwrap_or(0)
}

fn ftp_cases() -> Vec<Case> {
    let retr = |path: &'static str| {
        custom(&format!("FTP RETR {path}"), FtpI, Plain, Ftp(550), move |w| ftp_retr(&w.plain, path))
    };
    let cmd = |line: &'static str, expect: Expect| {
        custom(&format!("FTP {}", line.replace('\0', "\\0")), FtpI, Plain, expect, move |w| ftp_cmd(&w.plain, line))
    };
    let mut cases = vec![
        retr("/../canary.txt"),
        retr("../canary.txt"),
        retr("/../../../../etc/passwd"),
        retr("/etc/passwd"),
        retr("out-link"),
        retr("abs-link"),
        retr("out-dir/canary.txt"),
        retr("..\\canary.txt"),
        retr("%2e%2e/canary.txt"),
        retr("swap.txt"),
        cmd("SIZE ../canary.txt", Ftp(550)),
        cmd("MDTM /../canary.txt", Ftp(550)),
        cmd("CWD /etc", Ftp(550)),
        cmd("CWD out-dir", Ftp(550)),
        cmd("STOR new.txt", FtpClass(5)),
        cmd("DELE real.txt", FtpClass(5)),
        cmd("MKD ../evil", FtpClass(5)),
        cmd("RNFR real.txt", FtpClass(5)),
        cmd("SITE EXEC /bin/sh", FtpClass(5)),
        cmd("REST 99999999999999999999999", Ftp(501)),
        cmd("PORT 127,0,0,1,0,22", FtpClass(5)),
        cmd("EPRT |1|10.255.255.1|22|", FtpClass(5)),
        cmd("RETR a\0b", FtpClass(5)),
        custom("FTP LIST .. shows nothing outside", FtpI, Plain, Checked, |w| {
            let out = ftp_cmd(&w.plain, "LIST ..");
            assert!(
                !contains(&out.bytes, b"canary") && !contains(&out.bytes, b"plain root"),
                "{}",
                String::from_utf8_lossy(&out.bytes)
            );
            out
        }),
        custom("FTP NLST out-dir shows nothing outside", FtpI, Plain, Checked, |w| {
            let out = ftp_cmd(&w.plain, "NLST out-dir");
            assert!(!contains(&out.bytes, b"canary"), "{}", String::from_utf8_lossy(&out.bytes));
            out
        }),
        custom("FTP CWD .. at the root stays inside", FtpI, Plain, Checked, |w| {
            let mut c = Control::login(&w.plain);
            let _ = c.cmd("CWD ../../..");
            let pwd = c.cmd("PWD");
            assert!(pwd.text().contains("\"/\""), "{pwd:?}");
            let size = c.cmd("SIZE canary.txt");
            assert_eq!(size.code, 550, "{size:?}");
            Outcome::ftp(size.code, [pwd.text(), size.text()].concat().into_bytes())
        }),
        custom("FTP REST at 2^64-1 then RETR", FtpI, Plain, Checked, |w| {
            let mut c = Control::login(&w.plain);
            let rest = c.cmd("REST 18446744073709551615");
            let data = c.passive();
            let r = c.cmd("RETR real.txt");
            let mut bytes = Vec::new();
            if r.code == 150 {
                bytes = dftp_e2e::ftp::read_all(data);
                let end = c.reply();
                assert!(end.code == 226 || end.code / 100 == 4 || end.code / 100 == 5, "{end:?}");
            }
            assert!(bytes.is_empty() || rest.code / 100 != 3, "{} bytes after REST at the end", bytes.len());
            bytes.extend(r.text().into_bytes());
            Outcome::checked(bytes)
        }),
        custom("FTP RETR before login", FtpI, Plain, Ftp(530), |w| {
            let bytes = ftp_raw(ftp_addr(&w.plain), b"RETR real.txt\r\nQUIT\r\n");
            let code =
                String::from_utf8_lossy(&bytes).lines().nth(1).and_then(|l| l.get(..3)?.parse().ok()).unwrap_or(0);
            Outcome::ftp(code, bytes)
        }),
        custom("FTP a 4,000-byte user name", FtpI, Plain, Checked, |w| {
            let line = format!("USER {}\r\nQUIT\r\n", "u".repeat(4000));
            let bytes = ftp_raw(ftp_addr(&w.plain), line.as_bytes());
            assert!(String::from_utf8_lossy(&bytes)
                .lines()
                .nth(1)
                .is_some_and(|l| l.starts_with('3') || l.starts_with('5')));
            Outcome::checked(bytes)
        }),
        custom("FTP a wrong password on the node with accounts", FtpI, Secret, Ftp(530), |w| {
            let line = format!("USER {USER}\r\nPASS {}\r\n", "x".repeat(7000));
            let bytes = ftp_raw(ftp_addr(&w.secret), line.as_bytes());
            Outcome::ftp(last_code(&bytes), bytes)
        }),
        custom("FTP a non-UTF-8 command", FtpI, Plain, Checked, |w| {
            let bytes = ftp_raw(ftp_addr(&w.plain), b"USER anonymous\r\nPASS x\r\nRETR \xff\xfe\r\nQUIT\r\n");
            Outcome::checked(bytes)
        }),
        custom("FTP Telnet IAC bytes", FtpI, Plain, Checked, |w| {
            let bytes = ftp_raw(ftp_addr(&w.plain), b"\xff\xf4\xff\xfd\x06NOOP\r\nQUIT\r\n");
            Outcome::checked(bytes)
        }),
        custom("FTP 1,000 pipelined NOOPs", FtpI, Plain, Checked, |w| {
            let mut c = Control::login(&w.plain);
            let many = "NOOP\r\n".repeat(1000);
            c.send(many.trim_end_matches("\r\n"));
            for i in 0..1000 {
                let r = c.reply();
                assert_eq!(r.code, 200, "NOOP {i}: {r:?}");
            }
            Outcome::checked(Vec::new())
        }),
        custom("FTP sessions beyond the limit get 421", FtpI, Plain, Checked, |w| {
            // Sessions of the cases before are given back a moment after their QUIT.
            let open = wait_until("four sessions at once", LIVENESS, || {
                catch_unwind(AssertUnwindSafe(|| (0..4).map(|_| Control::login(&w.plain)).collect::<Vec<Control>>()))
                    .ok()
            });
            let extra = ftp_raw(ftp_addr(&w.plain), b"");
            assert!(extra.starts_with(b"421 "), "{}", String::from_utf8_lossy(&extra));
            for mut c in open {
                assert_eq!(c.cmd("QUIT").code, 221);
            }
            Outcome::checked(extra)
        }),
        custom("FTP 20 EPSVs hold one passive port", FtpI, Plain, Checked, |w| {
            let mut c = Control::login(&w.plain);
            let ip = ftp_addr(&w.plain).ip();
            let ports: Vec<u16> = (0..20)
                .map(|_| {
                    let r = c.cmd("EPSV");
                    r.text()
                        .split("(|||")
                        .nth(1)
                        .and_then(|x| x.split('|').next())
                        .and_then(|p| p.parse().ok())
                        .unwrap()
                })
                .collect();
            wait_until("every passive port but the last closed", LIVENESS, || {
                let open = ports
                    .iter()
                    .filter(|p| TcpStream::connect_timeout(&SocketAddr::new(ip, **p), Duration::from_secs(2)).is_ok())
                    .count();
                (open <= 1).then_some(())
            });
            Outcome::checked(Vec::new())
        }),
        custom("FTP a data connection from another address", FtpI, Plain, Checked, |w| {
            let mut c = Control::login(&w.plain);
            let r = c.cmd("EPSV");
            let port: u16 =
                r.text().split("(|||").nth(1).and_then(|x| x.split('|').next()).and_then(|p| p.parse().ok()).unwrap();
            let mut stolen = Vec::new();
            let mut thief = connect_from([127, 0, 0, 2], SocketAddr::new(ftp_addr(&w.plain).ip(), port))
                .expect("connect from 127.0.0.2");
            thief.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            c.send("RETR real.txt");
            let _ = thief.read_to_end(&mut stolen);
            assert!(stolen.is_empty(), "the other address got {} bytes", stolen.len());
            // The client, from the control connection's address, still gets the file.
            let data = TcpStream::connect(SocketAddr::new(ftp_addr(&w.plain).ip(), port)).unwrap();
            assert_eq!(c.reply().code, 150);
            assert_eq!(dftp_e2e::ftp::read_all(data), w.real);
            assert_eq!(c.reply().code, 226);
            Outcome::checked(stolen)
        }),
        custom("FTP a 16 MiB line without a newline", FtpI, Plain, Checked, |w| {
            let mut raw = TcpStream::connect(ftp_addr(&w.plain)).unwrap();
            raw.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
            let chunk = vec![b'A'; 1 << 20];
            let mut sent = 0;
            for _ in 0..16 {
                match raw.write_all(&chunk) {
                    Ok(()) => sent += chunk.len(),
                    Err(_) => break,
                }
            }
            assert!(sent < 16 << 20, "the node read 16 MiB of one line");
            raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut said = Vec::new();
            let _ = raw.read_to_end(&mut said);
            assert!(contains(&said, b"500 "), "{}", String::from_utf8_lossy(&said));
            Outcome::checked(said)
        }),
        custom("FTP a 10 KB line", FtpI, Plain, Checked, |w| {
            let line = format!("CWD {}\r\n", "x".repeat(10_000));
            let said = ftp_raw(ftp_addr(&w.plain), line.as_bytes());
            assert!(contains(&said, b"500 "), "{}", String::from_utf8_lossy(&said));
            Outcome::checked(said)
        }),
    ];
    cases.push(custom("FTP absolute path into a link", FtpI, Secret, Ftp(550), |w| {
        ftp_retr(&w.secret, "/out-dir/canary.txt")
    }));
    cases
}

// ---- the run ------------------------------------------------------------------------------------

fn all_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    cases.extend(traversal_cases());
    cases.extend(request_line_cases());
    cases.extend(framing_cases());
    cases.extend(header_cases());
    cases.extend(write_cases());
    cases.extend(listing_cases());
    cases.extend(archive_and_abuse_cases());
    cases.extend(mgmt_cases());
    cases.extend(ftp_cases());
    cases
}

/// Runs `cases` against `w`, each followed by the common checks; returns the failures.
fn run_cases(w: &World, cases: &[Case]) -> Vec<String> {
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let fds_before: Vec<usize> = w.nodes().iter().map(|n| fd_count(n.pid())).collect();
        eprintln!("case {i}: {} ({:?} of {:?})", case.name, case.iface, case.on);
        let result = catch_unwind(AssertUnwindSafe(|| (case.run)(w)))
            .map_err(|p| {
                p.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default()
            })
            .and_then(|out| check_after(w, case, &out, &fds_before));
        if let Err(e) = result {
            eprintln!("FAILED case {i}: {}: {e}", case.name);
            failures.push(format!("{}: {e}", case.name));
            // A dead node fails every case after it: stop there.
            if w.nodes().iter().any(|n| !alive(n.pid())) {
                break;
            }
        }
    }
    failures
}

#[test]
fn hostile_input_leaves_every_node_up_contained_and_answering() {
    // HOSTILE_CASES=text runs only the cases whose name holds it (while working on one).
    let only = std::env::var("HOSTILE_CASES").unwrap_or_default();
    let cases: Vec<Case> = all_cases().into_iter().filter(|c| c.name.contains(&only)).collect();
    let count = |i: Iface| cases.iter().filter(|c| c.iface == i).count();
    eprintln!("{} cases: {} HTTP, {} management, {} FTP", cases.len(), count(Http), count(Mgmt), count(FtpI));
    assert!(!only.is_empty() || cases.len() >= 100);
    let w = World::start();
    let failures = run_cases(&w, &cases);
    if !failures.is_empty() {
        for n in w.nodes() {
            eprintln!("----- log of {} -----\n{}", n.name, n.log());
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

// ---- multicast ----------------------------------------------------------------------------------

const GROUP: &str = "239.255.77.3:17043";

fn ip(args: &[&str]) -> Result<(), String> {
    let out = std::process::Command::new("ip").args(args).output().map_err(|e| format!("ip {args:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("ip {args:?}: {}", String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// Spoofed and malformed announcements, inside a network namespace this test makes (so no
/// packet leaves it); skipped with the reason where that cannot be done (as multicast.rs is).
#[test]
fn hostile_announcements_in_a_private_network() {
    if unsafe { libc::geteuid() } != 0 {
        return eprintln!("SKIPPED hostile multicast cases: not running as root (a network namespace needs it)");
    }
    if std::process::Command::new("ip").arg("-V").output().is_err() {
        return eprintln!("SKIPPED hostile multicast cases: the `ip` command (iproute2) is missing");
    }
    let _ = dftp_bin();
    let result = std::thread::spawn(|| -> Result<(), String> {
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            return Err(format!("skip: unshare(CLONE_NEWNET): {}", std::io::Error::last_os_error()));
        }
        ip(&["link", "set", "lo", "up"])?;
        ip(&["link", "set", "lo", "multicast", "on"])?;
        ip(&["route", "add", "224.0.0.0/4", "dev", "lo"])?;
        multicast_cases();
        Ok(())
    })
    .join();
    match result {
        Ok(Ok(())) => {}
        Ok(Err(e)) if e.starts_with("skip: ") => eprintln!("SKIPPED hostile multicast cases: {}", &e[6..]),
        Ok(Err(e)) => panic!("{e}"),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

fn multicast_cases() {
    let base = tempfile::Builder::new().prefix("dftp e2e hostile ü#?&").tempdir().unwrap();
    let real = b"real over multicast\n".to_vec();
    let roots: Vec<PathBuf> = ["plain", "secret"].iter().map(|n| base.path().join(n)).collect();
    for r in &roots {
        std::fs::create_dir(r).unwrap();
        write_file(r, "real.txt", &real);
    }
    let key_file = base.path().join("key");
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let discovering = |name: &str, root: &Path, cluster: &str| {
        let mut o = NodeOpts::new(name, root)
            .arg("--multicast-interface")
            .arg("127.0.0.1")
            .arg("--announce-interval")
            .arg("200ms")
            .arg("--cluster-name")
            .arg(cluster);
        o.multicast = GROUP.into();
        o
    };
    let plain = Node::start(discovering("plain", &roots[0], "open"));
    let secret = Node::start(
        discovering("secret", &roots[1], "closed").arg("--cluster-secret-file").arg(key_file.to_str().unwrap()),
    );
    let evil = Silent::start();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let from = format!("from {}", sock.local_addr().unwrap());
    let ping = |cluster: &str, name: &str, mgmt: &str| {
        format!(r#"{{"Type":"ping","ClusterName":"{cluster}","NodeName":"{name}","MgmtAddr":"{mgmt}"}}"#).into_bytes()
    };
    let mut nested = b"{\"Type\":".to_vec();
    nested.extend(std::iter::repeat_n(b'[', 60_000));
    let packets: Vec<(&str, Vec<u8>)> = vec![
        ("not JSON", b"not json".to_vec()),
        ("an empty packet", Vec::new()),
        ("60,000 bytes of x", vec![b'x'; 60_000]),
        ("invalid UTF-8", b"{\"Type\":\"ping\",\"ClusterName\":\"open\",\"NodeName\":\"\xff\xfe\"}".to_vec()),
        ("deeply nested JSON", nested),
        ("a control character in the name", ping("open", "a\nb", "127.0.0.1:9")),
        ("an address without a port", ping("open", "x", "nocolon")),
        ("port 99999", ping("open", "x", "127.0.0.1:99999")),
        ("a 10,000-byte name", ping("open", &"n".repeat(10_000), "127.0.0.1:9")),
        ("our own name", ping("open", "plain", &evil.addr.to_string())),
    ];
    let secret_keys = Keys::new(KEY.as_bytes(), None).unwrap();
    let check = |what: &str| {
        for n in [&plain, &secret] {
            assert!(alive(n.pid()), "{what}: {} died:\n{}", n.name, n.log());
            let r = parse_response(&real_get(n.http).unwrap()).unwrap();
            assert_eq!((r.status, &r.body), (200, &real), "{what}: {}", n.name);
        }
    };
    for (what, packet) in &packets {
        for _ in 0..3 {
            sock.send_to(packet, GROUP).unwrap();
        }
        check(what);
    }
    // A spoofed announcement to the node with a secret: dropped, nobody is asked anything.
    let forged = ping("closed", "mallory", &evil.addr.to_string());
    wait_until("the node with a secret to drop the forged announcement", WAIT, || {
        sock.send_to(&forged, GROUP).unwrap();
        secret.log().lines().any(|l| l.contains("dropped a discovery packet") && l.contains(&from)).then_some(())
    });
    check("a forged announcement");
    let stamp = secret_keys.sign_request("GET", "/cluster/", now(), nonce(), BodyDigest::of(b""));
    let table = send(secret.mgmt, "GET", "/cluster/", &[(HEADER, &stamp)], Some(b"")).json();
    assert!(table["Peers"].as_object().is_none_or(|p| p.is_empty()), "{table}");
    assert_eq!(evil.total.load(Ordering::SeqCst), 0, "the node with a secret greeted a forged address");
    // Fifty announcements of one silent address to the node without a secret: discovery greets
    // it, one greeting at a time, not fifty.
    let spoofed = ping("open", "mallory", &evil.addr.to_string());
    for _ in 0..50 {
        sock.send_to(&spoofed, GROUP).unwrap();
    }
    wait_until("the node without a secret to greet the announced address", WAIT, || {
        (evil.total.load(Ordering::SeqCst) > 0).then_some(())
    });
    std::thread::sleep(Duration::from_secs(1));
    assert!(evil.most.load(Ordering::SeqCst) <= 1, "{} connections at once", evil.most.load(Ordering::SeqCst));
    check("fifty spoofed announcements");
    for n in [&plain, &secret] {
        let log = n.log();
        assert!(!log.contains("panicked"), "{}:\n{log}", n.name);
    }
}
