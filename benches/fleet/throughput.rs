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
    let open = r#"[{"status":{"operator":"o","values":[]}}]"#;
    let probe_filters = r#"[{"project":{"operator":"=","values":["1"]}}]"#;
    let probe_sort = r#"[["updatedAt","desc"],["id","desc"]]"#;
    let base = board.url().clone();
    type UrlFor = Box<dyn Fn(u64) -> reqwest::Url + Send + Sync>;
    let kinds: Vec<(&str, UrlFor)> = vec![
        (
            "`GET /work_packages/{id}`",
            Box::new({
                let base = base.clone();
                move |i| {
                    base.join(&format!("api/v3/work_packages/{}", i % n.max(1) as u64 + 1))
                        .expect("valid path")
                }
            }),
        ),
        (
            "probe: `GET /work_packages?pageSize=1&sortBy=updatedAt desc`",
            Box::new({
                let mut u = base.join("api/v3/work_packages").expect("valid path");
                u.query_pairs_mut()
                    .append_pair("filters", probe_filters)
                    .append_pair("sortBy", probe_sort)
                    .append_pair("pageSize", "1");
                move |_| u.clone()
            }),
        ),
        (
            "full page: `GET /work_packages?filters=open&pageSize=1000`",
            Box::new({
                let mut u = base.join("api/v3/work_packages").expect("valid path");
                u.query_pairs_mut()
                    .append_pair("filters", open)
                    .append_pair("pageSize", "1000")
                    .append_pair("offset", "1");
                move |_| u.clone()
            }),
        ),
    ];
    let http = reqwest::Client::new();
    for (label, url) in kinds {
        let url: Arc<dyn Fn(u64) -> reqwest::Url + Send + Sync> = Arc::from(url);
        for &clients in &plan.concurrency {
            let done = Arc::new(AtomicU64::new(0));
            let body = Arc::new(AtomicU64::new(0));
            let deadline = Instant::now() + plan.throughput_window;
            let started = Instant::now();
            let mut tasks = Vec::new();
            for c in 0..clients {
                let (http, url, done, body) =
                    (http.clone(), url.clone(), done.clone(), body.clone());
                let token = board.token().to_string();
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
            println!(
                "| {} WPs | {label} | {clients} | {} | {}/s |",
                thousands(n as u64),
                thousands((done.load(Ordering::Relaxed) as f64 / secs) as u64),
                bytes((body.load(Ordering::Relaxed) as f64 / secs) as u64)
            );
        }
    }
    Ok(())
}
