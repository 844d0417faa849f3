//! FTP helpers for the end-to-end tests: where a node's FTP interface listens, a passive port
//! range per node, and a raw control connection that shows every reply exactly as the server
//! sent it (code, lines, and the order of replies), which a high-level client would hide.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use crate::{Node, NodeOpts};

/// Socket timeouts of the raw client: a hang fails the test instead of blocking it forever.
const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// A passive port range per node, away from the ephemeral ports (32768+) and from the other
/// nodes of this test binary.
pub fn passive_ports() -> String {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let slot = NEXT.fetch_add(1, Ordering::Relaxed) as u32;
    let base = 20000 + (std::process::id().wrapping_mul(7).wrapping_add(slot) % 300) * 40;
    format!("{}-{}", base, base + 39)
}

/// Node options with a passive port range of their own.
pub fn with_ftp(o: NodeOpts) -> NodeOpts {
    o.arg(&format!("--ftp-passive-ports={}", passive_ports()))
}

/// The FTP address a node logged when it bound its FTP port.
pub fn ftp_addr(node: &Node) -> SocketAddr {
    let log = node.log();
    let marker = "FTP interface listening on ";
    let start =
        log.find(marker).unwrap_or_else(|| panic!("{} logged no FTP address:\n{log}", node.name)) + marker.len();
    let addr: String = log[start..].chars().take_while(|c| c.is_ascii_hexdigit() || ".:[]".contains(*c)).collect();
    let addr = addr.trim_end_matches('.');
    addr.parse().unwrap_or_else(|e| panic!("{addr:?} is not an address: {e}"))
}

/// One reply: its code and its text lines (for a multi-line reply, every line, the first and
/// last with the code and separator stripped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u32,
    pub lines: Vec<String>,
}

impl Reply {
    /// The whole text, lines joined with `\n`.
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }
}

/// A raw FTP control connection.
pub struct Control {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    /// The address the control connection reached, which passive replies are relative to.
    peer: SocketAddr,
}

impl Control {
    /// Connects to `node`'s FTP interface and reads the greeting.
    pub fn connect(node: &Node) -> Control {
        let addr = ftp_addr(node);
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).expect("connect to FTP");
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        let writer = stream.try_clone().unwrap();
        let mut c = Control { reader: BufReader::new(stream), writer, peer: addr };
        let greeting = c.reply();
        assert_eq!(greeting.code, 220, "greeting {greeting:?}");
        c
    }

    /// Connects and logs in as anonymous.
    pub fn login(node: &Node) -> Control {
        let mut c = Control::connect(node);
        assert_eq!(c.cmd("USER anonymous").code, 331);
        let pass = c.cmd("PASS e2e@example.org");
        assert_eq!(pass.code, 230, "login: {pass:?}");
        assert_eq!(c.cmd("TYPE I").code, 200);
        c
    }

    /// Sends one command line.
    pub fn send(&mut self, line: &str) {
        self.writer.write_all(format!("{line}\r\n").as_bytes()).unwrap_or_else(|e| panic!("send {line:?}: {e}"));
    }

    /// Sends one command and reads the first reply to it.
    pub fn cmd(&mut self, line: &str) -> Reply {
        self.send(line);
        self.reply()
    }

    /// Reads one reply, multi-line or not.
    pub fn reply(&mut self) -> Reply {
        let first = self.line();
        let code: u32 = first.get(..3).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("bad reply {first:?}"));
        match first.as_bytes().get(3) {
            Some(b'-') => {
                let mut lines = vec![first[4..].to_string()];
                let end = format!("{code} ");
                loop {
                    let l = self.line();
                    if let Some(last) = l.strip_prefix(&end) {
                        lines.push(last.to_string());
                        return Reply { code, lines };
                    }
                    lines.push(l);
                }
            }
            _ => Reply { code, lines: vec![first.get(4..).unwrap_or("").to_string()] },
        }
    }

    fn line(&mut self) -> String {
        let mut buf = Vec::new();
        let n = self.reader.read_until(b'\n', &mut buf).unwrap_or_else(|e| panic!("reading a reply: {e}"));
        assert!(n > 0, "the server closed the control connection");
        let s = String::from_utf8(buf).expect("a UTF-8 reply");
        s.strip_suffix("\r\n").unwrap_or_else(|| panic!("a reply line ends with CRLF: {s:?}")).to_string()
    }

    /// `EPSV` and a connected data socket.
    pub fn passive(&mut self) -> TcpStream {
        let r = self.cmd("EPSV");
        assert_eq!(r.code, 229, "EPSV: {r:?}");
        let text = r.text();
        let port: u16 = text
            .split("(|||")
            .nth(1)
            .and_then(|rest| rest.split('|').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {r:?}"));
        let data = TcpStream::connect_timeout(&SocketAddr::new(self.peer.ip(), port), Duration::from_secs(10))
            .expect("connect the data connection");
        data.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        data
    }

    /// Sends `NOOP` and checks that its 200 is the very next reply: nothing else was pending.
    pub fn assert_nothing_pending(&mut self, after: &str) {
        let r = self.cmd("NOOP");
        assert_eq!(r.code, 200, "after {after}, the next reply should be NOOP's, got {r:?}");
    }
}

/// Reads a data connection to its end.
pub fn read_all(mut data: TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    data.read_to_end(&mut out).expect("reading the data connection");
    out
}

/// Whether the server closes `data` within `within` (reads end, with nothing sent).
pub fn closed_by_server(data: &mut TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    data.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let mut buf = [0u8; 64];
    while Instant::now() < deadline {
        match data.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => return false,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return true, // reset: closed as well
        }
    }
    false
}

/// Whether `program` can be run (`program --version` starts), for tests that use a client
/// the machine may not have; they print why they skip when it does not.
pub fn have(program: &str) -> bool {
    std::process::Command::new(program)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok()
}

/// What the Python side of [`ftplib`] gives every script: `ftp`, a session logged in as the
/// user (or the reply that refused the login, in `login_refused`), `out(v)` to report a value,
/// and helpers that return a command's reply, or the text of the error that refused it.
const FTPLIB_PRELUDE: &str = r#"
import base64, ftplib, io, json, sys, urllib.request
host, port, user, password, http = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
def out(v):
    print(json.dumps(v), flush=True)
def attempt(f, *args, **kw):
    try:
        return f(*args, **kw)
    except ftplib.all_errors as e:
        return str(e)
def stor(path, data, rest=None):
    return attempt(ftp.storbinary, "STOR " + path, io.BytesIO(data), 8192, None, rest)
def appe(path, data):
    return attempt(ftp.storbinary, "APPE " + path, io.BytesIO(data))
def retr(path):
    got = []
    r = attempt(ftp.retrbinary, "RETR " + path, got.append)
    return b"".join(got).decode("latin-1") if r.startswith("226") else r
def find():
    auth = base64.b64encode((user + ":" + password).encode()).decode()
    req = urllib.request.Request(http + "/find/", headers={"Authorization": "Basic " + auth})
    return urllib.request.urlopen(req, timeout=60).read().decode().split("\n")
ftp = ftplib.FTP()
ftp.connect(host, port, timeout=60)
login_refused = attempt(ftp.login, user, password)
login_refused = None if login_refused.startswith("230") else login_refused
"#;

/// Runs `script` (Python, after [`FTPLIB_PRELUDE`]) against `node`'s FTP interface as `user`,
/// and returns what it reported with `out(...)`, one JSON value each. `None`, with the reason
/// printed, when there is no `python3`.
pub fn ftplib(node: &Node, user: &str, password: &str, script: &str) -> Option<Vec<serde_json::Value>> {
    if !have("python3") {
        eprintln!("skipping the ftplib part: no python3 on this machine");
        return None;
    }
    let addr = ftp_addr(node);
    let program = format!("{FTPLIB_PRELUDE}\n{script}\n");
    let run = std::process::Command::new("python3")
        .args(["-c", &program, &addr.ip().to_string(), &addr.port().to_string(), user, password, &node.url("")])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run python3");
    let (stdout, stderr) = (String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    assert!(run.status.success(), "the ftplib script failed ({}):\n{stderr}\nit printed:\n{stdout}", run.status);
    Some(stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}"))).collect())
}

/// A TCP connection to `to` from the local address `from` (another loopback address, such as
/// 127.0.0.2: a client other than the one on the control connection).
pub fn connect_from(from: [u8; 4], to: SocketAddr) -> std::io::Result<TcpStream> {
    let SocketAddr::V4(to) = to else { panic!("an IPv4 FTP address") };
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let stream = <TcpStream as std::os::fd::FromRawFd>::from_raw_fd(fd);
        let mut local: libc::sockaddr_in = std::mem::zeroed();
        local.sin_family = libc::AF_INET as libc::sa_family_t;
        local.sin_addr.s_addr = u32::from_ne_bytes(from);
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        if libc::bind(fd, &local as *const _ as *const libc::sockaddr, len) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut remote: libc::sockaddr_in = std::mem::zeroed();
        remote.sin_family = libc::AF_INET as libc::sa_family_t;
        remote.sin_port = to.port().to_be();
        remote.sin_addr.s_addr = u32::from_ne_bytes(to.ip().octets());
        if libc::connect(fd, &remote as *const _ as *const libc::sockaddr, len) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(stream)
    }
}
