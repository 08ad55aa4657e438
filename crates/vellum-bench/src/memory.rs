//! Whether the process's memory stayed flat over a soak: the resident-memory samples, a
//! least-squares line through those after the warm-up, and the verdict.

use std::time::Duration;

use serde::Serialize;

use crate::{Error, Result, stats::round};

/// The share of a soak, from its start, that the verdict ignores: the allocator's arenas, the
/// connection pools, the caches and the clients' keep-alive connections fill up during it.
pub(crate) const WARMUP_SHARE: f64 = 0.2;

/// Memory is flat when the fitted line rises by less than this share of the RSS at the start
/// of the measured window, over that window. 5% of the harness's ~30 MiB is 1.5 MiB: over the
/// four measured minutes of a 5-minute soak at ~1,800 requests a second, a leak of 4 bytes per
/// request would exceed it, while allocator noise of a few hundred KiB does not.
pub(crate) const MAX_GROWTH_SHARE: f64 = 0.05;

/// The soak length the target of issue 7 asks for: a 5-minute run.
pub(crate) const TARGET_SECONDS: f64 = 300.0;

/// The sample interval of a soak: every 5 seconds, or a twentieth of a shorter soak, so even a
/// short one has enough samples after its warm-up for a line.
pub(crate) fn sample_interval(soak: Duration) -> Duration {
    (soak / 20).min(Duration::from_secs(5))
}

/// One sample of a soak.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[non_exhaustive]
pub struct RssSample {
    /// Seconds since the load started.
    pub t_s: f64,
    /// Resident memory of the process (`VmRSS`), in MiB.
    pub rss_mib: f64,
    /// Operations the clients had completed.
    pub ops: u64,
}

impl RssSample {
    pub(crate) fn new(t: Duration, rss_mib: f64, ops: u64) -> Self {
        Self {
            t_s: round(t.as_secs_f64(), 2),
            rss_mib,
            ops,
        }
    }
}

/// The memory soak of `vellum bench --soak SECONDS`: the in-process HTTP server under a mixed
/// load, and the resident memory of the process (library, server and load generator; not
/// PostgreSQL, whose growth is the database's) over the run. Serializes to the `"soak"` object
/// of the JSON report.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct SoakResult {
    /// The length of the soak asked for, in seconds.
    pub seconds: f64,
    /// Concurrent HTTP clients.
    pub clients: usize,
    /// Operations completed, every answer checked.
    pub ops: u64,
    /// Operations per second over the whole soak.
    pub ops_s: f64,
    /// RSS and operations over time, from the start of the load to its end.
    pub samples: Vec<RssSample>,
    /// RSS at the first sample after the warm-up (the first fifth of the soak).
    pub rss_start_mib: f64,
    /// RSS at the last sample.
    pub rss_end_mib: f64,
    /// The slope of the least-squares line through the samples after the warm-up.
    pub growth_mib_per_min: f64,
    /// Whether that line rises by less than 5% of `rss_start_mib` over the measured window.
    pub flat: bool,
}

impl SoakResult {
    /// Judges the samples of a soak of `seconds` that did `ops` operations in `elapsed`.
    pub(crate) fn new(
        seconds: f64,
        clients: usize,
        ops: u64,
        elapsed: Duration,
        samples: Vec<RssSample>,
    ) -> Result<Self> {
        let growth = judge(&samples, seconds)?;
        Ok(Self {
            seconds,
            clients,
            ops,
            ops_s: round(ops as f64 / elapsed.as_secs_f64().max(f64::MIN_POSITIVE), 1),
            samples,
            rss_start_mib: growth.rss_start_mib,
            rss_end_mib: growth.rss_end_mib,
            growth_mib_per_min: round(growth.mib_per_min, 3),
            flat: growth.flat,
        })
    }

    /// The seconds of the measured window (after the warm-up).
    pub fn window_s(&self) -> f64 {
        let window = self.window();
        match (window.first(), window.last()) {
            (Some(first), Some(last)) => last.t_s - first.t_s,
            _ => 0.0,
        }
    }

    fn window(&self) -> &[RssSample] {
        measured_window(&self.samples, self.seconds)
    }
}

/// The samples at or after the warm-up.
fn measured_window(samples: &[RssSample], seconds: f64) -> &[RssSample] {
    let from = samples
        .iter()
        .position(|s| s.t_s >= WARMUP_SHARE * seconds)
        .unwrap_or(samples.len());
    &samples[from..]
}

/// A straight line `y = intercept + slope * x`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Line {
    pub(crate) slope: f64,
    pub(crate) intercept: f64,
}

/// The least-squares line through `points`; `None` for fewer than two distinct `x`.
pub(crate) fn fit_line(points: &[(f64, f64)]) -> Option<Line> {
    let n = points.len() as f64;
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    // An empty slice sums to zero here too; NaN only comes from NaN input.
    if sxx <= 0.0 || sxx.is_nan() {
        return None;
    }
    let slope = sxy / sxx;
    Some(Line {
        slope,
        intercept: mean_y - slope * mean_x,
    })
}

/// How resident memory moved over the measured window of a soak.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Growth {
    pub(crate) rss_start_mib: f64,
    pub(crate) rss_end_mib: f64,
    pub(crate) mib_per_min: f64,
    pub(crate) flat: bool,
}

/// The verdict on a soak of `seconds`: drop the samples of the warm-up, fit a line through the
/// rest, and call memory flat when the line's rise over the window (slope × window length) is
/// below [`MAX_GROWTH_SHARE`] of the RSS at the window's start. A falling line is flat.
pub(crate) fn judge(samples: &[RssSample], seconds: f64) -> Result<Growth> {
    let window = measured_window(samples, seconds);
    let points: Vec<(f64, f64)> = window.iter().map(|s| (s.t_s, s.rss_mib)).collect();
    let (Some(line), Some(first), Some(last)) = (fit_line(&points), window.first(), window.last())
    else {
        return Err(Error::Check(format!(
            "a soak needs two samples after its warm-up to fit a line; it has {}",
            window.len()
        )));
    };
    let rise = line.slope * (last.t_s - first.t_s);
    Ok(Growth {
        rss_start_mib: first.rss_mib,
        rss_end_mib: last.rss_mib,
        mib_per_min: line.slope * 60.0,
        flat: rise < MAX_GROWTH_SHARE * first.rss_mib,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 300 s soak sampled every 5 s, RSS given by `rss(t)`.
    fn series(rss: impl Fn(f64) -> f64) -> Vec<RssSample> {
        (0..=60)
            .map(|i| {
                let t = i as f64 * 5.0;
                RssSample {
                    t_s: t,
                    rss_mib: rss(t),
                    ops: i * 1_000,
                }
            })
            .collect()
    }

    /// Deterministic noise of up to ±3 MiB, with no trend.
    fn noise(t: f64) -> f64 {
        [3.0, -2.5, 0.5, -3.0, 2.0, -1.0, 1.5, -0.5][(t / 5.0) as usize % 8]
    }

    #[test]
    fn a_line_through_exact_points_is_found_and_degenerate_sets_have_none() {
        let line = fit_line(&[(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)]).unwrap();
        assert!((line.slope - 2.0).abs() < 1e-12 && (line.intercept - 1.0).abs() < 1e-12);
        // Least squares, not endpoints: the middle point pulls the intercept, not the slope.
        let line = fit_line(&[(0.0, 0.0), (1.0, 3.0), (2.0, 0.0)]).unwrap();
        assert!(line.slope.abs() < 1e-12 && (line.intercept - 1.0).abs() < 1e-12);
        assert_eq!(fit_line(&[]), None);
        assert_eq!(fit_line(&[(1.0, 5.0)]), None);
        assert_eq!(fit_line(&[(1.0, 5.0), (1.0, 7.0)]), None);
    }

    #[test]
    fn the_verdict_is_flat_only_without_growth_after_the_warm_up() {
        type Rss = fn(f64) -> f64;
        let cases: [(&str, Rss, bool); 7] = [
            ("flat", |_| 40.0, true),
            ("noisy flat", |t| 40.0 + noise(t), true),
            ("growing 1 MiB a minute", |t| 40.0 + t / 60.0, false),
            ("noisy and growing", |t| 40.0 + t / 60.0 + noise(t), false),
            // 0.4 MiB a minute: 1.6 MiB over the 4-minute window, under 5% of 40.
            (
                "growing slower than the rule",
                |t| 40.0 + 0.4 * t / 60.0,
                true,
            ),
            // Steep growth only in the first fifth, then flat: the warm-up does not count.
            ("warm-up then flat", |t| 20.0 + t.min(55.0) * 0.4, true),
            ("shrinking", |t| 60.0 - t / 30.0, true),
        ];
        for (name, rss, flat) in cases {
            let growth = judge(&series(rss), 300.0).unwrap();
            assert_eq!(growth.flat, flat, "{name}: {growth:?}");
        }
    }

    #[test]
    fn growth_is_reported_per_minute_from_the_end_of_the_warm_up() {
        let growth = judge(&series(|t| 40.0 + 2.0 * t / 60.0), 300.0).unwrap();
        assert!((growth.mib_per_min - 2.0).abs() < 1e-9, "{growth:?}");
        assert_eq!(growth.rss_start_mib, 42.0);
        assert_eq!(growth.rss_end_mib, 50.0);
        assert!(!growth.flat);
    }

    #[test]
    fn a_soak_without_two_samples_after_its_warm_up_has_no_verdict() {
        let samples = series(|_| 40.0);
        assert!(judge(&samples[..2], 300.0).is_err());
        assert!(judge(&samples[..14], 300.0).is_ok());
    }

    #[test]
    fn the_result_carries_the_verdict_and_throughput() {
        let result = SoakResult::new(
            300.0,
            8,
            60_000,
            Duration::from_secs(300),
            series(|t| 40.0 + t / 60.0),
        )
        .unwrap();
        assert_eq!(result.ops_s, 200.0);
        assert_eq!((result.rss_start_mib, result.rss_end_mib), (41.0, 45.0));
        assert_eq!(result.growth_mib_per_min, 1.0);
        assert!(!result.flat);
        assert_eq!(result.window_s(), 240.0);
    }

    #[test]
    fn short_soaks_sample_a_twentieth_of_their_length() {
        assert_eq!(
            sample_interval(Duration::from_secs(300)),
            Duration::from_secs(5)
        );
        assert_eq!(
            sample_interval(Duration::from_secs(4)),
            Duration::from_millis(200)
        );
    }
}
