//! Sizes and durations in the TOML config file: numbers or strings with units, parsed by
//! `hakv_api::units` like the flags.

pub use hakv_api::units::{parse_bytes, parse_duration};
use serde::{Deserialize, Deserializer};
use std::time::Duration;

/// [`de_bytes`] for an optional size (absent: `None`, through `#[serde(default)]`).
pub fn de_opt_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    de_bytes(d).map(Some)
}

/// Deserializes a size given either as a number of bytes or as a string with a unit.
pub fn de_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Number(u64),
        Text(String),
    }
    match Size::deserialize(d)? {
        Size::Number(n) => Ok(n),
        Size::Text(t) => parse_bytes(&t).map_err(serde::de::Error::custom),
    }
}

/// Deserializes a duration given as a string with a unit (or a number of seconds).
pub fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Span {
        Seconds(f64),
        Text(String),
    }
    match Span::deserialize(d)? {
        Span::Seconds(s) => Duration::try_from_secs_f64(s).map_err(serde::de::Error::custom),
        Span::Text(t) => parse_duration(&t).map_err(serde::de::Error::custom),
    }
}
