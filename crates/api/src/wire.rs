//! Request and response bodies of the HTTP API, as documented in `docs/api.md`.

use crate::{ErrorCode, Revision};
use serde::{Deserialize, Serialize};

/// The seed program's answer to a successful write; kept byte for byte.
pub const SET_MESSAGE: &str = "Data set successfully";
/// The answer to a successful delete.
pub const DELETE_MESSAGE: &str = "Data deleted successfully";

/// Body of `POST`/`PUT /data/{key}`. Unknown fields are refused (the seed program ignores
/// them, but then a misspelled `"ttl": 10` would leave a key that never expires, silently).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteBody {
    /// Required. `Option` so that a missing `value` is told apart from `null` (which is a
    /// value like any other).
    #[serde(default, deserialize_with = "present")]
    pub value: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<serde_json::Value>,
}

/// Deserializes a present field as `Some`, even when it is JSON `null`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(d).map(Some)
}

/// Every error body: `{"code": ..., "error": ...}` plus optional details.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub error: String,
    /// With `precondition_failed`: the key's current revision (`null` when it does not exist).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_revision: Option<Option<Revision>>,
}

/// One entry of a scan page.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScanItem {
    pub data: serde_json::Value,
    pub key: String,
    pub revision: Revision,
}

/// `GET /data?prefix=&limit=&cursor=`: one page of keys in order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScanPage {
    pub items: Vec<ScanItem>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_body_tells_missing_value_from_null() {
        let missing: WriteBody = serde_json::from_str(r#"{"ttl_seconds": 1}"#).unwrap();
        assert!(missing.value.is_none());
        assert!(serde_json::from_str::<WriteBody>(r#"{"value": 1, "ttl": 1}"#).is_err());
        let null: WriteBody = serde_json::from_str(r#"{"value": null}"#).unwrap();
        assert_eq!(null.value, Some(serde_json::Value::Null));
    }
}
