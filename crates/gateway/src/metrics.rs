//! Counters for the admin listener's `/metrics`, in Prometheus' text format.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency histogram, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0,
];

#[derive(Debug, Default)]
pub(crate) struct Metrics {
    /// By (operation, decision, status).
    requests: Mutex<BTreeMap<(&'static str, &'static str, u16), u64>>,
    /// Requests per bucket alone (not cumulative): the exposition sums them.
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
    auth_failures: Mutex<BTreeMap<&'static str, u64>>,
    upstream_errors: Mutex<BTreeMap<&'static str, u64>>,
    reloads_ok: AtomicU64,
    reloads_failed: AtomicU64,
    connections: AtomicI64,
    /// Of those, the ones parked without HTTP buffers (see `conn`).
    parked: AtomicI64,
}

fn bump<K: Ord>(map: &Mutex<BTreeMap<K, u64>>, key: K) {
    // A poisoned lock only means another thread panicked mid-increment; the counts are
    // still usable.
    let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
    *map.entry(key).or_default() += 1;
}

fn snapshot<K: Ord + Clone>(map: &Mutex<BTreeMap<K, u64>>) -> BTreeMap<K, u64> {
    map.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

impl Metrics {
    pub(crate) fn request(
        &self,
        operation: Option<&'static str>,
        decision: &'static str,
        status: u16,
        duration: Duration,
    ) {
        bump(
            &self.requests,
            (operation.unwrap_or("none"), decision, status),
        );
        // One increment per request in the first bucket that holds it (every request's
        // worker threads would otherwise contend on up to 12 counters); summed when rendered.
        let seconds = duration.as_secs_f64();
        if let Some(bucket) = LATENCY_BUCKETS.iter().position(|bound| seconds <= *bound) {
            self.latency_buckets[bucket].fetch_add(1, Ordering::Relaxed);
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_micros.fetch_add(
            u64::try_from(duration.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    pub(crate) fn auth_failure(&self, reason: &'static str) {
        bump(&self.auth_failures, reason);
    }

    pub(crate) fn upstream_error(&self, kind: &'static str) {
        bump(&self.upstream_errors, kind);
    }

    pub(crate) fn reload(&self, ok: bool) {
        let counter = if ok {
            &self.reloads_ok
        } else {
            &self.reloads_failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn connection_opened(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn connection_closed(&self) {
        self.connections.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn parked(&self, change: i64) {
        self.parked.fetch_add(change, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP flinkguard_requests_total Requests by Flink operation, policy decision and HTTP status.\n# TYPE flinkguard_requests_total counter"
        );
        let requests = snapshot(&self.requests);
        for ((operation, decision, status), n) in requests {
            let _ = writeln!(
                out,
                "flinkguard_requests_total{{operation=\"{operation}\",decision=\"{decision}\",status=\"{status}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP flinkguard_request_duration_seconds Time from request to response headers.\n# TYPE flinkguard_request_duration_seconds histogram"
        );
        let mut cumulative = 0;
        for (bound, count) in LATENCY_BUCKETS.iter().zip(&self.latency_buckets) {
            cumulative += count.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "flinkguard_request_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "flinkguard_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}\nflinkguard_request_duration_seconds_sum {}\nflinkguard_request_duration_seconds_count {count}",
            self.latency_sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        for (name, help, label, map) in [
            (
                "flinkguard_authentication_failures_total",
                "Requests refused for missing or invalid credentials, by reason.",
                "reason",
                &self.auth_failures,
            ),
            (
                "flinkguard_upstream_errors_total",
                "Requests Flink did not answer, by kind.",
                "kind",
                &self.upstream_errors,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (value, n) in snapshot(map) {
                let _ = writeln!(out, "{name}{{{label}=\"{value}\"}} {n}");
            }
        }
        let _ = writeln!(
            out,
            "# HELP flinkguard_reloads_total Configuration and certificate reloads, by result.\n# TYPE flinkguard_reloads_total counter\nflinkguard_reloads_total{{result=\"ok\"}} {}\nflinkguard_reloads_total{{result=\"failed\"}} {}",
            self.reloads_ok.load(Ordering::Relaxed),
            self.reloads_failed.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP flinkguard_connections Client connections open now.\n# TYPE flinkguard_connections gauge\nflinkguard_connections {}",
            self.connections.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP flinkguard_connections_parked Idle HTTP/1.1 connections holding no HTTP buffers.\n# TYPE flinkguard_connections_parked gauge\nflinkguard_connections_parked {}",
            self.parked.load(Ordering::Relaxed)
        );
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_a_cumulative_histogram() {
        let m = Metrics::default();
        m.request(Some("jobs.read"), "allow", 200, Duration::from_millis(3));
        m.request(Some("jobs.read"), "allow", 200, Duration::from_millis(200));
        m.request(None, "deny", 401, Duration::from_micros(10));
        m.auth_failure("no_credentials");
        m.upstream_error("connect");
        m.reload(false);
        let text = m.render();
        for line in [
            "flinkguard_requests_total{operation=\"jobs.read\",decision=\"allow\",status=\"200\"} 2",
            "flinkguard_requests_total{operation=\"none\",decision=\"deny\",status=\"401\"} 1",
            "flinkguard_request_duration_seconds_bucket{le=\"0.001\"} 1",
            "flinkguard_request_duration_seconds_bucket{le=\"0.005\"} 2",
            "flinkguard_request_duration_seconds_bucket{le=\"0.25\"} 3",
            "flinkguard_request_duration_seconds_bucket{le=\"+Inf\"} 3",
            "flinkguard_request_duration_seconds_count 3",
            "flinkguard_authentication_failures_total{reason=\"no_credentials\"} 1",
            "flinkguard_upstream_errors_total{kind=\"connect\"} 1",
            "flinkguard_reloads_total{result=\"failed\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
    }
}
