//! Bounded sizes: a huge answer from the board is a clear `TooLarge` error naming the endpoint, read
//! no further than the client's `max_body_bytes`, never an out-of-memory.

use std::time::Duration;

use journeyman::harness::sim::seed::SeedWp;
use journeyman::openproject::{Auth, Client, ClientOptions, ErrorKind};
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
async fn a_50_mb_description_is_a_too_large_error_naming_the_endpoint() {
    let b = board().await;
    let small = b.create(&SeedWp::new("Task", "small"));
    let big = b.create(&SeedWp::new("Task", "big").description(&"x".repeat(50 * MB)));
    let c = client_with(&b, limited(MB));
    let before = c.stats();
    let e = c.work_package(big).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TooLarge, "{e}");
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
    assert_eq!(e.kind(), ErrorKind::TooLarge, "{e}");
}

#[tokio::test]
async fn a_work_package_too_large_to_read_is_left_out_and_the_rest_of_the_board_is_read() {
    let b = board().await;
    let mut small = Vec::new();
    for i in 0..20 {
        small.push(b.create(&SeedWp::new("Task", &format!("before {i}"))));
    }
    // An Epic with a pasted 2 MB log, against a 1 MB limit, with a child; created after the first
    // twenty, so it sits in the middle of the second page of sixteen.
    let big = b.create(&SeedWp::new("Epic", "big").description(&"x".repeat(2 * MB)));
    let child = b.create(&SeedWp::new("Task", "under the big Epic").parent(big));
    for i in 0..20 {
        small.push(b.create(&SeedWp::new("Task", &format!("after {i}"))));
    }
    let c = client_with(
        &b,
        ClientOptions {
            page_size: 16,
            ..limited(MB)
        },
    );
    let resolved = resolve(&c, &pods::config(&b, "pod-1", &[])).await.unwrap();
    let mut reader = BoardReader::new(c, resolved, Duration::from_secs(60));

    let (snap, fetch) = reader.snapshot().await.unwrap();
    assert!(fetch.full);
    for id in &small {
        assert!(snap.items.contains_key(id), "#{id} is on the snapshot");
    }
    assert!(!snap.items.contains_key(&big), "too large to read");
    assert!(
        !snap.items.contains_key(&child),
        "nothing under a work package the pod cannot see (its Epic might be owned)"
    );
    assert_eq!(snap.items.len(), small.len());
    // The page holding it is read again in pages of 2, then 1: a bounded number of requests, not
    // one per work package (probe, 3 pages, 8 + 2 smaller ones, ancestors in bulk and then one by
    // one, relations).
    assert!(
        fetch.cost.requests <= 20,
        "{} requests",
        fetch.cost.requests
    );

    // Someone edits it again: now it is the most recently updated, so the probe cannot read it
    // either. Every cycle reads in full (degraded, but working) instead of failing.
    {
        let mut board = b.board();
        let wp = board.wps.get_mut(&big).unwrap();
        wp.updated_at = chrono::Utc::now() + chrono::Duration::seconds(1);
        wp.lock_version += 1;
    }
    let (snap, again) = reader.snapshot().await.unwrap();
    assert!(again.full);
    assert_eq!(snap.items.len(), small.len());
    let (snap, again) = reader.snapshot().await.unwrap();
    assert!(again.full);
    assert_eq!(snap.items.len(), small.len());

    // Not sticky: once a human trims the description, the whole board is back and idle cycles are
    // the probe again (work packages and relations).
    b.board().wps.get_mut(&big).unwrap().description = "trimmed".into();
    let (snap, _) = reader.snapshot().await.unwrap();
    assert!(snap.items.contains_key(&big) && snap.items.contains_key(&child));
    assert_eq!(snap.items.len(), small.len() + 2);
    let (_, idle) = reader.snapshot().await.unwrap();
    assert!(!idle.full);
    assert_eq!(idle.cost.requests, 2);
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
    assert_eq!(e.kind(), ErrorKind::TooLarge, "{e}");
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
