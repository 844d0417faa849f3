//! Nothing outside the roots is ever served and no local path ever shows: traversal tries
//! (`..`, `%2e%2e`, `%2f`, `%5c`, `//etc/passwd`, NUL), symlinks in a root pointing out of it
//! (there from the start, or swapped in while the node runs), and files gone from disk.

use std::fs;

use dftp_e2e::*;

/// Request targets sent byte for byte, so that no client normalises them away.
const TARGETS: &[&str] = &[
    "/fs/..",
    "/fs/../",
    "/fs/../../../../../../etc/passwd",
    "/fs/sub%20dir/../../../../../etc/passwd",
    "/fs/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/fs/%2E%2E%2F%2E%2E%2F%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
    "/fs/..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
    "/fs/sub%20dir/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "/fs/%2fetc%2fpasswd",
    "/fs/%2Fetc/passwd",
    "/fs/..%5c..%5c..%5c..%5cetc%5cpasswd",
    "/fs/%5c..%5c..%5cetc%5cpasswd",
    "/fs/sub%20dir%5c..%5c..%5cetc%5cpasswd",
    "/fs//etc/passwd",
    "/fs///etc/passwd",
    "/fs/.//etc/passwd",
    "/fs/./space%20name.txt",
    "/fs/%2e/space%20name.txt",
    "/fs/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd",
    "/fs/%00",
    "/fs/space%20name.txt%00",
    "/fs/%00/../../../etc/passwd",
    "/fs/passwd-link",
    "/fs/passwd-link?format=txt",
    "/fs/etc-link/",
    "/fs/etc-link/passwd",
    "/fs/etc-link/passwd?redirN=1",
    "/fs/etc-link%2fpasswd",
    "/fs/sub%20dir/..",
    "/../etc/passwd",
    "/find/../etc/passwd",
    "/fs/../../etc/passwd?redirN=1",
];

fn get_raw(n: &Node, method: &str, target: &str) -> Vec<u8> {
    let req = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    raw_request(n.http, req.as_bytes())
}

#[test]
fn traversal_tries_serve_nothing_outside_and_leak_no_path() {
    let mut f = Fixture::start(false);
    let secrets = f.secrets();
    for n in &f.nodes {
        for target in TARGETS {
            for method in ["GET", "HEAD"] {
                let resp = get_raw(n, method, target);
                let what = format!("{method} {target} on {}", n.name);
                assert_contained(&what, &resp, &secrets);
                let status = raw_status(&resp);
                assert!((400..500).contains(&status), "{what}: status {status}");
            }
        }
        // A prefix is a plain string filter: nothing matches a traversal.
        let r = n.get("/find/?prefix=..%2F..%2Fetc");
        assert_eq!((r.status, r.text()), (200, String::new()));
        // Absolute-form request targets too.
        let absolute = format!("http://{}/fs/../../../../etc/passwd", n.http);
        let resp = get_raw(n, "GET", &absolute);
        assert_contained(&format!("absolute-form on {}", n.name), &resp, &secrets);
        // Nothing of it shows in the listings or /find/.
        for path in ["/find/", "/fs/", "/fs/?format=json", "/"] {
            let r = n.get(path);
            assert_contained(path, &r.body, &secrets);
            assert!(!r.text().contains("passwd-link") && !r.text().contains("etc-link"), "{path}: {}", r.text());
        }
    }
    for n in &mut f.nodes {
        assert!(n.is_up(), "{} died:\n{}", n.name, n.log());
    }
}

#[test]
fn symlinks_swapped_in_while_running_serve_nothing_outside() {
    // Changes are seen by the watcher; should inotify be unavailable, by a rescan every second.
    let mut f = Fixture::start_with(false, |o| o.arg("--rescan-interval").arg("1s"));
    let secrets = f.secrets();
    let alpha = f.roots[0].path().to_path_buf();
    // A file that every node knows becomes a link to /etc/passwd; a directory a link to /etc.
    fs::remove_file(alpha.join("space name.txt")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", alpha.join("space name.txt")).unwrap();
    fs::rename(alpha.join("ünïcødé"), alpha.join("moved away")).unwrap();
    std::os::unix::fs::symlink("/etc", alpha.join("ünïcødé")).unwrap();
    // And a file that every node knows is gone from disk.
    fs::remove_file(alpha.join("a&b.txt")).unwrap();
    let targets = [
        format!("/fs/{}", encode_path("space name.txt")),
        format!("/fs/{}?format=txt", encode_path("space name.txt")),
        format!("/fs/{}/passwd", encode_path("ünïcødé")),
        format!("/fs/{}", encode_path("ünïcødé/файл.txt")),
        format!("/fs/{}/", encode_path("ünïcødé")),
        format!("/fs/{}", encode_path("a&b.txt")),
    ];
    // Ask at once (before the watcher notices) and again once it has.
    for round in 0..2 {
        for n in &f.nodes {
            for t in &targets {
                let resp = get_raw(n, "GET", t);
                assert_contained(&format!("GET {t} on {} (round {round})", n.name), &resp, &secrets);
                let status = raw_status(&resp);
                assert!(status != 200 || !t.contains("space"), "GET {t} on {}: {status}", n.name);
            }
        }
        if round == 0 {
            wait_until("the swapped paths to leave /find/", WAIT, || {
                f.nodes.iter().all(|n| !n.find().contains("/space name.txt\n")).then_some(())
            });
        }
    }
    for n in &mut f.nodes {
        assert!(n.is_up(), "{} died:\n{}", n.name, n.log());
    }
}
