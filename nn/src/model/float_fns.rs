//! `fit`, `evaluate`, `predict` and `build` compiled once per float type, in this crate.
//!
//! The public methods are generic over the module and the arrays' storage; each turns its
//! arguments into a `Model<T, dyn Module<T>>` and views and calls one of these
//! [`FloatFn`]s, whose two bodies (`f32`, `f64`) are compiled here. A user's crate then
//! compiles those calls, not the training loop, the tape's work or the optimizer's.

use ndarray::{ArrayD, ArrayViewD};
use tapegrad_autograd::{Float, FloatFn};

use super::{DataRole, Evaluation, FitError, FitOptions, Model};
use crate::communicator::Communicator;
use crate::history::History;
use crate::module::Module;

/// [`Model::fit`].
pub(super) struct Fit;

impl FloatFn for Fit {
    type Args<'a, T: Float> = (
        &'a mut Model<T, dyn Module<T> + 'a>,
        ArrayViewD<'a, T>,
        ArrayViewD<'a, T>,
        FitOptions<T>,
    );
    type Output<'a, T: Float> = Result<History, FitError>;
    fn f32<'a>((model, x, y, options): Self::Args<'a, f32>) -> Self::Output<'a, f32> {
        model.fit_views(x, y, options)
    }
    fn f64<'a>((model, x, y, options): Self::Args<'a, f64>) -> Self::Output<'a, f64> {
        model.fit_views(x, y, options)
    }
}

/// [`Model::evaluate_with`].
pub(super) struct Evaluate;

impl FloatFn for Evaluate {
    type Args<'a, T: Float> = (
        &'a Model<T, dyn Module<T> + 'a>,
        ArrayViewD<'a, T>,
        ArrayViewD<'a, T>,
        usize,
        &'a dyn Communicator,
    );
    type Output<'a, T: Float> = Result<Evaluation, FitError>;
    fn f32<'a>((model, x, y, batch, comm): Self::Args<'a, f32>) -> Self::Output<'a, f32> {
        model.evaluate_views(x, y, batch, comm)
    }
    fn f64<'a>((model, x, y, batch, comm): Self::Args<'a, f64>) -> Self::Output<'a, f64> {
        model.evaluate_views(x, y, batch, comm)
    }
}

/// [`Model::predict`].
pub(super) struct Predict;

impl FloatFn for Predict {
    type Args<'a, T: Float> = (&'a Model<T, dyn Module<T> + 'a>, ArrayViewD<'a, T>, usize);
    type Output<'a, T: Float> = Result<ArrayD<T>, FitError>;
    fn f32<'a>((model, x, batch): Self::Args<'a, f32>) -> Self::Output<'a, f32> {
        model.predict_view(x, batch)
    }
    fn f64<'a>((model, x, batch): Self::Args<'a, f64>) -> Self::Output<'a, f64> {
        model.predict_view(x, batch)
    }
}

/// [`Model::build`].
pub(super) struct Build;

impl FloatFn for Build {
    type Args<'a, T: Float> = (&'a mut Model<T, dyn Module<T> + 'a>, &'a [usize], u64);
    type Output<'a, T: Float> = Result<Vec<usize>, FitError>;
    fn f32<'a>((model, shape, seed): Self::Args<'a, f32>) -> Self::Output<'a, f32> {
        model.ensure_built(shape, seed, DataRole::Training)
    }
    fn f64<'a>((model, shape, seed): Self::Args<'a, f64>) -> Self::Output<'a, f64> {
        model.ensure_built(shape, seed, DataRole::Training)
    }
}
