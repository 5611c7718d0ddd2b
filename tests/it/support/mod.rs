//! Shared helpers for integration tests: a bundled board on loopback, a client for it, polling
//! with deadlines (never sleeps as synchronisation).

#![allow(dead_code)]

pub mod git;
pub mod pods;

use std::time::Duration;

use journeyman::harness::sim::{self, BoardHandle, BoardOptions};
use journeyman::openproject::{Auth, Client, ClientOptions, RetryPolicy};
use secrecy::SecretString;

/// Starts a board on a free loopback port.
pub async fn board() -> BoardHandle {
    sim::start(BoardOptions::default())
        .await
        .expect("board starts")
}

/// Client options for tests: short timeouts and fast retries so failures surface quickly.
pub fn fast_options() -> ClientOptions {
    ClientOptions {
        timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(2),
        retry: RetryPolicy {
            max_retries: 3,
            min_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
            max_retry_after: Duration::from_secs(2),
        },
        ..ClientOptions::default()
    }
}

/// A client for the board, authenticated as the agent bot user.
pub fn client(board: &BoardHandle) -> Client {
    client_with(board, fast_options())
}

pub fn client_with(board: &BoardHandle, opts: ClientOptions) -> Client {
    Client::new(
        board.url(),
        Auth::ApiKey(SecretString::from(board.token().to_string())),
        opts,
    )
    .expect("client builds")
}

/// Polls `check` until it returns `Some`, or panics after `timeout` naming `what`.
pub async fn eventually<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub mod fake_anthropic;
