//! The expiry index: `expires_at_ms (BE) ‖ key` → revision, ordered by time so that the keys
//! due for removal are a prefix of the keyspace.

use crate::StoreError;
use fjall::Keyspace;
use hakv_api::Revision;

pub(crate) fn index_key(expires_at_ms: u64, key: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + key.len());
    out.extend_from_slice(&expires_at_ms.to_be_bytes());
    out.extend_from_slice(key.as_bytes());
    out
}

/// The earliest expiry time in the index, if any key has one.
pub(crate) fn next(index: &Keyspace) -> Result<Option<u64>, StoreError> {
    let Some(guard) = index.first_key_value() else {
        return Ok(None);
    };
    let entry = guard.key()?;
    Ok(entry
        .get(..8)
        .map(|at| u64::from_be_bytes(at.try_into().expect("8 bytes"))))
}

pub(crate) fn due(
    index: &Keyspace,
    now_ms: u64,
    limit: usize,
) -> Result<Vec<(String, Revision)>, StoreError> {
    let mut out = Vec::new();
    for guard in index.range(..index_key(now_ms.saturating_add(1), "")) {
        let (entry, revision) = guard.into_inner()?;
        let corrupt = |reason| StoreError::Corrupt {
            key: "expiry index".into(),
            reason,
        };
        if entry.len() < 8 || revision.len() != 8 {
            return Err(corrupt("index entry too short"));
        }
        let at = u64::from_be_bytes(entry[..8].try_into().expect("8 bytes"));
        if at > now_ms {
            break;
        }
        let key = String::from_utf8(entry[8..].to_vec()).map_err(|_| corrupt("key is not UTF-8"))?;
        out.push((
            key,
            Revision(u64::from_be_bytes(revision.as_ref().try_into().expect("8 bytes"))),
        ));
        if out.len() >= limit {
            break;
        }
    }
    Ok(out)
}
