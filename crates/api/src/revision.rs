//! `Revision`: the cluster-wide, monotonically increasing number of a key's last change.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The revision of a change. Every mutation gets the next revision, so a larger revision
/// always means a later change. Revision 0 means "never written".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Revision(pub u64);

impl Revision {
    pub const ZERO: Revision = Revision(0);

    pub fn next(self) -> Revision {
        Revision(self.0 + 1)
    }

    /// The value of an `ETag` header: the revision as a strong entity tag, `"42"`.
    pub fn etag(self) -> String {
        format!("\"{}\"", self.0)
    }

    /// Parses one entity tag as sent in `If-Match`: `"42"`, `W/"42"` or a bare `42`.
    pub fn parse_etag(tag: &str) -> Option<Revision> {
        let tag = tag.trim();
        let tag = tag.strip_prefix("W/").unwrap_or(tag);
        let tag = tag
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .unwrap_or(tag);
        if tag.is_empty() || !tag.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        tag.parse().ok().map(Revision)
    }
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_round_trip_and_reject_garbage() {
        assert_eq!(Revision(42).etag(), "\"42\"");
        assert_eq!(Revision::parse_etag("\"42\""), Some(Revision(42)));
        assert_eq!(Revision::parse_etag("W/\"7\""), Some(Revision(7)));
        assert_eq!(Revision::parse_etag(" 9 "), Some(Revision(9)));
        assert_eq!(Revision::parse_etag("\"\""), None);
        assert_eq!(Revision::parse_etag("\"x1\""), None);
        assert_eq!(Revision::parse_etag("-1"), None);
        assert_eq!(Revision::parse_etag("99999999999999999999999"), None);
    }
}
