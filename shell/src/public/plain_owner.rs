//! Files whose owner sends them plainly (the original's nodes): whole, with no Content-Length
//! (past 2 KiB), `Accept-Ranges`, `ETag` or `Last-Modified`, ignoring `Range` and validators.
//! Passed on as they came, such a file answered a range with `200` and the whole body, and a
//! download could not be resumed. The tree knows the file's size and modification time, so the
//! answer is made here as for our own files: `dftp_core::http_file` decides it, and the owner's
//! stream is skipped and cut to fit, as the FTP `REST` path does (`ftp::transfer::remote`).
//!
//! The owner's stream must then hold exactly the size the tree announces, which is the
//! `Content-Length` sent: if it ends early, or goes on past it, the body ends with an error and
//! hyper closes the connection before that length, so the client sees a failed transfer, never
//! a short or padded one that looks complete.

use std::io;

use bytes::{Buf, Bytes};
use dftp_core::http_file::{self, Answer, Conditions, FileFacts};
use dftp_core::DfsPath;
use http::{header, HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;

use crate::body::{full_body, Body, BoxError};
use crate::respond::text;
use crate::upstream::Fetched;

/// The value of a header sent once; `None` when absent, repeated or not text (a repeated
/// `Range` or date is not one value, and is ignored).
fn single<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (Some(v), None) => v.to_str().ok(),
        _ => None,
    }
}

/// The values of a list header, joined.
fn list(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    let values: Vec<&str> = headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect();
    (!values.is_empty()).then(|| values.join(", "))
}

/// The answer to the `GET` (or `HEAD`, when `head`) with `request` headers of `path`, which
/// the tree knows as `facts`, from the owner's plain `200` answer `owner`.
pub async fn respond(
    head: bool,
    request: &HeaderMap,
    path: &DfsPath,
    facts: FileFacts,
    owner: Fetched,
) -> Response<Body> {
    let (if_match, if_none_match) = (list(request, &header::IF_MATCH), list(request, &header::IF_NONE_MATCH));
    let conditions = Conditions {
        range: single(request, &header::RANGE),
        if_range: single(request, &header::IF_RANGE),
        if_match: if_match.as_deref(),
        if_none_match: if_none_match.as_deref(),
        if_modified_since: single(request, &header::IF_MODIFIED_SINCE),
        if_unmodified_since: single(request, &header::IF_UNMODIFIED_SINCE),
    };
    let last_modified = http_file::http_date(facts.modified).and_then(|d| HeaderValue::from_str(&d).ok());
    let size = facts.size;
    let (status, start, len) = match http_file::answer(&conditions, facts) {
        Answer::Whole => (StatusCode::OK, 0, size),
        Answer::Part { start, len } => (StatusCode::PARTIAL_CONTENT, start, len),
        Answer::NotModified => {
            let mut r = Response::new(full_body(Bytes::new()));
            *r.status_mut() = StatusCode::NOT_MODIFIED;
            if let Some(v) = last_modified {
                r.headers_mut().insert(header::LAST_MODIFIED, v);
            }
            return r;
        }
        Answer::PreconditionFailed => {
            return text(StatusCode::PRECONDITION_FAILED, format!("a precondition of the request failed for {path}"));
        }
        Answer::Unsatisfiable => {
            let mut r =
                text(StatusCode::RANGE_NOT_SATISFIABLE, format!("no byte of the range is in {path} ({size} bytes)"));
            if let Ok(v) = HeaderValue::from_str(&http_file::unsatisfied_range(size)) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return r;
        }
    };
    let passed: Vec<(HeaderName, HeaderValue)> = [header::CONTENT_TYPE, header::CACHE_CONTROL]
        .into_iter()
        .filter_map(|name| owner.headers.get(&name).cloned().map(|v| (name, v)))
        .collect();
    let body = if head {
        full_body(Bytes::new())
    } else if len == 0 {
        // An empty file: hyper sends no body for a length of 0, so there is nothing to cut an
        // over-long stream short with; it is checked before answering.
        if let Err(e) = expect_end(&mut owner.into_body(None), 0).await {
            tracing::warn!("proxying {path}: {e}");
            return text(
                StatusCode::BAD_GATEWAY,
                format!("the owner of {path} sent a file that is not what it announced"),
            );
        }
        full_body(Bytes::new())
    } else {
        window(owner.into_body(None), start, len, size)
    };
    let mut r = Response::new(body);
    *r.status_mut() = status;
    let headers = r.headers_mut();
    headers.extend(passed);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Some(v) = last_modified {
        headers.insert(header::LAST_MODIFIED, v);
    }
    if status == StatusCode::PARTIAL_CONTENT {
        if let Ok(v) = HeaderValue::from_str(&http_file::content_range(start, len, size)) {
            headers.insert(header::CONTENT_RANGE, v);
        }
    }
    r
}

fn short(got: u64, size: u64) -> BoxError {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("the owner sent {got} bytes of a file the tree says has {size}; the connection is closed"),
    )
    .into()
}

fn long(size: u64) -> BoxError {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("the owner sent more than the {size} bytes the tree says the file has; the connection is closed"),
    )
    .into()
}

/// Reads `body` to its end, which must come before any further byte: the owner has sent all
/// `size` bytes of the file.
async fn expect_end(body: &mut Body, size: u64) -> Result<(), BoxError> {
    while let Some(frame) = body.frame().await {
        if frame?.data_ref().is_some_and(|d| !d.is_empty()) {
            return Err(long(size));
        }
    }
    Ok(())
}

/// Bytes `start..start + len` (`len` at least 1) of a file of `size` bytes, cut from `owner`,
/// its whole body. An owner's stream that ends before the window does ends this body with an
/// error. When the window reaches the end of the file, its last bytes are held back until the
/// owner's stream is seen to end there: more bytes end this body with an error instead, before
/// the announced length has gone out. A window that ends earlier stops reading the owner (its
/// connection is then closed rather than reused), and what lies past it is not read; bytes
/// past the size in what is read are an error wherever they come.
pub fn window(owner: Body, start: u64, len: u64, size: u64) -> Body {
    struct Cut {
        owner: Body,
        /// Bytes still to drop, then to give.
        skip: u64,
        left: u64,
        /// Bytes of the owner's body so far.
        seen: u64,
        size: u64,
        to_end: bool,
    }
    let cut = Cut { owner, skip: start, left: len, seen: 0, size, to_end: start.saturating_add(len) >= size };
    let chunks = futures_util::stream::try_unfold(cut, |mut cut| async move {
        while cut.left > 0 {
            let mut data = match cut.owner.frame().await {
                None => return Err(short(cut.seen, cut.size)),
                Some(frame) => match frame?.into_data() {
                    Ok(data) => data,
                    Err(_) => continue, // trailers
                },
            };
            cut.seen += data.len() as u64;
            if cut.seen > cut.size {
                return Err(long(cut.size));
            }
            let dropped = cut.skip.min(data.len() as u64);
            cut.skip -= dropped;
            data.advance(dropped as usize);
            let piece = data.split_to(cut.left.min(data.len() as u64) as usize);
            cut.left -= piece.len() as u64;
            if cut.left == 0 && cut.to_end {
                expect_end(&mut cut.owner, cut.size).await?;
            }
            if !piece.is_empty() {
                return Ok(Some((Frame::data(piece), cut)));
            }
        }
        Ok(None)
    });
    StreamBody::new(chunks).boxed_unsync()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body of these frames (`Err` for an error frame).
    fn owner(frames: Vec<Result<&'static [u8], &'static str>>) -> Body {
        let frames = frames.into_iter().map(|f| match f {
            Ok(d) => Ok(Frame::data(Bytes::from_static(d))),
            Err(e) => Err(BoxError::from(e)),
        });
        StreamBody::new(futures_util::stream::iter(frames)).boxed_unsync()
    }

    /// Everything the window gives before its end or error, and the error.
    async fn drain(mut body: Body) -> (Vec<u8>, Option<String>) {
        let mut got = Vec::new();
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(f) => got.extend_from_slice(&f.into_data().unwrap_or_default()),
                Err(e) => return (got, Some(e.to_string())),
            }
        }
        (got, None)
    }

    #[tokio::test]
    async fn windows_are_cut_from_the_stream_across_frames() {
        let frames = || owner(vec![Ok(b"0123"), Ok(b""), Ok(b"456"), Ok(b"789")]);
        for (start, len, want) in [(0, 10, "0123456789"), (2, 3, "234"), (3, 4, "3456"), (9, 1, "9"), (0, 1, "0")] {
            let (got, err) = drain(window(frames(), start, len, 10)).await;
            assert_eq!((String::from_utf8(got).unwrap(), err), (want.to_string(), None), "{start}+{len}");
        }
    }

    #[tokio::test]
    async fn a_short_stream_is_an_error() {
        let (got, err) = drain(window(owner(vec![Ok(b"0123"), Ok(b"45")]), 0, 10, 10)).await;
        assert_eq!(got, b"012345");
        assert!(err.unwrap().contains("sent 6 bytes of a file the tree says has 10"));
        let (got, err) = drain(window(owner(vec![Ok(b"0123")]), 6, 4, 10)).await;
        assert!(got.is_empty() && err.is_some());
        let (_, err) = drain(window(owner(vec![Ok(b"01"), Err("reset")]), 0, 10, 10)).await;
        assert_eq!(err.as_deref(), Some("reset"));
    }

    #[tokio::test]
    async fn a_long_stream_is_an_error_before_the_last_byte() {
        // The excess in the frame with the last bytes, or in a later frame: either way the
        // window's last bytes are not given, so less than the length goes out.
        for frames in [vec![Ok(&b"0123"[..]), Ok(b"456789X")], vec![Ok(b"0123"), Ok(b"456789"), Ok(b""), Ok(b"X")]] {
            let (got, err) = drain(window(owner(frames.clone()), 0, 10, 10)).await;
            assert!(got.len() < 10, "{got:?}");
            assert!(err.unwrap().contains("more than the 10 bytes"));
            let (got, err) = drain(window(owner(frames), 8, 2, 10)).await;
            assert!(got.len() < 2 && err.is_some());
        }
        // A window that ends before the file does is not held back, and what follows it is
        // not read; but bytes past the size in what it reads are an error all the same.
        let (got, err) = drain(window(owner(vec![Ok(b"0123"), Ok(b"456789"), Ok(b"X")]), 2, 3, 10)).await;
        assert_eq!((got, err), (b"234".to_vec(), None));
        let (got, err) = drain(window(owner(vec![Ok(b"0123"), Ok(b"456789X")]), 2, 3, 10)).await;
        assert!(got.len() < 3 && err.is_some());
    }

    #[tokio::test]
    async fn an_empty_file_must_get_an_empty_stream() {
        assert!(expect_end(&mut owner(vec![Ok(b""), Ok(b"")]), 0).await.is_ok());
        assert!(expect_end(&mut owner(vec![Ok(b""), Ok(b"x")]), 0).await.is_err());
    }
}
