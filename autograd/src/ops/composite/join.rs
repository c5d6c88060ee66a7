//! `stack`: variables of one shape joined along a new axis, by `unsqueeze` and `concat`.

use crate::ops::axes::resolve_new_axis;
use crate::{Float, Var};

impl<'t, T: Float> Var<'t, T> {
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
        let axis = resolve_new_axis("stack", axis, &first) as isize;
        // A loop, not a closure: closures drop `#[track_caller]`'s location.
        let mut expanded = Vec::with_capacity(vars.len());
        for v in vars {
            expanded.push(v.unsqueeze(axis));
        }
        Var::concat(&expanded, axis)
    }
}
