//! Parsing one request line, per message type: the node's `Parser` (simd-json, buffers and tape
//! reused), simd-json with fresh buffers, and serde_json as a baseline. Throughput in bytes.
//!
//! `cargo bench --bench parse` (one type: `cargo bench --bench parse -- parse/poll`).

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use maelstrom_kafka::protocol::{Keys, Parser};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// One Maelstrom-shaped line per message type.
const LINES: &[(&str, &str)] = &[
    (
        "send",
        r#"{"id":1802,"src":"c4","dest":"n0","body":{"type":"send","key":"417","msg":9,"msg_id":311}}"#,
    ),
    (
        "poll",
        r#"{"id":1803,"src":"c4","dest":"n0","body":{"type":"poll","offsets":{"411":16,"414":9,"416":3,"417":0},"msg_id":312}}"#,
    ),
    (
        "commit_offsets",
        r#"{"id":1804,"src":"c4","dest":"n0","body":{"type":"commit_offsets","offsets":{"414":11,"416":4,"417":8},"msg_id":313}}"#,
    ),
    (
        "list_committed_offsets",
        r#"{"id":1805,"src":"c4","dest":"n0","body":{"type":"list_committed_offsets","keys":["415","416","417"],"msg_id":314}}"#,
    ),
];

fn parse(c: &mut Criterion) {
    for (name, line) in LINES {
        let line = line.as_bytes();
        let mut group = c.benchmark_group(format!("parse/{name}"));
        group.throughput(Throughput::Bytes(line.len() as u64));
        let mut parser = Parser::default();
        let mut keys = Keys::new();
        group.bench_function("node_parser", |b| {
            b.iter(|| {
                keys.clear();
                parser
                    .parse(black_box(line), true, &mut keys)
                    .expect("valid")
            });
        });
        group.bench_function("simd_json_fresh_buffers", |b| {
            b.iter_batched_ref(
                || line.to_vec(),
                |copy| {
                    simd_json::to_borrowed_value(copy).map(drop).expect("valid");
                },
                BatchSize::SmallInput,
            );
        });
        let mut buffers = simd_json::Buffers::default();
        group.bench_function("simd_json_reused_buffers", |b| {
            b.iter_batched_ref(
                || line.to_vec(),
                |copy| {
                    simd_json::to_borrowed_value_with_buffers(copy, &mut buffers)
                        .map(drop)
                        .expect("valid");
                },
                BatchSize::SmallInput,
            );
        });
        group.bench_function("serde_json_value", |b| {
            b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(line)).expect("valid"));
        });
        group.finish();
    }

    // A realistic mix, as the reader sees it.
    let mix = kafka_perf::generate_vec(kafka_perf::Profile::Maelstrom, 10_000, 1);
    let lines: Vec<&[u8]> = mix
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let mut group = c.benchmark_group("parse/maelstrom_mix");
    group.throughput(Throughput::Elements(lines.len() as u64));
    let mut parser = Parser::default();
    let mut keys = Keys::new();
    group.bench_function("node_parser", |b| {
        b.iter(|| {
            for line in &lines {
                keys.clear();
                black_box(parser.parse(line, true, &mut keys).expect("valid"));
            }
        });
    });
    // What `floor` does per line: simd-json's tape alone, on a reused padded copy. The node's
    // parser less this is what turning the tape into a request costs the reader.
    let mut scratch = Vec::new();
    let mut buffers = simd_json::Buffers::default();
    let mut tape = Some(simd_json::Tape::null().reset());
    group.bench_function("simd_json_tape", |b| {
        b.iter(|| {
            for line in &lines {
                scratch.clear();
                scratch.extend_from_slice(line);
                scratch.resize(line.len() + simd_json::INPUT_PADDING, 0);
                let mut t = tape.take().expect("always put back");
                simd_json::fill_tape_padded(&mut scratch, line.len(), &mut buffers, &mut t)
                    .expect("valid");
                black_box(&t);
                tape = Some(t.reset());
            }
        });
    });
    group.bench_function("serde_json_value", |b| {
        b.iter(|| {
            for line in &lines {
                black_box(serde_json::from_slice::<serde_json::Value>(line).expect("valid"));
            }
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = parse
}
criterion_main!(benches);
