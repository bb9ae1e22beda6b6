//! The interleaved A/B harness of `benches/features.rs` and `benches/kernels.rs`: each pair
//! is timed A B, then B A, ... for `ROUNDS` rounds (each side the median of `CALLS` calls),
//! and reported as the median per-round ratio B / A with its spread, so that this machine's
//! minute-to-minute drift cancels within a round.
//!
//! `count PAIR a|b REPS` as arguments runs one side `REPS` times instead, for instruction
//! counts under `valgrind --tool=callgrind` (not AVX-512).
#![allow(dead_code)]

use dsconv::{AlignedBuf, Backend, SeparableConv, Weights};
use std::time::Instant;

/// One comparison: B against A. `per_unit` scales the ratio when the two sides do different
/// amounts of work: the reported ratio is `(time B / units B) / (time A / units A)`, the
/// time per multiplication (or per byte) of B against A's (1 and 1: plain times).
pub struct Pair {
    /// What is compared.
    pub name: String,
    /// The baseline.
    pub a: Box<dyn FnMut()>,
    /// The variant.
    pub b: Box<dyn FnMut()>,
    /// Units of work of one call of A and of B.
    pub units: (f64, f64),
}

impl Pair {
    /// A pair of plain times.
    pub fn new(name: impl Into<String>, a: Box<dyn FnMut()>, b: Box<dyn FnMut()>) -> Pair {
        Pair {
            name: name.into(),
            a,
            b,
            units: (1.0, 1.0),
        }
    }

    /// A pair compared per unit of work (`ua` units a call of A, `ub` of B).
    pub fn per_unit(
        name: impl Into<String>,
        a: Box<dyn FnMut()>,
        ua: u64,
        b: Box<dyn FnMut()>,
        ub: u64,
    ) -> Pair {
        Pair {
            units: (ua as f64, ub as f64),
            ..Pair::new(name, a, b)
        }
    }
}

/// The median of `v`.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// The smallest and the largest of `v` (a spread to print beside its median).
pub fn spread(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::MAX, 0.0f64), |(l, h), &x| (l.min(x), h.max(x)))
}

/// The median time of `calls` calls of `f`, in microseconds.
pub fn time(f: &mut dyn FnMut(), calls: usize) -> f64 {
    median(
        (0..calls)
            .map(|_| {
                let s = Instant::now();
                f();
                s.elapsed().as_secs_f64() * 1e6
            })
            .collect(),
    )
}

/// `name` from the environment, else `default`.
pub fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One thread unless `DSCONV_THREADS` says otherwise; the backend `B=<name>`, else the best
/// this CPU has.
pub fn setup() -> Backend {
    if std::env::var_os(dsconv::THREADS_ENV).is_none() {
        let _ = dsconv::Pool::set_global(dsconv::Pool::new(1));
    }
    std::env::var("B").ok().map_or_else(Backend::detect, |v| {
        Backend::ALL.into_iter().find(|b| b.name() == v).unwrap()
    })
}

/// Runs the pairs `make(backend)` gives: interleaved (the default), or one side for counts.
/// `ONLY=<text>` keeps the pairs whose name contains it.
pub fn main(make: impl Fn(Backend) -> Vec<Pair>) {
    let backend = setup();
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let mut pairs = make(backend);
    if args.first().map(String::as_str) == Some("count") {
        let (i, side, reps): (usize, &str, usize) =
            (args[1].parse().unwrap(), &args[2], args[3].parse().unwrap());
        let p = &mut pairs[i];
        let f = if side == "a" { &mut p.a } else { &mut p.b };
        for _ in 0..reps {
            f();
        }
        return;
    }
    if let Ok(only) = std::env::var("ONLY") {
        pairs.retain(|p| p.name.contains(&only));
    }
    let (rounds, calls) = (env("ROUNDS", 15), env("CALLS", 21));
    println!(
        "backend {backend}, {rounds} rounds of {calls} calls a side (median ratio [min, max])"
    );
    for p in &mut pairs {
        for _ in 0..3 {
            (p.a)();
            (p.b)();
        }
        let scale = p.units.0 / p.units.1;
        let mut ratios = Vec::new();
        let (mut ta, mut tb) = (Vec::new(), Vec::new());
        for r in 0..rounds {
            let (x, y) = if r % 2 == 0 {
                let x = time(p.a.as_mut(), calls);
                (x, time(p.b.as_mut(), calls))
            } else {
                let y = time(p.b.as_mut(), calls);
                (time(p.a.as_mut(), calls), y)
            };
            ratios.push(y / x * scale);
            ta.push(x);
            tb.push(y);
        }
        let (lo, hi) = spread(&ratios);
        println!(
            "{}: {:.3}x [{lo:.3}, {hi:.3}] ({:.1} us against {:.1} us)",
            p.name,
            median(ratios),
            median(tb),
            median(ta)
        );
    }
}

/// `n` deterministic values of `seed`.
pub fn vals(n: usize, seed: u32) -> Vec<f32> {
    dsconv_testkit::lcg_values(n, seed, 0.5)
}

/// A loaded layer with its input, a skip and an output buffer.
pub struct Loaded<L> {
    /// The layer.
    pub layer: L,
    /// Its input.
    pub input: AlignedBuf,
    /// A skip input of the output's shape.
    pub skip: AlignedBuf,
    /// The output.
    pub out: AlignedBuf,
}

/// `L` loaded with deterministic weights, with buffers for an `h x w` image.
pub fn loaded<L: SeparableConv>(h: usize, w: usize) -> Loaded<L> {
    let c = L::M * L::DEPTH_MULTIPLIER;
    let layer = L::load(&Weights {
        depthwise: &vals(c * L::DK * L::DK, 1),
        depthwise_bias: None,
        pointwise: &vals(L::N * c, 2),
        pointwise_bias: None,
    })
    .unwrap();
    let (ho, wo) = L::output_size(h, w);
    Loaded {
        layer,
        input: AlignedBuf::from_slice(&vals(h * w * L::M, 3)),
        skip: AlignedBuf::from_slice(&vals(ho * wo * L::N, 4)),
        out: AlignedBuf::zeroed(ho * wo * L::N),
    }
}

/// A closure that runs `forward` once.
pub fn runner<L: SeparableConv + 'static>(
    h: usize,
    w: usize,
    backend: Backend,
) -> Box<dyn FnMut()> {
    let mut l = loaded::<L>(h, w);
    Box::new(move || {
        l.layer
            .forward_on(backend, &l.input, h, w, &mut l.out)
            .unwrap();
        std::hint::black_box(&l.out);
    })
}
