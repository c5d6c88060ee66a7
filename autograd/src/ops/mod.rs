//! The primitive operations, one file per primitive and its adjoint (the op its rule
//! needs): the public `Var` method, its recording and its rule. Composite operations
//! (`composite`: softmax, var, gelu, comparisons, ...) are built from primitives and have
//! no rule of their own. `backward` dispatches each recorded `Op` to its rule.
//!
//! | file | primitives |
//! |---|---|
//! | `binary.rs` | `+ - * /` (broadcasting) |
//! | `unary.rs` | `neg exp ln sqrt abs sin cos tanh sigmoid relu leaky_relu elu erf softplus clamp powf powi`, `add_scalar mul_scalar` |
//! | `matmul.rs` | batched `matmul` (and the 1-D cases as reshapes around it) |
//! | `solve.rs` | batched linear `solve` (`torch.linalg.solve`; its rule a `solve` with `Aᵀ` and a `matmul`) |
//! | `linear.rs` | no primitive: `linear` and `linear_relu` (`x · W + b`), `matmul` and `+` when recording gradients, one fused kernel when not |
//! | `reshape.rs`, `permute.rs`, `broadcast_to.rs` | movement |
//! | `sum.rs`, `extremum.rs` | `sum`, `max`/`min` over axes |
//! | `prod.rs` | `prod` over all elements or one axis (a rule without division, exact at zeros) |
//! | `slice.rs` | `slice` and its adjoint `pad` |
//! | `concat.rs` | `concat` |
//! | `index_select.rs` | `index_select` and its adjoint `index_add` |
//! | `gather.rs` | `gather` and its adjoint `scatter_add` |
//! | `select.rs` | `where_` |
//! | `conv2d.rs` | `conv2d` and its adjoints `conv2d_input_grad`, `conv2d_weight_grad` |
//! | `avg_pool2d.rs` | `avg_pool2d` and its adjoint |
//! | `max_pool2d.rs` | `max_pool2d` (its rule a `scatter_add`) |
//! | `window.rs` | the options of convolution and pooling (no primitive) |
//! | `custom.rs` | user-defined [`CustomOp`](custom::CustomOp)s |
//!
//! A rule receives the output's gradient `g`, reads values and shapes through a
//! `RuleContext`, and hands each input's gradient to `emit`. It is written once against
//! `Operand` (elementwise rules) or `Structural`, so it serves plain arrays, one-element
//! numbers and differentiable `Var`s alike.

pub(crate) mod avg_pool2d;
pub(crate) mod axes;
pub(crate) mod binary;
pub(crate) mod broadcast_to;
pub(crate) mod composite;
pub(crate) mod concat;
pub(crate) mod conv2d;
pub mod custom;
pub(crate) mod extremum;
pub(crate) mod gather;
pub(crate) mod index_select;
pub(crate) mod linear;
pub(crate) mod matmul;
pub(crate) mod max_pool2d;
pub(crate) mod permute;
pub(crate) mod prod;
pub(crate) mod reshape;
pub(crate) mod select;
pub(crate) mod slice;
pub(crate) mod solve;
pub(crate) mod sum;
pub(crate) mod unary;
pub(crate) mod window;

use crate::kernels::Dims;

/// What a rule can ask about the graph: the operand for a node's value, its shape, and
/// whether a node needs a gradient.
pub(crate) trait RuleContext<O> {
    fn value(&self, index: usize) -> O;
    fn shape(&self, index: usize) -> Dims;
    fn needs(&self, index: usize) -> bool;
}
