//! Directory listings: nginx-like HTML, HTML-escaped names, percent-encoded hrefs, owners; the
//! same as JSON with `?format=json`; a directory without its slash redirects; a path held by
//! several nodes shows the same owner on every node (greatest status-change time, then name).

use dftp_e2e::{encode_path, encode_segment, Fixture, Value};

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
        assert!(page.contains(r#"<a href="%3Cb%3E.html">&lt;b&gt;.html</a>"#), "{page}");
        assert!(!page.contains("<b>.html"), "an unescaped name: {page}");
        assert!(page.contains(r#"<a href="a%26b.txt">a&amp;b.txt</a>"#), "{page}");
        assert!(page.contains(r#"<a href="what%3F.txt">what?.txt</a>"#), "{page}");
        assert!(page.contains(r#"<a href="hash%23tag.txt">hash#tag.txt</a>"#), "{page}");
        assert!(page.contains(r#"<a href="100%25%20done.txt">100% done.txt</a>"#), "{page}");
        assert!(page.contains(r#"<a href="space%20name.txt">space name.txt</a>"#), "{page}");
        assert!(page.contains("&quot;double.txt</a>"), "a double quote is escaped: {page}");
        assert!(!page.contains("and\"double"), "{page}");
        assert!(page.contains(r#"<a href="sub%20dir/">sub dir/</a>"#), "{page}");
        assert!(page.contains("[DIR]"), "{page}");
        // Owners at the end of each line: the file of each node, and the shared one's winner.
        for (file, owner) in [("gamma.txt", "gamma"), ("a&amp;b.txt", "alpha"), ("shared.txt", "alpha")] {
            let line = page.lines().find(|l| l.contains(&format!(">{file}</a>"))).unwrap_or_else(|| panic!("{page}"));
            assert!(line.trim_end().ends_with(owner), "owner of {file} on {}: {line}", n.name);
        }
        // Every href resolves on this node.
        for href in page.split("href=\"").skip(1).map(|s| s.split('"').next().unwrap()) {
            if href.contains("?format=txt") || href == "../" {
                continue;
            }
            let r = n.get(&format!("/fs/{href}"));
            assert_eq!(r.status, 200, "GET /fs/{href} on {}: {}", n.name, r.text());
        }

        let sub = n.get(&format!("/fs/{}/", encode_segment("sub dir"))).text();
        assert!(sub.contains("<title>Index of /sub dir/</title>"), "{sub}");
        assert!(sub.contains(r#"<a href="../">../</a>"#), "{sub}");
        assert!(sub.contains(r#"<a href="alpha.txt">alpha.txt</a>"#) && sub.contains(">beta.txt</a>"), "{sub}");

        let unicode = n.get(&format!("/fs/{}/", encode_segment("ünïcødé"))).text();
        assert!(unicode.contains(&format!("<a href=\"{}\">файл.txt</a>", encode_segment("файл.txt"))), "{unicode}");
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
