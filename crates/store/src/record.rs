//! The on-disk form of one stored value: revision, optional expiry time, canonical JSON.

use crate::StoreError;
use hakv_api::{CanonicalJson, Revision};

const FORMAT_V1: u8 = 1;
const HEADER_LEN: usize = 1 + 8 + 8;

/// A key's current value as the state machine holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub revision: Revision,
    /// Unix time in milliseconds after which the key no longer exists.
    pub expires_at_ms: Option<u64>,
    pub value: CanonicalJson,
}

impl Record {
    /// Whether the key still exists at `now_ms`.
    pub fn is_live_at(&self, now_ms: u64) -> bool {
        self.expires_at_ms.is_none_or(|at| now_ms < at)
    }

    /// `[version][revision: u64 BE][expires_at_ms: u64 BE, 0 = never][value bytes]`.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let value = self.value.as_bytes();
        let mut out = Vec::with_capacity(HEADER_LEN + value.len());
        out.push(FORMAT_V1);
        out.extend_from_slice(&self.revision.0.to_be_bytes());
        out.extend_from_slice(&self.expires_at_ms.unwrap_or(0).to_be_bytes());
        out.extend_from_slice(value);
        out
    }

    pub(crate) fn decode(key: &str, bytes: &[u8]) -> Result<Record, StoreError> {
        let corrupt = |reason| StoreError::Corrupt {
            key: key.to_owned(),
            reason,
        };
        if bytes.len() < HEADER_LEN {
            return Err(corrupt("record shorter than its header"));
        }
        if bytes[0] != FORMAT_V1 {
            return Err(corrupt("unknown record format version"));
        }
        let revision = u64::from_be_bytes(bytes[1..9].try_into().expect("8 bytes"));
        let expires_at = u64::from_be_bytes(bytes[9..17].try_into().expect("8 bytes"));
        Ok(Record {
            revision: Revision(revision),
            expires_at_ms: (expires_at != 0).then_some(expires_at),
            value: CanonicalJson::from_canonical_bytes(bytes[HEADER_LEN..].to_vec()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hakv_api::to_canonical_json;

    #[test]
    fn records_round_trip() {
        let record = Record {
            revision: Revision(77),
            expires_at_ms: Some(1_700_000_000_000),
            value: to_canonical_json(&serde_json::json!({"a": [1, 2]})),
        };
        assert_eq!(Record::decode("k", &record.encode()).unwrap(), record);
        let forever = Record {
            expires_at_ms: None,
            ..record
        };
        assert_eq!(Record::decode("k", &forever.encode()).unwrap(), forever);
    }

    #[test]
    fn garbage_is_reported_as_corrupt() {
        assert!(matches!(
            Record::decode("k", b"\x01abc"),
            Err(StoreError::Corrupt { .. })
        ));
        assert!(matches!(
            Record::decode("k", &[9u8; 20]),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
