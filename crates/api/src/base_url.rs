//! The `http[s]://host[:port][/base]` a person gives the client or `hakv bench`: checked in
//! one place, so both refuse the same mistakes with the same words.

use http::Uri;

/// A base URL split into what a connection needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    /// `https://`: the connection speaks TLS.
    pub tls: bool,
    /// Without IPv6 brackets.
    pub host: String,
    /// 80 (443 with https) when the URL names none.
    pub port: u16,
    /// The path under which the API lives, without a trailing `/` (usually empty).
    pub base_path: String,
}

/// Parses `url`, or says in a few words what is wrong with it.
pub fn parse_base_url(url: &str) -> Result<BaseUrl, &'static str> {
    let uri: Uri = url.parse().map_err(|_| "not a URL")?;
    let tls = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        Some(_) => return Err("only http:// and https:// are supported"),
        None => return Err("give a scheme, e.g. http://127.0.0.1:7379"),
    };
    let host = uri.host().ok_or("no host")?;
    if uri.query().is_some() {
        return Err("a query string is not allowed");
    }
    Ok(BaseUrl {
        tls,
        host: host.trim_start_matches('[').trim_end_matches(']').to_string(),
        port: uri.port_u16().unwrap_or(if tls { 443 } else { 80 }),
        base_path: uri.path().trim_end_matches('/').to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_split_and_mistakes_are_named() {
        assert_eq!(
            parse_base_url("http://127.0.0.1:7379"),
            Ok(BaseUrl {
                tls: false,
                host: "127.0.0.1".into(),
                port: 7379,
                base_path: String::new()
            })
        );
        assert_eq!(parse_base_url("http://example.com/kv/").unwrap().base_path, "/kv");
        assert_eq!(parse_base_url("http://example.com").unwrap().port, 80);
        assert_eq!(parse_base_url("http://[::1]:9/").unwrap().host, "::1");
        let secure = parse_base_url("https://example.com").unwrap();
        assert!(secure.tls && secure.port == 443);
        assert_eq!(
            parse_base_url("ftp://example.com"),
            Err("only http:// and https:// are supported")
        );
        assert_eq!(
            parse_base_url("127.0.0.1:7379"),
            Err("give a scheme, e.g. http://127.0.0.1:7379")
        );
        assert_eq!(
            parse_base_url("http://h/?x=1"),
            Err("a query string is not allowed")
        );
        assert_eq!(parse_base_url("http://"), Err("not a URL"));
    }
}
