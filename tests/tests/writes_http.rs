//! Writes over HTTP, end to end, on three nodes with accounts, as clients (curl, raw sockets)
//! and attackers meet them:
//! - `curl -T` through a node that is not the owner lands on the owner's disk, shows at once on
//!   the node that answered (read your writes) and soon on every node;
//! - DELETE of a file and of a directory spread over two nodes; MKCOL; MOVE within one node and
//!   from one node to another; COPY; PATCH resumes (`append`, `bytes=N-`);
//! - a node whose rules are stricter refuses its part of a write, and says so;
//! - refusals (401, 403, 412, 409, 405, 416, 400 for bad names) change nothing on any disk;
//! - a body cut short, and an owner killed in the middle of a large PUT, leave the old file and
//!   no temporary file anywhere; two PUTs at once leave exactly one of their bodies;
//! - a full disk answers 507 (on a tmpfs in a private mount namespace, where we may make one).

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use base64::Engine;
use dftp_e2e::*;

type Login = (&'static str, &'static str);
const WRITER: Login = ("writer", "w pass");
const READER: Login = ("reader", "r pass");
const LIMITED: Login = ("limited", "l pass");

/// Everyone reads; `writer` changes everything, `limited` only `/beta only`.
fn rules(o: NodeOpts) -> NodeOpts {
    rules_with(o, "/:rw")
}

/// [`rules`], with `writer`'s grants as given.
fn rules_with(o: NodeOpts, writer: &str) -> NodeOpts {
    o.arg("--auth=@/")
        .arg(&format!("--auth={}:{}@{writer}", WRITER.0, WRITER.1))
        .arg(&format!("--auth={}:{}@/", READER.0, READER.1))
        .arg(&format!("--auth={}:{}@/beta only:rw", LIMITED.0, LIMITED.1))
        .arg("--peer-timeout=3s")
}

fn cluster() -> Fixture {
    Fixture::start_with(false, rules)
}

fn basic((user, password): Login) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

/// `/fs/` and the encoded path of `rel`.
fn fs_url(rel: &str) -> String {
    format!("/fs/{}", encode_path(rel))
}

/// A request as `login`, on a connection of its own.
fn call(
    node: &Node,
    method: &str,
    rel: &str,
    login: Option<Login>,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Resp {
    let auth = login.map(basic);
    let mut all: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    all.extend_from_slice(headers);
    send(node.http, method, &fs_url(rel), &all, body)
}

fn root_of<'a>(f: &'a Fixture, name: &str) -> &'a Path {
    f.roots[NODE_NAMES.iter().position(|n| *n == name).unwrap()].path()
}

/// Every path under `root`, with a file's content (`None` for a directory).
fn disk(root: &Path) -> BTreeMap<String, Option<Vec<u8>>> {
    walk(root).into_iter().map(|(p, dir)| (p.clone(), (!dir).then(|| fs::read(root.join(&p)).unwrap()))).collect()
}

fn disks(f: &Fixture) -> Vec<BTreeMap<String, Option<Vec<u8>>>> {
    f.root_paths().into_iter().map(disk).collect()
}

/// The names of a directory's JSON listing on `node`, with their owners and sizes.
fn listed(node: &Node, dir: &str) -> BTreeMap<String, (String, u64)> {
    node.listing(dir)["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let name = e["name"].as_str().unwrap().to_string();
            (name, (e["owner"].as_str().unwrap().to_string(), e["size"].as_u64().unwrap_or(0)))
        })
        .collect()
}

fn lists(node: &Node, path: &str) -> bool {
    node.find().lines().any(|l| l == path)
}

fn wait_listed_everywhere(f: &Fixture, path: &str, listed: bool) {
    for n in &f.nodes {
        wait_until(&format!("{path} listed={listed} on {}", n.name), WAIT, || (lists(n, path) == listed).then_some(()));
    }
}

/// No temporary file on any disk, and none listed by any node.
fn assert_no_part_files(f: &Fixture) {
    for root in f.root_paths() {
        assert_eq!(part_files(root), Vec::<String>::new(), "temporary files left in {}", root.display());
    }
    for n in &f.nodes {
        assert!(!n.find().contains(".dftp-part-"), "{} lists a temporary file", n.name);
    }
}

/// `curl -T file` as `login`: the status, or `None` (with the reason printed) without curl.
fn curl_put(node: &Node, rel: &str, file: &Path, login: Login) -> Option<u16> {
    let url = node.url(&fs_url(rel));
    let out = match Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-u", &format!("{}:{}", login.0, login.1), "-T"])
        .arg(file)
        .arg(&url)
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            eprintln!("skipping curl -T: no curl ({e})");
            return None;
        }
    };
    Some(String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or_else(|_| panic!("curl said {out:?}")))
}

/// Uploads `body` with `curl -T`, or with a plain PUT where there is no curl.
fn upload(node: &Node, rel: &str, body: &[u8], login: Login) -> u16 {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("upload");
    fs::write(&file, body).unwrap();
    curl_put(node, rel, &file, login).unwrap_or_else(|| call(node, "PUT", rel, Some(login), &[], Some(body)).status)
}

// ---- PUT -----------------------------------------------------------------------------------------

#[test]
fn curl_put_through_another_node_lands_on_the_owner_and_shows_everywhere() {
    let f = cluster();
    let (alpha, beta, gamma) = (f.node("alpha"), f.node("beta"), f.node("gamma"));

    // A new file in a directory only beta holds, sent to alpha.
    let body = pseudo_random(3_000_000, 1); // big enough for curl to send `Expect: 100-continue`
    assert_eq!(upload(alpha, "beta only/new file #1.bin", &body, WRITER), 201);
    assert_eq!(fs::read(root_of(&f, "beta").join("beta only/new file #1.bin")).unwrap(), body);
    assert!(!root_of(&f, "alpha").join("beta only").exists(), "nothing of it on alpha's disk");
    // Read your writes: the node that answered lists it already, with its owner and size.
    assert_eq!(listed(alpha, "beta only").get("new file #1.bin"), Some(&("beta".to_string(), 3_000_000)));
    assert_eq!(alpha.get(&fs_url("beta only/new file #1.bin")).body, body);
    wait_listed_everywhere(&f, "/beta only/new file #1.bin", true);
    assert_eq!(gamma.get(&fs_url("beta only/new file #1.bin")).body, body);

    // An existing file is replaced where it lives: gamma's, sent to beta.
    let second = pseudo_random(123_457, 2);
    assert_eq!(upload(beta, "gamma.txt", &second, WRITER), 204);
    assert_eq!(fs::read(root_of(&f, "gamma").join("gamma.txt")).unwrap(), second);
    assert_eq!(listed(beta, "").get("gamma.txt"), Some(&("gamma".to_string(), 123_457)), "beta shows it at once");
    assert_eq!(beta.get("/fs/gamma.txt").body, second);

    // Missing directories are made on the node that holds the nearest one.
    assert_eq!(upload(gamma, "beta only/deeper/still/f.txt", b"deep\n", WRITER), 201);
    assert_eq!(fs::read(root_of(&f, "beta").join("beta only/deeper/still/f.txt")).unwrap(), b"deep\n");
    assert!(lists(gamma, "/beta only/deeper/still/f.txt") && lists(gamma, "/beta only/deeper"));

    // A new path at the top goes to the node asked, which holds the root itself.
    let r = call(gamma, "PUT", "top.txt", Some(WRITER), &[], Some(b"top\n"));
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(r.header("etag").is_some(), "the new content's validator");
    assert_eq!(fs::read(root_of(&f, "gamma").join("top.txt")).unwrap(), b"top\n");
    // Its ETag is the one GET sends, so If-Match works with what a client read.
    assert_eq!(gamma.get("/fs/top.txt").header("etag"), r.header("etag"));

    wait_listed_everywhere(&f, "/beta only/deeper/still/f.txt", true);
    assert_no_part_files(&f);
}

// ---- DELETE, MKCOL, MOVE, COPY -------------------------------------------------------------------

#[test]
fn delete_a_file_and_a_directory_spread_over_two_nodes() {
    let f = cluster();
    let (alpha_root, beta_root) = (root_of(&f, "alpha"), root_of(&f, "beta"));
    let gamma = f.node("gamma");
    assert!(alpha_root.join("sub dir/alpha.txt").exists() && beta_root.join("sub dir/beta.txt").exists());

    let r = call(gamma, "DELETE", "space name.txt", Some(WRITER), &[], None);
    assert_eq!(r.status, 204, "{}", r.text());
    assert!(!alpha_root.join("space name.txt").exists());
    assert!(!lists(gamma, "/space name.txt"), "gone on the node that answered at once");

    // The directory is on alpha and beta; gamma, which holds none of it, is asked.
    let r = call(gamma, "DELETE", "sub dir", Some(WRITER), &[], None);
    assert_eq!(r.status, 204, "{}", r.text());
    assert!(!alpha_root.join("sub dir").exists() && !beta_root.join("sub dir").exists());
    let find = gamma.find();
    assert!(!find.contains("/sub dir\n") && !find.contains("/sub dir/"), "gone at once on gamma:\n{find}");
    wait_listed_everywhere(&f, "/sub dir", false);
    wait_listed_everywhere(&f, "/sub dir/beta.txt", false);
    assert!(lists(gamma, "/sub dir2/nested/deep.txt"), "a longer name that starts alike stays");

    let r = call(gamma, "DELETE", "sub dir", Some(WRITER), &[], None);
    assert_eq!(r.status, 404, "{}", r.text());
    let r = call(gamma, "DELETE", "", Some(WRITER), &[], None);
    assert_eq!(r.status, 403, "the root: {}", r.text());
    assert!(root_of(&f, "gamma").join("gamma.txt").exists());
    assert_no_part_files(&f);
}

#[test]
fn mkcol_move_and_copy() {
    let f = cluster();
    let (alpha, beta, gamma) = (f.node("alpha"), f.node("beta"), f.node("gamma"));
    let (alpha_root, beta_root, gamma_root) = (root_of(&f, "alpha"), root_of(&f, "beta"), root_of(&f, "gamma"));

    // MKCOL through a node that does not hold the parent.
    let r = call(alpha, "MKCOL", "beta only/new dir", Some(WRITER), &[], None);
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(beta_root.join("beta only/new dir").is_dir());
    assert!(lists(alpha, "/beta only/new dir"));
    let r = call(alpha, "MKCOL", "beta only/new dir", Some(WRITER), &[], None);
    assert_eq!(r.status, 405, "it exists: {}", r.text());
    assert!(r.header("allow").is_some_and(|a| a.contains("MKCOL")), "{:?}", r.headers);
    let r = call(alpha, "MKCOL", "no such/dir", Some(WRITER), &[], None);
    assert_eq!(r.status, 409, "no parent: {}", r.text());
    assert!(!alpha_root.join("no such").exists() && !beta_root.join("no such").exists());

    // MOVE within one node (beta), asked of gamma: a rename on beta.
    let x = fs::read(beta_root.join("beta only/x.txt")).unwrap();
    let dest = gamma.url(&fs_url("beta only/new dir/moved x.txt"));
    let r = call(gamma, "MOVE", "beta only/x.txt", Some(WRITER), &[("Destination", &dest)], None);
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(!beta_root.join("beta only/x.txt").exists());
    assert_eq!(fs::read(beta_root.join("beta only/new dir/moved x.txt")).unwrap(), x);
    assert!(lists(gamma, "/beta only/new dir/moved x.txt") && !lists(gamma, "/beta only/x.txt"));

    // MOVE from one node to another (gamma's file into beta's directory), asked of alpha.
    let g = fs::read(gamma_root.join("gamma.txt")).unwrap();
    let r = call(alpha, "MOVE", "gamma.txt", Some(WRITER), &[("Destination", &fs_url("beta only/gamma.txt"))], None);
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(!gamma_root.join("gamma.txt").exists(), "the source is removed");
    assert_eq!(fs::read(beta_root.join("beta only/gamma.txt")).unwrap(), g);
    assert!(lists(alpha, "/beta only/gamma.txt") && !lists(alpha, "/gamma.txt"), "alpha shows the move at once");
    wait_listed_everywhere(&f, "/gamma.txt", false);

    // COPY from alpha into gamma's directory, asked of beta; then onto it again.
    let file = fs::read(alpha_root.join("ünïcødé/файл.txt")).unwrap();
    let to = [("Destination", fs_url("sub dir2/copy.txt"))];
    let to: Vec<(&str, &str)> = to.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = call(beta, "COPY", "ünïcødé/файл.txt", Some(WRITER), &to, None);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(fs::read(gamma_root.join("sub dir2/copy.txt")).unwrap(), file);
    assert_eq!(fs::read(alpha_root.join("ünïcødé/файл.txt")).unwrap(), file, "the source stays");
    assert_eq!(listed(beta, "sub dir2").get("copy.txt").map(|e| e.0.as_str()), Some("gamma"));
    let over = [to[0], ("Overwrite", "F")];
    let r = call(beta, "COPY", "hash#tag.txt", Some(WRITER), &over, None);
    assert_eq!(r.status, 412, "Overwrite: F onto a file: {}", r.text());
    assert_eq!(fs::read(gamma_root.join("sub dir2/copy.txt")).unwrap(), file, "unchanged");
    let r = call(beta, "COPY", "hash#tag.txt", Some(WRITER), &to, None);
    assert_eq!(r.status, 204, "replaced: {}", r.text());
    assert_eq!(
        fs::read(gamma_root.join("sub dir2/copy.txt")).unwrap(),
        fs::read(alpha_root.join("hash#tag.txt")).unwrap()
    );

    // A directory held by one node moves there, whoever is asked.
    let r = call(alpha, "MOVE", "sub dir2", Some(WRITER), &[("Destination", "/fs/moved%20dir")], None);
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(gamma_root.join("moved dir/nested/deep.txt").exists() && !gamma_root.join("sub dir2").exists());
    assert!(lists(alpha, "/moved dir/nested/deep.txt"));
    // One spread over two nodes does not: it says which.
    let r = call(gamma, "MOVE", "sub dir", Some(WRITER), &[("Destination", "/fs/elsewhere")], None);
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.text().contains("alpha, beta"), "{}", r.text());
    assert!(alpha_root.join("sub dir/alpha.txt").exists() && beta_root.join("sub dir/beta.txt").exists());
    // Nothing moves into itself, or onto itself.
    let r = call(gamma, "MOVE", "moved dir", Some(WRITER), &[("Destination", "/fs/moved%20dir/in")], None);
    assert_eq!(r.status, 403, "{}", r.text());
    let r = call(gamma, "COPY", "top", Some(WRITER), &[("Destination", "/fs/top")], None);
    assert!([403, 404].contains(&r.status), "{}", r.text());

    wait_listed_everywhere(&f, "/moved dir/nested/deep.txt", true);
    assert_no_part_files(&f);
}

/// gamma's rules keep `/sub dir2` read-only, also for `writer`: a write that needs gamma there
/// is refused by gamma, even when another node would allow it.
#[test]
fn a_node_with_stricter_rules_refuses_its_part() {
    let f = Fixture::start_with(false, |o| {
        // The longest grant decides: on gamma, writer reads /sub dir2 and changes the rest.
        let writer = if o.name == "gamma" { "/:rw,/sub dir2" } else { "/:rw" };
        rules_with(o, writer)
    });
    let (alpha, beta) = (f.node("alpha"), f.node("beta"));
    let (alpha_root, gamma_root) = (root_of(&f, "alpha"), root_of(&f, "gamma"));
    // A part of /sub dir2 on alpha too.
    write_file(alpha_root, "sub dir2/alpha part.txt", b"alpha's part\n");
    wait_listed_everywhere(&f, "/sub dir2/alpha part.txt", true);

    let r = call(beta, "DELETE", "sub dir2", Some(WRITER), &[], None);
    assert_eq!(r.status, 403, "{}", r.text());
    let why = r.text();
    assert!(why.contains("not deleted completely") && why.contains("node gamma"), "{why}");
    assert!(!alpha_root.join("sub dir2").exists(), "alpha's part is gone");
    assert!(gamma_root.join("sub dir2/nested/deep.txt").exists(), "gamma's part remains");
    assert!(lists(beta, "/sub dir2/nested/deep.txt") && !lists(beta, "/sub dir2/alpha part.txt"));

    // A move into gamma's /sub dir2 is refused by gamma: the source stays.
    let before = fs::read(alpha_root.join("a&b.txt")).unwrap();
    let r = call(alpha, "MOVE", "a&b.txt", Some(WRITER), &[("Destination", "/fs/sub%20dir2/a%26b.txt")], None);
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(fs::read(alpha_root.join("a&b.txt")).unwrap(), before);
    assert!(!gamma_root.join("sub dir2/a&b.txt").exists());
    assert!(lists(alpha, "/a&b.txt"));
    assert_no_part_files(&f);
}

// ---- PATCH ---------------------------------------------------------------------------------------

#[test]
fn patch_resumes_an_upload() {
    let f = cluster();
    let (alpha, gamma) = (f.node("alpha"), f.node("gamma"));
    let beta_root = root_of(&f, "beta");
    let whole = pseudo_random(200_000, 5);
    let path = "beta only/resumed.bin";

    // The first part, then the rest appended (through two nodes that are not the owner).
    let r = call(alpha, "PUT", path, Some(WRITER), &[], Some(&whole[..70_000]));
    assert_eq!(r.status, 201, "{}", r.text());
    let r = call(gamma, "PATCH", path, Some(WRITER), &[("X-Update-Range", "append")], Some(&whole[70_000..150_000]));
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(fs::read(beta_root.join(path)).unwrap(), &whole[..150_000]);
    assert_eq!(listed(gamma, "beta only").get("resumed.bin").map(|e| e.1), Some(150_000), "gamma shows it at once");

    // Resumed from an offset the client knows: what comes after is kept, what is beyond grows.
    let r = call(alpha, "PATCH", path, Some(WRITER), &[("X-Update-Range", "bytes=140000-")], Some(&whole[140_000..]));
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(fs::read(beta_root.join(path)).unwrap(), whole);
    assert_eq!(gamma.get(&fs_url(path)).body, whole);

    // An offset past the end: 416, with the size to resume from.
    let r = call(alpha, "PATCH", path, Some(WRITER), &[("X-Update-Range", "bytes=300000-")], Some(b"x"));
    assert_eq!(r.status, 416, "{}", r.text());
    assert_eq!(r.header("content-range"), Some("bytes */200000"));
    // No range, or one we do not take: 400.
    for headers in [&[][..], &[("X-Update-Range", "bytes=0-10")]] {
        let r = call(alpha, "PATCH", path, Some(WRITER), headers, Some(b"x"));
        assert_eq!(r.status, 400, "{headers:?}: {}", r.text());
    }
    // Appending to a file that does not exist yet makes it.
    let r = call(alpha, "PATCH", "beta only/appended.txt", Some(WRITER), &[("X-Update-Range", "append")], Some(b"a"));
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(fs::read(beta_root.join(path)).unwrap(), whole, "unchanged by the refusals");
    assert_eq!(fs::read(beta_root.join("beta only/appended.txt")).unwrap(), b"a");
    assert_no_part_files(&f);
}

// ---- refusals ------------------------------------------------------------------------------------

/// A request (method, path, login, headers, body) and the status it must get.
type Case<'a> = (&'a str, &'a str, Option<Login>, Vec<(&'a str, &'a str)>, Option<&'a [u8]>, u16);

#[test]
fn refusals_change_nothing() {
    let f = cluster();
    let (alpha, beta) = (f.node("alpha"), f.node("beta"));
    let before = disks(&f);
    let etag_of_gamma = beta.get("/fs/gamma.txt").header("etag").map(str::to_owned).expect("an ETag");
    let dest = |p: &str| fs_url(p);
    let (to_beta, to_gamma) = (dest("beta only/y.txt"), dest("gamma.txt"));
    let body = Some(&b"should not land\n"[..]);
    let cases: Vec<Case> = vec![
        // Who: anonymous clients are asked to log in; users refused are 403.
        ("PUT", "beta only/new.txt", None, vec![], body, 401),
        ("DELETE", "gamma.txt", None, vec![], None, 401),
        ("PUT", "beta only/new.txt", Some(READER), vec![], body, 403),
        ("PUT", "gamma.txt", Some(LIMITED), vec![], body, 403),
        ("MOVE", "beta only/x.txt", Some(LIMITED), vec![("Destination", to_gamma.as_str())], None, 403),
        ("MKCOL", "beta only/d", Some(("writer", "wrong")), vec![], None, 401),
        // Preconditions, through a node that is not the owner.
        ("PUT", "gamma.txt", Some(WRITER), vec![("If-None-Match", "*")], body, 412),
        ("PUT", "gamma.txt", Some(WRITER), vec![("If-Match", "\"not-the-tag\"")], body, 412),
        ("PUT", "beta only/new.txt", Some(WRITER), vec![("If-Match", etag_of_gamma.as_str())], body, 412),
        ("MOVE", "shared.txt", Some(WRITER), vec![("Destination", to_gamma.as_str()), ("Overwrite", "F")], None, 412),
        // Conflicts with what is there.
        ("PUT", "sub dir", Some(WRITER), vec![], body, 409),
        ("PUT", "gamma.txt/below a file", Some(WRITER), vec![], body, 409),
        ("MKCOL", "no/such/parent", Some(WRITER), vec![], None, 409),
        ("MKCOL", "beta only", Some(WRITER), vec![], None, 405),
        ("MKCOL", "beta only/with body", Some(WRITER), vec![], Some(&b"x"[..]), 415),
        // WebDAV (webdav.rs): a PROPFIND of the whole tree below (no Depth) is refused.
        ("PROPFIND", "beta only", Some(WRITER), vec![], None, 403),
        ("DELETE", "no such file", Some(WRITER), vec![], None, 404),
        ("MOVE", "no such file", Some(WRITER), vec![("Destination", to_beta.as_str())], None, 404),
        // Bad names, bad headers.
        ("PUT", "beta only/.dftp-part-1", Some(WRITER), vec![], body, 400),
        ("MOVE", "beta only/x.txt", Some(WRITER), vec![("Destination", "/fs/beta%20only/.dftp-part-x")], None, 400),
        ("MOVE", "beta only/x.txt", Some(WRITER), vec![("Destination", "/fs/beta%20only/../../etc/x")], None, 400),
        ("MOVE", "beta only/x.txt", Some(WRITER), vec![("Destination", "/elsewhere/x")], None, 400),
        (
            "MOVE",
            "beta only/x.txt",
            Some(WRITER),
            vec![("Destination", to_beta.as_str()), ("Overwrite", "maybe")],
            None,
            400,
        ),
        ("COPY", "beta only/x.txt", Some(WRITER), vec![("Destination", "http://other.host/fs/y.txt")], None, 502),
        ("PUT", "beta only/dir/", Some(WRITER), vec![], body, 400),
    ];
    for (method, rel, login, headers, body, want) in cases {
        for node in [alpha, beta] {
            let r = call(node, method, rel, login, &headers, body);
            assert_eq!(r.status, want, "{method} {rel} as {login:?} {headers:?} on {}: {}", node.name, r.text());
            assert!(!r.text().trim().is_empty(), "{method} {rel}: a refusal says why");
            assert_eq!(r.header("www-authenticate").is_some(), want == 401, "{method} {rel}");
            assert_contained(&format!("{method} {rel}"), &r.body, &f.secrets());
        }
    }
    // Names no path may have, sent as they are (no client would send them so).
    let auth = basic(WRITER);
    for target in [
        "/fs/beta%20only/a%0Ab.txt",
        "/fs/beta%20only/../../x.txt",
        "/fs/beta%20only/%2e%2e/x.txt",
        "/fs/a%00b",
        "/fs/a%5Cb",
    ] {
        for method in ["PUT", "MKCOL", "DELETE"] {
            let body = (method == "PUT").then_some(&b"x"[..]);
            let r = send(alpha.http, method, target, &[("Authorization", &auth)], body);
            assert_eq!(r.status, 400, "{method} {target}: {}", r.text());
        }
    }
    assert_eq!(disks(&f), before, "no refusal changed a disk");
    assert_no_part_files(&f);
    for n in &f.nodes {
        assert_eq!(n.get("/").status, 200, "{} still serves", n.name);
    }

    // And with the right validator, the same write goes through.
    let r = call(alpha, "PUT", "gamma.txt", Some(WRITER), &[("If-Match", &etag_of_gamma)], Some(b"new\n"));
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(fs::read(root_of(&f, "gamma").join("gamma.txt")).unwrap(), b"new\n");
}

// ---- bodies cut short, crashes, races -------------------------------------------------------------

/// Sends a PUT that announces `announced` bytes, then `sent` of them, and closes its sending
/// side: the answer, if one came.
fn cut_short(node: &Node, rel: &str, announced: usize, sent: &[u8]) -> Option<Resp> {
    let mut s = TcpStream::connect(node.http).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let head = format!(
        "PUT {} HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\nContent-Length: {announced}\r\nConnection: close\r\n\r\n",
        fs_url(rel),
        node.http,
        basic(WRITER)
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(sent).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    parse_response(&out).ok()
}

#[test]
fn a_body_cut_short_leaves_the_old_file() {
    let f = cluster();
    let (alpha, beta) = (f.node("alpha"), f.node("beta"));
    let gamma_root = root_of(&f, "gamma");
    let old = fs::read(gamma_root.join("gamma.txt")).unwrap();
    let before = disks(&f);
    // To the owner itself: its answer comes once the temporary file is gone.
    let r = cut_short(f.node("gamma"), "gamma.txt", 100_000, &pseudo_random(10_000, 3)).expect("an answer");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("did not complete"), "{}", r.text());
    assert_eq!(part_files(gamma_root), Vec::<String>::new());
    // Through another node, for an existing file and a new one.
    for (node, rel) in [(alpha, "gamma.txt"), (beta, "sub dir2/new.bin")] {
        let r = cut_short(node, rel, 1_000_000, &pseudo_random(300_000, 4)).expect("an answer");
        assert_eq!(r.status, 400, "{rel} through {}: {}", node.name, r.text());
    }
    // The owner notices the cut when its connection from the other node closes.
    wait_until("gamma to drop the temporary files", WAIT, || part_files(gamma_root).is_empty().then_some(()));
    assert_eq!(fs::read(gamma_root.join("gamma.txt")).unwrap(), old);
    assert_eq!(disks(&f), before, "nothing changed");
    for n in &f.nodes {
        assert_eq!(n.get("/fs/gamma.txt").body, old);
        assert!(!lists(n, "/sub dir2/new.bin"));
    }
    assert_no_part_files(&f);
}

#[test]
fn an_owner_killed_during_a_large_put_keeps_the_old_file() {
    let mut f = cluster();
    let alpha_root = root_of(&f, "alpha").to_path_buf();
    let old = fs::read(alpha_root.join("space name.txt")).unwrap();
    let beta_http = f.node("beta").http;

    // 64 MiB announced to beta for alpha's file, sent slowly, a piece at a time.
    let announced = 64usize << 20;
    let mut s = TcpStream::connect(beta_http).unwrap();
    let head = format!(
        "PUT {} HTTP/1.1\r\nHost: {beta_http}\r\nAuthorization: {}\r\nContent-Length: {announced}\r\n\r\n",
        fs_url("space name.txt"),
        basic(WRITER)
    );
    s.write_all(head.as_bytes()).unwrap();
    let piece = pseudo_random(256 << 10, 9);
    let mut sent = 0;
    // Until alpha has part of the new content in its temporary file.
    wait_until("alpha to be writing the upload", WAIT, || {
        s.write_all(&piece).unwrap();
        sent += piece.len();
        let parts = part_files(&alpha_root);
        let writing = parts.iter().any(|p| fs::metadata(alpha_root.join(p)).is_ok_and(|m| m.len() > 0));
        writing.then_some(())
    });
    assert!(sent < announced);
    let alpha = f.nodes.remove(0);
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(alpha.pid() as i32, libc::SIGKILL) };
    drop(alpha);
    // The client's upload fails (beta cannot pass it on any more).
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let _ = s.shutdown(Shutdown::Write);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    if let Ok(r) = parse_response(&out) {
        assert!(!(200..300).contains(&r.status), "a PUT whose owner died succeeded: {}", r.text());
    }
    assert_eq!(fs::read(alpha_root.join("space name.txt")).unwrap(), old, "the old content on disk");
    assert!(!part_files(&alpha_root).is_empty(), "the crash left its temporary file (until the restart)");

    let alpha = Node::start(rules(NodeOpts::new("alpha", &alpha_root).join(&f.nodes[0].mgmt_addr())));
    f.nodes.insert(0, alpha);
    f.wait_converged();
    assert_eq!(part_files(&alpha_root), Vec::<String>::new(), "removed at start");
    assert_eq!(fs::read(alpha_root.join("space name.txt")).unwrap(), old);
    for n in &f.nodes {
        assert_eq!(n.get(&fs_url("space name.txt")).body, old, "through {}", n.name);
    }
    assert_no_part_files(&f);
}

#[test]
fn two_puts_at_once_leave_exactly_one_body() {
    let f = cluster();
    let gamma_root = root_of(&f, "gamma");
    let bodies = [pseudo_random(3 << 20, 11), pseudo_random((3 << 20) + 1, 12)];
    // An existing file of gamma's and a new one in its directory, each from two other nodes.
    for rel in ["gamma.txt", "sub dir2/raced.bin"] {
        for round in 0..3 {
            let statuses: Vec<u16> = std::thread::scope(|s| {
                let handles: Vec<_> = [("alpha", &bodies[0]), ("beta", &bodies[1])]
                    .into_iter()
                    .map(|(name, body)| {
                        let node = f.node(name);
                        s.spawn(move || call(node, "PUT", rel, Some(WRITER), &[], Some(body)).status)
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            for st in &statuses {
                assert!([201, 204].contains(st), "{rel} round {round}: {statuses:?}");
            }
            let got = fs::read(gamma_root.join(rel)).unwrap();
            assert!(bodies.contains(&got), "{rel} round {round}: a mix of {} bytes", got.len());
            let served = f.node("alpha").get(&fs_url(rel)).body;
            assert!(bodies.contains(&served));
        }
    }
    assert_no_part_files(&f);
}

// ---- a full disk ----------------------------------------------------------------------------------

/// Whether this process may make a private mount namespace with a tmpfs (root, and not a
/// container that forbids it).
fn can_mount_tmpfs() -> Result<(), String> {
    let out = Command::new("unshare")
        .args(["-m", "--", "sh", "-c", "mount -t tmpfs -o size=1m dftp-e2e-probe /mnt"])
        .output()
        .map_err(|e| format!("no unshare: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("unshare -m + mount tmpfs failed: {}", String::from_utf8_lossy(&out.stderr).trim()))
    }
}

#[test]
fn a_full_disk_answers_507() {
    if let Err(why) = can_mount_tmpfs() {
        eprintln!("skipping a_full_disk_answers_507: {why}");
        return;
    }
    let big_root = tempfile::tempdir().unwrap();
    let small_root = tempfile::tempdir().unwrap();
    write_file(big_root.path(), "big.txt", b"on the big disk\n");
    let big = Node::start(rules(NodeOpts::new("big", big_root.path())));
    // `small` serves a 1 MiB tmpfs mounted over its root in a mount namespace of its own, at
    // /small in the tree.
    let mut opts = rules(NodeOpts::new("small", small_root.path()).join(&big.mgmt_addr())).arg("--dfsmount=small");
    let script = "mount -t tmpfs -o size=1m dftp-e2e-small \"$1\" && shift && exec \"$@\"";
    opts.wrapper = ["unshare", "-m", "--", "sh", "-c", script, "sh"].map(String::from).to_vec();
    opts.wrapper.push(small_root.path().to_str().unwrap().into());
    let small = Node::start(opts);
    let r = call(&small, "PUT", "small/old.txt", Some(WRITER), &[], Some(b"the old content\n"));
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(!small_root.path().join("old.txt").exists(), "it went to the tmpfs, not to the directory below");
    wait_until("big to list small's file", WAIT, || lists(&big, "/small/old.txt").then_some(()));

    let too_big = pseudo_random(2 << 20, 13);
    for (node, rel) in [(&small, "small/old.txt"), (&big, "small/old.txt"), (&big, "small/new.bin")] {
        let r = call(node, "PUT", rel, Some(WRITER), &[], Some(&too_big));
        assert_eq!(r.status, 507, "{rel} through {}: {}", node.name, r.text());
        assert!(r.text().contains("no space"), "{}", r.text());
    }
    for node in [&small, &big] {
        assert_eq!(node.get("/fs/small/old.txt").body, b"the old content\n");
        assert!(!lists(node, "/small/new.bin") && !node.find().contains(".dftp-part-"));
    }
    // The space of the failed uploads is free again.
    let fits = pseudo_random(600 << 10, 14);
    let r = call(&big, "PUT", "small/old.txt", Some(WRITER), &[], Some(&fits));
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(small.get("/fs/small/old.txt").body, fits);
}

// ---- a node of the original ----------------------------------------------------------------------

/// The original's `/fs/` answers any method as a GET: a write passed on to it must not come back
/// as a success.
#[test]
fn a_node_of_the_original_takes_no_writes() {
    let root = tempfile::tempdir().unwrap();
    write_file(root.path(), "ours/mine.txt", b"ours\n");
    let node = Node::start(rules(NodeOpts::new("ours", root.path())));
    let theirs =
        FakeOriginal::start("nodeA", vec![("theirs.txt", OriginalFile::new(b"theirs\n".to_vec(), 1_477_174_081))]);
    theirs.join(&node);
    wait_until("the original's file to be listed", WAIT, || lists(&node, "/theirs.txt").then_some(()));
    for (method, headers, body) in [
        ("PUT", vec![], Some(&b"replaced?\n"[..])),
        ("DELETE", vec![], None),
        ("MOVE", vec![("Destination", "/fs/ours/theirs.txt")], None),
        ("COPY", vec![("Destination", "/fs/ours/theirs.txt")], None),
    ] {
        let r = call(&node, method, "theirs.txt", Some(WRITER), &headers, body);
        assert_eq!(r.status, 502, "{method}: {}", r.text());
        assert!(r.text().contains("node nodeA") && r.text().contains("takes no writes"), "{method}: {}", r.text());
    }
    assert!(!root.path().join("ours/theirs.txt").exists());
    assert_eq!(node.get("/fs/theirs.txt").body, b"theirs\n");
    assert!(theirs.server.requests().iter().any(|r| r.method == "PUT"), "the PUT reached the original");
}
