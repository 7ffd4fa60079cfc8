//! Trace context across process boundaries, in the W3C Trace Context format
//! (`traceparent`, `tracestate`): gRPC metadata, a lease, and the environment of a cell's
//! child process all carry a [`TraceParent`].
//!
//! Context from outside is untrusted: anything that does not parse as a valid W3C context
//! is dropped (the span becomes a root), never an error or a panic. A [`TraceParent`] is
//! always re-serialised by the propagator, so what we forward or store is canonical and
//! bounded in size, whatever arrived.

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry::Context;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tonic::codegen::http::{HeaderMap, HeaderValue};
use tonic::service::Interceptor;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

const TRACEPARENT: &str = "traceparent";
const TRACESTATE: &str = "tracestate";
/// The environment variables that hand a context to a child process.
pub const ENV_TRACEPARENT: &str = "TRACEPARENT";
pub const ENV_TRACESTATE: &str = "TRACESTATE";
/// The longest `tracestate` kept: W3C asks to forward at least 512 characters, and this
/// value ends up in every lease of a sweep.
const MAX_TRACESTATE: usize = 512;

/// A valid W3C trace context: the parent of whatever span receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceParent {
    traceparent: String,
    /// Vendor data; empty when there is none.
    tracestate: String,
}

impl TraceParent {
    /// The context carried by these header values, if `traceparent` is valid. An invalid
    /// `tracestate` beside a valid `traceparent` is dropped on its own.
    pub fn parse(traceparent: &str, tracestate: &str) -> Option<TraceParent> {
        let tracestate = if tracestate.len() > MAX_TRACESTATE { "" } else { tracestate };
        TraceParent::of_context(&extract(traceparent, tracestate))
    }

    /// The context of `span`, if it is part of an exported trace (the OpenTelemetry layer
    /// is installed and the span is enabled).
    pub fn of_span(span: &Span) -> Option<TraceParent> {
        TraceParent::of_context(&span.context())
    }

    /// What to hand on from `span`: its own context when this process exports traces;
    /// otherwise `received`, unchanged, so a process that does not export stays out of the
    /// trace without breaking it.
    pub fn handed_on(span: &Span, received: Option<&TraceParent>) -> Option<TraceParent> {
        TraceParent::of_span(span).or_else(|| received.cloned())
    }

    fn of_context(cx: &Context) -> Option<TraceParent> {
        if !cx.span().span_context().is_valid() {
            return None;
        }
        let mut out = TraceParent { traceparent: String::new(), tracestate: String::new() };
        TraceContextPropagator::new().inject_context(cx, &mut out);
        Some(out).filter(|t| !t.traceparent.is_empty())
    }

    pub fn traceparent(&self) -> &str {
        &self.traceparent
    }

    pub fn tracestate(&self) -> &str {
        &self.tracestate
    }

    /// The 32 hex digits of the trace id.
    pub fn trace_id(&self) -> String {
        self.context().span().span_context().trace_id().to_string()
    }

    fn context(&self) -> Context {
        extract(&self.traceparent, &self.tracestate)
    }

    /// The context in HTTP headers or gRPC metadata (`MetadataMap::as_ref`).
    pub fn from_headers(headers: &HeaderMap) -> Option<TraceParent> {
        let get = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or_default();
        TraceParent::parse(get(TRACEPARENT), get(TRACESTATE))
    }

    /// Sets the `traceparent` (and `tracestate`) headers.
    pub fn insert_into(&self, headers: &mut HeaderMap) {
        // Both values came out of the propagator: visible ASCII, so always valid headers.
        if let Ok(v) = HeaderValue::from_str(&self.traceparent) {
            headers.insert(TRACEPARENT, v);
        }
        if let Ok(v) = HeaderValue::from_str(&self.tracestate).map_err(drop).and_then(non_empty) {
            headers.insert(TRACESTATE, v);
        }
    }

    /// The context this process was started with (`TRACEPARENT`, `TRACESTATE`).
    pub fn from_env() -> Option<TraceParent> {
        let parent = std::env::var(ENV_TRACEPARENT).ok()?;
        TraceParent::parse(&parent, &std::env::var(ENV_TRACESTATE).unwrap_or_default())
    }

    /// Hands the context to a child process through its environment.
    pub fn set_env(&self, cmd: &mut std::process::Command) {
        cmd.env(ENV_TRACEPARENT, &self.traceparent);
        if !self.tracestate.is_empty() {
            cmd.env(ENV_TRACESTATE, &self.tracestate);
        }
    }
}

/// The remote context in these values, on an empty base: `extract` alone would fall back to
/// this thread's current context when the values are invalid.
fn extract(traceparent: &str, tracestate: &str) -> Context {
    TraceContextPropagator::new().extract_with_context(&Context::new(), &Pair { traceparent, tracestate })
}

fn non_empty(v: HeaderValue) -> Result<HeaderValue, ()> {
    if v.is_empty() {
        Err(())
    } else {
        Ok(v)
    }
}

/// Makes `parent` the parent of `span`, which must not have been entered yet. Does
/// nothing without a parent, or when this process does not export traces.
pub fn set_parent(span: &Span, parent: Option<&TraceParent>) {
    if let Some(p) = parent {
        // Fails only when tracing is off for this span or process: nothing to join then.
        let _ = span.set_parent(p.context());
    }
}

/// A client interceptor that sends the current span's context with every request, so
/// the server's span for the call joins the caller's trace.
#[derive(Debug, Clone, Copy, Default)]
pub struct SendTraceContext;

impl Interceptor for SendTraceContext {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(parent) = TraceParent::of_span(&Span::current()) {
            parent.insert_into(request.metadata_mut().as_mut());
        }
        Ok(request)
    }
}

/// A gRPC channel whose requests carry the caller's trace context.
pub type TracedChannel = tonic::service::interceptor::InterceptedService<tonic::transport::Channel, SendTraceContext>;

/// Header-value pair read by the propagator.
struct Pair<'a> {
    traceparent: &'a str,
    tracestate: &'a str,
}

impl Extractor for Pair<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            TRACEPARENT => Some(self.traceparent),
            TRACESTATE => Some(self.tracestate),
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        vec![TRACEPARENT, TRACESTATE]
    }
}

impl Injector for TraceParent {
    fn set(&mut self, key: &str, value: String) {
        match key {
            TRACEPARENT => self.traceparent = value,
            TRACESTATE => self.tracestate = value,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn headers_round_trip_the_trace_id() {
        let sent = TraceParent::parse(VALID, "vendor=abc").expect("valid");
        let mut headers = HeaderMap::new();
        sent.insert_into(&mut headers);
        let got = TraceParent::from_headers(&headers).expect("extracted");
        assert_eq!(got, sent);
        assert_eq!(got.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(got.tracestate(), "vendor=abc");
    }

    #[test]
    fn garbage_is_ignored() {
        for bad in [
            "",
            "garbage",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "zz-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            &format!("{VALID}{}", "-x".repeat(10_000)),
        ] {
            assert_eq!(TraceParent::parse(bad, ""), None, "{bad:?}");
        }
        let mut headers = HeaderMap::new();
        headers.insert(TRACEPARENT, HeaderValue::from_bytes(b"\xff\xfe").expect("opaque bytes are a valid header"));
        assert_eq!(TraceParent::from_headers(&headers), None);
    }

    #[test]
    fn a_bad_tracestate_keeps_the_parent() {
        let t = TraceParent::parse(VALID, "not a tracestate,,==").expect("traceparent is valid");
        assert_eq!(t.traceparent(), VALID);
        assert_eq!(t.tracestate(), "");
        let long = format!("k={}", "v".repeat(MAX_TRACESTATE));
        assert_eq!(TraceParent::parse(VALID, &long).expect("valid").tracestate(), "");
        let mut headers = HeaderMap::new();
        t.insert_into(&mut headers);
        assert!(headers.get(TRACESTATE).is_none());
    }

    #[test]
    fn a_span_joins_the_received_trace_and_sends_it_on() {
        use opentelemetry::trace::TracerProvider as _;
        use tracing_subscriber::layer::SubscriberExt;

        // A provider without an exporter: spans get real ids, nothing leaves the test.
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("test"));
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
            let received = TraceParent::parse(VALID, "").expect("valid");
            let span = tracing::info_span!("rpc");
            set_parent(&span, Some(&received));
            let _in_span = span.enter();
            let request = SendTraceContext.call(tonic::Request::new(())).expect("interceptor never fails");
            let sent = TraceParent::from_headers(request.metadata().as_ref()).expect("context sent");
            assert_eq!(sent.trace_id(), received.trace_id());
            assert_ne!(sent, received, "the span's own id is sent, not its parent's");
            assert_eq!(TraceParent::handed_on(&span, None), Some(sent));
        });
    }

    #[test]
    fn without_an_exporter_the_received_context_is_handed_on() {
        let received = TraceParent::parse(VALID, "").expect("valid");
        let span = tracing::info_span!("no subscriber here");
        assert_eq!(TraceParent::of_span(&span), None);
        assert_eq!(TraceParent::handed_on(&span, Some(&received)), Some(received));
        set_parent(&span, None);
    }
}
