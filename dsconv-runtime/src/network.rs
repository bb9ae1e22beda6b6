//! Whole networks: [`Layer`], the object-safe face of every generated layer, and [`Chain`],
//! which runs a list of layers of any shapes through its own buffers.
//!
//! `SeparableConv` has associated constants, so it cannot be a trait object; every type that
//! implements it implements [`Layer`] too, and `Box<dyn Layer>` holds any of them. The
//! methods have their own names (`run`, `run_on`, ...) so that a concrete layer with both
//! traits in scope never has two methods called `forward`.

use crate::layer::{check_length, Geometry};
use crate::{
    AlignedBuf, Backend, Dims, Error, MulCount, PlanSummary, SeparableConv, Split, Tensor,
};
use std::fmt;

/// A layer of any shape, as a trait object: what [`Chain`] runs.
///
/// Implemented by every `#[separable_conv]` layer (through [`SeparableConv`]). Every method
/// validates its arguments as the layer's own methods do, returns [`Error`] instead of
/// panicking, and leaves the output untouched on `Err`.
pub trait Layer: Send + Sync {
    /// The layer's name, which its errors carry.
    fn name(&self) -> &'static str;

    /// Channels of the input image.
    fn input_channels(&self) -> usize;

    /// Channels of the output image.
    fn output_channels(&self) -> usize;

    /// The output size for an `h x w` input, or the error a call with that size returns
    /// (an empty image, a size other than a fixed one, an image smaller than the window).
    fn output_dims(&self, h: usize, w: usize) -> Result<(usize, usize), Error>;

    /// Multiplications on an `h x w` input (zero when it yields no output).
    fn multiplications_at(&self, h: usize, w: usize) -> MulCount;

    /// The plan of `backend`, if the layer has kernels for it on this target.
    fn plan_on(&self, backend: Backend) -> Option<&'static PlanSummary>;

    /// How a call on an `h x w` input on `backend` is divided into the work items of a
    /// pool of `threads` threads (the plan's rule for that output size and thread count), if
    /// the layer has kernels for `backend` and takes that size.
    fn split_on(&self, backend: Backend, h: usize, w: usize, threads: usize) -> Option<Split> {
        let (ho, wo) = self.output_dims(h, w).ok()?;
        Some(self.plan_on(backend)?.split.split(ho * wo, threads))
    }

    /// Runs the whole layer on one `h x w` HWC image on `backend`
    /// ([`SeparableConv::forward_on`] for a separable layer).
    fn run_on(
        &self,
        backend: Backend,
        input: &[f32],
        h: usize,
        w: usize,
        output: &mut [f32],
    ) -> Result<(), Error>;

    /// [`run_on`](Self::run_on) on [`Backend::active`].
    fn run(&self, input: &[f32], h: usize, w: usize, output: &mut [f32]) -> Result<(), Error> {
        self.run_on(Backend::active()?, input, h, w, output)
    }

    /// Whether the layer was declared `residual = true` (it then runs through
    /// [`run_residual_on`](Self::run_residual_on), and `run_on` is an error).
    fn residual(&self) -> bool;

    /// Runs a residual layer: its output plus `skip` (the output's shape), added in the
    /// final store ([`SeparableConv::forward_residual_on`] for a separable layer).
    fn run_residual_on(
        &self,
        backend: Backend,
        input: &[f32],
        skip: &[f32],
        h: usize,
        w: usize,
        output: &mut [f32],
    ) -> Result<(), Error>;
}

impl<L: SeparableConv> Layer for L {
    fn name(&self) -> &'static str {
        L::NAME
    }

    fn input_channels(&self) -> usize {
        L::M
    }

    fn output_channels(&self) -> usize {
        L::N
    }

    fn output_dims(&self, h: usize, w: usize) -> Result<(usize, usize), Error> {
        Geometry::new(L::NAME, &L::SHAPE, 1, h, w).map(|g| (g.ho, g.wo))
    }

    fn multiplications_at(&self, h: usize, w: usize) -> MulCount {
        L::multiplications(h, w)
    }

    fn plan_on(&self, backend: Backend) -> Option<&'static PlanSummary> {
        L::plan(backend)
    }

    fn run_on(
        &self,
        backend: Backend,
        input: &[f32],
        h: usize,
        w: usize,
        output: &mut [f32],
    ) -> Result<(), Error> {
        self.forward_on(backend, input, h, w, output)
    }

    fn residual(&self) -> bool {
        L::RESIDUAL
    }

    fn run_residual_on(
        &self,
        backend: Backend,
        input: &[f32],
        skip: &[f32],
        h: usize,
        w: usize,
        output: &mut [f32],
    ) -> Result<(), Error> {
        self.forward_residual_on(backend, input, skip, h, w, output)
    }
}

/// The name [`Chain`]'s own errors carry as their layer.
pub const CHAIN_NAME: &str = "Chain";

/// Where a tensor of a chain lives: the caller's input or output, or one of the chain's
/// buffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    Input,
    Output,
    Buffer(usize),
}

/// One layer of a [`Chain`] with the sizes it runs at and where its tensors live.
struct Step {
    layer: Box<dyn Layer>,
    /// Input size `(h, w, channels)`.
    input: (usize, usize, usize),
    /// Output size `(h, w, channels)`.
    output: (usize, usize, usize),
    read: Slot,
    skip: Option<Slot>,
    write: Slot,
}

/// Builds a [`Chain`]: layers in order, each residual layer with the tensor it adds.
pub struct ChainBuilder {
    h: usize,
    w: usize,
    layers: Vec<(Box<dyn Layer>, Option<usize>)>,
}

impl ChainBuilder {
    /// Appends a layer; its input is the previous layer's output.
    pub fn layer(mut self, layer: impl Layer + 'static) -> Self {
        self.layers.push((Box::new(layer), None));
        self
    }

    /// Appends a boxed layer.
    pub fn boxed(mut self, layer: Box<dyn Layer>) -> Self {
        self.layers.push((layer, None));
        self
    }

    /// Appends a layer declared `residual = true`, whose skip input is the input of the
    /// layer `back` places before it (0: its own input). A MobileNetV2 block — 1x1 expand,
    /// then a separable layer with the skip — is `.layer(expand).residual(dw_project, 1)`.
    pub fn residual(mut self, layer: impl Layer + 'static, back: usize) -> Self {
        self.layers.push((Box::new(layer), Some(back)));
        self
    }

    /// Checks every layer against what reaches it and allocates the buffers.
    ///
    /// # Errors
    /// [`Error::EmptyChain`]; a layer's own size error for the size it would get;
    /// [`Error::ChainChannels`] when a layer's input channels differ from what the previous
    /// layer produces; [`Error::ChainSkip`] for a residual layer added without its skip (or
    /// a skip given to a layer that is not residual), a skip reaching before the chain's
    /// start, or a skip of another shape than the layer's output.
    pub fn build(self) -> Result<Chain, Error> {
        let first = self.layers.first().ok_or(Error::EmptyChain)?;
        let mut size = (self.h, self.w, first.0.input_channels());
        // Tensor t is the input of step t (tensor 0 the chain's input, tensor n its output).
        let mut tensors = vec![size];
        let mut shaped = Vec::with_capacity(self.layers.len());
        for (index, (layer, back)) in self.layers.into_iter().enumerate() {
            let skip_error = |reason: String| Error::ChainSkip {
                index,
                layer: layer.name(),
                reason,
            };
            if layer.input_channels() != size.2 {
                return Err(Error::ChainChannels {
                    index,
                    layer: layer.name(),
                    expected: layer.input_channels(),
                    actual: size.2,
                });
            }
            let (ho, wo) = layer.output_dims(size.0, size.1)?;
            let output = (ho, wo, layer.output_channels());
            [ho, wo, output.2]
                .into_iter()
                .try_fold(1usize, usize::checked_mul)
                .ok_or(Error::SizeOverflow {
                    layer: layer.name(),
                    h: size.0,
                    w: size.1,
                    batch: 1,
                })?;
            let skip = match (layer.residual(), back) {
                (true, None) => {
                    return Err(skip_error(
                        "declared residual = true but added without its skip: add it with \
                         ChainBuilder::residual(layer, back)"
                            .into(),
                    ))
                }
                (false, Some(_)) => {
                    return Err(skip_error(
                        "given a skip but declared without residual = true".into(),
                    ))
                }
                (false, None) => None,
                (true, Some(back)) => {
                    let t = index.checked_sub(back).ok_or_else(|| {
                        skip_error(format!(
                            "the skip reaches {back} layers back, before the chain's start \
                             (at most {index})"
                        ))
                    })?;
                    if tensors[t] != output {
                        return Err(skip_error(format!(
                            "the skip (the input of layer {t}) is {:?} but the layer's output \
                             is {output:?} (h, w, channels)",
                            tensors[t]
                        )));
                    }
                    Some(t)
                }
            };
            tensors.push(output);
            shaped.push((layer, size, output, skip));
            size = output;
        }
        // Every intermediate tensor lives from the step that writes it to the last step
        // that reads it (as input or skip); tensors whose lives do not overlap share a
        // buffer, so a plain chain needs two and a residual block one more.
        let n = shaped.len();
        let mut last_use: Vec<usize> = (0..=n).collect();
        for (i, (_, _, _, skip)) in shaped.iter().enumerate() {
            if let Some(t) = *skip {
                last_use[t] = last_use[t].max(i);
            }
        }
        let mut slots = vec![Slot::Input; n + 1];
        slots[n] = Slot::Output;
        // Per buffer: its floats, and the last step reading the tensor it holds.
        let mut buffers: Vec<(usize, usize)> = Vec::new();
        for t in 1..n {
            let writer = t - 1;
            let floats = tensors[t].0 * tensors[t].1 * tensors[t].2;
            let free = buffers.iter().position(|&(_, until)| until < writer);
            let b = match free {
                Some(b) => b,
                None => {
                    buffers.push((0, 0));
                    buffers.len() - 1
                }
            };
            buffers[b] = (buffers[b].0.max(floats), last_use[t]);
            slots[t] = Slot::Buffer(b);
        }
        let steps = shaped
            .into_iter()
            .enumerate()
            .map(|(i, (layer, input, output, skip))| Step {
                layer,
                input,
                output,
                read: slots[i],
                skip: skip.map(|t| slots[t]),
                write: slots[i + 1],
            })
            .collect();
        Ok(Chain {
            steps,
            buffers: buffers
                .into_iter()
                .map(|(floats, _)| AlignedBuf::zeroed(floats))
                .collect(),
        })
    }
}

/// A list of layers run one after the other on a fixed input size, each layer's output the
/// next one's input (and residual layers adding an earlier tensor), through buffers the
/// chain owns.
///
/// [`Chain::new`] (or [`Chain::builder`], for residual layers) checks that every layer
/// accepts the size and channels the previous one produces (its errors name the layer and
/// its position) and allocates the buffers once, each as large as the largest intermediate
/// image it holds: two for a plain chain, three with residual blocks.
/// [`forward`](Chain::forward) then allocates nothing. README's "Whole networks" section
/// shows one in use.
pub struct Chain {
    steps: Vec<Step>,
    buffers: Vec<AlignedBuf>,
}

impl Chain {
    /// A chain of `layers` (none residual) for `h x w` inputs of the first layer's
    /// channels: `Chain::builder(h, w)` with each layer added by
    /// [`boxed`](ChainBuilder::boxed), then [`build`](ChainBuilder::build).
    ///
    /// # Errors
    /// Those of [`ChainBuilder::build`].
    pub fn new(h: usize, w: usize, layers: Vec<Box<dyn Layer>>) -> Result<Chain, Error> {
        layers
            .into_iter()
            .fold(Chain::builder(h, w), ChainBuilder::boxed)
            .build()
    }

    /// A builder for `h x w` inputs of the first layer's channels.
    pub fn builder(h: usize, w: usize) -> ChainBuilder {
        ChainBuilder {
            h,
            w,
            layers: Vec::new(),
        }
    }

    /// The input size `(h, w, channels)` the chain was built for.
    pub fn input_dims(&self) -> (usize, usize, usize) {
        self.steps[0].input
    }

    /// The output size `(h, w, channels)`.
    pub fn output_dims(&self) -> (usize, usize, usize) {
        self.steps[self.steps.len() - 1].output
    }

    /// The layers, in order.
    pub fn layers(&self) -> impl ExactSizeIterator<Item = &dyn Layer> + '_ {
        self.steps.iter().map(|s| &*s.layer)
    }

    /// Each layer's input size `(h, w, channels)`, in order.
    pub fn input_dims_of_each(&self) -> impl ExactSizeIterator<Item = (usize, usize, usize)> + '_ {
        self.steps.iter().map(|s| s.input)
    }

    /// Multiplications of the whole chain (each field summed, saturating).
    pub fn multiplications(&self) -> MulCount {
        self.steps.iter().fold(
            MulCount {
                depthwise: 0,
                pointwise: 0,
                standard: 0,
            },
            |sum, s| {
                let m = s.layer.multiplications_at(s.input.0, s.input.1);
                MulCount {
                    depthwise: sum.depthwise.saturating_add(m.depthwise),
                    pointwise: sum.pointwise.saturating_add(m.pointwise),
                    standard: sum.standard.saturating_add(m.standard),
                }
            },
        )
    }

    /// The number of buffers the chain owns.
    pub fn buffer_count(&self) -> usize {
        self.buffers.len()
    }

    /// Floats the chain's own buffers hold (what it allocated once, when built).
    pub fn buffer_floats(&self) -> usize {
        self.buffers.iter().map(|b| b.len()).sum()
    }

    /// Runs every layer on [`Backend::active`]: `input` holds `h * w * channels` floats of
    /// [`input_dims`](Self::input_dims), `output` receives
    /// [`output_dims`](Self::output_dims).
    pub fn forward(&mut self, input: &[f32], output: &mut [f32]) -> Result<(), Error> {
        self.forward_on(Backend::active()?, input, output)
    }

    /// [`forward`](Self::forward) on a named backend.
    ///
    /// # Errors
    /// [`Error::Length`] (carrying [`CHAIN_NAME`]) for buffers of the wrong length, and
    /// [`Error::BackendUnavailable`]; both before any layer runs, so `output` is untouched.
    pub fn forward_on(
        &mut self,
        backend: Backend,
        input: &[f32],
        output: &mut [f32],
    ) -> Result<(), Error> {
        let backend = backend.require()?;
        let (i, o) = (self.input_dims(), self.output_dims());
        let dims = |d: (usize, usize, usize)| Dims::new(&[1, d.0, d.1, d.2]);
        check_length(
            CHAIN_NAME,
            Tensor::Input,
            i.0 * i.1 * i.2,
            dims(i),
            input.len(),
        )?;
        check_length(
            CHAIN_NAME,
            Tensor::Output,
            o.0 * o.1 * o.2,
            dims(o),
            output.len(),
        )?;
        for step in &self.steps {
            let (h, w, c) = step.input;
            let out_floats = step.output.0 * step.output.1 * step.output.2;
            // The written slot is never one the step reads: `build` gave a tensor's buffer
            // to another only after the tensor's last reader.
            let (dst, rest): (&mut [f32], Rest<'_>) = match step.write {
                Slot::Output => (&mut *output, Rest::all(&self.buffers)),
                Slot::Buffer(b) => {
                    let (lo, hi) = self.buffers.split_at_mut(b);
                    let (dst, hi) = hi.split_first_mut().expect("slot in range");
                    (&mut dst[..out_floats], Rest { lo, hi, gap: b })
                }
                Slot::Input => unreachable!("no step writes the chain's input"),
            };
            let src = rest.get(step.read, input, h * w * c);
            match step.skip {
                None => step.layer.run_on(backend, src, h, w, dst)?,
                Some(slot) => {
                    let skip = rest.get(slot, input, out_floats);
                    step.layer.run_residual_on(backend, src, skip, h, w, dst)?
                }
            }
        }
        Ok(())
    }
}

/// The chain's buffers other than the one being written (`gap`), to read from.
struct Rest<'a> {
    lo: &'a [AlignedBuf],
    hi: &'a [AlignedBuf],
    gap: usize,
}

impl<'a> Rest<'a> {
    fn all(buffers: &'a [AlignedBuf]) -> Self {
        Rest {
            lo: buffers,
            hi: &[],
            gap: usize::MAX,
        }
    }

    /// The first `floats` of the tensor in `slot` (the chain's input for `Slot::Input`).
    fn get(&self, slot: Slot, input: &'a [f32], floats: usize) -> &'a [f32] {
        match slot {
            Slot::Input => input,
            Slot::Buffer(b) if b < self.gap => &self.lo[b][..floats],
            Slot::Buffer(b) => &self.hi[b - self.gap - 1][..floats],
            Slot::Output => unreachable!("no step reads the chain's output"),
        }
    }
}

impl fmt::Debug for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for s in &self.steps {
            list.entry(&format_args!(
                "{} {:?} -> {:?}{}",
                s.layer.name(),
                s.input,
                s.output,
                if s.skip.is_some() { " + skip" } else { "" }
            ));
        }
        list.finish()
    }
}
