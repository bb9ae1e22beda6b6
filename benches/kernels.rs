//! Issue 15's kernel-efficiency ratios, each taken in one run, interleaved (the harness of
//! `benches/common/ab.rs`: A B, then B A, ... for `ROUNDS` rounds; median ratio B / A and
//! its spread). Single thread, batch 1, the best backend this CPU has (`B=<backend>` picks
//! another). Ratios of different layers are per multiplication of the stage timed: above 1,
//! B takes longer per multiplication than A.
//!
//! - Depth multipliers: the depthwise stage of DM 3, 5, 6, 7 (56x56x64) against DM 2's,
//!   and DM 3 against the scalar depthwise kernel that ran it before it was vectorised.
//! - Kernel sizes: the depthwise stage of dk 7 and 9 against dk 5 (56x56x128 and
//!   28x28x256), and of dk 31 (past the unrolling limit: kernel rows looped) against dk 3
//!   (14x14x256), per multiplication.
//! - Buffers: `forward` of L3 and L5 with input and output 16 bytes into a cache line
//!   (where `malloc` puts large blocks) against 64-byte aligned ones.
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

#[separable_conv(dk = 5, m = 128, n = 128)]
struct K5a;
#[separable_conv(dk = 7, m = 128, n = 128)]
struct K7a;
#[separable_conv(dk = 9, m = 128, n = 128)]
struct K9a;
#[separable_conv(dk = 5, m = 256, n = 256)]
struct K5b;
#[separable_conv(dk = 7, m = 256, n = 256)]
struct K7b;
#[separable_conv(dk = 9, m = 256, n = 256)]
struct K9b;
#[separable_conv(dk = 3, m = 256, n = 256)]
struct K3c;
#[separable_conv(dk = 31, m = 256, n = 256)]
struct K31c;
#[separable_conv(dk = 3, m = 128, n = 128)]
struct L3;
#[separable_conv(dk = 3, m = 256, n = 256)]
struct L5;

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

/// `forward` of `L` with input and output starting `offset` floats past a 64-byte boundary.
fn forward_at<L: SeparableConv + 'static>(
    h: usize,
    w: usize,
    offset: usize,
    backend: Backend,
) -> Box<dyn FnMut()> {
    let l = loaded::<L>(h, w);
    let (ho, wo) = L::output_size(h, w);
    let (n_in, n_out) = (h * w * L::M, ho * wo * L::N);
    let mut input = AlignedBuf::zeroed(n_in + offset);
    input[offset..].copy_from_slice(&l.input);
    let mut out = AlignedBuf::zeroed(n_out + offset);
    Box::new(move || {
        l.layer
            .forward_on(backend, &input[offset..], h, w, &mut out[offset..])
            .unwrap();
        std::hint::black_box(&out);
    })
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
        per_mult(
            "depthwise dk7 / dk5 per multiplication, 56x56x128",
            depthwise::<K5a>(56, 56, b),
            depthwise::<K7a>(56, 56, b),
        ),
        per_mult(
            "depthwise dk9 / dk5 per multiplication, 56x56x128",
            depthwise::<K5a>(56, 56, b),
            depthwise::<K9a>(56, 56, b),
        ),
        per_mult(
            "depthwise dk7 / dk5 per multiplication, 28x28x256",
            depthwise::<K5b>(28, 28, b),
            depthwise::<K7b>(28, 28, b),
        ),
        per_mult(
            "depthwise dk9 / dk5 per multiplication, 28x28x256",
            depthwise::<K5b>(28, 28, b),
            depthwise::<K9b>(28, 28, b),
        ),
        per_mult(
            "depthwise dk31 / dk3 per multiplication, 14x14x256",
            depthwise::<K3c>(14, 14, b),
            depthwise::<K31c>(14, 14, b),
        ),
        Pair::new(
            "forward L3, buffers 16 bytes into a line / aligned",
            forward_at::<L3>(56, 56, 0, b),
            forward_at::<L3>(56, 56, 4, b),
        ),
        Pair::new(
            "forward L5, buffers 16 bytes into a line / aligned",
            forward_at::<L5>(28, 28, 0, b),
            forward_at::<L5>(28, 28, 4, b),
        ),
    ]
}

fn main() {
    ab::main(pairs)
}
