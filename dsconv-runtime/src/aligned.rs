//! Heap storage of `f32` aligned to 64 bytes: a cache line, and one AVX-512 vector.
//!
//! A vector load that starts 16 bytes into a cache line straddles two lines, and on the
//! depthwise stage (which loads every input vector several times) that costs up to 1.8x
//! (L5 of MobileNetV1, measured: 64 µs with `Vec<f32>` buffers at 16 bytes past a line,
//! 36 µs with aligned ones). Layers keep their packed weights and scratch in this storage;
//! [`AlignedBuf`] offers the same to callers for inputs and outputs.

use std::fmt;
use std::ops::{Deref, DerefMut};

/// Floats per 64-byte line.
const LINE_FLOATS: usize = 16;

/// One cache line of floats. `repr(C)` over an array of `f32`: no padding, so a run of
/// lines is a run of floats.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([f32; LINE_FLOATS]);

const ZERO_LINE: Line = Line([0.0; LINE_FLOATS]);

/// Zeroed lines holding at least `len` floats.
fn lines_for(len: usize) -> Vec<Line> {
    vec![ZERO_LINE; len.div_ceil(LINE_FLOATS)]
}

fn floats(lines: &[Line], len: usize) -> &[f32] {
    assert!(len <= lines.len() * LINE_FLOATS, "aligned storage: length");
    // SAFETY: `Line` is `repr(C)` over `[f32; 16]` (size 64, no padding), so `lines` is
    // `lines.len() * 16` initialised, contiguous floats, and `len` does not exceed that.
    unsafe { std::slice::from_raw_parts(lines.as_ptr().cast::<f32>(), len) }
}

fn floats_mut(lines: &mut [Line], len: usize) -> &mut [f32] {
    assert!(len <= lines.len() * LINE_FLOATS, "aligned storage: length");
    // SAFETY: as in `floats`, and the exclusive borrow of `lines` is handed on.
    unsafe { std::slice::from_raw_parts_mut(lines.as_mut_ptr().cast::<f32>(), len) }
}

/// A heap buffer of `f32` whose first element is 64-byte aligned.
///
/// Dereferences to `[f32]`. Passing inputs and outputs in aligned buffers keeps every vector
/// load and store of the kernels within one cache line when the channel count is a multiple
/// of 16; any `&[f32]` works, only slower when misaligned.
///
/// ```
/// let mut out = dsconv_runtime::AlignedBuf::zeroed(8 * 8 * 256);
/// assert_eq!(out.as_ptr() as usize % 64, 0);
/// out[0] = 1.0;
/// assert_eq!(out.len(), 16384);
/// ```
#[derive(Clone, Default)]
pub struct AlignedBuf {
    lines: Vec<Line>,
    len: usize,
}

impl AlignedBuf {
    /// `len` zeros.
    pub fn zeroed(len: usize) -> Self {
        AlignedBuf {
            lines: lines_for(len),
            len,
        }
    }

    /// A copy of `values`.
    pub fn from_slice(values: &[f32]) -> Self {
        let mut buf = Self::zeroed(values.len());
        buf.copy_from_slice(values);
        buf
    }

    /// Grows to at least `len` floats (new ones zero), keeping the contents; never shrinks.
    pub fn grow_to(&mut self, len: usize) {
        if len > self.len {
            self.lines.resize(len.div_ceil(LINE_FLOATS), ZERO_LINE);
            self.len = len;
        }
    }
}

impl Deref for AlignedBuf {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        floats(&self.lines, self.len)
    }
}

impl DerefMut for AlignedBuf {
    fn deref_mut(&mut self) -> &mut [f32] {
        floats_mut(&mut self.lines, self.len)
    }
}

impl From<&[f32]> for AlignedBuf {
    fn from(values: &[f32]) -> Self {
        Self::from_slice(values)
    }
}

impl fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl PartialEq for AlignedBuf {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

/// Exactly `N` floats, 64-byte aligned, dereferencing to `[f32; N]` so kernels index it
/// with constants and no bounds checks survive. Built on the heap, never on the stack.
#[derive(Clone)]
pub struct AlignedArray<const N: usize> {
    lines: Box<[Line]>,
}

impl<const N: usize> AlignedArray<N> {
    /// A copy of `values`, or `None` if it does not hold exactly `N` floats.
    pub fn from_slice(values: &[f32]) -> Option<Self> {
        if values.len() != N {
            return None;
        }
        let mut lines = lines_for(N).into_boxed_slice();
        floats_mut(&mut lines, N).copy_from_slice(values);
        Some(AlignedArray { lines })
    }
}

/// A summary (`AlignedArray<N> [first values, ...]`), not megabytes of weights: what a
/// user's `#[derive(Debug)]` on a layer prints for its packed tensors.
impl<const N: usize> fmt::Debug for AlignedArray<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let head = &self[..N.min(4)];
        write!(f, "AlignedArray<{N}> {head:?}")?;
        if N > 4 {
            f.write_str(" ..")?;
        }
        Ok(())
    }
}

impl<const N: usize> Deref for AlignedArray<N> {
    type Target = [f32; N];
    fn deref(&self) -> &[f32; N] {
        // SAFETY: `from_slice`, the only constructor, allocates lines for at least `N`
        // floats, all initialised, contiguous and 64-byte aligned (see `floats`).
        unsafe { &*self.lines.as_ptr().cast::<[f32; N]>() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_aligned_and_zeroed_and_grow_keeping_contents() {
        let mut b = AlignedBuf::zeroed(3);
        assert_eq!(b.as_ptr() as usize % 64, 0);
        assert_eq!(&*b, &[0.0; 3]);
        b[2] = 5.0;
        b.grow_to(40);
        assert_eq!(b.len(), 40);
        assert_eq!(b.as_ptr() as usize % 64, 0);
        assert_eq!(b[2], 5.0);
        assert!(b[3..].iter().all(|&v| v == 0.0));
        b.grow_to(10);
        assert_eq!(b.len(), 40);
        assert_eq!(AlignedBuf::zeroed(0).len(), 0);
    }

    #[test]
    fn arrays_copy_exactly_n_values() {
        let a = AlignedArray::<5>::from_slice(&[1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
        assert_eq!(a.as_ptr() as usize % 64, 0);
        assert_eq!(*a, [1.0, 2.0, 3.0, 4.0, 5.0]);
        assert!(AlignedArray::<5>::from_slice(&[1.0]).is_none());
        assert_eq!(AlignedArray::<0>::from_slice(&[]).unwrap().len(), 0);
    }
}
