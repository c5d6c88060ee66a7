//! # tapegrad-optim
//!
//! Optimizers, learning-rate schedules and gradient clipping for tapegrad, with PyTorch's
//! update rules: the same hyper-parameters mean the same thing and give the same trajectory
//! (checked against trajectories computed by PyTorch in `f64`).
//!
//! | tapegrad | PyTorch | state per parameter |
//! |---|---|---|
//! | [`Sgd`] / [`SgdConfig`] | `torch.optim.SGD` | `momentum_buffer` (with momentum) |
//! | [`Adam`] / [`AdamConfig`] | `torch.optim.Adam` | `exp_avg`, `exp_avg_sq`, `max_exp_avg_sq` (AMSGrad) |
//! | [`AdamW`] / [`AdamWConfig`] | `torch.optim.AdamW` | as Adam |
//! | [`RmsProp`] / [`RmsPropConfig`] | `torch.optim.RMSprop` | `square_avg`, `momentum_buffer`, `grad_avg` |
//! | [`Adagrad`] / [`AdagradConfig`] | `torch.optim.Adagrad` | `sum` |
//!
//! Every parameter with state also has a step counter.
//!
//! Schedules ([`schedules`]): [`StepLr`](schedules::StepLr) (`StepLR`),
//! [`MultiStepLr`](schedules::MultiStepLr) (`MultiStepLR`),
//! [`ExponentialLr`](schedules::ExponentialLr) (`ExponentialLR`),
//! [`CosineAnnealingLr`](schedules::CosineAnnealingLr) (`CosineAnnealingLR`),
//! [`LinearWarmup`](schedules::LinearWarmup) (`LinearLR`) and
//! [`SequentialLr`](schedules::SequentialLr) (`SequentialLR`, e.g. a warm-up followed by
//! cosine annealing, built with [`LrSchedule::then`] on any schedule); a
//! [`Scheduler`](schedules::Scheduler) applies one to an optimizer, stepped once per epoch
//! or once per batch. Clipping ([`clip`]): [`clip_grad_norm`](clip::clip_grad_norm) and
//! [`clip_grad_value`](clip::clip_grad_value), over the parameters you choose.
//!
//! ## Building an optimizer
//!
//! Every optimizer is built the same way, from a config struct whose [`Default`] is
//! PyTorch's defaults: `XConfig::new(lr)`, chained setters, then `.build()`, which
//! validates the hyper-parameters and returns `Result<X<T>, OptimError>` (a negative
//! learning rate, a beta outside `[0, 1)`, Nesterov without momentum... are rejected with
//! [`OptimError::InvalidHyperParameter`]). `X::with_config(config)` is the same as
//! `config.build()`, and `X::new(lr)` uses the defaults.
//!
//! ```
//! use tapegrad_optim::{Adam, AdamConfig, OptimError, SgdConfig};
//!
//! let adam: Adam<f32> = AdamConfig::new(1e-3).betas(0.9, 0.98).weight_decay(1e-4).build()?;
//! let err = SgdConfig::new(0.1).nesterov(true).build::<f32>().unwrap_err();
//! assert!(matches!(err, OptimError::InvalidHyperParameter { name: "momentum", .. }));
//! # Ok::<(), OptimError>(())
//! ```
//!
//! ## A training loop
//!
//! Each step hands the optimizer the model's parameters (any iterator of `&mut Param<T>`)
//! and the gradients of one backward sweep (`loss.backward()` in a model; here the gradient of `Σ (w − target)²` is written by
//! hand). The same loop runs with each optimizer, behind `Box<dyn Optimizer<T>>`:
//!
//! ```
//! use ndarray::{arr1, arr2};
//! use tapegrad_autograd::{Grads, Param};
//! use tapegrad_optim::schedules::{ExponentialLr, Scheduler};
//! use tapegrad_optim::{
//!     clip::clip_grad_norm, AdagradConfig, AdamConfig, AdamWConfig, Optimizer,
//!     RmsPropConfig, SgdConfig,
//! };
//!
//! let optimizers: Vec<Box<dyn Optimizer<f64>>> = vec![
//!     Box::new(SgdConfig::new(0.1).momentum(0.9).build()?),
//!     Box::new(AdamConfig::new(0.1).build()?),
//!     Box::new(AdamWConfig::new(0.1).weight_decay(1e-4).build()?),
//!     Box::new(RmsPropConfig::new(0.01).momentum(0.9).build()?),
//!     Box::new(AdagradConfig::new(1.0).build()?),
//! ];
//! for mut opt in optimizers {
//!     let mut kernel = Param::new("dense.kernel", arr2(&[[0.5, -0.5], [1.0, 2.0]]).into_dyn());
//!     let mut bias = Param::new("dense.bias", arr1(&[0.0, 0.0]).into_dyn());
//!     let mut scheduler = Scheduler::new(ExponentialLr::new(opt.lr(), 0.95)?, &mut *opt)?;
//!     for _epoch in 0..60 {
//!         for _batch in 0..5 {
//!             let mut grads = Grads::new();
//!             grads.insert(kernel.id(), kernel.value().mapv(|w| 2.0 * (w - 1.0)));
//!             grads.insert(bias.id(), bias.value().mapv(|b| 2.0 * (b + 1.0)));
//!             clip_grad_norm([&kernel, &bias], &mut grads, 10.0)?;
//!             opt.step([&mut kernel, &mut bias], &grads)?;
//!         }
//!         scheduler.step(&mut *opt)?;
//!     }
//!     let close = |a: &ndarray::ArrayD<f64>, t: f64| a.iter().all(|x| (x - t).abs() < 0.05);
//!     assert!(close(kernel.value(), 1.0) && close(bias.value(), -1.0), "{}", opt.name());
//! }
//! # Ok::<(), tapegrad_optim::OptimError>(())
//! ```
//!
//! ## Checkpoints
//!
//! [`Optimizer::state_dict`] saves the state keyed by parameter *name* (ids are not stable
//! across processes), and [`Optimizer::load_state_dict`] restores it, so that training
//! resumes exactly:
//!
//! ```
//! use ndarray::arr1;
//! use tapegrad_autograd::{Grads, Param};
//! use tapegrad_optim::{AdamConfig, Optimizer};
//!
//! let config = AdamConfig::new(0.1);
//! let mut w = Param::new("w", arr1(&[1.0_f64, -1.0]).into_dyn());
//! let mut opt = config.build()?;
//! let mut grads = Grads::new();
//! grads.insert(w.id(), arr1(&[0.5, 0.25]).into_dyn());
//! opt.step([&mut w], &grads)?;
//! let checkpoint = opt.state_dict(&[&w])?;
//!
//! // Later, maybe in another process: same names, new ids.
//! let mut w2 = Param::new("w", w.value().clone());
//! let mut resumed = config.build()?;
//! resumed.load_state_dict(&[&w2], &checkpoint)?;
//! let mut grads2 = Grads::new();
//! grads2.insert(w2.id(), arr1(&[0.5, 0.25]).into_dyn());
//! opt.step([&mut w], &grads)?;
//! resumed.step([&mut w2], &grads2)?;
//! assert_eq!(w.value(), w2.value());
//! # Ok::<(), tapegrad_optim::OptimError>(())
//! ```
//!
//! ## Bad input
//!
//! [`step`](Optimizer::step_dyn) checks every gradient before changing anything: a NaN or infinite
//! gradient gives [`OptimError::NonFiniteGradient`] naming the parameter, a gradient whose
//! shape differs from its parameter's gives [`OptimError::ShapeMismatch`] with both shapes,
//! and in both cases every parameter and all state are left exactly as they were.
//! Parameters that have no gradient in a step are not touched, and neither is their state.
#![warn(missing_docs)]
#![deny(unsafe_code)]

mod adagrad;
mod adam;
pub mod clip;
mod error;
mod macros;
mod optimizer;
mod rmsprop;
pub mod schedules;
mod sgd;
mod state;
mod update;

pub use adagrad::{Adagrad, AdagradConfig};
pub use adam::{Adam, AdamConfig, AdamW, AdamWConfig};
pub use error::OptimError;
pub use optimizer::{Optimizer, ParamState};
pub use rmsprop::{RmsProp, RmsPropConfig};
pub use schedules::LrSchedule;
pub use sgd::{Sgd, SgdConfig};
