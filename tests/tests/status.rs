//! `GET /status/` on the public interface: every node of the cluster, one of them killed and
//! shown as lost, in the JSON (`?format=json`) and in the HTML page, which the greeting page
//! links to; the page is rendered by a headless Chromium at a phone's size (a screenshot into a
//! temporary directory, and the DOM it built), under the walls' policy, with no script.

use std::path::Path;
use std::process::Command;

use base64::Engine;
use dftp_e2e::{awkward_tempdir, get, http, wait_until, walk, write_file, Fixture, Node, NodeOpts, Resp, WAIT};
use serde_json::Value;

/// Files and bytes of the files under `root`.
fn files_and_bytes(root: &Path) -> (u64, u64) {
    let files: Vec<_> = walk(root).into_iter().filter(|(_, dir)| !dir).collect();
    let bytes = files.iter().map(|(p, _)| std::fs::metadata(root.join(p)).unwrap().len()).sum();
    (files.len() as u64, bytes)
}

fn node<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == name)
        .unwrap_or_else(|| panic!("{name} in {status}"))
}

fn assert_page_walls(r: &Resp) {
    let csp = r.header("content-security-policy").expect("a policy");
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    assert!(!csp.contains("script") && !csp.contains("unsafe"), "{csp}");
    assert!(csp.contains("style-src 'sha256-"), "{csp}");
}

#[test]
fn the_status_page_lists_every_node_and_shows_a_killed_one_as_lost() {
    let mut f = Fixture::start_with(false, |o| o.arg("--peer-timeout=2s"));
    let alpha_url = f.node("alpha").url("/status/?format=json");
    let cluster_name = get(&f.node("alpha").mgmt_url("/cluster/")).json()["Name"].as_str().unwrap().to_string();

    let greeting = f.node("alpha").get("/");
    assert!(greeting.text().contains("<a href=\"/status/\">"), "{}", greeting.text());

    let gamma = f.nodes.remove(2);
    assert_eq!(gamma.name, "gamma");
    let gamma_public = gamma.http.to_string();
    drop(gamma); // killed
    let status = wait_until("alpha to show gamma as lost", WAIT, || {
        let s = get(&alpha_url).json();
        (node(&s, "gamma")["state"] == "lost").then_some(s)
    });

    // The JSON.
    assert_eq!(status["cluster"], cluster_name.as_str());
    assert_eq!(status["node"], "alpha");
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    assert!(status["uptime_seconds"].is_u64(), "{status}");
    let names: Vec<&str> = status["nodes"].as_array().unwrap().iter().map(|n| n["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["alpha", "beta", "gamma"], "this node first, then the peers by name");
    let (alpha, beta, gamma) = (node(&status, "alpha"), node(&status, "beta"), node(&status, "gamma"));
    assert_eq!((alpha["me"].as_bool(), beta["me"].as_bool()), (Some(true), Some(false)));
    assert_eq!((alpha["state"].as_str(), beta["state"].as_str()), (Some("alive"), Some("alive")));
    assert_eq!(alpha["public_addr"], f.node("alpha").http.to_string());
    assert_eq!(beta["public_addr"], f.node("beta").http.to_string());
    assert_eq!(beta["mgmt_addr"], f.node("beta").mgmt_addr());
    assert_eq!(gamma["public_addr"], gamma_public);
    // What each holds: alpha's and beta's roots; the lost node's files left the tree.
    let (files, bytes) = files_and_bytes(f.roots[1].path());
    assert_eq!((beta["files"].as_u64(), beta["bytes"].as_u64()), (Some(files), Some(bytes)), "{status}");
    let (files, bytes) = files_and_bytes(f.roots[0].path());
    assert_eq!((alpha["files"].as_u64(), alpha["bytes"].as_u64()), (Some(files), Some(bytes)), "{status}");
    assert_eq!((gamma["files"].as_u64(), gamma["bytes"].as_u64()), (Some(0), Some(0)));
    // Updates went both ways with beta; gamma was seen before it was lost, and not since.
    assert!(beta["last_update_in"].is_i64() && beta["last_update_out"].is_i64(), "{status}");
    assert!(gamma["last_seen"].as_i64().unwrap() <= status["now"].as_i64().unwrap());
    assert!(beta["last_seen"].as_i64().unwrap() >= gamma["last_seen"].as_i64().unwrap());

    // The HTML page says the same.
    let page = f.node("alpha").get("/status/");
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    assert_page_walls(&page);
    let html = page.text();
    assert!(!html.contains("<script"), "{html}");
    assert!(html.contains(&format!("Cluster {cluster_name}")), "{html}");
    for name in ["alpha", "beta", "gamma"] {
        assert!(html.contains(&format!("<td data-label=\"Node\">{name}")), "{name} in {html}");
    }
    let gamma_row = html.split("<tr>").find(|r| r.contains(">gamma<")).expect("gamma's row");
    assert!(gamma_row.contains("class=\"lost\">lost<"), "{gamma_row}");
    let beta_row = html.split("<tr>").find(|r| r.contains(">beta<")).expect("beta's row");
    assert!(beta_row.contains("class=\"alive\">alive<"), "{beta_row}");
    assert_eq!(f.node("alpha").get("/status").status, 200);

    // In a browser at a phone's size.
    let Some(chromium) = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|c| Command::new(c).arg("--version").output().is_ok_and(|o| o.status.success()))
    else {
        eprintln!("skipping the browser part: no chromium on this machine (apt-get install chromium; .ci/run does)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let shot = dir.path().join("status.png");
    let url = f.node("alpha").url("/status/");
    let browser = |extra: &[&str]| {
        let out = Command::new(chromium)
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--window-size=390,844"])
            .arg(format!("--user-data-dir={}", dir.path().join("profile").display()))
            .args(extra)
            .arg(&url)
            .output()
            .expect("run chromium");
        assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
        out
    };
    browser(&[&format!("--screenshot={}", shot.display())]);
    let png = std::fs::read(&shot).expect("chromium wrote the screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 1000, "a PNG, {} bytes", png.len());
    // PNG's IHDR: the width the page was rendered at.
    assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), 390);
    eprintln!("status page screenshot: {} ({} bytes)", shot.display(), png.len());
    let dom = String::from_utf8(browser(&["--dump-dom"]).stdout).unwrap();
    for name in ["alpha", "beta", "gamma"] {
        assert!(dom.contains(&format!(">{name}")), "{name} in the rendered DOM:\n{dom}");
    }
    assert!(dom.contains("class=\"lost\">lost<"), "{dom}");
}

/// Where anonymous clients may read nothing of the tree, the status page (node names and
/// addresses) is not theirs either: they are asked to log in, as `/find/` asks them.
#[test]
fn a_closed_tree_closes_the_status_page_too() {
    let root = awkward_tempdir("status-closed");
    write_file(root.path(), "a.txt", b"a");
    let node = Node::start(NodeOpts::new("solo", root.path()).arg("--auth=carol:carolpw@/:r"));
    let anonymous = node.get("/status/?format=json");
    assert_eq!(anonymous.status, 401, "{}", anonymous.text());
    assert!(anonymous.header("www-authenticate").is_some_and(|v| v.starts_with("Basic")));
    assert!(!anonymous.text().contains(&node.mgmt_addr()), "{}", anonymous.text());
    let login = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("carol:carolpw"));
    let carol = http("GET", &node.url("/status/?format=json"), &[("Authorization", &login)], None);
    assert_eq!(carol.status, 200, "{}", carol.text());
    assert_eq!(carol.json()["nodes"][0]["mgmt_addr"], node.mgmt_addr());
    let wrong = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("carol:nope"));
    assert_eq!(http("GET", &node.url("/status/"), &[("Authorization", &wrong)], None).status, 401);
}
