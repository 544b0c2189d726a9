//! Logs, traces and metrics. Every log line written while serving a call is inside that call's
//! span, which carries its `trace_id` (and `source_agent` when known). When
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set, the same spans are exported over OTLP, continuing the
//! caller's trace: a span per call and a child per upstream attempt, with the OpenTelemetry
//! GenAI attributes.

pub mod metrics;
mod text;

pub use text::escape_controls;

use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider as _,
};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry};

use crate::config::LogFormat;
use crate::context::CallContext;

/// Keeps the trace exporter alive; `shutdown` flushes what is batched.
pub struct Telemetry {
    tracer_provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    pub fn shutdown(self) {
        if let Some(provider) = self.tracer_provider {
            if let Err(e) = provider.shutdown() {
                tracing::warn!("trace export did not shut down cleanly: {e}");
            }
        }
    }
}

/// Whether spans are exported; when not, no trace context is built for them.
static EXPORTING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn exporting() -> bool {
    EXPORTING.load(std::sync::atomic::Ordering::Relaxed)
}

/// Spans exported over OTLP: the service's own, at info and above, whatever the log level.
const EXPORTED: &str = "llmrpc=info";

/// Installs the global subscriber: logs to standard error, and OTLP export of the spans when
/// `OTEL_EXPORTER_OTLP_ENDPOINT` is set (the standard `OTEL_*` variables configure it).
pub fn init(filter: &str, format: LogFormat) -> Result<Telemetry, String> {
    let log_filter =
        EnvFilter::try_new(filter).map_err(|e| format!("invalid LLMRPC_LOG {filter:?}: {e}"))?;
    // Colour only for a person at a terminal, and never under NO_COLOR (no-color.org): files,
    // pipes and CI logs get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let logs: Box<dyn Layer<Registry> + Send + Sync> = match format {
        LogFormat::Json => fmt
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .boxed(),
        LogFormat::Pretty => fmt.fmt_fields(text::fields()).boxed(),
    };
    let endpoint = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").unwrap_or_default();
    let tracer_provider = match endpoint.trim() {
        "" => None,
        _ => Some(exporting_provider()?),
    };
    EXPORTING.store(
        tracer_provider.is_some(),
        std::sync::atomic::Ordering::Relaxed,
    );
    let traces = tracer_provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("llmrpc"))
            .with_filter(EnvFilter::new(EXPORTED))
    });
    tracing_subscriber::registry()
        .with(logs.with_filter(log_filter))
        .with(traces)
        .try_init()
        .map_err(|e| e.to_string())?;
    Ok(Telemetry { tracer_provider })
}

fn exporting_provider() -> Result<SdkTracerProvider, String> {
    use opentelemetry_otlp::{Protocol, WithExportConfig};
    let protocol = match std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL").as_deref() {
        Ok("http/json") => Protocol::HttpJson,
        _ => Protocol::HttpBinary,
    };
    // The exporter's HTTP client uses the process-wide TLS provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(protocol)
        .build()
        .map_err(|e| format!("OTLP exporter: {e}"))?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name("llmrpc")
        .build();
    // Batched on its own thread: exporting never blocks a call.
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// The span a call is served in. It continues the caller's trace (its W3C trace id, with the
/// caller's span as parent), and the call takes the span's id as its own.
pub fn call_span(method: &'static str, ctx: &mut CallContext) -> tracing::Span {
    let span = tracing::info_span!(
        "llm.call",
        method,
        trace_id = %ctx.trace_id,
        source_agent = tracing::field::Empty,
        "otel.kind" = "server",
        "gen_ai.operation.name" = "chat",
        "gen_ai.system" = tracing::field::Empty,
        "gen_ai.request.model" = tracing::field::Empty,
        "gen_ai.response.model" = tracing::field::Empty,
        "gen_ai.usage.input_tokens" = tracing::field::Empty,
        "gen_ai.usage.output_tokens" = tracing::field::Empty,
        "gen_ai.response.finish_reasons" = tracing::field::Empty,
        "gen_ai.tool.names" = tracing::field::Empty,
        "gen_ai.conversation.id" = tracing::field::Empty,
        "a2a.trace_id" = %ctx.trace_id,
        "a2a.source_agent" = tracing::field::Empty,
        "a2a.session_id" = tracing::field::Empty,
        "error.type" = tracing::field::Empty,
        "otel.status_code" = tracing::field::Empty,
    );
    continue_trace(span, ctx)
}

/// The span an operator's call (`ops.*`) is served in: like a model call's, it carries the
/// caller's trace id and continues the caller's trace, without the GenAI attributes.
pub fn ops_span(method: &'static str, ctx: &mut CallContext) -> tracing::Span {
    let span = tracing::info_span!(
        "ops.call",
        method,
        trace_id = %ctx.trace_id,
        source_agent = tracing::field::Empty,
        "otel.kind" = "server",
        "a2a.trace_id" = %ctx.trace_id,
        "a2a.source_agent" = tracing::field::Empty,
        "a2a.session_id" = tracing::field::Empty,
    );
    continue_trace(span, ctx)
}

/// Names the caller's agent and session on a call's span and, when spans are exported, makes it
/// a child of the caller's span; the call takes the span's id as its own.
fn continue_trace(span: tracing::Span, ctx: &mut CallContext) -> tracing::Span {
    if let Some(agent) = &ctx.a2a.source_agent {
        span.record("source_agent", agent.as_str());
        span.record("a2a.source_agent", agent.as_str());
    }
    if let Some(session) = &ctx.a2a.session_id {
        span.record("a2a.session_id", session.as_str());
    }
    if let Some(conversation) = &ctx.a2a.conversation_id {
        span.record("gen_ai.conversation.id", conversation.as_str());
    }
    if !exporting() {
        return span;
    }
    if let Ok(trace_id) = TraceId::from_hex(&ctx.w3c_trace_id) {
        let parent = ctx
            .parent_span_id
            .as_deref()
            .and_then(|id| SpanId::from_hex(id).ok());
        // Without a caller's span, a made-up remote parent still fixes the trace id.
        let parent = parent.unwrap_or_else(|| SpanId::from_bytes(fastrand::u64(1..).to_be_bytes()));
        let remote = SpanContext::new(
            trace_id,
            parent,
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        );
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote));
    }
    if let Some(id) = span_id(&span) {
        ctx.adopt_span_id(id);
    }
    span
}

/// The OpenTelemetry id of `span`, when spans are exported.
fn span_id(span: &tracing::Span) -> Option<String> {
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context
        .is_valid()
        .then(|| span_context.span_id().to_string())
}

/// The span of one upstream request; the request's `traceparent` names it, so the provider's
/// side of the trace hangs under it.
pub fn attempt_span(provider: &str, model: &str, attempt: u32) -> tracing::Span {
    tracing::info_span!(
        "llm.attempt",
        "otel.kind" = "client",
        "gen_ai.operation.name" = "chat",
        "gen_ai.system" = provider,
        "gen_ai.request.model" = model,
        attempt = i64::from(attempt),
        "http.response.status_code" = tracing::field::Empty,
        "error.type" = tracing::field::Empty,
        "otel.status_code" = tracing::field::Empty,
    )
}

/// The `traceparent` for a request made under `span`, when spans are exported.
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    if !exporting() {
        return None;
    }
    let context = span.context();
    let sc = context.span().span_context().clone();
    sc.is_valid()
        .then(|| format!("00-{}-{}-01", sc.trace_id(), sc.span_id()))
}
