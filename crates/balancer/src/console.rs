//! The balancer's web console at `/ui` on the admin listener: backends, health, weights and
//! drain, compiled into the binary (`crates/balancer/ui/`, with the node console's styles).
//! The page calls the admin API (`/lb/*`), with the admin token typed into it for changes.

use crate::body::ResponseBody;
use http::Response;

const INDEX_HTML: &str = include_str!("../ui/index.html");
const BALANCER_JS: &str = include_str!("../ui/balancer.js");
/// One stylesheet for both consoles.
const CONSOLE_CSS: &str = include_str!("../../server/ui/console.css");

/// Whether `path` is the console's.
pub fn is_console_path(path: &str) -> bool {
    path == "/ui" || path.starts_with("/ui/")
}

/// The console's file at `path`, or `None` when there is no such file.
pub fn asset(path: &str) -> Option<Response<ResponseBody>> {
    let (content_type, body) = match path {
        "/ui" | "/ui/" => ("text/html; charset=utf-8", INDEX_HTML),
        "/ui/balancer.js" => ("text/javascript; charset=utf-8", BALANCER_JS),
        "/ui/console.css" => ("text/css; charset=utf-8", CONSOLE_CSS),
        _ => return None,
    };
    let mut response = Response::new(ResponseBody::local(body));
    hakv_api::console_asset_headers(response.headers_mut(), content_type);
    Some(response)
}
