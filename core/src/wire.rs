//! The original protocol's messages, byte-compatible with its Go nodes.
//!
//! Field names, casing and numeric encodings follow what the Go nodes send (see
//! `tests/fixtures/seed-wire/`). We add two optional fields (`Epoch`, `Seq`) to updates, so a
//! receiver can notice a lost incremental update, and to `Me` in the cluster table, so a node
//! that greets us can tell whether it has had all our updates; Go's decoder ignores unknown
//! fields, so the original nodes still accept our bodies, and theirs (without the fields) are
//! accepted here.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use smol_str::SmolStr;

use crate::path::DfsPath;
use crate::tree::Meta;

mod record;

/// Longest accepted node or cluster name, in bytes.
pub const MAX_NAME_LEN: usize = 255;

/// Go's `os.FileMode` bits, kept as they travel on the wire.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FileMode(pub u32);

impl FileMode {
    pub const DIR: u32 = 1 << 31;
    pub const SYMLINK: u32 = 1 << 27;

    /// A mode for a directory with the given permission bits.
    pub fn dir(perm: u32) -> Self {
        FileMode(Self::DIR | (perm & 0o777))
    }

    /// A mode for a regular file with the given permission bits.
    pub fn file(perm: u32) -> Self {
        FileMode(perm & 0o777)
    }

    pub fn is_dir(self) -> bool {
        self.0 & Self::DIR != 0
    }

    pub fn is_symlink(self) -> bool {
        self.0 & Self::SYMLINK != 0
    }

    pub fn perm(self) -> u32 {
        self.0 & 0o777
    }
}

impl fmt::Debug for FileMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.is_dir() {
            "d"
        } else if self.is_symlink() {
            "L"
        } else {
            "-"
        };
        write!(f, "{kind}{:o}", self.perm())
    }
}

/// One file record of an update.
///
/// The wire also carries `Basename`, which is always the last segment of `FullName`: it is
/// derived when writing and ignored when reading, so the two can never disagree, and the
/// hundreds of thousands of names of a full update are not allocated twice.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct FileInfo {
    #[serde(rename = "FullName", default)]
    pub full_name: SmolStr,
    #[serde(rename = "Dir", default)]
    pub dir: bool,
    /// Unix seconds.
    #[serde(rename = "LastModified", default)]
    pub last_modified: i64,
    /// Unix seconds; the conflict rule's first key.
    #[serde(rename = "LastInfoUpdated", default)]
    pub last_info_updated: i64,
    #[serde(rename = "SizeInBytes", default)]
    pub size_in_bytes: u64,
    #[serde(rename = "FileMode", default)]
    pub file_mode: FileMode,
    #[serde(rename = "OwnerNode", default)]
    pub owner_node: SmolStr,
    #[serde(rename = "Deletion", default)]
    pub deletion: bool,
}

impl FileInfo {
    /// The last segment of `FullName`, as the wire's `Basename`.
    pub fn basename(&self) -> &str {
        self.full_name.rsplit('/').next().unwrap_or("")
    }
}

impl Serialize for FileInfo {
    /// In the Go struct's field order, so our bodies read like theirs.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("FileInfo", 9)?;
        st.serialize_field("FullName", &self.full_name)?;
        st.serialize_field("Basename", self.basename())?;
        st.serialize_field("Dir", &self.dir)?;
        st.serialize_field("LastModified", &self.last_modified)?;
        st.serialize_field("LastInfoUpdated", &self.last_info_updated)?;
        st.serialize_field("SizeInBytes", &self.size_in_bytes)?;
        st.serialize_field("FileMode", &self.file_mode)?;
        st.serialize_field("OwnerNode", &self.owner_node)?;
        st.serialize_field("Deletion", &self.deletion)?;
        st.end()
    }
}

/// The body of `POST /update/`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Update {
    /// Go sends `null` for an empty list.
    #[serde(rename = "Files", default, deserialize_with = "null_as_empty")]
    pub files: Vec<FileInfo>,
    /// Unix seconds.
    #[serde(rename = "UpdateTime", default)]
    pub update_time: i64,
    #[serde(rename = "Full", default)]
    pub full: bool,
    #[serde(rename = "SenderNodeName", default)]
    pub sender_node_name: SmolStr,
    /// Our addition: the sender's incarnation (changes at every start).
    #[serde(rename = "Epoch", default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
    /// Our addition: the sender's update counter within one epoch. A full update carries the
    /// counter it is current with; each incremental one the next number.
    #[serde(rename = "Seq", default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// Our addition: this update is a repair of anti-entropy ([`crate::anti_entropy`]): its
    /// records are all of the sender's paths in these buckets, and replace the receiver's view
    /// of the sender there only. Sent only to nodes that speak digests, with `Full` false.
    #[serde(rename = "Buckets", default, skip_serializing_if = "Option::is_none")]
    pub buckets: Option<Vec<u8>>,
}

fn null_as_empty<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

impl Update {
    /// Parses a body. The error text is safe to show to the sender.
    pub fn from_json(body: &[u8]) -> Result<Update, WireError> {
        // serde would read a struct from an array of its fields in order too (`[]` is then an
        // empty update); the original refuses anything but an object, and so do we.
        if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
            return Err(WireError::Json("an update is a JSON object, not an array".into()));
        }
        serde_json::from_slice(body).map_err(|e| WireError::Json(e.to_string()))
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an Update always serialises")
    }
}

/// Parses an update body as it arrives, chunk by chunk, so that a large full update is parsed
/// while the rest of it is still on the way instead of after it has all been buffered.
///
/// The records of the top-level `Files` array are cut out one by one and parsed on their own;
/// everything else of the document (with `Files` left as `[]`) is kept and parsed at the end by
/// the same rules as [`Update::from_json`], so both accept and refuse the same bodies. Memory
/// stays at the records parsed so far plus one record, never the whole body.
#[derive(Default)]
pub struct UpdateParser {
    /// The document without the records of `Files`.
    head: Vec<u8>,
    /// The start of a record that the last chunk cut off, waiting for the rest.
    record: Vec<u8>,
    /// Join the waiting start with new bytes and try again once it has this many: a record far
    /// larger than a chunk is then parsed a logarithmic number of times, not once per chunk.
    retry_at: usize,
    files: Vec<FileInfo>,
    /// Inside a string (`escaped`: right after its backslash).
    in_string: bool,
    escaped: bool,
    /// Nesting of `{`/`[` in the document (in `head`).
    depth: u32,
    /// Where the scanner is; see [`Scan`].
    scan: Scan,
    /// The top-level value is an object (only then is there a `Files` member).
    top_object: Option<bool>,
    /// The last string at the object's top level, while it may still turn out to be a key.
    key: Vec<u8>,
    /// What may come next in the `Files` array, to refuse `[,`, `[x,]` and `[x y]` as serde does.
    expect: Expect,
    /// Whose records are taken; parsing stops at the first other one.
    senders: UpdateSenders,
}

#[derive(Default, Clone, Copy, PartialEq, Eq, Debug)]
enum Expect {
    /// A record or `]` (right after `[`).
    #[default]
    First,
    /// A record (after `,`).
    Record,
    /// `,` or `]` (after a record).
    Separator,
}

#[derive(Default, Clone, Copy, PartialEq, Eq, Debug)]
enum Scan {
    /// Copying into `head`.
    #[default]
    Head,
    /// Right after `"Files":`, before its value.
    FilesValue,
    /// Inside the `Files` array, cutting out records.
    Records,
}

impl UpdateParser {
    pub fn new() -> UpdateParser {
        UpdateParser::default()
    }

    /// A parser that refuses the body at its first record whose owner `senders` does not admit
    /// ([`WireError::Stranger`]).
    pub fn admitting(senders: UpdateSenders) -> UpdateParser {
        UpdateParser { senders, ..UpdateParser::default() }
    }

    /// Feeds the next bytes of the body.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), WireError> {
        if self.record.is_empty() {
            return self.push_slice(chunk);
        }
        self.record.extend_from_slice(chunk);
        if self.record.len() < self.retry_at {
            return Ok(());
        }
        let joined = std::mem::take(&mut self.record);
        self.push_slice(&joined)
    }

    fn push_slice(&mut self, mut chunk: &[u8]) -> Result<(), WireError> {
        while !chunk.is_empty() {
            if self.scan == Scan::Records {
                chunk = self.records(chunk)?;
                continue;
            }
            if self.in_string {
                if self.escaped {
                    self.take(&chunk[..1]);
                    self.escaped = false;
                    chunk = &chunk[1..];
                    continue;
                }
                // The bulk of a body is string contents: jump to the next quote or backslash.
                match chunk.iter().position(|&b| b == b'"' || b == b'\\') {
                    None => {
                        self.take(chunk);
                        chunk = &[];
                    }
                    Some(i) => {
                        self.take(&chunk[..=i]);
                        if chunk[i] == b'\\' {
                            self.escaped = true;
                        } else {
                            self.in_string = false;
                        }
                        chunk = &chunk[i + 1..];
                    }
                }
                continue;
            }
            let b = chunk[0];
            chunk = &chunk[1..];
            self.structural(b)?;
        }
        Ok(())
    }

    /// Appends string bytes to where they belong.
    fn take(&mut self, bytes: &[u8]) {
        self.head.extend_from_slice(bytes);
        if !self.key.is_empty() {
            self.key.extend_from_slice(bytes);
        }
    }

    /// Parses the records at the start of `chunk` up to the end of the array or of the chunk;
    /// returns what follows the array. A record is parsed where it lies, by serde, which also
    /// finds its end; one that the chunk cuts off waits in `record` for the next chunk.
    fn records<'a>(&mut self, mut chunk: &'a [u8]) -> Result<&'a [u8], WireError> {
        let json = |e: serde_json::Error| WireError::Json(e.to_string());
        loop {
            let start = chunk.iter().position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
            let Some(start) = start else { return Ok(&[]) };
            chunk = &chunk[start..];
            match (chunk[0], self.expect) {
                (b']', Expect::First | Expect::Separator) => {
                    self.head.push(b']');
                    self.scan = Scan::Head;
                    return Ok(&chunk[1..]);
                }
                (b',', Expect::Separator) => {
                    self.expect = Expect::Record;
                    chunk = &chunk[1..];
                }
                (_, Expect::Separator) => {
                    return Err(WireError::Json("expected `,` or `]` after a record of Files".into()))
                }
                (b']', Expect::Record) => return Err(WireError::Json("trailing comma in Files".into())),
                (b',', _) => return Err(WireError::Json("expected a record before `,` in Files".into())),
                _ => {
                    // The common shape is read by hand; serde reads the rest (`wire/record.rs`).
                    if let Some((f, len)) = record::read(chunk) {
                        if !self.senders.admits(&f.owner_node) {
                            return Err(WireError::Stranger(f.owner_node));
                        }
                        self.files.push(f);
                        self.expect = Expect::Separator;
                        chunk = &chunk[len..];
                        continue;
                    }
                    let mut stream = serde_json::Deserializer::from_slice(chunk).into_iter::<FileInfo>();
                    match stream.next() {
                        Some(Ok(f)) => {
                            if !self.senders.admits(&f.owner_node) {
                                return Err(WireError::Stranger(f.owner_node));
                            }
                            self.files.push(f);
                            self.expect = Expect::Separator;
                            chunk = &chunk[stream.byte_offset()..];
                        }
                        Some(Err(e)) if e.is_eof() => {
                            self.record.extend_from_slice(chunk);
                            self.retry_at = 2 * chunk.len();
                            return Ok(&[]);
                        }
                        Some(Err(e)) => return Err(json(e)),
                        None => return Ok(&[]),
                    }
                }
            }
        }
    }

    /// One byte outside any string.
    fn structural(&mut self, b: u8) -> Result<(), WireError> {
        let ws = matches!(b, b' ' | b'\t' | b'\n' | b'\r');
        match self.scan {
            Scan::Head => {
                if self.top_object.is_none() && !ws {
                    self.top_object = Some(b == b'{');
                }
                match b {
                    b'"' => {
                        self.in_string = true;
                        // A string directly inside the top-level object may be a key.
                        self.key.clear();
                        if self.depth == 1 && self.top_object == Some(true) {
                            self.key.push(b'"');
                        }
                    }
                    b':' if self.depth == 1 && !self.key.is_empty() => {
                        let key: Result<String, _> = serde_json::from_slice(&self.key);
                        if key.is_ok_and(|k| k == "Files") {
                            self.scan = Scan::FilesValue;
                        }
                        self.key.clear();
                    }
                    b'{' | b'[' => self.depth += 1,
                    b'}' | b']' => self.depth = self.depth.saturating_sub(1),
                    _ if ws => {}
                    _ => self.key.clear(),
                }
                self.head.push(b);
            }
            Scan::FilesValue if b == b'[' => {
                // The records are cut out; `head` keeps `[]`.
                self.head.push(b);
                self.scan = Scan::Records;
                self.expect = Expect::First;
            }
            Scan::FilesValue if ws => self.head.push(b),
            Scan::FilesValue => {
                // Not an array (`null`, or something serde will refuse): part of `head`.
                self.scan = Scan::Head;
                return self.structural(b);
            }
            // `push` hands records to `records`; never here.
            Scan::Records => return Err(WireError::Json("internal error: a record seen as structure".into())),
        }
        Ok(())
    }

    /// The update, once the whole body has been pushed.
    pub fn finish(mut self) -> Result<Update, WireError> {
        if !self.record.is_empty() {
            let joined = std::mem::take(&mut self.record);
            self.push_slice(&joined)?;
        }
        if self.scan != Scan::Head || self.in_string || !self.record.is_empty() {
            return Err(WireError::Json("EOF while parsing the Files list".into()));
        }
        let mut u = Update::from_json(&self.head)?;
        u.files = self.files;
        Ok(u)
    }
}

/// One node as `GET /cluster/` shows it. Times are Unix seconds, 0 for never.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    #[serde(rename = "Name", default)]
    pub name: SmolStr,
    #[serde(rename = "PublicAddr", default)]
    pub public_addr: String,
    #[serde(rename = "MgmtAddr", default)]
    pub mgmt_addr: String,
    #[serde(rename = "LastAlive", default)]
    pub last_alive: i64,
    #[serde(rename = "LastUpdatePushed", default)]
    pub last_update_pushed: i64,
    #[serde(rename = "LastUpdateReceived", default)]
    pub last_update_received: i64,
    #[serde(rename = "LastFullUpdateReceived", default)]
    pub last_full_update_received: i64,
    /// Our addition, in `Me` only: the node's incarnation, as in its updates.
    #[serde(rename = "Epoch", default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
    /// Our addition, in `Me` only: the node's update counter, as in its updates. A node that
    /// greeted it compares it with the last update it applied from it: behind, it has not had
    /// every change the node made, and this answer alone does not keep the node alive there.
    #[serde(rename = "Seq", default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// Our addition, in `Me` only: the node answers `POST /digest/` with digests of this scheme
    /// ([`crate::anti_entropy::DIGEST_SCHEME`]); a node without it gets full updates.
    #[serde(rename = "Digest", default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<SmolStr>,

    /// Our addition, in `Me` only, from nodes that watch their peers with SWIM
    /// ([`crate::swim`]): the renewal of its SWIM identity (with its name, management address
    /// and `Epoch`, the whole identity). A node greeted with it makes the node a SWIM member.
    #[serde(rename = "Swim", default, skip_serializing_if = "Option::is_none")]
    pub swim: Option<u32>,
}

/// The body of `GET /cluster/` and of the reply to a greeting.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterInfo {
    #[serde(rename = "Name", default)]
    pub name: SmolStr,
    #[serde(rename = "Me")]
    pub me: NodeInfo,
    /// Keyed by name; a map serialises sorted, as Go's does.
    #[serde(rename = "Peers", default, deserialize_with = "null_as_empty_map")]
    pub peers: BTreeMap<SmolStr, NodeInfo>,
}

fn null_as_empty_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<SmolStr, NodeInfo>, D::Error> {
    Ok(Option::<BTreeMap<SmolStr, NodeInfo>>::deserialize(d)?.unwrap_or_default())
}

impl ClusterInfo {
    pub fn from_json(body: &[u8]) -> Result<ClusterInfo, WireError> {
        serde_json::from_slice(body).map_err(|e| WireError::Json(e.to_string()))
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a ClusterInfo always serialises")
    }
}

/// `host:port` of a node's public or management interface, or `https://host:port` for one served
/// over TLS. The host may be empty, which means "the address this message came from".
///
/// The original's wire format has only `host:port`, and that stays the form of every plain
/// address, so that a node without TLS and the original's nodes read and write addresses as
/// before. The `https://` form is additive: only a node that serves an interface over TLS
/// advertises it (the original cannot reach such an interface anyway), and a peer that reads it
/// connects with TLS. The scheme is part of the address (two addresses that differ only in it
/// are different addresses), so every decision about a peer carries how to reach it.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerAddr {
    host: SmolStr,
    port: u16,
    scheme: Scheme,
}

/// How an interface is spoken to: plain HTTP or HTTP over TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scheme {
    Http,
    Https,
}

impl PeerAddr {
    /// Parses `host:port`, `:port` or `[v6]:port`, each optionally after `https://` (TLS) or
    /// `http://` (the same as none). A missing or bad port is an error, never a panic (the
    /// original indexed past the end of the split). The host may hold only characters of host
    /// names and IP literals, so that it can be put into a URL as it is.
    pub fn parse(s: &str) -> Result<PeerAddr, WireError> {
        let bad = |why: &str| WireError::Addr(format!("{s:?}: {why}"));
        let (scheme, rest) = if let Some(rest) = strip_prefix_ignore_case(s, "https://") {
            (Scheme::Https, rest)
        } else if let Some(rest) = strip_prefix_ignore_case(s, "http://") {
            (Scheme::Http, rest)
        } else {
            (Scheme::Http, s)
        };
        let (host, port) = rest.rsplit_once(':').ok_or_else(|| bad("expected host:port"))?;
        if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
            return Err(bad("an IPv6 host must be written in brackets"));
        }
        let port: u16 = port.parse().map_err(|_| bad("the port is not a number from 1 to 65535"))?;
        if port == 0 {
            return Err(bad("the port is not a number from 1 to 65535"));
        }
        if host.len() > MAX_NAME_LEN {
            return Err(bad("the host is too long"));
        }
        let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '[' | ']' | ':' | '%');
        if !host.chars().all(ok) {
            return Err(bad("the host has characters that are not allowed in a host name"));
        }
        Ok(PeerAddr { host: SmolStr::new(host), port, scheme })
    }

    /// A plain (`http`) address.
    pub fn new_unchecked(host: &str, port: u16) -> PeerAddr {
        PeerAddr { host: SmolStr::new(host), port, scheme: Scheme::Http }
    }

    /// The same address, spoken to with `scheme`.
    pub fn with_scheme(self, scheme: Scheme) -> PeerAddr {
        PeerAddr { scheme, ..self }
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// Whether the interface is spoken to over TLS.
    pub fn tls(&self) -> bool {
        self.scheme == Scheme::Https
    }

    /// `host:port`, without the scheme: the `Host` header of a request to this address.
    pub fn authority(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// The URL of `path_and_query` (which starts with `/`) at this address.
    pub fn url(&self, path_and_query: &str) -> String {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        format!("{scheme}://{}:{}{path_and_query}", self.host, self.port)
    }

    /// Fills an empty host with the one the message came from.
    pub fn or_host(&self, host: Option<&str>) -> PeerAddr {
        match host {
            Some(h) if self.host.is_empty() => PeerAddr { host: SmolStr::new(h), ..self.clone() },
            _ => self.clone(),
        }
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &s[prefix.len()..])
}

impl fmt::Display for PeerAddr {
    /// The wire form: `host:port`, or `https://host:port`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.tls() {
            f.write_str("https://")?;
        }
        write!(f, "{}:{}", self.host, self.port)
    }
}

impl fmt::Debug for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

/// The form of `POST /cluster/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Greeting {
    pub name: SmolStr,
    pub public_addr: PeerAddr,
    pub mgmt_addr: PeerAddr,
    pub request_full_update: bool,
}

#[derive(Deserialize)]
struct GreetingForm {
    name: Option<String>,
    #[serde(rename = "public-addr")]
    public_addr: Option<String>,
    #[serde(rename = "mgmt-addr")]
    mgmt_addr: Option<String>,
    #[serde(rename = "request-full-update")]
    request_full_update: Option<String>,
}

impl Greeting {
    /// Parses the url-encoded form. Unknown fields are ignored, as Go's `FormValue` does.
    pub fn from_form(body: &[u8]) -> Result<Greeting, WireError> {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_bytes(body).map_err(|e| WireError::Form(e.to_string()))?;
        // First value wins for repeated keys, like Go's FormValue.
        let first = |k: &str| pairs.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
        let form = GreetingForm {
            name: first("name"),
            public_addr: first("public-addr"),
            mgmt_addr: first("mgmt-addr"),
            request_full_update: first("request-full-update"),
        };
        let (Some(name), Some(public), Some(mgmt)) = (form.name, form.public_addr, form.mgmt_addr) else {
            return Err(WireError::Form("name, public-addr and mgmt-addr are required parameters".into()));
        };
        if name.is_empty() || public.is_empty() || mgmt.is_empty() {
            return Err(WireError::Form("name, public-addr and mgmt-addr are required parameters".into()));
        }
        Ok(Greeting {
            name: check_name(&name)?,
            public_addr: PeerAddr::parse(&public)?,
            mgmt_addr: PeerAddr::parse(&mgmt)?,
            request_full_update: form.request_full_update.as_deref() == Some("true"),
        })
    }

    pub fn to_form(&self) -> String {
        let mut pairs = vec![
            ("mgmt-addr", self.mgmt_addr.to_string()),
            ("name", self.name.to_string()),
            ("public-addr", self.public_addr.to_string()),
        ];
        if self.request_full_update {
            pairs.push(("request-full-update", "true".into()));
        }
        serde_urlencoded::to_string(pairs).expect("string pairs always encode")
    }
}

/// The form of `POST /join/`: one or more `peer=host:port`.
pub fn parse_join_form(body: &[u8]) -> Result<Vec<PeerAddr>, WireError> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_bytes(body).map_err(|e| WireError::Form(e.to_string()))?;
    let peers: Vec<PeerAddr> =
        pairs.iter().filter(|(k, _)| k == "peer").map(|(_, v)| PeerAddr::parse(v)).collect::<Result<_, _>>()?;
    if peers.is_empty() {
        return Err(WireError::Form("Specify at least one 'peer'".into()));
    }
    Ok(peers)
}

/// Validates a node or cluster name: non-empty, bounded, printable.
pub fn check_name(name: &str) -> Result<SmolStr, WireError> {
    if name.is_empty() {
        return Err(WireError::Name("a name must not be empty".into()));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(WireError::Name(format!("a name must be at most {MAX_NAME_LEN} bytes")));
    }
    if name.chars().any(char::is_control) {
        return Err(WireError::Name("a name must not contain control characters".into()));
    }
    Ok(SmolStr::new(name))
}

/// The multicast discovery packet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announcement {
    #[serde(rename = "Type", default)]
    pub kind: SmolStr,
    #[serde(rename = "ClusterName", default)]
    pub cluster_name: SmolStr,
    #[serde(rename = "NodeName", default)]
    pub node_name: SmolStr,
    #[serde(rename = "MgmtAddr", default)]
    pub mgmt_addr: String,
}

impl Announcement {
    pub fn ping(cluster: &str, node: &str, mgmt_addr: &PeerAddr) -> Announcement {
        Announcement {
            kind: "ping".into(),
            cluster_name: cluster.into(),
            node_name: node.into(),
            mgmt_addr: mgmt_addr.to_string(),
        }
    }

    pub fn from_json(packet: &[u8]) -> Result<Announcement, WireError> {
        let a: Announcement = serde_json::from_slice(packet).map_err(|e| WireError::Json(e.to_string()))?;
        if a.kind != "ping" {
            return Err(WireError::Json(format!("unknown announcement type {:?}", a.kind)));
        }
        check_name(&a.node_name)?;
        Ok(a)
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an Announcement always serialises")
    }
}

/// Why a message was refused. The text is meant for the sender.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("Error decoding json: {0}")]
    Json(String),
    #[error("bad form: {0}")]
    Form(String),
    #[error("bad address {0}")]
    Addr(String),
    #[error("bad name: {0}")]
    Name(String),
    /// A record of an update names an owner this node takes no update from
    /// ([`UpdateSenders`]): the body is refused there, not parsed to its end.
    #[error("{0:?} is not a node this one knows: updates are taken only from peers")]
    Stranger(SmolStr),
}

/// Whose files an update being parsed may carry. Every record of an update must be its
/// sender's own (the node drops the others), and only a known peer's update is applied (or, while
/// a greeting of ours that asked for a full update is under way, a not-yet-known sender's full
/// update, which may be its answer). So a record with another owner means the whole body will
/// be thrown away: [`UpdateParser`] stops at it, and a stranger cannot make the node parse (and
/// hold) a large body to no end.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum UpdateSenders {
    /// A greeting that asked for a full update is under way: its answer may come from anyone.
    #[default]
    Anyone,
    /// Only these nodes (the known peers, lost ones too: they come back with a full update).
    Only(std::collections::BTreeSet<SmolStr>),
}

impl UpdateSenders {
    pub fn admits(&self, owner: &str) -> bool {
        match self {
            UpdateSenders::Anyone => true,
            UpdateSenders::Only(names) => names.contains(owner),
        }
    }
}

// ---- writing a full update --------------------------------------------------------------

/// The fields of an update besides its files.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct UpdateHeader {
    pub update_time: i64,
    pub epoch: u64,
    pub seq: u64,
}

enum BodyState {
    Start,
    Files { first: bool },
    Done,
}

/// Iterator over the chunks of a full update body. Concatenated, they are one JSON document in
/// the original's field order: `{"Files":[...],"UpdateTime":..,"Full":true,"SenderNodeName":..}`.
pub struct FullUpdateBody<'a> {
    files: Box<dyn Iterator<Item = (DfsPath, Meta)> + 'a>,
    header: UpdateHeader,
    chunk: usize,
    state: BodyState,
    /// This node's name as a JSON string.
    owner: Vec<u8>,
}

impl<'a> FullUpdateBody<'a> {
    /// The body of a full update from `sender`, whose own files `files` yields in path order.
    pub fn new(
        files: Box<dyn Iterator<Item = (DfsPath, Meta)> + 'a>,
        sender: &str,
        header: UpdateHeader,
        chunk: usize,
    ) -> FullUpdateBody<'a> {
        let owner = serde_json::to_vec(sender).expect("a str serialises");
        FullUpdateBody { files, header, chunk, state: BodyState::Start, owner }
    }
}

impl Iterator for FullUpdateBody<'_> {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        let mut buf = Vec::with_capacity(self.chunk + 512);
        loop {
            match self.state {
                BodyState::Start => {
                    buf.extend_from_slice(b"{\"Files\":[");
                    self.state = BodyState::Files { first: true };
                }
                BodyState::Files { first } => match self.files.next() {
                    Some((path, meta)) => {
                        if !first {
                            buf.push(b',');
                        }
                        write_record(&mut buf, &path, meta, &self.owner);
                        self.state = BodyState::Files { first: false };
                        if buf.len() >= self.chunk {
                            return Some(buf);
                        }
                    }
                    None => {
                        buf.extend_from_slice(b"],");
                        buf.extend_from_slice(b"\"UpdateTime\":");
                        buf.extend_from_slice(self.header.update_time.to_string().as_bytes());
                        buf.extend_from_slice(b",\"Full\":true,\"SenderNodeName\":");
                        buf.extend_from_slice(&self.owner);
                        buf.extend_from_slice(
                            format!(",\"Epoch\":{},\"Seq\":{}}}", self.header.epoch, self.header.seq).as_bytes(),
                        );
                        self.state = BodyState::Done;
                        return Some(buf);
                    }
                },
                BodyState::Done => return None,
            }
        }
    }
}

/// Writes what serialising `file_info(path, meta, owner, false)` writes (`owner` is already a
/// JSON string), without building the record: a full update writes hundreds of thousands.
fn write_record(buf: &mut Vec<u8>, path: &DfsPath, meta: Meta, owner: &[u8]) {
    fn int(buf: &mut Vec<u8>, n: impl serde::Serialize) {
        serde_json::to_writer(&mut *buf, &n).expect("an integer serialises");
    }
    buf.extend_from_slice(b"{\"FullName\":");
    json_str(buf, path.as_str());
    buf.extend_from_slice(b",\"Basename\":");
    json_str(buf, path.name());
    buf.extend_from_slice(if meta.is_dir() {
        b",\"Dir\":true,\"LastModified\":"
    } else {
        b",\"Dir\":false,\"LastModified\":"
    });
    int(buf, meta.modified);
    buf.extend_from_slice(b",\"LastInfoUpdated\":");
    int(buf, meta.info_updated);
    buf.extend_from_slice(b",\"SizeInBytes\":");
    int(buf, meta.size);
    buf.extend_from_slice(b",\"FileMode\":");
    int(buf, meta.mode.0);
    buf.extend_from_slice(b",\"OwnerNode\":");
    buf.extend_from_slice(owner);
    buf.extend_from_slice(b",\"Deletion\":false}");
}

/// A JSON string as serde_json writes it; names that need no escaping (nearly all) are copied.
fn json_str(buf: &mut Vec<u8>, s: &str) {
    if !needs_escape(s.as_bytes()) {
        buf.push(b'"');
        buf.extend_from_slice(s.as_bytes());
        buf.push(b'"');
    } else {
        serde_json::to_writer(&mut *buf, s).expect("a str serialises");
    }
}

/// Whether `s` has a byte JSON escapes: a control character, `"` or `\\`. Eight bytes at a time.
fn needs_escape(s: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // A byte of `w` is zero (exact as to whether any is).
    let has_zero = |w: u64| w.wrapping_sub(ONES) & !w & HIGH != 0;
    let mut words = s.chunks_exact(8);
    for c in &mut words {
        let w = u64::from_le_bytes(c.try_into().expect("eight bytes"));
        // Below 0x20: subtracting 0x20 borrows into the high bit of a byte that had it clear.
        if w.wrapping_sub(ONES * 0x20) & !w & HIGH != 0
            || has_zero(w ^ (ONES * b'"' as u64))
            || has_zero(w ^ (ONES * b'\\' as u64))
        {
            return true;
        }
    }
    words.remainder().iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

/// The wire record of one path held by `owner`.
pub fn file_info(path: &DfsPath, meta: Meta, owner: &str, deletion: bool) -> FileInfo {
    FileInfo {
        full_name: SmolStr::new(path.as_str()),
        dir: meta.is_dir(),
        last_modified: meta.modified,
        last_info_updated: meta.info_updated,
        size_in_bytes: meta.size,
        file_mode: meta.mode,
        owner_node: SmolStr::new(owner),
        deletion,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        let a = PeerAddr::parse("127.0.0.1:7041").unwrap();
        assert_eq!((a.host(), a.port()), ("127.0.0.1", 7041));
        let e = PeerAddr::parse(":7040").unwrap();
        assert_eq!(e.host(), "");
        assert_eq!(e.or_host(Some("10.0.0.1")).to_string(), "10.0.0.1:7040");
        assert_eq!(a.or_host(Some("10.0.0.1")), a);
        assert_eq!(PeerAddr::parse("[::1]:80").unwrap().to_string(), "[::1]:80");
        assert!(!a.tls());
        assert_eq!(a.url("/x"), "http://127.0.0.1:7041/x");
        for bad in ["nocolon", "host:", "host:x", "host:70000", "host:0", "::1:80", "a/b:80", "a@b:1", "h st:1"] {
            let err = PeerAddr::parse(bad).unwrap_err();
            assert!(err.to_string().contains(bad), "{err}");
        }
    }

    #[test]
    fn https_addresses_are_additive() {
        let s = PeerAddr::parse("https://node-a.example:7041").unwrap();
        assert!(s.tls());
        assert_eq!((s.host(), s.port(), s.scheme()), ("node-a.example", 7041, Scheme::Https));
        assert_eq!(s.to_string(), "https://node-a.example:7041");
        assert_eq!(s.authority(), "node-a.example:7041");
        assert_eq!(s.url("/cluster/"), "https://node-a.example:7041/cluster/");
        assert_eq!(PeerAddr::parse(&s.to_string()).unwrap(), s, "the wire form reads back");
        assert_eq!(PeerAddr::parse("HTTPS://h:1").unwrap().scheme(), Scheme::Https);
        // A plain address keeps the original's form, however it was written.
        let plain = PeerAddr::parse("http://h:1").unwrap();
        assert_eq!((plain.to_string(), plain.tls()), ("h:1".to_owned(), false));
        assert_eq!(plain, PeerAddr::parse("h:1").unwrap());
        assert_ne!(plain, PeerAddr::parse("https://h:1").unwrap(), "the scheme is part of the address");
        // An empty host is filled in and the scheme kept.
        let e = PeerAddr::parse("https://:7041").unwrap();
        assert_eq!(e.or_host(Some("10.0.0.1")).to_string(), "https://10.0.0.1:7041");
        assert_eq!(PeerAddr::new_unchecked("h", 2).with_scheme(Scheme::Https).to_string(), "https://h:2");
        for bad in ["https://", "https://h", "https://h:x", "ftp://h:1", "https://a/b:1", "https://h:1/"] {
            assert!(PeerAddr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn greeting_form_roundtrip_and_errors() {
        let body = b"mgmt-addr=127.0.0.1%3A17041&name=nodeA&public-addr=127.0.0.1%3A17040&request-full-update=true";
        let g = Greeting::from_form(body).unwrap();
        assert_eq!(g.name, "nodeA");
        assert!(g.request_full_update);
        assert_eq!(g.to_form().as_bytes(), body);
        let missing = Greeting::from_form(b"name=x").unwrap_err();
        assert!(missing.to_string().contains("required"));
        let nocolon = Greeting::from_form(b"name=x&public-addr=nocolon&mgmt-addr=h:1").unwrap_err();
        assert!(matches!(nocolon, WireError::Addr(_)));
    }

    #[test]
    fn join_form() {
        let peers = parse_join_form(b"peer=a%3A1&peer=b:2").unwrap();
        assert_eq!(peers.len(), 2);
        assert_eq!(parse_join_form(b"").unwrap_err().to_string(), "bad form: Specify at least one 'peer'");
        assert!(parse_join_form(b"peer=nocolon").is_err());
    }

    #[test]
    fn null_files_and_unknown_fields() {
        let u = Update::from_json(br#"{"Files":null,"Full":true,"SenderNodeName":"x","Extra":1}"#).unwrap();
        assert!(u.files.is_empty());
        assert_eq!(u.seq, None);
        assert!(Update::from_json(b"{bad").unwrap_err().to_string().starts_with("Error decoding json"));
    }

    /// The incremental parser agrees with `from_json` wherever the body is cut.
    #[test]
    fn parser_matches_from_json() {
        let bodies: Vec<&[u8]> = vec![
            br#"{"Files":[{"FullName":"a/b","Basename":"b","Dir":false,"LastModified":1,"LastInfoUpdated":2,"SizeInBytes":3,"FileMode":420,"OwnerNode":"n","Deletion":false},{"FullName":"q\"\\]x,{","OwnerNode":"n"}],"UpdateTime":5,"Full":true,"SenderNodeName":"n","Epoch":1,"Seq":2}"#,
            br#" { "Full" : true , "F\u0069les" : [ { "FullName" : "x" } , {"FullName":"y","Extra":[1,{"a":"]"}]} ] , "SenderNodeName":"n" } "#,
            br#"{"Files":null,"Full":true,"SenderNodeName":"x","Extra":1}"#,
            br#"{"Files":[],"Full":false}"#,
            br#"{"SenderNodeName":"x","Nested":{"Files":[1,2]},"Files":[{"FullName":"z"}]}"#,
            br#"{}"#,
        ];
        for body in bodies {
            let want = Update::from_json(body).unwrap();
            for cut in 0..=body.len() {
                let mut p = UpdateParser::new();
                p.push(&body[..cut]).unwrap();
                p.push(&body[cut..]).unwrap();
                assert_eq!(p.finish().unwrap(), want, "{} cut at {cut}", String::from_utf8_lossy(body));
            }
            let mut p = UpdateParser::new();
            for b in body.chunks(1) {
                p.push(b).unwrap();
            }
            assert_eq!(p.finish().unwrap(), want);
        }
        let bad: Vec<&[u8]> = vec![
            b"{bad",
            br#"{"Files":[{"FullName":"x"},]}"#,
            br#"{"Files":[,{"FullName":"x"}]}"#,
            br#"{"Files":[{"FullName":"x"}"#,
            br#"{"Files":[{"FullName":"x"}]"#,
            br#"{"Files":[null]}"#,
            br#"{"Files":[{"FullName":"x"}],"Files":[]}"#,
            br#"{"Files":[{"FullName":"x"}]} x"#,
            br#"[{"Files":[]}]"#,
            b" []",
            br#"[null, null, null]"#,
            br#"{"Files":{}}"#,
            b"",
        ];
        for body in bad {
            assert!(Update::from_json(body).is_err(), "{}", String::from_utf8_lossy(body));
            let mut p = UpdateParser::new();
            let r = p.push(body).and_then(|()| p.finish());
            assert!(r.is_err(), "{}", String::from_utf8_lossy(body));
        }
    }

    /// A record far larger than the chunks, and many small ones, in tiny chunks.
    #[test]
    fn parser_joins_cut_records() {
        let big = format!(r#"{{"FullName":"big","Extra":"{}","OwnerNode":"n"}}"#, "x".repeat(200_000));
        let small: Vec<String> = (0..500).map(|i| format!(r#"{{"FullName":"f{i}","OwnerNode":"n"}}"#)).collect();
        let body = format!(r#"{{"Files":[{},{big}],"Full":true,"SenderNodeName":"n"}}"#, small.join(","));
        let want = Update::from_json(body.as_bytes()).unwrap();
        assert_eq!(want.files.len(), 501);
        for size in [1, 7, 4096] {
            let mut p = UpdateParser::new();
            for c in body.as_bytes().chunks(size) {
                p.push(c).unwrap();
            }
            assert_eq!(p.finish().unwrap(), want);
        }
    }

    #[test]
    fn modes() {
        let d = FileMode(2147484141);
        assert!(d.is_dir());
        assert_eq!(d.perm(), 0o755);
        assert!(FileMode(134218239).is_symlink());
        assert!(!FileMode(420).is_dir());
    }

    #[test]
    fn escapes_found_anywhere() {
        let plain = "abcdefghijklmnopqrstuvwxyz/ü~\u{7f}0123456789";
        assert!(!needs_escape(plain.as_bytes()));
        for bad in ['"', '\\', '\0', '\n', '\u{1f}'] {
            for at in 0..=plain.len() {
                if !plain.is_char_boundary(at) {
                    continue;
                }
                let s = format!("{}{bad}{}", &plain[..at], &plain[at..]);
                assert!(needs_escape(s.as_bytes()), "{s:?}");
            }
        }
        for b in 0u8..=255 {
            let want = b < 0x20 || b == b'"' || b == b'\\';
            assert_eq!(needs_escape(&[b; 9]), want, "{b}");
            assert_eq!(needs_escape(&[b'a', b'a', b'a', b'a', b'a', b'a', b'a', b]), want, "{b}");
        }
    }

    /// A record of a stranger ends the parse there: what follows (here, bytes that are not even
    /// JSON) is never looked at, and known senders' bodies parse as before.
    #[test]
    fn a_strangers_record_stops_the_parse() {
        let only_n = || UpdateSenders::Only(["n".into()].into_iter().collect());
        let mut p = UpdateParser::admitting(only_n());
        let first = br#"{"Files":[{"FullName":"a","OwnerNode":"x"},"#;
        assert_eq!(p.push(first), Err(WireError::Stranger("x".into())));
        let body = br#"{"Files":[{"FullName":"a","OwnerNode":"n"}],"Full":true,"SenderNodeName":"n"}"#;
        let mut p = UpdateParser::admitting(only_n());
        p.push(body).unwrap();
        assert_eq!(p.finish().unwrap().files.len(), 1);
        let mut p = UpdateParser::admitting(UpdateSenders::Anyone);
        p.push(first).unwrap();
    }

    /// The hand-written records are byte for byte what serde writes for a `FileInfo`.
    #[test]
    fn records_match_serde() {
        // Paths hold no control characters (`DfsPath` refuses them); the owners below do, so
        // the writer's escaping of them is still checked.
        let names = ["a", "dir/file.txt", "q\"uote/sl\"ash", "sp ace/\u{2028}sep", "ünï/cödé", "x/\u{a0}nbsp"];
        for (i, name) in names.iter().enumerate() {
            let path = DfsPath::parse(name).unwrap();
            for meta in [
                Meta { mode: FileMode::file(0o644), size: i as u64, modified: -5, info_updated: i64::MAX },
                Meta { mode: FileMode::dir(0o755), size: u64::MAX, modified: 0, info_updated: i64::MIN },
            ] {
                for owner in ["node-a", "we\"i\\rd\u{1}"] {
                    let mut mine = Vec::new();
                    write_record(&mut mine, &path, meta, &serde_json::to_vec(owner).unwrap());
                    let theirs = serde_json::to_vec(&file_info(&path, meta, owner, false)).unwrap();
                    assert_eq!(String::from_utf8(mine).unwrap(), String::from_utf8(theirs).unwrap());
                }
            }
        }
    }
}
