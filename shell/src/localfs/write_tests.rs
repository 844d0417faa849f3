//! Writes to a real disk ([`StdFs`]) on a temporary served root: each operation, atomicity,
//! what is refused, and what a failure leaves behind.

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use dftp_core::DfsPath;
use tempfile::TempDir;

use super::*;

fn p(s: &str) -> DfsPath {
    DfsPath::parse_request(s).unwrap()
}

/// A served root `root/` inside a temporary directory, which also holds `outside/`.
struct Disk {
    dir: TempDir,
    fs: StdFs,
}

impl Disk {
    fn new() -> Disk {
        let dir = tempfile::Builder::new().prefix("dftp-write").tempdir().unwrap();
        fs::create_dir(dir.path().join("root")).unwrap();
        fs::create_dir(dir.path().join("outside")).unwrap();
        let fs = StdFs::new(&dir.path().join("root")).unwrap();
        Disk { dir, fs }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn at(&self, rel: &str) -> PathBuf {
        self.root().join(rel)
    }

    fn read(&self, rel: &str) -> Vec<u8> {
        fs::read(self.at(rel)).unwrap()
    }

    fn put_file(&self, rel: &str, bytes: &[u8]) {
        let path = self.at(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, bytes).unwrap();
    }

    fn write(&self, rel: &str, chunks: &[&[u8]], opts: WriteOptions) -> Result<Committed, WriteError> {
        let mut w = self.fs.create_file(&p(rel), opts)?;
        for c in chunks {
            w.write(c)?;
        }
        w.commit()
    }

    /// Every temporary file under the whole temporary directory.
    fn temp_files(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for e in walkdir::WalkDir::new(self.dir.path()).into_iter().flatten() {
            if is_temp_name(e.file_name().as_encoded_bytes()) {
                out.push(e.path().to_path_buf());
            }
        }
        out
    }

    /// Everything below the root, as relative paths.
    fn listing(&self) -> Vec<String> {
        let mut out: Vec<String> = walkdir::WalkDir::new(self.root())
            .min_depth(1)
            .into_iter()
            .flatten()
            .map(|e| e.path().strip_prefix(self.root()).unwrap().to_string_lossy().into_owned())
            .collect();
        out.sort();
        out
    }
}

fn opts(mode: WriteMode, precondition: Precondition) -> WriteOptions {
    WriteOptions { mode, precondition, create_parents: true }
}

fn etag_of(path: &Path) -> String {
    let md = fs::metadata(path).unwrap();
    etag(md.len(), md.modified().unwrap()).unwrap()
}

#[test]
fn a_put_creates_the_directories_above_and_replaces_in_place() {
    let d = Disk::new();
    let c = d.write("a/b/c.txt", &[b"hello ", b"world"], WriteOptions::replace()).unwrap();
    assert_eq!(d.read("a/b/c.txt"), b"hello world");
    assert!(c.created);
    assert_eq!(c.size, 11);
    assert_eq!(c.created_dir, Some(p("a")), "the outermost directory it made");
    assert_eq!(c.etag.as_deref(), Some(etag_of(&d.at("a/b/c.txt")).as_str()));
    fs::set_permissions(d.at("a/b/c.txt"), fs::Permissions::from_mode(0o600)).unwrap();
    let inode = fs::metadata(d.at("a/b/c.txt")).unwrap().ino();

    let c = d.write("a/b/c.txt", &[b"new"], WriteOptions::replace()).unwrap();
    assert_eq!(d.read("a/b/c.txt"), b"new");
    assert!(!c.created);
    assert_eq!(c.created_dir, None);
    let md = fs::metadata(d.at("a/b/c.txt")).unwrap();
    assert_ne!(md.ino(), inode, "a new file renamed into place, not the old one rewritten");
    assert_eq!(md.mode() & 0o777, 0o600, "the old file's permissions are kept");
    assert!(d.temp_files().is_empty(), "{:?}", d.temp_files());
    assert_eq!(d.listing(), ["a", "a/b", "a/b/c.txt"]);
}

/// `If-Match` takes what `GET` sends: [`etag`] of the file, as `files.rs` puts it in place of
/// ServeDir's own (checked end to end in tests/tests/writes_http.rs and webdav.rs).
#[test]
fn the_validator_is_the_tag_of_size_and_whole_seconds() {
    let d = Disk::new();
    d.put_file("f.txt", b"some bytes");
    let md = fs::metadata(d.at("f.txt")).unwrap();
    let secs = md.modified().unwrap().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let sent = etag_of(&d.at("f.txt"));
    assert_eq!(sent, format!("\"{secs:x}-a\""));
    // And a write that requires it goes through.
    let c = d.write("f.txt", &[b"other"], opts(WriteMode::Replace, Precondition::Matches(vec![sent.clone()]))).unwrap();
    assert_ne!(c.etag.as_deref(), Some(sent.as_str()), "another size, another tag");
}

#[test]
fn a_concurrent_reader_sees_the_old_content_or_the_new_never_a_mix() {
    let d = Arc::new(Disk::new());
    const LEN: usize = 256 << 10;
    d.put_file("f", &[b'a'; LEN]);
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (d, done) = (d.clone(), done.clone());
        std::thread::spawn(move || {
            let mut reads = 0;
            while !done.load(Ordering::Relaxed) || reads < 10 {
                let bytes = d.read("f");
                assert_eq!(bytes.len(), LEN, "a whole file every time");
                assert!(bytes.iter().all(|&b| b == bytes[0]), "a mix of two writes");
                reads += 1;
            }
        })
    };
    for i in 0..200 {
        let byte = [b'a', b'b'][i % 2];
        let chunk = vec![byte; 16 << 10];
        let chunks: Vec<&[u8]> = (0..LEN / chunk.len()).map(|_| &chunk[..]).collect();
        d.write("f", &chunks, WriteOptions::replace()).unwrap();
    }
    done.store(true, Ordering::Relaxed);
    reader.join().unwrap();
    assert!(d.temp_files().is_empty());
}

#[test]
fn a_write_dropped_before_its_commit_leaves_everything_as_it_was() {
    let d = Disk::new();
    d.put_file("keep.txt", b"old");
    let mut w = d.fs.create_file(&p("keep.txt"), WriteOptions::replace()).unwrap();
    w.write(b"half of the new").unwrap();
    assert_eq!(d.temp_files().len(), 1, "the body goes to a temporary file beside the target");
    assert_eq!(d.temp_files()[0].parent().unwrap(), d.root());
    drop(w);
    assert_eq!(d.read("keep.txt"), b"old");
    assert!(d.temp_files().is_empty());

    // The directories it created for a new file go too.
    let mut w = d.fs.create_file(&p("x/y/z.txt"), WriteOptions::replace()).unwrap();
    w.write(b"abc").unwrap();
    drop(w);
    assert_eq!(d.listing(), ["keep.txt"]);
}

#[test]
fn preconditions_are_checked_at_the_start_and_at_the_commit() {
    let d = Disk::new();
    d.put_file("f", b"one");
    let tag = etag_of(&d.at("f"));
    // Create-only onto an existing file: refused before any byte is sent.
    let e = d.fs.create_file(&p("f"), opts(WriteMode::Replace, Precondition::Absent)).err().unwrap();
    assert!(matches!(e, WriteError::PreconditionFailed { .. }), "{e}");
    let stale = "\"0.00000000-3\"".to_string();
    let e = d.fs.create_file(&p("f"), opts(WriteMode::Replace, Precondition::Matches(vec![stale]))).err().unwrap();
    assert!(matches!(e, WriteError::PreconditionFailed { .. }), "{e}");
    let e = d.fs.create_file(&p("g"), opts(WriteMode::Replace, Precondition::Present)).err().unwrap();
    assert!(matches!(e, WriteError::PreconditionFailed { .. }), "{e}");
    assert_eq!(d.listing(), ["f"], "a refused write leaves no directory or file");

    // A lost update: two writers read the same version; the second to commit is refused.
    let mut first =
        d.fs.create_file(&p("f"), opts(WriteMode::Replace, Precondition::Matches(vec![tag.clone()]))).unwrap();
    let mut second = d.fs.create_file(&p("f"), opts(WriteMode::Replace, Precondition::Matches(vec![tag]))).unwrap();
    first.write(b"first").unwrap();
    second.write(b"second").unwrap();
    first.commit().unwrap();
    let e = second.commit().err().unwrap();
    assert!(matches!(e, WriteError::PreconditionFailed { .. }), "{e}");
    assert_eq!(d.read("f"), b"first");

    // Create-only, with the file created by someone else while the body was on its way.
    let mut w = d.fs.create_file(&p("new"), opts(WriteMode::Replace, Precondition::Absent)).unwrap();
    w.write(b"mine").unwrap();
    d.put_file("new", b"theirs");
    let e = w.commit().err().unwrap();
    assert!(matches!(e, WriteError::PreconditionFailed { .. }), "{e}");
    assert_eq!(d.read("new"), b"theirs");
    assert!(d.temp_files().is_empty());
}

#[test]
fn appends_and_writes_at_an_offset() {
    let d = Disk::new();
    d.write("f", &[b"hello"], opts(WriteMode::Append, Precondition::None)).unwrap();
    assert_eq!(d.read("f"), b"hello", "an append creates a missing file");
    let c = d.write("f", &[b" wor", b"ld"], opts(WriteMode::Append, Precondition::None)).unwrap();
    assert_eq!(d.read("f"), b"hello world");
    assert_eq!(c.size, 11);
    d.write("f", &[b"XY"], opts(WriteMode::At(2), Precondition::None)).unwrap();
    assert_eq!(d.read("f"), b"heXYo world", "the bytes after the body stay");
    d.write("f", &[b"!!"], opts(WriteMode::At(11), Precondition::None)).unwrap();
    assert_eq!(d.read("f"), b"heXYo world!!");
    match d.fs.create_file(&p("f"), opts(WriteMode::At(14), Precondition::None)).err().unwrap() {
        WriteError::BadOffset { size, .. } => assert_eq!(size, 13),
        e => panic!("{e}"),
    }
    assert!(matches!(
        d.fs.create_file(&p("missing"), opts(WriteMode::At(1), Precondition::None)).err().unwrap(),
        WriteError::BadOffset { size: 0, .. }
    ));

    // An append to a file that someone replaced meanwhile would lose their write: refused.
    let mut w = d.fs.create_file(&p("f"), opts(WriteMode::Append, Precondition::None)).unwrap();
    w.write(b" more").unwrap();
    d.write("f", &[b"replaced"], WriteOptions::replace()).unwrap();
    let e = w.commit().err().unwrap();
    assert!(matches!(e, WriteError::PreconditionFailed { .. }), "{e}");
    assert_eq!(d.read("f"), b"replaced");
    // An interrupted append changes nothing.
    let mut w = d.fs.create_file(&p("f"), opts(WriteMode::Append, Precondition::None)).unwrap();
    w.write(b" lost").unwrap();
    drop(w);
    assert_eq!(d.read("f"), b"replaced");
    assert!(d.temp_files().is_empty());
}

#[test]
fn what_a_file_write_refuses() {
    let d = Disk::new();
    d.put_file("dir/f.txt", b"x");
    let err = |rel: &str, o: WriteOptions| d.fs.create_file(&p(rel), o).err().expect("refused");
    assert!(matches!(err("dir", WriteOptions::replace()), WriteError::IsADirectory(x) if x == p("dir")));
    assert!(matches!(err("dir/f.txt/x", WriteOptions::replace()), WriteError::NotADirectory(_)));
    let no_parents = WriteOptions { create_parents: false, ..WriteOptions::replace() };
    assert!(matches!(err("nope/x", no_parents), WriteError::ParentMissing(x) if x == p("nope")));
    assert!(matches!(err(".dftp-part-1", WriteOptions::replace()), WriteError::BadName { .. }));
    assert!(matches!(err("dir/.dftp-part-1/x", WriteOptions::replace()), WriteError::BadName { .. }));
    assert!(matches!(err("", WriteOptions::replace()), WriteError::BadName { .. }));
    let long = "n".repeat(300);
    assert!(matches!(err(&long, WriteOptions::replace()), WriteError::BadName { .. }));
    assert_eq!(d.listing(), ["dir", "dir/f.txt"]);
    assert!(d.temp_files().is_empty());
}

#[test]
fn symbolic_links_are_never_followed_nor_made() {
    let d = Disk::new();
    d.put_file("real/inside.txt", b"in");
    fs::write(d.dir.path().join("outside/secret"), b"secret").unwrap();
    symlink(d.at("real"), d.at("link")).unwrap();
    symlink(d.dir.path().join("outside"), d.at("out")).unwrap();
    symlink(d.at("real/inside.txt"), d.at("file-link")).unwrap();
    symlink(d.dir.path().join("outside/secret"), d.at("secret-link")).unwrap();
    let refused = |r: Result<(), WriteError>, what: &str| {
        assert!(matches!(r, Err(WriteError::Refused(_))), "{what}: {r:?}");
    };
    for rel in ["link/new.txt", "out/new.txt", "out/secret", "link/inside.txt", "file-link", "secret-link"] {
        refused(d.write(rel, &[b"x"], WriteOptions::replace()).map(drop), rel);
        refused(d.write(rel, &[b"x"], opts(WriteMode::Append, Precondition::None)).map(drop), rel);
    }
    for rel in ["link/inside.txt", "out/secret", "file-link", "secret-link"] {
        refused(d.fs.remove_file(&p(rel)), rel);
    }
    refused(d.fs.make_dir(&p("out/d")), "mkdir");
    refused(d.fs.remove_dir(&p("out"), true), "rmdir of a link");
    refused(d.fs.rename(&p("real/inside.txt"), &p("out/moved"), false).map(drop), "move out");
    refused(d.fs.rename(&p("out/secret"), &p("got"), false).map(drop), "move in");
    refused(d.fs.copy(&p("out/secret"), &p("got"), false).map(drop), "copy in");
    refused(d.fs.copy(&p("real/inside.txt"), &p("out/copied"), false).map(drop), "copy out");
    assert_eq!(fs::read(d.dir.path().join("outside/secret")).unwrap(), b"secret");
    assert_eq!(fs::read_dir(d.dir.path().join("outside")).unwrap().count(), 1, "nothing new outside");
    assert_eq!(d.read("real/inside.txt"), b"in");
    assert!(d.temp_files().is_empty());

    // A directory with a link in it: removing it removes the link, not what it points to;
    // copying it leaves the link out.
    symlink(d.dir.path().join("outside"), d.at("real/escape")).unwrap();
    d.fs.copy(&p("real"), &p("copy"), false).unwrap();
    assert!(d.at("copy/inside.txt").is_file());
    assert!(fs::symlink_metadata(d.at("copy/escape")).is_err(), "no link was made");
    d.fs.remove_dir(&p("real"), true).unwrap();
    assert!(!d.at("real").exists());
    assert_eq!(fs::read(d.dir.path().join("outside/secret")).unwrap(), b"secret");
}

#[test]
fn removing_files_and_directories() {
    let d = Disk::new();
    d.put_file("d/a.txt", b"a");
    d.put_file("d/sub/b.txt", b"b");
    fs::create_dir(d.at("empty")).unwrap();
    assert!(matches!(d.fs.remove_file(&p("d")), Err(WriteError::IsADirectory(_))));
    assert!(matches!(d.fs.remove_file(&p("d/none")), Err(WriteError::NotFound(_))));
    assert!(matches!(d.fs.remove_file(&p("none/x")), Err(WriteError::NotFound(_))));
    assert!(matches!(d.fs.remove_file(&p("d/a.txt/x")), Err(WriteError::NotFound(_))));
    assert!(matches!(d.fs.remove_dir(&p("d/a.txt"), true), Err(WriteError::NotADirectory(_))));
    assert!(matches!(d.fs.remove_dir(&p("d"), false), Err(WriteError::NotEmpty(_))));
    assert!(matches!(d.fs.remove_dir(&p(""), false), Err(WriteError::BadName { .. })));
    d.fs.remove_file(&p("d/a.txt")).unwrap();
    d.fs.remove_dir(&p("empty"), false).unwrap();
    assert_eq!(d.listing(), ["d", "d/sub", "d/sub/b.txt"]);
    d.fs.remove_dir(&p("d"), true).unwrap();
    assert!(d.listing().is_empty());
    // The root is emptied, never removed.
    d.put_file("x/y", b"y");
    d.put_file("z", b"z");
    d.fs.remove_dir(&p(""), true).unwrap();
    assert!(d.listing().is_empty());
    assert!(d.root().is_dir());
}

/// What cannot be removed is said, with how much is left; the rest goes.
#[test]
fn an_incomplete_recursive_removal_says_what_remains() {
    if rustix::process::geteuid().is_root() {
        // Root removes entries of read-only directories too: nothing to show here.
        println!("skipped: running as root, permissions do not hold anything back");
        return;
    }
    let d = Disk::new();
    d.put_file("d/locked/f", b"f");
    d.put_file("d/free", b"x");
    fs::set_permissions(d.at("d/locked"), fs::Permissions::from_mode(0o555)).unwrap();
    let e = d.fs.remove_dir(&p("d"), true).err().unwrap();
    fs::set_permissions(d.at("d/locked"), fs::Permissions::from_mode(0o755)).unwrap();
    match e {
        WriteError::Incomplete { left, first, .. } => {
            assert!(left >= 1);
            assert_eq!(first, p("d/locked/f"));
        }
        e => panic!("{e}"),
    }
    assert!(!d.at("d/free").exists());
}

#[test]
fn making_directories() {
    let d = Disk::new();
    d.make_dir_and_check();
}

impl Disk {
    fn make_dir_and_check(&self) {
        self.fs.make_dir(&p("d")).unwrap();
        assert!(self.at("d").is_dir());
        assert!(matches!(self.fs.make_dir(&p("d")), Err(WriteError::Exists(_))));
        assert!(matches!(self.fs.make_dir(&p("")), Err(WriteError::Exists(_))));
        assert!(matches!(self.fs.make_dir(&p("a/b")), Err(WriteError::ParentMissing(x)) if x == p("a")));
        self.put_file("f", b"f");
        assert!(matches!(self.fs.make_dir(&p("f/x")), Err(WriteError::NotADirectory(_))));
        assert!(matches!(self.fs.make_dir(&p(".dftp-part-d")), Err(WriteError::BadName { .. })));
        assert_eq!(self.listing(), ["d", "f"]);
    }
}

#[test]
fn moving_files_and_directories() {
    let d = Disk::new();
    d.put_file("a.txt", b"a");
    d.put_file("b.txt", b"b");
    d.put_file("dir/x", b"x");
    d.put_file("other/y", b"y");
    let e = d.fs.rename(&p("a.txt"), &p("b.txt"), false).err().unwrap();
    assert!(matches!(e, WriteError::Exists(_)), "{e}");
    assert_eq!((d.read("a.txt"), d.read("b.txt")), (b"a".to_vec(), b"b".to_vec()));
    assert!(d.fs.rename(&p("a.txt"), &p("b.txt"), true).unwrap(), "replaced");
    assert_eq!(d.read("b.txt"), b"a");
    assert!(!d.fs.rename(&p("b.txt"), &p("dir/b.txt"), false).unwrap());
    assert_eq!(d.read("dir/b.txt"), b"a");
    // A directory onto one that has something in it.
    assert!(matches!(d.fs.rename(&p("dir"), &p("other"), false), Err(WriteError::Exists(_))));
    assert!(d.fs.rename(&p("dir"), &p("other"), true).unwrap());
    assert_eq!(d.listing(), ["other", "other/b.txt", "other/x"]);
    // A file onto a directory, and back.
    d.put_file("f", b"f");
    assert!(d.fs.rename(&p("f"), &p("other"), true).unwrap());
    assert_eq!(d.listing(), ["other"]);
    assert_eq!(d.read("other"), b"f");
    let err = |from: &str, to: &str| d.fs.rename(&p(from), &p(to), true).err().unwrap();
    assert!(matches!(err("none", "x"), WriteError::NotFound(_)));
    assert!(matches!(err("other", "no/such"), WriteError::ParentMissing(_)));
    d.put_file("t/u/v", b"v");
    assert!(matches!(err("t", "t/u/w"), WriteError::BadName { .. }), "into itself");
    assert!(matches!(err("t/u", "t"), WriteError::BadName { .. }), "onto what holds it");
    assert!(matches!(err("t", "t"), WriteError::BadName { .. }));
    assert!(matches!(err("", "x"), WriteError::BadName { .. }));
    assert_eq!(d.read("t/u/v"), b"v");
    assert!(d.temp_files().is_empty());
}

#[test]
fn copying_files_and_directories() {
    let d = Disk::new();
    d.put_file("src/a", b"a");
    d.put_file("src/sub/b", b"bb");
    fs::set_permissions(d.at("src/a"), fs::Permissions::from_mode(0o640)).unwrap();
    assert!(!d.fs.copy(&p("src/a"), &p("a2"), false).unwrap());
    assert_eq!(d.read("a2"), b"a");
    assert_eq!(fs::metadata(d.at("a2")).unwrap().mode() & 0o777, 0o640);
    assert!(!d.fs.copy(&p("src"), &p("dst"), false).unwrap());
    assert_eq!(d.read("dst/sub/b"), b"bb");
    assert!(matches!(d.fs.copy(&p("src"), &p("dst"), false), Err(WriteError::Exists(_))));
    d.put_file("src/sub/b", b"changed");
    assert!(d.fs.copy(&p("src"), &p("dst"), true).unwrap());
    assert_eq!(d.read("dst/sub/b"), b"changed");
    assert!(matches!(d.fs.copy(&p("src"), &p("src/sub/in"), true), Err(WriteError::BadName { .. })));
    assert!(matches!(d.fs.copy(&p("none"), &p("x"), true), Err(WriteError::NotFound(_))));
    assert_eq!(d.read("src/a"), b"a", "the source stays");
    assert!(d.temp_files().is_empty());
}

#[test]
fn scans_never_list_temporary_files_and_the_start_removes_them() {
    let d = Disk::new();
    d.put_file("d/f", b"f");
    d.put_file(".dftp-part-1-2-3", b"left by a crash");
    d.put_file("d/.dftp-part-dir/inner", b"a copy cut short");
    let listed = |entries: &[(DfsPath, Meta)]| entries.iter().map(|(p, _)| p.as_str().to_owned()).collect::<Vec<_>>();
    assert_eq!(listed(&d.fs.scan().unwrap().entries), ["d", "d/f"]);
    assert_eq!(listed(&d.fs.scan_below(&p("d")).unwrap()), ["d", "d/f"]);
    assert!(d.fs.scan_below(&p("d/.dftp-part-dir")).unwrap().is_empty());
    assert_eq!(d.fs.entry(&p(".dftp-part-1-2-3")).unwrap(), None);
    assert_eq!(d.temp_files().len(), 2, "a scan while writes may be under way removes nothing");
    let report = d.fs.scan_at_start().unwrap();
    assert_eq!(listed(&report.entries), ["d", "d/f"]);
    assert_eq!(report.leftovers_removed, 2);
    assert!(d.temp_files().is_empty());
}

#[tokio::test]
async fn the_watcher_never_reports_temporary_files() {
    let d = Disk::new();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let _guard = d.fs.watch(tx).unwrap();
    let mut w = d.fs.create_file(&p("new.txt"), WriteOptions::replace()).unwrap();
    w.write(&[7; 100_000]).unwrap();
    w.commit().unwrap();
    let mut w = d.fs.create_file(&p("dropped.txt"), WriteOptions::replace()).unwrap();
    w.write(b"gone").unwrap();
    drop(w);
    d.fs.copy(&p("new.txt"), &p("copy.txt"), false).unwrap();
    // inotify keeps the order: once the last change is in, so are those before it.
    d.put_file("sentinel", b"s");
    let mut seen = Vec::new();
    while !seen.contains(&WatchMsg::Changed(p("sentinel"))) {
        let msg = tokio::time::timeout(std::time::Duration::from_secs(60), rx.recv()).await;
        seen.push(msg.expect("the watcher reports the changes").expect("the watcher runs"));
    }
    assert!(seen.contains(&WatchMsg::Changed(p("new.txt"))), "{seen:?}");
    assert!(seen.contains(&WatchMsg::Changed(p("copy.txt"))), "{seen:?}");
    for m in &seen {
        if let WatchMsg::Changed(path) = m {
            assert!(!write::has_temp_segment(path.as_str()), "{seen:?}");
        }
    }
}

/// A full disk is [`WriteError::NoSpace`] (507), and leaves the old file and no temporary one.
/// It needs a small file system of its own: a tmpfs mounted in a mount namespace of its own
/// (so nothing outside sees it), which takes root; without it the test says why and passes.
#[test]
fn a_full_disk_is_no_space_and_changes_nothing() {
    const CHILD: &str = "DFTP_ENOSPC_ROOT";
    if let Some(root) = std::env::var_os(CHILD) {
        return full_disk_in_namespace(Path::new(&root));
    }
    if !rustix::process::geteuid().is_root() {
        println!("skipped: mounting a small tmpfs takes root");
        return;
    }
    let d = Disk::new();
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--"])
        .arg(exe)
        .args(["--exact", "localfs::write_tests::a_full_disk_is_no_space_and_changes_nothing", "--nocapture"])
        .env(CHILD, d.root())
        .output();
    match out {
        Err(e) => println!("skipped: cannot run unshare: {e}"),
        Ok(o) => {
            let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
            if text.contains("skipped:") && !text.contains("FULL DISK CHECKED") {
                println!("{text}");
                return;
            }
            assert!(o.status.success() && text.contains("FULL DISK CHECKED"), "{text}");
        }
    }
}

/// In a mount namespace of its own: a 256 KiB tmpfs at `root`, a file on it, and a write of
/// 1 MiB over it.
fn full_disk_in_namespace(root: &Path) {
    use rustix::mount::{mount, MountFlags};
    if let Err(e) = mount("tmpfs", root, "tmpfs", MountFlags::empty(), c"size=256k") {
        println!("skipped: cannot mount a tmpfs: {e}");
        return;
    }
    let fs = StdFs::new(root).unwrap();
    fs::write(root.join("f"), b"old").unwrap();
    let mut w = fs.create_file(&p("f"), WriteOptions::replace()).unwrap();
    let chunk = vec![1u8; 64 << 10];
    let mut result = Ok(());
    for _ in 0..16 {
        result = w.write(&chunk);
        if result.is_err() {
            break;
        }
    }
    let result = match result {
        Ok(()) => w.commit().map(drop),
        Err(e) => {
            drop(w);
            Err(e)
        }
    };
    assert!(matches!(result, Err(WriteError::NoSpace)), "{result:?}");
    assert_eq!(fs::read(root.join("f")).unwrap(), b"old");
    let names: Vec<_> = fs::read_dir(root).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["f"], "no temporary file left");
    println!("FULL DISK CHECKED");
}
