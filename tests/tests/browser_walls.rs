//! Second walls for browsers: whatever a name or a file on some node's disk holds, it cannot run
//! script on our origin. Pages the node writes (listings, the greeting, `/find/`, errors) carry a
//! Content-Security-Policy with no script source at all; files of the tree, from the node's own
//! disk or fetched from their owner, carry `Content-Security-Policy: sandbox`; every answer carries
//! `X-Content-Type-Options: nosniff`, and none carries a CORS header.

use dftp_e2e::{encode_path, http, Fixture, Resp};

fn assert_walls(r: &Resp, what: &str, file: bool) {
    let csp: Vec<&str> =
        r.headers.iter().filter(|(k, _)| k == "content-security-policy").map(|(_, v)| v.as_str()).collect();
    assert_eq!(csp.len(), 1, "{what}: one policy, got {csp:?}");
    if file {
        assert_eq!(csp[0], "sandbox", "{what}");
    } else {
        assert!(csp[0].starts_with("default-src 'none'"), "{what}: {}", csp[0]);
        assert!(!csp[0].contains("script") && !csp[0].contains("unsafe"), "{what}: {}", csp[0]);
        assert!(csp[0].contains("frame-ancestors 'none'"), "{what}: {}", csp[0]);
    }
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"), "{what}");
    assert!(!r.headers.iter().any(|(k, _)| k.starts_with("access-control-")), "{what}: {:?}", r.headers);
}

#[test]
fn pages_run_no_script_and_files_are_sandboxed_through_every_node() {
    let f = Fixture::start(false);
    assert!(f.files.iter().any(|(p, _)| p.ends_with(".html")), "the fixture has an HTML file");
    for n in &f.nodes {
        for (rel, owner) in &f.files {
            let what = format!("{rel} (owner {owner}) through {}", n.name);
            let r = http("GET", &n.url(&format!("/fs/{}", encode_path(rel))), &[], None);
            assert_eq!(r.status, 200, "{what}: {}", r.text());
            assert_walls(&r, &what, true);
            let head = http("HEAD", &n.url(&format!("/fs/{}", encode_path(rel))), &[], None);
            assert_walls(&head, &format!("HEAD {what}"), true);
        }
        for (target, status) in
            [("/", 200), ("/fs/", 200), ("/fs/?format=json", 200), ("/find/", 200), ("/fs/nope", 404), ("/nope", 404)]
        {
            let r = http("GET", &n.url(target), &[], None);
            assert_eq!(r.status, status, "{target} on {}", n.name);
            assert_walls(&r, &format!("{target} on {}", n.name), false);
        }
        let refused = http("POST", &n.url("/fs/"), &[], Some(b"x"));
        assert!(refused.status >= 400, "POST on {}", n.name);
        assert_walls(&refused, &format!("a refusal on {}", n.name), false);
    }
}
