//! Selecting and joining: `slice`, `concat`, `index_select`, `gather`, `where_` (primitives,
//! each with its adjoint — the op its backward needs — as a primitive too), `stack`,
//! `maximum`/`minimum` and comparisons (composites and constants).

use std::rc::Rc;

use ndarray::{ArrayD, Axis, IxDyn, Zip};

use super::shape::{broadcast_shape, normalize_axis};
use super::{Op, RuleContext};
use crate::operand::{Arr, Operand};
use crate::{Float, Var};

/// d concat: each input gets its slice of the gradient.
pub(crate) fn concat_backward<T: Float, O: Operand<T>>(
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

/// d where(c, a, b) = c da + (1 - c) db, with the mask `c` a constant.
pub(crate) fn select_backward<T: Float, O: Operand<T>>(
    cond: usize,
    on_true: usize,
    on_false: usize,
    g: O,
    ctx: &impl RuleContext<O>,
    emit: &mut impl FnMut(usize, O),
) {
    let c = ctx.value(cond);
    let is_true = |v: T| if v != T::zero() { T::one() } else { T::zero() };
    if ctx.needs(on_true) {
        let ga = g.clone().mul_const_fn(&c, is_true);
        emit(on_true, ga.sum_to(&ctx.shape(on_true)));
    }
    if ctx.needs(on_false) {
        let gb = g.mul_const_fn(&c, move |v| T::one() - is_true(v));
        emit(on_false, gb.sum_to(&ctx.shape(on_false)));
    }
}

impl<'t, T: Float> Var<'t, T> {
    /// Elements `start..end` along `axis`.
    #[track_caller]
    pub fn slice(self, axis: isize, start: usize, end: usize) -> Var<'t, T> {
        let shape = self.shape();
        let axis = normalize_axis("slice", axis, shape.len());
        assert!(
            start <= end && end <= shape[axis],
            "slice: range {start}..{end} is out of bounds for axis {axis} of shape {shape:?}"
        );
        let value = self.with_arr(|a| a.slice_impl(axis, start, end).into_owned());
        self.tape.record(
            value,
            Op::Slice {
                input: self.index,
                axis,
                start,
                end,
            },
        )
    }

    /// Places the value at `start` along `axis` in zeros of length `len` (the adjoint of slice).
    pub(crate) fn pad_slice_var(self, axis: usize, start: usize, len: usize) -> Var<'t, T> {
        let value = self.with_arr(|a| a.pad_slice_impl(axis, start, len).into_owned());
        self.tape.record(
            value,
            Op::PadSlice {
                input: self.index,
                axis,
                start,
                len,
            },
        )
    }

    /// Joins variables along an existing axis; all other axes must agree.
    #[track_caller]
    pub fn concat(vars: &[Var<'t, T>], axis: isize) -> Var<'t, T> {
        assert!(!vars.is_empty(), "concat: needs at least one variable");
        let tape = vars[0].tape;
        let first = vars[0].shape();
        let axis = normalize_axis("concat", axis, first.len());
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

    /// Joins variables of one shape along a new axis.
    #[track_caller]
    pub fn stack(vars: &[Var<'t, T>], axis: isize) -> Var<'t, T> {
        assert!(!vars.is_empty(), "stack: needs at least one variable");
        let first = vars[0].shape();
        for v in vars {
            assert!(
                v.shape() == first,
                "stack: shapes {first:?} and {:?} differ",
                v.shape()
            );
        }
        let axis = normalize_axis("stack", axis, first.len() + 1) as isize;
        // A loop, not a closure: closures drop `#[track_caller]`'s location.
        let mut expanded = Vec::with_capacity(vars.len());
        for v in vars {
            expanded.push(v.unsqueeze(axis));
        }
        Var::concat(&expanded, axis)
    }

    /// The slices at `indices` along `axis`, in that order (repeats allowed): embedding
    /// lookups, batch selection.
    #[track_caller]
    pub fn index_select(self, axis: isize, indices: &[usize]) -> Var<'t, T> {
        let shape = self.shape();
        let axis = normalize_axis("index_select", axis, shape.len());
        if let Some(&bad) = indices.iter().find(|&&i| i >= shape[axis]) {
            panic!("index_select: index {bad} is out of bounds for axis {axis} of shape {shape:?}");
        }
        self.index_select_rc(axis, Rc::from(indices))
    }

    #[track_caller]
    pub(crate) fn index_select_rc(self, axis: usize, indices: Rc<[usize]>) -> Var<'t, T> {
        let value = self.with_arr(|a| a.index_select_impl(axis, &indices).into_owned());
        self.tape.record(
            value,
            Op::IndexSelect {
                input: self.index,
                axis,
                indices,
            },
        )
    }

    pub(crate) fn index_add_var(
        self,
        axis: usize,
        indices: Rc<[usize]>,
        size: usize,
    ) -> Var<'t, T> {
        let value = self.with_arr(|a| a.index_add_impl(axis, &indices, size).into_owned());
        self.tape.record(
            value,
            Op::IndexAdd {
                input: self.index,
                axis,
                indices,
                size,
            },
        )
    }

    /// `torch.gather`: `out[i][j] = self[i][index[i][j]]` for `axis = 1` (and likewise for
    /// any axis). `index` has as many axes as `self`, and is no longer on the others.
    #[track_caller]
    pub fn gather(self, axis: isize, index: &ArrayD<usize>) -> Var<'t, T> {
        let shape = self.shape();
        let axis = normalize_axis("gather", axis, shape.len());
        let fits = index.ndim() == shape.len()
            && index
                .shape()
                .iter()
                .zip(&shape)
                .enumerate()
                .all(|(d, (i, s))| d == axis || i <= s);
        assert!(
            fits,
            "gather: index of shape {:?} does not fit input of shape {shape:?} along axis {axis}",
            index.shape()
        );
        if let Some(&bad) = index.iter().find(|&&i| i >= shape[axis]) {
            panic!("gather: index {bad} is out of bounds for axis {axis} of shape {shape:?}");
        }
        self.gather_rc(axis, Rc::new(index.clone()))
    }

    #[track_caller]
    pub(crate) fn gather_rc(self, axis: usize, index: Rc<ArrayD<usize>>) -> Var<'t, T> {
        let value = self.with_arr(|a| a.gather_impl(axis, &index).into_owned());
        self.tape.record(
            value,
            Op::Gather {
                input: self.index,
                axis,
                index,
            },
        )
    }

    pub(crate) fn scatter_add_var(
        self,
        axis: usize,
        index: Rc<ArrayD<usize>>,
        shape: &[usize],
    ) -> Var<'t, T> {
        let value = self.with_arr(|a| a.scatter_add_impl(axis, &index, shape).into_owned());
        self.tape.record(
            value,
            Op::ScatterAdd {
                input: self.index,
                axis,
                index,
                shape: Rc::from(shape),
            },
        )
    }

    /// `on_true` where `cond` is non-zero, else `on_false`, broadcasting all three.
    /// `cond` is treated as a constant mask (comparisons produce one).
    #[track_caller]
    pub fn where_(cond: Var<'t, T>, on_true: Var<'t, T>, on_false: Var<'t, T>) -> Var<'t, T> {
        let tape = cond.tape;
        tape.check_same_tape(on_true.tape, "where_");
        tape.check_same_tape(on_false.tape, "where_");
        let nodes = tape.nodes();
        let (c, a, b) = (
            nodes[cond.index].value.array(),
            nodes[on_true.index].value.array(),
            nodes[on_false.index].value.array(),
        );
        let shape = broadcast_shape(
            "where_",
            &broadcast_shape("where_", c.shape(), a.shape()),
            b.shape(),
        );
        let dim = IxDyn(&shape);
        let value = Zip::from(c.broadcast(dim.clone()).expect("checked"))
            .and(a.broadcast(dim.clone()).expect("checked"))
            .and(b.broadcast(dim).expect("checked"))
            .map_collect(|&c, &a, &b| if c != T::zero() { a } else { b });
        drop(nodes);
        tape.record(
            value,
            Op::Select {
                cond: cond.index,
                on_true: on_true.index,
                on_false: on_false.index,
            },
        )
    }

    /// The elementwise maximum, broadcasting. Ties split the gradient equally and NaN
    /// propagates, as in `torch.maximum`.
    #[track_caller]
    pub fn maximum(self, other: Var<'t, T>) -> Var<'t, T> {
        let tie = self.tie_mean(other);
        Var::where_(
            self.gt(other),
            self,
            Var::where_(self.lt(other), other, tie),
        )
    }

    /// The elementwise minimum, broadcasting. Ties split the gradient equally and NaN
    /// propagates, as in `torch.minimum`.
    #[track_caller]
    pub fn minimum(self, other: Var<'t, T>) -> Var<'t, T> {
        let tie = self.tie_mean(other);
        Var::where_(
            self.lt(other),
            self,
            Var::where_(self.gt(other), other, tie),
        )
    }

    /// `self/2 + other/2`: equal to both at a tie (d = 1/2 each), NaN if either is NaN.
    #[track_caller]
    fn tie_mean(self, other: Var<'t, T>) -> Var<'t, T> {
        let half = T::from_f64(0.5);
        self.mul_scalar(half) + other.mul_scalar(half)
    }

    #[track_caller]
    fn compare(self, other: Var<'t, T>, op: &str, f: impl Fn(T, T) -> bool) -> Var<'t, T> {
        self.tape.check_same_tape(other.tape, op);
        let nodes = self.tape.nodes();
        let a = Arr::Ref(nodes[self.index].value.array());
        let b = Arr::Ref(nodes[other.index].value.array());
        let value = a
            .zip(b, op, |x, y| if f(x, y) { T::one() } else { T::zero() })
            .into_owned();
        drop(nodes);
        self.tape.constant(value)
    }
}

macro_rules! comparisons {
    ($($name:ident $scalar:ident $op:tt $doc:literal),*) => {$(
        impl<'t, T: Float> Var<'t, T> {
            #[doc = concat!("The constant mask `self ", $doc, " other` (1 where true, 0 elsewhere), broadcasting.")]
            #[track_caller]
            pub fn $name(self, other: Var<'t, T>) -> Var<'t, T> {
                self.compare(other, stringify!($name), |a, b| a $op b)
            }

            #[doc = concat!("The constant mask `self ", $doc, " s` for a scalar `s`.")]
            #[track_caller]
            pub fn $scalar(self, s: T) -> Var<'t, T> {
                let mask = self.with_value(|a| a.mapv(|x| if x $op s { T::one() } else { T::zero() }));
                self.tape.constant(mask)
            }
        }
    )*};
}
comparisons!(
    gt gt_scalar > ">",
    ge ge_scalar >= ">=",
    lt lt_scalar < "<",
    le le_scalar <= "<=",
    equal equal_scalar == "=="
);
