//! How every remote party is retried: sources fetching from Toss or FTP, sinks delivering to a
//! database or a webhook. One rule keeps their behaviour predictable for operators: wait
//! `base × 2^n` before retry `n`, with ±25 % jitter so that many clients do not retry in step,
//! unless the server said how long to wait (`Retry-After`).
//!
//! The settings (`timeout_secs`, `retries`, `retry_base_ms`) are the same keys with the same
//! limits in every component that talks to a remote party; only their defaults differ, because
//! the parties do (an FTP server on the merchant's network answers faster than Toss's download
//! page). Each component keeps the three keys in its own config struct rather than flattening a
//! shared one in: serde's `flatten` turns off what `deny_unknown_fields` says about a typo (the
//! list of allowed keys), and a pipeline file's typo must name the keys it could have meant.
//! [`RetryPolicy`] is built from those keys and checked by [`RetryPolicy::check`].

use crate::error::{Error, Result};
use std::future::Future;
use std::time::Duration;

/// How long one attempt may take and how often a failed one is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Seconds one attempt (or one step of it) may take.
    pub timeout_secs: u64,
    /// Retries after the first attempt.
    pub retries: u32,
    /// The first retry's pause in milliseconds, doubled for each later one (±25 % jitter).
    pub retry_base_ms: u64,
}

impl RetryPolicy {
    /// The longest `timeout_secs` allowed (an hour).
    pub const MAX_TIMEOUT_SECS: u64 = 3600;
    /// The most `retries` allowed.
    pub const MAX_RETRIES: u32 = 20;
    /// The longest `retry_base_ms` allowed (a minute).
    pub const MAX_RETRY_BASE_MS: u64 = 60_000;

    /// Refuses settings outside the limits, naming the key in `section` (`[source]`,
    /// `[[sinks]] name`) as the pipeline file spells it.
    pub fn check(&self, section: &str) -> Result<()> {
        let at = |key: &str| format!("{section} {key}");
        if !(1..=Self::MAX_TIMEOUT_SECS).contains(&self.timeout_secs) {
            return Err(Error::config(
                at("timeout_secs"),
                format!(
                    "timeout_secs must be between 1 and {} seconds",
                    Self::MAX_TIMEOUT_SECS
                ),
            ));
        }
        if self.retries > Self::MAX_RETRIES {
            return Err(Error::config(
                at("retries"),
                format!("retries must be 0 to {}", Self::MAX_RETRIES),
            ));
        }
        if self.retry_base_ms > Self::MAX_RETRY_BASE_MS {
            return Err(Error::config(
                at("retry_base_ms"),
                format!("retry_base_ms must be at most {}", Self::MAX_RETRY_BASE_MS),
            ));
        }
        Ok(())
    }

    /// `timeout_secs` as a duration.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }

    /// `retry_base_ms` as a duration.
    pub fn base(&self) -> Duration {
        Duration::from_millis(self.retry_base_ms)
    }
}

/// The pause before retry `n` (0-based): `base × 2^n`, ±25 % jitter.
pub fn backoff(base: Duration, n: u32) -> Duration {
    use std::hash::BuildHasher;
    let exact = base.saturating_mul(1u32 << n.min(16));
    let random = std::collections::hash_map::RandomState::new().hash_one(n);
    let factor = 0.75 + (random % 1001) as f64 / 2000.0;
    exact.mul_f64(factor)
}

/// What one attempt came to.
#[derive(Debug)]
pub enum Attempt<T, F = String> {
    /// It worked.
    Done(T),
    /// Worth another try (a connection broke, the server was busy), after `after` if the server
    /// said how long to wait, else after the backoff.
    Retry {
        why: String,
        after: Option<Duration>,
    },
    /// Not worth another try (the server refused; retrying cannot fix it).
    Fail(F),
}

impl<T, F> Attempt<T, F> {
    /// Worth another try after the backoff.
    pub fn retry(why: impl Into<String>) -> Self {
        Attempt::Retry {
            why: why.into(),
            after: None,
        }
    }
}

/// Why an attempt did not work, for attempts written as a `Result` so that their steps can use
/// `?`; such a result becomes an [`Attempt`] with `.into()`.
#[derive(Debug)]
pub enum AttemptError<F = String> {
    /// Worth another try after the backoff.
    Retry(String),
    /// Not worth another try.
    Fail(F),
}

impl<T, F> From<std::result::Result<T, AttemptError<F>>> for Attempt<T, F> {
    fn from(result: std::result::Result<T, AttemptError<F>>) -> Self {
        match result {
            Ok(value) => Attempt::Done(value),
            Err(AttemptError::Retry(why)) => Attempt::retry(why),
            Err(AttemptError::Fail(why)) => Attempt::Fail(why),
        }
    }
}

/// What [`retry`] ended with when no attempt worked.
#[derive(Debug)]
pub enum Failed<F = String> {
    /// An attempt failed for good; it was attempt number `attempts`.
    Refused { why: F, attempts: u32 },
    /// Every attempt failed in a way worth another try; `why` is the last one's reason.
    Exhausted { why: String, attempts: u32 },
}

/// What [`retry`] ended with when an attempt worked.
#[derive(Debug)]
pub struct Retried<T> {
    pub value: T,
    /// How many retries it took (0: the first attempt worked).
    pub retries: u32,
}

/// Runs `attempt` until it is [`Attempt::Done`], [`Attempt::Fail`]s, or `policy.retries` more
/// attempts were [`Attempt::Retry`]. Before each retry it logs `{what}: {why}; retry {n} of
/// {max} in {secs} s` and waits the server's `after` or [`backoff`].
pub async fn retry<T, F, Fut>(
    policy: &RetryPolicy,
    what: &str,
    mut attempt: impl FnMut() -> Fut,
) -> std::result::Result<Retried<T>, Failed<F>>
where
    Fut: Future<Output = Attempt<T, F>>,
{
    let mut retries = 0u32;
    loop {
        match attempt().await {
            Attempt::Done(value) => return Ok(Retried { value, retries }),
            Attempt::Fail(why) => {
                return Err(Failed::Refused {
                    why,
                    attempts: retries + 1,
                });
            }
            Attempt::Retry { why, .. } if retries >= policy.retries => {
                return Err(Failed::Exhausted {
                    why,
                    attempts: retries + 1,
                });
            }
            Attempt::Retry { why, after } => {
                retries += 1;
                let pause = after.unwrap_or_else(|| backoff(policy.base(), retries - 1));
                tracing::warn!(
                    "{what}: {why}; retry {retries} of {} in {:.1} s",
                    policy.retries,
                    pause.as_secs_f64()
                );
                tokio::time::sleep(pause).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter() {
        let base = Duration::from_millis(500);
        for n in 0..4 {
            let wait = backoff(base, n).as_secs_f64();
            let exact = 0.5 * f64::from(1u32 << n);
            assert!(
                wait >= exact * 0.75 - 1e-9 && wait <= exact * 1.25 + 1e-9,
                "{n}: {wait}"
            );
        }
    }

    #[test]
    fn settings_outside_the_limits_are_named_by_key() {
        let ok = RetryPolicy {
            timeout_secs: 30,
            retries: 3,
            retry_base_ms: 500,
        };
        assert!(ok.check("[source]").is_ok());
        let cases = [
            (
                RetryPolicy {
                    timeout_secs: 0,
                    ..ok
                },
                "[source] timeout_secs",
            ),
            (
                RetryPolicy {
                    timeout_secs: 3601,
                    ..ok
                },
                "[source] timeout_secs",
            ),
            (RetryPolicy { retries: 21, ..ok }, "[source] retries"),
            (
                RetryPolicy {
                    retry_base_ms: 60_001,
                    ..ok
                },
                "[source] retry_base_ms",
            ),
        ];
        for (policy, named) in cases {
            let message = policy.check("[source]").unwrap_err().to_string();
            assert!(message.contains(named), "{policy:?}: {message}");
        }
    }

    fn quick(retries: u32) -> RetryPolicy {
        RetryPolicy {
            timeout_secs: 1,
            retries,
            retry_base_ms: 0,
        }
    }

    #[tokio::test]
    async fn retries_until_done_and_counts_them() {
        let mut calls = 0;
        let outcome: std::result::Result<Retried<&str>, Failed> = retry(&quick(3), "test", || {
            calls += 1;
            let now = calls;
            async move {
                if now < 3 {
                    Attempt::retry("busy")
                } else {
                    Attempt::Done("ok")
                }
            }
        })
        .await;
        let done = outcome.unwrap();
        assert_eq!((done.value, done.retries), ("ok", 2));
    }

    #[tokio::test]
    async fn gives_up_after_the_retries_with_the_last_reason() {
        let mut calls = 0;
        let outcome: std::result::Result<Retried<()>, Failed> = retry(&quick(2), "test", || {
            calls += 1;
            let now = calls;
            async move { Attempt::retry(format!("busy {now}")) }
        })
        .await;
        match outcome {
            Err(Failed::Exhausted { why, attempts }) => {
                assert_eq!((why.as_str(), attempts), ("busy 3", 3));
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_refusal_is_not_retried() {
        let mut calls = 0;
        let outcome: std::result::Result<Retried<()>, Failed<&str>> =
            retry(&quick(5), "test", || {
                calls += 1;
                let now = calls;
                async move {
                    if now == 1 {
                        Attempt::retry("busy")
                    } else {
                        Attempt::Fail("no")
                    }
                }
            })
            .await;
        match outcome {
            Err(Failed::Refused { why, attempts }) => assert_eq!((why, attempts), ("no", 2)),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn the_server_s_pause_replaces_the_backoff() {
        let mut calls = 0;
        // The backoff would be 45 s or more; the server asks for no pause at all.
        let policy = RetryPolicy {
            retry_base_ms: 60_000,
            ..quick(1)
        };
        let retrying = retry(&policy, "test", || {
            calls += 1;
            let now = calls;
            async move {
                if now == 1 {
                    Attempt::Retry {
                        why: "busy".into(),
                        after: Some(Duration::ZERO),
                    }
                } else {
                    Attempt::<(), String>::Done(())
                }
            }
        });
        let outcome = tokio::time::timeout(Duration::from_secs(10), retrying).await;
        assert!(matches!(outcome, Ok(Ok(_))), "{outcome:?}");
    }
}
