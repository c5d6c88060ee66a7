//! Generic code compiled once per element type, in the crate that defines it.
//!
//! Rust compiles a generic function in the crate that names its concrete types: `matmul`
//! of `f32` called from a user's binary is compiled into that binary, with everything it
//! calls, and again after every edit of it (in release builds, where crates do not share
//! their instantiations). A call that goes to a method of a trait implemented for `f32`
//! and `f64` in the defining crate stops that chain: the method is an ordinary function,
//! compiled with its crate, and the binary only calls it. [`Compiled`] does this for the
//! tape's heavy paths (the backward sweeps, each primitive's kernels); [`FloatFn`] with
//! [`Float::call`] lets the other crates do it for theirs (`fit`, the optimizers' steps).

use ndarray::ArrayD;

use crate::graph::{BinaryOp, UnaryOp};
use crate::kernels::pool::{Pooled, Shared, SharedList};
use crate::kernels::pool2d::Pool2dGeometry;
use crate::{Conv2dOptions, Float, Grads, Tape, Var};

/// A function with one body for `f32` and one for `f64`, each compiled in the crate that
/// implements this trait. Generic code reaches it through [`Float::call`]: `T::call::<F>(args)`
/// runs `F::f32(args)` or `F::f64(args)`, so the crate that calls it with a concrete type
/// compiles a call, not the body.
///
/// The arguments are one value (a tuple for several) whose type is written once for any
/// `T`, with one lifetime `'a` for its borrows; the implementing type may carry other
/// lifetimes. Both bodies are usually the same call of a generic function:
///
/// ```
/// use tapegrad_autograd::{Float, FloatFn};
///
/// /// The sum of squares, compiled in this crate for both types.
/// struct SumOfSquares;
///
/// impl FloatFn for SumOfSquares {
///     type Args<'a, T: Float> = &'a [T];
///     type Output<'a, T: Float> = T;
///     fn f32<'a>(args: Self::Args<'a, f32>) -> Self::Output<'a, f32> {
///         sum_of_squares(args)
///     }
///     fn f64<'a>(args: Self::Args<'a, f64>) -> Self::Output<'a, f64> {
///         sum_of_squares(args)
///     }
/// }
///
/// fn sum_of_squares<T: Float>(x: &[T]) -> T {
///     x.iter().map(|&v| v * v).sum()
/// }
///
/// /// The entry point generic code calls: a call of `SumOfSquares::f32` or `::f64`.
/// pub fn norm2<T: Float>(x: &[T]) -> T {
///     T::call::<SumOfSquares>(x)
/// }
///
/// assert_eq!(norm2(&[3.0_f32, 4.0]), 25.0);
/// ```
pub trait FloatFn {
    /// The arguments, for element type `T`.
    type Args<'a, T: Float>;
    /// The result, for element type `T`.
    type Output<'a, T: Float>;
    /// The body for `f32`.
    fn f32<'a>(args: Self::Args<'a, f32>) -> Self::Output<'a, f32>;
    /// The body for `f64`.
    fn f64<'a>(args: Self::Args<'a, f64>) -> Self::Output<'a, f64>;
}

/// Writes the trait [`Compiled`] from a list of `fn name<'t>(args) -> output = path;` and
/// implements it for `f32` and `f64`, each method a call of the generic function `path`.
macro_rules! compiled {
    (@trait $(
        $(#[$attr:meta])*
        fn $name:ident<$t:lifetime>($($arg:ident: $ty:ty),* $(,)?) -> $out:ty = $path:path;
    )*) => {
        /// The tape's heavy generic paths, as methods implemented for `f32` and `f64` in
        /// this crate (see the [module documentation](self)). A supertrait of [`Float`]
        /// that no other crate can name: it seals `Float` to these two types.
        #[allow(
            private_interfaces,
            reason = "sealed: implemented here for f32 and f64 and called only by this crate"
        )]
        pub trait Compiled: Sized + 'static {
            $(
                $(#[$attr])*
                fn $name<$t>($($arg: $ty),*) -> $out
                where
                    Self: Float;
            )*
        }
    };
    (@impl $float:ty; $(
        $(#[$attr:meta])*
        fn $name:ident<$t:lifetime>($($arg:ident: $ty:ty),* $(,)?) -> $out:ty = $path:path;
    )*) => {
        #[allow(
            private_interfaces,
            reason = "sealed: implemented here for f32 and f64 and called only by this crate"
        )]
        impl Compiled for $float {
            $(
                $(#[$attr])*
                fn $name<$t>($($arg: $ty),*) -> $out {
                    $path($($arg),*)
                }
            )*
        }
    };
    ($($list:tt)*) => {
        compiled!(@trait $($list)*);
        compiled!(@impl f32; $($list)*);
        compiled!(@impl f64; $($list)*);
    };
}

compiled! {
    // The backward sweeps: every rule, on arrays, numbers and `Var`s.
    fn backward<'t>(tape: &'t Tape<'t, Self>, output: usize, seed: Option<ArrayD<Self>>)
        -> Grads<Self> = crate::backward::first_order::sweep;
    fn grad_sweep<'t>(tape: &'t Tape<'t, Self>, output: usize, seed: Var<'t, Self>, lowest: usize)
        -> Vec<Option<Var<'t, Self>>> = crate::backward::higher_order::sweep;

    // The primitives' forward kernels and recording (of arrays: one-element values take
    // the inlined path of `Tape::record_one_element`).
    #[track_caller]
    fn record_binary<'t>(a: Var<'t, Self>, b: Var<'t, Self>, op: BinaryOp)
        -> Var<'t, Self> = crate::ops::binary::record_arrays;
    #[track_caller]
    fn record_unary<'t>(x: Var<'t, Self>, op: UnaryOp<Self>)
        -> Var<'t, Self> = crate::ops::unary::record_array;
    #[track_caller]
    fn record_matmul<'t>(a: Var<'t, Self>, b: Var<'t, Self>)
        -> Var<'t, Self> = crate::ops::matmul::record;
    #[track_caller]
    fn record_solve<'t>(a: Var<'t, Self>, b: Var<'t, Self>)
        -> Var<'t, Self> = crate::ops::solve::record;
    #[track_caller]
    fn record_linear<'t>(x: Var<'t, Self>, kernel: Var<'t, Self>, bias: Option<Var<'t, Self>>, relu: bool)
        -> Var<'t, Self> = crate::ops::linear::record;
    #[track_caller]
    fn record_sum<'t>(x: Var<'t, Self>, axes: &[usize], keepdim: bool)
        -> Var<'t, Self> = crate::ops::sum::record;
    #[track_caller]
    fn record_extremum<'t>(x: Var<'t, Self>, name: &str, axes: &[usize], keepdim: bool, is_max: bool)
        -> Var<'t, Self> = crate::ops::extremum::record;
    #[track_caller]
    fn record_prod<'t>(x: Var<'t, Self>, axis: usize, keepdim: bool)
        -> Var<'t, Self> = crate::ops::prod::record;
    #[track_caller]
    fn record_reshape<'t>(x: Var<'t, Self>, shape: &[usize])
        -> Var<'t, Self> = crate::ops::reshape::record;
    #[track_caller]
    fn record_broadcast_to<'t>(x: Var<'t, Self>, shape: &[usize])
        -> Var<'t, Self> = crate::ops::broadcast_to::record;
    #[track_caller]
    fn record_permute<'t>(x: Var<'t, Self>, axes: &[usize])
        -> Var<'t, Self> = crate::ops::permute::record;
    #[track_caller]
    fn record_slice<'t>(x: Var<'t, Self>, axis: usize, start: usize, end: usize)
        -> Var<'t, Self> = crate::ops::slice::record;
    #[track_caller]
    fn record_concat<'t>(vars: &[Var<'t, Self>], axis: usize)
        -> Var<'t, Self> = crate::ops::concat::record;
    #[track_caller]
    fn record_index_select<'t>(x: Var<'t, Self>, axis: usize, indices: SharedList)
        -> Var<'t, Self> = crate::ops::index_select::record;
    #[track_caller]
    fn record_gather<'t>(x: Var<'t, Self>, axis: usize, index: Shared<Pooled<usize>>)
        -> Var<'t, Self> = crate::ops::gather::record;
    #[track_caller]
    fn record_where<'t>(cond: Var<'t, Self>, on_true: Var<'t, Self>, on_false: Var<'t, Self>)
        -> Var<'t, Self> = crate::ops::select::record;
    #[track_caller]
    fn record_conv2d<'t>(x: Var<'t, Self>, weight: Var<'t, Self>, bias: Option<Var<'t, Self>>, options: &Conv2dOptions, relu: bool)
        -> Var<'t, Self> = crate::ops::conv2d::record_checked;
    #[track_caller]
    fn record_avg_pool2d<'t>(x: Var<'t, Self>, geometry: Shared<Pool2dGeometry>, count_include_pad: bool)
        -> Var<'t, Self> = crate::ops::avg_pool2d::record;
    #[track_caller]
    fn record_max_pool2d<'t>(x: Var<'t, Self>, geometry: Pool2dGeometry)
        -> Var<'t, Self> = crate::ops::max_pool2d::record;
}
