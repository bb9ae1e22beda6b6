//! A bad `DSCONV_BACKEND` is reported when a layer is built, as `Error::UnknownBackend`,
//! not first at its first call. Its own process (the variable is read once per process),
//! on the main thread (runs under qemu too).

use dsconv::{separable_conv, Error, BACKEND_ENV};

#[separable_conv(dk = 3, m = 4, n = 8)]
struct Layer;

fn main() {
    // SAFETY (set_var): no other thread exists yet in this harness-less test.
    std::env::set_var(BACKEND_ENV, "avx3");
    let unknown = Error::UnknownBackend {
        value: "avx3".into(),
    };
    let built = Layer::from_weights(&[0.5; 4 * 9], &[0.25; 8 * 4]);
    assert_eq!(built.err(), Some(unknown.clone()));
    let message = format!("{:?}", unknown);
    assert!(
        message.contains("DSCONV_BACKEND names no backend"),
        "{message}"
    );
    println!("test bad DSCONV_BACKEND fails at construction ... ok");
}
