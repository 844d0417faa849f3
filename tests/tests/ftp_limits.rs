//! FTP under abuse (issue 14): at most `--ftp-max-sessions` sessions (the next client gets 421
//! and the open sessions go on), a control line longer than the limit ends its session instead
//! of growing the node's memory, one passive listener per session (a new PASV/EPSV closes the
//! previous one), and a passive data connection taken only from the control connection's
//! address.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use dftp_e2e::ftp::*;
use dftp_e2e::*;

fn node(extra: &[&str]) -> (tempfile::TempDir, Node) {
    let root = awkward_tempdir("ftp-limits");
    write_file(root.path(), "a.txt", b"hello over FTP");
    let mut opts = with_ftp(NodeOpts::new("solo", root.path()));
    for a in extra {
        opts = opts.arg(a);
    }
    (root, Node::start(opts))
}

/// Everything the server sends on `s` until it closes (or 10 s of silence).
fn read_to_close(mut s: TcpStream) -> String {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    String::from_utf8_lossy(&got).into_owned()
}

fn epsv_port(c: &mut Control) -> u16 {
    let r = c.cmd("EPSV");
    assert_eq!(r.code, 229, "{r:?}");
    r.text().split("(|||").nth(1).and_then(|x| x.split('|').next()).and_then(|p| p.parse().ok()).unwrap()
}

#[test]
fn sessions_beyond_the_limit_get_421_and_the_open_ones_go_on() {
    let (_root, node) = node(&["--ftp-max-sessions=3"]);
    let mut open: Vec<Control> = (0..3).map(|_| Control::login(&node)).collect();
    let extra = TcpStream::connect(ftp_addr(&node)).unwrap();
    let said = read_to_close(extra);
    assert!(said.starts_with("421 "), "the fourth client is told why: {said:?}");
    for c in &mut open {
        c.assert_nothing_pending("a refused fourth session");
    }
    // A session that ends makes room.
    assert_eq!(open.pop().unwrap().cmd("QUIT").code, 221);
    wait_until("a session after one closed", WAIT, || {
        let s = TcpStream::connect(ftp_addr(&node)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let mut first = [0u8; 3];
        (&s).read_exact(&mut first).ok()?;
        (&first == b"220").then_some(())
    });
    assert!(node.log().contains("--ftp-max-sessions"), "the log names the limit");
}

#[test]
fn a_control_line_over_the_limit_ends_the_session() {
    let (_root, mut node) = node(&[]);
    // No newline at all: the node must stop reading, not buffer 64 MiB.
    let mut c = Control::login(&node);
    let mut raw = TcpStream::connect(ftp_addr(&node)).unwrap();
    raw.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    let chunk = vec![b'A'; 1 << 20];
    let mut sent = 0;
    for _ in 0..64 {
        match raw.write_all(&chunk) {
            Ok(()) => sent += chunk.len(),
            Err(_) => break, // closed by the node: what we want
        }
    }
    assert!(sent < 64 << 20, "the node read a 64 MiB line without ending the session");
    let said = read_to_close(raw);
    assert!(said.contains("500 Command line too long"), "{said:?}");
    // A long line with its newline: refused the same way.
    let mut raw = TcpStream::connect(ftp_addr(&node)).unwrap();
    let mut line = b"CWD ".to_vec();
    line.extend(std::iter::repeat_n(b'x', 10_000));
    line.extend_from_slice(b"\r\n");
    raw.write_all(&line).unwrap();
    let said = read_to_close(raw);
    assert!(said.starts_with("220") && said.contains("500 Command line too long"), "{said:?}");
    // A path of 4,000 bytes is still fine, and the node serves on.
    let long_ok = format!("CWD /{}", "d".repeat(4000));
    assert_eq!(c.cmd(&long_ok).code, 550, "a long but legal line gets an answer about the path");
    c.assert_nothing_pending("the long lines of other sessions");
    assert!(node.is_up());
}

#[test]
fn a_new_passive_command_closes_the_previous_listener() {
    let (_root, node) = node(&[]);
    let mut c = Control::login(&node);
    let ip = ftp_addr(&node).ip();
    let first = epsv_port(&mut c);
    let second = epsv_port(&mut c);
    assert_ne!(first, second);
    wait_until("the first passive port closed", WAIT, || {
        TcpStream::connect_timeout(&SocketAddr::new(ip, first), Duration::from_secs(2)).is_err().then_some(())
    });
    // The second one works.
    let data = TcpStream::connect(SocketAddr::new(ip, second)).unwrap();
    c.send("RETR a.txt");
    assert_eq!(c.reply().code, 150);
    assert_eq!(read_all(data), b"hello over FTP");
    assert_eq!(c.reply().code, 226);
    // Many PASVs in a row hold one port, not many: the last one is the only one open.
    let ports: Vec<u16> = (0..20).map(|_| epsv_port(&mut c)).collect();
    wait_until("every passive port but the last closed", WAIT, || {
        let open = ports
            .iter()
            .filter(|p| TcpStream::connect_timeout(&SocketAddr::new(ip, **p), Duration::from_secs(2)).is_ok())
            .count();
        (open <= 1).then_some(())
    });
}

#[test]
fn a_data_connection_from_another_address_gets_nothing() {
    let (_root, node) = node(&[]);
    let mut c = Control::login(&node);
    let addr = ftp_addr(&node);
    assert_eq!(addr.ip().to_string(), "127.0.0.1", "the test connects from 127.0.0.2 to the node on 127.0.0.1");
    let port = epsv_port(&mut c);
    // A third party on another address connects first: it gets nothing, and the port stays
    // the client's.
    let mut thief = connect_from([127, 0, 0, 2], SocketAddr::new(addr.ip(), port)).expect("connect from 127.0.0.2");
    thief.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut stolen = Vec::new();
    let _ = thief.read_to_end(&mut stolen);
    assert!(stolen.is_empty(), "the other address got {} bytes", stolen.len());
    let data = TcpStream::connect(SocketAddr::new(addr.ip(), port)).expect("the client still connects");
    c.send("RETR a.txt");
    assert_eq!(c.reply().code, 150);
    assert_eq!(read_all(data), b"hello over FTP");
    assert_eq!(c.reply().code, 226);
    c.assert_nothing_pending("a stolen data connection");
}
