//! Keys and query values as they appear in URLs: the codec lives in `hakv_api`, shared with
//! the server and the balancer.

pub use hakv_api::{data_path, query_value};
