//! Throughput, latency percentiles and ratios of measured runs.

use std::time::Duration;

/// What one side did in a cell: operations, the wall time they took, and each one's latency.
#[derive(Debug, Default, Clone)]
pub(crate) struct Samples {
    latencies: Vec<Duration>,
    elapsed: Duration,
}

impl Samples {
    /// One measured run: its latencies and its wall time (first start to last end).
    pub(crate) fn new(latencies: Vec<Duration>, elapsed: Duration) -> Self {
        Self { latencies, elapsed }
    }

    /// Adds another run of the same side.
    pub(crate) fn merge(&mut self, other: Samples) {
        self.latencies.extend(other.latencies);
        self.elapsed += other.elapsed;
    }

    pub(crate) fn ops(&self) -> u64 {
        self.latencies.len() as u64
    }

    /// Operations per second of wall time, all clients together.
    pub(crate) fn ops_per_second(&self) -> f64 {
        if self.elapsed.is_zero() {
            return 0.0;
        }
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    /// The latency at percentile `p` (0 < p <= 100), by the nearest-rank method: the smallest
    /// latency that at least `p`% of operations did not exceed. `None` without operations.
    pub(crate) fn percentile(&self, p: f64) -> Option<Duration> {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        percentile_of_sorted(&sorted, p)
    }

    /// [`percentile`](Self::percentile) in milliseconds, to the microsecond.
    pub(crate) fn percentile_ms(&self, p: f64) -> Option<f64> {
        self.percentile(p).map(|d| round(d.as_secs_f64() * 1e3, 3))
    }
}

fn percentile_of_sorted(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// vellum's throughput over the baseline's: above 1 vellum is faster. `None` when the baseline
/// did nothing, which leaves nothing to compare with.
pub(crate) fn ratio(vellum_ops_s: f64, baseline_ops_s: f64) -> Option<f64> {
    (baseline_ops_s > 0.0).then(|| vellum_ops_s / baseline_ops_s)
}

/// Student's t at 97.5% for 1 to 30 degrees of freedom: the factor of a two-sided 95%
/// interval for a mean of 2 to 31 values.
const T_975: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
    2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
    2.052, 2.048, 2.045, 2.042,
];

/// Half the width of a 95% confidence interval for the mean of `values` (Student's t): how far
/// the mean of measurements like these moves from run to run. `None` for fewer than two values.
pub(crate) fn margin(values: &[f64]) -> Option<f64> {
    let n = values.len();
    if n < 2 {
        return None;
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let t = T_975.get(n - 2).copied().unwrap_or(1.96);
    Some(t * (variance / n as f64).sqrt())
}

/// What vellum's creates cost, summed over cells: the process's CPU time, the part of it spent
/// validating documents, the server's CPU time when it was measured, and how many creates.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct WriteCost {
    cpu: Duration,
    validation: Duration,
    server_cpu: Option<Duration>,
    ops: u64,
}

/// [`WriteCost`] per create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PerWrite {
    pub(crate) cpu: Duration,
    pub(crate) validation: Duration,
    pub(crate) server_cpu: Option<Duration>,
}

impl WriteCost {
    /// Adds a cell's figures; the server's CPU time counts only if every cell measured it.
    pub(crate) fn add(
        &mut self,
        cpu: Duration,
        validation: Duration,
        server_cpu: Option<Duration>,
        ops: u64,
    ) {
        self.server_cpu = match (self.ops, self.server_cpu, server_cpu) {
            (0, _, cell) => cell,
            (_, Some(total), Some(cell)) => Some(total + cell),
            _ => None,
        };
        self.cpu += cpu;
        self.validation += validation;
        self.ops += ops;
    }

    /// The costs per operation, once there was one.
    pub(crate) fn per_op(&self) -> Option<PerWrite> {
        let per_op = |total: Duration| total.div_f64(self.ops as f64);
        (self.ops > 0).then(|| PerWrite {
            cpu: per_op(self.cpu),
            validation: per_op(self.validation),
            server_cpu: self.server_cpu.map(per_op),
        })
    }
}

/// Rounds to `digits` decimals, for output that reads as a measurement and not as noise.
pub(crate) fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(values: impl IntoIterator<Item = u64>) -> Vec<Duration> {
        values.into_iter().map(Duration::from_millis).collect()
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let samples = Samples::new(ms((1..=100).rev()), Duration::from_secs(1));
        assert_eq!(samples.percentile(50.0), Some(Duration::from_millis(50)));
        assert_eq!(samples.percentile(99.0), Some(Duration::from_millis(99)));
        assert_eq!(samples.percentile(100.0), Some(Duration::from_millis(100)));
        assert_eq!(samples.percentile(0.1), Some(Duration::from_millis(1)));

        let few = Samples::new(ms([30, 10, 20]), Duration::from_secs(1));
        assert_eq!(few.percentile(50.0), Some(Duration::from_millis(20)));
        // With fewer than 100 operations, p99 is the slowest one, never an interpolation.
        assert_eq!(few.percentile(99.0), Some(Duration::from_millis(30)));

        let one = Samples::new(ms([7]), Duration::from_secs(1));
        assert_eq!(one.percentile(50.0), Some(Duration::from_millis(7)));
        assert_eq!(one.percentile(99.0), Some(Duration::from_millis(7)));
    }

    #[test]
    fn no_operations_have_no_percentile_and_no_throughput() {
        let empty = Samples::default();
        assert_eq!(empty.percentile(50.0), None);
        assert_eq!(empty.ops_per_second(), 0.0);
    }

    #[test]
    fn throughput_counts_every_run_of_a_side() {
        let mut samples = Samples::new(ms([1; 300]), Duration::from_millis(1_500));
        samples.merge(Samples::new(ms([2; 100]), Duration::from_millis(500)));
        assert_eq!(samples.ops(), 400);
        assert_eq!(samples.ops_per_second(), 200.0);
        assert_eq!(samples.percentile(99.0), Some(Duration::from_millis(2)));
    }

    #[test]
    fn ratio_is_vellum_over_baseline_and_undefined_without_a_baseline() {
        assert_eq!(ratio(800.0, 1000.0), Some(0.8));
        assert_eq!(ratio(1500.0, 1000.0), Some(1.5));
        assert_eq!(ratio(0.0, 1000.0), Some(0.0));
        assert_eq!(ratio(1000.0, 0.0), None);
    }

    #[test]
    fn the_margin_is_the_half_width_of_a_95_percent_interval_of_the_mean() {
        assert_eq!(margin(&[]), None);
        assert_eq!(margin(&[0.9]), None);
        assert_eq!(margin(&[0.5, 0.5, 0.5]), Some(0.0));
        // Mean 0.9, sample standard deviation 0.1, t(2) = 4.303: 4.303 * 0.1 / sqrt(3).
        let three = margin(&[0.8, 0.9, 1.0]).unwrap();
        assert!((three - 0.248_434).abs() < 1e-6, "{three}");
        // Past 31 values, the normal factor.
        let many: Vec<f64> = (0..40)
            .map(|i| if i % 2 == 0 { 0.8 } else { 1.0 })
            .collect();
        let expected = 1.96 * (0.4 / 39.0_f64).sqrt() / 40.0_f64.sqrt();
        assert!((margin(&many).unwrap() - expected).abs() < 1e-9);
    }

    #[test]
    fn write_cost_per_operation_needs_operations() {
        let mut cost = WriteCost::default();
        assert_eq!(cost.per_op(), None);
        let ms = Duration::from_millis;
        cost.add(ms(30), ms(2), Some(ms(80)), 100);
        cost.add(ms(10), ms(1), Some(ms(20)), 100);
        assert_eq!(
            cost.per_op(),
            Some(PerWrite {
                cpu: Duration::from_micros(200),
                validation: Duration::from_micros(15),
                server_cpu: Some(Duration::from_micros(500)),
            })
        );
        // A cell that could not measure the server leaves the server's share unknown.
        cost.add(ms(10), ms(1), None, 100);
        assert_eq!(cost.per_op().unwrap().server_cpu, None);
        cost.add(ms(10), ms(1), Some(ms(20)), 100);
        assert_eq!(cost.per_op().unwrap().server_cpu, None);
    }

    #[test]
    fn rounding_keeps_the_given_decimals() {
        assert_eq!(round(1234.5678, 1), 1234.6);
        assert_eq!(round(0.123456, 3), 0.123);
    }
}
