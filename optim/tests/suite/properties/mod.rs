//! Property tests: invariants of the update rules, schedules and clipping, and agreement of
//! every optimizer, over random hyper-parameters, with a literal transcription of the
//! algorithms PyTorch documents (so configurations absent from the golden files follow the
//! same formulas; the transcription is `reference.rs`). One module per subject; this one
//! holds the configurations, strategies and step helpers they share.

mod clipping_and_schedules;
mod reference;
mod robustness;
mod updates;

use std::collections::BTreeMap;

use ndarray::{ArrayD, IxDyn};
use proptest::prelude::*;
use tapegrad_autograd::{Float, Grads, Param};
use tapegrad_optim::{
    AdagradConfig, AdamConfig, AdamWConfig, OptimError, Optimizer, RmsPropConfig, SgdConfig,
};

const CASES: u32 = 128;

/// The two parameters of every test: `w` of shape [2, 3] and `b` of shape [3].
const SHAPES: [(&str, &[usize]); 2] = [("w", &[2, 3]), ("b", &[3])];

#[derive(Clone, Debug)]
enum Cfg {
    Sgd(SgdConfig),
    Adam(AdamConfig),
    AdamW(AdamWConfig),
    RmsProp(RmsPropConfig),
    Adagrad(AdagradConfig),
}

impl Cfg {
    fn build<T: Float>(&self) -> Box<dyn Optimizer<T>> {
        match self {
            Cfg::Sgd(c) => Box::new(c.build().unwrap()),
            Cfg::Adam(c) => Box::new(c.build().unwrap()),
            Cfg::AdamW(c) => Box::new(c.build().unwrap()),
            Cfg::RmsProp(c) => Box::new(c.build().unwrap()),
            Cfg::Adagrad(c) => Box::new(c.build().unwrap()),
        }
    }

    fn weight_decay(&self) -> f64 {
        match self {
            Cfg::Sgd(c) => c.weight_decay,
            Cfg::Adam(c) => c.weight_decay,
            Cfg::AdamW(c) => c.weight_decay,
            Cfg::RmsProp(c) => c.weight_decay,
            Cfg::Adagrad(c) => c.weight_decay,
        }
    }
}

fn maybe_zero(range: std::ops::Range<f64>) -> impl Strategy<Value = f64> {
    prop_oneof![1 => Just(0.0), 3 => range]
}

fn sgd_cfg() -> impl Strategy<Value = SgdConfig> {
    (
        0.0..1.0,
        maybe_zero(0.0..0.99),
        maybe_zero(0.0..1.0),
        any::<bool>(),
        maybe_zero(0.0..0.1),
    )
        .prop_map(|(lr, momentum, dampening, nesterov, weight_decay)| {
            let mut c = SgdConfig {
                lr,
                momentum,
                dampening,
                nesterov,
                weight_decay,
            };
            if c.nesterov {
                c.dampening = 0.0;
                if c.momentum == 0.0 {
                    c.momentum = 0.9;
                }
            }
            c
        })
}

fn adam_cfg() -> impl Strategy<Value = AdamConfig> {
    (
        0.0..0.5,
        0.0..0.99,
        0.5..0.9999,
        1e-10..1e-6,
        maybe_zero(0.0..0.1),
        any::<bool>(),
    )
        .prop_map(|(lr, b1, b2, eps, weight_decay, amsgrad)| AdamConfig {
            lr,
            betas: (b1, b2),
            eps,
            weight_decay,
            amsgrad,
        })
}

fn adamw_cfg() -> impl Strategy<Value = AdamWConfig> {
    adam_cfg().prop_map(|c| AdamWConfig {
        lr: c.lr,
        betas: c.betas,
        eps: c.eps,
        weight_decay: c.weight_decay,
        amsgrad: c.amsgrad,
    })
}

fn rmsprop_cfg() -> impl Strategy<Value = RmsPropConfig> {
    (
        0.0..0.1,
        0.5..0.999,
        1e-8..1e-6,
        maybe_zero(0.0..0.1),
        maybe_zero(0.0..0.95),
        any::<bool>(),
    )
        .prop_map(
            |(lr, alpha, eps, weight_decay, momentum, centered)| RmsPropConfig {
                lr,
                alpha,
                eps,
                weight_decay,
                momentum,
                centered,
            },
        )
}

fn adagrad_cfg() -> impl Strategy<Value = AdagradConfig> {
    (
        0.0..1.0,
        maybe_zero(0.0..0.5),
        maybe_zero(0.0..0.1),
        maybe_zero(0.0..1.0),
        1e-10..1e-6,
    )
        .prop_map(
            |(lr, lr_decay, weight_decay, initial_accumulator_value, eps)| AdagradConfig {
                lr,
                lr_decay,
                weight_decay,
                initial_accumulator_value,
                eps,
            },
        )
}

fn any_cfg() -> impl Strategy<Value = Cfg> {
    prop_oneof![
        sgd_cfg().prop_map(Cfg::Sgd),
        adam_cfg().prop_map(Cfg::Adam),
        adamw_cfg().prop_map(Cfg::AdamW),
        rmsprop_cfg().prop_map(Cfg::RmsProp),
        adagrad_cfg().prop_map(Cfg::Adagrad),
    ]
}

/// One training step: a gradient (or none) per parameter, and the learning rate scale in
/// force (as a schedule would set it).
#[derive(Clone, Debug)]
struct StepInput {
    grads: [Option<Vec<f64>>; 2],
    lr_scale: f64,
}

fn step_input() -> impl Strategy<Value = StepInput> {
    let grad = |n| proptest::option::weighted(0.8, proptest::collection::vec(-3.0..3.0f64, n));
    (grad(6), grad(3), prop_oneof![3 => Just(1.0), 1 => 0.0..1.0]).prop_map(|(w, b, lr_scale)| {
        StepInput {
            grads: [w, b],
            lr_scale,
        }
    })
}

fn inits() -> impl Strategy<Value = [Vec<f64>; 2]> {
    (
        proptest::collection::vec(-2.0..2.0f64, 6),
        proptest::collection::vec(-2.0..2.0f64, 3),
    )
        .prop_map(|(w, b)| [w, b])
}

fn array<T: Float>(shape: &[usize], values: &[f64]) -> ArrayD<T> {
    ArrayD::from_shape_vec(
        IxDyn(shape),
        values.iter().map(|&v| <T as Float>::from_f64(v)).collect(),
    )
    .unwrap()
}

fn make_params<T: Float>(init: &[Vec<f64>; 2]) -> Vec<Param<T>> {
    SHAPES
        .iter()
        .zip(init)
        .map(|((name, shape), v)| Param::new(*name, array(shape, v)))
        .collect()
}

fn make_grads<T: Float>(params: &[Param<T>], step: &StepInput) -> Grads<T> {
    let mut grads = Grads::new();
    for ((p, (_, shape)), g) in params.iter().zip(SHAPES).zip(&step.grads) {
        if let Some(g) = g {
            grads.insert(p.id(), array(shape, g));
        }
    }
    grads
}

fn values<T: Float>(params: &[Param<T>]) -> Vec<Vec<f64>> {
    params
        .iter()
        .map(|p| p.value().iter().map(|x| Float::to_f64(*x)).collect())
        .collect()
}

fn do_step<T: Float>(
    opt: &mut dyn Optimizer<T>,
    params: &mut [Param<T>],
    grads: &Grads<T>,
) -> Result<(), OptimError> {
    opt.step(params.iter_mut(), grads)
}

/// A parameter for each vector of `grads`, whose gradient (the vector times `scale`) goes
/// into `into`.
fn grad_params<T: Float>(grads: &[Vec<f64>], scale: f64, into: &mut Grads<T>) -> Vec<Param<T>> {
    grads
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let g = ArrayD::from_shape_vec(
                IxDyn(&[v.len()]),
                v.iter().map(|x| T::from_f64(x * scale)).collect(),
            )
            .unwrap();
            let p = Param::new(format!("p{i}"), ArrayD::zeros(g.raw_dim()));
            into.insert(p.id(), g);
            p
        })
        .collect()
}

fn state_of<T: Float>(opt: &dyn Optimizer<T>, params: &[Param<T>]) -> BTreeMap<String, ArrayD<T>> {
    let refs: Vec<&Param<T>> = params.iter().collect();
    opt.state_dict(&refs).unwrap()
}

/// Runs the crate's optimizer over `steps`, returning the parameters after each step.
fn run_impl(cfg: &Cfg, init: &[Vec<f64>; 2], steps: &[StepInput]) -> Vec<Vec<Vec<f64>>> {
    let mut opt = cfg.build::<f64>();
    let base_lr = opt.lr();
    let mut params = make_params::<f64>(init);
    steps
        .iter()
        .map(|s| {
            opt.set_lr(base_lr * s.lr_scale).unwrap();
            let grads = make_grads(&params, s);
            do_step(opt.as_mut(), &mut params, &grads).unwrap();
            values(&params)
        })
        .collect()
}

fn base_lr(cfg: &Cfg) -> f64 {
    cfg.build::<f64>().lr()
}
