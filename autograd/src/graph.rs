//! The recorded graph as plain data: a node's [`Value`], the [`Op`] that computed it (which
//! primitive, its inputs as arena indices, its attributes), and the [`Node`] that holds both.
//!
//! The arena ([`crate::arena`]) is in recording order, which is already a topological order:
//! backward is a single loop from the output down, with no recursion and no sorting.
//!
//! Cost model: a node of `f32` is 64 bytes (a one-element value and its rank in 16 bytes, an
//! op in four words, the recording location and a flag); bound parameters are borrowed; a
//! computed array is boxed with its buffer; a one-element value (a loss, a number in a
//! custom formula, every link of a chain of one-element ops) is stored inline, and its
//! forward and backward never touch ndarray or the allocator (`benches/tape.rs` measures it).
//! Computed arrays and their boxes come from the buffer pool and go back to it when the
//! tape is dropped ([`ArrayBox`]).

use std::cell::OnceCell;
use std::mem::ManuallyDrop;
use std::panic::Location;
use std::rc::Rc;

use ndarray::ArrayD;
use smallvec::{SmallVec, smallvec};

use crate::arena::Arena;
use crate::kernels::Dims;
use crate::kernels::conv2d::Conv2dGeometry;
use crate::kernels::elementwise::one_element;
use crate::kernels::pool::{ArrayBox, Pooled, Shared, SharedList, filled, recycle_array};
use crate::kernels::pool2d::Pool2dGeometry;
use crate::ops::custom::CustomOp;
use crate::{Float, ParamId};

/// A node's value: owned for computed values, borrowed for bound parameters (never
/// copied; a borrowed element is also read once), or held inline when it is a single element.
pub(crate) enum Value<'t, T> {
    /// Boxed, so that a node stays small (a fraction of a cache line's worth of bytes to
    /// move and to sweep over).
    Owned(ArrayBox<T>),
    Borrowed(&'t ArrayD<T>),
    /// A borrowed array of one element (a bound scalar parameter), its element read once:
    /// one-element graphs read it as a number without going through ndarray's shapes.
    BorrowedOne {
        value: T,
        ndim: Rank,
        array: &'t ArrayD<T>,
    },
    /// One element (its shape is `ndim` ones), stored without a heap buffer: one-element
    /// graphs record and differentiate these without touching ndarray. The array form is
    /// built only if an array kernel asks for it, and then kept.
    One {
        value: T,
        ndim: Rank,
        array: OnceCell<ArrayBox<T>>,
    },
    /// Freed before the tape by [`Tape::release_value`](crate::Tape::release_value):
    /// reading it panics.
    Released,
}

/// The number of dimensions of a one-element value held inline: 16 bits keep a [`Value`] of
/// `f32` at two words. A one-element array of more dimensions is held as an array.
pub(crate) type Rank = u16;

impl<'t, T: Float> Value<'t, T> {
    /// A computed or given array: inline if it holds one element (its buffer then goes back
    /// to the pool).
    #[inline]
    pub(crate) fn owned(array: ArrayD<T>) -> Self {
        match (one_element(&array), Rank::try_from(array.ndim())) {
            (Some(value), Ok(ndim)) => {
                recycle_array(array);
                Value::one_element(value, ndim)
            }
            _ => Value::Owned(ArrayBox::new(array)),
        }
    }

    /// A borrowed array (bound parameters, `constant_ref`): its element read once if it
    /// holds one.
    #[inline]
    pub(crate) fn borrowed(array: &'t ArrayD<T>) -> Self {
        match (one_element(array), Rank::try_from(array.ndim())) {
            (Some(value), Ok(ndim)) => Value::BorrowedOne { value, ndim, array },
            _ => Value::Borrowed(array),
        }
    }

    /// A one-element value of `ndim` dimensions, held inline if `ndim` fits in a [`Rank`].
    #[inline]
    pub(crate) fn one_of_rank(value: T, ndim: usize) -> Self {
        match Rank::try_from(ndim) {
            Ok(ndim) => Value::one_element(value, ndim),
            Err(_) => Value::Owned(ArrayBox::new(ArrayD::from_elem(vec![1; ndim], value))),
        }
    }

    /// A one-element value of `ndim` dimensions.
    #[inline]
    pub(crate) fn one_element(value: T, ndim: Rank) -> Self {
        Value::One {
            value,
            ndim,
            array: OnceCell::new(),
        }
    }

    /// The value as an array.
    #[inline]
    pub(crate) fn array(&self) -> &ArrayD<T> {
        match self {
            Value::Owned(a) => a,
            Value::Borrowed(a) | Value::BorrowedOne { array: a, .. } => a,
            Value::One { value, ndim, array } => array.get_or_init(|| {
                let shape: Dims = smallvec![1; usize::from(*ndim)];
                ArrayBox::new(filled(&shape, *value))
            }),
            Value::Released => released(),
        }
    }

    /// The element, if the value has exactly one.
    #[inline]
    pub(crate) fn one(&self) -> Option<T> {
        match self {
            Value::One { value, .. } | Value::BorrowedOne { value, .. } => Some(*value),
            // `Value::owned` and `Value::borrowed` keep one-element arrays apart.
            Value::Owned(_) | Value::Borrowed(_) | Value::Released => None,
        }
    }

    /// The element and the number of dimensions of a value held inline.
    #[inline]
    pub(crate) fn one_and_rank(&self) -> Option<(T, Rank)> {
        match self {
            Value::One { value, ndim, .. } | Value::BorrowedOne { value, ndim, .. } => {
                Some((*value, *ndim))
            }
            Value::Owned(_) | Value::Borrowed(_) | Value::Released => None,
        }
    }

    /// The number of dimensions.
    #[inline]
    pub(crate) fn ndim(&self) -> usize {
        match self {
            Value::One { ndim, .. } | Value::BorrowedOne { ndim, .. } => usize::from(*ndim),
            Value::Owned(a) => a.ndim(),
            Value::Borrowed(a) => a.ndim(),
            Value::Released => released(),
        }
    }

    /// The shape.
    #[inline]
    pub(crate) fn shape(&self) -> Dims {
        match self {
            Value::One { ndim, .. } | Value::BorrowedOne { ndim, .. } => {
                smallvec![1; usize::from(*ndim)]
            }
            Value::Owned(a) => SmallVec::from_slice(a.shape()),
            Value::Borrowed(a) => SmallVec::from_slice(a.shape()),
            Value::Released => released(),
        }
    }
}

/// The panic of reading a released value.
#[cold]
#[inline(never)]
fn released() -> ! {
    panic!(
        "this variable's value was released (Tape::release_value) and cannot be read again; \
         release only values nothing reads afterwards"
    )
}

/// One recorded operation: its value, how it was computed, and where.
pub(crate) struct Node<'t, T> {
    pub(crate) value: Value<'t, T>,
    pub(crate) op: NodeOp<T>,
    pub(crate) requires_grad: bool,
    pub(crate) location: &'static Location<'static>,
}

impl<'t, T> Node<'t, T> {
    #[inline]
    pub(crate) fn new(
        value: Value<'t, T>,
        op: Op<T>,
        requires_grad: bool,
        location: &'static Location<'static>,
    ) -> Self {
        Node {
            value,
            op: NodeOp(ManuallyDrop::new(op)),
            requires_grad,
            location,
        }
    }
}

/// A node's op, read through `Deref`. Most ops hold only indices and numbers: dropping a
/// node then costs a test of its value and one of its op, inlined into the loop that drops
/// the tape, instead of calls to `Op`'s drop glue (callgrind: 17 instructions per node of
/// the scalar chain, where an out-of-line drop of each node took 25).
pub(crate) struct NodeOp<T>(ManuallyDrop<Op<T>>);

impl<T> std::ops::Deref for NodeOp<T> {
    type Target = Op<T>;
    #[inline]
    fn deref(&self) -> &Op<T> {
        &self.0
    }
}

impl<T> NodeOp<T> {
    /// Releases the op's shared attributes (out of line, so that dropping a node that holds
    /// none inlines to a few tests).
    #[cold]
    #[inline(never)]
    fn release(&mut self) {
        drop(std::mem::replace(&mut *self.0, Op::Leaf));
    }
}

impl<T> Drop for NodeOp<T> {
    #[inline]
    fn drop(&mut self) {
        if self.0.holds_shared() {
            self.release();
        }
    }
}

// The cost model above: a node of `f32` is 64 bytes.
const _: () = assert!(size_of::<Node<'static, f32>>() == 64);

/// The tape's arena of nodes, in recording order.
pub(crate) type Nodes<'t, T> = Arena<Node<'t, T>>;

/// An axis as an op stores it. 32 bits (an array has far fewer axes) let the ops with three
/// other words of attributes keep it beside the tag, so that an op of `f32` is four words.
pub(crate) type Axis = u32;

/// `axis` as an op stores it.
#[inline]
pub(crate) fn stored_axis(axis: usize) -> Axis {
    Axis::try_from(axis).expect("an axis fits in 32 bits")
}

/// A recorded operation: which primitive, with which inputs (arena indices) and attributes.
/// Attributes that the node's own value gives (the shape of an `index_add` or a
/// `scatter_add`) are not stored again.
#[derive(Clone)]
#[allow(
    dead_code,
    reason = "an op keeps all its attributes, so the graph describes it in full; not every rule reads every one"
)]
pub(crate) enum Op<T> {
    /// A variable or a constant.
    Leaf,
    /// A bound parameter.
    Param(ParamId),
    Binary(BinaryOp, usize, usize),
    Unary(UnaryOp<T>, usize),
    MatMul(usize, usize),
    /// `X = A⁻¹ B` for `(A, B)`, batched over the leading axes.
    Solve(usize, usize),
    Reshape(usize),
    Permute(usize, SharedList),
    BroadcastTo(usize),
    Sum {
        input: usize,
        axes: SharedList,
        keepdim: bool,
    },
    Extremum {
        input: usize,
        axes: SharedList,
        keepdim: bool,
        is_max: bool,
    },
    /// The product over one axis.
    Prod {
        input: usize,
        axis: usize,
        keepdim: bool,
    },
    Slice {
        input: usize,
        axis: Axis,
        start: usize,
        end: usize,
    },
    Pad {
        input: usize,
        axis: Axis,
        start: usize,
        len: usize,
    },
    Concat {
        inputs: SharedList,
        axis: usize,
    },
    IndexSelect {
        input: usize,
        axis: Axis,
        indices: SharedList,
    },
    IndexAdd {
        input: usize,
        axis: Axis,
        indices: SharedList,
    },
    Gather {
        input: usize,
        axis: usize,
        index: Shared<Pooled<usize>>,
    },
    ScatterAdd {
        input: usize,
        axis: usize,
        index: Shared<Pooled<usize>>,
    },
    Select {
        cond: usize,
        on_true: usize,
        on_false: usize,
    },
    /// `conv2d(input, weight)`, plus `bias` (`[O]`, added at every position of its output
    /// channel) if given: `inputs` is `[input, weight]` or `[input, weight, bias]`.
    Conv2d {
        inputs: SharedList,
        geometry: Shared<Conv2dGeometry>,
    },
    /// The transposed convolution of `grad` (an output gradient) by `weight`: conv2d's
    /// input gradient.
    Conv2dInputGrad {
        grad: usize,
        weight: usize,
        geometry: Shared<Conv2dGeometry>,
    },
    /// conv2d's weight gradient for `input` and the output gradient `grad`.
    Conv2dWeightGrad {
        input: usize,
        grad: usize,
        geometry: Shared<Conv2dGeometry>,
    },
    AvgPool2d {
        input: usize,
        geometry: Shared<Pool2dGeometry>,
        count_include_pad: bool,
    },
    /// The adjoint of `AvgPool2d` (its input gradient) applied to `grad`.
    AvgPool2dAdjoint {
        grad: usize,
        geometry: Shared<Pool2dGeometry>,
        count_include_pad: bool,
    },
    /// Max pooling: the elements of `input` at `argmax` (`[N, C, OH·OW]`, indices into each
    /// `H·W` plane), shaped `[N, C, OH, OW]`.
    MaxPool2d {
        input: usize,
        argmax: Shared<Pooled<usize>>,
    },
    /// A user-defined op; its inputs behind a thin pointer keep the op at four words.
    Custom {
        op: Rc<dyn CustomOp<T>>,
        inputs: Rc<Vec<usize>>,
    },
}

impl<T> Op<T> {
    /// Whether it holds reference-counted attributes that dropping it must release.
    #[inline]
    fn holds_shared(&self) -> bool {
        match self {
            Op::Leaf
            | Op::Param(_)
            | Op::Binary(..)
            | Op::Unary(..)
            | Op::MatMul(..)
            | Op::Solve(..)
            | Op::Reshape(_)
            | Op::BroadcastTo(_)
            | Op::Slice { .. }
            | Op::Pad { .. }
            | Op::Prod { .. }
            | Op::Select { .. } => false,
            Op::Permute(..)
            | Op::Sum { .. }
            | Op::Extremum { .. }
            | Op::Concat { .. }
            | Op::IndexSelect { .. }
            | Op::IndexAdd { .. }
            | Op::Gather { .. }
            | Op::ScatterAdd { .. }
            | Op::Conv2d { .. }
            | Op::Conv2dInputGrad { .. }
            | Op::Conv2dWeightGrad { .. }
            | Op::AvgPool2d { .. }
            | Op::AvgPool2dAdjoint { .. }
            | Op::MaxPool2d { .. }
            | Op::Custom { .. } => true,
        }
    }
}

impl<T: Float> Op<T> {
    /// The op's name, as messages and DOT graphs show it.
    pub(crate) fn name(&self) -> &str {
        match self {
            Op::Leaf => "leaf",
            Op::Param(_) => "param",
            Op::Binary(op, ..) => op.name(),
            Op::Unary(op, _) => op.name(),
            Op::MatMul(..) => "matmul",
            Op::Solve(..) => "solve",
            Op::Reshape(_) => "reshape",
            Op::Permute(..) => "permute",
            Op::BroadcastTo(_) => "broadcast_to",
            Op::Sum { .. } => "sum",
            Op::Extremum { is_max: true, .. } => "max",
            Op::Extremum { is_max: false, .. } => "min",
            Op::Prod { .. } => "prod",
            Op::Slice { .. } => "slice",
            Op::Pad { .. } => "pad",
            Op::Concat { .. } => "concat",
            Op::IndexSelect { .. } => "index_select",
            Op::IndexAdd { .. } => "index_add",
            Op::Gather { .. } => "gather",
            Op::ScatterAdd { .. } => "scatter_add",
            Op::Select { .. } => "where",
            Op::Conv2d { .. } => "conv2d",
            Op::Conv2dInputGrad { .. } => "conv2d_input_grad",
            Op::Conv2dWeightGrad { .. } => "conv2d_weight_grad",
            Op::AvgPool2d { .. } => "avg_pool2d",
            Op::AvgPool2dAdjoint { .. } => "avg_pool2d_adjoint",
            Op::MaxPool2d { .. } => "max_pool2d",
            Op::Custom { op, .. } => op.name(),
        }
    }

    /// The arena indices of its inputs.
    pub(crate) fn inputs(&self) -> Dims {
        match self {
            Op::Leaf | Op::Param(_) => SmallVec::new(),
            Op::Binary(_, a, b) | Op::MatMul(a, b) | Op::Solve(a, b) => smallvec![*a, *b],
            Op::Unary(_, a) | Op::Reshape(a) | Op::Permute(a, _) | Op::BroadcastTo(a) => {
                smallvec![*a]
            }
            Op::Sum { input, .. }
            | Op::Extremum { input, .. }
            | Op::Prod { input, .. }
            | Op::Slice { input, .. }
            | Op::Pad { input, .. }
            | Op::IndexSelect { input, .. }
            | Op::IndexAdd { input, .. }
            | Op::Gather { input, .. }
            | Op::ScatterAdd { input, .. }
            | Op::AvgPool2d { input, .. }
            | Op::MaxPool2d { input, .. } => smallvec![*input],
            Op::AvgPool2dAdjoint { grad, .. } => smallvec![*grad],
            Op::Conv2dInputGrad { grad, weight, .. } => smallvec![*grad, *weight],
            Op::Conv2dWeightGrad { input, grad, .. } => smallvec![*input, *grad],
            Op::Concat { inputs, .. } | Op::Conv2d { inputs, .. } => {
                inputs.iter().copied().collect()
            }
            Op::Custom { inputs, .. } => inputs.iter().copied().collect(),
            Op::Select {
                cond,
                on_true,
                on_false,
            } => smallvec![*cond, *on_true, *on_false],
        }
    }
}

/// The broadcasting binary primitives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
}

impl BinaryOp {
    pub(crate) fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
        }
    }
}

/// The elementwise primitives (with their scalar attributes).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum UnaryOp<T> {
    Neg,
    AddScalar(T),
    MulScalar(T),
    PowF(T),
    PowI(i32),
    Exp,
    Ln,
    Sqrt,
    Abs,
    Sin,
    Cos,
    Tanh,
    Sigmoid,
    Relu,
    LeakyRelu(T),
    Elu(T),
    Erf,
    Softplus,
    Clamp(T, T),
}

impl<T: Float> UnaryOp<T> {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            UnaryOp::Neg => "neg",
            UnaryOp::AddScalar(_) => "add_scalar",
            UnaryOp::MulScalar(_) => "mul_scalar",
            UnaryOp::PowF(_) => "powf",
            UnaryOp::PowI(_) => "powi",
            UnaryOp::Exp => "exp",
            UnaryOp::Ln => "ln",
            UnaryOp::Sqrt => "sqrt",
            UnaryOp::Abs => "abs",
            UnaryOp::Sin => "sin",
            UnaryOp::Cos => "cos",
            UnaryOp::Tanh => "tanh",
            UnaryOp::Sigmoid => "sigmoid",
            UnaryOp::Relu => "relu",
            UnaryOp::LeakyRelu(_) => "leaky_relu",
            UnaryOp::Elu(_) => "elu",
            UnaryOp::Erf => "erf",
            UnaryOp::Softplus => "softplus",
            UnaryOp::Clamp(..) => "clamp",
        }
    }
}
