//! A deterministic, realistic corpus for the tree benchmarks: 1,000,000 files over 1,000
//! directories, shaped like a shared build/projects tree.
//!
//! Directories are 2 to 4 segments deep (`projects/p0012`, `projects/p0012/src`,
//! `projects/p0012/src/module_0123`, `projects/p0012/tests/fixtures_0129`), each holding
//! exactly 1,000 files whose names mix short and long stems and extensions. A tiny LCG stands in
//! for a random generator, so every run builds the same corpus.

#![allow(dead_code)] // each bench target uses part of this module

use std::collections::BTreeSet;

use dftp_core::{DfsPath, FileInfo, FileMode, Meta, Update};
use smol_str::SmolStr;

pub const DIRS: usize = 1_000;
pub const FILES_PER_DIR: usize = 1_000;
pub const FILES: usize = DIRS * FILES_PER_DIR;

/// The sending peer's name in the generated update.
pub const SENDER: &str = "peer-b";

/// Knuth's MMIX LCG; the high bits are good enough for picking words.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() as usize) % items.len()]
    }
}

const ROOTS: [&str; 4] = ["projects", "archive", "srv", "data"];
const STEMS: [&str; 12] = [
    "file",
    "main",
    "lib",
    "a",
    "util",
    "README",
    "test_input",
    "generated_protocol_buffer_bindings",
    "img",
    "report_final_v2",
    "x",
    "configuration_defaults",
];
const EXTS: [&str; 10] = [".rs", ".txt", ".json", ".md", ".c", ".h", ".png", ".tar.gz", "", ".jpeg"];

/// The `i`-th of the 1,000 directories.
fn dir_name(i: usize) -> String {
    let proj = i / 10;
    let root = ROOTS[proj % ROOTS.len()];
    match i % 10 {
        0 => format!("{root}/p{proj:04}"),
        1 => format!("{root}/p{proj:04}/src"),
        8 => format!("{root}/p{proj:04}/docs"),
        9 => format!("{root}/p{proj:04}/tests/fixtures_{i:04}"),
        _ => format!("{root}/p{proj:04}/src/module_{i:04}"),
    }
}

/// A directory that holds exactly 1,000 files and no subdirectory: the listing benchmark's.
pub fn list_dir() -> DfsPath {
    DfsPath::parse(&dir_name(123)).unwrap()
}

fn file_meta(rng: &mut Lcg) -> Meta {
    let t = 1_700_000_000 + (rng.next() % 50_000_000) as i64;
    Meta { mode: FileMode::file(0o644), size: rng.next() % 10_000_000, modified: t, info_updated: t + 7 }
}

/// Every directory (with its ancestors) and every file, in the order a directory walk lists
/// them: directory by directory, each one's files sorted by name.
pub fn items() -> Vec<(DfsPath, Meta)> {
    let mut rng = Lcg(0x5eed);
    let mut out = Vec::with_capacity(FILES + 2 * DIRS);
    let mut dirs = BTreeSet::new();
    for i in 0..DIRS {
        let dir = dir_name(i);
        let mut d = dir.as_str();
        loop {
            dirs.insert(d.to_string());
            match d.rfind('/') {
                Some(at) => d = &d[..at],
                None => break,
            }
        }
        let mut names: Vec<String> =
            (0..FILES_PER_DIR).map(|j| format!("{}_{j:06}{}", rng.pick(&STEMS), rng.pick(&EXTS))).collect();
        names.sort_unstable();
        for name in names {
            out.push((DfsPath::parse(&format!("{dir}/{name}")).unwrap(), file_meta(&mut rng)));
        }
    }
    let t = 1_700_000_000;
    for d in dirs {
        let meta = Meta { mode: FileMode::dir(0o755), size: 0, modified: t, info_updated: t };
        out.push((DfsPath::parse(&d).unwrap(), meta));
    }
    out
}

/// The same content as a full update body from [`SENDER`], as it arrives off the wire.
pub fn full_update(items: &[(DfsPath, Meta)]) -> Update {
    let files = items
        .iter()
        .map(|(p, m)| FileInfo {
            full_name: SmolStr::new(p.as_str()),
            dir: m.is_dir(),
            last_modified: m.modified,
            last_info_updated: m.info_updated,
            size_in_bytes: m.size,
            file_mode: m.mode,
            owner_node: SmolStr::new(SENDER),
            deletion: false,
        })
        .collect();
    Update {
        files,
        update_time: 1_800_000_000,
        full: true,
        sender_node_name: SENDER.into(),
        epoch: Some(1),
        seq: Some(0),
        buckets: None,
    }
}

/// Average length of the generated paths, for the report.
pub fn mean_path_len(items: &[(DfsPath, Meta)]) -> f64 {
    items.iter().map(|(p, _)| p.as_str().len()).sum::<usize>() as f64 / items.len() as f64
}
