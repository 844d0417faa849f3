//! TLS between real clients and real nodes: HTTPS on the public interface (curl with the test's
//! CA; ranges; large files sent as copies through the encryption, never `sendfile`d past it), a
//! client that never finishes its handshake does not keep others out, SIGHUP reloads the
//! certificate (and a bad one is refused, keeping the old), bad files stop the node at start,
//! FTPS with Python's ftplib (`--ftps-required` refusing a plain login with 534), and peers
//! with `https://` addresses that share a CA, or do not.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use dftp_e2e::ftp::{ftp_addr, with_ftp, Control};
use dftp_e2e::tls::{curl, Ca, Pair};
use dftp_e2e::*;

const WAIT: Duration = Duration::from_secs(60);

fn tls_node(name: &str, root: &Path, pair: &Pair) -> NodeOpts {
    let mut o = NodeOpts::new(name, root);
    for f in pair.flags() {
        o = o.arg(&f);
    }
    o
}

/// The SHA-256 fingerprint of the certificate `addr` serves (Python's `ssl`, trusting `ca`),
/// and that of the certificate in `pem`, as hex.
fn served_fingerprint(addr: std::net::SocketAddr, ca: &Path) -> String {
    python(
        "import hashlib, socket, ssl, sys\n\
         ctx = ssl.create_default_context(cafile=sys.argv[1])\n\
         with socket.create_connection((sys.argv[2], int(sys.argv[3])), timeout=60) as s:\n\
         \x20   with ctx.wrap_socket(s, server_hostname=sys.argv[2]) as t:\n\
         \x20       print(hashlib.sha256(t.getpeercert(binary_form=True)).hexdigest())\n",
        &[ca.to_str().unwrap(), &addr.ip().to_string(), &addr.port().to_string()],
    )
}

fn file_fingerprint(pem: &Path) -> String {
    python(
        "import hashlib, ssl, sys\n\
         print(hashlib.sha256(ssl.PEM_cert_to_DER_cert(open(sys.argv[1]).read())).hexdigest())\n",
        &[pem.to_str().unwrap()],
    )
}

fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new("python3").arg("-c").arg(script).args(args).output().expect("python3 runs");
    assert!(out.status.success(), "python: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn hup(node: &Node) {
    assert!(Command::new("kill").args(["-HUP", &node.pid().to_string()]).status().unwrap().success());
}

// ---- HTTPS --------------------------------------------------------------------------------------

#[test]
fn https_serves_files_and_ranges_and_nothing_in_plain() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "one");
    let pair = ca.issue("node-a");
    let root = awkward_tempdir("tls-a");
    // Large enough that a plain connection would send it with sendfile, in several stand-ins.
    let big = pseudo_random(3 << 20, 7);
    write_file(root.path(), "big.bin", &big);
    write_file(root.path(), "small.txt", b"hello over TLS\n");
    let node = Node::start(tls_node("a", root.path(), &pair));
    assert!(node.url("/").starts_with("https://"));

    let (code, body, err) = curl(&ca.cert(), &[&node.url("/fs/small.txt")]);
    assert_eq!((code, body.as_slice()), (0, &b"hello over TLS\n"[..]), "{err}");
    let (code, body, err) = curl(&ca.cert(), &[&node.url("/fs/big.bin")]);
    assert_eq!(code, 0, "{err}");
    assert!(body == big, "the big file came back different ({} bytes of {})", body.len(), big.len());
    // A range, in the middle of the second MiB.
    let (code, body, err) = curl(&ca.cert(), &["-r", "1500000-1600000", "-D", "-", &node.url("/fs/big.bin")]);
    assert_eq!(code, 0, "{err}");
    let text = String::from_utf8_lossy(&body[..200.min(body.len())]).into_owned();
    assert!(text.starts_with("HTTP/1.1 206"), "{text}");
    let head_end = body.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert!(body[head_end..] == big[1500000..=1600000], "the range's bytes differ");
    // HEAD and a listing work too; every answer carries the usual headers.
    let (code, body, err) = curl(&ca.cert(), &["-I", &node.url("/fs/big.bin")]);
    assert_eq!(code, 0, "{err}");
    let head = String::from_utf8_lossy(&body).to_lowercase();
    assert!(head.contains(&format!("content-length: {}", big.len())), "{head}");
    let (code, body, _) = curl(&ca.cert(), &[&node.url("/fs/?format=json")]);
    assert_eq!(code, 0);
    assert!(String::from_utf8_lossy(&body).contains("\"small.txt\""));

    // A client that does not trust the CA gets no answer; neither does plain HTTP.
    let other = Ca::new(dir.path(), "other");
    let (code, _, err) = curl(&other.cert(), &[&node.url("/fs/small.txt")]);
    assert_ne!(code, 0, "a certificate of another CA was accepted");
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    let plain = try_http("GET", &format!("http://{}/fs/small.txt", node.http), &[], None);
    assert!(plain.is_err() || plain.as_ref().is_ok_and(|r| r.status == 400), "{:?}", plain.map(|r| r.status));
    assert_eq!(dftp_e2e::tls::insecure_status(&node.url("/")), Some(200), "the node still serves");
}

/// With one connection slot, a client that connects and never says a word is cut off when its
/// handshake's time is up, and the next client is served (without the deadline, curl would
/// wait until its own limit and fail).
#[test]
fn a_silent_client_does_not_hold_the_only_slot() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "slot");
    let pair = ca.issue("node");
    let root = tempfile::tempdir().unwrap();
    write_file(root.path(), "f.txt", b"served\n");
    let node = Node::start(tls_node("s", root.path(), &pair).arg("--max-connections=1").arg("--http-threads=1"));
    let silent = std::net::TcpStream::connect(node.http).unwrap();
    // Half a TLS record header, then nothing.
    (&silent).write_all(&[0x16, 0x03]).unwrap();
    let (code, body, err) = curl(&ca.cert(), &[&node.url("/fs/f.txt")]);
    assert_eq!((code, body.as_slice()), (0, &b"served\n"[..]), "{err}");
    drop(silent);
}

#[test]
fn sighup_reloads_the_certificate_and_keeps_it_when_the_new_one_is_bad() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "reload");
    let first = ca.issue("node");
    let first_fp = file_fingerprint(&first.cert);
    let root = tempfile::tempdir().unwrap();
    write_file(root.path(), "f.txt", b"x");
    let node = Node::start(tls_node("r", root.path(), &first));
    assert_eq!(served_fingerprint(node.http, &ca.cert()), first_fp);

    // A new pair in the same files (as certbot's renewal does), then SIGHUP.
    let second = ca.issue("node");
    let second_fp = file_fingerprint(&second.cert);
    assert_ne!(first_fp, second_fp);
    hup(&node);
    wait_until("the reloaded certificate", WAIT, || {
        (served_fingerprint(node.http, &ca.cert()) == second_fp).then_some(())
    });
    assert!(node.log().contains("certificate and key reloaded"), "{}", node.log());

    // A key that does not match (a renewal half done): the reload fails, says why, and the
    // node goes on serving the second certificate.
    let stray = ca.issue("stray");
    std::fs::copy(&stray.key, &second.key).unwrap();
    hup(&node);
    wait_until("the failed reload in the log", WAIT, || node.log().contains("reload failed").then_some(()));
    let log = node.log();
    assert!(log.contains("--tls-key") && log.contains("not the key of the certificate"), "{log}");
    assert_eq!(served_fingerprint(node.http, &ca.cert()), second_fp);
    // Garbage in the certificate file: the same.
    std::fs::write(&second.cert, "not a certificate\n").unwrap();
    hup(&node);
    wait_until("the second failed reload", WAIT, || (node.log().matches("reload failed").count() >= 2).then_some(()));
    assert!(node.log().contains("--tls-cert"), "{}", node.log());
    let (code, body, err) = curl(&ca.cert(), &[&node.url("/fs/f.txt")]);
    assert_eq!((code, body.as_slice()), (0, &b"x"[..]), "{err}");
    assert_eq!(served_fingerprint(node.http, &ca.cert()), second_fp);
}

#[test]
fn bad_tls_files_refuse_to_start_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "bad");
    let good = ca.issue("good");
    let other = ca.issue("other");
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n").unwrap();
    let text = dir.path().join("text.pem");
    std::fs::write(&text, "just some text\n").unwrap();
    let missing = dir.path().join("missing.pem");
    let root = tempfile::tempdir().unwrap();
    let p = |p: &Path| p.to_str().unwrap().to_owned();
    let cases: Vec<(Vec<String>, &str, &str)> = vec![
        (vec!["--tls-cert".into(), p(&garbage), "--tls-key".into(), p(&good.key)], "--tls-cert", "cannot be read"),
        (vec!["--tls-cert".into(), p(&text), "--tls-key".into(), p(&good.key)], "--tls-cert", "no certificate"),
        (vec!["--tls-cert".into(), p(&missing), "--tls-key".into(), p(&good.key)], "--tls-cert", "cannot read it"),
        (vec!["--tls-cert".into(), p(&good.cert), "--tls-key".into(), p(&missing)], "--tls-key", "cannot read it"),
        (vec!["--tls-cert".into(), p(&good.cert), "--tls-key".into(), p(&text)], "--tls-key", "no private key"),
        (vec!["--tls-cert".into(), p(&good.cert), "--tls-key".into(), p(&good.cert)], "--tls-key", "no private key"),
        (
            vec!["--tls-cert".into(), p(&good.cert), "--tls-key".into(), p(&other.key)],
            "--tls-key",
            "not the key of the certificate",
        ),
        (vec!["--tls-cert".into(), p(&good.cert)], "--tls-key", ""),
        (vec!["--tls-key".into(), p(&good.key)], "--tls-cert", ""),
        (vec!["--ftps-required".into()], "--tls-cert", ""),
        (vec!["--tls-mgmt".into()], "--tls-cert", ""),
        (vec!["--tls-ca".into(), p(&text)], "--tls-ca", "no certificate"),
        (vec!["--tls-ca".into(), p(&missing)], "--tls-ca", "cannot read it"),
    ];
    for (flags, flag, why) in cases {
        let mut args = vec!["--dfsroot", root.path().to_str().unwrap(), "--node-name", "x"];
        args.extend(["--http-listen", "127.0.0.1:0", "--http-mgmt-listen", "127.0.0.1:0", "--ftp-listen", ""]);
        args.extend(["--multicast-discovery-addr", ""]);
        args.extend(flags.iter().map(String::as_str));
        let out = run_dftp(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {err}");
        assert!(err.contains(flag) && err.contains(why), "{flags:?}: {err}");
    }
    // The same from the environment.
    let out = Command::new(dftp_bin())
        .args(["--dfsroot", root.path().to_str().unwrap(), "--node-name", "x", "--ftp-listen", ""])
        .args(["--http-listen", "127.0.0.1:0", "--http-mgmt-listen", "127.0.0.1:0", "--multicast-discovery-addr", ""])
        .env("DFTP_TLS_CERT", &garbage)
        .env("DFTP_TLS_KEY", &good.key)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tls-cert"));
}

// ---- FTPS ---------------------------------------------------------------------------------------

const ALICE_PW: &str = "tls-alice-pw";

/// Python's ftplib.FTP_TLS against `addr`: logs in as alice (AUTH TLS first, as FTP_TLS does),
/// protects the data connection (PROT P), stores `up` as /up.bin, reads it back, and reads
/// /readme.txt; prints what it read and the replies it was given.
const FTPLIB: &str = r#"
import ftplib, io, ssl, sys
host, port, ca, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(cafile=ca)
f = ftplib.FTP_TLS(context=ctx, timeout=60)
f.connect(host, port)
print("auth", f.auth().split()[0])
print("login", f.login("alice", pw).split()[0])
print("prot", f.prot_p().split()[0])
payload = bytes(range(256)) * 4096
print("stor", f.storbinary("STOR /up.bin", io.BytesIO(payload)).split()[0])
got = io.BytesIO()
f.retrbinary("RETR /up.bin", got.write)
print("retr-same", got.getvalue() == payload)
got = io.BytesIO()
f.retrbinary("RETR /readme.txt", got.write)
print("readme", got.getvalue().decode().strip())
print("list", any(n.rstrip("/").endswith("up.bin") for n in f.nlst("/")))
f.quit()
"#;

#[test]
fn ftps_with_python_ftplib_stores_and_reads() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "ftps");
    let pair = ca.issue("node");
    let root = tempfile::tempdir().unwrap();
    write_file(root.path(), "readme.txt", b"read me over FTPS\n");
    let node = Node::start(with_ftp(tls_node("f", root.path(), &pair)).arg(&format!("--auth=alice:{ALICE_PW}@/:rw")));
    let addr = ftp_addr(&node);
    let out =
        python(FTPLIB, &[&addr.ip().to_string(), &addr.port().to_string(), ca.cert().to_str().unwrap(), ALICE_PW]);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["auth 234", "login 230", "prot 200", "stor 226", "retr-same True", "readme read me over FTPS", "list True"],
        "{out}"
    );
    assert_eq!(std::fs::read(root.path().join("up.bin")).unwrap(), (0..=255u8).collect::<Vec<_>>().repeat(4096));
    // Without --ftps-required, a plain login still works.
    let mut c = Control::connect(&node);
    assert_eq!(c.cmd("USER alice").code, 331);
    assert_eq!(c.cmd(&format!("PASS {ALICE_PW}")).code, 230);
}

/// `--ftps-required`: alice's plain `USER` is refused with 534 (before any password is sent);
/// anonymous may stay plain; after AUTH TLS, a data connection without PROT P is refused (534)
/// for PASV and EPSV alike, and with PROT P it works.
#[test]
fn ftps_required_refuses_plain_logins_with_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "req");
    let pair = ca.issue("node");
    let root = tempfile::tempdir().unwrap();
    write_file(root.path(), "pub/open.txt", b"open\n");
    write_file(root.path(), "readme.txt", b"read me over FTPS\n");
    let node = Node::start(
        with_ftp(tls_node("q", root.path(), &pair))
            .arg("--ftps-required")
            .arg(&format!("--auth=alice:{ALICE_PW}@/:rw"))
            .arg("--auth=@/pub"),
    );
    let mut c = Control::connect(&node);
    let r = c.cmd("USER alice");
    assert_eq!(r.code, 534, "{r:?}");
    assert!(r.text().contains("TLS"), "{r:?}");
    let mut anon = Control::connect(&node);
    assert_eq!(anon.cmd("USER anonymous").code, 331);
    assert_eq!(anon.cmd("PASS x@example.org").code, 230);
    assert_eq!(anon.cmd("PASV").code, 227, "anonymous may use plain data connections");

    let script = r#"
import ftplib, ssl, sys
host, port, ca, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
f = ftplib.FTP_TLS(context=ssl.create_default_context(cafile=ca), timeout=60)
f.connect(host, port)
f.login("alice", pw)
for cmd in ("PASV", "EPSV"):
    try:
        print(cmd, f.sendcmd(cmd).split()[0])
    except ftplib.error_perm as e:
        print(cmd, str(e).split()[0])
f.prot_p()
print("PASV", f.sendcmd("PASV").split()[0])
f.close()
"#;
    let addr = ftp_addr(&node);
    let out =
        python(script, &[&addr.ip().to_string(), &addr.port().to_string(), ca.cert().to_str().unwrap(), ALICE_PW]);
    assert_eq!(out.lines().collect::<Vec<_>>(), ["PASV 534", "EPSV 534", "PASV 227"], "{out}");
    // And the whole round trip works with TLS.
    let out =
        python(FTPLIB, &[&addr.ip().to_string(), &addr.port().to_string(), ca.cert().to_str().unwrap(), ALICE_PW]);
    assert!(out.contains("retr-same True"), "{out}");
}

// ---- https:// peers -----------------------------------------------------------------------------

/// The cluster table of `node` (its management interface over HTTPS), read with curl.
fn cluster(node: &Node, ca: &Path) -> Value {
    let (code, body, err) = curl(ca, &[&node.mgmt_url("/cluster/")]);
    assert_eq!(code, 0, "{err}");
    serde_json::from_slice(&body).unwrap()
}

/// Two nodes with certificates of one CA, `--tls-ca` that CA and `--tls-mgmt`: they meet over
/// https, advertise https:// addresses, and each serves the other's files (proxied over TLS,
/// ranges too).
#[test]
fn https_peers_that_share_a_ca_serve_each_others_files() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "cluster");
    let (pa, pb) = (ca.issue("a"), ca.issue("b"));
    let (ra, rb) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let big = pseudo_random(2 << 20, 3);
    write_file(ra.path(), "from-a/big.bin", &big);
    write_file(rb.path(), "from-b.txt", b"b's file\n");
    let cafile = ca.cert();
    let with_ca = |o: NodeOpts| o.arg("--tls-ca").arg(cafile.to_str().unwrap()).arg("--tls-mgmt");
    let a = Node::start(with_ca(tls_node("a", ra.path(), &pa)));
    let b = Node::start(with_ca(tls_node("b", rb.path(), &pb)).join(&format!("https://{}", a.mgmt)));
    assert!(a.mgmt_url("/").starts_with("https://"));
    wait_until("b's file listed by a", WAIT, || {
        let (code, body, _) = curl(&cafile, &[&a.url("/find/")]);
        (code == 0 && String::from_utf8_lossy(&body).contains("/from-b.txt")).then_some(())
    });
    let table = cluster(&b, &cafile);
    assert_eq!(table["Me"]["PublicAddr"], format!("https://{}", b.http));
    assert_eq!(table["Peers"]["a"]["PublicAddr"], format!("https://{}", a.http));
    assert_eq!(table["Peers"]["a"]["MgmtAddr"], format!("https://{}", a.mgmt));

    let (code, body, err) = curl(&cafile, &[&a.url("/fs/from-b.txt")]);
    assert_eq!((code, body.as_slice()), (0, &b"b's file\n"[..]), "{err}");
    wait_until("a's file listed by b", WAIT, || {
        let (code, body, _) = curl(&cafile, &[&b.url("/find/")]);
        (code == 0 && String::from_utf8_lossy(&body).contains("/from-a/big.bin")).then_some(())
    });
    let (code, body, err) = curl(&cafile, &["-D", "-", &b.url("/fs/from-a/big.bin")]);
    assert_eq!(code, 0, "{err}");
    let head_end = body.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert!(String::from_utf8_lossy(&body[..head_end]).to_lowercase().contains("x-dftp-owner: a"));
    assert!(body[head_end..] == big, "the proxied file differs");
    let (code, body, err) = curl(&cafile, &["-r", "1048570-1048600", &b.url("/fs/from-a/big.bin")]);
    assert_eq!(code, 0, "{err}");
    assert!(body == big[1048570..=1048600], "the proxied range differs");
}

/// A node whose `--tls-ca` is another CA does not accept the peer: it never joins, logs that
/// the certificate is not trusted, and serves none of the peer's files.
#[test]
fn a_node_with_the_wrong_ca_does_not_accept_the_peer() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, wrong) = (Ca::new(dir.path(), "right"), Ca::new(dir.path(), "wrong"));
    let (pa, pc) = (ca.issue("a"), wrong.issue("c"));
    let (ra, rc) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_file(ra.path(), "a-only.txt", b"a\n");
    write_file(rc.path(), "c-only.txt", b"c\n");
    let a =
        Node::start(tls_node("a", ra.path(), &pa).arg("--tls-ca").arg(ca.cert().to_str().unwrap()).arg("--tls-mgmt"));
    // c trusts only the wrong CA, so a's certificate does not verify.
    let c = Node::start(
        tls_node("c", rc.path(), &pc)
            .arg("--tls-ca")
            .arg(wrong.cert().to_str().unwrap())
            .arg("--tls-mgmt")
            .join(&format!("https://{}", a.mgmt)),
    );
    wait_until("c's reason in its log", WAIT, || {
        let log = c.log();
        (log.contains(&a.mgmt.to_string()) && log.contains("UnknownIssuer")).then_some(())
    });
    let log = c.log();
    let line = log.lines().find(|l| l.contains("UnknownIssuer")).unwrap();
    assert!(line.contains("invalid peer certificate"), "{line}");
    assert!(cluster(&c, &wrong.cert())["Peers"].as_object().is_none_or(|p| p.is_empty()));
    let (code, _, _) = curl(&wrong.cert(), &["-o", "/dev/null", "-w", "%{http_code}", &c.url("/fs/a-only.txt")]);
    assert_eq!(code, 0);
    let (_, status, _) = curl(&wrong.cert(), &["-o", "/dev/null", "-w", "%{http_code}", &c.url("/fs/a-only.txt")]);
    assert_eq!(String::from_utf8_lossy(&status), "404");
    // Nor does a take c's files: c's greetings reach it only as far as the handshake, which c
    // breaks off, so a never hears c's name.
    let (_, status, _) = curl(&ca.cert(), &["-o", "/dev/null", "-w", "%{http_code}", &a.url("/fs/c-only.txt")]);
    assert_eq!(String::from_utf8_lossy(&status), "404");
}

/// Hostile FTPS clients: garbage instead of a handshake on a protected data connection fails
/// that transfer (a 4xx/5xx reply; the session goes on and the next transfer works, where
/// libunftp's data channel used to panic), and a client that sends `AUTH TLS` and then nothing
/// is disconnected when the handshake's time is up.
#[test]
fn ftps_survives_bad_handshakes() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "hostile");
    let pair = ca.issue("node");
    let root = tempfile::tempdir().unwrap();
    write_file(root.path(), "readme.txt", b"read me over FTPS\n");
    let node = Node::start(with_ftp(tls_node("h", root.path(), &pair)).arg(&format!("--auth=alice:{ALICE_PW}@/:rw")));
    let script = r#"
import ftplib, io, socket, ssl, sys
host, port, ca, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
f = ftplib.FTP_TLS(context=ssl.create_default_context(cafile=ca), timeout=60)
f.connect(host, port)
f.login("alice", pw)
f.prot_p()
# A data connection that answers the server's TLS with garbage.
data = socket.create_connection(f.makepasv(), timeout=60)
f.putcmd("RETR /readme.txt")
print("retr", f.getresp().split()[0])
data.sendall(b"this is not TLS\r\n" * 64)
try:
    while data.recv(4096):
        pass
except OSError:
    pass
data.close()
try:
    print("end", f.getresp().split()[0][0])
except ftplib.Error as e:
    print("end", str(e).split()[0][0])
print("noop", f.voidcmd("NOOP").split()[0])
got = io.BytesIO()
f.retrbinary("RETR /readme.txt", got.write)
print("again", got.getvalue().decode().strip())
f.quit()
# AUTH TLS, then silence: the server hangs up (EOF) when the handshake's time is up.
s = socket.create_connection((host, port), timeout=60)
r = s.makefile("rb")
r.readline()
s.sendall(b"AUTH TLS\r\n")
print("auth", r.readline().split()[0].decode())
print("silent-closed", r.read() == b"")
"#;
    let addr = ftp_addr(&node);
    let out =
        python(script, &[&addr.ip().to_string(), &addr.port().to_string(), ca.cert().to_str().unwrap(), ALICE_PW]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "retr 150", "{out}");
    assert!(lines[1] == "end 4" || lines[1] == "end 5", "{out}");
    assert_eq!(lines[2..], ["noop 200", "again read me over FTPS", "auth 234", "silent-closed True"], "{out}");
    assert!(!node.log().contains("panicked"), "{}", node.log());
}
