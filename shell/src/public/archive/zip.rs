//! The bytes of a zip archive around the files' contents, written as they stream: entries are
//! stored (no compression: the node's work stays a copy, and most large files are compressed
//! already), each file followed by a data descriptor with its CRC-32, which is only known once
//! its bytes have gone by.
//!
//! Why not a crate: the zip crate needs a seekable output; async_zip streams without seeking but
//! writes through its own `AsyncWrite` and decides ZIP64 only once an entry has ended. Here every
//! size is known before an entry starts (the tree has it, and a file that turns out otherwise
//! ends the archive with an error), so whether an entry needs ZIP64 is decided up front, and
//! the format is a few fixed records (APPNOTE 6.3, sections 4.3 and 4.5.3).
//!
//! ZIP64 is used only where needed (an entry of 4 GiB or more, an offset past 4 GiB, 65535
//! entries or more), so that small archives open with every tool, Windows Explorer included.
//! Names are UTF-8 (flag bit 11). Times are written in UTC.

const LOCAL: u32 = 0x0403_4b50;
const DESCRIPTOR: u32 = 0x0807_4b50;
const CENTRAL: u32 = 0x0201_4b50;
const END: u32 = 0x0605_4b50;
const END64: u32 = 0x0606_4b50;
const LOCATOR64: u32 = 0x0706_4b50;

/// Bit 3: sizes and CRC follow the data; bit 11: the name is UTF-8.
const FLAGS_FILE: u16 = 0x0008 | 0x0800;
const FLAGS_DIR: u16 = 0x0800;
/// Versions needed to extract: 2.0 (directories, stored files), 4.5 (ZIP64).
const V20: u16 = 20;
const V45: u16 = 45;
/// Version made by: Unix (3) in the high byte, so that the external attributes carry the mode.
const MADE_BY_UNIX: u16 = 3 << 8;
const MAX32: u64 = 0xFFFF_FFFF;

/// What the central directory needs of one entry.
struct Record {
    name: Vec<u8>,
    is_dir: bool,
    crc: u32,
    size: u64,
    offset: u64,
    mode: u32,
    dos: (u16, u16),
    zip64: bool,
}

/// The state of an archive being written: where the next byte goes, and one record per entry
/// for the central directory (names and numbers only: no content is kept).
pub struct ZipWriter {
    /// Sizes and offsets from this one on take ZIP64 fields: 4 GiB - 1, or less in tests, so
    /// that real readers can check those fields on small archives.
    limit: u64,
    offset: u64,
    records: Vec<Record>,
    /// The open file entry: its CRC so far and its length so far.
    open: Option<(crc32fast::Hasher, u64)>,
}

fn u16le(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn u32le(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn u64le(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// MS-DOS time and date (two-second steps, 1980 to 2107), from Unix seconds, in UTC.
fn dos_time(unix: i64) -> (u16, u16) {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp(unix) else { return (0, 0x21) };
    if t.year() < 1980 {
        return (0, (1 << 5) | 1); // 1980-01-01 00:00
    }
    if t.year() > 2107 {
        return ((23 << 11) | (59 << 5) | 29, (127 << 9) | (12 << 5) | 31);
    }
    let time = ((t.hour() as u16) << 11) | ((t.minute() as u16) << 5) | (t.second() as u16 / 2);
    let date = (((t.year() - 1980) as u16) << 9) | ((u8::from(t.month()) as u16) << 5) | t.day() as u16;
    (time, date)
}

impl ZipWriter {
    pub fn new() -> ZipWriter {
        ZipWriter { limit: MAX32, offset: 0, records: Vec::new(), open: None }
    }

    /// The local header of a directory entry (`name` ends with `/`).
    pub fn dir(&mut self, name: &str, mode: u32, mtime: i64) -> Vec<u8> {
        self.entry(name, true, 0, mode, mtime)
    }

    /// The local header of a file of `size` bytes; its bytes go through [`ZipWriter::data`],
    /// then [`ZipWriter::end_file`].
    pub fn begin_file(&mut self, name: &str, size: u64, mode: u32, mtime: i64) -> Vec<u8> {
        self.entry(name, false, size, mode, mtime)
    }

    fn entry(&mut self, name: &str, is_dir: bool, size: u64, mode: u32, mtime: i64) -> Vec<u8> {
        assert!(self.open.is_none(), "an entry is still open");
        let zip64 = size >= self.limit;
        let dos = dos_time(mtime);
        let mut out = Vec::with_capacity(30 + name.len() + 20);
        u32le(&mut out, LOCAL);
        u16le(&mut out, if zip64 { V45 } else { V20 });
        u16le(&mut out, if is_dir { FLAGS_DIR } else { FLAGS_FILE });
        u16le(&mut out, 0); // stored
        u16le(&mut out, dos.0);
        u16le(&mut out, dos.1);
        u32le(&mut out, 0); // CRC: in the data descriptor (0 for a directory)
        let sizes = if zip64 { MAX32 as u32 } else { 0 };
        u32le(&mut out, sizes);
        u32le(&mut out, sizes);
        u16le(&mut out, name.len() as u16);
        u16le(&mut out, if zip64 { 20 } else { 0 });
        out.extend_from_slice(name.as_bytes());
        if zip64 {
            // Both sizes, zero here: the data descriptor has them.
            u16le(&mut out, 0x0001);
            u16le(&mut out, 16);
            u64le(&mut out, 0);
            u64le(&mut out, 0);
        }
        self.records.push(Record {
            name: name.as_bytes().to_vec(),
            is_dir,
            crc: 0,
            size,
            offset: self.offset,
            mode,
            dos,
            zip64,
        });
        self.offset += out.len() as u64;
        if !is_dir {
            self.open = Some((crc32fast::Hasher::new(), 0));
        }
        out
    }

    /// Bytes of the open file, as they go out.
    pub fn data(&mut self, bytes: &[u8]) {
        let (crc, len) = self.open.as_mut().expect("a file entry is open");
        crc.update(bytes);
        *len += bytes.len() as u64;
        self.offset += bytes.len() as u64;
    }

    /// The data descriptor of the open file, or how many bytes it had when that is not the size
    /// its header announced (the archive cannot go on: its records would lie).
    pub fn end_file(&mut self) -> Result<Vec<u8>, u64> {
        let (crc, len) = self.open.take().expect("a file entry is open");
        let record = self.records.last_mut().expect("the open entry has a record");
        if len != record.size {
            return Err(len);
        }
        record.crc = crc.finalize();
        let mut out = Vec::with_capacity(24);
        u32le(&mut out, DESCRIPTOR);
        u32le(&mut out, record.crc);
        if record.zip64 {
            u64le(&mut out, len);
            u64le(&mut out, len);
        } else {
            u32le(&mut out, len as u32);
            u32le(&mut out, len as u32);
        }
        self.offset += out.len() as u64;
        Ok(out)
    }

    /// The central directory and the end records.
    pub fn finish(self) -> Vec<u8> {
        assert!(self.open.is_none(), "an entry is still open");
        let mut out = Vec::new();
        let start = self.offset;
        for r in &self.records {
            let big_size = r.size >= self.limit;
            let big_offset = r.offset >= self.limit;
            let mut extra = Vec::new();
            if big_size || big_offset {
                let mut fields = Vec::new();
                if big_size {
                    u64le(&mut fields, r.size);
                    u64le(&mut fields, r.size);
                }
                if big_offset {
                    u64le(&mut fields, r.offset);
                }
                u16le(&mut extra, 0x0001);
                u16le(&mut extra, fields.len() as u16);
                extra.extend(fields);
            }
            let needed = if r.zip64 || big_offset { V45 } else { V20 };
            u32le(&mut out, CENTRAL);
            u16le(&mut out, MADE_BY_UNIX | needed);
            u16le(&mut out, needed);
            u16le(&mut out, if r.is_dir { FLAGS_DIR } else { FLAGS_FILE });
            u16le(&mut out, 0);
            u16le(&mut out, r.dos.0);
            u16le(&mut out, r.dos.1);
            u32le(&mut out, r.crc);
            let size32 = if big_size { MAX32 as u32 } else { r.size as u32 };
            u32le(&mut out, size32);
            u32le(&mut out, size32);
            u16le(&mut out, r.name.len() as u16);
            u16le(&mut out, extra.len() as u16);
            u16le(&mut out, 0); // comment
            u16le(&mut out, 0); // disk
            u16le(&mut out, 0); // internal attributes
            let kind = if r.is_dir { 0o040000 } else { 0o100000 };
            u32le(&mut out, ((kind | r.mode) << 16) | if r.is_dir { 0x10 } else { 0 });
            u32le(&mut out, if big_offset { MAX32 as u32 } else { r.offset as u32 });
            out.extend_from_slice(&r.name);
            out.extend(extra);
        }
        let cd_size = out.len() as u64;
        let count = self.records.len() as u64;
        let end64 = count >= 0xFFFF || start >= self.limit || cd_size >= self.limit;
        if end64 {
            let at = start + cd_size;
            u32le(&mut out, END64);
            u64le(&mut out, 44); // the size of what follows
            u16le(&mut out, MADE_BY_UNIX | V45);
            u16le(&mut out, V45);
            u32le(&mut out, 0);
            u32le(&mut out, 0);
            u64le(&mut out, count);
            u64le(&mut out, count);
            u64le(&mut out, cd_size);
            u64le(&mut out, start);
            u32le(&mut out, LOCATOR64);
            u32le(&mut out, 0);
            u64le(&mut out, at);
            u32le(&mut out, 1);
        }
        u32le(&mut out, END);
        u16le(&mut out, 0);
        u16le(&mut out, 0);
        let count16 = if end64 { 0xFFFF } else { count as u16 };
        u16le(&mut out, count16);
        u16le(&mut out, count16);
        u32le(&mut out, if end64 { MAX32 as u32 } else { cd_size as u32 });
        u32le(&mut out, if end64 { MAX32 as u32 } else { start as u32 });
        u16le(&mut out, 0);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u32at(b: &[u8], i: usize) -> u32 {
        u32::from_le_bytes(b[i..i + 4].try_into().unwrap())
    }

    #[test]
    fn records_point_at_each_other() {
        let mut z = ZipWriter::new();
        let mut ar = z.dir("top/", 0o755, 1_700_000_000);
        let file_at = ar.len();
        ar.extend(z.begin_file("top/a.txt", 5, 0o644, 1_700_000_000));
        ar.extend_from_slice(b"hello");
        z.data(b"hello");
        ar.extend(z.end_file().unwrap());
        let cd_at = ar.len();
        ar.extend(z.finish());
        assert_eq!(u32at(&ar, 0), LOCAL);
        assert_eq!(u32at(&ar, file_at), LOCAL);
        // The descriptor: signature, CRC-32 of "hello", both sizes.
        let d = file_at + 30 + "top/a.txt".len() + 5;
        assert_eq!(u32at(&ar, d), DESCRIPTOR);
        assert_eq!(u32at(&ar, d + 4), 0x3610_a686);
        assert_eq!((u32at(&ar, d + 8), u32at(&ar, d + 12)), (5, 5));
        assert_eq!(u32at(&ar, cd_at), CENTRAL);
        // The end record: two entries, the central directory's size and offset.
        let end = ar.len() - 22;
        assert_eq!(u32at(&ar, end), END);
        assert_eq!(u16::from_le_bytes([ar[end + 10], ar[end + 11]]), 2);
        assert_eq!(u32at(&ar, end + 12) as usize, end - cd_at);
        assert_eq!(u32at(&ar, end + 16) as usize, cd_at);
        // The file's central record points at its local header.
        let second = cd_at + 46 + "top/".len();
        assert_eq!(u32at(&ar, second), CENTRAL);
        assert_eq!(u32at(&ar, second + 42) as usize, file_at);
        assert_eq!(u32at(&ar, second + 16), 0x3610_a686);
    }

    #[test]
    fn a_file_of_another_size_is_an_error() {
        let mut z = ZipWriter::new();
        z.begin_file("a", 10, 0o644, 0);
        z.data(b"short");
        assert_eq!(z.end_file(), Err(5));
    }

    #[test]
    fn large_entries_use_zip64() {
        let mut z = ZipWriter::new();
        let size = 5u64 << 30;
        let header = z.begin_file("big", size, 0o644, 0);
        assert_eq!(u32at(&header, 18), u32::MAX, "sizes deferred to the ZIP64 field");
        assert_eq!(header.len(), 30 + 3 + 20);
        // Pretend the bytes went by (without reading 5 GiB through the CRC).
        let (_, len) = z.open.as_mut().unwrap();
        *len = size;
        z.offset += size;
        let d = z.end_file().unwrap();
        assert_eq!(d.len(), 24, "a 64-bit data descriptor");
        assert_eq!(u64::from_le_bytes(d[8..16].try_into().unwrap()), size);
        let small_at = z.offset;
        z.begin_file("small", 0, 0o644, 0);
        z.end_file().unwrap();
        let tail = z.finish();
        // The small file lies past 4 GiB: its central record takes a ZIP64 offset, and the
        // archive ends with the ZIP64 end records before the classic one.
        assert!(small_at > MAX32);
        let end = tail.len() - 22;
        assert_eq!(u32at(&tail, end), END);
        assert_eq!(u32at(&tail, end - 20), LOCATOR64);
        assert_eq!(u32at(&tail, end - 20 - 56), END64);
    }

    /// An archive whose every field is ZIP64 (the limit lowered to 100 bytes), read by Python's
    /// zipfile and Info-ZIP's unzip, which check the CRCs and the sizes.
    #[test]
    fn real_readers_read_zip64_fields() {
        let mut z = ZipWriter { limit: 100, ..ZipWriter::new() };
        let mut ar = z.dir("top/", 0o755, 1_700_000_000);
        let files: Vec<(String, Vec<u8>)> =
            (0..4).map(|i| (format!("top/f{i}.bin"), (0..(50 + i * 100)).map(|b| b as u8).collect())).collect();
        for (name, data) in &files {
            ar.extend(z.begin_file(name, data.len() as u64, 0o644, 1_700_000_000));
            z.data(data);
            ar.extend_from_slice(data);
            ar.extend(z.end_file().unwrap());
        }
        ar.extend(z.finish());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.zip");
        std::fs::write(&path, &ar).unwrap();
        let check = "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None; \
                     print(' '.join(f'{i.filename}:{len(z.read(i))}' for i in z.infolist()))";
        match std::process::Command::new("python3").args(["-c", check]).arg(&path).output() {
            Ok(out) => {
                assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
                assert_eq!(
                    String::from_utf8_lossy(&out.stdout).trim(),
                    "top/:0 top/f0.bin:50 top/f1.bin:150 top/f2.bin:250 top/f3.bin:350"
                );
            }
            Err(e) => eprintln!("skipping the Python check: {e}"),
        }
        match std::process::Command::new("unzip").arg("-tq").arg(&path).output() {
            Ok(out) => assert!(
                out.status.success(),
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => eprintln!("skipping the unzip check: {e}"),
        }
    }

    #[test]
    fn dos_times() {
        // 2023-11-14 22:13:20 UTC.
        let (t, d) = dos_time(1_700_000_000);
        assert_eq!((t >> 11, (t >> 5) & 63, (t & 31) * 2), (22, 13, 20));
        assert_eq!((1980 + (d >> 9), (d >> 5) & 15, d & 31), (2023, 11, 14));
        assert_eq!(dos_time(0), (0, 0x21));
    }
}
