//! Files built into the binary (the live page, the API reference), served with the headers
//! every one of them needs: its type, revalidation on each load (small files, and the page
//! stays in step with the binary), no type sniffing, and the page's content security policy.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// `body` as `content_type` under the content security policy `csp`.
pub fn embedded(body: &'static str, content_type: &'static str, csp: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp));
    response
}
