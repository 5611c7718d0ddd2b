//! Claims that spread, at the cycle level: two pods reading the same board prefer different
//! candidates among equals, so racing for new work does not make them collide.

use std::cmp::Reverse;

use journeyman::board::spread::rendezvous;
use journeyman::board::{Action, Progress, decide};
use journeyman::harness::sim::seed::SeedWp;
use journeyman::snapshot::{BoardReader, resolve};

use crate::support::client;
use crate::support::pods::{Fleet, config};

/// Pod `pod`'s first choice among `ids`, from the rendezvous hash alone.
fn first_choice(pod: &str, ids: &[u64]) -> u64 {
    *ids.iter()
        .max_by_key(|id| (rendezvous(pod, **id), Reverse(**id)))
        .expect("candidates")
}

#[tokio::test]
async fn two_pods_with_the_same_board_prefer_different_candidates() {
    let f = Fleet::new().await;
    let b = &f.board;
    let tasks: Vec<u64> = (0..8)
        .map(|i| b.create(&SeedWp::new("Task", &format!("equal {i}"))))
        .collect();
    let (pa, pb) = ("pod-a", "pod-b");
    let (a, z) = (first_choice(pa, &tasks), first_choice(pb, &tasks));
    assert_ne!(a, z, "the two names prefer different work packages");

    // The same snapshot, two decisions.
    let c = client(b);
    let resolved = resolve(&c, &config(b, pa, &[])).await.unwrap();
    let catalog = resolved.catalog.clone();
    let mut reader = BoardReader::new(c, resolved, std::time::Duration::from_secs(60));
    let (snap, _) = reader.snapshot().await.unwrap();
    let policy = journeyman::pod::policy(&config(b, pa, &[]));
    let now = chrono::Utc::now();
    for (pod, expect) in [(pa, a), (pb, z)] {
        assert_eq!(
            decide(&snap, &catalog, pod, now, &policy, &Progress::default()),
            Action::CheckBlockers { wp: expect },
            "{pod} checks its own first choice"
        );
    }

    // Racing for real: both cycle at once, each works its own choice, nobody loses a claim.
    let (mut wa, mut wb) = (f.pod(pa).await, f.pod(pb).await);
    let (ra, rb) = tokio::join!(wa.cycle(), wb.cycle());
    assert_eq!((ra.worked, rb.worked), (Some(a), Some(z)));
    assert_eq!(ra.conflicts + rb.conflicts, 0, "{ra:?} {rb:?}");
    assert!(f.record.violations().is_empty());
}
