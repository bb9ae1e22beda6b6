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
//! - Buffers: `forward` of L1..L9 (and the depthwise stage of L1, L3, L5, L7, L9) with
//!   input and output 16 bytes into a cache line (where `malloc` puts large blocks) against
//!   64-byte aligned ones.
//!
//! Run: `cargo bench --bench kernels` (`ROUNDS`, `CALLS`, `ONLY=<part of a name>` in the
//! environment); `-- count PAIR a|b REPS` for instruction counts.
use dsconv::{AlignedBuf, Backend, SeparableConv};

#[path = "common/ab.rs"]
mod ab;
#[path = "common/issue15.rs"]
mod issue15;
#[path = "common/v1.rs"]
mod v1;
use ab::{loaded, runner, Pair};
use issue15::{Dm2, Dm3, Dm5, Dm6, Dm7, K5a, K5b, K7a, K7b, K9a, K9b, K31};
use v1::{L1, L2, L3, L4, L5, L6, L7, L8, L9};

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

/// `forward` of `L` (`stage` "forward") or its depthwise stage alone ("depthwise") with
/// input and output starting `offset` floats past a 64-byte boundary.
fn call_at<L: SeparableConv + 'static>(
    stage: &'static str,
    h: usize,
    w: usize,
    offset: usize,
    backend: Backend,
) -> Box<dyn FnMut()> {
    let l = loaded::<L>(h, w);
    let (ho, wo) = L::output_size(h, w);
    let n_out = ho * wo * if stage == "forward" { L::N } else { L::M };
    let mut input = AlignedBuf::zeroed(h * w * L::M + offset);
    input[offset..].copy_from_slice(&l.input);
    let mut out = AlignedBuf::zeroed(n_out + offset);
    Box::new(move || {
        let (input, out) = (&input[offset..], &mut out[offset..]);
        match stage {
            "forward" => l.layer.forward_on(backend, input, h, w, out),
            _ => l.layer.depthwise_on(backend, input, h, w, out),
        }
        .unwrap();
        std::hint::black_box(out);
    })
}

/// `stage` of `L` with buffers 16 bytes into a cache line (where `malloc` often puts a
/// `Vec`) against 64-byte aligned ones.
fn offset<L: SeparableConv + 'static>(
    stage: &'static str,
    name: &str,
    h: usize,
    w: usize,
    b: Backend,
) -> Pair {
    Pair::new(
        format!("{stage} {name}, buffers 16 bytes into a line / aligned"),
        call_at::<L>(stage, h, w, 0, b),
        call_at::<L>(stage, h, w, 4, b),
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
            depthwise::<L5>(14, 14, b),
            depthwise::<K31>(14, 14, b),
        ),
        offset::<L1>("forward", "L1", 112, 112, b),
        offset::<L2>("forward", "L2", 112, 112, b),
        offset::<L3>("forward", "L3", 56, 56, b),
        offset::<L4>("forward", "L4", 56, 56, b),
        offset::<L5>("forward", "L5", 28, 28, b),
        offset::<L6>("forward", "L6", 28, 28, b),
        offset::<L7>("forward", "L7", 14, 14, b),
        offset::<L8>("forward", "L8", 14, 14, b),
        offset::<L9>("forward", "L9", 7, 7, b),
        offset::<L1>("depthwise", "L1", 112, 112, b),
        offset::<L3>("depthwise", "L3", 56, 56, b),
        offset::<L5>("depthwise", "L5", 28, 28, b),
        offset::<L7>("depthwise", "L7", 14, 14, b),
        offset::<L9>("depthwise", "L9", 7, 7, b),
    ]
}

fn main() {
    ab::main(pairs)
}
