//! Sections of the benchmark program (`cargo run --release -p cmdreporter-tests --bin bench`).
//! Each section prints one JSON object per measurement.

pub mod alloc;
pub mod detect;
pub mod floor;
pub mod largest;
pub mod process;
pub mod runs;
pub mod scale;
pub mod soak;
