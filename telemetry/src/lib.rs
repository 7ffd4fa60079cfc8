//! Logs and traces for every accelbench process: the coordinator, the CLI, the agent and
//! each cell's child process call [`init`] once at start and keep its [`Telemetry`] guard
//! until they exit.
//!
//! Logs go to stderr (stdout carries results and the cell protocol), filtered by
//! `RUST_LOG`, `warn` by default; as text, or as one JSON object per line with
//! `ACCELBENCH_LOG_FORMAT=json` (the CLIs' `--log-format json` sets it, so child
//! processes log alike): each line carries the event's fields and those of the spans it
//! is in (`sweep_id`, `agent_id`, `cell_key`, … — the ids the exported spans carry). Spans are exported with OpenTelemetry over OTLP
//! (HTTP/protobuf) only when `OTEL_EXPORTER_OTLP_ENDPOINT` or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set; otherwise no exporter, thread or layer
//! exists, and a span is built only if `RUST_LOG` asks for its level (at the default
//! `warn`, none of ours is). The standard `OTEL_*` variables apply (`OTEL_SERVICE_NAME`,
//! `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_BSP_SCHEDULE_DELAY`, `OTEL_TRACES_SAMPLER`, …).
//! [`propagate`] carries trace context between processes.
//!
//! Must never: fail a command because telemetry could not start; a broken exporter
//! configuration is a warning and the process runs untraced.

pub mod propagate;

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_subscriber::filter::{EnvFilter, LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// How long exit may wait for the last spans to reach the collector.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Flushes and stops the span exporter when dropped: keep it alive until the process
/// ends, or its last spans (all of a short-lived process's) are lost.
#[must_use = "dropping the guard stops trace export"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are exported.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            if let Err(e) = provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT) {
                tracing::warn!(error = %e, "flushing traces at exit");
            }
        }
    }
}

/// Installs the global subscriber. `service` is the default `service.name` of exported
/// spans (`OTEL_SERVICE_NAME` wins). Calling it twice keeps the first subscriber.
pub fn init(service: &'static str) -> Telemetry {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let text = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = if json_logs() {
        text.json().with_current_span(true).with_span_list(true).with_filter(filter).boxed()
    } else {
        text.with_filter(filter).boxed()
    };
    let (provider, error) = match otlp_configured().then(|| tracer_provider(service)) {
        None => (None, None),
        Some(Ok(p)) => (Some(p), None),
        Some(Err(e)) => (None, Some(e)),
    };
    let spans = provider.as_ref().map(|p| {
        // Our own spans and events at info; libraries only at warn, so their per-request
        // debug spans are never built.
        let ours = Targets::new()
            .with_target("agent", LevelFilter::INFO)
            .with_target("coordinator", LevelFilter::INFO)
            .with_default(LevelFilter::WARN);
        tracing_opentelemetry::layer().with_tracer(p.tracer("accelbench")).with_filter(ours)
    });
    let installed = tracing_subscriber::registry().with(logs).with(spans).try_init().is_ok();
    if let Some(e) = error {
        tracing::warn!(error = %e, "OTLP endpoint set but the exporter could not start; spans are not exported");
    }
    // A second init (tests, quickstart) must not leave a provider whose layer is not
    // installed: its guard would flush nothing and its thread would idle.
    Telemetry { provider: provider.filter(|_| installed) }
}

/// The variable that selects JSON logs (`json`; anything else is text).
pub const LOG_FORMAT_ENV: &str = "ACCELBENCH_LOG_FORMAT";

fn json_logs() -> bool {
    std::env::var(LOG_FORMAT_ENV).is_ok_and(|v| v.trim().eq_ignore_ascii_case("json"))
}

/// How logs are written, for the CLIs' `--log-format`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Lines for people
    #[default]
    Text,
    /// One JSON object per line, with the fields of the enclosing spans
    Json,
}

impl LogFormat {
    /// Makes this process and every process it starts log in this format; call before
    /// [`init`].
    pub fn apply(self) {
        if self == LogFormat::Json {
            std::env::set_var(LOG_FORMAT_ENV, "json");
        }
    }
}

/// Whether the standard variables ask for OTLP trace export.
fn otlp_configured() -> bool {
    let set = |k: &str| std::env::var(k).is_ok_and(|v| !v.trim().is_empty());
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.trim().eq_ignore_ascii_case("true"));
    !disabled && (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
}

/// A provider exporting in batches (`OTEL_BSP_*`) over OTLP HTTP/protobuf; the exporter
/// reads the endpoint, headers and timeout from the standard variables itself.
fn tracer_provider(service: &'static str) -> anyhow::Result<SdkTracerProvider> {
    let exporter = opentelemetry_otlp::SpanExporter::builder().with_http().build()?;
    let mut resource = Resource::builder();
    if std::env::var("OTEL_SERVICE_NAME").map_or(true, |v| v.trim().is_empty()) {
        resource = resource.with_service_name(service);
    }
    Ok(SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource.build()).build())
}
