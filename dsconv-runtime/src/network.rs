//! Whole networks: [`Layer`], the object-safe face of every generated layer, and [`Chain`],
//! which runs a list of layers of any shapes through its own buffers.
//!
//! `SeparableConv` has associated constants, so it cannot be a trait object; every type that
//! implements it implements [`Layer`] too, and `Box<dyn Layer>` holds any of them. The
//! methods have their own names (`run`, `run_on`, ...) so that a concrete layer with both
//! traits in scope never has two methods called `forward`.

use crate::layer::{check_length, Geometry};
use crate::{AlignedBuf, Backend, Dims, Error, MulCount, PlanSummary, SeparableConv, Tensor};
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
}

/// The name [`Chain`]'s own errors carry as their layer.
pub const CHAIN_NAME: &str = "Chain";

/// One layer of a [`Chain`] with the sizes it runs at.
struct Step {
    layer: Box<dyn Layer>,
    /// Input size `(h, w, channels)`.
    input: (usize, usize, usize),
    /// Output size `(h, w, channels)`.
    output: (usize, usize, usize),
}

/// A list of layers run one after the other on a fixed input size, each layer's output the
/// next one's input, through buffers the chain owns.
///
/// [`Chain::new`] checks that every layer accepts the size and channels the previous one
/// produces (its errors name the layer and its position) and allocates two buffers, each as
/// large as the largest intermediate image they hold; [`forward`](Chain::forward) then
/// allocates nothing.
///
/// README's "Whole networks" section shows one in use.
pub struct Chain {
    steps: Vec<Step>,
    buffers: [AlignedBuf; 2],
}

impl Chain {
    /// A chain of `layers` for `h x w` inputs of the first layer's channels.
    ///
    /// # Errors
    /// [`Error::EmptyChain`] for no layers; the error a layer returns for the size it would
    /// get (e.g. [`Error::ImageSmallerThanKernel`], [`Error::FixedSizeMismatch`]); and
    /// [`Error::ChainChannels`] when a layer's input channels differ from the previous
    /// layer's output channels.
    pub fn new(h: usize, w: usize, layers: Vec<Box<dyn Layer>>) -> Result<Chain, Error> {
        let first = layers.first().ok_or(Error::EmptyChain)?;
        let mut size = (h, w, first.input_channels());
        let mut steps = Vec::with_capacity(layers.len());
        let mut largest = [0usize; 2];
        let last = layers.len() - 1;
        for (index, layer) in layers.into_iter().enumerate() {
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
            let floats = [ho, wo, output.2]
                .into_iter()
                .try_fold(1usize, usize::checked_mul)
                .ok_or(Error::SizeOverflow {
                    layer: layer.name(),
                    h: size.0,
                    w: size.1,
                    batch: 1,
                })?;
            // Outputs alternate between the two buffers; the last goes to the caller.
            if index != last {
                largest[index % 2] = largest[index % 2].max(floats);
            }
            steps.push(Step {
                layer,
                input: size,
                output,
            });
            size = output;
        }
        Ok(Chain {
            steps,
            buffers: largest.map(AlignedBuf::zeroed),
        })
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

    /// Floats the chain's own buffers hold (what it allocated once, in [`Chain::new`]).
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
        // Step k writes buffer k % 2 (the last step the caller's output) and reads the
        // other one (the first step the caller's input): never the buffer it writes.
        let [even, odd] = &mut self.buffers;
        let (mut read, mut write): (&mut [f32], &mut [f32]) = (odd, even);
        let last = self.steps.len() - 1;
        for (index, step) in self.steps.iter().enumerate() {
            let (h, w, c) = step.input;
            let src: &[f32] = if index == 0 {
                input
            } else {
                &read[..h * w * c]
            };
            let dst: &mut [f32] = if index == last {
                &mut *output
            } else {
                let (ho, wo, n) = step.output;
                &mut write[..ho * wo * n]
            };
            step.layer.run_on(backend, src, h, w, dst)?;
            std::mem::swap(&mut read, &mut write);
        }
        Ok(())
    }
}

impl fmt::Debug for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for s in &self.steps {
            list.entry(&format_args!(
                "{} {:?} -> {:?}",
                s.layer.name(),
                s.input,
                s.output
            ));
        }
        list.finish()
    }
}
