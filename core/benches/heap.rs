//! Heap bytes per file in the merged tree, measured with a counting allocator.
//!
//! Run with `cargo bench -p dftp-core --bench heap`. Prints `heap bytes per file: N`; the
//! issue's target is at most 200. A separate target, so that the counting allocator does not
//! slow down the timed benchmarks in `tree`.

use dftp_core::{Config, DfsPath, Event, Greeting, Node, PeerAddr, Time, Tree};

mod common;

#[path = "common/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::live;

fn main() {
    let items = common::items();
    let n = items.len();
    let files = common::FILES;
    println!(
        "corpus: {files} files + {} directories, mean path length {:.1} bytes",
        n - files,
        common::mean_path_len(&items)
    );

    // The path strings alone: what a compact path store would still have to keep.
    let before = live();
    let paths: Vec<DfsPath> = items.iter().map(|(p, _)| DfsPath::parse(p.as_str()).unwrap()).collect();
    let vec_bytes = (paths.capacity() * std::mem::size_of::<DfsPath>()) as isize;
    let path_heap = live() - before - vec_bytes;
    drop(paths);

    // The merged tree built directly.
    let before = live();
    let mut tree = Tree::new();
    let id = tree.intern(common::SENDER);
    let changes = tree.replace_view(id, items.iter().map(|(p, m)| (DfsPath::parse(p.as_str()).unwrap(), *m)).collect());
    assert_eq!(changes.len(), n);
    drop(changes);
    let tree_heap = live() - before;
    drop(tree);

    // The same through the node, from a parsed update body: what a running daemon holds.
    let before = live();
    let update = common::full_update(&items);
    // The node consumes and frees the update; count only what it keeps.
    let update_heap = live() - before;
    drop(items);
    let addr = |port| PeerAddr::new_unchecked("127.0.0.1", port);
    let now = Time::from_secs(1_800_000_000);
    let before = live();
    let mut node = Node::new(Config::new("node-a", "bench", addr(7040), addr(7041), 1), now);
    let greeting = Greeting {
        name: common::SENDER.into(),
        public_addr: addr(8040),
        mgmt_addr: addr(8041),
        request_full_update: false,
    };
    node.handle(now, Event::GreetingReceived { greeting, from_host: None });
    node.handle(now, Event::UpdateReceived(update));
    let node_heap = live() - before + update_heap;
    assert!(node.snapshot(now).lookup(&common::list_dir()).is_some());

    let per = |b: isize| b as f64 / files as f64;
    println!("path strings: {path_heap} bytes, {:.1} per file", per(path_heap));
    println!("merged tree (Tree::replace_view): {tree_heap} bytes, {:.1} per file", per(tree_heap));
    println!("node after a full update: {node_heap} bytes, {:.1} per file", per(node_heap));
    println!("heap bytes per file: {}", per(node_heap).round() as i64);
    drop(node);
}
