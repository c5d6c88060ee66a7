//! First-order backward: one reverse sweep with plain arrays (and plain numbers for
//! one-element elementwise nodes); nothing is recorded.

use ndarray::ArrayD;
use smallvec::SmallVec;

use super::rule;
use super::slots::{Slot, SlotTable};
use crate::graph::{BinaryOp, Nodes, Op};
use crate::kernels::elementwise::{one_element, same};
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
    fn shape(&self, index: usize) -> SmallVec<[usize; 4]> {
        self.nodes[index].value.shape()
    }
    #[inline]
    fn needs(&self, index: usize) -> bool {
        self.nodes[index].requires_grad
    }
}

/// The graph as the one-element path sees it: every value is read as a number.
struct NumberContext<'a, 't, T> {
    nodes: &'a Nodes<'t, T>,
}

impl<T: Float> RuleContext<Number<T>> for NumberContext<'_, '_, T> {
    #[inline]
    fn value(&self, index: usize) -> Number<T> {
        Number(
            self.nodes[index]
                .value
                .one()
                .expect("the one-element path reads one-element values"),
        )
    }
    #[inline]
    fn shape(&self, _index: usize) -> SmallVec<[usize; 4]> {
        // `sum_to` ignores the shape on this path.
        SmallVec::new()
    }
    #[inline]
    fn needs(&self, index: usize) -> bool {
        self.nodes[index].requires_grad
    }
}

/// Whether node `out` and its inputs each hold one element, so its elementwise rule can
/// run on numbers.
#[inline]
fn one_element_rule<T: Float>(nodes: &Nodes<'_, T>, out: usize) -> bool {
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
/// numbers ([`Number`]).
pub(super) fn sweep<'t, T: Float>(
    tape: &'t Tape<'t, T>,
    output: usize,
    seed: Option<ArrayD<T>>,
) -> Grads<T> {
    let anomaly = tape.anomaly_detection();
    let mut leaves = Vec::new();
    if !tape.nodes()[output].requires_grad {
        return Grads::from_sweep(tape.id(), leaves, &[]);
    }
    let mut slots = SlotTable::new(output + 1);
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
                    one_element(&slots.take_array(k)).expect("a one-element gradient")
                }
                Slot::Empty => unreachable!(),
            };
            let ctx = NumberContext { nodes: &nodes };
            // Elementwise rules only emit gradients for inputs that need one.
            let mut emit = |input, Number(grad): Number<T>| {
                if anomaly && !grad.is_finite() {
                    panic!("{}", anomaly_message(&nodes, i, input));
                }
                slots.add_one(input, grad);
            };
            match &node.op {
                Op::Binary(op, a, b) => binary::rule(*op, *a, *b, i, Number(g), &ctx, &mut emit),
                Op::Unary(op, a) => unary::rule(op, *a, i, Number(g), &ctx, &mut emit),
                // `one_element_rule` admits elementwise nodes only.
                _ => {}
            }
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
        rule(
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
