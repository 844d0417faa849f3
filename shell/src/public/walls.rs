//! Second walls for browsers: headers on every answer of the public interface, so that a name or a
//! file put on some node's disk cannot run script with a viewer's credentials on our origin.
//!
//! - Pages the node writes itself (listings, the greeting, `/find/`, error texts) carry a policy
//!   that allows no script, no plugin and no framing, and forms only to this node (the
//!   listing's search box): they need no more, so an escaping bug in a listing still runs nothing.
//! - Files of the tree carry `Content-Security-Policy: sandbox`: an HTML file still renders (with
//!   its images and styles) but as a page of a unique origin, without script, cookies or stored
//!   credentials of ours. This holds for files fetched from another node too, whatever that
//!   node's answer said.
//! - Everything carries `X-Content-Type-Options: nosniff`, so that a browser never runs what we
//!   label as text or an image as script or HTML.
//!
//! No CORS header is sent: other origins cannot read our answers.

use http::header::{HeaderValue, CONTENT_SECURITY_POLICY, X_CONTENT_TYPE_OPTIONS};
use http::Response;

use crate::body::Body;

/// The policy of pages the node writes itself. The one stylesheet allowed is the status page's,
/// by its hash (`status::STYLE`; its test checks the hash): a `<style>` a name smuggled into a listing applies nothing.
pub const PAGE_POLICY: &str = concat!(
    "default-src 'none'; img-src 'self'; style-src ",
    "'sha256-/nVWQJrFKQ5/7deZrgXz8+f5vtGJ+kUkh9RVKaAh+9A='",
    "; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
);

/// The policy of the tree's files.
pub const FILE_POLICY: &str = "sandbox";

/// Marks an answer whose body is a file of the tree (set by `files.rs`).
#[derive(Clone, Copy, Debug)]
pub struct TreeFile;

/// Puts the walls on `resp`, replacing whatever a peer's answer carried.
pub fn apply(mut resp: Response<Body>) -> Response<Body> {
    let policy = if resp.extensions().get::<TreeFile>().is_some() { FILE_POLICY } else { PAGE_POLICY };
    let headers = resp.headers_mut();
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(policy));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::full_body;

    #[test]
    fn pages_allow_no_script_and_files_are_sandboxed() {
        let page = apply(Response::new(full_body("<html>")));
        let csp = page.headers()[CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.starts_with("default-src 'none'"), "{csp}");
        assert!(!csp.contains("script"), "{csp}");
        // Forms (the listing's search box and archive buttons) go to this node only.
        assert!(csp.contains("form-action 'self'"), "{csp}");
        assert_eq!(page.headers()[X_CONTENT_TYPE_OPTIONS], "nosniff");

        let mut file = Response::new(full_body("<script>alert(1)</script>"));
        file.extensions_mut().insert(TreeFile);
        file.headers_mut().insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static("script-src *"));
        let file = apply(file);
        assert_eq!(file.headers()[CONTENT_SECURITY_POLICY], "sandbox");
        assert_eq!(file.headers().get_all(CONTENT_SECURITY_POLICY).iter().count(), 1);
        assert_eq!(file.headers()[X_CONTENT_TYPE_OPTIONS], "nosniff");
    }
}
