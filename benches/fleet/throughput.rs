//! Section 5: the bundled board's own throughput, so that it is known never to be what limits the
//! other measurements. Plain reqwest clients (no decoding) against an in-process board, in the
//! same process, as in section 3.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::common::{self, Plan, bytes, thousands};

pub async fn run(plan: &Plan) -> anyhow::Result<()> {
    println!(
        "## 5. Bundled board throughput (in-process board, reqwest clients in the same process)\n"
    );
    println!(
        "Each client loops over one request kind for {} ms; bodies are read, not decoded. The {}-WP board is the size of section 3's board.\n",
        plan.throughput_window.as_millis(),
        plan.fleet_background,
    );
    println!("| board | request | concurrent clients | requests/s | body bytes/s |");
    println!("|---:|---|---:|---:|---:|");
    for &n in &plan.throughput_boards {
        board_throughput(plan, n).await?;
    }
    println!();
    Ok(())
}

async fn board_throughput(plan: &Plan, n: usize) -> anyhow::Result<()> {
    let board = common::board(n, false).await?;
    let http = reqwest::Client::new();
    for (label, url) in kinds(board.url(), n) {
        let url: Arc<UrlFor> = Arc::from(url);
        for &clients in &plan.concurrency {
            let (requests, body) =
                measure(&http, &url, board.token(), clients, plan.throughput_window).await?;
            println!(
                "| {} WPs | {label} | {clients} | {} | {}/s |",
                thousands(n as u64),
                thousands(requests as u64),
                bytes(body as u64)
            );
        }
    }
    Ok(())
}

/// The URL of a request kind's `i`-th request.
type UrlFor = dyn Fn(u64) -> reqwest::Url + Send + Sync;

/// The request kinds measured on a board of `n` work packages at `base`: a label and the URL of
/// each request.
fn kinds(base: &reqwest::Url, n: usize) -> Vec<(&'static str, Box<UrlFor>)> {
    let open = r#"[{"status":{"operator":"o","values":[]}}]"#;
    let probe_filters = r#"[{"project":{"operator":"=","values":["1"]}}]"#;
    let probe_sort = r#"[["updatedAt","desc"],["id","desc"]]"#;
    let probe = list_url(
        base,
        &[
            ("filters", probe_filters),
            ("sortBy", probe_sort),
            ("pageSize", "1"),
        ],
    );
    let full = list_url(
        base,
        &[("filters", open), ("pageSize", "1000"), ("offset", "1")],
    );
    let base = base.clone();
    vec![
        (
            "`GET /work_packages/{id}`",
            Box::new(move |i| {
                base.join(&format!("api/v3/work_packages/{}", i % n.max(1) as u64 + 1))
                    .expect("valid path")
            }),
        ),
        (
            "probe: `GET /work_packages?pageSize=1&sortBy=updatedAt desc`",
            Box::new(move |_| probe.clone()),
        ),
        (
            "full page: `GET /work_packages?filters=open&pageSize=1000`",
            Box::new(move |_| full.clone()),
        ),
    ]
}

/// `api/v3/work_packages` with these query parameters.
fn list_url(base: &reqwest::Url, params: &[(&str, &str)]) -> reqwest::Url {
    let mut u = base.join("api/v3/work_packages").expect("valid path");
    u.query_pairs_mut().extend_pairs(params);
    u
}

/// `clients` concurrent clients looping over one request kind for `window`: requests and body
/// bytes per second.
async fn measure(
    http: &reqwest::Client,
    url: &Arc<UrlFor>,
    token: &str,
    clients: usize,
    window: Duration,
) -> anyhow::Result<(f64, f64)> {
    let done = Arc::new(AtomicU64::new(0));
    let body = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + window;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (http, url, done, body) = (http.clone(), url.clone(), done.clone(), body.clone());
        let token = token.to_string();
        tasks.push(tokio::spawn(async move {
            let mut i = c as u64 * 7919;
            while Instant::now() < deadline {
                i = i
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407)
                    >> 1;
                let resp = http
                    .get(url(i))
                    .basic_auth("apikey", Some(&token))
                    .send()
                    .await?
                    .error_for_status()?;
                let b = resp.bytes().await?;
                body.fetch_add(b.len() as u64, Ordering::Relaxed);
                done.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let secs = started
        .elapsed()
        .as_secs_f64()
        .max(Duration::from_millis(1).as_secs_f64());
    Ok((
        done.load(Ordering::Relaxed) as f64 / secs,
        body.load(Ordering::Relaxed) as f64 / secs,
    ))
}
