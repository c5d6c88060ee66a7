//! The crate's integration tests, one test binary (one link, one set of monomorphized
//! dependencies) with a module per topic. New test files go here as modules.
//!
//! The binary's allocator counts allocations (`counting_allocator`); memory assertions read
//! the counters of their own thread only, so tests of other modules running on other
//! threads do not disturb them. No module may declare another global allocator.

mod conv;
mod counting_allocator;
mod custom_op;
mod functional;
mod golden_ops;
mod linear;
mod prod;
mod properties;
mod smoke;
mod solve;
mod steady_state;
mod tape;

#[global_allocator]
static ALLOCATOR: counting_allocator::CountingAllocator = counting_allocator::CountingAllocator;
