//! End to end in memory: N generated request lines through the real reader, worker and writer
//! threads (`maelstrom_kafka::run` over a `Cursor`, replies to `io::sink()`), in requests/s, for
//! 1, 2 and 4 workers; beside the single-threaded parse-only floor on the same lines.
//!
//! `cargo bench --bench pipeline` (one profile: `cargo bench --bench pipeline -- pipeline/maelstrom`).

use std::hint::black_box;
use std::io::{self, Cursor, Write};
use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use kafka_perf::Profile;
use maelstrom_kafka::{Config, run};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Requests per iteration: enough to amortise thread start-up, small enough for quick samples.
const REQUESTS: u64 = 100_000;

const REPLY: &[u8] =
    b"{\"src\":\"n0\",\"dest\":\"c1\",\"body\":{\"type\":\"send_ok\",\"in_reply_to\":1,\"offset\":0}}\n";

fn pipeline(c: &mut Criterion) {
    for profile in [Profile::Maelstrom, Profile::LongLog] {
        let input: Arc<[u8]> = kafka_perf::generate_vec(profile, REQUESTS, 1).into();
        let mut group = c.benchmark_group(format!("pipeline/{}", profile.name()));
        group.throughput(Throughput::Elements(REQUESTS));
        for workers in [1usize, 2, 4] {
            let config = Config {
                workers,
                ..Config::default()
            };
            group.bench_with_input(BenchmarkId::new("node", workers), &config, |b, config| {
                b.iter(|| {
                    run(Cursor::new(Arc::clone(&input)), io::sink(), config.clone())
                        .expect("in-memory run");
                });
            });
        }
        // The floor: what one thread needs just to split and parse the lines and write a reply.
        group.bench_function("floor", |b| {
            let mut parser = maelstrom_kafka::protocol::Parser::default();
            let mut keys = maelstrom_kafka::protocol::Keys::new();
            let mut out = io::sink();
            b.iter(|| {
                for line in input.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                    keys.clear();
                    black_box(parser.parse(line, true, &mut keys).is_ok());
                    out.write_all(REPLY).expect("sink");
                }
            });
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(10);
    targets = pipeline
}
criterion_main!(benches);
