//! Array kernels of 2-D convolution (PyTorch's `conv2d`: cross-correlation, zero padding,
//! stride, dilation, groups), with no tape: the forward map and its two adjoints.
//!
//! `y = conv(x, w)` is bilinear, so its derivatives are the same three maps:
//! - [`conv2d_forward`]: `y[n, o] = Σ_{c, i, j} w[o, c, i, j] · x[n, c, oh·s + i·d − p, ...]`;
//! - [`conv2d_input_grad`]: the transposed convolution, `x ↦ ⟨conv(x, w), g⟩`'s gradient;
//! - [`conv2d_weight_grad`]: `w ↦ ⟨conv(x, w), g⟩`'s gradient.
//!
//! 3×3 convolutions of stride 1, dilation 1, one group, padding at most 2 and at least
//! [`WINOGRAD_MIN_CHANNELS`] input and output channels go through Winograd F(2×2, 3×3)
//! ([`winograd`], 2.25× fewer multiplies; the first CNN layer, one input channel, does
//! not). Everything else goes through im2col ([`columns`]): the column matrix `col` of
//! `(C/groups · kh · kw)` rows, one column per output position, holds the input element
//! each weight meets there (zero in the padding). Then, through [`crate::kernels::gemm`]:
//! - forward, per image and group: `Y += W · col` added in place to the output, whose
//!   image block was first written with the bias (zeros without one) and gets `relu` after
//!   if asked ([`conv2d_forward_fused`]);
//! - input gradient, per image and group: `col = Wᵀ · G` (`G` read in place), added back into
//!   the input's gradient by col2im;
//! - weight gradient, per chunk of images and group: `w_grad += G · colᵀ` over the column
//!   matrix of the whole chunk (`B · OH · OW` columns, `G` copied into the same layout).
//!
//! Per image where the product writes or reads the arrays in place, per chunk where the
//! product's inner dimension is the one that grows: the product kernel runs as fast on one
//! image's columns as on a chunk's, so chunk-wide forward products would only add a copy
//! into the output, while the first layer's weight gradient (`32 × 784B × 9`) runs about
//! twice as fast in chunks as per image (figures in `benches/README.md`, "Convolution").
//!
//! Images are split in two halves (whole chunks for the weight gradient) that run side by
//! side on two threads ([`super::fork_join::join`]; one after the other on one), each with
//! its own column buffer, so the workspace is bounded whatever the batch size. The split
//! and the chunks depend on the sizes only, never on the number of threads, and the weight
//! gradient sums the chunks of each half in order and then the two halves: the results are
//! the same bits on any number of threads (tested).

mod columns;
mod geometry;
mod winograd;

use std::mem::MaybeUninit;
use std::ops::Range;

use ndarray::{Array4, ArrayView2, ArrayView4, ArrayViewMut2, Axis, s};

use self::columns::{Block, col2im, im2col};
#[cfg(test)]
use self::geometry::Conv2dError;
pub(crate) use self::geometry::Conv2dGeometry;
use super::elementwise::relu_in_place;
use super::fork_join::join;
use super::gemm::{
    PARALLEL_MATMUL_THRESHOLD, mat_mul_add_into, mat_mul_add_into_this_thread, mat_mul_into,
    mat_mul_into_this_thread,
};
use super::pool::{self, PooledVec};
use super::zeroed_blocks::zeroed_blocks;
use crate::Float;

/// The weight gradient's column matrix of one chunk of images stays under this many bytes
/// (at least one image per chunk): 1 MB, near the fastest chunks for both of the CNN's
/// layers, where larger chunks gain the first layer little and slow the second (figures in
/// `benches/README.md`, "Convolution").
const COLUMN_BUDGET_BYTES: usize = 1 << 20;

/// Convolutions that Winograd supports go through it when their input and output channel
/// counts both reach this: with fewer channels its transforms cost more than its smaller
/// products save, at 8 the two methods are even and at 16 Winograd is faster (figures in
/// `benches/README.md`, "Convolution").
const WINOGRAD_MIN_CHANNELS: usize = 16;

/// `conv2d(x, w)` without bias, PyTorch's semantics: `x` is `[N, C, H, W]`, `w` is
/// `[O, C/groups, kh, kw]` (shapes checked by `g`), the result `[N, O, OH, OW]`.
pub(crate) fn conv2d_forward<T: Float>(
    x: ArrayView4<'_, T>,
    w: ArrayView4<'_, T>,
    g: &Conv2dGeometry,
) -> Array4<T> {
    forward(x, w, Epilogue::default(), g, Method::choose(g))
}

/// What the forward adds to its products and applies to them, in its output pass.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Epilogue<'a, T> {
    /// A bias (`[O]`) added to every position of each output channel: written into the
    /// output, and the product added to it by the product kernel.
    pub(crate) bias: Option<&'a [T]>,
    /// `relu` applied in place to each image's output while it is in cache.
    pub(crate) relu: bool,
}

impl<T> Default for Epilogue<'_, T> {
    fn default() -> Self {
        Epilogue {
            bias: None,
            relu: false,
        }
    }
}

/// `conv2d(x, w)`, plus a bias and followed by `relu` as `epilogue` says, in one pass over
/// the output: what a layer's forward computes when no gradient is recorded, and (without
/// `relu`) the value of a recorded convolution with a bias.
pub(crate) fn conv2d_forward_fused<T: Float>(
    x: ArrayView4<'_, T>,
    w: ArrayView4<'_, T>,
    epilogue: Epilogue<'_, T>,
    g: &Conv2dGeometry,
) -> Array4<T> {
    forward(x, w, epilogue, g, Method::choose(g))
}

/// The gradient of `⟨conv2d(x, w), grad_out⟩` with respect to `x` (of shape `x_shape`): the
/// transposed convolution of `grad_out` by `w`.
pub(crate) fn conv2d_input_grad<T: Float>(
    grad_out: ArrayView4<'_, T>,
    w: ArrayView4<'_, T>,
    x_shape: [usize; 4],
    g: &Conv2dGeometry,
) -> Array4<T> {
    input_grad(grad_out, w, x_shape, g, Method::choose(g))
}

/// The gradient of `⟨conv2d(x, w), grad_out⟩` with respect to `w` (of shape `w_shape`).
pub(crate) fn conv2d_weight_grad<T: Float>(
    x: ArrayView4<'_, T>,
    grad_out: ArrayView4<'_, T>,
    w_shape: [usize; 4],
    g: &Conv2dGeometry,
) -> Array4<T> {
    weight_grad(x, grad_out, w_shape, g, Method::choose(g))
}

/// How a convolution is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    /// Column matrices and matrix products ([`columns`]): every geometry.
    Im2col,
    /// Winograd F(2×2, 3×3) ([`winograd`]): the geometries [`winograd::supports`] accepts.
    Winograd,
}

impl Method {
    /// Winograd where it is supported and both channel counts reach
    /// [`WINOGRAD_MIN_CHANNELS`], im2col elsewhere.
    fn choose(g: &Conv2dGeometry) -> Self {
        let channels = g.in_channels.min(g.out_channels);
        if winograd::supports(g) && channels >= WINOGRAD_MIN_CHANNELS {
            Method::Winograd
        } else {
            Method::Im2col
        }
    }
}

/// [`conv2d_weight_grad`] by `method`.
fn weight_grad<T: Float>(
    x: ArrayView4<'_, T>,
    grad_out: ArrayView4<'_, T>,
    w_shape: [usize; 4],
    g: &Conv2dGeometry,
    method: Method,
) -> Array4<T> {
    let chunk = images_per_chunk::<T>(g, COLUMN_BUDGET_BYTES);
    if method == Method::Im2col {
        return weight_grad_chunked(x, grad_out, w_shape, g, chunk);
    }
    let n = x.len_of(Axis(0));
    check_shape("the input", x.shape(), g.input_shape(n));
    check_shape("the output gradient", grad_out.shape(), g.output_shape(n));
    check_shape("the weight", &w_shape, g.weight_shape());
    let x = x.as_standard_layout();
    let gr = grad_out.as_standard_layout();
    let (xs, gs) = (x.as_slice(), gr.as_slice());
    let dw = winograd::weight_grad(xs.expect("standard"), gs.expect("standard"), g, n);
    Array4::from_shape_vec(w_shape, dw).expect("O · C · 3 · 3 elements")
}

#[track_caller]
fn check_shape(what: &str, got: &[usize], want: [usize; 4]) {
    assert!(
        got == want,
        "conv2d kernel: {what} has shape {got:?}, the geometry gives {want:?}"
    );
}

/// Images per chunk for a column budget of `budget` bytes (at least one).
fn images_per_chunk<T>(g: &Conv2dGeometry, budget: usize) -> usize {
    let per_image = g.col_rows() * g.out_plane() * size_of::<T>();
    (budget / per_image.max(1)).max(1)
}

/// A matrix product `out = a · b` (threaded by size, or on the calling thread).
type Product<T> = for<'a, 'b, 'c, 'd, 'e, 'f> fn(
    &'a ArrayView2<'b, T>,
    &'c ArrayView2<'d, T>,
    &'e mut ArrayViewMut2<'f, T>,
);

/// How the `n` images of a call are cut: chunks of `chunk` images, and, when there are two
/// chunks or more and at least [`PARALLEL_MATMUL_THRESHOLD`] multiply-adds, two halves of
/// whole chunks (`0..mid` and `mid..n`) run side by side. It depends on the sizes only.
#[derive(Clone, Copy, Debug)]
struct Plan {
    n: usize,
    chunk: usize,
    mid: Option<usize>,
}

impl Plan {
    fn new(g: &Conv2dGeometry, n: usize, chunk: usize) -> Self {
        let chunks = n.div_ceil(chunk);
        let multiply_adds = n * g.out_channels * g.col_rows() * g.out_plane();
        let mid = (chunks >= 2 && multiply_adds >= PARALLEL_MATMUL_THRESHOLD)
            .then(|| chunks.div_ceil(2) * chunk);
        Plan { n, chunk, mid }
    }

    /// The product for the work of one half: on the calling thread when the halves run side
    /// by side, threaded by size when one half holds everything.
    fn product<T: Float>(&self) -> Product<T> {
        match self.mid {
            Some(_) => mat_mul_into_this_thread::<T>,
            None => mat_mul_into::<T> as Product<T>,
        }
    }

    /// [`Plan::product`] adding to its output rather than overwriting it.
    fn product_add<T: Float>(&self) -> Product<T> {
        match self.mid {
            Some(_) => mat_mul_add_into_this_thread::<T>,
            None => mat_mul_add_into::<T> as Product<T>,
        }
    }

    /// The chunks of `images`, each a range of images.
    fn chunks(&self, images: Range<usize>) -> impl Iterator<Item = Range<usize>> {
        let (chunk, end) = (self.chunk, images.end);
        images.step_by(chunk).map(move |s| s..(s + chunk).min(end))
    }

    /// Runs `work(images, part, product)` on each half, `part` being the images' elements of
    /// `out` (`per_image` each) and `product` one of [`Plan::product`] or
    /// [`Plan::product_add`].
    fn for_halves<T: Float, E: Send>(
        &self,
        out: &mut [E],
        per_image: usize,
        product: Product<T>,
        work: impl Fn(Range<usize>, &mut [E], Product<T>) + Sync,
    ) {
        match self.mid {
            None => work(0..self.n, out, product),
            Some(mid) => {
                let (first, second) = out.split_at_mut(mid * per_image);
                join(
                    || work(0..mid, first, product),
                    || work(mid..self.n, second, product),
                );
            }
        }
    }
}

/// Writes the column matrix of group `gi` of the images `images` into `col` and returns its
/// row stride `B · OH · OW`.
fn fill_columns<T: Float>(
    xs: &[T],
    g: &Conv2dGeometry,
    images: Range<usize>,
    gi: usize,
    col: &mut [T],
) -> usize {
    let (cg, hw, p) = (g.in_channels / g.groups, g.in_plane(), g.out_plane());
    let ld = images.len() * p;
    for (b, image) in images.enumerate() {
        let x = &xs[(image * g.groups + gi) * cg * hw..][..cg * hw];
        im2col(x, g, cg, col, Block { ld, first: b * p });
    }
    ld
}

/// Copies the output gradient of group `gi` of the images `images` (`[B, O, OH·OW]` in
/// `gs`) into `rows` as an `O/groups × B·OH·OW` matrix; returns its view.
fn gather_rows<'a, T: Float>(
    gs: &[T],
    g: &Conv2dGeometry,
    images: Range<usize>,
    gi: usize,
    rows: &'a mut [T],
) -> ArrayView2<'a, T> {
    let (og, p) = (g.out_channels / g.groups, g.out_plane());
    let ld = images.len() * p;
    for (b, image) in images.enumerate() {
        for o in 0..og {
            let src = &gs[(image * g.out_channels + gi * og + o) * p..][..p];
            rows[o * ld + b * p..][..p].copy_from_slice(src);
        }
    }
    ArrayView2::from_shape((og, ld), &rows[..og * ld]).expect("og · ld elements")
}

/// The weight (standard layout) as an `O × (C/groups · kh · kw)` matrix.
fn weight_matrix<'a, T: Float>(w: &'a ArrayView4<'_, T>, g: &Conv2dGeometry) -> ArrayView2<'a, T> {
    let w = w.as_slice().expect("standard layout");
    ArrayView2::from_shape((g.out_channels, g.col_rows()), w).expect("O · k elements")
}

/// [`conv2d_forward`] by `method`: [`winograd::forward`], or by im2col per image, its
/// output first written with the bias (zeros without one) while it is in cache, then, per
/// group, its column matrix and `Y += W · col` added in place, then `relu` if asked. The
/// output is allocated without a zero fill: each image's block is written in full by that
/// first pass before anything reads it.
fn forward<T: Float>(
    x: ArrayView4<'_, T>,
    w: ArrayView4<'_, T>,
    epilogue: Epilogue<'_, T>,
    g: &Conv2dGeometry,
    method: Method,
) -> Array4<T> {
    let n = x.len_of(Axis(0));
    check_shape("the input", x.shape(), g.input_shape(n));
    check_shape("the weight", w.shape(), g.weight_shape());
    if let Some(bias) = epilogue.bias {
        assert!(
            bias.len() == g.out_channels,
            "conv2d kernel: the bias has {} elements for {} output channels",
            bias.len(),
            g.out_channels
        );
    }
    let shape = g.output_shape(n);
    let (k, p, og) = (g.col_rows(), g.out_plane(), g.out_channels / g.groups);
    let per_image = g.out_channels * p;
    let x = x.as_standard_layout();
    let xs = x.as_slice().expect("standard layout");
    let w = w.as_standard_layout();
    let w = w.view();
    if method == Method::Winograd {
        let ws = w.as_slice().expect("standard layout");
        let data = winograd::forward(xs, ws, epilogue, g, n);
        return Array4::from_shape_vec(shape, data).expect("N · O · OH · OW elements");
    }
    let wm = weight_matrix(&w, g);
    let plan = Plan::new(g, n, 1);
    let mut data: Vec<T> = pool::vec(n * per_image);
    let spare = &mut data.spare_capacity_mut()[..n * per_image];
    plan.for_halves(
        spare,
        per_image,
        plan.product_add(),
        |images, out, product| {
            let mut col = PooledVec::zeros(k * p);
            for (b, image) in images.clone().enumerate() {
                let block = &mut out[b * per_image..(b + 1) * per_image];
                for (o, plane) in block.chunks_exact_mut(p.max(1)).enumerate() {
                    let start = epilogue.bias.map_or(T::zero(), |bias| bias[o]);
                    plane.fill(MaybeUninit::new(start));
                }
                // SAFETY: every element of `block` was written just above (`out_channels`
                // planes of `p` elements fill its `per_image` elements; with `p == 0` it is
                // empty), and `MaybeUninit<T>` has `T`'s layout.
                let y_image = unsafe { &mut *(std::ptr::from_mut(block) as *mut [T]) };
                if k > 0 {
                    for gi in 0..g.groups {
                        fill_columns(xs, g, image..image + 1, gi, &mut col);
                        let cols = ArrayView2::from_shape((k, p), &col[..]).expect("k · p");
                        let y = &mut y_image[gi * og * p..][..og * p];
                        let mut y = ArrayViewMut2::from_shape((og, p), y).expect("og · p");
                        product(&wm.slice(s![gi * og..(gi + 1) * og, ..]), &cols, &mut y);
                    }
                }
                if epilogue.relu {
                    relu_in_place(y_image);
                }
            }
        },
    );
    // SAFETY: the halves of `for_halves` cover images `0..n`, whose blocks are the
    // `n · per_image` elements of `spare`, and each block was written in full above.
    unsafe { data.set_len(n * per_image) };
    Array4::from_shape_vec(shape, data).expect("N · O · OH · OW elements")
}

/// [`conv2d_input_grad`] by `method`: [`winograd::input_grad`], or by im2col per image, its
/// gradient zeroed, then per group `col = Wᵀ · G` (`G` read in place) added into it by
/// col2im.
fn input_grad<T: Float>(
    grad_out: ArrayView4<'_, T>,
    w: ArrayView4<'_, T>,
    x_shape: [usize; 4],
    g: &Conv2dGeometry,
    method: Method,
) -> Array4<T> {
    let n = x_shape[0];
    check_shape("the input", &x_shape, g.input_shape(n));
    check_shape("the output gradient", grad_out.shape(), g.output_shape(n));
    check_shape("the weight", w.shape(), g.weight_shape());
    let (k, p, og) = (g.col_rows(), g.out_plane(), g.out_channels / g.groups);
    let (cg, hw) = (g.in_channels / g.groups, g.in_plane());
    if x_shape.contains(&0) || p == 0 || og == 0 {
        return Array4::zeros(x_shape);
    }
    let gr = grad_out.as_standard_layout();
    let gs = gr.as_slice().expect("standard layout");
    let w = w.as_standard_layout();
    let w = w.view();
    if method == Method::Winograd {
        let ws = w.as_slice().expect("standard layout");
        let dx = winograd::input_grad(gs, ws, g, n);
        return Array4::from_shape_vec(x_shape, dx).expect("N · C · H · W elements");
    }
    let wm = weight_matrix(&w, g);
    let plan = Plan::new(g, n, 1);
    let product = plan.product();
    let dx = zeroed_blocks(
        n,
        g.in_channels * hw,
        plan.mid,
        || PooledVec::zeros(k * p),
        |col, image, dx| {
            for gi in 0..g.groups {
                let go = &gs[(image * g.groups + gi) * og * p..][..og * p];
                let go = ArrayView2::from_shape((og, p), go).expect("og · p");
                let wt = wm.slice(s![gi * og..(gi + 1) * og, ..]).reversed_axes();
                let mut cols = ArrayViewMut2::from_shape((k, p), &mut col[..]).expect("k · p");
                product(&wt, &go, &mut cols);
                let dxg = &mut dx[gi * cg * hw..][..cg * hw];
                col2im(col, g, cg, dxg, Block { ld: p, first: 0 });
            }
        },
    );
    Array4::from_shape_vec(x_shape, dx).expect("N · C · H · W elements")
}

/// [`conv2d_weight_grad`] with `chunk` images per column matrix: each half sums its chunks'
/// products in order, then the second half's sum is added to the first's.
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
    let (k, p, og) = (g.col_rows(), g.out_plane(), g.out_channels / g.groups);
    if w_shape.contains(&0) || n == 0 || p == 0 {
        return Array4::zeros(w_shape);
    }
    let x = x.as_standard_layout();
    let xs = x.as_slice().expect("standard layout");
    let gr = grad_out.as_standard_layout();
    let gs = gr.as_slice().expect("standard layout");
    let plan = Plan::new(g, n, chunk);
    // Each half sums into its own `dw`, both taken here from this thread's pool.
    let half = |images: Range<usize>, product: Product<T>, dw: &mut [T]| {
        let most = chunk.min(images.len());
        let mut col = PooledVec::zeros(k * most * p);
        let mut rows = PooledVec::zeros(og * most * p);
        let mut dw = ArrayViewMut2::from_shape((g.out_channels, k), dw).expect("O · k");
        let mut term = PooledVec::zeros(og * k);
        let mut term = ArrayViewMut2::from_shape((og, k), &mut term[..]).expect("og · k");
        for chunk in plan.chunks(images.clone()) {
            for gi in 0..g.groups {
                let ld = fill_columns(xs, g, chunk.clone(), gi, &mut col);
                let cols = ArrayView2::from_shape((k, ld), &col[..k * ld]).expect("k · ld");
                let go = gather_rows(gs, g, chunk.clone(), gi, &mut rows);
                let mut dwg = dw.slice_mut(s![gi * og..(gi + 1) * og, ..]);
                if chunk.start == images.start {
                    product(&go, &cols.t(), &mut dwg);
                } else {
                    product(&go, &cols.t(), &mut term.view_mut());
                    dwg += &term;
                }
            }
        }
    };
    let product = plan.product();
    let mut dw = pool::zeros(g.out_channels * k);
    match plan.mid {
        None => half(0..n, product, &mut dw),
        Some(mid) => {
            let mut second = PooledVec::zeros(dw.len());
            join(
                || half(0..mid, product, &mut dw),
                || half(mid..n, product, &mut second),
            );
            dw.iter_mut().zip(second.iter()).for_each(|(a, &b)| *a += b);
        }
    }
    Array4::from_shape_vec(w_shape, dw).expect("O · k elements")
}

#[cfg(test)]
mod tests;
