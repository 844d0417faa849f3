//! A small HTTP/1.1 client for the simulator's client hosts: one request per connection
//! (`Connection: close`), the whole answer read, and told apart from a cut one.
//!
//! Written here rather than taken from hyper because the checks need to see exactly what came
//! over the wire: a body shorter than its `Content-Length`, or a chunked body without its last
//! chunk, is an answer that was cut off (the node crashed, or the owner it streamed from went
//! away), and a client must be able to tell that from a whole file.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An answer as the client got it.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Whether the body arrived whole (its length as announced, or the chunked body's end).
    pub complete: bool,
}

/// Sends one request to `host:port` and reads the answer to the end of the connection, for at
/// most `limit`. `Err` when there was no answer head (refused, reset, timed out, garbage).
pub async fn request(
    host: &str,
    port: u16,
    method: &str,
    target: &str,
    headers: &[(&str, String)],
    body: &[u8],
    limit: Duration,
) -> Result<Reply, String> {
    let exchange = async {
        let mut s = turmoil::net::TcpStream::connect((host, port)).await.map_err(|e| format!("connect: {e}"))?;
        let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if !body.is_empty() || matches!(method, "PUT" | "POST") {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).await.map_err(|e| format!("send: {e}"))?;
        s.write_all(body).await.map_err(|e| format!("send: {e}"))?;
        let mut got = Vec::new();
        // A reset after the head still leaves what came before it.
        let _ = s.read_to_end(&mut got).await;
        Ok::<_, String>(got)
    };
    let got = match tokio::time::timeout(limit, exchange).await {
        Ok(r) => r?,
        Err(_) => return Err(format!("no answer within {limit:?}")),
    };
    parse(&got, method == "HEAD")
}

/// Parses a whole answer as read from the connection.
pub fn parse(got: &[u8], head_only: bool) -> Result<Reply, String> {
    let end = got.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| "no answer head".to_string())?;
    let head = std::str::from_utf8(&got[..end]).map_err(|_| "an answer head that is not UTF-8".to_string())?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("a bad status line: {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &got[end + 4..];
    let find = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    let (body, complete) = if head_only || status == 204 || status == 304 {
        (Vec::new(), true)
    } else if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        dechunk(rest)
    } else if let Some(len) = find("content-length") {
        let len: usize = len.parse().map_err(|_| format!("a bad Content-Length: {len:?}"))?;
        (rest[..rest.len().min(len)].to_vec(), rest.len() >= len)
    } else {
        (rest.to_vec(), true)
    };
    Ok(Reply { status, headers, body, complete })
}

/// A chunked body: its bytes, and whether the last (empty) chunk came.
fn dechunk(mut rest: &[u8]) -> (Vec<u8>, bool) {
    let mut body = Vec::new();
    loop {
        let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else { return (body, false) };
        let size = std::str::from_utf8(&rest[..eol]).ok().map(|s| s.split(';').next().unwrap_or("").trim());
        let Some(size) = size.and_then(|s| usize::from_str_radix(s, 16).ok()) else { return (body, false) };
        rest = &rest[eol + 2..];
        if size == 0 {
            return (body, true);
        }
        if rest.len() < size + 2 {
            body.extend_from_slice(&rest[..rest.len().min(size)]);
            return (body, false);
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_and_cut_answers_are_told_apart() {
        let whole = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", false).expect("an answer");
        assert_eq!((whole.status, whole.body.as_slice(), whole.complete), (200, &b"abc"[..], true));
        let cut = parse(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nabc", false).expect("an answer");
        assert_eq!((cut.body.as_slice(), cut.complete), (&b"abc"[..], false));
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let c = parse(chunked, false).expect("an answer");
        assert_eq!((c.body.as_slice(), c.complete), (&b"abcde"[..], true));
        let cut = parse(&chunked[..chunked.len() - 7], false).expect("an answer");
        assert_eq!((cut.body.as_slice(), cut.complete), (&b"abcde"[..], false));
        let cut = parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", false).expect("an answer");
        assert_eq!((cut.body.as_slice(), cut.complete), (&b"ab"[..], false));
        assert!(parse(b"HTTP/1.1 200 OK\r\nContent-Le", false).is_err());
        let head = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", true).expect("an answer");
        assert!(head.complete && head.body.is_empty());
    }
}
