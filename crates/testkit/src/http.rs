//! Turning a hakv HTTP answer (status, `ETag`, body) into an [`OpResult`], without tying the
//! crate to an HTTP library.
//!
//! The rule that matters: a write is `Failed` only when hakv promises nothing was applied.
//! Calling a write failed that was in fact applied makes the checker report a violation that
//! is not there; calling it unknown only makes the check a little weaker. So:
//!
//! | answer | read | write / delete |
//! |---|---|---|
//! | 200/201 with `ETag` | `Found` (value from `data`) | `Ok` (revision from `ETag`) |
//! | 404 `key_not_found` | `NotFound` | delete: `NotFound` |
//! | 412 | — | `PreconditionFailed` (`current_revision` from the body) |
//! | 503 or 429 `overloaded`, 507 `disk_full` | `Failed` | `Failed`: refused before being queued |
//! | any other 4xx | `Failed` | `Failed`: refused while parsing the request |
//! | any other 5xx (`unavailable`, 504 `timeout`, 502 …) | `Failed` | `Unknown` |
//! | no answer (timeout, reset) | use `OpResult::Unknown` | use `OpResult::Unknown` |
//!
//! Why 503 `unavailable` is unknown for writes: in a cluster it also means "the leader went
//! away" or "the node is shutting down", which can happen after the entry was appended to
//! the Raft log; that entry may still commit under the next leader. `504 timeout` is unknown
//! by the API's own definition, and a 502 from a proxy may come after the backend got the
//! request. A read has no effect, so any failed read is simply `Failed`.
//!
//! Caveat: record what one request did. A client or balancer that retries a write behind the
//! test's back (a retried PUT applied twice, or a 503 `overloaded` answering the retry of an
//! attempt that was applied) produces answers this mapping cannot interpret correctly.

use crate::op::{Op, OpResult};
use serde_json::Value;
use std::fmt;

/// The server answered something its API never answers to this request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAnswerError {
    pub status: u16,
    pub reason: String,
}

impl fmt::Display for HttpAnswerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "malformed hakv answer (status {}): {}",
            self.status, self.reason
        )
    }
}

impl std::error::Error for HttpAnswerError {}

impl OpResult {
    /// The result of `op` from hakv's answer: status code, `ETag` header value if any, and
    /// the body bytes (see the module docs for the mapping).
    ///
    /// # Panics
    /// If the answer breaks the API (e.g. a 200 without an `ETag`): that is a server bug the
    /// test should stop at. Use [`OpResult::try_from_http`] to handle it yourself.
    pub fn from_http(op: &Op, status: u16, etag: Option<&str>, body: &[u8]) -> OpResult {
        OpResult::try_from_http(op, status, etag, body).unwrap_or_else(|e| panic!("{e} for {op}"))
    }

    pub fn try_from_http(
        op: &Op,
        status: u16,
        etag: Option<&str>,
        body: &[u8],
    ) -> Result<OpResult, HttpAnswerError> {
        let answer = Answer { status, etag, body };
        match op {
            Op::Get => answer.read(),
            Op::Put { .. } | Op::PutIf { .. } | Op::Delete { .. } => {
                answer.write(matches!(op, Op::Delete { .. }))
            }
        }
    }
}

struct Answer<'a> {
    status: u16,
    etag: Option<&'a str>,
    body: &'a [u8],
}

impl Answer<'_> {
    fn read(&self) -> Result<OpResult, HttpAnswerError> {
        match self.status {
            200 => {
                let revision = self.revision()?;
                let value = self
                    .json()
                    .and_then(|mut body| body.get_mut("data").map(Value::take))
                    .ok_or_else(|| self.error("a 200 read without a `data` field"))?;
                Ok(OpResult::Found { value, revision })
            }
            404 if self.code().as_deref() == Some("key_not_found") => Ok(OpResult::NotFound),
            400..=599 => Ok(OpResult::Failed),
            _ => Err(self.error("unexpected status for a read")),
        }
    }

    fn write(&self, is_delete: bool) -> Result<OpResult, HttpAnswerError> {
        let code = self.code();
        match (self.status, code.as_deref()) {
            (200 | 201, _) => Ok(OpResult::Ok {
                revision: self.revision()?,
            }),
            (404, Some("key_not_found")) if is_delete => Ok(OpResult::NotFound),
            (412, _) => {
                let current = self
                    .json()
                    .and_then(|body| body.get("current_revision").cloned())
                    .ok_or_else(|| self.error("a 412 without `current_revision`"))?;
                match current {
                    Value::Null => Ok(OpResult::PreconditionFailed { current: None }),
                    Value::Number(n) if n.is_u64() => {
                        Ok(OpResult::PreconditionFailed { current: n.as_u64() })
                    }
                    _ => Err(self.error("`current_revision` is neither a revision nor null")),
                }
            }
            (429 | 503, Some("overloaded")) | (507, Some("disk_full")) => Ok(OpResult::Failed),
            (400..=499, _) => Ok(OpResult::Failed),
            (500..=599, _) => Ok(OpResult::Unknown),
            _ => Err(self.error("unexpected status for a write")),
        }
    }

    fn json(&self) -> Option<Value> {
        serde_json::from_slice(self.body).ok()
    }

    fn code(&self) -> Option<String> {
        Some(self.json()?.get("code")?.as_str()?.to_owned())
    }

    fn revision(&self) -> Result<u64, HttpAnswerError> {
        let etag = self.etag.ok_or_else(|| self.error("a success without an ETag"))?;
        parse_etag(etag).ok_or_else(|| self.error(&format!("ETag {etag:?} is not a revision")))
    }

    fn error(&self, reason: &str) -> HttpAnswerError {
        HttpAnswerError {
            status: self.status,
            reason: reason.to_owned(),
        }
    }
}

/// `"42"`, `W/"42"` or a bare `42`: the server's own parser, so the two never disagree.
fn parse_etag(tag: &str) -> Option<u64> {
    hakv_api::Revision::parse_etag(tag).map(|revision| revision.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::{Condition, DeleteCondition};
    use serde_json::json;

    fn answer(op: &Op, status: u16, etag: Option<&str>, body: Value) -> OpResult {
        OpResult::from_http(op, status, etag, body.to_string().as_bytes())
    }

    fn error(code: &str) -> Value {
        json!({"error": "for people", "code": code})
    }

    #[test]
    fn reads_map_found_not_found_and_failures() {
        let found = answer(&Op::Get, 200, Some("\"12\""), json!({"data": {"a": [1]}}));
        assert_eq!(
            found,
            OpResult::Found {
                value: json!({"a": [1]}),
                revision: 12
            }
        );
        assert_eq!(
            answer(&Op::Get, 404, None, error("key_not_found")),
            OpResult::NotFound
        );
        assert_eq!(
            answer(&Op::Get, 404, None, error("route_not_found")),
            OpResult::Failed
        );
        assert_eq!(answer(&Op::Get, 504, None, error("timeout")), OpResult::Failed);
    }

    #[test]
    fn writes_are_failed_only_when_nothing_was_applied() {
        let put = Op::Put { value: json!(1) };
        let created = json!({"message": "Data set successfully"});
        assert_eq!(
            answer(&put, 201, Some("\"7\""), created),
            OpResult::Ok { revision: 7 }
        );
        assert_eq!(answer(&put, 503, None, error("overloaded")), OpResult::Failed);
        assert_eq!(answer(&put, 429, None, error("overloaded")), OpResult::Failed);
        assert_eq!(answer(&put, 507, None, error("disk_full")), OpResult::Failed);
        assert_eq!(answer(&put, 400, None, error("invalid_json")), OpResult::Failed);
        assert_eq!(answer(&put, 503, None, error("unavailable")), OpResult::Unknown);
        assert_eq!(answer(&put, 504, None, error("timeout")), OpResult::Unknown);
        assert_eq!(
            answer(&put, 502, None, error("backend_connection_failed")),
            OpResult::Unknown
        );
        assert_eq!(answer(&put, 500, None, json!(null)), OpResult::Unknown);
    }

    #[test]
    fn preconditions_and_deletes_carry_the_current_revision() {
        let cas = Op::PutIf {
            value: json!(2),
            condition: Condition::Revision(3),
        };
        let failed =
            |current| json!({"code": "precondition_failed", "error": "x", "current_revision": current});
        assert_eq!(
            answer(&cas, 412, Some("\"5\""), failed(json!(5))),
            OpResult::PreconditionFailed { current: Some(5) }
        );
        assert_eq!(
            answer(&cas, 412, None, failed(json!(null))),
            OpResult::PreconditionFailed { current: None }
        );
        let delete = Op::Delete {
            condition: DeleteCondition::Always,
        };
        assert_eq!(
            answer(&delete, 404, None, error("key_not_found")),
            OpResult::NotFound
        );
        assert_eq!(
            answer(&delete, 200, Some("W/\"9\""), json!({})),
            OpResult::Ok { revision: 9 }
        );
    }

    #[test]
    fn answers_that_break_the_api_are_errors() {
        let put = Op::Put { value: json!(1) };
        let no_etag = OpResult::try_from_http(&put, 201, None, b"{}");
        assert_eq!(no_etag.unwrap_err().status, 201);
        assert!(OpResult::try_from_http(&put, 201, Some("\"x\""), b"{}").is_err());
        assert!(OpResult::try_from_http(&Op::Get, 200, Some("\"1\""), b"{}").is_err());
        assert!(OpResult::try_from_http(&put, 412, None, b"{}").is_err());
        assert!(OpResult::try_from_http(&put, 302, None, b"").is_err());
    }
}
