//! Spelling of vector operations per ISA: the only place that knows intrinsic names.
//! The SIMD emitter is written once against these helpers.

use dsconv_runtime::Activation;
use dsconv_runtime::Backend;
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

/// Token spellings of the vector operations of one SIMD ISA.
#[derive(Clone, Copy, Debug)]
pub struct VectorOps {
    /// The ISA.
    pub isa: Backend,
}

impl VectorOps {
    /// Lanes per vector.
    pub fn lanes(&self) -> usize {
        self.isa.lanes()
    }

    /// `#[cfg(target_arch = ..)]` for code using this ISA (the table's architecture).
    pub fn cfg(&self) -> TokenStream {
        match self.isa.arch() {
            Some(arch) => quote!(#[cfg(target_arch = #arch)]),
            None => quote!(),
        }
    }

    /// `#[target_feature(enable = ..)]` with the table's features of this ISA: the features
    /// `Backend::is_available` checks before a kernel runs.
    pub fn target_feature(&self) -> TokenStream {
        let features = self.isa.target_feature_list();
        if features.is_empty() {
            quote!()
        } else {
            quote!(#[target_feature(enable = #features)])
        }
    }

    /// `use ::core::arch::<arch>::*;`
    pub fn import(&self) -> TokenStream {
        match self.isa.arch() {
            Some(arch) => {
                let arch = format_ident!("{}", arch);
                quote!(use ::core::arch::#arch::*;)
            }
            None => quote!(),
        }
    }

    /// The vector type.
    pub fn ty(&self) -> TokenStream {
        match self.isa {
            Backend::Avx2 => quote!(__m256),
            Backend::Avx512 => quote!(__m512),
            Backend::Neon => quote!(float32x4_t),
            Backend::Scalar => quote!(f32),
        }
    }

    /// All lanes zero.
    pub fn zero(&self) -> TokenStream {
        match self.isa {
            Backend::Avx2 => quote!(_mm256_setzero_ps()),
            Backend::Avx512 => quote!(_mm512_setzero_ps()),
            Backend::Neon => quote!(vdupq_n_f32(0.0)),
            Backend::Scalar => quote!(0.0f32),
        }
    }

    /// All lanes `value` (an f32 expression).
    pub fn splat(&self, value: TokenStream) -> TokenStream {
        match self.isa {
            Backend::Avx2 => quote!(_mm256_set1_ps(#value)),
            Backend::Avx512 => quote!(_mm512_set1_ps(#value)),
            Backend::Neon => quote!(vdupq_n_f32(#value)),
            Backend::Scalar => value,
        }
    }

    /// All lanes `*ptr` (a `*const f32` expression).
    pub fn broadcast(&self, ptr: TokenStream) -> TokenStream {
        match self.isa {
            Backend::Avx2 => quote!(_mm256_broadcast_ss(&*#ptr)),
            Backend::Avx512 => quote!(_mm512_set1_ps(*#ptr)),
            Backend::Neon => quote!(vld1q_dup_f32(#ptr)),
            Backend::Scalar => quote!(*#ptr),
        }
    }

    /// A prefetch of the cache line at `ptr` into L1 (or only into L2 when `l2`), where the
    /// backend has one on stable Rust (x86; `core::arch::aarch64`'s prefetch is unstable).
    /// Prefetches never fault, so `ptr` may lie outside any allocation (compute it with
    /// `wrapping_add`).
    pub fn prefetch(&self, ptr: TokenStream, l2: bool) -> Option<TokenStream> {
        match self.isa {
            Backend::Avx2 | Backend::Avx512 if l2 => {
                Some(quote!(_mm_prefetch::<_MM_HINT_T1>(#ptr as *const i8)))
            }
            Backend::Avx2 | Backend::Avx512 => {
                Some(quote!(_mm_prefetch::<_MM_HINT_T0>(#ptr as *const i8)))
            }
            Backend::Neon | Backend::Scalar => None,
        }
    }

    /// Unaligned load of a whole vector.
    pub fn load(&self, ptr: TokenStream) -> TokenStream {
        match self.isa {
            Backend::Avx2 => quote!(_mm256_loadu_ps(#ptr)),
            Backend::Avx512 => quote!(_mm512_loadu_ps(#ptr)),
            Backend::Neon => quote!(vld1q_f32(#ptr)),
            Backend::Scalar => quote!(*#ptr),
        }
    }

    /// Unaligned store of a whole vector.
    pub fn store(&self, ptr: TokenStream, value: TokenStream) -> TokenStream {
        match self.isa {
            Backend::Avx2 => quote!(_mm256_storeu_ps(#ptr, #value)),
            Backend::Avx512 => quote!(_mm512_storeu_ps(#ptr, #value)),
            Backend::Neon => quote!(vst1q_f32(#ptr, #value)),
            Backend::Scalar => quote!(*#ptr = #value),
        }
    }

    /// The mask enabling the first `count` lanes (AVX2: a vector, AVX-512: a mask register;
    /// nothing for ISAs without masked memory operations).
    fn lane_mask(&self, count: &TokenStream) -> TokenStream {
        match self.isa {
            Backend::Avx2 => quote!(_mm256_cmpgt_epi32(
                _mm256_set1_epi32((#count) as i32),
                _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
            )),
            Backend::Avx512 => quote!(((1u32 << (#count)) - 1) as __mmask16),
            Backend::Neon | Backend::Scalar => quote!(),
        }
    }

    /// Loads the first `count` lanes (a `usize` expression in `1..lanes`) and zeroes the
    /// others, touching no memory past `ptr + count`.
    pub fn load_partial(&self, ptr: TokenStream, count: TokenStream) -> TokenStream {
        let mask = self.lane_mask(&count);
        let lanes = self.lanes();
        match self.isa {
            Backend::Avx2 => quote!(_mm256_maskload_ps(
                #ptr,
                #mask,
            )),
            Backend::Avx512 => quote!(_mm512_maskz_loadu_ps(
                #mask,
                #ptr,
            )),
            Backend::Neon => quote!({
                let mut buf = [0.0f32; #lanes];
                ::core::ptr::copy_nonoverlapping(#ptr, buf.as_mut_ptr(), #count);
                vld1q_f32(buf.as_ptr())
            }),
            Backend::Scalar => quote!(*#ptr),
        }
    }

    /// Loads `count` floats from `ptr` (touching no memory past `ptr + count`) and repeats
    /// each `dm` times: lane `i` of the result is `ptr[i / dm]` for `i < count * dm`, and
    /// unspecified (but initialised) above. `dm` divides the lanes; `count * dm <= lanes`.
    ///
    /// One float is a broadcast. Otherwise one permute repeats the lanes of a load that is
    /// as narrow as the floats needed: on AVX2 a 128- or 64-bit load (no mask register
    /// beside the block's accumulators and weights) or, for tails, a masked load; on AVX-512
    /// a masked load (its mask lives in a mask register).
    pub fn load_expanded(&self, ptr: TokenStream, count: usize, dm: usize) -> TokenStream {
        let lanes = self.lanes();
        assert!(dm > 1 && lanes.is_multiple_of(dm) && count >= 1 && count * dm <= lanes);
        if count == 1 {
            return self.broadcast(ptr);
        }
        // Lane i takes source lane i / dm; lanes past count * dm repeat the last source.
        let index = (0..lanes).map(|i| ((i / dm).min(count - 1)) as i32);
        match self.isa {
            Backend::Avx2 => {
                let narrow = match count {
                    4 => quote!(_mm256_castps128_ps256(_mm_loadu_ps(#ptr))),
                    2 => quote!(_mm256_castps128_ps256(_mm_castsi128_ps(_mm_loadl_epi64(
                        #ptr as *const __m128i
                    )))),
                    _ => self.load_partial(ptr, quote!(#count)),
                };
                quote!(_mm256_permutevar8x32_ps(
                    #narrow,
                    _mm256_setr_epi32(#(#index),*),
                ))
            }
            Backend::Avx512 => {
                let partial = self.load_partial(ptr, quote!(#count));
                quote!(_mm512_permutexvar_ps(
                    _mm512_setr_epi32(#(#index),*),
                    #partial,
                ))
            }
            // Four lanes and count >= 2: two channels, each twice.
            Backend::Neon => quote!({
                let pair = vld1_f32(#ptr);
                let both = vcombine_f32(pair, pair);
                vzip1q_f32(both, both)
            }),
            Backend::Scalar => unreachable!("the scalar backend has no lanes to expand"),
        }
    }

    /// Stores the first `count` lanes, touching no memory past `ptr + count`.
    pub fn store_partial(
        &self,
        ptr: TokenStream,
        value: TokenStream,
        count: TokenStream,
    ) -> TokenStream {
        let mask = self.lane_mask(&count);
        let lanes = self.lanes();
        match self.isa {
            Backend::Avx2 => quote!(_mm256_maskstore_ps(
                #ptr,
                #mask,
                #value,
            )),
            Backend::Avx512 => quote!(_mm512_mask_storeu_ps(
                #ptr,
                #mask,
                #value,
            )),
            Backend::Neon => quote!({
                let mut buf = [0.0f32; #lanes];
                vst1q_f32(buf.as_mut_ptr(), #value);
                ::core::ptr::copy_nonoverlapping(buf.as_ptr(), #ptr, #count);
            }),
            Backend::Scalar => quote!(*#ptr = #value),
        }
    }

    /// `a + b`.
    pub fn add(&self, a: TokenStream, b: TokenStream) -> TokenStream {
        match self.isa {
            Backend::Avx2 => quote!(_mm256_add_ps(#a, #b)),
            Backend::Avx512 => quote!(_mm512_add_ps(#a, #b)),
            Backend::Neon => quote!(vaddq_f32(#a, #b)),
            Backend::Scalar => quote!(#a + #b),
        }
    }

    /// `acc + a * b`, fused.
    pub fn fma(&self, acc: TokenStream, a: TokenStream, b: TokenStream) -> TokenStream {
        match self.isa {
            Backend::Avx2 => quote!(_mm256_fmadd_ps(#a, #b, #acc)),
            Backend::Avx512 => quote!(_mm512_fmadd_ps(#a, #b, #acc)),
            Backend::Neon => quote!(vfmaq_f32(#acc, #a, #b)),
            Backend::Scalar => quote!(#acc + #a * #b),
        }
    }

    /// `act(value)`, NaN-propagating like the reference: x86 `max`/`min` return their second
    /// operand when either is NaN, so the value goes second; NEON propagates NaN itself.
    pub fn activate(&self, activation: Activation, value: TokenStream) -> TokenStream {
        let zero = self.zero();
        let six = self.splat(quote!(6.0f32));
        let (max, min) = match self.isa {
            Backend::Avx2 => (quote!(_mm256_max_ps), quote!(_mm256_min_ps)),
            Backend::Avx512 => (quote!(_mm512_max_ps), quote!(_mm512_min_ps)),
            Backend::Neon => (quote!(vmaxq_f32), quote!(vminq_f32)),
            Backend::Scalar => return super::activate_scalar(activation, value),
        };
        match activation {
            Activation::None => value,
            Activation::Relu => quote!(#max(#zero, #value)),
            Activation::Relu6 => quote!(#min(#six, #max(#zero, #value))),
        }
    }
}
