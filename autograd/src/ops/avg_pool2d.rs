//! 2-D average pooling (PyTorch's `avg_pool2d`) and its adjoint: a linear map and its
//! transpose, each one's rule the other. One primitive rather than a composition: a depthwise
//! convolution with a constant filter would cover `count_include_pad` only, and a pass over
//! each window is cheaper than im2col for a filter of equal weights.

use crate::graph::Op;
use crate::kernels::pool::Shared;
use crate::kernels::pool2d::Pool2dGeometry;
use crate::operand::Structural;
use crate::{Float, Pool2dOptions, Var};

/// avg_pool2d is linear: ∂/∂x = its adjoint applied to g.
pub(crate) fn rule<T: Float, O: Structural<T>>(
    input: usize,
    geometry: &Shared<Pool2dGeometry>,
    count_include_pad: bool,
    g: O,
    emit: &mut impl FnMut(usize, O),
) {
    emit(input, g.avg_pool2d_adjoint(geometry, count_include_pad));
}

/// The adjoint is linear, and its adjoint is avg_pool2d: ∂/∂gy = avg_pool2d(g).
pub(crate) fn adjoint_rule<T: Float, O: Structural<T>>(
    grad: usize,
    geometry: &Shared<Pool2dGeometry>,
    count_include_pad: bool,
    g: O,
    emit: &mut impl FnMut(usize, O),
) {
    emit(grad, g.avg_pool2d(geometry, count_include_pad));
}

impl<'t, T: Float> Var<'t, T> {
    /// PyTorch's `avg_pool2d` of images `[N, C, H, W]`: the mean of each window, zero padded,
    /// divided by the window's padded size (`count_include_pad`, the default) or by the
    /// number of input elements it covers; the result is `[N, C, OH, OW]`.
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
    /// let y = x.avg_pool2d(&Pool2dOptions::new(2));
    /// assert_eq!(y.to_array().into_raw_vec_and_offset().0, vec![2.5, 4.5, 10.5, 12.5]);
    /// let grads = y.sum().backward();
    /// assert!(grads.get(x).unwrap().iter().all(|&g| g == 0.25));
    /// ```
    #[track_caller]
    pub fn avg_pool2d(self, options: &Pool2dOptions) -> Var<'t, T> {
        let geometry = pool_geometry("avg_pool2d", &self.shape(), options);
        T::record_avg_pool2d(self, Shared::new(geometry), options.count_include_pad)
    }
}

/// The geometry of a pooling of an input of `shape` with `options`; panics naming `op`, the
/// input shape and the options when they are invalid.
#[track_caller]
pub(crate) fn pool_geometry(op: &str, shape: &[usize], options: &Pool2dOptions) -> Pool2dGeometry {
    match Pool2dGeometry::new(
        shape,
        options.kernel,
        options.stride,
        options.padding,
        options.ceil_mode,
    ) {
        Ok((geometry, _)) => geometry,
        Err(e) => panic!(
            "{op}: input {shape:?} with kernel {:?}, stride {:?}, padding {:?}: {e}",
            options.kernel,
            options.stride.unwrap_or(options.kernel),
            options.padding
        ),
    }
}

/// Records the average pooling of `x` for a checked geometry.
#[track_caller]
pub(crate) fn record<'t, T: Float>(
    x: Var<'t, T>,
    geometry: Shared<Pool2dGeometry>,
    count_include_pad: bool,
) -> Var<'t, T> {
    let value = x.with_arr(|a| a.avg_pool2d(&geometry, count_include_pad).into_owned());
    x.tape.record(
        value,
        Op::AvgPool2d {
            input: x.index,
            geometry,
            count_include_pad,
        },
    )
}

/// Records the adjoint of average pooling applied to `grad`, an output gradient.
#[track_caller]
pub(crate) fn record_adjoint<'t, T: Float>(
    grad: Var<'t, T>,
    geometry: Shared<Pool2dGeometry>,
    count_include_pad: bool,
) -> Var<'t, T> {
    let value = grad.with_arr(|a| {
        a.avg_pool2d_adjoint(&geometry, count_include_pad)
            .into_owned()
    });
    grad.tape.record(
        value,
        Op::AvgPool2dAdjoint {
            grad: grad.index,
            geometry,
            count_include_pad,
        },
    )
}
