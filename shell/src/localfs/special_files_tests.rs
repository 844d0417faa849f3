//! Files that are not regular files, swapped in where the tree still lists a regular one (after
//! the scan, before the watcher's rescan): opening them must fail at once, never wait. A FIFO
//! opened for reading waits for a writer; on an async thread that would stall every request the
//! thread serves.

use std::sync::{mpsc, Arc};
use std::time::Duration;

use super::{LocalFs, StdFs};

/// Long enough that a busy machine still finishes a non-blocking open; an open that waits for a
/// FIFO's writer never finishes at all.
const NEVER: Duration = Duration::from_secs(20);

fn mkfifo(path: &std::path::Path) {
    rustix::fs::mknodat(rustix::fs::CWD, path, rustix::fs::FileType::Fifo, rustix::fs::Mode::from_raw_mode(0o644), 0)
        .unwrap();
}

/// Opens `rel` on another thread and gives up waiting after [`NEVER`].
fn open_in_thread(fs: Arc<StdFs>, rel: &'static str, expected_len: u64) -> Option<std::io::Result<()>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let opened = rt.block_on(fs.open(rel, expected_len)).map(|_| ());
        let _ = tx.send(opened);
    });
    rx.recv_timeout(NEVER).ok()
}

#[test]
fn a_fifo_where_a_file_was_is_refused_at_once() {
    let dir = tempfile::Builder::new().prefix("dftp-fifo").tempdir().unwrap();
    mkfifo(&dir.path().join("small.txt"));
    mkfifo(&dir.path().join("big.bin"));
    std::fs::write(dir.path().join("plain.txt"), b"still served").unwrap();
    let fs = Arc::new(StdFs::new(dir.path()).unwrap());
    // The small path opens inline, the big one on a blocking thread: both must refuse.
    for (rel, len) in [("small.txt", 10), ("big.bin", 10 << 20)] {
        match open_in_thread(fs.clone(), rel, len) {
            None => panic!("opening the FIFO {rel} was still waiting after {NEVER:?}"),
            Some(Ok(())) => panic!("the FIFO {rel} was opened as a file"),
            Some(Err(e)) => assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "{rel}: {e}"),
        }
    }
    assert!(matches!(open_in_thread(fs, "plain.txt", 12), Some(Ok(()))));
}

/// Runs `f` on another thread and gives up waiting after [`NEVER`].
fn in_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(NEVER).ok()
}

#[test]
fn writes_that_read_an_existing_fifo_are_refused_at_once() {
    use super::{WriteError, WriteMode, WriteOptions};
    use dftp_core::DfsPath;

    let dir = tempfile::Builder::new().prefix("dftp-fifo").tempdir().unwrap();
    mkfifo(&dir.path().join("pipe"));
    let fs = Arc::new(StdFs::new(dir.path()).unwrap());
    let pipe = DfsPath::parse("pipe").unwrap();
    // An append reads the old content first; a copy reads its source.
    let append = WriteOptions { mode: WriteMode::Append, ..WriteOptions::replace() };
    let (f, p) = (fs.clone(), pipe.clone());
    match in_thread(move || f.create_file(&p, append).map(|_| ())) {
        None => panic!("an append to a FIFO was still waiting after {NEVER:?}"),
        Some(r) => assert!(matches!(r, Err(WriteError::Refused(_))), "append: {r:?}"),
    }
    let (f, p) = (fs.clone(), pipe.clone());
    match in_thread(move || f.copy(&p, &DfsPath::parse("copy").unwrap(), false)) {
        None => panic!("a copy of a FIFO was still waiting after {NEVER:?}"),
        Some(r) => assert!(matches!(r, Err(WriteError::Refused(_))), "copy: {r:?}"),
    }
    assert!(!dir.path().join("copy").exists(), "a refused copy left a file");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, ["pipe"], "nothing but the FIFO is left");
}
