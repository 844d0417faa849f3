//! The live cluster: local changes reach every node, a dead node's files leave, a restarted node
//! comes back, and a node that was down while the tree changed catches up.
//!
//! Intervals are short (ping 300 ms, peer timeout 2 s) so the tests run quickly; everything waits
//! by polling with a generous deadline, and nothing asserts on timing.

use std::fs;
use std::time::Duration;

use dftp_e2e::*;

const PEER_TIMEOUT: &str = "2s";

fn fast(o: NodeOpts) -> NodeOpts {
    o.arg("--peer-timeout").arg(PEER_TIMEOUT)
}

/// Waits until `node`'s `/find/` satisfies `ok`.
fn wait_find(node: &Node, what: &str, ok: impl Fn(&str) -> bool) {
    wait_until(&format!("{what} on {}", node.name), WAIT, || ok(&node.find()).then_some(()));
}

fn lists(find: &str, path: &str) -> bool {
    find.lines().any(|l| l == path)
}

#[test]
fn changes_on_one_node_reach_the_others() {
    let f = Fixture::start_with(false, fast);
    let beta_root = f.roots[1].path();
    let (alpha, gamma) = (f.node("alpha"), f.node("gamma"));

    // Create.
    write_file(beta_root, "live/new file.txt", b"first version\n");
    for n in [alpha, gamma] {
        wait_find(n, "a new file", |t| lists(t, "/live/new file.txt") && lists(t, "/live"));
    }
    assert_eq!(alpha.get("/fs/live/new%20file.txt").body, b"first version\n");

    // Modify: the content served through another node follows.
    write_file(beta_root, "live/new file.txt", b"second, longer version\n");
    for n in [alpha, gamma] {
        wait_until(&format!("the new content through {}", n.name), WAIT, || {
            (n.get("/fs/live/new%20file.txt").body == b"second, longer version\n").then_some(())
        });
    }

    // Rename a directory with files in it.
    write_file(beta_root, "live/dir/a.txt", b"a\n");
    write_file(beta_root, "live/dir/deeper/b.txt", b"b\n");
    for n in [alpha, gamma] {
        wait_find(n, "a new directory", |t| lists(t, "/live/dir/deeper/b.txt"));
    }
    fs::rename(beta_root.join("live/dir"), beta_root.join("live/renamed")).unwrap();
    for n in [alpha, gamma] {
        wait_find(n, "a renamed directory", |t| {
            lists(t, "/live/renamed/deeper/b.txt") && lists(t, "/live/renamed/a.txt") && !t.contains("/live/dir")
        });
    }
    assert_eq!(gamma.get("/fs/live/renamed/deeper/b.txt").body, b"b\n");

    // Delete.
    fs::remove_file(beta_root.join("live/new file.txt")).unwrap();
    for n in [alpha, gamma] {
        wait_find(n, "a deleted file", |t| !lists(t, "/live/new file.txt") && lists(t, "/live/renamed"));
    }
    assert_eq!(alpha.get("/fs/live/new%20file.txt").status, 404);

    // In the end every node shows exactly the union of the roots.
    f.wait_converged();
}

#[test]
fn a_dead_node_leaves_and_comes_back() {
    let mut f = Fixture::start_with(false, fast);
    let gamma_only = "/gamma.txt";
    let gamma_root = f.roots[2].path().to_path_buf();
    // SIGKILL: no goodbye.
    let gamma = f.nodes.pop().unwrap();
    drop(gamma);
    for n in &f.nodes {
        wait_find(n, "gamma's files to leave", |t| !lists(t, gamma_only) && !lists(t, "/sub dir2/nested/deep.txt"));
        wait_until(&format!("{} to drop gamma from its peers", n.name), WAIT, || {
            (!n.peers().contains("gamma")).then_some(())
        });
    }
    // shared.txt is still there (alpha's copy), and alpha/beta files are untouched.
    let alpha = &f.nodes[0];
    assert!(lists(&alpha.find(), "/shared.txt"));

    // Restart gamma: it joins again and its files come back everywhere.
    let gamma = Node::start(fast(NodeOpts::new("gamma", &gamma_root).join(&alpha.mgmt_addr())));
    f.nodes.push(gamma);
    f.wait_converged();
    for n in &f.nodes {
        assert_eq!(n.get("/fs/gamma.txt").status, 200, "gamma.txt through {}", n.name);
    }
}

#[test]
fn a_node_that_was_down_while_the_tree_changed_catches_up() {
    let mut f = Fixture::start_with(false, fast);
    let alpha_root = f.roots[0].path().to_path_buf();
    let beta_root = f.roots[1].path().to_path_buf();
    let alpha = f.nodes.remove(0);
    drop(alpha);
    // Change beta's tree while alpha is down.
    write_file(&beta_root, "while away/x.txt", b"x\n");
    fs::remove_file(beta_root.join("beta only/x.txt")).unwrap();
    let beta = &f.nodes[0];
    wait_find(beta, "beta's own change", |t| lists(t, "/while away/x.txt"));

    let alpha = Node::start(fast(NodeOpts::new("alpha", &alpha_root).join(&beta.mgmt_addr())));
    f.nodes.insert(0, alpha);
    f.wait_converged();
    let find = f.nodes[0].find();
    assert!(lists(&find, "/while away/x.txt"));
    assert!(!lists(&find, "/beta only/x.txt"));
}

#[test]
fn a_paused_node_gets_the_changes_made_meanwhile() {
    // Two nodes; beta is paused (SIGSTOP) while alpha changes, then resumed: it must end up with
    // alpha's change without any further change on alpha. (Updates lost outright, rather than
    // delayed, are the simulator's business: it can drop messages deterministically.)
    let alpha_root = awkward_tempdir("lost-alpha");
    let beta_root = awkward_tempdir("lost-beta");
    write_file(alpha_root.path(), "a.txt", b"a\n");
    write_file(beta_root.path(), "b.txt", b"b\n");
    let alpha = Node::start(fast(NodeOpts::new("alpha", alpha_root.path())));
    let beta = Node::start(fast(NodeOpts::new("beta", beta_root.path()).join(&alpha.mgmt_addr())));
    wait_find(&beta, "alpha's file", |t| lists(t, "/a.txt"));
    let pid = beta.pid();
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(pid as i32, libc::SIGSTOP) };
    write_file(alpha_root.path(), "while paused.txt", b"p\n");
    std::thread::sleep(Duration::from_millis(800));
    unsafe { libc::kill(pid as i32, libc::SIGCONT) };
    wait_find(&beta, "the change made while it was paused", |t| lists(t, "/while paused.txt"));
    wait_find(&alpha, "beta's file, still", |t| lists(t, "/b.txt"));
}
