//! The captured bytes of the original Go nodes (`tests/fixtures/seed-wire/`), read at test time: each
//! body parses, re-serialises with the same field names and values, and means to a node what
//! it meant to the original.

mod common;

use common::*;
use dftp_core::{
    Action, Announcement, ClusterInfo, Config, DfsPath, Event, FileMode, Greeting, Kind, Meta, Node, Notice, Owner,
    PeerAddr, Time, Update, UpdateHeader, WireError,
};
use serde_json::Value;

const WIRE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/seed-wire/");

fn read(name: &str) -> Vec<u8> {
    let path = format!("{WIRE}{name}");
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading the seed capture {path}: {e}"))
}

/// One HTTP message of a capture: its start line, headers and body (`Content-Length` bytes after
/// the blank line).
struct Http {
    start: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Http {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

fn parse_http(bytes: &[u8]) -> Http {
    let split = bytes.windows(4).position(|w| w == b"\r\n\r\n").expect("a blank line after the headers");
    let head = std::str::from_utf8(&bytes[..split]).expect("ASCII headers");
    let mut lines = head.split("\r\n");
    let start = lines.next().expect("a start line").to_string();
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (k, v) = l.split_once(':').expect("a header line");
            (k.trim().to_string(), v.trim().to_string())
        })
        .collect();
    let mut msg = Http { start, headers, body: Vec::new() };
    let len: usize = msg.header("Content-Length").expect("a Content-Length").parse().expect("a number");
    let rest = &bytes[split + 4..];
    assert!(rest.len() >= len, "the capture holds the whole body");
    msg.body = rest[..len].to_vec();
    msg
}

/// The requests the original node sent to a fake peer.
fn outgoing_requests() -> Vec<Http> {
    let capture = read("A_outgoing_requests_captured_by_fake_peer.txt");
    let marker = b"=====REQUEST=====\n";
    let mut starts: Vec<usize> =
        capture.windows(marker.len()).enumerate().filter(|(_, w)| *w == marker).map(|(i, _)| i).collect();
    assert_eq!(starts.len(), 2, "the capture holds two requests");
    starts.push(capture.len());
    starts.windows(2).map(|w| parse_http(&capture[w[0] + marker.len()..w[1]])).collect()
}

fn update_body() -> Vec<u8> {
    let reqs = outgoing_requests();
    assert_eq!(reqs[0].start, "POST /update/ HTTP/1.1");
    assert_eq!(reqs[0].header("Content-Type"), Some("application/json"));
    reqs[0].body.clone()
}

fn greeting_body() -> Vec<u8> {
    let reqs = outgoing_requests();
    assert_eq!(reqs[1].start, "POST /cluster/ HTTP/1.1");
    assert_eq!(reqs[1].header("Content-Type"), Some("application/x-www-form-urlencoded"));
    reqs[1].body.clone()
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(bytes)))
}

/// The captured JSON as serde_json would write it: Go's `json.Encoder` ends the document with a
/// newline and escapes `<`, `>` and `&` in strings. Same JSON either way.
fn as_serde_writes_it(body: &[u8]) -> String {
    let s = std::str::from_utf8(body).expect("UTF-8");
    let s = s.strip_suffix('\n').unwrap_or(s);
    s.replace("\\u003c", "<").replace("\\u003e", ">").replace("\\u0026", "&")
}

/// The multicast packets: `(sender, payload)` from the `b'...'` reprs, checked against `len=`.
fn multicast_packets() -> Vec<(String, Vec<u8>)> {
    let text = String::from_utf8(read("multicast_captured_packets.txt")).expect("text");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let from = line.strip_prefix("from ").and_then(|r| r.split(' ').next()).expect("from <addr>");
            let len: usize = line
                .split("len=")
                .nth(1)
                .and_then(|r| r.split(':').next())
                .and_then(|n| n.parse().ok())
                .expect("len=<n>");
            let start = line.find("b'").expect("a b'...' payload") + 2;
            let end = line.rfind('\'').expect("a closing quote");
            let payload = unescape_python_bytes(&line[start..end]);
            assert_eq!(payload.len(), len, "{line}");
            (from.to_string(), payload)
        })
        .collect()
}

fn unescape_python_bytes(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match bytes.next() {
            Some(b'n') => out.push(b'\n'),
            Some(b'r') => out.push(b'\r'),
            Some(b't') => out.push(b'\t'),
            Some(b'x') => {
                let hex: Vec<u8> = bytes.by_ref().take(2).collect();
                let hex = std::str::from_utf8(&hex).expect("hex digits");
                out.push(u8::from_str_radix(hex, 16).expect("hex digits"));
            }
            Some(other) => out.push(other),
            None => out.push(b'\\'),
        }
    }
    out
}

fn meta_of(f: &dftp_core::FileInfo) -> Meta {
    Meta { mode: f.file_mode, size: f.size_in_bytes, modified: f.last_modified, info_updated: f.last_info_updated }
}

fn entries_of(u: &Update) -> Vec<(&str, &dftp_core::FileInfo)> {
    u.files.iter().map(|f| (f.full_name.as_str(), f)).collect()
}

// ---- the update body ---------------------------------------------------------------------------

#[test]
fn captured_update_parses_and_reserialises_with_the_same_fields() {
    let body = update_body();
    let u = Update::from_json(&body).expect("the captured update parses");
    assert!(u.full);
    assert_eq!(u.sender_node_name, "nodeA");
    assert_eq!(u.update_time, 1795605982);
    assert_eq!((u.epoch, u.seq), (None, None), "the original sends no sequence numbers");
    let names: Vec<&str> = u.files.iter().map(|f| f.full_name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            ".hidden",
            "<b>.html",
            "a_very_long_file_name_that_exceeds_fifty_characters_for_sure.txt",
            "dirlink",
            "emptydir",
            "link-outside",
            "shared.txt",
            "somedir",
            "somedir/a.txt",
            "somedir/g.gif",
            "test.txt",
        ]
    );
    let a = u.files.iter().find(|f| f.full_name == "somedir/a.txt").expect("somedir/a.txt");
    assert_eq!((a.basename(), a.size_in_bytes, a.owner_node.as_str()), ("a.txt", 7, "nodeA"));
    assert_eq!((a.last_modified, a.last_info_updated, a.deletion), (1477174081, 1795605982, false));

    let ours = u.to_json();
    assert_eq!(json(&ours), json(&body), "same field names and values");
    // Field order too: byte for byte, once Go's HTML escapes are undone.
    assert_eq!(String::from_utf8(ours).expect("UTF-8"), as_serde_writes_it(&body));
}

#[test]
fn captured_file_modes_keep_go_bits() {
    let u = Update::from_json(&update_body()).expect("parses");
    for (name, f) in entries_of(&u) {
        let m = f.file_mode;
        match name {
            "emptydir" | "somedir" => {
                assert!(f.dir, "{name}");
                assert_eq!(m.0 & (1 << 31), 1 << 31, "{name}: directory bit");
                assert_eq!(m.0 & (1 << 27), 0, "{name}");
                assert!(m.is_dir() && !m.is_symlink());
                assert_eq!(m.perm(), 0o755);
                assert_eq!(m, FileMode::dir(0o755));
            }
            "dirlink" | "link-outside" => {
                assert!(!f.dir, "{name}: a symlink is not reported as a directory");
                assert_eq!(m.0 & (1 << 27), 1 << 27, "{name}: symlink bit");
                assert_eq!(m.0 & (1 << 31), 0, "{name}");
                assert!(m.is_symlink() && !m.is_dir());
                assert_eq!(m.perm(), 0o777);
            }
            _ => {
                assert!(!f.dir, "{name}");
                assert!(!m.is_dir() && !m.is_symlink(), "{name}");
                assert_eq!(m, FileMode::file(0o644), "{name}");
            }
        }
        // The bits survive a round trip untouched.
        let again = Update::from_json(&u.to_json()).expect("parses");
        assert_eq!(again.files.iter().find(|g| g.full_name == name).map(|g| g.file_mode), Some(m));
    }
}

#[test]
fn captured_update_applied_to_a_node_builds_the_original_tree() {
    let mut node = Node::new(config("nodeB", 2, 1), t0());
    let greeting = Greeting::from_form(&greeting_body()).expect("the captured greeting parses");
    node.handle(t0(), Event::GreetingReceived { greeting, from_host: Some("127.0.0.1".into()) });
    let actions = node.handle(t0(), Event::UpdateReceived(Update::from_json(&update_body()).expect("parses")));
    assert!(
        notices(&actions).contains(&Notice::UpdateApplied {
            from: "nodeA".into(),
            full: true,
            files: 11,
            changed: 11,
            rejected: 0
        }),
        "{actions:?}"
    );
    let snap = node.snapshot(t0());
    let found: Vec<String> = snap.find("").map(|p| p.as_str().to_string()).collect();
    assert_eq!(found.len(), 11);
    let kind = |s: &str| snap.lookup(&p(s)).map(|e| e.kind);
    assert_eq!(kind("emptydir"), Some(Kind::Dir));
    assert_eq!(kind("somedir"), Some(Kind::Dir));
    assert_eq!(kind("dirlink"), Some(Kind::File), "a symlink is listed as what it is, not followed");
    assert_eq!(kind("link-outside"), Some(Kind::File));
    assert_eq!(kind("<b>.html"), Some(Kind::File));
    let somedir: Vec<String> =
        snap.list(&p("somedir")).expect("lists").iter().map(|e| e.path.name().to_string()).collect();
    assert_eq!(somedir, vec!["a.txt", "g.gif"]);
    let root = snap.list(&DfsPath::root()).expect("the root lists");
    let names: Vec<&str> = root.iter().map(|e| e.path.name()).collect();
    assert_eq!(
        names,
        vec![
            "emptydir",
            "somedir",
            ".hidden",
            "<b>.html",
            "a_very_long_file_name_that_exceeds_fifty_characters_for_sure.txt",
            "dirlink",
            "link-outside",
            "shared.txt",
            "test.txt"
        ],
        "directories first, then bytewise"
    );
    assert!(root.iter().all(|e| e.owner == Owner::Node("nodeA".into())));
    assert_eq!(snap.lookup(&p("test.txt")).map(|e| e.size()), Some(20));
}

#[test]
fn a_node_with_the_captured_files_sends_the_same_full_update() {
    let captured = Update::from_json(&update_body()).expect("parses");
    let mut node = Node::new(config("nodeA", 1, 42), t0());
    let files: Vec<(DfsPath, Meta)> = captured.files.iter().map(|f| (p(&f.full_name), meta_of(f))).collect();
    node.handle(t0(), Event::LocalScan(files));
    let header = UpdateHeader { update_time: captured.update_time, epoch: 42, seq: 0 };
    let snap = node.snapshot(t0());
    let body: Vec<u8> = snap.full_update_body(header, 64).flatten().collect();
    let mut ours = json(&body);
    let obj = ours.as_object_mut().expect("an object");
    assert_eq!(obj.remove("Epoch"), Some(Value::from(42)));
    assert_eq!(obj.remove("Seq"), Some(Value::from(0)));
    assert_eq!(ours, json(&update_body()), "the seed's body, plus our two fields");
    // Byte for byte as well, apart from Go's HTML escapes and our added fields.
    let text = String::from_utf8(body).expect("UTF-8");
    let without_ours = text.replace(",\"Epoch\":42,\"Seq\":0}", "}");
    assert_eq!(without_ours, as_serde_writes_it(&update_body()));
}

// ---- the greeting form -------------------------------------------------------------------------

#[test]
fn captured_greeting_form_parses_and_reencodes_identically() {
    let body = greeting_body();
    let g = Greeting::from_form(&body).expect("parses");
    assert_eq!(g.name, "nodeA");
    assert_eq!(g.public_addr, PeerAddr::parse("127.0.0.1:17040").expect("valid"));
    assert_eq!((g.mgmt_addr.host(), g.mgmt_addr.port()), ("127.0.0.1", 17041));
    assert!(g.request_full_update);
    assert_eq!(g.to_form().as_bytes(), body.as_slice());
}

#[test]
fn captured_greeting_makes_a_node_send_a_full_update_and_greet_back() {
    let mut node = Node::new(config("nodeB", 2, 1), t0());
    node.handle(t0(), Event::LocalScan(vec![(p("b.txt"), file_meta(3))]));
    let greeting = Greeting::from_form(&greeting_body()).expect("parses");
    let actions = node.handle(t0(), Event::GreetingReceived { greeting, from_host: Some("127.0.0.1".into()) });
    let fulls: Vec<Update> = updates_to(&actions, "nodeA");
    assert_eq!(fulls.len(), 1, "{actions:?}");
    assert_eq!(fulls[0].files.iter().map(|f| f.full_name.as_str()).collect::<Vec<_>>(), vec!["b.txt"]);
    let sent_to: Vec<&PeerAddr> = actions
        .iter()
        .filter_map(|a| match a {
            Action::SendFullUpdate { addr, .. } => Some(addr),
            _ => None,
        })
        .collect();
    assert_eq!(sent_to, vec![&PeerAddr::parse("127.0.0.1:17041").expect("valid")]);
    assert_eq!(greets(&actions), vec![(PeerAddr::parse("127.0.0.1:17041").expect("valid"), true)]);
}

// ---- the cluster table -------------------------------------------------------------------------

fn cluster_body() -> Vec<u8> {
    let msg = parse_http(&read("A_mgmt_cluster.txt"));
    assert_eq!(msg.start, "HTTP/1.1 200 OK");
    msg.body
}

#[test]
fn captured_cluster_json_parses_and_reserialises_identically() {
    let body = cluster_body();
    let c = ClusterInfo::from_json(&body).expect("parses");
    assert_eq!(c.name, "dftp");
    assert_eq!(c.me.name, "nodeA");
    assert_eq!((c.me.public_addr.as_str(), c.me.mgmt_addr.as_str()), ("127.0.0.1:17040", "127.0.0.1:17041"));
    assert_eq!(c.me.last_alive, 1795605982);
    assert_eq!(c.peers.len(), 1);
    let b = &c.peers["nodeB"];
    assert_eq!(b.name, "nodeB");
    assert_eq!((b.public_addr.as_str(), b.mgmt_addr.as_str()), ("127.0.0.1:27040", "127.0.0.1:27041"));
    assert_eq!(
        (b.last_alive, b.last_update_pushed, b.last_update_received, b.last_full_update_received),
        (1795605990, 1795605990, 1795605984, 1795605984)
    );
    for a in [&c.me.public_addr, &c.me.mgmt_addr, &b.public_addr, &b.mgmt_addr] {
        assert!(PeerAddr::parse(a).is_ok(), "{a}");
    }
    let ours = c.to_json();
    assert_eq!(json(&ours), json(&body));
    assert_eq!(String::from_utf8(ours).expect("UTF-8"), as_serde_writes_it(&body), "field order as the original");
}

#[test]
fn captured_cluster_json_as_a_greeting_answer_meets_the_rest_of_the_cluster() {
    let reply = ClusterInfo::from_json(&cluster_body()).expect("parses");
    let mut node = Node::new(config("nodeC", 3, 1), t0());
    let to = PeerAddr::parse("127.0.0.1:17041").expect("valid");
    let mut actions = node.handle(t0(), Event::JoinRequested(vec![to.clone()]));
    assert_eq!(greets(&actions), vec![(to.clone(), true)]);
    actions = node.handle(t0(), Event::GreetingAnswered { to, reply });
    assert!(node.peers().contains_key("nodeA"));
    assert_eq!(node.peers()["nodeA"].public_addr.to_string(), "127.0.0.1:17040");
    // nodeB is in nodeA's table: greet it, asking for its files.
    assert_eq!(greets(&actions), vec![(PeerAddr::parse("127.0.0.1:27041").expect("valid"), true)]);
}

// ---- multicast ---------------------------------------------------------------------------------

fn cluster_c_node() -> Node {
    let cfg = Config::new("nodeZ", "clusterC", addr(9, 7040), addr(9, 7041), 1);
    Node::new(cfg, t0())
}

fn announce(node: &mut Node, a: Announcement, from: &str) -> Vec<Action> {
    let host = from.rsplit_once(':').map(|(h, _)| h.into());
    node.handle(Time(t0().0 + 1), Event::AnnouncementReceived { announcement: a, from_host: host })
}

#[test]
fn captured_multicast_packets() {
    let packets = multicast_packets();
    assert_eq!(packets.len(), 4);

    // 1: a ping of our cluster parses, re-serialises byte for byte, and gets a greeting.
    let (from, bytes) = &packets[0];
    let a = Announcement::from_json(bytes).expect("parses");
    assert_eq!(
        (a.kind.as_str(), a.cluster_name.as_str(), a.node_name.as_str(), a.mgmt_addr.as_str()),
        ("ping", "clusterC", "nodeC", "127.0.0.1:7041")
    );
    assert_eq!(json(&a.to_json()), json(bytes));
    assert_eq!(&a.to_json(), bytes);
    let mut node = cluster_c_node();
    let actions = announce(&mut node, a, from);
    assert_eq!(greets(&actions), vec![(PeerAddr::parse("127.0.0.1:7041").expect("valid"), true)]);

    // 2: another cluster's ping parses, but a node ignores it (the original greeted it).
    let (from, bytes) = &packets[1];
    let a = Announcement::from_json(bytes).expect("parses");
    assert_eq!(
        (a.cluster_name.as_str(), a.node_name.as_str(), a.mgmt_addr.as_str()),
        ("some-OTHER-cluster", "nodeX", ":7999")
    );
    assert_eq!(json(&a.to_json()), json(bytes));
    let mut node = cluster_c_node();
    let actions = announce(&mut node, a.clone(), from);
    assert!(greets(&actions).is_empty(), "{actions:?}");
    assert!(notices(&actions).iter().any(|n| matches!(n, Notice::AnnouncementIgnored { .. })));
    assert!(node.peers().is_empty());
    // The same packet in our cluster would have been greeted, at the sender's host.
    let ours = Announcement { cluster_name: "clusterC".into(), ..a };
    let actions = announce(&mut node, ours, from);
    assert_eq!(greets(&actions), vec![(PeerAddr::parse("127.0.0.1:7999").expect("valid"), true)]);

    // 3: not JSON at all: an error value.
    let (_, bytes) = &packets[2];
    assert_eq!(bytes.as_slice(), b"not json");
    assert!(matches!(Announcement::from_json(bytes), Err(WireError::Json(_))));

    // 4: parses as an announcement, but its address has no port.
    let (from, bytes) = &packets[3];
    let a = Announcement::from_json(bytes).expect("parses");
    assert_eq!((a.node_name.as_str(), a.mgmt_addr.as_str()), ("nodeY", "nocolon"));
    assert_eq!(json(&a.to_json()), json(bytes));
    assert!(matches!(PeerAddr::parse(&a.mgmt_addr), Err(WireError::Addr(_))));
    let mut node = cluster_c_node();
    let actions = announce(&mut node, a, from);
    assert!(greets(&actions).is_empty(), "{actions:?}");
    assert!(notices(&actions).iter().any(|n| matches!(n, Notice::AnnouncementIgnored { .. })));
}
