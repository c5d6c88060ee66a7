//! Comparisons (constant masks, no gradient) and the `maximum`/`minimum` built from them
//! with `where_`.

use crate::operand::Arr;
use crate::{Float, Var};

impl<'t, T: Float> Var<'t, T> {
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
    fn compare(self, other: Var<'t, T>, op: &str, f: impl Fn(T, T) -> bool + Sync) -> Var<'t, T> {
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
                let mask = self.value().mapv(|x| if x $op s { T::one() } else { T::zero() });
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
