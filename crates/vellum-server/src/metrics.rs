//! Prometheus metrics: HTTP requests by route template, and database pool use sampled at scrape
//! time, exposed in the OpenMetrics text format.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// The `Content-Type` of [`Metrics::render`]'s output.
pub(crate) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Every metric name starts with this, followed by `_`.
const PREFIX: &str = "vellum";

/// Upper bounds of the request duration buckets in seconds: 0.5 ms to 10 s in 1-2.5-5 steps, so
/// the `le` labels stay readable.
const DURATION_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The `route` label of requests that matched no route (the fallback's 404s).
const UNMATCHED_ROUTE: &str = "unmatched";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabels {
    service: String,
}

/// The server's metrics. Recording takes `&self`, so one `Arc<Metrics>` is shared by every request.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_duration: Family<RequestLabels, Histogram, fn() -> Histogram>,
}

/// The database pool's figures at one instant (deadpool's `Pool::status()`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct PoolSample {
    /// The most connections the pool will open.
    pub(crate) max_size: usize,
    /// Connections open now, idle or in use.
    pub(crate) size: usize,
    /// Open connections that are idle.
    pub(crate) available: usize,
    /// Callers waiting for a connection.
    pub(crate) waiting: usize,
}

impl Metrics {
    /// Registers the request metric families; all start empty.
    pub(crate) fn new() -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        let request_duration =
            Family::<RequestLabels, Histogram, fn() -> Histogram>::new_with_constructor(|| {
                Histogram::new(DURATION_BUCKETS)
            });
        let mut registry = Registry::with_prefix(PREFIX);
        registry.register(
            "http_requests",
            "HTTP requests served, by method, route template and status",
            requests.clone(),
        );
        registry.register_with_unit(
            "http_request_duration",
            "Time from receiving an HTTP request to sending its response head",
            Unit::Seconds,
            request_duration.clone(),
        );
        Self {
            registry,
            requests,
            request_duration,
        }
    }

    /// Records one finished HTTP request.
    ///
    /// `route` must be a route template or `unmatched`, never a raw path: each distinct
    /// value is a new time series. Methods outside the standard set are recorded as `other` for
    /// the same reason.
    pub(crate) fn observe_request(
        &self,
        method: &str,
        route: &str,
        status: u16,
        elapsed: Duration,
    ) {
        let labels = RequestLabels {
            method: method_label(method),
            route: route.to_owned(),
            status,
        };
        self.requests.get_or_create(&labels).inc();
        self.request_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// The OpenMetrics text exposition, with the pool figures sampled at scrape time.
    #[cfg(test)]
    pub(crate) fn render(&self, pool: PoolSample) -> String {
        self.render_all(pool, vellum::UowStats::default(), &[])
    }

    /// The exposition with everything sampled at scrape time: the pool, the store's unit-of-work
    /// counters, and the status of each outbox relay of this process.
    pub(crate) fn render_all(
        &self,
        pool: PoolSample,
        uow: vellum::UowStats,
        relays: &[(vellum::ServiceName, vellum::RelayStatus)],
    ) -> String {
        // The pool gauges live in a registry built per scrape, so concurrent scrapes cannot
        // interleave their samples and nothing has to be kept in step between scrapes.
        let connections = Family::<PoolLabels, Gauge>::default();
        for (state, value) in [
            ("max", pool.max_size),
            ("open", pool.size),
            ("idle", pool.available),
        ] {
            connections
                .get_or_create(&PoolLabels { state })
                .set(gauge_value(value));
        }
        let waiting = Gauge::<i64>::default();
        waiting.set(gauge_value(pool.waiting));

        let mut pool_registry = Registry::with_prefix(PREFIX);
        pool_registry.register(
            "db_pool_connections",
            "Database pool connections: the pool's maximum, those open, and those open and idle",
            connections,
        );
        pool_registry.register(
            "db_pool_waiting",
            "Callers waiting for a database connection",
            waiting,
        );

        for (name, help, value) in [
            ("uow_commits", "Units of work committed", uow.commits),
            (
                "uow_conflicts",
                "Units of work that hit a version conflict",
                uow.conflicts,
            ),
            (
                "uow_validation_failures",
                "Writes refused because the document did not match its schema",
                uow.validation_failures,
            ),
            (
                "outbox_events_written",
                "Events written to outboxes by committed units of work",
                uow.events,
            ),
        ] {
            let counter = Counter::<u64>::default();
            counter.inc_by(value);
            pool_registry.register(name, help, counter);
        }
        let validation = Counter::<f64, std::sync::atomic::AtomicU64>::default();
        validation.inc_by(uow.validation_time.as_secs_f64());
        pool_registry.register_with_unit(
            "uow_validation",
            "Time units of work and imports spent checking documents against their schemas",
            Unit::Seconds,
            validation,
        );
        self.register_relays(&mut pool_registry, relays);

        let mut text = String::new();
        encode_registry(&mut text, &self.registry)
            .and_then(|()| encode_registry(&mut text, &pool_registry))
            .and_then(|()| encode_eof(&mut text))
            .expect("writing to a String cannot fail");
        text
    }
}

impl Metrics {
    /// Per service: outbox lag (events, seconds), whether this process leads, what it published.
    fn register_relays(
        &self,
        registry: &mut Registry,
        relays: &[(vellum::ServiceName, vellum::RelayStatus)],
    ) {
        let lag_events = Family::<ServiceLabels, Gauge>::default();
        let lag_seconds =
            Family::<ServiceLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        let leader = Family::<ServiceLabels, Gauge>::default();
        let published = Family::<ServiceLabels, Counter>::default();
        let duplicates = Family::<ServiceLabels, Counter>::default();
        let batch_seconds =
            Family::<ServiceLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        for (service, status) in relays {
            let labels = ServiceLabels {
                service: service.to_string(),
            };
            lag_events.get_or_create(&labels).set(status.lag_events);
            lag_seconds.get_or_create(&labels).set(status.lag_seconds);
            leader.get_or_create(&labels).set(i64::from(status.leader));
            published.get_or_create(&labels).inc_by(status.published);
            duplicates.get_or_create(&labels).inc_by(status.duplicates);
            batch_seconds
                .get_or_create(&labels)
                .set(status.last_batch_seconds);
        }
        registry.register(
            "outbox_lag_events",
            "Committed events the relay has not published yet",
            lag_events,
        );
        registry.register_with_unit(
            "outbox_lag",
            "Age of the oldest committed event the relay has not published yet",
            Unit::Seconds,
            lag_seconds,
        );
        registry.register(
            "relay_leader",
            "1 when this process's relay leads the service's outbox",
            leader,
        );
        registry.register(
            "relay_published",
            "Events this process's relay published and JetStream acknowledged",
            published,
        );
        registry.register(
            "relay_duplicates",
            "Published events JetStream reported as duplicates (de-duplicated by Nats-Msg-Id)",
            duplicates,
        );
        registry.register_with_unit(
            "relay_publish_batch",
            "Publish latency of the last batch: first publish to last acknowledgement",
            Unit::Seconds,
            batch_seconds,
        );
    }
}

/// Maps a request method to a label value from a fixed set.
fn method_label(method: &str) -> &'static str {
    const METHODS: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE",
    ];
    METHODS
        .into_iter()
        .find(|known| *known == method)
        .unwrap_or("other")
}

fn gauge_value(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// axum middleware: times every request and records it under its route template (axum's
/// `MatchedPath`, e.g. `/v1/{service}/entities/{schema_id}/{id}`), or `unmatched` for 404s
/// without a route — never the raw path (cardinality).
///
/// Install it with `Router::layer` (not `route_layer`, which skips the fallback) after all routes
/// are added: `.layer(axum::middleware::from_fn_with_state(metrics, track))`. The time is measured
/// until the response head is ready; a streamed body (the SSE event stream) is not included.
pub(crate) async fn track(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().cloned();
    let response = next.run(request).await;
    metrics.observe_request(
        method.as_str(),
        route.as_ref().map_or(UNMATCHED_ROUTE, MatchedPath::as_str),
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    fn sample_lines<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
        text.lines()
            .filter(|line| line.starts_with(name) && !line.starts_with('#'))
            .collect()
    }

    #[test]
    fn counts_requests_by_method_route_and_status() {
        let metrics = Metrics::new();
        let route = "/v1/{service}/entities/{schema_id}/{id}";
        metrics.observe_request("GET", route, 200, Duration::from_millis(3));
        metrics.observe_request("GET", route, 200, Duration::from_millis(7));
        metrics.observe_request("PUT", route, 412, Duration::from_micros(200));

        let text = metrics.render(PoolSample::default());

        assert!(text.contains(
            "vellum_http_requests_total{method=\"GET\",\
             route=\"/v1/{service}/entities/{schema_id}/{id}\",status=\"200\"} 2\n"
        ));
        assert!(text.contains(
            "vellum_http_requests_total{method=\"PUT\",\
             route=\"/v1/{service}/entities/{schema_id}/{id}\",status=\"412\"} 1\n"
        ));
        assert!(text.contains("# TYPE vellum_http_request_duration_seconds histogram\n"));
        assert!(text.contains("# UNIT vellum_http_request_duration_seconds seconds\n"));
        assert!(text.contains(
            "vellum_http_request_duration_seconds_count{method=\"GET\",\
             route=\"/v1/{service}/entities/{schema_id}/{id}\",status=\"200\"} 2\n"
        ));
        // 3 ms and 7 ms both fall in the 10 ms bucket, neither in the 2.5 ms one.
        assert!(text.contains(
            "vellum_http_request_duration_seconds_bucket{le=\"0.01\",method=\"GET\",\
             route=\"/v1/{service}/entities/{schema_id}/{id}\",status=\"200\"} 2\n"
        ));
        assert!(text.contains(
            "vellum_http_request_duration_seconds_bucket{le=\"0.0025\",method=\"GET\",\
             route=\"/v1/{service}/entities/{schema_id}/{id}\",status=\"200\"} 0\n"
        ));
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn histogram_buckets_span_half_a_millisecond_to_ten_seconds() {
        let metrics = Metrics::new();
        metrics.observe_request("GET", "/healthz", 200, Duration::from_secs(30));
        let text = metrics.render(PoolSample::default());
        let buckets = sample_lines(&text, "vellum_http_request_duration_seconds_bucket");

        assert_eq!(buckets.len(), DURATION_BUCKETS.len() + 1);
        assert!(buckets[0].contains("le=\"0.0005\""));
        assert!(buckets[DURATION_BUCKETS.len() - 1].contains("le=\"10.0\""));
        assert!(buckets[DURATION_BUCKETS.len() - 1].ends_with(" 0"));
        assert!(buckets[DURATION_BUCKETS.len()].contains("le=\"+Inf\""));
        assert!(buckets[DURATION_BUCKETS.len()].ends_with(" 1"));
    }

    #[test]
    fn unknown_methods_share_one_label_value() {
        let metrics = Metrics::new();
        metrics.observe_request("BREW", "unmatched", 404, Duration::ZERO);
        metrics.observe_request("PROPFIND", "unmatched", 404, Duration::ZERO);

        let text = metrics.render(PoolSample::default());

        assert!(text.contains(
            "vellum_http_requests_total{method=\"other\",route=\"unmatched\",status=\"404\"} 2\n"
        ));
    }

    #[test]
    fn pool_gauges_show_the_sample_given_to_render() {
        let metrics = Metrics::new();
        let text = metrics.render(PoolSample {
            max_size: 16,
            size: 5,
            available: 2,
            waiting: 3,
        });

        assert!(text.contains("# TYPE vellum_db_pool_connections gauge\n"));
        assert!(text.contains("vellum_db_pool_connections{state=\"max\"} 16\n"));
        assert!(text.contains("vellum_db_pool_connections{state=\"open\"} 5\n"));
        assert!(text.contains("vellum_db_pool_connections{state=\"idle\"} 2\n"));
        assert!(text.contains("vellum_db_pool_waiting 3\n"));

        let later = metrics.render(PoolSample {
            max_size: 16,
            size: 6,
            available: 0,
            waiting: 0,
        });
        assert!(later.contains("vellum_db_pool_connections{state=\"open\"} 6\n"));
        assert!(later.contains("vellum_db_pool_waiting 0\n"));
    }

    #[tokio::test]
    async fn middleware_records_the_route_template_not_the_path() {
        let metrics = Arc::new(Metrics::new());
        let app = Router::new()
            .route("/items/{id}", get(|| async { "item" }))
            .layer(axum::middleware::from_fn_with_state(metrics.clone(), track));

        for uri in ["/items/42", "/items/43", "/nothing/here"] {
            let request = Request::get(uri).body(Body::empty()).unwrap();
            app.clone().oneshot(request).await.unwrap();
        }
        let text = metrics.render(PoolSample::default());

        assert!(text.contains(
            "vellum_http_requests_total{method=\"GET\",route=\"/items/{id}\",status=\"200\"} 2\n"
        ));
        assert!(text.contains(
            "vellum_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"} 1\n"
        ));
        assert!(!text.contains("/items/42"));
        assert!(!text.contains("/nothing/here"));
    }
}
