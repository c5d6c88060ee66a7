//! Array kernels: pure functions of `ndarray` arrays that know nothing of tapes. The
//! only module of the crate where `unsafe` code may live (the `gemm` wrapper, the
//! fork-join helper, the outputs written without a fill by the convolution, max pooling and
//! `zeroed_blocks.rs`, and the blocks the buffer pool hands out again in `pool/`).
//!
//! | file | kernels |
//! |---|---|
//! | `elementwise.rs` | maps and broadcasting zips, in place or into new arrays |
//! | `reduce.rs` | sums over runs of axes, max/min over axes |
//! | `movement.rs` | broadcast shapes, padding |
//! | `index.rs` | `index_select`/`index_add`, `gather`/`scatter_add` |
//! | `matmul.rs` | the batched product over the last two axes |
//! | `gemm/` | the 2-D product: textbook loop, `gemm` crate or ndarray, threaded by size |
//! | `solve.rs` | the batched linear solve: elimination with partial pivoting, back substitution |
//! | `conv2d.rs` | im2col/col2im convolution, its input and weight gradients |
//! | `pool2d.rs` | max pooling with argmax indices, average pooling and its adjoint |
//! | `fork_join.rs` | two-thread fork-join with a spinning helper |
//! | `pool/` | the per-thread buffer pool kernels take outputs and workspaces from, and the owners that give blocks back to it |
//! | `zeroed_blocks.rs` | arrays zeroed block by block right before each block's work |
//! | `testing.rs` | helpers of the kernels' unit tests |

/// A shape or a list of axes, on the stack up to six (arrays of more axes are rare).
pub(crate) type Dims = smallvec::SmallVec<[usize; 6]>;

pub(crate) mod conv2d;
pub(crate) mod elementwise;
pub(crate) mod fork_join;
pub(crate) mod gemm;
pub(crate) mod index;
pub(crate) mod matmul;
pub(crate) mod movement;
pub(crate) mod pool;
pub(crate) mod pool2d;
pub(crate) mod reduce;
pub(crate) mod solve;
#[cfg(test)]
pub(crate) mod testing;
pub(crate) mod zeroed_blocks;
