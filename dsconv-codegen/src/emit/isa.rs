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

    /// Loads `count` floats from `ptr` into the low lanes, touching no memory past
    /// `ptr + count`; the other lanes are unspecified (but initialised). One float is a
    /// broadcast, a power of two below the lanes a narrower plain load, the lanes a whole
    /// vector, any other count a masked load.
    pub fn load_floats(&self, ptr: TokenStream, count: usize) -> TokenStream {
        let lanes = self.lanes();
        assert!(count >= 1 && count <= lanes);
        if count == lanes {
            return self.load(ptr);
        }
        if count == 1 {
            return self.broadcast(ptr);
        }
        if !count.is_power_of_two() {
            return self.load_partial(ptr, quote!(#count));
        }
        match (self.isa, count) {
            (Backend::Avx2 | Backend::Avx512, 2) => {
                let pair = quote!(_mm_castsi128_ps(_mm_loadl_epi64(#ptr as *const __m128i)));
                self.widen_128(pair)
            }
            (Backend::Avx2 | Backend::Avx512, 4) => self.widen_128(quote!(_mm_loadu_ps(#ptr))),
            (Backend::Avx512, 8) => quote!(_mm512_castps256_ps512(_mm256_loadu_ps(#ptr))),
            (Backend::Neon, 2) => quote!({
                let pair = vld1_f32(#ptr);
                vcombine_f32(pair, pair)
            }),
            _ => unreachable!("{} has no {count}-float load", self.isa),
        }
    }

    /// A 128-bit vector as the low lanes of a full one.
    fn widen_128(&self, v: TokenStream) -> TokenStream {
        match self.isa {
            Backend::Avx2 => quote!(_mm256_castps128_ps256(#v)),
            Backend::Avx512 => quote!(_mm512_castps128_ps512(#v)),
            _ => v,
        }
    }

    /// The element type of a permute table's rows and the row for `indices` (lane `l` takes
    /// lane `indices[l]`): 32-bit lane indices on x86, byte indices (4 per lane, for a table
    /// lookup) on NEON.
    pub fn permute_row(&self, indices: &[usize]) -> (TokenStream, TokenStream) {
        match self.isa {
            Backend::Neon => {
                let bytes = indices
                    .iter()
                    .flat_map(|&i| (0..4).map(move |b| (4 * i + b) as u8));
                (quote!([u8; 16]), quote!([#(#bytes),*]))
            }
            _ => {
                let lanes = self.lanes();
                let idx = indices.iter().map(|&i| i as i32);
                (quote!([i32; #lanes]), quote!([#(#idx),*]))
            }
        }
    }

    /// The permute index vector of the table row at `row` (a pointer to a row of
    /// [`Self::permute_row`]'s type).
    pub fn load_permute(&self, row: TokenStream) -> TokenStream {
        match self.isa {
            Backend::Avx2 => quote!(_mm256_loadu_si256(#row as *const __m256i)),
            Backend::Avx512 => quote!(_mm512_loadu_epi32(#row as *const i32)),
            Backend::Neon => quote!(vld1q_u8(#row as *const u8)),
            Backend::Scalar => unreachable!("the scalar backend has no lanes to permute"),
        }
    }

    /// `value` with lane `l` taken from lane `index[l]` (`index` from [`Self::load_permute`]).
    pub fn permute(&self, value: TokenStream, index: TokenStream) -> TokenStream {
        match self.isa {
            Backend::Avx2 => quote!(_mm256_permutevar8x32_ps(#value, #index)),
            Backend::Avx512 => quote!(_mm512_permutexvar_ps(#index, #value)),
            Backend::Neon => quote!(vreinterpretq_f32_u8(vqtbl1q_u8(
                vreinterpretq_u8_f32(#value),
                #index
            ))),
            Backend::Scalar => unreachable!("the scalar backend has no lanes to permute"),
        }
    }

    /// The type of a permute index vector.
    pub fn permute_ty(&self) -> TokenStream {
        match self.isa {
            Backend::Avx2 => quote!(__m256i),
            Backend::Avx512 => quote!(__m512i),
            Backend::Neon => quote!(uint8x16_t),
            Backend::Scalar => unreachable!("the scalar backend has no lanes to permute"),
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

    /// `a op b` for `op` one of the lane-wise binary operations.
    pub fn binary(&self, op: Binary, a: TokenStream, b: TokenStream) -> TokenStream {
        let name = match (self.isa, op) {
            (Backend::Scalar, _) => {
                return match op {
                    Binary::Sub => quote!(#a - #b),
                    Binary::Mul => quote!(#a * #b),
                    Binary::Div => quote!(#a / #b),
                    Binary::Max => quote!(if #a > #b { #a } else { #b }),
                    Binary::Min => quote!(if #a < #b { #a } else { #b }),
                }
            }
            (Backend::Avx2, Binary::Sub) => "_mm256_sub_ps",
            (Backend::Avx2, Binary::Mul) => "_mm256_mul_ps",
            (Backend::Avx2, Binary::Div) => "_mm256_div_ps",
            (Backend::Avx2, Binary::Max) => "_mm256_max_ps",
            (Backend::Avx2, Binary::Min) => "_mm256_min_ps",
            (Backend::Avx512, Binary::Sub) => "_mm512_sub_ps",
            (Backend::Avx512, Binary::Mul) => "_mm512_mul_ps",
            (Backend::Avx512, Binary::Div) => "_mm512_div_ps",
            (Backend::Avx512, Binary::Max) => "_mm512_max_ps",
            (Backend::Avx512, Binary::Min) => "_mm512_min_ps",
            (Backend::Neon, Binary::Sub) => "vsubq_f32",
            (Backend::Neon, Binary::Mul) => "vmulq_f32",
            (Backend::Neon, Binary::Div) => "vdivq_f32",
            (Backend::Neon, Binary::Max) => "vmaxq_f32",
            (Backend::Neon, Binary::Min) => "vminq_f32",
        };
        let name = format_ident!("{}", name);
        quote!(#name(#a, #b))
    }

    /// `-|x|`.
    fn neg_abs(&self, x: TokenStream) -> TokenStream {
        match self.isa {
            Backend::Avx2 => quote!(_mm256_or_ps(#x, _mm256_set1_ps(-0.0))),
            Backend::Avx512 => quote!(_mm512_castsi512_ps(_mm512_or_si512(
                _mm512_castps_si512(#x),
                _mm512_set1_epi32(i32::MIN)
            ))),
            Backend::Neon => quote!(vnegq_f32(vabsq_f32(#x))),
            Backend::Scalar => quote!(-(#x).abs()),
        }
    }

    /// Lane by lane, `a` where `x` is below zero, else `b`. AVX2 tests the sign bit, so `-0`
    /// picks `a` there: the callers' two branches agree at `-0`.
    fn select_negative(&self, x: TokenStream, a: TokenStream, b: TokenStream) -> TokenStream {
        match self.isa {
            Backend::Avx2 => quote!(_mm256_blendv_ps(#b, #a, #x)),
            Backend::Avx512 => quote!(_mm512_mask_blend_ps(
                _mm512_cmp_ps_mask::<_CMP_LT_OQ>(#x, _mm512_setzero_ps()),
                #b,
                #a
            )),
            Backend::Neon => quote!(vbslq_f32(vcltzq_f32(#x), #a, #b)),
            Backend::Scalar => quote!(if #x < 0.0 { #a } else { #b }),
        }
    }

    /// The float whose bits are `t`'s shifted left by 23 (`2^(k + SCALE)` for `t = y *
    /// log2(e) + MAGIC`, see `dsconv_runtime::activation::silu`).
    fn exp_scale(&self, t: TokenStream) -> TokenStream {
        use dsconv_runtime::activation::silu_consts::MANTISSA_BITS;
        // Unsuffixed: the shift intrinsics' const parameter is i32 on AVX2, u32 on AVX-512.
        let shift = proc_macro2::Literal::u32_unsuffixed(MANTISSA_BITS);
        match self.isa {
            Backend::Avx2 => {
                quote!(_mm256_castsi256_ps(_mm256_slli_epi32::<#shift>(_mm256_castps_si256(#t))))
            }
            Backend::Avx512 => {
                quote!(_mm512_castsi512_ps(_mm512_slli_epi32::<#shift>(_mm512_castps_si512(#t))))
            }
            Backend::Neon => {
                quote!(vreinterpretq_f32_s32(vshlq_n_s32::<#shift>(vreinterpretq_s32_f32(#t))))
            }
            Backend::Scalar => unreachable!("the scalar backend calls Activation::apply"),
        }
    }

    /// `act(value)`, NaN-propagating like the reference: x86 `max`/`min` return their second
    /// operand when either is NaN, so the value goes second; NEON propagates NaN itself.
    /// Hard-swish and SiLU follow `dsconv_runtime::activation::{hardswish, silu}` step by
    /// step, with the same constants.
    pub fn activate(&self, activation: Activation, value: TokenStream) -> TokenStream {
        if self.isa == Backend::Scalar {
            return super::activate_scalar(activation, value);
        }
        let zero = self.zero();
        let six = self.splat(quote!(6.0f32));
        let max = |a, b| self.binary(Binary::Max, a, b);
        let min = |a, b| self.binary(Binary::Min, a, b);
        let mul = |a, b| self.binary(Binary::Mul, a, b);
        match activation {
            Activation::None => value,
            Activation::Relu => max(zero, value),
            Activation::Relu6 => min(six.clone(), max(zero, value)),
            Activation::HardSwish => {
                let ty = self.ty();
                let xc = max(self.splat(quote!(-3.0f32)), value);
                let t = self.add(quote!(xc), self.splat(quote!(3.0f32)));
                let t = min(six, max(zero, t));
                // xc * (t / 6): the factor is in [0, 1], so nothing overflows.
                let out = mul(quote!(xc), mul(t, self.splat(quote!((1.0f32 / 6.0)))));
                quote!({
                    let xc: #ty = #xc;
                    #out
                })
            }
            Activation::Silu => self.silu(value),
        }
    }

    /// SiLU of a vector, `dsconv_runtime::activation::silu` lane by lane.
    fn silu(&self, value: TokenStream) -> TokenStream {
        use dsconv_runtime::activation::silu_consts::{
            EXP_POLY, LN2_HI, LN2_LO, LOG2E, LOWER, MAGIC, UNSCALE,
        };
        let ty = self.ty();
        let c = |v: f32| self.splat(quote!(#v));
        let bin = |op, a, b| self.binary(op, a, b);
        let lower = c(LOWER);
        let xc = bin(Binary::Max, lower.clone(), value);
        let y = bin(Binary::Max, lower, self.neg_abs(quote!(xc)));
        let t = self.fma(c(MAGIC), quote!(y), c(LOG2E));
        let kf = bin(Binary::Sub, quote!(t), c(MAGIC));
        let r_hi = self.fma(quote!(y), quote!(kf), c(-LN2_HI));
        let r = self.fma(quote!(r), quote!(kf), c(-LN2_LO));
        let horner = EXP_POLY[1..].iter().map(|&k| {
            let step = self.fma(c(k), quote!(p), quote!(r));
            quote!(p = #step;)
        });
        let p0 = c(EXP_POLY[0]);
        let q = bin(Binary::Mul, quote!(p), self.exp_scale(quote!(t)));
        let e = bin(Binary::Mul, quote!(q), c(UNSCALE));
        let one = c(1.0);
        let a = self.select_negative(quote!(xc), quote!(q), one.clone());
        let b = self.select_negative(quote!(xc), c(UNSCALE), one.clone());
        let den = self.add(one, quote!(e));
        let out = bin(
            Binary::Mul,
            bin(Binary::Div, bin(Binary::Mul, quote!(xc), a), den),
            b,
        );
        quote!({
            let xc: #ty = #xc;
            let y: #ty = #y;
            let t: #ty = #t;
            let kf: #ty = #kf;
            let r: #ty = #r_hi;
            let r: #ty = #r;
            let mut p: #ty = #p0;
            #(#horner)*
            let q: #ty = #q;
            let e: #ty = #e;
            #out
        })
    }
}

/// The lane-wise binary operations of [`VectorOps::binary`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binary {
    /// `a - b`.
    Sub,
    /// `a * b`.
    Mul,
    /// `a / b`.
    Div,
    /// The larger; x86 returns `b` when either is NaN.
    Max,
    /// The smaller; x86 returns `b` when either is NaN.
    Min,
}
