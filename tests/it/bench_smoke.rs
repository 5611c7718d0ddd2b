//! The benchmark's headline as a property (benches/fleet.rs measures it at scale): on a small
//! synthetic board, reading every work package and its relations one by one costs many times the
//! requests of a full snapshot, and an idle cycle costs one.

use journeyman::harness::bench;

use crate::support::board;

#[tokio::test]
async fn naive_per_work_package_reading_costs_far_more_requests_than_a_snapshot() {
    let b = board().await;
    bench::synthetic_board(50, 7)
        .apply(&mut b.board())
        .expect("synthetic board seeds");
    let mut reader = bench::reader(b.url(), b.token(), "pod-bench")
        .await
        .expect("reader");
    let (_, full) = reader.snapshot().await.expect("full snapshot");
    let (_, idle) = reader.snapshot().await.expect("idle snapshot");
    assert!(full.full && !idle.full);
    assert_eq!(
        idle.cost.requests, 2,
        "an idle cycle is the probe: work packages and relations"
    );

    let client = reader.client().clone();
    let before = client.stats();
    let open = bench::naive_read(&client, 1).await.expect("naive read");
    let naive = client.stats() - before;
    assert!(open >= 20, "the board has open work ({open})");
    assert_eq!(
        naive.requests,
        1 + 2 * open as u64,
        "one list page, then two requests per open work package"
    );
    assert!(
        naive.requests > 5 * full.cost.requests,
        "naive {naive:?} against a full snapshot {:?}",
        full.cost
    );
}
