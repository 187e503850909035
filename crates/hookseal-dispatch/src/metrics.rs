//! Counters and a latency histogram, rendered in the Prometheus text format
//! and optionally served over HTTP (`GET /metrics`).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// Upper bounds of the latency histogram's buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// What a dispatcher counts. Cheap to update from many tasks.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Rows claimed.
    pub claimed: AtomicU64,
    /// 2xx answers recorded as delivered.
    pub delivered: AtomicU64,
    /// Failed attempts scheduled for a retry.
    pub retried: AtomicU64,
    /// Rows dead-lettered (retries exhausted or 410).
    pub dead: AtomicU64,
    /// 410 answers (the endpoint was disabled).
    pub gone: AtomicU64,
    /// Results not recorded because the lease had passed to another worker.
    pub lease_lost: AtomicU64,
    /// Rows given back unsent at shutdown.
    pub released: AtomicU64,
    /// Database errors (each followed by a reconnect).
    pub db_errors: AtomicU64,
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Metrics {
    /// Records one attempt's latency.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        for (i, le) in BUCKETS.iter().enumerate() {
            if secs <= *le {
                self.buckets[i].fetch_add(1, Relaxed);
            }
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_micros
            .fetch_add(d.as_micros().min(u64::MAX as u128) as u64, Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(2048);
        let counters: [(&str, &str, &AtomicU64); 8] = [
            ("claimed", "Outbox rows claimed.", &self.claimed),
            ("delivered", "Rows delivered (2xx).", &self.delivered),
            (
                "retried",
                "Failed attempts scheduled for retry.",
                &self.retried,
            ),
            ("dead", "Rows dead-lettered.", &self.dead),
            (
                "gone",
                "410 answers; the endpoint was disabled.",
                &self.gone,
            ),
            (
                "lease_lost",
                "Results dropped: lease lost.",
                &self.lease_lost,
            ),
            (
                "released",
                "Rows released unsent at shutdown.",
                &self.released,
            ),
            ("db_errors", "Database errors.", &self.db_errors),
        ];
        for (name, help, v) in counters {
            let _ = writeln!(out, "# HELP hookseal_dispatch_{name}_total {help}");
            let _ = writeln!(out, "# TYPE hookseal_dispatch_{name}_total counter");
            let _ = writeln!(out, "hookseal_dispatch_{name}_total {}", v.load(Relaxed));
        }
        let name = "hookseal_dispatch_attempt_seconds";
        let _ = writeln!(out, "# HELP {name} HTTP attempt latency.");
        let _ = writeln!(out, "# TYPE {name} histogram");
        for (i, le) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{le}\"}} {}",
                self.buckets[i].load(Relaxed)
            );
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.sum_micros.load(Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count {count}");
        out
    }
}

/// Serves `GET /metrics` (and `GET /healthz`) on `addr` until the task is
/// dropped. Returns the bound address (useful with port 0).
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let metrics = metrics.clone();
                    async move {
                        let (code, body) = match (req.method().as_str(), req.uri().path()) {
                            ("GET", "/metrics") => (200, metrics.render()),
                            ("GET", "/healthz") => (200, "ok\n".to_owned()),
                            _ => (404, "not found\n".to_owned()),
                        };
                        Response::builder()
                            .status(code)
                            .header("content-type", "text/plain; version=0.0.4")
                            .body(Full::new(Bytes::from(body)))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok((bound, task))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative() {
        let m = Metrics::default();
        m.observe(Duration::from_micros(500));
        m.observe(Duration::from_millis(30));
        m.observe(Duration::from_secs(60));
        m.delivered.fetch_add(2, Relaxed);
        let text = m.render();
        assert!(
            text.contains("hookseal_dispatch_delivered_total 2\n"),
            "{text}"
        );
        assert!(text.contains("_bucket{le=\"0.001\"} 1\n"), "{text}");
        assert!(text.contains("_bucket{le=\"0.05\"} 2\n"), "{text}");
        assert!(text.contains("_bucket{le=\"30\"} 2\n"), "{text}");
        assert!(text.contains("_bucket{le=\"+Inf\"} 3\n"), "{text}");
        assert!(
            text.contains("hookseal_dispatch_attempt_seconds_count 3\n"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn metrics_are_served_over_http() {
        let m = Arc::new(Metrics::default());
        m.claimed.fetch_add(7, Relaxed);
        let (addr, task) = serve("127.0.0.1:0".parse().unwrap(), m).await.unwrap();
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let r = client
            .get(format!("http://{addr}/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let text = r.text().await.unwrap();
        assert!(
            text.contains("hookseal_dispatch_claimed_total 7\n"),
            "{text}"
        );
        let r = client
            .get(format!("http://{addr}/other"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
        task.abort();
    }
}
