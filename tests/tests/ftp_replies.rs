//! FTP replies as clients expect them (RFC 959, RFC 3659), seen over a raw control connection
//! so that every reply code, and the order of the replies, is checked exactly:
//!
//! - `SIZE` of a directory is refused (SIZE is for files);
//! - every write command is refused at once with 550 and a reason, whether or not a data
//!   connection is open, and changes nothing on any disk;
//! - `RETR` of a directory says it is one;
//! - `STAT` shows the session, not the software behind it;
//! - `STAT <path>` lists in the `LIST` format, owners included.

use std::collections::BTreeMap;
use std::fs;
use std::time::Duration;

use dftp_e2e::ftp::{closed_by_server, read_all, with_ftp, Control, Reply};
use dftp_e2e::{walk, Fixture, Node};

/// Every file and directory under every root, with each file's content: what a refused write
/// must leave exactly as it was (a temporary file left behind would show up here too).
fn disk(f: &Fixture) -> BTreeMap<String, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    for root in f.root_paths() {
        for (rel, is_dir) in walk(root) {
            let content = (!is_dir).then(|| fs::read(root.join(&rel)).unwrap());
            out.insert(format!("{}/{rel}", root.display()), content);
        }
    }
    out
}

fn assert_read_only_refusal(r: &Reply, what: &str) {
    assert_eq!(r.code, 550, "{what} must be refused at once with 550, got {r:?}");
    assert!(r.text().contains("read-only"), "{what}: the refusal should give the reason, got {r:?}");
}

/// The lines a `LIST` of `path` sends over a data connection.
fn list(c: &mut Control, path: &str) -> Vec<String> {
    let data = c.passive();
    let r = c.cmd(&format!("LIST {path}"));
    assert_eq!(r.code, 150, "LIST {path}: {r:?}");
    let body = String::from_utf8(read_all(data)).unwrap();
    let end = c.reply();
    assert_eq!(end.code, 226, "LIST {path} end: {end:?}");
    body.lines().map(str::to_string).collect()
}

/// The owner column of an `ls -l` line.
fn owner(line: &str) -> &str {
    line.split_whitespace().nth(2).unwrap_or_else(|| panic!("no owner column in {line:?}"))
}

#[test]
fn size_of_a_directory_is_refused() {
    let f = Fixture::start_with(false, with_ftp);
    let mut c = Control::login(f.node("beta"));
    for dir in ["/sub dir", "sub dir2/nested", "/", "/emptydir"] {
        let r = c.cmd(&format!("SIZE {dir}"));
        assert_eq!(r.code, 550, "SIZE {dir} (a directory): {r:?}");
        let shown = if dir.starts_with('/') { dir.to_string() } else { format!("/{dir}") };
        assert_eq!(r.text(), format!("{shown} is not a regular file"), "SIZE {dir}");
    }
    assert_eq!(c.cmd("CWD /sub dir2").code, 250);
    let r = c.cmd("SIZE nested");
    assert_eq!((r.code, r.text().as_str()), (550, "/sub dir2/nested is not a regular file"), "relative SIZE");
    // Files still have a size, local and remote alike.
    for file in ["/sub dir/beta.txt", "/gamma.txt", "nested/deep.txt"] {
        let r = c.cmd(&format!("SIZE {file}"));
        assert_eq!(r.code, 213, "SIZE {file}: {r:?}");
    }
    let r = c.cmd("SIZE /nope.txt");
    assert_eq!(r.code, 550, "SIZE of nothing: {r:?}");
}

#[test]
fn writes_are_refused_at_once_and_change_nothing() {
    let f = Fixture::start_with(false, with_ftp);
    let before = disk(&f);
    let find_before = f.nodes[0].find();
    // alpha holds "sub dir/alpha.txt", "emptydir" and "space name.txt" on its own disk.
    let alpha: &Node = f.node("alpha");
    let mut c = Control::login(alpha);
    for cmd in [
        "RNFR /space name.txt",
        "RNFR sub dir",
        "RNFR /gamma.txt",
        "RNFR /does not exist",
        "RNTO /renamed.txt",
        "DELE /space name.txt",
        "DELE sub dir/alpha.txt",
        "DELE /gamma.txt",
        "MKD /newdir",
        "MKD sub dir/newdir",
        "RMD /emptydir",
        "RMD /sub dir",
        "STOR /new.txt",
        "STOR /space name.txt",
        "APPE /space name.txt",
        "APPE /new.txt",
        "STOU",
    ] {
        let r = c.cmd(cmd);
        assert_read_only_refusal(&r, cmd);
        c.assert_nothing_pending(cmd);
    }

    // With a data connection open, the upload is refused before anything is sent, and the
    // server closes the data connection it will not use.
    for cmd in ["STOR /new.txt", "STOR /space name.txt", "APPE /space name.txt", "STOU"] {
        let mut data = c.passive();
        let r = c.cmd(cmd);
        assert_read_only_refusal(&r, &format!("{cmd} after EPSV"));
        assert!(closed_by_server(&mut data, Duration::from_secs(10)), "{cmd}: the unused data connection is closed");
        c.assert_nothing_pending(cmd);
    }
    // A refused upload leaves the session usable for a download.
    let data = c.passive();
    assert_eq!(c.cmd("RETR /space name.txt").code, 150);
    assert_eq!(read_all(data), f.content("space name.txt"));
    assert_eq!(c.reply().code, 226);

    assert_eq!(disk(&f), before, "a refused write changed something on disk");
    assert!(!alpha.root.join("new.txt").exists() && !alpha.root.join("newdir").exists());
    assert!(alpha.root.join("emptydir").is_dir() && alpha.root.join("sub dir/alpha.txt").is_file());
    assert_eq!(f.nodes[0].find(), find_before, "the tree is unchanged");
}

#[test]
fn retr_of_a_directory_says_it_is_one() {
    let f = Fixture::start_with(false, with_ftp);
    let mut c = Control::login(f.node("gamma"));
    for (arg, shown) in [("/sub dir", "/sub dir"), ("sub dir2/nested", "/sub dir2/nested"), ("/", "/")] {
        let r = c.cmd(&format!("RETR {arg}"));
        assert_eq!((r.code, r.text()), (550, format!("{shown} is a directory")), "RETR {arg} without EPSV");
        c.assert_nothing_pending(arg);

        let mut data = c.passive();
        let r = c.cmd(&format!("RETR {arg}"));
        assert_eq!((r.code, r.text()), (550, format!("{shown} is a directory")), "RETR {arg} after EPSV");
        assert!(closed_by_server(&mut data, Duration::from_secs(10)), "RETR {arg}: the data connection is closed");
        c.assert_nothing_pending(arg);
    }
    assert_eq!(c.cmd("CWD /sub dir2").code, 250);
    let r = c.cmd("RETR .");
    assert_eq!((r.code, r.text().as_str()), (550, "/sub dir2 is a directory"), "RETR . in /sub dir2");
    // A file is still sent.
    let data = c.passive();
    assert_eq!(c.cmd("RETR nested/deep.txt").code, 150);
    assert_eq!(read_all(data), f.content("sub dir2/nested/deep.txt"));
    assert_eq!(c.reply().code, 226);
}

#[test]
fn stat_shows_the_session_not_the_software() {
    let f = Fixture::start_with(false, with_ftp);
    let mut c = Control::login(f.node("alpha"));
    assert_eq!(c.cmd("CWD /sub dir").code, 250);
    let r = c.cmd("STAT");
    assert_eq!(r.code, 211, "STAT: {r:?}");
    assert!(r.lines.len() > 2, "STAT is a multi-line status: {r:?}");
    let text = r.text();
    let lower = text.to_lowercase();
    for leak in ["libunftp", "unftp", "authenticator", "powered by", "sbe:", "0.24", "rename from"] {
        assert!(!lower.contains(leak), "STAT shows {leak:?}:\n{text}");
    }
    for want in ["anonymous", "read-only", "/sub dir"] {
        assert!(text.contains(want), "STAT should mention {want:?}:\n{text}");
    }
    c.assert_nothing_pending("STAT");
}

#[test]
fn stat_of_a_path_lists_like_list() {
    let f = Fixture::start_with(false, with_ftp);
    for node in &f.nodes {
        let mut c = Control::login(node);
        let listed = list(&mut c, "/sub dir");
        assert_eq!(listed.len(), 2, "LIST /sub dir on {}: {listed:?}", node.name);

        let r = c.cmd("STAT /sub dir");
        assert_eq!(r.code, 213, "STAT /sub dir on {}: {r:?}", node.name);
        assert_eq!(r.lines.first().map(String::as_str), Some("Status of /sub dir:"), "{r:?}");
        assert_eq!(r.lines.last().map(String::as_str), Some("End of status"), "{r:?}");
        let stat = &r.lines[1..r.lines.len() - 1];
        assert_eq!(stat, &listed[..], "STAT /sub dir and LIST /sub dir differ on {}", node.name);
        let owners: Vec<&str> = stat.iter().map(|l| owner(l)).collect();
        assert_eq!(owners, ["alpha", "beta"], "STAT shows the owner nodes on {}: {stat:?}", node.name);

        // Relative to the working directory, as LIST is; a file on its own.
        assert_eq!(c.cmd("CWD /sub dir").code, 250);
        let r = c.cmd("STAT beta.txt");
        assert_eq!(r.code, 213, "STAT beta.txt in /sub dir on {}: {r:?}", node.name);
        assert_eq!(&r.lines[1..r.lines.len() - 1], &listed[1..], "STAT of a file on {}", node.name);
        let r = c.cmd("STAT /nope");
        assert_eq!(r.code, 550, "STAT of nothing on {}: {r:?}", node.name);
        c.assert_nothing_pending("STAT");
    }
}
