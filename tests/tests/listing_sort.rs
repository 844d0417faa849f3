//! Listings sorted by `?sort=name|size|modified` and `?order=asc|desc`, in HTML and JSON, on a
//! directory spread over two nodes: directories first in every order (as the default listing),
//! ties broken by name; clickable column heads; bad values refused with a reason.

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use dftp_e2e::*;

/// Sets the modification time (seconds since the epoch) of a file or directory.
fn set_mtime(path: &Path, secs: u64) {
    let f = fs::File::open(path).unwrap();
    f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(secs)).unwrap();
}

/// (name, size, mtime, node index) of each file; and two directories, one per node.
const FILES: &[(&str, usize, u64, usize)] = &[
    ("b.txt", 300, 1_600_000_300, 0),
    ("a.txt", 100, 1_600_000_200, 1),
    ("c.txt", 300, 1_600_000_100, 1),
    ("D.txt", 200, 1_600_000_400, 0),
    ("e.bin", 0, 1_600_000_000, 0),
];

fn names_of(listing: &Value) -> Vec<String> {
    listing["entries"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap().to_string()).collect()
}

/// The order the test expects, computed from the table: directories first (by name, in the
/// direction asked), then files by the key, ties by name.
fn expected(key: &str, desc: bool) -> Vec<String> {
    let mut dirs = vec!["xdir".to_string(), "ydir".to_string()];
    let mut files: Vec<(&str, usize, u64)> = FILES.iter().map(|&(n, s, t, _)| (n, s, t)).collect();
    files.sort_by(|a, b| {
        let k = match key {
            "size" => a.1.cmp(&b.1),
            "modified" => a.2.cmp(&b.2),
            _ => std::cmp::Ordering::Equal,
        };
        k.then(a.0.cmp(b.0))
    });
    if desc {
        files.reverse();
        dirs.reverse();
    }
    dirs.into_iter().chain(files.into_iter().map(|f| f.0.to_string())).collect()
}

#[test]
fn listings_sort_by_each_key_in_both_directions() {
    let roots = [awkward_tempdir("sort-a"), awkward_tempdir("sort-b")];
    for &(name, size, mtime, node) in FILES {
        let path = roots[node].path().join("d").join(name);
        write_file(roots[node].path(), &format!("d/{name}"), &vec![b'x'; size]);
        set_mtime(&path, mtime);
    }
    // Directories with the same times both ways, so that only "directories first" orders them.
    fs::create_dir_all(roots[0].path().join("d/ydir")).unwrap();
    write_file(roots[1].path(), "d/xdir/inside.txt", b"big enough to matter\n");
    set_mtime(&roots[0].path().join("d/ydir"), 1_500_000_000);
    set_mtime(&roots[1].path().join("d/xdir"), 1_500_000_000);
    let a = Node::start(NodeOpts::new("a", roots[0].path()));
    let b = Node::start(NodeOpts::new("b", roots[1].path()).join(&a.mgmt_addr()));
    let want_find = expected_find(&[roots[0].path(), roots[1].path()]);
    for n in [&a, &b] {
        wait_until("both nodes to list everything", WAIT, || (n.find() == want_find).then_some(()));
    }

    // The default is unchanged: directories first, then bytewise by name (capitals first).
    for n in [&a, &b] {
        assert_eq!(names_of(&n.listing("d")), expected("name", false), "default on {}", n.name);
    }
    for n in [&a, &b] {
        for key in ["name", "size", "modified"] {
            for (order, desc) in [("asc", false), ("desc", true)] {
                let want = expected(key, desc);
                let json = n.get(&format!("/fs/d/?format=json&sort={key}&order={order}"));
                assert_eq!(json.status, 200, "{}", json.text());
                assert_eq!(names_of(&json.json()), want, "JSON sort={key} order={order} on {}", n.name);

                // The HTML rows are in the same order (the column heads are not rows).
                let page = n.get(&format!("/fs/d/?sort={key}&order={order}")).text();
                let rows: Vec<String> = page
                    .split("<a href=\"./")
                    .skip(1)
                    .map(|s| s.split('"').next().unwrap().trim_end_matches('/').to_string())
                    .filter(|h| !h.contains("?format=txt"))
                    .collect();
                assert_eq!(rows, want, "HTML sort={key} order={order} on {}", n.name);
            }
        }
    }
    // Sorting by size or time really differs from by name here, so the checks above can fail.
    assert_ne!(expected("size", false), expected("name", false));
    assert_ne!(expected("modified", false), expected("name", false));
}

#[test]
fn column_heads_are_links_that_toggle() {
    let root = awkward_tempdir("sort-heads");
    write_file(root.path(), "one.txt", b"1\n");
    let n = Node::start(NodeOpts::new("solo", root.path()));
    let heads = |q: &str| -> Vec<String> {
        let page = n.get(&format!("/fs/{q}")).text();
        page.split("<a href=\"?").skip(1).map(|s| s.split('"').next().unwrap().replace("&amp;", "&")).collect()
    };
    // Unsorted (by name ascending): Name reverses, the others sort ascending.
    assert_eq!(heads(""), ["sort=name&order=desc", "sort=modified&order=asc", "sort=size&order=asc"]);
    assert_eq!(
        heads("?sort=size&order=asc"),
        ["sort=name&order=asc", "sort=modified&order=asc", "sort=size&order=desc"]
    );
    assert_eq!(heads("?sort=size&order=desc")[2], "sort=size&order=asc");
    // The links work as a browser resolves them (against the listing's own URL).
    for h in heads("") {
        assert_eq!(n.get(&format!("/fs/?{h}")).status, 200, "{h}");
    }
}

#[test]
fn bad_sort_values_are_refused_with_a_reason() {
    let root = awkward_tempdir("sort-bad");
    write_file(root.path(), "one.txt", b"1\n");
    let n = Node::start(NodeOpts::new("solo", root.path()));
    for (q, reason) in [
        ("sort=colour", "use name, size or modified"),
        ("order=upwards", "use asc or desc"),
        ("sort=%3Cscript%3E&format=json", "bad sort"),
    ] {
        let r = n.get(&format!("/fs/?{q}"));
        assert_eq!(r.status, 400, "{q}: {}", r.text());
        assert!(r.text().contains(reason), "{q}: {}", r.text());
        assert!(r.header("content-type").unwrap().starts_with("text/plain"), "{q}");
    }
}
