//! Emission: a validated [`LayerSpec`] and its [`Plan`]s turned into Rust code.
//!
//! `expand` emits what every layer has (the struct, constants, weight loading, the
//! `SeparableConv` impl and the fused driver); the per-ISA kernel bodies come from the
//! backend modules.

mod isa;
mod pointwise_layer;
mod scalar;
mod simd;

use crate::model::{Kind, LayerSpec};
use crate::plan::{Backend, DepthwiseKernel, Epilogue, Plan, PANEL_WIDTH};
use dsconv_runtime::{Activation, Padding};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

/// Generates the layer type for a validated spec: the struct, its inherent items (constants,
/// plans, constructor, kernels), `Debug`, and the `SeparableConv` impl.
pub fn expand(spec: &LayerSpec) -> TokenStream {
    if spec.kind == Kind::Pointwise {
        return pointwise_layer::expand(spec);
    }
    let shape = spec.shape();
    let epilogue = Epilogue {
        bias: spec.bias,
        activations: spec.activations,
        residual: spec.residual,
    };
    // Every backend of the ISA table this build has (cargo features); each is compiled only
    // on its architecture. Scalar comes first: it is every dispatch's fallback.
    let plans: Vec<Plan> = Backend::ALL
        .into_iter()
        .filter(|b| b.is_built())
        .map(|b| Plan::for_layer(&shape, epilogue, b))
        .collect();
    let mut layout = Layout::of(&plans[0]);
    // The backend whose plan realigns its depthwise vectors (AVX-512), whose layer keeps
    // realigned copies of the depthwise weights and bias for its lanes.
    let realigning: Vec<(usize, Backend)> = plans
        .iter()
        .filter_map(|p| match &p.depthwise.kernel {
            DepthwiseKernel::ChannelVectors(cv) if cv.realign => Some((cv.lanes, p.isa)),
            _ => None,
        })
        .collect();
    assert!(
        realigning.len() <= 1,
        "one backend realigns: the layer keeps copies for one vector width"
    );
    layout.realign = realigning.first().copied();
    let name = &spec.item.ident;
    let layer = layer_struct(spec, &plans, &layout);
    let fixed = fixed_consts(&shape);
    let plan_consts = plans.iter().map(plan_const);
    let constructor = constructor(spec);
    let forwards = plans.iter().map(forward_fn);
    let shape_literal = shape_literal(&shape);
    let mut tensors = vec![
        (format_ident!("dw"), layout.dw_packed, quote!()),
        (format_ident!("dw_bias"), layout.cp, quote!()),
        (format_ident!("pw"), layout.pw_packed(), quote!()),
        (format_ident!("pw_bias"), layout.np, quote!()),
    ];
    if let Some(len) = layout.dw_realigned() {
        tensors.push((format_ident!("dw_realigned"), len, layout.realign_cfg()));
    }
    let kernels = KernelModule {
        layer: name,
        tensors,
        consts: quote! {
            /// The layer's shape (its `SeparableConv::SHAPE`), for the kernels' pads.
            const SHAPE: ::dsconv::LayerShape = #shape_literal;
        },
    }
    .emit(plans.iter().map(|plan| (plan, backend_kernels(plan))));
    let debug = debug_impl(spec);
    let trait_impl = trait_impl(spec, &plans, &layout);
    quote! {
        #layer
        #kernels

        // Generated arithmetic on literal constants trips style lints (`x - 0 + 1 <= y`)
        // that say nothing about the user's code.
        #[allow(clippy::all, clippy::pedantic, clippy::nursery)]
        impl #name {
            #fixed
            #(#plan_consts)*
            #constructor
            #(#forwards)*
        }

        #debug
        #trait_impl
    }
}

/// Lengths of the packed tensors (the runtime's packing layouts, sized by the plan).
struct Layout {
    /// Depthwise output channels, `M * DM`.
    c: usize,
    /// Channels padded for packing.
    cp: usize,
    /// Floats from one tap's packed weights to the next (the plan's `weight_stride`).
    ws: usize,
    /// `dk * dk`.
    taps: usize,
    /// Floats of the packed depthwise weights (the plan's `packed_depthwise_len`).
    dw_packed: usize,
    /// Output channels padded to whole panels.
    np: usize,
    /// Width of the last, partial pointwise panel (0 if none).
    tail_width: usize,
    /// The vector lanes and the backend whose plan realigns the depthwise vectors (the
    /// plan's `realign`), if any.
    realign: Option<(usize, Backend)>,
}

impl Layout {
    /// Floats of the packed pointwise weights.
    fn pw_packed(&self) -> usize {
        self.np * self.c
    }

    /// Floats of the realigned copies of the depthwise weights and bias
    /// (`packing::pack_realigned`), when a plan realigns.
    fn dw_realigned(&self) -> Option<usize> {
        self.realign.map(|(lanes, _)| {
            dsconv_runtime::packing::realigned_len(self.dw_packed, self.cp, lanes)
        })
    }

    /// The `cfg` of the realigning backend's architecture: the copies exist only where
    /// its kernels do.
    fn realign_cfg(&self) -> TokenStream {
        self.realign
            .map(|(_, isa)| isa::VectorOps { isa }.cfg())
            .unwrap_or_default()
    }

    fn of(plan: &Plan) -> Layout {
        let pw = &plan.pointwise;
        Layout {
            c: plan.channels,
            cp: plan.padded_channels,
            ws: plan.weight_stride,
            taps: plan.depthwise.taps,
            dw_packed: plan.packed_depthwise_len(),
            np: pw.full_panels * PANEL_WIDTH + pw.tail_panel_width,
            tail_width: pw.tail_panel_width,
            realign: None,
        }
    }
}

/// The struct with its packed tensors and its docs (shape and every backend's plan).
fn layer_struct(spec: &LayerSpec, plans: &[Plan], l: &Layout) -> TokenStream {
    let shape = spec.shape();
    let item = &spec.item;
    let (name, vis, attrs, struct_token) =
        (&item.ident, &item.vis, &item.attrs, &item.struct_token);
    let summary = format!(
        "Depthwise separable layer generated by `#[separable_conv]`: {dk}x{dk} depthwise over {m} \
         channels (depth multiplier {dm}, {}), then 1x1 to {n} \
         channels, activation \"{}\" after the depthwise stage and \"{}\" after the 1x1{}. \
         Implements [`dsconv::SeparableConv`].",
        shape.describe_geometry(),
        spec.activations.depthwise.name(),
        spec.activations.pointwise.name(),
        if spec.bias { ", with biases" } else { "" },
        dk = shape.dk,
        m = shape.m,
        dm = shape.depth_multiplier,
        n = shape.n,
    );
    let plan_docs: Vec<String> = plans.iter().map(|p| format!("- {p}")).collect();
    // Clone copies the packed weights; it steps aside when the user derives it.
    let clone_derive = (!derives(&item.attrs, "Clone")).then(|| quote!(#[derive(Clone)]));
    let (dw_packed, cp) = (l.dw_packed, l.cp);
    let (pw_packed, np) = (l.pw_packed(), l.np);
    let cfg = l.realign_cfg();
    let realigned = l.dw_realigned().map(|len| {
        quote! {
            /// Copies of `dw` and `dw_bias` for calls whose buffers start 16, 32
            /// or 48 bytes off a 64-byte boundary (a `Vec` from `malloc`), each placed so
            /// that the realigned depthwise kernel's weight and bias loads are
            /// aligned (`packing::pack_realigned`); on the realigning backend's
            /// architecture only.
            #cfg
            dw_realigned: ::dsconv::__private::AlignedArray<#len>,
        }
    });
    quote! {
        #(#attrs)*
        #[doc = #summary]
        #[doc = ""]
        #[doc = "Plans:"]
        #(#[doc = #plan_docs])*
        #clone_derive
        #vis #struct_token #name {
            /// Depthwise weights, tap-major, each tap's channels padded to the plan's weight
            /// stride: `[tap][weight_stride]`.
            dw: ::dsconv::__private::AlignedArray<#dw_packed>,
            /// Depthwise bias (zeros without `bias = true`), padded to `CP`.
            dw_bias: ::dsconv::__private::AlignedArray<#cp>,
            /// Pointwise weights in panels: `[panel][input channel][panel column]`.
            pw: ::dsconv::__private::AlignedArray<#pw_packed>,
            /// Pointwise bias (zeros without `bias = true`), padded to whole panels.
            pw_bias: ::dsconv::__private::AlignedArray<#np>,
            #realigned
        }
    }
}

/// The constants of a layer declared with a fixed size.
fn fixed_consts(shape: &dsconv_runtime::LayerShape) -> Option<TokenStream> {
    let (h, w) = shape.fixed_size?;
    let counts = shape
        .multiplications(h, w)
        .expect("validated: counts of the fixed size fit in usize");
    let (d, p, s, t) = (
        counts.depthwise,
        counts.pointwise,
        counts.standard,
        counts.total(),
    );
    let (ho, wo) = shape
        .output_size(h, w)
        .expect("validated: fixed size has an output");
    Some(quote! {
        /// Declared input height.
        pub const H: usize = #h;
        /// Declared input width.
        pub const W: usize = #w;
        /// Output height for the declared size.
        pub const HO: usize = #ho;
        /// Output width for the declared size.
        pub const WO: usize = #wo;
        /// Depthwise multiplications for the declared input size.
        pub const DEPTHWISE_MULS: usize = #d;
        /// Pointwise multiplications for the declared input size.
        pub const POINTWISE_MULS: usize = #p;
        /// Multiplications of the layer for the declared size (depthwise + pointwise).
        pub const MULS: usize = #t;
        /// Multiplications of the standard convolution this layer replaces.
        pub const STANDARD_MULS: usize = #s;
    })
}

/// `PLAN_<BACKEND>`: the backend's plan report.
fn plan_const(plan: &Plan) -> TokenStream {
    let cfg = isa::VectorOps { isa: plan.isa }.cfg();
    let name = plan_const_name(plan);
    let doc = format!("The plan of the {} backend: {plan}", plan.isa.name());
    let summary = plan_summary(plan);
    quote! {
        #[doc = #doc]
        #cfg
        pub const #name: ::dsconv::PlanSummary = #summary;
    }
}

fn plan_const_name(plan: &Plan) -> syn::Ident {
    format_ident!("PLAN_{}", plan.isa.name().to_uppercase())
}

/// `from_weights` (or `from_weights_with_bias`): the typed constructor over `load`.
fn constructor(spec: &LayerSpec) -> TokenStream {
    if spec.bias {
        quote! {
            /// Loads weights and biases in PyTorch layouts: `depthwise` is `(M*DM, 1, DK, DK)`,
            /// `depthwise_bias` has `M*DM` values, `pointwise` is `(N, M*DM, 1, 1)` and
            /// `pointwise_bias` has `N` values, all row-major.
            ///
            /// # Errors
            /// As [`dsconv::SeparableConv::load`].
            pub fn from_weights_with_bias(
                depthwise: &[f32],
                depthwise_bias: &[f32],
                pointwise: &[f32],
                pointwise_bias: &[f32],
            ) -> ::core::result::Result<Self, ::dsconv::Error> {
                <Self as ::dsconv::SeparableConv>::load(&::dsconv::Weights {
                    depthwise,
                    depthwise_bias: ::core::option::Option::Some(depthwise_bias),
                    pointwise,
                    pointwise_bias: ::core::option::Option::Some(pointwise_bias),
                })
            }
        }
    } else {
        quote! {
            /// Loads weights in PyTorch layouts: `depthwise` is `(M*DM, 1, DK, DK)` and
            /// `pointwise` is `(N, M*DM, 1, 1)`, row-major.
            ///
            /// # Errors
            /// As [`dsconv::SeparableConv::load`].
            pub fn from_weights(
                depthwise: &[f32],
                pointwise: &[f32],
            ) -> ::core::result::Result<Self, ::dsconv::Error> {
                <Self as ::dsconv::SeparableConv>::load(&::dsconv::Weights {
                    depthwise,
                    depthwise_bias: ::core::option::Option::None,
                    pointwise,
                    pointwise_bias: ::core::option::Option::None,
                })
            }
        }
    }
}

/// `Debug` shows the shape, not megabytes of weights; it steps aside when the user derives
/// it.
fn debug_impl(spec: &LayerSpec) -> Option<TokenStream> {
    if derives(&spec.item.attrs, "Debug") {
        return None;
    }
    let name = &spec.item.ident;
    let name_str = name.to_string();
    Some(quote! {
        impl ::core::fmt::Debug for #name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.debug_struct(#name_str)
                    .field("shape", &<Self as ::dsconv::SeparableConv>::SHAPE)
                    .field("activations", &<Self as ::dsconv::SeparableConv>::ACTIVATIONS)
                    .field("bias", &<Self as ::dsconv::SeparableConv>::BIAS)
                    .finish_non_exhaustive()
            }
        }
    })
}

/// One backend's kernels, depthwise and pointwise (methods of the kernel module's
/// `Tensors`, see [`KernelModule`]).
fn backend_kernels(plan: &Plan) -> TokenStream {
    let names = simd::KernelNames::new(plan.isa.name());
    if plan.isa == Backend::Scalar {
        let dw = scalar::depthwise(plan, &names.depthwise);
        let pw = scalar::pointwise(plan, &names.pointwise);
        quote!(#dw #pw)
    } else {
        let dw = simd::depthwise(plan, &names);
        let pw = simd::pointwise(plan, &names);
        quote!(#dw #pw)
    }
}

/// One backend's `forward`: the runtime's fused tile walk over its kernels.
fn forward_fn(plan: &Plan) -> TokenStream {
    let names = simd::KernelNames::new(plan.isa.name());
    let ops = isa::VectorOps { isa: plan.isa };
    let (cfg, feature) = (ops.cfg(), ops.target_feature());
    let forward = &names.forward;
    let (dw_fn, pw_fn) = (&names.depthwise, &names.pointwise);
    let (n, c) = (plan.shape.n, plan.channels);
    // The depthwise scratch of the plan's tile: no split runs more pixels at once.
    let tile_pixels = plan.fusion.tile_pixels;
    let dw_scratch = simd::depthwise_scratch(plan, quote!(#tile_pixels));
    let plan_name = plan_const_name(plan);
    let residual = plan.epilogue.residual;
    let skip_param = residual.then(|| quote!(, skip: ::core::option::Option<&[f32]>));
    let skip_tile =
        residual.then(|| quote!(, skip.map(|s| &s[first_pixel * #n..(first_pixel + pixels) * #n])));
    // The input rows the next tile's depthwise stage reads anew, for this tile's pointwise
    // stage to prefetch, where the plan says so.
    let ahead = if plan.fusion.prefetch_next_input {
        quote! {
            let ahead: &[f32] = match next {
                ::core::option::Option::Some(next) => ::dsconv::__private::next_tile_rows(
                    input,
                    &<Self as ::dsconv::SeparableConv>::SHAPE,
                    (h, w, wo),
                    (first_pixel, pixels),
                    next,
                ),
                ::core::option::Option::None => &[],
            };
        }
    } else {
        quote! {
            let _ = next;
            let ahead: &[f32] = &[];
        }
    };
    quote! {
        /// `forward` of this backend: the runtime's fused walk (depthwise tiles into
        /// per-thread scratch, each consumed by the pointwise stage while it is in cache;
        /// for few pixels, the stages in turn) over this backend's kernels, split into the
        /// thread pool's work items as the plan's rule says.
        ///
        /// # Safety
        /// As `SeparableConv::__forward_unchecked`, for this backend.
        #cfg
        #feature
        #[allow(unused_unsafe)]
        unsafe fn #forward(&self, input: &[f32], h: usize, w: usize, wo: usize, output: &mut [f32] #skip_param) {
            let kernels = self.__dsconv_kernels();
            ::dsconv::__private::fused_tiles(
                output,
                #n,
                #c,
                Self::#plan_name.split,
                #dw_scratch,
                // SAFETY: each tile (or run) covers pixels first_pixel..first_pixel + len of
                // the output grid, at most the plan's tile; the tile and scratch have the
                // lengths the kernels require; the caller checked the backend runs on this
                // CPU.
                |first_pixel, dw_tile, scratch| unsafe {
                    kernels.#dw_fn(input, h, w, wo, first_pixel, dw_tile, scratch)
                },
                // SAFETY: as above; `out_rows` points at `pixels * N` floats of the output
                // (and the skip rows, from a skip of the output's length, are as many);
                // `panels` lies in 0..PANELS.
                |first_pixel, dw_tile, pixels, out_rows, panels, next, cold| unsafe {
                    #ahead
                    kernels.#pw_fn(dw_tile, pixels, out_rows #skip_tile, panels, ahead, cold)
                },
            )
        }
    }
}

/// Where a layer's kernels live: a module of their own, `__dsconv_kernels_<Layer>`, with one
/// child module per backend. rustc compiles the functions of one module in one codegen unit,
/// and units in parallel; with the kernels beside the struct, every layer of a file (and
/// every backend of a layer) was one unit, compiled on one core. (Modules inside a function
/// body join the function's unit: a layer declared in a function builds as before.)
///
/// The kernels are methods of `Tensors`, the layer's packed tensors borrowed, since a
/// module inside a function cannot name the layer's type; the layer's
/// `__dsconv_kernels()` lends them.
struct KernelModule<'a> {
    /// The layer's type.
    layer: &'a syn::Ident,
    /// The packed tensors the kernels read: field name, length in floats (each an
    /// `AlignedArray` of the layer struct) and the `cfg` it exists under (empty: always).
    tensors: Vec<(syn::Ident, usize, TokenStream)>,
    /// Associated items of `Tensors` the kernels use.
    consts: TokenStream,
}

impl KernelModule<'_> {
    /// The module, holding each backend's `kernels` under the backend's `cfg`, and the
    /// layer's `__dsconv_kernels()`.
    fn emit<'p>(&self, kernels: impl Iterator<Item = (&'p Plan, TokenStream)>) -> TokenStream {
        use syn::ext::IdentExt;
        let layer = self.layer;
        let module = format_ident!("__dsconv_kernels_{}", layer.unraw());
        let consts = &self.consts;
        let fields: Vec<_> = self.tensors.iter().map(|t| &t.0).collect();
        let lens = self.tensors.iter().map(|t| t.1);
        let cfgs: Vec<_> = self.tensors.iter().map(|t| &t.2).collect();
        let backends = kernels.map(|(plan, kernels)| {
            let cfg = isa::VectorOps { isa: plan.isa }.cfg();
            let backend = format_ident!("{}", plan.isa.name());
            quote! {
                #cfg
                mod #backend {
                    impl super::Tensors<'_> {
                        #kernels
                    }
                }
            }
        });
        quote! {
            #[doc(hidden)]
            #[allow(non_snake_case, clippy::all, clippy::pedantic, clippy::nursery)]
            mod #module {
                /// The layer's packed tensors, borrowed: what its kernels read.
                pub(super) struct Tensors<'a> {
                    #(#cfgs pub(super) #fields: &'a ::dsconv::__private::AlignedArray<#lens>,)*
                }

                impl Tensors<'_> {
                    #consts
                }

                #(#backends)*
            }

            #[allow(clippy::all, clippy::pedantic, clippy::nursery)]
            impl #layer {
                /// The packed tensors as the kernels read them.
                #[inline(always)]
                fn __dsconv_kernels(&self) -> #module::Tensors<'_> {
                    #module::Tensors { #(#cfgs #fields: &self.#fields,)* }
                }
            }
        }
    }
}

/// `match backend { .. }` over every vector backend of the build (each under its
/// architecture's `cfg`), the scalar kernel the fallback: `call` gives a backend's call.
fn dispatch(
    plans: &[Plan],
    call: impl Fn(&Plan, &simd::KernelNames) -> TokenStream,
) -> TokenStream {
    let scalar = plans
        .iter()
        .find(|p| p.isa == Backend::Scalar)
        .expect("scalar is always planned");
    let arms = plans
        .iter()
        .filter(|p| p.isa != Backend::Scalar)
        .map(|plan| {
            let cfg = isa::VectorOps { isa: plan.isa }.cfg();
            let variant = format_ident!("{}", plan.isa.variant_name());
            let body = call(plan, &simd::KernelNames::new(plan.isa.name()));
            quote! {
                #cfg
                ::dsconv::Backend::#variant => #body,
            }
        });
    let fallback = call(scalar, &simd::KernelNames::new(Backend::Scalar.name()));
    quote! {
        // SAFETY: the caller checked that `backend` runs on this CPU and validated sizes
        // and lengths (the trait's contract for the `__*_unchecked` entries).
        unsafe {
            match backend {
                #(#arms)*
                _ => #fallback,
            }
        }
    }
}

/// `impl SeparableConv`: the shape constants, the plans, `load` and the kernel entries.
fn trait_impl(spec: &LayerSpec, plans: &[Plan], l: &Layout) -> TokenStream {
    let shape = spec.shape();
    let name = &spec.item.ident;
    let name_str = name.to_string();
    let shape_literal = shape_literal(&shape);
    let act = activation_path;
    let (dw_act, pw_act) = (
        act(spec.activations.depthwise),
        act(spec.activations.pointwise),
    );
    let bias = spec.bias;
    let plan_items = plans.iter().map(|plan| {
        let cfg = isa::VectorOps { isa: plan.isa }.cfg();
        let name = plan_const_name(plan);
        quote!(#cfg Self::#name,)
    });
    let load = load_fn(spec, l);
    // A residual layer's kernels take an optional skip: `None` for the stage alone.
    let residual = spec.residual;
    let none = residual.then(|| quote!(, ::core::option::Option::None));
    let forward = dispatch(plans, |_, k| {
        let f = &k.forward;
        quote!(self.#f(input, h, w, wo, output #none))
    });
    let forward_residual = if residual {
        dispatch(plans, |_, k| {
            let f = &k.forward;
            quote!(self.#f(input, h, w, wo, output, ::core::option::Option::Some(skip)))
        })
    } else {
        // Never called: `forward_residual_on` refuses a layer that is not residual.
        quote!({
            let _ = skip;
            #forward
        })
    };
    let depthwise = dispatch(plans, |plan, k| {
        let f = &k.depthwise;
        let c = plan.channels;
        let scratch = simd::depthwise_scratch(plan, quote!(output.len() / #c));
        quote!({
            ::dsconv::__private::with_scratch(#scratch, |scratch| {
                self.__dsconv_kernels().#f(input, h, w, wo, 0, output, scratch)
            })
        })
    });
    let pointwise = dispatch(plans, |plan, k| {
        let f = &k.pointwise;
        let panels = plan.pointwise.panels();
        // The stage called on its own, in one item: its weights may be anywhere (cold).
        quote!(self.__dsconv_kernels().#f(input, pixels, output.as_mut_ptr() #none, (0, #panels), &[], true))
    });
    quote! {
        #[allow(clippy::all, clippy::pedantic, clippy::nursery)]
        impl ::dsconv::SeparableConv for #name {
            const NAME: &'static str = #name_str;
            const SHAPE: ::dsconv::LayerShape = #shape_literal;
            const ACTIVATIONS: ::dsconv::Activations = ::dsconv::Activations {
                depthwise: #dw_act,
                pointwise: #pw_act,
            };
            const BIAS: bool = #bias;
            const RESIDUAL: bool = #residual;
            const PLANS: &'static [::dsconv::PlanSummary] = &[#(#plan_items)*];

            #load

            unsafe fn __forward_unchecked(
                &self,
                backend: ::dsconv::Backend,
                input: &[f32],
                h: usize,
                w: usize,
                _ho: usize,
                wo: usize,
                output: &mut [f32],
            ) {
                #forward
            }

            unsafe fn __forward_residual_unchecked(
                &self,
                backend: ::dsconv::Backend,
                input: &[f32],
                skip: &[f32],
                h: usize,
                w: usize,
                _ho: usize,
                wo: usize,
                output: &mut [f32],
            ) {
                #forward_residual
            }

            unsafe fn __depthwise_unchecked(
                &self,
                backend: ::dsconv::Backend,
                input: &[f32],
                h: usize,
                w: usize,
                _ho: usize,
                wo: usize,
                output: &mut [f32],
            ) {
                #depthwise
            }

            unsafe fn __pointwise_unchecked(
                &self,
                backend: ::dsconv::Backend,
                input: &[f32],
                pixels: usize,
                output: &mut [f32],
            ) {
                #pointwise
            }
        }
    }
}

/// The `LayerShape` literal of a layer (its `SeparableConv::SHAPE`).
fn shape_literal(shape: &dsconv_runtime::LayerShape) -> TokenStream {
    let (dk, m, n, stride, dm) = (
        shape.dk,
        shape.m,
        shape.n,
        shape.stride,
        shape.depth_multiplier,
    );
    let padding = padding_tokens(shape.padding);
    let dilation = shape.dilation;
    let fixed = match shape.fixed_size {
        Some((h, w)) => quote!(::core::option::Option::Some((#h, #w))),
        None => quote!(::core::option::Option::None),
    };
    quote! {
        ::dsconv::LayerShape {
            dk: #dk,
            m: #m,
            n: #n,
            stride: #stride,
            dilation: #dilation,
            padding: #padding,
            depth_multiplier: #dm,
            fixed_size: #fixed,
        }
    }
}

/// `SeparableConv::load`: checks, then packs every tensor with the runtime's packing
/// functions.
fn load_fn(spec: &LayerSpec, l: &Layout) -> TokenStream {
    let (c, cp, ws, taps, np, tail_width) = (l.c, l.cp, l.ws, l.taps, l.np, l.tail_width);
    let n = spec.n.value;
    let dk = spec.shape().dk;
    let bias = spec.bias;
    let cfg = l.realign_cfg();
    let realigned = l.realign.map(|(lanes, _)| {
        quote! {
            #cfg
            let dw_realigned = __rt::pack_realigned(&dw, &dw_bias, #lanes);
        }
    });
    let realigned_field = l.realign.map(|_| {
        quote! {
            #cfg
            dw_realigned: __rt::to_array(name, Tensor::DepthwiseWeights, &dw_realigned)?,
        }
    });
    quote! {
        fn load(weights: &::dsconv::Weights<'_>) -> ::core::result::Result<Self, ::dsconv::Error> {
            use ::dsconv::__private as __rt;
            use ::dsconv::Tensor;
            // A bad `DSCONV_BACKEND` is reported when the layer is built, not at its first
            // call.
            ::dsconv::Backend::active()?;
            let name = <Self as ::dsconv::SeparableConv>::NAME;
            __rt::check_weights(name, Tensor::DepthwiseWeights, &[#c, 1, #dk, #dk], weights.depthwise)?;
            __rt::check_bias(name, Tensor::DepthwiseBias, #bias, #c, weights.depthwise_bias)?;
            __rt::check_weights(name, Tensor::PointwiseWeights, &[#n, #c, 1, 1], weights.pointwise)?;
            __rt::check_bias(name, Tensor::PointwiseBias, #bias, #n, weights.pointwise_bias)?;
            let zeros_c = [0.0f32; #c];
            let zeros_n = [0.0f32; #n];
            let dw_bias = weights.depthwise_bias.unwrap_or(&zeros_c[..]);
            let pw_bias = weights.pointwise_bias.unwrap_or(&zeros_n[..]);
            let dw = __rt::pack_depthwise(weights.depthwise, #c, #taps, #ws);
            let dw_bias = __rt::depthwise_bias(dw_bias, #c, #cp);
            #realigned
            ::core::result::Result::Ok(Self {
                dw: __rt::to_array(name, Tensor::DepthwiseWeights, &dw)?,
                dw_bias: __rt::to_array(name, Tensor::DepthwiseBias, &dw_bias)?,
                pw: __rt::to_array(
                    name,
                    Tensor::PointwiseWeights,
                    &__rt::pack_pointwise_panels(weights.pointwise, #n, #c, __rt::PANEL_WIDTH, #tail_width),
                )?,
                pw_bias: __rt::to_array(name, Tensor::PointwiseBias, &__rt::pad_columns(pw_bias, 1, #n, #np))?,
                #realigned_field
            })
        }
    }
}

/// A `Padding` as a constant expression.
fn padding_tokens(padding: Padding) -> TokenStream {
    match padding {
        Padding::Same => quote!(::dsconv::Padding::Same),
        Padding::Valid => quote!(::dsconv::Padding::Valid),
        Padding::SameUpper => quote!(::dsconv::Padding::SameUpper),
        Padding::SameLower => quote!(::dsconv::Padding::SameLower),
        Padding::Explicit(p) => {
            let (top, left, bottom, right) = (p.top, p.left, p.bottom, p.right);
            quote!(::dsconv::Padding::Explicit(::dsconv::Pads {
                top: #top,
                left: #left,
                bottom: #bottom,
                right: #right,
            }))
        }
    }
}

/// The plan's user-facing report ([`Plan::summary`]) as a constant expression.
fn plan_summary(plan: &Plan) -> TokenStream {
    let r = plan.summary();
    let variant = |name: String| format_ident!("{}", name);
    let backend = variant(r.backend.variant_name().to_string());
    let strategy = variant(format!("{:?}", r.depthwise_strategy));
    let order = variant(format!("{:?}", r.pointwise_order));
    let prefetch = variant(format!("{:?}", r.pointwise_prefetch));
    let cold = match r.pointwise_cold_first_chunk {
        Some(p) => {
            let p = variant(format!("{p:?}"));
            quote!(::core::option::Option::Some(::dsconv::PointwisePrefetch::#p))
        }
        None => quote!(::core::option::Option::None),
    };
    let (lanes, ppb, cv, dlpf, dlu) = (
        r.lanes,
        r.depthwise_pixels_per_block,
        r.depthwise_channel_vectors,
        r.depthwise_loads_per_fma,
        r.depthwise_lane_utilisation,
    );
    let (rows, cols, wir, plpf, plu) = (
        r.pointwise_rows,
        r.pointwise_cols,
        r.pointwise_weights_in_registers,
        r.pointwise_loads_per_fma,
        r.pointwise_lane_utilisation,
    );
    let split = {
        let s = r.split;
        let (tile, rows, panels, per_pixel, depthwise) = (
            s.tile_pixels,
            s.rows,
            s.panels,
            s.multiplications_per_pixel,
            s.depthwise,
        );
        quote! {
            ::dsconv::SplitRule {
                tile_pixels: #tile,
                rows: #rows,
                panels: #panels,
                multiplications_per_pixel: #per_pixel,
                depthwise: #depthwise,
            }
        }
    };
    let geometry = r.geometry;
    let row_loop = r.depthwise_row_loop;
    let next_input = r.pointwise_prefetches_next_input;
    let (weight_stride, padded_channels) = (r.depthwise_weight_stride, r.depthwise_padded_channels);
    let (group, outer_up_to) = (r.depthwise_channel_group, r.depthwise_passes_outer_up_to);
    let (rows_per_block, realigned) = (r.depthwise_rows_per_block, r.depthwise_realigned);
    let overlapped_tail = r.depthwise_overlapped_tail;
    let (residual, pointwise_only) = (r.residual, r.pointwise_only);
    let (dw_act, pw_act) = (
        activation_path(r.activations.depthwise),
        activation_path(r.activations.pointwise),
    );
    quote! {
        ::dsconv::PlanSummary {
            backend: ::dsconv::Backend::#backend,
            geometry: #geometry,
            activations: ::dsconv::Activations {
                depthwise: #dw_act,
                pointwise: #pw_act,
            },
            lanes: #lanes,
            depthwise_strategy: ::dsconv::DepthwiseStrategy::#strategy,
            depthwise_pixels_per_block: #ppb,
            depthwise_channel_vectors: #cv,
            depthwise_loads_per_fma: #dlpf,
            depthwise_row_loop: #row_loop,
            depthwise_lane_utilisation: #dlu,
            depthwise_weight_stride: #weight_stride,
            depthwise_padded_channels: #padded_channels,
            depthwise_channel_group: #group,
            depthwise_passes_outer_up_to: #outer_up_to,
            depthwise_rows_per_block: #rows_per_block,
            depthwise_realigned: #realigned,
            depthwise_overlapped_tail: #overlapped_tail,
            pointwise_rows: #rows,
            pointwise_cols: #cols,
            pointwise_order: ::dsconv::PointwiseOrder::#order,
            pointwise_prefetch: ::dsconv::PointwisePrefetch::#prefetch,
            pointwise_cold_first_chunk: #cold,
            pointwise_weights_in_registers: #wir,
            pointwise_prefetches_next_input: #next_input,
            pointwise_loads_per_fma: #plpf,
            pointwise_lane_utilisation: #plu,
            split: #split,
            residual: #residual,
            pointwise_only: #pointwise_only,
        }
    }
}

/// The depthwise kernel's signature, the one definition every backend's depthwise function
/// (and every call: `(input, h, w, wo, first_pixel, out, scratch)`) follows: output pixels
/// `first_pixel..first_pixel + out.len() / C` of the `wo`-wide output grid of an `h x w`
/// input, with `scratch` as the plan's scratch layout requires. `scratch_name` is `scratch`,
/// or `_scratch` for a kernel that needs none.
pub(crate) fn depthwise_signature(name: &syn::Ident, scratch_name: &str) -> TokenStream {
    let scratch = format_ident!("{}", scratch_name);
    quote! {
        fn #name(
            &self,
            input: &[f32],
            h: usize,
            w: usize,
            wo: usize,
            first_pixel: usize,
            out: &mut [f32],
            #scratch: &mut [f32],
        )
    }
}

/// The pointwise stage's signature: `pixels` rows of `K` floats in, of `N` floats out (at
/// `out`, which the caller guarantees holds `pixels * N` floats); for a residual plan also an
/// optional skip of `N` floats per row, added after the activation; only the weight panels
/// `panels.0..panels.1` (the tail panel's index is the number of full panels) are computed,
/// so threads can share an output by panels. `ahead` is memory to prefetch meanwhile, never
/// read (the next tile's input rows; empty when there is none or the plan prefetches none).
/// `cold`: the weights may not be in this core's caches (the runtime's `drive::cold_item`),
/// so the first chunk takes the plan's `cold_first_chunk` walk, if it has one.
pub(crate) fn pointwise_signature(
    plan: &Plan,
    name: &syn::Ident,
    pixels_name: &str,
) -> TokenStream {
    let pixels = format_ident!("{}", pixels_name);
    let skip = plan
        .epilogue
        .residual
        .then(|| quote!(, skip: ::core::option::Option<&[f32]>));
    quote!(fn #name(&self, input: &[f32], #pixels: usize, out: *mut f32 #skip, panels: (usize, usize), ahead: &[f32], cold: bool))
}

/// Whether `attrs` hold a `#[derive(..)]` naming `trait_name`.
fn derives(attrs: &[syn::Attribute], trait_name: &str) -> bool {
    attrs
        .iter()
        .filter(|a| a.path().is_ident("derive"))
        .any(|a| {
            let mut found = false;
            let _ = a.parse_nested_meta(|meta| {
                found |= meta
                    .path
                    .segments
                    .last()
                    .is_some_and(|s| s.ident == trait_name);
                Ok(())
            });
            found
        })
}

/// `act(value)` for a scalar `f32` expression: the runtime's `Activation::apply`, which
/// folds to the one activation's code (NaN-propagating as the reference).
pub(crate) fn activate_scalar(activation: Activation, value: TokenStream) -> TokenStream {
    match activation {
        Activation::None => value,
        other => {
            let variant = activation_path(other);
            quote!(#variant.apply(#value))
        }
    }
}

/// `::dsconv::Activation::<variant>`.
pub(crate) fn activation_path(activation: Activation) -> TokenStream {
    let variant = match activation {
        Activation::None => quote!(None),
        Activation::Relu => quote!(Relu),
        Activation::Relu6 => quote!(Relu6),
        Activation::HardSwish => quote!(HardSwish),
        Activation::Silu => quote!(Silu),
    };
    quote!(::dsconv::Activation::#variant)
}
