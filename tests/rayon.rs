//! `Pool::rayon()` (cargo feature `rayon`): dsconv's work items run on the caller's rayon
//! pool, with the bits dsconv's own pool gives. Not run under qemu (rayon starts threads).

use dsconv::{pointwise_conv, separable_conv, PointwiseConv, Pool, SeparableConv};
use dsconv_testkit::{values, OwnedWeights};
use std::collections::HashSet;
use std::sync::Mutex;

#[separable_conv(dk = 3, m = 32, n = 64, bias = true, activation = "relu6")]
struct Block;
#[pointwise_conv(m = 64, n = 96, bias = true)]
struct Expand;

fn rayon_pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}

#[test]
fn items_run_on_the_callers_rayon_pool() {
    let tp = rayon_pool(3);
    let threads = Mutex::new(HashSet::new());
    let pool = Pool::rayon();
    tp.install(|| {
        assert_eq!(pool.threads(), 3);
        pool.run(48, &|_| {
            // Long enough that the three threads share the items.
            std::thread::sleep(std::time::Duration::from_millis(2));
            threads
                .lock()
                .unwrap()
                .insert(rayon::current_thread_index().expect("on a rayon thread"));
        });
    });
    let threads = threads.into_inner().unwrap();
    assert!(threads.len() > 1, "items ran on {threads:?}");
    assert!(threads.iter().all(|&t| t < 3));
    assert!(
        !pool.started(),
        "a rayon-backed pool starts no thread of its own"
    );
}

#[test]
fn layers_on_rayon_give_the_bits_of_one_thread() {
    let b = Block::load(&OwnedWeights::for_layer::<Block>(3).view()).unwrap();
    let e = Expand::load(&values(96 * 64, 5), Some(&values(96, 6))).unwrap();
    // Tiles (61x47), stages (14x14), inline (4x4), and a batch of 3.
    let sizes = [(61, 47, 1), (14, 14, 1), (4, 4, 1), (14, 14, 3)];
    let run = |pool: &Pool| {
        pool.install(|| {
            sizes
                .iter()
                .map(|&(h, w, batch)| {
                    let x = values(batch * h * w * 32, (h * w) as u32);
                    let mut o = vec![0.0; batch * h * w * 64];
                    b.forward_batch(&x, batch, h, w, &mut o).unwrap();
                    let mut o2 = vec![0.0; batch * h * w * 96];
                    e.forward(&o, batch * h, w, &mut o2).unwrap();
                    (o, o2)
                })
                .collect::<Vec<_>>()
        })
    };
    let one = run(&Pool::new(1));
    for threads in [2, 3] {
        let tp = rayon_pool(threads);
        let got = tp.install(|| run(&Pool::rayon()));
        assert!(got == one, "{threads} rayon threads");
    }
}
