//! Directory listings: nginx-like HTML (name, date, size or `[DIR]`, owner) and the same as JSON.

use dftp_core::{DfsPath, Entry, ListingOrder, SortKey};
use http::{Response, StatusCode};

use crate::body::Body;
use crate::content::encode_segment;
use crate::respond::with_type;

/// The link to an entry of the listed directory, relative to it and safe by construction.
///
/// A relative reference whose first segment holds a `:` is read as a scheme by browsers and
/// mirroring tools (RFC 3986, 4.2): `colon:name.txt` would be skipped by wget, rclone and lftp,
/// and `javascript:alert(1)` would run script on this origin. A leading `./` makes every name a
/// path, whatever it holds; its `%`-encoding keeps it one segment.
pub fn relative_href(name: &str) -> String {
    format!("./{}", encode_segment(name))
}

/// Whether a file is worth a "view as plain text" link: text a browser would otherwise offer to
/// download (a script, YAML, source code). Binaries get none, so that mirroring tools, which
/// follow every link, do not download every large file twice.
fn is_text_like(name: &str) -> bool {
    let Some(mime) = mime_guess::from_path(name).first() else {
        return false;
    };
    mime.type_() == mime_guess::mime::TEXT
        || matches!(
            mime.subtype().as_str(),
            "json" | "xml" | "javascript" | "x-javascript" | "x-sh" | "x-csh" | "x-yaml" | "yaml" | "toml" | "x-tex"
        )
        || mime.suffix().is_some_and(|s| s == mime_guess::mime::XML || s == mime_guess::mime::JSON)
}

pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn date(secs: Option<i64>) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]");
    secs.and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_else(|| "-".repeat(16))
}

/// Width of the name column, as in the original's listing.
const NAME_COLUMN: usize = 54;
/// Longer names are cut to this many characters (the last one an ellipsis).
const NAME_MAX: usize = 50;

/// The line of column heads, each a link that sorts by it (and reverses the order when the
/// listing is already sorted by it ascending), aligned with the columns below. The current
/// column is marked with an arrow.
fn column_heads(order: ListingOrder) -> String {
    let head = |key: SortKey, label: &str| {
        let arrow = match (order.key == key, order.descending) {
            (false, _) => "",
            (true, false) => " ↑",
            (true, true) => " ↓",
        };
        let link = format!("<a href=\"?{}\">{label}</a>{arrow}", html_escape(&order.toggled(key).query()));
        (link, label.chars().count() + arrow.chars().count())
    };
    let (name, name_len) = head(SortKey::Name, "Name");
    let (modified, modified_len) = head(SortKey::Modified, "Modified");
    let (size, size_len) = head(SortKey::Size, "Size");
    format!(
        "{name}{}{modified}{}{size}       Owner\n",
        " ".repeat(NAME_COLUMN.saturating_sub(name_len)),
        " ".repeat((16 + 20usize).saturating_sub(modified_len + size_len)),
    )
}

/// The page's forms (plain forms: the page policy allows no script, and `form-action 'self'`
/// lets these through): the directory as an archive, and a search box over `/find/` for the
/// listed directory and what is below it.
fn forms(dir: &DfsPath) -> String {
    let prefix = if dir.is_root() {
        String::new()
    } else {
        format!("<input type=\"hidden\" name=\"prefix\" value=\"{}\">", html_escape(&format!("{dir}/")))
    };
    // The archive of this directory, as buttons of a form rather than links: mirroring tools
    // follow every link, and would fetch the whole subtree again at every level.
    let archive = "<form action=\"./\" method=\"get\">Download this directory: \
         <button type=\"submit\" name=\"format\" value=\"tar\">tar</button> \
         <button type=\"submit\" name=\"format\" value=\"zip\">zip</button></form>";
    format!(
        "{archive}<form action=\"/find/\" method=\"get\">{prefix}\
         <input type=\"search\" name=\"q\" placeholder=\"*.txt\" aria-label=\"name pattern\"> \
         <select name=\"type\" aria-label=\"type\"><option value=\"\">any</option>\
         <option value=\"f\">files</option><option value=\"d\">directories</option></select> \
         <button type=\"submit\">Search below</button></form>"
    )
}

pub fn html(dir: &DfsPath, children: &[Entry], order: ListingOrder) -> Response<Body> {
    let title = html_escape(&if dir.is_root() { "/".to_string() } else { format!("{dir}/") });
    let mut page = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Index of {title}</title></head>\
         <body><h1>Index of {title}</h1>{}<hr/><pre>",
        forms(dir)
    );
    page.push_str(&column_heads(order));
    if !dir.is_root() {
        page.push_str("<a href=\"../\">../</a>\n");
    }
    for e in children {
        let name = e.path.name();
        let (href, mut shown) = if e.is_dir() {
            (format!("{}/", relative_href(name)), format!("{name}/"))
        } else {
            (relative_href(name), name.to_string())
        };
        if shown.chars().count() > NAME_MAX {
            shown = shown.chars().take(NAME_MAX - 1).collect::<String>() + "…";
        }
        let pad = NAME_COLUMN.saturating_sub(shown.chars().count());
        page.push_str(&format!("<a href=\"{href}\">{}</a>{}", html_escape(&shown), " ".repeat(pad)));
        page.push_str(&date(e.meta.map(|m| m.modified)));
        if e.is_dir() {
            page.push_str(&format!("{:>20}       ", "[DIR]"));
        } else if is_text_like(name) {
            page.push_str(&format!(
                "{:>20} <a href=\"{href}?format=txt\" title=\"view as plain text\">txt</a>   ",
                e.size()
            ));
        } else {
            page.push_str(&format!("{:>20}       ", e.size()));
        }
        page.push_str(&html_escape(e.owner.as_str()));
        page.push('\n');
    }
    page.push_str("</pre><hr/></body></html>");
    with_type(StatusCode::OK, "text/html; charset=utf-8", page)
}

#[derive(serde::Serialize)]
struct JsonEntry<'a> {
    name: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    size: u64,
    /// Unix seconds; absent for a directory known only from its contents.
    modified: Option<i64>,
    owner: &'a str,
}

#[derive(serde::Serialize)]
struct JsonListing<'a> {
    path: String,
    entries: Vec<JsonEntry<'a>>,
}

pub fn json(dir: &DfsPath, children: &[Entry]) -> Response<Body> {
    let listing = JsonListing {
        path: if dir.is_root() { "/".into() } else { format!("{dir}/") },
        entries: children
            .iter()
            .map(|e| JsonEntry {
                name: e.path.name(),
                kind: if e.is_dir() { "dir" } else { "file" },
                size: e.size(),
                modified: e.meta.map(|m| m.modified),
                owner: e.owner.as_str(),
            })
            .collect(),
    };
    let body = serde_json::to_vec(&listing).unwrap_or_default();
    with_type(StatusCode::OK, "application/json", body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(html_escape("<b>&\"'"), "&lt;b&gt;&amp;&quot;&#39;");
        assert_eq!(date(Some(1477174081)), "2016-10-22 22:08");
    }

    #[test]
    fn hrefs_never_start_with_a_scheme() {
        for (name, href) in [
            ("javascript:alert(1)", "./javascript:alert(1)"),
            ("http:x", "./http:x"),
            ("colon:name.txt", "./colon:name.txt"),
            ("plain.txt", "./plain.txt"),
            ("a b", "./a%20b"),
            ("//evil", "./%2F%2Fevil"),
        ] {
            assert_eq!(relative_href(name), href);
        }
    }

    #[test]
    fn text_links_only_for_text() {
        for name in ["a.txt", "b.md", "run.sh", "c.json", "d.xml", "e.html", "f.css", "g.yaml", "notes.log"] {
            assert!(is_text_like(name), "{name}");
        }
        for name in ["a.iso", "b.tar.gz", "c.png", "d.bin", "e.mp4", "Makefile", "no-extension", "f.zip", "g.pdf"] {
            assert!(!is_text_like(name), "{name}");
        }
    }
}
