//! The vector backends (AVX2, AVX-512, NEON), written once against [`VectorOps`].
//!
//! Depthwise: channels across lanes (NHWC), for each channel vector a sliding window along
//! the row: a block computes several output pixels, loading each input vector once per
//! kernel row and feeding it to every tap of the block it meets; taps unrolled. The first
//! and last block of a row are edge blocks that leave out the columns outside the image;
//! pixels no block covers run the taps that read the image through per-pixel pointers, in
//! the edge blocks' order (padding taps skipped, as the edge blocks skip them, so a pixel
//! has the same bits whichever code computes it), so nothing outside the image is read; a
//! last, partial channel vector is a
//! whole vector over the last `lanes` channels, overlapping the one before (the plan's
//! `overlapped_tail`), or, alone or with expanded loads, uses masked loads and stores, as
//! do the two end vectors of a realigned call (the plan's
//! `realign`: vectors that start where an offset input's loads are aligned). With a depth
//! multiplier DM > 1, each input load takes the few input channels a vector reads and a
//! permute repeats each DM times, the load offset and permute per channel vector from the
//! plan's table
//! ([`DepthwiseStrategy::ExpandedChannelVectors`]).
//!
//! Pointwise: a register-tiled micro-kernel (rows of pixels x vectors of output channels),
//! generic over its row count and width so remainders are monomorphised copies, streaming
//! weights packed in panels at load time (or, for short reductions, holding a block's
//! weights in registers); the walk order and prefetches are plan decisions.

use super::isa::VectorOps;
use crate::plan::{
    ChannelVectorPlan, ColumnBlock, DepthwiseKernel, Expansion, PassRows, Plan, PointwiseOrder,
    PointwisePlan, PointwisePrefetch, WidthVectorPlan, PANEL_WIDTH,
};
use dsconv_runtime::drive::PlanarScratch;
use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote};

/// Names of a backend's generated functions.
pub struct KernelNames {
    /// Depthwise over a run of output pixels.
    pub depthwise: Ident,
    /// Pointwise over a run of pixels.
    pub pointwise: Ident,
    /// Pointwise micro-kernel.
    pub micro: Ident,
    /// `forward`: the fused tile walk over the two stages.
    pub forward: Ident,
}

impl KernelNames {
    /// The names for `isa_name`.
    pub fn new(isa_name: &str) -> Self {
        KernelNames {
            depthwise: format_ident!("__dsconv_depthwise_{}", isa_name),
            pointwise: format_ident!("__dsconv_pointwise_{}", isa_name),
            micro: format_ident!("__dsconv_pointwise_micro_{}", isa_name),
            forward: format_ident!("__dsconv_forward_{}", isa_name),
        }
    }
}

/// The depthwise function of a vector backend.
pub fn depthwise(plan: &Plan, names: &KernelNames) -> TokenStream {
    let ops = VectorOps { isa: plan.isa };
    let (cfg, feature, import) = (ops.cfg(), ops.target_feature(), ops.import());
    let name = &names.depthwise;
    let signature = super::depthwise_signature(name, "scratch");
    let cv = match &plan.depthwise.kernel {
        DepthwiseKernel::ChannelVectors(cv) => cv,
        DepthwiseKernel::WidthVectors(wv) => return width_depthwise(plan, wv, name),
        // The planner gives the scalar kernel to the scalar backend alone.
        DepthwiseKernel::Scalar => unreachable!("a vector backend's plan with the scalar kernel"),
    };
    let s = &plan.shape;
    let (dk, stride, d, window, c) = (s.dk, s.stride, s.dilation, s.window(), plan.channels);
    let (n_edge, span_edge) = (cv.edges.block, cv.edges.span);
    let tables = cv.expand.as_ref().map(|e| expand_tables(&ops, e));
    // Realigned vectors start `shift` channels into each pixel, where the input's loads
    // are aligned (every pixel is: the channels fill whole vectors), when the output is
    // as far off a vector boundary as the input, so its stores are aligned too; else (an
    // aligned scratch, as `forward` gives) they start at channel 0: the runtime's rule.
    let shift = cv.realign.then(|| {
        let lanes = cv.lanes;
        quote! {
            let shift = ::dsconv::__private::realign_shift(inp, outp, #lanes);
        }
    });
    // The channel vectors g0..g1 of a pass over a row run (the plan's groups; one pass
    // when they all fit in L1 together), in the order the runtime's walk takes them.
    let vectors = plan.depthwise.channel_vectors(c);
    let group = cv.group;
    let rows_budget = match cv.pass_rows {
        Some(PassRows {
            column_bytes,
            budget,
        }) => {
            quote!(::core::option::Option::Some((#column_bytes, #budget)))
        }
        None => quote!(::core::option::Option::None),
    };
    let pairs = cv.row_pairs;
    // The walk over the call's pixel runs, each run's pixels through `kernels`.
    let walk_with = |kernels: &PixelKernels| {
        let border = {
            let pointers = kernels.border_pointers();
            let body = kernels.over_channels(&|partial| kernels.border_pixel(partial));
            quote! {
                #pointers
                #body
            }
        };
        let EdgeCode {
            left_edge,
            find_right_edge,
            right_edge,
        } = edge_code(kernels);
        let interior_runs = cv.blocks.iter().map(|&n| {
            let body = kernels.over_channels(&|partial| kernels.interior_block(n, partial));
            quote! {
                while ox + #n <= b {
                    #body
                    ox += #n;
                }
            }
        });
        // Two-row blocks: the first row of a pair runs them over both rows where its own
        // interior blocks would start, and the second row skips the columns they covered.
        let paired_blocks = pairs.then(|| {
            let n = cv.blocks[0];
            let body = kernels.over_channels(&|partial| kernels.pair_block(n, partial));
            quote! {
                if ox == skip_from {
                    ox = skip_to;
                }
                if pair_here {
                    skip_from = ox;
                    // SAFETY: a pair is two whole rows of the run: the second's pixels follow.
                    let segb = seg.add(wo * #c);
                    while ox + #n <= b {
                        #body
                        ox += #n;
                    }
                    skip_to = ox;
                }
            }
        });
        // The border pixels left of the interior and right of it run the same code, once
        // in the generated function: a loop of two passes, the interior's blocks between.
        let row_walk = quote! {
                        let mut ox = ox0;
                        // A right edge block covers wo - N..wo when the run reaches the row's
                        // end, its first column is inside the image and 1..=PAD of its columns
                        // are not.
                        let mut right_missing = 0;
                        let mut stop = ox1;
                        #find_right_edge
                        #left_edge
                        let b = b.min(stop);
                        let mut right_side = false;
                        loop {
                            let border_end = if right_side { stop } else { a.min(stop) };
                            while ox < border_end {
                                #border
                                ox += 1;
                            }
                            if right_side {
                                break;
                            }
                            right_side = true;
                            #paired_blocks
                            #(#interior_runs)*
                        }
                        #right_edge
        };
        quote! {
            let walk = ::dsconv::__private::PassRuns::new(
                (first_pixel, end, w, wo), #vectors, #group, #rows_budget, #pairs,
            );
            for (g0, g1, run, rows) in walk {
                let ::dsconv::__private::RowRun { oy, ox0, ox1, offset } = run;
                // A pair of rows runs two-row blocks when both windows lie inside the image
                // vertically.
                let paired = rows == 2
                    && ::dsconv::__private::windows_inside_rows(oy, rows, #stride, pt, h, #dk, #d);
                let (mut skip_from, mut skip_to) = (usize::MAX, 0usize);
                for r in 0..rows {
                    let (oy, offset, pair_here) = (oy + r, offset + r * wo, paired && r == 0);
                    // Window rows in padded coordinates; input row = y0 + ky * D - PT, for
                    // the taps ky_lo..ky_hi that read the image.
                    let y0 = oy * #stride;
                    let (ky_lo, ky_hi) = ::dsconv::__private::tap_range(y0, pt, h, #dk, #d);
                    let a = interior_lo.clamp(ox0, ox1);
                    let b = interior_hi.clamp(a, ox1);
                    // SAFETY: pixel `offset` of the run < out.len() / C.
                    let seg = outp.add(offset * #c);
                    #row_walk
                }
            }
        }
    };
    // The realigned walk's end vectors load only their weights and bias masked, and it
    // walks whole vectors alone: it needs the plan's conditions (see `realign`).
    assert!(
        !cv.realign
            || (cv.tail_lanes.is_none()
                && cv.expand.is_none()
                && cv.weights_in_registers
                && !plan.depthwise.row_loop),
        "a realigned plan with a tail, expanded loads, weights in memory or looped rows"
    );
    let aligned = walk_with(&PixelKernels::new(plan, cv, &ops, false));
    // Realigned vectors: a walk of their own, so a call that does not realign runs
    // the code it ran before (a test inside its vector loop measured 4-6% slower on
    // the aligned depthwise stage of L5-L9).
    let walks = if cv.realign {
        let realigned = walk_with(&PixelKernels::new(plan, cv, &ops, true));
        // The layer's copy of the weights and bias for this shift, where the walk's weight
        // and bias loads are aligned too (the copies need a weight stride and a
        // padded bias of whole vectors).
        let (lanes, weights, padded) =
            (cv.lanes, plan.packed_depthwise_len(), plan.padded_channels);
        assert!(
            plan.weight_stride.is_multiple_of(lanes) && padded.is_multiple_of(lanes),
            "realigned weight copies need a weight stride and padded bias of whole vectors"
        );
        quote! {
            if shift == 0 {
                #aligned
            } else {
                // SAFETY: `realigned_copy` gives the start of a copy of the packed weights
                // (`#weights` floats), then the padded bias (`#padded`), inside
                // `dw_realigned` (`pack_realigned`'s layout), which the walk reads exactly
                // as it reads `dw` and `dw_bias`.
                let (wts, bias) = match ::dsconv::__private::realigned_copy(shift, #weights, #padded, #lanes) {
                    ::core::option::Option::Some(at) => {
                        let copy = self.dw_realigned.as_ptr().add(at);
                        (copy, copy.add(#weights))
                    }
                    ::core::option::Option::None => (wts, bias),
                };
                #realigned
            }
        }
    } else {
        aligned
    };
    quote! {
        /// Depthwise stage for output pixels `first_pixel..first_pixel + out.len() / C`
        /// (no scratch needed).
        ///
        /// # Safety
        /// The CPU supports the backend; `input` holds `h * w * M` floats of a valid input
        /// size with output width `wo`; `out.len()` is a multiple of `C` and the pixel run
        /// ends within the output grid.
        #cfg
        #feature
        #[allow(unused_unsafe, unused_comparisons, unused_variables, unused_mut)]
        pub(crate) unsafe #signature {
            #import
            let inp = input.as_ptr();
            let outp = out.as_mut_ptr();
            #shift
            let wts = self.dw.as_ptr();
            let bias = self.dw_bias.as_ptr();
            #tables
            let end = first_pixel + out.len() / #c;
            const EDGES: ::dsconv::__private::RowEdges = ::dsconv::__private::RowEdges {
                block: #n_edge,
                span: #span_edge,
                stride: #stride,
            };
            // Zeros above and left of the image (the rule's, for this size).
            let ::dsconv::Pads { top: pt, left: pl, .. } =
                Self::SHAPE.pads(h, w);
            // Interior columns: the whole window lies inside the row.
            let interior_lo = (pl + #stride - 1) / #stride;
            let interior_hi = if w + pl >= #window { (w + pl - #window) / #stride + 1 } else { 0 };
            #walks
        }
    }
}

/// The plan's expanded-load table as constants: each channel vector's first input channel
/// and its permute row.
fn expand_tables(ops: &VectorOps, e: &Expansion) -> TokenStream {
    let vectors = e.offsets.len();
    let offsets = &e.offsets;
    let rows: Vec<(TokenStream, TokenStream)> =
        e.indices.iter().map(|i| ops.permute_row(i)).collect();
    let index = (!e.is_broadcast()).then(|| {
        let ty = &rows[0].0;
        let rows = rows.iter().map(|(_, r)| r);
        quote!(static EXPAND_INDEX: [#ty; #vectors] = [#(#rows),*];)
    });
    quote! {
        const EXPAND_OFFSETS: [usize; #vectors] = [#(#offsets),*];
        #index
    }
}

/// The edge blocks of a row's channel-vector depthwise: code that runs the first block
/// (left) and the last (right, one variant per reachable count of missing columns).
struct EdgeCode {
    left_edge: Option<TokenStream>,
    find_right_edge: Option<TokenStream>,
    right_edge: Option<TokenStream>,
}

/// Edge blocks: the first and last `block` pixels of a row run as one block that skips its
/// out-of-image columns, instead of pixel by pixel through tap pointers (`border`). Whether
/// they apply is the runtime's `RowEdges` check (`EDGES`), with the plan's numbers.
fn edge_code(kernels: &PixelKernels<'_>) -> EdgeCode {
    let edges = &kernels.cv.edges;
    let n_edge = edges.block;
    // The first block of a row misses the row's left padding: one variant per left padding
    // the plan found reachable (one, unless the rule's pads depend on the width).
    let left_arms = edges.left_misses.iter().map(|&m| {
        let body = kernels.over_channels(&|partial| kernels.edge_block(n_edge, partial, m, 0));
        quote!(#m => {
            #body
            ox = #n_edge;
        })
    });
    let left_edge = (!edges.left_misses.is_empty()).then(|| {
        quote! {
            if ox == 0 && pl > 0 && EDGES.left_fits(w, ox1, pl) {
                match pl {
                    #(#left_arms)*
                    // Not reachable (the plan enumerated the pads); pixel by pixel if it were.
                    _ => {}
                }
            }
        }
    });
    // The last block of a row misses a few columns on the right, how many depending on the
    // width's parity for stride 2: one variant per count the plan found reachable.
    let right_arms = edges.right_misses.iter().map(|&m| {
        let body = kernels.over_channels(&|partial| kernels.edge_block(n_edge, partial, 0, m));
        quote!(#m => { #body })
    });
    let has_right = !edges.right_misses.is_empty();
    // Only the counts the plan enumerated run as an edge block; any other (not reachable)
    // leaves the row's last pixels to the border loop.
    let misses = &edges.right_misses;
    let find_right_edge = has_right.then(|| {
        quote! {
            right_missing = EDGES.right_missing(w, wo, ox0, ox1, pl);
            if !matches!(right_missing, #(#misses)|*) {
                debug_assert_eq!(right_missing, 0, "a right edge the plan did not enumerate");
                right_missing = 0;
            }
            if right_missing > 0 {
                stop = ox1 - #n_edge;
            }
        }
    });
    let right_edge = has_right.then(|| {
        quote! {
            if right_missing > 0 {
                // The block starts at `stop`, where the walk ended, or before it where the
                // left edge block overlapped it.
                ox = stop;
                match right_missing {
                    #(#right_arms)*
                    // Not reachable: `find_right_edge` keeps only these counts.
                    _ => {}
                }
                ox = ox1;
            }
        }
    });
    EdgeCode {
        left_edge,
        find_right_edge,
        right_edge,
    }
}

/// The runtime's scratch layout with the plan's numbers, as a constant expression.
fn scratch_layout(scratch: &PlanarScratch) -> TokenStream {
    let PlanarScratch {
        channels,
        window,
        stride,
        lanes,
    } = *scratch;
    quote! {
        ::dsconv::__private::PlanarScratch {
            channels: #channels,
            window: #window,
            stride: #stride,
            lanes: #lanes,
        }
    }
}

/// Floats of depthwise scratch for a run of `pixels` output pixels (an expression), as an
/// expression in `h`, `w` and `wo`: the plan's scratch layout's size, or 0 when the kernel
/// needs none.
pub fn depthwise_scratch(plan: &Plan, pixels: TokenStream) -> TokenStream {
    match plan.depthwise.scratch() {
        Some(scratch) => {
            let layout = scratch_layout(&scratch);
            quote!(#layout.floats(#pixels, w, wo, <Self as ::dsconv::SeparableConv>::SHAPE.pads(h, w)))
        }
        None => quote!(0usize),
    }
}

/// The depthwise stage with output columns across lanes
/// ([`DepthwiseStrategy::WidthVectors`]).
fn width_depthwise(plan: &Plan, wv: &WidthVectorPlan, name: &Ident) -> TokenStream {
    let ops = VectorOps { isa: plan.isa };
    let (cfg, feature, import) = (ops.cfg(), ops.target_feature(), ops.import());
    let s = &plan.shape;
    let (stride, c) = (s.stride, plan.channels);
    let lanes = wv.lanes;
    let ty = ops.ty();
    let layout = scratch_layout(&wv.scratch);
    let signature = super::depthwise_signature(name, "scratch");
    let zero = ops.zero();
    // Rows the plan sends to a narrower backend's kernel (one this backend implies: every
    // CPU that runs this kernel runs that one). Its scratch is never larger (its span and
    // output row are shorter by the difference in lanes).
    let narrow = wv.narrow_rows.map(|n| {
        debug_assert!(plan.isa.implies().contains(&n.backend));
        let kernel = KernelNames::new(n.backend.name()).depthwise;
        let max = n.max_output_columns;
        quote! {
            if wo <= #max {
                return self.#kernel(input, h, w, wo, first_pixel, out, scratch);
            }
        }
    });
    let WidthTaps {
        weights,
        accumulators,
        taps,
        sums,
    } = width_taps(plan, wv, &ops);
    let acc0 = &accumulators[0];
    let others = &accumulators[1..];
    let bias = ops.splat(quote!(self.dw_bias[ch]));
    let activated = ops.activate(plan.epilogue.activations.depthwise, quote!(#acc0));
    let store_row = ops.store(quote!(row_out.add(ch * row_len + ox - ox_lo)), quote!(y));
    quote! {
        /// Depthwise stage for output pixels `first_pixel..first_pixel + out.len() / C`,
        /// output columns across lanes, through a planar copy of the input in `scratch`.
        ///
        /// # Safety
        /// The CPU supports the backend; `input` holds `h * w * M` floats of a valid input
        /// size with output width `wo`; `out.len()` is a multiple of `C` and the pixel run
        /// ends within the output grid; `scratch` holds the plan's depthwise scratch for
        /// `out.len() / C` pixels.
        #cfg
        #feature
        #[allow(unused_unsafe, unused_comparisons, unused_variables, unused_mut, clippy::identity_op)]
        pub(crate) unsafe #signature {
            #import
            #narrow
            let pixels = out.len() / #c;
            if pixels == 0 {
                return;
            }
            let end = first_pixel + pixels;
            let (oy_first, oy_last) = (first_pixel / wo, (end - 1) / wo);
            // Padded input rows oy_first * STRIDE .. + rows, each split into STRIDE phase
            // rows (padded column x at phase x % STRIDE, index x / STRIDE), zero outside the
            // image.
            const SCRATCH: ::dsconv::__private::PlanarScratch = #layout;
            let pads = Self::SHAPE.pads(h, w);
            let rows = SCRATCH.rows(oy_first, oy_last);
            let span = SCRATCH.span(w, wo, pads);
            let plane_len = SCRATCH.plane_len(rows, span);
            let (planar, row_out) = scratch.split_at_mut(#c * plane_len);
            // One output row, planar (`[channel][column]`, whole vectors), interleaved into
            // `out` once every channel is done: reading lanes back right after storing the
            // vector would stall on store forwarding.
            let row_len = SCRATCH.row_len(wo);
            let row_out = &mut row_out[..#c * row_len];
            let row_lo = oy_first * #stride;
            SCRATCH.copy_rows(input, (h, w), pads, row_lo, rows, span, planar);
            let planar = planar.as_ptr();
            let row_out = row_out.as_mut_ptr();
            let wts = self.dw.as_ptr();
            for oy in oy_first..=oy_last {
                let ox_lo = if oy == oy_first { first_pixel % wo } else { 0 };
                let ox_hi = if oy == oy_last { (end - 1) % wo + 1 } else { wo };
                let r0 = (oy - oy_first) * #stride;
                for ch in 0..#c {
                    #(#weights)*
                    let bv: #ty = #bias;
                    // SAFETY: ch < C, so the plane lies in the planar copy.
                    let plane = planar.add(ch * plane_len);
                    let mut ox = ox_lo;
                    while ox < ox_hi {
                        let mut #acc0: #ty = bv;
                        #(let mut #others: #ty = #zero;)*
                        // SAFETY: phase row (r0 + ky) * STRIDE + phase < rows * STRIDE, and
                        // ox + shift + lanes <= wo + (DK - 1) / STRIDE + lanes <= span; a
                        // weight broadcast reads tap t of channel ch < C <= CP.
                        #(#taps)*
                        #(#sums)*
                        let y: #ty = #activated;
                        // SAFETY: ox - ox_lo + lanes <= wo + lanes = row_len, ch < C.
                        #store_row;
                        ox += #lanes;
                    }
                }
                let first = oy * wo + ox_lo - first_pixel;
                let dst = &mut out[first * #c..(first + ox_hi - ox_lo) * #c];
                for (i, px) in dst.chunks_exact_mut(#c).enumerate() {
                    for (ch, v) in px.iter_mut().enumerate() {
                        // SAFETY: ch * row_len + i < C * row_len (i < ox_hi - ox_lo <= wo).
                        *v = *row_out.add(ch * row_len + i);
                    }
                }
            }
        }
    }
}

/// The unrolled taps of the width-vector depthwise for channel `ch`, with the code around
/// them.
struct WidthTaps {
    /// The channel's weights splatted into registers (empty when they do not fit).
    weights: Vec<TokenStream>,
    /// The plan's accumulators, `acc0` first.
    accumulators: Vec<Ident>,
    /// One FMA per tap into the accumulators in turn.
    taps: Vec<TokenStream>,
    /// The other accumulators added into `acc0`.
    sums: Vec<TokenStream>,
}

fn width_taps(plan: &Plan, wv: &WidthVectorPlan, ops: &VectorOps) -> WidthTaps {
    let s = &plan.shape;
    let (dk, stride, d, cp) = (s.dk, s.stride, s.dilation, plan.weight_stride);
    let ty = ops.ty();
    // A channel's weights splatted into registers once, when the plan has room for them;
    // else each FMA broadcasts its weight from memory.
    let weights = (0..dk * dk).filter(|_| wv.weights_in_registers).map(|t| {
        let wn = format_ident!("w{}", t);
        let v = ops.splat(quote!(self.dw[#t * #cp + ch]));
        quote!(let #wn: #ty = #v;)
    });
    let accumulators: Vec<Ident> = (0..wv.accumulators)
        .map(|i| format_ident!("acc{}", i))
        .collect();
    let taps = (0..dk)
        .flat_map(|ky| (0..dk).map(move |kx| (ky, kx)))
        .map(|(ky, kx)| {
            let t = ky * dk + kx;
            let wn = if wv.weights_in_registers {
                let wn = format_ident!("w{}", t);
                quote!(#wn)
            } else {
                ops.broadcast(quote!(wts.add(#t * #cp + ch)))
            };
            // Tap (ky, kx) reads padded row r0 + ky * D and column ox * STRIDE + kx * D,
            // which is at phase (kx * D) % STRIDE, index ox + (kx * D) / STRIDE.
            let (dy, dx) = (ky * d, kx * d);
            let (phase, shift) = (dx % stride, dx / stride);
            let load =
                ops.load(quote!(plane.add(((r0 + #dy) * #stride + #phase) * span + ox + #shift)));
            // Taps alternate between the accumulators, shortening the dependent FMA chain.
            let acc = &accumulators[t % accumulators.len()];
            let f = ops.fma(quote!(#acc), quote!(x), wn);
            quote! {
                let x: #ty = #load;
                #acc = #f;
            }
        });
    let acc0 = &accumulators[0];
    let sums = accumulators[1..].iter().map(|a| {
        let add = ops.add(quote!(#acc0), quote!(#a));
        quote!(#acc0 = #add;)
    });
    WidthTaps {
        weights: weights.collect(),
        taps: taps.collect(),
        sums: sums.collect(),
        accumulators,
    }
}

/// The per-pixel-run code of the depthwise stage for one channel vector (starting at
/// channel `c0`; `partial` = the lanes, an expression, of a masked vector: a partial tail,
/// or a realigned call's end vector).
struct PixelKernels<'a> {
    plan: &'a Plan,
    cv: &'a ChannelVectorPlan,
    ops: &'a VectorOps,
    weight_names: Vec<Ident>,
    /// The plan's table of expanded loads (a depth multiplier above 1).
    expand: Option<&'a Expansion>,
    /// Floats per input pixel, `M`.
    cin: usize,
    /// Whether this code walks the realigned vectors (from channel `shift`, the ends
    /// masked) rather than the vectors from channel 0.
    realigned: bool,
}

impl<'a> PixelKernels<'a> {
    fn new(plan: &'a Plan, cv: &'a ChannelVectorPlan, ops: &'a VectorOps, realigned: bool) -> Self {
        PixelKernels {
            plan,
            cv,
            ops,
            weight_names: (0..plan.depthwise.taps)
                .map(|t| format_ident!("w{}", t))
                .collect(),
            expand: cv.expand.as_ref(),
            cin: cv.input_channels,
            realigned,
        }
    }

    /// `kind` (the code of one kind of pixel run, given the lanes of a masked vector or
    /// `None`) for every channel vector, innermost, so the cache lines of the input
    /// pixels a run reads are consumed whole while they are hot.
    fn over_channels(&self, kind: &dyn Fn(Option<&TokenStream>) -> TokenStream) -> TokenStream {
        let (lanes, full_vectors) = (self.cv.lanes, self.cv.full_vectors);
        // The whole vectors' code, built only where it is emitted.
        let full = || (kind(None), self.prologue(None));
        if self.realigned {
            // Vectors from channel `shift` (not 0: the aligned code runs then; the plan has
            // no tail): the last vector's place goes to the channels left at the two ends,
            // `C - lanes + shift..C` (`lanes - shift` of them), then `0..shift`, each a
            // masked vector (weights and bias masked too: they are padded to whole
            // vectors, not one more).
            let (full, prologue_full) = full();
            let nl = quote!(nl);
            let ends = kind(Some(&nl));
            let prologue_ends = self.prologue(Some(&nl));
            let c = self.plan.channels;
            return quote! {
                for cv in g0..g1.min(#full_vectors) {
                    if cv + 1 == #full_vectors {
                        for (c0, nl) in [(#c - #lanes + shift, #lanes - shift), (0, shift)] {
                            #prologue_ends
                            #ends
                        }
                    } else {
                        let c0 = shift + cv * #lanes;
                        #prologue_full
                        #full
                    }
                }
            };
        }
        if let Some(start) = self.plan.overlapped_tail_start() {
            let (full, prologue_full) = full();
            return quote! {
                for cv in g0..g1 {
                    // The last vector overlaps the one before it (the plan's
                    // `overlapped_tail`): whole, over channels C - lanes..C.
                    let c0 = if cv == #full_vectors { #start } else { cv * #lanes };
                    #prologue_full
                    #full
                }
            };
        }
        let tail_part = self.cv.tail_lanes.map(|tail| {
            let tail = quote!(#tail);
            let body = kind(Some(&tail));
            let prologue = self.prologue(None);
            quote! {
                if g1 > #full_vectors {
                    let cv = #full_vectors;
                    let c0 = #full_vectors * #lanes;
                    #prologue
                    #body
                }
            }
        });
        // No full vector (fewer channels than lanes): only the tail's code is emitted.
        let full_part = (full_vectors > 0).then(|| {
            let (full, prologue_full) = full();
            quote! {
                for cv in g0..g1.min(#full_vectors) {
                    let c0 = cv * #lanes;
                    #prologue_full
                    #full
                }
            }
        });
        quote! {
            #full_part
            #tail_part
        }
    }

    /// Tap `t`'s weight vector for channel vector `c0`: the register loaded by the
    /// prologue when the plan keeps the weights in registers, else a load at the FMA (a
    /// memory operand).
    fn weight(&self, t: usize) -> TokenStream {
        if self.cv.weights_in_registers {
            let wn = &self.weight_names[t];
            quote!(#wn)
        } else {
            let cp = self.plan.weight_stride;
            self.ops.load(quote!(wts.add(#t * #cp + c0)))
        }
    }

    /// The input vector at `ptr` for a channel vector of `partial` (or all) lanes: with a
    /// depth multiplier, the plan's `load_floats` input channels permuted by the vector's
    /// row of the table (`perm`, loaded by the prologue) into its output channels.
    fn load_input(&self, ptr: TokenStream, partial: Option<&TokenStream>) -> TokenStream {
        if let Some(e) = self.expand {
            let load = self.ops.load_floats(ptr, e.load_floats);
            if e.is_broadcast() {
                return load;
            }
            return self.ops.permute(load, quote!(perm));
        }
        match partial {
            None => self.ops.load(ptr),
            Some(n) => self.ops.load_partial(ptr, n.clone()),
        }
    }

    fn store_output(
        &self,
        ptr: TokenStream,
        v: TokenStream,
        partial: Option<&TokenStream>,
    ) -> TokenStream {
        match partial {
            None => self.ops.store(ptr, v),
            Some(n) => self.ops.store_partial(ptr, v, n.clone()),
        }
    }

    /// Weight (when the plan keeps them in registers) and bias vectors of channel vector
    /// `c0`, loaded masked to `masked` lanes when given (a realigned end vector).
    fn prologue(&self, masked: Option<&TokenStream>) -> TokenStream {
        let cp = self.plan.weight_stride;
        let ty = self.ops.ty();
        let in_registers = self.cv.weights_in_registers;
        let weights = self
            .weight_names
            .iter()
            .enumerate()
            .filter(|_| in_registers)
            .map(|(t, wn)| {
                // Weights are padded to CP channels per tap: whole-vector loads stay in
                // bounds (a realigned end vector's are masked: it may start past a vector).
                let ptr = quote!(wts.add(#t * #cp + c0));
                let load = match masked {
                    Some(n) => self.ops.load_partial(ptr, n.clone()),
                    None => self.ops.load(ptr),
                };
                quote!(let #wn: #ty = #load;)
            });
        let bias = match masked {
            Some(n) => self.ops.load_partial(quote!(bias.add(c0)), n.clone()),
            None => self.ops.load(quote!(bias.add(c0))),
        };
        // The first input channel the vector's loads read, and with a depth multiplier the
        // permute from the loaded floats to its output channels.
        let input = match self.expand {
            None => quote!(let in0 = c0;),
            Some(e) if e.is_broadcast() => quote!(let in0 = EXPAND_OFFSETS[cv];),
            Some(_) => {
                let (pty, load) = (
                    self.ops.permute_ty(),
                    self.ops.load_permute(quote!(EXPAND_INDEX.as_ptr().add(cv))),
                );
                quote! {
                    let in0 = EXPAND_OFFSETS[cv];
                    // SAFETY: the table has a row per channel vector, cv among them.
                    let perm: #pty = #load;
                }
            }
        };
        quote! {
            // SAFETY: a whole vector has c0 + lanes <= CP, the padded length of every tap's
            // weights and the bias (realigned: c0 + lanes <= C - lanes + shift; an
            // overlapped tail: c0 + lanes = C); a masked end vector reads c0..c0 + nl,
            // within C.
            #(#weights)*
            let bv: #ty = #bias;
            #input
        }
    }

    /// A block of `n` interior pixels starting at column `ox`.
    fn interior_block(&self, n: usize, partial: Option<&TokenStream>) -> TokenStream {
        self.edge_block(n, partial, 0, 0)
    }

    /// A two-row block: `n` interior pixels from column `ox` in output row `y0` (stored at
    /// `seg`) and in the row below (at `segb`), stride 1. Input rows `y0 - PT..=y0 - PT +
    /// dk` are each loaded once: row `r` feeds the first row's taps of kernel row `r` and
    /// the second's of kernel row `r - 1`. Each pixel takes its taps in the one-row
    /// block's order (kernel rows, then columns), so its bits are the same.
    fn pair_block(&self, n: usize, partial: Option<&TokenStream>) -> TokenStream {
        let (dk, cin) = (self.plan.shape.dk, self.cin);
        let ty = self.ops.ty();
        let first: Vec<Ident> = (0..n).map(|i| format_ident!("acc{}", i)).collect();
        let second: Vec<Ident> = (0..n).map(|i| format_ident!("bcc{}", i)).collect();
        let columns = self.cv.columns(n, 0, 0);
        let rows = (0..=dk).map(|r| {
            let loads = columns.iter().map(|(j, taps)| {
                let x = format_ident!("x{}", j);
                let load = self.load_input(quote!(row.add(#j * #cin)), partial);
                let fmas = |accs: &[Ident], ky: usize| {
                    let fmas = taps.iter().map(|&(i, kx)| {
                        let acc = &accs[i];
                        let f = self
                            .ops
                            .fma(quote!(#acc), quote!(#x), self.weight(ky * dk + kx));
                        quote!(#acc = #f;)
                    });
                    quote!(#(#fmas)*)
                };
                let upper = (r < dk).then(|| fmas(&first, r));
                let lower = (r >= 1).then(|| fmas(&second, r.wrapping_sub(1)));
                quote! {
                    let #x: #ty = #load;
                    #upper
                    #lower
                }
            });
            quote! {
                let row = inp.add(((y0 + #r - pt) * w + x_first) * #cin + in0);
                #(#loads)*
            }
        });
        let (upper, lower) = (
            self.store_block(&first, quote!(seg), partial),
            self.store_block(&second, quote!(segb), partial),
        );
        quote! {
            let x_first = ox - pl;
            #(let mut #first: #ty = bv;)*
            #(let mut #second: #ty = bv;)*
            // SAFETY: both rows' windows lie inside the image (the caller checked), so input
            // rows y0 - PT..=y0 - PT + dk exist, and interior columns x_first..x_first + span
            // lie in the row; a load reads channels in0.. of a pixel (at most M - in0).
            #(#rows)*
            // SAFETY: pixels ox..ox + n of both rows lie in their segments, inside `out`.
            #upper
            #lower
        }
    }

    /// A block of `n` pixels starting at column `ox`, whose window columns `j` in
    /// `0..span` are input columns `ox * STRIDE - PL + j`: the first `skip_lo` lie left of
    /// the image and the last `skip_hi` right of it. Those are neither loaded nor multiplied
    /// (padding is zero and weights are finite, checked at load), so the block needs no
    /// per-pixel border code. Columns no tap reads (with dilation) are not loaded either.
    fn edge_block(
        &self,
        n: usize,
        partial: Option<&TokenStream>,
        skip_lo: usize,
        skip_hi: usize,
    ) -> TokenStream {
        let s = &self.plan.shape;
        let (dk, stride, d) = (s.dk, s.stride, s.dilation);
        let cin = self.cin;
        let ty = self.ops.ty();
        let accs: Vec<Ident> = (0..n).map(|i| format_ident!("acc{}", i)).collect();
        let columns = self.cv.columns(n, skip_lo, skip_hi);
        // One kernel row's loads and FMAs; `weight(kx)` is tap (row, kx)'s weight vector.
        let row_body = |weight: &dyn Fn(usize) -> TokenStream| {
            // Each column loaded once, fed to every tap it meets.
            let loads = columns.iter().map(|(j, taps)| {
                let x = format_ident!("x{}", j);
                let col = j - skip_lo;
                let load = self.load_input(quote!(row.add(#col * #cin)), partial);
                let load = quote!(let #x: #ty = #load;);
                let fmas = taps.iter().map(|&(i, kx)| {
                    let acc = &accs[i];
                    let f = self.ops.fma(quote!(#acc), quote!(#x), weight(kx));
                    quote!(#acc = #f;)
                });
                quote! {
                    #load
                    #(#fmas)*
                }
            });
            quote!(#(#loads)*)
        };
        // SAFETY (every row): row y0 + ky * D - PT is inside the image (ky_lo..ky_hi), and
        // the columns loaded, x_first..x_first + span - skip_lo - skip_hi, are inside the
        // row (the caller checked it for this block); a load reads input channels in0.. of
        // a pixel, at most M - in0 of them (the plan's offsets leave room for its loads).
        let rows = if self.plan.depthwise.row_loop {
            let cp = self.plan.weight_stride;
            let body = row_body(&|kx| self.ops.load(quote!(wrow.add(#kx * #cp))));
            quote! {
                for ky in ky_lo..ky_hi {
                    let row = inp.add(((y0 + ky * #d - pt) * w + x_first) * #cin + in0);
                    // SAFETY: row ky's weights, dk taps of CP floats, c0 + lanes <= CP.
                    let wrow = wts.add(ky * #dk * #cp + c0);
                    #body
                }
            }
        } else {
            let rows = (0..dk).map(|ky| {
                let body = row_body(&|kx| self.weight(ky * dk + kx));
                let dy = ky * d;
                quote! {
                    if ky_lo <= #ky && #ky < ky_hi {
                        let row = inp.add(((y0 + #dy - pt) * w + x_first) * #cin + in0);
                        #body
                    }
                }
            });
            quote!(#(#rows)*)
        };
        let stores = self.store_block(&accs, quote!(seg), partial);
        quote! {
            // First column loaded (the block's window starts skip_lo columns left of it).
            let x_first = ox * #stride + #skip_lo - pl;
            #(let mut #accs: #ty = bv;)*
            #rows
            // SAFETY: pixels ox..ox + n lie in the segment, which lies in `out`.
            #stores
        }
    }

    /// A block's stores: accumulator `i`, activated, to pixel `ox + i` of the row segment
    /// at `seg` (channel vector `c0`).
    fn store_block(
        &self,
        accs: &[Ident],
        seg: TokenStream,
        partial: Option<&TokenStream>,
    ) -> TokenStream {
        let c = self.plan.channels;
        let stores = accs.iter().enumerate().map(|(i, acc)| {
            let v = self
                .ops
                .activate(self.plan.epilogue.activations.depthwise, quote!(#acc));
            let st = self.store_output(quote!(#seg.add((ox - ox0 + #i) * #c + c0)), v, partial);
            quote!(#st;)
        });
        quote!(#(#stores)*)
    }

    /// Pointers to the input pixels of a border pixel's taps and whether each reads the
    /// image (`insideN`), computed once per pixel for its channel loop, which adds only the
    /// taps inside ([`Self::border_pixel`]); a padding tap's pointer is null, never read.
    fn border_pointers(&self) -> TokenStream {
        let s = &self.plan.shape;
        let (dk, stride, d, cin) = (s.dk, s.stride, s.dilation, self.cin);
        if self.plan.depthwise.row_loop {
            // The taps loop over the image's part of the window instead (border_pixel).
            return quote! {
                let x0 = ox * #stride;
                let (kx_lo, kx_hi) = ::dsconv::__private::tap_range(x0, pl, w, #dk, #d);
            };
        }
        let taps = (0..dk)
            .flat_map(|ky| (0..dk).map(move |kx| (ky, kx)))
            .map(|(ky, kx)| {
                let name = format_ident!("tap{}", ky * dk + kx);
                let inside = format_ident!("inside{}", ky * dk + kx);
                let (dy, dx) = (ky * d, kx * d);
                quote! {
                    let #inside = ky_lo <= #ky && #ky < ky_hi && kx_lo <= #kx && #kx < kx_hi;
                    let #name: *const f32 = if #inside {
                        // SAFETY: the predicates keep row and column inside the image.
                        inp.add(((y0 + #dy - pt) * w + (x0 + #dx - pl)) * #cin)
                    } else {
                        ::core::ptr::null()
                    };
                }
            });
        quote! {
            let x0 = ox * #stride;
            let (kx_lo, kx_hi) = ::dsconv::__private::tap_range(x0, pl, w, #dk, #d);
            #(#taps)*
        }
    }

    /// One pixel whose window may cross the image border, for channel vector `c0`, through
    /// the tap pointers of [`Self::border_pointers`].
    fn border_pixel(&self, partial: Option<&TokenStream>) -> TokenStream {
        let s = &self.plan.shape;
        let (dk, c) = (s.dk, self.plan.channels);
        let ty = self.ops.ty();
        let store =
            |v: TokenStream| self.store_output(quote!(seg.add((ox - ox0) * #c + c0)), v, partial);
        if self.plan.depthwise.row_loop {
            // A large kernel: a loop over the taps that read the image (padding taps
            // skipped, as the edge blocks skip them), one accumulator taking
            // them row by row, left to right: the order of `edge_block`, which computes the
            // same pixel when a tile's row segment holds a whole block around it, so a
            // pixel's value does not depend on where the tiles (and so the threads) cut.
            let (d, cin, cp) = (s.dilation, self.cin, self.plan.weight_stride);
            let load = self.load_input(
                quote!(inp.add(((y0 + ky * #d - pt) * w + x0 + kx * #d - pl) * #cin + in0)),
                partial,
            );
            let weight = self.ops.load(quote!(wts.add((ky * #dk + kx) * #cp + c0)));
            let fma = self.ops.fma(quote!(acc), load, weight);
            let v = self
                .ops
                .activate(self.plan.epilogue.activations.depthwise, quote!(acc));
            let store = store(v);
            return quote! {
                let mut acc: #ty = bv;
                // SAFETY (every tap): the tap ranges keep row and column inside the image; a
                // load reads channels in0.. of the pixel (at most M - in0); the tap's
                // weights hold CP >= c0 + lanes floats.
                for ky in ky_lo..ky_hi {
                    for kx in kx_lo..kx_hi {
                        acc = #fma;
                    }
                }
                // SAFETY: pixel ox lies in the segment, which lies in `out`.
                #store;
            };
        }
        // Only the taps that read the image, in the order of `edge_block` (row by row, left
        // to right), which computes the same pixel when a tile's row segment holds a whole
        // block around it: a padding tap would add `+0 * w`, which turns a sum of -0.0 (an
        // FMA that underflowed, a -0.0 bias) into +0.0, so a pixel's sign would depend on
        // where the tiles (and so the threads) cut.
        let taps = (0..dk * dk).map(|t| {
            let wn = self.weight(t);
            let tap = format_ident!("tap{}", t);
            let inside = format_ident!("inside{}", t);
            let load = self.load_input(quote!(#tap.add(in0)), partial);
            let f = self.ops.fma(quote!(acc), quote!(x), wn);
            quote! {
                if #inside {
                    let x: #ty = #load;
                    acc = #f;
                }
            }
        });
        let v = self
            .ops
            .activate(self.plan.epilogue.activations.depthwise, quote!(acc));
        let store = store(v);
        quote! {
            let mut acc: #ty = bv;
            // SAFETY: each tap read is inside the image (`insideN`): it points at an input
            // pixel, holding the channels in0.. a load reads (M per pixel).
            #(#taps)*
            // SAFETY: pixel ox lies in the segment, which lies in `out`.
            #store;
        }
    }
}

/// The pointwise micro-kernel and driver of a vector backend.
/// The pointwise stage of a vector backend: its micro-kernel and the driver over it.
pub fn pointwise(plan: &Plan, names: &KernelNames) -> TokenStream {
    let micro = pointwise_micro(plan, names);
    let driver = pointwise_driver(plan, names);
    quote! {
        #micro
        #driver
    }
}

/// The pointwise micro-kernel: `R x NV` accumulators over the plan's register tile,
/// streaming weights or (short reductions) holding them in registers.
fn pointwise_micro(plan: &Plan, names: &KernelNames) -> TokenStream {
    let ops = VectorOps { isa: plan.isa };
    let (cfg, feature, import) = (ops.cfg(), ops.target_feature(), ops.import());
    let p = &plan.pointwise;
    let micro = &names.micro;
    let skip_param = plan.epilogue.residual.then(|| quote!(skip: *const f32,));
    let micro_body = if p.weights_in_registers {
        micro_registers_body(plan, &ops)
    } else {
        micro_streaming_body(plan, &ops)
    };
    quote! {
        /// Pointwise micro-kernel: `R` pixels x `NV` vectors of output channels, the last
        /// vector holding `LAST` valid lanes; `prefetch` lines go to L2 with `TO_L2`, else
        /// to L1.
        ///
        /// # Safety
        /// The CPU supports the backend; `a` points at `R` rows of `K` floats; `b` at `K` rows
        /// of `b_stride` floats holding `NV` vectors; `bias` at `NV` vectors; `out` at `R`
        /// rows (stride `N`) with room for `(NV - 1) * lanes + LAST` floats each. `prefetch`
        /// and `ahead` may be any address: they are only prefetched from (`wrapping_add`),
        /// never read. A residual layer's `skip` is null or points at `R` rows (stride `N`)
        /// laid out as `out`'s, added after the activation.
        #cfg
        #feature
        #[inline]
        #[allow(unused_unsafe)]
        unsafe fn #micro<const R: usize, const NV: usize, const LAST: usize, const TO_L2: bool>(
            &self,
            a: *const f32,
            b: *const f32,
            b_stride: usize,
            bias: *const f32,
            out: *mut f32,
            prefetch: *const f32,
            ahead: *const f32,
            #skip_param
        ) {
            #import
            #micro_body
        }

    }
}

/// Activation and store of one row `r` of a micro-kernel's `NV` accumulators, `acc` naming
/// vector `v`; the last vector keeps `LAST` lanes.
fn micro_store_row(plan: &Plan, ops: &VectorOps, acc: TokenStream) -> TokenStream {
    let (n, lanes, ty) = (plan.pointwise.n, ops.lanes(), ops.ty());
    let store_full = ops.store(quote!(dst), quote!(y));
    let store_last = ops.store_partial(quote!(dst), quote!(y), quote!(LAST));
    let activated = ops.activate(plan.epilogue.activations.pointwise, acc);
    // A residual layer's skip, added after the activation in the same store (the last
    // vector's load touches only its `LAST` valid lanes).
    let add_skip = plan.epilogue.residual.then(|| {
        let full = ops.add(quote!(y), ops.load(quote!(src)));
        let last = ops.add(quote!(y), ops.load_partial(quote!(src), quote!(LAST)));
        quote! {
            let y: #ty = if skip.is_null() {
                y
            } else {
                let src = skip.add(r * #n + v * #lanes);
                if v + 1 == NV && LAST < #lanes { #last } else { #full }
            };
        }
    });
    quote! {
        for v in 0..NV {
            let y: #ty = #activated;
            #add_skip
            let dst = out.add(r * #n + v * #lanes);
            if v + 1 == NV && LAST < #lanes {
                #store_last;
            } else {
                #store_full;
            }
        }
    }
}

/// The bias into one row's accumulators (they start at zero without biases).
fn micro_bias_row(plan: &Plan, ops: &VectorOps, acc: TokenStream) -> TokenStream {
    let lanes = ops.lanes();
    if plan.epilogue.bias {
        let bias_v = ops.load(quote!(bias.add(v * #lanes)));
        quote!(for v in 0..NV { #acc = #bias_v; })
    } else {
        quote!(let _ = bias;)
    }
}

/// The usual micro-kernel body: `R x NV` accumulators, one reduction step at a time, with
/// the plan's prefetch.
fn micro_streaming_body(plan: &Plan, ops: &VectorOps) -> TokenStream {
    let p = &plan.pointwise;
    let (k, line, lanes, ty, zero) = (p.k, p.prefetch_step, ops.lanes(), ops.ty(), ops.zero());
    let load_b = ops.load(quote!(bk.add(v * #lanes)));
    let broadcast = ops.broadcast(quote!(a.add(r * #k + kk)));
    let fma = ops.fma(quote!(acc[r][v]), quote!(av), quote!(bv[v]));
    // Where `prefetch` points is the walk's choice (its first call of a full block), and so
    // is the level: `TO_L2` for a next panel, L1 for the next rows.
    let prefetch_line = match p.prefetch {
        PointwisePrefetch::Nothing => None,
        _ => ops
            .prefetch(quote!(prefetch.wrapping_add(kk * #line)), true)
            .zip(ops.prefetch(quote!(prefetch.wrapping_add(kk * #line)), false))
            .map(|(l2, l1)| quote!(if TO_L2 { #l2 } else { #l1 })),
    }
    .map(|pf| quote!(#pf;))
    .unwrap_or_else(|| quote!(let _ = prefetch;));
    // The next tile's input, a line per reduction step into L2 (FusionPlan).
    let ahead_line = plan
        .fusion
        .prefetch_next_input
        .then(|| ops.prefetch(quote!(ahead.wrapping_add(kk * #line)), true))
        .flatten()
        .map(|pf| quote!(#pf;))
        .unwrap_or_else(|| quote!(let _ = ahead;));
    let bias_all = micro_bias_row(plan, ops, quote!(acc[r][v]));
    let store_all = micro_store_row(plan, ops, quote!(acc[r][v]));
    quote! {
        let mut acc: [[#ty; NV]; R] = [[#zero; NV]; R];
        for r in 0..R {
            #bias_all
        }
        for kk in 0..#k {
            let bk = b.add(kk * b_stride);
            #prefetch_line
            #ahead_line
            let mut bv: [#ty; NV] = [#zero; NV];
            for v in 0..NV {
                bv[v] = #load_b;
            }
            for r in 0..R {
                let av: #ty = #broadcast;
                for v in 0..NV {
                    acc[r][v] = #fma;
                }
            }
        }
        for r in 0..R {
            #store_all
        }
    }
}

/// The micro-kernel body for reductions so short that every weight vector of the block
/// fits in registers (the seed's K = 3): weights loaded once, then each row's accumulators
/// finished in turn. Fully unrolling the streaming loop there left LLVM with more live
/// vectors than registers (spills in the hot path).
fn micro_registers_body(plan: &Plan, ops: &VectorOps) -> TokenStream {
    let k = plan.pointwise.k;
    let (lanes, ty, zero) = (ops.lanes(), ops.ty(), ops.zero());
    let broadcast = ops.broadcast(quote!(a.add(r * #k + kk)));
    let fma_row = ops.fma(quote!(acc[v]), quote!(av), quote!(wv[kk][v]));
    let load_w = ops.load(quote!(b.add(kk * b_stride + v * #lanes)));
    let bias_one = micro_bias_row(plan, ops, quote!(acc[v]));
    let store_one = micro_store_row(plan, ops, quote!(acc[v]));
    quote! {
        let _ = (prefetch, ahead);
        let mut wv: [[#ty; NV]; #k] = [[#zero; NV]; #k];
        for kk in 0..#k {
            for v in 0..NV {
                wv[kk][v] = #load_w;
            }
        }
        for r in 0..R {
            let mut acc: [#ty; NV] = [#zero; NV];
            #bias_one
            for kk in 0..#k {
                let av: #ty = #broadcast;
                for v in 0..NV {
                    acc[v] = #fma_row;
                }
            }
            #store_one
        }
    }
}

/// What the first call for a full block of rows prefetches in a walk with `prefetch` (the
/// plan's, or its cold walk's; see `PointwisePrefetch`); later calls of the block, and
/// partial blocks, point at their own rows (in L1).
/// Prefetches never fault, so the pointers may run past their slices (`wrapping_add`).
fn first_call_prefetch(p: &PointwisePlan, prefetch: PointwisePrefetch) -> TokenStream {
    let (k, n, rows, line) = (p.k, p.n, p.rows, p.prefetch_step);
    match prefetch {
        PointwisePrefetch::NextRowsToL1 => quote!(a.wrapping_add((r0 + #rows) * #k)),
        PointwisePrefetch::NextPanelToL2 => {
            let blocks = p.panel_prefetch_blocks;
            quote!({
                // The last BLOCKS full blocks (i = full_blocks - BLOCKS + j) fetch lines
                // j * k .. (j + 1) * k of the panel after this one.
                let full_blocks = pixels / #rows;
                let i = r0 / #rows;
                if panel_col + #PANEL_WIDTH < #n && full_blocks >= #blocks && i + #blocks >= full_blocks {
                    panel.wrapping_add(#PANEL_WIDTH * #k + (i + #blocks - full_blocks) * #k * #line)
                } else {
                    a.add(r0 * #k)
                }
            })
        }
        PointwisePrefetch::Nothing => quote!(a.add(r0 * #k)),
    }
}

/// The pointwise driver: chunks of pixels, then the plan's walk (rows outer or panels
/// outer) over register tiles and column blocks, with the plan's prefetches; with `cold`,
/// the first chunk takes the plan's cold walk (`cold_first_chunk`) instead.
fn pointwise_driver(plan: &Plan, names: &KernelNames) -> TokenStream {
    let ops = VectorOps { isa: plan.isa };
    let (cfg, feature) = (ops.cfg(), ops.target_feature());
    let p = &plan.pointwise;
    let (k, n, rows) = (p.k, p.n, p.rows);
    let (name, micro) = (&names.pointwise, &names.micro);
    let pw_signature = super::pointwise_signature(plan, name, "pixels");

    // Each call prefetches the next `K` lines of the next tile's input while any is left,
    // else a line of this block's own rows (in L1: the prefetch costs nothing).
    let ahead_step = k * p.prefetch_step;
    let ahead_line = if plan.fusion.prefetch_next_input {
        quote! {
            let ahead_line = if next_line < ahead_end {
                let line = next_line;
                next_line = line.wrapping_add(#ahead_step);
                line
            } else {
                a.add(r0 * #k)
            };
        }
    } else {
        quote!(let ahead_line = a.add(r0 * #k);)
    };
    let call_blocks =
        |blocks: &[ColumnBlock], r: usize, panel_stride: usize, to_l2: bool| -> TokenStream {
            let calls = blocks.iter().map(|blk| {
                let (col, nv, last) = (blk.col, blk.vectors, blk.last_lanes);
                let skip_arg = plan.epilogue.residual.then(|| {
                    quote! {
                        if sk.is_null() { sk } else { sk.add(r0 * #n + panel_col + #col) },
                    }
                });
                quote! {
                    #ahead_line
                    self.#micro::<#r, #nv, #last, #to_l2>(
                        a.add(r0 * #k),
                        panel.add(#col),
                        #panel_stride,
                        bias.add(panel_col + #col),
                        o.add(r0 * #n + panel_col + #col),
                        prefetch,
                        ahead_line,
                        #skip_arg
                    );
                    // Only the first call of a block prefetches ahead; the rest touch lines of
                    // their own rows, already in L1.
                    prefetch = a.add(r0 * #k);
                }
            });
            quote!(#(#calls)*)
        };
    let full_panels = p.full_panels;
    let chunk = plan.fusion.tile_pixels;
    // SAFETY (of the pointer): a skip holds `pixels * N` floats, as `out`.
    let skip_chunk = plan.epilogue.residual.then(|| {
        quote! {
            let sk: *const f32 = match skip {
                ::core::option::Option::Some(s) => s.as_ptr().add(chunk_start * #n),
                ::core::option::Option::None => ::core::ptr::null(),
            };
        }
    });
    // Every panel of weights (the full panels, then the tail), given the code for the
    // column blocks of a panel of a given width.
    let over_panels = |inner: &dyn Fn(&[ColumnBlock], usize) -> TokenStream| -> TokenStream {
        // No full panel (fewer output channels than a panel): only the tail's code.
        let full = (full_panels > 0).then(|| {
            let body = inner(&p.full_panel_blocks, PANEL_WIDTH);
            quote! {
                for panel_index in panels.0..panels.1.min(#full_panels) {
                    let panel_col = panel_index * #PANEL_WIDTH;
                    let panel = b.add(panel_index * #PANEL_WIDTH * #k);
                    #body
                }
            }
        });
        let tail = (!p.tail_blocks.is_empty()).then(|| {
            let body = inner(&p.tail_blocks, p.tail_panel_width);
            quote! {
                if panels.1 > #full_panels {
                    let panel_col = #full_panels * #PANEL_WIDTH;
                    let panel = b.add(#full_panels * #PANEL_WIDTH * #k);
                    #body
                }
            }
        });
        quote! {
            #full
            #tail
        }
    };
    // Compared as addresses only, never read through.
    let ahead_cursor = plan.fusion.prefetch_next_input.then(|| {
        quote! {
            let (mut next_line, ahead_end) =
                (ahead.as_ptr(), ahead.as_ptr().wrapping_add(ahead.len()));
        }
    });
    // Every block of rows of the chunk, given the calls for a block of `r` rows, the first
    // call of a full block prefetching `full_prefetch`.
    let over_rows =
        |body: &dyn Fn(usize) -> TokenStream, full_prefetch: &TokenStream| -> TokenStream {
            let full = body(rows);
            let arms = (1..rows).map(|r| {
                let b = body(r);
                quote!(#r => {
                    let mut prefetch: *const f32 = a.add(r0 * #k);
                    #b
                })
            });
            quote! {
                let mut r0 = 0;
                while r0 + #rows <= pixels {
                    let mut prefetch: *const f32 = #full_prefetch;
                    #full
                    r0 += #rows;
                }
                match pixels - r0 {
                    #(#arms)*
                    _ => {}
                }
            }
        };
    // A walk in `order` whose first call of a full block prefetches `prefetch`.
    let walk = |order: PointwiseOrder, prefetch: PointwisePrefetch| {
        let (full_prefetch, to_l2) = (
            first_call_prefetch(p, prefetch),
            prefetch == PointwisePrefetch::NextPanelToL2,
        );
        match order {
            PointwiseOrder::RowsOuter => over_rows(
                &|r| over_panels(&|blocks, width| call_blocks(blocks, r, width, to_l2)),
                &full_prefetch,
            ),
            PointwiseOrder::PanelsOuter => over_panels(&|blocks, width| {
                over_rows(&|r| call_blocks(blocks, r, width, to_l2), &full_prefetch)
            }),
        }
    };
    let usual = walk(p.order, p.prefetch);
    // A cold first chunk walks panels outer (the plan's `cold_first_chunk`): the same
    // micro-kernel calls on the same blocks in another order, so the same output bits.
    let chunk_body = match p.cold_first_chunk {
        Some(prefetch) => {
            let cold_walk = walk(PointwiseOrder::PanelsOuter, prefetch);
            quote! {
                if cold && chunk_start == 0 {
                    #cold_walk
                } else {
                    #usual
                }
            }
        }
        None => usual,
    };
    quote! {
        /// Pointwise stage over `pixels` pixels.
        ///
        /// # Safety
        /// The CPU supports the backend; `input` holds `pixels * K` and `out` `pixels * N`
        /// floats; no other caller writes the columns of `panels` at the same time.
        #cfg
        #feature
        #[allow(unused_unsafe, unused_variables, unused_mut, unused_assignments)]
        pub(crate) unsafe #pw_signature {
            let b = self.pw.as_ptr();
            let bias = self.pw_bias.as_ptr();
            #ahead_cursor
            for (chunk_start, pixels) in ::dsconv::__private::PixelChunks::new(pixels, #chunk) {
                // SAFETY: the chunk's rows lie in `input` and `out`.
                let a = input.as_ptr().add(chunk_start * #k);
                let o = out.add(chunk_start * #n);
                #skip_chunk
                // SAFETY (every micro-kernel call): rows r0..r0 + R < pixels; the block's
                // columns lie in its panel of the packed weights and bias; its valid lanes
                // lie in 0..N.
                #chunk_body
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dsconv_runtime::{LayerShape, Padding};

    fn plan(m: usize) -> Plan {
        let shape = LayerShape {
            dk: 3,
            m,
            n: 64,
            stride: 1,
            dilation: 1,
            padding: Padding::Same,
            depth_multiplier: 1,
            fixed_size: None,
        };
        Plan::for_spec(&shape, crate::plan::Backend::Avx512)
    }

    #[test]
    fn a_realigned_plan_emits_both_walks_and_takes_the_runtime_shift() {
        let code = |m| depthwise(&plan(m), &KernelNames::new("avx512")).to_string();
        // L3's 128 channels: the runtime's shift picks the walk.
        let l3 = code(128);
        assert!(l3.contains("realign_shift"), "{l3}");
        assert!(l3.contains("if shift == 0"), "{l3}");
        assert!(l3.contains("c0 = shift + cv *"), "{l3}");
        // Its weights and bias from the layer's copy for the shift, when it has one.
        assert!(l3.contains("realigned_copy (shift"), "{l3}");
        assert!(l3.contains("self . dw_realigned"), "{l3}");
        // L1's 32: one walk, from channel 0.
        let l1 = code(32);
        assert!(!l1.contains("shift"), "{l1}");
    }

    /// 40 channels on AVX-512: the last vector (channels 24..40) overlaps the one before,
    /// no load or store masked, one copy of the pixel code.
    #[test]
    fn an_overlapped_tail_emits_one_unmasked_body() {
        let code = |m| depthwise(&plan(m), &KernelNames::new("avx512")).to_string();
        let forty = code(40);
        assert!(forty.contains("if cv == 2usize { 24usize }"), "{forty}");
        assert!(!forty.contains("mask"), "{forty}");
        // The border pixels' code is emitted once (tap pointers start each copy).
        assert_eq!(forty.matches("let tap0").count(), 1, "{forty}");
    }
}
