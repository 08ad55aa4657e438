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
    options.workloads = vec![Workload::Update, Workload::Query, Workload::BulkImport];
    options.clients = vec![1, 3];
    options.warmup = Duration::from_millis(50);
    options.round = Duration::from_millis(150);

    let report = vellum_bench::run(db.config(), &options).await.unwrap();

    let json = serde_json::to_value(&report).unwrap();
    let keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["workloads", "peak_rss_mib"]);
    assert!(json["peak_rss_mib"].as_f64().is_some_and(|mib| mib > 0.0));
    let rows = json["workloads"].as_array().unwrap();
    assert_eq!(rows.len(), 6, "{json}");
    let cells = [
        ("update", 1),
        ("update", 3),
        ("query", 1),
        ("query", 3),
        ("bulk_import", 1),
        ("bulk_import", 3),
    ];
    for (row, (name, clients)) in rows.iter().zip(cells) {
        let fields: Vec<&str> = row
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            fields,
            [
                "name",
                "clients",
                "vellum_ops_s",
                "baseline_ops_s",
                "ratio",
                "p50_ms",
                "p99_ms"
            ]
        );
        // Each side checks every answer (a full page for `query`), so work done is right work.
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
    }
    let table = report.table();
    assert!(
        table.contains("bulk_import >= 0.7x raw binary COPY"),
        "{table}"
    );
}
