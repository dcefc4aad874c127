//! How every remote party is retried: sources fetching from Toss or FTP, sinks delivering to a
//! database or a webhook. One rule keeps their behaviour predictable for operators: wait
//! `base × 2^n` before retry `n`, with ±25 % jitter so that many clients do not retry in step.

use std::time::Duration;

/// The pause before retry `n` (0-based): `base × 2^n`, ±25 % jitter.
pub fn backoff(base: Duration, n: u32) -> Duration {
    use std::hash::BuildHasher;
    let exact = base.saturating_mul(1u32 << n.min(16));
    let random = std::collections::hash_map::RandomState::new().hash_one(n);
    let factor = 0.75 + (random % 1001) as f64 / 2000.0;
    exact.mul_f64(factor)
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
}
