//! The update rules: every optimizer follows PyTorch's documented formulas, a zero gradient
//! moves nothing, and Adam's first step moves by `lr` against the gradient.

use proptest::prelude::*;
use tapegrad_optim::{AdagradConfig, AdamConfig, AdamWConfig, RmsPropConfig, SgdConfig};

use super::{
    CASES, Cfg, StepInput, any_cfg, base_lr, do_step, inits, make_grads, make_params, reference,
    run_impl, sgd_cfg, step_input, values,
};

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
}
