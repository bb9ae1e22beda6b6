//! Steady-state `forward` makes no heap allocation, on every backend this CPU has: a
//! counting global allocator sees none after the first (warm-up) call, which sizes the
//! per-thread scratch buffer of the fused path. Counted on a one-thread pool.
//!
//! `harness = false`, on the main thread, so nothing else allocates while we count.

use dsconv::{separable_conv, Backend, Chain, Layer, Pool, SeparableConv, Weights};
use dsconv_testkit::OwnedWeights;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A pool of one thread, which never starts one.
static ONE_THREAD: std::sync::LazyLock<Pool> = std::sync::LazyLock::new(|| Pool::new(1));

#[separable_conv(dk = 3, m = 32, n = 64, bias = true, activation = "relu6")]
struct Block;
#[separable_conv(dk = 5, m = 3, n = 256)]
struct Seed;
#[separable_conv(dk = 3, m = 9, n = 17, depth_multiplier = 2, stride = 2)]
struct Multiplier;
#[separable_conv(dk = 5, m = 17, n = 32, padding = "same_upper", dilation = 2)]
struct Wide;

fn steady_state_allocations<L: SeparableConv>(backend: Backend, h: usize, w: usize) -> usize {
    let c = L::M * L::DEPTH_MULTIPLIER;
    let dw = vec![0.25f32; c * L::DK * L::DK];
    let pw = vec![0.5f32; L::N * c];
    let (db, pb) = (vec![0.1f32; c], vec![0.2f32; L::N]);
    let layer = L::load(&Weights {
        depthwise: &dw,
        depthwise_bias: L::BIAS.then_some(&db[..]),
        pointwise: &pw,
        pointwise_bias: L::BIAS.then_some(&pb[..]),
    })
    .unwrap();
    let input = vec![1.0f32; h * w * L::M];
    let (ho, wo) = L::output_size(h, w);
    let mut out = vec![0.0f32; ho * wo * L::N];
    let mut mid = vec![0.0f32; ho * wo * c];
    layer.forward_on(backend, &input, h, w, &mut out).unwrap(); // warm-up
    layer.forward(&input, h, w, &mut out).unwrap(); // warm-up of the default backend
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..3 {
        layer.forward_on(backend, &input, h, w, &mut out).unwrap();
        layer.forward(&input, h, w, &mut out).unwrap();
        layer.depthwise_on(backend, &input, h, w, &mut mid).unwrap();
        layer.pointwise_on(backend, &mid, ho, wo, &mut out).unwrap();
    }
    ALLOCATIONS.load(Ordering::Relaxed) - before
}

fn no_allocation<L: SeparableConv>(backend: Backend, h: usize, w: usize) {
    // On one thread: each pool worker sizes its own scratch at its first tile, whenever
    // that comes.
    let n = ONE_THREAD.install(|| steady_state_allocations::<L>(backend, h, w));
    assert_eq!(n, 0, "{n} allocations in steady state");
}

fn block_56x56(backend: Backend) {
    no_allocation::<Block>(backend, 56, 56);
}

fn seed_8x8(backend: Backend) {
    no_allocation::<Seed>(backend, 8, 8);
}

fn multiplier_9x7(backend: Backend) {
    no_allocation::<Multiplier>(backend, 9, 7);
}

/// A chain's `forward` allocates nothing after the first call either: its buffers were
/// allocated when it was built.
fn chain_of_three(backend: Backend) {
    ONE_THREAD.install(|| chain_steady_state(backend));
}

fn chain_steady_state(backend: Backend) {
    let layers: Vec<Box<dyn Layer>> = vec![
        Box::new(Multiplier::load(&OwnedWeights::for_layer::<Multiplier>(1).view()).unwrap()),
        Box::new(Wide::load(&OwnedWeights::for_layer::<Wide>(2).view()).unwrap()),
        Box::new(Block::load(&OwnedWeights::for_layer::<Block>(3).view()).unwrap()),
    ];
    let mut chain = Chain::new(21, 18, layers).unwrap();
    let (h, w, c) = chain.input_dims();
    let (ho, wo, n) = chain.output_dims();
    let input = vec![1.0f32; h * w * c];
    let mut out = vec![0.0f32; ho * wo * n];
    chain.forward_on(backend, &input, &mut out).unwrap(); // warm-up
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..3 {
        chain.forward_on(backend, &input, &mut out).unwrap();
    }
    let n = ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert_eq!(n, 0, "{n} allocations in steady state");
}

/// On 2 threads too, once every thread has sized its buffers: the fused tiles (56x56) and
/// the stages (14x14: the caller's stage buffer, the workers' depthwise scratch). Twenty
/// warm-up rounds let the worker take part (it claims its own share of every job first).
fn two_threads(backend: Backend) {
    static TWO: std::sync::LazyLock<Pool> = std::sync::LazyLock::new(|| Pool::new(2));
    TWO.install(|| {
        for (h, w) in [(56, 56), (14, 14)] {
            for _ in 0..20 {
                steady_state_allocations::<Block>(backend, h, w);
            }
            let n = steady_state_allocations::<Block>(backend, h, w);
            assert_eq!(
                n, 0,
                "{n} allocations in steady state on 2 threads at {h}x{w}"
            );
        }
        assert!(TWO.started());
    });
}

fn main() {
    // The harness runs each test on the main thread, one at a time, so nothing else
    // allocates between a test's two counter readings.
    dsconv_testkit::run_backend_tests_with(
        dsconv_testkit::backend_tests![
            block_56x56,
            seed_8x8,
            multiplier_9x7,
            chain_of_three,
            two_threads
        ],
        &["two_threads"],
    );
}
