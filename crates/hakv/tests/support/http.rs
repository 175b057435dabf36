//! A minimal blocking HTTP/1.1 client over one keep-alive connection. It exists so tests can
//! assert exact bytes and send deliberately broken requests.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

pub struct Http {
    addr: SocketAddr,
    reader: BufReader<TcpStream>,
}

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The revision in the `ETag` header.
    pub fn revision(&self) -> u64 {
        let tag = self
            .header("etag")
            .unwrap_or_else(|| panic!("no ETag in {self:?}"));
        tag.trim_matches('"').parse().expect("numeric ETag")
    }

    /// The `code` field of an error body.
    pub fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or_default().to_string()
    }
}

impl Http {
    pub fn connect(addr: SocketAddr) -> std::io::Result<Http> {
        Self::connect_with_timeout(addr, Duration::from_secs(30))
    }

    /// A connection whose reads give up after `timeout` (an unanswered request is then an
    /// error: its outcome is unknown).
    pub fn connect_with_timeout(addr: SocketAddr, timeout: Duration) -> std::io::Result<Http> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        Ok(Http {
            addr,
            reader: BufReader::new(stream),
        })
    }

    pub fn get(&mut self, path: &str) -> std::io::Result<Reply> {
        self.request("GET", path, &[], None)
    }

    /// A JSON write (`POST`/`PUT`) with `body` as the request body.
    pub fn send_json(
        &mut self,
        method: &str,
        path: &str,
        body: &str,
        headers: &[(&str, &str)],
    ) -> std::io::Result<Reply> {
        let mut all = vec![("Content-Type", "application/json")];
        all.extend_from_slice(headers);
        self.request(method, path, &all, Some(body.as_bytes()))
    }

    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> std::io::Result<Reply> {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.addr);
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if let Some(body) = body {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        // Head and body in one write, as real clients send a small request: written apart,
        // the body can arrive after a server that answered from the head alone (a 405, a 401)
        // has closed the connection, and the peer's reset then discards the answer unread.
        let mut request = head.into_bytes();
        request.extend_from_slice(body.unwrap_or_default());
        self.reader.get_mut().write_all(&request)?;
        self.read_reply(method == "HEAD")
    }

    /// Sends raw bytes as they are (for malformed requests), then reads one reply.
    pub fn raw(&mut self, bytes: &[u8]) -> std::io::Result<Reply> {
        self.reader.get_mut().write_all(bytes)?;
        self.read_reply(false)
    }

    pub fn stream(&mut self) -> &mut TcpStream {
        self.reader.get_mut()
    }

    pub fn read_reply(&mut self, head_only: bool) -> std::io::Result<Reply> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            let trimmed = line.trim_end();
            if trimmed.is_empty() {
                break;
            }
            let (name, value) = trimmed.split_once(':').unwrap_or((trimmed, ""));
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
        let mut reply = Reply {
            status,
            headers,
            body: Vec::new(),
        };
        if head_only {
            return Ok(reply);
        }
        if reply
            .header("transfer-encoding")
            .is_some_and(|v| v.contains("chunked"))
        {
            reply.body = self.read_chunked()?;
        } else if let Some(len) = reply
            .header("content-length")
            .and_then(|v| v.parse::<usize>().ok())
        {
            let mut body = vec![0; len];
            self.reader.read_exact(&mut body)?;
            reply.body = body;
        }
        Ok(reply)
    }

    fn read_chunked(&mut self) -> std::io::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let mut size = String::new();
            self.reader.read_line(&mut size)?;
            let size = usize::from_str_radix(size.trim(), 16).map_err(std::io::Error::other)?;
            let mut chunk = vec![0; size + 2];
            self.reader.read_exact(&mut chunk)?;
            if size == 0 {
                return Ok(body);
            }
            body.extend_from_slice(&chunk[..size]);
        }
    }
}
