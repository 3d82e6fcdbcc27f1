//! The store alone: appends uncontended and contended (1/2/4/8 threads, one key or many keys),
//! and polls from the tail and from 0 on short and long logs. Throughput in operations
//! (appends) or messages returned (polls).
//!
//! `cargo bench --bench store` (one group: `cargo bench --bench store -- contended`).

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use maelstrom_kafka::store::{Logs, Msg};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Keys in the many-keys cases: more than Maelstrom's 10 active keys, as a long run leaves them.
const MANY_KEYS: usize = 1024;

fn msg(i: u64) -> Msg {
    (i % 1000).to_string().into()
}

fn keys() -> Vec<String> {
    (0..MANY_KEYS).map(|k| k.to_string()).collect()
}

fn uncontended(c: &mut Criterion) {
    let keys = keys();
    let mut group = c.benchmark_group("uncontended");
    group.throughput(Throughput::Elements(1));
    group.bench_function("append/one_key", |b| {
        b.iter_custom(|iters| {
            let logs = Logs::new();
            let start = Instant::now();
            for i in 0..iters {
                logs.append("k", msg(i)).expect("room");
            }
            start.elapsed()
        });
    });
    group.bench_function("append/many_keys", |b| {
        b.iter_custom(|iters| {
            let logs = Logs::new();
            let start = Instant::now();
            for i in 0..iters {
                logs.append(&keys[i as usize % MANY_KEYS], msg(i))
                    .expect("room");
            }
            start.elapsed()
        });
    });
    group.bench_function("commit/many_keys", |b| {
        let logs = Logs::new();
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            logs.commit(&keys[i as usize % MANY_KEYS], i);
        });
    });
    group.finish();
}

fn contended(c: &mut Criterion) {
    let keys = keys();
    let mut group = c.benchmark_group("contended");
    for threads in [1usize, 2, 4, 8] {
        group.throughput(Throughput::Elements(threads as u64));
        for (name, one_key) in [("one_key", true), ("many_keys", false)] {
            group.bench_with_input(BenchmarkId::new(name, threads), &threads, |b, &threads| {
                b.iter_custom(|iters| timed_contended(threads, iters, &keys, one_key));
            });
        }
    }
    group.finish();
}

/// `threads` threads append `iters` messages each, to one key or spread over many keys; the
/// time runs from a common start to the last thread's finish.
fn timed_contended(threads: usize, iters: u64, keys: &[String], one_key: bool) -> Duration {
    let logs = Logs::new();
    let barrier = Barrier::new(threads + 1);
    let mut elapsed = Duration::ZERO;
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (logs, barrier) = (&logs, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    for i in 0..iters {
                        let key = if one_key {
                            "k"
                        } else {
                            &keys[(i as usize * threads + t) % MANY_KEYS]
                        };
                        logs.append(key, msg(i)).expect("room");
                    }
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        for handle in handles {
            handle.join().expect("no panic");
        }
        elapsed = start.elapsed();
    });
    elapsed
}

fn poll(c: &mut Criterion) {
    let mut group = c.benchmark_group("poll");
    for len in [100u64, 1_000_000] {
        let logs = Logs::new();
        for i in 0..len {
            logs.append("k", msg(i)).expect("room");
        }
        // From the tail: a client that is a few messages behind, as in a Maelstrom run.
        let tail = 8;
        group.throughput(Throughput::Elements(tail));
        group.bench_with_input(BenchmarkId::new("tail", len), &len, |b, &len| {
            b.iter(|| {
                let n = logs.poll("k", black_box(len - tail), 4096, |o, m| {
                    black_box((o, m));
                });
                assert_eq!(n as u64, tail);
            });
        });
        // From 0, capped at the node's default poll_max of 4096 pairs.
        let from_zero = len.min(4096);
        group.throughput(Throughput::Elements(from_zero));
        group.bench_with_input(BenchmarkId::new("from_0", len), &len, |b, _| {
            b.iter(|| {
                let n = logs.poll("k", black_box(0), 4096, |o, m| {
                    black_box((o, m));
                });
                assert_eq!(n as u64, from_zero);
            });
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    targets = uncontended, contended, poll
}
criterion_main!(benches);
