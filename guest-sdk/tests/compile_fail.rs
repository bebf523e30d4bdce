//! Misuses of the SDK's macros are compile errors that point at the mistake.
//! The expected messages live next to each case (`ui/*.stderr`); refresh
//! them with `TRYBUILD=overwrite cargo test -p wray --test compile_fail`.

#[test]
fn macro_misuse_is_reported_where_it_happens() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
