//! `GET /data?prefix=&limit=&cursor=`: keys in byte order, one page at a time.
//!
//! Pages continue strictly after the last key of the previous page, so a key that exists
//! for the whole walk is returned exactly once, whatever is written meanwhile. A page holds
//! at most `limit` items and ends early at about 4 MiB of keys and values, with a cursor.

use super::query::{Consistency, ScanParams, decode_cursor, encode_cursor};
use crate::ApiError;
use crate::auth::{self, Need};
use crate::node::{Node, unavailable};
use crate::scan_budget::BudgetedBody;
use axum::extract::State;
use axum::response::Response;
use hakv_api::to_canonical_json;
use http::{HeaderMap, HeaderValue, Uri, header};
use std::sync::Arc;

/// A page ends after the record that brings its keys and values to this many bytes (a single
/// larger value still makes a page of one).
pub const PAGE_BYTES: usize = 4 << 20;

pub async fn scan(State(node): State<Arc<Node>>, uri: Uri, headers: HeaderMap) -> Result<Response, ApiError> {
    let params = ScanParams::parse(uri.query())?;
    if auth::is_reserved(&params.prefix) {
        return Err(ApiError::ReservedKey);
    }
    auth::authorize(&node, &headers, Need::Read(&params.prefix))?;
    let limit = params.limit.unwrap_or(ScanParams::DEFAULT_LIMIT);
    let after = params.cursor.as_deref().map(decode_cursor).transpose()?;
    if params.consistency == Consistency::Linearizable {
        node.read_barrier().await?;
    }
    // Room for the page read and its body at once (each at most a page plus one value),
    // waited for at most half the request timeout: then 503, nothing was done.
    let page_at_most = PAGE_BYTES as u64 + node.config.max_value_bytes + 64 * 1024;
    let mut room = node
        .scan_budget
        .reserve(2 * page_at_most, node.config.request_timeout / 2)
        .await
        .ok_or(ApiError::Overloaded("scan memory"))?;
    // Read one more than asked to learn whether another page exists; a page also ends once
    // it holds about PAGE_BYTES of keys and values (memory per scan is bounded).
    let (mut records, full) = node
        .state_machine
        .scan_bounded(
            &params.prefix,
            after.as_deref(),
            limit + 1,
            PAGE_BYTES,
            node.clock_ms(),
        )
        .map_err(unavailable)?;
    let more = full || records.len() > limit;
    records.truncate(limit);
    let next_cursor = if more {
        records.last().map(|(key, _)| encode_cursor(key))
    } else {
        None
    };
    // hakv's own records (tokens) are never listed; the cursor above may still point past
    // them, so the next page starts after them.
    records.retain(|(key, _)| !auth::is_reserved(key));

    // `{"items":[{"data":…,"key":…,"revision":…},…],"next_cursor":…}`, in the same canonical
    // form as single reads, splicing the stored value bytes instead of re-encoding them.
    let mut body = Vec::with_capacity(
        64 + records
            .iter()
            .map(|(k, r)| k.len() + r.value.as_bytes().len() + 48)
            .sum::<usize>(),
    );
    body.extend_from_slice(b"{\"items\":[");
    for (i, (key, record)) in records.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(b"{\"data\":");
        body.extend_from_slice(record.value.as_bytes());
        body.extend_from_slice(b",\"key\":");
        body.extend_from_slice(to_canonical_json(key.as_str()).as_bytes());
        body.extend_from_slice(format!(",\"revision\":{}}}", record.revision).as_bytes());
    }
    body.extend_from_slice(b"],\"next_cursor\":");
    match next_cursor {
        Some(cursor) => body.extend_from_slice(format!("\"{cursor}\"").as_bytes()),
        None => body.extend_from_slice(b"null"),
    }
    body.extend_from_slice(b"}\n");
    drop(records);
    room.shrink_to(body.len() as u64);
    let body = BudgetedBody::new(body.into(), room);
    let mut response = Response::new(axum::body::Body::new(body));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}
