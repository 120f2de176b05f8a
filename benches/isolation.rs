//! The cost of isolation, measured with criterion: each part of
//! `compartment` next to the raw primitive or peer it replaces.
//!
//! Run with `cargo bench -p compartment-benches`; `BENCHMARKS.md` records a
//! run and `bench_report.rs` prints the ratios against the targets.

#![allow(
    clippy::disallowed_methods,
    reason = "benchmarks are the granting side and measure real time"
)]

mod common;

use std::time::Duration;

use common::{Flavour, peers};
use compartment::RestartMode;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

fn files(c: &mut Criterion) {
    let files = common::Files::new();
    let mut group = c.benchmark_group("read 4 KiB, 3 dirs deep");
    group.bench_function("std::fs::read", |b| {
        b.iter(|| std::fs::read(&files.host).unwrap())
    });
    group.bench_function("cap-std Dir", |b| {
        b.iter(|| files.cap_std.read(&files.relative).unwrap())
    });
    group.bench_function("compartment Dir", |b| {
        b.iter(|| files.full.read(&files.relative).unwrap())
    });
    group.bench_function("compartment ReadOnlyDir", |b| {
        b.iter(|| files.read_only.read(&files.relative).unwrap())
    });
    group.finish();
    let mut group = c.benchmark_group("open 4 KiB file, 3 dirs deep");
    group.bench_function("std::fs::File::open", |b| {
        b.iter(|| std::fs::File::open(&files.host).unwrap())
    });
    group.bench_function("cap-std Dir", |b| {
        b.iter(|| files.cap_std.open(&files.relative).unwrap())
    });
    group.bench_function("compartment Dir", |b| {
        b.iter(|| files.full.open(&files.relative).unwrap())
    });
    group.bench_function("compartment ReadOnlyDir", |b| {
        b.iter(|| files.read_only.open(&files.relative).unwrap())
    });
    group.finish();
}

fn channels(c: &mut Criterion) {
    let messages = 100_000u64;
    for producers in [1usize, 4] {
        let mut group = c.benchmark_group(format!("channel throughput {producers}→1"));
        group.throughput(Throughput::Elements(messages));
        group.sample_size(10);
        for capacity in [1usize, 64, 1024] {
            for (name, flavour) in [
                ("compartment", Flavour::Compartment),
                ("crossbeam", Flavour::Crossbeam),
                ("std sync_channel", Flavour::Std),
            ] {
                group.bench_with_input(
                    BenchmarkId::new(name, capacity),
                    &capacity,
                    |b, &capacity| {
                        b.iter_custom(|iters| {
                            (0..iters)
                                .map(|_| common::throughput(flavour, capacity, producers, messages))
                                .sum()
                        })
                    },
                );
            }
        }
        group.finish();
    }
    let rt = peers::runtime();
    let mut group = c.benchmark_group("channel throughput 1→1");
    group.throughput(Throughput::Elements(messages));
    group.sample_size(10);
    group.bench_function("kameo tell", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| peers::tell_throughput(&rt, messages))
                .sum()
        })
    });
    group.finish();
    let mut group = c.benchmark_group("ping-pong round trip");
    for (name, flavour) in [
        ("compartment", Flavour::Compartment),
        ("crossbeam", Flavour::Crossbeam),
        ("std sync_channel", Flavour::Std),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| common::ping_pong(flavour, iters))
        });
    }
    group.finish();
}

fn restarts(c: &mut Criterion) {
    let mut group = c.benchmark_group("restart: panic to the next instance's first line");
    group.bench_function("compartment fresh thread", |b| {
        b.iter_custom(|iters| {
            common::restart_latency(RestartMode::FreshThread, iters as usize)
                .into_iter()
                .sum()
        })
    });
    group.bench_function("compartment in place", |b| {
        b.iter_custom(|iters| {
            common::restart_latency(RestartMode::InPlace, iters as usize)
                .into_iter()
                .sum()
        })
    });
    group.bench_function("bare spawn + join", |b| {
        b.iter_custom(|iters| common::spawn_join(iters as usize).into_iter().sum())
    });
    let rt = peers::runtime();
    group.bench_function("kameo supervised restart", |b| {
        b.iter_custom(|iters| {
            peers::restart_latency(&rt, iters as usize)
                .into_iter()
                .sum()
        })
    });
    group.finish();
}

fn starting(c: &mut Criterion) {
    let mut group = c.benchmark_group("start 1,000");
    group.sample_size(10);
    group.bench_function("compartment components", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let (elapsed, system) = common::start_components(1000);
                    system.shutdown();
                    elapsed
                })
                .sum()
        })
    });
    group.bench_function("bare threads", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let (elapsed, threads) = common::start_threads(1000);
                    common::stop_threads(threads);
                    elapsed
                })
                .sum()
        })
    });
    let rt = peers::runtime();
    group.bench_function("kameo actors", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| peers::start_actors(&rt, 1000)).sum())
    });
    group.finish();
}

fn lockdown(c: &mut Criterion) {
    let mut group = c.benchmark_group("lockdown");
    group.bench_function("apply policy on a fresh thread", |b| {
        b.iter_custom(|iters| common::lockdown_apply(iters as usize).into_iter().sum())
    });
    group.finish();
}

fn allocator(c: &mut Criterion) {
    let rounds = 10_000;
    let mut group = c.benchmark_group("allocation-heavy loop (8 sizes)");
    group.throughput(Throughput::Elements(rounds as u64 * 8));
    group.sample_size(20);
    for (name, accounting) in [("system allocator", false), ("accounting allocator", true)] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                common::alloc_churn(vec![accounting; iters as usize], rounds)
                    .into_iter()
                    .sum::<Duration>()
            })
        });
    }
    group.finish();
}

fn quiet_panics(c: &mut Criterion) {
    // The restart benchmarks panic on purpose; printing each would measure
    // the terminal.
    std::panic::set_hook(Box::new(|_| {}));
    let _ = c;
}

criterion_group!(
    benches,
    quiet_panics,
    files,
    channels,
    restarts,
    starting,
    lockdown,
    allocator
);
criterion_main!(benches);
