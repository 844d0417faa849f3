//! FTP changes to the tree, end to end, with the clients people use (Python's ftplib, lftp)
//! and a raw control connection where the exact replies matter:
//!
//! - an account that may write stores, appends, resumes (`REST` + `STOR`), makes and removes
//!   directories, renames and deletes, and each change shows in the node's tree before the
//!   reply (read your writes);
//! - a refused login, a user or an anonymous session without write access, and changes that
//!   cannot be made (a missing directory, a reserved or escaping name, a directory in the way)
//!   are refused with the reason and change nothing on disk;
//! - an upload whose data connection breaks answers `426` and keeps the old file;
//! - the owner killed in the middle of a `STOR` keeps the old file, and no temporary file is
//!   on its disk or listed anywhere after it restarts;
//! - a stored file is listed on the other node after the usual propagation; a `STOR` through a
//!   node that does not hold the directory lands on the owner's disk (once the owner's HTTP
//!   side takes writes: the test says so when it does not);
//! - lftp's `mirror -R` of a tree and `put -c` (resume) give the same bytes on the node's disk.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::Command;

use base64::Engine;

use dftp_e2e::ftp::{ftp_addr, ftplib, have, with_ftp, Control};
use dftp_e2e::{
    http, pseudo_random, wait_until, walk, write_file, FakeOriginal, Node, NodeOpts, OriginalFile, Resp, Value, WAIT,
};

const ALICE_PW: &str = "alice pw";
const BOB_PW: &str = "bob pw";

/// alice changes everything, bob and anonymous sessions read `/pub`.
fn ruled(o: NodeOpts) -> NodeOpts {
    with_ftp(o)
        .arg(&format!("--auth=alice:{ALICE_PW}@/:rw"))
        .arg(&format!("--auth=bob:{BOB_PW}@/pub"))
        .arg("--auth=@/pub")
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

/// A GET as alice, who may read everything.
fn get_as_alice(node: &Node, path: &str) -> Resp {
    http("GET", &node.url(path), &[("Authorization", &basic("alice", ALICE_PW))], None)
}

/// `/find/` as alice sees it, one path a line.
fn find(node: &Node) -> Vec<String> {
    let r = get_as_alice(node, "/find/");
    assert_eq!(r.status, 200, "/find/ on {}: {}", node.name, r.text());
    r.text().lines().map(str::to_string).collect()
}

/// Every file and directory under `root`, with each file's content.
fn disk(root: &Path) -> BTreeMap<String, Option<Vec<u8>>> {
    walk(root).into_iter().map(|(rel, dir)| (rel.clone(), (!dir).then(|| fs::read(root.join(&rel)).unwrap()))).collect()
}

/// The temporary files of uploads under way (or left by a crash) under `root`.
fn temp_files(root: &Path) -> Vec<String> {
    walk(root)
        .into_iter()
        .map(|(rel, _)| rel)
        .filter(|rel| rel.split('/').any(|s| s.starts_with(".dftp-part-")))
        .collect()
}

fn strs(values: &[Value]) -> Vec<String> {
    values.iter().map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string)).collect()
}

#[test]
fn ftplib_stores_appends_resumes_renames_and_removes() {
    let root = tempfile::tempdir().unwrap();
    write_file(root.path(), "pub/readme.txt", b"for everyone\n");
    write_file(root.path(), "docs/old.txt", b"old\n");
    let node = Node::start(ruled(NodeOpts::new("alpha", root.path())));
    let Some(got) = ftplib(
        &node,
        "alice",
        ALICE_PW,
        r#"
out(stor("/docs/new.txt", b"0123456789"))
out("/docs/new.txt" in find())
out(appe("/docs/new.txt", b"abc"))
out(retr("/docs/new.txt"))
out(stor("/docs/new.txt", b"XY", rest=2))
out(retr("/docs/new.txt"))
out(stor("/docs/new.txt", b"whole"))
out(retr("/docs/new.txt"))
out(appe("/docs/appended.txt", b"fresh"))
out(ftp.mkd("/docs/sub dir"))
out("/docs/sub dir" in find())
out(ftp.mkd('q"uote'))
out(stor("/docs/sub dir/f.txt", b"in sub"))
out(ftp.rename("/docs/new.txt", "/docs/sub dir/renamed.txt"))
out(ftp.rename("/docs/sub dir", "/moved"))
out(ftp.rename("/docs/appended.txt", "/docs/old.txt"))
out(sorted(ftp.nlst("/moved")))
out(ftp.delete("/moved/f.txt"))
out(attempt(ftp.rmd, "/moved"))
out(ftp.delete("/moved/renamed.txt"))
out(ftp.rmd("/moved"))
out(ftp.rmd('/q"uote'))
out("/moved" in find())
conn = ftp.transfercmd("STOU")
conn.sendall(b"unique")
conn.close()
out(ftp.voidresp())
out(ftp.sendcmd("STAT").split("\n"))
"#,
    ) else {
        return;
    };
    let stored = "226 File successfully written";
    let expected = [
        stored,
        "true",
        stored,
        "0123456789abc",
        stored,
        "01XY456789abc",
        stored,
        "whole",
        stored,
        "/docs/sub dir",
        "true",
        "/q\"uote",
        stored,
        "250 Renamed",
        "250 Renamed",
        "250 Renamed",
        "[\"f.txt\",\"renamed.txt\"]",
        "250 Successfully removed",
        "550 the directory /moved is not empty",
        "250 Successfully removed",
        "250 Successfully removed",
        "250 Successfully removed",
        "false",
        stored,
    ];
    let got_strs = strs(&got);
    assert_eq!(got_strs[..expected.len()], expected, "step by step");
    let stat = got_strs.last().unwrap();
    assert!(stat.contains("Changes are allowed in the working directory"), "{stat}");

    // On disk: the rename replaced old.txt, STOU made one file of its own, and nothing else
    // (no temporary file, no directory left).
    let mut d = disk(root.path());
    let unique: Vec<String> =
        d.iter().filter(|(_, c)| c.as_deref() == Some(b"unique")).map(|(k, _)| k.clone()).collect();
    assert_eq!(unique.len(), 1, "STOU stored one file: {d:?}");
    assert!(!unique[0].contains('/'), "in the working directory: {unique:?}");
    d.remove(&unique[0]);
    let want: BTreeMap<String, Option<Vec<u8>>> = [
        ("docs", None),
        ("docs/old.txt", Some(&b"fresh"[..])),
        ("pub", None),
        ("pub/readme.txt", Some(&b"for everyone\n"[..])),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.map(<[u8]>::to_vec)))
    .collect();
    assert_eq!(d, want);
    let listed = find(&node);
    assert!(listed.contains(&format!("/{}", unique[0])), "{listed:?}");
    assert!(listed.contains(&"/docs/old.txt".to_string()) && !listed.iter().any(|p| p.contains("moved")), "{listed:?}");
}

#[test]
fn refusals_say_why_and_change_nothing() {
    let root = tempfile::tempdir().unwrap();
    write_file(root.path(), "pub/readme.txt", b"for everyone\n");
    write_file(root.path(), "docs/keep.txt", b"keep\n");
    let node = Node::start(ruled(NodeOpts::new("alpha", root.path())));
    let before = disk(root.path());

    // Refused logins: 530.
    for (user, password) in [("alice", "wrong"), ("mallory", ALICE_PW)] {
        let Some(got) = ftplib(&node, user, password, "out(login_refused)") else { return };
        assert!(strs(&got)[0].starts_with("530 "), "{user}: {got:?}");
    }

    // bob and anonymous sessions read /pub and change nothing.
    let Some(got) = ftplib(
        &node,
        "bob",
        BOB_PW,
        r#"
out(stor("/pub/new.txt", b"x"))
out(appe("/pub/readme.txt", b"x"))
out(attempt(ftp.delete, "/pub/readme.txt"))
out(attempt(ftp.mkd, "/pub/d"))
out(attempt(ftp.rmd, "/pub"))
out(attempt(ftp.rename, "/pub/readme.txt", "/pub/r.txt"))
out(retr("/pub/readme.txt"))
"#,
    ) else {
        return;
    };
    let denied = |user: &str, path: &str| format!("550 permission denied: {user} may not change {path}");
    assert_eq!(
        strs(&got),
        [
            denied("bob", "/pub/new.txt"),
            denied("bob", "/pub/readme.txt"),
            denied("bob", "/pub/readme.txt"),
            denied("bob", "/pub/d"),
            denied("bob", "/pub"),
            denied("bob", "/pub/readme.txt"),
            "for everyone\n".to_string(),
        ]
    );
    let Some(got) = ftplib(&node, "anonymous", "me@example.org", r#"out(stor("/pub/new.txt", b"x"))"#) else {
        return;
    };
    assert_eq!(strs(&got), [denied("anonymous", "/pub/new.txt")]);

    // alice may change everything, but not what cannot be done.
    let Some(got) = ftplib(
        &node,
        "alice",
        ALICE_PW,
        r#"
out(stor("/nowhere/x.txt", b"x"))
out(stor("/pub/.dftp-part-x", b"x"))
out(stor("/../outside.txt", b"x"))
out(stor("/pub", b"x"))
out(attempt(ftp.delete, "/pub"))
out(attempt(ftp.delete, "/pub/none"))
out(attempt(ftp.mkd, "/pub"))
out(attempt(ftp.mkd, "/a/b"))
out(attempt(ftp.rmd, "/pub"))
out(attempt(ftp.rmd, "/pub/readme.txt"))
out(attempt(ftp.rmd, "/"))
out(attempt(ftp.rename, "/none", "/x"))
out(attempt(ftp.rename, "/pub/readme.txt", "/docs"))
out(attempt(ftp.rename, "/docs", "/pub/readme.txt"))
out(attempt(ftp.rename, "/pub/readme.txt", "/no/x"))
out(stor("/pub/later.txt", b"x", rest=5))
out(stor("/pub/readme.txt", b"x", rest=1000))
out(retr("/pub/readme.txt"))
"#,
    ) else {
        return;
    };
    assert_eq!(
        strs(&got),
        [
            "550 the directory /nowhere does not exist",
            "553 /pub/.dftp-part-x: names starting with .dftp-part- are kept for uploads under way",
            "553 /../outside.txt: the path leads outside the tree",
            "550 /pub is a directory",
            "550 /pub is a directory (RMD removes an empty directory)",
            "550 /pub/none: not found",
            "550 /pub already exists",
            "550 the directory /a does not exist",
            "550 the directory /pub is not empty",
            "550 /pub/readme.txt is not a directory",
            "550 the root of the tree cannot be removed",
            "550 /none: not found",
            "550 /docs already exists",
            "550 /pub/readme.txt is a file: a directory cannot take its place",
            "550 the directory /no does not exist",
            "550 /pub/later.txt does not exist: there is no byte 5 to write from",
            "550 /pub/readme.txt has 13 bytes: cannot write from a later offset",
            "for everyone\n",
        ]
    );
    assert_eq!(disk(root.path()), before, "a refused change changed the disk");
}

/// After a failed `REST` + `STOR`, the offset is gone: the next `STOR` is a whole file again.
/// And `APPE` appends to what the file holds, even when the session last saw it shorter.
#[test]
fn rest_is_used_once_and_appe_appends_to_what_is_there() {
    let root = tempfile::tempdir().unwrap();
    write_file(root.path(), "f.txt", b"0123456789");
    let node = Node::start(ruled(NodeOpts::new("alpha", root.path())));
    let login = |c: &mut Control| {
        assert_eq!(c.cmd("USER alice").code, 331);
        assert_eq!(c.cmd(&format!("PASS {ALICE_PW}")).code, 230);
        assert_eq!(c.cmd("TYPE I").code, 200);
    };
    let mut c = Control::connect(&node);
    login(&mut c);
    let store = |c: &mut Control, cmd: &str, body: &[u8]| {
        let mut data = c.passive();
        let r = c.cmd(cmd);
        if r.code != 150 {
            return r;
        }
        data.write_all(body).unwrap();
        drop(data);
        c.reply()
    };
    assert_eq!(c.cmd("REST 50").code, 350);
    let r = store(&mut c, "STOR /f.txt", b"late");
    assert_eq!((r.code, r.text()), (550, "/f.txt has 10 bytes: cannot write from a later offset".into()));
    assert_eq!(fs::read(root.path().join("f.txt")).unwrap(), b"0123456789");
    let r = store(&mut c, "STOR /f.txt", b"new");
    assert_eq!(r.code, 226, "{r:?}");
    assert_eq!(fs::read(root.path().join("f.txt")).unwrap(), b"new", "a whole file, not one from byte 50");

    // Another session appends meanwhile; this one's APPE lands after both.
    let mut other = Control::connect(&node);
    login(&mut other);
    assert_eq!(c.cmd("SIZE /f.txt").text(), "3");
    assert_eq!(store(&mut other, "APPE /f.txt", b"+other").code, 226);
    assert_eq!(store(&mut c, "APPE /f.txt", b"+mine").code, 226);
    assert_eq!(fs::read(root.path().join("f.txt")).unwrap(), b"new+other+mine");
    assert!(temp_files(root.path()).is_empty());
}

/// A client whose data connection breaks (a reset, not a clean end) gets `426`; the old file
/// stays as it was and no temporary file is left.
#[test]
fn a_broken_upload_keeps_the_old_file() {
    let root = tempfile::tempdir().unwrap();
    write_file(root.path(), "pub/readme.txt", b"for everyone\n");
    let node = Node::start(ruled(NodeOpts::new("alpha", root.path())));
    let Some(got) = ftplib(
        &node,
        "alice",
        ALICE_PW,
        r#"
import socket, struct
ftp.voidcmd("TYPE I")
conn = ftp.transfercmd("STOR /pub/readme.txt")
conn.sendall(b"partial new content " * 5000)
conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
conn.close()
out(attempt(ftp.voidresp))
out(retr("/pub/readme.txt"))
"#,
    ) else {
        return;
    };
    let got = strs(&got);
    assert!(got[0].starts_with("426 the upload of /pub/readme.txt did not complete"), "{got:?}");
    assert_eq!(got[1], "for everyone\n");
    assert_eq!(fs::read(root.path().join("pub/readme.txt")).unwrap(), b"for everyone\n");
    assert!(temp_files(root.path()).is_empty(), "{:?}", temp_files(root.path()));
}

/// The owner is killed (SIGKILL) in the middle of a large `STOR` sent slowly: after it
/// restarts, the old content is intact, and no temporary file is on its disk or listed by any
/// node.
#[test]
fn the_owner_killed_during_a_stor_keeps_the_old_file() {
    let (a_root, b_root) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let old = pseudo_random(1 << 20, 3);
    write_file(a_root.path(), "data/big.bin", &old);
    write_file(b_root.path(), "pub/b.txt", b"beta\n");
    let alpha = Node::start(ruled(NodeOpts::new("alpha", a_root.path())));
    let beta = Node::start(ruled(NodeOpts::new("beta", b_root.path()).join(&alpha.mgmt_addr())));
    wait_until("beta to list alpha's file", WAIT, || find(&beta).contains(&"/data/big.bin".to_string()).then_some(()));

    let mut c = Control::connect(&alpha);
    assert_eq!(c.cmd("USER alice").code, 331);
    assert_eq!(c.cmd(&format!("PASS {ALICE_PW}")).code, 230);
    assert_eq!(c.cmd("TYPE I").code, 200);
    let mut data = c.passive();
    assert_eq!(c.cmd("STOR /data/big.bin").code, 150);
    // A few MiB, then the sender pauses (as a slow client does) with the upload half done.
    let chunk = pseudo_random(1 << 20, 4);
    for _ in 0..3 {
        data.write_all(&chunk).unwrap();
    }
    let dir = a_root.path().join("data");
    wait_until("the upload to reach the disk", WAIT, || {
        let written: u64 = fs::read_dir(&dir)
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with(".dftp-part-"))
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum();
        (written >= 1 << 20).then_some(())
    });
    // Listed nowhere while under way.
    for node in [&alpha, &beta] {
        assert!(!find(node).iter().any(|p| p.contains(".dftp-part-")), "{} lists an upload under way", node.name);
    }
    drop(alpha); // SIGKILL
    assert!(
        !temp_files(a_root.path()).is_empty(),
        "the killed upload left its temporary file, for the restart to remove"
    );
    drop(data);

    let alpha = Node::start(ruled(NodeOpts::new("alpha", a_root.path()).join(&beta.mgmt_addr())));
    assert_eq!(fs::read(a_root.path().join("data/big.bin")).unwrap(), old, "the old content is intact");
    assert!(temp_files(a_root.path()).is_empty(), "left at start: {:?}", temp_files(a_root.path()));
    let r = get_as_alice(&alpha, "/fs/data/big.bin");
    assert!(r.status == 200 && r.body == old, "alpha serves the old content");
    wait_until("beta to see alpha again", WAIT, || {
        let r = get_as_alice(&beta, "/fs/data/big.bin");
        (r.status == 200 && r.body == old).then_some(())
    });
    for node in [&alpha, &beta] {
        let listed = find(node);
        assert!(!listed.iter().any(|p| p.contains(".dftp-part-")), "{} lists a temporary file: {listed:?}", node.name);
        let r = get_as_alice(node, "/fs/data/?format=json");
        let listing = r.json();
        let names: Vec<&str> =
            listing["entries"].as_array().unwrap().iter().filter_map(|e| e["name"].as_str()).collect();
        assert_eq!(names, ["big.bin"], "{}", node.name);
    }
    if let Some(got) = ftplib(&alpha, "alice", ALICE_PW, r#"out(sorted(ftp.nlst("/data")))"#) {
        assert_eq!(got, [serde_json::json!(["big.bin"])], "the FTP listing");
    }
}

/// Whether `node`'s HTTP side takes writes (`PUT`): a `PUT` whose `If-Match` cannot hold is
/// refused with `412` without a change when it does.
fn http_takes_writes(node: &Node) -> bool {
    let r = http(
        "PUT",
        &node.url("/fs/http-write-probe.txt"),
        &[("Authorization", &basic("alice", ALICE_PW)), ("If-Match", "\"no such tag\"")],
        Some(b"x"),
    );
    r.status == 412
}

/// A file stored on its owner is listed on the other node after the usual propagation; one
/// stored through a node that does not hold the directory lands on the owner's disk, and the
/// node that took the command shows it at once.
#[test]
fn a_stor_shows_on_every_node_and_lands_on_the_owner() {
    let (a_root, b_root) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_file(a_root.path(), "team/a.txt", b"alpha's\n");
    write_file(b_root.path(), "pub/b.txt", b"beta's\n");
    let alpha = Node::start(ruled(NodeOpts::new("alpha", a_root.path())));
    let beta = Node::start(ruled(NodeOpts::new("beta", b_root.path()).join(&alpha.mgmt_addr())));
    wait_until("both to list both", WAIT, || {
        (find(&alpha).contains(&"/pub/b.txt".to_string()) && find(&beta).contains(&"/team/a.txt".to_string()))
            .then_some(())
    });

    let Some(got) = ftplib(
        &alpha,
        "alice",
        ALICE_PW,
        r#"
out(stor("/team/new.txt", b"stored on alpha"))
out("/team/new.txt" in find())
"#,
    ) else {
        return;
    };
    assert_eq!(strs(&got), ["226 File successfully written", "true"], "alpha shows it before it answers");
    assert_eq!(fs::read(a_root.path().join("team/new.txt")).unwrap(), b"stored on alpha");
    wait_until("beta to list the stored file", WAIT, || {
        find(&beta).contains(&"/team/new.txt".to_string()).then_some(())
    });
    let r = get_as_alice(&beta, "/fs/team/new.txt");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"stored on alpha"[..]), "beta serves it from alpha");

    if !http_takes_writes(&alpha) {
        eprintln!(
            "skipping STOR through beta: alpha's HTTP side does not take writes (PUT) on this build, \
             so a change passed on to it cannot be made; tested on the owner only"
        );
        return;
    }
    let Some(got) = ftplib(
        &beta,
        "alice",
        ALICE_PW,
        r#"
out(stor("/team/via beta.txt", b"through beta"))
out("/team/via beta.txt" in find())
out(appe("/team/via beta.txt", b", appended"))
out(ftp.mkd("/team/made by beta"))
out(ftp.delete("/team/a.txt"))
out(retr("/team/via beta.txt"))
"#,
    ) else {
        return;
    };
    assert_eq!(
        strs(&got),
        [
            "226 File successfully written",
            "true",
            "226 File successfully written",
            "/team/made by beta",
            "250 Successfully removed",
            "through beta, appended",
        ],
        "beta shows each change it passed on before it answers"
    );
    assert_eq!(
        fs::read(a_root.path().join("team/via beta.txt")).unwrap(),
        b"through beta, appended",
        "on alpha's disk"
    );
    assert!(!b_root.path().join("team").exists(), "nothing of it on beta's disk");
    assert!(a_root.path().join("team/made by beta").is_dir() && !a_root.path().join("team/a.txt").exists());
}

/// lftp: `mirror -R` of a small tree, and `put -c` resuming a partial upload with `REST`.
#[test]
fn lftp_mirrors_a_tree_up_and_resumes_an_upload() {
    if !have("lftp") {
        eprintln!("skipping the lftp test: no lftp on this machine (apt-get install lftp)");
        return;
    }
    let (root, local, home) =
        (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_file(root.path(), "pub/readme.txt", b"for everyone\n");
    let tree = local.path().join("tree");
    write_file(&tree, "one.txt", b"one\n");
    write_file(&tree, "a dir/two words.txt", b"two\n");
    write_file(&tree, "a dir/b/big.bin", &pseudo_random(300_000, 5));
    fs::create_dir_all(tree.join("empty")).unwrap();
    let full = pseudo_random(300_000, 6);
    fs::write(local.path().join("full.bin"), &full).unwrap();
    write_file(root.path(), "partial.bin", &full[..100_000]);
    let node = Node::start(ruled(NodeOpts::new("alpha", root.path())));

    let addr = ftp_addr(&node);
    let run = Command::new("lftp")
        .current_dir(local.path())
        .env("HOME", home.path())
        .args(["-d", "-u", &format!("alice,{ALICE_PW}")])
        .args([
            "-e",
            "set cmd:fail-exit yes; set net:max-retries 1; set net:timeout 30; set ftp:ssl-allow no; \
             mirror -R tree /up; put -c full.bin -o /partial.bin; quit",
        ])
        .arg(format!("ftp://{addr}"))
        .output()
        .expect("run lftp");
    let log = String::from_utf8_lossy(&run.stderr).to_string() + &String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "lftp failed:\n{log}");

    assert_eq!(disk(&root.path().join("up")), disk(&tree), "the mirrored tree");
    assert_eq!(fs::read(root.path().join("partial.bin")).unwrap(), full, "the resumed upload");
    assert!(
        log.contains("REST 100000") && log.contains("STOR partial.bin"),
        "put -c resumed from the partial file:\n{log}"
    );
    assert!(temp_files(root.path()).is_empty());
    let listed = find(&node);
    for p in ["/up/a dir/b/big.bin", "/up/empty", "/up/one.txt", "/partial.bin"] {
        assert!(listed.contains(&p.to_string()), "{p} not listed: {listed:?}");
    }
}

/// Changes of another node's files go to that node as the HTTP requests that make them, with
/// the session's login for the owner to check, and the owner's refusal comes back with its
/// reason. The owner here is a node of the original implementation, which takes no writes.
#[test]
fn changes_of_another_nodes_files_are_passed_on_as_http() {
    let root = tempfile::tempdir().unwrap();
    write_file(root.path(), "pub/readme.txt", b"for everyone\n");
    let alpha = Node::start(ruled(NodeOpts::new("alpha", root.path())));
    let orig =
        FakeOriginal::start("orig", vec![("theirs/t.txt", OriginalFile::new(b"theirs\n".to_vec(), 1_600_000_000))]);
    orig.join(&alpha);
    wait_until("alpha to list orig's file", WAIT, || find(&alpha).contains(&"/theirs/t.txt".to_string()).then_some(()));
    let before = disk(root.path());

    let Some(got) = ftplib(
        &alpha,
        "alice",
        ALICE_PW,
        r#"
out(stor("/theirs/t.txt", b"new content"))
out(appe("/theirs/t.txt", b"more"))
out(stor("/theirs/t.txt", b"tail", rest=3))
out(attempt(ftp.delete, "/theirs/t.txt"))
out(attempt(ftp.mkd, "/theirs/new dir"))
out(attempt(ftp.rename, "/theirs/t.txt", "/theirs/u.txt"))
"#,
    ) else {
        return;
    };
    // The original's `/fs/` answers every method like a GET: a 200 is no sign the change was
    // made, and a path it does not have is a 404 with its own text.
    let not_taken = |p: &str| {
        format!(
            "550 {p}: node orig answered 200 OK and did not do it: it takes no writes (a node of the original dftp?)"
        )
    };
    assert_eq!(
        strs(&got),
        [
            not_taken("/theirs/t.txt"),
            not_taken("/theirs/t.txt"),
            not_taken("/theirs/t.txt"),
            not_taken("/theirs/t.txt"),
            "550 node orig refused the change of /theirs/new dir: `theirs/new dir` not found in DFS".to_owned(),
            not_taken("/theirs/t.txt"),
        ]
    );
    let auth = basic("alice", ALICE_PW);
    let seen: Vec<_> = orig.server.requests().into_iter().filter(|r| !r.target.starts_with("/update/")).collect();
    let shape = |r: &dftp_e2e::Req| {
        let h = |n: &str| r.header(n).unwrap_or("-").to_string();
        (
            r.method.clone(),
            r.target.clone(),
            h("x-update-range"),
            h("destination"),
            String::from_utf8_lossy(&r.body).into_owned(),
        )
    };
    let t = "/fs/theirs/t.txt?redirN=1".to_string();
    let none = || "-".to_string();
    let want = [
        ("PUT".to_string(), t.clone(), none(), none(), "new content".to_string()),
        ("PATCH".into(), t.clone(), "append".into(), none(), "more".into()),
        ("PATCH".into(), t.clone(), "bytes=3-".into(), none(), "tail".into()),
        ("DELETE".into(), t.clone(), none(), none(), String::new()),
        ("MKCOL".into(), "/fs/theirs/new%20dir?redirN=1".into(), none(), none(), String::new()),
        ("MOVE".into(), t.clone(), none(), format!("http://{}/fs/theirs/u.txt", orig.server.addr), String::new()),
    ];
    let got: Vec<_> = seen.iter().filter(|r| r.method != "POST").map(shape).collect();
    assert_eq!(got, want);
    for r in seen.iter().filter(|r| r.method != "POST") {
        assert_eq!(
            r.header("authorization"),
            Some(auth.as_str()),
            "{} carries the login for the owner to check",
            r.method
        );
    }
    assert_eq!(seen.iter().find(|r| r.method == "MOVE").and_then(|r| r.header("overwrite")), Some("F"));
    assert_eq!(disk(root.path()), before, "nothing of it on alpha's disk");
}
