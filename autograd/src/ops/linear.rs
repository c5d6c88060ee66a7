//! `x · kernel + bias`, optionally followed by `relu`: a dense layer's forward. Not a
//! primitive: while gradients are recorded it is the `matmul`, `+` and `relu` primitives
//! (whose rules give its gradients); when they are not (under [`Tape::no_grad`], or when no
//! operand needs a gradient) it is one call of a fused kernel, recorded as a constant: each
//! thread adds the bias and applies `relu` to its part of the product right after computing
//! it, so the layer makes one array instead of three, and the same bits as the recorded ops.
//!
//! [`Tape::no_grad`]: crate::Tape::no_grad

use ndarray::{Ix1, Ix2};

use crate::graph::Op;
use crate::kernels::gemm::linear_new;
use crate::{Float, Var};

impl<'t, T: Float> Var<'t, T> {
    /// `self · kernel + bias` (the bias broadcast over the rows), as `matmul` then `+`.
    ///
    /// Without gradient recording, a 2-D `self`, a 2-D `kernel` and a 1-D `bias` take one
    /// fused kernel call (the bias added to each part of the product by the thread that
    /// computed it, the same bits as `matmul` then `+`) and one recorded value; otherwise it
    /// records `matmul` and `+`, with the same panics for mismatched shapes.
    ///
    /// ```
    /// use ndarray::array;
    /// use tapegrad_autograd::Tape;
    ///
    /// let tape = Tape::<f64>::new();
    /// let x = tape.constant(array![[1.0, 2.0]].into_dyn());
    /// let w = tape.var(array![[1.0, 0.0, -1.0], [0.5, 1.0, 0.0]].into_dyn());
    /// let b = tape.var(array![0.5, -3.0, 0.0].into_dyn());
    /// let y = x.linear(w, Some(b));
    /// assert_eq!(y.to_array(), array![[2.5, -1.0, -1.0]].into_dyn());
    /// let fused = tape.no_grad(|| x.linear_relu(w, Some(b)).to_array());
    /// assert_eq!(fused, array![[2.5, 0.0, 0.0]].into_dyn());
    /// ```
    #[track_caller]
    pub fn linear(self, kernel: Var<'t, T>, bias: Option<Var<'t, T>>) -> Var<'t, T> {
        T::record_linear(self, kernel, bias, false)
    }

    /// `relu(self · kernel + bias)`: [`Var::linear`] then [`Var::relu`], the `relu` applied
    /// in place in the fused path.
    #[track_caller]
    pub fn linear_relu(self, kernel: Var<'t, T>, bias: Option<Var<'t, T>>) -> Var<'t, T> {
        T::record_linear(self, kernel, bias, true)
    }
}

#[track_caller]
pub(crate) fn record<'t, T: Float>(
    x: Var<'t, T>,
    kernel: Var<'t, T>,
    bias: Option<Var<'t, T>>,
    relu: bool,
) -> Var<'t, T> {
    let tape = x.tape;
    tape.check_same_tape(kernel.tape, "linear");
    if let Some(bias) = bias {
        tape.check_same_tape(bias.tape, "linear");
    }
    let nodes = tape.nodes();
    let (xv, kv) = (
        nodes[x.index].value.array(),
        nodes[kernel.index].value.array(),
    );
    let bv = bias.map(|b| nodes[b.index].value.array());
    let needs_grad = tape.is_grad_enabled()
        && (nodes[x.index].requires_grad
            || nodes[kernel.index].requires_grad
            || bias.is_some_and(|b| nodes[b.index].requires_grad));
    // The fused path's operands: 2-D `x` and `kernel` with matching inner dimensions, and
    // a contiguous 1-D bias of `kernel`'s width.
    let fused = (!needs_grad)
        .then(|| {
            let x2 = xv.view().into_dimensionality::<Ix2>().ok()?;
            let k2 = kv.view().into_dimensionality::<Ix2>().ok()?;
            let b1 = match bv {
                Some(b) => Some(b.view().into_dimensionality::<Ix1>().ok()?.to_slice()?),
                None => None,
            };
            let fits = x2.ncols() == k2.nrows() && b1.is_none_or(|b| b.len() == k2.ncols());
            fits.then_some((x2, k2, b1))
        })
        .flatten();
    let Some((x2, k2, b1)) = fused else {
        drop(nodes);
        let mut y = x.matmul(kernel);
        if let Some(bias) = bias {
            y = y + bias;
        }
        return if relu { y.relu() } else { y };
    };
    let value = linear_new(&x2, &k2, b1, relu).into_dyn();
    drop(nodes);
    tape.push_computed(value, Op::Leaf, false)
}
