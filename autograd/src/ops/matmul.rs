//! Matrix multiplication: one batched primitive (≥ 2-D operands, broadcast batch axes);
//! the 1-D cases of `torch.matmul` are reshapes around it.

use super::RuleContext;
use crate::graph::Op;
use crate::kernels::matmul::matmul;
use crate::operand::Structural;
use crate::{Float, Var};

/// d(AB) = dA B + A dB, so ∂/∂A = G Bᵀ and ∂/∂B = Aᵀ G (summed over broadcast batches).
pub(crate) fn rule<T: Float, O: Structural<T>>(
    a: usize,
    b: usize,
    g: O,
    ctx: &impl RuleContext<O>,
    emit: &mut impl FnMut(usize, O),
) {
    match (ctx.needs(a), ctx.needs(b)) {
        (true, true) => {
            let (ga, gb) = O::matmul_grads(g, ctx.value(a), ctx.value(b));
            emit(a, ga.sum_to(&ctx.shape(a)));
            emit(b, gb.sum_to(&ctx.shape(b)));
        }
        (true, false) => emit(a, g.matmul_nt(ctx.value(b)).sum_to(&ctx.shape(a))),
        (false, true) => emit(b, ctx.value(a).matmul_tn(g).sum_to(&ctx.shape(b))),
        (false, false) => {}
    }
}

impl<'t, T: Float> Var<'t, T> {
    /// The matrix product with `torch.matmul`'s rules: 1-D · 1-D is a dot product, a 1-D
    /// operand is treated as a row (left) or column (right) vector and that axis removed,
    /// and leading batch axes broadcast.
    ///
    /// Panics naming both shapes when the inner dimensions differ.
    #[track_caller]
    pub fn matmul(self, other: Var<'t, T>) -> Var<'t, T> {
        let (ra, rb) = (self.ndim(), other.ndim());
        assert!(
            ra >= 1 && rb >= 1,
            "matmul: both operands need at least 1 dimension, got shapes {:?} and {:?}{}",
            self.shape(),
            other.shape(),
            crate::scope::scope_suffix()
        );
        let a = if ra == 1 { self.unsqueeze(0) } else { self };
        let b = if rb == 1 { other.unsqueeze(-1) } else { other };
        // The inner dimensions, read without copying the shapes (they are formatted only
        // for the panic message).
        let ka = self.value().shape()[ra - 1];
        let kb = other.value().shape()[if rb == 1 { 0 } else { rb - 2 }];
        assert!(
            ka == kb,
            "matmul: shapes {:?} and {:?} are incompatible (inner dimensions {ka} and {kb} differ){}",
            self.shape(),
            other.shape(),
            crate::scope::scope_suffix()
        );
        let mut out = T::record_matmul(a, b);
        if rb == 1 {
            out = out.squeeze(-1);
        }
        if ra == 1 {
            out = out.squeeze(if rb == 1 { -1 } else { -2 });
        }
        out
    }
}

/// Records the batched primitive `a @ b`: both operands have at least 2 dimensions.
#[track_caller]
pub(crate) fn record<'t, T: Float>(a: Var<'t, T>, b: Var<'t, T>) -> Var<'t, T> {
    a.tape.check_same_tape(b.tape, "matmul");
    let nodes = a.tape.nodes();
    let value = matmul(
        nodes[a.index].value.array().view(),
        nodes[b.index].value.array().view(),
    );
    drop(nodes);
    a.tape.record(value, Op::MatMul(a.index, b.index))
}
