//! The original protocol's messages, byte-compatible with its Go nodes.
//!
//! Field names, casing and numeric encodings follow what the Go nodes send (see
//! `shared/seed/wire/`). We add two optional fields to updates (`Epoch`, `Seq`) so a receiver can
//! notice a lost incremental update; Go's decoder ignores unknown fields, so the original nodes
//! still accept our bodies, and theirs (without the fields) are accepted here.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use smol_str::SmolStr;

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
}

fn null_as_empty<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

impl Update {
    /// Parses a body. The error text is safe to show to the sender.
    pub fn from_json(body: &[u8]) -> Result<Update, WireError> {
        serde_json::from_slice(body).map_err(|e| WireError::Json(e.to_string()))
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an Update always serialises")
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

/// `host:port` of a node's public or management interface. The host may be empty, which means
/// "the address this message came from".
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerAddr {
    host: SmolStr,
    port: u16,
}

impl PeerAddr {
    /// Parses `host:port`, `:port` or `[v6]:port`. A missing or bad port is an error, never a
    /// panic (the original indexed past the end of the split). The host may hold only characters
    /// of host names and IP literals, so that it can be put into a URL as it is.
    pub fn parse(s: &str) -> Result<PeerAddr, WireError> {
        let bad = |why: &str| WireError::Addr(format!("{s:?}: {why}"));
        let (host, port) = s.rsplit_once(':').ok_or_else(|| bad("expected host:port"))?;
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
        Ok(PeerAddr { host: SmolStr::new(host), port })
    }

    pub fn new_unchecked(host: &str, port: u16) -> PeerAddr {
        PeerAddr { host: SmolStr::new(host), port }
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Fills an empty host with the one the message came from.
    pub fn or_host(&self, host: Option<&str>) -> PeerAddr {
        match host {
            Some(h) if self.host.is_empty() => PeerAddr { host: SmolStr::new(h), port: self.port },
            _ => self.clone(),
        }
    }
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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
        for bad in ["nocolon", "host:", "host:x", "host:70000", "host:0", "::1:80", "a/b:80", "a@b:1", "h st:1"] {
            let err = PeerAddr::parse(bad).unwrap_err();
            assert!(err.to_string().contains(bad), "{err}");
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

    #[test]
    fn modes() {
        let d = FileMode(2147484141);
        assert!(d.is_dir());
        assert_eq!(d.perm(), 0o755);
        assert!(FileMode(134218239).is_symlink());
        assert!(!FileMode(420).is_dir());
    }
}
