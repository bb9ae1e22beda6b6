//! dsconv's thread pool: many callers at once (no call waits behind another's work, every
//! output checked), one thread starts no thread, an idle process uses no CPU, and outputs are
//! bit-identical for every thread count (also checked over the whole property matrix).
//!
//! The checks that count threads or CPU time run in a child process (this binary again, with
//! `DSCONV_THREADS_PROBE` set), so that nothing else in the process disturbs them. Tests that
//! start threads are skipped under qemu-user (`DSCONV_NO_THREADS`), which hangs on them.

use dsconv::{
    pointwise_conv, separable_conv, Backend, Chain, Layer, PointwiseConv, Pool, SeparableConv,
    Split,
};
use dsconv_testkit::{values, OwnedWeights};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[separable_conv(dk = 3, m = 32, n = 64, bias = true, activation = "relu6")]
struct Block;
#[separable_conv(
    dk = 5,
    m = 17,
    n = 40,
    stride = 2,
    padding = "same_upper",
    residual = true
)]
struct Residual;
#[pointwise_conv(m = 64, n = 96, bias = true, activation = "silu")]
struct Expand;
/// Few pixels, one fused tile: the pointwise stage splits by weight panels (12 full and a
/// tail of 8 columns).
#[separable_conv(
    dk = 3,
    m = 64,
    n = 200,
    bias = true,
    activation = "relu6",
    residual = true
)]
struct Panels;

/// No activation, so the depthwise stage's output is its sum's sign as computed.
#[separable_conv(dk = 3, m = 16, n = 8, bias = true)]
struct Signed;

/// A [`Signed`] layer: tap `t` (`3 * ky + kx`) of every channel weighs `dw(t)`, every
/// channel's depthwise bias is `dw_bias`, every output's pointwise bias `pw_bias`.
fn signed(dw: impl Fn(usize) -> f32, dw_bias: f32, pw: &[f32], pw_bias: f32) -> Signed {
    let dw: Vec<f32> = (0..16 * 9).map(|i| dw(i % 9)).collect();
    Signed::load(&dsconv::Weights {
        depthwise: &dw,
        depthwise_bias: Some(&[dw_bias; 16]),
        pointwise: pw,
        pointwise_bias: Some(&[pw_bias; 8]),
    })
    .unwrap()
}

/// The pool sizes a check runs on: `counts`, or one thread alone under qemu-user
/// (`DSCONV_NO_THREADS`), where no thread may start.
fn pools_here(counts: &'static [usize]) -> &'static [usize] {
    if std::env::var_os("DSCONV_NO_THREADS").is_some() {
        &[1]
    } else {
        counts
    }
}

fn block() -> Block {
    Block::load(&OwnedWeights::for_layer::<Block>(3).view()).unwrap()
}

fn expand() -> Expand {
    Expand::load(&values(96 * 64, 5), Some(&values(96, 6))).unwrap()
}

/// The pool sizes the bit-identity check runs, against one thread.
const THREAD_COUNTS: [usize; 4] = [2, 3, 4, 7];

/// Every layer kind, on `threads` threads, gives the bits it gives on one.
fn every_thread_count_gives_the_same_bits() {
    let b = block();
    let r = Residual::load(&OwnedWeights::for_layer::<Residual>(4).view()).unwrap();
    let e = expand();
    let (h, w) = (61, 47);
    let x = values(h * w * 32, 1);
    let x17 = values(h * w * 17, 2);
    let (rh, rw) = Residual::output_size(h, w);
    let skip = values(rh * rw * 40, 3);
    let p = Panels::load(&OwnedWeights::for_layer::<Panels>(7).view()).unwrap();
    let x64 = values(7 * 7 * 64, 4);
    let skip200 = values(7 * 7 * 200, 5);
    // Three images of 14x14 (on up to 3 threads each image is an item, inline on its
    // thread; on more, each image split in turn), one alone (split), then 4x4 (inline).
    let batch = values(3 * 14 * 14 * 32, 6);
    let run = |pool: &Pool| {
        pool.install(|| {
            let mut o1 = vec![0.0; h * w * 64];
            b.forward(&x, h, w, &mut o1).unwrap();
            let mut o2 = vec![0.0; rh * rw * 40];
            r.forward_residual(&x17, &skip, h, w, &mut o2).unwrap();
            let mut o3 = vec![0.0; h * w * 96];
            e.forward(&o1, h, w, &mut o3).unwrap();
            let mut o4 = vec![0.0; 7 * 7 * 200];
            p.forward_residual(&x64, &skip200, 7, 7, &mut o4).unwrap();
            let mut o5 = vec![0.0; 3 * 14 * 14 * 64];
            b.forward_batch(&batch, 3, 14, 14, &mut o5).unwrap();
            let mut o6 = vec![0.0; 3 * 14 * 14 * 96];
            for (i, o) in o5.chunks(14 * 14 * 64).zip(o6.chunks_mut(14 * 14 * 96)) {
                e.forward(i, 14, 14, o).unwrap();
            }
            let mut o7 = vec![0.0; 3 * 4 * 4 * 64];
            b.forward_batch(&batch[..3 * 4 * 4 * 32], 3, 4, 4, &mut o7)
                .unwrap();
            let mut o8 = vec![0.0; 14 * 14 * 64];
            b.forward(&batch[14 * 14 * 32..2 * 14 * 14 * 32], 14, 14, &mut o8)
                .unwrap();
            (o1, o2, o3, o4, o5, o6, o7, o8)
        })
    };
    let one = run(&Pool::new(1));
    for threads in THREAD_COUNTS {
        let pool = Pool::new(threads);
        for _ in 0..3 {
            assert!(run(&pool) == one, "{threads} threads");
        }
        assert!(
            pool.started(),
            "a {threads}-thread pool ran work on its workers"
        );
    }
}

/// The layers and sizes of `every_thread_count_gives_the_same_bits` take every kind of
/// split on the active backend, on each of its thread counts: fused tiles, the stages in
/// turn (few pixels: 1x1 by weight panels), one item inline (too little work), for separable
/// and 1x1 layers. (Which size takes which kind depends on the backend's register tile and
/// the thread count: the more threads, the more sizes go in stages.)
fn the_bit_identity_check_covers_every_split() {
    use std::collections::BTreeSet;
    let backend = Backend::active().unwrap();
    let kind = |split: Split| match split {
        Split::Inline { .. } => "inline",
        Split::Tiles { .. } => "tiles",
        Split::Staged { .. } => "staged",
    };
    for threads in THREAD_COUNTS {
        let of = |plan: Option<&dsconv::PlanSummary>, (ho, wo): (usize, usize)| {
            kind(plan.unwrap().split.split(ho * wo, threads))
        };
        let separable: BTreeSet<&str> = [
            of(Block::plan(backend), (61, 47)),
            of(Block::plan(backend), (14, 14)),
            of(Block::plan(backend), (4, 4)),
            of(Residual::plan(backend), Residual::output_size(61, 47)),
            of(Panels::plan(backend), (7, 7)),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            separable,
            BTreeSet::from(["inline", "staged", "tiles"]),
            "{backend}, {threads} threads"
        );
        let pointwise = <Expand as PointwiseConv>::plan(backend);
        let one_by_one: BTreeSet<&str> = [of(pointwise, (61, 47)), of(pointwise, (14, 14))]
            .into_iter()
            .collect();
        assert_eq!(
            one_by_one,
            BTreeSet::from(["staged", "tiles"]),
            "{backend}, {threads} threads"
        );
    }
    // What a plan prints of it.
    let printed = Panels::plan(backend).unwrap().to_string();
    assert!(
        printed.contains("threads: one item on one thread"),
        "{printed}"
    );
}

/// A depthwise bias of -0.0 over a zero image and negative weights: every product is -0.0,
/// so the sums would end -0.0 in some pixels and +0.0 in others (the right column's
/// positive taps). The layer stores the bias as +0.0, the value a +0.0 bias gives: every
/// depthwise output is +0.0, on every backend and pool.
fn a_negative_zero_bias_gives_the_same_bits_everywhere() {
    // Taps of the right column positive, the others negative, per channel.
    let positive = |t: usize| t % 3 == 2;
    let layer = signed(
        |t| if positive(t) { 0.5 } else { -0.5 },
        -0.0,
        &values(8 * 16, 2),
        0.0,
    );
    let (h, w) = (40, 40);
    let x = vec![0.0f32; h * w * 16];
    // Under qemu-user the one-thread pool alone: the plan's tiles still cut the rows
    // there, so the check holds for the NEON kernels too.
    let thread_counts = pools_here(&[1, 2, 3]);
    for backend in Backend::available() {
        for &threads in thread_counts {
            let mut d = vec![1.0f32; h * w * 16];
            Pool::new(threads).install(|| layer.depthwise_on(backend, &x, h, w, &mut d).unwrap());
            let mut o = vec![1.0f32; h * w * 8];
            Pool::new(threads).install(|| layer.forward_on(backend, &x, h, w, &mut o).unwrap());
            assert!(
                d.iter().all(|v| v.to_bits() == 0),
                "{backend}, {threads} thread(s): a depthwise output is not +0.0"
            );
            assert!(
                o.iter().all(|v| *v == 0.0),
                "{backend}, {threads} thread(s)"
            );
        }
    }
}

/// Sums that underflow: each tap's exact product (the smallest subnormal times 0.25)
/// rounds to a zero of its own sign, so the zero a fused multiply-add sum ends on is the
/// sign of the last tap it adds. With weights positive in the right column (negative
/// elsewhere), every pixel of the last column, whose right taps are padding, ends -0.0 and
/// every other pixel +0.0; with weights positive in the bottom row, every pixel of the last
/// row ends -0.0. A code that added a padding tap (`+0 * w`) would end such a pixel +0.0,
/// and only in the pixels it computes: a pixel's sign would follow where a tile cuts its
/// row. Checked on 5 image sizes and 1, 2, 3, 4 and 7 threads; the pointwise weights are 1
/// and its bias -0.0, so each output keeps its pixel's sign. The scalar backend rounds each
/// product before adding it (no fused multiply-add): its zero sums are all +0.0.
fn an_underflowing_sum_gives_the_same_bits_everywhere() {
    let thread_counts = pools_here(&[1, 2, 3, 4, 7]);
    let tiny = f32::from_bits(1);
    // Weights positive in the right column of taps (kx = 2) or in the bottom row (ky = 2)
    // of each channel (tap t = 3 * ky + kx): the last column or the last row ends -0.0.
    for (what, by_column) in [("last column", true), ("last row", false)] {
        let positive = |t: usize| if by_column { t % 3 == 2 } else { t / 3 == 2 };
        let layer = signed(
            |t| if positive(t) { 0.25 } else { -0.25 },
            0.0,
            &[1.0; 8 * 16],
            -0.0,
        );
        for backend in Backend::available() {
            let (edge, other) = if backend == Backend::Scalar {
                (0.0f32, 0.0f32)
            } else {
                (-0.0, 0.0)
            };
            for (h, w) in [(40, 40), (14, 14), (30, 7), (9, 3), (5, 2)] {
                let x = vec![tiny; h * w * 16];
                for &threads in thread_counts {
                    let mut o = vec![1.0f32; h * w * 8];
                    Pool::new(threads)
                        .install(|| layer.forward_on(backend, &x, h, w, &mut o).unwrap());
                    for (i, v) in o.iter().enumerate() {
                        let (y, x) = (i / 8 / w, i / 8 % w);
                        let edge_pixel = if by_column { x == w - 1 } else { y == h - 1 };
                        let want = if edge_pixel { edge } else { other };
                        assert!(
                            v.to_bits() == want.to_bits(),
                            "{backend}, {what}, {threads} thread(s), {h}x{w}: pixel ({y}, {x}) \
                             is {v}, expected {want}"
                        );
                    }
                }
            }
        }
    }
}

/// 8 caller threads share layers, a chain each, and the global pool for two seconds; every
/// output equals the one-thread result.
fn eight_callers_share_layers_and_the_pool() {
    let b = Arc::new(block());
    let e = Arc::new(expand());
    let (h, w) = (40, 33);
    let x = Arc::new(values(h * w * 32, 9));
    let (expected_b, expected_e) = Pool::new(1).install(|| {
        let mut o = vec![0.0; h * w * 64];
        b.forward(&x, h, w, &mut o).unwrap();
        let mut o2 = vec![0.0; h * w * 96];
        e.forward(&o, h, w, &mut o2).unwrap();
        (o, o2)
    });
    let (expected_b, expected_e) = (Arc::new(expected_b), Arc::new(expected_e));
    let deadline = Instant::now() + Duration::from_secs(2);
    let callers: Vec<_> = (0..8)
        .map(|i| {
            let (b, e, x) = (Arc::clone(&b), Arc::clone(&e), Arc::clone(&x));
            let (eb, ee) = (Arc::clone(&expected_b), Arc::clone(&expected_e));
            std::thread::spawn(move || {
                let mut chain = Chain::builder(h, w)
                    .layer(block())
                    .layer(expand())
                    .build()
                    .unwrap();
                let mut calls = 0usize;
                let mut o = vec![0.0; h * w * 64];
                let mut o2 = vec![0.0; h * w * 96];
                while Instant::now() < deadline {
                    b.forward(&x, h, w, &mut o).unwrap();
                    assert!(o == *eb, "caller {i}: forward");
                    e.forward(&o, h, w, &mut o2).unwrap();
                    assert!(o2 == *ee, "caller {i}: 1x1");
                    chain.forward(&x, &mut o2).unwrap();
                    assert!(o2 == *ee, "caller {i}: chain");
                    calls += 1;
                }
                calls
            })
        })
        .collect();
    let calls: Vec<usize> = callers.into_iter().map(|c| c.join().unwrap()).collect();
    assert!(calls.iter().all(|&c| c > 0), "{calls:?}");
}

/// Runs this binary as a probe in a child process, returning its stdout.
fn probe(kind: &str, threads: Option<&str>) -> String {
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.env("DSCONV_THREADS_PROBE", kind);
    match threads {
        Some(t) => cmd.env("DSCONV_THREADS", t),
        None => cmd.env_remove("DSCONV_THREADS"),
    };
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "probe {kind}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// Threads of this process, from /proc.
fn os_threads() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// CPU time this process's threads have run so far, in nanoseconds (the sum of each task's
/// `schedstat`).
fn cpu_ns() -> u64 {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .map(|t| {
            let stat = std::fs::read_to_string(t.unwrap().path().join("schedstat")).unwrap();
            stat.split(' ').next().unwrap().parse::<u64>().unwrap()
        })
        .sum()
}

/// The probes: layer calls with the global pool, then a report.
fn run_probe(kind: &str) {
    let b = block();
    let x = values(56 * 56 * 32, 1);
    let mut o = vec![0.0; 56 * 56 * 64];
    for _ in 0..5 {
        b.forward(&x, 56, 56, &mut o).unwrap();
    }
    match kind {
        "threads" => println!("{} {}", os_threads(), Pool::global().threads()),
        "idle" => {
            // Let the workers finish spinning and sleep, then measure one quiet second.
            std::thread::sleep(Duration::from_millis(200));
            let before = cpu_ns();
            std::thread::sleep(Duration::from_secs(1));
            println!("{} {}", cpu_ns() - before, Pool::global().threads());
        }
        other => panic!("unknown probe {other}"),
    }
}

/// `DSCONV_THREADS=1` starts no thread; `=3` gives three (the caller and two workers).
fn dsconv_threads_sets_the_count() {
    let one = probe("threads", Some("1"));
    assert_eq!(
        one.trim(),
        "1 1",
        "DSCONV_THREADS=1: OS threads, pool threads"
    );
    let three = probe("threads", Some("3"));
    assert_eq!(
        three.trim(),
        "3 3",
        "DSCONV_THREADS=3: OS threads, pool threads"
    );
    // Not a positive integer: the cores available.
    let cores = std::thread::available_parallelism().unwrap().get();
    let bad = probe("threads", Some("zero"));
    assert_eq!(bad.split(' ').nth(1).unwrap().trim(), cores.to_string());
}

/// After its calls, an idle process with a started pool of 4 uses at most 5 ms of CPU in a
/// second.
fn idle_pool_uses_no_cpu() {
    let out = probe("idle", Some("4"));
    let mut it = out.split_whitespace();
    let ns: u64 = it.next().unwrap().parse().unwrap();
    assert_eq!(it.next(), Some("4"));
    assert!(ns <= 5_000_000, "{ns} ns of CPU in an idle second");
    println!("idle second with a started 4-thread pool: {ns} ns of CPU");
}

fn main() {
    if let Ok(kind) = std::env::var("DSCONV_THREADS_PROBE") {
        return run_probe(&kind);
    }
    let _ = Backend::detect();
    let _: &dyn Layer = &block();
    let _ = <Expand as PointwiseConv>::M;
    dsconv_testkit::run_tests(
        dsconv_testkit::tests![
            every_thread_count_gives_the_same_bits,
            the_bit_identity_check_covers_every_split,
            a_negative_zero_bias_gives_the_same_bits_everywhere,
            an_underflowing_sum_gives_the_same_bits_everywhere,
            eight_callers_share_layers_and_the_pool,
            dsconv_threads_sets_the_count,
            idle_pool_uses_no_cpu
        ],
        &[
            "every_thread_count_gives_the_same_bits",
            "eight_callers_share_layers_and_the_pool",
            "dsconv_threads_sets_the_count",
            "idle_pool_uses_no_cpu",
        ],
    );
}
