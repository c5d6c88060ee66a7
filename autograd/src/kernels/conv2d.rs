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
mod tests;
