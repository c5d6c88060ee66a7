//! The batched loops of [`Model::evaluate`](super::Model::evaluate) and
//! [`Model::predict`](super::Model::predict): a fresh tape per batch, nothing recorded for
//! gradients.

use ndarray::{ArrayD, ArrayViewD, Axis, Slice};
use tapegrad_autograd::{Float, Tape, Var};

use super::dist::{agree, reduce_totals};
use super::metric::MetricAcc;
use super::prepare::{Prepared, rows_of};
use super::{FitError, Loss};
use crate::communicator::{Communicator, shard};
use crate::data::{Batches, take_rows};
use crate::module::Module;

/// The value of a loss that must be a single number.
pub(super) fn scalar_loss<T: Float>(loss_fn: &Loss<T>, loss: Var<'_, T>) -> Result<f64, FitError> {
    // `shape` and `item` read a one-element value as a number (`value` would build its
    // array).
    let shape = loss.shape();
    if shape.iter().product::<usize>() == 1 {
        Ok(Float::to_f64(loss.item()))
    } else {
        Err(FitError::LossNotScalar {
            loss: loss_fn.name().to_string(),
            shape: shape.to_vec(),
        })
    }
}

/// Mean loss over `data` (and metric sums into `metrics`, which are reset first), in
/// batches, without gradients. With several ranks each evaluates its [`shard`] of the rows,
/// and the sums of the losses and metrics are totalled over all ranks (every rank returns
/// the same numbers; an error on one rank is an error on every rank).
pub(super) fn evaluate_batches<T: Float>(
    module: &dyn Module<T>,
    loss_fn: &Loss<T>,
    metrics: &mut [MetricAcc],
    data: &Prepared<'_, T>,
    batch_size: usize,
    comm: &dyn Communicator,
) -> Result<f64, FitError> {
    for m in metrics.iter_mut() {
        m.reset();
    }
    let n = data.x.len_of(Axis(0));
    let rows = Slice::from(shard(n, comm.rank(), comm.size()));
    let (x, y) = (
        data.x.slice_axis(Axis(0), rows),
        data.y.slice_axis(Axis(0), rows),
    );
    let mut local = || {
        let mut total = 0.0;
        for (bx, by) in Batches::in_order(x.len_of(Axis(0)), batch_size).epoch_xy(&x, &y) {
            let size = bx.len_of(Axis(0));
            let tape = Tape::new();
            let value = tape.no_grad(|| {
                let out = module.forward(tape.constant(bx));
                let target = tape.constant(by);
                let loss = loss_fn.call(out, target);
                let value = scalar_loss(loss_fn, loss)?;
                if !metrics.is_empty() {
                    let (p, t) = (out.value(), target.value());
                    metrics.iter_mut().for_each(|m| m.update(&p, &t));
                }
                Ok::<f64, FitError>(value)
            })?;
            total += value * size as f64;
        }
        Ok(total)
    };
    let total = agree(comm, local())?;
    let total = reduce_totals(comm, total, metrics)?;
    Ok(total / n as f64)
}

/// The module's outputs for the rows of `x` (standard layout, at least one row), stacked.
pub(super) fn predict_batches<T: Float>(
    module: &dyn Module<T>,
    x: &ArrayViewD<'_, T>,
    batch_size: usize,
) -> Result<ArrayD<T>, FitError> {
    let n = x.len_of(Axis(0));
    let mut result: Option<ArrayD<T>> = None;
    for rows in Batches::in_order(n, batch_size).epoch() {
        let (start, end) = (rows[0], rows[0] + rows.len());
        let tape = Tape::new();
        tape.no_grad(|| {
            let out = module.forward(tape.constant(take_rows(x, rows)));
            let out = out.value();
            let found = rows_of(&out.view());
            if out.ndim() == 0 || found != rows.len() {
                return Err(FitError::OutputRows {
                    expected: rows.len(),
                    found,
                });
            }
            let result = result.get_or_insert_with(|| {
                let mut shape = out.shape().to_vec();
                shape[0] = n;
                ArrayD::zeros(shape)
            });
            if result.shape()[1..] != out.shape()[1..] {
                return Err(FitError::OutputRows {
                    expected: rows.len(),
                    found,
                });
            }
            result
                .slice_axis_mut(Axis(0), Slice::from(start..end))
                .assign(&*out);
            Ok(())
        })?;
    }
    Ok(result.expect("n > 0, so at least one batch ran"))
}
