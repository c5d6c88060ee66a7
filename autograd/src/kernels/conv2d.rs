//! Array kernels of 2-D convolution (PyTorch's `conv2d`: cross-correlation, zero padding,
//! stride, dilation, groups), with no tape: the forward map and its two adjoints.
//!
//! `y = conv(x, w)` is bilinear, so its derivatives are the same three maps:
//! - [`conv2d_forward`]: `y[n, o] = Σ_{c, i, j} w[o, c, i, j] · x[n, c, oh·s + i·d − p, ...]`;
//! - [`conv2d_input_grad`]: the transposed convolution, `x ↦ ⟨conv(x, w), g⟩`'s gradient;
//! - [`conv2d_weight_grad`]: `w ↦ ⟨conv(x, w), g⟩`'s gradient.
//!
//! All three go through im2col: for one image and one group, the matrix `col` of shape
//! `(C/groups · kh · kw) × (OH · OW)` holds in row `(c, i, j)` and column `(oh, ow)` the input
//! element that weight `(c, i, j)` meets at output `(oh, ow)` (zero in the padding). Then
//! `y = W · col`, `col_grad = Wᵀ · g` (scattered back by col2im), `w_grad = Σ_n g · colᵀ`, each
//! product through [`crate::kernels::gemm`].
//!
//! Images are processed in chunks whose column buffer stays under [`COLUMN_BUDGET_BYTES`], so
//! the workspace is bounded whatever the batch size. The products are one per image and group
//! whatever the chunk, and the weight gradient sums the images in order, so the results do not
//! depend on the chunking (bit for bit; tested). One product per image rather than one per
//! chunk (`W · [col₁ … col_B]`): on one core (its CPU time, load ~12 on the 2-core machine),
//! the bare products `64 × 288 × (B·196)` measured f64 18.0 GFLOP/s for B = 1 against
//! 16.3–18.8 for B = 2 to 32, f32 26.7 against 28.7–32.0 (within the run-to-run spread of the
//! kernels themselves, f32 forward 31–34 at one image per chunk), while a wide product's
//! result would depend on the chunk (the `gemm` crate's blocking and code path depend on the
//! sizes) and the weight gradient's sum over images would be reordered by it. Large products
//! thread inside [`crate::kernels::gemm`] by size.

// Used by the tests only until the op layer calls these kernels.
#![cfg_attr(not(test), allow(dead_code))]

use std::fmt;

use ndarray::{Array2, Array4, ArrayView2, ArrayView4, ArrayViewMut2, Axis, s};

use crate::Float;
use crate::kernels::gemm::mat_mul_into;

/// The column buffer of one chunk of images stays under this many bytes (at least one image
/// per chunk): 256 KB, a quarter of a core's 1 MB L2, chosen because `tests::timing` (one
/// thread, its CPU time, [32, 32, 14, 14] by 64 3×3 filters, f32) measured chunks of 1 and
/// 4 images (≤ 1 MB) alike and chunks of 18 images (4 MB, out of L2) 10–35 % slower (two
/// runs); the products being per image, larger chunks have nothing to gain.
const COLUMN_BUDGET_BYTES: usize = 256 << 10;

/// Stride, padding, dilation and groups of a 2-D convolution, with the sizes they were
/// checked against (everything but the batch size).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Conv2dGeometry {
    /// Step between windows, `[h, w]`.
    pub(crate) stride: [usize; 2],
    /// Zeros added on each side, `[h, w]`.
    pub(crate) padding: [usize; 2],
    /// Step between the taps of a window, `[h, w]`.
    pub(crate) dilation: [usize; 2],
    /// Channel groups: input and output channels are split in this many groups, output group
    /// `k` seeing only input group `k`.
    pub(crate) groups: usize,
    /// Input channels `C`.
    pub(crate) in_channels: usize,
    /// Output channels `O`.
    pub(crate) out_channels: usize,
    /// Input height and width.
    pub(crate) input_hw: [usize; 2],
    /// Kernel height and width.
    pub(crate) kernel_hw: [usize; 2],
    /// Output height and width.
    pub(crate) output_hw: [usize; 2],
}

/// Why a convolution's shapes or parameters are invalid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Conv2dError {
    /// The input is not `[N, C, H, W]`.
    InputRank(Vec<usize>),
    /// The weight is not `[O, C/groups, kh, kw]`.
    WeightRank(Vec<usize>),
    /// A stride is zero.
    ZeroStride([usize; 2]),
    /// A dilation is zero.
    ZeroDilation([usize; 2]),
    /// `groups` is zero.
    ZeroGroups,
    /// The kernel has a zero height or width.
    EmptyKernel([usize; 2]),
    /// The input channels are not a multiple of `groups`.
    InChannelsNotDivisible {
        /// `C`.
        channels: usize,
        /// `groups`.
        groups: usize,
    },
    /// The output channels are not a multiple of `groups`.
    OutChannelsNotDivisible {
        /// `O`.
        channels: usize,
        /// `groups`.
        groups: usize,
    },
    /// The weight's second axis is not `C / groups`.
    WeightChannels {
        /// `C / groups`.
        expected: usize,
        /// The weight's second axis.
        got: usize,
    },
    /// The dilated kernel is larger than the padded input along an axis.
    KernelTooLarge {
        /// `"height"` or `"width"`.
        axis: &'static str,
        /// The dilated kernel extent `d·(k − 1) + 1`.
        extent: usize,
        /// The padded input size `H + 2p`.
        padded: usize,
    },
}

impl fmt::Display for Conv2dError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InputRank(shape) => write!(f, "input {shape:?} is not [N, C, H, W]"),
            Self::WeightRank(shape) => write!(f, "weight {shape:?} is not [O, C/groups, kh, kw]"),
            Self::ZeroStride(s) => write!(f, "stride {s:?} has a zero"),
            Self::ZeroDilation(d) => write!(f, "dilation {d:?} has a zero"),
            Self::ZeroGroups => write!(f, "groups is 0"),
            Self::EmptyKernel(k) => write!(f, "kernel size {k:?} has a zero"),
            Self::InChannelsNotDivisible { channels, groups } => {
                write!(
                    f,
                    "{channels} input channels are not divisible by {groups} groups"
                )
            }
            Self::OutChannelsNotDivisible { channels, groups } => {
                write!(
                    f,
                    "{channels} output channels are not divisible by {groups} groups"
                )
            }
            Self::WeightChannels { expected, got } => write!(
                f,
                "the weight has {got} input channels per group, the input and groups give {expected}"
            ),
            Self::KernelTooLarge {
                axis,
                extent,
                padded,
            } => write!(
                f,
                "the kernel's {axis} ({extent} with dilation) exceeds the padded input's ({padded})"
            ),
        }
    }
}

impl Conv2dGeometry {
    /// Checks a convolution of an input of shape `[N, C, H, W]` by a weight of shape
    /// `[O, C/groups, kh, kw]` and returns its geometry and the output shape `[N, O, OH, OW]`,
    /// `OH = (H + 2p − d·(kh − 1) − 1) / s + 1` (PyTorch's).
    pub(crate) fn new(
        x_shape: &[usize],
        w_shape: &[usize],
        stride: [usize; 2],
        padding: [usize; 2],
        dilation: [usize; 2],
        groups: usize,
    ) -> Result<(Self, [usize; 4]), Conv2dError> {
        let &[n, c, h, w] = x_shape else {
            return Err(Conv2dError::InputRank(x_shape.to_vec()));
        };
        let &[o, cg, kh, kw] = w_shape else {
            return Err(Conv2dError::WeightRank(w_shape.to_vec()));
        };
        if stride.contains(&0) {
            return Err(Conv2dError::ZeroStride(stride));
        }
        if dilation.contains(&0) {
            return Err(Conv2dError::ZeroDilation(dilation));
        }
        if groups == 0 {
            return Err(Conv2dError::ZeroGroups);
        }
        if kh == 0 || kw == 0 {
            return Err(Conv2dError::EmptyKernel([kh, kw]));
        }
        if c % groups != 0 {
            return Err(Conv2dError::InChannelsNotDivisible {
                channels: c,
                groups,
            });
        }
        if o % groups != 0 {
            return Err(Conv2dError::OutChannelsNotDivisible {
                channels: o,
                groups,
            });
        }
        if cg != c / groups {
            return Err(Conv2dError::WeightChannels {
                expected: c / groups,
                got: cg,
            });
        }
        let mut output_hw = [0; 2];
        for (axis, name) in ["height", "width"].into_iter().enumerate() {
            let extent = dilation[axis] * ([kh, kw][axis] - 1) + 1;
            let padded = [h, w][axis] + 2 * padding[axis];
            if extent > padded {
                return Err(Conv2dError::KernelTooLarge {
                    axis: name,
                    extent,
                    padded,
                });
            }
            output_hw[axis] = (padded - extent) / stride[axis] + 1;
        }
        let geometry = Self {
            stride,
            padding,
            dilation,
            groups,
            in_channels: c,
            out_channels: o,
            input_hw: [h, w],
            kernel_hw: [kh, kw],
            output_hw,
        };
        Ok((geometry, geometry.output_shape(n)))
    }

    /// `[n, C, H, W]`.
    pub(crate) fn input_shape(&self, n: usize) -> [usize; 4] {
        [n, self.in_channels, self.input_hw[0], self.input_hw[1]]
    }

    /// `[O, C/groups, kh, kw]`.
    pub(crate) fn weight_shape(&self) -> [usize; 4] {
        let [kh, kw] = self.kernel_hw;
        [self.out_channels, self.in_channels / self.groups, kh, kw]
    }

    /// `[n, O, OH, OW]`.
    pub(crate) fn output_shape(&self, n: usize) -> [usize; 4] {
        [n, self.out_channels, self.output_hw[0], self.output_hw[1]]
    }

    /// Rows of the column matrix: `C/groups · kh · kw`.
    fn col_rows(&self) -> usize {
        self.in_channels / self.groups * self.kernel_hw[0] * self.kernel_hw[1]
    }

    /// Columns of one image's column matrix: `OH · OW`.
    fn out_plane(&self) -> usize {
        self.output_hw[0] * self.output_hw[1]
    }

    /// `H · W`.
    fn in_plane(&self) -> usize {
        self.input_hw[0] * self.input_hw[1]
    }

    /// A 1×1 kernel with stride 1 and no padding: the column matrix is the input itself.
    fn is_pointwise(&self) -> bool {
        self.kernel_hw == [1, 1] && self.stride == [1, 1] && self.padding == [0, 0]
    }

    /// Images per chunk for a column budget of `budget` bytes (at least one).
    fn images_per_chunk<T>(&self, budget: usize) -> usize {
        let per_image = self.groups * self.col_rows() * self.out_plane() * size_of::<T>();
        (budget / per_image.max(1)).max(1)
    }
}

/// `conv2d(x, w)` without bias, PyTorch's semantics: `x` is `[N, C, H, W]`, `w` is
/// `[O, C/groups, kh, kw]` (shapes checked by `g`), the result `[N, O, OH, OW]`.
pub(crate) fn conv2d_forward<T: Float>(
    x: ArrayView4<'_, T>,
    w: ArrayView4<'_, T>,
    g: &Conv2dGeometry,
) -> Array4<T> {
    forward_chunked(x, w, g, g.images_per_chunk::<T>(COLUMN_BUDGET_BYTES))
}

/// The gradient of `⟨conv2d(x, w), grad_out⟩` with respect to `x` (of shape `x_shape`): the
/// transposed convolution of `grad_out` by `w`.
pub(crate) fn conv2d_input_grad<T: Float>(
    grad_out: ArrayView4<'_, T>,
    w: ArrayView4<'_, T>,
    x_shape: [usize; 4],
    g: &Conv2dGeometry,
) -> Array4<T> {
    input_grad_chunked(
        grad_out,
        w,
        x_shape,
        g,
        g.images_per_chunk::<T>(COLUMN_BUDGET_BYTES),
    )
}

/// The gradient of `⟨conv2d(x, w), grad_out⟩` with respect to `w` (of shape `w_shape`).
pub(crate) fn conv2d_weight_grad<T: Float>(
    x: ArrayView4<'_, T>,
    grad_out: ArrayView4<'_, T>,
    w_shape: [usize; 4],
    g: &Conv2dGeometry,
) -> Array4<T> {
    weight_grad_chunked(
        x,
        grad_out,
        w_shape,
        g,
        g.images_per_chunk::<T>(COLUMN_BUDGET_BYTES),
    )
}

#[track_caller]
fn check_shape(what: &str, got: &[usize], want: [usize; 4]) {
    assert!(
        got == want,
        "conv2d kernel: {what} has shape {got:?}, the geometry gives {want:?}"
    );
}

/// Sizes the three kernels share: `(k, p, cg, og, hw)` = column rows `C/groups · kh · kw`,
/// output plane `OH · OW`, input and output channels per group, input plane `H · W`.
fn sizes(g: &Conv2dGeometry) -> (usize, usize, usize, usize, usize) {
    (
        g.col_rows(),
        g.out_plane(),
        g.in_channels / g.groups,
        g.out_channels / g.groups,
        g.in_plane(),
    )
}

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

/// Visits the column matrix of one image and group: calls `f(seg, c, ih, lo, hi, first_iw)`
/// for every segment of `OW` columns (row `(c, i, j)` of the column matrix, output row `r`:
/// `seg = row·OH + r`) that reads input row `ih` of channel `c`; its columns `lo..hi` read
/// input columns `first_iw`, `first_iw + s_w`, ... Columns outside `lo..hi`, and segments
/// never visited, read padding.
#[inline]
fn for_each_segment(
    g: &Conv2dGeometry,
    cg: usize,
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
                if lo == hi {
                    row += 1;
                    continue;
                }
                for r in rlo..rhi {
                    let ih = r * sh + i * dh - ph;
                    let first_iw = lo * sw + j * dw - pw;
                    // `row·OH + r`: the segment's index in units of `OW`.
                    f(row * oh + r, c, ih, lo, hi, first_iw);
                }
                row += 1;
            }
        }
    }
}

/// Writes the column matrix (`k × p`, row-major) of one image and group, `x` being that
/// group's `C/groups` input planes.
fn im2col<T: Float>(x: &[T], g: &Conv2dGeometry, cg: usize, col: &mut [T]) {
    let [h, w] = g.input_hw;
    let ow = g.output_hw[1];
    let sw = g.stride[1];
    // Padding reads zero: clear, then copy the taps that land inside the input.
    col.fill(T::zero());
    for_each_segment(g, cg, |seg, c, ih, lo, hi, first_iw| {
        let dst = &mut col[seg * ow + lo..seg * ow + hi];
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

/// Adds the column matrix `col` (`k × p`) of one image and group into that group's input
/// planes `dx`: the adjoint of [`im2col`].
fn col2im<T: Float>(col: &[T], g: &Conv2dGeometry, cg: usize, dx: &mut [T]) {
    let [h, w] = g.input_hw;
    let ow = g.output_hw[1];
    let sw = g.stride[1];
    for_each_segment(g, cg, |seg, c, ih, lo, hi, first_iw| {
        let src = &col[seg * ow + lo..seg * ow + hi];
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

/// [`conv2d_forward`] with `chunk` images per column buffer.
fn forward_chunked<T: Float>(
    x: ArrayView4<'_, T>,
    w: ArrayView4<'_, T>,
    g: &Conv2dGeometry,
    chunk: usize,
) -> Array4<T> {
    let n = x.len_of(Axis(0));
    check_shape("the input", x.shape(), g.input_shape(n));
    check_shape("the weight", w.shape(), g.weight_shape());
    let mut out = Array4::zeros(g.output_shape(n));
    let (k, p, cg, og, hw) = sizes(g);
    if out.is_empty() || k == 0 {
        return out;
    }
    let x = x.as_standard_layout();
    let xs = x.as_slice().expect("standard layout");
    let w = w.as_standard_layout();
    let wm = ArrayView2::from_shape((g.out_channels, k), w.as_slice().expect("standard layout"))
        .expect("O · k elements");
    let groups = g.groups;
    let pointwise = g.is_pointwise();
    let mut col = vec![
        T::zero();
        if pointwise {
            0
        } else {
            chunk.min(n) * groups * k * p
        }
    ];
    for start in (0..n).step_by(chunk) {
        let images = chunk.min(n - start);
        if !pointwise {
            for (b, gi) in (0..images).flat_map(|b| (0..groups).map(move |gi| (b, gi))) {
                let xg = &xs[((start + b) * groups + gi) * cg * hw..][..cg * hw];
                im2col(xg, g, cg, &mut col[(b * groups + gi) * k * p..][..k * p]);
            }
        }
        for (b, gi) in (0..images).flat_map(|b| (0..groups).map(move |gi| (b, gi))) {
            let cols = if pointwise {
                &xs[((start + b) * groups + gi) * cg * hw..][..cg * hw]
            } else {
                &col[(b * groups + gi) * k * p..][..k * p]
            };
            let cols = ArrayView2::from_shape((k, p), cols).expect("k · p elements");
            let mut y = out.slice_mut(s![start + b, gi * og..(gi + 1) * og, .., ..]);
            let mut y = y
                .view_mut()
                .into_shape_with_order((og, p))
                .expect("contiguous output");
            mat_mul_into(&wm.slice(s![gi * og..(gi + 1) * og, ..]), &cols, &mut y);
        }
    }
    out
}

/// [`conv2d_input_grad`] with `chunk` images per column buffer.
fn input_grad_chunked<T: Float>(
    grad_out: ArrayView4<'_, T>,
    w: ArrayView4<'_, T>,
    x_shape: [usize; 4],
    g: &Conv2dGeometry,
    chunk: usize,
) -> Array4<T> {
    let n = x_shape[0];
    check_shape("the input", &x_shape, g.input_shape(n));
    check_shape("the output gradient", grad_out.shape(), g.output_shape(n));
    check_shape("the weight", w.shape(), g.weight_shape());
    let mut dx = Array4::zeros(x_shape);
    let (k, p, cg, og, hw) = sizes(g);
    if dx.is_empty() || p == 0 || og == 0 {
        return dx;
    }
    let gr = grad_out.as_standard_layout();
    let gs = gr.as_slice().expect("standard layout");
    let w = w.as_standard_layout();
    let wm = ArrayView2::from_shape((g.out_channels, k), w.as_slice().expect("standard layout"))
        .expect("O · k elements");
    let dxs = dx.as_slice_mut().expect("fresh array");
    let groups = g.groups;
    let pointwise = g.is_pointwise();
    let mut col = vec![
        T::zero();
        if pointwise {
            0
        } else {
            chunk.min(n) * groups * k * p
        }
    ];
    for start in (0..n).step_by(chunk) {
        let images = chunk.min(n - start);
        for (b, gi) in (0..images).flat_map(|b| (0..groups).map(move |gi| (b, gi))) {
            let go = &gs[((start + b) * groups + gi) * og * p..][..og * p];
            let go = ArrayView2::from_shape((og, p), go).expect("og · p elements");
            let wt = wm.slice(s![gi * og..(gi + 1) * og, ..]).reversed_axes();
            let dst = if pointwise {
                &mut dxs[((start + b) * groups + gi) * cg * hw..][..cg * hw]
            } else {
                &mut col[(b * groups + gi) * k * p..][..k * p]
            };
            let mut dst = ArrayViewMut2::from_shape((k, p), dst).expect("k · p elements");
            mat_mul_into(&wt, &go, &mut dst);
        }
        if !pointwise {
            for (b, gi) in (0..images).flat_map(|b| (0..groups).map(move |gi| (b, gi))) {
                let dxg = &mut dxs[((start + b) * groups + gi) * cg * hw..][..cg * hw];
                col2im(&col[(b * groups + gi) * k * p..][..k * p], g, cg, dxg);
            }
        }
    }
    dx
}

/// [`conv2d_weight_grad`] with `chunk` images per column buffer. The images' contributions
/// are summed in image order, one product per image and group, whatever the chunk.
fn weight_grad_chunked<T: Float>(
    x: ArrayView4<'_, T>,
    grad_out: ArrayView4<'_, T>,
    w_shape: [usize; 4],
    g: &Conv2dGeometry,
    chunk: usize,
) -> Array4<T> {
    let n = x.len_of(Axis(0));
    check_shape("the input", x.shape(), g.input_shape(n));
    check_shape("the output gradient", grad_out.shape(), g.output_shape(n));
    check_shape("the weight", &w_shape, g.weight_shape());
    let mut dw = Array4::zeros(w_shape);
    let (k, p, cg, og, hw) = sizes(g);
    if dw.is_empty() || n == 0 || p == 0 {
        return dw;
    }
    let x = x.as_standard_layout();
    let xs = x.as_slice().expect("standard layout");
    let gr = grad_out.as_standard_layout();
    let gs = gr.as_slice().expect("standard layout");
    let mut dwm = dw
        .view_mut()
        .into_shape_with_order((g.out_channels, k))
        .expect("fresh array");
    let groups = g.groups;
    let pointwise = g.is_pointwise();
    let mut col = vec![
        T::zero();
        if pointwise {
            0
        } else {
            chunk.min(n) * groups * k * p
        }
    ];
    let mut product = Array2::zeros((og, k));
    for start in (0..n).step_by(chunk) {
        let images = chunk.min(n - start);
        if !pointwise {
            for (b, gi) in (0..images).flat_map(|b| (0..groups).map(move |gi| (b, gi))) {
                let xg = &xs[((start + b) * groups + gi) * cg * hw..][..cg * hw];
                im2col(xg, g, cg, &mut col[(b * groups + gi) * k * p..][..k * p]);
            }
        }
        for (b, gi) in (0..images).flat_map(|b| (0..groups).map(move |gi| (b, gi))) {
            let cols = if pointwise {
                &xs[((start + b) * groups + gi) * cg * hw..][..cg * hw]
            } else {
                &col[(b * groups + gi) * k * p..][..k * p]
            };
            let cols = ArrayView2::from_shape((k, p), cols).expect("k · p elements");
            let go = &gs[((start + b) * groups + gi) * og * p..][..og * p];
            let go = ArrayView2::from_shape((og, p), go).expect("og · p elements");
            let mut dwg = dwm.slice_mut(s![gi * og..(gi + 1) * og, ..]);
            if start + b == 0 {
                mat_mul_into(&go, &cols.t(), &mut dwg);
            } else {
                mat_mul_into(&go, &cols.t(), &mut product.view_mut());
                dwg += &product;
            }
        }
    }
    dw
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array1, Array4, ArrayView4, Zip};
    use proptest::prelude::*;
    use serde_json::Value;

    fn golden() -> Value {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/conv.json");
        let text = std::fs::read_to_string(path).expect("tests/data/conv.json");
        serde_json::from_str(&text).expect("valid JSON")
    }

    fn usizes(v: &Value) -> Vec<usize> {
        v.as_array()
            .expect("array")
            .iter()
            .map(|d| d.as_u64().expect("integer") as usize)
            .collect()
    }

    fn floats(v: &Value) -> Vec<f64> {
        v.as_array()
            .expect("array")
            .iter()
            .map(|d| d.as_f64().expect("number"))
            .collect()
    }

    fn array4(shape: &[usize], values: Vec<f64>) -> Array4<f64> {
        Array4::from_shape_vec([shape[0], shape[1], shape[2], shape[3]], values).expect("4-D")
    }

    /// A per-axis attribute: one number or `[h, w]`.
    fn pair(v: &Value) -> [usize; 2] {
        match v.as_u64() {
            Some(k) => [k as usize; 2],
            None => {
                let v = usizes(v);
                [v[0], v[1]]
            }
        }
    }

    #[track_caller]
    fn assert_close(what: &str, got: &[f64], want: &[f64]) {
        assert_eq!(got.len(), want.len(), "{what}: lengths");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g - w).abs() <= 1e-10 * w.abs() + 1e-12,
                "{what}[{i}]: {g} vs {w}"
            );
        }
    }

    #[test]
    fn replays_the_pytorch_conv2d_cases() {
        let golden = golden();
        let mut count = 0;
        for case in golden["cases"].as_array().expect("cases") {
            let op = case["op"].as_str().expect("op");
            if !op.starts_with("conv2d") {
                continue;
            }
            count += 1;
            let attrs = &case["attrs"];
            let inputs = case["inputs"].as_array().expect("inputs");
            let x_shape = usizes(&inputs[0]["shape"]);
            let w_shape = usizes(&inputs[1]["shape"]);
            let x = array4(&x_shape, floats(&inputs[0]["values"]));
            let w = array4(&w_shape, floats(&inputs[1]["values"]));
            let (g, out_shape) = Conv2dGeometry::new(
                &x_shape,
                &w_shape,
                pair(&attrs["stride"]),
                pair(&attrs["padding"]),
                pair(&attrs["dilation"]),
                attrs["groups"].as_u64().expect("groups") as usize,
            )
            .unwrap_or_else(|e| panic!("{op}: {e}"));
            assert_eq!(out_shape[..], usizes(&case["output"]["shape"])[..], "{op}");
            let mut y = conv2d_forward(x.view(), w.view(), &g);
            let bias = attrs["bias"].as_bool().expect("bias");
            if bias {
                let b = Array1::from(floats(&inputs[2]["values"]));
                for (o, &bo) in b.iter().enumerate() {
                    y.index_axis_mut(Axis(1), o).mapv_inplace(|v| v + bo);
                }
            }
            assert_close(
                op,
                y.as_slice().unwrap(),
                &floats(&case["output"]["values"]),
            );
            let up = array4(&out_shape, floats(&case["upstream"]));
            let grads = case["grads"].as_array().expect("grads");
            let xs = [x_shape[0], x_shape[1], x_shape[2], x_shape[3]];
            let dx = conv2d_input_grad(up.view(), w.view(), xs, &g);
            assert_close(
                &format!("{op} dx"),
                dx.as_slice().unwrap(),
                &floats(&grads[0]),
            );
            let ws = [w_shape[0], w_shape[1], w_shape[2], w_shape[3]];
            let dw = conv2d_weight_grad(x.view(), up.view(), ws, &g);
            assert_close(
                &format!("{op} dw"),
                dw.as_slice().unwrap(),
                &floats(&grads[1]),
            );
            if bias {
                let db: Vec<f64> = (0..out_shape[1])
                    .map(|o| up.index_axis(Axis(1), o).sum())
                    .collect();
                assert_close(&format!("{op} db"), &db, &floats(&grads[2]));
            }
        }
        assert_eq!(count, 10, "conv2d cases in conv.json");
    }

    /// The convolution by its definition, for the random-shape tests.
    fn naive_forward(
        x: &ArrayView4<'_, f64>,
        w: &ArrayView4<'_, f64>,
        g: &Conv2dGeometry,
    ) -> Array4<f64> {
        let n = x.shape()[0];
        let [_, cg, kh, kw] = g.weight_shape();
        let og = g.out_channels / g.groups;
        Array4::from_shape_fn(g.output_shape(n), |(b, o, r, q)| {
            let gi = o / og;
            let mut sum = 0.0;
            for c in 0..cg {
                for i in 0..kh {
                    for j in 0..kw {
                        let ih =
                            (r * g.stride[0] + i * g.dilation[0]) as isize - g.padding[0] as isize;
                        let iw =
                            (q * g.stride[1] + j * g.dilation[1]) as isize - g.padding[1] as isize;
                        if ih >= 0
                            && iw >= 0
                            && (ih as usize) < g.input_hw[0]
                            && (iw as usize) < g.input_hw[1]
                        {
                            sum += w[[o, c, i, j]] * x[[b, gi * cg + c, ih as usize, iw as usize]];
                        }
                    }
                }
            }
            sum
        })
    }

    /// Deterministic values in [-1, 1).
    fn filled(shape: [usize; 4], seed: u64) -> Array4<f64> {
        let mut state = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        Array4::from_shape_simple_fn(shape, || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        })
    }

    fn dot(a: &Array4<f64>, b: &Array4<f64>) -> f64 {
        Zip::from(a).and(b).fold(0.0, |s, &x, &y| s + x * y)
    }

    fn bits(a: &Array4<f64>) -> Vec<u64> {
        a.iter().map(|v| v.to_bits()).collect()
    }

    /// `(x_shape, w_shape, stride, padding, dilation, groups)`.
    type Case = (
        [usize; 4],
        [usize; 4],
        [usize; 2],
        [usize; 2],
        [usize; 2],
        usize,
    );

    /// Random geometries, the input from empty (all padding) to 5 rows or columns more than
    /// the dilated kernel needs.
    fn geometries() -> impl Strategy<Value = Case> {
        (
            (1usize..4, 1usize..4, 1usize..4, 1usize..4),
            (1usize..5, 1usize..5, 1usize..4, 1usize..4),
            (0usize..3, 0usize..3, 1usize..4, 1usize..4),
            (0usize..6, 0usize..6),
        )
            .prop_map(
                |((n, groups, cg, og), (kh, kw, sh, sw), (ph, pw, dh, dw), (eh, ew))| {
                    let h = (dh * (kh - 1) + 1 + eh).saturating_sub(2 * ph);
                    let w = (dw * (kw - 1) + 1 + ew).saturating_sub(2 * pw);
                    (
                        [n, groups * cg, h, w],
                        [groups * og, cg, kh, kw],
                        [sh, sw],
                        [ph, pw],
                        [dh, dw],
                        groups,
                    )
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        /// Forward against the definition; ⟨conv(x, w), g⟩ = ⟨x, input_grad(g, w)⟩ =
        /// ⟨w, weight_grad(x, g)⟩; every chunking gives the one-chunk results bit for bit.
        #[test]
        fn kernels_are_adjoint_and_chunking_is_exact(
            (xs, ws, stride, padding, dilation, groups) in geometries(),
            seed in any::<u64>(),
        ) {
            let (g, ys) = Conv2dGeometry::new(&xs, &ws, stride, padding, dilation, groups)
                .expect("valid by construction");
            let (x, w, up) = (filled(xs, seed), filled(ws, seed ^ 1), filled(ys, seed ^ 2));
            let y = conv2d_forward(x.view(), w.view(), &g);
            let want = naive_forward(&x.view(), &w.view(), &g);
            for (a, b) in y.iter().zip(&want) {
                prop_assert!((a - b).abs() <= 1e-12 * (1.0 + b.abs()), "{a} vs {b}");
            }
            let dx = conv2d_input_grad(up.view(), w.view(), xs, &g);
            let dw = conv2d_weight_grad(x.view(), up.view(), ws, &g);
            let (lhs, via_x, via_w) = (dot(&y, &up), dot(&x, &dx), dot(&w, &dw));
            let scale = 1e-10 * (1.0 + lhs.abs());
            prop_assert!((lhs - via_x).abs() <= scale, "{lhs} vs ⟨x, dx⟩ {via_x}");
            prop_assert!((lhs - via_w).abs() <= scale, "{lhs} vs ⟨w, dw⟩ {via_w}");
            let n = xs[0];
            for chunk in [1, 2] {
                prop_assert_eq!(bits(&forward_chunked(x.view(), w.view(), &g, chunk)), bits(&forward_chunked(x.view(), w.view(), &g, n)));
                prop_assert_eq!(bits(&input_grad_chunked(up.view(), w.view(), xs, &g, chunk)), bits(&input_grad_chunked(up.view(), w.view(), xs, &g, n)));
                prop_assert_eq!(bits(&weight_grad_chunked(x.view(), up.view(), ws, &g, chunk)), bits(&weight_grad_chunked(x.view(), up.view(), ws, &g, n)));
            }
        }
    }

    /// The Fashion-MNIST layers, large enough for the threaded products: chunks of 1, 5 and
    /// all 12 images agree bit for bit, and transposed (non-standard) views give the same.
    #[test]
    fn chunking_is_exact_on_the_cnn_layers() {
        for (xs, ws) in [
            ([12, 1, 28, 28], [32, 1, 3, 3]),
            ([12, 32, 14, 14], [64, 32, 3, 3]),
        ] {
            let (g, ys) = Conv2dGeometry::new(&xs, &ws, [1, 1], [1, 1], [1, 1], 1).unwrap();
            let (x, w, up) = (filled(xs, 3), filled(ws, 4), filled(ys, 5));
            let y = forward_chunked(x.view(), w.view(), &g, 12);
            let dx = input_grad_chunked(up.view(), w.view(), xs, &g, 12);
            let dw = weight_grad_chunked(x.view(), up.view(), ws, &g, 12);
            for chunk in [1, 5] {
                assert_eq!(
                    bits(&forward_chunked(x.view(), w.view(), &g, chunk)),
                    bits(&y)
                );
                assert_eq!(
                    bits(&input_grad_chunked(up.view(), w.view(), xs, &g, chunk)),
                    bits(&dx)
                );
                assert_eq!(
                    bits(&weight_grad_chunked(x.view(), up.view(), ws, &g, chunk)),
                    bits(&dw)
                );
            }
            let xt = x
                .view()
                .permuted_axes([0, 1, 3, 2])
                .as_standard_layout()
                .into_owned();
            let xt = xt.view().permuted_axes([0, 1, 3, 2]);
            assert_eq!(
                bits(&conv2d_forward(xt, w.view(), &g)),
                bits(&conv2d_forward(x.view(), w.view(), &g))
            );
        }
    }

    #[test]
    fn geometry_errors() {
        use Conv2dError as E;
        let new = |x: &[usize], w: &[usize], s, p, d, groups| {
            Conv2dGeometry::new(x, w, s, p, d, groups).map(|(_, shape)| shape)
        };
        let one = [1, 1];
        assert_eq!(
            new(&[2, 3, 5, 6], &[4, 3, 3, 3], one, [0, 0], one, 1),
            Ok([2, 4, 3, 4])
        );
        assert_eq!(
            new(&[1, 1, 28, 28], &[32, 1, 3, 3], one, one, one, 1),
            Ok([1, 32, 28, 28])
        );
        assert_eq!(
            new(&[1, 2, 7, 6], &[3, 2, 3, 3], [2, 2], one, one, 1),
            Ok([1, 3, 4, 3])
        );
        assert_eq!(
            new(&[1, 2, 7, 7], &[2, 2, 3, 3], one, [0, 0], [2, 2], 1),
            Ok([1, 2, 3, 3])
        );
        assert_eq!(
            new(&[3, 5, 5], &[4, 3, 3, 3], one, one, one, 1),
            Err(E::InputRank(vec![3, 5, 5]))
        );
        assert_eq!(
            new(&[1, 3, 5, 5], &[4, 3, 3], one, one, one, 1),
            Err(E::WeightRank(vec![4, 3, 3]))
        );
        assert_eq!(
            new(&[1, 3, 5, 5], &[4, 3, 3, 3], [1, 0], one, one, 1),
            Err(E::ZeroStride([1, 0]))
        );
        assert_eq!(
            new(&[1, 3, 5, 5], &[4, 3, 3, 3], one, one, [0, 1], 1),
            Err(E::ZeroDilation([0, 1]))
        );
        assert_eq!(
            new(&[1, 3, 5, 5], &[3, 1, 3, 3], one, one, one, 0),
            Err(E::ZeroGroups)
        );
        assert_eq!(
            new(&[1, 3, 5, 5], &[4, 3, 0, 3], one, one, one, 1),
            Err(E::EmptyKernel([0, 3]))
        );
        assert_eq!(
            new(&[1, 3, 5, 5], &[4, 1, 3, 3], one, one, one, 2),
            Err(E::InChannelsNotDivisible {
                channels: 3,
                groups: 2
            })
        );
        assert_eq!(
            new(&[1, 4, 5, 5], &[3, 2, 3, 3], one, one, one, 2),
            Err(E::OutChannelsNotDivisible {
                channels: 3,
                groups: 2
            })
        );
        assert_eq!(
            new(&[1, 4, 5, 5], &[4, 4, 3, 3], one, one, one, 2),
            Err(E::WeightChannels {
                expected: 2,
                got: 4
            })
        );
        assert_eq!(
            new(&[1, 3, 2, 9], &[4, 3, 5, 3], one, one, one, 1),
            Err(E::KernelTooLarge {
                axis: "height",
                extent: 5,
                padded: 4
            })
        );
        assert_eq!(
            new(&[1, 3, 9, 4], &[4, 3, 3, 3], one, [0, 0], [1, 2], 1),
            Err(E::KernelTooLarge {
                axis: "width",
                extent: 5,
                padded: 4
            })
        );
        let message = new(&[1, 4, 5, 5], &[4, 4, 3, 3], one, one, one, 2)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("4 input channels per group") && message.contains("give 2"),
            "{message}"
        );
    }

    /// On-CPU time of the calling thread, in seconds (Linux `CLOCK_THREAD_CPUTIME_ID`), so that
    /// figures measured while other jobs share the cores count this thread's work only.
    fn thread_cpu_seconds() -> f64 {
        #[repr(C)]
        struct Timespec {
            tv_sec: i64,
            tv_nsec: i64,
        }
        unsafe extern "C" {
            fn clock_gettime(clock: i32, time: *mut Timespec) -> i32;
        }
        const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
        let mut time = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `clock_gettime` (64-bit Linux, where `timespec` is two 64-bit integers)
        // writes one `timespec` through the pointer, which points at a live local.
        let status = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut time) };
        assert_eq!(status, 0, "clock_gettime");
        time.tv_sec as f64 + time.tv_nsec as f64 * 1e-9
    }

    /// GFLOP/s of the three kernels on the layers of the Fashion-MNIST CNN, per column budget:
    /// on one thread by its CPU time (robust to other jobs on the machine), and on two threads
    /// by wall time (`cargo test -p tapegrad-autograd --lib kernels::conv2d::tests::timing --
    /// --ignored --nocapture`; the test profile is opt-level 2).
    #[test]
    #[ignore]
    fn timing() {
        use std::time::Instant;
        fn run<T: Float>(xs: [usize; 4], ws: [usize; 4], budget: usize, threads: usize) {
            let (g, ys) = Conv2dGeometry::new(&xs, &ws, [1, 1], [1, 1], [1, 1], 1).unwrap();
            let x = filled(xs, 1).mapv(T::from_f64);
            let w = filled(ws, 2).mapv(T::from_f64);
            let up = filled(ys, 3).mapv(T::from_f64);
            let chunk = g.images_per_chunk::<T>(budget);
            let flops = 2.0 * (ys.iter().product::<usize>() * ws[1] * ws[2] * ws[3]) as f64;
            let start = Instant::now();
            let clock = || {
                if threads == 1 {
                    thread_cpu_seconds()
                } else {
                    start.elapsed().as_secs_f64()
                }
            };
            let mut best = [f64::MAX; 5];
            let mut dx = vec![T::zero(); xs[1..].iter().product()];
            let mut col = vec![T::zero(); g.col_rows() * g.out_plane()];
            let xsl = x.as_slice().unwrap();
            for _ in 0..15 {
                let t = clock();
                std::hint::black_box(forward_chunked(x.view(), w.view(), &g, chunk));
                best[0] = best[0].min(clock() - t);
                let t = clock();
                std::hint::black_box(input_grad_chunked(up.view(), w.view(), xs, &g, chunk));
                best[1] = best[1].min(clock() - t);
                let t = clock();
                std::hint::black_box(weight_grad_chunked(x.view(), up.view(), ws, &g, chunk));
                best[2] = best[2].min(clock() - t);
                let t = clock();
                for b in 0..xs[0] {
                    let plane = xs[1] * xs[2] * xs[3];
                    im2col(&xsl[b * plane..(b + 1) * plane], &g, xs[1], &mut col);
                }
                std::hint::black_box(&col);
                best[3] = best[3].min(clock() - t);
                let t = clock();
                for _ in 0..xs[0] {
                    col2im(&col, &g, xs[1], &mut dx);
                }
                std::hint::black_box(&dx);
                best[4] = best[4].min(clock() - t);
            }
            println!(
                "{} {xs:?} * {ws:?}, chunk {chunk:>3}, {threads} thread(s): forward {:5.1}, input grad {:5.1}, weight grad {:5.1} GFLOP/s (im2col alone {:4.1}% of forward, col2im {:4.1}% of input grad)",
                T::DTYPE,
                flops / best[0] / 1e9,
                flops / best[1] / 1e9,
                flops / best[2] / 1e9,
                100.0 * best[3] / best[0],
                100.0 * best[4] / best[1],
            );
        }
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let budgets: &[usize] = if threads == 1 {
                    &[0, 256 << 10, 1 << 20, 4 << 20]
                } else {
                    &[COLUMN_BUDGET_BYTES]
                };
                for &budget in budgets {
                    run::<f32>([32, 32, 14, 14], [64, 32, 3, 3], budget, threads);
                    run::<f64>([32, 32, 14, 14], [64, 32, 3, 3], budget, threads);
                    run::<f32>([32, 1, 28, 28], [32, 1, 3, 3], budget, threads);
                }
            });
        }
    }
}
