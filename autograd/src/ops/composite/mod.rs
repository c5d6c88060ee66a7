//! Composite operations: built from the primitives, so their gradients follow from the
//! primitives' rules and they have none of their own.
//!
//! | file | composites |
//! |---|---|
//! | `arith.rs` | `+ - * /` with a number on either side, `rsub rdiv` |
//! | `activation.rs` | `square recip gelu gelu_tanh log_sigmoid` |
//! | `reduce.rs` | `mean var` |
//! | `softmax.rs` | `logsumexp softmax log_softmax` |
//! | `shape.rs` | `transpose t squeeze unsqueeze flatten_from` |
//! | `join.rs` | `stack` |
//! | `compare.rs` | comparisons (constant masks), `maximum minimum` |
//! | `pool.rs` | `max_pool2d` (a gather at each window's maximum), `global_avg_pool2d` |

mod activation;
mod arith;
mod compare;
mod join;
mod pool;
mod reduce;
mod shape;
mod softmax;
