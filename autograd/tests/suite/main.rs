//! The crate's integration tests, one test binary (one link, one set of monomorphized
//! dependencies) with a module per topic. New test files go here as modules.
//!
//! `tape` installs a counting `#[global_allocator]` for the whole binary; its memory
//! assertions read the counter of their own thread only, so tests of other modules running
//! on other threads do not disturb them. No other module may declare a global allocator.

mod conv;
mod custom_op;
mod functional;
mod golden_ops;
mod linear;
mod prod;
mod properties;
mod smoke;
mod solve;
mod tape;
