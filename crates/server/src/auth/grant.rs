//! What a token may do: a role on every key under a prefix.

use serde::{Deserialize, Serialize};

/// Each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads and scans.
    Read,
    /// Reads, writes and deletes.
    Write,
    /// Everything, token management and backups included (the prefix then must be empty).
    Admin,
}

/// A role on the keys that start with `prefix` (empty: every key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    pub role: Role,
    #[serde(default)]
    pub prefix: String,
}

/// What a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need<'a> {
    /// Reading this key, or scanning under this prefix.
    Read(&'a str),
    /// Writing or deleting this key.
    Write(&'a str),
    /// Managing tokens, taking backups.
    Admin,
}

impl Grant {
    pub fn allows(&self, need: &Need<'_>) -> bool {
        match *need {
            Need::Read(key) => self.role >= Role::Read && key.starts_with(&self.prefix),
            Need::Write(key) => self.role >= Role::Write && key.starts_with(&self.prefix),
            Need::Admin => self.role == Role::Admin && self.prefix.is_empty(),
        }
    }
}

impl std::fmt::Display for Need<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Need::Read(key) => write!(f, "read on {key:?}"),
            Need::Write(key) => write!(f, "write on {key:?}"),
            Need::Admin => f.write_str("admin"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(role: Role, prefix: &str) -> Grant {
        Grant {
            role,
            prefix: prefix.into(),
        }
    }

    #[test]
    fn roles_include_the_lesser_ones_and_stop_at_their_prefix() {
        let read = grant(Role::Read, "app/");
        assert!(read.allows(&Need::Read("app/x")) && read.allows(&Need::Read("app/")));
        assert!(!read.allows(&Need::Read("other/x")) && !read.allows(&Need::Read("app")));
        assert!(!read.allows(&Need::Write("app/x")) && !read.allows(&Need::Admin));
        let write = grant(Role::Write, "app/");
        assert!(write.allows(&Need::Read("app/x")) && write.allows(&Need::Write("app/x")));
        assert!(!write.allows(&Need::Write("b")) && !write.allows(&Need::Admin));
        assert!(grant(Role::Admin, "").allows(&Need::Admin));
        assert!(grant(Role::Admin, "").allows(&Need::Write("any")));
        assert!(!grant(Role::Admin, "app/").allows(&Need::Admin));
        // An empty prefix covers a scan of everything; a scan needs its prefix covered.
        assert!(grant(Role::Read, "").allows(&Need::Read("")));
        assert!(!grant(Role::Read, "a").allows(&Need::Read("")));
    }
}
