//! Where a read goes (`Snapshot::locate`), the decision HTTP and FTP share: every variant, as a
//! node reaches it through its events, and the hop limit.

mod common;

use common::*;
use dftp_core::{file_info, Event, Location, Meta, Mount, Node, Span, Update, MAX_HOPS};

fn update_from(name: &str, files: &[(&str, Meta)]) -> Update {
    Update {
        files: files.iter().map(|(path, meta)| file_info(&p(path), *meta, name, false)).collect(),
        update_time: 0,
        full: true,
        sender_node_name: name.into(),
        epoch: Some(1),
        seq: Some(0),
    }
}

/// Node a serves its root at `data/` and holds `data/x/mine.txt`; peer b holds `data/b.txt`
/// and `other/b.txt`.
fn cluster() -> (Node, dftp_core::Config) {
    let mut cfg = config("a", 1, 1);
    cfg.mount = Mount::parse("data").unwrap();
    let mut a = Node::new(cfg, t0());
    a.handle(t0(), Event::LocalScan(vec![(p("data/x"), dir_meta(1)), (p("data/x/mine.txt"), file_meta(1))]));
    let b = config("b", 2, 1);
    meet(&mut a, t0(), &b);
    a.handle(
        t0(),
        Event::UpdateReceived(update_from("b", &[("data/b.txt", file_meta(2)), ("other/b.txt", file_meta(2))])),
    );
    (a, b)
}

#[test]
fn every_location() {
    let (a, b) = cluster();
    let snap = a.snapshot(t0());

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
    let (mut a, _) = cluster();
    // b stops answering: after the peer timeout its files leave the tree with its address, so
    // a read of one is a 404, never a fetch from a dead address.
    let later = t0() + Span::from_secs(3600);
    run(&mut a, later, Event::Timer, &[]);
    let snap = a.snapshot(later);
    assert_eq!(snap.locate(&p("data/b.txt"), 0), Location::NotFound);
    assert!(matches!(snap.locate(&p("data/x/mine.txt"), 0), Location::LocalFile { .. }));
}
