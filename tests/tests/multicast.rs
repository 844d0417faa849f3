//! Multicast discovery, tested only inside a private network namespace that this test makes
//! (so no packet leaves it): two nodes with discovery on and no --join find each other, a node
//! of another cluster on the same group is left alone, and the original's captured discovery
//! packets (another cluster, not JSON, an address without a port) harm nothing.
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

#[test]
fn nodes_discover_each_other_in_a_private_network_namespace() {
    if unsafe { libc::geteuid() } != 0 {
        return skip("not running as root (a private network namespace needs it)");
    }
    if Command::new("ip").arg("-V").output().is_err() {
        return skip("the `ip` command (iproute2) is missing");
    }
    // Built here, while this thread is still in the host's network namespace.
    let _ = dftp_bin();
    // Only the thread that enters the namespace (and the processes it starts) lives there.
    let result = std::thread::spawn(|| -> Result<(), String> {
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            return Err(format!("skip: unshare(CLONE_NEWNET): {}", std::io::Error::last_os_error()));
        }
        ip(&["link", "set", "lo", "up"])?;
        ip(&["link", "set", "lo", "multicast", "on"])?;
        ip(&["route", "add", "224.0.0.0/4", "dev", "lo"])?;
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

fn scenario() {
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
