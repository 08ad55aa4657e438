//! The harness run for real, briefly, against a fresh PostgreSQL database.

#[path = "../../../vellum/tests/it/support.rs"]
#[allow(
    dead_code,
    reason = "shared with the library's tests, which use other parts"
)]
mod support;

use std::time::Duration;

use support::TestDb;
use vellum_bench::{Options, Workload};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quick_run_reports_both_sides_in_the_json_of_the_issue() {
    let db = TestDb::new().await;
    let mut options = Options::quick();
    options.workloads = vec![
        Workload::Update,
        Workload::Query,
        Workload::QueryNext,
        Workload::BulkImport,
    ];
    options.clients = vec![1, 3];
    options.warmup = Duration::from_millis(50);
    options.round = Duration::from_millis(150);

    let report = vellum_bench::run(db.config(), &options).await.unwrap();

    let json = serde_json::to_value(&report).unwrap();
    // The issue's two keys, then where the targets stand: no create ran, so no validation.
    assert_eq!(keys(&json), ["workloads", "peak_rss_mib", "targets"]);
    let status = |goal: &str| {
        json["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["goal"].as_str().unwrap().starts_with(goal))
            .map(|t| t["status"].as_str().unwrap())
            .unwrap()
    };
    assert!(["met", "not_met"].contains(&status("update")), "{json}");
    assert!(
        ["met", "not_met"].contains(&status("bulk_import")),
        "{json}"
    );
    assert_eq!(status("create"), "not_measured", "{json}");
    assert!(json["peak_rss_mib"].as_f64().is_some_and(|mib| mib > 0.0));
    let rows = json["workloads"].as_array().unwrap();
    assert_eq!(rows.len(), 8, "{json}");
    let cells = [
        ("update", 1),
        ("update", 3),
        ("query", 1),
        ("query", 3),
        ("query_next", 1),
        ("query_next", 3),
        ("bulk_import", 1),
        ("bulk_import", 3),
    ];
    for (row, (name, clients)) in rows.iter().zip(cells) {
        let fields = keys(row);
        assert_eq!(
            fields,
            [
                "name",
                "clients",
                "vellum_ops_s",
                "baseline_ops_s",
                "ratio",
                "p50_ms",
                "p99_ms",
                "ratio_margin"
            ]
        );
        // Each side checks every answer (a full page for the queries), so work done is right
        // work.
        assert_eq!(row["name"], name);
        assert_eq!(row["clients"], clients);
        let number = |field: &str| {
            row[field]
                .as_f64()
                .unwrap_or_else(|| panic!("{field} in {row}"))
        };
        assert!(number("vellum_ops_s") > 0.0, "vellum did no work: {row}");
        assert!(
            number("baseline_ops_s") > 0.0,
            "the baseline did no work: {row}"
        );
        assert!(number("ratio") > 0.0 && number("p50_ms") > 0.0, "{row}");
        assert!(number("p99_ms") >= number("p50_ms"), "{row}");
        // Four rounds, so a margin from their spread, never negative.
        assert!(number("ratio_margin") >= 0.0, "{row}");
    }
    let table = report.table();
    assert!(
        table.contains("bulk_import >= 0.7x raw binary COPY"),
        "{table}"
    );
}

/// The validation share is the time vellum's creates spent validating their documents in the
/// measured rounds, as the store counted it: some, and less than the CPU of those creates;
/// the server's CPU over the same rounds is read beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_is_measured_in_the_creates_themselves() {
    let db = TestDb::new().await;
    let mut options = Options::quick();
    options.workloads = vec![Workload::Create];
    options.clients = vec![1];
    options.warmup = Duration::from_millis(50);
    options.round = Duration::from_millis(100);

    let report = vellum_bench::run(db.config(), &options).await.unwrap();

    let cost = report.validation.expect("create ran");
    assert!(
        cost.validate_us > 0.0 && cost.validate_us < cost.write_cpu_us,
        "{cost:?}"
    );
    // The test's PostgreSQL runs on this machine, so its processes' CPU is read too: every
    // create costs the server some, and validation is a smaller share of both together.
    let server_us = cost
        .server_cpu_us
        .expect("the server's CPU is measured when it runs on this machine");
    assert!(server_us > 0.0, "{cost:?}");
    let json = serde_json::to_value(&report).unwrap();
    let share = |key: &str| json["validation"][key].as_f64().unwrap();
    assert!(share("percent") > 0.0 && share("percent") < 100.0, "{json}");
    assert!(share("percent_with_server") < share("percent"), "{json}");
}

/// History growth: as-of and latest reads, each on 10,000 versions against 10 in the same
/// rounds, on one loaded entity per depth; only the as-of comparison is judged by a target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_two_depths_are_measured_against_each_other_in_the_same_rounds() {
    let db = TestDb::new().await;
    let mut options = Options::quick();
    options.workloads = vec![
        Workload::AsOfDepth10,
        Workload::AsOfDepth10000,
        Workload::LatestDepth10,
        Workload::LatestDepth10000,
    ];
    options.clients = vec![3, 1];
    options.warmup = Duration::from_millis(50);
    options.round = Duration::from_millis(100);

    let report = vellum_bench::run(db.config(), &options).await.unwrap();

    let names: Vec<_> = report.workloads.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "as_of_depth_10",
            "as_of_depth_10",
            "as_of_depth_10000",
            "as_of_depth_10000",
            "latest_depth_10",
            "latest_depth_10",
            "latest_depth_10000",
            "latest_depth_10000"
        ]
    );
    for depth in [report.as_of_depth, report.latest_depth] {
        let depth = depth.expect("both depths ran");
        assert_eq!(depth.clients, 1, "the smallest client count");
        assert!(
            depth.deep_p50_ms > 0.0 && depth.shallow_p50_ms > 0.0,
            "{depth:?}"
        );
    }
    let target = report
        .targets()
        .into_iter()
        .find(|t| t.goal.starts_with("as-of p50"))
        .unwrap();
    assert!(
        !matches!(target.status, vellum_bench::Status::NotMeasured(_)),
        "{target:?}"
    );
    assert!(target.detail.contains("same rounds"), "{target:?}");
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(keys(&json["history_growth"]), ["as_of", "latest"], "{json}");
    let table = report.table();
    assert!(table.contains("history growth"), "{table}");
    assert!(table.contains("\n  latest   "), "{table}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_soak_samples_memory_under_checked_http_load() {
    let db = TestDb::new().await;
    let mut options = Options::quick();
    options.workloads.clear();
    options.clients = vec![1, 3];
    options.soak = Some(Duration::from_secs(3));

    let report = vellum_bench::run(db.config(), &options).await.unwrap();

    // The soak alone: no workload ran.
    assert!(report.workloads.is_empty(), "{:?}", report.workloads);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(
        keys(&json),
        ["workloads", "peak_rss_mib", "soak", "targets"]
    );
    let soak = &json["soak"];
    let fields = keys(soak);
    assert_eq!(
        fields,
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
    assert_eq!(soak["seconds"], 3.0);
    assert_eq!(soak["clients"], 3, "the largest client count");
    // Every answer was checked, so these operations are answers that were right.
    assert!(soak["ops"].as_u64().is_some_and(|ops| ops > 0), "{soak}");
    assert!(soak["ops_s"].as_f64().is_some_and(|r| r > 0.0), "{soak}");
    assert!(soak["flat"].is_boolean(), "{soak}");
    assert!(soak["growth_mib_per_min"].is_number(), "{soak}");
    for field in ["rss_start_mib", "rss_end_mib"] {
        assert!(soak[field].as_f64().is_some_and(|mib| mib > 0.0), "{soak}");
    }
    // A 3 s soak samples every 150 ms: at the start, 19 times in between, at the end.
    let samples = soak["samples"].as_array().unwrap();
    assert!(samples.len() >= 10, "{} samples", samples.len());
    let mut last = (-1.0, 0);
    for sample in samples {
        let t = sample["t_s"].as_f64().unwrap();
        let ops = sample["ops"].as_u64().unwrap();
        assert!(sample["rss_mib"].as_f64().is_some_and(|mib| mib > 0.0));
        assert!(t >= last.0 && ops >= last.1, "samples in order: {sample}");
        last = (t, ops);
    }
    assert!(last.1 > 0, "operations were counted as the soak ran");
    assert!(last.1 <= soak["ops"].as_u64().unwrap());
    let table = report.table();
    assert!(table.contains("soak: 3 s, 3 HTTP clients"), "{table}");
    assert!(
        table.contains("server memory flat over a 5-minute run"),
        "{table}"
    );
    assert!(
        table.contains("shorter than 300 s") || table.contains("NOT MET"),
        "{table}"
    );
}

/// The keys of a JSON object, in order.
fn keys(object: &serde_json::Value) -> Vec<&str> {
    object
        .as_object()
        .expect("a JSON object")
        .keys()
        .map(String::as_str)
        .collect()
}
