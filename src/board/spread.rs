//! Claims that spread: among equally good candidates, each pod prefers a different one.
//!
//! The decision's order is strict (rule, then priority, then id), so every idle pod would race for
//! the same best work package and all but one would lose (a 409 each). Within the best priority
//! class of a rule, the first [`Policy::spread`](super::Policy) candidates by id are ranked per pod
//! by rendezvous hashing of the pod's name and the candidate's claim key (the Epic claimed first,
//! if any, else the work package): a pure, stable function, so a restarted pod prefers what the
//! one that died preferred, and a pod that loses a race moves to its own next choice. Across
//! priorities and rules nothing changes: a more urgent work package always comes first.

use std::cmp::Reverse;

/// A pod's preference for a claim key: higher is preferred. Stable across builds and platforms
/// (FNV-1a over the name, SplitMix64 over the mix), never `std`'s randomly keyed hasher.
pub fn rendezvous(pod: &str, key: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in pod.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    splitmix64(h ^ key.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Pod `pod`'s choice among `candidates` (already in the board's order: the best priority class
/// first, by id): the first `spread` of the best class, ranked by [`rendezvous`] over `key` of
/// each; candidates that share a key (the same Epic) go in the board's order. `spread` 1 is the
/// strict order.
pub fn prefer<T>(
    pod: &str,
    candidates: &[T],
    class: impl Fn(&T) -> u64,
    key: impl Fn(&T) -> u64,
    id: impl Fn(&T) -> u64,
    spread: usize,
) -> Option<usize> {
    let best = candidates.first().map(&class)?;
    candidates
        .iter()
        .enumerate()
        .take_while(|(_, c)| class(c) == best)
        .take(spread.max(1))
        .max_by_key(|(_, c)| (rendezvous(pod, key(c)), Reverse(id(c))))
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    /// Candidates as `(priority class, claim key, id)`, best class first.
    fn choice(pod: &str, candidates: &[(u64, u64, u64)], spread: usize) -> Option<u64> {
        prefer(pod, candidates, |c| c.0, |c| c.1, |c| c.2, spread).map(|i| candidates[i].2)
    }

    #[test]
    fn the_hash_is_stable() {
        // Pinned: a change here changes every pod's preferences across an upgrade.
        assert_eq!(rendezvous("pod-1", 42), rendezvous("pod-1", 42));
        assert_ne!(rendezvous("pod-1", 42), rendezvous("pod-2", 42));
        assert_eq!(rendezvous("", 0), 14_087_677_454_934_409_008);
        assert_eq!(rendezvous("pod-1", 42), 4_251_714_853_877_579_158);
    }

    #[test]
    fn a_single_candidate_or_no_spread_is_the_strict_order() {
        let c = [(1, 10, 10), (1, 11, 11), (2, 12, 12)];
        assert_eq!(choice("pod-1", &c[..1], 8), Some(10));
        for pod in ["pod-1", "pod-2", "pod-3"] {
            assert_eq!(choice(pod, &c, 1), Some(10));
        }
        assert_eq!(choice("pod-1", &[], 8), None);
    }

    #[test]
    fn never_beyond_the_best_class_nor_the_first_k() {
        let c = [(1, 10, 10), (1, 11, 11), (2, 12, 12), (2, 13, 13)];
        for p in 0..200 {
            let got = choice(&format!("pod-{p}"), &c, 8).unwrap();
            assert!(got == 10 || got == 11, "{got} is not in the best class");
        }
        let many: Vec<(u64, u64, u64)> = (0..20).map(|i| (1, i, i)).collect();
        for p in 0..200 {
            assert!(choice(&format!("pod-{p}"), &many, 3).unwrap() < 3);
        }
    }

    #[test]
    fn candidates_under_one_epic_go_in_order() {
        // 10 and 11 share their Epic (key 5): whoever prefers that Epic takes 10 first.
        let c = [(1, 5, 10), (1, 5, 11), (1, 12, 12)];
        for p in 0..200 {
            assert_ne!(choice(&format!("pod-{p}"), &c, 8), Some(11));
        }
    }

    #[test]
    fn a_pod_that_loses_moves_to_its_own_next_choice() {
        let c: Vec<(u64, u64, u64)> = (1..=8).map(|i| (1, i, i)).collect();
        let first = choice("pod-7", &c, 8).unwrap();
        let rest: Vec<_> = c.iter().copied().filter(|x| x.2 != first).collect();
        let second = choice("pod-7", &rest, 8).unwrap();
        let mut ranked: Vec<u64> = (1..=8).collect();
        ranked.sort_by_key(|k| Reverse(rendezvous("pod-7", *k)));
        assert_eq!([first, second], [ranked[0], ranked[1]]);
    }

    proptest! {
        #[test]
        fn first_choices_spread_across_the_top_k(ids in prop::collection::btree_set(1u64..100_000, 8..30), salt in "[a-z]{0,6}") {
            let c: Vec<(u64, u64, u64)> = ids.iter().map(|&i| (1, i, i)).collect();
            let mut firsts: BTreeMap<u64, usize> = BTreeMap::new();
            let pods = 4000;
            for p in 0..pods {
                *firsts.entry(choice(&format!("{salt}pod-{p}"), &c, 8).unwrap()).or_default() += 1;
            }
            let top: Vec<u64> = c.iter().take(8).map(|x| x.2).collect();
            prop_assert_eq!(firsts.keys().copied().collect::<Vec<_>>(), top, "every one of the top 8, nothing else");
            for (wp, n) in firsts {
                // 500 expected each; 4000 draws keep every share within 30% of it.
                prop_assert!((350..=650).contains(&n), "#{} first for {} of {} pods", wp, n, pods);
            }
        }
    }
}
