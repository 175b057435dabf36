//! Client authentication and authorization: bearer tokens whose grants give a role (read,
//! write, admin) on a key prefix, in the spirit of Consul's ACLs and etcd's RBAC.
//!
//! Authentication is on when the node has a bootstrap admin token (`--admin-token`). Tokens
//! are records of the replicated store under the reserved prefix [`TOKENS_PREFIX`], written
//! through the ordinary write path: every member agrees on them, they survive restarts and
//! are in snapshots and backups, and a revocation takes effect on each member as soon as it
//! has applied it. A record holds a SHA-256 of the token's secret, never the secret; secrets
//! are random, so a fast hash is enough (argon2 and the like are for guessable passwords).
//! Every comparison of secrets is in constant time.

mod grant;
mod token;

pub use grant::Need;
pub use token::{NewToken, TOKENS_PREFIX, TokenRecord, id_of, is_reserved};

use crate::node::Node;
use http::HeaderMap;

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("this request needs a token: Authorization: Bearer <token>")]
    Missing,
    #[error("the token is not valid (unknown, revoked or mistyped)")]
    Invalid,
    #[error("the token does not grant {0}")]
    Forbidden(String),
}

impl AuthError {
    fn reason(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing",
            AuthError::Invalid => "invalid",
            AuthError::Forbidden(_) => "forbidden",
        }
    }
}

/// Checks that the request's bearer token allows `need`; always true while authentication is
/// off. Every refusal is counted in `hakv_auth_denied_total{reason}`.
pub fn authorize(node: &Node, headers: &HeaderMap, need: Need<'_>) -> Result<(), AuthError> {
    let Some(admin) = node.config.admin_token.as_deref() else {
        return Ok(());
    };
    let outcome = check(node, admin, headers, need);
    if let Err(e) = &outcome {
        metrics::counter!("hakv_auth_denied_total", "reason" => e.reason()).increment(1);
    }
    outcome
}

fn check(node: &Node, admin: &str, headers: &HeaderMap, need: Need<'_>) -> Result<(), AuthError> {
    let presented = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|h| hakv_api::bearer_token(h.as_bytes()))
        .ok_or(AuthError::Missing)?;
    if hakv_api::same_secret(presented, admin.as_bytes()) {
        return Ok(());
    }
    let (id, secret) = token::split(presented).ok_or(AuthError::Invalid)?;
    let record = token::load(node, id).ok_or(AuthError::Invalid)?;
    if !record.secret_matches(secret) {
        return Err(AuthError::Invalid);
    }
    if record.grants.iter().any(|grant| grant.allows(&need)) {
        Ok(())
    } else {
        Err(AuthError::Forbidden(need.to_string()))
    }
}
