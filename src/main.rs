//! The `burrow` binary: parse, dispatch, map errors to Docker's exit codes.
fn main() {}
