//! Accounts and per-path permissions (`--auth`, `--auth-file`), end to end, as users and
//! attackers meet them:
//! - without rules, today's behaviour: everyone reads, nobody writes;
//! - over HTTP (ureq and curl): anonymous refusals are `401` with the Basic challenge, a user's
//!   are `403`; wrong passwords and unknown users look the same; bcrypt (as `htpasswd -B`
//!   writes it), SHA-512 crypt (as `mkpasswd` writes it) and clear passwords all log in;
//!   listings and `/find/` show a partial reader only what it may read;
//! - over FTP (suppaftp and a raw control connection): `530` for a refused login, `550` for a
//!   refused path, anonymous sessions by the anonymous rule;
//! - a bad rule stops the node before the scan, with status 2 and the flag named;
//! - a request passed on to the owner of a file is checked again by the owner's own rules;
//! - no password reaches a log, even with every log level on.
//!
//! The hashes are made here with the crates the node checks them with, so the test needs no
//! `htpasswd` or `mkpasswd` installed.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use dftp_e2e::ftp::{read_all, with_ftp, Control};
use dftp_e2e::{
    dftp_bin, free_port, http, raw_request, raw_status, run_dftp, try_http, wait_until, write_file, Node, NodeOpts,
    Resp, WAIT,
};
use sha_crypt::PasswordHasher;
use suppaftp::types::FileType;
use suppaftp::{FtpError, FtpStream};

const ALICE_PW: &str = "alice's pass@word";
const BOB_PW: &str = "bob-Sha512-pw";
const CAROL_PW: &str = "open sesame: carol";
/// The challenge every `401` carries.
const CHALLENGE: &str = "Basic realm=\"dftp\"";

/// A bcrypt hash as `htpasswd -nbB` writes it (`$2y$`), at the cheapest cost.
fn bcrypt_hash(password: &str) -> String {
    bcrypt::hash_with_salt(password, 4, *b"dftp-e2e-salt-16").unwrap().format_for_version(bcrypt::Version::TwoY)
}

/// A SHA-512 crypt hash as `mkpasswd -m sha-512` writes it.
fn sha512_hash(password: &str) -> String {
    sha_crypt::ShaCrypt::default().hash_password_with_salt(password.as_bytes(), b"e2eSaltE2ESalt").unwrap().to_string()
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

fn get_as(node: &Node, path: &str, login: Option<(&str, &str)>) -> Resp {
    let auth = login.map(|(u, p)| basic(u, p));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    http("GET", &node.url(path), &headers, None)
}

/// A request of any method (the HTTP client refuses WebDAV's), sent as it is; the status and
/// the `WWW-Authenticate` header of the answer.
fn request(
    node: &Node,
    method: &str,
    path: &str,
    login: Option<(&str, &str)>,
    extra: &[(&str, &str)],
) -> (u16, Option<String>, String) {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n", node.http);
    if let Some((u, p)) = login {
        req.push_str(&format!("Authorization: {}\r\n", basic(u, p)));
    }
    for (k, v) in extra {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if method == "PUT" {
        req.push_str("Content-Length: 0\r\n");
    }
    req.push_str("\r\n");
    let resp = raw_request(node.http, req.as_bytes());
    let text = String::from_utf8_lossy(&resp).into_owned();
    let challenge = text
        .split("\r\n\r\n")
        .next()
        .unwrap_or("")
        .lines()
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("www-authenticate")))
        .map(|(_, v)| v.trim().to_string());
    (raw_status(&resp), challenge, text)
}

/// Asserts an anonymous refusal: `401` with the challenge.
fn assert_401(r: &Resp, what: &str) {
    assert_eq!(r.status, 401, "{what}: {}", r.text());
    assert_eq!(r.header("www-authenticate"), Some(CHALLENGE), "{what}");
}

/// Asserts a logged-in user's refusal: `403`, no challenge (logging in again would not help).
fn assert_403(r: &Resp, what: &str) {
    assert_eq!(r.status, 403, "{what}: {}", r.text());
    assert_eq!(r.header("www-authenticate"), None, "{what}");
}

/// The names of a JSON listing, as `login` sees it.
fn names(node: &Node, dir: &str, login: Option<(&str, &str)>) -> Vec<String> {
    let r = get_as(node, &format!("{dir}?format=json"), login);
    assert_eq!(r.status, 200, "listing {dir}: {}", r.text());
    r.json()["entries"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap().to_string()).collect()
}

/// The tree every test serves: something for everyone, and a secret for a few.
fn lay_out(root: &Path) {
    for (rel, content) in [
        ("pub/readme.txt", "for everyone\n"),
        ("home/alice/a.txt", "alice's file\n"),
        ("home/bob/b.txt", "bob's file\n"),
        ("shared/s.txt", "shared file\n"),
        ("secret/x.txt", "the secret\n"),
    ] {
        write_file(root, rel, content.as_bytes());
    }
}

/// The rules of the main node, as a file with comments, and carol's rule as a flag.
fn rules_file(dir: &Path) -> std::path::PathBuf {
    let file = dir.join("dftp rules");
    let text = format!(
        "# Who may do what on this node.\n\
         \n\
         @/pub\n\
         \x20 # alice: bcrypt, from htpasswd -nbB\n\
         alice:{}@/home/alice:rw,/shared\n\
         bob:{}@/home/bob\n",
        bcrypt_hash(ALICE_PW),
        sha512_hash(BOB_PW)
    );
    std::fs::write(&file, text).unwrap();
    file
}

fn start_with_rules(name: &str, root: &Path, rules_dir: &Path) -> Node {
    let file = rules_file(rules_dir);
    Node::start(with_ftp(
        NodeOpts::new(name, root)
            .arg(&format!("--auth-file={}", file.display()))
            .arg(&format!("--auth=carol:{CAROL_PW}@/:rw"))
            .arg("--auth=dave:davepw@/secret/x.txt/inner"),
    ))
}

fn assert_no_password_in(log: &str, what: &str) {
    let passwords = [ALICE_PW, BOB_PW, CAROL_PW, "n0t-the-pa55word", "evepw", "alicepw"];
    for p in passwords {
        assert!(!log.contains(p), "{what}'s log holds the password {p:?}:\n{log}");
    }
    // Nor as the Basic credentials that carried it.
    for (u, p) in [("alice", ALICE_PW), ("bob", BOB_PW), ("carol", CAROL_PW), ("alice", "alicepw")] {
        let token = basic(u, p);
        assert!(!log.contains(&token["Basic ".len()..]), "{what}'s log holds {u}'s Basic credentials");
    }
}

// ---- no rules ------------------------------------------------------------------------------------

#[test]
fn without_rules_everyone_reads_and_nobody_writes() {
    let root = tempfile::tempdir().unwrap();
    lay_out(root.path());
    let node = Node::start(with_ftp(NodeOpts::new("open", root.path())));
    let r = node.get("/fs/secret/x.txt");
    assert_eq!((r.status, r.text().as_str()), (200, "the secret\n"));
    // Credentials mean nothing where there are no accounts: not even wrong ones are refused.
    let r = get_as(&node, "/fs/secret/x.txt", Some(("nobody", "nothing")));
    assert_eq!(r.status, 200);
    assert!(node.find().contains("/secret/x.txt\n"));
    assert_eq!(names(&node, "/fs/", None), ["home", "pub", "secret", "shared"]);
    for method in ["PUT", "DELETE", "MKCOL"] {
        let (status, challenge, text) = request(&node, method, "/fs/pub/new.txt", None, &[]);
        assert_eq!((status, challenge), (403, None), "{method}: {text}");
        assert!(text.contains("--auth"), "{method}: the refusal says why: {text}");
    }

    // FTP: any login is an anonymous session that reads everything and writes nothing.
    let mut c = Control::connect(&node);
    assert_eq!(c.cmd("USER whoever").code, 331);
    assert_eq!(c.cmd("PASS whatever").code, 230);
    let data = c.passive();
    assert_eq!(c.cmd("RETR /secret/x.txt").code, 150);
    assert_eq!(read_all(data), b"the secret\n");
    assert_eq!(c.reply().code, 226);
    let r = c.cmd("STOR /pub/new.txt");
    assert_eq!(r.code, 550, "{r:?}");
    assert!(r.text().contains("read-only"), "{r:?}");
    assert!(!root.path().join("pub/new.txt").exists());
}

// ---- HTTP ----------------------------------------------------------------------------------------

#[test]
fn http_by_the_rules() {
    let (root, rules) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    lay_out(root.path());
    let node = start_with_rules("ruled", root.path(), rules.path());
    let (alice, bob, carol) = (Some(("alice", ALICE_PW)), Some(("bob", BOB_PW)), Some(("carol", CAROL_PW)));

    // Anonymous clients: /pub, and nothing else, whether it exists or not.
    assert_eq!(node.get("/fs/pub/readme.txt").text(), "for everyone\n");
    for path in ["/fs/secret/x.txt", "/fs/home/alice/a.txt", "/fs/secret/nothing.txt", "/fs/secret/", "/fs/home/"] {
        assert_401(&node.get(path), path);
    }
    // What is there and what is not are refused alike.
    let hidden = node.get("/fs/secret/x.txt").text();
    assert_eq!(node.get("/fs/secret/nothing.txt").text().replace("nothing.txt", "x.txt"), hidden);
    assert_eq!(names(&node, "/fs/", None), ["pub"], "the root shows anonymous clients the way to /pub only");
    assert_eq!(node.find(), "/pub\n/pub/readme.txt\n");
    assert_eq!(node.get("/").status, 200, "the greeting is for everyone");

    // Each kind of password logs in: bcrypt, SHA-512 crypt, clear text (through curl -u too).
    assert_eq!(get_as(&node, "/fs/home/alice/a.txt", alice).text(), "alice's file\n");
    assert_eq!(get_as(&node, "/fs/home/bob/b.txt", bob).text(), "bob's file\n");
    assert_eq!(get_as(&node, "/fs/secret/x.txt", carol).text(), "the secret\n");
    match Command::new("curl").args(["-s", "-u", &format!("alice:{ALICE_PW}"), &node.url("/fs/shared/s.txt")]).output()
    {
        Ok(curl) => assert_eq!(String::from_utf8_lossy(&curl.stdout), "shared file\n"),
        Err(e) => eprintln!("skipping the curl check: no curl ({e})"),
    }

    // Wrong credentials are refused, with the challenge, and an unknown user looks the same;
    // even where anonymous clients may read.
    let wrong = get_as(&node, "/fs/pub/readme.txt", Some(("alice", "n0t-the-pa55word")));
    assert_401(&wrong, "a wrong password");
    let unknown = get_as(&node, "/fs/pub/readme.txt", Some(("mallory", "n0t-the-pa55word")));
    assert_401(&unknown, "an unknown user");
    assert_eq!(wrong.text(), unknown.text());
    let start = Instant::now();
    assert_401(&get_as(&node, "/fs/home/bob/b.txt", Some(("bob", "n0t-the-pa55word"))), "bob, wrong");
    assert!(start.elapsed() >= Duration::from_secs(1), "a failed login costs the client a second");
    let bearer = http("GET", &node.url("/fs/pub/readme.txt"), &[("Authorization", "Bearer abc")], None);
    assert_401(&bearer, "another scheme");

    // A user refused a path: 403, without a challenge.
    for (login, path) in [(alice, "/fs/home/bob/b.txt"), (alice, "/fs/secret/x.txt"), (bob, "/fs/shared/s.txt")] {
        let r = get_as(&node, path, login);
        assert_403(&r, path);
    }
    // A user has what anonymous clients have.
    assert_eq!(get_as(&node, "/fs/pub/readme.txt", bob).status, 200);

    // A partial reader sees the way to its grants and what it may read, nothing else.
    assert_eq!(names(&node, "/fs/", alice), ["home", "pub", "shared"]);
    assert_eq!(names(&node, "/fs/home/", alice), ["alice"]);
    assert_eq!(names(&node, "/fs/home/", bob), ["bob"]);
    assert_eq!(names(&node, "/fs/", carol), ["home", "pub", "secret", "shared"]);
    let html = get_as(&node, "/fs/home/", alice).text();
    assert!(html.contains("alice/") && !html.contains("bob"), "{html}");
    let find = get_as(&node, "/find/", alice).text();
    assert_eq!(find, "/home/alice\n/home/alice/a.txt\n/pub\n/pub/readme.txt\n/shared\n/shared/s.txt\n");
    // dave's grant lies below a file: the file is on his way, to be listed, not read.
    let dave = Some(("dave", "davepw"));
    assert_eq!(names(&node, "/fs/secret/", dave), ["x.txt"]);
    assert_403(&get_as(&node, "/fs/secret/x.txt", dave), "a file on the way to a grant");
    assert_eq!(get_as(&node, "/fs/home", alice).status, 301, "a directory on the way is still a directory");

    // Writes: what a method needs follows from the method; what the rules refuse changes nothing.
    for (method, path, login, extra, want) in [
        ("PUT", "/fs/pub/new.txt", None, &[][..], 401),
        ("PUT", "/fs/shared/new.txt", alice, &[], 403),
        ("DELETE", "/fs/home/bob/b.txt", alice, &[], 403),
        ("MKCOL", "/fs/home/new/", bob, &[], 403),
        ("MOVE", "/fs/home/alice/a.txt", alice, &[("Destination", "/fs/shared/a.txt")], 403),
        ("COPY", "/fs/shared/s.txt", alice, &[("Destination", "/fs/pub/s.txt")], 403),
        ("MOVE", "/fs/home/alice/a.txt", alice, &[("Destination", "/elsewhere/a.txt")], 400),
        ("MOVE", "/fs/home/alice/a.txt", alice, &[], 400),
    ] {
        let (status, challenge, text) = request(&node, method, path, login, extra);
        assert_eq!(status, want, "{method} {path} as {login:?}: {text}");
        assert_eq!(challenge.is_some(), want == 401, "{method} {path} as {login:?}: {text}");
    }
    assert!(!root.path().join("pub/new.txt").exists() && !root.path().join("shared/new.txt").exists());
    assert!(root.path().join("home/bob/b.txt").exists() && root.path().join("home/alice/a.txt").exists());
    assert!(!root.path().join("home/new").exists() && !root.path().join("pub/s.txt").exists());
    // What the rules allow is done.
    let here = format!("http://{}/fs/home/alice/s.txt", node.http);
    for (method, path, extra, want) in [
        ("PUT", "/fs/home/alice/new.txt", &[][..], 201),
        ("PUT", "/fs/home/alice/new.txt", &[], 204),
        ("COPY", "/fs/shared/s.txt", &[("Destination", here.as_str())], 201),
        // A destination on another server is not ours to write.
        ("COPY", "/fs/shared/s.txt", &[("Destination", "http://any.host/fs/home/alice/t.txt")], 502),
    ] {
        let (status, _, text) = request(&node, method, path, alice, extra);
        assert_eq!(status, want, "{method} {path} as alice: {text}");
    }
    assert_eq!(std::fs::read(root.path().join("home/alice/new.txt")).unwrap(), b"");
    assert_eq!(std::fs::read(root.path().join("home/alice/s.txt")).unwrap(), b"shared file\n");
    assert!(!root.path().join("home/alice/t.txt").exists());

    assert_no_password_in(&node.log(), "the node");
}

// ---- bad rules -----------------------------------------------------------------------------------

#[test]
fn a_bad_rule_stops_the_node_before_the_scan() {
    let root = tempfile::tempdir().unwrap();
    let rules = tempfile::tempdir().unwrap();
    let file = rules.path().join("rules");
    std::fs::write(&file, "# fine so far\n@/pub\n\nalice:SECRET-PW@/home/alice:wr\n").unwrap();
    let file = file.to_str().unwrap();
    let root = root.path().to_str().unwrap();
    let dup = rules.path().join("dup");
    std::fs::write(&dup, "alice:SECRET-PW@/a\n").unwrap();
    let dup = dup.to_str().unwrap();
    let auth_file = format!("--auth-file={file}");
    let dup_file = format!("--auth-file={dup}");
    for (args, wanted) in [
        (vec!["--auth", "alice:SECRET-PW@/a:xy"], vec!["--auth: rule 1, column 19", "unknown access `:xy`"]),
        (vec!["--auth", "@/pub", "--auth", "SECRET-PW@/a"], vec!["--auth: rule 2", "no password"]),
        (vec!["--auth", "alice:$apr1$SECRET-PW@/a"], vec!["--auth: rule 1", "htpasswd -nbB"]),
        (vec![&auth_file], vec!["--auth-file: ", file, "line 4, column 28", "unknown access `:wr`"]),
        (vec!["--auth", "alice:x@/b", &dup_file], vec!["--auth-file: ", "line 1", "a second rule for user alice"]),
        (vec!["--auth-file", "/nonexistent/dftp-rules"], vec!["--auth-file: cannot read /nonexistent/dftp-rules"]),
    ] {
        let mut argv = vec!["--dfsroot", root, "--node-name", "n", "--multicast-discovery-addr", ""];
        argv.extend(["--http-listen", "127.0.0.1:0", "--http-mgmt-listen", "127.0.0.1:0", "--ftp-listen", ""]);
        argv.extend(args.iter().copied());
        let out = run_dftp(&argv);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}:\n{err}");
        for w in wanted {
            assert!(err.contains(w), "{args:?}: {w:?} missing from:\n{err}");
        }
        assert!(!err.contains("SECRET-PW"), "{args:?}: the password is shown:\n{err}");
        assert!(!err.contains("scan"), "{args:?} scanned the tree first:\n{err}");
    }
}

// ---- FTP -----------------------------------------------------------------------------------------

fn ftp_login(node: &Node, user: &str, password: &str) -> Result<FtpStream, FtpError> {
    let addr = dftp_e2e::ftp::ftp_addr(node);
    let control = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(10)).unwrap();
    control.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut ftp = FtpStream::connect_with_stream(control)?;
    ftp.login(user, password)?;
    ftp.transfer_type(FileType::Binary)?;
    Ok(ftp)
}

/// The reply code of a refused command.
fn code<T: std::fmt::Debug>(r: Result<T, FtpError>) -> u32 {
    match r {
        Err(FtpError::UnexpectedResponse(resp)) => resp.status.code(),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn ftp_by_the_rules() {
    let (root, rules) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    lay_out(root.path());
    let node = start_with_rules("ruled-ftp", root.path(), rules.path());

    // Refused logins: 530, the same for a wrong password and an unknown user.
    for (user, password) in [("alice", "n0t-the-pa55word"), ("mallory", "n0t-the-pa55word"), ("bob", "")] {
        let mut c = Control::connect(&node);
        assert_eq!(c.cmd(&format!("USER {user}")).code, 331);
        let r = c.cmd(&format!("PASS {password}"));
        assert_eq!(r.code, 530, "{user}: {r:?}");
        assert_eq!(c.cmd("PWD").code, 530, "{user} is not logged in");
    }

    // alice (bcrypt) reads what the rules give her, sees the way to it, and nothing else.
    let mut ftp = ftp_login(&node, "alice", ALICE_PW).expect("alice logs in");
    let list = |ftp: &mut FtpStream, dir: &str| -> Vec<String> {
        let mut names = ftp.nlst(Some(dir)).unwrap_or_else(|e| panic!("NLST {dir}: {e}"));
        names.sort();
        names
    };
    assert_eq!(list(&mut ftp, "/"), ["home", "pub", "shared"]);
    assert_eq!(list(&mut ftp, "/home"), ["alice"]);
    let a = ftp.retr_as_buffer("/home/alice/a.txt").unwrap().into_inner();
    assert_eq!(a, b"alice's file\n");
    ftp.cwd("/home").expect("the way to a grant can be entered");
    let mlsd = ftp.mlsd(None).unwrap();
    assert!(mlsd.len() == 1 && mlsd[0].ends_with(" alice"), "{mlsd:?}");
    for (what, got) in [
        ("RETR", code(ftp.retr_as_buffer("/home/bob/b.txt"))),
        ("SIZE", code(ftp.size("/secret/x.txt"))),
        ("MDTM", code(ftp.mdtm("/secret/x.txt"))),
        ("NLST", code(ftp.nlst(Some("/secret")))),
        ("LIST", code(ftp.list(Some("/home/bob")))),
        ("MLSD", code(ftp.mlsd(Some("/secret")))),
        ("CWD", code(ftp.cwd("/secret"))),
        ("RETR of nothing", code(ftp.retr_as_buffer("/secret/no such file"))),
    ] {
        assert_eq!(got, 550, "{what}");
    }
    let _ = ftp.quit();

    // The reasons, over a raw control connection: a refused read, a refused write, and
    // writes the rules allow, which go through (ftp_writes.rs has them in full).
    let mut c = Control::connect(&node);
    assert_eq!(c.cmd("USER bob").code, 331);
    assert_eq!(c.cmd(&format!("PASS {BOB_PW}")).code, 230, "bob (SHA-512 crypt) logs in");
    for (cmd, reason) in [
        ("RETR /home/alice/a.txt", "permission denied: bob may not read /home/alice/a.txt"),
        ("MLST /secret", "permission denied: bob may not read /secret"),
        ("STAT /secret", "permission denied: bob may not read /secret"),
        ("SIZE /shared/s.txt", "permission denied: bob may not read /shared/s.txt"),
        ("STOR /home/bob/new.txt", "permission denied: bob may not change /home/bob/new.txt"),
        ("DELE /pub/readme.txt", "permission denied: bob may not change /pub/readme.txt"),
    ] {
        let r = c.cmd(cmd);
        assert_eq!((r.code, r.text().as_str()), (550, reason), "{cmd}");
        c.assert_nothing_pending(cmd);
    }
    let mut c = Control::connect(&node);
    assert_eq!(c.cmd("USER carol").code, 331);
    assert_eq!(c.cmd(&format!("PASS {CAROL_PW}")).code, 230, "carol (clear text) logs in");
    let r = c.cmd("MKD /newdir");
    assert_eq!((r.code, r.text().as_str()), (257, "\"/newdir\" created"));
    assert!(root.path().join("newdir").is_dir());
    assert_eq!(c.cmd("RMD /newdir").code, 250);
    assert!(!root.path().join("newdir").exists());

    // Anonymous sessions have the anonymous rule.
    let mut anon = ftp_login(&node, "anonymous", "me@example.org").expect("anonymous logs in");
    assert_eq!(list(&mut anon, "/"), ["pub"]);
    assert_eq!(anon.retr_as_buffer("/pub/readme.txt").unwrap().into_inner(), b"for everyone\n");
    assert_eq!(code(anon.retr_as_buffer("/home/alice/a.txt")), 550);

    assert_no_password_in(&node.log(), "the node");
}

// ---- forwarded requests --------------------------------------------------------------------------

/// alpha lets anyone read and knows alice and eve; beta, which owns `/team`, lets only alice
/// in. A request through alpha for beta's file is checked by beta again.
#[test]
fn the_owner_checks_forwarded_requests_again() {
    let (a_root, b_root) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_file(a_root.path(), "team/from-alpha.txt", b"alpha's\n");
    write_file(b_root.path(), "team/from-beta.txt", b"beta's\n");
    let alpha = Node::start(
        with_ftp(NodeOpts::new("alpha", a_root.path()))
            .arg("--auth=@/")
            .arg("--auth=alice:alicepw@/")
            .arg(&format!("--auth=eve:{}@/", bcrypt_hash("evepw"))),
    );
    let beta = Node::start(
        with_ftp(NodeOpts::new("beta", b_root.path()).join(&alpha.mgmt_addr()))
            .arg(&format!("--auth=alice:{}@/", sha512_hash("alicepw"))),
    );
    wait_until("alpha to list beta's file", WAIT, || alpha.find().contains("/team/from-beta.txt\n").then_some(()));
    let alice = Some(("alice", "alicepw"));

    // Anonymous: alpha would allow it, beta, the owner, does not; its challenge comes back.
    assert_eq!(alpha.get("/fs/team/from-alpha.txt").text(), "alpha's\n");
    assert_401(&alpha.get("/fs/team/from-beta.txt"), "beta's file through alpha");
    // A request that says it comes from a peer is checked all the same.
    assert_401(&beta.get("/fs/team/from-beta.txt?redirN=1"), "a request posing as a peer's");
    assert_401(&beta.get("/fs/team/from-beta.txt"), "beta's file from beta");
    // eve is a user of alpha's only.
    assert_401(&get_as(&alpha, "/fs/team/from-beta.txt", Some(("eve", "evepw"))), "eve through alpha");
    assert_eq!(get_as(&alpha, "/fs/team/from-alpha.txt", Some(("eve", "evepw"))).status, 200);
    // alice is known to both (a clear password on alpha, a hash on beta).
    let r = get_as(&alpha, "/fs/team/from-beta.txt", alice);
    assert_eq!((r.status, r.text().as_str()), (200, "beta's\n"));
    let r = try_http("HEAD", &alpha.url("/fs/team/from-beta.txt"), &[], None).unwrap();
    assert_eq!(r.status, 401, "HEAD is checked too");

    // FTP through alpha: the session's login goes to the owner as Basic credentials.
    let mut anon = ftp_login(&alpha, "anonymous", "x").expect("alpha lets anonymous sessions in");
    assert_eq!(anon.retr_as_buffer("/team/from-alpha.txt").unwrap().into_inner(), b"alpha's\n");
    assert_eq!(code(anon.retr_as_buffer("/team/from-beta.txt")), 550, "beta refuses anonymous reads");
    let mut ftp = ftp_login(&alpha, "alice", "alicepw").expect("alice logs in to alpha");
    assert_eq!(ftp.retr_as_buffer("/team/from-beta.txt").unwrap().into_inner(), b"beta's\n");
    let mut eve = ftp_login(&alpha, "eve", "evepw").expect("eve logs in to alpha");
    assert_eq!(code(eve.retr_as_buffer("/team/from-beta.txt")), 550);
    // beta has no anonymous rule: no anonymous session.
    assert_eq!(code(ftp_login(&beta, "anonymous", "x").map(|_| ())), 530);

    for node in [&alpha, &beta] {
        assert_no_password_in(&node.log(), &node.name);
    }
}

// ---- logs ----------------------------------------------------------------------------------------

/// A node started by hand with every log level on, libunftp's included (the harness logs at
/// `info`): no password may show even there.
#[test]
fn no_password_in_the_most_detailed_log() {
    let root = tempfile::tempdir().unwrap();
    lay_out(root.path());
    let logdir = tempfile::tempdir().unwrap();
    let log = logdir.path().join("trace.log");
    let (http_port, ftp_port) = (free_port(), free_port());
    let out = std::fs::File::create(&log).unwrap();
    let mut child = Command::new(dftp_bin())
        .args(["--dfsroot", root.path().to_str().unwrap(), "--node-name", "traced", "--multicast-discovery-addr", ""])
        .args(["--http-listen", &format!("127.0.0.1:{http_port}")])
        .args(["--http-mgmt-listen", &format!("127.0.0.1:{}", free_port())])
        .args(["--ftp-listen", &format!("127.0.0.1:{ftp_port}")])
        .arg(format!("--ftp-passive-ports={}", dftp_e2e::ftp::passive_ports()))
        .arg(format!("--auth=alice:{ALICE_PW}@/home/alice"))
        .arg(format!("--auth=bob:{}@/home/bob", bcrypt_hash(BOB_PW)))
        .env("RUST_LOG", "trace")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let url = |p: &str| format!("http://127.0.0.1:{http_port}{p}");
    wait_until("the traced node to answer", WAIT, || try_http("GET", &url("/"), &[], None).ok());
    for (user, password, want) in
        [("alice", ALICE_PW, 200), ("alice", "n0t-the-pa55word", 401), ("bob", BOB_PW, 200), ("bob", ALICE_PW, 401)]
    {
        let home = format!("/fs/home/{user}/{}.txt", &user[..1]);
        let r = http("GET", &url(&home), &[("Authorization", &basic(user, password))], None);
        assert_eq!(r.status, want, "{user}: {}", r.text());
    }
    for (user, password, want) in [("alice", ALICE_PW, 230), ("bob", "n0t-the-pa55word", 530), ("bob", BOB_PW, 230)] {
        let mut c = std::net::TcpStream::connect(("127.0.0.1", ftp_port)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut reader = std::io::BufReader::new(c.try_clone().unwrap());
        let mut line = String::new();
        let mut reply = |c: &mut std::net::TcpStream, cmd: Option<String>| -> String {
            use std::io::{BufRead, Write};
            if let Some(cmd) = cmd {
                c.write_all(format!("{cmd}\r\n").as_bytes()).unwrap();
            }
            line.clear();
            reader.read_line(&mut line).unwrap();
            line.clone()
        };
        assert!(reply(&mut c, None).starts_with("220"));
        assert!(reply(&mut c, Some(format!("USER {user}"))).starts_with("331"));
        let r = reply(&mut c, Some(format!("PASS {password}")));
        assert!(r.starts_with(&want.to_string()), "{user}: {r}");
        let _ = reply(&mut c, Some("QUIT".into()));
    }
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("TRACE") || text.contains("DEBUG"), "the log is detailed:\n{text}");
    assert_no_password_in(&text, "the traced node");
}
