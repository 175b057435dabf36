//! Whole numbers in JSON bodies, written as integers or as floats (`3600.0`: what Python's
//! `timedelta.total_seconds()` and JavaScript give, and what JSON Schema calls an integer).

/// A JSON number that is a whole number of at least 0, written as an integer or as a float.
pub fn whole_number(value: &serde_json::Value) -> Option<u64> {
    value.as_u64().or_else(|| {
        let float = value.as_f64()?;
        // `u64::MAX as f64` rounds up to 2^64, one past the largest u64: hence `..`, not `..=`.
        (float.fract() == 0.0 && (0.0..u64::MAX as f64).contains(&float)).then_some(float as u64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn whole_numbers_are_taken_as_integers_or_floats_and_nothing_else_is() {
        assert_eq!(whole_number(&json!(7)), Some(7));
        assert_eq!(whole_number(&json!(7.0)), Some(7));
        assert_eq!(whole_number(&json!(u64::MAX)), Some(u64::MAX));
        assert_eq!(whole_number(&json!(18446744073709551616.0)), None, "2^64");
        for not_whole in [
            json!(-1),
            json!(1.5),
            json!(-0.5),
            json!(1e300),
            json!("5"),
            json!(null),
        ] {
            assert_eq!(whole_number(&not_whole), None, "{not_whole}");
        }
    }
}
