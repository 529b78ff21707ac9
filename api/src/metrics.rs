//! Prometheus metrics in the text exposition format (version 0.0.4), written by hand: a few
//! counters and histograms need no client library.
//!
//! - `plsw_http_requests_total{route,method,status}`: requests by matched route (the route's
//!   pattern, never the raw path, so the label set stays small);
//! - `plsw_http_request_duration_seconds{route}`: latency histogram;
//! - `plsw_sql_query_duration_seconds{outcome}`: `/v1/sql` statements, by outcome;
//! - `plsw_rows_loaded_total{feed,kind}`, `plsw_loads_total{feed}`: from the committed loads,
//!   read at scrape time;
//! - `plsw_table_version{table}`, `plsw_cache_*`: the warehouse state the caches key on.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    /// Non-cumulative counts per bucket; the last slot is +Inf.
    counts: [u64; BUCKETS.len() + 1],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        let i = BUCKETS
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(BUCKETS.len());
        self.counts[i] += 1;
        self.sum += seconds;
        self.count += 1;
    }

    fn write(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (i, b) in BUCKETS.iter().enumerate() {
            cumulative += self.counts[i];
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{b}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

#[derive(Debug, Default)]
struct Inner {
    requests: BTreeMap<(String, String, u16), u64>,
    latency: BTreeMap<String, Histogram>,
    queries: BTreeMap<&'static str, Histogram>,
}

/// The server's metrics since it started.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

/// A label value with `\`, `"` and newlines escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    pub fn request(&self, route: &str, method: &str, status: u16, took: Duration) {
        let mut m = self.inner.lock().expect("metrics");
        *m.requests
            .entry((route.to_string(), method.to_string(), status))
            .or_default() += 1;
        m.latency
            .entry(route.to_string())
            .or_default()
            .observe(took.as_secs_f64());
    }

    /// One `/v1/sql` statement: `ok`, `truncated`, `refused`, `failed` or `limit`.
    pub fn query(&self, outcome: &'static str, took: Duration) {
        self.inner
            .lock()
            .expect("metrics")
            .queries
            .entry(outcome)
            .or_default()
            .observe(took.as_secs_f64());
    }

    /// The exposition text of the request metrics; the caller appends the warehouse's.
    pub fn render(&self) -> String {
        let m = self.inner.lock().expect("metrics");
        let mut out = String::new();
        out.push_str(
            "# HELP plsw_http_requests_total HTTP requests by matched route, method and status.\n",
        );
        out.push_str("# TYPE plsw_http_requests_total counter\n");
        for ((route, method, status), n) in &m.requests {
            let _ = writeln!(
                out,
                "plsw_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {n}",
                label(route),
                label(method)
            );
        }
        out.push_str("# HELP plsw_http_request_duration_seconds Time from request to response head, by matched route.\n");
        out.push_str("# TYPE plsw_http_request_duration_seconds histogram\n");
        for (route, h) in &m.latency {
            h.write(
                &mut out,
                "plsw_http_request_duration_seconds",
                &format!("route=\"{}\"", label(route)),
            );
        }
        out.push_str("# HELP plsw_sql_query_duration_seconds Statements of /v1/sql, by outcome.\n");
        out.push_str("# TYPE plsw_sql_query_duration_seconds histogram\n");
        for (outcome, h) in &m.queries {
            h.write(
                &mut out,
                "plsw_sql_query_duration_seconds",
                &format!("outcome=\"{outcome}\""),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_counters_keyed_by_route() {
        let m = Metrics::default();
        m.request("/v1/sql", "POST", 200, Duration::from_millis(3));
        m.request("/v1/sql", "POST", 200, Duration::from_millis(40));
        m.request("/v1/sql", "POST", 400, Duration::from_secs(60));
        let text = m.render();
        assert!(text.contains(
            "plsw_http_requests_total{route=\"/v1/sql\",method=\"POST\",status=\"200\"} 2"
        ));
        assert!(text.contains(
            "plsw_http_requests_total{route=\"/v1/sql\",method=\"POST\",status=\"400\"} 1"
        ));
        // 3 ms falls in le=0.005, 40 ms in le=0.05, 60 s only in +Inf.
        assert!(text.contains("_bucket{route=\"/v1/sql\",le=\"0.0025\"} 0"));
        assert!(text.contains("_bucket{route=\"/v1/sql\",le=\"0.005\"} 1"));
        assert!(text.contains("_bucket{route=\"/v1/sql\",le=\"0.05\"} 2"));
        assert!(text.contains("_bucket{route=\"/v1/sql\",le=\"30\"} 2"));
        assert!(text.contains("_bucket{route=\"/v1/sql\",le=\"+Inf\"} 3"));
        assert!(text.contains("plsw_http_request_duration_seconds_count{route=\"/v1/sql\"} 3"));
        assert_eq!(label("a\"b\\c"), "a\\\"b\\\\c");
    }
}
