//! Gradient clipping, in place on a [`Grads`] before the optimizer step (PyTorch's
//! `clip_grad_norm_` and `clip_grad_value_`).
//!
//! ```
//! use ndarray::arr1;
//! use tapegrad_autograd::{Grads, Param};
//! use tapegrad_optim::clip::clip_grad_norm;
//! use tapegrad_optim::{AdamConfig, Optimizer};
//!
//! let mut w = Param::new("w", arr1(&[1.0_f32, 2.0]).into_dyn());
//! let mut opt = AdamConfig::new(1e-3).build()?;
//! let mut grads = Grads::new();
//! grads.insert(w.id(), arr1(&[30.0, 40.0]).into_dyn());
//! let total = clip_grad_norm(&mut grads, 1.0); // the norm before clipping
//! assert!((total - 50.0).abs() < 1e-9);
//! opt.step(&mut [&mut w], &grads)?;
//! # Ok::<(), tapegrad_optim::OptimError>(())
//! ```

use ndarray::ArrayD;
use tapegrad_autograd::{Float, Grads, ParamId};

use crate::optimizer::scalar;

/// The sum of squares of `a`, as `f64`.
///
/// Squares are summed in the element type over 16 independent lanes (which vectorizes), for
/// blocks of 256 elements (16 per lane, so that `f32` partial sums stay accurate), and the
/// blocks' sums are added in `f64`.
fn sum_of_squares<T: Float>(a: &ArrayD<T>) -> f64 {
    const LANES: usize = 16;
    const BLOCK: usize = 16 * LANES;
    let square = |x: &T| {
        let x = Float::to_f64(*x);
        x * x
    };
    match a.as_slice_memory_order() {
        Some(s) => {
            let mut total = 0.0;
            let mut blocks = s.chunks_exact(BLOCK);
            for block in &mut blocks {
                let mut acc = [T::zero(); LANES];
                for chunk in block.chunks_exact(LANES) {
                    for (acc, &x) in acc.iter_mut().zip(chunk) {
                        *acc += x * x;
                    }
                }
                total += acc.iter().map(|&x| Float::to_f64(x)).sum::<f64>();
            }
            total + blocks.remainder().iter().map(square).sum::<f64>()
        }
        None => a.iter().map(square).sum(),
    }
}

/// The L2 norm of all parameter gradients together, computed in `f64`.
///
/// The result does not depend on the order in which `grads` stores the gradients.
pub fn grad_norm<T: Float>(grads: &Grads<T>) -> f64 {
    let mut parts: Vec<(ParamId, f64)> = grads
        .params()
        .map(|(id, g)| (id, sum_of_squares(g)))
        .collect();
    parts.sort_unstable_by_key(|(id, _)| *id);
    parts.iter().map(|(_, s)| s).sum::<f64>().sqrt()
}

/// Rescales all parameter gradients together so that their joint L2 norm is at most
/// `max_norm`, and returns the norm they had before (PyTorch's `clip_grad_norm_`).
///
/// The gradients are multiplied by `max_norm / (total_norm + 1e-6)` when that factor is
/// below 1, and left alone otherwise. If the total norm is NaN or infinite the gradients are
/// left unchanged (the next optimizer step reports which parameter is at fault), and the
/// non-finite norm is returned.
///
/// # Panics
///
/// If `max_norm` is negative or NaN.
#[track_caller]
pub fn clip_grad_norm<T: Float>(grads: &mut Grads<T>, max_norm: f64) -> f64 {
    assert!(
        max_norm >= 0.0,
        "clip_grad_norm: max_norm must be >= 0, got {max_norm}"
    );
    let total = grad_norm(grads);
    if !total.is_finite() {
        return total;
    }
    let coef = max_norm / (total + 1e-6);
    if coef < 1.0 {
        let coef = scalar::<T>(coef);
        for (_, g) in grads.params_mut() {
            g.mapv_inplace(|x| x * coef);
        }
    }
    total
}

/// Clamps every element of every parameter gradient to `[-clip_value, clip_value]`
/// (PyTorch's `clip_grad_value_`). NaNs stay NaN, so the next step still reports them.
///
/// # Panics
///
/// If `clip_value` is negative or NaN.
#[track_caller]
pub fn clip_grad_value<T: Float>(grads: &mut Grads<T>, clip_value: f64) {
    assert!(
        clip_value >= 0.0,
        "clip_grad_value: clip_value must be >= 0, got {clip_value}"
    );
    let hi = scalar::<T>(clip_value);
    let lo = -hi;
    // Two selects rather than an if-else chain, so that the loop vectorizes; NaN fails
    // both comparisons and is kept.
    let clamp = |x: &mut T| {
        let y = if *x > hi { hi } else { *x };
        *x = if y < lo { lo } else { y };
    };
    for (_, g) in grads.params_mut() {
        match g.as_slice_memory_order_mut() {
            Some(s) => s.iter_mut().for_each(clamp),
            None => g.iter_mut().for_each(clamp),
        }
    }
}

#[cfg(test)]
mod tests {
    use ndarray::{arr1, arr2};

    use super::*;

    #[test]
    fn norm_is_taken_over_all_gradients() {
        let mut grads = Grads::new();
        grads.insert(ParamId::fresh(), arr1(&[3.0_f64]).into_dyn());
        grads.insert(ParamId::fresh(), arr2(&[[4.0_f64]]).into_dyn());
        assert_eq!(grad_norm(&grads), 5.0);
        let total = clip_grad_norm(&mut grads, 1.0);
        assert_eq!(total, 5.0);
        assert!((grad_norm(&grads) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn small_gradients_are_left_alone() {
        let id = ParamId::fresh();
        let mut grads = Grads::new();
        grads.insert(id, arr1(&[0.3_f32, 0.4]).into_dyn());
        let total = clip_grad_norm(&mut grads, 1.0);
        assert!((total - 0.5).abs() < 1e-7);
        assert_eq!(grads.by_id(id).unwrap(), &arr1(&[0.3_f32, 0.4]).into_dyn());
    }

    #[test]
    fn non_finite_norm_leaves_gradients_unchanged() {
        let (a, b) = (ParamId::fresh(), ParamId::fresh());
        let mut grads = Grads::new();
        grads.insert(a, arr1(&[f64::INFINITY, 1.0]).into_dyn());
        grads.insert(b, arr1(&[2.0]).into_dyn());
        assert_eq!(clip_grad_norm(&mut grads, 1.0), f64::INFINITY);
        assert_eq!(grads.by_id(b).unwrap()[[0]], 2.0);
        grads.insert(a, arr1(&[f64::NAN, 1.0]).into_dyn());
        assert!(clip_grad_norm(&mut grads, 1.0).is_nan());
        assert_eq!(grads.by_id(a).unwrap()[[1]], 1.0);
    }

    #[test]
    fn value_clipping_keeps_nan() {
        let id = ParamId::fresh();
        let mut grads = Grads::new();
        grads.insert(id, arr1(&[-2.0_f64, 0.25, 3.0, f64::NAN]).into_dyn());
        clip_grad_value(&mut grads, 0.5);
        let g = grads.by_id(id).unwrap();
        assert_eq!(&g.as_slice().unwrap()[..3], &[-0.5, 0.25, 0.5]);
        assert!(g[[3]].is_nan());
    }

    #[test]
    fn non_contiguous_gradients_are_handled() {
        let id = ParamId::fresh();
        // Every other element: a strided view that is not contiguous in memory.
        let g = arr1(&[3.0_f64, 100.0, 4.0, 100.0]).slice_move(ndarray::s![..;2]);
        assert!(g.as_slice_memory_order().is_none());
        let mut grads = Grads::new();
        grads.insert(id, g.into_dyn());
        assert_eq!(grad_norm(&grads), 5.0);
        clip_grad_value(&mut grads, 3.5);
        assert_eq!(grads.by_id(id).unwrap(), &arr1(&[3.0, 3.5]).into_dyn());
        // Column-major arrays take the contiguous path.
        let mut grads = Grads::new();
        grads.insert(
            id,
            arr2(&[[3.0_f64, 1.0], [4.0, 1.0]])
                .reversed_axes()
                .into_dyn(),
        );
        assert_eq!(grad_norm(&grads), 27.0_f64.sqrt());
    }

    #[test]
    #[should_panic(expected = "max_norm must be >= 0")]
    fn negative_max_norm_panics() {
        clip_grad_norm(&mut Grads::<f64>::new(), -1.0);
    }
}
