//! Plan coverage: every choice the planner can make on a backend — depthwise strategy,
//! pointwise loop order, prefetch, weights in registers, edge variant, narrow-row hand-off —
//! is made for at least one layer of the property matrix (`tests/matrix_*.rs`), so the
//! matrix runs the code of every choice. "Can make" is found by planning a wide grid of
//! shapes; the test names any choice the matrix never reaches.

use dsconv_codegen::model;
use dsconv_codegen::plan::{Backend, DepthwiseKernel, Plan};
use std::collections::BTreeSet;

#[path = "support/matrix_layers.rs"]
mod matrix_layers;
use matrix_layers::matrix_layers;

/// The choices a plan makes, as readable strings.
fn choices(plan: &Plan) -> Vec<String> {
    let b = plan.isa.name();
    let d = &plan.depthwise;
    let p = &plan.pointwise;
    let mut out = vec![
        format!("{b}: depthwise {:?}", d.strategy()),
        format!("{b}: pointwise {:?}", p.order),
        format!("{b}: prefetch {:?}", p.prefetch),
        format!(
            "{b}: pointwise weights in registers {}",
            p.weights_in_registers
        ),
        format!("{b}: pointwise tail panel {}", !p.tail_blocks.is_empty()),
    ];
    match &d.kernel {
        DepthwiseKernel::ChannelVectors(cv) => {
            out.push(format!(
                "{b}: channel vectors tail {}",
                cv.tail_lanes.is_some()
            ));
            if cv.tail_lanes.is_some() {
                out.push(format!(
                    "{b}: channel vectors overlapped tail {}",
                    cv.overlapped_tail
                ));
            }
            out.push(format!(
                "{b}: channel vectors weights in registers {}",
                cv.weights_in_registers
            ));
            out.push(format!(
                "{b}: left edge blocks {}",
                !cv.edges.left_misses.is_empty()
            ));
            for m in &cv.edges.left_misses {
                out.push(format!("{b}: left edge block missing {m}"));
            }
            for m in &cv.edges.right_misses {
                out.push(format!("{b}: right edge block missing {m}"));
            }
        }
        DepthwiseKernel::WidthVectors(wv) => {
            out.push(format!(
                "{b}: width vectors weights in registers {}",
                wv.weights_in_registers
            ));
            out.push(format!(
                "{b}: width vectors hand narrow rows on {}",
                wv.narrow_rows.is_some()
            ));
        }
        DepthwiseKernel::Scalar => {}
    }
    out
}

fn plan_of(args: &str, backend: Backend) -> Option<Plan> {
    let attr: proc_macro2::TokenStream = args.parse().ok()?;
    let item: proc_macro2::TokenStream = "struct Layer;".parse().unwrap();
    let spec = model::parse(model::Kind::Separable, attr, item).ok()?;
    Some(Plan::for_spec(&spec.shape(), backend))
}

#[test]
fn every_choice_the_planner_makes_is_reached_by_the_matrix() {
    let layers = matrix_layers();
    assert!(
        layers.len() > 50,
        "found only {} matrix layers",
        layers.len()
    );
    let mut reached = BTreeSet::new();
    for (name, args) in &layers {
        for backend in Backend::ALL {
            let plan = plan_of(args, backend).unwrap_or_else(|| panic!("{name}: ({args})"));
            reached.extend(choices(&plan));
        }
    }
    // What the planner can choose: a wide grid of valid shapes.
    let mut possible = BTreeSet::new();
    for dk in 1..=7 {
        for &m in &[1, 2, 3, 5, 8, 9, 16, 33, 128, 512] {
            for &n in &[1, 8, 17, 64, 520, 1024] {
                for stride in [1, 2] {
                    for dm in [1, 2, 3, 4, 8, 16] {
                        for padding in ["same", "valid"] {
                            for fixed in ["", ", h = 8, w = 8", ", h = 40, w = 40"] {
                                let args = format!(
                                    "dk = {dk}, m = {m}, n = {n}, stride = {stride}, \
                                     depth_multiplier = {dm}, padding = \"{padding}\"{fixed}"
                                );
                                for backend in Backend::ALL {
                                    if let Some(plan) = plan_of(&args, backend) {
                                        possible.extend(choices(&plan));
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    // The TensorFlow / ONNX / explicit paddings and dilation, on a narrower grid.
    for dk in 2..=5 {
        for &m in &[3, 16, 33] {
            for stride in [1, 2] {
                for dm in [1, 2] {
                    for padding in [
                        "\"same_upper\"",
                        "\"same_lower\"",
                        "[0, 0, 1, 1]",
                        "[1, 2, 1, 0]",
                    ] {
                        for dilation in [1, 2] {
                            for fixed in ["", ", h = 8, w = 8"] {
                                let args = format!(
                                    "dk = {dk}, m = {m}, n = 8, stride = {stride}, \
                                     depth_multiplier = {dm}, padding = {padding}, \
                                     dilation = {dilation}{fixed}"
                                );
                                for backend in Backend::ALL {
                                    if let Some(plan) = plan_of(&args, backend) {
                                        possible.extend(choices(&plan));
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    let missing: Vec<&String> = possible.difference(&reached).collect();
    assert!(
        missing.is_empty(),
        "the matrix never reaches these planner choices (add a layer that does):\n{}",
        missing
            .iter()
            .map(|s| format!("  {s}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
