//! Compile-time behaviour of `#[separable_conv]`: each bad attribute is a compile error whose
//! span points at the offending token (the `.stderr` snapshots in `tests/ui/`), and the
//! layer struct accepts the user's own derives (`tests/ui-pass/`).
//! Regenerate after a deliberate message change with `TRYBUILD=overwrite cargo test --test ui`.

#[test]
fn attribute_errors_point_at_the_offending_token() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
    cases.pass("tests/ui-pass/*.rs");
}
