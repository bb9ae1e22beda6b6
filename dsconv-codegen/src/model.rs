//! The typed attribute model: `#[separable_conv(...)]` parsed and validated into a
//! [`LayerSpec`], every error a `syn::Error` spanned on the offending token.

use dsconv_runtime::{Activation, Activations, LayerShape, Padding};
use proc_macro2::{Span, TokenStream};
use syn::parse::{Parse, ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned as _;
use syn::{Expr, ExprLit, Ident, Lit, Token};

/// A key of the attribute. [`Key::ALL`] is the one key table: parsing, the unknown-key
/// message and the typo hint all read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// `dk`: kernel size (required).
    Dk,
    /// `m`: input channels (required).
    M,
    /// `n`: output channels (required).
    N,
    /// `stride`: 1 or 2 (default 1).
    Stride,
    /// `padding`: "same", "valid", "same_upper", "same_lower" or `[top, left, bottom,
    /// right]` (default "same").
    Padding,
    /// `dilation`: spacing of the depthwise taps (default 1).
    Dilation,
    /// `h`: fixed input height (with `w`).
    H,
    /// `w`: fixed input width (with `h`).
    W,
    /// `bias`: true or false (default false).
    Bias,
    /// `activation`: "none", "relu", "relu6", "hardswish" or "silu" after both stages
    /// (default "none").
    Activation,
    /// `dw_activation`: the activation after the depthwise stage alone (default "none").
    DwActivation,
    /// `pw_activation`: the activation after the pointwise stage alone (default "none").
    PwActivation,
    /// `depth_multiplier`: depthwise outputs per input channel (default 1).
    DepthMultiplier,
    /// `residual`: true or false (default false): the layer adds a skip input of the
    /// output's shape in its final store.
    Residual,
}

/// Which attribute is being expanded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `#[separable_conv]`: depthwise then 1x1.
    Separable,
    /// `#[pointwise_conv]`: a 1x1 convolution alone.
    Pointwise,
}

impl Kind {
    /// The attribute's name.
    pub const fn attribute(self) -> &'static str {
        match self {
            Kind::Separable => "separable_conv",
            Kind::Pointwise => "pointwise_conv",
        }
    }

    /// Whether the attribute takes `key`.
    pub const fn takes(self, key: Key) -> bool {
        match self {
            Kind::Separable => true,
            Kind::Pointwise => matches!(
                key,
                Key::M | Key::N | Key::H | Key::W | Key::Bias | Key::Activation | Key::Residual
            ),
        }
    }

    /// Whether the attribute must be given `key`.
    pub const fn requires(self, key: Key) -> bool {
        match self {
            Kind::Separable => matches!(key, Key::Dk | Key::M | Key::N),
            Kind::Pointwise => matches!(key, Key::M | Key::N),
        }
    }

    /// The keys the attribute takes, in table order.
    pub fn keys(self) -> impl Iterator<Item = Key> {
        Key::ALL.into_iter().filter(move |k| self.takes(*k))
    }

    /// A declaration to show in messages.
    const fn example(self) -> &'static str {
        match self {
            Kind::Separable => "#[separable_conv(dk = 3, m = 32, n = 64)]",
            Kind::Pointwise => "#[pointwise_conv(m = 32, n = 64)]",
        }
    }
}

impl Key {
    /// Every key, in the order the attribute's documentation lists them.
    pub const ALL: [Key; 14] = [
        Key::Dk,
        Key::M,
        Key::N,
        Key::Stride,
        Key::Padding,
        Key::Dilation,
        Key::H,
        Key::W,
        Key::Bias,
        Key::Activation,
        Key::DwActivation,
        Key::PwActivation,
        Key::DepthMultiplier,
        Key::Residual,
    ];

    /// The key as written in the attribute.
    pub const fn name(self) -> &'static str {
        match self {
            Key::Dk => "dk",
            Key::M => "m",
            Key::N => "n",
            Key::Stride => "stride",
            Key::Padding => "padding",
            Key::Dilation => "dilation",
            Key::H => "h",
            Key::W => "w",
            Key::Bias => "bias",
            Key::Activation => "activation",
            Key::DwActivation => "dw_activation",
            Key::PwActivation => "pw_activation",
            Key::DepthMultiplier => "depth_multiplier",
            Key::Residual => "residual",
        }
    }

    /// The key named `name`, if any.
    pub fn from_name(name: &str) -> Option<Key> {
        Key::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// A value together with the span of the token it was read from.
#[derive(Clone, Copy, Debug)]
pub struct Spanned<T> {
    /// The value.
    pub value: T,
    /// Where it was written.
    pub span: Span,
}

/// A validated `#[separable_conv]` declaration.
#[derive(Clone, Debug)]
pub struct LayerSpec {
    /// Which attribute declared it.
    pub kind: Kind,
    /// The struct the attribute was put on (a unit struct without generics).
    pub item: syn::ItemStruct,
    /// Kernel size.
    pub dk: Spanned<usize>,
    /// Input channels.
    pub m: Spanned<usize>,
    /// Output channels.
    pub n: Spanned<usize>,
    /// 1 or 2.
    pub stride: Spanned<usize>,
    /// Border rule.
    pub padding: Padding,
    /// Where `padding` was written: the value, and each of the four explicit pads.
    pub padding_spans: (Span, Option<[Span; 4]>),
    /// Spacing of the depthwise taps.
    pub dilation: Spanned<usize>,
    /// Fixed input size.
    pub fixed_size: Option<(Spanned<usize>, Spanned<usize>)>,
    /// Whether the layer has biases.
    pub bias: bool,
    /// Activation after each stage.
    pub activations: Activations,
    /// Depthwise output channels per input channel.
    pub depth_multiplier: Spanned<usize>,
    /// Whether the final store adds a skip input.
    pub residual: bool,
}

impl LayerSpec {
    /// The runtime shape this declaration describes.
    pub fn shape(&self) -> LayerShape {
        LayerShape {
            dk: self.dk.value,
            m: self.m.value,
            n: self.n.value,
            stride: self.stride.value,
            dilation: self.dilation.value,
            padding: self.padding,
            depth_multiplier: self.depth_multiplier.value,
            fixed_size: self.fixed_size.map(|(h, w)| (h.value, w.value)),
        }
    }
}

/// One `key = value` pair as written.
struct Arg {
    key: Ident,
    value: Expr,
}

impl Parse for Arg {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let key: Ident = input.call(syn::ext::IdentExt::parse_any)?;
        if !input.peek(Token![=]) {
            return Err(syn::Error::new(
                key.span(),
                format!("`{key}` needs a value, as in `{key} = 3`"),
            ));
        }
        input.parse::<Token![=]>()?;
        let value: Expr = input.parse()?;
        Ok(Arg { key, value })
    }
}

/// Collects errors so that one compile reports every problem, each at its token.
#[derive(Default)]
struct Errors(Option<syn::Error>);

impl Errors {
    fn push(&mut self, e: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }
    fn at(&mut self, span: Span, msg: impl std::fmt::Display) {
        self.push(syn::Error::new(span, msg));
    }
    fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

/// The values read so far, one field per [`Key`]; `None` for a key not given (or given
/// with a bad value, already reported).
#[derive(Default)]
struct Args {
    dk: Option<Spanned<usize>>,
    m: Option<Spanned<usize>>,
    n: Option<Spanned<usize>>,
    stride: Option<Spanned<usize>>,
    padding: Option<(Padding, Span, Option<[Span; 4]>)>,
    dilation: Option<Spanned<usize>>,
    h: Option<Spanned<usize>>,
    w: Option<Spanned<usize>>,
    bias: Option<bool>,
    activation: Option<Activation>,
    dw_activation: Option<Activation>,
    pw_activation: Option<Activation>,
    depth_multiplier: Option<Spanned<usize>>,
    residual: Option<bool>,
    /// Keys given, bad values included, with the span of their value.
    given: Vec<(Key, Span)>,
}

impl Args {
    /// Reads `key = value`: one arm per key, each reporting a bad value at its token.
    fn read(&mut self, key: Key, key_span: Span, value: &Expr) -> syn::Result<()> {
        // `activation` means both stages: it cannot be combined with a per-stage key.
        let both = [Key::DwActivation, Key::PwActivation]
            .into_iter()
            .find(|k| self.given(*k).is_some());
        let conflict = match key {
            Key::Activation => both,
            Key::DwActivation | Key::PwActivation => {
                self.given(Key::Activation).map(|_| Key::Activation)
            }
            _ => None,
        };
        self.given.push((key, value.span()));
        if let Some(earlier) = conflict {
            return Err(syn::Error::new(
                key_span,
                format!(
                    "`{}` cannot be combined with `{}`: `activation` sets both stages; \
                     use `dw_activation` and `pw_activation` for different ones",
                    key.name(),
                    earlier.name()
                ),
            ));
        }
        let name = key.name();
        match key {
            Key::Dk => self.dk = Some(positive_int(name, value)?),
            Key::M => self.m = Some(positive_int(name, value)?),
            Key::N => self.n = Some(positive_int(name, value)?),
            Key::Stride => {
                let s = positive_int(name, value)?;
                if s.value != 1 && s.value != 2 {
                    return Err(syn::Error::new(
                        s.span,
                        format!("`stride` must be 1 or 2, got {}", s.value),
                    ));
                }
                self.stride = Some(s);
            }
            Key::Padding => self.padding = Some(padding(value)?),
            Key::Dilation => self.dilation = Some(positive_int(name, value)?),
            Key::H => self.h = Some(positive_int(name, value)?),
            Key::W => self.w = Some(positive_int(name, value)?),
            Key::Bias => self.bias = Some(boolean(name, value)?),
            Key::Residual => self.residual = Some(boolean(name, value)?),
            Key::Activation => self.activation = Some(activation(name, value)?),
            Key::DwActivation => self.dw_activation = Some(activation(name, value)?),
            Key::PwActivation => self.pw_activation = Some(activation(name, value)?),
            Key::DepthMultiplier => self.depth_multiplier = Some(positive_int(name, value)?),
        }
        Ok(())
    }

    fn given(&self, key: Key) -> Option<Span> {
        self.given.iter().find(|(k, _)| *k == key).map(|(_, s)| *s)
    }

    /// Rules between keys: required keys, `h` and `w` together.
    fn check(&self, kind: Kind, errors: &mut Errors) {
        for key in Key::ALL.into_iter().filter(|k| kind.requires(*k)) {
            if self.given(key).is_none() {
                errors.at(
                    Span::call_site(),
                    format!(
                        "missing required key `{}` (as in `{}`)",
                        key.name(),
                        kind.example()
                    ),
                );
            }
        }
        match (self.given(Key::H), self.given(Key::W)) {
            (Some(span), None) => errors.at(
                span,
                "`h` given without `w`: a fixed size needs both `h` and `w`",
            ),
            (None, Some(span)) => errors.at(
                span,
                "`w` given without `h`: a fixed size needs both `h` and `w`",
            ),
            _ => {}
        }
    }

    /// The spec, with defaults for the optional keys; `None` if a required part is missing.
    fn build(self, kind: Kind, item: syn::ItemStruct) -> Option<LayerSpec> {
        let default = |value| Spanned {
            value,
            span: Span::call_site(),
        };
        // A 1x1 layer is planned as a separable shape with a 1x1 "valid" depthwise stage
        // that is never emitted: the pointwise plan is the same.
        let (dk, padding) = match kind {
            Kind::Separable => (self.dk?, self.padding.map_or(Padding::Same, |p| p.0)),
            Kind::Pointwise => (default(1), Padding::Valid),
        };
        let activations = match (kind, self.activation) {
            (Kind::Pointwise, act) => Activations {
                depthwise: Activation::None,
                pointwise: act.unwrap_or(Activation::None),
            },
            (Kind::Separable, Some(both)) => Activations::both(both),
            (Kind::Separable, None) => Activations {
                depthwise: self.dw_activation.unwrap_or(Activation::None),
                pointwise: self.pw_activation.unwrap_or(Activation::None),
            },
        };
        Some(LayerSpec {
            kind,
            item,
            dk,
            m: self.m?,
            n: self.n?,
            stride: self.stride.unwrap_or(default(1)),
            padding,
            padding_spans: self
                .padding
                .map_or((Span::call_site(), None), |p| (p.1, p.2)),
            dilation: self.dilation.unwrap_or(default(1)),
            fixed_size: self.h.zip(self.w),
            bias: self.bias.unwrap_or(false),
            activations,
            depth_multiplier: self.depth_multiplier.unwrap_or(default(1)),
            residual: self.residual.unwrap_or(false),
        })
    }
}

/// `expr` without the invisible groups `macro_rules!` wraps around a fragment it passes on
/// (`m = $m` with `$m:literal` arrives as a group holding the literal), also inside arrays.
fn peel(expr: &Expr) -> Expr {
    match expr {
        Expr::Group(group) => peel(&group.expr),
        Expr::Array(array) => {
            let mut array = array.clone();
            for elem in array.elems.iter_mut() {
                *elem = peel(elem);
            }
            Expr::Array(array)
        }
        other => other.clone(),
    }
}

/// Parses and validates the arguments `attr` of the attribute `kind` and the item `item`.
pub fn parse(kind: Kind, attr: TokenStream, item: TokenStream) -> syn::Result<LayerSpec> {
    let parsed = Punctuated::<Arg, Token![,]>::parse_terminated.parse2(attr)?;
    let mut errors = Errors::default();
    let item = check_item(kind, item, &mut errors);
    let mut args = Args::default();
    for arg in parsed {
        let name = arg.key.to_string();
        match Key::from_name(&name) {
            None => {
                let hint = match closest_key(kind, &name) {
                    Some(k) => format!("; did you mean `{k}`?"),
                    None => String::new(),
                };
                let all: Vec<_> = kind.keys().map(|k| k.name()).collect();
                errors.at(
                    arg.key.span(),
                    format!(
                        "unknown key `{name}`{hint} (expected one of: {})",
                        all.join(", ")
                    ),
                );
            }
            Some(key) if args.given(key).is_some() => {
                errors.at(arg.key.span(), format!("duplicate key `{name}`"));
            }
            Some(key) if !kind.takes(key) => {
                let takes: Vec<_> = kind.keys().map(|k| k.name()).collect();
                errors.at(
                    arg.key.span(),
                    format!(
                        "`{name}` does not apply to #[{}], a 1x1 convolution (it takes: {}); \
                         a depthwise stage is #[separable_conv]",
                        kind.attribute(),
                        takes.join(", ")
                    ),
                );
            }
            Some(key) => {
                if let Err(e) = args.read(key, arg.key.span(), &peel(&arg.value)) {
                    errors.push(e);
                }
            }
        }
    }
    args.check(kind, &mut errors);
    errors.finish()?;
    // With no error collected, every required key was read, so `build` has them all.
    let spec = item
        .and_then(|item| args.build(kind, item))
        .ok_or_else(|| {
            syn::Error::new(
                Span::call_site(),
                format!("invalid #[{}]", kind.attribute()),
            )
        })?;
    check_shape(&spec)?;
    Ok(spec)
}

/// Cross-key rules: even `dk` with "same", a dilation too large, explicit pads as large as
/// the kernel window, a fixed size too small for the padded window, counts that overflow
/// `usize`.
fn check_shape(spec: &LayerSpec) -> syn::Result<()> {
    let mut errors = Errors::default();
    let shape = spec.shape();
    if spec.padding == Padding::Same && spec.dk.value.is_multiple_of(2) {
        errors.at(
            spec.dk.span,
            format!(
                "`dk = {}` is even: padding = \"same\" pads (dk - 1) / 2 on every side and \
                 needs an odd kernel to keep the size; use an odd `dk`, padding = \"same_upper\" \
                 (TensorFlow's \"SAME\"), \"valid\" or explicit pads",
                spec.dk.value
            ),
        );
    }
    let window = (spec.dk.value - 1).checked_mul(spec.dilation.value);
    if window.is_none_or(|w| w > 1 << 16) {
        return Err(syn::Error::new(
            spec.dilation.span,
            format!(
                "`dilation = {}` makes the kernel window `(dk - 1) * dilation + 1` larger than \
                 65537",
                spec.dilation.value
            ),
        ));
    }
    let window = shape.window();
    if let (Padding::Explicit(p), (_, Some(spans))) = (spec.padding, spec.padding_spans) {
        let sides = ["top", "left", "bottom", "right"];
        for ((pad, span), side) in [p.top, p.left, p.bottom, p.right]
            .into_iter()
            .zip(spans)
            .zip(sides)
        {
            if pad >= window {
                errors.at(
                    span,
                    format!(
                        "the {side} pad {pad} is not smaller than the kernel window ({window}): \
                         some windows would read only padding; at most {} per side",
                        window - 1
                    ),
                );
            }
        }
    }
    if let Some((h, w)) = spec.fixed_size {
        let (min_h, min_w) = shape.min_input();
        for (name, v, min) in [("h", h, min_h), ("w", w, min_w)] {
            if v.value < min {
                errors.at(
                    v.span,
                    format!(
                        "`{name} = {}` is too small: with padding = \"{}\" the {window}x{window} \
                         kernel window (dk {}, dilation {}) needs an input of at least {min}",
                        v.value,
                        spec.padding.name(),
                        spec.dk.value,
                        spec.dilation.value
                    ),
                );
            }
        }
    }
    errors.finish()?;
    // Overflow: blame the largest factor, the token a user most likely mistyped.
    let per_pixel_ok = shape.depthwise_muls_per_pixel().is_some()
        && shape.pointwise_muls_per_pixel().is_some()
        && shape.standard_muls_per_pixel().is_some()
        && shape
            .depthwise_muls_per_pixel()
            .unwrap()
            .checked_add(shape.pointwise_muls_per_pixel().unwrap())
            .is_some();
    if !per_pixel_ok {
        let largest = [spec.dk, spec.m, spec.n, spec.depth_multiplier]
            .into_iter()
            .max_by_key(|s| s.value)
            .expect("four factors");
        return Err(syn::Error::new(
            largest.span,
            "the multiplication counts per pixel of this layer overflow usize",
        ));
    }
    if let Some((h, w)) = spec.fixed_size {
        let fits = shape.multiplications(h.value, w.value).is_some()
            && h.value
                .checked_mul(w.value)
                .and_then(|p| p.checked_mul(spec.m.value))
                .is_some();
        if !fits {
            let larger = if h.value >= w.value { h } else { w };
            return Err(syn::Error::new(
                larger.span,
                "the multiplication counts (or buffer sizes) of this fixed size overflow usize",
            ));
        }
    }
    Ok(())
}

fn check_item(kind: Kind, item: TokenStream, errors: &mut Errors) -> Option<syn::ItemStruct> {
    let attribute = kind.attribute();
    let item: syn::Item = match syn::parse2(item) {
        Ok(i) => i,
        Err(e) => {
            errors.push(e);
            return None;
        }
    };
    let s = match item {
        syn::Item::Struct(s) => s,
        other => {
            errors.at(
                item_keyword_span(&other),
                format!("#[{attribute}] goes on a unit struct, such as `pub struct Stem;`"),
            );
            return None;
        }
    };
    let mut ok = true;
    if !s.generics.params.is_empty() || s.generics.where_clause.is_some() {
        errors.at(
            s.generics.span(),
            format!("#[{attribute}] generates a concrete layer: the struct cannot be generic"),
        );
        ok = false;
    }
    if !matches!(s.fields, syn::Fields::Unit) {
        errors.at(
            s.fields.span(),
            format!(
                "#[{attribute}] goes on a unit struct (`pub struct Stem;`): the macro generates \
                 the fields that hold the weights"
            ),
        );
        ok = false;
    }
    ok.then_some(s)
}

fn item_keyword_span(item: &syn::Item) -> Span {
    match item {
        syn::Item::Enum(i) => i.enum_token.span,
        syn::Item::Fn(i) => i.sig.fn_token.span,
        syn::Item::Union(i) => i.union_token.span,
        syn::Item::Impl(i) => i.impl_token.span,
        syn::Item::Trait(i) => i.trait_token.span,
        syn::Item::Type(i) => i.type_token.span,
        syn::Item::Mod(i) => i.mod_token.span,
        syn::Item::Const(i) => i.const_token.span,
        syn::Item::Static(i) => i.static_token.span,
        other => other.span(),
    }
}

fn positive_int(key: &str, expr: &Expr) -> syn::Result<Spanned<usize>> {
    let lit = match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Int(i), ..
        }) => i,
        other => {
            return Err(syn::Error::new(
                other.span(),
                format!("`{key}` must be a positive integer literal, as in `{key} = 3`"),
            ))
        }
    };
    if !matches!(lit.suffix(), "" | "usize") {
        return Err(syn::Error::new(
            lit.span(),
            format!("`{key}` must be an unsuffixed (or usize) integer"),
        ));
    }
    let value: usize = lit.base10_parse().map_err(|_| {
        syn::Error::new(
            lit.span(),
            format!("`{key}` = {} does not fit in usize", lit.base10_digits()),
        )
    })?;
    if value == 0 {
        return Err(syn::Error::new(
            lit.span(),
            format!("`{key}` must be at least 1, got 0"),
        ));
    }
    Ok(Spanned {
        value,
        span: lit.span(),
    })
}

fn string(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Some(s.value()),
        _ => None,
    }
}

/// A `padding` value: a rule's name, or `[top, left, bottom, right]` (each pad spanned).
fn padding(value: &Expr) -> syn::Result<(Padding, Span, Option<[Span; 4]>)> {
    const EXPECTED: &str = "`padding` must be \"same\", \"valid\", \"same_upper\", \"same_lower\" \
                            or `[top, left, bottom, right]` (zeros per side)";
    if let Expr::Array(array) = value {
        if array.elems.len() != 4 {
            return Err(spanned(
                value,
                &format!(
                    "`padding = [..]` takes four pads, `[top, left, bottom, right]`; got {}",
                    array.elems.len()
                ),
            ));
        }
        let mut pads = [0usize; 4];
        let mut spans = [Span::call_site(); 4];
        for (i, e) in array.elems.iter().enumerate() {
            let Expr::Lit(ExprLit {
                lit: Lit::Int(lit), ..
            }) = e
            else {
                return Err(spanned(e, "a pad must be a non-negative integer literal"));
            };
            pads[i] = lit.base10_parse().map_err(|_| {
                syn::Error::new(
                    lit.span(),
                    "a pad must be a non-negative integer that fits in usize",
                )
            })?;
            spans[i] = lit.span();
        }
        let [top, left, bottom, right] = pads;
        let pads = dsconv_runtime::Pads {
            top,
            left,
            bottom,
            right,
        };
        return Ok((Padding::Explicit(pads), value.span(), Some(spans)));
    }
    let rule = match string(value).as_deref() {
        Some("same") => Padding::Same,
        Some("valid") => Padding::Valid,
        Some("same_upper") => Padding::SameUpper,
        Some("same_lower") => Padding::SameLower,
        _ => return Err(spanned(value, EXPECTED)),
    };
    Ok((rule, value.span(), None))
}

/// An activation name, for key `key`.
fn activation(key: &str, value: &Expr) -> syn::Result<Activation> {
    let name = string(value);
    Activation::ALL
        .into_iter()
        .find(|a| name.as_deref() == Some(a.name()))
        .ok_or_else(|| {
            let names: Vec<String> = Activation::ALL
                .iter()
                .map(|a| format!("\"{}\"", a.name()))
                .collect();
            syn::Error::new(
                value.span(),
                format!("`{key}` must be one of {}", names.join(", ")),
            )
        })
}

fn boolean(key: &str, value: &Expr) -> syn::Result<bool> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Bool(b), ..
        }) => Ok(b.value),
        _ => Err(spanned(
            value,
            &format!("`{key}` must be `true` or `false`"),
        )),
    }
}

fn spanned(at: &Expr, msg: &str) -> syn::Error {
    syn::Error::new(at.span(), msg)
}

/// The known key nearest to `key` by edit distance, if it is near enough to be a typo.
pub fn closest_key(kind: Kind, key: &str) -> Option<&'static str> {
    kind.keys()
        .map(|k| (edit_distance(key, k.name()), k.name()))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3) && *d < k.len().max(key.len()))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn parse_ok(attr: TokenStream) -> LayerSpec {
        parse(
            Kind::Separable,
            attr,
            quote!(
                pub struct Layer;
            ),
        )
        .expect("valid attribute")
    }

    fn parse_err(attr: TokenStream) -> String {
        parse(
            Kind::Separable,
            attr,
            quote!(
                pub struct Layer;
            ),
        )
        .expect_err("invalid attribute")
        .to_string()
    }

    #[test]
    fn defaults_fill_optional_keys() {
        let s = parse_ok(quote!(dk = 5, m = 3, n = 256));
        let shape = s.shape();
        assert_eq!((shape.dk, shape.m, shape.n, shape.stride), (5, 3, 256, 1));
        assert_eq!(shape.padding, Padding::Same);
        assert_eq!(shape.depth_multiplier, 1);
        assert_eq!(shape.fixed_size, None);
        assert!(!s.bias);
        assert_eq!(s.activations, Activations::both(Activation::None));
    }

    #[test]
    fn every_key_is_read() {
        let s = parse_ok(quote!(
            dk = 3,
            m = 4,
            n = 8,
            stride = 2,
            padding = "valid",
            h = 9,
            w = 10,
            bias = true,
            activation = "relu6",
            depth_multiplier = 2,
            residual = true
        ));
        assert!(s.residual);
        let shape = s.shape();
        assert_eq!(shape.stride, 2);
        assert_eq!(shape.padding, Padding::Valid);
        assert_eq!(shape.fixed_size, Some((9, 10)));
        assert_eq!(shape.depth_multiplier, 2);
        assert!(s.bias);
        assert_eq!(s.activations, Activations::both(Activation::Relu6));
    }

    fn parse_kind(kind: Kind, attr: TokenStream) -> syn::Result<LayerSpec> {
        parse(
            kind,
            attr,
            quote!(
                pub struct Layer;
            ),
        )
    }

    #[test]
    fn pointwise_layers_are_1x1_with_the_activation_after_it() {
        let s = parse_kind(
            Kind::Pointwise,
            quote!(
                m = 16,
                n = 96,
                bias = true,
                activation = "relu6",
                residual = false
            ),
        )
        .unwrap();
        assert_eq!(s.kind, Kind::Pointwise);
        let shape = s.shape();
        assert_eq!((shape.dk, shape.m, shape.n, shape.stride), (1, 16, 96, 1));
        assert_eq!(shape.padding, Padding::Valid);
        assert_eq!(s.activations.depthwise, Activation::None);
        assert_eq!(s.activations.pointwise, Activation::Relu6);
        assert!(s.bias && !s.residual);
        // No dk is needed; the depthwise keys are refused, naming what the attribute takes.
        for attr in [
            quote!(m = 4, n = 8, dk = 3),
            quote!(m = 4, n = 8, stride = 2),
            quote!(m = 4, n = 8, dw_activation = "relu"),
        ] {
            let e = parse_kind(Kind::Pointwise, attr).unwrap_err().to_string();
            assert!(e.contains("does not apply to #[pointwise_conv]"), "{e}");
            assert!(e.contains("m, n, h, w, bias, activation, residual"), "{e}");
        }
        let e = parse_kind(Kind::Pointwise, quote!(n = 8))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("missing required key `m` (as in `#[pointwise_conv(m = 32, n = 64)]`)"),
            "{e}"
        );
    }

    #[test]
    fn per_stage_activations() {
        let s = parse_ok(quote!(dk = 3, m = 4, n = 8, dw_activation = "relu6"));
        assert_eq!(s.activations.depthwise, Activation::Relu6);
        assert_eq!(s.activations.pointwise, Activation::None);
        let s = parse_ok(quote!(
            dk = 3,
            m = 4,
            n = 8,
            pw_activation = "relu",
            dw_activation = "none"
        ));
        assert_eq!(s.activations.depthwise, Activation::None);
        assert_eq!(s.activations.pointwise, Activation::Relu);
        let e = parse_err(quote!(
            dk = 3,
            m = 4,
            n = 8,
            activation = "relu",
            pw_activation = "none"
        ));
        assert!(
            e.contains("`pw_activation` cannot be combined with `activation`"),
            "{e}"
        );
        let e = parse_err(quote!(
            dk = 3,
            m = 4,
            n = 8,
            dw_activation = "relu",
            activation = "none"
        ));
        assert!(
            e.contains("`activation` cannot be combined with `dw_activation`"),
            "{e}"
        );
        assert!(
            parse_err(quote!(dk = 3, m = 4, n = 8, dw_activation = "gelu"))
                .contains("`dw_activation` must be")
        );
    }

    #[test]
    fn typos_get_a_suggestion() {
        assert_eq!(closest_key(Kind::Separable, "strde"), Some("stride"));
        assert_eq!(
            closest_key(Kind::Separable, "depth_multipler"),
            Some("depth_multiplier")
        );
        assert_eq!(
            closest_key(Kind::Separable, "activaton"),
            Some("activation")
        );
        assert_eq!(closest_key(Kind::Separable, "zzzzzz"), None);
        // Only the attribute's own keys are suggested.
        assert_eq!(closest_key(Kind::Pointwise, "residul"), Some("residual"));
        assert_eq!(closest_key(Kind::Pointwise, "strid"), None);
        assert!(
            parse_err(quote!(dk = 3, m = 1, n = 1, strid = 2)).contains("did you mean `stride`")
        );
    }

    #[test]
    fn tensorflow_and_explicit_padding_and_dilation() {
        let s = parse_ok(quote!(
            dk = 3,
            m = 4,
            n = 8,
            stride = 2,
            padding = "same_upper"
        ));
        assert_eq!(s.padding, Padding::SameUpper);
        let s = parse_ok(quote!(dk = 4, m = 4, n = 8, padding = "same_lower"));
        assert_eq!(s.padding, Padding::SameLower);
        let s = parse_ok(quote!(
            dk = 3,
            m = 4,
            n = 8,
            padding = [0, 0, 1, 1],
            dilation = 2
        ));
        assert_eq!(
            s.padding,
            Padding::Explicit(dsconv_runtime::Pads {
                top: 0,
                left: 0,
                bottom: 1,
                right: 1
            })
        );
        assert_eq!(s.shape().window(), 5);
        assert!(parse_err(quote!(dk = 3, m = 1, n = 1, dilation = 0)).contains("at least 1"));
        assert!(parse_err(quote!(dk = 3, m = 1, n = 1, padding = [1, 1, 1])).contains("four pads"));
        assert!(
            parse_err(quote!(dk = 3, m = 1, n = 1, padding = [1, 1, 3, 1]))
                .contains("the bottom pad 3 is not smaller than the kernel window (3)")
        );
        assert!(
            parse_err(quote!(dk = 3, m = 1, n = 1, padding = [1, x, 1, 1]))
                .contains("non-negative integer")
        );
        assert!(parse_err(quote!(dk = 3, m = 1, n = 1, padding = "SAME")).contains("same_upper"));
        assert!(parse_err(quote!(
            dk = 3,
            m = 1,
            n = 1,
            dilation = 3,
            padding = "valid",
            h = 6,
            w = 9
        ))
        .contains("`h = 6` is too small"));
        assert!(parse_err(quote!(dk = 3, m = 1, n = 1, dilation = 100000)).contains("65537"));
    }

    #[test]
    fn invalid_values_are_rejected() {
        assert!(parse_err(quote!(dk = 0, m = 1, n = 1)).contains("at least 1"));
        assert!(parse_err(quote!(dk = 3, m = 1, n = 1, stride = 3)).contains("1 or 2"));
        assert!(parse_err(quote!(dk = 4, m = 1, n = 1)).contains("even"));
        assert!(parse_err(quote!(dk = 3, m = 1, n = 1, h = 4)).contains("without `w`"));
        assert!(parse_err(quote!(dk = 3, m = 1)).contains("missing required key `n`"));
        assert!(parse_err(quote!(dk = 3, m = 1, n = 1, m = 2)).contains("duplicate key `m`"));
        assert!(parse_err(quote!(dk = 3.0, m = 1, n = 1)).contains("positive integer"));
        assert!(parse_err(quote!(
            dk = 5,
            m = 1,
            n = 1,
            padding = "valid",
            h = 4,
            w = 9
        ))
        .contains("`h = 4` is too small"));
        assert!(parse_err(quote!(dk = 3, m = 18446744073709551615, n = 2)).contains("overflow"));
    }

    #[test]
    fn even_kernel_is_fine_with_valid_padding() {
        let s = parse_ok(quote!(dk = 2, m = 1, n = 1, padding = "valid"));
        assert_eq!(s.dk.value, 2);
    }

    #[test]
    fn non_unit_items_are_rejected() {
        let e = parse(
            Kind::Separable,
            quote!(dk = 3, m = 1, n = 1),
            quote!(
                struct S {
                    x: u8,
                }
            ),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("unit struct"), "{e}");
        let e = parse(
            Kind::Separable,
            quote!(dk = 3, m = 1, n = 1),
            quote!(
                enum E {}
            ),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("unit struct"), "{e}");
    }
}
