//! Activation functions applied after each stage.

/// The activation applied after the depthwise stage and after the pointwise stage,
/// MobileNet-style: `out = act(pw(act(dw(x) + b_dw)) + b_pw)`.
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
