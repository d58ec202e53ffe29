//! An in-process OTLP/HTTP trace receiver for tests. It decodes the real OTLP
//! protobuf with `opentelemetry-proto`, so a test sees exactly what Jaeger
//! would receive.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// One exported span with the `service.name` of its resource.
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    pub service_name: String,
    pub resource: Vec<KeyValue>,
    pub span: Span,
}

impl ReceivedSpan {
    /// A string attribute of the span.
    pub fn attribute(&self, key: &str) -> Option<String> {
        find_string(&self.span.attributes, key)
    }

    /// A string attribute of the resource.
    pub fn resource_attribute(&self, key: &str) -> Option<String> {
        find_string(&self.resource, key)
    }
}

/// Lower-case hex of an OTLP id (trace or span id bytes).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The received spans of one trace, with the lookups trace tests make.
#[derive(Debug, Clone)]
pub struct ReceivedTrace {
    /// The trace id, lower-case hex.
    pub id: String,
    pub spans: Vec<ReceivedSpan>,
}

impl ReceivedTrace {
    /// The spans of `all` in the trace `id` (lower-case hex).
    pub fn of(all: &[ReceivedSpan], id: &str) -> Self {
        Self {
            id: id.to_owned(),
            spans: all
                .iter()
                .filter(|s| hex(&s.span.trace_id) == id)
                .cloned()
                .collect(),
        }
    }

    /// A line per span: service, name and kind, for failure messages.
    pub fn describe(&self) -> Vec<String> {
        self.spans
            .iter()
            .map(|s| format!("{} {} (kind {})", s.service_name, s.span.name, s.span.kind))
            .collect()
    }

    /// The one span that matches; panics naming what the trace holds.
    pub fn one(&self, what: &str, matches: impl Fn(&ReceivedSpan) -> bool) -> &ReceivedSpan {
        let found: Vec<&ReceivedSpan> = self.spans.iter().filter(|s| matches(s)).collect();
        assert_eq!(
            found.len(),
            1,
            "{what}: expected exactly one in trace {}, it holds {:#?}",
            self.id,
            self.describe()
        );
        found[0]
    }

    pub fn by_id(&self, span_id: &[u8]) -> Option<&ReceivedSpan> {
        self.spans.iter().find(|s| s.span.span_id == span_id)
    }

    /// True when walking up from `span` by parent ids reaches `ancestor`
    /// through received spans only (no broken link on the way).
    pub fn descends_from(&self, span: &ReceivedSpan, ancestor: &ReceivedSpan) -> bool {
        let mut current = span;
        for _ in 0..self.spans.len() {
            if current.span.parent_span_id == ancestor.span.span_id {
                return true;
            }
            match self.by_id(&current.span.parent_span_id) {
                Some(parent) => current = parent,
                None => return false,
            }
        }
        false
    }
}

fn find_string(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(s) => Some(s.clone()),
            any_value::Value::IntValue(i) => Some(i.to_string()),
            any_value::Value::BoolValue(b) => Some(b.to_string()),
            other => Some(format!(
                "{:?}",
                AnyValue {
                    value: Some(other.clone())
                }
            )),
        }
    })
}

/// Listens on a loopback port for `POST /v1/traces`.
pub struct OtlpReceiver {
    pub endpoint: String,
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
    task: tokio::task::JoinHandle<()>,
}

impl OtlpReceiver {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind OTLP receiver");
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let spans = Arc::new(Mutex::new(Vec::new()));
        let store = spans.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, store.clone()));
            }
        });
        Self {
            endpoint,
            spans,
            task,
        }
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.spans.lock().unwrap().clone()
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves HTTP/1.1 requests on one connection (keep-alive) until it closes.
async fn serve(stream: tokio::net::TcpStream, store: Arc<Mutex<Vec<ReceivedSpan>>>) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut content_length = 0usize;
        let mut chunked = false;
        let mut line = String::new();
        let mut first = true;
        loop {
            line.clear();
            match reader.read_line(&mut line).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let trimmed = line.trim_end();
            if trimmed.is_empty() && !first {
                break;
            }
            first = false;
            if let Some((name, value)) = trimmed.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    content_length = value.trim().parse().unwrap_or(0);
                } else if name.eq_ignore_ascii_case("transfer-encoding") {
                    chunked = value.trim().eq_ignore_ascii_case("chunked");
                }
            }
        }
        let body = if chunked {
            match read_chunked(&mut reader).await {
                Some(body) => body,
                None => return,
            }
        } else {
            let mut body = vec![0; content_length];
            if reader.read_exact(&mut body).await.is_err() {
                return;
            }
            body
        };
        if let Ok(request) = ExportTraceServiceRequest::decode(body.as_slice()) {
            let mut spans = store.lock().unwrap();
            for resource_spans in request.resource_spans {
                let resource = resource_spans
                    .resource
                    .map(|r| r.attributes)
                    .unwrap_or_default();
                let service_name = find_string(&resource, "service.name").unwrap_or_default();
                for scope in resource_spans.scope_spans {
                    for span in scope.spans {
                        spans.push(ReceivedSpan {
                            service_name: service_name.clone(),
                            resource: resource.clone(),
                            span,
                        });
                    }
                }
            }
        }
        let response =
            "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
        if reader
            .get_mut()
            .write_all(response.as_bytes())
            .await
            .is_err()
        {
            return;
        }
    }
}

/// Reads a `Transfer-Encoding: chunked` body.
async fn read_chunked(reader: &mut BufReader<tokio::net::TcpStream>) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        reader.read_line(&mut line).await.ok()?;
        let size_text = line.trim().split(';').next()?;
        let size = usize::from_str_radix(size_text, 16).ok()?;
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..]).await.ok()?;
        line.clear();
        reader.read_line(&mut line).await.ok()?; // CRLF after the chunk
        if size == 0 {
            return Some(body);
        }
    }
}
