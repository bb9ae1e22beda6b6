//! The scalar backend: portable kernels with the taps of interior pixels unrolled and every
//! trip count a constant of the layer. It compiles on every target, is the fallback of the
//! SIMD backends, and uses only safe indexing. It reads the same packed weights as the
//! vector backends (tap-major depthwise weights padded to `CP` channels, pointwise panels).

use super::activate_scalar;
use crate::plan::{Plan, PANEL_WIDTH};
use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote};

/// `fn NAME(&self, input, h, w, wo, first_pixel, out)`: depthwise output for the pixels
/// `first_pixel .. first_pixel + out.len() / C` (row-major over the `ho x wo` output grid).
pub fn depthwise(plan: &Plan, name: &Ident) -> TokenStream {
    let s = &plan.shape;
    let (dk, m, dm, stride, d, window, c, cp) = (
        s.dk,
        s.m,
        s.depth_multiplier,
        s.stride,
        s.dilation,
        s.window(),
        plan.channels,
        plan.weight_stride,
    );

    // Interior: one slice per kernel row, then every tap unrolled in (ky, kx) order; past
    // the unrolling limit, a loop over the kernel rows with one row's taps unrolled.
    let row_loop = plan.depthwise.row_loop;
    let rows: Vec<Ident> = (0..dk).map(|ky| format_ident!("row_{}", ky)).collect();
    let row_len = window * m;
    // The unrolled path's row slices (the row loop takes its row inside the loop).
    let row_slices = (!row_loop).then(|| {
        let slices = rows.iter().enumerate().map(|(ky, row)| {
            let start = if ky == 0 {
                quote!(base)
            } else {
                let dy = ky * d;
                quote!(base + #dy * w * #m)
            };
            quote!(let #row = &input[#start..#start + #row_len];)
        });
        quote!(#(#slices)*)
    });
    let taps: Vec<TokenStream> = if row_loop {
        let row_taps = (0..dk).map(|kx| {
            let (column, weight) = (kx * d * m, kx * cp);
            quote!(acc += row[#column + ci] * wrow[#weight + o];)
        });
        vec![quote! {
            for ky in 0..#dk {
                let start = base + ky * #d * w * #m;
                let row = &input[start..start + #row_len];
                let wrow = &self.dw[ky * #dk * #cp..(ky + 1) * #dk * #cp];
                #(#row_taps)*
            }
        }]
    } else {
        (0..dk)
            .flat_map(|ky| (0..dk).map(move |kx| (ky, kx)))
            .map(|(ky, kx)| {
                let row = &rows[ky];
                let (column, weight) = (kx * d * m, (ky * dk + kx) * cp);
                quote!(acc += #row[#column + ci] * self.dw[#weight + o];)
            })
            .collect()
    };
    let store = activate_scalar(plan.epilogue.activations.depthwise, quote!(acc));
    let signature = super::depthwise_signature(name, "_scratch");

    quote! {
        /// Depthwise stage of the scalar backend for a run of output pixels (no scratch needed).
        #[inline]
        pub(crate) #signature {
            let (pixels, _) = out.as_chunks_mut::<#c>();
            // Zeros above and left of the image (the rule's, for this size).
            let ::dsconv::Pads { top: pt, left: pl, .. } =
                Self::SHAPE.pads(h, w);
            for (i, px) in pixels.iter_mut().enumerate() {
                let p = first_pixel + i;
                // Window origin in padded coordinates; input row = y0 + ky * D - PT.
                let (y0, x0) = ((p / wo) * #stride, (p % wo) * #stride);
                if y0 >= pt && x0 >= pl && y0 - pt + #window <= h && x0 - pl + #window <= w {
                    let base = ((y0 - pt) * w + (x0 - pl)) * #m;
                    #row_slices
                    for ci in 0..#m {
                        for j in 0..#dm {
                            let o = ci * #dm + j;
                            let mut acc: f32 = self.dw_bias[o];
                            #(#taps)*
                            px[o] = #store;
                        }
                    }
                } else {
                    // Border: clip the tap range to the image (the skipped taps read padding).
                    let (ky_lo, ky_hi) = ::dsconv::__private::tap_range(y0, pt, h, #dk, #d);
                    let (kx_lo, kx_hi) = ::dsconv::__private::tap_range(x0, pl, w, #dk, #d);
                    for ci in 0..#m {
                        for j in 0..#dm {
                            let o = ci * #dm + j;
                            let mut acc: f32 = self.dw_bias[o];
                            for ky in ky_lo..ky_hi {
                                let row = (y0 + ky * #d - pt) * w;
                                for kx in kx_lo..kx_hi {
                                    acc += input[(row + x0 + kx * #d - pl) * #m + ci]
                                        * self.dw[(ky * #dk + kx) * #cp + o];
                                }
                            }
                            px[o] = #store;
                        }
                    }
                }
            }
        }
    }
}

/// `fn NAME(&self, input, pixels, out, [skip,] panels)`: pointwise stage over `pixels`
/// pixels, the weight panels `panels.0..panels.1` only.
pub fn pointwise(plan: &Plan, name: &Ident) -> TokenStream {
    let p = &plan.pointwise;
    let (k, n) = (p.k, p.n);
    let full_panels = p.full_panels;
    let rest = n - full_panels * PANEL_WIDTH;
    let tail_width = p.tail_panel_width;
    let activation = match plan.epilogue.activations.pointwise {
        dsconv_runtime::Activation::None => None,
        act => Some(activate_scalar(act, quote!(*v))),
    };
    // The activation, then (a residual layer's) skip, per value of the panel.
    let finish = {
        let act = activation.map(|a| quote!(*v = #a;));
        let skip = plan.epilogue.residual.then(|| {
            quote! {
                if let ::core::option::Option::Some(skip) = skip {
                    *v += skip[p * #n + first + j];
                }
            }
        });
        quote! {
            for (j, v) in cols.iter_mut().enumerate() {
                let _ = j;
                #act
                #skip
            }
        }
    };
    // One panel: `width` packed columns of which `valid` are output channels.
    let panel = |first_col: TokenStream, weights_at: TokenStream, width: usize, valid: usize| {
        quote! {
            let first = #first_col;
            let mut cols = [0.0f32; #valid];
            cols.copy_from_slice(&self.pw_bias[first..first + #valid]);
            let panel = &self.pw[#weights_at..#weights_at + #width * #k];
            let (weight_rows, _) = panel.as_chunks::<#width>();
            for (xk, row) in x.iter().zip(weight_rows.iter()) {
                for (yn, wn) in cols.iter_mut().zip(row.iter()) {
                    *yn += *xk * *wn;
                }
            }
            #finish
            // SAFETY: pixel p < pixels and columns first..first + valid < N lie in the
            // caller's `out` of `pixels * N` floats; no other caller writes these columns.
            unsafe { ::core::ptr::copy_nonoverlapping(cols.as_ptr(), out.add(p * #n + first), #valid) };
        }
    };
    let full = panel(
        quote!(panel_index * #PANEL_WIDTH),
        quote!(panel_index * #PANEL_WIDTH * #k),
        PANEL_WIDTH,
        PANEL_WIDTH,
    );
    let tail = (rest > 0).then(|| {
        let first = full_panels * PANEL_WIDTH;
        let at = full_panels * PANEL_WIDTH * k;
        let body = panel(quote!(#first), quote!(#at), tail_width, rest);
        quote!(if panels.1 > #full_panels { #body })
    });
    let signature = super::pointwise_signature(plan, name, "_pixels");
    quote! {
        /// Pointwise stage of the scalar backend for a run of pixels.
        ///
        /// # Safety
        /// `out` holds `pixels * N` floats (`input.len() / K` pixels).
        #[inline]
        #[allow(unused_unsafe)]
        pub(crate) unsafe #signature {
            let (inputs, _) = input.as_chunks::<#k>();
            for (p, x) in inputs.iter().enumerate() {
                for panel_index in panels.0..panels.1.min(#full_panels) {
                    #full
                }
                #tail
            }
        }
    }
}
