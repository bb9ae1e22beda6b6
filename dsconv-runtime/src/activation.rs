//! Activation functions applied after each stage.

/// An activation applied after a stage (see [`Activations`]).
///
/// NaN propagates through every activation (`relu(NaN) = NaN`, `relu6(NaN) = NaN`), on every
/// backend: a NaN is never silently turned into a number. Infinities saturate as the
/// mathematical function does (`relu6(+inf) = 6`, `relu(-inf) = 0`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Activation {
    /// Identity.
    None,
    /// `max(x, 0)`.
    Relu,
    /// `min(max(x, 0), 6)`.
    Relu6,
}

/// The activation of each stage: `out = pw_act(pw(dw_act(dw(x) + b_dw)) + b_pw)`.
/// MobileNetV1 has ReLU after both stages; MobileNetV2's blocks have ReLU6 after the
/// depthwise stage and none after the 1x1 projection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Activations {
    /// After the depthwise stage (and its bias).
    pub depthwise: Activation,
    /// After the pointwise stage (and its bias).
    pub pointwise: Activation,
}

impl Activations {
    /// `activation` after both stages.
    pub const fn both(activation: Activation) -> Self {
        Activations {
            depthwise: activation,
            pointwise: activation,
        }
    }
}

impl Activation {
    /// The attribute spelling (`"none"`, `"relu"`, `"relu6"`).
    pub const fn name(self) -> &'static str {
        match self {
            Activation::None => "none",
            Activation::Relu => "relu",
            Activation::Relu6 => "relu6",
        }
    }
}
