//! Property tests of what the balancer parses and rewrites: hop-by-hop headers (whatever the
//! request carries), backend specs, configuration files, and the key it hashes. Each yields
//! what was meant or a named error, never a panic; `bench/fuzz.sh` runs them for longer.

use hakv_balancer::config::BalancerConfig;
use hakv_balancer::headers::strip_hop_by_hop;
use hakv_balancer::{BackendSpec, proxy::key_of};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;

const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
    "transfer-encoding",
];

fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(HOP_BY_HOP.to_vec()).prop_map(String::from),
        "x-[a-z]{1,6}",
        Just("authorization".to_string()),
        Just("content-type".to_string()),
    ]
}

proptest! {
    /// After stripping, no hop-by-hop header is left, nor any header that a `Connection`
    /// header names (in any of them), and every other header is left as it was.
    #[test]
    fn only_hop_by_hop_headers_are_removed(
        headers in prop::collection::vec((header_name(), "[a-z0-9 ,-]{0,20}"), 0..12),
        connection in prop::collection::vec(prop::collection::vec(header_name(), 0..3), 0..3),
    ) {
        let mut map = HeaderMap::new();
        for (name, value) in &headers {
            map.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_str(value).unwrap());
        }
        for names in &connection {
            map.append(http::header::CONNECTION, HeaderValue::from_str(&names.join(", ")).unwrap());
        }
        let named: Vec<&String> = connection.iter().flatten().collect();
        let before = map.clone();
        strip_hop_by_hop(&mut map);
        for name in before.keys() {
            let gone = HOP_BY_HOP.contains(&name.as_str()) || named.iter().any(|n| n.as_str() == name.as_str());
            if gone {
                prop_assert!(!map.contains_key(name), "{} survived", name);
            } else {
                let kept: Vec<_> = map.get_all(name).iter().collect();
                let had: Vec<_> = before.get_all(name).iter().collect();
                prop_assert_eq!(kept, had);
            }
        }
    }

    /// Backend specs: parsed or refused, never a panic; a parsed one prints back to itself.
    #[test]
    fn backend_specs_parse_or_are_refused(text in "\\PC{0,40}|[a-z0-9.:=]{0,30}") {
        if let Ok(spec) = text.parse::<BackendSpec>() {
            let again: BackendSpec = spec.to_string().parse().unwrap();
            prop_assert_eq!(again, spec);
        }
    }

    /// Any configuration file: a configuration or an error naming what is wrong.
    #[test]
    fn config_files_parse_or_are_refused(junk in "\\PC{0,80}", key in "[a-z_.]{0,20}") {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), format!("{key} = {junk}\nbackends = [\"127.0.0.1:1\"]\n")).unwrap();
        let _ = BalancerConfig::from_file(file.path());
    }

    /// The key hashed for key-hash is the key the server decodes, whenever it decodes one.
    #[test]
    fn the_hashed_key_is_the_servers_key(key in "\\PC{1,60}") {
        let path = hakv_api::data_path(&key);
        let hashed = key_of(&path).unwrap();
        prop_assert_eq!(&*hashed, key.as_bytes());
    }
}
