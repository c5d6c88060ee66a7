//! Arrays that start from zeros and are then added into block by block (a gradient
//! scattered back plane by plane, an input gradient image by image), zeroed one block at a
//! time right before the block's work.
//!
//! Zeroing the whole array first (`ArrayD::zeros`: `calloc`, which on reused heap memory is
//! a `memset`) is a separate pass over memory that the work then reads again; a block of a
//! few KiB zeroed just before its work is still in cache when the work adds into it.

use std::mem::MaybeUninit;

use super::fork_join::join;
use super::pool;
use crate::Float;

/// `blocks · len` elements built block by block: block `b` is zeroed, then
/// `work(&mut state, b, block)` adds into it. With `mid`, blocks `0..mid` and `mid..blocks`
/// run side by side on two threads ([`join`]; one after the other on one), each half with
/// its own `state()`; each block's work is the same either way.
pub(crate) fn zeroed_blocks<T: Float, S>(
    blocks: usize,
    len: usize,
    mid: Option<usize>,
    state: impl Fn() -> S + Sync,
    work: impl Fn(&mut S, usize, &mut [T]) + Sync,
) -> Vec<T> {
    let total = blocks * len;
    if len == 0 {
        return Vec::new();
    }
    let mut data: Vec<T> = pool::vec(total);
    let half = |first: usize, part: &mut [MaybeUninit<T>]| {
        let mut state = state();
        for (b, block) in part.chunks_exact_mut(len).enumerate() {
            work(&mut state, first + b, zeroed(block));
        }
    };
    let spare = &mut data.spare_capacity_mut()[..total];
    match mid {
        Some(mid) if mid < blocks => {
            let (first, second) = spare.split_at_mut(mid * len);
            join(|| half(0, first), || half(mid, second));
        }
        _ => half(0, spare),
    }
    // SAFETY: the halves' `chunks_exact_mut(len)` cover all `total` elements of `spare`
    // (both are whole numbers of blocks), and `zeroed` wrote each of them.
    unsafe { data.set_len(total) };
    data
}

/// Writes zeros over `block` and returns it as initialized.
fn zeroed<T: Float>(block: &mut [MaybeUninit<T>]) -> &mut [T] {
    block.fill(MaybeUninit::new(T::zero()));
    // SAFETY: every element was written just above, and `MaybeUninit<T>` has `T`'s layout.
    unsafe { &mut *(std::ptr::from_mut(block) as *mut [T]) }
}

#[cfg(test)]
mod tests {
    use super::zeroed_blocks;
    use crate::kernels::testing::on_threads;

    #[test]
    fn each_block_starts_from_zeros_and_halves_give_the_same_result() {
        for (blocks, len, mid) in [(5, 3, Some(2)), (5, 3, None), (4, 1, Some(4)), (0, 3, None)] {
            for threads in [1, 2] {
                let out = on_threads(threads, || {
                    zeroed_blocks(
                        blocks,
                        len,
                        mid,
                        || 0.5,
                        |offset: &mut f64, b, block: &mut [f64]| {
                            assert!(block.iter().all(|&x| x == 0.0));
                            block.iter_mut().for_each(|x| *x += b as f64 + *offset);
                        },
                    )
                });
                let want: Vec<f64> = (0..blocks)
                    .flat_map(|b| std::iter::repeat_n(b as f64 + 0.5, len))
                    .collect();
                assert_eq!(out, want, "{blocks} blocks of {len}, mid {mid:?}");
            }
        }
        assert!(zeroed_blocks(3, 0, None, || (), |_, _, _: &mut [f32]| {}).is_empty());
    }
}
