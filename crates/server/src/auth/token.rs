//! Token records in the store, and the secrets they are checked against.
//!
//! A token is presented as `<id>.<secret>` (16 and 64 hex digits). Its record lives at
//! `.hakv/tokens/<id>` as JSON: a name, the grants, when it was made, and the SHA-256 of the
//! secret.

use super::grant::{Grant, Role};
use crate::node::Node;
use serde::{Deserialize, Serialize};

/// Keys under this prefix are hakv's own; clients can neither read nor write them.
pub const RESERVED_PREFIX: &str = ".hakv/";
/// Where token records live.
pub const TOKENS_PREFIX: &str = ".hakv/tokens/";

/// Most grants on one token, and the longest name.
const MAX_GRANTS: usize = 32;
const MAX_NAME_BYTES: usize = 128;

pub fn is_reserved(key: &str) -> bool {
    key.starts_with(RESERVED_PREFIX)
}

/// A token as stored (no secret in it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub name: String,
    pub grants: Vec<Grant>,
    pub created_ms: u64,
    /// Hex SHA-256 of the secret.
    pub secret_sha256: String,
}

/// A token as listed: what it grants, not how to check it.
#[derive(Debug, Clone, Serialize)]
pub struct TokenView {
    pub id: String,
    pub name: String,
    pub grants: Vec<Grant>,
    pub created_ms: u64,
}

/// The body of `POST /auth/tokens`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    pub name: String,
    pub grants: Vec<Grant>,
}

impl NewToken {
    /// Refuses a name or grants that cannot be right, saying why.
    pub fn validate(&self) -> Result<(), &'static str> {
        if self.name.is_empty() || self.name.len() > MAX_NAME_BYTES || self.name.chars().any(char::is_control)
        {
            return Err("name must be 1 to 128 bytes without control characters");
        }
        if self.grants.is_empty() || self.grants.len() > MAX_GRANTS {
            return Err("grants must list 1 to 32 grants");
        }
        for grant in &self.grants {
            if grant.prefix.len() > hakv_api::MAX_KEY_BYTES {
                return Err("a grant's prefix is longer than a key may be");
            }
            if grant.role == Role::Admin && !grant.prefix.is_empty() {
                return Err("an admin grant covers every key: its prefix must be empty");
            }
        }
        Ok(())
    }

    /// The record to store and the token to hand out (once): `(id, token, record)`.
    pub fn issue(self, now_ms: u64) -> (String, String, TokenRecord) {
        use rand::RngCore;
        let mut bytes = [0u8; 40];
        rand::rng().fill_bytes(&mut bytes);
        let (id, secret) = (hex(&bytes[..8]), hex(&bytes[8..]));
        let record = TokenRecord {
            name: self.name,
            grants: self.grants,
            created_ms: now_ms,
            secret_sha256: sha256_hex(secret.as_bytes()),
        };
        let token = format!("{id}.{secret}");
        (id, token, record)
    }
}

impl TokenRecord {
    pub fn secret_matches(&self, secret: &[u8]) -> bool {
        hakv_api::same_secret(sha256_hex(secret).as_bytes(), self.secret_sha256.as_bytes())
    }

    pub fn view(self, id: String) -> TokenView {
        TokenView {
            id,
            name: self.name,
            grants: self.grants,
            created_ms: self.created_ms,
        }
    }
}

/// `<id>.<secret>` split, when the id is 16 hex digits.
pub(super) fn split(presented: &[u8]) -> Option<(&str, &[u8])> {
    let dot = presented.iter().position(|&b| b == b'.')?;
    let (id, secret) = (&presented[..dot], &presented[dot + 1..]);
    (id.len() == 16 && id.iter().all(u8::is_ascii_hexdigit))
        .then(|| (std::str::from_utf8(id).expect("hex digits"), secret))
}

/// The record of token `id`, as this member has applied it (`None`: no such token).
pub(super) fn load(node: &Node, id: &str) -> Option<TokenRecord> {
    #[derive(Deserialize)]
    struct Envelope {
        data: TokenRecord,
    }
    let value = node.read(&format!("{TOKENS_PREFIX}{id}")).ok()??;
    serde_json::from_slice::<Envelope>(&value.body)
        .ok()
        .map(|e| e.data)
}

/// The id in a record's key.
pub fn id_of(key: &str) -> Option<&str> {
    key.strip_prefix(TOKENS_PREFIX)
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_issued_token_matches_its_record_and_nothing_else() {
        let request = NewToken {
            name: "ci".into(),
            grants: vec![Grant {
                role: Role::Read,
                prefix: "app/".into(),
            }],
        };
        assert_eq!(request.validate(), Ok(()));
        let (id, token, record) = request.issue(1);
        let (split_id, secret) = split(token.as_bytes()).unwrap();
        assert_eq!(split_id, id);
        assert!(record.secret_matches(secret));
        assert!(!record.secret_matches(b"0000"));
        assert!(
            !record
                .secret_sha256
                .contains(std::str::from_utf8(secret).unwrap())
        );
        assert_eq!(split(b"not-a-token"), None);
        assert_eq!(split(b"abc.def"), None);
    }

    #[test]
    fn bad_requests_are_named() {
        let admin_on_prefix = NewToken {
            name: "x".into(),
            grants: vec![Grant {
                role: Role::Admin,
                prefix: "a".into(),
            }],
        };
        assert!(admin_on_prefix.validate().unwrap_err().contains("admin"));
        let nameless = NewToken {
            name: String::new(),
            grants: vec![],
        };
        assert!(nameless.validate().unwrap_err().contains("name"));
    }
}
