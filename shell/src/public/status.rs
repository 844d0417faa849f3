//! `GET /status/`: the cluster as this node sees it, for people (an HTML page, plain and
//! readable on a phone) and for scripts (`?format=json`): every node with its addresses, whether
//! it is alive or lost, when it was last seen, what it holds in the tree and when updates last
//! went each way; and this node's uptime and version.
//!
//! The page has no script (the walls allow none) and one `<style>` element, which the walls
//! allow by its hash (`walls::PAGE_POLICY`): no inline `style` attributes, no other styles.

use std::time::Duration;

use dftp_core::{Holdings, Liveness, Member, Snapshot, Time};
use http::{Response, StatusCode};
use serde_json::json;

use super::listing::html_escape;
use crate::body::Body;
use crate::respond::with_type;

/// The version the page reports.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The page's only stylesheet. The walls' `style-src` names its SHA-256: change both together
/// (a unit test checks).
pub const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1em;line-height:1.4}\
table{border-collapse:collapse;width:100%}\
th,td{text-align:left;padding:.3em .5em;border-bottom:1px solid #ccc;vertical-align:top}\
.alive{color:#060}.lost{color:#b00;font-weight:bold}\
@media (max-width:600px){thead{display:none}tr{display:block;margin-bottom:1em;border:1px solid #ccc}\
td{display:block;border:0}td::before{content:attr(data-label) \": \";font-weight:bold}}";

/// What the page shows, taken from a snapshot at `now`.
struct View<'a> {
    snapshot: &'a Snapshot,
    now: Time,
    uptime: Duration,
}

/// One row: a member and what it holds.
fn rows(snapshot: &Snapshot) -> Vec<(&Member, Holdings)> {
    let holdings = snapshot.holdings();
    snapshot.members().iter().map(|m| (m, holdings.get(&m.name).copied().unwrap_or_default())).collect()
}

fn state(m: &Member) -> &'static str {
    match m.liveness {
        Liveness::Alive => "alive",
        Liveness::Lost { .. } => "lost",
    }
}

/// The answer to `GET /status/` (`json`: `?format=json`).
pub fn page(snapshot: &Snapshot, now: Time, uptime: Duration, json: bool) -> Response<Body> {
    let view = View { snapshot, now, uptime };
    if json {
        with_type(StatusCode::OK, "application/json", view.json().to_string())
    } else {
        with_type(StatusCode::OK, "text/html; charset=utf-8", view.html())
    }
}

impl View<'_> {
    fn json(&self) -> serde_json::Value {
        let secs = |t: Option<Time>| t.map(Time::unix_secs);
        let nodes: Vec<_> = rows(self.snapshot)
            .into_iter()
            .map(|(m, held)| {
                json!({
                    "name": m.name.as_str(),
                    "me": m.is_me,
                    "public_addr": m.public_addr,
                    "mgmt_addr": m.mgmt_addr,
                    "state": state(m),
                    "last_seen": self.last_seen(m).unix_secs(),
                    "files": held.files,
                    "bytes": held.bytes,
                    "last_update_in": secs(m.last_update_in),
                    "last_update_out": secs(m.last_update_out),
                })
            })
            .collect();
        json!({
            "cluster": self.snapshot.cluster().name.as_str(),
            "node": self.snapshot.me().as_str(),
            "version": VERSION,
            "uptime_seconds": self.uptime.as_secs(),
            "now": self.now.unix_secs(),
            "nodes": nodes,
        })
    }

    fn html(&self) -> String {
        let e = html_escape;
        let mut rows_html = String::new();
        for (m, held) in rows(self.snapshot) {
            let name = if m.is_me { format!("{} (this node)", e(&m.name)) } else { e(&m.name) };
            let st = state(m);
            rows_html.push_str(&format!(
                "<tr><td data-label=\"Node\">{name}</td>\
                 <td data-label=\"State\" class=\"{st}\">{st}</td>\
                 <td data-label=\"Public\">{}</td><td data-label=\"Management\">{}</td>\
                 <td data-label=\"Last seen\">{}</td>\
                 <td data-label=\"Files\">{}</td><td data-label=\"Bytes\">{}</td>\
                 <td data-label=\"Update in\">{}</td><td data-label=\"Update out\">{}</td></tr>",
                e(&m.public_addr),
                e(&m.mgmt_addr),
                self.when(Some(self.last_seen(m))),
                held.files,
                held.bytes,
                self.when(m.last_update_in),
                self.when(m.last_update_out),
            ));
        }
        format!(
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>dftp: cluster {cluster}</title><style>{STYLE}</style></head><body>\
             <h1>Cluster {cluster}</h1>\
             <p>Seen from node <b>{me}</b>, dftp {VERSION}, up {uptime}. \
             <a href=\"/status/?format=json\">JSON</a> &middot; <a href=\"/\">home</a></p>\
             <table><thead><tr><th>Node</th><th>State</th><th>Public</th><th>Management</th>\
             <th>Last seen</th><th>Files</th><th>Bytes</th><th>Update in</th><th>Update out</th></tr></thead>\
             <tbody>{rows_html}</tbody></table></body></html>",
            cluster = e(&self.snapshot.cluster().name),
            me = e(self.snapshot.me()),
            uptime = duration(self.uptime.as_secs()),
        )
    }

    /// When `m` was last seen: now, for this node (the snapshot may be a moment old).
    fn last_seen(&self, m: &Member) -> Time {
        if m.is_me {
            self.now
        } else {
            m.last_seen
        }
    }

    /// A time as "2026-12-03 07:55:02 UTC (12 s ago)", or "never".
    fn when(&self, t: Option<Time>) -> String {
        let Some(t) = t else { return "never".into() };
        let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
        let at = time::OffsetDateTime::from_unix_timestamp(t.unix_secs())
            .ok()
            .and_then(|d| d.format(&fmt).ok())
            .unwrap_or_default();
        let ago = self.now.0.saturating_sub(t.0) / 1000;
        format!("{at} UTC ({} ago)", duration(ago))
    }
}

/// `secs` as "3 d 4 h", "2 h 5 min", "4 min 10 s" or "12 s".
fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d} d {h} h")
    } else if h > 0 {
        format!("{h} h {m} min")
    } else if m > 0 {
        format!("{m} min {s} s")
    } else {
        format!("{s} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_walls_allow_this_style_and_no_other() {
        let digest = ring::digest::digest(&ring::digest::SHA256, STYLE.as_bytes());
        let allowed = format!("style-src 'sha256-{}';", base64_encode(digest.as_ref()));
        let policy = super::super::walls::PAGE_POLICY;
        assert!(policy.contains(&allowed), "{policy} should have {allowed}");
        assert_eq!(policy.matches("style-src").count(), 1, "{policy}");
        assert!(!policy.contains("unsafe"), "{policy}");
    }

    /// Standard base64 with padding, as CSP hashes are written.
    fn base64_encode(bytes: &[u8]) -> String {
        const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    #[test]
    fn base64_matches_known_values() {
        assert_eq!(base64_encode(b""), "");
        assert_eq!(base64_encode(b"f"), "Zg==");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_encode(b"foo"), "Zm9v");
        assert_eq!(base64_encode(b"foob"), "Zm9vYg==");
    }

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(duration(0), "0 s");
        assert_eq!(duration(59), "59 s");
        assert_eq!(duration(61), "1 min 1 s");
        assert_eq!(duration(3600 * 2 + 300), "2 h 5 min");
        assert_eq!(duration(86_400 * 3 + 3600 * 4 + 5), "3 d 4 h");
    }
}
