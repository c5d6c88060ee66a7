//! Steps that fail (a non-finite gradient, a gradient of the wrong shape) change nothing;
//! a saved state resumes training bit for bit; memory layout does not change the result.

use ndarray::{ArrayD, IxDyn};
use proptest::prelude::*;
use tapegrad_autograd::{Grads, Param};
use tapegrad_optim::OptimError;

use super::{
    CASES, SHAPES, any_cfg, do_step, inits, make_grads, make_params, run_impl, state_of,
    step_input, values,
};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

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
}
