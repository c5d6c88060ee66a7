//! Property tests: invariants of the update rules, schedules and clipping, and agreement of
//! every optimizer, over random hyper-parameters, with a literal transcription of the
//! algorithms PyTorch documents (so configurations absent from the golden files follow the
//! same formulas; the transcription is `reference.rs`).

mod reference;

use std::collections::BTreeMap;

use ndarray::{ArrayD, IxDyn};
use proptest::prelude::*;
use tapegrad_autograd::{Float, Grads, Param};
use tapegrad_optim::clip::{clip_grad_norm, clip_grad_value, grad_norm};
use tapegrad_optim::schedules::{
    CosineAnnealingLr, ExponentialLr, LinearWarmup, LrSchedule, MultiStepLr, StepLr,
};
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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// Every optimizer, for random hyper-parameters, gradients (some missing) and learning
    /// rates changed between steps, follows PyTorch's documented algorithm.
    #[test]
    fn optimizers_follow_the_documented_formulas(
        cfg in any_cfg(),
        init in inits(),
        steps in proptest::collection::vec(step_input(), 1..10),
    ) {
        let got = run_impl(&cfg, &init, &steps);
        let want = reference::run(&cfg, base_lr(&cfg), &init, &steps);
        for (i, (got, want)) in got.iter().zip(&want).enumerate() {
            for (k, (got, want)) in got.iter().zip(want).enumerate() {
                for (j, (got, want)) in got.iter().zip(want).enumerate() {
                    let tol = 1e-9 * want.abs().max(1.0);
                    prop_assert!(
                        (got - want).abs() <= tol,
                        "step {i}, param {k}[{j}]: got {got:e}, want {want:e}"
                    );
                }
            }
        }
    }

    /// SGD without weight decay leaves parameters exactly unchanged when the gradient is zero
    /// (from a fresh state; and at any time without momentum).
    #[test]
    fn sgd_zero_gradient_without_weight_decay_changes_nothing(
        cfg in sgd_cfg(),
        init in inits(),
        warmup in proptest::collection::vec(step_input(), 0..4),
        n_zero in 1usize..5,
    ) {
        let cfg = SgdConfig { weight_decay: 0.0, ..cfg };
        let zero = StepInput { grads: [Some(vec![0.0; 6]), Some(vec![0.0; 3])], lr_scale: 1.0 };

        let mut opt = cfg.build::<f64>().unwrap();
        let mut params = make_params::<f64>(&init);
        for _ in 0..n_zero {
            let grads = make_grads(&params, &zero);
            do_step(&mut opt, &mut params, &grads).unwrap();
            prop_assert_eq!(values(&params), init.to_vec());
        }

        let plain = SgdConfig { momentum: 0.0, nesterov: false, ..cfg };
        let mut opt = plain.build::<f32>().unwrap();
        let mut params = make_params::<f32>(&init);
        for s in &warmup {
            let grads = make_grads(&params, s);
            do_step(&mut opt, &mut params, &grads).unwrap();
        }
        let before = values(&params);
        for _ in 0..n_zero {
            let grads = make_grads(&params, &zero);
            do_step(&mut opt, &mut params, &grads).unwrap();
        }
        prop_assert_eq!(values(&params), before);
    }

    /// From a fresh state with no weight decay, a zero gradient moves no optimizer's
    /// parameters.
    #[test]
    fn zero_gradient_from_fresh_state_changes_nothing(cfg in any_cfg(), init in inits()) {
        let cfg = match cfg {
            Cfg::Sgd(c) => Cfg::Sgd(SgdConfig { weight_decay: 0.0, ..c }),
            Cfg::Adam(c) => Cfg::Adam(AdamConfig { weight_decay: 0.0, ..c }),
            Cfg::AdamW(c) => Cfg::AdamW(AdamWConfig { weight_decay: 0.0, ..c }),
            Cfg::RmsProp(c) => Cfg::RmsProp(RmsPropConfig { weight_decay: 0.0, ..c }),
            Cfg::Adagrad(c) => Cfg::Adagrad(AdagradConfig { weight_decay: 0.0, ..c }),
        };
        prop_assert_eq!(cfg.weight_decay(), 0.0);
        let zero = StepInput { grads: [Some(vec![0.0; 6]), Some(vec![0.0; 3])], lr_scale: 1.0 };
        let got = run_impl(&cfg, &init, &[zero.clone(), zero.clone(), zero]);
        for after in got {
            prop_assert_eq!(after, init.to_vec());
        }
    }

    /// Adam's first step moves every parameter by about `lr` against the sign of its
    /// gradient (exactly `lr · g / (|g| + eps)`), whatever the gradient's scale.
    #[test]
    fn adam_first_step_moves_by_lr_against_the_gradient(
        lr in 1e-4..0.5f64,
        b1 in 0.0..0.99f64,
        b2 in 0.5..0.9999f64,
        amsgrad in any::<bool>(),
        init in inits(),
        mags in proptest::collection::vec((-3.0..3.0f64, any::<bool>()), 9),
    ) {
        let g: Vec<f64> = mags
            .iter()
            .map(|&(e, neg)| if neg { -(10f64.powf(e)) } else { 10f64.powf(e) })
            .collect();
        let step = StepInput { grads: [Some(g[..6].to_vec()), Some(g[6..].to_vec())], lr_scale: 1.0 };
        let cfg = AdamConfig::new(lr).betas(b1, b2).amsgrad(amsgrad);

        let after = run_impl(&Cfg::Adam(cfg.clone()), &init, std::slice::from_ref(&step));
        let moved = after[0].concat().iter().zip(init.concat()).map(|(a, b)| a - b).collect::<Vec<_>>();
        for (d, g) in moved.iter().zip(&g) {
            let want = -lr * g.signum();
            prop_assert!((d - want).abs() <= 1e-4 * lr + 1e-12, "moved {d}, want {want}");
        }

        let mut opt = cfg.build::<f32>().unwrap();
        let mut params = make_params::<f32>(&init);
        let grads = make_grads(&params, &step);
        do_step(&mut opt, &mut params, &grads).unwrap();
        for ((a, b), g) in values(&params).concat().iter().zip(init.concat()).zip(&g) {
            let want = -lr * g.signum();
            prop_assert!((a - b - want).abs() <= 1e-4 * lr + 1e-6, "f32 moved {}, want {want}", a - b);
        }
    }

    /// A NaN or infinite gradient anywhere: `step` fails naming that parameter, and every
    /// parameter and all state stay exactly as they were.
    #[test]
    fn non_finite_gradient_changes_nothing(
        cfg in any_cfg(),
        init in inits(),
        before in proptest::collection::vec(step_input(), 0..4),
        bad_step in step_input(),
        which in 0usize..2,
        position in 0usize..3,
        bad in prop_oneof![Just(f64::NAN), Just(f64::INFINITY), Just(f64::NEG_INFINITY)],
    ) {
        let mut opt = cfg.build::<f32>();
        let mut params = make_params::<f32>(&init);
        for s in &before {
            let grads = make_grads(&params, s);
            do_step(opt.as_mut(), &mut params, &grads).unwrap();
        }
        let values_before = values(&params);
        let state_before = state_of(opt.as_ref(), &params);

        let mut bad_step = bad_step;
        let len = if which == 0 { 6 } else { 3 };
        let g = bad_step.grads[which].get_or_insert_with(|| vec![0.5; len]);
        g[position] = bad;
        let grads = make_grads(&params, &bad_step);
        let err = do_step(opt.as_mut(), &mut params, &grads).unwrap_err();
        // `w` is checked before `b`: if `w` is the bad one it is named, else `b`.
        let name = SHAPES[which].0.to_string();
        prop_assert_eq!(err, OptimError::NonFiniteGradient { param: name });
        prop_assert_eq!(values(&params), values_before);
        prop_assert_eq!(state_of(opt.as_ref(), &params), state_before);
    }

    /// A gradient of the wrong shape is rejected, naming both shapes, and nothing changes.
    #[test]
    fn wrong_shape_changes_nothing(
        cfg in any_cfg(),
        init in inits(),
        before in proptest::collection::vec(step_input(), 0..3),
    ) {
        let mut opt = cfg.build::<f64>();
        let mut params = make_params::<f64>(&init);
        for s in &before {
            let grads = make_grads(&params, s);
            do_step(opt.as_mut(), &mut params, &grads).unwrap();
        }
        let values_before = values(&params);
        let state_before = state_of(opt.as_ref(), &params);
        let mut grads = Grads::new();
        grads.insert(params[0].id(), ArrayD::zeros(IxDyn(&[3, 2])));
        grads.insert(params[1].id(), ArrayD::zeros(IxDyn(&[3])));
        let err = do_step(opt.as_mut(), &mut params, &grads).unwrap_err();
        prop_assert_eq!(err, OptimError::ShapeMismatch {
            param: "w".into(),
            param_shape: vec![2, 3],
            grad_shape: vec![3, 2],
        });
        prop_assert_eq!(values(&params), values_before);
        prop_assert_eq!(state_of(opt.as_ref(), &params), state_before);
    }

    /// Saving the state by name and loading it into a fresh optimizer (with fresh parameter
    /// ids) resumes training bit for bit.
    #[test]
    fn checkpoint_resumes_exactly(
        cfg in any_cfg(),
        init in inits(),
        steps in proptest::collection::vec(step_input(), 2..8),
        split in 0usize..8,
    ) {
        let split = split.min(steps.len());
        let mut opt = cfg.build::<f32>();
        let mut params = make_params::<f32>(&init);
        for s in &steps {
            let grads = make_grads(&params, s);
            do_step(opt.as_mut(), &mut params, &grads).unwrap();
        }

        let mut first = cfg.build::<f32>();
        let mut params1 = make_params::<f32>(&init);
        for s in &steps[..split] {
            let grads = make_grads(&params1, s);
            do_step(first.as_mut(), &mut params1, &grads).unwrap();
        }
        let checkpoint = state_of(first.as_ref(), &params1);
        let mut resumed = cfg.build::<f32>();
        let mut params2: Vec<Param<f32>> =
            params1.iter().map(|p| Param::new(p.name(), p.value().clone())).collect();
        let refs: Vec<&Param<f32>> = params2.iter().collect();
        resumed.load_state_dict(&refs, &checkpoint).unwrap();
        for s in &steps[split..] {
            let grads = make_grads(&params2, s);
            do_step(resumed.as_mut(), &mut params2, &grads).unwrap();
        }
        prop_assert_eq!(values(&params2), values(&params));
        prop_assert_eq!(state_of(resumed.as_ref(), &params2), state_of(opt.as_ref(), &params));
    }

    /// Gradients (and parameters) that are not in standard layout give the same result, bit
    /// for bit, as standard ones.
    #[test]
    fn memory_layout_does_not_change_the_result(
        cfg in any_cfg(),
        init in inits(),
        steps in proptest::collection::vec(step_input(), 1..5),
    ) {
        let want = run_impl(&cfg, &init, &steps);
        let mut opt = cfg.build::<f64>();
        let base = opt.lr();
        let mut params = make_params::<f64>(&init);
        // `w` stored column-major.
        let w = params[0].value().t().as_standard_layout().into_owned();
        *params[0].value_mut() = w.reversed_axes();
        prop_assert!(params[0].value().as_slice().is_none());
        for (s, want) in steps.iter().zip(&want) {
            opt.set_lr(base * s.lr_scale).unwrap();
            let mut grads = make_grads(&params, s);
            // Gradients as column-major or strided arrays.
            if let Some(g) = grads.by_id(params[0].id()) {
                let g = g.t().as_standard_layout().into_owned().reversed_axes();
                grads.insert(params[0].id(), g);
            }
            if let Some(g) = grads.by_id(params[1].id()) {
                let mut wide = ArrayD::zeros(IxDyn(&[6]));
                for (k, x) in g.iter().enumerate() {
                    wide[[2 * k]] = *x;
                }
                let strided = wide.slice_move(ndarray::s![..;2]).into_dyn();
                prop_assert!(strided.as_slice_memory_order().is_none());
                grads.insert(params[1].id(), strided);
            }
            do_step(opt.as_mut(), &mut params, &grads).unwrap();
            prop_assert_eq!(&values(&params), want);
        }
    }

    /// Norm clipping returns the norm before clipping, never increases it, and brings it
    /// down to `max_norm` when it was above.
    #[test]
    fn clip_grad_norm_never_increases_the_norm(
        grads in proptest::collection::vec(proptest::collection::vec(-1e3..1e3f64, 1..20), 0..5),
        scale in -6.0..3.0f64,
        max_norm in 0.0..10.0f64,
    ) {
        let scale = 10f64.powf(scale);
        let mut g = Grads::new();
        let params = grad_params::<f64>(&grads, scale, &mut g);
        let before = grad_norm(&params, &g);
        let original = g.clone();
        let total = clip_grad_norm(&params, &mut g, max_norm).unwrap();
        let after = grad_norm(&params, &g);
        prop_assert_eq!(total, before);
        prop_assert!(after <= before * (1.0 + 1e-12), "{after} > {before}");
        if before > max_norm + 1e-6 {
            prop_assert!(after <= max_norm * (1.0 + 1e-12) + 1e-15, "{after} > {max_norm}");
        } else {
            for (id, v) in original.params() {
                prop_assert_eq!(g.by_id(id).unwrap(), v);
            }
        }

        let mut g32 = Grads::new();
        let params32 = grad_params::<f32>(&grads, scale, &mut g32);
        let before32 = grad_norm(&params32, &g32);
        clip_grad_norm(&params32, &mut g32, max_norm).unwrap();
        prop_assert!(grad_norm(&params32, &g32) <= before32 * (1.0 + 1e-6));
    }

    /// Value clipping bounds every element, keeps those within bounds, and never increases
    /// the norm.
    #[test]
    fn clip_grad_value_bounds_every_element(
        grads in proptest::collection::vec(proptest::collection::vec(-10.0..10.0f64, 1..20), 0..5),
        clip in 0.0..5.0f64,
    ) {
        let mut g = Grads::new();
        let params = grad_params::<f64>(&grads, 1.0, &mut g);
        let original = g.clone();
        clip_grad_value(&params, &mut g, clip).unwrap();
        prop_assert!(grad_norm(&params, &g) <= grad_norm(&params, &original));
        for (id, v) in original.params() {
            for (got, was) in g.by_id(id).unwrap().iter().zip(v) {
                prop_assert!(got.abs() <= clip);
                if was.abs() <= clip {
                    prop_assert_eq!(got, was);
                } else {
                    prop_assert_eq!(*got, clip.copysign(*was));
                }
            }
        }
    }

    /// Schedules never go negative; decaying ones never increase; cosine stays between its
    /// bounds; warm-up rises to the base rate and stays there.
    #[test]
    fn schedules_behave(
        base in 0.0..1.0f64,
        gamma in 0.0..1.0f64,
        step_size in 1usize..6,
        milestones in proptest::collection::vec(0usize..30, 0..5),
        t_max in 1usize..20,
        eta_min in 0.0..0.1f64,
        start_factor in 0.01..1.0f64,
        total_iters in 0usize..10,
    ) {
        let decaying: Vec<Box<dyn LrSchedule>> = vec![
            Box::new(StepLr::new(base, step_size, gamma).unwrap()),
            Box::new(MultiStepLr::new(base, &milestones, gamma).unwrap()),
            Box::new(ExponentialLr::new(base, gamma).unwrap()),
        ];
        // (A milestone at epoch 0 applies at once, as in PyTorch.)
        prop_assert_eq!(decaying[0].lr(0), base);
        prop_assert_eq!(decaying[2].lr(0), base);
        for s in &decaying {
            prop_assert!(s.lr(0) <= base);
            for e in 0..40 {
                prop_assert!(s.lr(e + 1) <= s.lr(e) && s.lr(e + 1) >= 0.0);
            }
        }
        let cosine = CosineAnnealingLr::new(base, t_max, eta_min).unwrap();
        let (lo, hi) = (base.min(eta_min), base.max(eta_min));
        for e in 0..3 * t_max {
            let lr = cosine.lr(e);
            prop_assert!(lr >= lo - 1e-15 && lr <= hi + 1e-15);
        }
        prop_assert!((cosine.lr(t_max) - eta_min).abs() <= 1e-15);
        let warmup = LinearWarmup::new(base, start_factor, total_iters).unwrap();
        if total_iters > 0 {
            prop_assert!((warmup.lr(0) - start_factor * base).abs() <= 1e-15);
        }
        for e in 0..20 {
            prop_assert!(warmup.lr(e + 1) >= warmup.lr(e) && warmup.lr(e) <= base + 1e-15);
            if e >= total_iters {
                prop_assert_eq!(warmup.lr(e), base);
            }
        }
        let chained = warmup.clone().then(total_iters, cosine.clone()).unwrap();
        for e in 0..30 {
            let want = if e < total_iters { warmup.lr(e) } else { cosine.lr(e - total_iters) };
            prop_assert_eq!(chained.lr(e), want);
        }
    }
}
