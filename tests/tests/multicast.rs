//! Multicast discovery, tested only inside a private network namespace that this test makes
//! (so no packet leaves it): two nodes with discovery on and no --join find each other, a node
//! of another cluster on the same group is left alone, and the original's captured discovery
//! packets (another cluster, not JSON, an address without a port) harm nothing. And on a host
//! without a multicast route (most containers), a node with discovery on warns once and serves.
//!
//! With a cluster secret, nodes with the key still find each other, and announcements that are
//! not signed with it (a node with another key, a forged packet) are dropped.
//!
//! Needs root (unshare(2) with CLONE_NEWNET) and `ip`; skipped with a printed reason otherwise.
//! Every other test runs with discovery off.

use std::net::UdpSocket;
use std::process::Command;

use dftp_e2e::*;

const GROUP: &str = "239.255.77.1:17041";

fn skip(reason: &str) {
    eprintln!("SKIPPED multicast discovery test: {reason}");
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip").args(args).output().map_err(|e| format!("ip {args:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("ip {args:?}: {}", String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// Runs `scenario` in a new network namespace whose loopback is set up by the `ip` commands
/// given; skips (with the reason printed) where that cannot be done.
fn in_private_network(setup: &'static [&'static [&'static str]], scenario: fn()) {
    if unsafe { libc::geteuid() } != 0 {
        return skip("not running as root (a private network namespace needs it)");
    }
    if Command::new("ip").arg("-V").output().is_err() {
        return skip("the `ip` command (iproute2) is missing");
    }
    // Built here, while this thread is still in the host's network namespace.
    let _ = dftp_bin();
    // Only the thread that enters the namespace (and the processes it starts) lives there.
    let result = std::thread::spawn(move || -> Result<(), String> {
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            return Err(format!("skip: unshare(CLONE_NEWNET): {}", std::io::Error::last_os_error()));
        }
        for args in setup {
            ip(args)?;
        }
        scenario();
        Ok(())
    })
    .join();
    match result {
        Ok(Ok(())) => {}
        Ok(Err(e)) if e.starts_with("skip: ") => skip(&e["skip: ".len()..]),
        Ok(Err(e)) => panic!("{e}"),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

#[test]
fn nodes_discover_each_other_in_a_private_network_namespace() {
    in_private_network(
        &[
            &["link", "set", "lo", "up"],
            &["link", "set", "lo", "multicast", "on"],
            &["route", "add", "224.0.0.0/4", "dev", "lo"],
        ],
        discovery,
    );
}

#[test]
fn with_a_cluster_secret_only_signed_announcements_are_heard() {
    in_private_network(
        &[
            &["link", "set", "lo", "up"],
            &["link", "set", "lo", "multicast", "on"],
            &["route", "add", "224.0.0.0/4", "dev", "lo"],
        ],
        signed_discovery,
    );
}

/// The README's first command on a host with no multicast route: discovery on (the default
/// group) cannot start, and the node says so once, with what still works, and serves; a peer
/// joins it with --join.
#[test]
fn a_host_without_multicast_gets_a_warning_and_a_serving_node() {
    in_private_network(&[&["link", "set", "lo", "up"]], without_multicast);
}

fn without_multicast() {
    let root = awkward_tempdir("no-multicast");
    write_file(root.path(), "here.txt", b"here\n");
    let mut o = NodeOpts::new("lonely", root.path());
    o.multicast = "224.0.0.9:7041".into();
    let node = Node::start(o);
    assert_eq!(node.get("/fs/here.txt").body, b"here\n");
    let log = node.log();
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains("WARN") && l.contains("multicast")).collect();
    assert_eq!(warnings.len(), 1, "one warning about discovery:\n{log}");
    for said in ["224.0.0.9:7041", "could not start", "--join", "POST /join/"] {
        assert!(warnings[0].contains(said), "the warning does not say {said:?}: {}", warnings[0]);
    }
    let other_root = awkward_tempdir("no-multicast-peer");
    let peer = Node::start(NodeOpts::new("peer", other_root.path()).join(&node.mgmt_addr()));
    wait_until("the peer to list here.txt", WAIT, || peer.find().contains("/here.txt").then_some(()));
}

fn discovery() {
    let roots: Vec<_> = ["a", "b", "c"].iter().map(|n| awkward_tempdir(n)).collect();
    write_file(roots[0].path(), "from a.txt", b"a\n");
    write_file(roots[1].path(), "from b.txt", b"b\n");
    write_file(roots[2].path(), "from c.txt", b"c\n");
    let discovering = |name: &str, root: &std::path::Path, cluster: &str| {
        let mut o = NodeOpts::new(name, root)
            .arg("--multicast-interface")
            .arg("127.0.0.1")
            .arg("--announce-interval")
            .arg("200ms")
            .arg("--cluster-name")
            .arg(cluster);
        o.multicast = GROUP.into();
        Node::start(o)
    };
    // The cluster name of the captured packets, so that they are replayed as they were.
    let mut a = discovering("a", roots[0].path(), "clusterC");
    let mut b = discovering("b", roots[1].path(), "clusterC");
    let mut c = discovering("c", roots[2].path(), "some-other-cluster");

    // The original's captured packets, sent to the group.
    let captured = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/seed-wire/multicast_captured_packets.txt"
    ))
    .expect("tests/fixtures/seed-wire/ is part of the repository");
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut sent = 0;
    for line in captured.lines() {
        let Some(packet) = line.split_once(": b'").map(|(_, p)| p.trim_end_matches('\'')) else { continue };
        sock.send_to(packet.as_bytes(), GROUP).unwrap();
        sent += 1;
    }
    assert_eq!(sent, 4);

    for (n, other) in [(&a, "/from b.txt"), (&b, "/from a.txt")] {
        wait_until(&format!("{} to discover its peer", n.name), WAIT, || {
            n.find().lines().any(|l| l == other).then_some(())
        });
    }
    assert_eq!(a.peers(), ["b".to_string()].into());
    assert_eq!(b.peers(), ["a".to_string()].into());
    assert!(c.peers().is_empty(), "another cluster joined: {:?}", c.peers());
    assert_eq!(c.find(), "/from c.txt\n");
    assert_eq!(a.get("/fs/from%20b.txt").body, b"b\n");
    for n in [&mut a, &mut b, &mut c] {
        assert!(n.is_up(), "{} died:\n{}", n.name, n.log());
    }
}

fn signed_discovery() {
    use std::os::unix::fs::PermissionsExt;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use dftp_core::cluster_auth::{BodyDigest, Keys, Nonce, HEADER};

    let keys_dir = tempfile::tempdir().unwrap();
    let key_file = |name: &str, key: &str| {
        let path = keys_dir.path().join(name);
        std::fs::write(&path, format!("{key}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    };
    let key = "5e1f0c9a8b7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f";
    let good = key_file("good", key);
    let wrong = key_file("wrong", &"9".repeat(64));
    // Whoever is asked for anything here was greeted because of a forged announcement.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let evil = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            drop(conn);
            counted.fetch_add(1, Ordering::SeqCst);
        }
    });

    let roots: Vec<_> = ["a", "b", "c"].iter().map(|n| awkward_tempdir(n)).collect();
    write_file(roots[0].path(), "from a.txt", b"a\n");
    write_file(roots[1].path(), "from b.txt", b"b\n");
    write_file(roots[2].path(), "from c.txt", b"c\n");
    let discovering = |name: &str, root: &std::path::Path, key: &std::path::Path| {
        let mut o = NodeOpts::new(name, root)
            .arg("--multicast-interface")
            .arg("127.0.0.1")
            .arg("--announce-interval")
            .arg("200ms")
            .arg("--cluster-secret-file")
            .arg(key.to_str().unwrap());
        o.multicast = GROUP.into();
        Node::start(o)
    };
    let a = discovering("a", roots[0].path(), &good);
    let b = discovering("b", roots[1].path(), &good);
    // A forged announcement of the cluster (the default name), unsigned, naming the attacker:
    // sent until a says it dropped it (the first packet may come before a listens).
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let from = format!("from {}", sock.local_addr().unwrap());
    let forged = format!(r#"{{"Type":"ping","ClusterName":"dftp","NodeName":"evil","MgmtAddr":"{evil}"}}"#);
    wait_until("a to drop the forged announcement", WAIT, || {
        sock.send_to(forged.as_bytes(), GROUP).unwrap();
        a.log().lines().any(|l| l.contains("dropped a discovery packet") && l.contains(&from)).then_some(())
    });
    for (n, other) in [(&a, "/from b.txt"), (&b, "/from a.txt")] {
        wait_until(&format!("{} to discover its peer", n.name), WAIT, || {
            n.find().lines().any(|l| l == other).then_some(())
        });
    }
    // c, with another key, hears a's and b's announcements and drops them.
    let c = discovering("c", roots[2].path(), &wrong);
    wait_until("c to log a dropped packet", WAIT, || c.log().contains("dropped a discovery packet").then_some(()));
    let keys = Keys::new(key.as_bytes(), None).unwrap();
    let stamp = keys.sign_request("GET", "/cluster/", now(), Nonce([7; 16]), BodyDigest::of(b""));
    let table = send(a.mgmt, "GET", "/cluster/", &[(HEADER, &stamp)], Some(b"")).json();
    let peers: Vec<&String> = table["Peers"].as_object().unwrap().keys().collect();
    assert_eq!(peers, ["b"]);
    assert!(!a.find().contains("from c.txt"));
    assert_eq!(c.find(), "/from c.txt\n");
    assert_eq!(hits.load(Ordering::SeqCst), 0, "nobody greeted the forged address");
}

fn now() -> dftp_core::Time {
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    dftp_core::Time(ms as u64)
}
