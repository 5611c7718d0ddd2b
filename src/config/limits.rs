//! Timeouts, turns and budgets from their variables, with their defaults and the rules between
//! them (a task's budget fits the hour's, the hour's the day's).

use std::time::Duration;

use super::parse::{duration, money, positive_int};
use super::{ConfigError, Limits, Raw, defaults, err};

/// The poll interval, the stale-Epic age and the board's request timeout.
pub(super) fn timing(raw: &Raw) -> Result<(Duration, Duration, Duration, Duration), ConfigError> {
    Ok((
        duration(
            "poll_interval",
            raw.poll_interval.as_deref(),
            defaults::POLL_INTERVAL,
        )?,
        duration(
            "epic_stale_after",
            raw.epic_stale_after.as_deref(),
            defaults::EPIC_STALE_AFTER,
        )?,
        duration(
            "http_timeout",
            raw.http_timeout.as_deref(),
            defaults::HTTP_TIMEOUT,
        )?,
        duration(
            "full_read_every",
            raw.full_read_every.as_deref(),
            defaults::FULL_READ_EVERY,
        )?,
    ))
}

/// Timeouts, turns and budgets; a task's budget must fit the hour's, the hour's the day's.
pub(super) fn limits(raw: &Raw) -> Result<Limits, ConfigError> {
    let limits = Limits {
        task_timeout: duration(
            "task_timeout",
            raw.task_timeout.as_deref(),
            defaults::TASK_TIMEOUT,
        )?,
        max_turns: positive_int("max_turns", raw.max_turns.as_deref(), defaults::MAX_TURNS)?,
        task_budget_usd: money(
            "task_budget_usd",
            raw.task_budget_usd.as_deref(),
            defaults::TASK_BUDGET_USD,
        )?,
        hourly_budget_usd: money(
            "hourly_budget_usd",
            raw.hourly_budget_usd.as_deref(),
            defaults::HOURLY_BUDGET_USD,
        )?,
        daily_budget_usd: money(
            "daily_budget_usd",
            raw.daily_budget_usd.as_deref(),
            defaults::DAILY_BUDGET_USD,
        )?,
        max_attempts: positive_int(
            "max_attempts",
            raw.max_attempts.as_deref(),
            defaults::MAX_ATTEMPTS,
        )?,
        shutdown_grace: duration(
            "shutdown_grace",
            raw.shutdown_grace.as_deref(),
            defaults::SHUTDOWN_GRACE,
        )?,
        env_timeout: duration(
            "env_timeout",
            raw.env_timeout.as_deref(),
            defaults::ENV_TIMEOUT,
        )?,
        stall_timeout: duration(
            "stall_timeout",
            raw.stall_timeout.as_deref(),
            defaults::STALL_TIMEOUT,
        )?,
        progress_every: duration(
            "progress_every",
            raw.progress_every.as_deref(),
            defaults::PROGRESS_EVERY,
        )?,
    };
    if limits.task_budget_usd > limits.hourly_budget_usd {
        return Err(err(
            "task_budget_usd",
            format!(
                "must not exceed JOURNEYMAN_HOURLY_BUDGET_USD ({}), or no task could ever run",
                limits.hourly_budget_usd
            ),
        ));
    }
    if limits.hourly_budget_usd > limits.daily_budget_usd {
        return Err(err(
            "hourly_budget_usd",
            format!(
                "must not exceed JOURNEYMAN_DAILY_BUDGET_USD ({})",
                limits.daily_budget_usd
            ),
        ));
    }
    Ok(limits)
}
