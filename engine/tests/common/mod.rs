//! Shared by the crash and power-loss tests.

// Each test binary compiles this for itself and uses a part of it.
#[allow(dead_code)]
pub mod writer;
