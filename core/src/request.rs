//! What dftp reads of a client's HTTP request itself, once hyper has split it into a method, a
//! target and headers: the tree path a `/fs/…` target names (percent-decoded), the query
//! parameters it knows, and the values of the headers the write methods and the peers' answers
//! carry (`Overwrite`, `X-Update-Range`, `X-Dftp-Update`, `X-Dftp-Update-Of`).
//!
//! These are pure functions of outside bytes, here rather than in the shell so that the fuzz
//! targets reach them (`fuzz/fuzz_targets/{request_target,query,request_headers}.rs`); the shell
//! turns their errors into `400`s.

use percent_encoding::percent_decode_str;

use crate::{DfsPath, StreamPos, HOPS_PARAM};

/// The tree path named by the part of a URL path after `/fs` (still percent-encoded, with its
/// leading `/`), or why it names none (a `400`). Every reader of `/fs/` paths goes through this.
pub fn fs_path(raw: &str) -> Result<DfsPath, String> {
    let decoded = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| "bad path: it is not valid UTF-8 once decoded".to_string())?;
    DfsPath::parse_request(&decoded).map_err(|e| format!("bad path: {e}"))
}

/// The tree path of a `Destination` header (`MOVE`, `COPY`), given the path of its URL (the
/// shell parses the URL with the `http` crate and keeps its authority): it must lie under `/fs/`.
pub fn destination_path(url_path: &str) -> Result<DfsPath, String> {
    let raw = url_path.strip_prefix("/fs").filter(|r| r.starts_with('/'));
    fs_path(raw.ok_or_else(|| "it must name a path under /fs/".to_string())?)
}

/// The query parameters of the public interface. Unknown ones are ignored; bytes that are not
/// UTF-8 once percent-decoded become U+FFFD (`form_urlencoded` decodes lossily), so a bad value
/// is refused by what reads it (a sort key, a pattern), not here.
#[derive(Default, Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// `?format=`: `json`, `tar`, `zip` (listings), `json` (`/status/`).
    pub format: Option<String>,
    /// Nodes the request has passed through ([`incoming_hops`]).
    pub hops: u32,
    /// `/find/?prefix=`.
    pub prefix: Option<String>,
    /// `/find/?q=`: a name pattern.
    pub q: Option<String>,
    /// `/find/?type=`: `f` or `d`.
    pub kind: Option<String>,
    /// Listings: `?sort=` and `?order=` ([`crate::ListingOrder`]).
    pub sort: Option<String>,
    pub order: Option<String>,
}

impl Query {
    pub fn parse(q: Option<&str>) -> Query {
        let mut out = Query { hops: incoming_hops(q), ..Query::default() };
        for (k, v) in pairs(q) {
            match k.as_str() {
                "format" => out.format = Some(v),
                "prefix" => out.prefix = Some(v),
                "q" => out.q = Some(v),
                "type" => out.kind = Some(v),
                "sort" => out.sort = Some(v),
                "order" => out.order = Some(v),
                _ => {}
            }
        }
        out
    }
}

fn pairs(q: Option<&str>) -> Vec<(String, String)> {
    serde_urlencoded::from_str(q.unwrap_or("")).unwrap_or_default()
}

/// The [`HOPS_PARAM`] of a query: how many nodes a request has passed through. A value that is
/// not a number counts as too many (the request is not passed on again).
pub fn incoming_hops(query: Option<&str>) -> u32 {
    pairs(query).iter().find(|(k, _)| k == HOPS_PARAM).map_or(0, |(_, v)| v.parse().unwrap_or(u32::MAX))
}

/// `Overwrite: T` (also the default, when absent) or `F`; anything else is refused.
pub fn overwrite(value: Option<&[u8]>) -> Result<bool, &'static str> {
    match value.map(<[u8]>::trim_ascii) {
        None | Some(b"T" | b"t") => Ok(true),
        Some(b"F" | b"f") => Ok(false),
        Some(_) => Err("bad Overwrite header: it is T or F"),
    }
}

/// Where a `PATCH` puts its body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateRange {
    /// `X-Update-Range: append`: after the end.
    Append,
    /// `X-Update-Range: bytes=N-`: from offset N.
    At(u64),
}

/// `X-Update-Range: append` or `bytes=N-`, as SabreDAV and dufs read it; the error says why
/// another value is refused.
pub fn update_range(value: Option<&[u8]>) -> Result<UpdateRange, String> {
    let how = "PATCH takes X-Update-Range: append or X-Update-Range: bytes=N-";
    let value = value.ok_or_else(|| format!("no X-Update-Range header: {how}"))?;
    // Trimmed of ASCII whitespace only, as HTTP's optional whitespace is (`str::trim` would also
    // take Unicode spaces such as U+0085 for it: found by the `request_headers` fuzz target).
    let value = std::str::from_utf8(value.trim_ascii()).map_err(|_| format!("a bad X-Update-Range header: {how}"))?;
    if value.eq_ignore_ascii_case("append") {
        return Ok(UpdateRange::Append);
    }
    match value.strip_prefix("bytes=").and_then(|r| r.strip_suffix('-')).map(str::parse::<u64>) {
        Some(Ok(offset)) => Ok(UpdateRange::At(offset)),
        _ => Err(format!("X-Update-Range: {value} is not supported: {how}")),
    }
}

/// The position in an `X-Dftp-Update` value (`EPOCH.SEQ`), which the node that carried out a
/// write sends back.
pub fn stream_pos(value: &[u8]) -> Option<StreamPos> {
    let (epoch, seq) = std::str::from_utf8(value).ok()?.split_once('.')?;
    Some(StreamPos { epoch: epoch.parse().ok()?, seq: seq.parse().ok()? })
}

/// The node and the position in an `X-Dftp-Update-Of` value (`NODE=EPOCH.SEQ`; the node name
/// may itself hold `=`).
pub fn update_of(value: &[u8]) -> Option<(String, StreamPos)> {
    let (node, pos) = std::str::from_utf8(value).ok()?.rsplit_once('=')?;
    Some((node.to_owned(), stream_pos(pos.as_bytes())?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fs_paths_are_decoded_then_checked() {
        assert_eq!(fs_path("/a%20b/c.txt").unwrap().as_str(), "a b/c.txt");
        assert!(fs_path("/").unwrap().is_root());
        for bad in ["/..", "/%2e%2e/x", "/a%2f..%2f..%2fx", "/%00", "/a%5cb", "/%ff", "/%c0%ae%c0%ae"] {
            assert!(fs_path(bad).is_err(), "{bad}");
        }
        assert_eq!(destination_path("/fs/a/b").unwrap().as_str(), "a/b");
        for bad in ["/etc/passwd", "/fsx/a", "/fs", "/fs/../x"] {
            assert!(destination_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn queries_keep_the_known_parameters() {
        let q = Query::parse(Some("format=json&sort=size&order=desc&q=*.txt&type=f&prefix=a%2Fb&other=1"));
        assert_eq!(q.format.as_deref(), Some("json"));
        assert_eq!((q.sort.as_deref(), q.order.as_deref()), (Some("size"), Some("desc")));
        assert_eq!((q.q.as_deref(), q.kind.as_deref(), q.prefix.as_deref()), (Some("*.txt"), Some("f"), Some("a/b")));
        assert_eq!(q.hops, 0);
        assert_eq!(Query::parse(Some("sort=%ff")).sort.as_deref(), Some("\u{fffd}"), "decoded lossily");
        assert_eq!(incoming_hops(None), 0);
        assert_eq!(incoming_hops(Some("format=txt")), 0);
        assert_eq!(incoming_hops(Some(&format!("{HOPS_PARAM}=1"))), 1);
        assert_eq!(incoming_hops(Some(&format!("format=txt&{HOPS_PARAM}=2"))), 2);
        assert_eq!(incoming_hops(Some(&format!("{HOPS_PARAM}=lots"))), u32::MAX);
        assert_eq!(incoming_hops(Some(&format!("{HOPS_PARAM}=-1"))), u32::MAX);
    }

    #[test]
    fn write_headers() {
        assert_eq!(overwrite(None), Ok(true));
        assert_eq!(overwrite(Some(b" T ")), Ok(true));
        assert_eq!(overwrite(Some(b"f")), Ok(false));
        assert!(overwrite(Some(b"maybe")).is_err());
        assert_eq!(update_range(Some(b"append")), Ok(UpdateRange::Append));
        assert_eq!(update_range(Some(b"bytes=10-")), Ok(UpdateRange::At(10)));
        for bad in [&b"bytes=1-2"[..], b"bytes=-1", b"bytes=18446744073709551616-", b"\xff", "\u{85}append".as_bytes()]
        {
            assert!(update_range(Some(bad)).is_err(), "{bad:?}");
        }
        assert!(update_range(None).unwrap_err().contains("no X-Update-Range"));
    }

    #[test]
    fn stream_positions() {
        assert_eq!(stream_pos(b"3.4"), Some(StreamPos { epoch: 3, seq: 4 }));
        assert_eq!(stream_pos(b"3"), None);
        assert_eq!(stream_pos(b"3.x"), None);
        assert_eq!(update_of(b"a=b=1.2"), Some(("a=b".into(), StreamPos { epoch: 1, seq: 2 })));
        assert_eq!(update_of(b"a1.2"), None);
    }
}
