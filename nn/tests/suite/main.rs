//! The crate's integration tests, one test binary (one link, one set of monomorphized
//! dependencies) with a module per topic. New test files go here as modules.

mod attention;
mod backup;
mod checkpoint_robustness;
mod conv_layers;
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
mod tensorboard;
mod text_data;
