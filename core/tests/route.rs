//! Where a read goes (`Snapshot::locate`) and where a write goes (`Snapshot::locate_write`), the
//! decisions HTTP and FTP share: every variant, as a node reaches it through its events, and the
//! hop limit.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use dftp_core::{DfsPath, Event, Forward, Location, Mount, Span, Taker, WriteLocation, WriteRefusal, MAX_HOPS};
use dftp_core::{Kind, Meta};
use proptest::prelude::*;

const A: usize = 0;
const B: usize = 1;

/// Node a serves its root at `data/` and holds `data/x/mine.txt`; peer b holds `data/b.txt`
/// and `other/b.txt`. b has joined a, and a has b's files.
fn cluster() -> Net {
    let mut cfg = config("a", 1, 1);
    cfg.mount = Mount::parse("data").unwrap();
    let mut net = Net::new([cfg, config("b", 2, 1)]);
    net.run(A, Event::LocalScan(vec![(p("data/x"), dir_meta(1)), (p("data/x/mine.txt"), file_meta(1))]));
    net.run(B, Event::LocalScan(vec![(p("data/b.txt"), file_meta(2)), (p("other/b.txt"), file_meta(2))]));
    net.join(B, A);
    net
}

#[test]
fn every_location() {
    let net = cluster();
    let snap = net.snapshot(A);
    let b = net.cfg(B);

    assert_eq!(snap.locate(&p("nothing.txt"), 0), Location::NotFound);
    assert!(matches!(snap.locate(&p("data"), 0), Location::Directory(e) if e.path == p("data")));
    assert!(matches!(snap.locate(&p("other"), 0), Location::Directory(_)));

    // A local file, with its path below the mount: what the disk calls it.
    match snap.locate(&p("data/x/mine.txt"), 0) {
        Location::LocalFile { entry, local } => {
            assert_eq!((entry.path, local), (p("data/x/mine.txt"), p("x/mine.txt")));
        }
        other => panic!("{other:?}"),
    }
    // A local file is served from disk whatever the hop count: the request has arrived.
    assert!(matches!(snap.locate(&p("data/x/mine.txt"), MAX_HOPS + 5), Location::LocalFile { .. }));

    // A peer's file: its public address, and one more hop.
    for (path, hops) in [("data/b.txt", 0), ("other/b.txt", 1)] {
        match snap.locate(&p(path), hops) {
            Location::RemoteFile { entry, owner, addr, hops: sent } => {
                assert_eq!((entry.path, owner.as_str(), addr, sent), (p(path), "b", b.public_addr.clone(), hops + 1));
            }
            other => panic!("{path}: {other:?}"),
        }
    }
    assert_eq!(
        snap.locate(&p("data/b.txt"), MAX_HOPS),
        Location::TooManyHops { entry: snap.lookup(&p("data/b.txt")).unwrap(), hops: MAX_HOPS }
    );
}

#[test]
fn a_lost_owner_takes_its_files_along() {
    let mut net = cluster();
    // b stops answering: after the peer timeout its files leave the tree with its address, so
    // a read of one is a 404, never a fetch from a dead address.
    assert!(matches!(net.snapshot(A).locate(&p("data/b.txt"), 0), Location::RemoteFile { .. }));
    net.isolate(B);
    net.now = t0() + Span::from_secs(3600);
    net.tick(A);
    let snap = net.snapshot(A);
    assert_eq!(snap.locate(&p("data/b.txt"), 0), Location::NotFound);
    assert!(matches!(snap.locate(&p("data/x/mine.txt"), 0), Location::LocalFile { .. }));
}

// ---- writes: `Snapshot::locate_write` ------------------------------------------------------

const C: usize = 2;

/// a serves its root at `data/` and holds `data/x/mine.txt`; b (root) holds `data/b.txt`,
/// `other/b.txt`, the file `f.txt` and the directory `shared` (announced at t=2); c (root)
/// holds `shared` (t=3, so it wins) with `shared/c.txt`, and `top.txt`. All have met.
fn three() -> Net {
    let mut cfg = config("a", 1, 1);
    cfg.mount = Mount::parse("data").unwrap();
    let mut net = Net::new([cfg, config("b", 2, 1), config("c", 3, 1)]);
    net.run(A, Event::LocalScan(vec![(p("data/x"), dir_meta(1)), (p("data/x/mine.txt"), file_meta(1))]));
    net.run(
        B,
        Event::LocalScan(vec![
            (p("data"), dir_meta(2)),
            (p("data/b.txt"), file_meta(2)),
            (p("other"), dir_meta(2)),
            (p("other/b.txt"), file_meta(2)),
            (p("f.txt"), file_meta(2)),
            (p("shared"), dir_meta(2)),
        ]),
    );
    net.run(
        C,
        Event::LocalScan(vec![
            (p("shared"), dir_meta(3)),
            (p("shared/c.txt"), file_meta(3)),
            (p("top.txt"), file_meta(3)),
        ]),
    );
    net.join(B, A);
    net.join(C, A);
    assert!(net.diverged().is_empty() || (0..3).all(|i| net.canon(i) == net.canon(A)), "the three agree");
    net
}

fn forward(net: &Net, node: usize, hops: u32) -> Taker {
    Taker::Remote(Forward { owner: net.name(node).into(), addr: net.cfg(node).public_addr.clone(), hops })
}

#[test]
fn an_existing_file_goes_to_its_owner() {
    let net = three();
    let snap = net.snapshot(A);
    match snap.locate_write(&p("data/x/mine.txt"), 0) {
        WriteLocation::File { entry, at } => {
            assert_eq!(entry.path, p("data/x/mine.txt"));
            assert_eq!(at, Taker::Local(p("x/mine.txt")), "the path on a's disk, below its mount");
        }
        other => panic!("{other:?}"),
    }
    // Whatever the hop count: the request has arrived.
    assert!(matches!(
        snap.locate_write(&p("data/x/mine.txt"), MAX_HOPS + 1),
        WriteLocation::File { at: Taker::Local(_), .. }
    ));
    for (path, hops) in [("data/b.txt", 0), ("f.txt", 1)] {
        match snap.locate_write(&p(path), hops) {
            WriteLocation::File { entry, at } => {
                assert_eq!(entry.owner.as_str(), "b");
                assert_eq!(at, forward(&net, B, hops + 1), "{path}");
            }
            other => panic!("{path}: {other:?}"),
        }
    }
    match snap.locate_write(&p("f.txt"), MAX_HOPS) {
        WriteLocation::File { at, .. } => assert_eq!(at, Taker::TooManyHops { owner: "b".into(), hops: MAX_HOPS }),
        other => panic!("{other:?}"),
    }
    // b, asked with a hop already counted, writes its own file.
    assert!(matches!(net.snapshot(B).locate_write(&p("f.txt"), 1), WriteLocation::File { at: Taker::Local(_), .. }));
}

#[test]
fn a_directory_comes_with_every_node_that_holds_part_of_it() {
    let net = three();
    let snap = net.snapshot(A);
    // `data` is a's mount (its root) and b's directory.
    match snap.locate_write(&p("data"), 0) {
        WriteLocation::Directory { entry, local, others } => {
            assert!(entry.is_dir());
            assert_eq!(local, Some(DfsPath::root()), "a's part is its whole served root");
            assert_eq!(others, vec![Forward { owner: "b".into(), addr: net.cfg(B).public_addr.clone(), hops: 1 }]);
        }
        other => panic!("{other:?}"),
    }
    match snap.locate_write(&p("data/x"), 0) {
        WriteLocation::Directory { local, others, .. } => {
            assert_eq!((local, others), (Some(p("x")), vec![]));
        }
        other => panic!("{other:?}"),
    }
    // Nothing of `shared` is a's; b and c each hold a part, b only the empty directory.
    match snap.locate_write(&p("shared"), 0) {
        WriteLocation::Directory { local, others, .. } => {
            assert_eq!(local, None);
            let owners: Vec<_> = others.iter().map(|f| f.owner.as_str()).collect();
            assert_eq!(owners, ["b", "c"]);
        }
        other => panic!("{other:?}"),
    }
    // The root: every node holds part of it; a's part lies below its mount.
    match snap.locate_write(&DfsPath::root(), 0) {
        WriteLocation::Directory { local, others, .. } => {
            assert_eq!(local, Some(DfsPath::root()));
            assert_eq!(others.len(), 2);
        }
        other => panic!("{other:?}"),
    }
    // A request a peer passed on is that peer's fan-out: only the local part is this node's.
    match net.snapshot(B).locate_write(&p("shared"), 1) {
        WriteLocation::Directory { local, others, .. } => assert_eq!((local, others), (Some(p("shared")), vec![])),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_new_path_goes_to_a_holder_of_its_nearest_existing_directory() {
    let net = three();
    let a = net.snapshot(A);
    // a holds `data/x`: a takes it, whatever the depth below.
    let deep = p("data/x/new/er/f.txt");
    let loc = a.locate_write(&deep, 0);
    assert_eq!(loc, WriteLocation::New { dir: p("data/x"), at: Taker::Local(p("x/new/er/f.txt")) });
    assert!(loc.parent_missing(&deep));
    let flat = p("data/x/f.txt");
    let loc = a.locate_write(&flat, 0);
    assert_eq!(loc, WriteLocation::New { dir: p("data/x"), at: Taker::Local(p("x/f.txt")) });
    assert!(!loc.parent_missing(&flat));
    // `data` is a's mount and b's directory: a holds it too, so a takes it.
    assert_eq!(
        a.locate_write(&p("data/n.txt"), 0),
        WriteLocation::New { dir: p("data"), at: Taker::Local(p("n.txt")) }
    );
    // Only b holds `other`.
    assert_eq!(a.locate_write(&p("other/n.txt"), 0), WriteLocation::New { dir: p("other"), at: forward(&net, B, 1) });
    // b and c both hold `shared`: from a, which does not, the conflict rule picks c (newer
    // record); b and c each take it themselves.
    assert_eq!(a.locate_write(&p("shared/n.txt"), 0), WriteLocation::New { dir: p("shared"), at: forward(&net, C, 1) });
    assert_eq!(
        net.snapshot(B).locate_write(&p("shared/n.txt"), 0),
        WriteLocation::New { dir: p("shared"), at: Taker::Local(p("shared/n.txt")) }
    );
    assert_eq!(
        net.snapshot(C).locate_write(&p("shared/n.txt"), 1),
        WriteLocation::New { dir: p("shared"), at: Taker::Local(p("shared/n.txt")) }
    );
    // The root: a cannot create anything outside `data`; b and c (served at the root) can,
    // and the greater name is taken.
    assert_eq!(a.locate_write(&p("n.txt"), 0), WriteLocation::New { dir: DfsPath::root(), at: forward(&net, C, 1) });
    assert_eq!(
        net.snapshot(B).locate_write(&p("n/n.txt"), 0),
        WriteLocation::New { dir: DfsPath::root(), at: Taker::Local(p("n/n.txt")) }
    );
    // The hop limit.
    assert_eq!(
        a.locate_write(&p("other/n.txt"), MAX_HOPS),
        WriteLocation::New { dir: p("other"), at: Taker::TooManyHops { owner: "b".into(), hops: MAX_HOPS } }
    );
}

#[test]
fn a_path_below_a_file_or_where_no_node_may_create_it_is_refused() {
    let net = three();
    let a = net.snapshot(A);
    assert_eq!(a.locate_write(&p("f.txt/x/y"), 0), WriteLocation::Refused(WriteRefusal::AncestorIsFile(p("f.txt"))));
    let why = WriteRefusal::AncestorIsFile(p("f.txt")).to_string();
    assert!(why.contains("/f.txt") && why.contains("not a directory"), "{why}");

    // a alone, served at `data`: nothing outside it can be created.
    let mut cfg = config("a", 1, 1);
    cfg.mount = Mount::parse("data").unwrap();
    let mut net = Net::new([cfg]);
    net.run(A, Event::LocalScan(vec![(p("data/x.txt"), file_meta(1))]));
    let a = net.snapshot(A);
    assert_eq!(a.locate_write(&p("n.txt"), 0), WriteLocation::Refused(WriteRefusal::NoTaker(DfsPath::root())));
    assert!(WriteRefusal::NoTaker(DfsPath::root()).to_string().contains("--dfsmount"));
    assert_eq!(
        a.locate_write(&p("data/n.txt"), 0),
        WriteLocation::New { dir: p("data"), at: Taker::Local(p("n.txt")) }
    );
}

#[test]
fn an_empty_mount_is_a_directory_of_this_node() {
    let mut cfg = config("a", 1, 1);
    cfg.mount = Mount::parse("m/n").unwrap();
    let net = Net::new([cfg]);
    let a = net.snapshot(A);
    match a.locate_write(&p("m/n"), 0) {
        WriteLocation::Directory { entry, local, others } => {
            assert_eq!((entry.owner.as_str(), local, others), ("a", Some(DfsPath::root()), vec![]));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(a.locate_write(&p("m/n/d/f"), 0), WriteLocation::New { dir: p("m/n"), at: Taker::Local(p("d/f")) });
    // Above the mount there is nothing this node can create.
    assert_eq!(a.locate_write(&p("m/x"), 0), WriteLocation::Refused(WriteRefusal::NoTaker(DfsPath::root())));
}

/// A peer's mount is not announced, but it shows: b holds `pm/f.txt` and not `pm`, so `pm` is
/// where b's tree is mounted, and b takes new paths there.
#[test]
fn a_peers_mount_point_is_seen_by_what_it_holds() {
    let mut cfg = config("b", 2, 1);
    cfg.mount = Mount::parse("pm").unwrap();
    let mut net = Net::new([config("a", 1, 1), cfg]);
    net.run(B, Event::LocalScan(vec![(p("pm/f.txt"), file_meta(1)), (p("pm/d"), dir_meta(1))]));
    net.join(B, A);
    let a = net.snapshot(A);
    assert_eq!(a.locate_write(&p("pm/n.txt"), 0), WriteLocation::New { dir: p("pm"), at: forward(&net, B, 1) });
    // b, asked in turn, takes it.
    assert_eq!(
        net.snapshot(B).locate_write(&p("pm/n.txt"), 1),
        WriteLocation::New { dir: p("pm"), at: Taker::Local(p("n.txt")) }
    );
    // a is served at the root (an empty one): it takes new paths there itself.
    assert_eq!(
        a.locate_write(&p("n.txt"), 0),
        WriteLocation::New { dir: DfsPath::root(), at: Taker::Local(p("n.txt")) }
    );
    // b holds no root, and a, which holds nothing yet, shows no mount: b cannot tell that a
    // may take a new top-level path, and refuses it.
    let refused = WriteLocation::Refused(WriteRefusal::NoTaker(DfsPath::root()));
    assert_eq!(net.snapshot(B).locate_write(&p("n.txt"), 0), refused);
    // Once a holds something at the root, it shows: b passes the path to a.
    net.run(A, Event::LocalScan(vec![(p("a.txt"), file_meta(1))]));
    assert_eq!(
        net.snapshot(B).locate_write(&p("n.txt"), 0),
        WriteLocation::New { dir: DfsPath::root(), at: forward(&net, A, 1) }
    );
}

// ---- the property: every node that is up agrees where a new path goes ----------------------

/// One node of a generated cluster: its mount and what its disk holds (local paths).
#[derive(Clone, Debug)]
struct Disk {
    mount: &'static str,
    files: Vec<(DfsPath, bool, i64)>,
}

fn disk_strategy() -> impl Strategy<Value = Disk> {
    let mounts = prop::sample::select(&["", "", "a", "a/b", "b"][..]);
    let files = prop::collection::vec((path_strategy(), any::<bool>(), 0i64..4), 0..5);
    (mounts, files).prop_map(|(mount, files)| Disk { mount, files })
}

/// A disk's records in cluster paths: each path, and the directories above it (a path that is
/// both asked for as a file and needed as a directory is a directory).
fn cluster_records(disk: &Disk) -> BTreeMap<DfsPath, Meta> {
    let mount = Mount::parse(disk.mount).unwrap();
    let mut out = BTreeMap::new();
    for (path, dir, t) in &disk.files {
        for anc in path.ancestors() {
            out.insert(mount.to_cluster(&p(anc)).unwrap(), dir_meta(*t));
        }
        let meta = if *dir { dir_meta(*t) } else { file_meta(*t) };
        out.entry(mount.to_cluster(path).unwrap()).or_insert(meta);
    }
    // A "file" with something below it is a directory on a real disk.
    let below: Vec<DfsPath> = out.keys().filter_map(|k| k.parent()).collect();
    for d in below {
        if let Some(m) = out.get_mut(&d) {
            if !m.is_dir() {
                *m = dir_meta(m.info_updated);
            }
        }
    }
    out
}

/// Whether node `n` holds directory `dir` as the core can know it when asked at node `r`: as a
/// directory on its disk, or as its mount point (which a peer shows only by holding something).
fn model_holds(disks: &[Disk], records: &[BTreeMap<DfsPath, Meta>], n: usize, dir: &DfsPath, r: usize) -> bool {
    let as_dir = !dir.is_root() && records[n].get(dir).is_some_and(|m| m.is_dir());
    let mount = Mount::parse(disks[n].mount).unwrap();
    as_dir || (mount.path() == dir && (n == r || !records[n].is_empty()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Whatever node receives a write of a new path: it takes it when it holds the nearest
    /// existing directory; otherwise every such node passes it to the same holder, which takes
    /// it when asked in turn (one hop); and it is refused exactly when no node holds that
    /// directory, or when something above the path is a file.
    #[test]
    fn every_node_agrees_where_a_new_path_goes(
        disks in prop::collection::vec(disk_strategy(), 3),
        asked in prop::collection::vec(path_strategy(), 1..8),
    ) {
        let cfgs = disks.iter().enumerate().map(|(i, d)| {
            let mut cfg = config(NODES[i], i as u8 + 1, 1);
            cfg.mount = Mount::parse(d.mount).unwrap();
            cfg
        });
        let mut net = Net::new(cfgs);
        let records: Vec<_> = disks.iter().map(cluster_records).collect();
        for (i, rec) in records.iter().enumerate() {
            *net.disk_mut(i) = rec.clone();
            net.run(i, Event::LocalScan(rec.iter().map(|(p, m)| (p.clone(), *m)).collect()));
        }
        net.join(1, 0);
        net.join(2, 0);
        prop_assert!(net.diverged().is_empty(), "the cluster has converged");
        let canon = net.canon(0);
        let kind_of = |path: &DfsPath| canon.iter().find(|e| e.0 == path.as_str()).map(|e| e.1);
        let mounts: Vec<DfsPath> = disks.iter().map(|d| Mount::parse(d.mount).unwrap().path().clone()).collect();

        for path in asked.iter().filter(|q| kind_of(q).is_none() && !mounts.contains(q)) {
            let mut remote_owners = BTreeSet::new();
            for r in 0..3 {
                // The nearest existing ancestor as r sees it: in the tree, or r's own mount.
                let mut nearest = (DfsPath::root(), Some(Kind::Dir));
                for anc in path.ancestors().map(p) {
                    if let Some(kind) = kind_of(&anc) {
                        nearest = (anc, Some(kind));
                        break;
                    }
                    if anc == mounts[r] {
                        nearest = (anc, None);
                        break;
                    }
                }
                let (dir, kind) = nearest;
                let loc = net.snapshot(r).locate_write(path, 0);
                if kind == Some(Kind::File) {
                    prop_assert_eq!(loc, WriteLocation::Refused(WriteRefusal::AncestorIsFile(dir)));
                    continue;
                }
                let holders: Vec<usize> = (0..3).filter(|&n| model_holds(&disks, &records, n, &dir, r)).collect();
                match loc {
                    WriteLocation::New { dir: got, at } => {
                        prop_assert_eq!(&got, &dir);
                        match at {
                            Taker::Local(local) => {
                                prop_assert!(holders.contains(&r), "{} takes {:?} without holding {:?}", r, path, dir);
                                let mount = Mount::parse(disks[r].mount).unwrap();
                                prop_assert_eq!(Some(local.as_str()), mount.to_local(path));
                            }
                            Taker::Remote(f) => {
                                prop_assert!(!holders.contains(&r), "{} holds {:?} but passes {:?} on", r, dir, path);
                                prop_assert_eq!(f.hops, 1);
                                let t = (0..3).find(|&n| net.name(n) == f.owner).unwrap();
                                prop_assert!(holders.contains(&t), "{:?} goes to {}, which does not hold {:?}", path, t, dir);
                                let there = net.snapshot(t).locate_write(path, 1);
                                prop_assert!(matches!(there, WriteLocation::New { at: Taker::Local(_), .. }), "{:?} at {}: {:?}", path, t, there);
                                remote_owners.insert(f.owner);
                            }
                            other => prop_assert!(false, "{:?}: {:?}", path, other),
                        }
                    }
                    WriteLocation::Refused(WriteRefusal::NoTaker(got)) => {
                        prop_assert_eq!(&got, &dir);
                        prop_assert!(holders.is_empty(), "{:?} refused at {} though {:?} hold {:?}", path, r, holders, dir);
                    }
                    other => prop_assert!(false, "{:?} at {}: {:?}", path, r, other),
                }
            }
            prop_assert!(remote_owners.len() <= 1, "{:?} goes to different nodes: {:?}", path, remote_owners);
        }
    }
}
