//! Property tests of everything a node parses from a client or a file: write bodies, query
//! strings, scan cursors and configuration files. Each either yields what was meant or a named
//! error, never a panic; `bench/fuzz.sh` runs the same properties for many more cases.

use crate::config::ServeConfig;
use crate::routes::query::{KeyParams, ScanParams, decode_cursor, encode_cursor};
use crate::write_body::parse_write_body;
use proptest::prelude::*;
use serde_json::Value;

/// Any JSON value: scalars, and arrays and objects of them a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,20}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map("\\PC{0,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    /// Whatever JSON value is written comes back in canonical form, as one value.
    #[test]
    fn any_value_is_accepted_in_canonical_form(value in json_value()) {
        let body = serde_json::to_vec(&serde_json::json!({ "value": value })).unwrap();
        let write = parse_write_body(&body, u64::MAX).unwrap();
        prop_assert_eq!(write.value, hakv_api::to_canonical_json(&value));
    }

    /// Arbitrary bytes as a write body: a value or a named error, never a panic.
    #[test]
    fn any_body_parses_or_is_refused(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_write_body(&bytes, 1 << 20);
    }

    /// Arbitrary query strings: parameters or a named error.
    #[test]
    fn any_query_parses_or_is_refused(query in "[a-z=&%0-9+_.~-]{0,80}|\\PC{0,80}") {
        let _ = KeyParams::parse(Some(&query));
        if let Ok(params) = ScanParams::parse(Some(&query)) {
            prop_assert!(params.limit.is_none_or(|l| (1..=ScanParams::MAX_LIMIT).contains(&l)));
        }
    }

    /// A cursor handed out decodes to its key; anything else decodes to a key that encodes
    /// back to it, or is refused.
    #[test]
    fn cursors_round_trip_and_nothing_else_slips_in(key in "\\PC{0,64}", other in "\\PC{0,32}") {
        prop_assert_eq!(decode_cursor(&encode_cursor(&key)).unwrap(), key);
        if let Ok(decoded) = decode_cursor(&other) {
            prop_assert_eq!(encode_cursor(&decoded), other.to_ascii_lowercase());
        }
    }

    /// Any configuration file: a configuration or an error, and an error never quotes the
    /// cluster token (the line that holds it may be the one that is wrong).
    #[test]
    fn config_files_never_leak_the_token(junk in "\\PC{0,60}", quote in prop::bool::ANY) {
        let secret = "s3cret-token-never-shown";
        let text = if quote {
            format!("cluster_token = \"{secret}\" {junk}\nlisten = 7\n")
        } else {
            format!("{junk}\ncluster_token = \"{secret}\n")
        };
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), &text).unwrap();
        if let Err(e) = ServeConfig::from_file(file.path()) {
            prop_assert!(!e.to_string().contains(secret), "{}", e);
        }
    }
}

/// Found by `any_value_is_accepted_in_canonical_form`: serde_json's default float parsing
/// rounded some long mantissas to a neighbouring float, so a stored value differed from the
/// one written in its last bit (its `float_roundtrip` feature is on since).
#[test]
fn floats_are_stored_exactly_as_written() {
    for text in [
        "1.3183430815982889e228",
        "2.2250738585072014e-308",
        "0.1",
        "1e+21",
    ] {
        let body = format!("{{\"value\": [{text}]}}");
        let stored = parse_write_body(body.as_bytes(), 1 << 20).unwrap().value;
        let written: f64 = text.parse().unwrap();
        let read: Vec<f64> = serde_json::from_slice(stored.as_bytes()).unwrap();
        assert_eq!(read[0].to_bits(), written.to_bits(), "{text} became {stored:?}");
    }
}
