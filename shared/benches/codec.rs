//! Codec throughput: encode + decode of one `product.viewed`, the most common
//! event. Target: >= 2 M round trips per second on one core.
//!
//!     cargo bench -p shopmesh-shared --bench codec

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use shopmesh_shared::codec::{self, ENCODING, WireHeaders};
use shopmesh_shared::events::UserId;
use shopmesh_shared::testkit::viewed_by;
use std::hint::black_box;

fn codec(c: &mut Criterion) {
    let event = viewed_by(UserId::new_v7());
    let headers = WireHeaders {
        encoding: ENCODING,
        event_type: event.event_type().as_str(),
        schema_version: "1",
    };
    let body = codec::encode(&event).unwrap();
    let mut group = c.benchmark_group("codec/product.viewed");
    group.throughput(Throughput::Elements(1));
    group.bench_function("encode", |b| {
        b.iter(|| codec::encode(black_box(&event)).unwrap())
    });
    group.bench_function("decode", |b| {
        b.iter(|| codec::decode(headers, black_box(&body)).unwrap())
    });
    group.bench_function("encode+decode", |b| {
        b.iter(|| {
            let body = codec::encode(black_box(&event)).unwrap();
            codec::decode(headers, &body).unwrap()
        })
    });
    group.finish();

    // The rest of what the publisher adds per event: its message headers.
    let mut group = c.benchmark_group("publisher");
    group.throughput(Throughput::Elements(1));
    let cx = opentelemetry::Context::new();
    group.bench_function("event_headers (new root trace)", |b| {
        b.iter(|| shopmesh_shared::nats::headers::event_headers(black_box(&event), &cx))
    });
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
