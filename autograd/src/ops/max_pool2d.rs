//! 2-D max pooling (PyTorch's `max_pool2d`): each window's maximum, padded with −∞. One
//! primitive whose kernel finds the maxima and their positions in one pass; its rule adds
//! the gradient back at those positions with `scatter_add` (overlapping windows add up),
//! whose own rule is `gather`, so `tape.grad` differentiates through it to any order. A
//! primitive rather than the composition `reshape → gather(argmax) → reshape`, which copies
//! the input into its new shape and reads it again to gather the maxima the kernel has
//! already found.

use ndarray::{Ix4, IxDyn};

use super::RuleContext;
use crate::graph::Op;
use crate::kernels::pool::{Pooled, Shared};
use crate::kernels::pool2d::{Pool2dGeometry, max_pool2d_argmax, max_pool2d_values};
use crate::operand::Structural;
use crate::ops::avg_pool2d::pool_geometry;
use crate::{Float, Pool2dOptions, Var};

/// y[n, c, q] = x[n, c, argmax[n, c, q]] over the flattened planes: ∂/∂x = scatter_add of g
/// at argmax (`argmax` is `[N, C, OH·OW]`, indices into the `H·W` plane).
pub(crate) fn rule<T: Float, O: Structural<T>>(
    input: usize,
    argmax: &Shared<Pooled<usize>>,
    g: O,
    ctx: &impl RuleContext<O>,
    emit: &mut impl FnMut(usize, O),
) {
    let shape = ctx.shape(input);
    let planes = [shape[0], shape[1], shape[2] * shape[3]];
    let flat = g
        .reshape(argmax.shape())
        .scatter_add(2, argmax, &planes)
        .reshape(&shape);
    emit(input, flat);
}

impl<'t, T: Float> Var<'t, T> {
    /// PyTorch's `max_pool2d` of images `[N, C, H, W]`: the maximum of each window, padded
    /// with −∞; the result is `[N, C, OH, OW]`. The gradient goes to each window's maximum
    /// (the first in row-major order on ties) and adds up where windows overlap.
    /// `count_include_pad` is ignored.
    ///
    /// Panics, naming the op, the input shape and the reason, if the input is not 4-D, the
    /// kernel or stride has a zero, the padding exceeds half the kernel, or the output would
    /// be empty.
    ///
    /// ```
    /// use ndarray::{Array, IxDyn};
    /// use tapegrad_autograd::{Pool2dOptions, Tape};
    ///
    /// let tape = Tape::new();
    /// let x = tape.var(Array::range(0.0, 16.0, 1.0).into_shape_with_order(IxDyn(&[1, 1, 4, 4])).unwrap());
    /// let y = x.max_pool2d(&Pool2dOptions::new(2));
    /// assert_eq!(y.to_array().into_raw_vec_and_offset().0, vec![5.0, 7.0, 13.0, 15.0]);
    /// let grads = y.sum().backward();
    /// assert_eq!(grads.get(x).unwrap().sum(), 4.0);
    /// ```
    #[track_caller]
    pub fn max_pool2d(self, options: &Pool2dOptions) -> Var<'t, T> {
        let geometry = pool_geometry("max_pool2d", &self.shape(), options);
        T::record_max_pool2d(self, geometry)
    }
}

/// Records the max pooling of `x` for a checked geometry.
#[track_caller]
pub(crate) fn record<'t, T: Float>(x: Var<'t, T>, geometry: Pool2dGeometry) -> Var<'t, T> {
    let tape = x.tape;
    let (values, argmax) = {
        let nodes = tape.nodes();
        let node = &nodes[x.index];
        let value = node.value.array();
        let v = value
            .view()
            .into_dimensionality::<Ix4>()
            .expect("checked 4-D");
        // Without a gradient to carry back, the positions of the maxima are not needed.
        if !(tape.is_grad_enabled() && node.requires_grad) {
            let values = max_pool2d_values(v, &geometry).into_dyn();
            drop(nodes);
            return tape.push_computed(values, Op::Leaf, false);
        }
        max_pool2d_argmax(v, &geometry)
    };
    let &[n, c, oh, ow] = argmax.shape() else {
        unreachable!("4-D")
    };
    let argmax = argmax
        .into_shape_with_order(IxDyn(&[n, c, oh * ow]))
        .expect("a fresh array in standard layout");
    x.tape.record(
        values.into_dyn(),
        Op::MaxPool2d {
            input: x.index,
            argmax: Shared::new(Pooled::new(argmax)),
        },
    )
}
