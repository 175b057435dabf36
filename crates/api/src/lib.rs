//! Wire types shared by the server, the client and the balancer: revisions, error codes,
//! request and response bodies, the key codec of URL paths, and the seed-compatible JSON
//! encoding.

mod address;
mod base_url;
mod canonical_json;
mod console_asset;
mod error_code;
mod head_errors;
mod json_number;
mod key_path;
pub mod request_id;
mod revision;
mod secret;
mod text_position;
pub mod units;
mod wire;

pub use address::{peer_addr, resolve_addr};
pub use base_url::{BaseUrl, parse_base_url};
pub use canonical_json::{CanonicalJson, to_canonical_json};
pub use console_asset::console_asset_headers;
pub use error_code::ErrorCode;
pub use head_errors::JsonHeadErrors;
pub use json_number::whole_number;
pub use key_path::{KeyError, data_path, decode_key, query_value};
pub use request_id::{REQUEST_ID, RequestIds};
pub use revision::Revision;
pub use secret::{bearer_matches, bearer_token, same_secret};
pub use text_position::{error_at, line_and_column};
pub use wire::{DELETE_MESSAGE, ErrorBody, SET_MESSAGE, ScanItem, ScanPage, WriteBody};

/// Longest key accepted, in bytes of UTF-8 after percent-decoding.
pub const MAX_KEY_BYTES: usize = 1024;
