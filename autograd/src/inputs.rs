//! [`Inputs`]: the input variables that [`gradcheck`](crate::gradcheck),
//! [`gradgradcheck`](crate::gradgradcheck) and the [`functional`](crate::functional)
//! transforms hand to the function they differentiate.

use std::marker::PhantomData;
use std::ops::Deref;

use crate::{Float, Var};

/// The input variables of a function given to [`gradcheck`](crate::gradcheck),
/// [`gradgradcheck`](crate::gradgradcheck) or a [`functional`](crate::functional)
/// transform, one per input array: a slice of [`Var`]s (`v[0]`, `v.len()`, `v.iter()`, and
/// `&[Var]` wherever a function takes one).
///
/// Such a function is called with tapes of lifetimes only the checker knows (`for<'t>`).
/// `Inputs<'t, 'env, T>` carries the bound `'env: 't` — what the function captures
/// (`'env`) outlives every tape it is called with — so the function may borrow a layer, a
/// [`Param`](crate::Param) or an array from its environment for the tape's lifetime, as
/// `std::thread::scope`'s `Scope<'scope, 'env>` lets a thread borrow its caller's locals.
/// Without it, `|_tape, v| layer.forward(v[0])` would need a `layer` that lives forever.
///
/// ```
/// use ndarray::array;
/// use tapegrad_autograd::{GradcheckOptions, Inputs, Param, Tape, Var, gradcheck};
///
/// let w = Param::new("w", array![[0.5_f64, -1.0], [2.0, 0.25]].into_dyn());
/// let target = array![[1.0, 0.0]].into_dyn();
/// // Borrows `w` and `target` for each tape's lifetime.
/// gradcheck(
///     |tape, v| (v[0].matmul(tape.param(&w)).tanh() - tape.constant_ref(&target)).square().sum(),
///     &[array![[0.3, -1.2]].into_dyn()],
///     &GradcheckOptions::default(),
/// )
/// .unwrap();
///
/// // A named function takes `&Inputs<'t, '_, f64>`.
/// fn cube<'t>(_tape: &'t Tape<'t, f64>, v: &Inputs<'t, '_, f64>) -> Var<'t, f64> {
///     v[0].powi(3).sum()
/// }
/// gradcheck(cube, &[array![1.0, -2.0].into_dyn()], &GradcheckOptions::default()).unwrap();
/// ```
pub struct Inputs<'t, 'env: 't, T: Float> {
    vars: &'t [Var<'t, T>],
    env: PhantomData<&'env ()>,
}

impl<'t, 'env: 't, T: Float> Inputs<'t, 'env, T> {
    /// `vars` as the inputs of such a function, for calling it yourself (a test helper that
    /// evaluates the function a checker is given):
    ///
    /// ```
    /// use ndarray::array;
    /// use tapegrad_autograd::{Inputs, Tape, Var};
    ///
    /// fn f<'t>(_tape: &'t Tape<'t, f64>, v: &Inputs<'t, '_, f64>) -> Var<'t, f64> {
    ///     v[0] * v[1]
    /// }
    /// let tape = Tape::new();
    /// let vars = [tape.var(array![2.0].into_dyn()), tape.var(array![3.0].into_dyn())];
    /// assert_eq!(f(&tape, &Inputs::new(&vars)).item(), 6.0);
    /// ```
    pub fn new(vars: &'t [Var<'t, T>]) -> Self {
        Inputs {
            vars,
            env: PhantomData,
        }
    }

    /// The variables, for the tape's whole lifetime (a deref borrows them only as long as
    /// `self`).
    pub(crate) fn vars(&self) -> &'t [Var<'t, T>] {
        self.vars
    }
}

impl<'t, T: Float> Deref for Inputs<'t, '_, T> {
    type Target = [Var<'t, T>];

    fn deref(&self) -> &[Var<'t, T>] {
        self.vars
    }
}

impl<T: Float> std::fmt::Debug for Inputs<'_, '_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.vars).finish()
    }
}
