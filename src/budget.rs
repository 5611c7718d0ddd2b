//! Spend caps per pod: hourly and daily windows over what the agent reported it cost.
//!
//! Pure bookkeeping with the clock passed in, so windows rolling over are tested without waiting.
//! When a window is exhausted the pod stops claiming (work stays queued for other pods), says so in
//! metrics and `/readyz`, and resumes by itself when the window rolls over. Per-task caps (cost,
//! turns, wall time) are enforced by the executor and the agent runner, not here.

use std::collections::VecDeque;

use chrono::{DateTime, Duration, Utc};

/// Rolling windows of spend.
#[derive(Debug, Clone)]
pub struct Budget {
    hourly: f64,
    daily: f64,
    /// (when, usd), oldest first; entries older than a day are dropped.
    spent: VecDeque<(DateTime<Utc>, f64)>,
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
        }
    }

    /// Records a run's cost (negative or non-finite costs count as zero).
    pub fn record(&mut self, now: DateTime<Utc>, usd: f64) {
        let usd = if usd.is_finite() && usd > 0.0 {
            usd
        } else {
            0.0
        };
        self.spent.push_back((now, usd));
        self.prune(now);
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
        self.spent
            .iter()
            .filter(|(t, _)| *t > since)
            .map(|(_, u)| u)
            .sum()
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
    fn junk_costs_count_as_zero() {
        let mut b = Budget::new(1.0, 1.0);
        b.record(t(0, 0), f64::NAN);
        b.record(t(0, 0), -5.0);
        b.record(t(0, 0), f64::INFINITY);
        assert_eq!(b.exhausted(t(0, 1)), None);
    }
}
