//! im2col and its adjoint col2im: the column matrix of a chunk of images and one group.
//!
//! For a chunk of `B` images, the column matrix of group `g` has `k = C/groups · kh · kw`
//! rows and `B · OH · OW` columns (row stride `ld`): row `(c, i, j)`, column
//! `b · OH·OW + (oh, ow)` holds the input element of image `b`, channel `g·C/groups + c`
//! that weight `(c, i, j)` meets at output `(oh, ow)`, zero in the padding. One image fills
//! the columns `b · OH·OW ..`; the functions here write or read one image's block.

use super::Conv2dGeometry;
use crate::Float;

/// `[lo, hi)`: the outputs `o < out_len` whose tap at `offset` (`i·d`) lands inside the
/// input, `pad ≤ o·stride + offset < in_len + pad`; the others read padding.
fn valid_range(
    out_len: usize,
    in_len: usize,
    stride: usize,
    pad: usize,
    offset: usize,
) -> (usize, usize) {
    let lo = if offset >= pad {
        0
    } else {
        (pad - offset).div_ceil(stride)
    };
    let hi = if in_len + pad <= offset {
        0
    } else {
        (in_len + pad - offset).div_ceil(stride)
    };
    let lo = lo.min(out_len);
    (lo, hi.min(out_len).max(lo))
}

/// One image's block of a column matrix: its row stride and first column.
#[derive(Clone, Copy)]
pub(super) struct Block {
    /// Row stride of the column matrix: `B · OH · OW`.
    pub(super) ld: usize,
    /// The block's first column: `b · OH · OW`.
    pub(super) first: usize,
}

/// Visits one image's block of the column matrix: calls `f(start, c, ih, lo, hi, first_iw)`
/// for every segment of `OW` columns (row `(c, i, j)`, output row `r`, starting at element
/// `start` of the column matrix) that reads input row `ih` of channel `c`; its columns
/// `lo..hi` read input columns `first_iw`, `first_iw + s_w`, ... Columns outside `lo..hi`,
/// and segments never visited, read padding.
#[inline]
fn for_each_segment(
    g: &Conv2dGeometry,
    cg: usize,
    block: Block,
    mut f: impl FnMut(usize, usize, usize, usize, usize, usize),
) {
    let [h, w] = g.input_hw;
    let [kh, kw] = g.kernel_hw;
    let [oh, ow] = g.output_hw;
    let [sh, sw] = g.stride;
    let [ph, pw] = g.padding;
    let [dh, dw] = g.dilation;
    let mut row = 0;
    for c in 0..cg {
        for i in 0..kh {
            let (rlo, rhi) = valid_range(oh, h, sh, ph, i * dh);
            for j in 0..kw {
                let (lo, hi) = valid_range(ow, w, sw, pw, j * dw);
                if lo < hi {
                    for r in rlo..rhi {
                        let ih = r * sh + i * dh - ph;
                        let first_iw = lo * sw + j * dw - pw;
                        f(
                            row * block.ld + block.first + r * ow,
                            c,
                            ih,
                            lo,
                            hi,
                            first_iw,
                        );
                    }
                }
                row += 1;
            }
        }
    }
}

/// Writes one image's block of the column matrix `col`, `x` being that image's `C/groups`
/// input planes of the group.
pub(super) fn im2col<T: Float>(
    x: &[T],
    g: &Conv2dGeometry,
    cg: usize,
    col: &mut [T],
    block: Block,
) {
    let [h, w] = g.input_hw;
    let p = g.out_plane();
    let sw = g.stride[1];
    // Padding reads zero: clear the block, then copy the taps that land inside the input.
    for row in 0..g.col_rows() {
        col[row * block.ld + block.first..][..p].fill(T::zero());
    }
    for_each_segment(g, cg, block, |start, c, ih, lo, hi, first_iw| {
        let dst = &mut col[start + lo..start + hi];
        let src = &x[(c * h + ih) * w..(c * h + ih + 1) * w];
        if sw == 1 {
            dst.copy_from_slice(&src[first_iw..first_iw + (hi - lo)]);
        } else {
            for (d, s) in dst.iter_mut().zip(src[first_iw..].iter().step_by(sw)) {
                *d = *s;
            }
        }
    });
}

/// Adds one image's block of the column matrix `col` into that image's input planes of the
/// group, `dx`: the adjoint of [`im2col`].
pub(super) fn col2im<T: Float>(
    col: &[T],
    g: &Conv2dGeometry,
    cg: usize,
    dx: &mut [T],
    block: Block,
) {
    let [h, w] = g.input_hw;
    let sw = g.stride[1];
    for_each_segment(g, cg, block, |start, c, ih, lo, hi, first_iw| {
        let src = &col[start + lo..start + hi];
        let dst = &mut dx[(c * h + ih) * w..(c * h + ih + 1) * w];
        if sw == 1 {
            for (d, s) in dst[first_iw..first_iw + (hi - lo)].iter_mut().zip(src) {
                *d += *s;
            }
        } else {
            for (d, s) in dst[first_iw..].iter_mut().step_by(sw).zip(src) {
                *d += *s;
            }
        }
    });
}
