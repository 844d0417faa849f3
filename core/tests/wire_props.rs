//! Properties of what the core parses from outside: paths (e), update bodies (f), and the other
//! wire forms never panicking on arbitrary input.

mod common;

use common::*;
use dftp_core::{
    file_info, parse_join_form, Announcement, ClusterInfo, DfsPath, Event, FileInfo, FileMode, Greeting, Meta, Mount,
    PeerAddr, Update, UpdateHeader, UpdateParser,
};
use proptest::collection::vec;
use proptest::prelude::*;
use smol_str::SmolStr;

/// Whether `s` is an acceptable relative path, decided independently of `DfsPath::parse`.
fn valid_path(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= dftp_core::path::MAX_PATH_LEN
        && s.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && !seg.contains(['\0', '\\'])
                && !seg.contains(char::is_control)
        })
}

/// Strings over an alphabet where every kind of bad path is likely.
fn tricky_string() -> impl Strategy<Value = String> {
    vec(prop::sample::select(vec!["a", "b", ".", "..", "/", "\\", "\0", "é", " ", "%2e", "\n", "\u{85}"]), 0..10)
        .prop_map(|parts| parts.concat())
}

fn smol() -> impl Strategy<Value = SmolStr> {
    any::<String>().prop_map(SmolStr::from)
}

fn file_info_strategy() -> impl Strategy<Value = FileInfo> {
    ((smol(), any::<bool>(), any::<i64>(), any::<i64>()), (any::<u64>(), any::<u32>(), smol(), any::<bool>())).prop_map(
        |((full_name, dir, last_modified, last_info_updated), (size, mode, owner, deletion))| FileInfo {
            full_name,
            dir,
            last_modified,
            last_info_updated,
            size_in_bytes: size,
            file_mode: FileMode(mode),
            owner_node: owner,
            deletion,
        },
    )
}

fn update_strategy() -> impl Strategy<Value = Update> {
    (
        vec(file_info_strategy(), 0..5),
        any::<i64>(),
        any::<bool>(),
        smol(),
        prop::option::of(any::<u64>()),
        prop::option::of(any::<u64>()),
    )
        .prop_map(|(files, update_time, full, sender_node_name, epoch, seq)| Update {
            files,
            update_time,
            full,
            sender_node_name,
            epoch,
            seq,
            buckets: None,
        })
}

/// Segments that need escaping in JSON (or look as if they might), plus the usual small
/// alphabet. Control characters, which JSON escapes too, are no part of a path.
fn json_path_strategy() -> impl Strategy<Value = DfsPath> {
    let segs = vec!["a", "b", "a.txt", "q\"uote", "line\u{2028}sep", "<b>&", "ünï", "dash-1", "x y"];
    vec(prop::sample::select(segs), 1..=3).prop_map(|s| p(&s.join("/")))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// (e) An accepted path is exactly the input, with no empty, `.` or `..` segment and no NUL,
    /// backslash or other control character; a refused one really is bad. Never a panic.
    #[test]
    fn accepted_paths_round_trip(s in prop_oneof![tricky_string(), any::<String>()]) {
        let parsed = DfsPath::parse(&s);
        prop_assert_eq!(parsed.is_ok(), valid_path(&s), "{:?} -> {:?}", s, parsed);
        if let Ok(path) = parsed {
            prop_assert_eq!(path.as_str(), s.as_str());
            for seg in path.as_str().split('/') {
                prop_assert!(!seg.is_empty() && seg != "." && seg != "..");
                prop_assert!(!seg.contains('\0') && !seg.contains('\\') && !seg.contains(char::is_control));
            }
            prop_assert_eq!(path.to_string(), format!("/{s}"));
            // The request form with slashes around it means the same path.
            prop_assert_eq!(DfsPath::parse_request(&format!("/{s}/")), Ok(path.clone()));
            // Parent and name put back together give the path.
            let parent = path.parent().expect("a non-root path has a parent");
            prop_assert_eq!(parent.join(path.name()), Ok(path.clone()));
            prop_assert!(path.is_within(&parent));
            for anc in path.ancestors() {
                let anc = DfsPath::parse(anc).expect("an ancestor is a valid path");
                prop_assert!(path.is_within(&anc));
            }
        } else {
            let e = DfsPath::parse(&s).unwrap_err();
            prop_assert!(!e.to_string().is_empty());
        }
        // The request parser agrees on everything between the slashes.
        let _ = DfsPath::parse_request(&s);
        let _ = Mount::parse(&s);
    }

    /// (e) Mount prefixes join and strip on segment boundaries: `data` never matches `database/x`.
    #[test]
    fn mounts_work_on_segment_boundaries(mount in path_strategy(), local in path_strategy(), other in path_strategy()) {
        let m = Mount::parse(&format!("/{}/", mount.as_str())).expect("a valid mount");
        prop_assert_eq!(m.path(), &mount);
        let cluster = m.to_cluster(&local).expect("joins");
        prop_assert_eq!(cluster.as_str(), format!("{}/{}", mount.as_str(), local.as_str()));
        prop_assert_eq!(m.to_local(&cluster), Some(local.as_str()));
        let inside = other.as_str() == mount.as_str() || other.as_str().starts_with(&format!("{}/", mount.as_str()));
        prop_assert_eq!(m.to_local(&other).is_some(), inside, "mount {:?}, path {:?}", mount, other);
        prop_assert_eq!(other.is_within(&mount), inside);
    }

    /// (f) The update body round-trips through JSON, with the seed's field names.
    #[test]
    fn update_round_trips_through_json(u in update_strategy()) {
        let json = u.to_json();
        prop_assert_eq!(Update::from_json(&json), Ok(u.clone()));
        let value: serde_json::Value = serde_json::from_slice(&json).expect("valid JSON");
        let obj = value.as_object().expect("an object");
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort_unstable();
        let mut want = vec!["Files", "Full", "SenderNodeName", "UpdateTime"];
        if u.epoch.is_some() {
            want.push("Epoch");
        }
        if u.seq.is_some() {
            want.push("Seq");
        }
        want.sort_unstable();
        prop_assert_eq!(keys, want);
        for f in obj["Files"].as_array().expect("Files is a list") {
            let mut fkeys: Vec<&str> = f.as_object().expect("a record").keys().map(String::as_str).collect();
            fkeys.sort_unstable();
            prop_assert_eq!(
                fkeys,
                vec!["Basename", "Deletion", "Dir", "FileMode", "FullName", "LastInfoUpdated", "LastModified",
                     "OwnerNode", "SizeInBytes"]
            );
        }
    }

    /// (f) A full update body streamed in chunks of any size parses as an Update listing exactly
    /// the node's local files (not its peers'), and applying it elsewhere reproduces them.
    #[test]
    fn full_update_body_parses_as_the_local_files(
        files in vec((json_path_strategy(), meta_strategy()), 0..12),
        peer_files in vec((json_path_strategy(), meta_strategy()), 0..6),
        chunk in 1usize..400,
        header in (any::<i64>(), any::<u64>(), any::<u64>()),
    ) {
        let mut net = Net::new([config("me", 1, 5), config("peer", 2, 9), config("other", 3, 1)]);
        let (me, peer, other) = (0, 1, 2);
        net.chunk = chunk;
        net.run(me, Event::LocalScan(files.clone()));
        // A peer's files are in the tree but must not be in this node's full update.
        net.run(peer, Event::LocalScan(peer_files));
        net.join(peer, me);
        let snap = net.snapshot(me);
        for path in net.local_files(peer).keys() {
            prop_assert!(snap.lookup(path).is_some(), "the peer's {:?} is in the tree", path);
        }

        let header = UpdateHeader { update_time: header.0, epoch: header.1, seq: header.2 };
        let chunks: Vec<Vec<u8>> = snap.full_update_body(header, chunk).collect();
        prop_assert!(!chunks.is_empty());
        prop_assert!(chunks.iter().all(|c| !c.is_empty()));
        if let Some((_, init)) = chunks.split_last() {
            prop_assert!(init.iter().all(|c| c.len() >= chunk), "only the last chunk may be short");
        }
        let body = chunks.concat();
        let u = Update::from_json(&body).map_err(|e| TestCaseError::fail(format!("{e}: {}", String::from_utf8_lossy(&body))))?;
        prop_assert!(u.full);
        prop_assert_eq!(u.sender_node_name.as_str(), "me");
        prop_assert_eq!((u.update_time, u.epoch, u.seq), (header.update_time, Some(header.epoch), Some(header.seq)));

        let local: std::collections::BTreeMap<DfsPath, Meta> = files.iter().cloned().collect();
        let want: Vec<FileInfo> = local.iter().map(|(p, m)| file_info(p, *m, "me", false)).collect();
        prop_assert_eq!(&u.files, &want);

        // Applied on another node, it reproduces this node's files exactly. The other node
        // meets this one first (holding what is sent to it), so that it knows the sender.
        net.hold_updates_to(other);
        net.join(other, me);
        net.run(other, Event::UpdateReceived(u));
        let mut model = Model::new();
        model.insert("me".into(), local);
        prop_assert_eq!(net.canon(other), model_canon(&model));
        // And the full update this node really sent the other at the meeting, streamed in
        // chunks of the same size, lists the same files.
        let sent = net.take_held(me, other);
        prop_assert_eq!(sent.len(), 1);
        prop_assert!(sent[0].full);
        prop_assert_eq!(&sent[0].files, &want);
    }

    /// The incremental parser gives what `from_json` gives, wherever the body is cut.
    #[test]
    fn update_parser_agrees_with_from_json(u in update_strategy(), cuts in vec(any::<prop::sample::Index>(), 0..6)) {
        let json = u.to_json();
        let mut at: Vec<usize> = cuts.iter().map(|i| i.index(json.len() + 1)).collect();
        at.sort_unstable();
        let mut p = UpdateParser::new();
        let mut from = 0;
        for cut in at.into_iter().chain([json.len()]) {
            p.push(&json[from..cut]).expect("a valid body");
            from = cut;
        }
        prop_assert_eq!(p.finish(), Ok(u));
    }

    /// Nothing parsed from outside panics on arbitrary bytes, and the incremental parser
    /// accepts exactly what `from_json` accepts.
    #[test]
    fn parsers_never_panic(bytes in vec(any::<u8>(), 0..200), s in any::<String>()) {
        let whole = Update::from_json(&bytes);
        let mut p = UpdateParser::new();
        let streamed = p.push(&bytes).and_then(|()| p.finish());
        prop_assert_eq!(whole.is_ok(), streamed.is_ok(), "{:?}", String::from_utf8_lossy(&bytes));
        if let (Ok(a), Ok(b)) = (whole, streamed) {
            prop_assert_eq!(a, b);
        }
        let _ = ClusterInfo::from_json(&bytes);
        let _ = Announcement::from_json(&bytes);
        let _ = Greeting::from_form(&bytes);
        let _ = parse_join_form(&bytes);
        let _ = Greeting::from_form(s.as_bytes());
        let _ = parse_join_form(s.as_bytes());
        if let Ok(a) = PeerAddr::parse(&s) {
            // An accepted address prints back as a parseable one.
            prop_assert_eq!(PeerAddr::parse(&a.to_string()), Ok(a.clone()));
            prop_assert!(a.port() != 0);
        }
    }

    /// An address without a port is an error value, never a panic.
    #[test]
    fn addresses_without_a_port_are_errors(host in "[a-z0-9.\\-]{0,20}") {
        prop_assert!(PeerAddr::parse(&host).is_err());
        let empty_port = format!("{host}:");
        prop_assert!(PeerAddr::parse(&empty_port).is_err());
        let form = format!("name=x&public-addr={host}&mgmt-addr=h%3A1");
        prop_assert!(Greeting::from_form(form.as_bytes()).is_err());
        let join = format!("peer={host}");
        prop_assert!(parse_join_form(join.as_bytes()).is_err());
    }
}
