//! The cost of isolation, in one table: each part of `compartment` next to
//! the raw primitive or peer it replaces, measured in the same run, with the
//! ratio and the project's target.
//!
//! Run it with `cargo run --release -p compartment-benches --bin bench_report`;
//! with `--features process` it adds the process tier's rows, with
//! `--features wasm` the wasm tier's.
//! It takes well under a minute, prints `met` or `missed` for each target,
//! and exits non-zero only on an error — a missed target is a finding, not a
//! failure. `cargo bench -p compartment-benches` runs the full criterion
//! benchmarks; `BENCHMARKS.md` records one such run.

#![allow(
    clippy::disallowed_methods,
    reason = "a benchmark driver is the granting side and measures real time"
)]

mod common;

use std::time::{Duration, Instant};

use common::{Flavour, peers, percentiles};
use compartment::RestartMode;

/// One comparison: compartment's figure, the baseline's, and the target.
struct Row {
    comparison: String,
    ours: String,
    theirs: String,
    ratio: f64,
    target: String,
    met: bool,
}

fn micros(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn rate(messages: u64, d: Duration) -> String {
    format!("{:.1} M msg/s", messages as f64 / d.as_secs_f64() / 1e6)
}

/// The median of `runs` runs of `f`.
fn median(runs: usize, mut f: impl FnMut() -> Duration) -> Duration {
    let mut samples: Vec<Duration> = (0..runs).map(|_| f()).collect();
    percentiles(&mut samples).0
}

/// `runs` runs each of `ours` and `theirs`, alternated (and which goes
/// first alternated too) so that drifting noise falls on both alike.
fn alternated<T>(
    runs: usize,
    mut ours: impl FnMut() -> T,
    mut theirs: impl FnMut() -> T,
) -> (Vec<T>, Vec<T>) {
    let (mut a, mut b) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    for run in 0..runs {
        if run % 2 == 0 {
            a.push(ours());
            b.push(theirs());
        } else {
            b.push(theirs());
            a.push(ours());
        }
    }
    (a, b)
}

/// The medians of [`alternated`] runs of `ours` and `theirs`.
fn paired(
    runs: usize,
    ours: impl FnMut() -> Duration,
    theirs: impl FnMut() -> Duration,
) -> (Duration, Duration) {
    let (mut a, mut b) = alternated(runs, ours, theirs);
    (percentiles(&mut a).0, percentiles(&mut b).0)
}

/// Per-operation time over `iterations` calls of `f`.
fn per_op(iterations: u32, mut f: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..iterations {
        f();
    }
    start.elapsed() / iterations
}

fn nanos(d: Duration) -> String {
    format!("{:.1} ns", d.as_secs_f64() * 1e9)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    #[cfg(feature = "process")]
    compartment::process::init(&[
        &compartment::entry!(process_rows::ready_then_wait),
        &compartment::entry!(process_rows::ready_then_abort),
        &compartment::entry!(process_rows::stream),
        &compartment::entry!(process_rows::echo),
    ])?;
    // Every comparison panics thousands of times on purpose (restarts);
    // printing each would measure the terminal.
    std::panic::set_hook(Box::new(|_| {}));
    let started = Instant::now();
    let mut rows = Vec::new();

    // Files: a 4 KiB read three directories deep.
    let files = common::Files::new();
    let n = 5_000;
    let (ro_read, cap_read) = paired(
        7,
        || per_op(n, || drop(files.read_only.read(&files.relative).unwrap())),
        || per_op(n, || drop(files.cap_std.read(&files.relative).unwrap())),
    );
    let (full_read, std_read) = paired(
        7,
        || per_op(n, || drop(files.full.read(&files.relative).unwrap())),
        || per_op(n, || drop(std::fs::read(&files.host).unwrap())),
    );
    let ratio = ro_read.as_secs_f64() / cap_read.as_secs_f64();
    rows.push(Row {
        comparison: "read 4 KiB, read-only dir vs cap-std Dir".into(),
        ours: micros(ro_read),
        theirs: micros(cap_read),
        ratio,
        target: "≤ 1.05".into(),
        met: ratio <= 1.05,
    });
    rows.push(Row {
        comparison: "read 4 KiB, full dir vs std::fs::read".into(),
        ours: micros(full_read),
        theirs: micros(std_read),
        ratio: full_read.as_secs_f64() / std_read.as_secs_f64(),
        target: "(reported)".into(),
        met: true,
    });
    drop(files);

    // Channels.
    let messages = 200_000;
    for (producers, capacity) in [(1, 1), (1, 64), (1, 1024), (4, 1), (4, 64), (4, 1024)] {
        let (ours, raw) = paired(
            9,
            || common::throughput(Flavour::Compartment, capacity, producers, messages),
            || common::throughput(Flavour::Crossbeam, capacity, producers, messages),
        );
        let std = median(3, || {
            common::throughput(Flavour::Std, capacity, producers, messages)
        });
        let ratio = raw.as_secs_f64() / ours.as_secs_f64();
        rows.push(Row {
            comparison: format!(
                "channel {producers}→1 capacity {capacity} vs crossbeam (std: {})",
                rate(messages, std)
            ),
            ours: rate(messages, ours),
            theirs: rate(messages, raw),
            ratio,
            target: "≥ 0.95".into(),
            met: ratio >= 0.95,
        });
    }
    let rt = peers::runtime();
    let kameo_messages = 200_000;
    let (ours, kameo) = paired(
        3,
        || common::throughput(Flavour::Compartment, 1024, 1, kameo_messages),
        || peers::tell_throughput(&rt, kameo_messages),
    );
    let ratio = kameo.as_secs_f64() / ours.as_secs_f64();
    rows.push(Row {
        comparison: "channel 1→1 capacity 1024 vs kameo tell".into(),
        ours: rate(kameo_messages, ours),
        theirs: rate(kameo_messages, kameo),
        ratio,
        target: "≥ 3".into(),
        met: ratio >= 3.0,
    });
    let rounds = 20_000;
    let (ours, raw) = paired(
        5,
        || common::ping_pong(Flavour::Compartment, rounds),
        || common::ping_pong(Flavour::Crossbeam, rounds),
    );
    let (ours, raw) = (ours / rounds as u32, raw / rounds as u32);
    rows.push(Row {
        comparison: "ping-pong round trip vs crossbeam".into(),
        ours: micros(ours),
        theirs: micros(raw),
        ratio: ours.as_secs_f64() / raw.as_secs_f64(),
        target: "(reported)".into(),
        met: true,
    });

    // Restarts.
    let rounds = 1000;
    let (fresh, fresh_p99) = percentiles(&mut common::restart_latency(
        RestartMode::FreshThread,
        rounds,
    ));
    let (in_place, in_place_p99) =
        percentiles(&mut common::restart_latency(RestartMode::InPlace, rounds));
    let (spawn, _) = percentiles(&mut common::spawn_join(rounds));
    let (kameo, kameo_p99) = percentiles(&mut peers::restart_latency(&rt, rounds));
    let ratio = fresh.as_secs_f64() / spawn.as_secs_f64();
    rows.push(Row {
        comparison: format!(
            "fresh-thread restart p50 vs spawn+join (p99 {})",
            micros(fresh_p99)
        ),
        ours: micros(fresh),
        theirs: micros(spawn),
        ratio,
        target: "≤ 1.0".into(),
        met: ratio <= 1.0,
    });
    let ratio = in_place.as_secs_f64() / kameo.as_secs_f64();
    rows.push(Row {
        comparison: format!(
            "in-place restart p50 vs kameo (p99 {} vs {})",
            micros(in_place_p99),
            micros(kameo_p99)
        ),
        ours: micros(in_place),
        theirs: micros(kameo),
        ratio,
        target: "≤ 10 µs, < kameo".into(),
        met: in_place <= Duration::from_micros(10) && in_place < kameo,
    });

    // Starting 1,000, and memory per idle one.
    let n = 1000;
    let base = common::rss();
    let (threads_start, threads) = common::start_threads(n);
    let threads_rss = common::rss().saturating_sub(base);
    common::stop_threads(threads);
    let base = common::rss();
    let (components_start, system) = common::start_components(n);
    let components_rss = common::rss().saturating_sub(base);
    system.shutdown();
    let actors_start = peers::start_actors(&rt, n);
    let ratio = components_start.as_secs_f64() / threads_start.as_secs_f64();
    rows.push(Row {
        comparison: format!(
            "start 1,000 components vs threads (kameo actors: {})",
            micros(actors_start)
        ),
        ours: micros(components_start),
        theirs: micros(threads_start),
        ratio,
        target: "≤ 1.5".into(),
        met: ratio <= 1.5,
    });
    let ratio = components_rss as f64 / threads_rss.max(1) as f64;
    rows.push(Row {
        comparison: "resident memory per idle component vs parked thread".into(),
        ours: format!("{:.1} KiB", components_rss as f64 / n as f64 / 1024.0),
        theirs: format!("{:.1} KiB", threads_rss as f64 / n as f64 / 1024.0),
        ratio,
        target: "≤ 1.2".into(),
        met: ratio <= 1.2,
    });

    // Pools: start and stop per member, a pool of 10,000 next to one of
    // 1,000 (medians of five runs each, alternated), and a member added
    // and removed at run time, 100 times in each run (the p50 of all of
    // them); linear is 1.0.
    let (small, large, churn) = (1_000, 10_000, 100);
    let (large_runs, small_runs) = alternated(
        5,
        || common::pool_lifecycle(large, churn),
        || common::pool_lifecycle(small, churn),
    );
    let pool_rows = [
        "pool start per member",
        "pool member added and removed at run time, p50",
        "pool shutdown per member",
    ];
    for (row, name) in pool_rows.into_iter().enumerate() {
        let p50 = |runs: &[common::PoolRun], n: usize| {
            let mut samples: Vec<Duration> = runs
                .iter()
                .flat_map(|run| match row {
                    0 => vec![run.start / n as u32],
                    1 => run.add_and_remove.clone(),
                    _ => vec![run.shutdown / n as u32],
                })
                .collect();
            percentiles(&mut samples).0
        };
        let (small_each, large_each) = (p50(&small_runs, small), p50(&large_runs, large));
        let ratio = large_each.as_secs_f64() / small_each.as_secs_f64();
        rows.push(Row {
            comparison: format!("{name}, 10,000 members vs 1,000"),
            ours: micros(large_each),
            theirs: micros(small_each),
            ratio,
            target: "≤ 1.25".into(),
            met: ratio <= 1.25,
        });
    }

    // A restart its supervisor decides (after a backoff), beside 10,000
    // idle siblings and beside none: alternated, medians of three p50s.
    let p50_beside = |siblings: usize| {
        let mut samples = common::restarts_beside(RestartMode::InPlace, true, siblings, 300);
        percentiles(&mut samples).0
    };
    let (crowded, alone) = paired(3, || p50_beside(large), || p50_beside(0));
    let ratio = crowded.as_secs_f64() / alone.as_secs_f64();
    rows.push(Row {
        comparison: "restart by the supervisor p50, beside 10,000 siblings vs none".into(),
        ours: micros(crowded),
        theirs: micros(alone),
        ratio,
        target: "≤ 1.25".into(),
        met: ratio <= 1.25,
    });

    // Lockdown.
    let (apply, apply_p99) = percentiles(&mut common::lockdown_apply(200));
    rows.push(Row {
        comparison: format!("lockdown apply per start, p50 (p99 {})", micros(apply_p99)),
        ours: micros(apply),
        theirs: "-".into(),
        ratio: apply.as_secs_f64() / 60e-6,
        target: "≤ 60 µs".into(),
        met: apply <= Duration::from_micros(60),
    });

    // The accounting allocator.
    let rounds = 100_000;
    // Alternated on one thread, and which goes first alternated too (see
    // `common::alloc_churn`).
    let plan: Vec<bool> = (0..22).map(|run| matches!(run % 4, 0 | 3)).collect();
    let (mut accounting, mut system) = (Vec::new(), Vec::new());
    for (&through_accounting, took) in plan.iter().zip(common::alloc_churn(plan.clone(), rounds)) {
        if through_accounting {
            accounting.push(took);
        } else {
            system.push(took);
        }
    }
    let (accounting, system) = (percentiles(&mut accounting).0, percentiles(&mut system).0);
    let ratio = accounting.as_secs_f64() / system.as_secs_f64();
    rows.push(Row {
        comparison: "allocation-heavy loop, accounting vs system allocator".into(),
        ours: nanos(accounting / (rounds as u32 * 8)),
        theirs: nanos(system / (rounds as u32 * 8)),
        ratio,
        target: "≤ 1.15".into(),
        met: ratio <= 1.15,
    });

    #[cfg(feature = "process")]
    process_rows::measure(&mut rows);
    #[cfg(feature = "wasm")]
    wasm_rows::measure(&mut rows, kameo);

    let width = rows
        .iter()
        .map(|r| r.comparison.chars().count())
        .max()
        .unwrap_or(10);
    println!(
        "{:<width$}  {:>16}  {:>16}  {:>7}  {:<18}  result",
        "comparison", "compartment", "baseline", "ratio", "target"
    );
    for row in &rows {
        println!(
            "{:<width$}  {:>16}  {:>16}  {:>7.2}  {:<18}  {}",
            row.comparison,
            row.ours,
            row.theirs,
            row.ratio,
            row.target,
            if row.met { "met" } else { "missed" }
        );
    }
    let missed = rows.iter().filter(|r| !r.met).count();
    println!(
        "{} comparisons, {} targets missed, in {:.1} s",
        rows.len(),
        missed,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The process tier's rows: a confined start, a restart after a crash, and
/// channels bridged across the process boundary.
#[cfg(feature = "process")]
mod process_rows {
    use std::time::{Duration, Instant};

    use compartment::channel::{self, Receiver, Sender};
    use compartment::process::Portable;
    use compartment::{Child, Context, Grant, Restart, Supervisor, entry};

    use super::{Row, common, micros, percentiles, rate};

    type Result = std::result::Result<(), Box<dyn std::error::Error + Send + Sync>>;

    pub(super) fn ready_then_wait(ready: Sender<u8>, cx: &Context) -> Result {
        ready.send(1)?;
        while !cx.is_cancelled() {
            cx.sleep(Duration::from_secs(60))?;
        }
        Ok(())
    }

    pub(super) fn ready_then_abort(ready: Sender<u8>, _: &Context) -> Result {
        ready.send(1)?;
        std::process::abort()
    }

    #[derive(Grant, Portable)]
    pub(super) struct Stream {
        out: Sender<u64>,
        #[grant(data)]
        count: u64,
    }

    pub(super) fn stream(g: Stream, _: &Context) -> Result {
        for i in 0..g.count {
            g.out.send(i)?;
        }
        Ok(())
    }

    #[derive(Grant, Portable)]
    pub(super) struct Echo {
        inbox: Receiver<u64>,
        out: Sender<u64>,
    }

    pub(super) fn echo(g: Echo, cx: &Context) -> Result {
        while let Ok(message) = cx.recv(&g.inbox) {
            g.out.send(message)?;
        }
        Ok(())
    }

    /// How long `count` messages take to come from a child that streams
    /// them into a channel of capacity 1024, from its first.
    fn stream_through_a_child(count: u64) -> Duration {
        let (out, received) = channel::bounded(1024).unwrap();
        let system = Supervisor::new("bench")
            .child(
                Child::process(
                    "stream",
                    entry!(stream),
                    Stream {
                        out,
                        count: count + 1,
                    },
                )
                .restart(Restart::Transient),
            )
            .start()
            .unwrap();
        received.recv().unwrap();
        let began = Instant::now();
        for _ in 0..count {
            received.recv().unwrap();
        }
        let bridged = began.elapsed();
        system.shutdown();
        bridged
    }

    pub(super) fn measure(rows: &mut Vec<Row>) {
        // A confined start: from asking the tree for the child to its
        // first message, against spawning and waiting for `/bin/true`.
        let mut starts = Vec::new();
        for _ in 0..40 {
            let (ready_tx, ready) = channel::bounded(1).unwrap();
            let began = Instant::now();
            let system = Supervisor::new("bench")
                .child(Child::process("start", entry!(ready_then_wait), ready_tx))
                .start()
                .unwrap();
            ready.recv().unwrap();
            starts.push(began.elapsed());
            system.shutdown();
        }
        let mut commands: Vec<Duration> = (0..40)
            .map(|_| {
                let began = Instant::now();
                std::process::Command::new("/bin/true").status().unwrap();
                began.elapsed()
            })
            .collect();
        let (start, _) = percentiles(&mut starts);
        let (command, _) = percentiles(&mut commands);
        rows.push(Row {
            comparison: "process child: confined start p50 vs Command::new(/bin/true)".into(),
            ours: micros(start),
            theirs: micros(command),
            ratio: start.as_secs_f64() / command.as_secs_f64(),
            target: "p50 ≤ 1.0 ms".into(),
            met: start <= Duration::from_millis(1),
        });

        // A restart after a crash: abort, reaped, restarted, first message.
        let (ready_tx, ready) = channel::bounded(1).unwrap();
        let system = Supervisor::new("bench")
            .intensity(100_000, Duration::from_secs(1))
            .child(Child::process(
                "crasher",
                entry!(ready_then_abort),
                ready_tx,
            ))
            .start()
            .unwrap();
        ready.recv().unwrap();
        let mut restarts: Vec<Duration> = (0..60)
            .map(|_| {
                let began = Instant::now();
                ready.recv().unwrap();
                began.elapsed()
            })
            .collect();
        system.shutdown();
        let (restart, _) = percentiles(&mut restarts);
        rows.push(Row {
            comparison: "process child: restart after abort p50 vs confined start".into(),
            ours: micros(restart),
            theirs: micros(start),
            ratio: restart.as_secs_f64() / start.as_secs_f64(),
            target: "p50 ≤ 1.5 ms".into(),
            met: restart <= Duration::from_micros(1500),
        });

        // Bridged throughput: the child streams into a channel here, timed
        // from its first message (its start is the row above); medians of
        // five runs, alternated with crossbeam's.
        let count = 400_000u64;
        let (bridged, raw) = super::paired(
            5,
            || stream_through_a_child(count),
            || common::throughput(common::Flavour::Crossbeam, 1024, 1, count),
        );
        let ratio = raw.as_secs_f64() / bridged.as_secs_f64();
        rows.push(Row {
            comparison: "process child: bridged channel 1→1 cap 1024 vs crossbeam".into(),
            ours: rate(count, bridged),
            theirs: rate(count, raw),
            ratio,
            target: "≥ 0.8".into(),
            met: ratio >= 0.8,
        });

        // A round trip through a child that echoes.
        let (inbox_tx, inbox) = channel::bounded(1).unwrap();
        let (out, echoed) = channel::bounded(1).unwrap();
        let system = Supervisor::new("bench")
            .child(Child::process("echo", entry!(echo), Echo { inbox, out }))
            .start()
            .unwrap();
        let mut trips: Vec<Duration> = (0..2_000u64)
            .map(|i| {
                let began = Instant::now();
                inbox_tx.send(i).unwrap();
                echoed.recv().unwrap();
                began.elapsed()
            })
            .collect();
        system.shutdown();
        let (trip, _) = percentiles(&mut trips);
        let raw = common::ping_pong(common::Flavour::Crossbeam, 2_000) / 2_000;
        rows.push(Row {
            comparison: "process child: echo round trip p50 vs crossbeam ping-pong".into(),
            ours: micros(trip),
            theirs: micros(raw),
            ratio: trip.as_secs_f64() / raw.as_secs_f64(),
            target: "p50 ≤ 10 µs".into(),
            met: trip <= Duration::from_micros(10),
        });
    }
}

/// The wasm tier's rows: a restart after a trap, a host call through a
/// capability handle, and what CPU limits cost a running module.
#[cfg(feature = "wasm")]
mod wasm_rows {
    use std::io::Write;
    use std::time::{Duration, Instant};

    use compartment::caps::{Dir, ReadOnlyFile, SystemClock};
    use compartment::channel::{self, Receiver, Request, Sender};
    use compartment::wasm::WasmModule;
    use compartment::{Child, Grant, Supervisor};

    use super::{Row, micros, nanos, paired, per_op, percentiles};

    /// Says it is up, with the time, then traps on the first request it
    /// is served, sending the time just before on a channel nobody waits
    /// on (so that sending wakes no thread).
    const CRASHER: &str = r#"
    (module
      (import "compartment" "lookup" (func $lookup (param i32 i32 i32) (result i32)))
      (import "compartment" "send" (func $send (param i32 i32 i32) (result i32)))
      (import "compartment" "serve" (func $serve (param i32 i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "clock_time_get"
        (func $now (param i32 i64 i32) (result i32)))
      (memory (export "memory") 1)
      (data (i32.const 0) "ready") (data (i32.const 8) "commands") (data (i32.const 200) "trapped")
      (func (export "_start")
        (drop (call $now (i32.const 0) (i64.const 0) (i32.const 128)))
        (drop (call $lookup (i32.const 0) (i32.const 5) (i32.const 16)))
        (drop (call $lookup (i32.const 8) (i32.const 8) (i32.const 20)))
        (drop (call $lookup (i32.const 200) (i32.const 7) (i32.const 32)))
        (drop (call $send (i32.load (i32.const 16)) (i32.const 128) (i32.const 8)))
        (if (i32.eqz (call $serve (i32.load (i32.const 20)) (i32.const 64) (i32.const 64)
                                  (i32.const 24) (i32.const 28)))
          (then
            (drop (call $now (i32.const 0) (i64.const 0) (i32.const 136)))
            (drop (call $send (i32.load (i32.const 32)) (i32.const 136) (i32.const 8)))
            unreachable))))
    "#;

    #[derive(Grant)]
    struct Crasher {
        clock: SystemClock,
        ready: Sender<Vec<u8>>,
        trapped: Sender<Vec<u8>>,
        commands: Receiver<Request<Vec<u8>, Vec<u8>>>,
    }

    /// For each `go` (a little-endian count), reads the file's first 4 KiB
    /// that many times with `fd_pread`, then says `done`.
    const READER: &str = r#"
    (module
      (import "compartment" "lookup" (func $lookup (param i32 i32 i32) (result i32)))
      (import "compartment" "send" (func $send (param i32 i32 i32) (result i32)))
      (import "compartment" "recv" (func $recv (param i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_pread"
        (func $pread (param i32 i32 i32 i64 i32) (result i32)))
      (memory (export "memory") 1)
      (data (i32.const 0) "file") (data (i32.const 8) "go") (data (i32.const 12) "done")
      (data (i32.const 32) "\00\10\00\00\00\10\00\00")
      (func (export "_start") (local $n i32)
        (drop (call $lookup (i32.const 0) (i32.const 4) (i32.const 16)))
        (drop (call $lookup (i32.const 8) (i32.const 2) (i32.const 20)))
        (drop (call $lookup (i32.const 12) (i32.const 4) (i32.const 24)))
        (block $stop
          (loop $next
            (br_if $stop (call $recv (i32.load (i32.const 20)) (i32.const 64) (i32.const 4) (i32.const 68)))
            (local.set $n (i32.load (i32.const 64)))
            (block $done
              (loop $read
                (br_if $done (i32.eqz (local.get $n)))
                (drop (call $pread (i32.load (i32.const 16)) (i32.const 32) (i32.const 1)
                                   (i64.const 0) (i32.const 72)))
                (local.set $n (i32.sub (local.get $n) (i32.const 1)))
                (br $read)))
            (drop (call $send (i32.load (i32.const 24)) (i32.const 12) (i32.const 4)))
            (br $next)))))
    "#;

    #[derive(Grant)]
    struct Reader {
        file: ReadOnlyFile,
        go: Receiver<Vec<u8>>,
        done: Sender<Vec<u8>>,
    }

    /// `work(n)`: `n` calls of a small function, the kind of loop epoch
    /// checks cost most in; `_start` runs it for each `go`, as `READER`.
    const WORK: &str = r#"
    (module
      (import "compartment" "lookup" (func $lookup (param i32 i32 i32) (result i32)))
      (import "compartment" "send" (func $send (param i32 i32 i32) (result i32)))
      (import "compartment" "recv" (func $recv (param i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (data (i32.const 8) "go") (data (i32.const 12) "done")
      (func $step (param $x i32) (result i32)
        (i32.add (i32.mul (local.get $x) (i32.const 1664525)) (i32.const 1013904223)))
      (func $work (export "work") (param $n i32) (result i32) (local $x i32)
        (block $done
          (loop $next
            (br_if $done (i32.eqz (local.get $n)))
            (local.set $x (call $step (local.get $x)))
            (local.set $n (i32.sub (local.get $n) (i32.const 1)))
            (br $next)))
        (local.get $x))
      (func (export "_start")
        (drop (call $lookup (i32.const 8) (i32.const 2) (i32.const 20)))
        (drop (call $lookup (i32.const 12) (i32.const 4) (i32.const 24)))
        (block $stop
          (loop $next
            (br_if $stop (call $recv (i32.load (i32.const 20)) (i32.const 64) (i32.const 4) (i32.const 68)))
            (i32.store (i32.const 72) (call $work (i32.load (i32.const 64))))
            (drop (call $send (i32.load (i32.const 24)) (i32.const 12) (i32.const 4)))
            (br $next)))))
    "#;

    #[derive(Grant)]
    struct Worker {
        go: Receiver<Vec<u8>>,
        done: Sender<Vec<u8>>,
    }

    fn module(text: &str) -> WasmModule {
        WasmModule::new(text).unwrap()
    }

    /// How long `n` rounds of the module's loop take, from `go` to `done`.
    fn timed(go: &Sender<Vec<u8>>, done: &Receiver<Vec<u8>>, n: u32) -> Duration {
        let began = Instant::now();
        go.send(n.to_le_bytes().to_vec()).unwrap();
        done.recv().unwrap();
        began.elapsed()
    }

    pub(super) fn measure(rows: &mut Vec<Row>, kameo_restart: Duration) {
        // A restart after a trap: from the module's last time before its
        // trap to its next instance's first, as kameo's is from a panic to
        // `on_start`.
        let (ready_tx, ready) = channel::bounded(1).unwrap();
        let (trapped_tx, trapped) = channel::bounded(1).unwrap();
        let (commands, commands_rx) = channel::bounded(1).unwrap();
        let system = Supervisor::new("bench")
            .intensity(u32::MAX, Duration::from_secs(3600))
            .child(Child::wasm(
                "crasher",
                module(CRASHER),
                Crasher {
                    clock: SystemClock::new(compartment::ambient_authority()),
                    ready: ready_tx,
                    trapped: trapped_tx,
                    commands: commands_rx,
                },
            ))
            .start()
            .unwrap();
        let nanos_in = |message: Vec<u8>| u64::from_le_bytes(message.try_into().unwrap());
        ready.recv().unwrap();
        let mut restarts: Vec<Duration> = (0..1000)
            .map(|_| {
                let (request, _answer) = Request::new(Vec::new());
                commands.send(request).unwrap();
                let first = nanos_in(ready.recv().unwrap());
                let last = nanos_in(trapped.try_recv().unwrap());
                Duration::from_nanos(first.saturating_sub(last))
            })
            .collect();
        system.shutdown();
        let (restart, restart_p99) = percentiles(&mut restarts);
        let ratio = restart.as_secs_f64() / kameo_restart.as_secs_f64();
        rows.push(Row {
            comparison: format!(
                "wasm child: restart after a trap p50 vs kameo (p99 {})",
                micros(restart_p99)
            ),
            ours: micros(restart),
            theirs: micros(kameo_restart),
            ratio,
            target: "< kameo".into(),
            met: restart < kameo_restart,
        });

        // A host call through a capability handle: a 4 KiB `fd_pread` on a
        // granted file, against the same read on the thread tier.
        let scratch = cap_tempfile::tempdir(compartment::ambient_authority()).unwrap();
        let dir = Dir::from_cap_std(scratch.try_clone().unwrap());
        dir.create("page").unwrap().write_all(&[7u8; 4096]).unwrap();
        let file = dir.into_read_only().open("page").unwrap();
        let (go, go_rx) = channel::bounded(1).unwrap();
        let (done_tx, done) = channel::bounded(1).unwrap();
        let system = Supervisor::new("bench")
            .child(Child::wasm(
                "reader",
                module(READER),
                Reader {
                    file: file.reissue().unwrap(),
                    go: go_rx,
                    done: done_tx,
                },
            ))
            .start()
            .unwrap();
        let n = 20_000;
        let mut buffer = vec![0u8; 4096];
        let (wasm, thread) = paired(
            7,
            || timed(&go, &done, n) / n,
            || {
                per_op(n, || {
                    file.read_at(&mut buffer, 0).unwrap();
                })
            },
        );
        system.shutdown();
        let ratio = wasm.as_secs_f64() / thread.as_secs_f64();
        rows.push(Row {
            comparison: "wasm child: 4 KiB fd_pread on a granted file vs the thread tier's read_at"
                .into(),
            ours: nanos(wasm),
            theirs: nanos(thread),
            ratio,
            target: "≤ 1.1".into(),
            met: ratio <= 1.1,
        });

        // What a CPU limit costs a running module: the crate's engine
        // interrupts modules by epoch; the baseline is the same module on
        // an engine without it, run directly.
        let (go, go_rx) = channel::bounded(1).unwrap();
        let (done_tx, done) = channel::bounded(1).unwrap();
        let system = Supervisor::new("bench")
            .child(Child::wasm(
                "worker",
                module(WORK),
                Worker {
                    go: go_rx,
                    done: done_tx,
                },
            ))
            .start()
            .unwrap();
        // The same pooling allocator as the crate's engine: only epoch
        // interruption differs.
        let mut config = wasmtime::Config::new();
        config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(
            wasmtime::PoolingAllocationConfig::new(),
        ));
        let plain = wasmtime::Engine::new(&config).unwrap();
        let mut linker = wasmtime::Linker::<()>::new(&plain);
        linker
            .func_wrap("compartment", "lookup", |_: i32, _: i32, _: i32| 0)
            .unwrap()
            .func_wrap("compartment", "send", |_: i32, _: i32, _: i32| 0)
            .unwrap()
            .func_wrap("compartment", "recv", |_: i32, _: i32, _: i32, _: i32| 0)
            .unwrap();
        let compiled = wasmtime::Module::new(&plain, WORK).unwrap();
        let mut store = wasmtime::Store::new(&plain, ());
        let instance = linker.instantiate(&mut store, &compiled).unwrap();
        let work = instance
            .get_typed_func::<i32, i32>(&mut store, "work")
            .unwrap();
        let calls = 20_000_000;
        // The best of 11 runs each, alternated: the loop's own cost, which
        // a loaded machine only ever adds to.
        let (mut limited, mut unlimited) = (Duration::MAX, Duration::MAX);
        for _ in 0..11 {
            limited = limited.min(timed(&go, &done, calls as u32));
            let began = Instant::now();
            std::hint::black_box(work.call(&mut store, calls).unwrap());
            unlimited = unlimited.min(began.elapsed());
        }
        system.shutdown();
        let ratio = limited.as_secs_f64() / unlimited.as_secs_f64();
        rows.push(Row {
            comparison:
                "wasm child: call-heavy loop, per call, epoch interruption vs none (best of 11)"
                    .into(),
            ours: format!("{:.2} ns", limited.as_secs_f64() * 1e9 / f64::from(calls)),
            theirs: format!("{:.2} ns", unlimited.as_secs_f64() * 1e9 / f64::from(calls)),
            ratio,
            target: "≤ 1.2".into(),
            met: ratio <= 1.2,
        });
    }
}
