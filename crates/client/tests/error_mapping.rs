//! How answers become typed results and errors, against a scripted axum server on a real socket.

use axum::Router;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::IntoResponse;
use axum::routing::any;
use hakv_client::{Client, ClientError, Consistency, Deleted, Precondition, Revision, WriteOptions};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Every request the scripted server saw: raw path and query, and headers.
type Log = Arc<Mutex<Vec<(String, HeaderMap)>>>;

/// Answers by the key's first path segment; records each request's raw path and headers.
async fn scripted(
    axum::extract::State(log): axum::extract::State<Log>,
    uri: Uri,
    headers: HeaderMap,
) -> axum::response::Response {
    let path = uri.path_and_query().map(|p| p.to_string()).unwrap_or_default();
    log.lock().unwrap().push((path.clone(), headers));
    let key = path.strip_prefix("/data/").unwrap_or("");
    let json = |status: StatusCode, body: &str| {
        (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response()
    };
    match key.split('/').next().unwrap_or("") {
        "conflict" => json(
            StatusCode::PRECONDITION_FAILED,
            r#"{"error":"revision mismatch","code":"precondition_failed","current_revision":9}"#,
        ),
        "absent-conflict" => json(
            StatusCode::PRECONDITION_FAILED,
            r#"{"error":"no such key","code":"precondition_failed","current_revision":null}"#,
        ),
        "busy" => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "2")],
            r#"{"error":"overloaded","code":"overloaded"}"#,
        )
            .into_response(),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            json(StatusCode::OK, r#"{"data":1}"#)
        }
        "missing" => json(
            StatusCode::NOT_FOUND,
            r#"{"error":"Key not found","code":"key_not_found"}"#,
        ),
        "bad-json" => json(StatusCode::OK, "{not json"),
        _ => (StatusCode::OK, [(header::ETAG, "\"41\"")], r#"{"data":{"n":1}}"#).into_response(),
    }
}

async fn server() -> (String, Log) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let app = Router::new().fallback(any(scripted)).with_state(log.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, log)
}

#[tokio::test]
async fn reads_values_and_revisions() {
    let (url, log) = server().await;
    let client = Client::new(&url, Duration::from_secs(2)).unwrap();
    let entry = client.get("x/y z", Consistency::Stale).await.unwrap().unwrap();
    assert_eq!(entry.data, serde_json::json!({"n": 1}));
    assert_eq!(entry.revision, Some(Revision(41)));
    assert_eq!(log.lock().unwrap()[0].0, "/data/x/y%20z?consistency=stale");
    assert_eq!(
        client.get("missing", Consistency::Linearizable).await.unwrap(),
        None
    );
    assert_eq!(
        client.delete("missing", Precondition::None).await.unwrap(),
        Deleted::NotFound
    );
}

#[tokio::test]
async fn conditions_are_sent_and_412_carries_the_current_revision() {
    let (url, log) = server().await;
    let client = Client::new(&url, Duration::from_secs(2)).unwrap();
    let options = WriteOptions {
        precondition: Precondition::IfMatch(Revision(3)),
        ttl_seconds: Some(60),
        ..WriteOptions::default()
    };
    let err = client
        .put("conflict", &serde_json::json!(1), &options)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        ClientError::PreconditionFailed {
            current: Some(Revision(9))
        }
    ));
    assert!(!err.is_retryable());
    assert_eq!(log.lock().unwrap()[0].1[header::IF_MATCH], "\"3\"");

    let create_only = WriteOptions {
        precondition: Precondition::IfAbsent,
        ..WriteOptions::default()
    };
    let err = client
        .put("absent-conflict", &serde_json::json!(1), &create_only)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::PreconditionFailed { current: None }));
    assert_eq!(log.lock().unwrap()[1].1[header::IF_NONE_MATCH], "*");
}

#[tokio::test]
async fn overload_is_retryable_after_the_servers_delay() {
    let (url, _) = server().await;
    let client = Client::new(&url, Duration::from_secs(2)).unwrap();
    let err = client.get("busy", Consistency::Linearizable).await.unwrap_err();
    assert!(err.is_retryable());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(2)));
    assert!(
        matches!(err, ClientError::Status { status: 503, ref code, .. } if code.as_deref() == Some("overloaded"))
    );
}

#[tokio::test]
async fn timeouts_connect_failures_and_garbage() {
    let (url, _) = server().await;
    let client = Client::new(&url, Duration::from_millis(200)).unwrap();
    let err = client.get("slow", Consistency::Linearizable).await.unwrap_err();
    assert!(matches!(err, ClientError::Timeout { idempotent: true, .. }));
    let options = WriteOptions {
        method: hakv_client::WriteMethod::Post,
        ..WriteOptions::default()
    };
    // A timed-out POST may have been applied: not safe to resend.
    let err = client
        .put("slow", &serde_json::json!(1), &options)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Timeout {
                idempotent: false,
                ..
            }
        ) && !err.is_retryable()
    );
    let err = client
        .get("bad-json", Consistency::Linearizable)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::InvalidResponse { .. }));

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let closed = Client::new(&format!("http://127.0.0.1:{port}"), Duration::from_secs(2)).unwrap();
    let err = closed.get("k", Consistency::Linearizable).await.unwrap_err();
    assert!(
        matches!(err, ClientError::Connect { .. }) && err.is_retryable(),
        "{err:?}"
    );
}

#[test]
fn urls_are_checked() {
    let timeout = Duration::from_secs(1);
    assert!(Client::new("http://127.0.0.1:7379", timeout).is_ok());
    assert!(matches!(
        Client::new("127.0.0.1:7379", timeout),
        Err(ClientError::InvalidUrl { .. })
    ));
    assert!(Client::new("https://example.com", timeout).is_ok());
    assert!(Client::new("ftp://example.com", timeout).is_err());
    assert!(Client::new("http://h/?q=1", timeout).is_err());
}
