//! The compiled metrics of a [`Model`](super::Model), resolved against its shapes and loss,
//! with their running totals over an epoch.

use ndarray::ArrayD;
use tapegrad_autograd::Float;

use super::FitError;
use super::loss::Builtin;
use crate::metrics::{self, Metric, MetricTotal, same_elements};

/// A compiled [`Metric`] resolved against the model's shapes and loss, with its running
/// sum and count (metrics are exact over an epoch, not averages of batch averages).
#[derive(Clone, Debug)]
pub(super) struct MetricAcc {
    /// The name it is logged under (the compiled metric's name).
    pub(super) name: &'static str,
    /// The specific metric computed (`Accuracy` resolved to one kind).
    metric: Metric,
    /// Binary accuracy of logits: threshold 0 instead of 0.5.
    logits: bool,
    total: MetricTotal,
}

impl MetricAcc {
    /// Resolves `metric` for outputs and targets of these shapes (per sample), like Keras'
    /// `"accuracy"`: from the loss when it says what the outputs are, else from the shapes.
    pub(super) fn resolve(
        metric: Metric,
        loss: Option<Builtin>,
        output: &[usize],
        target: &[usize],
    ) -> Result<Self, FitError> {
        let classes = output.last().copied().unwrap_or(1);
        let is_label = target.is_empty() || target == [1];
        let mut logits = false;
        let resolved = match metric {
            Metric::Accuracy => match loss {
                Some(Builtin::SparseCategoricalCrossEntropy) => Metric::SparseCategoricalAccuracy,
                Some(Builtin::CategoricalCrossEntropy) => Metric::CategoricalAccuracy,
                Some(Builtin::BinaryCrossEntropy) => Metric::BinaryAccuracy,
                Some(Builtin::BinaryCrossEntropyWithLogits) => {
                    logits = true;
                    Metric::BinaryAccuracy
                }
                _ if classes <= 1 => Metric::BinaryAccuracy,
                _ if output == target => Metric::CategoricalAccuracy,
                _ => Metric::SparseCategoricalAccuracy,
            },
            other => other,
        };
        let fits = match resolved {
            Metric::CategoricalAccuracy => output == target && !output.is_empty(),
            Metric::SparseCategoricalAccuracy => output.len() == 1 && is_label,
            _ => same_elements(output, target),
        };
        if !fits {
            return Err(FitError::MetricShape {
                metric: metric.name(),
                output: output.to_vec(),
                target: target.to_vec(),
            });
        }
        Ok(MetricAcc {
            name: metric.name(),
            metric: resolved,
            logits,
            total: MetricTotal::default(),
        })
    }

    pub(super) fn reset(&mut self) {
        self.total = MetricTotal::default();
    }

    /// The running sum and count.
    pub(super) fn total(&self) -> MetricTotal {
        self.total
    }

    /// Replaces the running sum and count (by their totals over all ranks).
    pub(super) fn set_total(&mut self, total: MetricTotal) {
        self.total = total;
    }

    pub(super) fn value(&self) -> f64 {
        self.total.mean()
    }

    /// Adds a batch: `pred` is `(batch, output...)`, `target` `(batch, target...)`.
    pub(super) fn update<T: Float>(&mut self, pred: &ArrayD<T>, target: &ArrayD<T>) {
        if self.logits {
            let right = metrics::binary_accuracy(pred, target, 0.0) * pred.len() as f64;
            self.total += MetricTotal {
                sum: right.round(),
                count: pred.len(),
            };
        } else {
            self.total += self.metric.total(pred, target);
        }
    }
}
