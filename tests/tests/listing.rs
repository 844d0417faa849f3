//! Directory listings: nginx-like HTML, HTML-escaped names, percent-encoded hrefs, owners; the
//! same as JSON with `?format=json`; a directory without its slash redirects; a path held by
//! several nodes shows the same owner on every node (greatest status-change time, then name).

use dftp_e2e::*;

fn entries(listing: &Value) -> Vec<Value> {
    listing["entries"].as_array().cloned().unwrap_or_default()
}

#[test]
fn html_listing_is_escaped_encoded_and_shows_owners() {
    let f = Fixture::start(false);
    for n in &f.nodes {
        let r = n.get("/fs/");
        assert_eq!(r.status, 200);
        assert!(r.header("content-type").unwrap().starts_with("text/html"));
        let page = r.text();
        assert!(page.contains("<title>Index of /</title>"), "{page}");
        // Names escaped in the text, percent-encoded in the links.
        assert!(page.contains(r#"<a href="./%3Cb%3E.html">&lt;b&gt;.html</a>"#), "{page}");
        assert!(!page.contains("<b>.html"), "an unescaped name: {page}");
        assert!(page.contains(r#"<a href="./a%26b.txt">a&amp;b.txt</a>"#), "{page}");
        assert!(page.contains(r#"<a href="./what%3F.txt">what?.txt</a>"#), "{page}");
        assert!(page.contains(r#"<a href="./hash%23tag.txt">hash#tag.txt</a>"#), "{page}");
        assert!(page.contains(r#"<a href="./100%25%20done.txt">100% done.txt</a>"#), "{page}");
        assert!(page.contains(r#"<a href="./space%20name.txt">space name.txt</a>"#), "{page}");
        assert!(page.contains("&quot;double.txt</a>"), "a double quote is escaped: {page}");
        assert!(!page.contains("and\"double"), "{page}");
        assert!(page.contains(r#"<a href="./sub%20dir/">sub dir/</a>"#), "{page}");
        assert!(page.contains("[DIR]"), "{page}");
        // Owners at the end of each line: the file of each node, and the shared one's winner.
        for (file, owner) in [("gamma.txt", "gamma"), ("a&amp;b.txt", "alpha"), ("shared.txt", "alpha")] {
            let line = page.lines().find(|l| l.contains(&format!(">{file}</a>"))).unwrap_or_else(|| panic!("{page}"));
            assert!(line.trim_end().ends_with(owner), "owner of {file} on {}: {line}", n.name);
        }
        // Every href resolves on this node.
        for href in hrefs(&page) {
            // Skipped: plain-text views, the parent, and the column heads (`?sort=`).
            if href.contains("?format=txt") || href == "../" || href.starts_with('?') {
                continue;
            }
            let rel = href.strip_prefix("./").unwrap_or_else(|| panic!("{href} does not start with ./"));
            let r = n.get(&format!("/fs/{rel}"));
            assert_eq!(r.status, 200, "GET /fs/{href} on {}: {}", n.name, r.text());
        }

        let sub = n.get(&format!("/fs/{}/", encode_segment("sub dir"))).text();
        assert!(sub.contains("<title>Index of /sub dir/</title>"), "{sub}");
        assert!(sub.contains(r#"<a href="../">../</a>"#), "{sub}");
        assert!(sub.contains(r#"<a href="./alpha.txt">alpha.txt</a>"#) && sub.contains(">beta.txt</a>"), "{sub}");

        let unicode = n.get(&format!("/fs/{}/", encode_segment("ünïcødé"))).text();
        assert!(unicode.contains(&format!("<a href=\"./{}\">файл.txt</a>", encode_segment("файл.txt"))), "{unicode}");
    }
}

#[test]
fn json_listing_has_owner_fields() {
    let f = Fixture::start(false);
    for n in &f.nodes {
        let root = n.listing("");
        assert_eq!(root["path"], "/");
        let list = entries(&root);
        let by_name = |name: &str| list.iter().find(|e| e["name"] == name).cloned().unwrap_or(Value::Null);
        assert_eq!(by_name("<b>.html")["owner"], "alpha");
        assert_eq!(by_name("<b>.html")["type"], "file");
        assert_eq!(by_name("日本語.txt")["owner"], "beta");
        assert_eq!(by_name("gamma.txt")["owner"], "gamma");
        assert_eq!(by_name("empty.txt")["size"], 0);
        assert_eq!(by_name("emptydir")["type"], "dir");
        assert_eq!(by_name("emptydir")["owner"], "alpha");
        assert_eq!(by_name("beta only")["owner"], "beta");
        assert!(list.iter().all(|e| e["owner"].is_string()), "{root}");
        assert!(by_name("passwd-link").is_null() && by_name("etc-link").is_null(), "symlinks are not listed");
        let size = by_name("space name.txt")["size"].as_u64().unwrap();
        assert_eq!(size as usize, f.content("space name.txt").len());

        let sub = n.listing("sub dir");
        assert_eq!(sub["path"], "/sub dir/");
        let names: Vec<String> = entries(&sub).iter().map(|e| e["name"].as_str().unwrap().to_owned()).collect();
        assert_eq!(names, ["alpha.txt", "beta.txt"]);
        let deep = n.listing("sub dir2/nested");
        assert_eq!(entries(&deep)[0]["owner"], "gamma");
    }
}

#[test]
fn the_same_owner_everywhere_for_a_shared_path() {
    let f = Fixture::start(false);
    let (_, winner) = f.files.iter().find(|(p, _)| p == "shared.txt").unwrap();
    // The fixture wrote alpha's copy a second after the others: its status-change time wins over
    // the greater names.
    assert_eq!(winner, "alpha");
    let mut dir_owners = Vec::new();
    for n in &f.nodes {
        assert_eq!(n.owner_in_listing("", "shared.txt").as_deref(), Some(winner.as_str()), "on {}", n.name);
        assert_eq!(n.get("/fs/shared.txt").body, b"shared from alpha\n", "content through {}", n.name);
        dir_owners.push(n.owner_in_listing("", "sub dir"));
    }
    // A directory on two nodes: one owner string, the same on every node.
    assert!(dir_owners.iter().all(|o| *o == dir_owners[0] && o.is_some()), "{dir_owners:?}");
}

#[test]
fn directory_without_slash_redirects() {
    let f = Fixture::start(false);
    for n in &f.nodes {
        for (dir, query) in [("sub dir", ""), ("ünïcødé", ""), ("sub dir2/nested", "?format=json"), ("emptydir", "")]
        {
            let path = format!("/fs/{}", encode_path(dir));
            let r = n.get(&format!("{path}{query}"));
            assert_eq!(r.status, 301, "GET {path} on {}", n.name);
            assert_eq!(r.header("location"), Some(format!("{path}/{query}").as_str()));
        }
        let r = n.get("/fs");
        assert_eq!(r.status, 301);
        assert_eq!(r.header("location"), Some("/fs/"));
        // A file with a slash is not a directory; a missing path is a 404 naming the path.
        assert_eq!(n.get("/fs/gamma.txt/").status, 404);
        let missing = n.get("/fs/no%20such/dir/");
        assert_eq!(missing.status, 404);
        assert!(missing.text().contains("no such/dir"), "{}", missing.text());
    }
}

/// The links of an HTML page, in order.
fn hrefs(page: &str) -> Vec<&str> {
    page.split("href=\"").skip(1).map(|s| s.split('"').next().unwrap()).collect()
}

/// Names that read as URL schemes (`javascript:`, `http:`, `data:`, `mailto:`, any `word:`)
/// are linked as paths: each is reached through a node that owns nothing by following its link
/// the way a browser resolves it, and `wget -r` mirrors every one of them. A binary gets no
/// "as text" link, so the mirror holds each file once.
#[test]
fn names_that_look_like_schemes_are_reachable_and_harmless() {
    let owner_root = awkward_tempdir("schemes");
    let names = [
        "javascript:alert(document.domain)",
        "http:example.com",
        "data:text,hello",
        "mailto:someone@example.com",
        "colon:name.txt",
        "payload.bin",
    ];
    let mut files = Vec::new();
    for n in names {
        for rel in [n.to_string(), format!("ftp:dir/{n}")] {
            let content = format!("content of {rel}\n").into_bytes();
            write_file(owner_root.path(), &rel, &content);
            files.push((rel, content));
        }
    }
    let front_root = awkward_tempdir("schemes-front");
    let owner = Node::start(NodeOpts::new("owner", owner_root.path()));
    let front = Node::start(NodeOpts::new("front", front_root.path()).join(&owner.mgmt_addr()));
    let expected = expected_find(&[owner_root.path()]);
    wait_until("the front node to list the owner's files", WAIT, || (front.find() == expected).then_some(()));

    for (dir, count) in [("", names.len() + 1), ("ftp:dir/", names.len())] {
        let base = format!("/fs/{}", dir.split('/').map(encode_segment).collect::<Vec<_>>().join("/"));
        let page = front.get(&base).text();
        let links: Vec<&str> = hrefs(&page)
            .into_iter()
            .filter(|h| *h != "../" && !h.ends_with("?format=txt") && !h.starts_with('?'))
            .collect();
        assert_eq!(links.len(), count, "{page}");
        for href in links {
            // A relative reference that starts with `./` is a path, whatever follows (RFC 3986 4.2).
            let rel = href.strip_prefix("./").unwrap_or_else(|| panic!("{href:?} may read as a scheme:\n{page}"));
            assert!(!rel.starts_with('/'), "{href}");
            let r = front.get(&format!("{base}{rel}"));
            assert_eq!(r.status, 200, "GET {base}{rel}: {}", r.text());
        }
        assert!(!page.contains("payload.bin?format=txt"), "a binary has an as-text link:\n{page}");
        assert!(page.contains("colon:name.txt?format=txt"), "a text file lost its as-text link:\n{page}");
    }

    // A mirroring tool, as a user would run it against the node that owns nothing.
    if std::process::Command::new("wget").arg("--version").output().is_err() {
        eprintln!("skipping the wget mirror: wget is not installed (.ci/run installs it)");
        return;
    }
    let mirror = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("wget")
        .args(["-r", "-np", "-nH", "--cut-dirs=1", "-e", "robots=off", "-q", "--restrict-file-names=nocontrol"])
        .arg("-P")
        .arg(mirror.path())
        .arg(front.url("/fs/"))
        .output()
        .unwrap();
    // wget exits 8 when a link answered with an error; every one here must answer.
    assert!(out.status.success(), "wget -r: {:?}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    for (rel, content) in &files {
        let got = std::fs::read(mirror.path().join(rel)).unwrap_or_else(|e| panic!("wget did not mirror {rel}: {e}"));
        assert_eq!(&got, content, "{rel}");
    }
    let fetched: Vec<String> = walk(mirror.path()).into_iter().filter(|(_, dir)| !dir).map(|(p, _)| p).collect();
    assert!(!fetched.iter().any(|p| p.starts_with("payload.bin?")), "a binary was fetched twice: {fetched:?}");
}
