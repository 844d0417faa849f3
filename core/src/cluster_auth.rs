//! The cluster secret (`--cluster-secret-file`): who may speak for a node of the cluster.
//!
//! Without a secret, anyone who reaches a node's management interface or its multicast group
//! speaks for any node (the original's protocol has no authentication at all). With one, every
//! management request, every answer to one and every multicast packet carries an HMAC-SHA256 tag
//! under a key that only the nodes hold; the shell carries the tags in a header (or at the end of
//! a packet) and asks this module whether they are good. Everything here is computation on data:
//! the time and the random nonce come from the caller.
//!
//! # What is signed
//!
//! A request: its method, its path with the query (the greeting's form may be in the query),
//! the time it was made (Unix seconds), a random 128-bit nonce and the SHA-256 of its body; the
//! header is `X-Dftp-Auth: v1.<time>.<nonce hex>.<tag hex>[.<tag hex>]` ([`Stamp`]; a tag per
//! key, see Rotation). The receiver refuses
//! a request without a good tag, one made more than [`WINDOW`] away from its clock, and one whose
//! nonce it has already accepted within the window ([`NonceWindow`]): a recorded request cannot
//! be played again.
//!
//! An answer: the request's nonce, the status and the SHA-256 of the body, in
//! `X-Dftp-Auth: v1.<tag hex>[.<tag hex>]` ([`Keys::sign_response`]). So a node believes a cluster table
//! only from a key holder, and only as the answer to the request it sent (a recorded answer to
//! another request does not verify).
//!
//! A multicast packet: the JSON announcement, a newline, and the request stamp made over the
//! method `ANNOUNCE`, the path `multicast` and the JSON as the body ([`Keys::seal_packet`]).
//!
//! Fields are length-prefixed in the signed message, so no two different requests sign the
//! same bytes whatever their fields contain.
//!
//! # Rotation
//!
//! [`Keys`] holds one or two keys. A message carries one tag per key (the first key's first),
//! and is good when any of its tags is good under any key of the receiver. So a node with
//! `[new, old]` and one with `[old]` (or `[new]`) understand each other both ways, and the key
//! changes without downtime: give the nodes `[new, old]` one by one, then `[new]` one by one.
//! (Signing with the first key alone would not do: a node with `[old]` would refuse every
//! request of a node that already signs with `new`, and the two would not be a cluster for the
//! whole rotation.)

use std::collections::{BTreeSet, HashSet};
use std::fmt;

use ring::{digest, hmac};

use crate::time::{Span, Time};

/// The header that carries a tag, on requests and answers of the management interface.
pub const HEADER: &str = "x-dftp-auth";

/// How far a request's time may be from the receiver's clock, either way.
pub const WINDOW: Span = Span(300_000);

/// The most nonces a [`NonceWindow`] remembers. Only requests with a good tag get in, so only
/// key holders fill it; at [`WINDOW`] that is 200 signed requests a second, far above what a
/// cluster sends (a greeting per peer per ping interval, and the updates), and 64 Ki entries of
/// 16 bytes (twice, with their expiry) are a few megabytes at most.
pub const MAX_NONCES: usize = 1 << 16;

/// The shortest key accepted: 32 characters (`openssl rand -hex 32` gives 64).
pub const MIN_KEY_LEN: usize = 32;

/// The longest `X-Dftp-Auth` value read; anything longer is malformed.
const MAX_STAMP_LEN: usize = 256;

/// The method and path a multicast packet is signed as (no request carries them: the path of a
/// request starts with `/`).
const PACKET_METHOD: &str = "ANNOUNCE";
const PACKET_PATH: &str = "multicast";

/// A request's random number, unique per request (the caller draws it).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Nonce(pub [u8; 16]);

/// The SHA-256 of a body.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct BodyDigest([u8; 32]);

impl BodyDigest {
    pub fn of(body: &[u8]) -> BodyDigest {
        let mut h = BodyHasher::new();
        h.update(body);
        h.finish()
    }
}

/// A body's digest computed as its chunks arrive (an update body is never whole in memory).
#[derive(Clone)]
pub struct BodyHasher(digest::Context);

impl Default for BodyHasher {
    fn default() -> Self {
        BodyHasher::new()
    }
}

impl BodyHasher {
    pub fn new() -> BodyHasher {
        BodyHasher(digest::Context::new(&digest::SHA256))
    }

    pub fn update(&mut self, chunk: &[u8]) {
        self.0.update(chunk);
    }

    pub fn finish(self) -> BodyDigest {
        let d = self.0.finish();
        let mut out = [0; 32];
        out.copy_from_slice(d.as_ref());
        BodyDigest(out)
    }
}

/// Why a key file is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("no key in it (one key per line; two while the key changes)")]
    None,
    #[error("more than two keys (the current one and the next, for rotation)")]
    TooMany,
    #[error("key {0} is shorter than {MIN_KEY_LEN} characters (make one with `openssl rand -hex 32`)")]
    TooShort(usize),
    #[error("the file is not UTF-8 text")]
    NotText,
}

/// The keys of the cluster: one or two, never none; each signs, and either verifies (see the
/// module's Rotation).
#[derive(Clone)]
pub struct Keys {
    first: hmac::Key,
    second: Option<hmac::Key>,
}

impl fmt::Debug for Keys {
    /// Never the keys themselves.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keys({} key(s))", 1 + usize::from(self.second.is_some()))
    }
}

impl Keys {
    /// One key, or two for a rotation.
    pub fn new(first: &[u8], second: Option<&[u8]>) -> Result<Keys, KeyError> {
        for (i, k) in std::iter::once(first).chain(second).enumerate() {
            if k.len() < MIN_KEY_LEN {
                return Err(KeyError::TooShort(i + 1));
            }
        }
        let key = |k: &[u8]| hmac::Key::new(hmac::HMAC_SHA256, k);
        Ok(Keys { first: key(first), second: second.map(key) })
    }

    /// The keys of a key file: one key per line, two at most; blank lines and lines starting
    /// with `#` are skipped, and a key's surrounding whitespace is not part of it.
    pub fn from_file(bytes: &[u8]) -> Result<Keys, KeyError> {
        let text = std::str::from_utf8(bytes).map_err(|_| KeyError::NotText)?;
        let keys: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
        match keys.as_slice() {
            [] => Err(KeyError::None),
            [one] => Keys::new(one.as_bytes(), None),
            [one, two] => Keys::new(one.as_bytes(), Some(two.as_bytes())),
            _ => Err(KeyError::TooMany),
        }
    }

    fn keys(&self) -> impl Iterator<Item = &hmac::Key> {
        std::iter::once(&self.first).chain(&self.second)
    }

    /// Whether any of `tags` is good under any of our keys (each comparison in constant time).
    fn verify_any(&self, message: &[u8], tags: &Tags) -> bool {
        self.keys().any(|k| tags.iter().any(|t| hmac::verify(k, message, t).is_ok()))
    }

    fn tags(&self, message: &[u8]) -> Tags {
        let tag = |k: &hmac::Key| {
            let mut out = [0; 32];
            out.copy_from_slice(hmac::sign(k, message).as_ref());
            out
        };
        Tags(tag(&self.first), self.second.as_ref().map(tag))
    }

    /// The `X-Dftp-Auth` value of a request made at `time` with `nonce`.
    pub fn sign_request(&self, method: &str, path: &str, time: Time, nonce: Nonce, body: BodyDigest) -> String {
        let secs = time.0 / 1000;
        let tags = self.tags(&request_message(method, path, secs, nonce, body));
        Stamp { secs, nonce, tags }.to_string()
    }

    /// Checks a request's stamp (as parsed by [`Stamp::parse`]) against the request, and
    /// remembers its nonce. Nothing is remembered unless the tag is good.
    pub fn verify_request(
        &self,
        stamp: &Stamp,
        method: &str,
        path: &str,
        body: BodyDigest,
        now: Time,
        seen: &mut NonceWindow,
    ) -> Result<(), Refusal> {
        stamp.check_time(now)?;
        if !self.verify_any(&request_message(method, path, stamp.secs, stamp.nonce, body), &stamp.tags) {
            return Err(Refusal::BadTag);
        }
        seen.admit(stamp.nonce, stamp.secs, now)
    }

    /// The `X-Dftp-Auth` value of the answer to the request that carried `nonce`.
    pub fn sign_response(&self, nonce: Nonce, status: u16, body: BodyDigest) -> String {
        format!("v1.{}", self.tags(&response_message(nonce, status, body)))
    }

    /// Checks the `X-Dftp-Auth` value of an answer to our request that carried `nonce`.
    pub fn verify_response(
        &self,
        header: Option<&[u8]>,
        nonce: Nonce,
        status: u16,
        body: BodyDigest,
    ) -> Result<(), Refusal> {
        let header = header.ok_or(Refusal::Missing)?;
        let tags = header
            .strip_prefix(b"v1.")
            .and_then(Tags::parse)
            .ok_or(Refusal::Malformed("expected v1.<64 hex digits>[.<64 hex digits>]"))?;
        if self.verify_any(&response_message(nonce, status, body), &tags) {
            Ok(())
        } else {
            Err(Refusal::BadTag)
        }
    }

    /// A multicast packet: `json`, a newline, and its stamp.
    pub fn seal_packet(&self, json: &[u8], time: Time, nonce: Nonce) -> Vec<u8> {
        let stamp = self.sign_request(PACKET_METHOD, PACKET_PATH, time, nonce, BodyDigest::of(json));
        let mut out = Vec::with_capacity(json.len() + 1 + stamp.len());
        out.extend_from_slice(json);
        out.push(b'\n');
        out.extend_from_slice(stamp.as_bytes());
        out
    }

    /// The JSON of a sealed packet, when its stamp is good (and its nonce new).
    pub fn open_packet<'p>(&self, packet: &'p [u8], now: Time, seen: &mut NonceWindow) -> Result<&'p [u8], Refusal> {
        let cut = packet.iter().rposition(|&b| b == b'\n').ok_or(Refusal::Missing)?;
        let (json, stamp) = (&packet[..cut], &packet[cut + 1..]);
        let stamp = Stamp::parse(Some(stamp))?;
        self.verify_request(&stamp, PACKET_METHOD, PACKET_PATH, BodyDigest::of(json), now, seen)?;
        Ok(json)
    }
}

/// One tag per key of the signer: one or two.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Tags([u8; 32], Option<[u8; 32]>);

impl Tags {
    fn iter(&self) -> impl Iterator<Item = &[u8; 32]> {
        std::iter::once(&self.0).chain(&self.1)
    }

    /// `<64 hex digits>` or two of them joined by `.`.
    fn parse(s: &[u8]) -> Option<Tags> {
        let mut parts = s.split(|&b| b == b'.');
        let first = unhex::<32>(parts.next()?)?;
        let second = parts.next().map(unhex::<32>);
        if parts.next().is_some() {
            return None;
        }
        match second {
            None => Some(Tags(first, None)),
            Some(Some(t)) => Some(Tags(first, Some(t))),
            Some(None) => None,
        }
    }
}

impl fmt::Display for Tags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(&self.0))?;
        if let Some(t) = &self.1 {
            write!(f, ".{}", hex(t))?;
        }
        Ok(())
    }
}

/// A request's `X-Dftp-Auth`, parsed: `v1.<unix secs>.<32 hex digits>.<64 hex digits>`, with a
/// second `.<64 hex digits>` from a signer with two keys.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Stamp {
    pub secs: u64,
    pub nonce: Nonce,
    tags: Tags,
}

impl fmt::Display for Stamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v1.{}.{}.{}", self.secs, hex(&self.nonce.0), self.tags)
    }
}

impl Stamp {
    /// Parses the header's value (`None`: there was no header).
    pub fn parse(header: Option<&[u8]>) -> Result<Stamp, Refusal> {
        const FORM: &str = "expected v1.<unix seconds>.<32 hex digits>.<64 hex digits>[.<64 hex digits>]";
        let header = header.ok_or(Refusal::Missing)?;
        if header.len() > MAX_STAMP_LEN {
            return Err(Refusal::Malformed(FORM));
        }
        let mut parts = header.splitn(4, |&b| b == b'.');
        let (Some(b"v1"), Some(secs), Some(nonce), Some(tags)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Refusal::Malformed(FORM));
        };
        let secs = (!secs.is_empty() && secs.len() <= 19 && secs.iter().all(u8::is_ascii_digit))
            .then(|| std::str::from_utf8(secs).ok()?.parse::<u64>().ok())
            .flatten()
            .ok_or(Refusal::Malformed(FORM))?;
        let nonce = Nonce(unhex::<16>(nonce).ok_or(Refusal::Malformed(FORM))?);
        let tags = Tags::parse(tags).ok_or(Refusal::Malformed(FORM))?;
        Ok(Stamp { secs, nonce, tags })
    }

    /// Whether the stamp's time is within [`WINDOW`] of `now`: checked before a body is read,
    /// and again with the tag.
    pub fn check_time(&self, now: Time) -> Result<(), Refusal> {
        let now_secs = now.0 / 1000;
        let window = WINDOW.as_millis() / 1000;
        if self.secs.abs_diff(now_secs) > window {
            return Err(Refusal::Stale { secs: self.secs, now: now_secs });
        }
        Ok(())
    }
}

/// Why a message was refused (a `401` with this text, or a dropped packet).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no X-Dftp-Auth tag: this cluster needs the cluster secret")]
    Missing,
    #[error("a malformed X-Dftp-Auth tag: {0}")]
    Malformed(&'static str),
    #[error("the request was made at {secs}, more than 300 s away from this node's clock ({now})")]
    Stale { secs: u64, now: u64 },
    #[error("a wrong X-Dftp-Auth tag: not signed with the cluster secret, or changed on the way")]
    BadTag,
    #[error("a replayed request: its nonce was already used")]
    Replayed,
    #[error("too many signed requests within the last 300 s; try again later")]
    Busy,
}

/// The nonces accepted within the window, each kept until its request's time is out of the
/// window (after that, the time check refuses the request anyway). Bounded by [`MAX_NONCES`]:
/// when full, a new request is refused ([`Refusal::Busy`]) rather than an old nonce forgotten,
/// which would let its request be played again.
#[derive(Debug)]
pub struct NonceWindow {
    by_expiry: BTreeSet<(u64, Nonce)>,
    seen: HashSet<Nonce>,
    cap: usize,
}

impl Default for NonceWindow {
    fn default() -> Self {
        NonceWindow::with_capacity(MAX_NONCES)
    }
}

impl NonceWindow {
    /// A window that remembers at most `cap` nonces.
    pub fn with_capacity(cap: usize) -> NonceWindow {
        NonceWindow { by_expiry: BTreeSet::new(), seen: HashSet::new(), cap }
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Remembers `nonce` of a request made at `secs`, unless it was seen.
    fn admit(&mut self, nonce: Nonce, secs: u64, now: Time) -> Result<(), Refusal> {
        let now_secs = now.0 / 1000;
        while let Some(&(expiry, old)) = self.by_expiry.first() {
            if expiry >= now_secs {
                break;
            }
            self.by_expiry.pop_first();
            self.seen.remove(&old);
        }
        if self.seen.contains(&nonce) {
            return Err(Refusal::Replayed);
        }
        if self.seen.len() >= self.cap {
            return Err(Refusal::Busy);
        }
        self.seen.insert(nonce);
        self.by_expiry.insert((secs.saturating_add(WINDOW.as_millis() / 1000), nonce));
        Ok(())
    }
}

/// Appends `field` with its length in front, so no two lists of fields give the same bytes.
fn field(out: &mut Vec<u8>, field: &[u8]) {
    out.extend_from_slice(field.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(field);
    out.push(b'\n');
}

fn request_message(method: &str, path: &str, secs: u64, nonce: Nonce, body: BodyDigest) -> Vec<u8> {
    let mut m = b"dftp-request-v1\n".to_vec();
    field(&mut m, method.as_bytes());
    field(&mut m, path.as_bytes());
    field(&mut m, secs.to_string().as_bytes());
    field(&mut m, &nonce.0);
    field(&mut m, &body.0);
    m
}

fn response_message(nonce: Nonce, status: u16, body: BodyDigest) -> Vec<u8> {
    let mut m = b"dftp-response-v1\n".to_vec();
    field(&mut m, &nonce.0);
    field(&mut m, status.to_string().as_bytes());
    field(&mut m, &body.0);
    m
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Exactly `2 * N` lowercase hex digits.
fn unhex<const N: usize>(s: &[u8]) -> Option<[u8; N]> {
    if s.len() != 2 * N {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0; N];
    for (i, pair) in s.chunks_exact(2).enumerate() {
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}
