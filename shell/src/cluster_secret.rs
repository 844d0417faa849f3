//! The cluster secret in the shell: carries the tags of [`dftp_core::cluster_auth`] in the
//! `X-Dftp-Auth` header of management requests and answers, and at the end of multicast
//! packets. Every decision (what is signed, the time window, replays) is the core's; this
//! module adds the clock, the random nonces, the one nonce memory of the node, and the log.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use dftp_core::cluster_auth::{BodyDigest, Keys, Nonce, NonceWindow, Refusal, Stamp, HEADER};
use dftp_core::Time;
use http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::BodyExt;
use ring::rand::{SecureRandom, SystemRandom};

use crate::body::{full_body, Body};
use crate::driver::Clock;
use crate::respond::text;

/// How often a refused request or a dropped packet is logged, at most (with the count since).
const LOG_EVERY: Duration = Duration::from_secs(60);

/// The node's keys, with the clock and the nonces accepted within the window.
pub struct Guard {
    keys: Keys,
    clock: Clock,
    seen: Mutex<NonceWindow>,
    random: SystemRandom,
    /// When the last refusal of each kind ([`Refused`]) was logged, and how many went unlogged
    /// since.
    log: Mutex<[(Option<Instant>, u64); 2]>,
}

impl Guard {
    pub fn new(keys: Keys, clock: Clock) -> Guard {
        Guard { keys, clock, seen: Mutex::default(), random: SystemRandom::new(), log: Mutex::default() }
    }

    fn now(&self) -> Time {
        self.clock.now()
    }

    fn nonce(&self) -> Nonce {
        let mut n = [0; 16];
        self.random.fill(&mut n).expect("the system's random source works");
        Nonce(n)
    }

    /// The `X-Dftp-Auth` of a request we send, and its nonce (to check the answer with).
    pub fn stamp(&self, method: &str, path: &str, body: BodyDigest) -> (HeaderValue, Nonce) {
        let nonce = self.nonce();
        let value = self.keys.sign_request(method, path, self.now(), nonce, body);
        (HeaderValue::from_str(&value).expect("a stamp is ASCII"), nonce)
    }

    /// The stamp of a request that arrived, when it is well-formed and in time: checked before
    /// the body is read.
    pub fn precheck(&self, headers: &HeaderMap) -> Result<Stamp, Refusal> {
        let stamp = Stamp::parse(headers.get(HEADER).map(HeaderValue::as_bytes))?;
        stamp.check_time(self.now())?;
        Ok(stamp)
    }

    /// Whether the request that carried `stamp` is what it says, and new.
    pub fn verify(&self, stamp: &Stamp, method: &str, path: &str, body: BodyDigest) -> Result<(), Refusal> {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        self.keys.verify_request(stamp, method, path, body, self.now(), &mut seen)
    }

    /// Signs an answer to the request that carried `nonce` (its body is read into memory: the
    /// management interface's answers are built whole anyway, as text or a cluster table).
    pub async fn sign_response(&self, resp: Response<Body>, nonce: Nonce) -> Response<Body> {
        let (mut parts, body) = resp.into_parts();
        let Ok(bytes) = body.collect().await.map(|b| b.to_bytes()) else {
            return text(StatusCode::INTERNAL_SERVER_ERROR, "the answer could not be signed");
        };
        let tag = self.keys.sign_response(nonce, parts.status.as_u16(), BodyDigest::of(&bytes));
        parts.headers.insert(HEADER, HeaderValue::from_str(&tag).expect("a tag is ASCII"));
        Response::from_parts(parts, full_body(bytes))
    }

    /// Whether an answer to our request with `nonce` comes from a key holder.
    pub fn check_response(&self, headers: &HeaderMap, nonce: Nonce, status: u16, body: &[u8]) -> Result<(), Refusal> {
        self.keys.verify_response(headers.get(HEADER).map(HeaderValue::as_bytes), nonce, status, BodyDigest::of(body))
    }

    /// A multicast packet with its stamp.
    pub fn seal(&self, json: &[u8]) -> Vec<u8> {
        self.keys.seal_packet(json, self.now(), self.nonce())
    }

    /// The announcement of a sealed packet, when its stamp is good.
    pub fn open<'p>(&self, packet: &'p [u8]) -> Result<&'p [u8], Refusal> {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        self.keys.open_packet(packet, self.now(), &mut seen)
    }

    /// Logs a refused request or a dropped packet, at most once a minute for each of the two: a
    /// flood of forged messages must not flood the log too, nor hide the other kind.
    pub fn log_refusal(&self, kind: Refused, what: std::fmt::Arguments<'_>) {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        let (last, unlogged) = &mut log[kind as usize];
        if last.is_none_or(|t| t.elapsed() >= LOG_EVERY) {
            let more =
                if *unlogged > 0 { format!(" ({unlogged} more since the last such line)") } else { String::new() };
            tracing::warn!("cluster secret: {what}{more}");
            *last = Some(Instant::now());
            *unlogged = 0;
        } else {
            *unlogged += 1;
        }
    }
}

/// What [`Guard::log_refusal`] logs, each at its own pace.
#[derive(Clone, Copy)]
pub enum Refused {
    Request = 0,
    Packet = 1,
}

/// `401` with the reason; `Connection: close`, since the body may not have been read.
pub fn unauthorized(reason: &Refusal) -> Response<Body> {
    let mut r = text(StatusCode::UNAUTHORIZED, reason.to_string());
    r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("X-Dftp-Auth"));
    r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}
