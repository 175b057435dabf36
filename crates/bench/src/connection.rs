//! One keep-alive HTTP/1.1 connection driven by hyper's low-level client: no pool, no locks,
//! so a request costs little more than its bytes on the wire.

use crate::target::Target;
use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{SendRequest, handshake};
use hyper_util::rt::TokioIo;
use std::time::Duration;
use tokio::net::TcpStream;

/// How a request failed without an HTTP answer, or with one that does not count as success.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorKind {
    /// The TCP connection was refused or could not be set up.
    Connect,
    /// Connecting took longer than the request timeout.
    ConnectTimeout,
    /// No complete answer within the timeout (the outcome of a write is unknown).
    Timeout,
    /// The connection broke while the request was in flight.
    Connection,
    /// The answer was not valid HTTP.
    Protocol,
    /// An HTTP answer whose status is not a success.
    Status(u16),
}

impl ErrorKind {
    /// Stable name for reports and JSON: `connect`, `timeout`, `status_503`, ….
    pub fn label(self) -> String {
        match self {
            ErrorKind::Connect => "connect".into(),
            ErrorKind::ConnectTimeout => "connect_timeout".into(),
            ErrorKind::Timeout => "timeout".into(),
            ErrorKind::Connection => "connection".into(),
            ErrorKind::Protocol => "protocol".into(),
            ErrorKind::Status(code) => format!("status_{code}"),
        }
    }

    /// `transport`, `4xx`, `5xx` or `other_status`.
    pub fn class(self) -> &'static str {
        match self {
            ErrorKind::Status(code) if (400..500).contains(&code) => "4xx",
            ErrorKind::Status(code) if (500..600).contains(&code) => "5xx",
            ErrorKind::Status(_) => "other_status",
            _ => "transport",
        }
    }
}

/// A connection that reconnects lazily after any failure.
pub struct Connection {
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Connection {
    /// A connection opened now, before a phase's clock starts (as wrk does), so that the first
    /// requests are not charged for connecting. One that fails or takes longer than `timeout`
    /// is left closed: the first request then connects, and its failure is counted.
    pub async fn open(target: &Target, timeout: Duration) -> Connection {
        let sender = tokio::time::timeout(timeout, connect(target))
            .await
            .ok()
            .and_then(Result::ok);
        Connection { sender }
    }

    /// Sends one request and reads the whole answer (so the connection can be reused).
    /// `timeout` bounds everything, connecting included.
    pub async fn exchange(
        &mut self,
        target: &Target,
        request: Request<Full<Bytes>>,
        timeout: Duration,
    ) -> Result<StatusCode, ErrorKind> {
        let mut connecting = false;
        let attempt = async {
            if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
                connecting = true;
                // Boxed: the connect state is large and rarely needed; inline it would be moved
                // around with every request's future.
                self.sender = Some(Box::pin(connect(target)).await?);
                connecting = false;
            }
            let sender = self.sender.as_mut().ok_or(ErrorKind::Connect)?;
            sender.ready().await.map_err(|_| ErrorKind::Connection)?;
            let response = sender.send_request(request).await.map_err(classify)?;
            let status = response.status();
            let closing = response
                .headers()
                .get(header::CONNECTION)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
            // Drain frame by frame: nothing is kept, nothing is concatenated.
            let mut body = response.into_body();
            while let Some(frame) = body.frame().await {
                frame.map_err(classify)?;
            }
            Ok((status, closing))
        };
        let result = match tokio::time::timeout(timeout, attempt).await {
            Ok(result) => result,
            Err(_) if connecting => Err(ErrorKind::ConnectTimeout),
            Err(_) => Err(ErrorKind::Timeout),
        };
        match result {
            Ok((status, closing)) => {
                if closing {
                    self.sender = None;
                }
                Ok(status)
            }
            Err(kind) => {
                // After a timeout or a broken exchange the connection's state is unknown.
                self.sender = None;
                Err(kind)
            }
        }
    }
}

async fn connect(target: &Target) -> Result<SendRequest<Full<Bytes>>, ErrorKind> {
    let stream = TcpStream::connect(target.addr)
        .await
        .map_err(|_| ErrorKind::Connect)?;
    // Requests are small and sent whole; Nagle would only add delay.
    let _ = stream.set_nodelay(true);
    match &target.tls {
        None => http1(TokioIo::new(stream)).await,
        Some(tls) => {
            let stream = tls
                .connector
                .connect(tls.name.clone(), stream)
                .await
                .map_err(|_| ErrorKind::Connect)?;
            http1(TokioIo::new(stream)).await
        }
    }
}

/// An HTTP/1.1 connection over `io`, its driver spawned.
async fn http1<I>(io: I) -> Result<SendRequest<Full<Bytes>>, ErrorKind>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, connection) = handshake(io).await.map_err(|_| ErrorKind::Connect)?;
    // The driver ends by itself when `sender` is dropped or the peer closes.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

fn classify(error: hyper::Error) -> ErrorKind {
    if error.is_parse() || error.is_parse_status() {
        ErrorKind::Protocol
    } else {
        ErrorKind::Connection
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BenchConfig;

    async fn target(addr: std::net::SocketAddr) -> Target {
        let config = BenchConfig {
            target: format!("http://{addr}"),
            ..BenchConfig::default()
        };
        Target::resolve(&config).await.unwrap()
    }

    #[tokio::test]
    async fn a_connection_opened_ahead_is_ready_and_one_that_cannot_open_is_left_closed() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let open = Connection::open(&target(addr).await, Duration::from_secs(5)).await;
        assert!(open.sender.as_ref().is_some_and(|s| !s.is_closed()));

        drop(listener);
        let closed = Connection::open(&target(addr).await, Duration::from_secs(5)).await;
        assert!(
            closed.sender.is_none(),
            "nothing listens: the first request connects"
        );
    }
}
