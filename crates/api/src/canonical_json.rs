//! The canonical JSON encoding of stored values: what the seed's Flask `jsonify` produces in
//! production mode (sorted keys, compact separators, non-ASCII escaped as `\uXXXX`, Python's
//! float spelling), so a client of the seed program sees the same bytes from hakv.
//!
//! Values are encoded once, when written; reads splice the stored bytes into the response
//! without parsing them again.

use serde::Serialize;
use serde_json::ser::{CompactFormatter, Formatter};
use std::io::{self, Write};

/// JSON text in canonical form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CanonicalJson(Vec<u8>);

impl CanonicalJson {
    /// Wraps bytes that are already canonical JSON (as read back from storage).
    pub fn from_canonical_bytes(bytes: Vec<u8>) -> Self {
        CanonicalJson(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

/// Serialized as a JSON string of the canonical text (for the replicated log). The text is
/// always ASCII, because non-ASCII characters are escaped when it is made.
impl Serialize for CanonicalJson {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let text = std::str::from_utf8(&self.0).map_err(serde::ser::Error::custom)?;
        serializer.serialize_str(text)
    }
}

impl<'de> serde::Deserialize<'de> for CanonicalJson {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|text| CanonicalJson(text.into_bytes()))
    }
}

/// Encodes any serializable value canonically. Maps come out with sorted keys because
/// `serde_json::Value` keeps objects in a `BTreeMap` (the `preserve_order` feature is off).
pub fn to_canonical_json<T: Serialize + ?Sized>(value: &T) -> CanonicalJson {
    let mut out = Vec::with_capacity(64);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
    value
        .serialize(&mut ser)
        .expect("serializing into a Vec cannot fail for JSON values");
    CanonicalJson(out)
}

/// Compact output with Python's `ensure_ascii=True` string escaping and `repr(float)` numbers.
struct PythonFormatter;

impl Formatter for PythonFormatter {
    fn write_string_fragment<W: ?Sized + Write>(&mut self, w: &mut W, fragment: &str) -> io::Result<()> {
        let mut plain_start = 0;
        for (i, ch) in fragment.char_indices() {
            // Python escapes everything outside printable ASCII; serde_json already escaped
            // quotes, backslashes and control characters before handing us the fragment.
            if (' '..='~').contains(&ch) {
                continue;
            }
            w.write_all(&fragment.as_bytes()[plain_start..i])?;
            let mut units = [0u16; 2];
            for unit in ch.encode_utf16(&mut units) {
                write!(w, "\\u{unit:04x}")?;
            }
            plain_start = i + ch.len_utf8();
        }
        w.write_all(&fragment.as_bytes()[plain_start..])
    }

    fn write_f64<W: ?Sized + Write>(&mut self, w: &mut W, value: f64) -> io::Result<()> {
        w.write_all(python_float_repr(value).as_bytes())
    }

    fn write_f32<W: ?Sized + Write>(&mut self, w: &mut W, value: f32) -> io::Result<()> {
        self.write_f64(w, f64::from(value))
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        CompactFormatter.begin_object_key(w, first)
    }
}

/// Spells a finite float the way Python's `repr` does: the shortest round-tripping digits,
/// positional between 1e-4 and 1e16, otherwise `d.ddde+XX`.
fn python_float_repr(value: f64) -> String {
    // Rust's `{:e}` gives the shortest round-tripping digits, like Python's repr.
    let sci = format!("{value:e}");
    let (mantissa, exponent) = sci.split_once('e').expect("{:e} always has an exponent");
    let exponent: i32 = exponent.parse().expect("{:e} exponent is an integer");
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if (-4..16).contains(&exponent) {
        let point = exponent + 1; // digits before the decimal point
        if point <= 0 {
            format!("{sign}0.{}{digits}", "0".repeat((-point) as usize))
        } else if (point as usize) >= digits.len() {
            format!("{sign}{digits}{}.0", "0".repeat(point as usize - digits.len()))
        } else {
            let (int, frac) = digits.split_at(point as usize);
            format!("{sign}{int}.{frac}")
        }
    } else {
        let (first, rest) = digits.split_at(1);
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        format!("{sign}{first}{frac}e{exp_sign}{:02}", exponent.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn serde_round_trips_as_a_string() {
        let value = to_canonical_json(&json!({"k": ["é", 1.5, null]}));
        let wire = serde_json::to_string(&value).unwrap();
        assert_eq!(wire, r#""{\"k\":[\"\\u00e9\",1.5,null]}""#);
        assert_eq!(serde_json::from_str::<CanonicalJson>(&wire).unwrap(), value);
    }

    fn canon(v: serde_json::Value) -> String {
        String::from_utf8(to_canonical_json(&v).into_bytes()).unwrap()
    }

    #[test]
    fn matches_flask_jsonify_for_common_values() {
        assert_eq!(
            canon(json!({"b": 1, "a": [true, null, "x"]})),
            r#"{"a":[true,null,"x"],"b":1}"#
        );
        assert_eq!(canon(json!("hello world")), r#""hello world""#);
        assert_eq!(canon(json!("é/😀\u{7f}")), r#""\u00e9/\ud83d\ude00\u007f""#);
        assert_eq!(canon(json!("tab\tquote\"")), r#""tab\tquote\"""#);
        assert_eq!(canon(json!("\u{1f}")), r#""\u001f""#);
    }

    #[test]
    fn floats_are_spelled_like_python_repr() {
        for (value, python) in [
            (1.0, "1.0"),
            (1.5, "1.5"),
            (-0.0, "-0.0"),
            (100.0, "100.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.2345e100, "1.2345e+100"),
            (123.456, "123.456"),
            (0.1, "0.1"),
        ] {
            assert_eq!(python_float_repr(value), python, "{value}");
        }
    }
}
