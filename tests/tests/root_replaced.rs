//! The served root directory removed or replaced while the node runs (a restore from backup,
//! `mv data data.old && mv data.new data`): the node says so in its log, then serves and watches
//! the directory now at the path, not the old one (which it held open) and not an empty tree
//! until a restart.

use std::fs;

use dftp_e2e::*;

fn wait_status(node: &Node, path: &str, status: u16) {
    wait_until(&format!("GET {path} answering {status}"), WAIT, || (node.get(path).status == status).then_some(()));
}

#[test]
fn a_root_replaced_by_another_directory_is_served_and_watched() {
    let base = awkward_tempdir("root-replaced");
    let root = base.path().join("data");
    fs::create_dir(&root).unwrap();
    write_file(&root, "old.txt", b"the old tree");
    let node = Node::start(NodeOpts::new("solo", &root));
    assert_eq!(node.get("/fs/old.txt").text(), "the old tree");

    let fresh = base.path().join("data.new");
    fs::create_dir(&fresh).unwrap();
    write_file(&fresh, "new.txt", b"the new tree");
    fs::rename(&root, base.path().join("data.old")).unwrap();
    fs::rename(&fresh, &root).unwrap();

    wait_status(&node, "/fs/new.txt", 200);
    assert_eq!(node.get("/fs/new.txt").text(), "the new tree");
    wait_status(&node, "/fs/old.txt", 404);
    // The new directory is watched: a file written there now shows.
    write_file(&root, "later.txt", b"written after the swap");
    wait_status(&node, "/fs/later.txt", 200);
    assert_eq!(node.get("/fs/later.txt").text(), "written after the swap");
    let log = node.log();
    assert!(log.contains("root directory") && log.contains("replaced"), "the log says what happened:\n{log}");
}

#[test]
fn a_root_removed_then_made_again_is_served_again() {
    let base = awkward_tempdir("root-removed");
    let root = base.path().join("data");
    fs::create_dir(&root).unwrap();
    write_file(&root, "a.txt", b"before");
    let mut node = Node::start(NodeOpts::new("solo", &root));
    assert_eq!(node.get("/fs/a.txt").text(), "before");

    fs::remove_dir_all(&root).unwrap();
    wait_status(&node, "/fs/a.txt", 404);
    assert!(node.is_up(), "the node keeps running without its root");
    wait_until("a log line about the missing root", WAIT, || node.log().contains("is gone").then_some(()));

    fs::create_dir(&root).unwrap();
    write_file(&root, "b.txt", b"after");
    wait_status(&node, "/fs/b.txt", 200);
    assert_eq!(node.get("/fs/b.txt").text(), "after");
    write_file(&root, "c.txt", b"watched again");
    wait_status(&node, "/fs/c.txt", 200);
}
