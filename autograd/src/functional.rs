//! Function transforms on top of [`Tape::grad`], as in JAX and `torch.func`: [`vjp`],
//! [`jvp`], [`hvp`], [`jacobian`] and [`hessian`] of a function of arrays.
//!
//! A function is written as for [`gradcheck`](crate::gradcheck): it records its computation
//! on the tape it is given, from one variable per input array, and returns its output. Each
//! transform records it on a fresh tape and returns plain arrays.
//!
//! | JAX / `torch.func` | tapegrad | cost |
//! |---|---|---|
//! | `jax.vjp(f, x)` / `torch.func.vjp` | [`vjp`]`(f, &[x], &u)` | one forward, one backward |
//! | `jax.jvp(f, (x,), (v,))` / `torch.func.jvp` | [`jvp`]`(f, &[x], &[v])` | one forward, two backwards (double reverse) |
//! | `jax.hessian(f)(x) @ v` / `torch.func.hvp` | [`hvp`]`(f, &[x], &[v])` | one forward, two backwards |
//! | `jax.jacrev(f)(x)` / `torch.func.jacrev` | [`jacobian`]`(f, &[x])` | one backward per output element |
//! | `jax.hessian(f)(x)` / `torch.func.hessian` | [`hessian`]`(f, &[x])` | one backward per input element |
//!
//! ```
//! use ndarray::array;
//! use tapegrad_autograd::functional::{hessian, jacobian};
//! use tapegrad_autograd::{Tape, Var};
//!
//! // f(x) = x₀² x₁: ∇f = [2 x₀ x₁, x₀²], H = [[2 x₁, 2 x₀], [2 x₀, 0]].
//! fn f<'t>(_tape: &'t Tape<'t, f64>, v: &[Var<'t, f64>]) -> Var<'t, f64> {
//!     (v[0].slice(0, 0, 1).square() * v[0].slice(0, 1, 2)).sum()
//! }
//! let x = array![3.0, 2.0].into_dyn();
//! assert_eq!(jacobian(f, &[x.clone()])[0], array![12.0, 9.0].into_dyn());
//! assert_eq!(hessian(f, &[x])[0][0], array![[4.0, 6.0], [6.0, 0.0]].into_dyn());
//! ```

use ndarray::{ArrayD, IxDyn};

use crate::{Float, Tape, Var};

/// Records `f` on `tape` with one variable per input array.
fn record<'t, T: Float, F>(
    tape: &'t Tape<'t, T>,
    f: &F,
    inputs: &[ArrayD<T>],
) -> (Vec<Var<'t, T>>, Var<'t, T>)
where
    F: for<'s> Fn(&'s Tape<'s, T>, &[Var<'s, T>]) -> Var<'s, T>,
{
    let vars: Vec<Var<'t, T>> = inputs.iter().map(|x| tape.var(x.clone())).collect();
    let output = f(tape, &vars);
    (vars, output)
}

/// Panics naming `op` unless `arrays` has one array per input, each of its input's shape.
#[track_caller]
fn check_like_inputs<T: Float>(op: &str, what: &str, arrays: &[ArrayD<T>], inputs: &[ArrayD<T>]) {
    if arrays.len() != inputs.len() {
        panic!(
            "{op}: {} {what} given for {} inputs",
            arrays.len(),
            inputs.len()
        );
    }
    for (i, (a, x)) in arrays.iter().zip(inputs).enumerate() {
        if a.shape() != x.shape() {
            panic!(
                "{op}: {what} {i} has shape {:?} but input {i} has shape {:?}",
                a.shape(),
                x.shape()
            );
        }
    }
}

/// Panics naming `op` unless `output` has one element.
#[track_caller]
fn check_scalar<T: Float>(op: &str, output: Var<'_, T>) {
    let shape = output.shape();
    if shape.iter().product::<usize>() != 1 {
        panic!("{op}: f must return one element, got shape {shape:?}");
    }
}

/// The value of `f` at `inputs` and its vector-Jacobian product with `cotangent` (an array
/// of the output's shape): `uᵀ J`, one array per input, each of its input's shape. One
/// forward and one backward pass.
///
/// Panics naming the op and both shapes if `cotangent`'s shape is not the output's.
///
/// ```
/// use ndarray::array;
/// use tapegrad_autograd::functional::vjp;
///
/// // f(x) = A x, so uᵀ J = Aᵀ u.
/// let a = array![[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]].into_dyn();
/// let x = array![1.0, -1.0].into_dyn();
/// let u = array![1.0, 0.0, 2.0].into_dyn();
/// let (y, grads) = vjp(|tape, v| tape.constant(a.clone()).matmul(v[0]), &[x], &u);
/// assert_eq!(y, array![-1.0, -1.0, -1.0].into_dyn());
/// assert_eq!(grads[0], array![11.0, 14.0].into_dyn());
/// ```
#[track_caller]
pub fn vjp<T: Float, F>(
    f: F,
    inputs: &[ArrayD<T>],
    cotangent: &ArrayD<T>,
) -> (ArrayD<T>, Vec<ArrayD<T>>)
where
    F: for<'t> Fn(&'t Tape<'t, T>, &[Var<'t, T>]) -> Var<'t, T>,
{
    let tape = Tape::new();
    let (vars, output) = record(&tape, &f, inputs);
    let shape = output.shape();
    if cotangent.shape() != shape.as_slice() {
        panic!(
            "vjp: the cotangent has shape {:?} but f's output has shape {shape:?}",
            cotangent.shape()
        );
    }
    let grads = output.backward_with_seed(cotangent.clone());
    let products = leaf_grads(&grads, &vars);
    (output.to_array(), products)
}

/// The gradient of each of `vars` in `grads`, zeros where the output does not depend on it.
fn leaf_grads<T: Float>(grads: &crate::Grads<T>, vars: &[Var<'_, T>]) -> Vec<ArrayD<T>> {
    vars.iter()
        .map(|&v| match grads.get(v) {
            Some(g) => g.clone(),
            None => ArrayD::zeros(v.shape()),
        })
        .collect()
}

/// The value of `f` at `inputs` and its Jacobian-vector product with `tangents` (one array
/// per input, of its shape): `J v`, of the output's shape.
///
/// Computed by the double-reverse trick, without forward-mode rules: the vector-Jacobian
/// product `g(u) = uᵀ J` is linear in `u`, so the gradient of `⟨g(u), v⟩` with respect to `u`
/// is `J v`. Two backward passes, the first recorded on the tape.
///
/// Panics naming the op if `tangents` does not match `inputs` in number and shapes.
///
/// ```
/// use ndarray::array;
/// use tapegrad_autograd::functional::jvp;
///
/// // f(x) = sin(x) elementwise, so J v = cos(x) v.
/// let x = array![0.0, 1.0].into_dyn();
/// let (y, jv) = jvp(|_t, v| v[0].sin(), &[x.clone()], &[array![2.0, 3.0].into_dyn()]);
/// assert_eq!(y, x.mapv(f64::sin));
/// assert!((jv[[1]] - 3.0 * 1.0_f64.cos()).abs() < 1e-15 && jv[[0]] == 2.0);
/// ```
#[track_caller]
pub fn jvp<T: Float, F>(
    f: F,
    inputs: &[ArrayD<T>],
    tangents: &[ArrayD<T>],
) -> (ArrayD<T>, ArrayD<T>)
where
    F: for<'t> Fn(&'t Tape<'t, T>, &[Var<'t, T>]) -> Var<'t, T>,
{
    check_like_inputs("jvp", "tangent", tangents, inputs);
    let tape = Tape::new();
    let (vars, output) = record(&tape, &f, inputs);
    let u = tape.var(ArrayD::zeros(output.shape()));
    let vjps = tape.grad_with_seed_var(output, u, &vars);
    let inner = contract(&tape, &vjps, tangents);
    let product = tape.grad(inner, &[u])[0].to_array();
    (output.to_array(), product)
}

/// `Σᵢ ⟨aᵢ, bᵢ⟩`, a scalar on `tape`.
fn contract<'t, T: Float>(
    tape: &'t Tape<'t, T>,
    vars: &[Var<'t, T>],
    arrays: &[ArrayD<T>],
) -> Var<'t, T> {
    let mut total = tape.scalar(T::zero());
    for (&v, a) in vars.iter().zip(arrays) {
        total = total + (v * tape.constant(a.clone())).sum();
    }
    total
}

/// The Hessian-vector product of a scalar function: `H v`, one array per input (block row
/// `i` is `Σⱼ Hᵢⱼ vⱼ`), with the value of `f`. The gradient of `⟨∇f, v⟩`: two backward
/// passes, the first recorded on the tape.
///
/// Panics naming the op if `f` does not return one element or `vectors` does not match
/// `inputs`.
///
/// ```
/// use ndarray::array;
/// use tapegrad_autograd::functional::hvp;
///
/// // f(x) = Σ x³, so H = diag(6x).
/// let x = array![1.0, -2.0].into_dyn();
/// let (value, hv) = hvp(|_t, v| v[0].powi(3).sum(), &[x], &[array![1.0, 1.0].into_dyn()]);
/// assert_eq!(value, -7.0);
/// assert_eq!(hv[0], array![6.0, -12.0].into_dyn());
/// ```
#[track_caller]
pub fn hvp<T: Float, F>(f: F, inputs: &[ArrayD<T>], vectors: &[ArrayD<T>]) -> (T, Vec<ArrayD<T>>)
where
    F: for<'t> Fn(&'t Tape<'t, T>, &[Var<'t, T>]) -> Var<'t, T>,
{
    check_like_inputs("hvp", "vector", vectors, inputs);
    let tape = Tape::new();
    let (vars, output) = record(&tape, &f, inputs);
    check_scalar("hvp", output);
    let grads = tape.grad(output, &vars);
    let inner = contract(&tape, &grads, vectors);
    let products = tape.grad(inner, &vars).iter().map(Var::to_array).collect();
    (output.item(), products)
}

/// The Jacobian of `f` at `inputs`: one array per input, of shape
/// `[output shape.., input shape..]` (element `[o.., i..]` is `∂yₒ / ∂xᵢ`, as
/// `torch.autograd.functional.jacobian`). One backward pass per output element.
///
/// ```
/// use ndarray::array;
/// use tapegrad_autograd::functional::jacobian;
///
/// // f(x, w) = x w for a row x and a matrix w: ∂y/∂x = wᵀ.
/// let x = array![[1.0, 2.0]].into_dyn();
/// let w = array![[1.0, 0.0, 2.0], [0.0, 1.0, 3.0]].into_dyn();
/// let j = jacobian(|_t, v| v[0].matmul(v[1]), &[x, w.clone()]);
/// assert_eq!(j[0].shape(), [1, 3, 1, 2]);
/// assert_eq!(j[1].shape(), [1, 3, 2, 3]);
/// assert_eq!(j[0].to_shape(vec![3, 2]).unwrap(), w.t());
/// ```
#[track_caller]
pub fn jacobian<T: Float, F>(f: F, inputs: &[ArrayD<T>]) -> Vec<ArrayD<T>>
where
    F: for<'t> Fn(&'t Tape<'t, T>, &[Var<'t, T>]) -> Var<'t, T>,
{
    let tape = Tape::new();
    let (vars, output) = record(&tape, &f, inputs);
    rows_of_backward(output, &vars)
}

/// The Jacobian of `output` with respect to `vars` (leaves), one first-order backward pass
/// per element of `output`: for each var, an array `[output shape.., var shape..]`.
fn rows_of_backward<T: Float>(output: Var<'_, T>, vars: &[Var<'_, T>]) -> Vec<ArrayD<T>> {
    let out_shape = output.shape();
    let n_out: usize = out_shape.iter().product();
    let mut blocks: Vec<ArrayD<T>> = vars
        .iter()
        .map(|v| {
            let shape: Vec<usize> = out_shape.iter().chain(&v.shape()).copied().collect();
            ArrayD::zeros(shape)
        })
        .collect();
    let mut seed = ArrayD::zeros(IxDyn(&out_shape));
    for row in 0..n_out {
        set_flat(&mut seed, row, T::one());
        let grads = output.backward_with_seed(seed.clone());
        set_flat(&mut seed, row, T::zero());
        for (block, g) in blocks.iter_mut().zip(leaf_grads(&grads, vars)) {
            let len = g.len();
            let dst = block
                .as_slice_mut()
                .expect("a fresh array in standard layout");
            for (d, s) in dst[row * len..(row + 1) * len].iter_mut().zip(g.iter()) {
                *d = *s;
            }
        }
    }
    blocks
}

/// Sets the `flat`-th element (row-major) of a standard-layout array.
fn set_flat<T: Float>(a: &mut ArrayD<T>, flat: usize, value: T) {
    a.as_slice_mut().expect("a fresh array in standard layout")[flat] = value;
}

/// The Hessian of a scalar function: blocks `H[i][j]` of shape
/// `[input i shape.., input j shape..]` (element `[a.., b..]` is `∂²f / ∂xᵢ[a] ∂xⱼ[b]`).
/// One recorded backward pass, then one backward pass per input element.
///
/// Panics naming the op if `f` does not return one element.
///
/// ```
/// use ndarray::array;
/// use tapegrad_autograd::functional::hessian;
///
/// // f(x, y) = x y (one element each): ∂²f/∂x∂y = 1, ∂²f/∂x² = 0.
/// let h = hessian(|_t, v| (v[0] * v[1]).sum(), &[array![2.0].into_dyn(), array![5.0].into_dyn()]);
/// assert_eq!(h[0][1], array![[1.0]].into_dyn());
/// assert_eq!(h[0][0], array![[0.0]].into_dyn());
/// ```
#[track_caller]
pub fn hessian<T: Float, F>(f: F, inputs: &[ArrayD<T>]) -> Vec<Vec<ArrayD<T>>>
where
    F: for<'t> Fn(&'t Tape<'t, T>, &[Var<'t, T>]) -> Var<'t, T>,
{
    let tape = Tape::new();
    let (vars, output) = record(&tape, &f, inputs);
    check_scalar("hessian", output);
    let grads = tape.grad(output, &vars);
    grads.iter().map(|&g| rows_of_backward(g, &vars)).collect()
}
