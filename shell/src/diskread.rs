//! Reading a range of a file on disk in large chunks, for HTTP bodies and FTP downloads.
//!
//! A trip to the blocking pool costs two thread wake-ups per chunk, which for a file in the
//! page cache is more than the copy itself. So each chunk is first read on the calling (async)
//! thread with `preadv2(RWF_NOWAIT)`, which copies what is cached and never waits for the disk;
//! only what it could not get is read on the blocking pool. Reads are positioned, so nothing
//! depends on a shared file offset.

use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rustix::io::{Errno, ReadWriteFlags};

/// Size of one read: large enough that per-read costs vanish, small enough that a chunk is still
/// in the CPU cache when it is copied on to the socket.
pub const CHUNK: usize = 256 << 10;

/// Whether `RWF_NOWAIT` works here (Linux 4.14 and later, on most file systems); cleared when
/// the kernel or the file system refuses it.
static NOWAIT: AtomicBool = AtomicBool::new(true);

/// The bytes `start..end` of a file, chunk by chunk.
pub struct DiskReader {
    file: Arc<File>,
    pos: u64,
    end: u64,
}

impl DiskReader {
    pub fn new(file: Arc<File>, start: u64, end: u64) -> DiskReader {
        DiskReader { file, pos: start.min(end), end }
    }

    pub fn remaining(&self) -> u64 {
        self.end - self.pos
    }

    /// Fills the front of `buf` with the next bytes (as many as fit, or as remain) and gives
    /// the buffer back with their count; 0 at the end. A file that ends before `end` (it
    /// shrank since it was opened) is an error: a length was promised.
    pub async fn read(&mut self, mut buf: Vec<u8>) -> io::Result<(Vec<u8>, usize)> {
        let n = (buf.len() as u64).min(self.remaining()) as usize;
        if n == 0 {
            return Ok((buf, 0));
        }
        let mut got =
            if NOWAIT.load(Ordering::Relaxed) { read_cached(&self.file, &mut buf[..n], self.pos)? } else { 0 };
        if got < n {
            let (file, at) = (self.file.clone(), self.pos);
            buf = tokio::task::spawn_blocking(move || {
                read_exact_at(&file, &mut buf[got..n], at + got as u64).map(|()| buf)
            })
            .await
            .map_err(io::Error::other)??;
            got = n;
        }
        self.pos += got as u64;
        Ok((buf, got))
    }
}

/// Reads what the page cache holds of `buf.len()` bytes at `at`, without waiting for the disk.
fn read_cached(file: &File, buf: &mut [u8], at: u64) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        let mut slices = [io::IoSliceMut::new(&mut buf[got..])];
        match rustix::io::preadv2(file, &mut slices, at + got as u64, ReadWriteFlags::NOWAIT) {
            Ok(0) => return Err(shrank()),
            Ok(k) => got += k,
            Err(Errno::AGAIN) => break,
            Err(Errno::INTR) => {}
            Err(Errno::OPNOTSUPP | Errno::INVAL | Errno::NOSYS) => {
                NOWAIT.store(false, Ordering::Relaxed);
                break;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(got)
}

/// Whether the page holding byte `at` of `file` is in the page cache: one byte of it is read
/// without waiting for the disk. Also true where the kernel cannot tell (no `RWF_NOWAIT`) and
/// past the end of the file (whoever reads there finds out).
pub fn is_cached(file: &File, at: u64) -> bool {
    if !NOWAIT.load(Ordering::Relaxed) {
        return true;
    }
    match read_cached(file, &mut [0u8; 1], at) {
        // Not cached, or the kernel turned out not to know (`read_cached` then cleared NOWAIT).
        Ok(0) => !NOWAIT.load(Ordering::Relaxed),
        _ => true,
    }
}

/// Reads `len` bytes at `at` into the page cache and drops them, waiting for the disk: on the
/// blocking pool, so that a `sendfile` of them afterwards does not wait on an async thread.
/// Errors are left for the `sendfile` to meet.
pub fn load(file: &File, at: u64, len: usize) {
    let mut scratch = vec![0u8; len.min(CHUNK)];
    for done in (0..len).step_by(CHUNK) {
        let n = CHUNK.min(len - done);
        if read_exact_at(file, &mut scratch[..n], at + done as u64).is_err() {
            return;
        }
    }
}

/// Reads exactly `buf.len()` bytes at `at` (blocking).
fn read_exact_at(file: &File, buf: &mut [u8], at: u64) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.read_exact_at(buf, at).map_err(|e| if e.kind() == io::ErrorKind::UnexpectedEof { shrank() } else { e })
}

pub fn shrank() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "the file shrank while it was being sent")
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    fn file_with(data: &[u8], name: &str) -> (std::path::PathBuf, Arc<File>) {
        let path = std::env::temp_dir().join(format!("dftp-diskread-{name}-{}", std::process::id()));
        File::create(&path).unwrap().write_all(data).unwrap();
        let file = Arc::new(File::open(&path).unwrap());
        (path, file)
    }

    async fn read_all(reader: &mut DiskReader, chunk: usize) -> io::Result<Vec<u8>> {
        let (mut out, mut buf) = (Vec::new(), vec![0u8; chunk]);
        loop {
            let (b, n) = reader.read(buf).await?;
            if n == 0 {
                return Ok(out);
            }
            out.extend_from_slice(&b[..n]);
            buf = b;
        }
    }

    #[tokio::test]
    async fn reads_every_range_exactly() {
        let data: Vec<u8> = (0..3 * CHUNK + 77).map(|i| (i * 31 + i / 509) as u8).collect();
        let (path, file) = file_with(&data, "ranges");
        let len = data.len() as u64;
        for (start, end) in [(0, len), (1, len), (CHUNK as u64, len - 1), (5, 6), (len, len), (len - 3, len)] {
            for chunk in [7, CHUNK] {
                let mut reader = DiskReader::new(file.clone(), start, end);
                let got = read_all(&mut reader, chunk).await.unwrap();
                assert!(got == data[start as usize..end as usize], "{start}..{end} in chunks of {chunk}");
                assert_eq!(reader.remaining(), 0);
            }
        }
        std::fs::remove_file(path).unwrap();
    }

    #[tokio::test]
    async fn a_file_that_shrank_is_an_error_not_a_short_body() {
        let (path, file) = file_with(&[1u8; 1000], "shrank");
        let mut reader = DiskReader::new(file, 0, 2000);
        let err = read_all(&mut reader, 300).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        std::fs::remove_file(path).unwrap();
    }

    /// Dropped from the page cache, a file is seen as not cached, and as cached once read.
    #[test]
    fn cold_pages_are_told_apart() {
        let data = vec![5u8; 3 * CHUNK];
        let (path, file) = file_with(&data, "cold");
        file.sync_all().unwrap();
        rustix::fs::fadvise(&*file, 0, None, rustix::fs::Advice::DontNeed).unwrap();
        if is_cached(&file, 2 * CHUNK as u64) {
            // tmpfs and the like keep every page; there is nothing to tell apart there.
            eprintln!("skipped: this file system kept the pages after POSIX_FADV_DONTNEED");
        } else {
            load(&file, 2 * CHUNK as u64, 1000);
            assert!(is_cached(&file, 2 * CHUNK as u64 + 999));
        }
        assert!(is_cached(&file, data.len() as u64 + 10), "past the end: the reader finds out");
        std::fs::remove_file(path).unwrap();
    }
}
