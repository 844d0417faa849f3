//! The body type every HTTP answer and request of the daemon has: boxed, so that a listing, a
//! file sent with `sendfile`, a spliced proxied body and a streamed full update are one type.

use bytes::Bytes;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

/// A body of bytes already in memory.
pub fn full_body(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed_unsync()
}

/// A request body that came too slowly ([`next_paced`]): why, for the answer and the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooSlow(pub String);

/// The next frame of a request body, waited for at most as long as `pace` allows a body that
/// started at `started` and has brought `received` bytes so far (`dftp_core::pace`).
pub async fn next_paced<B>(
    body: &mut B,
    pace: &dftp_core::pace::Pace,
    started: tokio::time::Instant,
    received: u64,
) -> Result<Option<Result<hyper::body::Frame<B::Data>, B::Error>>, TooSlow>
where
    B: hyper::body::Body + Unpin,
{
    let wait = pace.next_wait(started.elapsed(), received);
    match tokio::time::timeout(wait, body.frame()).await {
        Ok(frame) => Ok(frame),
        Err(_) if wait >= pace.stall => Err(TooSlow(format!("the client sent nothing for {}s", pace.stall.as_secs()))),
        Err(_) => Err(TooSlow(format!(
            "the client sent its body slower than {} bytes/s (--body-min-rate), {received} bytes in {}s",
            pace.min_rate,
            started.elapsed().as_secs()
        ))),
    }
}
