//! `GET /fs/<dir>/?format=tar` and `?format=zip`: a directory spread over three nodes, as one
//! archive from any node. `tar -t` and `unzip -l` list exactly the directory's paths (under one
//! folder named after it), extracted contents are byte-identical to the owners' files, only
//! what the client may read goes in, and an owner killed mid-archive breaks the transfer
//! rather than leaving a shorter archive that looks whole.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use dftp_e2e::*;

/// (node, relative path, content) of every file; `proj/` is the archived directory.
fn layout() -> Vec<(usize, String, Vec<u8>)> {
    let long = format!("proj/sub/{}-ünïcødé-{}.txt", "long".repeat(20), "x".repeat(30));
    vec![
        (0, "proj/a1.txt".into(), b"a1 from alpha\n".to_vec()),
        (0, "proj/sub/a2.bin".into(), pseudo_random(70_000, 1)),
        (1, "proj/b1 with space.txt".into(), b"b1 from beta\n".to_vec()),
        (1, long, b"a name longer than 100 bytes\n".to_vec()),
        (1, "proj/empty.txt".into(), Vec::new()),
        (2, "proj/c1.bin".into(), pseudo_random(1 << 20, 2)),
        (2, "proj/deep/er/c2.txt".into(), b"deep in gamma\n".to_vec()),
        (2, "proj-sibling/not-in.txt".into(), b"a sibling with the same prefix\n".to_vec()),
        (0, "outside.txt".into(), b"not in the archive\n".to_vec()),
    ]
}

struct Cluster {
    nodes: Vec<Node>,
    _roots: Vec<tempfile::TempDir>,
    files: Vec<(usize, String, Vec<u8>)>,
}

fn cluster(extra: &[&str]) -> Cluster {
    let roots: Vec<tempfile::TempDir> = (0..3).map(|i| awkward_tempdir(&format!("archive-{i}"))).collect();
    let files = layout();
    for (node, rel, content) in &files {
        write_file(roots[*node].path(), rel, content);
    }
    fs::create_dir_all(roots[0].path().join("proj/empty dir")).unwrap();
    let opts = |name: &str, root: &Path| extra.iter().fold(NodeOpts::new(name, root), |o, a| o.arg(a));
    let a = Node::start(opts("alpha", roots[0].path()));
    let b = Node::start(opts("beta", roots[1].path()).join(&a.mgmt_addr()));
    let c = Node::start(opts("gamma", roots[2].path()).join(&a.mgmt_addr()));
    let want = expected_find(&roots.iter().map(|r| r.path()).collect::<Vec<_>>());
    for n in [&a, &b, &c] {
        wait_until("every node to list everything", WAIT, || {
            let r = n.get("/find/");
            // With accounts, anonymous /find/ is narrower: wait on the peers instead.
            (r.text() == want || (r.status == 200 && n.peers().len() == 2)).then_some(())
        });
    }
    Cluster { nodes: vec![a, b, c], _roots: roots, files }
}

/// What the archive of `proj/` must hold: every path below it, under `proj/`, directories with
/// a trailing `/` (the form tar and unzip list them in).
fn expected_names(files: &[(usize, String, Vec<u8>)], keep: impl Fn(&str) -> bool) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (_, rel, _) in files {
        if !rel.starts_with("proj/") || !keep(rel) {
            continue;
        }
        names.insert(rel.clone());
        let mut dir = Path::new(rel).parent();
        while let Some(d) = dir.filter(|d| !d.as_os_str().is_empty()) {
            names.insert(format!("{}/", d.display()));
            dir = d.parent();
        }
    }
    names
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Downloads the archive with curl (as a user would), failing on an error status or a broken
/// transfer.
fn download(url: &str, to: &Path, user: Option<&str>) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--fail", "-o"]).arg(to).arg(url);
    if let Some(u) = user {
        cmd.args(["-u", u]);
    }
    run(&mut cmd);
}

/// Checks every extracted file against its content.
fn assert_extracted(dir: &Path, files: &[(usize, String, Vec<u8>)], names: &BTreeSet<String>) {
    for (_, rel, content) in files {
        let path = dir.join(rel);
        if names.contains(rel) {
            assert_eq!(&fs::read(&path).unwrap_or_else(|e| panic!("{rel}: {e}")), content, "{rel}");
        } else {
            assert!(!path.exists(), "{rel} must not be in the archive");
        }
    }
}

#[test]
fn tar_and_zip_of_a_directory_over_three_nodes() {
    let c = cluster(&[]);
    let mut want = expected_names(&c.files, |_| true);
    want.insert("proj/".into());
    want.insert("proj/empty dir/".into());
    assert!(want.len() > 10 && !want.iter().any(|n| n.contains("sibling") || n.contains("outside")));

    for n in &c.nodes {
        let tmp = tempfile::tempdir().unwrap();
        // tar: names, then contents.
        let tar = tmp.path().join("proj.tar");
        download(&n.url("/fs/proj/?format=tar"), &tar, None);
        let listed: BTreeSet<String> =
            run(Command::new("tar").arg("-tf").arg(&tar)).lines().map(String::from).collect();
        assert_eq!(listed, want, "tar -t through {}", n.name);
        let out = tmp.path().join("tar-out");
        fs::create_dir(&out).unwrap();
        run(Command::new("tar").arg("-xf").arg(&tar).arg("-C").arg(&out));
        assert_extracted(&out, &c.files, &want);

        // zip: unzip's own CRC check, its listing, then contents.
        let zip = tmp.path().join("proj.zip");
        download(&n.url("/fs/proj/?format=zip"), &zip, None);
        run(Command::new("unzip").arg("-tq").arg(&zip));
        let listing = run(Command::new("unzip").arg("-Z1").arg(&zip));
        let listed: BTreeSet<String> = listing.lines().map(String::from).collect();
        assert_eq!(listed, want, "unzip -Z1 through {}", n.name);
        let out = tmp.path().join("zip-out");
        run(Command::new("unzip").arg("-q").arg(&zip).arg("-d").arg(&out));
        assert_extracted(&out, &c.files, &want);
        // Python's reader too (it reads the central directory and checks every CRC).
        let check = "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None; \
                     print(len(z.infolist()))";
        let count = run(Command::new("python3").args(["-c", check]).arg(&zip));
        assert_eq!(count.trim(), want.len().to_string());
    }

    // The headers of a download, and a subdirectory's archive.
    let r = c.nodes[1].get("/fs/proj/sub/?format=zip");
    assert_eq!(r.header("content-type"), Some("application/zip"));
    assert!(r.header("content-disposition").unwrap().starts_with("attachment; filename=\"sub.zip\""));
    let r = http("HEAD", &c.nodes[2].url("/fs/proj/?format=tar"), &[], None);
    assert_eq!((r.status, r.header("content-type")), (200, Some("application/x-tar")));
    // The listing page offers both (as form buttons, which mirroring tools do not follow).
    let page = c.nodes[0].get("/fs/proj/").text();
    assert!(page.contains("name=\"format\" value=\"tar\"") && page.contains("name=\"format\" value=\"zip\""));
}

#[test]
fn an_archive_holds_only_what_the_client_may_read() {
    let c = cluster(&["--auth", "@/proj/sub", "--auth", "alice:pw@/proj"]);
    let tmp = tempfile::tempdir().unwrap();
    let sub_only = expected_names(&c.files, |rel| rel.starts_with("proj/sub/"));
    let all = expected_names(&c.files, |_| true);
    for n in &c.nodes {
        // Anonymous: /proj/ can be listed (it leads to /proj/sub), and its archive holds /proj/sub.
        let tar = tmp.path().join(format!("anon-{}.tar", n.name));
        download(&n.url("/fs/proj/?format=tar"), &tar, None);
        let listed: BTreeSet<String> =
            run(Command::new("tar").arg("-tf").arg(&tar)).lines().map(String::from).collect();
        let files: BTreeSet<String> = listed.iter().filter(|l| !l.ends_with('/')).cloned().collect();
        let want: BTreeSet<String> = sub_only.iter().filter(|l| !l.ends_with('/')).cloned().collect();
        assert_eq!(files, want, "anonymous tar through {}", n.name);
        assert!(!listed.iter().any(|l| l.contains("deep")), "{listed:?}");

        // alice reads all of /proj, fetched from the other owners with her login.
        let zip = tmp.path().join(format!("alice-{}.zip", n.name));
        download(&n.url("/fs/proj/?format=zip"), &zip, Some("alice:pw"));
        let out = tmp.path().join(format!("alice-{}", n.name));
        run(Command::new("unzip").arg("-q").arg(&zip).arg("-d").arg(&out));
        assert_extracted(&out, &c.files, &all);
    }
    // Outside any grant: refused before anything is streamed.
    let r = c.nodes[0].get("/fs/proj-sibling/?format=tar");
    assert_eq!(r.status, 401, "{}", r.text());
}

/// An owner killed while the archive streams: the download fails (curl reports a broken
/// transfer) and what arrived is not a whole archive.
#[test]
fn an_owner_killed_mid_archive_breaks_the_download() {
    let roots: Vec<tempfile::TempDir> = (0..2).map(|i| awkward_tempdir(&format!("archive-kill-{i}"))).collect();
    let big = pseudo_random(64 << 20, 3);
    write_file(roots[0].path(), "d/0-first.txt", b"first\n");
    write_file(roots[1].path(), "d/1-big.bin", &big);
    write_file(roots[0].path(), "d/2-last.txt", b"last\n");
    let a = Node::start(NodeOpts::new("front", roots[0].path()));
    let mut owner = Some(Node::start(NodeOpts::new("owner", roots[1].path()).join(&a.mgmt_addr())));
    wait_until("front to list the owner's file", WAIT, || a.find().contains("/d/1-big.bin").then_some(()));

    for format in ["tar", "zip"] {
        if owner.is_none() {
            let back = Node::start(NodeOpts::new("owner", roots[1].path()).join(&a.mgmt_addr()));
            // Back on new ports: wait until the front node fetches from there.
            let addr = back.http.to_string();
            wait_until("the front node to know the owner's new address", WAIT, || {
                let table = get(&a.mgmt_url("/cluster/")).json();
                (table["Peers"]["owner"]["PublicAddr"] == addr.as_str()).then_some(())
            });
            owner = Some(back);
        }
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join(format!("d.{format}"));
        // A slow reader, so that the kill lands while the big file streams.
        let curl = Command::new("curl")
            .args(["-sS", "--limit-rate", "4M", "-o"])
            .arg(&file)
            .arg(a.url(&format!("/fs/d/?format={format}")))
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_until("the first MiB", WAIT, || {
            (fs::metadata(&file).map(|m| m.len()).unwrap_or(0) > 1 << 20).then_some(())
        });
        drop(owner.take()); // kills the owner
        let out = curl.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{format}: curl must see a broken transfer: {stderr}");
        let got = fs::metadata(&file).unwrap().len();
        assert!(got < big.len() as u64, "{format}: {got} bytes arrived");
        // What arrived is no whole archive.
        let check = match format {
            "tar" => Command::new("tar").arg("-tf").arg(&file).output().unwrap(),
            _ => Command::new("unzip").arg("-tq").arg(&file).output().unwrap(),
        };
        let listed = String::from_utf8_lossy(&check.stdout);
        assert!(!check.status.success() || !listed.contains("2-last.txt"), "{format}: {listed}");
        let log = wait_until("the front's warning", WAIT, || {
            let log = a.log();
            (log.matches("cut short").count() >= if format == "tar" { 1 } else { 2 }).then_some(log)
        });
        assert!(log.contains("archive of /d cut short"), "{log}");
    }
    // The front node serves on.
    assert_eq!(a.get("/fs/d/0-first.txt").body, b"first\n");
}
