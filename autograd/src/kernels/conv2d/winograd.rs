//! Winograd F(2×2, 3×3) (Lavin & Gray 2015): 3×3 convolutions of stride 1 and dilation 1
//! with 2.25× fewer multiplies than im2col.
//!
//! The output is cut in tiles of 2×2 outputs (`TH × TW` per image, `TH = ⌈OH/2⌉`); tile
//! `(ti, tj)` reads the 4×4 input tile `d` starting at `(2·ti − pad_h, 2·tj − pad_w)`
//! (zeros outside the input). With
//!
//! - `Bᵀ` rows: `[1, 0, −1, 0]`, `[0, 1, 1, 0]`, `[0, −1, 1, 0]`, `[0, 1, 0, −1]`
//! - `G` rows: `[1, 0, 0]`, `[½, ½, ½]`, `[½, −½, ½]`, `[0, 0, 1]`
//! - `Aᵀ` rows: `[1, 1, 1, 0]`, `[0, 1, −1, −1]`
//!
//! the 2×2 outputs of a tile are `Aᵀ [Σ_c U_{o,c} ⊙ V_{c,t}] A`, where `U = G g Gᵀ` (per
//! output and input channel, `g` the 3×3 filter) and `V = Bᵀ d B` (per input channel and
//! tile) are 4×4. Each of the 16 positions `ξ` of the 4×4 matrices is one matrix product
//! `M_ξ[O × T] = U_ξ[O × C] · V_ξ[C × T]` over a block of `T` tiles (a few images): 16
//! products of `O·C·T` multiply-adds where im2col's is `O·9C·4T`.
//!
//! - forward: weights transformed once, then per block of images: the input transform,
//!   the 16 products, and the output transform, which adds the bias, applies `relu` if
//!   asked and writes only the outputs that exist (odd `OH` or `OW` leave partial tiles);
//! - input gradient: with stride 1 it is the forward convolution of the output gradient by
//!   the weights flipped in both spatial axes with input and output channels swapped, and
//!   padding `2 − pad` (so `pad ≤ 2`);
//! - weight gradient, the adjoint of the forward in `U`: per block, `dM = A dY Aᵀ` of each
//!   output-gradient tile (zero outside the output) and `dU_ξ += dM_ξ[O × T] · V_ξ[C × T]ᵀ`,
//!   then `dg = Gᵀ dU G`.
//!
//! Blocks, halves and products follow [`super::Plan`], so the results are the same bits on
//! any number of threads; the weight gradient sums the blocks of each half in order, then
//! the second half into the first.
//!
//! The transforms run over rows of tiles, in groups of four elements ([`map_runs`]): an
//! input row is stored as its even columns then its odd ones, so the columns of
//! consecutive tiles are runs. On the CNN's second layer the three maps run about 1.5× as
//! fast as through im2col; the 16 products take about half of the time, the transforms the
//! rest (figures in `benches/README.md`, "Convolution").
//!
//! The transforms stay portable code: compiled for AVX-512 and picked at run time, or with
//! other layouts of the tiles, they made the CNN step no faster (`benches/README.md`).
//!
//! Infinities: the transforms subtract inputs from each other, so an infinite input gives
//! NaN where the direct sum gives ±∞ (anomaly mode reports either).

use std::mem::MaybeUninit;
use std::ops::Range;

use ndarray::{ArrayView2, ArrayViewMut2};

use super::{Conv2dGeometry, Epilogue, Plan, Product};
use crate::Float;
use crate::kernels::elementwise::relu;
use crate::kernels::fork_join::join;
use crate::kernels::pool::{self, PooledVec};

/// The tile workspace of one half (transformed input and products of a block of images)
/// stays under this many bytes (at least one image per block): 3 images of the CNN's
/// second layer in f32, 1 in f64: blocks of 3 or 4 images are the fastest for the forward
/// and the weight gradient together (figures in `benches/README.md`, "Convolution").
const TILE_BUDGET_BYTES: usize = 1 << 20;

/// Positions of a 4×4 transformed tile.
const XI: usize = 16;

/// Whether Winograd F(2×2, 3×3) can compute this convolution and its two gradients: one
/// group, a 3×3 kernel, stride and dilation 1, padding at most 2, and a non-empty input
/// and output plane.
pub(super) fn supports(g: &Conv2dGeometry) -> bool {
    g.groups == 1
        && g.kernel_hw == [3, 3]
        && g.stride == [1, 1]
        && g.dilation == [1, 1]
        && g.padding.iter().all(|&p| p <= 2)
        && g.in_plane() > 0
        && g.out_plane() > 0
}

/// How one image's output is tiled, and the zero-bordered copy of an input plane its
/// tiles read.
#[derive(Clone, Copy, Debug)]
struct Tiling {
    /// Tile rows `⌈OH/2⌉`.
    rows: usize,
    /// Tile columns `⌈OW/2⌉`.
    cols: usize,
    /// Width of the bordered input plane `2·cols + 2` (its height is `2·rows + 2`).
    width: usize,
}

impl Tiling {
    fn new(g: &Conv2dGeometry) -> Self {
        let [oh, ow] = g.output_hw;
        let (rows, cols) = (oh.div_ceil(2), ow.div_ceil(2));
        Tiling {
            rows,
            cols,
            width: 2 * cols + 2,
        }
    }

    /// Tiles per image.
    fn per_image(&self) -> usize {
        self.rows * self.cols
    }

    /// Elements of the bordered input plane.
    fn bordered(&self) -> usize {
        (2 * self.rows + 2) * self.width
    }

    /// Images per block so that `XI · (C + O)` values per tile stay under `budget` bytes.
    fn images_per_block<T>(&self, g: &Conv2dGeometry, budget: usize) -> usize {
        let per_image = XI * (g.in_channels + g.out_channels) * self.per_image() * size_of::<T>();
        (budget / per_image.max(1)).max(1)
    }
}

/// `F X Fᵀ` for the `S × R` matrix `F` whose product with a vector is `f`.
#[inline(always)]
fn sandwich<T: Copy, const R: usize, const S: usize>(
    x: [[T; R]; R],
    f: impl Fn([T; R]) -> [T; S],
) -> [[T; S]; S] {
    // `fx[r]` is column `r` of `F X`.
    let fx: [[T; S]; R] = std::array::from_fn(|r| f(std::array::from_fn(|i| x[i][r])));
    std::array::from_fn(|s| f(std::array::from_fn(|r| fx[r][s])))
}

/// `Bᵀ d`.
#[inline(always)]
fn b_t<T: Float>([d0, d1, d2, d3]: [T; 4]) -> [T; 4] {
    [d0 - d2, d1 + d2, d2 - d1, d1 - d3]
}

/// `o[..][k] = f(x[..][k])` for every `k` of runs of equal length, in groups of [`LANES`]
/// (the last group overlapping the one before it) that the compiler turns into vector
/// instructions.
#[inline(always)]
fn map_runs<T: Float, const I: usize, const O: usize>(
    x: [&[T]; I],
    mut o: [&mut [T]; O],
    f: impl Fn([T; I]) -> [T; O],
) {
    let n = o[0].len();
    assert!(x.iter().all(|x| x.len() == n) && o.iter().all(|o| o.len() == n));
    if n < LANES {
        for k in 0..n {
            let r = f(std::array::from_fn(|i| x[i][k]));
            o.iter_mut().zip(r).for_each(|(o, r)| o[k] = r);
        }
        return;
    }
    for start in (0..n - LANES).step_by(LANES).chain([n - LANES]) {
        let v: [[T; LANES]; I] =
            std::array::from_fn(|i| x[i][start..][..LANES].try_into().expect("LANES"));
        let r: [[T; O]; LANES] = std::array::from_fn(|l| f(std::array::from_fn(|i| v[i][l])));
        for (k, o) in o.iter_mut().enumerate() {
            let lanes: [T; LANES] = std::array::from_fn(|l| r[l][k]);
            o[start..][..LANES].copy_from_slice(&lanes);
        }
    }
}

/// Elements per group of [`map_runs`]: one SSE register of `f32`.
const LANES: usize = 4;

/// `G g`.
#[inline(always)]
fn g_<T: Float>([g0, g1, g2]: [T; 3]) -> [T; 4] {
    let half = T::from_f64(0.5);
    [g0, (g0 + g1 + g2) * half, (g0 - g1 + g2) * half, g2]
}

/// `Gᵀ u`.
#[inline(always)]
fn g_t<T: Float>([u0, u1, u2, u3]: [T; 4]) -> [T; 3] {
    let half = T::from_f64(0.5);
    [
        u0 + (u1 + u2) * half,
        (u1 - u2) * half,
        (u1 + u2) * half + u3,
    ]
}

/// `Aᵀ m`.
#[inline(always)]
fn a_t<T: Float>([m0, m1, m2, m3]: [T; 4]) -> [T; 2] {
    [m0 + m1 + m2, m1 - m2 - m3]
}

/// `A y`.
#[inline(always)]
fn a_<T: Float>([y0, y1]: [T; 2]) -> [T; 4] {
    [y0, y0 + y1, y0 - y1, -y1]
}

/// `U = G g Gᵀ` of every filter of `w` (`[O, C, 3, 3]`, standard layout) as 16 matrices
/// `O × C`: `U_ξ[o, c]` at `(ξ · O + o) · C + c`.
fn transform_weights<T: Float>(w: &[T], o_count: usize, c_count: usize) -> PooledVec<T> {
    let mut u = PooledVec::zeros(XI * o_count * c_count);
    for (oc, g) in w.chunks_exact(9).enumerate() {
        let g: [[T; 3]; 3] = std::array::from_fn(|i| std::array::from_fn(|j| g[3 * i + j]));
        let t = sandwich(g, g_);
        for (xi, &value) in t.iter().flatten().enumerate() {
            u[xi * o_count * c_count + oc] = value;
        }
    }
    u
}

/// `dg = Gᵀ dU G` of every `(o, c)` of `du` (laid out as [`transform_weights`]'s result):
/// the weight gradient `[O, C, 3, 3]`.
fn transform_weight_grad<T: Float>(du: &[T], o_count: usize, c_count: usize) -> Vec<T> {
    let plane = o_count * c_count;
    let mut dw = pool::zeros(9 * plane);
    for (oc, dg) in dw.chunks_exact_mut(9).enumerate() {
        let u: [[T; 4]; 4] =
            std::array::from_fn(|i| std::array::from_fn(|j| du[(4 * i + j) * plane + oc]));
        for (d, &value) in dg.iter_mut().zip(sandwich(u, g_t).iter().flatten()) {
            *d = value;
        }
    }
    dw
}

/// The 16 slices `data[ξ · stride + start ..][..len]`, one per position `ξ`.
fn streams<T>(data: &[T], stride: usize, start: usize, len: usize) -> [&[T]; XI] {
    std::array::from_fn(|xi| &data[xi * stride + start..][..len])
}

/// [`streams`], mutable (`data` holds at least `XI · stride` elements).
fn streams_mut<T>(data: &mut [T], stride: usize, start: usize, len: usize) -> [&mut [T]; XI] {
    let mut chunks = data.chunks_exact_mut(stride);
    std::array::from_fn(|_| &mut chunks.next().expect("XI strides")[start..][..len])
}

/// Writes the elements `2k` of `row` to `even[k]` and the elements `2k + 1` to `odd[k]`.
#[inline(always)]
fn deinterleave<T: Copy>(row: &[T], even: &mut [T], odd: &mut [T]) {
    let mut pairs = row.chunks_exact(2);
    for ((pair, e), o) in (&mut pairs).zip(even.iter_mut()).zip(odd) {
        [*e, *o] = [pair[0], pair[1]];
    }
    if let [last] = pairs.remainder() {
        even[row.len() / 2] = *last;
    }
}

/// The elements `range` of each of four streams (a chunk of 4 of [`streams_mut`]'s 16).
#[inline(always)]
fn four_runs<'a, T>(streams: &'a mut [&mut [T]], range: &Range<usize>) -> [&'a mut [T]; 4] {
    let [o0, o1, o2, o3] = streams else {
        unreachable!("chunks of 4")
    };
    [
        &mut o0[range.clone()],
        &mut o1[range.clone()],
        &mut o2[range.clone()],
        &mut o3[range.clone()],
    ]
}

/// The transformed input and the products of one block of images (one half's buffers).
struct Workspace<T> {
    /// A zero-bordered input plane (`2·TH + 2` rows of `2·TW + 2`, the input at row
    /// `pad_h`, column `pad_w`; only that interior is ever written), each row stored as its
    /// even columns then its odd ones (`TW + 1` each), so that tiles read it in runs.
    bordered: PooledVec<T>,
    /// `Bᵀ d` or `A dY` of one row of tiles: 4 rows of the bordered plane's width.
    rows: PooledVec<T>,
    /// `4 · TH · TW` elements: an output-gradient plane in whole tiles (`2·TH` rows of
    /// `2·TW`, each its even columns then its odd ones, zero outside `OH × OW`, where
    /// nothing is written), or the four outputs of every tile of an output plane.
    tiled: PooledVec<T>,
    /// `V_ξ[C × T]` at `ξ · C · T`.
    v: PooledVec<T>,
    /// `M_ξ[O × T]` (or `dM_ξ`) at `ξ · O · T`.
    m: PooledVec<T>,
}

impl<T: Float> Workspace<T> {
    fn new(g: &Conv2dGeometry, tiling: Tiling, images: usize) -> Self {
        let tiles = images * tiling.per_image();
        Workspace {
            bordered: PooledVec::zeros(tiling.bordered()),
            rows: PooledVec::zeros(4 * tiling.width),
            tiled: PooledVec::zeros(4 * tiling.per_image()),
            v: PooledVec::zeros(XI * g.in_channels * tiles),
            m: PooledVec::zeros(XI * g.out_channels * tiles),
        }
    }

    /// Writes `V = Bᵀ d B` of every channel and tile of the images `images` of `xs` into
    /// `self.v` (`V_ξ[c, t]` at `(ξ · C + c) · T + t`, tile `t = b · TH·TW + ti · TW + tj`
    /// of the block's image `b`); returns `T`. Per row of tiles, `Bᵀ` combines four
    /// bordered rows whole, then `B` combines the even and odd columns of the tiles.
    fn transform_input(
        &mut self,
        xs: &[T],
        g: &Conv2dGeometry,
        tiling: Tiling,
        images: Range<usize>,
    ) -> usize {
        let [h, w] = g.input_hw;
        let [ph, pw] = g.padding;
        let (c_count, hw, tpi) = (g.in_channels, h * w, tiling.per_image());
        let tiles = images.len() * tpi;
        let (width, cols, half) = (tiling.width, tiling.cols, tiling.cols + 1);
        for c in 0..c_count {
            for (b, image) in images.clone().enumerate() {
                let x = &xs[(image * c_count + c) * hw..][..hw];
                for (r, row) in x.chunks_exact(w).enumerate() {
                    let bordered = &mut self.bordered[(r + ph) * width..][..width];
                    let (even, odd) = bordered.split_at_mut(half);
                    // Where inputs `2k` and `2k + 1` go (columns `2k + pw` and `2k + 1 + pw`).
                    let (first, second) = if pw % 2 == 0 {
                        (&mut even[pw / 2..], &mut odd[pw / 2..])
                    } else {
                        (&mut odd[pw / 2..], &mut even[pw / 2 + 1..])
                    };
                    deinterleave(row, first, second);
                }
                let mut out = streams_mut(&mut self.v, c_count * tiles, c * tiles + b * tpi, tpi);
                for ti in 0..tiling.rows {
                    let d = &self.bordered[2 * ti * width..][..4 * width];
                    let (d0, rest) = d.split_at(width);
                    let (d1, rest) = rest.split_at(width);
                    let (d2, d3) = rest.split_at(width);
                    let (e0, rest) = self.rows.split_at_mut(width);
                    let (e1, rest) = rest.split_at_mut(width);
                    let (e2, e3) = rest.split_at_mut(width);
                    map_runs([d0, d1, d2, d3], [e0, e1, e2, e3], b_t);
                    let tile_row = ti * cols..(ti + 1) * cols;
                    for (e, out) in self.rows.chunks_exact(width).zip(out.chunks_exact_mut(4)) {
                        let (even, odd) = e.split_at(half);
                        let (x0, x1) = (&even[..cols], &odd[..cols]);
                        let (x2, x3) = (&even[1..=cols], &odd[1..=cols]);
                        map_runs([x0, x1, x2, x3], four_runs(out, &tile_row), b_t);
                    }
                }
            }
        }
        tiles
    }

    /// Writes `dM = A dY Aᵀ` of every output channel and tile of the images `images` of the
    /// output gradient `gs` into `self.m` (laid out as `M`), `dY` zero outside the output.
    fn transform_output_grad(
        &mut self,
        gs: &[T],
        g: &Conv2dGeometry,
        tiling: Tiling,
        images: Range<usize>,
    ) {
        let ow = g.output_hw[1];
        let (o_count, p, tpi) = (g.out_channels, g.out_plane(), tiling.per_image());
        let tiles = images.len() * tpi;
        let (cols, tw) = (tiling.cols, 2 * tiling.cols);
        for (b, image) in images.enumerate() {
            for o in 0..o_count {
                let plane = &gs[(image * o_count + o) * p..][..p];
                for (r, row) in plane.chunks_exact(ow).enumerate() {
                    let (even, odd) = self.tiled[r * tw..][..tw].split_at_mut(cols);
                    deinterleave(row, even, odd);
                }
                let mut out = streams_mut(&mut self.m, o_count * tiles, o * tiles + b * tpi, tpi);
                for ti in 0..tiling.rows {
                    // `A dY` of the row of tiles, then `(A dY) Aᵀ` from its even and odd
                    // columns.
                    let (y0, y1) = self.tiled[2 * ti * tw..][..2 * tw].split_at(tw);
                    let (q0, rest) = self.rows.split_at_mut(tw);
                    let (q1, rest) = rest.split_at_mut(tw);
                    let (q2, rest) = rest.split_at_mut(tw);
                    map_runs([y0, y1], [q0, q1, q2, &mut rest[..tw]], a_);
                    let tile_row = ti * cols..(ti + 1) * cols;
                    for (q, out) in self.rows.chunks_exact(tw).zip(out.chunks_exact_mut(4)) {
                        let (even, odd) = q.split_at(cols);
                        map_runs([even, odd], four_runs(out, &tile_row), a_);
                    }
                }
            }
        }
    }

    /// Writes the outputs `Aᵀ M A` (plus the bias, through `relu` if asked) of `images`
    /// images from `self.m` into every element of `y` (`[images, O, OH, OW]`): whole tiles
    /// into `self.tiled`, then its part inside the output.
    fn transform_output(
        &mut self,
        g: &Conv2dGeometry,
        tiling: Tiling,
        images: usize,
        epilogue: Epilogue<'_, T>,
        y: &mut [MaybeUninit<T>],
    ) {
        let ow = g.output_hw[1];
        let (o_count, p, tpi) = (g.out_channels, g.out_plane(), tiling.per_image());
        let tiles = images * tpi;
        let cols = tiling.cols;
        for (bo, plane) in y.chunks_exact_mut(p).enumerate() {
            let (b, o) = (bo / o_count, bo % o_count);
            let m = streams(&self.m, o_count * tiles, o * tiles + b * tpi, tpi);
            // `Aᵀ M A` of every tile, output `(i, j)` of tile `t` at `quads[2·i + j][t]`.
            let (q0, rest) = self.tiled.split_at_mut(tpi);
            let (q1, rest) = rest.split_at_mut(tpi);
            let (q2, q3) = rest.split_at_mut(tpi);
            for t in 0..tpi {
                let rows: [[T; 2]; 4] = std::array::from_fn(|a| {
                    a_t([
                        m[4 * a][t],
                        m[4 * a + 1][t],
                        m[4 * a + 2][t],
                        m[4 * a + 3][t],
                    ])
                });
                [q0[t], q2[t]] = a_t([rows[0][0], rows[1][0], rows[2][0], rows[3][0]]);
                [q1[t], q3[t]] = a_t([rows[0][1], rows[1][1], rows[2][1], rows[3][1]]);
            }
            let bias = epilogue.bias.map_or(T::zero(), |bias| bias[o]);
            let finish = |value: T| {
                let value = value + bias;
                MaybeUninit::new(if epilogue.relu { relu(value) } else { value })
            };
            for (r, out) in plane.chunks_exact_mut(ow).enumerate() {
                let quads = &self.tiled[2 * (r % 2) * tpi..][..2 * tpi];
                let (left, right) = quads.split_at(tpi);
                let tile_row = r / 2 * cols..(r / 2 + 1) * cols;
                let (left, right) = (&left[tile_row.clone()], &right[tile_row]);
                let mut pairs = out.chunks_exact_mut(2);
                for (out, (&l, &r)) in (&mut pairs).zip(left.iter().zip(right)) {
                    [out[0], out[1]] = [finish(l), finish(r)];
                }
                if let [last] = pairs.into_remainder() {
                    *last = finish(left[cols - 1]);
                }
            }
        }
    }
}

/// The 16 products `out_ξ = a_ξ · b_ξ` (or `a_ξ · b_ξᵀ`), `a_ξ` `m × k` at `ξ · m · k` of
/// `a`, `b_ξ` `k × n` (`n × k` if `transpose_b`) at `ξ · k · n` of `b`, `out_ξ` `m × n`.
fn products<T: Float>(
    product: Product<T>,
    a: &[T],
    b: &[T],
    out: &mut [T],
    (m, k, n): (usize, usize, usize),
    transpose_b: bool,
) {
    for xi in 0..XI {
        let a = ArrayView2::from_shape((m, k), &a[xi * m * k..][..m * k]).expect("m · k");
        let b = &b[xi * k * n..][..k * n];
        let b = if transpose_b {
            ArrayView2::from_shape((n, k), b)
                .expect("n · k")
                .reversed_axes()
        } else {
            ArrayView2::from_shape((k, n), b).expect("k · n")
        };
        let out = &mut out[xi * m * n..][..m * n];
        let mut out = ArrayViewMut2::from_shape((m, n), out).expect("m · n");
        product(&a, &b, &mut out);
    }
}

/// The forward convolution of `xs` (`[n, C, H, W]`, standard layout) by `w` (`[O, C, 3,
/// 3]`, standard layout), with `epilogue`: `[n, O, OH, OW]` in standard layout. The
/// geometry must be one [`supports`] accepts.
pub(super) fn forward<T: Float>(
    xs: &[T],
    w: &[T],
    epilogue: Epilogue<'_, T>,
    g: &Conv2dGeometry,
    n: usize,
) -> Vec<T> {
    let block = Tiling::new(g).images_per_block::<T>(g, TILE_BUDGET_BYTES);
    forward_in_blocks(xs, w, epilogue, g, n, block)
}

/// [`forward`] in blocks of `block` images.
fn forward_in_blocks<T: Float>(
    xs: &[T],
    w: &[T],
    epilogue: Epilogue<'_, T>,
    g: &Conv2dGeometry,
    n: usize,
    block: usize,
) -> Vec<T> {
    assert!(supports(g), "winograd: unsupported geometry {g:?}");
    let (c_count, o_count) = (g.in_channels, g.out_channels);
    let tiling = Tiling::new(g);
    let u = transform_weights(w, o_count, c_count);
    let plan = Plan::new(g, n, block);
    let per_image = o_count * g.out_plane();
    // The output is allocated without a zero fill, then written by the halves (in
    // parallel, first touch included).
    let mut y: Vec<T> = pool::vec(n * per_image);
    let spare = &mut y.spare_capacity_mut()[..n * per_image];
    plan.for_halves(spare, per_image, plan.product(), |images, out, product| {
        let mut ws = Workspace::new(g, tiling, plan.chunk.min(images.len()));
        for block in plan.chunks(images.clone()) {
            let tiles = ws.transform_input(xs, g, tiling, block.clone());
            let dims = (o_count, c_count, tiles);
            products(product, &u, &ws.v, &mut ws.m, dims, false);
            let first = (block.start - images.start) * per_image;
            let y = &mut out[first..][..block.len() * per_image];
            ws.transform_output(g, tiling, block.len(), epilogue, y);
        }
    });
    // SAFETY: the halves of `for_halves` cover images `0..n`, whose blocks are the
    // `n · per_image` elements of `spare`, and `transform_output` writes every element of
    // the block it is given: every row of `OW` outputs of every plane, in pairs and a last
    // odd one.
    unsafe { y.set_len(n * per_image) };
    y
}

/// The input gradient `[n, C, H, W]` of the convolution of geometry `g` (one [`supports`]
/// accepts), `gs` being the output gradient `[n, O, OH, OW]` and `w` the weight (both
/// standard layout): the forward convolution of `gs` by `w` flipped in both spatial axes,
/// input and output channels swapped, padding `2 − pad`.
pub(super) fn input_grad<T: Float>(gs: &[T], w: &[T], g: &Conv2dGeometry, n: usize) -> Vec<T> {
    assert!(supports(g), "winograd: unsupported geometry {g:?}");
    let (c_count, o_count) = (g.in_channels, g.out_channels);
    let [oh, ow] = g.output_hw;
    let padding = g.padding.map(|p| 2 - p);
    let (flipped, _) = Conv2dGeometry::new(
        &[n, o_count, oh, ow],
        &[c_count, o_count, 3, 3],
        [1, 1],
        padding,
        [1, 1],
        1,
    )
    .expect("the transposed geometry of a valid one");
    let mut wf = PooledVec::zeros(w.len());
    for (oc, g) in w.chunks_exact(9).enumerate() {
        let (o, c) = (oc / c_count, oc % c_count);
        for (k, &value) in g.iter().enumerate() {
            wf[(c * o_count + o) * 9 + 8 - k] = value;
        }
    }
    forward(gs, &wf, Epilogue::default(), &flipped, n)
}

/// The weight gradient `[O, C, 3, 3]` of the convolution of geometry `g` (one [`supports`]
/// accepts), `xs` being the input `[n, C, H, W]` and `gs` the output gradient `[n, O, OH,
/// OW]` (both standard layout).
pub(super) fn weight_grad<T: Float>(xs: &[T], gs: &[T], g: &Conv2dGeometry, n: usize) -> Vec<T> {
    let block = Tiling::new(g).images_per_block::<T>(g, TILE_BUDGET_BYTES);
    weight_grad_in_blocks(xs, gs, g, n, block)
}

/// [`weight_grad`] in blocks of `block` images.
fn weight_grad_in_blocks<T: Float>(
    xs: &[T],
    gs: &[T],
    g: &Conv2dGeometry,
    n: usize,
    block: usize,
) -> Vec<T> {
    assert!(supports(g), "winograd: unsupported geometry {g:?}");
    let (c_count, o_count) = (g.in_channels, g.out_channels);
    let tiling = Tiling::new(g);
    let plan = Plan::new(g, n, block);
    // Each half sums into its own `du`, both taken here from this thread's pool.
    let half = |images: Range<usize>, product: Product<T>, du: &mut [T]| {
        let mut ws = Workspace::new(g, tiling, plan.chunk.min(images.len()));
        for block in plan.chunks(images) {
            let tiles = ws.transform_input(xs, g, tiling, block.clone());
            ws.transform_output_grad(gs, g, tiling, block);
            let dims = (o_count, tiles, c_count);
            products(product, &ws.m, &ws.v, du, dims, true);
        }
    };
    let product = plan.product_add();
    let mut du = PooledVec::zeros(XI * o_count * c_count);
    match plan.mid {
        None => half(0..n, product, &mut du),
        Some(mid) => {
            let mut second = PooledVec::zeros(du.len());
            join(
                || half(0..mid, product, &mut du),
                || half(mid..n, product, &mut second),
            );
            du.iter_mut().zip(second.iter()).for_each(|(a, &b)| *a += b);
        }
    }
    transform_weight_grad(&du, o_count, c_count)
}

#[cfg(test)]
mod tests;
