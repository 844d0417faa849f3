//! `GET /fs/<file>`: the same bytes through every node (a 32 MiB file included), with
//! Content-Length, HEAD, one Range (206 with Content-Range; 416 when unsatisfiable), and 304s for
//! If-None-Match and If-Modified-Since, both from the owner's disk and proxied through another
//! node.

use dftp_e2e::{encode_path, http, Fixture, Node, Resp, BIG_LEN};

const BIG: &str = "big/32 MiB.bin";

fn fetch(n: &Node, rel: &str, headers: &[(&str, &str)]) -> Resp {
    http("GET", &n.url(&format!("/fs/{}", encode_path(rel))), headers, None)
}

#[test]
fn every_file_is_byte_identical_through_every_node() {
    let f = Fixture::start(true);
    assert!(f.files.iter().any(|(p, _)| p == BIG));
    for (rel, owner) in &f.files {
        let want = f.content(rel);
        for n in &f.nodes {
            let r = fetch(n, rel, &[]);
            assert_eq!(r.status, 200, "GET {rel} through {}: {}", n.name, r.text());
            assert_eq!(r.header("content-length"), Some(want.len().to_string().as_str()), "{rel} through {}", n.name);
            assert!(r.body == want, "{rel} through {} differs ({} bytes, want {})", n.name, r.body.len(), want.len());
            assert_eq!(r.header("x-dftp-owner"), Some(owner.as_str()), "{rel} through {}", n.name);
        }
    }
    assert_eq!(f.content(BIG).len(), BIG_LEN);
}

#[test]
fn content_types() {
    let f = Fixture::start(false);
    for n in &f.nodes {
        let html = fetch(n, "<b>.html", &[]);
        assert!(html.header("content-type").unwrap().starts_with("text/html"), "{:?}", html.headers);
        let txt = http("GET", &n.url(&format!("/fs/{}?format=txt", encode_path("<b>.html"))), &[], None);
        assert_eq!(txt.status, 200);
        assert!(txt.header("content-type").unwrap().starts_with("text/plain"), "{:?}", txt.headers);
        assert_eq!(txt.body, html.body);
    }
}

#[test]
fn head_range_and_416_local_and_proxied() {
    let f = Fixture::start(true);
    let big = f.content(BIG);
    let len = big.len();
    let small = f.content("gamma.txt");
    // alpha owns the big file and gamma.txt is gamma's: each is read from disk on its owner
    // and proxied by the two others.
    for n in &f.nodes {
        for (rel, want) in [(BIG, &big), ("gamma.txt", &small)] {
            let l = want.len();
            let head = http("HEAD", &n.url(&format!("/fs/{}", encode_path(rel))), &[], None);
            assert_eq!(head.status, 200, "HEAD {rel} through {}", n.name);
            assert_eq!(head.header("content-length"), Some(l.to_string().as_str()), "HEAD {rel} through {}", n.name);
            assert!(head.body.is_empty());

            for (range, from, to) in [
                ("bytes=0-0".to_string(), 0, 0),
                ("bytes=5-9".to_string(), 5, 9),
                (format!("bytes={}-", l - 3), l - 3, l - 1),
                ("bytes=-4".to_string(), l - 4, l - 1),
                (format!("bytes=2-{}", l + 1000), 2, l - 1),
            ] {
                let r = fetch(n, rel, &[("Range", &range)]);
                assert_eq!(r.status, 206, "{range} of {rel} through {}: {}", n.name, r.text());
                assert_eq!(
                    r.header("content-range"),
                    Some(format!("bytes {from}-{to}/{l}").as_str()),
                    "{range} of {rel} through {}",
                    n.name
                );
                assert_eq!(r.header("content-length"), Some((to - from + 1).to_string().as_str()));
                assert!(r.body == want[from..=to], "{range} of {rel} through {}", n.name);
            }
            for range in [format!("bytes={l}-"), format!("bytes={}-{}", l + 10, l + 20)] {
                let r = fetch(n, rel, &[("Range", &range)]);
                assert_eq!(r.status, 416, "{range} of {rel} through {}", n.name);
                assert!(!r.body.starts_with(&want[..4]), "416 with content");
            }
        }
        // A large range in the middle of the big file.
        let r = fetch(n, BIG, &[("Range", "bytes=1000000-9999999")]);
        assert_eq!(r.status, 206);
        assert!(r.body == big[1_000_000..10_000_000]);
        assert_eq!(len, BIG_LEN);
        // Nothing to range over in an empty file.
        let empty = fetch(n, "empty.txt", &[]);
        assert_eq!((empty.status, empty.body.len()), (200, 0), "empty.txt through {}", n.name);
        assert_eq!(empty.header("content-length"), Some("0"));
        assert_eq!(fetch(n, "empty.txt", &[("Range", "bytes=0-")]).status, 416, "empty.txt through {}", n.name);
    }
}

#[test]
fn not_modified_local_and_proxied() {
    let f = Fixture::start(false);
    // space name.txt is alpha's, 日本語.txt beta's, gamma.txt gamma's: every node reads one
    // from disk and proxies two.
    for rel in ["space name.txt", "日本語.txt", "gamma.txt"] {
        let first = fetch(&f.nodes[0], rel, &[]);
        let etag = first.header("etag").expect("an ETag").to_owned();
        let modified = first.header("last-modified").expect("a Last-Modified").to_owned();
        for n in &f.nodes {
            let r = fetch(n, rel, &[]);
            assert_eq!(r.header("etag"), Some(etag.as_str()), "the owner's ETag through {}", n.name);
            assert_eq!(r.header("last-modified"), Some(modified.as_str()));

            let r = fetch(n, rel, &[("If-None-Match", &etag)]);
            assert_eq!(r.status, 304, "If-None-Match {etag} on {rel} through {}", n.name);
            assert!(r.body.is_empty());
            let r = fetch(n, rel, &[("If-Modified-Since", &modified)]);
            assert_eq!(r.status, 304, "If-Modified-Since on {rel} through {}", n.name);
            assert!(r.body.is_empty());

            // A stale validator gets the content.
            let r = fetch(n, rel, &[("If-None-Match", "\"not-the-etag\"")]);
            assert_eq!(r.status, 200);
            assert_eq!(r.body, f.content(rel));
            let r = fetch(n, rel, &[("If-Modified-Since", "Thu, 01 Jan 1998 00:00:00 GMT")]);
            assert_eq!(r.status, 200);
            assert_eq!(r.body, f.content(rel));
        }
    }
}
