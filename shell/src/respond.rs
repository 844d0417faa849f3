//! Small response builders: every error is a short reason in plain text, never a stack trace or
//! a local disk path.

use http::{header, HeaderValue, Response, StatusCode};

use crate::body::{full_body, Body};

pub fn text(status: StatusCode, body: impl Into<String>) -> Response<Body> {
    let mut body = body.into();
    if !body.ends_with('\n') {
        body.push('\n');
    }
    let mut r = Response::new(full_body(body));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r.headers_mut().insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    r
}

pub fn with_type(status: StatusCode, content_type: &'static str, body: impl Into<bytes::Bytes>) -> Response<Body> {
    let mut r = Response::new(full_body(body));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

pub fn redirect(location: &str) -> Response<Body> {
    let mut r = text(StatusCode::MOVED_PERMANENTLY, format!("moved to {location}"));
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

pub fn method_not_allowed(allow: &'static str, reason: &str) -> Response<Body> {
    let mut r = text(StatusCode::METHOD_NOT_ALLOWED, reason);
    r.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
    r
}

/// `204 No Content`: nothing to say (a replaced file, a removal).
pub fn no_content() -> Response<Body> {
    let mut r = Response::new(full_body(bytes::Bytes::new()));
    *r.status_mut() = StatusCode::NO_CONTENT;
    r
}
