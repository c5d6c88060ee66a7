//! The crate's integration tests, one test binary (one link, one set of monomorphized
//! dependencies) with a module per topic. New test files go here as modules.
//!
//! The binary's allocator counts allocations (`counting_allocator`, the autograd suite's);
//! memory assertions read the counters of their own thread only. No module may declare
//! another global allocator.

mod attention;
mod backup;
mod checkpoint_robustness;
mod conv_layers;
#[path = "../../../autograd/tests/suite/counting_allocator.rs"]
#[allow(
    dead_code,
    reason = "the autograd suite's module: not every helper is used here"
)]
mod counting_allocator;
mod cross_entropy;
mod data_robustness;
mod finite_and_threads;
mod golden;
mod golden_conv;
mod golden_losses;
mod golden_seq;
mod golden_seq_attention;
mod golden_seq_recurrent;
mod gradcheck;
mod input_shape_errors;
mod io;
mod layers;
mod losses;
mod lr_schedule;
mod model;
mod module_api;
mod module_state;
mod no_trainable_params;
mod onnx;
mod recurrent;
mod sampling;
mod state;
mod steady_state;
mod tensorboard;
mod text_data;

#[global_allocator]
static ALLOCATOR: counting_allocator::CountingAllocator = counting_allocator::CountingAllocator;
