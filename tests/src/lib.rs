//! Shared harness for the end-to-end tests in tests/tests/: builds the `dftp` binary once, starts
//! real nodes on 127.0.0.1 with free ports (multicast off unless a test asks for it), talks HTTP
//! to them, and lays out node roots with awkward names in temporary directories.
//!
//! Everything waits by polling with a generous deadline ([`WAIT`]) rather than sleeping for a
//! fixed time, so the tests hold on a loaded two-core machine; nothing asserts on timing.

use std::collections::BTreeSet;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub use serde_json::Value;

pub mod ftp;
pub mod signing;
pub mod tls;

/// How long anything may take to happen before a test gives up.
pub const WAIT: Duration = Duration::from_secs(20);

// ---- the binary ---------------------------------------------------------------------------------

/// The `dftp` executable, built once per test binary with the same profile as the tests.
///
/// Cargo only tells the `dftp` package's own tests where its binary is, so we run
/// `cargo build --workspace --bin dftp` and read the path from cargo's JSON messages (which
/// also honours `CARGO_TARGET_DIR` or any configured target directory). `DFTP_BIN` overrides it.
pub fn dftp_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("DFTP_BIN") {
            return PathBuf::from(p);
        }
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ is inside the workspace");
        let mut cmd = Command::new(cargo);
        // `--workspace` resolves features as `cargo test --workspace` does, so the binary reuses
        // the dependencies that command has just built (`-p dftp` alone would build ~20 of them
        // again with other features).
        cmd.current_dir(workspace).args([
            "build",
            "--workspace",
            "--bin",
            "dftp",
            "--message-format=json-render-diagnostics",
        ]);
        if !cfg!(debug_assertions) {
            cmd.arg("--release");
        }
        let out = cmd.stderr(Stdio::inherit()).output().expect("cargo runs");
        assert!(out.status.success(), "cargo build --workspace --bin dftp failed");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let exe = stdout
            .lines()
            .rev()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "dftp")
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .expect("cargo reported the dftp executable");
        assert!(exe.exists(), "{} does not exist", exe.display());
        exe
    })
}

// ---- HTTP ---------------------------------------------------------------------------------------

/// A whole HTTP response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    /// Header names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}), status {}: {}", self.status, self.text()))
    }
}

fn agent() -> &'static ureq::Agent {
    static AGENT: OnceLock<ureq::Agent> = OnceLock::new();
    AGENT.get_or_init(|| {
        ureq::Agent::config_builder()
            // 4xx and 5xx are answers to assert on, not errors.
            .http_status_as_error(false)
            // Redirects are asserted on, never followed.
            .max_redirects(0)
            .timeout_global(Some(Duration::from_secs(120)))
            .timeout_connect(Some(Duration::from_secs(5)))
            .build()
            .into()
    })
}

/// One request; the whole body is read (any size).
pub fn try_http(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Result<Resp, String> {
    let mut req = ureq::http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let result = match body {
        Some(b) => agent().run(req.body(b.to_vec()).map_err(|e| e.to_string())?),
        None => agent().run(req.body(()).map_err(|e| e.to_string())?),
    };
    let mut resp = result.map_err(|e| format!("{method} {url}: {e}"))?;
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_ascii_lowercase(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let body = if method == "HEAD" {
        Vec::new()
    } else {
        resp.body_mut().with_config().limit(u64::MAX).read_to_vec().map_err(|e| format!("{method} {url}: {e}"))?
    };
    Ok(Resp { status, headers, body })
}

pub fn http(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Resp {
    try_http(method, url, headers, body).unwrap_or_else(|e| panic!("{e}"))
}

pub fn get(url: &str) -> Resp {
    http("GET", url, &[], None)
}

/// `POST` of an `application/x-www-form-urlencoded` body.
pub fn post_form(url: &str, fields: &[(&str, &str)]) -> Resp {
    let body = fields.iter().map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v))).collect::<Vec<_>>();
    http("POST", url, &[("Content-Type", "application/x-www-form-urlencoded")], Some(body.join("&").as_bytes()))
}

/// `POST` of a JSON body with `Content-Type: application/json`, as nodes send updates.
pub fn post_json(url: &str, body: &[u8]) -> Resp {
    http("POST", url, &[("Content-Type", "application/json")], Some(body))
}

fn form_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Percent-encodes every byte of a path segment that is not unreserved.
pub fn encode_segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Percent-encodes a relative `/`-separated path segment by segment.
pub fn encode_path(rel: &str) -> String {
    rel.split('/').map(encode_segment).collect::<Vec<_>>().join("/")
}

/// Sends `request` byte for byte (no client normalises it) and returns everything the server
/// sends until it closes the connection. Add `Connection: close` to the request.
pub fn raw_request(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

/// One request of any method (WebDAV's too, which the HTTP client refuses), sent byte for byte
/// on a connection of its own (`Connection: close` and, with a body, `Content-Length` are
/// added), and the whole answer, its body de-chunked when it came chunked.
pub fn send(addr: SocketAddr, method: &str, target: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Resp {
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n").into_bytes();
    for (k, v) in headers {
        req.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    if let Some(b) = body {
        req.extend_from_slice(format!("Content-Length: {}\r\n", b.len()).as_bytes());
    }
    req.extend_from_slice(b"\r\n");
    req.extend_from_slice(body.unwrap_or_default());
    parse_response(&raw_request(addr, &req)).unwrap_or_else(|e| panic!("{method} {target}: {e}"))
}

/// A whole raw HTTP/1.1 response (after any `100 Continue`), read until the connection closed.
pub fn parse_response(raw: &[u8]) -> Result<Resp, String> {
    let mut rest = raw;
    loop {
        let end = rest.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| {
            format!("no complete response head in {:?}", String::from_utf8_lossy(&rest[..rest.len().min(200)]))
        })?;
        let head = String::from_utf8_lossy(&rest[..end]).into_owned();
        rest = &rest[end + 4..];
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("no status line in {head:?}"))?;
        if status == 100 {
            continue;
        }
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let mut resp = Resp { status, headers, body: Vec::new() };
        resp.body = if resp.header("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
            dechunk(rest)?
        } else if let Some(n) = resp.header("content-length").and_then(|n| n.parse::<usize>().ok()) {
            rest.get(..n).ok_or_else(|| format!("{} of the {n} bytes announced", rest.len()))?.to_vec()
        } else {
            rest.to_vec()
        };
        return Ok(resp);
    }
}

fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = rest.windows(2).position(|w| w == b"\r\n").ok_or("a chunk without its size line")?;
        let size = String::from_utf8_lossy(&rest[..eol]);
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| format!("a bad chunk size {size:?}"))?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(rest.get(..size).ok_or("a chunk cut short")?);
        rest = rest.get(size + 2..).ok_or("a chunk cut short")?;
    }
}

/// The status code of a raw HTTP response.
pub fn raw_status(resp: &[u8]) -> u16 {
    let head = String::from_utf8_lossy(&resp[..resp.len().min(64)]).into_owned();
    head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status line: {head:?}"))
}

// ---- waiting ------------------------------------------------------------------------------------

/// Polls `f` until it gives `Some`, for at most `timeout`; panics naming `what` otherwise.
pub fn wait_until<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(20);
    loop {
        if let Some(t) = f() {
            return t;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}

// ---- nodes --------------------------------------------------------------------------------------

/// Runs dftp with `args` to completion: it must exit by itself (a bad flag, a bad rule), and is
/// killed, failing the test, if it has not within [`WAIT`].
pub fn run_dftp(args: &[&str]) -> Output {
    let mut child = Command::new(dftp_bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + WAIT;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("dftp {args:?} did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// How to start a node.
#[derive(Clone, Debug)]
pub struct NodeOpts {
    pub name: String,
    pub root: PathBuf,
    /// Management addresses for `--join`.
    pub join: Vec<String>,
    /// `--multicast-discovery-addr`; empty (off) unless set.
    pub multicast: String,
    pub ping_interval: String,
    /// Any further flags.
    pub extra: Vec<String>,
    /// A command the node is started through (`unshare`, …), which ends by executing the
    /// `dftp` command line it is given after its own arguments.
    pub wrapper: Vec<String>,
}

impl NodeOpts {
    pub fn new(name: &str, root: &Path) -> NodeOpts {
        NodeOpts {
            name: name.into(),
            root: root.into(),
            join: Vec::new(),
            multicast: String::new(),
            ping_interval: "300ms".into(),
            extra: Vec::new(),
            wrapper: Vec::new(),
        }
    }

    pub fn join(mut self, mgmt: &str) -> NodeOpts {
        self.join.push(mgmt.into());
        self
    }

    pub fn arg(mut self, a: &str) -> NodeOpts {
        self.extra.push(a.into());
        self
    }
}

/// A running `dftp` process, killed when dropped. When the test is failing, its log is printed.
pub struct Node {
    pub name: String,
    pub root: PathBuf,
    pub http: SocketAddr,
    pub mgmt: SocketAddr,
    /// The public interface is HTTPS (`--tls-cert`), and so the management one (`--tls-mgmt`).
    pub public_tls: bool,
    pub mgmt_tls: bool,
    child: Child,
    log: PathBuf,
    _logdir: tempfile::TempDir,
}

/// Why a start failed: a port taken in between (worth another try) or anything else.
enum StartError {
    PortTaken(String),
    Other(String),
}

impl Node {
    /// Starts a node and waits until both its HTTP interfaces answer.
    pub fn start(opts: NodeOpts) -> Node {
        let mut last = String::new();
        for _ in 0..5 {
            match Node::try_start(&opts) {
                Ok(n) => return n,
                Err(StartError::PortTaken(log)) => last = log,
                Err(StartError::Other(log)) => panic!("node {} did not start:\n{log}", opts.name),
            }
        }
        panic!("node {} could not bind its ports:\n{last}", opts.name)
    }

    fn try_start(opts: &NodeOpts) -> Result<Node, StartError> {
        let http: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mgmt: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let logdir = tempfile::Builder::new().prefix("dftp-e2e-log").tempdir().unwrap();
        let log = logdir.path().join(format!("{}.log", opts.name));
        let mut cmd = match opts.wrapper.split_first() {
            Some((program, args)) => {
                let mut cmd = Command::new(program);
                cmd.args(args).arg(dftp_bin());
                cmd
            }
            None => Command::new(dftp_bin()),
        };
        cmd.arg("--dfsroot")
            .arg(&opts.root)
            .args(["--node-name", &opts.name])
            .args(["--http-listen", &http.to_string()])
            .args(["--http-mgmt-listen", &mgmt.to_string()])
            .args(["--ftp-listen", &format!("127.0.0.1:{}", free_port())])
            .args(["--multicast-discovery-addr", &opts.multicast])
            .args(["--ping-interval", &opts.ping_interval]);
        for j in &opts.join {
            cmd.args(["--join", j]);
        }
        cmd.args(&opts.extra);
        // Every flag can also come from a DFTP_* variable: none of the test's environment may
        // reach the node unasked.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("DFTP_") {
                cmd.env_remove(key);
            }
        }
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info");
        }
        // Plain logs: they are printed when a test fails.
        cmd.env("NO_COLOR", "1");
        let out = fs::File::create(&log).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", dftp_bin().display()));
        let has = |flag: &str| opts.extra.iter().any(|a| a == flag || a.starts_with(&format!("{flag}=")));
        let (public_tls, mgmt_tls) = (has("--tls-cert"), has("--tls-mgmt"));
        let mut node = Node {
            name: opts.name.clone(),
            root: opts.root.clone(),
            http,
            mgmt,
            public_tls,
            mgmt_tls,
            child,
            log,
            _logdir: logdir,
        };
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(Some(status)) = node.child.try_wait() {
                let log = format!("exited with {status}\n{}", node.log());
                return Err(if log.contains("cannot listen") {
                    StartError::PortTaken(log)
                } else {
                    StartError::Other(log)
                });
            }
            // An HTTPS interface is asked with curl, without checking its certificate: the
            // tests check certificates themselves.
            let status = |url: String, tls: bool| {
                if tls {
                    tls::insecure_status(&url)
                } else {
                    try_http("GET", &url, &[], None).ok().map(|r| r.status)
                }
            };
            let up = status(node.url("/"), public_tls) == Some(200);
            // With a cluster secret, an unsigned request to the management interface gets a 401:
            // an answer all the same.
            let mgmt_up = matches!(status(node.mgmt_url("/cluster/"), mgmt_tls), Some(200 | 401));
            if up && mgmt_up {
                return Ok(node);
            }
            if Instant::now() > deadline {
                return Err(StartError::Other(format!("not answering after {WAIT:?}\n{}", node.log())));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `host:port` of the management interface, as given to `--join` and `POST /join/`.
    pub fn mgmt_addr(&self) -> String {
        self.mgmt.to_string()
    }

    /// A URL on the public interface; `path` starts with `/`.
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.public_tls { "https" } else { "http" };
        format!("{scheme}://{}{path}", self.http)
    }

    /// A URL on the management interface.
    pub fn mgmt_url(&self, path: &str) -> String {
        let scheme = if self.mgmt_tls { "https" } else { "http" };
        format!("{scheme}://{}{path}", self.mgmt)
    }

    pub fn get(&self, path: &str) -> Resp {
        get(&self.url(path))
    }

    /// The body of `GET /find/`.
    pub fn find(&self) -> String {
        let r = self.get("/find/");
        assert_eq!(r.status, 200, "GET /find/ on {}: {}", self.name, r.text());
        r.text()
    }

    /// `GET /fs/<dir>/?format=json` (`dir` relative, "" for the root).
    pub fn listing(&self, dir: &str) -> Value {
        let path = if dir.is_empty() { "/fs/".to_string() } else { format!("/fs/{}/", encode_path(dir)) };
        let r = self.get(&format!("{path}?format=json"));
        assert_eq!(r.status, 200, "GET {path} on {}: {}", self.name, r.text());
        r.json()
    }

    /// The owner shown for `name` in the JSON listing of `dir`.
    pub fn owner_in_listing(&self, dir: &str, name: &str) -> Option<String> {
        let listing = self.listing(dir);
        listing["entries"]
            .as_array()?
            .iter()
            .find(|e| e["name"] == name)
            .and_then(|e| e["owner"].as_str().map(String::from))
    }

    /// The names of the peers in this node's `GET /cluster/`.
    pub fn peers(&self) -> BTreeSet<String> {
        let r = get(&self.mgmt_url("/cluster/"));
        assert_eq!(r.status, 200);
        r.json()["Peers"].as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default()
    }

    /// Whether the process is still running and answering.
    pub fn is_up(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None)) && try_http("GET", &self.url("/"), &[], None).is_ok()
    }

    /// The process id, to signal it.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the node has logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("----- log of node {} -----\n{}----- end of log of {} -----", self.name, self.log(), self.name);
        }
    }
}

// ---- trees on disk ------------------------------------------------------------------------------

/// A temporary directory whose own name is awkward (spaces, unicode, `#`, `?`, `&`), so that a
/// leaked local path is easy to spot and paths with such names are exercised end to end.
pub fn awkward_tempdir(label: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("dftp e2e {label} ü#?&")).tempdir().unwrap()
}

/// Writes `content` at `rel` under `root`, creating directories.
pub fn write_file(root: &Path, rel: &str, content: &[u8]) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, content).unwrap();
}

/// The temporary files of writes under way (`.dftp-part-…`) anywhere under `root`.
pub fn part_files(root: &Path) -> Vec<String> {
    walk(root).into_iter().map(|(p, _)| p).filter(|p| p.split('/').any(|s| s.starts_with(".dftp-part-"))).collect()
}

/// `len` bytes that differ from one file to the next (xorshift from `seed`).
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Every file and directory under `root`, relative, `/`-separated; symlinks are neither
/// followed nor listed (as the scanner does).
pub fn walk(root: &Path) -> Vec<(String, bool)> {
    fn go(root: &Path, dir: &Path, out: &mut Vec<(String, bool)>) {
        for e in fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let ft = e.file_type().unwrap();
            if ft.is_symlink() {
                continue;
            }
            let rel = e.path().strip_prefix(root).unwrap().to_str().unwrap().to_string();
            out.push((rel, ft.is_dir()));
            if ft.is_dir() {
                go(root, &e.path(), out);
            }
        }
    }
    let mut out = Vec::new();
    go(root, root, &mut out);
    out
}

/// What `/find/` should answer for a cluster of these roots: every file and directory, each
/// with a leading `/`, sorted bytewise, once.
pub fn expected_find(roots: &[&Path]) -> String {
    let all: BTreeSet<String> = roots.iter().flat_map(|r| walk(r)).map(|(p, _)| format!("/{p}")).collect();
    all.into_iter().map(|p| p + "\n").collect()
}

/// The node that should own `rel` among these (name, root) pairs: the greatest
/// (status-change time, node name).
pub fn expected_owner(holders: &[(&str, &Path)], rel: &str) -> String {
    holders
        .iter()
        .filter_map(|(name, root)| fs::symlink_metadata(root.join(rel)).ok().map(|m| (m.ctime(), name.to_string())))
        .max()
        .map(|(_, n)| n)
        .expect("someone holds the path")
}

/// Waits until the current Unix second is past `t`.
pub fn wait_for_second_after(t: i64) {
    wait_until("the clock to pass a second", WAIT, || {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        (now > t).then_some(())
    });
}

// ---- the three-node cluster -----------------------------------------------------------------

/// Size of the big file in [`Fixture::big`].
pub const BIG_LEN: usize = 32 << 20;

/// Files of each node (relative path, content). `shared.txt` is on all three, `sub dir/` on
/// alpha and beta.
pub fn fixture_files(node: &str) -> Vec<(String, Vec<u8>)> {
    let names: &[&str] = match node {
        "alpha" => &[
            "space name.txt",
            "<b>.html",
            "hash#tag.txt",
            "what?.txt",
            "a&b.txt",
            "100% done.txt",
            "ünïcødé/файл.txt",
            "sub dir/alpha.txt",
            ".hidden",
        ],
        "beta" => &[
            "beta only/x.txt",
            "sub dir/beta.txt",
            "quote'and\"double.txt",
            "semi;colon=plus+.txt",
            "日本語.txt",
            "empty.txt",
        ],
        "gamma" => &["gamma.txt", "sub dir2/nested/deep.txt", "x [brackets] {braces}.txt", "a+b c.txt"],
        _ => &[],
    };
    names
        .iter()
        .map(|n| {
            let content = if *n == "empty.txt" {
                Vec::new()
            } else if n.ends_with(".html") {
                format!("<b>bold from {node}</b>\n").into_bytes()
            } else {
                format!("{n} from {node}\n").repeat(3).into_bytes()
            };
            (n.to_string(), content)
        })
        .collect()
}

/// Three roots with awkward names (and optionally a 32 MiB file), and three nodes serving them
/// as one tree: beta joins alpha with `--join`, gamma is told to by `POST /join/`.
pub struct Fixture {
    pub nodes: Vec<Node>,
    pub roots: Vec<tempfile::TempDir>,
    /// The relative paths of every regular file, with the node whose copy wins.
    pub files: Vec<(String, String)>,
}

pub const NODE_NAMES: [&str; 3] = ["alpha", "beta", "gamma"];

impl Fixture {
    /// Lays out the roots and starts the nodes, then waits until every node's `/find/` shows
    /// the whole tree.
    pub fn start(big: bool) -> Fixture {
        Fixture::start_with(big, |o| o)
    }

    /// As [`Fixture::start`], with a hook to change each node's options.
    pub fn start_with(big: bool, tweak: impl Fn(NodeOpts) -> NodeOpts) -> Fixture {
        let roots: Vec<tempfile::TempDir> = NODE_NAMES.iter().map(|n| awkward_tempdir(n)).collect();
        for (name, root) in NODE_NAMES.iter().zip(&roots) {
            for (rel, content) in fixture_files(name) {
                write_file(root.path(), &rel, &content);
            }
        }
        let alpha = roots[0].path();
        fs::create_dir_all(alpha.join("emptydir")).unwrap();
        // Links out of the root: never followed, listed or served.
        std::os::unix::fs::symlink("/etc/passwd", alpha.join("passwd-link")).unwrap();
        std::os::unix::fs::symlink("/etc", alpha.join("etc-link")).unwrap();
        if big {
            write_file(alpha, "big/32 MiB.bin", &pseudo_random(BIG_LEN, 7));
        }
        // shared.txt: beta's and gamma's copies first, alpha's a second later, so alpha's has
        // the newest status-change time and wins although "gamma" > "alpha" by name.
        for (i, root) in roots.iter().enumerate().skip(1) {
            write_file(root.path(), "shared.txt", format!("shared from {}\n", NODE_NAMES[i]).as_bytes());
        }
        let newest =
            roots[1..].iter().map(|r| fs::metadata(r.path().join("shared.txt")).unwrap().ctime()).max().unwrap();
        wait_for_second_after(newest);
        write_file(alpha, "shared.txt", b"shared from alpha\n");

        let holders: Vec<(&str, &Path)> = NODE_NAMES.iter().copied().zip(roots.iter().map(|r| r.path())).collect();
        let mut files: BTreeSet<(String, String)> = BTreeSet::new();
        for (_, root) in &holders {
            for (rel, is_dir) in walk(root) {
                if !is_dir {
                    let owner = expected_owner(&holders, &rel);
                    files.insert((rel, owner));
                }
            }
        }

        let a = Node::start(tweak(NodeOpts::new("alpha", roots[0].path())));
        let b = Node::start(tweak(NodeOpts::new("beta", roots[1].path()).join(&a.mgmt_addr())));
        let c = Node::start(tweak(NodeOpts::new("gamma", roots[2].path())));
        let r = post_form(&c.mgmt_url("/join/"), &[("peer", &a.mgmt_addr())]);
        assert_eq!(r.status, 200, "POST /join/: {}", r.text());
        let fixture = Fixture { nodes: vec![a, b, c], roots, files: files.into_iter().collect() };
        fixture.wait_converged();
        fixture
    }

    pub fn root_paths(&self) -> Vec<&Path> {
        self.roots.iter().map(|r| r.path()).collect()
    }

    /// What every node's `/find/` should say.
    pub fn expected_find(&self) -> String {
        expected_find(&self.root_paths())
    }

    /// Waits until every node lists the whole tree and knows both other nodes.
    pub fn wait_converged(&self) {
        let want = self.expected_find();
        for n in &self.nodes {
            wait_until(&format!("{}'s /find/ to list every root", n.name), WAIT, || (n.find() == want).then_some(()));
            wait_until(&format!("{} to know both peers", n.name), WAIT, || (n.peers().len() == 2).then_some(()));
        }
    }

    pub fn node(&self, name: &str) -> &Node {
        self.nodes.iter().find(|n| n.name == name).expect("a node of the fixture")
    }

    /// The content of a file as the winning node has it on disk.
    pub fn content(&self, rel: &str) -> Vec<u8> {
        let owner = &self.files.iter().find(|(p, _)| p == rel).expect("a fixture file").1;
        let i = NODE_NAMES.iter().position(|n| n == owner).unwrap();
        fs::read(self.roots[i].path().join(rel)).unwrap()
    }

    /// Every local root path, as it must never appear in a response.
    pub fn secrets(&self) -> Vec<String> {
        self.roots.iter().map(|r| r.path().to_string_lossy().into_owned()).collect()
    }
}

/// Asserts that a response body shows nothing from outside the roots and no local path.
pub fn assert_contained(what: &str, body: &[u8], secrets: &[String]) {
    let text = String::from_utf8_lossy(body);
    assert!(!text.contains("root:x:0:0"), "{what}: served /etc/passwd:\n{text}");
    for s in secrets {
        assert!(!text.contains(s.as_str()), "{what}: leaked the local path {s}:\n{text}");
    }
    // The temporary directories' common parent is a local path too.
    let tmp = std::env::temp_dir();
    let tmp = tmp.to_string_lossy();
    assert!(!text.contains(&format!("{}/dftp", tmp.trim_end_matches('/'))), "{what}: leaked a temp path:\n{text}");
}

// ---- a fake peer ----------------------------------------------------------------------------

/// A request as a [`FakeServer`] received it.
#[derive(Clone, Debug)]
pub struct Req {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }
}

/// What a [`FakeServer`] answers: status, Content-Type, body.
pub type Reply = (u16, String, Vec<u8>);

/// A tiny HTTP/1.1 server on 127.0.0.1 that records every request and answers with a handler:
/// enough to play a peer (for example a node of the original implementation) in a test. One
/// request per connection; bodies over 2 KiB are sent chunked, as the original sends files, and
/// the answer to `HEAD` has no body (nor, past 2 KiB, a length: Go's server has not counted it).
pub struct FakeServer {
    pub addr: SocketAddr,
    requests: std::sync::Arc<std::sync::Mutex<Vec<Req>>>,
}

impl FakeServer {
    pub fn start(handler: impl Fn(&Req) -> Reply + Send + Sync + 'static) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (log, handler) = (requests.clone(), std::sync::Arc::new(handler));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let (log, handler) = (log.clone(), handler.clone());
                std::thread::spawn(move || {
                    conn.set_read_timeout(Some(Duration::from_secs(30))).ok();
                    let Some(req) = read_request(&mut conn) else { return };
                    let (status, ctype, body) = handler(&req);
                    let head_request = req.method == "HEAD";
                    log.lock().unwrap().push(req);
                    // Like Go's net/http for a handler that sets no length: a short body gets a
                    // Content-Length, a longer one is sent chunked.
                    let (framing, body) = if body.len() <= 2048 {
                        let framing = format!("Content-Length: {}\r\n", body.len());
                        (framing, if head_request { Vec::new() } else { body })
                    } else if head_request {
                        (String::new(), Vec::new())
                    } else {
                        let mut chunked = Vec::new();
                        for chunk in body.chunks(4096) {
                            chunked.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                            chunked.extend_from_slice(chunk);
                            chunked.extend_from_slice(b"\r\n");
                        }
                        chunked.extend_from_slice(b"0\r\n\r\n");
                        ("Transfer-Encoding: chunked\r\n".to_string(), chunked)
                    };
                    let head =
                        format!("HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\n{framing}Connection: close\r\n\r\n");
                    let _ = conn.write_all(head.as_bytes()).and_then(|_| conn.write_all(&body));
                });
            }
        });
        FakeServer { addr, requests }
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Req> {
        self.requests.lock().unwrap().clone()
    }

    /// Waits for a request that matches.
    pub fn wait_for(&self, what: &str, f: impl Fn(&Req) -> bool) -> Req {
        wait_until(what, WAIT, || self.requests().into_iter().find(|r| f(r)))
    }
}

fn read_request(conn: &mut TcpStream) -> Option<Req> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if conn.read(&mut byte).ok()? == 0 {
            return None;
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, target) = (first.next()?.to_string(), first.next()?.to_string());
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let find = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let mut body = Vec::new();
    if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        let mut reader = std::io::BufReader::new(conn);
        loop {
            let mut size = String::new();
            std::io::BufRead::read_line(&mut reader, &mut size).ok()?;
            let size = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0u8; size + 2];
            reader.read_exact(&mut chunk).ok()?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(len) = find("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.resize(len, 0);
        conn.read_exact(&mut body).ok()?;
    }
    Some(Req { method, target, headers, body })
}

// ---- a node of the original ---------------------------------------------------------------------

/// One entry of an [`OriginalTree`]: what the original's `FileStat` keeps that matters here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OriginalEntry {
    pub last_info_updated: i64,
    /// The original marks a deleted entry with a size of -1 and hides it from its listings.
    pub deleted: bool,
    pub dir: bool,
    pub owner: String,
}

/// The tree of a node of the original, changed by update bodies the way its `dfsfat/update.go`
/// changes it:
/// - a record goes to the entry of its path (created, with a LastInfoUpdated of 0, when
///   missing; the directories on the way are created too, and made directories again), except
///   a deletion, which the original applies to the entry of the path's *first segment*: it
///   does not descend for deletions;
/// - a record replaces that entry only when its LastInfoUpdated is greater than the entry's;
/// - a deletion record then marks the entry deleted, which removes it from the tree the
///   original shows.
///
/// Full updates are applied the same way and prune nothing (a TODO in the original).
#[derive(Clone, Debug, Default)]
pub struct OriginalTree {
    entries: std::collections::BTreeMap<String, OriginalEntry>,
}

impl OriginalTree {
    /// Applies the records of an update body (`{"Files": [...], ...}`), in order.
    pub fn apply(&mut self, update: &Value) {
        for f in update["Files"].as_array().into_iter().flatten() {
            let name = f["FullName"].as_str().unwrap_or("").trim_start_matches('/');
            let deletion = f["Deletion"].as_bool().unwrap_or(false);
            let segments: Vec<&str> = name.split('/').collect();
            let target = if deletion {
                segments[0].to_string()
            } else {
                // The directories on the way: created if missing, and `setAsDir` (which also
                // sets the size to 0, so a deleted directory is shown again).
                for i in 1..segments.len() {
                    let dir = self.entries.entry(segments[..i].join("/")).or_insert_with(|| OriginalEntry {
                        last_info_updated: 0,
                        deleted: false,
                        dir: true,
                        owner: String::new(),
                    });
                    dir.dir = true;
                    dir.deleted = false;
                }
                name.to_string()
            };
            let held = self.entries.get(&target).map_or(0, |e| e.last_info_updated);
            let time = f["LastInfoUpdated"].as_i64().unwrap_or(0);
            if time > held {
                let entry = OriginalEntry {
                    last_info_updated: time,
                    deleted: deletion,
                    dir: f["Dir"].as_bool().unwrap_or(false),
                    owner: f["OwnerNode"].as_str().unwrap_or("").to_string(),
                };
                self.entries.insert(target, entry);
            } else {
                // Only created, if it was missing (the original creates it before comparing).
                self.entries.entry(target).or_insert_with(|| OriginalEntry {
                    last_info_updated: 0,
                    deleted: false,
                    dir: false,
                    owner: String::new(),
                });
            }
        }
    }

    /// The paths the original shows: entries not marked deleted, inside directories that are
    /// neither deleted nor turned into files.
    pub fn listed(&self) -> BTreeSet<String> {
        let shown = |path: &str| self.entries.get(path).is_some_and(|e| !e.deleted);
        self.entries
            .keys()
            .filter(|path| {
                let segments: Vec<&str> = path.split('/').collect();
                shown(path)
                    && (1..segments.len()).all(|i| {
                        let dir = segments[..i].join("/");
                        shown(&dir) && self.entries[&dir].dir
                    })
            })
            .cloned()
            .collect()
    }

    pub fn entry(&self, path: &str) -> Option<&OriginalEntry> {
        self.entries.get(path)
    }
}

/// A file of a [`FakeOriginal`]: what it announces, and what it sends when asked.
#[derive(Clone, Debug)]
pub struct OriginalFile {
    /// The bytes sent for `GET /fs/<path>`.
    pub body: Vec<u8>,
    /// `SizeInBytes` in its update (the length of `body` unless a test wants them to differ).
    pub size: u64,
    /// `LastModified` in its update, Unix seconds.
    pub modified: i64,
}

impl OriginalFile {
    pub fn new(body: Vec<u8>, modified: i64) -> OriginalFile {
        OriginalFile { size: body.len() as u64, body, modified }
    }
}

/// A node of the original implementation, played by a [`FakeServer`] on one address for both
/// its interfaces. It answers greetings with its cluster table, applies the updates it gets to
/// an [`OriginalTree`] by the original's rule, and serves its files the original's way: status,
/// Content-Type and the bytes, chunked past 2 KiB, with no Content-Length, Accept-Ranges, ETag
/// or Last-Modified, and Range and validators ignored.
pub struct FakeOriginal {
    pub name: String,
    pub server: FakeServer,
    tree: std::sync::Arc<std::sync::Mutex<OriginalTree>>,
    files: std::collections::BTreeMap<String, OriginalFile>,
}

impl FakeOriginal {
    pub fn start(name: &str, files: Vec<(&str, OriginalFile)>) -> FakeOriginal {
        let files: std::collections::BTreeMap<String, OriginalFile> =
            files.into_iter().map(|(p, f)| (p.to_string(), f)).collect();
        let tree = std::sync::Arc::new(std::sync::Mutex::new(OriginalTree::default()));
        let me = std::sync::Arc::new(OnceLock::<String>::new());
        let (tree_for_handler, me_for_handler, served) = (tree.clone(), me.clone(), files.clone());
        let node_name = name.to_string();
        let server = FakeServer::start(move |req| {
            let plain = "text/plain; charset=utf-8".to_string();
            let me = me_for_handler.get().cloned().unwrap_or_default();
            let path = req.target.split('?').next().unwrap_or("");
            match (req.method.as_str(), path) {
                ("POST", "/cluster/") => {
                    let info = |addr: &str| {
                        serde_json::json!({"Name": node_name, "PublicAddr": addr, "MgmtAddr": addr, "LastAlive": 0,
                            "LastUpdatePushed": 0, "LastUpdateReceived": 0, "LastFullUpdateReceived": 0})
                    };
                    let table = serde_json::json!({"Name": "dftp", "Me": info(&me), "Peers": {}});
                    (200, plain, table.to_string().into_bytes())
                }
                ("POST", "/update/") if req.header("content-type") != Some("application/json") => {
                    (400, plain, b"Content-Type must be application/json".to_vec())
                }
                ("POST", "/update/") => match serde_json::from_slice::<Value>(&req.body) {
                    Ok(update) => {
                        tree_for_handler.lock().unwrap().apply(&update);
                        (200, plain, b"ok".to_vec())
                    }
                    Err(e) => (400, plain, format!("Error decoding json: {e}").into_bytes()),
                },
                // Whatever the method: the original's /fs/ handler does not look at it
                // (httpface/server.go), so a PUT or a DELETE gets the file.
                (_, p) if p.starts_with("/fs/") => {
                    let rel = percent_decode(&p["/fs/".len()..]);
                    match served.get(&rel) {
                        Some(f) => (200, "application/octet-stream".into(), f.body.clone()),
                        None => (404, plain, format!("`{rel}` not found in DFS").into_bytes()),
                    }
                }
                _ => (404, plain, b"404 page not found".to_vec()),
            }
        });
        me.set(server.addr.to_string()).expect("set once");
        FakeOriginal { name: name.to_string(), server, tree, files }
    }

    /// Joins `node`'s cluster as the original does: greets it asking for a full update, and
    /// pushes its own full update (every file with its `LastModified`, LastInfoUpdated the
    /// time of its scan).
    pub fn join(&self, node: &Node) {
        let addr = self.server.addr.to_string();
        let fields = [("name", self.name.as_str()), ("public-addr", &addr), ("mgmt-addr", &addr)];
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        form.push(("request-full-update", "true"));
        let r = post_form(&node.mgmt_url("/cluster/"), &form);
        assert_eq!(r.status, 200, "{}'s greeting to {}: {}", self.name, node.name, r.text());
        let scan = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let files: Vec<Value> = self
            .files
            .iter()
            .map(|(path, f)| {
                serde_json::json!({"FullName": path, "Basename": path.rsplit('/').next().unwrap(), "Dir": false,
                    "LastModified": f.modified, "LastInfoUpdated": scan, "SizeInBytes": f.size,
                    "FileMode": 420, "OwnerNode": self.name, "Deletion": false})
            })
            .collect();
        let update = serde_json::json!({"Files": files, "UpdateTime": scan, "Full": true, "SenderNodeName": self.name});
        let r = post_json(&node.mgmt_url("/update/"), update.to_string().as_bytes());
        assert_eq!(r.status, 200, "{}'s full update to {}: {}", self.name, node.name, r.text());
    }

    /// A copy of its tree as it is now.
    pub fn tree(&self) -> OriginalTree {
        self.tree.lock().unwrap().clone()
    }

    /// Waits until its tree shows (`true`) or no longer shows (`false`) `path`.
    pub fn wait_listed(&self, path: &str, listed: bool) {
        let what = format!("{path} {} {}'s tree", if listed { "in" } else { "gone from" }, self.name);
        wait_until(&what, WAIT, || (self.tree().listed().contains(path) == listed).then_some(()));
    }
}

/// Decodes `%XX` escapes (a path as the original's server sees it).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(path: &str, time: i64, deletion: bool) -> Value {
        serde_json::json!({"FullName": path, "Dir": false, "LastInfoUpdated": time, "OwnerNode": "us", "Deletion": deletion})
    }

    fn apply(tree: &mut OriginalTree, records: &[Value]) {
        tree.apply(&serde_json::json!({ "Files": records }));
    }

    /// The fake applies records as the original's `dfsfat/update.go` does.
    #[test]
    fn the_original_tree_follows_the_originals_rule() {
        let mut t = OriginalTree::default();
        apply(&mut t, &[record("a.txt", 10, false), record("d/x.txt", 10, false), record("d/y.txt", 10, false)]);
        let all = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        assert_eq!(t.listed(), all(&["a.txt", "d", "d/x.txt", "d/y.txt"]));
        // Not greater: ignored.
        apply(&mut t, &[record("a.txt", 10, true), record("a.txt", 0, true)]);
        assert!(t.listed().contains("a.txt"));
        apply(&mut t, &[record("a.txt", 11, true)]);
        assert!(!t.listed().contains("a.txt"));
        // A nested deletion goes to the top-level entry: with a time, it hides the directory.
        apply(&mut t, &[record("d/x.txt", 0, true)]);
        assert!(t.listed().contains("d/x.txt"));
        apply(&mut t, &[record("d/x.txt", 11, true)]);
        assert_eq!(t.listed(), BTreeSet::new());
        // A nested record makes the directory a directory again.
        apply(&mut t, &[record("d/z.txt", 12, false)]);
        assert_eq!(t.listed(), all(&["d", "d/x.txt", "d/y.txt", "d/z.txt"]));
    }
}
