//! Bounded sizes: a huge answer from the board is a clear `Decode` error naming the endpoint, read
//! no further than the client's `max_body_bytes`, never an out-of-memory.

use std::time::Duration;

use journeyman::openproject::{Auth, Client, ClientOptions, ErrorKind};
use journeyman::sim::seed::SeedWp;
use journeyman::snapshot::{BoardReader, resolve};
use secrecy::SecretString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use url::Url;

use crate::support::{board, client, client_with, fast_options, pods};

const MB: usize = 1 << 20;

fn limited(max_body_bytes: usize) -> ClientOptions {
    ClientOptions {
        max_body_bytes,
        ..fast_options()
    }
}

#[tokio::test]
async fn a_50_mb_description_is_a_decode_error_naming_the_endpoint() {
    let b = board().await;
    let small = b.create(&SeedWp::new("Task", "small"));
    let big = b.create(&SeedWp::new("Task", "big").description(&"x".repeat(50 * MB)));
    let c = client_with(&b, limited(MB));
    let before = c.stats();
    let e = c.work_package(big).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Decode, "{e}");
    assert!(!e.kind().is_transient(), "retrying cannot help");
    let shown = e.to_string();
    assert!(
        shown.starts_with(&format!("GET /api/v3/work_packages/{big}: ")),
        "{shown}"
    );
    assert!(
        shown.contains("exceeds the limit of 1048576 bytes"),
        "{shown}"
    );
    let cost = c.stats() - before;
    assert_eq!(
        (cost.requests, cost.bytes),
        (1, 0),
        "no retry, nothing kept"
    );
    // The client is still usable, and the default limit (32 MB) refuses the page as well.
    assert_eq!(c.work_package(small).await.unwrap().subject, "small");
    let e = client(&b).work_package(big).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Decode, "{e}");
}

#[tokio::test]
async fn a_too_large_page_fails_the_snapshot_with_a_clear_error_until_it_shrinks() {
    let b = board().await;
    b.create(&SeedWp::new("Task", "small"));
    let big = b.create(&SeedWp::new("Task", "big").description(&"x".repeat(50 * MB)));
    let c = client_with(&b, limited(MB));
    let resolved = resolve(&c, &pods::config(&b, "pod-1")).await.unwrap();
    let mut reader = BoardReader::new(c, resolved, Duration::from_secs(60));
    let e = reader.snapshot().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Decode, "{e}");
    let shown = e.to_string();
    assert!(shown.starts_with("GET /api/v3/work_packages"), "{shown}");
    assert!(
        shown.contains("exceeds the limit of 1048576 bytes"),
        "{shown}"
    );
    // Not sticky: once a human trims the description, the next read sees the whole board.
    b.board().wps.get_mut(&big).unwrap().description = "trimmed".into();
    let (snap, _) = reader.snapshot().await.unwrap();
    assert_eq!(snap.items.len(), 2);
}

/// A server that answers one request with an endless chunked body; returns how many bytes it
/// wrote before the client hung up (at most `cap`, so the test ends by itself even if it never does).
async fn endless_server(cap: usize) -> (Url, tokio::task::JoinHandle<(usize, bool)>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
    let task = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = sock.read(&mut buf).await.unwrap();
            assert!(n > 0, "client closed before sending its request");
            request.extend_from_slice(&buf[..n]);
        }
        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/hal+json\r\nTransfer-Encoding: chunked\r\n\r\n";
        sock.write_all(head.as_bytes()).await.unwrap();
        let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, "x".repeat(64 * 1024));
        let mut sent = 0;
        while sent < cap {
            if sock.write_all(chunk.as_bytes()).await.is_err() {
                return (sent, true);
            }
            sent += 64 * 1024;
        }
        (sent, false)
    });
    (url, task)
}

#[tokio::test]
async fn an_endless_chunked_body_is_cut_at_the_limit() {
    let (url, server) = endless_server(512 * MB).await;
    let c = Client::new(
        &url,
        Auth::ApiKey(SecretString::from("t".to_string())),
        limited(MB),
    )
    .unwrap();
    let e = c.work_package(1).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Decode, "{e}");
    assert!(
        e.to_string().starts_with(
            "GET /api/v3/work_packages/1: response exceeds the limit of 1048576 bytes"
        ),
        "{e}"
    );
    drop(c);
    let (sent, hung_up) = server.await.unwrap();
    assert!(hung_up, "the client read all {sent} bytes the server had");
    assert!(sent < 64 * MB, "the client read on to {sent} bytes");
}

#[tokio::test]
async fn a_huge_wrong_typed_value_gives_a_short_decode_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
    let body = format!(r#"{{"id": "{}"}}"#, "7".repeat(4 * MB));
    let server = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let _ = sock.read(&mut buf).await.unwrap();
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/hal+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        sock.write_all(head.as_bytes()).await.unwrap();
        sock.write_all(body.as_bytes()).await.unwrap();
    });
    let c = Client::new(
        &url,
        Auth::ApiKey(SecretString::from("t".to_string())),
        limited(8 * MB),
    )
    .unwrap();
    let e = c.work_package(1).await.unwrap_err();
    server.await.unwrap();
    assert_eq!(e.kind(), ErrorKind::Decode, "{e}");
    let shown = e.to_string();
    assert!(shown.len() < 2048, "a {} byte error", shown.len());
    assert!(shown.contains("invalid type: string"), "{shown}");
    assert!(
        shown.contains("at line 1 column"),
        "the position survives the cut: {shown}"
    );
}
