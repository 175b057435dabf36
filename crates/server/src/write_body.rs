//! Reading a write request: content type, size limits, the `{"value", "ttl_seconds"}` body,
//! and the `If-Match` / `If-None-Match` preconditions.

use crate::ApiError;
use crate::request_body::read_body;
use axum::body::Body;
use hakv_api::{CanonicalJson, Revision, WriteBody, to_canonical_json};
use hakv_store::Condition;
use http::{HeaderMap, header};

/// Longest TTL accepted: ten years.
const MAX_TTL_SECONDS: u64 = 10 * 365 * 24 * 3600;

/// A validated write: the value in canonical form and its time to live.
pub struct WriteRequest {
    pub value: CanonicalJson,
    pub ttl_ms: Option<u64>,
}

pub fn require_json_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .ok_or(ApiError::UnsupportedContentType)?;
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json")) {
        Ok(())
    } else {
        Err(ApiError::UnsupportedContentType)
    }
}

/// Reads at most `max_body` bytes and validates them as a write body.
pub async fn read_write_body(body: Body, max_body: usize, max_value: u64) -> Result<WriteRequest, ApiError> {
    let bytes = read_body(body, max_body).await?;
    parse_write_body(&bytes, max_value)
}

pub fn parse_write_body(bytes: &[u8], max_value: u64) -> Result<WriteRequest, ApiError> {
    // serde would also accept a JSON array for a struct (`[v]`); the seed wants an object.
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| *b != b'{') && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok() {
        return Err(ApiError::MissingValue);
    }
    let body: WriteBody = serde_json::from_slice(bytes).map_err(|err| match err.classify() {
        // A field other than `value` and `ttl_seconds`: named, so a typo is found at once
        // (but a body without `value` answers as the seed program does).
        serde_json::error::Category::Data
            if err.to_string().starts_with("unknown field") && has_value_field(bytes) =>
        {
            ApiError::InvalidJson(err.to_string())
        }
        // `{"value": 1, "value": 2}`: which one was meant is unknown.
        serde_json::error::Category::Data if err.to_string().starts_with("duplicate field") => {
            ApiError::InvalidJson(err.to_string())
        }
        // Well-formed JSON of the wrong shape (an array, a string...): the value is missing.
        serde_json::error::Category::Data => ApiError::MissingValue,
        _ => ApiError::InvalidJson(err.to_string()),
    })?;
    let value = body.value.ok_or(ApiError::MissingValue)?;
    let value = to_canonical_json(&value);
    if value.as_bytes().len() as u64 > max_value {
        return Err(ApiError::ValueTooLarge {
            size: value.as_bytes().len(),
            limit: max_value,
        });
    }
    let ttl_ms = match body.ttl_seconds {
        None | Some(serde_json::Value::Null) => None,
        Some(ttl) => match hakv_api::whole_number(&ttl) {
            Some(seconds) if (1..=MAX_TTL_SECONDS).contains(&seconds) => Some(seconds * 1000),
            _ => return Err(ApiError::InvalidTtl { max: MAX_TTL_SECONDS }),
        },
    };
    Ok(WriteRequest { value, ttl_ms })
}

/// Whether `bytes` is a JSON object with a `value` field (read only on the error path).
fn has_value_field(bytes: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(bytes).is_ok_and(|v| v.get("value").is_some())
}

/// The precondition of a write or delete, from `If-Match` or `If-None-Match: *`.
pub fn condition_from_headers(headers: &HeaderMap) -> Result<Condition, ApiError> {
    let text = |name| -> Result<Option<&str>, ApiError> {
        headers
            .get(name)
            .map(|v| {
                v.to_str()
                    .map_err(|_| ApiError::InvalidPrecondition("the header is not ASCII"))
            })
            .transpose()
    };
    match (text(header::IF_MATCH)?, text(header::IF_NONE_MATCH)?) {
        (Some(_), Some(_)) => Err(ApiError::InvalidPrecondition(
            "send either If-Match or If-None-Match, not both",
        )),
        (Some(tag), None) if tag.trim() == "*" => Ok(Condition::Exists),
        // If-Match compares strongly (RFC 9110, 13.1.1): a weak tag matches nothing. No stored
        // key has revision 0, so the write fails its precondition (412) like any mismatch.
        (Some(tag), None) if tag.trim_start().starts_with("W/") => Revision::parse_etag(tag)
            .map(|_| Condition::Revision(Revision::ZERO))
            .ok_or(ApiError::InvalidPrecondition(
                "If-Match must be * or one revision like \"42\"",
            )),
        (Some(tag), None) => {
            Revision::parse_etag(tag)
                .map(Condition::Revision)
                .ok_or(ApiError::InvalidPrecondition(
                    "If-Match must be * or one revision like \"42\"",
                ))
        }
        (None, Some(tag)) if tag.trim() == "*" => Ok(Condition::Absent),
        (None, Some(_)) => Err(ApiError::InvalidPrecondition("If-None-Match on writes must be *")),
        (None, None) => Ok(Condition::Always),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_validated() {
        let ok = parse_write_body(br#"{"value": {"b": 1, "a": 2}, "ttl_seconds": 5}"#, 100).unwrap();
        assert_eq!(ok.value.as_bytes(), br#"{"a":2,"b":1}"#);
        assert_eq!(ok.ttl_ms, Some(5000));
        assert!(parse_write_body(br#"{"value": null}"#, 100).is_ok());
        assert!(matches!(
            parse_write_body(b"{", 100),
            Err(ApiError::InvalidJson(_))
        ));
        assert!(matches!(
            parse_write_body(b"[1]", 100),
            Err(ApiError::MissingValue)
        ));
        assert!(matches!(
            parse_write_body(br#"{"valu": 1}"#, 100),
            Err(ApiError::MissingValue)
        ));
        assert!(matches!(
            parse_write_body(br#"{"value": "xxxxxx"}"#, 5),
            Err(ApiError::ValueTooLarge { .. })
        ));
        assert!(matches!(
            parse_write_body(br#"{"value": 1, "value": 2}"#, 100),
            Err(ApiError::InvalidJson(_))
        ));
        let whole = parse_write_body(br#"{"value": 1, "ttl_seconds": 3600.0}"#, 100).unwrap();
        assert_eq!(whole.ttl_ms, Some(3_600_000), "a whole number written as a float");
        for ttl in ["0", "-1", "1.5", "0.0", "1e300", "\"5\"", "999999999999"] {
            let body = format!(r#"{{"value": 1, "ttl_seconds": {ttl}}}"#);
            assert!(
                matches!(
                    parse_write_body(body.as_bytes(), 100),
                    Err(ApiError::InvalidTtl { .. })
                ),
                "{ttl}"
            );
        }
    }

    #[test]
    fn unknown_body_fields_are_refused_by_name() {
        match parse_write_body(br#"{"value": 1, "ttl": 10}"#, 100) {
            Err(ApiError::InvalidJson(message)) => assert!(message.contains("`ttl`"), "{message}"),
            other => panic!("{:?}", other.map(|w| w.ttl_ms)),
        }
    }

    #[test]
    fn preconditions_parse() {
        let headers = |pairs: &[(&'static str, &str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, v.parse().unwrap());
            }
            h
        };
        assert_eq!(condition_from_headers(&headers(&[])).unwrap(), Condition::Always);
        assert_eq!(
            condition_from_headers(&headers(&[("if-match", "\"7\"")])).unwrap(),
            Condition::Revision(Revision(7))
        );
        assert_eq!(
            condition_from_headers(&headers(&[("if-match", "*")])).unwrap(),
            Condition::Exists
        );
        // A weak tag never satisfies If-Match: it becomes a condition no key meets.
        let weak = condition_from_headers(&headers(&[("if-match", "W/\"7\"")])).unwrap();
        assert_eq!(weak, Condition::Revision(Revision::ZERO));
        assert!(!weak.holds(Some(Revision(7))) && !weak.holds(None));
        assert_eq!(
            condition_from_headers(&headers(&[("if-none-match", "*")])).unwrap(),
            Condition::Absent
        );
        assert!(condition_from_headers(&headers(&[("if-match", "abc")])).is_err());
        assert!(condition_from_headers(&headers(&[("if-none-match", "\"3\"")])).is_err());
        assert!(condition_from_headers(&headers(&[("if-match", "1"), ("if-none-match", "*")])).is_err());
    }
}
