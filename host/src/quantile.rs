//! Quantiles of timing samples, as `policy bench` and the repository's
//! benchmarks report them.

use std::time::Duration;

/// The `p`-quantile (0 ≤ p ≤ 1) of `sorted` samples: the sample at rank
/// `round((n - 1) × p)`, so p50 and p99 are samples that were measured, not
/// interpolated. `sorted` must be non-empty and in ascending order.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quantile_is_the_sample_at_the_rounded_rank() {
        let samples: Vec<Duration> = (1..=101).map(Duration::from_micros).collect();
        assert_eq!(percentile(&samples, 0.0), Duration::from_micros(1));
        assert_eq!(percentile(&samples, 0.5), Duration::from_micros(51));
        assert_eq!(percentile(&samples, 0.99), Duration::from_micros(100));
        assert_eq!(percentile(&samples, 1.0), Duration::from_micros(101));
        assert_eq!(percentile(&samples[..1], 0.99), Duration::from_micros(1));
    }
}
