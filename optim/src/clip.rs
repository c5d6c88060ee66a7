//! Gradient clipping, in place on a [`Grads`] before the optimizer step (PyTorch's
//! `clip_grad_norm_` and `clip_grad_value_`): only the gradients of the parameters given
//! are read and changed, so clipping can be limited to part of a model.
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
//! let total = clip_grad_norm([&w], &mut grads, 1.0)?; // the norm before clipping
//! assert!((total - 50.0).abs() < 1e-9);
//! opt.step([&mut w], &grads)?;
//! # Ok::<(), tapegrad_optim::OptimError>(())
//! ```

use std::borrow::Borrow;

use ndarray::ArrayD;
use tapegrad_autograd::{Float, Grads, Param, ParamId};

use crate::error::{OptimError, invalid};
use crate::update::scalar;

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

/// The ids of `params`, sorted, each once: results do not depend on the order in which the
/// parameters are given or in which `grads` stores the gradients, and a parameter listed
/// twice counts once.
fn unique_ids<T: Float>(params: impl IntoIterator<Item = impl Borrow<Param<T>>>) -> Vec<ParamId> {
    let mut ids: Vec<ParamId> = params.into_iter().map(|p| p.borrow().id()).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The L2 norm of the gradients of `params` together, computed in `f64` (parameters
/// without a gradient count as zero).
///
/// ```
/// use ndarray::arr1;
/// use tapegrad_autograd::{Grads, Param};
/// use tapegrad_optim::clip::grad_norm;
///
/// let (a, b) = (Param::new("a", arr1(&[0.0_f64]).into_dyn()), Param::new("b", arr1(&[0.0]).into_dyn()));
/// let mut grads = Grads::new();
/// grads.insert(a.id(), arr1(&[3.0]).into_dyn());
/// grads.insert(b.id(), arr1(&[4.0]).into_dyn());
/// assert_eq!(grad_norm([&a, &b], &grads), 5.0);
/// assert_eq!(grad_norm([&b], &grads), 4.0);
/// ```
pub fn grad_norm<T: Float>(
    params: impl IntoIterator<Item = impl Borrow<Param<T>>>,
    grads: &Grads<T>,
) -> f64 {
    norm_of(&unique_ids(params), grads)
}

/// A clipping threshold must be `>= 0`; `+∞` (clip nothing) is allowed, NaN is not.
fn threshold(name: &'static str, value: f64) -> Result<(), OptimError> {
    if value >= 0.0 {
        Ok(())
    } else {
        Err(invalid(name, value, "must be >= 0"))
    }
}

fn norm_of<T: Float>(ids: &[ParamId], grads: &Grads<T>) -> f64 {
    ids.iter()
        .filter_map(|&id| grads.by_id(id))
        .map(sum_of_squares)
        .sum::<f64>()
        .sqrt()
}

/// Rescales the gradients of `params` together so that their joint L2 norm is at most
/// `max_norm`, and returns the norm they had before (PyTorch's `clip_grad_norm_`).
/// Gradients of other parameters are left alone.
///
/// The gradients are multiplied by `max_norm / (total_norm + 1e-6)` when that factor is
/// below 1, and left alone otherwise. If the total norm is NaN or infinite the gradients are
/// left unchanged (the next optimizer step reports which parameter is at fault), and the
/// non-finite norm is returned.
///
/// # Errors
///
/// [`OptimError::InvalidHyperParameter`] (named `max_norm`) if `max_norm` is negative or
/// NaN (infinity is allowed: no clipping); nothing is changed then.
pub fn clip_grad_norm<T: Float>(
    params: impl IntoIterator<Item = impl Borrow<Param<T>>>,
    grads: &mut Grads<T>,
    max_norm: f64,
) -> Result<f64, OptimError> {
    threshold("max_norm", max_norm)?;
    let ids = unique_ids(params);
    let total = norm_of(&ids, grads);
    if !total.is_finite() {
        return Ok(total);
    }
    let coef = max_norm / (total + 1e-6);
    if coef < 1.0 {
        let coef = scalar::<T>(coef);
        for &id in &ids {
            if let Some(g) = grads.by_id_mut(id) {
                g.mapv_inplace(|x| x * coef);
            }
        }
    }
    Ok(total)
}

/// Clamps every element of the gradients of `params` to `[-clip_value, clip_value]`
/// (PyTorch's `clip_grad_value_`). NaNs stay NaN, so the next step still reports them.
/// Gradients of other parameters are left alone.
///
/// # Errors
///
/// [`OptimError::InvalidHyperParameter`] (named `clip_value`) if `clip_value` is negative
/// or NaN (infinity is allowed: no clipping); nothing is changed then.
pub fn clip_grad_value<T: Float>(
    params: impl IntoIterator<Item = impl Borrow<Param<T>>>,
    grads: &mut Grads<T>,
    clip_value: f64,
) -> Result<(), OptimError> {
    threshold("clip_value", clip_value)?;
    let hi = scalar::<T>(clip_value);
    let lo = -hi;
    // Two selects rather than an if-else chain, so that the loop vectorizes; NaN fails
    // both comparisons and is kept.
    let clamp = |x: &mut T| {
        let y = if *x > hi { hi } else { *x };
        *x = if y < lo { lo } else { y };
    };
    for id in unique_ids(params) {
        let Some(g) = grads.by_id_mut(id) else {
            continue;
        };
        match g.as_slice_memory_order_mut() {
            Some(s) => s.iter_mut().for_each(clamp),
            None => g.iter_mut().for_each(clamp),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use ndarray::{arr1, arr2};

    use super::*;

    /// A parameter named `name` with `grad` as its gradient in `grads`.
    fn with_grad(name: &str, grad: ArrayD<f64>, grads: &mut Grads<f64>) -> Param<f64> {
        let p = Param::new(name, ArrayD::zeros(grad.raw_dim()));
        grads.insert(p.id(), grad);
        p
    }

    #[test]
    fn norm_is_taken_over_the_given_gradients() {
        let mut grads = Grads::new();
        let a = with_grad("a", arr1(&[3.0]).into_dyn(), &mut grads);
        let b = with_grad("b", arr2(&[[4.0]]).into_dyn(), &mut grads);
        assert_eq!(grad_norm([&a, &b], &grads), 5.0);
        // Listed twice, counted once.
        assert_eq!(grad_norm([&a, &b, &a], &grads), 5.0);
        let total = clip_grad_norm([&a, &b], &mut grads, 1.0).unwrap();
        assert_eq!(total, 5.0);
        assert!((grad_norm([&a, &b], &grads) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn only_the_given_parameters_are_clipped() {
        let mut grads = Grads::new();
        let a = with_grad("a", arr1(&[3.0, 4.0]).into_dyn(), &mut grads);
        let b = with_grad("b", arr1(&[30.0, 40.0]).into_dyn(), &mut grads);
        assert_eq!(clip_grad_norm([&a], &mut grads, 1.0).unwrap(), 5.0);
        assert!((grad_norm([&a], &grads) - 1.0).abs() < 1e-6);
        assert_eq!(grads[&b], arr1(&[30.0, 40.0]).into_dyn());
        clip_grad_value([&a], &mut grads, 0.5).unwrap();
        assert_eq!(grads[&b], arr1(&[30.0, 40.0]).into_dyn());
    }

    #[test]
    fn small_gradients_are_left_alone() {
        let p = Param::new("p", arr1(&[0.0_f32, 0.0]).into_dyn());
        let mut grads = Grads::new();
        grads.insert(p.id(), arr1(&[0.3_f32, 0.4]).into_dyn());
        let total = clip_grad_norm([&p], &mut grads, 1.0).unwrap();
        assert!((total - 0.5).abs() < 1e-7);
        assert_eq!(grads[&p], arr1(&[0.3_f32, 0.4]).into_dyn());
        assert_eq!(
            clip_grad_norm([&p], &mut grads, f64::INFINITY).unwrap(),
            total
        );
    }

    #[test]
    fn non_finite_norm_leaves_gradients_unchanged() {
        let mut grads = Grads::new();
        let a = with_grad("a", arr1(&[f64::INFINITY, 1.0]).into_dyn(), &mut grads);
        let b = with_grad("b", arr1(&[2.0]).into_dyn(), &mut grads);
        assert_eq!(
            clip_grad_norm([&a, &b], &mut grads, 1.0).unwrap(),
            f64::INFINITY
        );
        assert_eq!(grads[&b][[0]], 2.0);
        grads.insert(a.id(), arr1(&[f64::NAN, 1.0]).into_dyn());
        assert!(clip_grad_norm([&a, &b], &mut grads, 1.0).unwrap().is_nan());
        assert_eq!(grads[&a][[1]], 1.0);
    }

    #[test]
    fn value_clipping_keeps_nan() {
        let mut grads = Grads::new();
        let p = with_grad(
            "p",
            arr1(&[-2.0, 0.25, 3.0, f64::NAN]).into_dyn(),
            &mut grads,
        );
        clip_grad_value([&p], &mut grads, 0.5).unwrap();
        let g = &grads[&p];
        assert_eq!(&g.as_slice().unwrap()[..3], &[-0.5, 0.25, 0.5]);
        assert!(g[[3]].is_nan());
    }

    #[test]
    fn non_contiguous_gradients_are_handled() {
        // Every other element: a strided view that is not contiguous in memory.
        let g = arr1(&[3.0_f64, 100.0, 4.0, 100.0]).slice_move(ndarray::s![..;2]);
        assert!(g.as_slice_memory_order().is_none());
        let mut grads = Grads::new();
        let p = with_grad("p", g.into_dyn(), &mut grads);
        assert_eq!(grad_norm([&p], &grads), 5.0);
        clip_grad_value([&p], &mut grads, 3.5).unwrap();
        assert_eq!(grads[&p], arr1(&[3.0, 3.5]).into_dyn());
        // Column-major arrays take the contiguous path.
        let mut grads = Grads::new();
        let q = with_grad(
            "q",
            arr2(&[[3.0_f64, 1.0], [4.0, 1.0]])
                .reversed_axes()
                .into_dyn(),
            &mut grads,
        );
        assert_eq!(grad_norm([&q], &grads), 27.0_f64.sqrt());
    }

    #[test]
    fn bad_thresholds_are_errors_and_change_nothing() {
        let mut grads = Grads::new();
        let p = with_grad("p", arr1(&[3.0, 4.0]).into_dyn(), &mut grads);
        for bad in [-1.0, f64::NAN] {
            let err = clip_grad_norm([&p], &mut grads, bad).unwrap_err();
            assert!(matches!(
                err,
                OptimError::InvalidHyperParameter {
                    name: "max_norm",
                    ..
                }
            ));
            let err = clip_grad_value([&p], &mut grads, bad).unwrap_err();
            assert!(matches!(
                err,
                OptimError::InvalidHyperParameter {
                    name: "clip_value",
                    ..
                }
            ));
        }
        assert_eq!(grads[&p], arr1(&[3.0, 4.0]).into_dyn());
    }
}
