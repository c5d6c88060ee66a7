//! Gradient clipping (by norm and by value) and the learning-rate schedules.

use proptest::prelude::*;
use tapegrad_autograd::Grads;
use tapegrad_optim::clip::{clip_grad_norm, clip_grad_value, grad_norm};
use tapegrad_optim::schedules::{
    CosineAnnealingLr, ExponentialLr, LinearWarmup, LrSchedule, MultiStepLr, StepLr,
};

use super::{CASES, grad_params};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

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
