//! The read cache's entries and the hook that keeps them coherent with the state machine.
//!
//! The writer thread invalidates changed keys *before* a batch becomes visible and stores the
//! new values *after*, and a reader only fills the cache if no write touched the key's shard
//! since the revision it read at (`Cache::fill`). So the cache never holds a value older than
//! the state machine, and no read can see a write that a later read does not.

use bytes::Bytes;
use hakv_api::Revision;
use hakv_cache::Cache;
use hakv_store::{ApplyHook, Change, Record};
use http::HeaderValue;
use std::sync::Arc;

/// A value ready to serve: the whole `GET` response body and its `ETag`, built once.
#[derive(Debug)]
pub struct CachedValue {
    pub revision: Revision,
    pub expires_at_ms: Option<u64>,
    /// `{"data":<value>}\n`, exactly as the seed program answers.
    pub body: Bytes,
    pub etag: HeaderValue,
}

impl CachedValue {
    pub fn from_record(record: &Record) -> CachedValue {
        let value = record.value.as_bytes();
        let mut body = Vec::with_capacity(value.len() + 10);
        body.extend_from_slice(b"{\"data\":");
        body.extend_from_slice(value);
        body.extend_from_slice(b"}\n");
        CachedValue {
            revision: record.revision,
            expires_at_ms: record.expires_at_ms,
            body: Bytes::from(body),
            etag: HeaderValue::from_str(&record.revision.etag()).expect("digits and quotes"),
        }
    }

    pub fn is_live_at(&self, now_ms: u64) -> bool {
        self.expires_at_ms.is_none_or(|at| now_ms < at)
    }

    /// What the entry costs the cache, in bytes (the cache adds its own per-entry overhead).
    pub fn weight(&self, key: &str) -> u64 {
        (key.len() + self.body.len()) as u64
    }
}

pub type ValueCache = Cache<String, Arc<CachedValue>>;

/// Applies every committed change to the cache.
pub struct CacheHook(pub Arc<ValueCache>);

impl ApplyHook for CacheHook {
    fn before_visible(&self, changes: &[Change], revision: Revision) {
        for change in changes {
            self.0.invalidate(change.key.as_str(), revision.0);
        }
    }

    fn reset(&self, revision: Revision) {
        // A snapshot replaced the whole state machine: nothing cached is known to be current.
        self.0.invalidate_all(revision.0);
    }

    fn after_visible(&self, changes: &[Change]) {
        for change in changes {
            if let Some(record) = &change.record {
                let value = Arc::new(CachedValue::from_record(record));
                let weight = value.weight(&change.key);
                self.0.put(change.key.clone(), value, weight);
            }
        }
    }
}
