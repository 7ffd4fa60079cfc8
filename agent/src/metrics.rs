//! The agent's own Prometheus metrics, served at `/metrics` on an optional HTTP listener
//! (`accelbench-agent run --metrics-listen ADDR`): cells finished by status (counted as
//! they end), and, read at each scrape, the cells running now (one series per lease)
//! and the results waiting in the spool for the coordinator's acknowledgement.

use std::sync::Arc;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use crate::spool::Spool;
use crate::worker::Running;

type Labels = Vec<(&'static str, String)>;

pub struct AgentMetrics {
    registry: Registry,
    cells: Family<Labels, Counter>,
    running_cells: Family<Labels, Gauge>,
    spooled: Gauge,
    /// What the scrape reads: the worker's running leases and its spool.
    running: Running,
    spool: Arc<Spool>,
    scrape: std::sync::Mutex<()>,
}

impl AgentMetrics {
    pub fn new(running: Running, spool: Arc<Spool>) -> AgentMetrics {
        let mut registry = Registry::with_prefix("accelbench_agent");
        let (cells, running_cells, spooled) = (Family::default(), Family::default(), Gauge::default());
        registry.register("cells", "Cells this process finished, by the status it recorded", Family::clone(&cells));
        registry.register(
            "cell_running",
            "1 for each cell running now, by sweep, cell key and attempt",
            Family::clone(&running_cells),
        );
        registry.register("spooled_results", "Results in the spool awaiting the coordinator's ack", spooled.clone());
        AgentMetrics { registry, cells, running_cells, spooled, running, spool, scrape: std::sync::Mutex::new(()) }
    }

    /// A cell ended with `status` (ok, failed, unsupported, …) and was spooled.
    pub fn cell_finished(&self, status: &str) {
        self.cells.get_or_create(&vec![("status", status.to_string())]).inc();
    }

    pub fn render(&self) -> String {
        let _one_scrape = self.scrape.lock().unwrap_or_else(|p| p.into_inner());
        self.running_cells.clear();
        for lease in crate::worker::running_leases(&self.running) {
            let labels = vec![
                ("sweep_id", lease.sweep_id),
                ("cell_key", lease.cell_key),
                ("attempt", lease.attempt.to_string()),
            ];
            self.running_cells.get_or_create(&labels).set(1);
        }
        self.spooled.set(i64::try_from(self.spool.depth()).unwrap_or(i64::MAX));
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// Serves `render()` as Prometheus text at `/metrics` on `listener` until the task is
/// dropped; anything else is 404. The agent's listener: over TLS with a required client
/// certificate when `tls` is given ([`crate::tls`]).
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    render: impl Fn() -> String + Clone + Send + Sync + 'static,
) {
    serve_http(listener, tls, router(render)).await
}

/// `/metrics` answering `render()` as Prometheus text; the coordinator merges its
/// dashboard into the same router.
pub fn router(render: impl Fn() -> String + Clone + Send + Sync + 'static) -> axum::Router {
    use axum::http::header::CONTENT_TYPE;
    axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let render = render.clone();
            async move { ([(CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], render()) }
        }),
    )
}

/// Serves `app` on `listener` until the task is dropped: over TLS with a required client
/// certificate of a reading role when `tls` is given, else plain HTTP.
pub async fn serve_http(
    listener: TcpListener,
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    app: axum::Router,
) {
    let served = match tls {
        None => axum::serve(listener, app).await,
        Some(config) => match crate::tls::TlsListener::new(listener, config) {
            Ok(l) => axum::serve(l, app).await,
            Err(e) => Err(e),
        },
    };
    if let Err(e) = served {
        tracing::error!(error = %e, "http listener stopped");
    }
}
