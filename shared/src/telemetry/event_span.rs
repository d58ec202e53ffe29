//! Spans made once per consumed event (process, apply, recommender update),
//! made straight through the OpenTelemetry tracer instead of through
//! `tracing`.
//!
//! Why not `tracing` spans like the rest: a `tracing` span that becomes an
//! OpenTelemetry span pays twice, once for `tracing`'s registry (a slot, an
//! extensions map, the layers' callbacks at every enter, exit and close) and
//! once for the OpenTelemetry span it is turned into. The analytics
//! consumer makes three spans per event at tens of thousands of events a
//! second; a profile under `shopmesh bench` put that double bookkeeping at
//! over a fifth of the process (docs/benchmarks.md). These spans hold no
//! log lines and no `tracing` children, so the registry's half bought
//! nothing.
//!
//! They still follow the process's telemetry: the tracer, sampler and
//! exporter [`super::init`] set up, and the trace filter
//! (`SHOPMESH_TRACE_FILTER`): switching the target [`super::PER_EVENT_SPANS`]
//! off switches these off too, and so does exporting nothing (they are
//! made only to be exported: `per_event_spans_wanted`). Without `init`
//! (benchmarks, tests that set no telemetry up) or without an exporter an
//! [`EventSpan`] is empty and costs nothing, as a `tracing` span without a
//! subscriber did.

use opentelemetry::trace::{SpanBuilder, SpanContext, SpanKind, TraceContextExt, Tracer as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::SdkTracer;
use std::borrow::Cow;
use std::sync::OnceLock;

/// The tracer per-event spans are made with; unset until [`install`].
static TRACER: OnceLock<SdkTracer> = OnceLock::new();

/// Makes per-event spans with `tracer` from now on (the first call wins: one
/// tracer provider per process).
pub(super) fn install(tracer: SdkTracer) {
    let _ = TRACER.set(tracer);
}

/// One per-event span, or nothing: telemetry off, or a parent that is
/// nothing. The span ends when this is dropped.
#[derive(Debug, Default)]
pub struct EventSpan {
    /// A context holding the span: what its children and any `tracing`
    /// span continuing it take as their parent.
    cx: Option<Context>,
}

/// The attributes every per-event span carries, as `tracing` spans of the
/// same code carried them: the per-event target and where the span was
/// made.
fn source_attributes(module: &'static str) -> [KeyValue; 2] {
    [
        KeyValue::new("target", super::PER_EVENT_SPANS),
        KeyValue::new("code.module.name", module),
    ]
}

impl EventSpan {
    /// No span: its children are none either.
    pub fn none() -> Self {
        Self { cx: None }
    }

    /// Whether spans are made at all: callers check it before building
    /// names and attributes that would be thrown away.
    pub fn enabled() -> bool {
        TRACER.get().is_some()
    }

    /// A root span or, when `parent` is a valid span context (usually
    /// another process's, from message headers), its child. `module` is the
    /// caller's `module_path!()`.
    pub fn start<const N: usize>(
        name: impl Into<Cow<'static, str>>,
        kind: SpanKind,
        parent: Option<SpanContext>,
        module: &'static str,
        attributes: [KeyValue; N],
    ) -> Self {
        let Some(tracer) = TRACER.get() else {
            return Self::none();
        };
        let parent_cx = match parent {
            Some(parent) if parent.is_valid() => Context::new().with_remote_span_context(parent),
            _ => Context::new(),
        };
        Self::build(tracer, name.into(), kind, &parent_cx, module, attributes)
    }

    /// An INTERNAL child of this span; none when this is none.
    pub fn child<const N: usize>(
        &self,
        name: &'static str,
        module: &'static str,
        attributes: [KeyValue; N],
    ) -> Self {
        match (TRACER.get(), &self.cx) {
            (Some(tracer), Some(cx)) => Self::build(
                tracer,
                Cow::Borrowed(name),
                SpanKind::Internal,
                cx,
                module,
                attributes,
            ),
            _ => Self::none(),
        }
    }

    fn build<const N: usize>(
        tracer: &SdkTracer,
        name: Cow<'static, str>,
        kind: SpanKind,
        parent_cx: &Context,
        module: &'static str,
        attributes: [KeyValue; N],
    ) -> Self {
        // One allocation of the right size: growing it was a tenth of the
        // cost of a span in a profile.
        let mut all = Vec::with_capacity(N + 2);
        all.extend(attributes);
        all.extend(source_attributes(module));
        let builder = SpanBuilder::from_name(name)
            .with_kind(kind)
            .with_attributes(all);
        let span = tracer.build_with_context(builder, parent_cx);
        // An unsampled span records nothing; keeping its context still
        // carries the "not sampled" decision to the children.
        Self {
            cx: Some(parent_cx.with_span(span)),
        }
    }

    /// Adds attributes to the span (nothing when there is none).
    pub fn set_attributes(&self, attributes: impl IntoIterator<Item = KeyValue>) {
        if let Some(cx) = &self.cx {
            cx.span().set_attributes(attributes);
        }
    }

    /// The context holding the span, for a `tracing` span to continue it
    /// (`OpenTelemetrySpanExt::set_parent`) or for headers; `None` when
    /// there is no span.
    pub fn context(&self) -> Option<&Context> {
        self.cx.as_ref()
    }

    /// The span's ids (invalid when there is none).
    pub fn span_context(&self) -> SpanContext {
        self.cx
            .as_ref()
            .map(|cx| cx.span().span_context().clone())
            .unwrap_or_else(SpanContext::empty_context)
    }
}

impl Drop for EventSpan {
    fn drop(&mut self) {
        if let Some(cx) = &self.cx {
            // The span ends now, not when the last clone of its context
            // goes (a child's parent context, a `tracing` span's parent).
            cx.span().end();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_telemetry_every_span_is_none_and_so_are_its_children() {
        // Unit tests run without `install` (each in its own process under
        // nextest): nothing may be recorded, nor cost a span.
        let span = EventSpan::start(
            "process x",
            SpanKind::Consumer,
            None,
            module_path!(),
            [KeyValue::new("a", 1)],
        );
        assert!(!EventSpan::enabled());
        assert!(span.context().is_none());
        assert!(!span.span_context().is_valid());
        let child = span.child("apply", module_path!(), []);
        assert!(child.context().is_none());
    }
}
