//! Limits that hold under abuse: connections that hold a slot and send nothing cannot take an
//! interface away from everyone else, and cannot take the other interface with it.

use std::net::TcpStream;
use std::sync::mpsc;
use std::time::Duration;

use dftp_e2e::*;

/// A GET of `path` on `addr` from another thread; its status arrives on the channel.
fn get_in_thread(addr: std::net::SocketAddr, path: &str) -> mpsc::Receiver<u16> {
    let (tx, rx) = mpsc::channel();
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    std::thread::spawn(move || {
        let _ = tx.send(raw_status(&raw_request(addr, request.as_bytes())));
    });
    rx
}

#[test]
fn idle_connections_wait_for_a_slot_and_leave_the_management_interface_alone() {
    let root = awkward_tempdir("limits");
    write_file(root.path(), "a.txt", b"a\n");
    let node = Node::start(NodeOpts::new("limited", root.path()).arg("--max-connections").arg("4"));

    // Four silent clients take every slot of the public interface.
    let mut idle: Vec<TcpStream> = (0..4).map(|_| TcpStream::connect(node.http).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(300)); // accepted, each holding a slot

    // The management interface has slots of its own.
    let r = http("GET", &node.mgmt_url("/cluster/"), &[], None);
    assert!(r.status < 500, "the management interface answered {}", r.status);

    // A fifth public client waits for a slot instead of using a descriptor...
    let waiting = get_in_thread(node.http, "/fs/a.txt");
    assert!(waiting.recv_timeout(Duration::from_secs(2)).is_err(), "a fifth connection was served beyond the limit");
    // ...and is served as soon as one is free.
    drop(idle.pop());
    assert_eq!(waiting.recv_timeout(Duration::from_secs(30)).expect("served once a slot was free"), 200);

    // Slots of answered requests are given back: with three still held by silent clients, one
    // slot serves request after request.
    for _ in 0..6 {
        assert_eq!(get_in_thread(node.http, "/fs/a.txt").recv_timeout(Duration::from_secs(30)).unwrap(), 200);
    }
    drop(idle);
    assert!(node.log().contains("connection limit"), "the limit is logged:\n{}", node.log());
}

#[test]
fn a_bad_limit_is_refused_before_the_scan() {
    let root = awkward_tempdir("limits");
    let out = run_dftp(&[
        "--dfsroot",
        root.path().to_str().unwrap(),
        "--multicast-discovery-addr",
        "",
        "--max-connections",
        "0",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--max-connections"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// "Max open files" of a process: (soft, hard).
fn open_file_limits(pid: u32) -> Option<(String, String)> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let mut f = line["Max open files".len()..].split_whitespace();
    Some((f.next()?.to_owned(), f.next()?.to_owned()))
}

#[test]
fn a_small_soft_descriptor_limit_is_raised_at_start() {
    let hard = open_file_limits(std::process::id()).unwrap().1;
    if hard == "64" || hard.parse::<u64>().is_ok_and(|h| h <= 64) {
        eprintln!("skipped: the hard open-file limit here is {hard}, nothing to raise to");
        return;
    }
    let root = awkward_tempdir("limits");
    let bin = dftp_bin().to_str().unwrap().to_owned();
    let script = format!(
        "ulimit -Sn 64 && exec '{bin}' --dfsroot '{}' --multicast-discovery-addr '' --http-listen 127.0.0.1:0 \
         --http-mgmt-listen 127.0.0.1:0 --ftp-listen 127.0.0.1:0",
        root.path().display()
    );
    let mut child = std::process::Command::new("sh")
        .args(["-c", &script])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let raised = wait_until("the node's open-file limit", WAIT, || {
        let (soft, hard) = open_file_limits(pid)?;
        (soft != "64").then_some((soft, hard))
    });
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(raised.0, raised.1, "the soft limit is raised to the hard one");
}

/// Sends `head`, then `body_len` bytes of body ten bytes at a time, one piece every 200 ms (50
/// bytes/s), until the node closes the connection; returns what the node answered, and whether
/// it closed the connection within 90 s (the body would take half an hour).
fn trickle(addr: std::net::SocketAddr, head: &str, body_len: usize) -> (String, bool) {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let mut sent = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let mut closed = false;
    while std::time::Instant::now() < deadline {
        if sent < body_len && s.write_all(&[b'x'; 10]).is_ok() {
            sent += 10;
        }
        let mut buf = [0u8; 4096];
        match s.read(&mut buf) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => {
                closed = true;
                break;
            }
        }
    }
    (String::from_utf8_lossy(&answer).into_owned(), closed)
}

#[test]
fn bodies_slower_than_the_minimum_rate_are_cut_off_and_change_nothing() {
    let root = awkward_tempdir("slow-bodies");
    write_file(root.path(), "keep.txt", b"as it was");
    let node = Node::start(NodeOpts::new("paced", root.path()).arg("--body-min-rate=1000").arg("--auth=@/:rw"));
    // An upload at 50 bytes/s: cut off after the 10 s of grace, and the file is untouched.
    let head = "PUT /fs/keep.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n";
    let (answer, closed) = trickle(node.http, head, 100_000);
    assert!(closed, "the node still took the slow upload after 90 s");
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 4"), "the slow upload was refused: {answer:?}");
    assert_eq!(std::fs::read(root.path().join("keep.txt")).unwrap(), b"as it was");
    assert!(part_files(root.path()).is_empty(), "no temporary file is left");
    // A management update at 50 bytes/s: 408 with the reason.
    let head = "POST /update/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n";
    let (answer, closed) = trickle(node.mgmt, head, 100_000);
    assert!(closed && answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    assert!(answer.contains("--body-min-rate"), "the answer names the flag: {answer:?}");
    // The node serves on.
    assert_eq!(node.get("/fs/keep.txt").text(), "as it was");
}

/// Reads what the node sends on `s` until it has a whole head and `Content-Length` bytes of
/// body, or closes; `None` when nothing came within `wait`.
fn answer_within(s: &mut TcpStream, wait: Duration) -> Option<String> {
    use std::io::Read;
    s.set_read_timeout(Some(wait)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
        let text = String::from_utf8_lossy(&got);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            if body.len() >= len {
                break;
            }
        }
    }
    (!got.is_empty()).then(|| String::from_utf8_lossy(&got).into_owned())
}

fn update_head(len: usize) -> String {
    format!("POST /update/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n")
}

/// An update whose first record is a stranger's is refused there: the node answers 403 while
/// the announced 50 MB are still to come, so it neither reads nor parses them.
#[test]
fn an_update_from_a_stranger_is_refused_at_its_first_record() {
    use std::io::Write;
    let root = awkward_tempdir("stranger-update");
    write_file(root.path(), "mine.txt", b"mine");
    let node = Node::start(NodeOpts::new("alone", root.path()));
    let before = node.find();
    let mut s = TcpStream::connect(node.mgmt).unwrap();
    s.write_all(update_head(50_000_000).as_bytes()).unwrap();
    s.write_all(br#"{"Files":[{"FullName":"mine.txt","OwnerNode":"mallory","SizeInBytes":1},"#).unwrap();
    // Generous: only a node that waits for the rest of the body misses it.
    let answer = answer_within(&mut s, Duration::from_secs(20)).expect("an answer before the body is complete");
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(answer.contains("\"mallory\" is not a node this one knows"), "the reason: {answer}");
    assert_eq!(node.find(), before, "nothing changed");
}

/// With `--max-concurrent-updates 1`, a second update waits while one is being read, and is
/// answered once the first is done.
#[test]
fn updates_are_parsed_a_few_at_a_time() {
    use std::io::Write;
    let root = awkward_tempdir("update-turns");
    write_file(root.path(), "mine.txt", b"mine");
    let node = Node::start(NodeOpts::new("alone", root.path()).arg("--max-concurrent-updates=1"));
    let (start, end) = (r#"{"Files":["#, r#"],"Full":false,"SenderNodeName":"nobody"}"#);
    let mut first = TcpStream::connect(node.mgmt).unwrap();
    first.write_all(update_head(start.len() + end.len()).as_bytes()).unwrap();
    first.write_all(start.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(500)); // the first holds the only turn
    let whole = format!("{start}{end}");
    let mut second = TcpStream::connect(node.mgmt).unwrap();
    second.write_all(format!("{}{whole}", update_head(whole.len())).as_bytes()).unwrap();
    assert_eq!(answer_within(&mut second, Duration::from_secs(2)), None, "the second waits for its turn");
    first.write_all(end.as_bytes()).unwrap();
    let a = answer_within(&mut first, Duration::from_secs(20)).expect("the first is answered");
    assert!(a.starts_with("HTTP/1.1 200"), "{a}");
    let b = answer_within(&mut second, Duration::from_secs(20)).expect("then the second");
    assert!(b.starts_with("HTTP/1.1 200"), "{b}");
}

/// Sends a keep-alive GET on `conn` and returns the answer's head (lower-cased), with its body
/// read, so that the connection can carry another request.
fn keep_alive_get(conn: &mut TcpStream, path: &str) -> String {
    use std::io::{Read, Write};
    conn.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    conn.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        let n = conn.read(&mut buf).expect("an answer");
        assert!(n > 0, "closed before answering: {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
        if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&got[..head_end]).to_lowercase();
    let length: usize =
        head.lines().find_map(|l| l.strip_prefix("content-length:")).map_or(0, |v| v.trim().parse().unwrap());
    while got.len() < head_end + length {
        let n = conn.read(&mut buf).unwrap();
        assert!(n > 0, "closed in the body");
        got.extend_from_slice(&buf[..n]);
    }
    head
}

#[test]
fn a_crowded_interface_closes_each_connection_after_its_answer() {
    let root = awkward_tempdir("crowded");
    write_file(root.path(), "a.txt", b"a\n");
    let node = Node::start(NodeOpts::new("crowded", root.path()).arg("--max-connections").arg("16"));

    // Room to spare: a connection is kept for the client's next request.
    let mut conn = TcpStream::connect(node.http).unwrap();
    let head = keep_alive_get(&mut conn, "/fs/a.txt");
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(!head.contains("connection: close"), "closed with room to spare:\n{head}");
    assert!(keep_alive_get(&mut conn, "/fs/a.txt").starts_with("http/1.1 200"), "the same connection serves again");
    drop(conn);

    // Fourteen silent clients and this one leave one slot of sixteen free (less than an
    // eighth): an idle kept connection would hold a slot others wait for, so the answer closes
    // the connection.
    let idle: Vec<TcpStream> = (0..14).map(|_| TcpStream::connect(node.http).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut conn = TcpStream::connect(node.http).unwrap();
    let head = keep_alive_get(&mut conn, "/fs/a.txt");
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("connection: close"), "kept open while crowded:\n{head}");
    drop(idle);
}
