//! `concat`: variables joined along an existing axis.

use ndarray::Axis;

use super::RuleContext;
use super::axes::resolve_axis;
use crate::graph::Op;
use crate::operand::Structural;
use crate::{Float, Var};

/// d concat: each input gets its slice of the gradient.
pub(crate) fn rule<T: Float, O: Structural<T>>(
    inputs: &[usize],
    axis: usize,
    g: O,
    ctx: &impl RuleContext<O>,
    emit: &mut impl FnMut(usize, O),
) {
    let mut offset = 0;
    for &input in inputs {
        let len = ctx.shape(input)[axis];
        if ctx.needs(input) {
            emit(input, g.clone().slice(axis, offset, offset + len));
        }
        offset += len;
    }
}

impl<'t, T: Float> Var<'t, T> {
    /// Joins variables along an existing axis; all other axes must agree.
    #[track_caller]
    pub fn concat(vars: &[Var<'t, T>], axis: isize) -> Var<'t, T> {
        assert!(!vars.is_empty(), "concat: needs at least one variable");
        let tape = vars[0].tape;
        let first = vars[0].shape();
        let axis = resolve_axis("concat", axis, &first);
        for v in vars {
            tape.check_same_tape(v.tape, "concat");
            let s = v.shape();
            let agrees = s.len() == first.len()
                && s.iter()
                    .zip(&first)
                    .enumerate()
                    .all(|(i, (a, b))| i == axis || a == b);
            assert!(
                agrees,
                "concat: shapes {first:?} and {s:?} differ outside axis {axis}"
            );
        }
        T::record_concat(vars, axis)
    }
}

/// Records `vars` (on one tape, of shapes checked to agree outside `axis`) joined along
/// `axis`.
#[track_caller]
pub(crate) fn record<'t, T: Float>(vars: &[Var<'t, T>], axis: usize) -> Var<'t, T> {
    let tape = vars[0].tape;
    let nodes = tape.nodes();
    let views: Vec<_> = vars
        .iter()
        .map(|v| nodes[v.index].value.array().view())
        .collect();
    let value = ndarray::concatenate(Axis(axis), &views).expect("shapes checked");
    drop(nodes);
    tape.record(
        value,
        Op::Concat {
            inputs: vars.iter().map(|v| v.index).collect(),
            axis,
        },
    )
}
