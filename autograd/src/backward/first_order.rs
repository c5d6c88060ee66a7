//! First-order backward: one reverse sweep with plain arrays (and plain numbers for
//! one-element elementwise nodes); nothing is recorded.

use ndarray::ArrayD;
use smallvec::SmallVec;

use super::rule;
use super::slots::{Slot, SlotTable};
use crate::graph::{BinaryOp, Nodes, Op};
use crate::kernels::Dims;
use crate::kernels::elementwise::{one_element, same};
use crate::kernels::pool::{PooledVec, filled, recycle_array};
use crate::operand::{Arr, Number};
use crate::ops::{RuleContext, binary, custom, unary};
use crate::tape::check_finite;
use crate::{Float, Grads, Tape};

struct ArrayContext<'a, 't, T> {
    nodes: &'a Nodes<'t, T>,
}

impl<'a, T: Float> RuleContext<Arr<'a, T>> for ArrayContext<'a, '_, T> {
    #[inline]
    fn value(&self, index: usize) -> Arr<'a, T> {
        Arr::Ref(self.nodes[index].value.array())
    }
    #[inline]
    fn shape(&self, index: usize) -> Dims {
        self.nodes[index].value.shape()
    }
    #[inline]
    fn needs(&self, index: usize) -> bool {
        self.nodes[index].requires_grad
    }
}

/// A one-element elementwise node as its rule sees it. The rule is given positions instead
/// of arena indices ([`FIRST`] and [`SECOND`] for the inputs, [`RESULT`] for the node), so
/// after inlining every question it asks is a constant index into these arrays.
struct NumberContext<T> {
    /// The values at [`FIRST`], [`SECOND`] and [`RESULT`]; a unary op's input is [`FIRST`].
    values: [T; 3],
    /// Whether the inputs at [`FIRST`] and [`SECOND`] need a gradient.
    needs: [bool; 2],
    /// The arena indices of the inputs at [`FIRST`] and [`SECOND`] (the same index twice
    /// for a unary op, or for `x * x`).
    inputs: [usize; 2],
}

/// The position of an elementwise node's first input in a [`NumberContext`].
const FIRST: usize = 0;
/// The position of a binary node's second input.
const SECOND: usize = 1;
/// The position of the node's own value.
const RESULT: usize = 2;

impl<T: Float> NumberContext<T> {
    /// The context of node `out` if it is elementwise and it and its inputs each hold one
    /// element, so its rule can run on numbers.
    #[inline]
    fn of(nodes: &Nodes<'_, T>, out: usize) -> Option<Self> {
        let node = &nodes[out];
        let (a, b) = match *node.op {
            Op::Binary(_, a, b) => (a, b),
            Op::Unary(_, a) => (a, a),
            _ => return None,
        };
        let out = node.value.one()?;
        let (na, nb) = (&nodes[a], &nodes[b]);
        Some(NumberContext {
            values: [na.value.one()?, nb.value.one()?, out],
            needs: [na.requires_grad, nb.requires_grad],
            inputs: [a, b],
        })
    }
}

impl<T: Float> RuleContext<Number<T>> for NumberContext<T> {
    #[inline]
    fn value(&self, position: usize) -> Number<T> {
        Number(self.values[position])
    }
    #[inline]
    fn shape(&self, _position: usize) -> Dims {
        // `sum_to` ignores the shape on this path.
        SmallVec::new()
    }
    #[inline]
    fn needs(&self, position: usize) -> bool {
        self.needs.get(position).copied().unwrap_or(false)
    }
}

/// First-order backward: one reverse sweep over the arena with plain arrays; nothing is
/// recorded. Only nodes that received a gradient are visited, and a rule computes only the
/// input gradients that are needed. Elementwise nodes of one element run their rule on
/// numbers ([`Number`]).
pub(crate) fn sweep<'t, T: Float>(
    tape: &'t Tape<'t, T>,
    output: usize,
    seed: Option<ArrayD<T>>,
) -> Grads<T> {
    let anomaly = tape.anomaly_detection();
    let mut leaves = PooledVec::new();
    if !tape.nodes()[output].requires_grad {
        return Grads::from_sweep(tape.id(), leaves, &[]);
    }
    let mut slots = SlotTable::new(output + 1);
    match seed {
        Some(seed) => slots.put(output, seed),
        None => slots.add_one(output, T::one()),
    }
    // Borrowed for the whole sweep, except while a custom op's backward records on the tape.
    let mut nodes = tape.nodes();
    for i in (0..=output).rev() {
        let slot = slots.take(i);
        if let Slot::Empty = slot {
            continue;
        }
        let node = &nodes[i];
        if let Some(ctx) = NumberContext::of(&nodes, i) {
            let g = match slot {
                Slot::One(v) => v,
                Slot::Array(k) => {
                    let g = slots.take_array(k);
                    let v = one_element(&g).expect("a one-element gradient");
                    recycle_array(g);
                    v
                }
                Slot::Empty => unreachable!(),
            };
            // Elementwise rules only emit gradients for inputs that need one.
            let mut emit = |position: usize, Number(grad): Number<T>| {
                let input = ctx.inputs[position];
                if anomaly {
                    check_number(&nodes, i, input, grad);
                }
                slots.add_one(input, grad);
            };
            match &*node.op {
                Op::Binary(op, ..) => {
                    binary::rule(*op, FIRST, SECOND, RESULT, Number(g), &ctx, &mut emit)
                }
                Op::Unary(op, _) => unary::rule(op, FIRST, RESULT, Number(g), &ctx, &mut emit),
                // `NumberContext::of` admits elementwise nodes only.
                _ => {}
            }
            continue;
        }
        let g = match slot {
            Slot::One(v) => filled(&node.value.shape(), v),
            Slot::Array(k) => slots.take_array(k),
            Slot::Empty => unreachable!(),
        };
        match &*node.op {
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
                        slots.add_array(*input, Arr::owned(grad));
                    }
                }
                nodes = tape.nodes();
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
                    slots.add_array(a, Arr::owned(g));
                } else {
                    recycle_array(g);
                }
                continue;
            }
            _ => {}
        }
        let ctx = ArrayContext { nodes: &nodes };
        rule(
            &node.op,
            i,
            Arr::owned(g),
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

/// Anomaly mode's check of a one-element gradient of `input`: panics if it is NaN or
/// infinite.
#[cold]
#[inline(never)]
fn check_number<T: Float>(nodes: &Nodes<'_, T>, node: usize, input: usize, grad: T) {
    if !grad.is_finite() {
        panic!("{}", anomaly_message(nodes, node, input))
    }
}

fn anomaly_message<T: Float>(nodes: &Nodes<'_, T>, node: usize, input: usize) -> String {
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
