//! 2-D convolution (PyTorch's `conv2d`: cross-correlation with zero padding, stride,
//! dilation and groups) and its two adjoints, three mutually adjoint bilinear primitives
//! like matmul's: `conv(x, w)`, the input gradient `input_grad(g, w)` (the transposed
//! convolution) and the weight gradient `weight_grad(x, g)`. Each one's rule is written with
//! the other two, so `tape.grad` differentiates through all three. A bias is part of the
//! forward primitive (added in the product's output pass, its gradient the output
//! gradient summed over images and positions). A layer's `relu` after it is applied in the
//! same pass ([`Var::conv2d_relu`]): without gradient recording the result is recorded as a
//! constant; with it, as the convolution's node followed by `relu`'s node holding the
//! result, the pre-activation never stored (the convolution's rule reads its inputs, and
//! `relu`'s reads its output). Anomaly mode records both values, to check each.

use ndarray::Ix4;

use super::RuleContext;
use crate::graph::{Op, UnaryOp, Value};
use crate::kernels::conv2d::{Conv2dGeometry, Epilogue, conv2d_forward_fused};
use crate::kernels::pool::Shared;
use crate::operand::{Arr, Structural};
use crate::{Conv2dOptions, Float, Var};

/// y = conv(x, w) + b is bilinear in (x, w): ∂/∂x = input_grad(g, w),
/// ∂/∂w = weight_grad(x, g); ∂/∂b = g summed over images and positions.
pub(crate) fn rule<T: Float, O: Structural<T>>(
    input: usize,
    weight: usize,
    bias: Option<usize>,
    geometry: &Shared<Conv2dGeometry>,
    g: O,
    ctx: &impl RuleContext<O>,
    emit: &mut impl FnMut(usize, O),
) {
    if ctx.needs(input) {
        emit(input, g.conv2d_input_grad(&ctx.value(weight), geometry));
    }
    if ctx.needs(weight) {
        emit(weight, ctx.value(input).conv2d_weight_grad(&g, geometry));
    }
    if let Some(bias) = bias.filter(|&b| ctx.needs(b)) {
        emit(bias, g.sum_axes(&[0, 2, 3], false));
    }
}

/// dx = input_grad(gy, w), and ⟨G, input_grad(gy, w)⟩ = ⟨conv(G, w), gy⟩:
/// ∂/∂gy = conv(G, w), ∂/∂w = weight_grad(G, gy).
pub(crate) fn input_grad_rule<T: Float, O: Structural<T>>(
    grad: usize,
    weight: usize,
    geometry: &Shared<Conv2dGeometry>,
    g: O,
    ctx: &impl RuleContext<O>,
    emit: &mut impl FnMut(usize, O),
) {
    if ctx.needs(grad) {
        emit(grad, g.conv2d(&ctx.value(weight), geometry));
    }
    if ctx.needs(weight) {
        emit(weight, g.conv2d_weight_grad(&ctx.value(grad), geometry));
    }
}

/// dw = weight_grad(x, gy), and ⟨H, weight_grad(x, gy)⟩ = ⟨conv(x, H), gy⟩:
/// ∂/∂x = input_grad(gy, H), ∂/∂gy = conv(x, H).
pub(crate) fn weight_grad_rule<T: Float, O: Structural<T>>(
    input: usize,
    grad: usize,
    geometry: &Shared<Conv2dGeometry>,
    g: O,
    ctx: &impl RuleContext<O>,
    emit: &mut impl FnMut(usize, O),
) {
    if ctx.needs(input) {
        emit(input, ctx.value(grad).conv2d_input_grad(&g, geometry));
    }
    if ctx.needs(grad) {
        emit(grad, ctx.value(input).conv2d(&g, geometry));
    }
}

impl<'t, T: Float> Var<'t, T> {
    /// PyTorch's `conv2d`: the cross-correlation of `self`, images `[N, C, H, W]`, with
    /// `weight`, filters `[O, C / groups, kh, kw]`, plus `bias` (`[O]`) if given; the result
    /// is `[N, O, OH, OW]` with `OH = (H + 2·padding − dilation·(kh − 1) − 1) / stride + 1`.
    ///
    /// Panics, naming the op, both shapes and the reason, if the input or the weight is not
    /// 4-D, the channels do not match or are not divisible by `groups`, a stride, dilation or
    /// `groups` is 0, the dilated kernel is larger than the padded input, or the bias is not
    /// `[O]`.
    ///
    /// ```
    /// use ndarray::{Array, ArrayD, IxDyn};
    /// use tapegrad_autograd::{Conv2dOptions, Tape};
    ///
    /// let tape = Tape::new();
    /// let x = tape.var(Array::linspace(-1.0, 1.0, 2 * 3 * 8 * 8).into_shape_with_order(IxDyn(&[2, 3, 8, 8])).unwrap());
    /// let w = tape.var(ArrayD::from_elem(IxDyn(&[4, 3, 3, 3]), 0.1));
    /// let b = tape.var(ArrayD::zeros(IxDyn(&[4])));
    /// let y = x.conv2d(w, Some(b), &Conv2dOptions::default().stride(2).padding(1));
    /// assert_eq!(y.shape(), [2, 4, 4, 4]);
    /// let grads = y.square().sum().backward();
    /// assert_eq!(grads.get(w).unwrap().shape(), &[4, 3, 3, 3]);
    /// ```
    #[track_caller]
    pub fn conv2d(
        self,
        weight: Var<'t, T>,
        bias: Option<Var<'t, T>>,
        options: &Conv2dOptions,
    ) -> Var<'t, T> {
        T::record_conv2d(self, weight, bias, options, false)
    }

    /// `relu(conv2d(self, weight, bias))`: [`Var::conv2d`] then [`Var::relu`]. When no
    /// gradient is recorded (under [`Tape::no_grad`](crate::Tape::no_grad), or when no
    /// operand needs one), one fused kernel call that applies `relu` in the convolution's
    /// output pass, recorded as a constant; otherwise the two primitives.
    ///
    /// ```
    /// use ndarray::{ArrayD, IxDyn};
    /// use tapegrad_autograd::{Conv2dOptions, Tape};
    ///
    /// let tape = Tape::<f64>::new();
    /// let x = tape.constant(ArrayD::from_elem(IxDyn(&[1, 1, 3, 3]), 1.0));
    /// let w = tape.var(ArrayD::from_elem(IxDyn(&[2, 1, 2, 2]), 0.5));
    /// let b = tape.var(ndarray::array![-3.0, 1.0].into_dyn());
    /// let options = Conv2dOptions::default();
    /// let y = x.conv2d(w, Some(b), &options).relu().to_array();
    /// let fused = tape.no_grad(|| x.conv2d_relu(w, Some(b), &options).to_array());
    /// assert_eq!(fused, y);
    /// assert_eq!(fused[[0, 0, 0, 0]], 0.0);
    /// assert_eq!(fused[[0, 1, 0, 0]], 3.0);
    /// ```
    #[track_caller]
    pub fn conv2d_relu(
        self,
        weight: Var<'t, T>,
        bias: Option<Var<'t, T>>,
        options: &Conv2dOptions,
    ) -> Var<'t, T> {
        T::record_conv2d(self, weight, bias, options, true)
    }
}

/// [`Var::conv2d`], followed by `relu` if `relu`: the shapes checked, then one fused call
/// recorded as a constant when no gradient is needed, the primitives otherwise.
#[track_caller]
pub(crate) fn record_checked<'t, T: Float>(
    x: Var<'t, T>,
    weight: Var<'t, T>,
    bias: Option<Var<'t, T>>,
    options: &Conv2dOptions,
    relu: bool,
) -> Var<'t, T> {
    let (x_shape, w_shape) = (x.shape(), weight.shape());
    let geometry = match Conv2dGeometry::new(
        &x_shape,
        &w_shape,
        options.stride,
        options.padding,
        options.dilation,
        options.groups,
    ) {
        Ok((geometry, _)) => geometry,
        Err(e) => panic!(
            "conv2d: input {x_shape:?} and weight {w_shape:?}: {e}{}",
            crate::scope::scope_suffix()
        ),
    };
    if let Some(bias) = bias {
        let o = geometry.out_channels;
        assert!(
            bias.shape()[..] == [o],
            "conv2d: bias {:?} does not match the {o} output channels of weight {w_shape:?} (input {x_shape:?})",
            bias.shape()
        );
    }
    let tape = x.tape;
    tape.check_same_tape(weight.tape, "conv2d");
    if let Some(bias) = bias {
        tape.check_same_tape(bias.tape, "conv2d");
    }
    let needs_grad = tape.is_grad_enabled() && {
        let nodes = tape.nodes();
        [Some(x), Some(weight), bias]
            .into_iter()
            .flatten()
            .any(|v| nodes[v.index].requires_grad)
    };
    if needs_grad {
        if relu && !tape.anomaly_detection() {
            return record_fused_relu(x, weight, bias, Shared::new(geometry));
        }
        let y = record_with_bias(x, weight, bias, Shared::new(geometry));
        return if relu { y.relu() } else { y };
    }
    let value = forward_value(x, weight, bias, relu, &geometry);
    tape.push_computed(value, Op::Leaf, false)
}

/// The value of `conv2d(x, w) + bias`, then `relu` if `relu`, in one kernel call.
fn forward_value<T: Float>(
    x: Var<'_, T>,
    w: Var<'_, T>,
    bias: Option<Var<'_, T>>,
    relu: bool,
    geometry: &Conv2dGeometry,
) -> ndarray::ArrayD<T> {
    let nodes = x.tape.nodes();
    let view4 = |v: Var<'_, T>| {
        nodes[v.index]
            .value
            .array()
            .view()
            .into_dimensionality::<Ix4>()
            .expect("checked 4-D")
    };
    let bias = bias.map(|b| nodes[b.index].value.array().as_standard_layout());
    let epilogue = Epilogue {
        bias: bias
            .as_ref()
            .map(|b| b.as_slice().expect("standard layout")),
        relu,
    };
    conv2d_forward_fused(view4(x), view4(w), epilogue, geometry).into_dyn()
}

/// Records `conv2d(x, w) + bias` for a checked geometry.
#[track_caller]
fn record_with_bias<'t, T: Float>(
    x: Var<'t, T>,
    w: Var<'t, T>,
    bias: Option<Var<'t, T>>,
    geometry: Shared<Conv2dGeometry>,
) -> Var<'t, T> {
    let value = forward_value(x, w, bias, false, &geometry);
    x.tape.record(value, conv_op(x, w, bias, geometry))
}

/// The op of `conv2d(x, w) + bias`.
fn conv_op<T: Float>(
    x: Var<'_, T>,
    w: Var<'_, T>,
    bias: Option<Var<'_, T>>,
    geometry: Shared<Conv2dGeometry>,
) -> Op<T> {
    Op::Conv2d {
        inputs: [x.index, w.index]
            .into_iter()
            .chain(bias.map(|b| b.index))
            .collect(),
        geometry,
    }
}

/// Records `relu(conv2d(x, w) + bias)` for a checked geometry, computed in one kernel pass:
/// the convolution's node keeps no value (nothing reads it), `relu`'s node holds the result.
/// The caller has checked that a gradient is recorded.
#[track_caller]
fn record_fused_relu<'t, T: Float>(
    x: Var<'t, T>,
    w: Var<'t, T>,
    bias: Option<Var<'t, T>>,
    geometry: Shared<Conv2dGeometry>,
) -> Var<'t, T> {
    let value = forward_value(x, w, bias, true, &geometry);
    let conv = x
        .tape
        .push(Value::Released, conv_op(x, w, bias, geometry), true);
    x.tape.push(
        Value::owned(value),
        Op::Unary(UnaryOp::Relu, conv.index),
        true,
    )
}

/// Records `conv2d(x, w)` (no bias) for a checked geometry: the operand algebra's
/// convolution, used by the rules.
#[track_caller]
pub(crate) fn record<'t, T: Float>(
    x: Var<'t, T>,
    w: Var<'t, T>,
    geometry: Shared<Conv2dGeometry>,
) -> Var<'t, T> {
    x.tape.check_same_tape(w.tape, "conv2d");
    record_with_bias(x, w, None, geometry)
}

/// Records the transposed convolution of `grad` (an output gradient) by `w`.
#[track_caller]
pub(crate) fn record_input_grad<'t, T: Float>(
    grad: Var<'t, T>,
    w: Var<'t, T>,
    geometry: Shared<Conv2dGeometry>,
) -> Var<'t, T> {
    grad.tape.check_same_tape(w.tape, "conv2d_input_grad");
    let nodes = grad.tape.nodes();
    let value = Arr::Ref(nodes[grad.index].value.array())
        .conv2d_input_grad(&Arr::Ref(nodes[w.index].value.array()), &geometry)
        .into_owned();
    drop(nodes);
    grad.tape.record(
        value,
        Op::Conv2dInputGrad {
            grad: grad.index,
            weight: w.index,
            geometry,
        },
    )
}

/// Records conv2d's weight gradient for the input `x` and the output gradient `grad`.
#[track_caller]
pub(crate) fn record_weight_grad<'t, T: Float>(
    x: Var<'t, T>,
    grad: Var<'t, T>,
    geometry: Shared<Conv2dGeometry>,
) -> Var<'t, T> {
    x.tape.check_same_tape(grad.tape, "conv2d_weight_grad");
    let nodes = x.tape.nodes();
    let value = Arr::Ref(nodes[x.index].value.array())
        .conv2d_weight_grad(&Arr::Ref(nodes[grad.index].value.array()), &geometry)
        .into_owned();
    drop(nodes);
    x.tape.record(
        value,
        Op::Conv2dWeightGrad {
            input: x.index,
            grad: grad.index,
            geometry,
        },
    )
}
