//! `POST /update/` bodies: parse, then apply to a node that knows the sender, and to a bare tree
//! whose derived data must stay consistent. Nothing may panic, whatever the body.

#![no_main]

use dftp_core::{
    file_info, Config, DfsPath, Event, FileMode, Greeting, Meta, Node, PeerAddr, Time, Tree, Update, UpdateHeader,
};
use libfuzzer_sys::fuzz_target;

fn addr(port: u16) -> PeerAddr {
    PeerAddr::new_unchecked("127.0.0.1", port)
}

fn now() -> Time {
    Time::from_secs(1_800_000_000)
}

/// A node with a few files of its own, so that the update's paths can collide with them.
fn node_knowing(sender: &str) -> Node {
    let own = if sender == "self" { "other-self" } else { "self" };
    let mut node = Node::new(Config::new(own, "dftp", addr(7040), addr(7041), 1), now());
    let meta = Meta { mode: FileMode::file(0o644), size: 3, modified: 1_700_000_000, info_updated: 1_700_000_000 };
    let dir = Meta { mode: FileMode::dir(0o755), ..meta };
    let local = ["test.txt", "somedir", "somedir/a.txt", "shared.txt", "a/b/c"]
        .iter()
        .map(|p| (DfsPath::parse(p).unwrap(), if *p == "somedir" { dir } else { meta }))
        .collect();
    node.handle(now(), Event::LocalScan(local));
    // Constructed directly, not parsed: the node must cope with any name it is handed.
    let greeting =
        Greeting { name: sender.into(), public_addr: addr(8040), mgmt_addr: addr(8041), request_full_update: false };
    node.handle(now(), Event::GreetingReceived { greeting, from_host: Some("127.0.0.2".into()) });
    node
}

fuzz_target!(|data: &[u8]| {
    let Ok(update) = Update::from_json(data) else { return };

    // What we parse, we write back and read again unchanged.
    let again = Update::from_json(&update.to_json()).expect("our own update JSON parses");
    assert_eq!(again, update);

    // Through the node, twice (a repeated update must be harmless), then as the other kind.
    let mut node = node_knowing(&update.sender_node_name);
    node.handle(now(), Event::UpdateReceived(update.clone()));
    node.handle(now(), Event::UpdateReceived(update.clone()));
    let mut flipped = update.clone();
    flipped.full = !flipped.full;
    flipped.seq = flipped.seq.map(|s| s.wrapping_add(1));
    node.handle(now(), Event::UpdateReceived(flipped));
    // The sender restarted: a new epoch, its numbering starting over.
    let mut restarted = update.clone();
    restarted.full = false;
    restarted.epoch = Some(update.epoch.unwrap_or(0).wrapping_add(1));
    restarted.seq = Some(1);
    node.handle(now(), Event::UpdateReceived(restarted));
    let snap = node.snapshot(now());
    let paths: Vec<DfsPath> = snap.find("").collect();
    assert!(paths.windows(2).all(|w| w[0] < w[1]), "find is sorted and has no duplicates");
    for p in paths.iter().take(64) {
        let entry = snap.lookup(p).expect("every path find lists can be looked up");
        if entry.is_dir() {
            snap.list(p).expect("a directory can be listed");
        }
        if let Some(parent) = p.parent() {
            let listed = snap.list(&parent).expect("the parent of a listed path is a directory");
            assert!(listed.iter().any(|e| e.path == *p), "{p:?} is listed in its parent");
        }
    }

    // The same files as a bare tree held by two nodes, applied one by one.
    let mut tree = Tree::new();
    let (a, b) = (tree.intern("a"), tree.intern("b"));
    let mut items = Vec::new();
    for f in &update.files {
        let Ok(path) = DfsPath::parse(&f.full_name) else { continue };
        let mode = if f.dir { FileMode(f.file_mode.0 | FileMode::DIR) } else { f.file_mode };
        let meta = Meta { mode, size: f.size_in_bytes, modified: f.last_modified, info_updated: f.last_info_updated };
        if f.deletion {
            tree.remove(b, &path);
        } else {
            tree.upsert(b, path.clone(), meta);
            items.push((path, meta));
        }
    }
    tree.replace_view(a, items.clone());
    tree.check_invariants().expect("derived data matches a recomputation");
    tree.replace_view(a, items.iter().step_by(2).cloned().collect());
    tree.check_invariants().expect("derived data matches after pruning");
    tree.drop_node(b);
    tree.check_invariants().expect("derived data matches after dropping a node");

    // A node whose own scan holds these files streams a full update that parses back.
    let mut node = node_knowing("peer");
    node.handle(now(), Event::LocalScan(items));
    let snap = node.snapshot(now());
    let header = UpdateHeader { update_time: 1, epoch: 2, seq: 3 };
    let body: Vec<u8> = snap.full_update_body(header, 256).flatten().collect();
    let sent = Update::from_json(&body).expect("our streamed full update is valid JSON");
    assert_eq!(sent.files.len(), snap.local_count());
    for (f, (p, m)) in sent.files.iter().zip(snap.local_files()) {
        assert_eq!(f, &file_info(&p, m, snap.me(), false));
    }
});
