//! The bytes of the tree's files, for HTTP and FTP alike: a file of this node opened from its
//! disk, or a file of another node fetched from its owner's public interface. Where a request
//! goes is the core's decision ([`dftp_core::Snapshot::locate`]); this carries it out.
//!
//! Writes are in [`write`].
//!
//! A fetch tells the owner how many nodes the request has passed through, in the original's
//! `?redirN=` parameter ([`HOPS_PARAM`]), which is read back here from requests that peers send.

use std::io;
use std::sync::Arc;

use dftp_core::{DfsPath, PeerAddr, HOPS_PARAM};
use http::{HeaderMap, Method};
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};

use crate::localfs::{LocalFs, Opened};
use crate::peers::PeerClient;
use crate::upstream::Fetched;

/// Writes: on this node, or passed on to the owner.
pub mod write;
pub use write::Writer;

/// Opens local files and fetches remote ones.
#[derive(Clone)]
pub struct Content {
    fs: Arc<dyn LocalFs>,
    client: PeerClient,
}

impl Content {
    pub fn new(fs: Arc<dyn LocalFs>, client: PeerClient) -> Content {
        Content { fs, client }
    }

    /// Opens `local` (relative to the served root), which the tree says is `expected_len`
    /// bytes long (small files are read whole at once).
    pub async fn open(&self, local: &DfsPath, expected_len: u64) -> io::Result<Opened> {
        self.fs.open(local.as_str(), expected_len).await
    }

    /// Asks the owner at `addr` for `path`, telling it the request has now passed `hops` nodes,
    /// with the request headers that matter for a file (ranges and validators).
    pub async fn fetch(
        &self,
        addr: &PeerAddr,
        path: &DfsPath,
        hops: u32,
        method: Method,
        headers: &HeaderMap,
    ) -> Result<Fetched, String> {
        let url = format!("/fs/{}?{HOPS_PARAM}={hops}", encode_path(path));
        self.client.fetch(addr, method, &url, headers).await
    }
}

/// Bytes escaped in one path segment of a URL: everything but unreserved characters and a few
/// harmless sub-delimiters.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'/')
    .add(b'\\')
    .add(b'^')
    .add(b'|')
    .add(b'[')
    .add(b']')
    .add(b'&')
    .add(b'\'')
    .add(b';')
    .add(b'=')
    .add(b'+');

pub fn encode_segment(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// A relative path, each segment percent-encoded, joined by `/`.
pub fn encode_path(p: &DfsPath) -> String {
    p.as_str().split('/').map(encode_segment).collect::<Vec<_>>().join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding() {
        assert_eq!(encode_segment("a b#?&%.txt"), "a%20b%23%3F%26%25.txt");
        assert_eq!(encode_path(&DfsPath::parse("a b/ü").unwrap()), "a%20b/%C3%BC");
    }
}
