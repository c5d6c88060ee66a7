//! The linear solve `X = A⁻¹ B` (`torch.linalg.solve`): one batched primitive on a matrix
//! of right-hand sides (≥ 2-D operands, broadcast batch axes); right-hand sides given as
//! vectors are reshapes around it, as the 1-D cases of `matmul` are.

use super::RuleContext;
use crate::graph::Op;
use crate::kernels::solve::solve;
use crate::operand::Structural;
use crate::{Float, Var};

/// A X = B gives dA X + A dX = dB, so dX = A⁻¹ (dB − dA X): ∂/∂B = A⁻ᵀ G and
/// ∂/∂A = −A⁻ᵀ G Xᵀ = −(∂/∂B) Xᵀ (each summed over broadcast batches).
pub(crate) fn rule<T: Float, O: Structural<T>>(
    a: usize,
    b: usize,
    out: usize,
    g: O,
    ctx: &impl RuleContext<O>,
    emit: &mut impl FnMut(usize, O),
) {
    let grad_a = |gb: O| gb.matmul_nt(ctx.value(out)).neg().sum_to(&ctx.shape(a));
    match (ctx.needs(a), ctx.needs(b)) {
        (true, true) => {
            let gb = ctx.value(a).solve_tn(g);
            emit(a, grad_a(gb.clone()));
            emit(b, gb.sum_to(&ctx.shape(b)));
        }
        (true, false) => emit(a, grad_a(ctx.value(a).solve_tn(g))),
        (false, true) => emit(b, ctx.value(a).solve_tn(g).sum_to(&ctx.shape(b))),
        (false, false) => {}
    }
}

impl<'t, T: Float> Var<'t, T> {
    /// The solution `X` of `A X = B`, with `self` as `A` and `b` as `B`, as
    /// `torch.linalg.solve(A, B)`. `A` is a square matrix `[n, n]` or a batch of them
    /// `[*, n, n]`; `B` is a matrix of right-hand sides `[*, n, k]` or a vector of them
    /// `[*, n]` (PyTorch's rule: `B` is a vector when it is 1-D, or has `A`'s shape without
    /// its last axis), and `X` has the same form. Batch axes broadcast, as in
    /// [`matmul`](Var::matmul).
    ///
    /// Computed by Gaussian elimination with partial pivoting (LAPACK's `gesv`). The
    /// gradient is another solve, with `Aᵀ`: `∂/∂B = A⁻ᵀ G` and `∂/∂A = −A⁻ᵀ G Xᵀ`, and it is
    /// differentiable again.
    ///
    /// A singular matrix, one whose elimination meets a zero pivot, gives a solution of NaN
    /// (and NaN gradients) where PyTorch raises an error: a value outside an op's domain is
    /// NaN here, as with `ln` of a negative number, and anomaly mode
    /// ([`Tape::set_anomaly_detection`](crate::Tape::set_anomaly_detection)) names the op
    /// that produced it. Only that matrix of a batch is NaN. A nearly singular matrix gives
    /// large and inaccurate values, as in PyTorch.
    ///
    /// Panics naming both shapes when `A` is not square, when `B` does not have `n` rows,
    /// or when the batch axes do not broadcast.
    ///
    /// ```
    /// use ndarray::array;
    /// use tapegrad_autograd::Tape;
    ///
    /// let tape = Tape::<f64>::new();
    /// let a = tape.var(array![[2.0, 1.0], [1.0, 3.0]].into_dyn());
    /// let b = tape.var(array![4.0, 7.0].into_dyn());
    /// let x = a.solve(b); // 2x + y = 4, x + 3y = 7
    /// assert_eq!(*x.value(), array![1.0, 2.0].into_dyn());
    ///
    /// // With L = Σ x: ∂L/∂b = A⁻ᵀ [1, 1] = [0.4, 0.2], ∂L/∂A = −(∂L/∂b) xᵀ.
    /// let grads = x.sum().backward();
    /// let want_b = array![0.4, 0.2];
    /// let want_a = array![[-0.4, -0.8], [-0.2, -0.4]];
    /// assert!(grads[b].iter().zip(&want_b).all(|(g, w)| (g - w).abs() < 1e-15));
    /// assert!(grads[a].iter().zip(&want_a).all(|(g, w)| (g - w).abs() < 1e-15));
    ///
    /// // A batch of two systems sharing one B; a singular A gives NaN.
    /// let batch = array![[[2.0, 1.0], [1.0, 3.0]], [[1.0, 2.0], [2.0, 4.0]]];
    /// let xs = tape.constant(batch.into_dyn()).solve(b).to_array();
    /// assert_eq!(xs.shape(), &[2, 2]);
    /// assert_eq!((xs[[0, 0]], xs[[0, 1]]), (1.0, 2.0));
    /// assert!(xs[[1, 0]].is_nan() && xs[[1, 1]].is_nan());
    /// ```
    #[track_caller]
    pub fn solve(self, b: Var<'t, T>) -> Var<'t, T> {
        self.tape.check_same_tape(b.tape, "solve");
        let (sa, sb) = (self.shape(), b.shape());
        let (ra, rb) = (sa.len(), sb.len());
        assert!(
            ra >= 2 && sa[ra - 1] == sa[ra - 2],
            "solve: A must be a square matrix or a batch of them, got shapes {sa:?} and {sb:?}{}",
            crate::scope::scope_suffix()
        );
        let n = sa[ra - 1];
        let vector = rb == 1 || (rb + 1 == ra && sb[..] == sa[..ra - 1]);
        let (rows, batch_b) = match (vector, rb) {
            (true, _) => (sb[rb - 1], &sb[..rb - 1]),
            (false, 2..) => (sb[rb - 2], &sb[..rb - 2]),
            (false, _) => (0, &sb[..0]),
        };
        assert!(
            rb >= 1 && rows == n,
            "solve: shapes {sa:?} and {sb:?} are incompatible (B needs {n} rows of right-hand \
             sides, as a matrix [*, {n}, k] or a vector [*, {n}]){}",
            crate::scope::scope_suffix()
        );
        assert!(
            broadcastable(&sa[..ra - 2], batch_b),
            "solve: shapes {sa:?} and {sb:?} are incompatible (batch axes {:?} and {batch_b:?} \
             cannot be broadcast together){}",
            &sa[..ra - 2],
            crate::scope::scope_suffix()
        );
        if vector {
            T::record_solve(self, b.unsqueeze(-1)).squeeze(-1)
        } else {
            T::record_solve(self, b)
        }
    }
}

/// Whether two batch shapes broadcast together (NumPy's rule, aligned from the end).
fn broadcastable(a: &[usize], b: &[usize]) -> bool {
    a.iter()
        .rev()
        .zip(b.iter().rev())
        .all(|(&x, &y)| x == y || x == 1 || y == 1)
}

/// Records the batched primitive `X = A⁻¹ B`: `a` is `[*, n, n]` and `b` `[*, n, k]`.
#[track_caller]
pub(crate) fn record<'t, T: Float>(a: Var<'t, T>, b: Var<'t, T>) -> Var<'t, T> {
    a.tape.check_same_tape(b.tape, "solve");
    let nodes = a.tape.nodes();
    let value = solve(
        nodes[a.index].value.array().view(),
        nodes[b.index].value.array().view(),
    );
    drop(nodes);
    a.tape.record(value, Op::Solve(a.index, b.index))
}
