//! FTP paths as libunftp hands them over (the client's argument joined onto the working
//! directory), on arbitrary bytes (`ftp_path::resolve`): nothing may panic; an accepted path is
//! a valid tree path with no more segments than the input has names, resolving it again (as an
//! absolute or a relative FTP path) gives it back, and a path with no `..` is never refused for
//! climbing out.

#![no_main]

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

use dftp_core::ftp_path::{resolve, Refused};
use dftp_core::DfsPath;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new(OsStr::from_bytes(data));
    let names = path.components().filter(|c| matches!(c, Component::Normal(_))).count();
    let climbs = path.components().any(|c| c == Component::ParentDir);
    match resolve(path) {
        Ok(p) => {
            assert_eq!(DfsPath::parse_request(p.as_str()).as_ref(), Ok(&p), "a valid tree path");
            let segments = if p.is_root() { 0 } else { p.as_str().split('/').count() };
            assert!(segments <= names, "{path:?} gave {p:?}");
            assert!(climbs || segments == names, "{path:?} gave {p:?}");
            assert_eq!(resolve(Path::new(&format!("/{}", p.as_str()))).as_ref(), Ok(&p));
            assert_eq!(resolve(Path::new(p.as_str())).as_ref(), Ok(&p));
        }
        Err(Refused::Escapes) => assert!(climbs, "{path:?} has no `..` to climb with"),
        Err(Refused::Invalid(why)) => assert!(!why.is_empty()),
    }
});
