//! Issue 15's kernel-efficiency ratios, each taken in one run, interleaved (the harness of
//! `benches/common/ab.rs`: A B, then B A, ... for `ROUNDS` rounds; median ratio B / A and
//! its spread). Single thread, batch 1, the best backend this CPU has (`B=<backend>` picks
//! another). Ratios of different layers are per multiplication of the stage timed: above 1,
//! B takes longer per multiplication than A.
//!
//! - Depth multipliers: the depthwise stage of DM 3, 5, 6, 7 (56x56x64) against DM 2's,
//!   and DM 3 against the scalar depthwise kernel that ran it before it was vectorised.
//!
//! Run: `cargo bench --bench kernels` (`ROUNDS`, `CALLS`, `ONLY=<part of a name>` in the
//! environment); `-- count PAIR a|b REPS` for instruction counts.
use dsconv::{separable_conv, AlignedBuf, Backend, SeparableConv};

#[path = "common/ab.rs"]
mod ab;
use ab::{loaded, runner, Pair};

#[separable_conv(dk = 3, m = 64, n = 128, depth_multiplier = 2)]
struct Dm2;
#[separable_conv(dk = 3, m = 64, n = 128, depth_multiplier = 3)]
struct Dm3;
#[separable_conv(dk = 3, m = 64, n = 128, depth_multiplier = 5)]
struct Dm5;
#[separable_conv(dk = 3, m = 64, n = 128, depth_multiplier = 6)]
struct Dm6;
#[separable_conv(dk = 3, m = 64, n = 128, depth_multiplier = 7)]
struct Dm7;

/// A closure running `L`'s depthwise stage on `backend`, and the stage's multiplications.
fn depthwise<L: SeparableConv + 'static>(
    h: usize,
    w: usize,
    backend: Backend,
) -> (Box<dyn FnMut()>, u64) {
    let l = loaded::<L>(h, w);
    let (ho, wo) = L::output_size(h, w);
    let mut mid = AlignedBuf::zeroed(ho * wo * L::M * L::DEPTH_MULTIPLIER);
    let f = Box::new(move || {
        l.layer
            .depthwise_on(backend, &l.input, h, w, &mut mid)
            .unwrap();
        std::hint::black_box(&mid);
    });
    (f, L::multiplications(h, w).depthwise as u64)
}

/// `forward` of `L` and its multiplications.
fn forward<L: SeparableConv + 'static>(
    h: usize,
    w: usize,
    backend: Backend,
) -> (Box<dyn FnMut()>, u64) {
    (
        runner::<L>(h, w, backend),
        L::multiplications(h, w).total() as u64,
    )
}

/// B against A per multiplication.
fn per_mult(
    name: &str,
    (a, ua): (Box<dyn FnMut()>, u64),
    (b, ub): (Box<dyn FnMut()>, u64),
) -> Pair {
    Pair::per_unit(name, a, ua, b, ub)
}

fn pairs(b: Backend) -> Vec<Pair> {
    let s = 56;
    vec![
        per_mult(
            "depthwise DM3 / DM2 per multiplication, 56x56x64",
            depthwise::<Dm2>(s, s, b),
            depthwise::<Dm3>(s, s, b),
        ),
        per_mult(
            "depthwise DM5 / DM2 per multiplication, 56x56x64",
            depthwise::<Dm2>(s, s, b),
            depthwise::<Dm5>(s, s, b),
        ),
        per_mult(
            "depthwise DM6 / DM2 per multiplication, 56x56x64",
            depthwise::<Dm2>(s, s, b),
            depthwise::<Dm6>(s, s, b),
        ),
        per_mult(
            "depthwise DM7 / DM2 per multiplication, 56x56x64",
            depthwise::<Dm2>(s, s, b),
            depthwise::<Dm7>(s, s, b),
        ),
        per_mult(
            "forward DM3 / DM2 per multiplication, 56x56x64",
            forward::<Dm2>(s, s, b),
            forward::<Dm3>(s, s, b),
        ),
        per_mult(
            "depthwise DM3: this backend / the scalar kernel DM3 ran on before",
            depthwise::<Dm3>(s, s, Backend::Scalar),
            depthwise::<Dm3>(s, s, b),
        ),
    ]
}

fn main() {
    ab::main(pairs)
}
