//! `GET /backup`: a consistent online snapshot of this node's state, streamed in the store's
//! snapshot format (with its CRC-32) as it is written from one point-in-time view, so memory
//! stays bounded whatever the state's size. On a cluster member it needs the cluster token (or
//! an admin token when authentication is on) and first passes a read barrier: every write acknowledged before the request is in it.

use super::cluster::require_token;
use crate::ApiError;
use crate::node::Node;
use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use hakv_store::{ChunkWriter, background};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use std::io::{self, Write};
use std::sync::Arc;
use tokio::sync::{Semaphore, oneshot};

/// One backup at a time: each holds a storage view open (old versions cannot be compacted
/// away meanwhile) and a core busy writing.
static BACKUPS: Semaphore = Semaphore::const_new(1);
/// The stream is handed over in chunks of this size, at most `QUEUED_CHUNKS` ahead of the
/// client: a slow client slows the writer instead of growing memory.
const CHUNK_BYTES: usize = 256 << 10;
const QUEUED_CHUNKS: usize = 4;

pub async fn backup(
    State(node): State<Arc<Node>>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    // A member's backup needs the cluster secret, or an admin token when authentication is
    // on; a single node's needs an admin token when authentication is on.
    let by_cluster_secret = node.cluster().is_some() && require_token(&node, &headers).is_ok();
    if !by_cluster_secret {
        if node.cluster().is_some() && node.config.admin_token.is_none() {
            return Err(ApiError::Unauthorized);
        }
        crate::auth::authorize(&node, &headers, crate::auth::Need::Admin)?;
    }
    if method == Method::HEAD {
        // What a GET would start with, without taking the one backup slot or a storage view.
        return Ok(backup_response(Body::empty(), node.state_machine.revision()));
    }
    let slot = BACKUPS
        .try_acquire()
        .map_err(|_| ApiError::Overloaded("concurrent backups (one at a time)"))?;
    node.read_barrier().await?;
    let (mut out, receiver) = ChunkWriter::channel(CHUNK_BYTES, QUEUED_CHUNKS);
    let (revision_tx, revision_rx) = oneshot::channel();
    let state = node.state_machine.clone();
    // At background priority: a backup must not take cores from clients (hakv_store::background).
    let write = move || {
        let _slot = slot;
        let view = match state.snapshot_view() {
            Ok(view) => view,
            Err(e) => {
                let _ = revision_tx.send(Err(e));
                return;
            }
        };
        let _ = revision_tx.send(Ok(view.revision));
        // A failure ends the body with an error, so the client sees a broken transfer, not a
        // short one (its check of the trailer's CRC would catch that too).
        if let Err(e) = view
            .write_to(&mut out)
            .map_err(io::Error::other)
            .and_then(|_| out.flush())
        {
            tracing::warn!(error = %e, "a backup stream ended early");
            out.fail(e);
        }
    };
    background::spawn("hakv-backup", write)
        .map_err(|e| ApiError::Unavailable(format!("cannot start the backup: {e}")))?;
    let revision = revision_rx
        .await
        .map_err(|_| ApiError::Unavailable("the backup task stopped".into()))?
        .map_err(crate::node::unavailable)?;
    let body = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let chunk = receiver.recv().await?;
        Some((chunk, receiver))
    });
    Ok(backup_response(Body::from_stream(body), revision))
}

fn backup_response(body: Body, revision: hakv_api::Revision) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert("x-hakv-revision", HeaderValue::from(revision.0));
    response
}
