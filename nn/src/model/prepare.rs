//! Checking a model's data: samples as rows, shapes against the built model and the loss,
//! sparse labels, the validation split; the result is [`Prepared`] data in standard
//! layout.

use ndarray::{ArrayD, ArrayViewD, Axis, CowArray, IxDyn};
use tapegrad_autograd::Float;

use super::loss::Builtin;
use super::metric::MetricAcc;
use super::{DataRole, FitError, Model};
use crate::losses::first_invalid_label;
use crate::metrics::same_elements;
use crate::module::Module;

/// Samples as rows: a 1-D array is a column of scalar samples.
pub(super) fn as_rows<T>(a: ArrayViewD<'_, T>) -> ArrayViewD<'_, T> {
    if a.ndim() == 1 {
        a.insert_axis(Axis(1))
    } else {
        a
    }
}

pub(super) fn rows_of<T>(a: &ArrayViewD<'_, T>) -> usize {
    if a.ndim() == 0 { 1 } else { a.len_of(Axis(0)) }
}

/// The view itself if it is in standard (row-major, contiguous) layout, else a copy that is.
fn standard_layout<T: Clone>(a: ArrayViewD<'_, T>) -> CowArray<'_, T, IxDyn> {
    if a.is_standard_layout() {
        CowArray::from(a)
    } else {
        CowArray::from(a.as_standard_layout().into_owned())
    }
}

/// Checked, reshaped training or evaluation data.
pub(super) struct Prepared<'a, T> {
    pub(super) x: CowArray<'a, T, IxDyn>,
    pub(super) y: CowArray<'a, T, IxDyn>,
    pub(super) target_shape: Vec<usize>,
}

impl<T: Float> Model<T, dyn Module<T> + '_> {
    /// Checks `fit`'s data, builds the model for it, and splits off the validation data:
    /// `validation_data` when given, else the last `split` fraction of the samples (Keras'
    /// split, taken before any shuffling).
    pub(super) fn prepare_fit<'a>(
        &mut self,
        x: ArrayViewD<'a, T>,
        y: ArrayViewD<'a, T>,
        validation_data: Option<&'a (ArrayD<T>, ArrayD<T>)>,
        split: f64,
        seed: u64,
    ) -> Result<(Prepared<'a, T>, Option<Prepared<'a, T>>), FitError> {
        let x = as_rows(x);
        let (x_rows, y_rows) = (rows_of(&x), rows_of(&y));
        if y.ndim() == 0 || x_rows != y_rows {
            return Err(FitError::LengthMismatch {
                data: DataRole::Training,
                x_rows,
                y_rows: if y.ndim() == 0 { 0 } else { y_rows },
            });
        }
        if x_rows == 0 {
            return Err(FitError::EmptyDataset {
                data: DataRole::Training,
            });
        }
        let split_at = if validation_data.is_none() && split > 0.0 {
            (x_rows as f64 * (1.0 - split)).floor() as usize
        } else {
            x_rows
        };
        let input_shape = x.shape()[1..].to_vec();
        let (x_train, x_val) = x.split_at(Axis(0), split_at);
        let (y_train, y_val) = y.split_at(Axis(0), split_at);

        if split_at == 0 {
            return Err(FitError::EmptyDataset {
                data: DataRole::Training,
            });
        }
        self.ensure_built(&input_shape, seed, DataRole::Training)?;
        let train = self.prepare(x_train, y_train, DataRole::Training)?;
        let validation = match validation_data {
            Some((vx, vy)) => Some(self.prepare(vx.view(), vy.view(), DataRole::Validation)?),
            None if split_at < x_rows => Some(self.prepare(x_val, y_val, DataRole::Validation)?),
            None => None,
        };
        Ok((train, validation))
    }

    /// Checks the input samples against the built input shape, then their values with
    /// [`Module::check_input`].
    pub(super) fn check_inputs(
        &self,
        x: &ArrayViewD<'_, T>,
        data: DataRole,
    ) -> Result<(), FitError> {
        let expected = self.input_shape.as_ref().ok_or(FitError::NotBuilt)?;
        if &x.shape()[1..] != expected.as_slice() {
            return Err(FitError::InputShape {
                data,
                expected: expected.clone(),
                found: x.shape()[1..].to_vec(),
            });
        }
        self.module
            .check_input(x.view())
            .map_err(|source| FitError::InvalidInput { data, source })
    }

    /// Checks `x`/`y` of one data against the built model, shapes the targets for the
    /// loss, and validates labels.
    pub(super) fn prepare<'a>(
        &self,
        x: ArrayViewD<'a, T>,
        y: ArrayViewD<'a, T>,
        data: DataRole,
    ) -> Result<Prepared<'a, T>, FitError> {
        let x = as_rows(x);
        let (x_rows, y_rows) = (rows_of(&x), rows_of(&y));
        if y.ndim() == 0 || x_rows != y_rows {
            return Err(FitError::LengthMismatch {
                data,
                x_rows,
                y_rows: if y.ndim() == 0 { 0 } else { y_rows },
            });
        }
        if x_rows == 0 {
            return Err(FitError::EmptyDataset { data });
        }
        let output = self.output_shape.clone().ok_or(FitError::NotBuilt)?;
        self.check_inputs(&x, data)?;
        let loss = &self.compiled.as_ref().ok_or(FitError::NotCompiled)?.loss;
        let target_error = |expected: String, found: &[usize]| FitError::TargetShape {
            data,
            loss: loss.name().to_string(),
            expected,
            output: output.clone(),
            found: found.to_vec(),
        };
        let builtin = loss.builtin_kind();
        let y = if builtin == Some(Builtin::SparseCategoricalCrossEntropy) {
            let sample = &y.shape()[1..];
            if output.len() != 1 || !(sample.is_empty() || sample == [1]) {
                return Err(target_error(
                    "one integer label per sample (targets of shape (n,) or (n, 1)) and \
                     outputs of shape (n, num_classes)"
                        .to_string(),
                    sample,
                ));
            }
            let num_classes = output[0];
            if let Some((row, label)) =
                first_invalid_label(y.iter().map(|&l| Float::to_f64(l)), num_classes)
            {
                return Err(FitError::InvalidLabel {
                    data,
                    row,
                    label,
                    num_classes,
                });
            }
            // The loss takes labels as a vector of class indices.
            y.into_shape_with_order(IxDyn(&[y_rows]))
                .expect("a (n,) or (n, 1) view reshapes to (n,)")
        } else if let Some(Builtin::CrossEntropy(options)) = builtin {
            let sample = &y.shape()[1..];
            let Some((&num_classes, positions)) = output.split_last() else {
                return Err(target_error(
                    "outputs with a class axis last".to_string(),
                    sample,
                ));
            };
            if sample != positions
                && !(sample.len() == positions.len() + 1
                    && sample.ends_with(&[1])
                    && sample[..positions.len()] == *positions)
            {
                return Err(target_error(
                    format!(
                        "one class index per position: targets of shape {positions:?} (the \
                         output's shape without its class axis)"
                    ),
                    sample,
                ));
            }
            let per_sample = sample.iter().product::<usize>().max(1);
            if let Some((i, &value)) = y
                .iter()
                .enumerate()
                .find(|&(_, &v)| !options.accepts(Float::to_f64(v), num_classes))
            {
                return Err(FitError::InvalidTarget {
                    data,
                    row: i / per_sample,
                    position: i % per_sample,
                    value: Float::to_f64(value),
                    num_classes,
                    ignore_index: options.ignore_index,
                });
            }
            y
        } else {
            let y = if y.ndim() == 1 && output == [1] {
                y.insert_axis(Axis(1))
            } else {
                y
            };
            if builtin.is_some_and(Builtin::elementwise) && !same_elements(&y.shape()[1..], &output)
            {
                return Err(target_error(
                    format!("the output's shape {output:?}"),
                    &y.shape()[1..],
                ));
            }
            y
        };
        let target_shape = y.shape()[1..].to_vec();
        Ok(Prepared {
            x: standard_layout(x),
            y: standard_layout(y),
            target_shape,
        })
    }

    pub(super) fn resolve_metrics(
        &self,
        target_shape: &[usize],
    ) -> Result<Vec<MetricAcc>, FitError> {
        let compiled = self.compiled.as_ref().ok_or(FitError::NotCompiled)?;
        let output = self.output_shape.as_deref().ok_or(FitError::NotBuilt)?;
        compiled
            .metrics
            .iter()
            .map(|&m| MetricAcc::resolve(m, compiled.loss.builtin_kind(), output, target_shape))
            .collect()
    }
}
