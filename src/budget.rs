//! Spend caps per pod: hourly and daily windows over what the agent reported it cost.
//!
//! Pure bookkeeping with the clock passed in, so windows rolling over are tested without waiting.
//! When a window is exhausted the pod stops claiming (work stays queued for other pods), says so in
//! metrics and `/readyz`, and resumes by itself when the window rolls over. Per-task caps (cost,
//! turns, wall time, stall) are enforced live by the agent runner (`agent::monitor`), not here; the
//! running task's spend so far is counted in the windows while it runs ([`Budget::running`]).

use std::collections::VecDeque;

use chrono::{DateTime, Duration, Utc};

/// Rolling windows of spend.
#[derive(Debug, Clone)]
pub struct Budget {
    hourly: f64,
    daily: f64,
    /// (when, usd), oldest first; entries older than a day are dropped.
    spent: VecDeque<(DateTime<Utc>, f64)>,
    /// The running task's spend so far (from its stream), counted in both windows until the run
    /// ends and its cost is recorded.
    running: f64,
}

/// Which cap stops the pod, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exhausted {
    Hourly,
    Daily,
}

impl Budget {
    pub fn new(hourly_usd: f64, daily_usd: f64) -> Budget {
        Budget {
            hourly: hourly_usd,
            daily: daily_usd,
            spent: VecDeque::new(),
            running: 0.0,
        }
    }

    /// Records a run's cost (negative or non-finite costs count as zero); the run is over, so its
    /// live spend is replaced by this.
    pub fn record(&mut self, now: DateTime<Utc>, usd: f64) {
        self.spent.push_back((now, money(usd)));
        self.running = 0.0;
        self.prune(now);
    }

    /// The running task's spend so far: counted now, so the pod stops claiming before its cap,
    /// not after.
    pub fn running(&mut self, usd: f64) {
        self.running = money(usd);
    }

    fn prune(&mut self, now: DateTime<Utc>) {
        while self
            .spent
            .front()
            .is_some_and(|(t, _)| now - *t >= Duration::days(1))
        {
            self.spent.pop_front();
        }
    }

    fn spent_since(&self, since: DateTime<Utc>) -> f64 {
        self.running
            + self
                .spent
                .iter()
                .filter(|(t, _)| *t > since)
                .map(|(_, u)| u)
                .sum::<f64>()
    }

    /// What is left in the (hourly, daily) windows at `now`.
    pub fn remaining(&self, now: DateTime<Utc>) -> (f64, f64) {
        let hour = self.hourly - self.spent_since(now - Duration::hours(1));
        let day = self.daily - self.spent_since(now - Duration::days(1));
        (hour.max(0.0), day.max(0.0))
    }

    /// Whether a cap is reached at `now` (daily wins when both are).
    pub fn exhausted(&self, now: DateTime<Utc>) -> Option<Exhausted> {
        let (hour, day) = self.remaining(now);
        if day <= 0.0 {
            Some(Exhausted::Daily)
        } else if hour <= 0.0 {
            Some(Exhausted::Hourly)
        } else {
            None
        }
    }
}

fn money(usd: f64) -> f64 {
    if usd.is_finite() && usd > 0.0 {
        usd
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(h: i64, m: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).unwrap()
            + Duration::hours(h)
            + Duration::minutes(m)
    }

    #[test]
    fn hourly_cap_stops_and_rolls_over() {
        let mut b = Budget::new(10.0, 100.0);
        b.record(t(0, 0), 6.0);
        assert_eq!(b.exhausted(t(0, 1)), None);
        b.record(t(0, 30), 4.0);
        assert_eq!(b.exhausted(t(0, 31)), Some(Exhausted::Hourly));
        assert_eq!(b.remaining(t(0, 31)), (0.0, 90.0));
        assert_eq!(
            b.exhausted(t(1, 1)),
            None,
            "the first 6.0 left the hour window"
        );
        assert_eq!(b.remaining(t(1, 31)), (10.0, 90.0));
    }

    #[test]
    fn daily_cap_wins_and_rolls_over_after_a_day() {
        let mut b = Budget::new(10.0, 25.0);
        for h in 0..3 {
            b.record(t(h * 2, 0), 9.0);
        }
        assert_eq!(b.exhausted(t(5, 0)), Some(Exhausted::Daily));
        assert_eq!(
            b.exhausted(t(24, 1)),
            None,
            "the first run left the day window"
        );
    }

    #[test]
    fn a_running_tasks_live_spend_counts_until_its_cost_is_recorded() {
        let mut b = Budget::new(10.0, 100.0);
        b.record(t(0, 0), 4.0);
        b.running(6.5);
        assert_eq!(
            b.exhausted(t(0, 10)),
            Some(Exhausted::Hourly),
            "4 + 6.5 live"
        );
        assert_eq!(b.remaining(t(0, 10)), (0.0, 89.5));
        b.running(f64::NAN);
        assert_eq!(
            b.remaining(t(0, 11)),
            (6.0, 96.0),
            "junk live spend counts as zero"
        );
        b.running(7.0);
        b.record(t(0, 20), 7.5);
        assert_eq!(
            b.remaining(t(0, 21)),
            (0.0, 88.5),
            "the recorded cost replaces the live figure, not on top of it"
        );
    }

    #[test]
    fn junk_costs_count_as_zero() {
        let mut b = Budget::new(1.0, 1.0);
        b.record(t(0, 0), f64::NAN);
        b.record(t(0, 0), -5.0);
        b.record(t(0, 0), f64::INFINITY);
        assert_eq!(b.exhausted(t(0, 1)), None);
    }
}
