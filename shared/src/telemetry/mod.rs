//! Telemetry, set up once per binary by [`init`]; libraries only emit through
//! `tracing`.
//!
//! - Logs: `tracing-subscriber` with `RUST_LOG` (default `info`), text or JSON
//!   lines (`SHOPMESH_LOG_FORMAT=json`), on standard error so that commands
//!   keep standard output for their results.
//! - Traces: an OpenTelemetry SDK tracer provider always exists, so every span
//!   has real trace and span ids that travel in NATS headers and HTTP calls.
//!   Spans are *exported* over OTLP only when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//!   `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set; `OTEL_EXPORTER_OTLP_PROTOCOL`
//!   chooses `http/protobuf` (default) or `grpc`.
//! - The standard variables are honoured: `OTEL_SERVICE_NAME`,
//!   `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER` and `_ARG`.
//! - The W3C TraceContext propagator is installed globally (the default is a
//!   no-op that would silently break every trace at the broker).
//!
//! - Spans made once per event use the target [`PER_EVENT_SPANS`]: the
//!   publisher's `tracing` span becomes an OpenTelemetry span but the log
//!   layers skip it (see [`log_filter`]); the consumer's spans (process,
//!   apply, recommender update) are made directly as OpenTelemetry spans
//!   ([`EventSpan`]), switched on and off with the same target.
//!
//! Call [`Telemetry::shutdown`] on exit: dropping the provider does not flush.

use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use std::io::IsTerminal;
use tracing_subscriber::filter::{FilterExt, FilterFn, filter_fn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The target of the spans made once per event. The log layers format every
/// span's fields when it is created, in case a log line inside it needs
/// them; for these spans that was a tenth of the analytics consumer's time
/// (profile in docs/benchmarks.md), for log lines that almost never come.
/// Traces keep them (the trace filter sees them like any `info` span).
pub const PER_EVENT_SPANS: &str = "shopmesh::per_event";

use crate::settings::{Env, SettingsError};

mod event_span;
pub use event_span::EventSpan;

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error("cannot build the OTLP exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    #[error("a global tracing subscriber is already installed: {0}")]
    AlreadyInstalled(#[from] tracing_subscriber::util::TryInitError),
}

/// Where spans go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpanExport {
    /// Not exported. Ids are still real and propagated (a publisher's
    /// traceparent lets another process that exports continue the trace);
    /// only the consumer's per-event spans, which nothing downstream
    /// continues, are not made at all (see [`per_event_spans_wanted`]).
    Off,
    Otlp {
        endpoint: String,
        protocol: OtlpProtocol,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    HttpProtobuf,
    Grpc,
}

/// Telemetry settings from the standard OpenTelemetry variables.
#[derive(Debug, Clone)]
pub struct TelemetrySettings {
    pub service_name: String,
    pub service_version: String,
    pub export: SpanExport,
    pub log_json: bool,
    /// Which events are logged (`RUST_LOG`, default `info`).
    pub log_filter: String,
    /// Which spans become OpenTelemetry spans (`SHOPMESH_TRACE_FILTER`, default
    /// `info`). Separate from the log filter: quiet logs must not cut traces.
    pub trace_filter: String,
    /// Which traces are recorded and exported.
    pub sampler: TraceSampler,
}

/// `OTEL_TRACES_SAMPLER` (default `parentbased_always_on`) with
/// `OTEL_TRACES_SAMPLER_ARG` (the ratio, default 1) for the ratio samplers.
/// Parsed here, from the same environment as every other setting: the SDK's
/// tracer provider builder does not read them itself (measured: a 0.01 ratio
/// set only in the environment still exported every span).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TraceSampler {
    AlwaysOn,
    AlwaysOff,
    TraceIdRatio(f64),
    ParentBasedAlwaysOn,
    ParentBasedAlwaysOff,
    ParentBasedTraceIdRatio(f64),
}

impl TraceSampler {
    fn from_env(env: &Env) -> Result<Self, SettingsError> {
        let ratio = || {
            env.parse_with(
                "OTEL_TRACES_SAMPLER_ARG",
                1.0,
                "a sampling ratio from 0 to 1",
                |v| v.parse::<f64>().ok().filter(|r| (0.0..=1.0).contains(r)),
            )
        };
        let name = env
            .get("OTEL_TRACES_SAMPLER")
            .unwrap_or("parentbased_always_on");
        Ok(match name {
            "always_on" => TraceSampler::AlwaysOn,
            "always_off" => TraceSampler::AlwaysOff,
            "traceidratio" => TraceSampler::TraceIdRatio(ratio()?),
            "parentbased_always_on" => TraceSampler::ParentBasedAlwaysOn,
            "parentbased_always_off" => TraceSampler::ParentBasedAlwaysOff,
            "parentbased_traceidratio" => TraceSampler::ParentBasedTraceIdRatio(ratio()?),
            other => {
                return Err(SettingsError {
                    variable: "OTEL_TRACES_SAMPLER".into(),
                    value: other.into(),
                    expected: "always_on, always_off, traceidratio, parentbased_always_on, \
                               parentbased_always_off or parentbased_traceidratio"
                        .into(),
                });
            }
        })
    }

    fn sampler(self) -> Sampler {
        match self {
            TraceSampler::AlwaysOn => Sampler::AlwaysOn,
            TraceSampler::AlwaysOff => Sampler::AlwaysOff,
            TraceSampler::TraceIdRatio(r) => Sampler::TraceIdRatioBased(r),
            TraceSampler::ParentBasedAlwaysOn => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
            TraceSampler::ParentBasedAlwaysOff => {
                Sampler::ParentBased(Box::new(Sampler::AlwaysOff))
            }
            TraceSampler::ParentBasedTraceIdRatio(r) => {
                Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(r)))
            }
        }
    }
}

impl TelemetrySettings {
    /// `default_service_name` applies when `OTEL_SERVICE_NAME` is not set.
    pub fn from_env(
        env: &Env,
        default_service_name: &str,
        service_version: &str,
    ) -> Result<Self, SettingsError> {
        let endpoint = env
            .get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .or_else(|| env.get("OTEL_EXPORTER_OTLP_ENDPOINT"));
        let protocol = env.parse_with(
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            OtlpProtocol::HttpProtobuf,
            "http/protobuf or grpc",
            |v| match v {
                "http/protobuf" => Some(OtlpProtocol::HttpProtobuf),
                "grpc" => Some(OtlpProtocol::Grpc),
                _ => None,
            },
        )?;
        let log_json =
            env.parse_with("SHOPMESH_LOG_FORMAT", false, "text or json", |v| match v {
                "json" => Some(true),
                "text" => Some(false),
                _ => None,
            })?;
        Ok(Self {
            service_name: env.string_or("OTEL_SERVICE_NAME", default_service_name),
            service_version: service_version.to_owned(),
            export: match endpoint {
                Some(endpoint) => SpanExport::Otlp {
                    endpoint: endpoint.to_owned(),
                    protocol,
                },
                None => SpanExport::Off,
            },
            log_json,
            log_filter: filter_setting(env, "RUST_LOG")?,
            trace_filter: filter_setting(env, "SHOPMESH_TRACE_FILTER")?,
            sampler: TraceSampler::from_env(env)?,
        })
    }

    pub const VARIABLES: &'static [&'static str] = &[
        "OTEL_SERVICE_NAME",
        "OTEL_RESOURCE_ATTRIBUTES",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_TRACES_SAMPLER",
        "OTEL_TRACES_SAMPLER_ARG",
        "SHOPMESH_LOG_FORMAT",
        "SHOPMESH_TRACE_FILTER",
        "RUST_LOG",
    ];
}

fn filter_setting(env: &Env, name: &str) -> Result<String, SettingsError> {
    env.parse_with(
        name,
        "info".to_owned(),
        "filter directives like info or warn,shopmesh=debug",
        |v| EnvFilter::try_new(v).ok().map(|_| v.to_owned()),
    )
}

/// The running telemetry; keep it for the life of the process and call
/// [`Telemetry::shutdown`] on the way out.
#[must_use = "keep the guard and call shutdown() on exit, or buffered spans are lost"]
pub struct Telemetry {
    provider: SdkTracerProvider,
}

/// The resource describing this process: the SDK's detectors (which read
/// `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES`) plus our defaults.
fn resource(settings: &TelemetrySettings) -> Resource {
    Resource::builder()
        .with_service_name(settings.service_name.clone())
        .with_attributes([
            KeyValue::new("service.version", settings.service_version.clone()),
            KeyValue::new("service.namespace", "shopmesh"),
        ])
        .build()
}

/// Builds the tracer provider. Must run inside a Tokio runtime when exporting
/// over gRPC (tonic needs one); the HTTP exporter uses its own blocking client.
pub fn tracer_provider(
    settings: &TelemetrySettings,
) -> Result<SdkTracerProvider, opentelemetry_otlp::ExporterBuildError> {
    let builder = SdkTracerProvider::builder()
        .with_resource(resource(settings))
        .with_sampler(settings.sampler.sampler());
    let builder = match &settings.export {
        SpanExport::Off => builder,
        SpanExport::Otlp { endpoint, protocol } => {
            let exporter = match protocol {
                OtlpProtocol::HttpProtobuf => opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_protocol(Protocol::HttpBinary)
                    .with_endpoint(http_traces_url(endpoint))
                    .build()?,
                OtlpProtocol::Grpc => opentelemetry_otlp::SpanExporter::builder()
                    .with_tonic()
                    .with_endpoint(endpoint.clone())
                    .build()?,
            };
            builder.with_batch_exporter(exporter)
        }
    };
    Ok(builder.build())
}

/// The generic endpoint is a base URL; the HTTP exporter wants the full path.
fn http_traces_url(endpoint: &str) -> String {
    if endpoint.ends_with("/v1/traces") {
        endpoint.to_owned()
    } else {
        format!("{}/v1/traces", endpoint.trim_end_matches('/'))
    }
}

/// An env-filter directive; settings validated it, so a failure here falls
/// back to `info` rather than to silence.
fn filter(directives: &str) -> EnvFilter {
    EnvFilter::try_new(directives).unwrap_or_else(|_| EnvFilter::new("info"))
}

/// What the log layers see: `directives` (`RUST_LOG`), without the spans
/// made once per event ([`PER_EVENT_SPANS`]). A line logged inside one of
/// those carries its own fields, not the span's.
pub fn log_filter<S>(directives: &str) -> impl tracing_subscriber::layer::Filter<S> + use<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let not_per_event: FilterFn = filter_fn(|meta| meta.target() != PER_EVENT_SPANS);
    filter(directives).and(not_per_event)
}

/// Whether the consumer's per-event spans ([`EventSpan`]) are made: only to
/// be exported, and only when the trace filter lets them in. Unexported,
/// they would be work nobody can see: they carry no log lines, and the
/// consumer publishes nothing in their context (a handler's `tracing` span
/// falls back to a root of its own, as it would for an untraced message).
/// `shopmesh bench` put their making at about a tenth of the analytics
/// process (docs/benchmarks.md).
fn per_event_spans_wanted(settings: &TelemetrySettings) -> bool {
    settings.export != SpanExport::Off && trace_filter_keeps_per_event_spans(&settings.trace_filter)
}

/// Whether the trace filter `directives` let the per-event spans in (an
/// info span of target [`PER_EVENT_SPANS`]). The consumer's per-event spans
/// bypass `tracing` (see [`EventSpan`]) but obey the same filter. Asked of
/// the filter alone, in a subscriber of its own: in the process's
/// subscriber the log layers' filters would answer too.
fn trace_filter_keeps_per_event_spans(directives: &str) -> bool {
    let probe = tracing_subscriber::registry().with(filter(directives));
    tracing::subscriber::with_default(
        probe,
        || tracing::span_enabled!(target: PER_EVENT_SPANS, tracing::Level::INFO),
    )
}

/// Installs logging, tracing and the W3C propagator for this process.
pub fn init(settings: &TelemetrySettings) -> Result<Telemetry, TelemetryError> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    crate::nats::headers::set_root_sampler(settings.sampler.sampler());
    let provider = tracer_provider(settings)?;
    let tracer = provider.tracer(settings.service_name.clone());
    opentelemetry::global::set_tracer_provider(provider.clone());

    // Per-layer filters: RUST_LOG=warn silences logs without disabling the
    // info-level spans that make up a trace. (Not boxed: a boxed layer with a
    // per-layer filter hides its filter's level hint and disables the spans.)
    let json_logs = settings.log_json.then(|| {
        tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .with_filter(log_filter(&settings.log_filter))
    });
    // Standard error for both formats: fmt's default writer is standard
    // output, where a command's results go and which `shopmesh up` discards.
    // Colours only for a terminal: `shopmesh up` and container runtimes
    // send standard error to files, where escape codes are noise.
    let text_logs = (!settings.log_json).then(|| {
        tracing_subscriber::fmt::layer()
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
            .with_filter(log_filter(&settings.log_filter))
    });
    let event_tracer = tracer.clone();
    tracing_subscriber::registry()
        .with(json_logs)
        .with(text_logs)
        .with(
            tracing_opentelemetry::layer()
                .with_tracer(tracer)
                // Not the busy/idle times (a clock read at every enter and
                // exit) nor the thread's name and id (a string per span):
                // tracing's own bookkeeping, not OpenTelemetry conventions,
                // paid on the three spans of every event.
                .with_tracked_inactivity(false)
                .with_threads(false)
                .with_filter(filter(&settings.trace_filter)),
        )
        .try_init()?;
    if per_event_spans_wanted(settings) {
        event_span::install(event_tracer);
    }
    Ok(Telemetry { provider })
}

impl Telemetry {
    /// Flushes and stops the exporter. Runs on a plain thread: on an actix
    /// `System` (a single-threaded runtime) a direct shutdown of the gRPC
    /// exporter deadlocked until its timeout and lost every span.
    pub fn shutdown(self) {
        let provider = self.provider;
        let flushed = std::thread::spawn(move || provider.shutdown()).join();
        match flushed {
            Ok(Ok(())) => {}
            Ok(Err(error)) => eprintln!("telemetry shutdown: {error}"),
            Err(_) => eprintln!("telemetry shutdown panicked"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer the fmt layer can log into, read back by the test.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn log_lines_skip_the_per_event_spans_and_keep_the_others() {
        let captured = Captured::default();
        let writer = captured.clone();
        let logs = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .with_filter(log_filter("info"));
        // A second layer, as OpenTelemetry's, still sees the per-event span.
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let names = seen.clone();
        let spans = tracing_subscriber::layer::Identity::new().and_then(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::sink)
                .with_filter(filter_fn(move |meta| {
                    if meta.is_span() {
                        names.lock().unwrap().push(meta.name());
                    }
                    true
                })),
        );
        let subscriber = tracing_subscriber::registry().with(logs).with(spans);
        tracing::subscriber::with_default(subscriber, || {
            let request = tracing::info_span!("request", route = "/orders");
            let _request = request.enter();
            let event = tracing::info_span!(target: PER_EVENT_SPANS, "process", sequence = 41);
            let _event = event.enter();
            tracing::info!(answer = 42, "inside both");
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(text.contains("inside both"), "{text}");
        assert!(text.contains("answer=42"), "{text}");
        assert!(text.contains("route=\"/orders\""), "{text}");
        assert!(!text.contains("sequence=41"), "{text}");
        assert!(!text.contains("process"), "{text}");
        assert!(seen.lock().unwrap().contains(&"process"));
    }

    #[test]
    fn the_trace_filter_decides_the_per_event_spans() {
        for (directives, kept) in [
            ("info", true),
            ("warn,shopmesh::per_event=info", true),
            ("debug", true),
            ("info,shopmesh::per_event=off", false),
            ("info,shopmesh=warn", false),
            ("warn", false),
        ] {
            assert_eq!(
                trace_filter_keeps_per_event_spans(directives),
                kept,
                "{directives}"
            );
        }
    }

    /// The settings a service would read from exactly `pairs`.
    fn settings_from(pairs: &[(&str, &str)]) -> TelemetrySettings {
        TelemetrySettings::from_env(&Env::from_pairs(pairs.to_vec()), "order", "0.1.0").unwrap()
    }

    #[test]
    fn per_event_spans_are_made_only_to_be_exported() {
        let wanted = |pairs: &[(&str, &str)]| per_event_spans_wanted(&settings_from(pairs));
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318");
        assert!(wanted(&[endpoint]));
        assert!(!wanted(&[]));
        assert!(!wanted(&[
            endpoint,
            ("SHOPMESH_TRACE_FILTER", "info,shopmesh::per_event=off")
        ]));
    }

    #[test]
    fn the_sampler_follows_the_standard_variables() {
        let sampled = |pairs: &[(&str, &str)]| {
            let provider = tracer_provider(&settings_from(pairs)).unwrap();
            let tracer = provider.tracer("test");
            let sampled = (0..200)
                .filter(|_| {
                    use opentelemetry::trace::{Span as _, Tracer as _};
                    tracer.start("root").span_context().is_sampled()
                })
                .count();
            let _ = provider.shutdown();
            sampled
        };
        assert_eq!(sampled(&[]), 200);
        let none = [
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0"),
        ];
        assert_eq!(sampled(&none), 0);
        let some = sampled(&[
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.5"),
        ]);
        assert!((40..=160).contains(&some), "{some}");
        assert_eq!(sampled(&[("OTEL_TRACES_SAMPLER", "always_off")]), 0);
        let error = TelemetrySettings::from_env(
            &Env::from_pairs([
                ("OTEL_TRACES_SAMPLER", "traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "2"),
            ]),
            "order",
            "0.1.0",
        )
        .unwrap_err();
        assert_eq!(error.variable, "OTEL_TRACES_SAMPLER_ARG");
        let error = TelemetrySettings::from_env(
            &Env::from_pairs([("OTEL_TRACES_SAMPLER", "sometimes")]),
            "order",
            "0.1.0",
        )
        .unwrap_err();
        assert_eq!(error.variable, "OTEL_TRACES_SAMPLER");
    }

    #[test]
    fn export_is_off_without_an_endpoint() {
        let settings = TelemetrySettings::from_env(&Env::default(), "order", "0.1.0").unwrap();
        assert_eq!(settings.export, SpanExport::Off);
        assert_eq!(settings.service_name, "order");
    }

    #[test]
    fn standard_variables_are_honoured() {
        let env = Env::from_pairs([
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://jaeger:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_SERVICE_NAME", "order-eu"),
        ]);
        let settings = TelemetrySettings::from_env(&env, "order", "0.1.0").unwrap();
        assert_eq!(settings.service_name, "order-eu");
        assert_eq!(
            settings.export,
            SpanExport::Otlp {
                endpoint: "http://jaeger:4317".into(),
                protocol: OtlpProtocol::Grpc
            }
        );
    }

    #[test]
    fn an_unknown_protocol_names_the_variable() {
        let env = Env::from_pairs([("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon")]);
        let err = TelemetrySettings::from_env(&env, "order", "0.1.0").unwrap_err();
        assert_eq!(err.variable, "OTEL_EXPORTER_OTLP_PROTOCOL");
    }

    #[test]
    fn http_endpoint_gets_the_traces_path_once() {
        assert_eq!(http_traces_url("http://j:4318"), "http://j:4318/v1/traces");
        assert_eq!(http_traces_url("http://j:4318/"), "http://j:4318/v1/traces");
        assert_eq!(
            http_traces_url("http://j:4318/v1/traces"),
            "http://j:4318/v1/traces"
        );
    }
}
