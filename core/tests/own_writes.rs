//! A node's own writes (PUT, DELETE, MKCOL, MOVE, COPY; FTP STOR and the rest): the shell
//! reports what changed on disk as soon as the write is done, with the events the watcher uses
//! (`LocalChanges`, `LocalSubtrees`), and
//! - the change goes to every live peer in that very step, not after a debounce or a timer;
//! - the watcher, reporting the same change again later, changes nothing and sends nothing;
//! - a node that passed the write on can tell when it has the owner's update that carries it.

mod common;

use std::collections::BTreeSet;

use common::*;
use dftp_core::{Action, Change, DfsPath, Event, Meta, StreamPos};

const A: usize = 0;
const B: usize = 1;
const C: usize = 2;

/// a, b and c have met; a holds `d/old.txt`.
fn three() -> Net {
    let mut net = Net::new([config("a", 1, 1), config("b", 2, 1), config("c", 3, 1)]);
    net.change(A, vec![(p("d"), Some(dir_meta(1))), (p("d/old.txt"), Some(file_meta(1)))]);
    net.join(B, A);
    net.join(C, A);
    assert!(net.in_flight().is_empty());
    assert!(net.diverged().is_empty());
    net
}

/// The peers an update went to among `actions`.
fn updated(actions: &[Action]) -> BTreeSet<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::SendUpdate { to, .. } | Action::SendFullUpdate { to, .. } => Some(to.to_string()),
            _ => None,
        })
        .collect()
}

/// What a write of `d/new.txt` changes on a's disk: the file, and its directory's times.
fn write_of_new_txt() -> Vec<Change> {
    vec![Change::Upsert(p("d/new.txt"), file_meta(5)), Change::Upsert(p("d"), dir_meta(5))]
}

/// The same change as the watcher reports it after its debounce: a rescan of the changed path
/// and a fresh record of its directory.
fn watcher_sees(path: &DfsPath, meta: Meta, dir: &DfsPath, dir_meta: Meta) -> [Event; 2] {
    [
        Event::LocalSubtrees(vec![(path.clone(), vec![(path.clone(), meta)])]),
        Event::LocalChanges(vec![Change::Upsert(dir.clone(), dir_meta)]),
    ]
}

#[test]
fn a_write_goes_to_every_peer_in_the_step_that_reports_it() {
    let mut net = three();
    let actions = net.handle(A, Event::LocalChanges(write_of_new_txt()));
    assert_eq!(updated(&actions), BTreeSet::from(["b".to_string(), "c".to_string()]), "{actions:?}");
    // Already on the wire, with no timer run: delivering what is in flight is enough.
    net.settle();
    for i in [B, C] {
        let entry = net.snapshot(i).lookup(&p("d/new.txt")).expect("the peer has the new file");
        assert_eq!((entry.owner.as_str(), entry.meta), ("a", Some(file_meta(5))));
    }
}

#[test]
fn the_watcher_seeing_a_write_again_sends_nothing() {
    let mut net = three();
    net.change(A, vec![(p("d/new.txt"), Some(file_meta(5))), (p("d"), Some(dir_meta(5)))]);
    assert!(net.diverged().is_empty());
    for event in watcher_sees(&p("d/new.txt"), file_meta(5), &p("d"), dir_meta(5)) {
        let actions = net.handle(A, event);
        assert!(updated(&actions).is_empty(), "a second update: {actions:?}");
    }
    assert!(net.in_flight().is_empty(), "{:?}", net.in_flight());

    // A directory deleted with everything in it: reported at once, then seen again.
    let gone = || Event::LocalSubtrees(vec![(p("d"), vec![])]);
    let actions = net.handle(A, gone());
    assert_eq!(updated(&actions).len(), 2, "{actions:?}");
    net.settle();
    let actions = net.handle(A, gone());
    assert!(updated(&actions).is_empty(), "a second update: {actions:?}");
    assert!(net.in_flight().is_empty());
    net.disk_mut(A).clear();
    assert!(net.diverged().is_empty());

    // A change the watcher finds that the write did not report (the file changed again since)
    // does go out: the rule is "nothing new, nothing sent", not "the watcher is ignored".
    net.change(A, vec![(p("e.txt"), Some(file_meta(6)))]);
    let [rescan, _] = watcher_sees(&p("e.txt"), file_meta(7), &p("e"), dir_meta(7));
    assert_eq!(updated(&net.handle(A, rescan)).len(), 2);
}

#[test]
fn a_node_that_passed_a_write_on_can_tell_when_it_has_the_change() {
    let mut net = three();
    let before = net.snapshot(A).stream_pos();
    net.handle(A, Event::LocalChanges(write_of_new_txt()));
    let pos = net.snapshot(A).stream_pos();
    assert!(pos > before, "the write's update has a position of its own: {before:?} then {pos:?}");
    assert!(net.snapshot(B).has_applied("a", before));
    assert!(!net.snapshot(B).has_applied("a", pos), "not before the update arrives");
    net.settle();
    assert!(net.snapshot(B).has_applied("a", pos));
    assert!(net.snapshot(B).lookup(&p("d/new.txt")).is_some());
    // Another run of a (a restart) is not the same stream: its positions do not count.
    let other_run = StreamPos { epoch: pos.epoch + 1, seq: 0 };
    assert!(!net.snapshot(B).has_applied("a", other_run));
    assert!(!net.snapshot(B).has_applied("nobody", pos));
}
