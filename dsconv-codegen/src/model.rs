//! The typed attribute model: `#[separable_conv(...)]` parsed and validated into a
//! [`LayerSpec`], every error a `syn::Error` spanned on the offending token.

use dsconv_runtime::{Activation, LayerShape, Padding};
use proc_macro2::{Span, TokenStream};
use syn::parse::{Parse, ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned as _;
use syn::{Expr, ExprLit, Ident, Lit, Token};

/// Every key the attribute accepts.
pub const KEYS: &[&str] = &[
    "dk",
    "m",
    "n",
    "stride",
    "padding",
    "h",
    "w",
    "bias",
    "activation",
    "depth_multiplier",
];

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
    /// Fixed input size.
    pub fixed_size: Option<(Spanned<usize>, Spanned<usize>)>,
    /// Whether the layer has biases.
    pub bias: bool,
    /// Activation after each stage.
    pub activation: Activation,
    /// Depthwise output channels per input channel.
    pub depth_multiplier: Spanned<usize>,
}

impl LayerSpec {
    /// The runtime shape this declaration describes.
    pub fn shape(&self) -> LayerShape {
        LayerShape {
            dk: self.dk.value,
            m: self.m.value,
            n: self.n.value,
            stride: self.stride.value,
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

/// Parses and validates the attribute arguments `attr` and the item `item`.
pub fn parse(attr: TokenStream, item: TokenStream) -> syn::Result<LayerSpec> {
    let args = Punctuated::<Arg, Token![,]>::parse_terminated.parse2(attr)?;
    let mut errors = Errors::default();
    let item = check_item(item, &mut errors);

    let mut seen: Vec<(String, Expr)> = Vec::new();
    for arg in args {
        let key = arg.key.to_string();
        if !KEYS.contains(&key.as_str()) {
            let hint = match closest_key(&key) {
                Some(k) => format!("; did you mean `{k}`?"),
                None => String::new(),
            };
            errors.at(
                arg.key.span(),
                format!(
                    "unknown key `{key}`{hint} (expected one of: {})",
                    KEYS.join(", ")
                ),
            );
        } else if seen.iter().any(|(k, _)| *k == key) {
            errors.at(arg.key.span(), format!("duplicate key `{key}`"));
        } else {
            seen.push((key, arg.value));
        }
    }
    let get = |k: &str| seen.iter().find(|(key, _)| key == k).map(|(_, v)| v);

    let int = |k: &str, errors: &mut Errors| -> Option<Spanned<usize>> {
        let expr = get(k)?;
        match positive_int(k, expr) {
            Ok(v) => Some(v),
            Err(e) => {
                errors.push(e);
                None
            }
        }
    };
    let required = |k: &str, errors: &mut Errors| -> Option<Spanned<usize>> {
        if get(k).is_none() {
            errors.at(
                Span::call_site(),
                format!("missing required key `{k}` (as in `#[separable_conv(dk = 3, m = 32, n = 64)]`)"),
            );
            return None;
        }
        int(k, errors)
    };
    let dk = required("dk", &mut errors);
    let m = required("m", &mut errors);
    let n = required("n", &mut errors);
    let stride = int("stride", &mut errors);
    if let Some(s) = stride {
        if s.value != 1 && s.value != 2 {
            errors.at(s.span, format!("`stride` must be 1 or 2, got {}", s.value));
        }
    }
    let depth_multiplier = int("depth_multiplier", &mut errors);
    let h = int("h", &mut errors);
    let w = int("w", &mut errors);
    let padding = match get("padding") {
        None => Padding::Same,
        Some(e) => match string(e) {
            Some((s, _)) if s == "same" => Padding::Same,
            Some((s, _)) if s == "valid" => Padding::Valid,
            _ => {
                errors.at(e.span(), "`padding` must be \"same\" or \"valid\"");
                Padding::Same
            }
        },
    };
    let activation = match get("activation") {
        None => Activation::None,
        Some(e) => match string(e) {
            Some((s, _)) if s == "none" => Activation::None,
            Some((s, _)) if s == "relu" => Activation::Relu,
            Some((s, _)) if s == "relu6" => Activation::Relu6,
            _ => {
                errors.at(
                    e.span(),
                    "`activation` must be \"none\", \"relu\" or \"relu6\"",
                );
                Activation::None
            }
        },
    };
    let bias = match get("bias") {
        None => false,
        Some(Expr::Lit(ExprLit {
            lit: Lit::Bool(b), ..
        })) => b.value,
        Some(e) => {
            errors.at(e.span(), "`bias` must be `true` or `false`");
            false
        }
    };
    match (get("h"), get("w")) {
        (Some(e), None) => errors.at(
            e.span(),
            "`h` given without `w`: a fixed size needs both `h` and `w`",
        ),
        (None, Some(e)) => errors.at(
            e.span(),
            "`w` given without `h`: a fixed size needs both `h` and `w`",
        ),
        _ => {}
    }

    errors
        .finish_with(|| {
            let spec = LayerSpec {
                item: item?,
                dk: dk?,
                m: m?,
                n: n?,
                stride: stride.unwrap_or(Spanned {
                    value: 1,
                    span: Span::call_site(),
                }),
                padding,
                fixed_size: h.zip(w),
                bias,
                activation,
                depth_multiplier: depth_multiplier.unwrap_or(Spanned {
                    value: 1,
                    span: Span::call_site(),
                }),
            };
            Some(spec)
        })
        .and_then(|spec| {
            check_shape(&spec)?;
            Ok(spec)
        })
}

impl Errors {
    /// Returns the collected errors, or the spec built by `build` when there were none.
    fn finish_with(self, build: impl FnOnce() -> Option<LayerSpec>) -> syn::Result<LayerSpec> {
        self.finish()?;
        // With no error collected, every required part parsed, so `build` has them all.
        build().ok_or_else(|| syn::Error::new(Span::call_site(), "invalid #[separable_conv]"))
    }
}

/// Cross-key rules: even `dk` with "same", fixed size smaller than `dk` with "valid", counts
/// that overflow `usize`.
fn check_shape(spec: &LayerSpec) -> syn::Result<()> {
    let mut errors = Errors::default();
    let shape = spec.shape();
    if spec.padding == Padding::Same && spec.dk.value.is_multiple_of(2) {
        errors.at(
            spec.dk.span,
            format!(
                "`dk = {}` is even: padding = \"same\" pads (dk - 1) / 2 on every side and \
                 needs an odd kernel to keep the size; use an odd `dk` or padding = \"valid\"",
                spec.dk.value
            ),
        );
    }
    if let Some((h, w)) = spec.fixed_size {
        if spec.padding == Padding::Valid {
            for (name, v) in [("h", h), ("w", w)] {
                if v.value < spec.dk.value {
                    errors.at(
                        v.span,
                        format!(
                            "`{name} = {}` is smaller than `dk = {}`: padding = \"valid\" needs \
                             an input at least as large as the kernel",
                            v.value, spec.dk.value
                        ),
                    );
                }
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

fn check_item(item: TokenStream, errors: &mut Errors) -> Option<syn::ItemStruct> {
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
                "#[separable_conv] goes on a unit struct, such as `pub struct Stem;`",
            );
            return None;
        }
    };
    let mut ok = true;
    if !s.generics.params.is_empty() || s.generics.where_clause.is_some() {
        errors.at(
            s.generics.span(),
            "#[separable_conv] generates a concrete layer: the struct cannot be generic",
        );
        ok = false;
    }
    if !matches!(s.fields, syn::Fields::Unit) {
        errors.at(
            s.fields.span(),
            "#[separable_conv] goes on a unit struct (`pub struct Stem;`): the macro generates \
             the fields that hold the weights",
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

fn string(expr: &Expr) -> Option<(String, Span)> {
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Some((s.value(), s.span())),
        _ => None,
    }
}

/// The known key nearest to `key` by edit distance, if it is near enough to be a typo.
pub fn closest_key(key: &str) -> Option<&'static str> {
    KEYS.iter()
        .map(|k| (edit_distance(key, k), *k))
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
            attr,
            quote!(
                pub struct Layer;
            ),
        )
        .expect("valid attribute")
    }

    fn parse_err(attr: TokenStream) -> String {
        parse(
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
        assert_eq!(s.activation, Activation::None);
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
            depth_multiplier = 2
        ));
        let shape = s.shape();
        assert_eq!(shape.stride, 2);
        assert_eq!(shape.padding, Padding::Valid);
        assert_eq!(shape.fixed_size, Some((9, 10)));
        assert_eq!(shape.depth_multiplier, 2);
        assert!(s.bias);
        assert_eq!(s.activation, Activation::Relu6);
    }

    #[test]
    fn typos_get_a_suggestion() {
        assert_eq!(closest_key("strde"), Some("stride"));
        assert_eq!(closest_key("depth_multipler"), Some("depth_multiplier"));
        assert_eq!(closest_key("activaton"), Some("activation"));
        assert_eq!(closest_key("zzzzzz"), None);
        assert!(
            parse_err(quote!(dk = 3, m = 1, n = 1, strid = 2)).contains("did you mean `stride`")
        );
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
        .contains("smaller than `dk = 5`"));
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
