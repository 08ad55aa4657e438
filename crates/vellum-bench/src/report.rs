//! The results: one row per (workload, clients), the targets of issue 7, and the table.

use std::fmt::Write;

use serde::{Serialize, Serializer, ser::SerializeMap};

use crate::{
    SoakResult, Workload,
    driver::Comparison,
    memory::{MAX_GROWTH_SHARE, TARGET_SECONDS},
    stats::{self, round},
};

/// What a run measured. Serializes to the JSON of `vellum bench --json`: the issue's
/// `{"workloads": [...], "peak_rss_mib": ...}`, then `"soak": {...}` when the run had a soak,
/// `"validation": {...}` when `create` ran, `"history_growth": {...}` when a pair of depth
/// workloads ran, and `"targets": [...]`, where each target of issue 7 stands (what the table
/// ends with).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Report {
    /// One entry per workload and client count, in the order they ran.
    pub workloads: Vec<WorkloadResult>,
    /// Peak resident memory of the benchmark process (load generator, server and library
    /// together), from `VmHWM`; `None` off Linux.
    pub peak_rss_mib: Option<f64>,
    /// The cost of schema validation within vellum's create, when `create` ran.
    pub validation: Option<ValidationCost>,
    /// As-of latency on 10,000 versions against 10, when `as_of_depth_10` and
    /// `as_of_depth_10000` ran.
    pub as_of_depth: Option<DepthCost>,
    /// Latest-read latency on 10,000 versions against 10, when `latest_depth_10` and
    /// `latest_depth_10000` ran.
    pub latest_depth: Option<DepthCost>,
    /// The memory soak, when the run had one.
    pub soak: Option<SoakResult>,
}

impl Serialize for Report {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("workloads", &self.workloads)?;
        map.serialize_entry("peak_rss_mib", &self.peak_rss_mib)?;
        if let Some(soak) = &self.soak {
            map.serialize_entry("soak", soak)?;
        }
        if let Some(validation) = &self.validation {
            map.serialize_entry("validation", validation)?;
        }
        if self.as_of_depth.is_some() || self.latest_depth.is_some() {
            #[derive(Serialize)]
            struct Growth<'a> {
                #[serde(skip_serializing_if = "Option::is_none")]
                as_of: Option<&'a DepthCost>,
                #[serde(skip_serializing_if = "Option::is_none")]
                latest: Option<&'a DepthCost>,
            }
            let growth = Growth {
                as_of: self.as_of_depth.as_ref(),
                latest: self.latest_depth.as_ref(),
            };
            map.serialize_entry("history_growth", &growth)?;
        }
        map.serialize_entry("targets", &self.targets())?;
        map.end()
    }
}

/// One workload at one client count.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct WorkloadResult {
    /// The workload ([`Workload::name`]).
    pub name: String,
    /// Concurrent clients on each side.
    pub clients: usize,
    /// Operations per second through vellum (for `http_*`: through the HTTP server).
    pub vellum_ops_s: f64,
    /// Operations per second of the baseline (for `http_*`: the library called in-process).
    pub baseline_ops_s: f64,
    /// `vellum_ops_s / baseline_ops_s`; `None` if the baseline did nothing.
    pub ratio: Option<f64>,
    /// Median latency of vellum's operations, in milliseconds.
    pub p50_ms: f64,
    /// 99th-percentile latency of vellum's operations, in milliseconds.
    pub p99_ms: f64,
    /// How far the ratio's rounds spread in this run: half the width of a 95% confidence
    /// interval for the mean of the per-round ratios (Student's t over the rounds, each round's
    /// two runs side by side). Runs at other moments of a shared machine can differ by more.
    /// `None` with fewer than two rounds.
    pub ratio_margin: Option<f64>,
}

impl WorkloadResult {
    pub(crate) fn new(workload: Workload, clients: usize, comparison: &Comparison) -> Self {
        let vellum_ops_s = comparison.vellum.ops_per_second();
        let baseline_ops_s = comparison.baseline.ops_per_second();
        let ms = |p| comparison.vellum.percentile_ms(p).unwrap_or(0.0);
        Self {
            name: workload.name().to_string(),
            clients,
            vellum_ops_s: round(vellum_ops_s, 1),
            baseline_ops_s: round(baseline_ops_s, 1),
            ratio: stats::ratio(vellum_ops_s, baseline_ops_s).map(|r| round(r, 3)),
            p50_ms: ms(50.0),
            p99_ms: ms(99.0),
            ratio_margin: stats::margin(&comparison.round_ratios).map(|m| round(m, 3)),
        }
    }

    /// Whether `line` lies within `ratio ± ratio_margin`: this run cannot tell the two apart.
    fn within_margin(&self, line: f64) -> bool {
        match (self.ratio, self.ratio_margin) {
            (Some(ratio), Some(margin)) => (ratio - line).abs() <= margin,
            _ => false,
        }
    }
}

/// The time vellum's creates spent validating their documents, against the CPU time of the
/// whole process per create (unit of work, validation, SQL encoding, driver, runtime), both
/// measured over the same rounds of `create`; and, when PostgreSQL runs on this machine, the
/// CPU time of its processes over those rounds.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct ValidationCost {
    /// Microseconds per create spent validating its document, as the store counted it
    /// ([`vellum::UowStats::validation_time`]).
    pub validate_us: f64,
    /// Microseconds of process CPU per vellum create, over the measured rounds of `create`.
    pub write_cpu_us: f64,
    /// Microseconds of the PostgreSQL server's CPU per vellum create (its backends and
    /// background processes), over the same rounds; `None` when the server is not on this
    /// machine.
    pub server_cpu_us: Option<f64>,
}

impl ValidationCost {
    /// Validation as a share of write CPU, in percent: the process's CPU, which the target is
    /// judged on.
    pub fn percent(&self) -> f64 {
        100.0 * self.validate_us / self.write_cpu_us
    }

    /// Validation as a share of the process's and the server's CPU together, in percent: what
    /// a create costs the machine.
    pub fn percent_with_server(&self) -> Option<f64> {
        self.server_cpu_us
            .map(|server| 100.0 * self.validate_us / (self.write_cpu_us + server))
    }
}

/// `{"validate_us", "write_cpu_us", "percent", "server_cpu_us", "percent_with_server"}`,
/// rounded as the table shows them; the last two are null when the server was not measured.
impl Serialize for ValidationCost {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(5))?;
        map.serialize_entry("validate_us", &round(self.validate_us, 1))?;
        map.serialize_entry("write_cpu_us", &round(self.write_cpu_us, 1))?;
        map.serialize_entry("percent", &round(self.percent(), 2))?;
        map.serialize_entry("server_cpu_us", &self.server_cpu_us.map(|us| round(us, 1)))?;
        map.serialize_entry(
            "percent_with_server",
            &self.percent_with_server().map(|p| round(p, 2)),
        )?;
        map.end()
    }
}

/// Median latency of vellum's reads of one kind (as of a time, or the latest version) on an
/// entity with 10,000 versions and on one with 10, measured round by round in the same cell at
/// the run's smallest client count.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct DepthCost {
    /// Concurrent clients on each side.
    pub clients: usize,
    /// p50 of the reads on 10,000 versions, in milliseconds.
    pub deep_p50_ms: f64,
    /// p50 of the reads on 10 versions, in milliseconds.
    pub shallow_p50_ms: f64,
}

impl DepthCost {
    pub(crate) fn new(clients: usize, comparison: &Comparison) -> Option<Self> {
        Some(Self {
            clients,
            deep_p50_ms: comparison.vellum.percentile_ms(50.0)?,
            shallow_p50_ms: comparison.baseline.percentile_ms(50.0)?,
        })
    }

    /// The deep p50 over the shallow one; `None` if the shallow one is zero.
    pub fn ratio(&self) -> Option<f64> {
        (self.shallow_p50_ms > 0.0).then(|| self.deep_p50_ms / self.shallow_p50_ms)
    }

    /// The ratio and the two p50s, as the table and the target line show them.
    fn describe(&self, ratio: f64) -> String {
        format!(
            "{ratio:.3}x ({:.3} ms vs {:.3} ms at {} client{}, same rounds)",
            self.deep_p50_ms,
            self.shallow_p50_ms,
            self.clients,
            if self.clients == 1 { "" } else { "s" }
        )
    }
}

/// `{"clients", "deep_p50_ms", "shallow_p50_ms", "ratio"}`; `ratio` is null when the shallow
/// p50 is zero.
impl Serialize for DepthCost {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(4))?;
        map.serialize_entry("clients", &self.clients)?;
        map.serialize_entry("deep_p50_ms", &self.deep_p50_ms)?;
        map.serialize_entry("shallow_p50_ms", &self.shallow_p50_ms)?;
        map.serialize_entry("ratio", &self.ratio().map(|ratio| round(ratio, 3)))?;
        map.end()
    }
}

/// Where a target of issue 7 stands in this run.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Status {
    /// Met at every client count measured.
    Met,
    /// Missed at some client count.
    NotMet,
    /// This run did not measure it; the string says why.
    NotMeasured(String),
}

/// One target of issue 7 and where it stands.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Target {
    /// The target, as the issue states it.
    pub goal: &'static str,
    /// Met or not, or why it was not measured.
    pub status: Status,
    /// The numbers it was judged on.
    pub detail: String,
}

/// `{"goal", "status", "detail"}`, `status` one of `"met"`, `"not_met"` and `"not_measured"`;
/// a target not measured has a `"reason"` after its status.
impl Serialize for Target {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("goal", self.goal)?;
        match &self.status {
            Status::Met => map.serialize_entry("status", "met")?,
            Status::NotMet => map.serialize_entry("status", "not_met")?,
            Status::NotMeasured(reason) => {
                map.serialize_entry("status", "not_measured")?;
                map.serialize_entry("reason", reason)?;
            }
        }
        map.serialize_entry("detail", &self.detail)?;
        map.end()
    }
}

impl Report {
    fn rows(&self, name: &str) -> Vec<&WorkloadResult> {
        self.workloads.iter().filter(|w| w.name == name).collect()
    }

    /// A ratio target on one workload: met when the ratio reaches `min` at every client count.
    fn ratio_target(&self, goal: &'static str, workload: Workload, min: f64) -> Target {
        let rows = self.rows(workload.name());
        if rows.is_empty() {
            return Target {
                goal,
                status: Status::NotMeasured(format!("{workload} did not run")),
                detail: String::new(),
            };
        }
        let met = rows
            .iter()
            .all(|r| r.ratio.is_some_and(|ratio| ratio >= min));
        let mut detail = rows
            .iter()
            .map(|r| match (r.ratio, r.ratio_margin) {
                // Three decimals, as judged: 0.898 must not read as 0.90.
                (Some(ratio), Some(margin)) => format!("{ratio:.3}x ±{margin:.3} at {}", r.clients),
                (Some(ratio), None) => format!("{ratio:.3}x at {}", r.clients),
                (None, _) => format!("no baseline at {}", r.clients),
            })
            .collect::<Vec<_>>()
            .join(", ");
        let under: Vec<_> = rows
            .iter()
            .filter(|r| r.ratio.is_some_and(|ratio| ratio < min))
            .collect();
        if !under.is_empty() && under.iter().all(|r| r.within_margin(min)) {
            detail.push_str("; the line is within the margin of each cell under it");
        }
        Target {
            goal,
            status: if met { Status::Met } else { Status::NotMet },
            detail,
        }
    }

    /// Every target of issue 7, with where it stands in this run.
    pub fn targets(&self) -> Vec<Target> {
        let mut targets = vec![
            self.ratio_target("create >= 0.8x raw", Workload::Create, 0.8),
            self.ratio_target("update >= 0.8x raw", Workload::Update, 0.8),
            self.validation_target(),
            self.ratio_target("get_latest >= 0.9x raw", Workload::GetLatest, 0.9),
            self.ratio_target("get_version >= 0.9x raw", Workload::GetVersion, 0.9),
            self.ratio_target("get_as_of >= 0.9x raw", Workload::GetAsOf, 0.9),
            self.depth_target(),
            self.ratio_target(
                "get_many (100 ids) >= 0.9x raw = ANY($1)",
                Workload::GetMany,
                0.9,
            ),
            self.ratio_target("http_get >= 0.5x the library's get", Workload::HttpGet, 0.5),
        ];
        targets.push(self.ratio_target(
            "bulk_import >= 0.7x raw binary COPY",
            Workload::BulkImport,
            0.7,
        ));
        targets.push(self.memory_target());
        targets
    }

    /// Met when a soak of at least 5 minutes found memory flat. A shorter soak that found
    /// growth misses it; a shorter one that found none cannot say.
    fn memory_target(&self) -> Target {
        let goal = "server memory flat over a 5-minute run";
        let Some(soak) = &self.soak else {
            return Target {
                goal,
                status: Status::NotMeasured("run with --soak 300".into()),
                detail: self
                    .peak_rss_mib
                    .map(|mib| format!("peak RSS {mib} MiB"))
                    .unwrap_or_default(),
            };
        };
        let long_enough = soak.seconds >= TARGET_SECONDS;
        let status = match (soak.flat, long_enough) {
            (true, true) => Status::Met,
            (false, _) => Status::NotMet,
            (true, false) => Status::NotMeasured(format!(
                "the soak ran {:.0} s, shorter than {TARGET_SECONDS:.0} s; run with --soak 300",
                soak.seconds
            )),
        };
        let mut detail = format!(
            "{:+.2} MiB/min, {} -> {} MiB",
            soak.growth_mib_per_min, soak.rss_start_mib, soak.rss_end_mib
        );
        if !long_enough && !soak.flat {
            let _ = write!(detail, ", in a soak of only {:.0} s", soak.seconds);
        }
        Target {
            goal,
            status,
            detail,
        }
    }

    fn validation_target(&self) -> Target {
        let goal = "schema validation < 5% of write CPU";
        match self.validation {
            Some(cost) => Target {
                goal,
                status: if cost.percent() < 5.0 {
                    Status::Met
                } else {
                    Status::NotMet
                },
                detail: {
                    let mut detail = format!(
                        "{:.1}%: {:.1} us validating per create, {:.0} us of CPU per create",
                        cost.percent(),
                        cost.validate_us,
                        cost.write_cpu_us
                    );
                    if let (Some(server), Some(percent)) =
                        (cost.server_cpu_us, cost.percent_with_server())
                    {
                        let _ = write!(
                            detail,
                            "; {percent:.1}% counting PostgreSQL's {server:.0} us too"
                        );
                    }
                    detail
                },
            },
            None => Target {
                goal,
                status: Status::NotMeasured("create did not run".into()),
                detail: String::new(),
            },
        }
    }

    /// p50 of as-of reads on 10,000 versions against 10, measured in the same rounds.
    fn depth_target(&self) -> Target {
        let goal = "as-of p50 with 10,000 versions <= 1.2x with 10";
        match self
            .as_of_depth
            .and_then(|depth| Some((depth, depth.ratio()?)))
        {
            Some((depth, ratio)) => Target {
                goal,
                status: if ratio <= 1.2 {
                    Status::Met
                } else {
                    Status::NotMet
                },
                detail: depth.describe(ratio),
            },
            None => Target {
                goal,
                status: Status::NotMeasured("needs as_of_depth_10 and as_of_depth_10000".into()),
                detail: String::new(),
            },
        }
    }

    /// The results as a table, then peak memory and the targets.
    pub fn table(&self) -> String {
        let mut out = String::new();
        // A soak run alone has no workload rows, and no header for them.
        if !self.workloads.is_empty() {
            let _ = writeln!(
                out,
                "{:<18} {:>7} {:>12} {:>14} {:>12} {:>8} {:>8}",
                "workload",
                "clients",
                "vellum ops/s",
                "baseline ops/s",
                "ratio",
                "p50 ms",
                "p99 ms"
            );
        }
        for w in &self.workloads {
            let ratio = match (w.ratio, w.ratio_margin) {
                (Some(r), Some(m)) => format!("{r:.2} ±{m:.2}"),
                (Some(r), None) => format!("{r:.2}"),
                (None, _) => "-".to_string(),
            };
            let _ = writeln!(
                out,
                "{:<18} {:>7} {:>12.1} {:>14.1} {:>12} {:>8.3} {:>8.3}",
                w.name, w.clients, w.vellum_ops_s, w.baseline_ops_s, ratio, w.p50_ms, w.p99_ms
            );
        }
        if let Some(soak) = &self.soak {
            if !out.is_empty() {
                out.push('\n');
            }
            let _ = writeln!(
                out,
                "soak: {:.0} s, {} HTTP clients, {:.1} ops/s ({} operations)",
                soak.seconds, soak.clients, soak.ops_s, soak.ops
            );
            let _ = writeln!(
                out,
                "  RSS {} MiB -> {} MiB over the last {:.0} s (the first {:.0}% is warm-up)",
                soak.rss_start_mib,
                soak.rss_end_mib,
                soak.window_s(),
                crate::memory::WARMUP_SHARE * 100.0
            );
            let _ = writeln!(
                out,
                "  slope {:+.3} MiB/min: {} (rule: the line's rise over the window < {:.0}% of \
                 the start)",
                soak.growth_mib_per_min,
                if soak.flat { "flat" } else { "GROWING" },
                MAX_GROWTH_SHARE * 100.0
            );
        }
        if let Some(mib) = self.peak_rss_mib {
            let _ = writeln!(out, "\npeak RSS: {mib} MiB");
        }
        let depths = [("as-of", self.as_of_depth), ("latest", self.latest_depth)];
        let depths: Vec<_> = depths
            .into_iter()
            .filter_map(|(read, depth)| Some((read, depth?, depth?.ratio()?)))
            .collect();
        if !depths.is_empty() {
            let _ = writeln!(
                out,
                "\nhistory growth (vellum's p50 with 10,000 versions against 10):"
            );
            for (read, depth, ratio) in depths {
                let _ = writeln!(out, "  {read:<8} {}", depth.describe(ratio));
            }
        }
        let _ = writeln!(out, "\ntargets (issue 7):");
        for target in self.targets() {
            let status = match &target.status {
                Status::Met => "met".to_string(),
                Status::NotMet => "NOT MET".to_string(),
                Status::NotMeasured(why) => format!("not measured: {why}"),
            };
            let detail = if target.detail.is_empty() {
                String::new()
            } else {
                format!(" ({})", target.detail)
            };
            let _ = writeln!(out, "  {:<48} {status}{detail}", target.goal);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, clients: usize, ratio: f64, p50_ms: f64) -> WorkloadResult {
        WorkloadResult {
            name: name.into(),
            clients,
            vellum_ops_s: 1000.0 * ratio,
            baseline_ops_s: 1000.0,
            ratio: Some(ratio),
            p50_ms,
            p99_ms: p50_ms * 2.0,
            ratio_margin: None,
        }
    }

    fn with_margin(row: WorkloadResult, margin: f64) -> WorkloadResult {
        WorkloadResult {
            ratio_margin: Some(margin),
            ..row
        }
    }

    fn report(workloads: Vec<WorkloadResult>) -> Report {
        Report {
            workloads,
            peak_rss_mib: Some(42.0),
            validation: Some(ValidationCost {
                validate_us: 10.0,
                write_cpu_us: 400.0,
                server_cpu_us: None,
            }),
            as_of_depth: None,
            latest_depth: None,
            soak: None,
        }
    }

    /// A soak of `seconds` sampled every 5 s, RSS growing by `mib_per_min`.
    fn soak(seconds: u32, mib_per_min: f64) -> SoakResult {
        let samples = (0..=seconds / 5)
            .map(|i| {
                let t = f64::from(i * 5);
                crate::RssSample {
                    t_s: t,
                    rss_mib: 40.0 + mib_per_min * t / 60.0,
                    ops: u64::from(i) * 100,
                }
            })
            .collect();
        let elapsed = std::time::Duration::from_secs(seconds.into());
        SoakResult::new(f64::from(seconds), 8, 6_000, elapsed, samples).unwrap()
    }

    fn with_soak(soak: SoakResult) -> Report {
        Report {
            soak: Some(soak),
            ..report(vec![])
        }
    }

    /// History growth measured at 1 client: vellum's p50 on the deep history against the shallow.
    fn depth(deep_p50_ms: f64, shallow_p50_ms: f64) -> Option<DepthCost> {
        Some(DepthCost {
            clients: 1,
            deep_p50_ms,
            shallow_p50_ms,
        })
    }

    fn keys(json: &serde_json::Value) -> Vec<&str> {
        json.as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect()
    }

    fn status(report: &Report, goal_prefix: &str) -> Status {
        report
            .targets()
            .into_iter()
            .find(|t| t.goal.starts_with(goal_prefix))
            .unwrap()
            .status
    }

    #[test]
    fn a_ratio_target_is_met_only_at_every_client_count() {
        let report = report(vec![
            row("create", 1, 0.85, 1.0),
            row("create", 8, 0.75, 1.0),
            row("get_latest", 1, 0.95, 0.2),
            row("get_latest", 8, 0.91, 0.3),
        ]);
        assert_eq!(status(&report, "create"), Status::NotMet);
        assert_eq!(status(&report, "get_latest"), Status::Met);
        assert!(matches!(status(&report, "update"), Status::NotMeasured(_)));
        assert!(matches!(
            status(&report, "bulk_import"),
            Status::NotMeasured(_)
        ));
        assert_eq!(status(&report, "schema validation"), Status::Met);
    }

    #[test]
    fn the_validation_share_is_judged_on_the_process_and_shown_with_the_server_too() {
        let cost = ValidationCost {
            validate_us: 10.0,
            write_cpu_us: 100.0,
            server_cpu_us: Some(400.0),
        };
        let measured = Report {
            validation: Some(cost),
            ..report(vec![])
        };
        // 10% of the process's CPU misses the target, whatever the server's share (2%).
        assert_eq!(status(&measured, "schema validation"), Status::NotMet);
        let table = measured.table();
        assert!(
            table.contains(
                "NOT MET (10.0%: 10.0 us validating per create, 100 us of CPU per create; \
                 2.0% counting PostgreSQL's 400 us too)"
            ),
            "{table}"
        );
        let json = serde_json::to_value(&measured).unwrap();
        assert_eq!(json["validation"]["server_cpu_us"], 400.0);
        assert_eq!(json["validation"]["percent_with_server"], 2.0);
    }

    #[test]
    fn the_depth_target_compares_the_p50s_measured_in_the_same_rounds() {
        let with_depth = |deep_p50_ms| Report {
            as_of_depth: depth(deep_p50_ms, 0.50),
            ..report(Vec::new())
        };
        assert_eq!(status(&with_depth(0.55), "as-of p50"), Status::Met);
        assert_eq!(status(&with_depth(2.0), "as-of p50"), Status::NotMet);
        // The two workloads' own cells, run apart, are not what it is judged on.
        let cells_only = report(vec![
            row("as_of_depth_10", 1, 0.9, 0.50),
            row("as_of_depth_10000", 1, 0.9, 0.55),
        ]);
        assert!(matches!(
            status(&cells_only, "as-of p50"),
            Status::NotMeasured(_)
        ));
    }

    #[test]
    fn the_table_shows_history_growth_for_each_read_measured_in_the_same_rounds() {
        let latest_only = Report {
            latest_depth: depth(0.102, 0.100),
            ..report(Vec::new())
        };
        let table = latest_only.table();
        assert!(
            table.contains("latest   1.020x (0.102 ms vs 0.100 ms at 1 client, same rounds)"),
            "{table}"
        );
        assert!(!table.contains("as-of    "), "{table}");
        // The latest reads have no target of their own: only the as-of ones are judged.
        assert!(matches!(
            status(&latest_only, "as-of p50"),
            Status::NotMeasured(_)
        ));
        let both = Report {
            as_of_depth: depth(0.130, 0.100),
            ..latest_only
        };
        let table = both.table();
        assert!(table.contains("as-of    1.300x"), "{table}");
        assert!(table.contains("latest   1.020x"), "{table}");
        assert_eq!(status(&both, "as-of p50"), Status::NotMet);
    }

    #[test]
    fn json_has_the_issue_fields_then_what_the_targets_were_judged_on() {
        let json = serde_json::to_value(report(vec![row("get_many", 8, 0.5, 1.25)])).unwrap();
        assert_eq!(
            keys(&json),
            ["workloads", "peak_rss_mib", "validation", "targets"]
        );
        assert_eq!(
            json["workloads"],
            serde_json::json!([{"name": "get_many", "clients": 8, "vellum_ops_s": 500.0,
                                "baseline_ops_s": 1000.0, "ratio": 0.5, "p50_ms": 1.25,
                                "p99_ms": 2.5, "ratio_margin": null}])
        );
        assert_eq!(json["peak_rss_mib"], 42.0);
        assert_eq!(
            json["validation"],
            serde_json::json!({"validate_us": 10.0, "write_cpu_us": 400.0, "percent": 2.5,
                               "server_cpu_us": null, "percent_with_server": null})
        );
        let targets = json["targets"].as_array().unwrap();
        assert_eq!(targets.len(), report(vec![]).targets().len());
        let target = |goal: &str| {
            targets
                .iter()
                .find(|t| t["goal"].as_str().unwrap().starts_with(goal))
                .unwrap()
                .clone()
        };
        assert_eq!(
            target("get_many"),
            serde_json::json!({"goal": "get_many (100 ids) >= 0.9x raw = ANY($1)",
                               "status": "not_met", "detail": "0.500x at 8"})
        );
        assert_eq!(target("schema validation")["status"], "met");
        assert_eq!(
            target("create"),
            serde_json::json!({"goal": "create >= 0.8x raw", "status": "not_measured",
                               "reason": "create did not run", "detail": ""})
        );
    }

    #[test]
    fn json_has_the_history_growth_measured() {
        let latest_only = Report {
            validation: None,
            latest_depth: depth(0.21, 0.2),
            ..report(vec![])
        };
        let json = serde_json::to_value(&latest_only).unwrap();
        assert_eq!(
            keys(&json),
            ["workloads", "peak_rss_mib", "history_growth", "targets"]
        );
        assert_eq!(
            json["history_growth"],
            serde_json::json!({"latest": {"clients": 1, "deep_p50_ms": 0.21,
                                          "shallow_p50_ms": 0.2, "ratio": 1.05}})
        );
        let both = Report {
            as_of_depth: depth(0.3, 0.2),
            ..latest_only
        };
        let json = serde_json::to_value(&both).unwrap();
        assert_eq!(keys(&json["history_growth"]), ["as_of", "latest"]);
        assert_eq!(json["history_growth"]["as_of"]["ratio"], 1.5);
    }

    #[test]
    fn the_memory_target_needs_a_flat_soak_of_five_minutes() {
        let goal = "server memory flat";
        let absent = status(&report(vec![]), goal);
        assert_eq!(absent, Status::NotMeasured("run with --soak 300".into()));
        assert_eq!(status(&with_soak(soak(300, 0.0)), goal), Status::Met);
        assert_eq!(status(&with_soak(soak(300, 2.0)), goal), Status::NotMet);
        assert_eq!(status(&with_soak(soak(60, 4.0)), goal), Status::NotMet);
        let Status::NotMeasured(why) = status(&with_soak(soak(60, 0.0)), goal) else {
            panic!("a flat soak of a minute says nothing about five");
        };
        assert!(why.contains("shorter than 300 s"), "{why}");
    }

    #[test]
    fn json_adds_the_soak_after_the_issue_fields() {
        let json = serde_json::to_value(with_soak(soak(300, 0.0))).unwrap();
        assert_eq!(
            keys(&json),
            ["workloads", "peak_rss_mib", "soak", "validation", "targets"]
        );
        assert_eq!(
            keys(&json["soak"]),
            [
                "seconds",
                "clients",
                "ops",
                "ops_s",
                "samples",
                "rss_start_mib",
                "rss_end_mib",
                "growth_mib_per_min",
                "flat"
            ]
        );
        assert_eq!(
            json["soak"]["samples"][1],
            serde_json::json!({"t_s": 5.0, "rss_mib": 40.0, "ops": 100})
        );
        assert_eq!(json["soak"]["flat"], true);
    }

    #[test]
    fn the_table_shows_the_soak() {
        let table = with_soak(soak(300, 2.0)).table();
        assert!(
            table.starts_with("soak: 300 s, 8 HTTP clients, 20.0 ops/s"),
            "{table}"
        );
        assert!(
            table.contains("RSS 42 MiB -> 50 MiB over the last 240 s"),
            "{table}"
        );
        assert!(table.contains("slope +2.000 MiB/min: GROWING"), "{table}");
    }

    #[test]
    fn the_table_says_where_targets_stand() {
        let table = report(vec![row("create", 1, 0.5, 1.0)]).table();
        assert!(table.contains("create >= 0.8x raw"), "{table}");
        assert!(table.contains("NOT MET (0.500x at 1)"), "{table}");
    }

    #[test]
    fn the_margin_shows_and_says_when_the_line_is_within_it() {
        let report = report(vec![
            with_margin(row("create", 1, 0.85, 1.0), 0.02),
            with_margin(row("create", 8, 0.78, 1.0), 0.03),
            with_margin(row("update", 1, 0.90, 1.0), 0.02),
            with_margin(row("update", 8, 0.75, 1.0), 0.03),
        ]);
        let table = report.table();
        assert!(table.contains(" 0.78 ±0.03 "), "{table}");
        assert!(
            table.contains(
                "NOT MET (0.850x ±0.020 at 1, 0.780x ±0.030 at 8; the line is within the \
                 margin of each cell under it)"
            ),
            "{table}"
        );
        // 0.75 ± 0.03 does not reach 0.8: the run tells them apart.
        assert!(
            table.contains("NOT MET (0.900x ±0.020 at 1, 0.750x ±0.030 at 8)\n"),
            "{table}"
        );
    }

    #[test]
    fn a_ratio_just_under_the_line_reads_under_it() {
        let table = report(vec![row("get_latest", 8, 0.898, 1.0)]).table();
        assert!(table.contains("NOT MET (0.898x at 8)"), "{table}");
    }
}
