//! Path parsing, on arbitrary UTF-8: what `DfsPath::parse` and `parse_request` accept must be
//! normalised and round-trip. With a newline, the part before it is also tried as `--dfsmount`.

#![no_main]

use dftp_core::path::MAX_PATH_LEN;
use dftp_core::{DfsPath, Mount};
use libfuzzer_sys::fuzz_target;

fn check(p: &DfsPath) {
    let s = p.as_str();
    assert!(s.len() <= MAX_PATH_LEN);
    assert!(!s.contains('\0') && !s.contains('\\') && !s.contains(char::is_control), "{s:?}");
    if p.is_root() {
        assert_eq!(p.parent(), None);
        return;
    }
    for seg in s.split('/') {
        assert!(!seg.is_empty() && seg != "." && seg != "..", "{s:?} has a bad segment {seg:?}");
    }
    assert_eq!(DfsPath::parse(s).as_ref(), Ok(p), "parse round-trips");
    assert_eq!(DfsPath::parse_request(&p.to_string()).as_ref(), Ok(p), "the displayed form parses back");
    let parent = p.parent().expect("a non-root path has a parent");
    assert_eq!(parent.join(p.name()).as_ref(), Ok(p), "parent + name gives the path back");
    assert_eq!(p.parent_str(), Some(parent.as_str()));
    assert!(p.is_within(&parent) && p.is_within(p) && p.is_within(&DfsPath::root()));
    for a in p.ancestors() {
        let a = DfsPath::parse(a).expect("an ancestor is a valid path");
        assert!(p.is_within(&a) && !a.is_within(p));
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(p) = DfsPath::parse(s) {
        assert_eq!(p.as_str(), s, "an accepted path is kept as given");
        check(&p);
    }
    if let Ok(p) = DfsPath::parse_request(s) {
        check(&p);
        let trimmed = s.strip_prefix('/').unwrap_or(s);
        let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
        assert_eq!(p.as_str(), trimmed);
    }
    if let Some((mount, rest)) = s.split_once('\n') {
        let (Ok(m), Ok(local)) = (Mount::parse(mount), DfsPath::parse(rest)) else { return };
        check(m.path());
        if let Ok(cluster) = m.to_cluster(&local) {
            check(&cluster);
            assert_eq!(m.to_local(&cluster), Some(local.as_str()), "a local path maps out and back");
        }
        if let Some(back) = m.to_local(&local) {
            if !back.is_empty() {
                let back = DfsPath::parse(back).expect("the part below a mount is a valid path");
                assert_eq!(m.to_cluster(&back).as_ref(), Ok(&local));
            }
        }
    }
});
