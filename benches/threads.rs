//! dsconv's thread pool, measured: what a dispatch costs, and each layer (S0, L1..L9) and the
//! 13-block MobileNetV1 body with 2 threads against 1, interleaved in the same run (1 2, then
//! 2 1, ... for `ROUNDS` rounds; each side the median of `CALLS` calls), as the median
//! speed-up with its spread. Batch 1, aligned buffers, the best backend this CPU has. `FMA`
//! is the ceiling: register-only work, which scales only as the cores' clock allows.
//!
//! Right after `FMA`, the same items run inside jobs of the larger pool, each item timed on
//! the thread that runs it: how fast each thread goes at the same moment. The bench prints
//! the slowest thread's speed over the fastest's, and the threads' speeds added up over the
//! calling thread's (the thread that also runs the 1-thread side): a second estimate of the
//! ceiling, which shows when the cores run at different speeds (a virtual machine's cores
//! share their host's cores with other work). It is taken minutes apart from the `FMA`
//! speed-up, so the two need not agree.
//!
//! Run: `cargo bench --bench threads` (`ROUNDS`, `CALLS`, `THREADS` (the larger count,
//! default 2) in the environment; `ONLY=L3,L5` runs those cases alone).
use dsconv::{separable_conv, AlignedBuf, Backend, Chain, Layer, Pool};
use std::time::Instant;

#[path = "common/ab.rs"]
mod ab;
#[path = "common/peak.rs"]
mod peak;
#[path = "common/v1.rs"]
mod v1;
use ab::{env, median, spread, time};
use v1::{body_layers, layer, values, L1, L2, L3, L4, L5, L6, L7, L8, L9};

#[separable_conv(dk = 5, m = 3, n = 256)]
struct S0;

/// A named closure that runs one call.
type Case = (&'static str, Box<dyn FnMut()>);

/// A layer on an `h x w` input, behind a closure that runs it once on `backend`.
fn runner(l: Box<dyn Layer>, h: usize, w: usize, backend: Backend) -> Box<dyn FnMut()> {
    let (ho, wo) = l.output_dims(h, w).unwrap();
    let input = AlignedBuf::from_slice(&values(h * w * l.input_channels(), 3));
    let mut out = AlignedBuf::zeroed(ho * wo * l.output_channels());
    Box::new(move || {
        l.run_on(backend, &input, h, w, &mut out).unwrap();
        std::hint::black_box(&out);
    })
}

fn main() {
    let backend = Backend::detect();
    let (rounds, calls, threads) = (env("ROUNDS", 15), env("CALLS", 21), env("THREADS", 2));
    let (one, many) = (Pool::new(1), Pool::new(threads));

    // Dispatch: a job of `threads` empty items, workers hot (just finished a job) and cold
    // (asleep after 2 ms idle).
    let items = threads;
    let hot = median(
        (0..rounds)
            .map(|_| {
                let n = 20_000;
                let s = Instant::now();
                for _ in 0..n {
                    many.run(items, &|i| {
                        std::hint::black_box(i);
                    });
                }
                s.elapsed().as_secs_f64() * 1e6 / n as f64
            })
            .collect(),
    );
    let cold = median(
        (0..rounds * 4)
            .map(|_| {
                std::thread::sleep(std::time::Duration::from_millis(2));
                let s = Instant::now();
                many.run(items, &|i| {
                    std::hint::black_box(i);
                });
                s.elapsed().as_secs_f64() * 1e6
            })
            .collect(),
    );
    println!(
        "backend {backend}; {threads} threads against 1; {rounds} rounds of {calls} calls a side (median speed-up [min, max])"
    );
    println!("dispatch of {items} empty items: {hot:.2} us with the workers spinning, {cold:.2} us when they sleep");

    let mut cases: Vec<Case> = vec![
        ("S0", runner(Box::new(layer::<S0>(1)), 8, 8, backend)),
        ("L1", runner(Box::new(layer::<L1>(1)), 112, 112, backend)),
        ("L2", runner(Box::new(layer::<L2>(2)), 112, 112, backend)),
        ("L3", runner(Box::new(layer::<L3>(3)), 56, 56, backend)),
        ("L4", runner(Box::new(layer::<L4>(4)), 56, 56, backend)),
        ("L5", runner(Box::new(layer::<L5>(5)), 28, 28, backend)),
        ("L6", runner(Box::new(layer::<L6>(6)), 28, 28, backend)),
        ("L7", runner(Box::new(layer::<L7>(7)), 14, 14, backend)),
        ("L8", runner(Box::new(layer::<L8>(8)), 14, 14, backend)),
        ("L9", runner(Box::new(layer::<L9>(9)), 7, 7, backend)),
    ];
    // The ceiling on any speed-up here: 24 items of register-only FMAs (about 50 us each
    // with AVX-512), which no cache or memory slows. Below `threads`x when the cores slow
    // down with more of them busy (a lower all-core clock) or share their FMA units.
    cases.push((
        "FMA",
        Box::new(move || {
            Pool::current(|p| p.run(24, &|_| peak::fma_loop(backend, 20_000)));
        }),
    ));
    let mut chain = Chain::new(112, 112, body_layers()).unwrap();
    let input = AlignedBuf::from_slice(&values(112 * 112 * 32, 11));
    let mut out = AlignedBuf::zeroed(7 * 7 * 1024);
    cases.push((
        "BODY",
        Box::new(move || {
            chain.forward_on(backend, &input, &mut out).unwrap();
            std::hint::black_box(&out);
        }),
    ));
    let only = std::env::var("ONLY").ok();
    for (name, f) in &mut cases {
        if only
            .as_deref()
            .is_some_and(|o| !o.split(',').any(|x| x == *name))
        {
            continue;
        }
        for _ in 0..3 {
            one.install(&mut *f);
            many.install(&mut *f);
        }
        let (mut t1, mut tn, mut speedups) = (Vec::new(), Vec::new(), Vec::new());
        for r in 0..rounds {
            let (a, b) = if r % 2 == 0 {
                let a = one.install(|| time(f.as_mut(), calls));
                (a, many.install(|| time(f.as_mut(), calls)))
            } else {
                let b = many.install(|| time(f.as_mut(), calls));
                (one.install(|| time(f.as_mut(), calls)), b)
            };
            t1.push(a);
            tn.push(b);
            speedups.push(a / b);
        }
        let (lo, hi) = spread(&speedups);
        println!(
            "{name}: {:.2}x [{lo:.2}, {hi:.2}] ({:.1} us on 1 thread, {:.1} us on {threads})",
            median(speedups),
            median(t1),
            median(tn)
        );
        if *name == "FMA" {
            thread_speeds(&many, backend, rounds * calls);
        }
    }
}

/// Runs `jobs` jobs of 24 register-only FMA items on `pool`, timing each item on the thread
/// that runs it, and prints, as medians over the jobs in which every thread ran an item:
/// the slowest thread's speed over the fastest's, and the threads' speeds added up over the
/// calling thread's (what a job of equal items could gain over the calling thread, had it
/// run alone at its speed in the job).
fn thread_speeds(pool: &Pool, backend: Backend, jobs: usize) {
    let caller = std::thread::current().id();
    let (mut slowest, mut ceiling) = (Vec::new(), Vec::new());
    for _ in 0..jobs {
        let log = std::sync::Mutex::new(Vec::new());
        pool.run(24, &|_| {
            let s = Instant::now();
            peak::fma_loop(backend, 20_000);
            let secs = s.elapsed().as_secs_f64();
            log.lock()
                .unwrap()
                .push((std::thread::current().id(), secs));
        });
        let log = log.into_inner().unwrap();
        let mut threads = Vec::new();
        for &(id, _) in &log {
            if !threads.contains(&id) {
                threads.push(id);
            }
        }
        // Each thread's speed in this job: items per second, from its median item.
        let speed = |id| 1.0 / median(log.iter().filter(|e| e.0 == id).map(|e| e.1).collect());
        let speeds: Vec<f64> = threads.iter().map(|&id| speed(id)).collect();
        // A thread that ran no item of the job has no speed in it: such jobs are left out
        // (and counted). Only the pool's threads run its items, so the caller is among them.
        if speeds.len() == pool.threads() {
            let (lo, hi) = spread(&speeds);
            slowest.push(lo / hi);
            ceiling.push(speeds.iter().sum::<f64>() / speed(caller));
        }
    }
    let jobs_used = slowest.len();
    if jobs_used == 0 {
        println!("thread speeds: no job ran on every thread");
        return;
    }
    let ((sl, sh), (cl, ch)) = (spread(&slowest), spread(&ceiling));
    println!(
        "thread speeds inside {}-thread jobs of FMA items ({jobs_used} of {jobs} jobs ran on every thread): the slowest thread at {:.2} [{sl:.2}, {sh:.2}] of the fastest's speed; all threads' speeds over the calling thread's: {:.2}x [{cl:.2}, {ch:.2}]",
        pool.threads(),
        median(slowest),
        median(ceiling)
    );
}
