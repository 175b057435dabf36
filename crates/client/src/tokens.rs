//! Token management (`/auth/tokens`): create, list, revoke. The client must carry an admin
//! token (`Client::with_token`).

use crate::ClientError;
use crate::client::{Client, parse_json, status_error};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use serde_json::{Value, json};

/// One grant of a new token: a role (`read`, `write`, `admin`) on a key prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantSpec {
    pub role: String,
    pub prefix: String,
}

impl std::str::FromStr for GrantSpec {
    type Err = String;

    /// `ROLE:PREFIX` (`read:app/`, `write:`), or `admin`.
    fn from_str(text: &str) -> Result<GrantSpec, String> {
        let (role, prefix) = text.split_once(':').unwrap_or((text, ""));
        match role {
            "read" | "write" | "admin" => Ok(GrantSpec {
                role: role.into(),
                prefix: prefix.into(),
            }),
            _ => Err(format!(
                "{text:?}: expected ROLE:PREFIX with ROLE read, write or admin"
            )),
        }
    }
}

impl Client {
    /// Creates a token; the answer (`id`, `name`, `grants`, `token`) is the only time the
    /// token itself is shown.
    pub async fn create_token(&self, name: &str, grants: &[GrantSpec]) -> Result<Value, ClientError> {
        let grants: Vec<Value> = grants
            .iter()
            .map(|g| json!({"role": g.role, "prefix": g.prefix}))
            .collect();
        let body = json!({"name": name, "grants": grants}).to_string();
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let answer = self
            .send(Method::POST, "/auth/tokens", headers, Some(Bytes::from(body)))
            .await?;
        match answer.status {
            StatusCode::CREATED => parse_json(&answer.body),
            _ => Err(status_error(&answer)),
        }
    }

    /// Every token: `{"tokens": [{"id", "name", "grants", "created_ms"}, …]}`.
    pub async fn list_tokens(&self) -> Result<Value, ClientError> {
        let answer = self
            .send(Method::GET, "/auth/tokens", HeaderMap::new(), None)
            .await?;
        match answer.status {
            StatusCode::OK => parse_json(&answer.body),
            _ => Err(status_error(&answer)),
        }
    }

    /// Revokes token `id` on every member (once each has applied it).
    pub async fn revoke_token(&self, id: &str) -> Result<(), ClientError> {
        let path = format!("/auth/tokens/{}", hakv_api::query_value(id));
        let answer = self.send(Method::DELETE, &path, HeaderMap::new(), None).await?;
        match answer.status {
            StatusCode::OK => Ok(()),
            _ => Err(status_error(&answer)),
        }
    }
}
