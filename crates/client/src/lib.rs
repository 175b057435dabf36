//! A typed async client for hakv's HTTP API: get/put/delete/scan/status with revisions (ETag),
//! conditions (If-Match / If-None-Match), TTL and read consistency, over pooled keep-alive
//! connections. Errors say whether a retry can help.

mod backup;
mod client;
mod error;
mod tokens;
mod types;

pub use backup::BackupDownload;
pub use client::{Client, MAX_PAGE};
pub use error::ClientError;
pub use hakv_api::{Revision, ScanItem, ScanPage};
pub use hakv_api::{data_path, query_value};
pub use tokens::GrantSpec;
pub use types::{
    Consistency, Deleted, Entry, Precondition, Probe, ServerStatus, WriteMethod, WriteOptions, Written,
};
