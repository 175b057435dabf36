//! The web console at `/ui`: three files compiled into the binary (`crates/server/ui/`), so a
//! node serves its console with nothing to install and nothing fetched from elsewhere. The
//! page calls the node's own API with the token typed into it, so `/ui` itself needs none.

use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

const INDEX_HTML: &str = include_str!("../../ui/index.html");
const CONSOLE_JS: &str = include_str!("../../ui/console.js");
/// The balancer's console includes the same file for its styles.
const CONSOLE_CSS: &str = include_str!("../../ui/console.css");

/// `GET /ui` and `/ui/`: the page.
pub async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

/// `GET /ui/{file}`: the page's script and styles.
pub async fn file(name: Result<Path<String>, PathRejection>) -> Result<Response, ApiError> {
    let Path(name) = name?;
    match name.as_str() {
        "console.js" => Ok(asset("text/javascript; charset=utf-8", CONSOLE_JS)),
        "console.css" => Ok(asset("text/css; charset=utf-8", CONSOLE_CSS)),
        _ => Err(ApiError::RouteNotFound(format!(
            "/ui/{}",
            name.chars().take(100).collect::<String>()
        ))),
    }
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    hakv_api::console_asset_headers(response.headers_mut(), content_type);
    response
}
