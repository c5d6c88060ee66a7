//! The primitive operations, each with its forward kernel and its backward rule, grouped by
//! family; composite operations (softmax, var, gelu, ...) are built from them and have no
//! backward code of their own.
//!
//! | file | primitives | composites |
//! |---|---|---|
//! | `arith.rs` | `+ - * /` (broadcasting) | scalar arithmetic on either side |
//! | `unary.rs` | `neg exp ln sqrt abs sin cos tanh sigmoid relu leaky_relu elu erf softplus clamp powf powi`, scalar add/mul | `gelu gelu_tanh square recip` |
//! | `reduce.rs` | `sum max min` over axes | `mean var` |
//! | `matmul.rs` | batched `matmul` | 1-D/2-D `matmul` |
//! | `shape.rs` | `reshape permute broadcast_to` | `t transpose squeeze unsqueeze flatten` |
//! | `index.rs` | `slice concat index_select gather where_` and their adjoints | `stack`, comparisons |
//! | `softmax.rs` | — | `logsumexp softmax log_softmax` |
//! | `custom.rs` | user-defined [`CustomOp`](custom::CustomOp)s | — |

pub mod arith;
pub mod custom;
pub mod index;
pub mod matmul;
pub mod reduce;
pub mod shape;
pub mod softmax;
pub mod unary;

use std::rc::Rc;

use ndarray::ArrayD;
use smallvec::{SmallVec, smallvec};

use crate::grads::Grads;
use crate::operand::{Arr, Operand, same};
use crate::scalar::{Scalar, ScalarContext};
use crate::tape::{Tape, check_finite};
use crate::{Float, ParamId, Var};

pub(crate) use arith::BinaryOp;
pub(crate) use unary::UnaryOp;

/// A recorded operation: which primitive, with which inputs (arena indices) and attributes.
pub(crate) enum Op<T> {
    /// A variable or a constant.
    Leaf,
    /// A bound parameter.
    Param(ParamId),
    Binary(BinaryOp, usize, usize),
    Unary(UnaryOp<T>, usize),
    MatMul(usize, usize),
    Reshape(usize),
    Permute(usize, Rc<[usize]>),
    BroadcastTo(usize),
    Sum {
        input: usize,
        axes: Rc<[usize]>,
        keepdim: bool,
    },
    Extremum {
        input: usize,
        axes: Rc<[usize]>,
        keepdim: bool,
        is_max: bool,
    },
    Slice {
        input: usize,
        axis: usize,
        start: usize,
        end: usize,
    },
    PadSlice {
        input: usize,
        axis: usize,
        start: usize,
        len: usize,
    },
    Concat {
        inputs: Rc<[usize]>,
        axis: usize,
    },
    IndexSelect {
        input: usize,
        axis: usize,
        indices: Rc<[usize]>,
    },
    IndexAdd {
        input: usize,
        axis: usize,
        indices: Rc<[usize]>,
        size: usize,
    },
    Gather {
        input: usize,
        axis: usize,
        index: Rc<ArrayD<usize>>,
    },
    ScatterAdd {
        input: usize,
        axis: usize,
        index: Rc<ArrayD<usize>>,
        shape: Rc<[usize]>,
    },
    Select {
        cond: usize,
        on_true: usize,
        on_false: usize,
    },
    Custom {
        op: Rc<dyn custom::CustomOp<T>>,
        inputs: Rc<[usize]>,
    },
}

impl<T: Float> Clone for Op<T> {
    fn clone(&self) -> Self {
        match self {
            Op::Leaf => Op::Leaf,
            Op::Param(id) => Op::Param(*id),
            Op::Binary(op, a, b) => Op::Binary(*op, *a, *b),
            Op::Unary(op, a) => Op::Unary(*op, *a),
            Op::MatMul(a, b) => Op::MatMul(*a, *b),
            Op::Reshape(a) => Op::Reshape(*a),
            Op::Permute(a, axes) => Op::Permute(*a, axes.clone()),
            Op::BroadcastTo(a) => Op::BroadcastTo(*a),
            Op::Sum {
                input,
                axes,
                keepdim,
            } => Op::Sum {
                input: *input,
                axes: axes.clone(),
                keepdim: *keepdim,
            },
            Op::Extremum {
                input,
                axes,
                keepdim,
                is_max,
            } => Op::Extremum {
                input: *input,
                axes: axes.clone(),
                keepdim: *keepdim,
                is_max: *is_max,
            },
            Op::Slice {
                input,
                axis,
                start,
                end,
            } => Op::Slice {
                input: *input,
                axis: *axis,
                start: *start,
                end: *end,
            },
            Op::PadSlice {
                input,
                axis,
                start,
                len,
            } => Op::PadSlice {
                input: *input,
                axis: *axis,
                start: *start,
                len: *len,
            },
            Op::Concat { inputs, axis } => Op::Concat {
                inputs: inputs.clone(),
                axis: *axis,
            },
            Op::IndexSelect {
                input,
                axis,
                indices,
            } => Op::IndexSelect {
                input: *input,
                axis: *axis,
                indices: indices.clone(),
            },
            Op::IndexAdd {
                input,
                axis,
                indices,
                size,
            } => Op::IndexAdd {
                input: *input,
                axis: *axis,
                indices: indices.clone(),
                size: *size,
            },
            Op::Gather { input, axis, index } => Op::Gather {
                input: *input,
                axis: *axis,
                index: index.clone(),
            },
            Op::ScatterAdd {
                input,
                axis,
                index,
                shape,
            } => Op::ScatterAdd {
                input: *input,
                axis: *axis,
                index: index.clone(),
                shape: shape.clone(),
            },
            Op::Select {
                cond,
                on_true,
                on_false,
            } => Op::Select {
                cond: *cond,
                on_true: *on_true,
                on_false: *on_false,
            },
            Op::Custom { op, inputs } => Op::Custom {
                op: op.clone(),
                inputs: inputs.clone(),
            },
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
            Op::Reshape(_) => "reshape",
            Op::Permute(..) => "permute",
            Op::BroadcastTo(_) => "broadcast_to",
            Op::Sum { .. } => "sum",
            Op::Extremum { is_max: true, .. } => "max",
            Op::Extremum { is_max: false, .. } => "min",
            Op::Slice { .. } => "slice",
            Op::PadSlice { .. } => "pad_slice",
            Op::Concat { .. } => "concat",
            Op::IndexSelect { .. } => "index_select",
            Op::IndexAdd { .. } => "index_add",
            Op::Gather { .. } => "gather",
            Op::ScatterAdd { .. } => "scatter_add",
            Op::Select { .. } => "where",
            Op::Custom { op, .. } => op.name(),
        }
    }

    /// The arena indices of its inputs.
    pub(crate) fn inputs(&self) -> SmallVec<[usize; 4]> {
        match self {
            Op::Leaf | Op::Param(_) => SmallVec::new(),
            Op::Binary(_, a, b) | Op::MatMul(a, b) => smallvec![*a, *b],
            Op::Unary(_, a) | Op::Reshape(a) | Op::Permute(a, _) | Op::BroadcastTo(a) => {
                smallvec![*a]
            }
            Op::Sum { input, .. }
            | Op::Extremum { input, .. }
            | Op::Slice { input, .. }
            | Op::PadSlice { input, .. }
            | Op::IndexSelect { input, .. }
            | Op::IndexAdd { input, .. }
            | Op::Gather { input, .. }
            | Op::ScatterAdd { input, .. } => smallvec![*input],
            Op::Concat { inputs, .. } | Op::Custom { inputs, .. } => {
                inputs.iter().copied().collect()
            }
            Op::Select {
                cond,
                on_true,
                on_false,
            } => smallvec![*cond, *on_true, *on_false],
        }
    }
}

/// What a backward rule can ask about the graph: the operand for a node's value, and
/// whether a node needs a gradient.
pub(crate) trait RuleContext<O> {
    fn value(&self, index: usize) -> O;
    fn shape(&self, index: usize) -> SmallVec<[usize; 4]>;
    fn needs(&self, index: usize) -> bool;
}

/// The backward rule of every built-in primitive: given the gradient `g` of node `out`,
/// emits the gradient of each input that needs one. Written once against [`Operand`], so
/// it serves plain arrays and differentiable `Var`s alike.
pub(crate) fn backward_rule<T: Float, O: Operand<T>>(
    op: &Op<T>,
    out: usize,
    g: O,
    ctx: &impl RuleContext<O>,
    emit: &mut impl FnMut(usize, O),
) {
    match op {
        Op::Leaf | Op::Param(_) | Op::Custom { .. } => {}
        Op::Binary(op, a, b) => arith::backward(*op, *a, *b, out, g, ctx, emit),
        Op::Unary(op, a) => unary::backward(op, *a, out, g, ctx, emit),
        Op::MatMul(a, b) => matmul::backward(*a, *b, g, ctx, emit),
        Op::Reshape(a) => emit(*a, g.reshape(&ctx.shape(*a))),
        Op::Permute(a, axes) => emit(*a, g.permute(&shape::inverse_permutation(axes))),
        Op::BroadcastTo(a) => emit(*a, g.sum_to(&ctx.shape(*a))),
        Op::Sum {
            input,
            axes,
            keepdim,
        } => reduce::sum_backward(*input, axes, *keepdim, g, ctx, emit),
        Op::Extremum {
            input,
            axes,
            keepdim,
            ..
        } => reduce::extremum_backward(*input, axes, *keepdim, out, g, ctx, emit),
        Op::Slice {
            input, axis, start, ..
        } => {
            let len = ctx.shape(*input)[*axis];
            emit(*input, g.pad_slice(*axis, *start, len));
        }
        Op::PadSlice {
            input, axis, start, ..
        } => {
            let width = ctx.shape(*input)[*axis];
            emit(*input, g.slice(*axis, *start, *start + width));
        }
        Op::Concat { inputs, axis } => index::concat_backward(inputs, *axis, g, ctx, emit),
        Op::IndexSelect {
            input,
            axis,
            indices,
        } => {
            let size = ctx.shape(*input)[*axis];
            emit(*input, g.index_add(*axis, indices, size));
        }
        Op::IndexAdd {
            input,
            axis,
            indices,
            ..
        } => emit(*input, g.index_select(*axis, indices)),
        Op::Gather { input, axis, index } => {
            let shape = ctx.shape(*input);
            emit(*input, g.scatter_add(*axis, index, &shape));
        }
        Op::ScatterAdd {
            input, axis, index, ..
        } => emit(*input, g.gather(*axis, index)),
        Op::Select {
            cond,
            on_true,
            on_false,
        } => index::select_backward(*cond, *on_true, *on_false, g, ctx, emit),
    }
}

struct ArrayContext<'a, 't, T> {
    nodes: &'a crate::tape::Nodes<'t, T>,
}

impl<'a, T: Float> RuleContext<Arr<'a, T>> for ArrayContext<'a, '_, T> {
    #[inline]
    fn value(&self, index: usize) -> Arr<'a, T> {
        Arr::Ref(self.nodes[index].value.array())
    }
    #[inline]
    fn shape(&self, index: usize) -> SmallVec<[usize; 4]> {
        self.nodes[index].value.shape()
    }
    #[inline]
    fn needs(&self, index: usize) -> bool {
        self.nodes[index].requires_grad
    }
}

struct VarContext<'t, T: Float> {
    tape: &'t Tape<'t, T>,
}

impl<'t, T: Float> RuleContext<Var<'t, T>> for VarContext<'t, T> {
    fn value(&self, index: usize) -> Var<'t, T> {
        Var {
            tape: self.tape,
            index,
        }
    }
    fn shape(&self, index: usize) -> SmallVec<[usize; 4]> {
        self.tape.nodes()[index].value.shape()
    }
    fn needs(&self, index: usize) -> bool {
        self.tape.nodes()[index].requires_grad
    }
}

/// A gradient being accumulated during the sweep: nothing yet, one number (the
/// one-element path, see [`crate::scalar`]), or an array, held in [`GradSlots::arrays`] at
/// this index (so the table of slots stays two words per node and no array is boxed).
#[derive(Clone, Copy)]
enum Slot<T> {
    Empty,
    One(T),
    Array(usize),
}

/// The gradients being accumulated during one sweep: a slot per node, and the arrays the
/// slots point to (a gradient array is moved in and out of this table, never boxed or
/// copied).
struct GradSlots<T> {
    slots: Vec<Slot<T>>,
    arrays: Vec<Option<ArrayD<T>>>,
}

impl<T: Float> GradSlots<T> {
    /// Empty slots for nodes `0..len`.
    fn new(len: usize) -> Self {
        GradSlots {
            slots: vec![Slot::Empty; len],
            // Room for 8 gradients (8 × 112 bytes: within the allocator's per-thread
            // cache, see `arena.rs`); more grow the table.
            arrays: Vec::with_capacity(len.min(8)),
        }
    }

    /// Stores `array` as the gradient of a slot.
    #[inline]
    fn put(&mut self, slot: usize, array: ArrayD<T>) {
        self.slots[slot] = Slot::Array(self.arrays.len());
        self.arrays.push(Some(array));
    }

    /// Adds `g` to node `slot`'s gradient (the first contribution is moved in, later ones
    /// summed in place), so a value used many times gets the sum of its uses' gradients.
    #[inline]
    fn add_array(&mut self, slot: usize, g: Arr<'_, T>) {
        match self.slots[slot] {
            Slot::Empty => self.put(slot, g.into_owned()),
            Slot::One(v) => {
                let mut total = g.into_owned();
                *total.first_mut().expect("a one-element gradient") += v;
                self.put(slot, total);
            }
            Slot::Array(k) => {
                let total = self.arrays[k].as_mut().expect("a gradient not yet taken");
                crate::operand::add_assign(total, g.array());
            }
        }
    }

    /// Adds the gradient of a one-element value.
    #[inline]
    fn add_one(&mut self, slot: usize, g: T) {
        let GradSlots { slots, arrays } = self;
        let slot = &mut slots[slot];
        match slot {
            Slot::Empty => *slot = Slot::One(g),
            Slot::One(v) => *v += g,
            Slot::Array(k) => {
                let total = arrays[*k].as_mut().expect("a gradient not yet taken");
                *total.first_mut().expect("a one-element gradient") += g;
            }
        }
    }

    /// Empties node `slot`'s slot and returns what it held (an array stays in the table
    /// until [`GradSlots::take_array`] moves it out).
    #[inline]
    fn take(&mut self, slot: usize) -> Slot<T> {
        std::mem::replace(&mut self.slots[slot], Slot::Empty)
    }

    /// Moves out the array a slot pointed to.
    #[inline]
    fn take_array(&mut self, k: usize) -> ArrayD<T> {
        self.arrays[k].take().expect("a gradient taken once")
    }
}

/// Whether node `out` and its inputs each hold one element, so its elementwise rule can
/// run on numbers.
#[inline]
fn one_element_rule<T: Float>(nodes: &crate::tape::Nodes<'_, T>, out: usize) -> bool {
    let one = |i: usize| nodes[i].value.one().is_some();
    match nodes[out].op {
        Op::Binary(_, a, b) => one(out) && one(a) && one(b),
        Op::Unary(_, a) => one(out) && one(a),
        _ => false,
    }
}

/// First-order backward: one reverse sweep over the arena with plain arrays; nothing is
/// recorded. Only nodes that received a gradient are visited, and a rule computes only the
/// input gradients that are needed. Elementwise nodes of one element run their rule on
/// numbers ([`crate::scalar`]).
pub(crate) fn sweep_arrays<'t, T: Float>(
    tape: &'t Tape<'t, T>,
    output: usize,
    seed: Option<ArrayD<T>>,
) -> Grads<T> {
    let anomaly = tape.anomaly_detection();
    let mut leaves = Vec::new();
    if !tape.nodes()[output].requires_grad {
        return Grads::from_sweep(tape.id(), leaves, &[]);
    }
    let mut slots = GradSlots::new(output + 1);
    match seed {
        Some(seed) => slots.put(output, seed),
        None => slots.add_one(output, T::one()),
    }
    for i in (0..=output).rev() {
        let slot = slots.take(i);
        if let Slot::Empty = slot {
            continue;
        }
        let nodes = tape.nodes();
        let node = &nodes[i];
        if one_element_rule(&nodes, i) {
            let g = match slot {
                Slot::One(v) => v,
                Slot::Array(k) => {
                    crate::scalar::single(&slots.take_array(k)).expect("a one-element gradient")
                }
                Slot::Empty => unreachable!(),
            };
            let ctx = ScalarContext { nodes: &nodes };
            // Elementwise rules only emit gradients for inputs that need one.
            backward_rule(&node.op, i, Scalar(g), &ctx, &mut |input, Scalar(grad)| {
                if anomaly && !grad.is_finite() {
                    panic!("{}", anomaly_message(&nodes, i, input));
                }
                slots.add_one(input, grad);
            });
            continue;
        }
        let g = match slot {
            Slot::One(v) => ArrayD::from_elem(&node.value.shape()[..], v),
            Slot::Array(k) => slots.take_array(k),
            Slot::Empty => unreachable!(),
        };
        match &node.op {
            Op::Leaf | Op::Param(_) => {
                leaves.push((i, g));
                continue;
            }
            Op::Custom { op, inputs } => {
                let (op, inputs) = (op.clone(), inputs.clone());
                drop(nodes);
                let results = custom::backward_first_order(tape, &*op, &inputs, i, g);
                for (input, grad) in inputs.iter().zip(results) {
                    // Like the built-in rules' `emit`: only inputs that need a gradient get one.
                    if let Some(grad) = grad.filter(|_| tape.nodes()[*input].requires_grad) {
                        if anomaly {
                            check_backward(tape, i, *input, &grad);
                        }
                        slots.add_array(*input, Arr::Owned(grad));
                    }
                }
                continue;
            }
            // The pass-through rule of `+` without broadcasting (d(a+b) = da + db): one input
            // borrows the gradient and the other takes it, so nothing is copied.
            Op::Binary(BinaryOp::Add, a, b)
                if !anomaly
                    && same(nodes[*a].value.array().shape(), g.shape())
                    && same(nodes[*b].value.array().shape(), g.shape()) =>
            {
                let (a, b) = (*a, *b);
                if nodes[b].requires_grad {
                    slots.add_array(b, Arr::Ref(&g));
                }
                if nodes[a].requires_grad {
                    slots.add_array(a, Arr::Owned(g));
                }
                continue;
            }
            _ => {}
        }
        let ctx = ArrayContext { nodes: &nodes };
        backward_rule(
            &node.op,
            i,
            Arr::Owned(g),
            &ctx,
            &mut |input, grad: Arr<'_, T>| {
                if nodes[input].requires_grad {
                    if anomaly {
                        check_finite(grad.array(), || anomaly_message(&nodes, i, input));
                    }
                    slots.add_array(input, grad);
                }
            },
        );
    }
    Grads::from_sweep(tape.id(), leaves, &tape.bound_params())
}

fn anomaly_message<T: Float>(
    nodes: &crate::tape::Nodes<'_, T>,
    node: usize,
    input: usize,
) -> String {
    format!(
        "anomaly: the backward of `{}` recorded at {} produced NaN or infinity in the gradient of its input #{} (`{}` recorded at {})",
        nodes[node].op.name(),
        nodes[node].location,
        input,
        nodes[input].op.name(),
        nodes[input].location
    )
}

fn check_backward<T: Float>(tape: &Tape<'_, T>, node: usize, input: usize, grad: &ArrayD<T>) {
    let nodes = tape.nodes();
    check_finite(grad, || anomaly_message(&nodes, node, input));
}

/// Differentiable backward: the same rules, applied to `Var`s, so every step is recorded
/// and the resulting gradients can be differentiated again.
pub(crate) fn sweep_vars<'t, T: Float>(
    tape: &'t Tape<'t, T>,
    output: usize,
    seed: Var<'t, T>,
    lowest: usize,
) -> Vec<Option<Var<'t, T>>> {
    let mut slots: Vec<Option<Var<'t, T>>> = vec![None; output + 1];
    if !tape.nodes()[output].requires_grad {
        return slots;
    }
    slots[output] = Some(seed);
    let ctx = VarContext { tape };
    for i in (lowest..=output).rev() {
        let Some(g) = slots[i] else { continue };
        let op = tape.nodes()[i].op.clone();
        let mut emit = |input: usize, grad: Var<'t, T>| {
            if input >= lowest && ctx.needs(input) {
                slots[input] = Some(match slots[input] {
                    None => grad,
                    Some(total) => total + grad,
                });
            }
        };
        match &op {
            Op::Custom { op, inputs } => {
                let input_vars: Vec<Var<'t, T>> = inputs.iter().map(|&j| ctx.value(j)).collect();
                let results = op.backward(&input_vars, ctx.value(i), g);
                custom::check_backward_arity(&**op, inputs.len(), results.len());
                for (&input, grad) in inputs.iter().zip(results) {
                    if let Some(grad) = grad {
                        emit(input, grad);
                    }
                }
            }
            op => backward_rule(op, i, g, &ctx, &mut emit),
        }
    }
    slots
}
