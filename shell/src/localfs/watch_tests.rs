//! The watcher stays inside the root: a symbolic link in the tree (to `/`, to a big directory
//! elsewhere) is never followed. Followed, one link to `/` added about 10,000 inotify watches
//! outside the tree, used up the user's watch limit, and changes inside the tree then went
//! unseen.

use std::collections::BTreeSet;
use std::os::unix::fs::symlink;
use std::time::Duration;

use super::{LocalFs, StdFs, WatchMsg};
use dftp_core::DfsPath;

/// The descriptors of this process that are inotify instances.
fn inotify_fds() -> BTreeSet<String> {
    let mut fds = BTreeSet::new();
    for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let target = std::fs::read_link(entry.path()).unwrap_or_default();
        if target.to_string_lossy().contains("inotify") {
            fds.insert(entry.file_name().to_string_lossy().into_owned());
        }
    }
    fds
}

/// The number of watches on inotify descriptor `fd` (one `inotify wd:` line each).
fn watches(fd: &str) -> usize {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).unwrap_or_default();
    info.lines().filter(|l| l.starts_with("inotify wd:")).count()
}

#[test]
fn symbolic_links_to_directories_outside_the_root_get_no_watches() {
    let root = tempfile::Builder::new().prefix("dftp-watch-root").tempdir().unwrap();
    let outside = tempfile::Builder::new().prefix("dftp-watch-outside").tempdir().unwrap();
    for i in 0..40 {
        std::fs::create_dir_all(outside.path().join(format!("d{i}/e"))).unwrap();
    }
    std::fs::create_dir_all(root.path().join("a/b")).unwrap();
    symlink(outside.path(), root.path().join("elsewhere")).unwrap();
    symlink(outside.path(), root.path().join("a/b/deeper")).unwrap();
    symlink("/", root.path().join("a/slash")).unwrap();

    let fs = StdFs::new(root.path()).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let before = inotify_fds();
    let guard = fs.watch(tx).unwrap();
    let mine: Vec<String> = inotify_fds().difference(&before).cloned().collect();
    assert_eq!(mine.len(), 1, "one inotify instance for the watcher: {mine:?}");
    // The root, a and a/b: three real directories.
    assert_eq!(watches(&mine[0]), 3, "watches only on the directories of the tree");

    // A change below the link's target is not the tree's; one inside the tree is seen.
    std::fs::write(outside.path().join("d1/e/x"), b"not ours").unwrap();
    std::fs::write(root.path().join("a/b/inside"), b"ours").unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let seen = rt.block_on(async {
        let mut seen = Vec::new();
        while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_secs(2), rx.recv()).await {
            seen.push(msg);
        }
        seen
    });
    let inside = DfsPath::parse("a/b/inside").unwrap();
    assert!(seen.iter().any(|m| matches!(m, WatchMsg::Changed(p) if *p == inside)), "{seen:?}");
    assert!(
        seen.iter().all(|m| !matches!(m, WatchMsg::Changed(p) if p.as_str().contains("d1"))),
        "a change outside the root was reported: {seen:?}"
    );
    drop(guard);
}
