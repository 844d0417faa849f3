//! `GET /metrics` on the management interface: Prometheus' text format, read by a strict parser
//! here and by the Python client's parser (`prometheus_client`, when installed), whose counters
//! move with what the test does: requests served locally and proxied, their bytes, a local change
//! sent to the peers as an incremental update, a refused update, an FTP session and its `RETR`s;
//! and the cluster traffic counters against the bytes a peer really got and sent.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use dftp_e2e::ftp::{read_all, Control};
use dftp_e2e::{encode_path, http, wait_until, walk, write_file, Fixture, Node, NodeOpts, WAIT};

/// Samples by series (`name{labels}` as written), from a strict reading of the text format:
/// every sample belongs to a family declared by a `# TYPE` line before it, names and label sets
/// are well formed, values are numbers, and no series appears twice.
fn parse(text: &str) -> BTreeMap<String, f64> {
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut samples = BTreeMap::new();
    let is_name = |s: &str| {
        !s.is_empty()
            && s.chars()
                .enumerate()
                .all(|(i, c)| c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit()))
    };
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or_else(|| panic!("bad TYPE line {line:?}"));
            assert!(is_name(name), "bad metric name in {line:?}");
            assert!(["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind), "type in {line:?}");
            assert!(types.insert(name.to_string(), kind.to_string()).is_none(), "{name} declared twice");
            continue;
        }
        if line.starts_with("# HELP ") || line.is_empty() {
            continue;
        }
        assert!(!line.starts_with('#'), "unexpected comment {line:?}");
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value in {line:?}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let name = match series.split_once('{') {
            None => series,
            Some((name, labels)) => {
                let labels = labels.strip_suffix('}').unwrap_or_else(|| panic!("unclosed labels in {line:?}"));
                for pair in labels.split(',').filter(|p| !p.is_empty()) {
                    let (k, v) = pair.split_once('=').unwrap_or_else(|| panic!("bad label {pair:?} in {line:?}"));
                    assert!(is_name(k), "bad label name in {line:?}");
                    assert!(v.len() >= 2 && v.starts_with('"') && v.ends_with('"'), "unquoted label value in {line:?}");
                }
                name
            }
        };
        assert!(is_name(name), "bad sample name in {line:?}");
        let family = types
            .keys()
            .find(|f| {
                name == f.as_str()
                    || ["_bucket", "_sum", "_count"].iter().any(|s| name.strip_suffix(s) == Some(f.as_str()))
            })
            .unwrap_or_else(|| panic!("{line:?} belongs to no declared family"));
        if types[family] == "counter" {
            assert!(name.ends_with("_total"), "counter sample {name} should end in _total");
        }
        assert!(samples.insert(series.to_string(), value).is_none(), "{series} twice");
    }
    samples
}

fn scrape(node: &Node) -> (String, BTreeMap<String, f64>) {
    let r = http("GET", &node.mgmt_url("/metrics"), &[], None);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("text/plain; version=0.0.4; charset=utf-8"));
    let text = r.text();
    let samples = parse(&text);
    (text, samples)
}

/// A sample's value; a series not there yet is 0 (a counter's labels appear with its first
/// increment).
fn value(samples: &BTreeMap<String, f64>, series: &str) -> f64 {
    samples.get(series).copied().unwrap_or(0.0)
}

/// Families and their types as Python's `prometheus_client` parser reads `text`, or `None`
/// (with the reason printed) when python3 or the module is missing.
fn python_families(text: &str) -> Option<BTreeMap<String, String>> {
    const SCRIPT: &str = r#"
import json, sys
try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    print("missing")
    sys.exit(0)
print(json.dumps({f.name: f.type for f in text_string_to_metric_families(sys.stdin.read())}))
"#;
    let child = Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        eprintln!("skipping the prometheus_client check: no python3");
        return None;
    };
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "prometheus_client could not parse /metrics: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    if stdout.trim() == "missing" {
        eprintln!("skipping the prometheus_client check: pip install prometheus-client (.ci/run does)");
        return None;
    }
    Some(serde_json::from_str(&stdout).unwrap())
}

#[test]
fn metrics_parse_and_move_with_what_the_node_does() {
    let f = Fixture::start(false);
    let (alpha, beta) = (f.node("alpha"), f.node("beta"));

    let (text, before) = scrape(alpha);
    // What a snapshot knows: two live peers, and what each node holds.
    assert_eq!(value(&before, "dftp_peers{liveness=\"alive\"}"), 2.0);
    assert_eq!(value(&before, "dftp_peers{liveness=\"lost\"}"), 0.0);
    let beta_paths = walk(f.roots[1].path());
    let beta_bytes: u64 = beta_paths
        .iter()
        .filter(|(_, dir)| !dir)
        .map(|(p, _)| std::fs::metadata(f.roots[1].path().join(p)).unwrap().len())
        .sum();
    assert_eq!(value(&before, "dftp_tree_paths{owner=\"beta\"}"), beta_paths.len() as f64);
    assert_eq!(value(&before, "dftp_tree_file_bytes{owner=\"beta\"}"), beta_bytes as f64);
    // Joining meant a full update each way with each peer.
    assert!(value(&before, "dftp_updates_total{direction=\"sent\",kind=\"full\"}") >= 2.0, "{text}");
    assert!(value(&before, "dftp_updates_total{direction=\"received\",kind=\"full\"}") >= 2.0, "{text}");
    assert!(value(&before, "dftp_update_records_total{direction=\"received\",kind=\"full\"}") > 0.0, "{text}");

    // Requests on alpha's public interface: its own file, beta's (proxied), a 404, a HEAD.
    let own = f.files.iter().find(|(_, o)| o == "alpha").map(|(p, _)| p.clone()).expect("a file of alpha's");
    let theirs = f.files.iter().find(|(_, o)| o == "beta").map(|(p, _)| p.clone()).expect("a file of beta's");
    let own_body = http("GET", &alpha.url(&format!("/fs/{}", encode_path(&own))), &[], None);
    let proxied_body = http("GET", &alpha.url(&format!("/fs/{}", encode_path(&theirs))), &[], None);
    assert_eq!((own_body.status, proxied_body.status), (200, 200));
    let missing = http("GET", &alpha.url("/fs/no-such-file"), &[], None);
    assert_eq!(missing.status, 404);
    assert_eq!(http("HEAD", &alpha.url(&format!("/fs/{}", encode_path(&own))), &[], None).status, 200);

    let (text, after) = scrape(alpha);
    let delta = |series: &str| value(&after, series) - value(&before, series);
    assert_eq!(delta("dftp_requests_total{interface=\"http\",method=\"GET\",status=\"2xx\"}"), 2.0, "{text}");
    assert_eq!(delta("dftp_requests_total{interface=\"http\",method=\"GET\",status=\"4xx\"}"), 1.0, "{text}");
    assert_eq!(delta("dftp_requests_total{interface=\"http\",method=\"HEAD\",status=\"2xx\"}"), 1.0, "{text}");
    assert_eq!(delta("dftp_request_duration_seconds_count{interface=\"http\"}"), 4.0, "{text}");
    assert_eq!(
        value(&after, "dftp_request_duration_seconds_bucket{interface=\"http\",le=\"+Inf\"}"),
        value(&after, "dftp_request_duration_seconds_count{interface=\"http\"}")
    );
    assert_eq!(
        delta("dftp_sent_bytes_total{interface=\"http\",source=\"proxied\"}"),
        proxied_body.body.len() as f64,
        "{text}"
    );
    assert_eq!(
        delta("dftp_sent_bytes_total{interface=\"http\",source=\"local\"}"),
        (own_body.body.len() + missing.body.len()) as f64,
        "{text}"
    );
    // The first scrape was answered and counted on the management interface.
    assert!(value(&after, "dftp_requests_total{interface=\"mgmt\",method=\"GET\",status=\"2xx\"}") >= 1.0);

    // A local change: seen by the watcher, rescanned, sent to both peers as an incremental
    // update, which beta receives.
    let beta_received = value(&scrape(beta).1, "dftp_updates_total{direction=\"received\",kind=\"incremental\"}");
    write_file(f.roots[0].path(), "metrics-new.txt", b"new\n");
    wait_until("beta to show the new file", WAIT, || (beta.get("/fs/metrics-new.txt").status == 200).then_some(()));
    let sent = "dftp_updates_total{direction=\"sent\",kind=\"incremental\"}";
    let now = wait_until("alpha to count both deliveries", WAIT, || {
        let s = scrape(alpha).1;
        (value(&s, sent) - value(&after, sent) >= 2.0).then_some(s)
    });
    assert!(value(&now, "dftp_watcher_events_total") > value(&after, "dftp_watcher_events_total"));
    assert!(value(&now, "dftp_rescans_total{scope=\"paths\"}") > value(&after, "dftp_rescans_total{scope=\"paths\"}"));
    let records = "dftp_update_records_total{direction=\"sent\",kind=\"incremental\"}";
    assert!(value(&now, records) - value(&after, records) >= 2.0);
    let bytes = "dftp_update_bytes_total{direction=\"sent\",kind=\"incremental\"}";
    assert!(value(&now, bytes) > value(&after, bytes));
    let beta_now = scrape(beta).1;
    assert!(value(&beta_now, "dftp_updates_total{direction=\"received\",kind=\"incremental\"}") > beta_received);
    assert!(value(&beta_now, "dftp_update_bytes_total{direction=\"received\",kind=\"incremental\"}") > 0.0);

    // A refused update counts as a failure.
    let failures = "dftp_update_failures_total{direction=\"received\"}";
    let refused = http("POST", &alpha.mgmt_url("/update/"), &[("content-type", "text/plain")], Some(b"{}"));
    assert_eq!(refused.status, 400);
    assert_eq!(value(&scrape(alpha).1, failures) - value(&now, failures), 1.0);

    // An FTP session is counted while it is open, and the files it fetches by source.
    let open = "dftp_ftp_sessions_open";
    assert_eq!(value(&scrape(alpha).1, open), 0.0);
    let before_ftp = scrape(alpha).1;
    let mut session = Control::login(alpha);
    assert_eq!(value(&scrape(alpha).1, open), 1.0);
    let mut retr = |rel: &str| {
        let data = session.passive();
        assert_eq!(session.cmd(&format!("RETR /{rel}")).code, 150);
        let got = read_all(data);
        assert_eq!(session.reply().code, 226);
        got.len() as f64
    };
    let (own_len, their_len) = (retr(&own), retr(&theirs));
    assert!(own_len > 0.0 && their_len > 0.0);
    // Commands count as requests by how they ended: a refused RETR, a PWD, an unknown verb.
    assert_eq!(session.cmd("RETR /no-such-file").code, 550);
    assert_eq!(session.cmd("PWD").code, 257);
    assert_eq!(session.cmd("XYZZY").code, 500);
    let after_ftp = scrape(alpha).1;
    let ftp_delta = |series: &str| value(&after_ftp, series) - value(&before_ftp, series);
    assert_eq!(ftp_delta("dftp_sent_bytes_total{interface=\"ftp\",source=\"local\"}"), own_len);
    assert_eq!(ftp_delta("dftp_sent_bytes_total{interface=\"ftp\",source=\"proxied\"}"), their_len);
    let ftp = |method: &str, status: &str| {
        ftp_delta(&format!("dftp_requests_total{{interface=\"ftp\",method=\"{method}\",status=\"{status}\"}}"))
    };
    // The two transfers count once each, by their 226, not by their 150.
    assert_eq!(ftp("RETR", "2xx"), 2.0, "{}", scrape(alpha).0);
    assert_eq!(ftp("RETR", "1xx"), 0.0);
    assert_eq!(ftp("RETR", "5xx"), 1.0);
    assert_eq!(ftp("PWD", "2xx"), 1.0);
    assert_eq!(ftp("OTHER", "5xx"), 1.0);
    assert_eq!(ftp("PASS", "2xx"), 1.0, "the login");
    assert_eq!(
        ftp_delta("dftp_request_duration_seconds_count{interface=\"ftp\"}"),
        10.0,
        "USER PASS TYPE, PASV RETR twice, RETR PWD XYZZY"
    );
    assert_eq!(session.cmd("QUIT").code, 221);
    drop(session);
    wait_until("the FTP session to be counted closed", WAIT, || (value(&scrape(alpha).1, open) == 0.0).then_some(()));

    // Every family has samples by now: Python's parser reads them all, with their types.
    let (text, _) = scrape(alpha);
    if let Some(families) = python_families(&text) {
        for (name, kind) in [
            ("dftp_requests", "counter"),
            ("dftp_request_duration_seconds", "histogram"),
            ("dftp_sent_bytes", "counter"),
            ("dftp_peers", "gauge"),
            ("dftp_tree_paths", "gauge"),
            ("dftp_tree_file_bytes", "gauge"),
            ("dftp_updates", "counter"),
            ("dftp_update_records", "counter"),
            ("dftp_update_bytes", "counter"),
            ("dftp_update_failures", "counter"),
            ("dftp_watcher_events", "counter"),
            ("dftp_rescans", "counter"),
            ("dftp_ftp_sessions_open", "gauge"),
            ("dftp_cluster_messages", "counter"),
            ("dftp_cluster_bytes", "counter"),
        ] {
            assert_eq!(families.get(name).map(String::as_str), Some(kind), "{name} in {families:?}");
        }
    }

    // Anything but GET and HEAD is refused with a reason.
    let post = http("POST", &alpha.mgmt_url("/metrics"), &[], Some(b"x"));
    assert_eq!(post.status, 405, "{}", post.text());
}

/// One request a [`RecordingPeer`] got: its path, whether it was a full update, and the bytes
/// of the request and of the answer exactly as they went over the socket.
#[derive(Clone, Debug)]
struct Exchange {
    path: String,
    full: bool,
    request: usize,
    answer: usize,
}

/// A peer on a raw socket that answers greetings with its cluster table and takes updates,
/// keeping each connection open as a real node does, and records every byte each way.
struct RecordingPeer {
    addr: std::net::SocketAddr,
    log: Arc<Mutex<Vec<Exchange>>>,
}

impl RecordingPeer {
    fn start() -> RecordingPeer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let shared = log.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let log = shared.clone();
                std::thread::spawn(move || {
                    let mut out = conn.try_clone().unwrap();
                    let mut reader = BufReader::new(conn);
                    while let Some((path, raw, body)) = read_raw_request(&mut reader) {
                        let answer_body = match path.as_str() {
                            "/cluster/" => {
                                let me = serde_json::json!({"Name": "recorder", "PublicAddr": addr.to_string(),
                                    "MgmtAddr": addr.to_string(), "LastAlive": 0, "LastUpdatePushed": 0,
                                    "LastUpdateReceived": 0, "LastFullUpdateReceived": 0});
                                serde_json::json!({"Name": "dftp", "Me": me, "Peers": {}}).to_string()
                            }
                            _ => "ok".to_string(),
                        };
                        let answer = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\n\r\n{answer_body}",
                            answer_body.len()
                        );
                        let full = String::from_utf8_lossy(&body).contains("\"Full\":true");
                        log.lock().unwrap().push(Exchange { path, full, request: raw, answer: answer.len() });
                        if out.write_all(answer.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        RecordingPeer { addr, log }
    }

    fn exchanges(&self) -> Vec<Exchange> {
        self.log.lock().unwrap().clone()
    }
}

/// Reads one request: its path, how many bytes it took on the wire (head, body and chunk
/// framing), and its body.
fn read_raw_request(r: &mut BufReader<std::net::TcpStream>) -> Option<(String, usize, Vec<u8>)> {
    let mut raw = 0;
    let mut line = String::new();
    let mut read_line = |line: &mut String, raw: &mut usize| -> Option<()> {
        line.clear();
        let n = r.read_line(line).ok()?;
        *raw += n;
        (n > 0).then_some(())
    };
    read_line(&mut line, &mut raw)?;
    let path = line.split(' ').nth(1)?.to_string();
    let (mut length, mut chunked) = (0usize, false);
    loop {
        read_line(&mut line, &mut raw)?;
        let l = line.trim_end().to_ascii_lowercase();
        if l.is_empty() {
            break;
        }
        if let Some(v) = l.strip_prefix("content-length:") {
            length = v.trim().parse().ok()?;
        }
        if l.starts_with("transfer-encoding:") && l.contains("chunked") {
            chunked = true;
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            raw += r.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim(), 16).ok()?;
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).ok()?;
            raw += n + 2;
            body.extend_from_slice(&chunk[..n]);
            if n == 0 {
                break;
            }
        }
    } else {
        body.resize(length, 0);
        r.read_exact(&mut body).ok()?;
        raw += length;
    }
    Some((path, raw, body))
}

/// `dftp_cluster_*` count, by kind and direction, exactly the requests a peer got and the
/// answers it gave, byte for byte: a greeting, the full update that follows a join, and an
/// incremental update for a local change.
#[test]
fn cluster_traffic_counts_what_a_peer_really_got_and_sent() {
    let peer = RecordingPeer::start();
    let root = tempfile::tempdir().unwrap();
    write_file(root.path(), "d/first.txt", b"one\n");
    // Greets once (at the join): the next ping is an hour away, so every counter settles.
    let mut opts = NodeOpts::new("counted", root.path()).join(&peer.addr.to_string());
    opts.ping_interval = "1h".into();
    let node = Node::start(opts.arg("--peer-timeout=3h"));

    let series = |metric: &str, kind: &str, direction: &str| {
        format!("dftp_cluster_{metric}_total{{kind=\"{kind}\",direction=\"{direction}\"}}")
    };
    // What the node counted for `kind` equals what the peer saw, once the node has the answers.
    let matches = |samples: &BTreeMap<String, f64>, kind: &str, exchanges: &[&Exchange]| {
        let sent: usize = exchanges.iter().map(|e| e.request).sum();
        let answered: usize = exchanges.iter().map(|e| e.answer).sum();
        let n = exchanges.len() as f64;
        value(samples, &series("messages", kind, "sent")) == n
            && value(samples, &series("messages", kind, "received")) == n
            && value(samples, &series("bytes", kind, "sent")) == sent as f64
            && value(samples, &series("bytes", kind, "received")) == answered as f64
    };
    let settled = |kinds: &[(&str, &str, Option<bool>)]| {
        wait_until("the node's counters to match what the peer got", WAIT, || {
            let log = peer.exchanges();
            let (text, samples) = scrape(&node);
            let all = kinds.iter().all(|(kind, path, full)| {
                let of_kind: Vec<&Exchange> =
                    log.iter().filter(|e| e.path == *path && full.is_none_or(|f| e.full == f)).collect();
                !of_kind.is_empty() && matches(&samples, kind, &of_kind)
            });
            all.then_some((text, samples, log))
        })
    };
    let (text, samples, log) = settled(&[("cluster", "/cluster/", None)]);
    assert_eq!(log.iter().filter(|e| e.path == "/cluster/").count(), 1, "{log:?}");
    assert_eq!(value(&samples, &series("messages", "update_full", "sent")), 0.0, "{text}");

    // The peer greets the node asking for a full update, as a joining original does.
    let addr = peer.addr.to_string();
    let fields = [("name", "recorder"), ("public-addr", &addr), ("mgmt-addr", &addr), ("request-full-update", "true")];
    assert_eq!(dftp_e2e::post_form(&node.mgmt_url("/cluster/"), &fields).status, 200);
    let (text, samples, log) = settled(&[("cluster", "/cluster/", None), ("update_full", "/update/", Some(true))]);
    assert!(log.iter().any(|e| e.full && e.request > 200), "the full update names a file: {log:?}");
    for kind in ["update_incremental", "join", "digest", "swim", "other", "announce"] {
        assert_eq!(value(&samples, &series("messages", kind, "sent")), 0.0, "{kind}: {text}");
    }

    // A local change goes out as an incremental update, counted as one.
    write_file(root.path(), "d/second.txt", b"two\n");
    let (text, samples, log) = settled(&[
        ("cluster", "/cluster/", None),
        ("update_full", "/update/", Some(true)),
        ("update_incremental", "/update/", Some(false)),
    ]);
    assert!(log.iter().any(|e| e.path == "/update/" && !e.full), "{log:?}");
    assert_eq!(value(&samples, &series("messages", "other", "sent")), 0.0, "{text}");
}
