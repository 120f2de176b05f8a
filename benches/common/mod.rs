//! The measurements behind `benches/isolation.rs` (criterion) and
//! `bench_report.rs` (the quick table): each compartment operation
//! next to the raw primitive or peer it is compared with, measured the same
//! way in the same run.

#![allow(
    clippy::disallowed_methods,
    reason = "benchmarks are the granting side and measure real time and real threads"
)]
#![allow(dead_code, reason = "each binary uses a different part")]

use std::path::PathBuf;
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use compartment::caps::{Dir, ReadOnlyDir};
use compartment::channel::{self, Receiver, Sender};
use compartment::{Child, Context, Grant, RestartMode, Supervisor, ambient_authority};

/// The median and 99th percentile of `samples`.
pub(crate) fn percentiles(samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99))
}

// ----- files ------------------------------------------------------------------

/// A 4 KiB file three directories deep, reachable every way compared.
pub(crate) struct Files {
    _tmp: PathBuf,
    pub(crate) host: PathBuf,
    pub(crate) relative: PathBuf,
    pub(crate) cap_std: cap_std::fs::Dir,
    pub(crate) full: Dir,
    pub(crate) read_only: ReadOnlyDir,
}

impl Files {
    pub(crate) fn new() -> Self {
        let tmp = std::env::temp_dir().join(format!("compartment-bench-{}", std::process::id()));
        let relative = PathBuf::from("a/b/c/file");
        std::fs::create_dir_all(tmp.join("a/b/c")).unwrap();
        std::fs::write(tmp.join(&relative), vec![7u8; 4096]).unwrap();
        let cap_std = cap_std::fs::Dir::open_ambient_dir(&tmp, ambient_authority()).unwrap();
        let full = Dir::open_ambient_dir(&tmp, ambient_authority()).unwrap();
        let read_only = full.read_only().unwrap();
        Self {
            host: tmp.join(&relative),
            _tmp: tmp,
            relative,
            cap_std,
            full,
            read_only,
        }
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self._tmp);
    }
}

// ----- channels -----------------------------------------------------------------

/// The three channel flavours compared, behind one shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flavour {
    Compartment,
    Crossbeam,
    Std,
}

/// The consumer of the compartment flavour: a supervised component that
/// receives as components do, through its context, on an endpoint its grant
/// made revocable (by its instance and by its tree).
#[derive(Grant)]
struct Consumer {
    inbox: Receiver<u64>,
    #[grant(data)]
    total: u64,
    ready: Sender<()>,
    done: Sender<(u64, Instant)>,
}

fn consume(g: Consumer, cx: &Context) -> Result<(), String> {
    g.ready.send(()).map_err(|e| e.to_string())?;
    let mut sum = 0u64;
    for _ in 0..g.total {
        sum = sum.wrapping_add(cx.recv_untracked(&g.inbox).map_err(|e| e.to_string())?);
    }
    let last = Instant::now();
    g.done.send((sum, last)).map_err(|e| e.to_string())
}

/// Moves `messages` through a channel held as supervised components hold
/// it: producers send on revocable endpoints (two switches, as a grant in
/// a tree carries), and the consumer is a supervised component receiving
/// through its context; returns the time from the first send to the last
/// receive.
fn component_throughput(capacity: usize, producers: usize, per: u64, total: u64) -> Duration {
    let (tx, inbox) = channel::bounded::<u64>(capacity).unwrap();
    let (tx, _instance) = tx.revocable();
    let (tx, _tree) = tx.revocable();
    let (ready, started) = channel::bounded(1).unwrap();
    let (done, finished) = channel::bounded(1).unwrap();
    let system = Supervisor::new("throughput")
        .child(
            Child::new(
                "consumer",
                consume,
                Consumer {
                    inbox,
                    total,
                    ready,
                    done,
                },
            )
            .restart(compartment::Restart::Temporary),
        )
        .start()
        .unwrap();
    started.recv().unwrap();
    let senders: Vec<_> = (0..producers).map(|_| tx.clone()).collect();
    drop(tx);
    let start = Instant::now();
    let handles: Vec<_> = senders
        .into_iter()
        .map(|tx| thread::spawn(move || (0..per).for_each(|n| tx.send(n).unwrap())))
        .collect();
    let (sum, last) = finished.recv().unwrap();
    handles.into_iter().for_each(|h| h.join().unwrap());
    std::hint::black_box(sum);
    system.shutdown();
    last - start
}

/// Moves `messages` from `producers` threads through a channel of
/// `capacity` to one consumer; returns the time taken. The compartment
/// flavour is measured as components hold the channel.
pub(crate) fn throughput(
    flavour: Flavour,
    capacity: usize,
    producers: usize,
    messages: u64,
) -> Duration {
    let per = messages / producers as u64;
    let total = per * producers as u64;
    match flavour {
        Flavour::Compartment => component_throughput(capacity, producers, per, total),
        Flavour::Crossbeam => {
            let (tx, rx) = crossbeam_channel::bounded::<u64>(capacity);
            run_throughput(
                producers,
                per,
                total,
                move || {
                    let tx = tx.clone();
                    move |n| tx.send(n).unwrap()
                },
                move || rx.recv().unwrap(),
            )
        }
        Flavour::Std => {
            let (tx, rx) = std::sync::mpsc::sync_channel::<u64>(capacity);
            run_throughput(
                producers,
                per,
                total,
                move || {
                    let tx = tx.clone();
                    move |n| tx.send(n).unwrap()
                },
                move || rx.recv().unwrap(),
            )
        }
    }
}

/// The raw flavours' run, shaped as the component's: the consumer is a
/// thread of its own, already waiting when the first message is sent, and
/// the time runs from the first send to its last receive. A consumer that
/// starts behind the producers finds a full queue and drains it in bursts,
/// while one that waits takes each message as it comes; the two modes
/// differ by up to two times on this machine, so both sides start alike.
fn run_throughput<S, MakeSend, Recv>(
    producers: usize,
    per: u64,
    total: u64,
    make_send: MakeSend,
    mut recv: Recv,
) -> Duration
where
    MakeSend: Fn() -> S,
    S: FnMut(u64) + Send + 'static,
    Recv: FnMut() -> u64 + Send + 'static,
{
    let (ready, started) = crossbeam_channel::bounded(0);
    let consumer = thread::spawn(move || {
        ready.send(()).unwrap();
        let mut sum = 0u64;
        for _ in 0..total {
            sum = sum.wrapping_add(recv());
        }
        (sum, Instant::now())
    });
    started.recv().unwrap();
    let senders: Vec<S> = (0..producers).map(|_| make_send()).collect();
    drop(make_send);
    let start = Instant::now();
    let handles: Vec<_> = senders
        .into_iter()
        .map(|mut send| thread::spawn(move || (0..per).for_each(&mut send)))
        .collect();
    let (sum, last) = consumer.join().unwrap();
    handles.into_iter().for_each(|h| h.join().unwrap());
    std::hint::black_box(sum);
    last - start
}

/// `rounds` request/response round trips between two threads.
pub(crate) fn ping_pong(flavour: Flavour, rounds: u64) -> Duration {
    macro_rules! run {
        ($make:expr) => {{
            let (to_tx, to_rx) = $make;
            let (back_tx, back_rx) = $make;
            let echo = thread::spawn(move || {
                while let Ok(n) = to_rx.recv() {
                    if back_tx.send(n).is_err() {
                        break;
                    }
                }
            });
            let start = Instant::now();
            for n in 0..rounds {
                to_tx.send(n).unwrap();
                back_rx.recv().unwrap();
            }
            let elapsed = start.elapsed();
            drop(to_tx);
            echo.join().unwrap();
            elapsed
        }};
    }
    match flavour {
        Flavour::Compartment => run!(channel::bounded::<u64>(1).unwrap()),
        Flavour::Crossbeam => run!(crossbeam_channel::bounded::<u64>(1)),
        Flavour::Std => run!(std::sync::mpsc::sync_channel::<u64>(1)),
    }
}

// ----- restarts -------------------------------------------------------------------

/// When the current restart-latency component panicked.
static PANICKED_AT: Mutex<Option<Instant>> = Mutex::new(None);

#[derive(Grant)]
struct Crasher {
    commands: Receiver<()>,
    firsts: Sender<Instant>,
}

fn crasher(g: Crasher, cx: &Context) -> Result<(), String> {
    let _ = g.firsts.try_send(Instant::now());
    if cx.recv_untracked(&g.commands).is_ok() {
        *PANICKED_AT.lock().unwrap() = Some(Instant::now());
        panic!("told to crash");
    }
    Ok(())
}

/// From a panic in a component to its next instance running its first
/// line, `rounds` times.
pub(crate) fn restart_latency(mode: RestartMode, rounds: usize) -> Vec<Duration> {
    restarts_beside(mode, false, 0, rounds)
}

/// [`restart_latency`] of a child with `siblings` idle children beside it
/// under the same supervisor; with `by_supervisor`, the child backs off
/// (for a nanosecond) between restarts, so that its supervisor's thread
/// decides and starts each restart instead of the failing thread.
pub(crate) fn restarts_beside(
    mode: RestartMode,
    by_supervisor: bool,
    siblings: usize,
    rounds: usize,
) -> Vec<Duration> {
    let (commands, commands_rx) = channel::bounded(1).unwrap();
    let (firsts_tx, firsts) = channel::bounded(4).unwrap();
    let mut crashing = Child::new(
        "crasher",
        crasher,
        Crasher {
            commands: commands_rx,
            firsts: firsts_tx,
        },
    )
    .restart_mode(mode);
    if by_supervisor {
        let nanosecond = Duration::from_nanos(1);
        crashing = crashing.backoff(compartment::Backoff::exponential(nanosecond, nanosecond));
    }
    let mut supervisor = Supervisor::new("bench")
        .intensity(u32::MAX, Duration::from_secs(3600))
        .forward_panics(false)
        .child(crashing);
    for n in 0..siblings {
        supervisor = supervisor.child(Child::new(format!("idle-{n}"), idle, ()));
    }
    let system = supervisor.start().unwrap();
    firsts.recv().unwrap();
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        commands.send(()).unwrap();
        let first = firsts.recv().unwrap();
        let panicked = PANICKED_AT.lock().unwrap().take().unwrap();
        samples.push(first.saturating_duration_since(panicked));
    }
    system.shutdown();
    samples
}

/// A bare `thread::spawn` + `join` of an empty thread, `rounds` times.
pub(crate) fn spawn_join(rounds: usize) -> Vec<Duration> {
    (0..rounds)
        .map(|_| {
            let start = Instant::now();
            thread::spawn(|| ()).join().unwrap();
            start.elapsed()
        })
        .collect()
}

// ----- starting and idling --------------------------------------------------------

fn idle(_: (), cx: &Context) -> Result<(), compartment::Cancelled> {
    cx.sleep(Duration::from_secs(3600))
}

/// Starts a tree of `n` idle components; returns the time to start and the
/// running system.
pub(crate) fn start_components(n: usize) -> (Duration, compartment::System) {
    let start = Instant::now();
    let system = Supervisor::pool("pool", Child::new("idle", idle, ()), n)
        .start()
        .unwrap();
    (start.elapsed(), system)
}

/// What [`pool_lifecycle`] timed.
pub(crate) struct PoolRun {
    pub(crate) start: Duration,
    /// Each member added at run time and then removed, one at a time.
    pub(crate) add_and_remove: Vec<Duration>,
    pub(crate) shutdown: Duration,
}

/// Starts a pool of `n` idle components, adds a member at run time and
/// removes it again `churn` times, and shuts the pool down.
pub(crate) fn pool_lifecycle(n: usize, churn: usize) -> PoolRun {
    let (start, system) = start_components(n);
    let add_and_remove = (0..churn)
        .map(|_| {
            let began = Instant::now();
            let member = system.add_pool_member("pool").unwrap();
            system.remove_child(member).unwrap();
            began.elapsed()
        })
        .collect();
    let stopping = Instant::now();
    system.shutdown();
    PoolRun {
        start,
        add_and_remove,
        shutdown: stopping.elapsed(),
    }
}

/// A parked thread and the flag that lets it end.
pub(crate) type Parked = (
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread::JoinHandle<()>,
);

/// Starts `n` threads that park until told to end.
pub(crate) fn start_threads(n: usize) -> (Duration, Vec<Parked>) {
    let (ready_tx, ready) = crossbeam_channel::bounded(n);
    let start = Instant::now();
    let threads: Vec<Parked> = (0..n)
        .map(|_| {
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let flag = std::sync::Arc::clone(&stop);
            let ready = ready_tx.clone();
            let handle = thread::spawn(move || {
                let _ = ready.send(());
                while !flag.load(std::sync::atomic::Ordering::Acquire) {
                    thread::park();
                }
            });
            (stop, handle)
        })
        .collect();
    for _ in 0..n {
        ready.recv().unwrap();
    }
    (start.elapsed(), threads)
}

pub(crate) fn stop_threads(threads: Vec<Parked>) {
    for (stop, handle) in threads {
        stop.store(true, std::sync::atomic::Ordering::Release);
        handle.thread().unpark();
        handle.join().unwrap();
    }
}

/// Resident memory of this process, in bytes.
pub(crate) fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

// ----- lockdown ---------------------------------------------------------------------

/// Applying a compiled lockdown policy on fresh threads, `rounds` times;
/// each sample is the apply alone.
pub(crate) fn lockdown_apply(rounds: usize) -> Vec<Duration> {
    use compartment::lockdown::{Lockdown, Policy};
    let files = Files::new();
    let grant = (
        files.full.try_clone().unwrap(),
        files.read_only.try_clone().unwrap(),
    );
    let policy =
        std::sync::Arc::new(Policy::compile(Lockdown::require(), &grant.inventory()).unwrap());
    let grant = std::sync::Arc::new(grant);
    // Started as a supervisor starts a locked-down instance: from the
    // policy's carrier, so the thread inherits the seccomp program.
    (0..rounds)
        .map(|_| {
            let (applied, took) = crossbeam_channel::bounded(1);
            let on_thread = std::sync::Arc::clone(&policy);
            let grant = std::sync::Arc::clone(&grant);
            policy
                .spawn("apply", move || {
                    let inventory = grant.inventory();
                    let start = Instant::now();
                    on_thread.apply(&inventory).unwrap();
                    let _ = applied.send(start.elapsed());
                })
                .unwrap()
                .join()
                .unwrap();
            took.recv().unwrap()
        })
        .collect()
}

// ----- the accounting allocator -----------------------------------------------------

#[derive(Grant)]
struct Churn {
    /// Which allocator each run goes through, in order: `true` for the
    /// accounting one.
    #[grant(data)]
    plan: Vec<bool>,
    rounds: usize,
    done: Sender<Vec<Duration>>,
}

fn churn(g: Churn, _: &Context) -> Result<(), String> {
    let sizes = [16usize, 32, 64, 128, 256, 512, 1024, 4096];
    let accounting = compartment::alloc::Accounting::new(std::alloc::System);
    let times = g
        .plan
        .iter()
        .map(|&through_accounting| {
            let start = Instant::now();
            let touched = if through_accounting {
                compartment::alloc::churn(&accounting, &sizes, g.rounds)
            } else {
                compartment::alloc::churn(&std::alloc::System, &sizes, g.rounds)
            };
            std::hint::black_box(touched);
            start.elapsed()
        })
        .collect();
    g.done.send(times).map_err(|e| e.to_string())
}

/// Allocation-heavy loops inside one component, through the accounting
/// allocator or the system allocator as `plan` says, run after run on the
/// component's one thread; the time of each run.
///
/// One thread runs both sides because a thread's place in the system
/// allocator differs from one thread to the next (which arena it draws
/// from, how warm its cache is): measured on two threads, the same loop
/// through the same allocator ran at 13 ns per allocation on one and
/// 23 ns on another.
///
/// The accounting allocator here is a local one, not the global allocator,
/// so no memory quota can be set (a quota needs the global one): this
/// measures its header and thread-local check, not a charge to an
/// instance's slot.
pub(crate) fn alloc_churn(plan: Vec<bool>, rounds: usize) -> Vec<Duration> {
    let (done, result) = channel::bounded(1).unwrap();
    let child = Child::new("churn", churn, Churn { plan, rounds, done })
        .restart(compartment::Restart::Temporary);
    let system = Supervisor::new("alloc").child(child).start().unwrap();
    let times = result.recv().unwrap();
    system.shutdown();
    times
}

// ----- kameo, for comparison ----------------------------------------------------------

pub(crate) mod peers {
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    use kameo::actor::{Actor, ActorRef, Spawn, WeakActorRef};
    use kameo::error::Infallible;
    use kameo::message::{Context, Message};
    use kameo::supervision::RestartPolicy;

    pub(crate) fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    }

    pub(crate) struct Counter {
        seen: u64,
    }

    impl Actor for Counter {
        type Args = ();
        type Error = Infallible;
        async fn on_start(_: (), _: ActorRef<Self>) -> Result<Self, Infallible> {
            Ok(Counter { seen: 0 })
        }
    }

    pub(crate) struct Add(pub u64);
    pub(crate) struct Total;

    impl Message<Add> for Counter {
        type Reply = ();
        async fn handle(&mut self, msg: Add, _: &mut Context<Self, ()>) {
            self.seen = self.seen.wrapping_add(msg.0);
        }
    }

    impl Message<Total> for Counter {
        type Reply = u64;
        async fn handle(&mut self, _: Total, _: &mut Context<Self, u64>) -> u64 {
            self.seen
        }
    }

    /// `messages` `tell`s to one actor, and the wait for it to have handled
    /// them all.
    pub(crate) fn tell_throughput(rt: &tokio::runtime::Runtime, messages: u64) -> Duration {
        rt.block_on(async {
            let counter = Counter::spawn(());
            counter.wait_for_startup().await;
            let start = Instant::now();
            for n in 0..messages {
                counter.tell(Add(n)).await.unwrap();
            }
            let _ = counter.ask(Total).await.unwrap();
            let elapsed = start.elapsed();
            let _ = counter.stop_gracefully().await;
            elapsed
        })
    }

    /// Starting `n` actors, until each has run `on_start`.
    pub(crate) fn start_actors(rt: &tokio::runtime::Runtime, n: usize) -> Duration {
        rt.block_on(async {
            let start = Instant::now();
            let actors: Vec<_> = (0..n).map(|_| Counter::spawn(())).collect();
            for actor in &actors {
                actor.wait_for_startup().await;
            }
            let elapsed = start.elapsed();
            for actor in actors {
                let _ = actor.stop_gracefully().await;
            }
            elapsed
        })
    }

    static PANICKED_AT: Mutex<Option<Instant>> = Mutex::new(None);
    static STARTED: Mutex<Option<crossbeam_channel::Sender<Instant>>> = Mutex::new(None);

    #[derive(Clone)]
    pub(crate) struct Fragile;
    pub(crate) struct Crash;

    impl Actor for Fragile {
        type Args = Fragile;
        type Error = Infallible;
        async fn on_start(state: Fragile, _: ActorRef<Self>) -> Result<Self, Infallible> {
            if let Some(started) = &*STARTED.lock().unwrap() {
                let _ = started.try_send(Instant::now());
            }
            Ok(state)
        }
    }

    impl Message<Crash> for Fragile {
        type Reply = ();
        async fn handle(&mut self, _: Crash, _: &mut Context<Self, ()>) {
            *PANICKED_AT.lock().unwrap() = Some(Instant::now());
            panic!("told to crash");
        }
    }

    pub(crate) struct Parent;

    impl Actor for Parent {
        type Args = ();
        type Error = Infallible;
        async fn on_start(_: (), _: ActorRef<Self>) -> Result<Self, Infallible> {
            Ok(Parent)
        }
        async fn on_link_died(
            &mut self,
            _: WeakActorRef<Self>,
            _: kameo::actor::ActorId,
            _: kameo::error::ActorStopReason,
        ) -> Result<std::ops::ControlFlow<kameo::error::ActorStopReason>, Infallible> {
            Ok(std::ops::ControlFlow::Continue(()))
        }
    }

    /// From a panic in a supervised actor to its restarted `on_start`.
    pub(crate) fn restart_latency(rt: &tokio::runtime::Runtime, rounds: usize) -> Vec<Duration> {
        let (started_tx, started) = crossbeam_channel::bounded(4);
        *STARTED.lock().unwrap() = Some(started_tx);
        let samples = rt.block_on(async {
            let parent = Parent::spawn(());
            let child = Fragile::supervise(&parent, Fragile)
                .restart_policy(RestartPolicy::Permanent)
                .restart_limit(u32::MAX, Duration::from_secs(3600))
                .spawn()
                .await;
            child.wait_for_startup().await;
            let _ = started.recv();
            let mut samples = Vec::with_capacity(rounds);
            for _ in 0..rounds {
                let _ = child.tell(Crash).await;
                let first = tokio::task::spawn_blocking({
                    let started = started.clone();
                    move || started.recv_timeout(Duration::from_secs(10))
                })
                .await
                .unwrap()
                .unwrap();
                let panicked = PANICKED_AT.lock().unwrap().take().unwrap();
                samples.push(first.saturating_duration_since(panicked));
            }
            let _ = parent.stop_gracefully().await;
            samples
        });
        *STARTED.lock().unwrap() = None;
        samples
    }
}
