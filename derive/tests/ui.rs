//! Compile-time guarantees of `compartment` and its derive, pinned with
//! trybuild: what the type system refuses must stay refused.

#[test]
fn type_level_guarantees() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
