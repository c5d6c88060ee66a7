//! How the ranks of a data-parallel `fit` or `evaluate` agree: on errors (a failure on one
//! rank is an error on every rank, never a rank left waiting in a collective), on stops (a
//! callback that stops training on one rank stops every rank at the same point) and on the
//! totals of losses and metrics. On one process nothing here communicates.

use super::FitError;
use super::metric::MetricAcc;
use crate::communicator::{CommError, Communicator, first_failure};
use crate::history::StopReason;
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

/// The reason to stop of the lowest rank that has one (`local` is this rank's), the same on
/// every rank, or `None` when no rank stops: one all-reduce of `size()` numbers, then, only
/// when some rank stops, a broadcast of its reason. Every rank must call it at the same
/// point, which is how a rank-local reason (a time budget, a file) stops every rank there
/// instead of leaving the others waiting in the next step's collective. Returns `local` as
/// it is on one process.
pub(super) fn agree_stop(
    comm: &dyn Communicator,
    local: Option<StopReason>,
) -> Result<Option<StopReason>, FitError> {
    if comm.size() == 1 {
        return Ok(local);
    }
    let mine = local.as_ref().map(encode_stop);
    match first_failure(comm, mine.as_deref())? {
        None => Ok(None),
        Some((rank, _)) if rank == comm.rank() => Ok(local),
        Some((rank, text)) => decode_stop(&text).map(Some).ok_or_else(|| {
            FitError::Communication(CommError::Mismatch {
                operation: "broadcast",
                detail: format!("rank {rank}'s reason to stop cannot be read: {text:?}"),
            })
        }),
    }
}

/// A stop reason as text for [`agree_stop`]'s broadcast: its variant, then its fields, each
/// written `<byte length>:<text>` (so that names and messages may hold any character), and
/// floats as the hexadecimal of their bits (so that they arrive bit for bit).
fn encode_stop(reason: &StopReason) -> String {
    let fields: Vec<String> = match reason {
        StopReason::EarlyStopping {
            epoch,
            monitor,
            best_epoch,
            best,
            restored_best_weights,
        } => vec![
            "early_stopping".into(),
            epoch.to_string(),
            monitor.clone(),
            best_epoch.to_string(),
            format!("{:x}", best.to_bits()),
            restored_best_weights.to_string(),
        ],
        StopReason::NonFiniteLoss { epoch, batch, loss } => vec![
            "non_finite_loss".into(),
            epoch.to_string(),
            batch.to_string(),
            format!("{:x}", loss.to_bits()),
        ],
        StopReason::Callback {
            name,
            epoch,
            message,
        } => vec![
            "callback".into(),
            name.clone(),
            epoch.to_string(),
            message.clone(),
        ],
    };
    fields.iter().map(|f| format!("{}:{f}", f.len())).collect()
}

/// The reason [`encode_stop`] wrote, or `None` when `text` is not one.
fn decode_stop(text: &str) -> Option<StopReason> {
    let mut fields = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (len, tail) = rest.split_once(':')?;
        let len: usize = len.parse().ok()?;
        fields.push(tail.get(..len)?);
        rest = tail.get(len..)?;
    }
    let float = |s: &str| u64::from_str_radix(s, 16).ok().map(f64::from_bits);
    Some(match fields.as_slice() {
        ["early_stopping", epoch, monitor, best_epoch, best, restored] => {
            StopReason::EarlyStopping {
                epoch: epoch.parse().ok()?,
                monitor: monitor.to_string(),
                best_epoch: best_epoch.parse().ok()?,
                best: float(best)?,
                restored_best_weights: restored.parse().ok()?,
            }
        }
        ["non_finite_loss", epoch, batch, loss] => StopReason::NonFiniteLoss {
            epoch: epoch.parse().ok()?,
            batch: batch.parse().ok()?,
            loss: float(loss)?,
        },
        ["callback", name, epoch, message] => StopReason::Callback {
            name: name.to_string(),
            epoch: epoch.parse().ok()?,
            message: message.to_string(),
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_reasons_survive_their_text() {
        let reasons = [
            StopReason::EarlyStopping {
                epoch: 7,
                monitor: "val_loss".into(),
                best_epoch: 4,
                best: 0.1 + 0.2,
                restored_best_weights: true,
            },
            StopReason::NonFiniteLoss {
                epoch: 0,
                batch: 3,
                loss: f64::NEG_INFINITY,
            },
            StopReason::Callback {
                name: "Budget".into(),
                epoch: 2,
                message: "12:34 élapsed:\n line two".into(),
            },
        ];
        for reason in reasons {
            assert_eq!(decode_stop(&encode_stop(&reason)), Some(reason));
        }
        for bad in [
            "",
            "8:callback",
            "99:callback",
            "x:y",
            "4:nope",
            "8:callback1:a",
        ] {
            assert_eq!(decode_stop(bad), None, "{bad:?}");
        }
    }
}
