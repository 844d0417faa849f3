//! Where a read goes (`Snapshot::locate`), the decision HTTP and FTP share: every variant, as a
//! node reaches it through its events, and the hop limit.

mod common;

use common::*;
use dftp_core::{Event, Location, Mount, Span, MAX_HOPS};

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
