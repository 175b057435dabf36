//! `GET /data?prefix=&limit=&cursor=`: keys in byte order, one page at a time.
//!
//! Pages continue strictly after the last key of the previous page, so a key that exists
//! for the whole walk is returned exactly once, whatever is written meanwhile. A page holds
//! at most `limit` items and ends early at about 4 MiB of keys and values, with a cursor.

use super::query::{Consistency, ScanParams, decode_cursor, encode_cursor};
use crate::ApiError;
use crate::node::{Node, unavailable};
use axum::extract::State;
use axum::response::Response;
use hakv_api::to_canonical_json;
use http::{StatusCode, Uri};
use std::sync::Arc;

/// A page ends after the record that brings its keys and values to this many bytes (a single
/// larger value still makes a page of one).
pub const PAGE_BYTES: usize = 4 << 20;

pub async fn scan(State(node): State<Arc<Node>>, uri: Uri) -> Result<Response, ApiError> {
    let params = ScanParams::parse(uri.query())?;
    let limit = params.limit.unwrap_or(ScanParams::DEFAULT_LIMIT);
    let after = params.cursor.as_deref().map(decode_cursor).transpose()?;
    if params.consistency == Consistency::Linearizable {
        node.read_barrier().await?;
    }
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
    Ok(super::data::json_response(StatusCode::OK, body.into(), None))
}
