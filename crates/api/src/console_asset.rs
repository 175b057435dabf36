//! The headers of a web console's file (`/ui` on a member and on the balancer): the same on
//! both, so that a browser treats the two consoles alike.

use http::{HeaderMap, HeaderValue, header};

/// The consoles load nothing from anywhere else: the browser is told so.
const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Sets the headers of a console file of `content_type`.
pub fn console_asset_headers(headers: &mut HeaderMap, content_type: &'static str) {
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // A new binary serves a new console: browsers must not keep an old one.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
}
