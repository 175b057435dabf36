//! Query strings of read requests: `consistency` everywhere, and paging for scans. Unknown
//! parameters are refused so that a typo does not silently change a read.

use crate::ApiError;
use serde::Deserialize;

/// How fresh a read must be. `Stale` answers from the local replica at once. On a single
/// node both are linearizable: every acknowledged write is applied before it is acknowledged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Consistency {
    #[default]
    Linearizable,
    Stale,
}

/// Parameters of `/data/{key}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyParams {
    #[serde(default)]
    pub consistency: Consistency,
}

impl KeyParams {
    pub fn parse(query: Option<&str>) -> Result<KeyParams, ApiError> {
        parse(query)
    }
}

/// Parameters of `GET /data`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanParams {
    #[serde(default)]
    pub prefix: String,
    #[serde(default, deserialize_with = "de_limit")]
    pub limit: Option<usize>,
    pub cursor: Option<String>,
    #[serde(default)]
    pub consistency: Consistency,
}

impl ScanParams {
    pub const DEFAULT_LIMIT: usize = 100;
    pub const MAX_LIMIT: usize = 1000;

    pub fn parse(query: Option<&str>) -> Result<ScanParams, ApiError> {
        let params: ScanParams = parse(query)?;
        if let Some(limit) = params.limit
            && !(1..=Self::MAX_LIMIT).contains(&limit)
        {
            return Err(ApiError::InvalidQuery(format!(
                "limit must be between 1 and {}",
                Self::MAX_LIMIT
            )));
        }
        Ok(params)
    }
}

/// `limit` as a whole number, with an error that names the parameter.
fn de_limit<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    let text = String::deserialize(d)?;
    text.parse().map(Some).map_err(|_| {
        serde::de::Error::custom(format!(
            "limit must be a whole number from 1 to {}, got `{}`",
            ScanParams::MAX_LIMIT,
            text.chars().take(40).collect::<String>()
        ))
    })
}

fn parse<T: for<'de> Deserialize<'de> + Default>(query: Option<&str>) -> Result<T, ApiError> {
    match query {
        None | Some("") => Ok(T::default()),
        Some(query) => serde_urlencoded::from_str(query).map_err(|e| ApiError::InvalidQuery(e.to_string())),
    }
}

/// Cursors are the last key of a page, hex-encoded: opaque to clients, safe in a URL.
pub fn encode_cursor(key: &str) -> String {
    key.bytes().map(|b| format!("{b:02x}")).collect()
}

pub fn decode_cursor(cursor: &str) -> Result<String, ApiError> {
    let invalid = || ApiError::InvalidQuery("cursor is not one this server handed out".into());
    if !cursor.len().is_multiple_of(2) {
        return Err(invalid());
    }
    let bytes = (0..cursor.len())
        .step_by(2)
        .map(|i| {
            // Two hex digits each (`from_str_radix` alone would take `+f`).
            let pair = cursor.get(i..i + 2)?;
            let digit = |c: u8| (c as char).to_digit(16);
            Some((digit(pair.as_bytes()[0])? * 16 + digit(pair.as_bytes()[1])?) as u8)
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(invalid)?;
    String::from_utf8(bytes).map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_parse_and_refuse_typos() {
        assert_eq!(
            KeyParams::parse(None).unwrap().consistency,
            Consistency::Linearizable
        );
        assert_eq!(
            KeyParams::parse(Some("consistency=stale")).unwrap().consistency,
            Consistency::Stale
        );
        assert!(KeyParams::parse(Some("consistency=eventual")).is_err());
        assert!(KeyParams::parse(Some("consistancy=stale")).is_err());
        let scan = ScanParams::parse(Some("prefix=a%2Fb&limit=5")).unwrap();
        assert_eq!((scan.prefix.as_str(), scan.limit), ("a/b", Some(5)));
        assert!(ScanParams::parse(Some("limit=0")).is_err());
        assert!(ScanParams::parse(Some("limit=1001")).is_err());
        match ScanParams::parse(Some("limit=x")) {
            Err(ApiError::InvalidQuery(message)) => assert!(message.contains("limit"), "{message}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn cursors_round_trip() {
        assert_eq!(decode_cursor(&encode_cursor("ké/y")).unwrap(), "ké/y");
        assert!(decode_cursor("abc").is_err());
        assert!(decode_cursor("zz").is_err());
        assert!(decode_cursor("ff").is_err());
    }
}
