//! Files owned by a node of the original, served through our node. The original streams a file
//! with no Content-Length (chunked, past 2 KiB), no Accept-Ranges, ETag or Last-Modified, and
//! ignores Range and validators. Our node knows the size and modification time from the tree,
//! so it answers for such a file as for its own: Content-Length, Last-Modified,
//! `Accept-Ranges: bytes`, HEAD, 304, one range (206, or 416 when unsatisfiable) cut from the
//! owner's stream, and a connection ended with an error, never a body that looks complete, when
//! the owner sends fewer or more bytes than the tree says.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use dftp_e2e::*;

/// `LastModified` of nodeA's files, and the same time as an HTTP date.
const MODIFIED: i64 = 1477174081;
const MODIFIED_DATE: &str = "Sat, 22 Oct 2016 22:08:01 GMT";
const BIG_LEN: usize = 300_000;

/// Sent chunked by nodeA.
fn big() -> Vec<u8> {
    pseudo_random(BIG_LEN, 11)
}

/// Under 2 KiB: the original's server sends it with a Content-Length (but still no
/// Accept-Ranges, and ignores ranges).
fn small() -> Vec<u8> {
    pseudo_random(1000, 12)
}

struct Cluster {
    us: Node,
    nodea: FakeOriginal,
    _root: tempfile::TempDir,
}

/// Our node "us", and nodeA, a node of the original, that holds big.bin and small.bin, an empty
/// file, and two files whose announced size is not what it sends: short.bin (300000 announced,
/// 200000 sent) and long.bin (200000 announced, 300000 sent).
fn cluster() -> Cluster {
    let root = awkward_tempdir("original files");
    write_file(root.path(), "ours.txt", b"ours\n");
    let us = Node::start(NodeOpts::new("us", root.path()).arg("--peer-timeout").arg("1h"));
    let lying = |size: usize, sent: Vec<u8>| OriginalFile { size: size as u64, body: sent, modified: MODIFIED };
    let nodea = FakeOriginal::start(
        "nodeA",
        vec![
            ("big.bin", OriginalFile::new(big(), MODIFIED)),
            ("small.bin", OriginalFile::new(small(), MODIFIED)),
            ("empty.bin", OriginalFile::new(Vec::new(), MODIFIED)),
            ("short.bin", lying(BIG_LEN, big()[..200_000].to_vec())),
            ("long.bin", lying(200_000, big())),
        ],
    );
    nodea.join(&us);
    wait_until("nodeA's files on our node", WAIT, || {
        let find = us.find();
        ["/big.bin", "/small.bin", "/empty.bin", "/short.bin", "/long.bin"]
            .iter()
            .all(|p| find.lines().any(|l| l == *p))
            .then_some(())
    });
    Cluster { us, nodea, _root: root }
}

fn fetch(us: &Node, method: &str, rel: &str, headers: &[(&str, &str)]) -> Resp {
    http(method, &us.url(&format!("/fs/{rel}")), headers, None)
}

/// A response as it came off the connection: status, head (lower-case names) and every byte
/// after the head until the server closed the connection.
struct Raw {
    status: u16,
    head: String,
    rest: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

fn raw(us: &Node, method: &str, rel: &str, headers: &[(&str, &str)]) -> Raw {
    let mut req = format!("{method} /fs/{rel} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let bytes = raw_request(us.http, req.as_bytes());
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n").expect("a response head") + 4;
    Raw {
        status: raw_status(&bytes),
        head: String::from_utf8_lossy(&bytes[..end]).into_owned(),
        rest: bytes[end..].to_vec(),
    }
}

#[test]
fn a_file_of_the_original_gets_length_dates_head_and_ranges() {
    let c = cluster();
    for (rel, data) in [("big.bin", big()), ("small.bin", small())] {
        let len = data.len();
        let r = fetch(&c.us, "GET", rel, &[]);
        assert_eq!(r.status, 200, "{rel}: {}", r.text());
        assert_eq!(r.header("content-length"), Some(len.to_string().as_str()), "{rel}: {:?}", r.headers);
        assert_eq!(r.header("last-modified"), Some(MODIFIED_DATE), "{rel}");
        assert_eq!(r.header("accept-ranges"), Some("bytes"), "{rel}");
        assert_eq!(r.header("x-dftp-owner"), Some("nodeA"), "{rel}");
        assert!(r.body == data, "{rel}: {} bytes", r.body.len());

        for (range, from, to) in [
            ("bytes=10-19".to_string(), 10, 19),
            ("bytes=-5".to_string(), len - 5, len - 1),
            ("bytes=100-".to_string(), 100, len - 1),
            (format!("bytes=2-{}", len + 1000), 2, len - 1),
            ("bytes=0-0".to_string(), 0, 0),
        ] {
            let r = fetch(&c.us, "GET", rel, &[("Range", &range)]);
            assert_eq!(r.status, 206, "{range} of {rel}: {}", r.text());
            assert_eq!(
                r.header("content-range"),
                Some(format!("bytes {from}-{to}/{len}").as_str()),
                "{range} of {rel}"
            );
            assert_eq!(r.header("content-length"), Some((to - from + 1).to_string().as_str()), "{range} of {rel}");
            assert!(r.body == data[from..=to], "{range} of {rel}");
        }
        for range in [format!("bytes={len}-"), format!("bytes={}-{}", len + 10, len + 20), "bytes=-0".to_string()] {
            let r = fetch(&c.us, "GET", rel, &[("Range", &range)]);
            assert_eq!(r.status, 416, "{range} of {rel}: {}", r.text());
            assert_eq!(r.header("content-range"), Some(format!("bytes */{len}").as_str()), "{range} of {rel}");
        }
        // Several ranges: the whole file, as nginx does for proxied content.
        let r = fetch(&c.us, "GET", rel, &[("Range", "bytes=0-1,5-6")]);
        assert_eq!(r.status, 200, "several ranges of {rel}");
        assert!(r.body == data);

        // HEAD: the headers of GET, and nothing after them.
        let h = raw(&c.us, "HEAD", rel, &[]);
        assert_eq!(h.status, 200, "HEAD {rel}: {}", h.head);
        assert_eq!(h.header("content-length"), Some(len.to_string().as_str()), "HEAD {rel}: {}", h.head);
        assert_eq!(h.header("last-modified"), Some(MODIFIED_DATE), "HEAD {rel}");
        assert_eq!(h.header("accept-ranges"), Some("bytes"), "HEAD {rel}");
        assert!(h.rest.is_empty(), "HEAD {rel} sent {} bytes of body", h.rest.len());
        let h = raw(&c.us, "HEAD", rel, &[("Range", "bytes=10-19")]);
        assert_eq!(h.status, 206, "HEAD {rel} with a range: {}", h.head);
        assert_eq!(h.header("content-range"), Some(format!("bytes 10-19/{len}").as_str()));
        assert_eq!(h.header("content-length"), Some("10"));
        assert!(h.rest.is_empty());
    }
    // Nothing to range over in an empty file.
    let r = fetch(&c.us, "GET", "empty.bin", &[]);
    assert_eq!((r.status, r.body.len(), r.header("content-length")), (200, 0, Some("0")));
    let r = fetch(&c.us, "GET", "empty.bin", &[("Range", "bytes=0-")]);
    assert_eq!((r.status, r.header("content-range")), (416, Some("bytes */0")));
    // Every request reached nodeA, with the range it ignores.
    assert!(c
        .nodea
        .server
        .requests()
        .iter()
        .any(|r| r.target == "/fs/big.bin?redirN=1" && r.header("range").is_some()));
}

#[test]
fn validators_of_a_file_of_the_original_are_checked_by_our_node() {
    let c = cluster();
    let data = big();
    let whole = |r: &Resp, what: &str| {
        assert_eq!(r.status, 200, "{what}: {}", r.text());
        assert!(r.body == data, "{what}: {} bytes", r.body.len());
    };
    for date in [MODIFIED_DATE, "Sun, 23 Oct 2016 00:00:00 GMT"] {
        let r = fetch(&c.us, "GET", "big.bin", &[("If-Modified-Since", date)]);
        assert_eq!(r.status, 304, "If-Modified-Since {date}: {}", r.text());
        assert!(r.body.is_empty());
        assert_eq!(r.header("last-modified"), Some(MODIFIED_DATE));
        let h = raw(&c.us, "HEAD", "big.bin", &[("If-Modified-Since", date)]);
        assert_eq!(h.status, 304, "HEAD, If-Modified-Since {date}");
    }
    whole(&fetch(&c.us, "GET", "big.bin", &[("If-Modified-Since", "Sat, 22 Oct 2016 22:08:00 GMT")]), "a second older");
    whole(&fetch(&c.us, "GET", "big.bin", &[("If-Modified-Since", "not a date")]), "not a date");
    // No ETag to match: If-None-Match with a tag is true, and If-Modified-Since is then ignored.
    let r = fetch(&c.us, "GET", "big.bin", &[("If-None-Match", "\"x\""), ("If-Modified-Since", MODIFIED_DATE)]);
    whole(&r, "If-None-Match");
    // If-Range with the modification time: the range; with another time or a tag: everything.
    let r = fetch(&c.us, "GET", "big.bin", &[("Range", "bytes=10-19"), ("If-Range", MODIFIED_DATE)]);
    assert_eq!((r.status, r.body.as_slice()), (206, &data[10..20]));
    whole(
        &fetch(&c.us, "GET", "big.bin", &[("Range", "bytes=10-19"), ("If-Range", "Sat, 22 Oct 2016 22:00:00 GMT")]),
        "If-Range with an older date",
    );
    whole(&fetch(&c.us, "GET", "big.bin", &[("Range", "bytes=10-19"), ("If-Range", "\"x\"")]), "If-Range with a tag");
    // A precondition that fails.
    let r = fetch(&c.us, "GET", "big.bin", &[("If-Unmodified-Since", "Sat, 22 Oct 2016 22:00:00 GMT")]);
    assert_eq!(r.status, 412, "{}", r.text());
}

/// An owner that sends fewer bytes than the tree says, or more, must not produce a body that
/// looks complete: the client sees the connection close before Content-Length bytes.
#[test]
fn an_owner_that_sends_another_size_than_announced_makes_the_transfer_fail() {
    let c = cluster();
    let data = big();
    // (file, first byte asked for, bytes announced, request headers)
    for (rel, start, announced, headers) in [
        ("short.bin", 0, BIG_LEN, vec![]),
        ("short.bin", 200_000, 100_000, vec![("Range", "bytes=200000-")]),
        ("long.bin", 0, 200_000, vec![]),
        ("long.bin", 199_990, 10, vec![("Range", "bytes=199990-")]),
    ] {
        let what = format!("{rel} {headers:?}");
        let r = raw(&c.us, "GET", rel, &headers);
        assert!(r.status == 200 || r.status == 206, "{what}: {}", r.head);
        assert_eq!(r.header("content-length"), Some(announced.to_string().as_str()), "{what}: {}", r.head);
        assert!(r.rest.len() < announced, "{what}: {} bytes of {announced} arrived, as if complete", r.rest.len());
        assert!(r.rest == data[start..start + r.rest.len()], "{what}: what arrived is the owner's bytes");
        let err = try_http("GET", &c.us.url(&format!("/fs/{rel}")), &headers, None);
        assert!(err.is_err(), "{what}: a client sees an error, not {:?}", err.map(|r| (r.status, r.body.len())));
    }
    // A range that ends before the owner's stream does is served: its bytes are right.
    let r = fetch(&c.us, "GET", "long.bin", &[("Range", "bytes=10-19")]);
    assert_eq!((r.status, r.body.as_slice()), (206, &data[10..20]));
    // The node is fine afterwards.
    assert_eq!(fetch(&c.us, "GET", "small.bin", &[]).body, small());
}

/// A download cut short resumes where it stopped: with `curl -C -` when curl is installed, and
/// always by hand (a Range from the length already received).
#[test]
fn an_interrupted_download_of_a_file_of_the_original_resumes() {
    let c = cluster();
    let data = big();
    // The first part, then the connection drops.
    let mut s = TcpStream::connect(c.us.http).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(b"GET /fs/big.bin HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    while got.len() < 120_000 {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "the body stopped early");
        got.extend_from_slice(&buf[..n]);
    }
    drop(s);
    let end = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let partial = got[end..].to_vec();
    assert!(partial == data[..partial.len()]);
    let r = fetch(&c.us, "GET", "big.bin", &[("Range", &format!("bytes={}-", partial.len()))]);
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range"), Some(format!("bytes {}-{}/{BIG_LEN}", partial.len(), BIG_LEN - 1).as_str()));
    assert!([partial.clone(), r.body].concat() == data);

    if Command::new("curl").arg("--version").output().is_err() {
        eprintln!("curl is not installed: `curl -C -` not tried");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.bin");
    std::fs::write(&file, &partial).unwrap();
    let out = Command::new("curl")
        .args(["-sS", "-f", "-C", "-", "-o"])
        .arg(&file)
        .arg(c.us.url("/fs/big.bin"))
        .output()
        .unwrap();
    assert!(out.status.success(), "curl -C -: {}", String::from_utf8_lossy(&out.stderr));
    assert!(std::fs::read(&file).unwrap() == data, "curl resumed to the whole file");
}
