//! What the client's calls take and give back.

use hakv_api::Revision;
use serde::Serialize;

/// Read consistency: linearizable (the server's default) or from the local replica.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Consistency {
    #[default]
    Linearizable,
    Stale,
}

impl Consistency {
    pub(crate) fn query(self) -> Option<&'static str> {
        match self {
            Consistency::Linearizable => None,
            Consistency::Stale => Some("consistency=stale"),
        }
    }
}

/// A condition on a write or delete.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Precondition {
    #[default]
    None,
    /// `If-Match`: only if the key's revision is still this one (compare-and-set).
    IfMatch(Revision),
    /// `If-None-Match: *`: only if the key does not exist (create-only).
    IfAbsent,
}

/// `PUT` (tells created from replaced) or the seed's `POST`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WriteMethod {
    #[default]
    Put,
    Post,
}

#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// The key expires this many seconds after the write.
    pub ttl_seconds: Option<u64>,
    pub precondition: Precondition,
    pub method: WriteMethod,
}

/// A value read, with the revision of its last change (from `ETag`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    pub data: serde_json::Value,
    pub revision: Option<Revision>,
}

/// A successful write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Written {
    /// 201: the key did not exist before (always true for the seed's `POST`, which answers 201).
    pub created: bool,
    pub revision: Option<Revision>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleted {
    Deleted { revision: Option<Revision> },
    NotFound,
}

/// One endpoint's answer in `status()`: `None` status means the path does not exist (404).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Probe {
    pub path: &'static str,
    pub status: u16,
    /// The body as JSON when it is JSON, else as a string.
    pub body: serde_json::Value,
}

impl Probe {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// `/health`, `/ready` and (when the server has it) `/cluster`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerStatus {
    pub health: Probe,
    pub ready: Probe,
    pub cluster: Option<Probe>,
}
