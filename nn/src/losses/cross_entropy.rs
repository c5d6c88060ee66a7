//! [`cross_entropy`]: PyTorch's `F.cross_entropy` over class indices, with an ignored index
//! and label smoothing, as language models use it (makemore's `ignore_index=-1`).

use ndarray::{ArrayD, IxDyn};
use tapegrad_autograd::{Float, Var, memory};

use super::outer_shape;

/// Options of [`cross_entropy`]: which target is ignored and how much the labels are
/// smoothed. The default ignores `-1` (makemore's padding) and does not smooth.
///
/// ```
/// use tapegrad_nn::losses::CrossEntropy;
///
/// let options = CrossEntropy::default().label_smoothing(0.1);
/// assert_eq!(options.ignore_index, Some(-1));
/// assert_eq!(CrossEntropy::default().ignore_index(None).ignore_index, None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CrossEntropy {
    /// The target value whose rows are left out of the loss and of the mean (PyTorch's
    /// `ignore_index`; `None` ignores nothing). Default `Some(-1)`.
    pub ignore_index: Option<i64>,
    /// `ε` in `[0, 1]`: the target distribution is `1 - ε` on the label plus `ε / C` on
    /// every class (PyTorch's `label_smoothing`). Default 0.
    pub label_smoothing: f64,
}

impl Default for CrossEntropy {
    fn default() -> Self {
        CrossEntropy {
            ignore_index: Some(-1),
            label_smoothing: 0.0,
        }
    }
}

impl CrossEntropy {
    /// Sets the ignored target value (`None`: every target counts).
    pub fn ignore_index(mut self, ignore_index: Option<i64>) -> Self {
        self.ignore_index = ignore_index;
        self
    }

    /// Sets the label smoothing `ε` (checked by [`cross_entropy`] to be in `[0, 1]`).
    pub fn label_smoothing(mut self, epsilon: f64) -> Self {
        self.label_smoothing = epsilon;
        self
    }

    /// Whether `target` is a valid target for `num_classes` classes: a class index or the
    /// ignored value.
    pub(crate) fn accepts(&self, target: f64, num_classes: usize) -> bool {
        let class = target.fract() == 0.0 && target >= 0.0 && target < num_classes as f64;
        class || self.ignore_index.is_some_and(|i| i as f64 == target)
    }
}

/// Cross-entropy of logits `[..., C]` against one class index per row of the leading axes
/// (`targets` in row-major order: `B·T` of them for `[B, T, C]` logits), averaged over the
/// rows whose target is not `options.ignore_index` — PyTorch's
/// `F.cross_entropy(logits.view(-1, C), targets.view(-1), ignore_index=, label_smoothing=)`.
///
/// Per counted row, with `ε` the label smoothing, the loss is
/// `(1 - ε) · (-log p[target]) + ε · mean_c(-log p[c])`, `log p` being `log_softmax` of the
/// row. Ignored rows are left out before the `log_softmax` (they cost nothing and get a
/// zero gradient). Composed from `index_select`, `log_softmax` and `gather`, so every order
/// of derivative comes from the tape.
///
/// When every target is ignored the mean is over no rows: the loss is NaN (as in PyTorch)
/// and its gradient zero.
///
/// Panics (naming the loss, the value and its position) at a target that is neither the
/// ignored value nor in `0..C`, if the number of targets is not the number of rows, or if
/// the label smoothing is outside `[0, 1]`.
///
/// ```
/// use ndarray::array;
/// use tapegrad_autograd::Tape;
/// use tapegrad_nn::losses::{cross_entropy, CrossEntropy};
///
/// let tape = Tape::<f64>::new();
/// // [B = 1, T = 3, C = 2] logits; the last step is padding (-1)
/// let logits = tape.var(array![[[0.0, 0.0], [2.0, 0.0], [5.0, -5.0]]].into_dyn());
/// let loss = cross_entropy(logits, &[1, 0, -1], CrossEntropy::default());
/// let want = (2.0_f64.ln() + (1.0 + (-2.0_f64).exp()).ln()) / 2.0;
/// assert!((loss.item() - want).abs() < 1e-12);
/// let grads = loss.backward();
/// assert_eq!(grads[logits].shape(), &[1, 3, 2]);
/// assert_eq!(grads[logits][[0, 2, 0]], 0.0); // the ignored step gets no gradient
/// ```
#[track_caller]
pub fn cross_entropy<'t, T: Float>(
    logits: Var<'t, T>,
    targets: &[i64],
    options: CrossEntropy,
) -> Var<'t, T> {
    let shape = logits.shape();
    let outer = outer_shape("cross_entropy", &shape);
    let classes = shape[outer.len()];
    let rows: usize = outer.iter().product();
    assert!(
        targets.len() == rows,
        "cross_entropy: logits of shape {shape:?} have {rows} rows of {classes} classes and \
         need {rows} targets, got {}",
        targets.len()
    );
    let epsilon = options.label_smoothing;
    assert!(
        (0.0..=1.0).contains(&epsilon),
        "cross_entropy: label_smoothing must be in [0, 1], got {epsilon}"
    );
    // Both lists from the buffer pool, and given back to it below.
    let mut kept_rows = memory::vec(rows);
    let mut kept_targets = memory::vec(rows);
    for (position, &target) in targets.iter().enumerate() {
        if options.ignore_index == Some(target) {
            continue;
        }
        if !(0..classes as i64).contains(&target) {
            panic!(
                "cross_entropy: target {target} at position {position} is not a class index in \
                 0..{classes}{}",
                match options.ignore_index {
                    Some(i) => format!(" nor the ignored index {i}"),
                    None => String::new(),
                }
            );
        }
        kept_rows.push(position);
        kept_targets.push(target as usize);
    }
    let counted = kept_rows.len();
    if counted == 0 {
        // A mean over no rows: NaN, as PyTorch gives, with a zero gradient.
        let nan = logits.tape().constant(ArrayD::from_elem(vec![], T::nan()));
        return logits.sum().mul_scalar(T::zero()) + nan;
    }
    let flat = logits.reshape(&[rows, classes]);
    let kept = if counted == rows {
        flat
    } else {
        flat.index_select(0, &kept_rows)
    };
    memory::recycle(kept_rows);
    let log_p = kept.log_softmax(-1);
    let index = ArrayD::from_shape_vec(IxDyn(&[counted, 1]), kept_targets).expect("one per row");
    let nll = log_p
        .gather(-1, &index)
        .sum()
        .mul_scalar(T::from_f64(-(1.0 - epsilon) / counted as f64));
    memory::recycle_array(index);
    if epsilon == 0.0 {
        return nll;
    }
    let smooth = log_p
        .sum()
        .mul_scalar(T::from_f64(-epsilon / (classes * counted) as f64));
    nll + smooth
}
