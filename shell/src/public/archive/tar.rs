//! The bytes of a tar archive around the files' contents: a header before each entry (the tar
//! crate's [`tar::Header`], GNU format, with a `././@LongLink` entry before names longer than
//! its 100 bytes), zeros after each file up to a 512-byte block, and two zero blocks at the end.

use tar::{EntryType, Header};

const BLOCK: usize = 512;

/// The header block(s) of an entry named `name` (a directory ends with `/`).
pub fn header(name: &str, is_dir: bool, size: u64, mode: u32, mtime: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(BLOCK);
    let mut h = Header::new_gnu();
    h.set_entry_type(if is_dir { EntryType::Directory } else { EntryType::Regular });
    h.set_size(if is_dir { 0 } else { size });
    h.set_mode(mode);
    h.set_mtime(mtime.max(0) as u64);
    h.set_uid(0);
    h.set_gid(0);
    if name.len() <= 100 {
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    } else {
        // GNU long name: an entry of its own holding the name (NUL-terminated), then the real
        // header with the name cut to what fits, as GNU tar writes it.
        let mut long = Header::new_gnu();
        long.set_entry_type(EntryType::GNULongName);
        long.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
        long.set_size(name.len() as u64 + 1);
        long.set_mode(0o644);
        long.set_cksum();
        out.extend_from_slice(long.as_bytes());
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.resize(out.len().next_multiple_of(BLOCK), 0);
        h.as_old_mut().name.copy_from_slice(&name.as_bytes()[..100]);
    }
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
    out
}

/// The zeros after a file of `size` bytes, up to the next block.
pub fn padding(size: u64) -> Vec<u8> {
    vec![0; (BLOCK - (size % BLOCK as u64) as usize) % BLOCK]
}

/// The end of the archive.
pub fn end() -> Vec<u8> {
    vec![0; 2 * BLOCK]
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    /// Builds an archive with our pieces, then reads it back with the tar crate's reader.
    #[test]
    fn the_tar_crate_reads_back_what_we_write() {
        let long = format!("{}/{}.txt", "d".repeat(90), "ü".repeat(40));
        let files: Vec<(String, Vec<u8>)> =
            vec![("top/a.txt".into(), b"hello".to_vec()), (long, vec![7; 1000]), ("top/empty".into(), vec![])];
        let mut ar = header("top/", true, 0, 0o755, 1_700_000_000);
        for (name, data) in &files {
            ar.extend(header(name, false, data.len() as u64, 0o644, 1_700_000_001));
            ar.extend_from_slice(data);
            ar.extend(padding(data.len() as u64));
        }
        ar.extend(end());
        assert_eq!(ar.len() % BLOCK, 0);

        let mut archive = tar::Archive::new(&ar[..]);
        let mut seen = Vec::new();
        for e in archive.entries().unwrap() {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_str().unwrap().to_owned();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            assert!(e.header().mtime().unwrap() >= 1_700_000_000);
            seen.push((name, e.header().entry_type().is_dir(), data));
        }
        assert_eq!(seen[0], ("top/".into(), true, vec![]));
        for (i, (name, data)) in files.iter().enumerate() {
            assert_eq!(&seen[i + 1], &(name.clone(), false, data.clone()));
        }
        assert_eq!(seen.len(), 4);
    }

    #[test]
    fn padding_fills_the_block() {
        assert_eq!(padding(0).len(), 0);
        assert_eq!(padding(1).len(), 511);
        assert_eq!(padding(512).len(), 0);
        assert_eq!(padding(513).len(), 511);
    }
}
