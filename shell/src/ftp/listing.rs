//! `LIST` lines in the shape of `ls -l`, which FTP clients parse: type and permissions, links,
//! owner (the node that serves the entry), group, size, date, name.

use std::fmt::Write;

use time::OffsetDateTime;

/// What one line shows.
pub struct Line<'a> {
    pub dir: bool,
    /// Permission bits (`0o644`).
    pub perm: u32,
    pub owner: &'a str,
    pub size: u64,
    /// Unix seconds.
    pub modified: i64,
    pub name: &'a str,
}

/// `ls -l` shows the time for dates within about half a year, the year otherwise.
const RECENT: i64 = 180 * 86400;

fn perm_string(dir: bool, perm: u32) -> String {
    let mut s = String::with_capacity(10);
    s.push(if dir { 'd' } else { '-' });
    for shift in [6, 3, 0] {
        let bits = (perm >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    s
}

fn date(secs: i64, now: i64) -> String {
    let recent = time::macros::format_description!("[month repr:short] [day padding:space] [hour]:[minute]");
    let old = time::macros::format_description!("[month repr:short] [day padding:space]  [year]");
    let Ok(t) = OffsetDateTime::from_unix_timestamp(secs) else {
        return "Jan  1  1970".into();
    };
    let fmt = if (now - secs).abs() < RECENT { recent } else { old };
    t.format(&fmt).unwrap_or_else(|_| "Jan  1  1970".into())
}

/// A column value without whitespace, so that clients splitting on blanks keep their columns.
fn word(s: &str) -> String {
    let w: String = s.chars().map(|c| if c.is_whitespace() || c.is_control() { '_' } else { c }).collect();
    if w.is_empty() {
        "-".into()
    } else {
        w
    }
}

/// One line, without its line end: `LIST` sends it over the data connection and `STAT <path>`
/// over the control connection, in the same format.
pub fn format_line(line: &Line<'_>, now: i64) -> String {
    let mut out = String::with_capacity(64 + line.name.len());
    let _ = write!(
        out,
        "{} 1 {:<8} {:<8} {:>12} {} {}",
        perm_string(line.dir, line.perm),
        word(line.owner),
        "dftp",
        line.size,
        date(line.modified, now),
        line.name
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_look_like_ls() {
        let now = 1477174081 + 3600;
        let line = Line { dir: true, perm: 0o755, owner: "alpha", size: 0, modified: 1477174081, name: "sub dir" };
        assert_eq!(format_line(&line, now), "drwxr-xr-x 1 alpha    dftp                0 Oct 22 22:08 sub dir");
        let line = Line { dir: false, perm: 0o640, owner: "my node", size: 7, modified: 1000000000, name: "a.txt" };
        assert_eq!(format_line(&line, now), "-rw-r----- 1 my_node  dftp                7 Sep  9  2001 a.txt");
    }
}
