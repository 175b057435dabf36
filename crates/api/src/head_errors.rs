//! JSON bodies for the answers hyper gives on its own to request heads it refuses (400, 414, 431).
//!
//! hyper answers a request head it cannot parse (400), whose URI is too long (414) or that
//! exceeds its buffer or header-count limits (431) itself, before any handler runs, with an
//! empty body. Every other error of hakv carries `{"code": ..., "error": ...}`, and a client
//! should not need a second way to read errors. [`JsonHeadErrors`] wraps a connection's IO and
//! replaces that one answer, as hyper writes it, with the same status and a JSON body. The
//! limits themselves stay hyper's: no request head is buffered beyond them.
//!
//! How hyper's answer is told from a handler's: it is a whole head with `content-length: 0`
//! and a 400, 414 or 431 status, and every answer of a handler with such a status has a body.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::rt::{Read, ReadBufCursor, Write};

use crate::{ErrorBody, ErrorCode};

/// A connection's IO whose hyper-made error answers get a JSON body (see the module docs).
pub struct JsonHeadErrors<I> {
    inner: I,
    /// The answer being written in place of hyper's, and how much of it is written.
    replacing: Option<Replacement>,
}

struct Replacement {
    bytes: Vec<u8>,
    written: usize,
    /// What hyper is told was written: the length of its own answer.
    reported: usize,
}

impl<I> JsonHeadErrors<I> {
    pub fn new(inner: I) -> Self {
        JsonHeadErrors {
            inner,
            replacing: None,
        }
    }
}

impl<I: Read + Unpin> Read for JsonHeadErrors<I> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: ReadBufCursor<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<I: Write + Unpin> Write for JsonHeadErrors<I> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.replacing.is_none() {
            match json_answer_for(buf) {
                Some(bytes) => {
                    this.replacing = Some(Replacement {
                        bytes,
                        written: 0,
                        reported: buf.len(),
                    })
                }
                None => return Pin::new(&mut this.inner).poll_write(cx, buf),
            }
        }
        let replacement = this.replacing.as_mut().expect("set above");
        // hyper calls again with the same bytes until it is told they are written.
        while replacement.written < replacement.bytes.len() {
            match Pin::new(&mut this.inner).poll_write(cx, &replacement.bytes[replacement.written..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => replacement.written += n,
                other => return other,
            }
        }
        let reported = replacement.reported;
        this.replacing = None;
        Poll::Ready(Ok(reported))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // hyper's own answer is one head with no body, so it is the first slice, alone.
        if let Some(first) = bufs.iter().find(|b| !b.is_empty())
            && (this.replacing.is_some() || json_answer_for(first).is_some())
        {
            return Pin::new(this).poll_write(cx, first);
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The JSON answer to put in place of `written`, when `written` is hyper's own empty-bodied
/// answer to a refused request head.
fn json_answer_for(written: &[u8]) -> Option<Vec<u8>> {
    let (code, message) = match written.get(..13)? {
        b"HTTP/1.1 400 " => (ErrorCode::MalformedRequest, "the request is not valid HTTP/1.1"),
        b"HTTP/1.1 414 " => (ErrorCode::UriTooLong, "the request's URI is too long"),
        b"HTTP/1.1 431 " => (
            ErrorCode::HeadersTooLarge,
            "the request's head (request line and headers) is too large, or has too many headers",
        ),
        _ => return None,
    };
    let head = written.strip_suffix(b"\r\n\r\n")?;
    let lines: Vec<&[u8]> = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .collect();
    // A whole head (nothing after its blank line) that says it has no body.
    if lines.iter().any(|l| l.is_empty())
        || !lines.iter().any(|l| l.eq_ignore_ascii_case(b"content-length: 0"))
    {
        return None;
    }
    let body = ErrorBody {
        code,
        error: message.to_string(),
        current_revision: None,
    };
    let mut body = serde_json::to_vec(&body).expect("error bodies serialize");
    body.push(b'\n');
    let mut answer = Vec::with_capacity(written.len() + body.len() + 64);
    for line in lines
        .iter()
        .filter(|l| !l.eq_ignore_ascii_case(b"content-length: 0"))
    {
        answer.extend_from_slice(line);
        answer.extend_from_slice(b"\r\n");
    }
    answer.extend_from_slice(b"content-type: application/json\r\n");
    answer.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
    answer.extend_from_slice(&body);
    Some(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(answer: &[u8]) -> (String, serde_json::Value) {
        let text = String::from_utf8(answer.to_vec()).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        (head.to_string(), serde_json::from_str(body).unwrap())
    }

    #[test]
    fn hypers_own_answers_get_a_json_body_with_the_same_status() {
        for (status, code) in [
            ("400 Bad Request", "malformed_request"),
            ("414 URI Too Long", "uri_too_long"),
            ("431 Request Header Fields Too Large", "headers_too_large"),
        ] {
            let hyper = format!(
                "HTTP/1.1 {status}\r\ncontent-length: 0\r\ndate: Sun, 06 Dec 2026 22:00:00 GMT\r\n\r\n"
            );
            let answer = json_answer_for(hyper.as_bytes()).expect("replaced");
            let (head, body) = split(&answer);
            assert!(head.starts_with(&format!("HTTP/1.1 {status}\r\n")), "{head}");
            assert!(head.contains("\r\ndate: Sun, 06 Dec 2026 22:00:00 GMT"), "{head}");
            assert!(head.contains("\r\ncontent-type: application/json"), "{head}");
            assert!(!head.contains("content-length: 0"), "{head}");
            let length: usize = head.split("content-length: ").nth(1).unwrap().parse().unwrap();
            assert_eq!(length, answer.len() - head.len() - 4);
            assert_eq!(body["code"], code);
        }
    }

    #[test]
    fn answers_with_a_body_or_another_status_pass_untouched() {
        for written in [
            // a handler's 400 and 414 carry their JSON body
            "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 30\r\n\r\n",
            "HTTP/1.1 414 URI Too Long\r\ncontent-length: 31\r\n\r\n{\"code\":\"key_too_long\"}",
            "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            // a head followed by more bytes is not hyper's lone answer
            "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
            "body bytes",
        ] {
            assert!(json_answer_for(written.as_bytes()).is_none(), "{written}");
        }
    }
}
