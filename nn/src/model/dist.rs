//! How the ranks of a data-parallel `fit` or `evaluate` agree: on errors (a failure on one
//! rank is an error on every rank, never a rank left waiting in a collective) and on the
//! totals of losses and metrics. On one process nothing here communicates.

use super::FitError;
use super::metric::MetricAcc;
use crate::communicator::{CommError, Communicator, first_failure};
use crate::metrics::MetricTotal;

/// `local` when no rank failed; otherwise this rank's own error when it failed, else the
/// error of the lowest failing rank as [`FitError::RankFailed`]. Every rank must call it at
/// the same point. Returns `local` as it is on one process.
pub(super) fn agree<R>(comm: &dyn Communicator, local: Result<R, FitError>) -> Result<R, FitError> {
    if comm.size() == 1 {
        return local;
    }
    let mine = local.as_ref().err().map(ToString::to_string);
    match first_failure(comm, mine.as_deref())? {
        None => local,
        Some(_) if local.is_err() => local,
        Some((rank, message)) => Err(FitError::RankFailed { rank, message }),
    }
}

/// The error every rank returns once a step's all-reduce counted failed ranks: `local` is
/// this rank's error, if it failed.
pub(super) fn step_failure(comm: &dyn Communicator, local: Option<FitError>) -> FitError {
    match agree(comm, local.map_or(Ok(()), Err)) {
        Err(e) => e,
        Ok(()) => FitError::Communication(CommError::Mismatch {
            operation: "all-reduce",
            detail: "a failure was counted but no rank reports one".to_string(),
        }),
    }
}

/// Replaces each metric's running total by its sum over all ranks, and returns `loss`
/// summed over all ranks too (one all-reduce).
pub(super) fn reduce_totals(
    comm: &dyn Communicator,
    loss: f64,
    metrics: &mut [MetricAcc],
) -> Result<f64, FitError> {
    if comm.size() == 1 {
        return Ok(loss);
    }
    let mut buf = vec![loss];
    for m in metrics.iter() {
        let t = m.total();
        buf.extend([t.sum, t.count as f64]);
    }
    comm.all_reduce_sum_f64(&mut buf)?;
    for (m, t) in metrics.iter_mut().zip(buf[1..].chunks_exact(2)) {
        m.set_total(MetricTotal {
            sum: t[0],
            count: t[1].round() as usize,
        });
    }
    Ok(buf[0])
}
