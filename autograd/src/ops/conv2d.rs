//! 2-D convolution (PyTorch's `conv2d`: cross-correlation with zero padding, stride,
//! dilation and groups) and its two adjoints, three mutually adjoint bilinear primitives
//! like matmul's: `conv(x, w)`, the input gradient `input_grad(g, w)` (the transposed
//! convolution) and the weight gradient `weight_grad(x, g)`. Each one's rule is written with
//! the other two, so `tape.grad` differentiates through all three. The bias is a
//! broadcasting add of `b.reshape([1, O, 1, 1])`.

use std::rc::Rc;

use super::RuleContext;
use crate::graph::Op;
use crate::kernels::conv2d::Conv2dGeometry;
use crate::operand::{Arr, Structural};
use crate::{Conv2dOptions, Float, Var};

/// y = conv(x, w) is bilinear: ∂/∂x = input_grad(g, w), ∂/∂w = weight_grad(x, g).
pub(crate) fn rule<T: Float, O: Structural<T>>(
    input: usize,
    weight: usize,
    geometry: &Rc<Conv2dGeometry>,
    g: O,
    ctx: &impl RuleContext<O>,
    emit: &mut impl FnMut(usize, O),
) {
    if ctx.needs(input) {
        let dx = g.clone().conv2d_input_grad(ctx.value(weight), geometry);
        emit(input, dx);
    }
    if ctx.needs(weight) {
        emit(weight, ctx.value(input).conv2d_weight_grad(g, geometry));
    }
}

/// dx = input_grad(gy, w), and ⟨G, input_grad(gy, w)⟩ = ⟨conv(G, w), gy⟩:
/// ∂/∂gy = conv(G, w), ∂/∂w = weight_grad(G, gy).
pub(crate) fn input_grad_rule<T: Float, O: Structural<T>>(
    grad: usize,
    weight: usize,
    geometry: &Rc<Conv2dGeometry>,
    g: O,
    ctx: &impl RuleContext<O>,
    emit: &mut impl FnMut(usize, O),
) {
    if ctx.needs(grad) {
        emit(grad, g.clone().conv2d(ctx.value(weight), geometry));
    }
    if ctx.needs(weight) {
        emit(weight, g.conv2d_weight_grad(ctx.value(grad), geometry));
    }
}

/// dw = weight_grad(x, gy), and ⟨H, weight_grad(x, gy)⟩ = ⟨conv(x, H), gy⟩:
/// ∂/∂x = input_grad(gy, H), ∂/∂gy = conv(x, H).
pub(crate) fn weight_grad_rule<T: Float, O: Structural<T>>(
    input: usize,
    grad: usize,
    geometry: &Rc<Conv2dGeometry>,
    g: O,
    ctx: &impl RuleContext<O>,
    emit: &mut impl FnMut(usize, O),
) {
    if ctx.needs(input) {
        emit(
            input,
            ctx.value(grad).conv2d_input_grad(g.clone(), geometry),
        );
    }
    if ctx.needs(grad) {
        emit(grad, ctx.value(input).conv2d(g, geometry));
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
        let (x_shape, w_shape) = (self.shape(), weight.shape());
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
        let out = record(self, weight, Rc::new(geometry));
        match bias {
            None => out,
            Some(bias) => {
                let o = geometry.out_channels;
                assert!(
                    bias.shape() == [o],
                    "conv2d: bias {:?} does not match the {o} output channels of weight {w_shape:?} (input {x_shape:?})",
                    bias.shape()
                );
                out + bias.reshape(&[1, o, 1, 1])
            }
        }
    }
}

/// Records `conv2d(x, w)` for a checked geometry.
#[track_caller]
pub(crate) fn record<'t, T: Float>(
    x: Var<'t, T>,
    w: Var<'t, T>,
    geometry: Rc<Conv2dGeometry>,
) -> Var<'t, T> {
    x.tape.check_same_tape(w.tape, "conv2d");
    let nodes = x.tape.nodes();
    let value = Arr::Ref(nodes[x.index].value.array())
        .conv2d(Arr::Ref(nodes[w.index].value.array()), &geometry)
        .into_owned();
    drop(nodes);
    x.tape.record(
        value,
        Op::Conv2d {
            input: x.index,
            weight: w.index,
            geometry,
        },
    )
}

/// Records the transposed convolution of `grad` (an output gradient) by `w`.
#[track_caller]
pub(crate) fn record_input_grad<'t, T: Float>(
    grad: Var<'t, T>,
    w: Var<'t, T>,
    geometry: Rc<Conv2dGeometry>,
) -> Var<'t, T> {
    grad.tape.check_same_tape(w.tape, "conv2d_input_grad");
    let nodes = grad.tape.nodes();
    let value = Arr::Ref(nodes[grad.index].value.array())
        .conv2d_input_grad(Arr::Ref(nodes[w.index].value.array()), &geometry)
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
    geometry: Rc<Conv2dGeometry>,
) -> Var<'t, T> {
    x.tape.check_same_tape(grad.tape, "conv2d_weight_grad");
    let nodes = x.tape.nodes();
    let value = Arr::Ref(nodes[x.index].value.array())
        .conv2d_weight_grad(Arr::Ref(nodes[grad.index].value.array()), &geometry)
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
