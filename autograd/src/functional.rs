//! Function transforms on top of [`Tape::grad`], as in JAX and `torch.func`: [`vjp`],
//! [`jvp`], [`hvp`], [`jacobian`] and [`hessian`] of a function of arrays, and
//! [`jacobian_matrix`] and [`hessian_matrix`] of a function of one vector, as matrices.
//!
//! A function is written as for [`gradcheck`](crate::gradcheck): it records its computation
//! on the tape it is given, from one variable per input array ([`Inputs`]: `v[0]`, `v[1]`,
//! ...), and returns its output; it may borrow what it captures (a layer, an array). Each
//! transform records it on a fresh tape and returns plain arrays.
//!
//! | JAX / `torch.func` | tapegrad | cost |
//! |---|---|---|
//! | `jax.vjp(f, x)` / `torch.func.vjp` | [`vjp`]`(f, &[x], &u)` | one forward, one backward |
//! | `jax.jvp(f, (x,), (v,))` / `torch.func.jvp` | [`jvp`]`(f, &[x], &[v])` | one forward, two backwards (double reverse) |
//! | `jax.hessian(f)(x) @ v` / `torch.func.hvp` | [`hvp`]`(f, &[x], &[v])` | one forward, two backwards |
//! | `jax.jacrev(f)(x)` / `torch.func.jacrev` | [`jacobian`]`(f, &[x])` | one backward per output element |
//! | `jax.hessian(f)(x)` / `torch.func.hessian` | [`hessian`]`(f, &[x])` | one backward per output and input element |
//! | the same, `x` one vector | [`jacobian_matrix`]`(f, &x)`, [`hessian_matrix`]`(f, &x)`: `Array2` | as above |
//!
//! ```
//! use ndarray::array;
//! use tapegrad_autograd::functional::{hessian, hessian_matrix, jacobian};
//! use tapegrad_autograd::{Inputs, Tape, Var};
//!
//! // f(x) = x₀² x₁: ∇f = [2 x₀ x₁, x₀²], H = [[2 x₁, 2 x₀], [2 x₀, 0]].
//! fn f<'t>(_tape: &'t Tape<'t, f64>, v: &Inputs<'t, '_, f64>) -> Var<'t, f64> {
//!     (v[0].slice(0, 0, 1).square() * v[0].slice(0, 1, 2)).sum()
//! }
//! let x = array![3.0, 2.0];
//! assert_eq!(jacobian(f, &[x.clone().into_dyn()])[0], array![12.0, 9.0].into_dyn());
//! assert_eq!(hessian(f, &[x.clone().into_dyn()])[0][0], array![[4.0, 6.0], [6.0, 0.0]].into_dyn());
//! let h = hessian_matrix(f, &x);                     // an Array2: `dot` works on it
//! assert_eq!(h.dot(&array![1.0, 0.0]), array![4.0, 6.0]);
//! ```

use ndarray::{Array1, Array2, ArrayD, Ix2, IxDyn};

use crate::{Float, Inputs, Tape, Var};

/// One variable per input array, on `tape`.
fn leaves<'t, T: Float>(tape: &'t Tape<'t, T>, inputs: &[ArrayD<T>]) -> Vec<Var<'t, T>> {
    inputs.iter().map(|x| tape.var(x.clone())).collect()
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
pub fn vjp<'env, T: Float, F>(
    f: F,
    inputs: &[ArrayD<T>],
    cotangent: &ArrayD<T>,
) -> (ArrayD<T>, Vec<ArrayD<T>>)
where
    F: for<'t> Fn(&'t Tape<'t, T>, &Inputs<'t, 'env, T>) -> Var<'t, T>,
{
    let tape = Tape::new();
    let vars = leaves(&tape, inputs);
    let output = f(&tape, &Inputs::new(&vars));
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
pub fn jvp<'env, T: Float, F>(
    f: F,
    inputs: &[ArrayD<T>],
    tangents: &[ArrayD<T>],
) -> (ArrayD<T>, ArrayD<T>)
where
    F: for<'t> Fn(&'t Tape<'t, T>, &Inputs<'t, 'env, T>) -> Var<'t, T>,
{
    check_like_inputs("jvp", "tangent", tangents, inputs);
    let tape = Tape::new();
    let vars = leaves(&tape, inputs);
    let output = f(&tape, &Inputs::new(&vars));
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
pub fn hvp<'env, T: Float, F>(
    f: F,
    inputs: &[ArrayD<T>],
    vectors: &[ArrayD<T>],
) -> (T, Vec<ArrayD<T>>)
where
    F: for<'t> Fn(&'t Tape<'t, T>, &Inputs<'t, 'env, T>) -> Var<'t, T>,
{
    check_like_inputs("hvp", "vector", vectors, inputs);
    let tape = Tape::new();
    let vars = leaves(&tape, inputs);
    let output = f(&tape, &Inputs::new(&vars));
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
pub fn jacobian<'env, T: Float, F>(f: F, inputs: &[ArrayD<T>]) -> Vec<ArrayD<T>>
where
    F: for<'t> Fn(&'t Tape<'t, T>, &Inputs<'t, 'env, T>) -> Var<'t, T>,
{
    let tape = Tape::new();
    let vars = leaves(&tape, inputs);
    let output = f(&tape, &Inputs::new(&vars));
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

/// The Hessian of `f`: blocks `H[i][j]` of shape `[output shape.., input i shape.., input j
/// shape..]` (element `[o.., a.., b..]` is `∂²yₒ / ∂xᵢ[a] ∂xⱼ[b]`, as `jax.hessian`). A scalar
/// (0-D) output, the usual case, adds no axes: `H[i][j]` is `[input i shape.., input j
/// shape..]`; a vector-valued `f` gets one Hessian per output element in one call. One
/// recorded backward pass per output element, then one backward pass per output and input
/// element.
///
/// ```
/// use ndarray::array;
/// use tapegrad_autograd::functional::hessian;
///
/// // f(x, y) = x y (one element each): ∂²f/∂x∂y = 1, ∂²f/∂x² = 0.
/// let h = hessian(|_t, v| (v[0] * v[1]).sum(), &[array![2.0].into_dyn(), array![5.0].into_dyn()]);
/// assert_eq!(h[0][1], array![[1.0]].into_dyn());
/// assert_eq!(h[0][0], array![[0.0]].into_dyn());
///
/// // Vector-valued: y = [x₀², x₀ x₁], two 2 × 2 Hessians.
/// let x = array![3.0, 2.0].into_dyn();
/// let h = hessian(|_t, v| v[0] * v[0].slice(0, 0, 1), &[x]);
/// assert_eq!(h[0][0], array![[[2.0, 0.0], [0.0, 0.0]], [[0.0, 1.0], [1.0, 0.0]]].into_dyn());
/// ```
#[track_caller]
pub fn hessian<'env, T: Float, F>(f: F, inputs: &[ArrayD<T>]) -> Vec<Vec<ArrayD<T>>>
where
    F: for<'t> Fn(&'t Tape<'t, T>, &Inputs<'t, 'env, T>) -> Var<'t, T>,
{
    let tape = Tape::new();
    let vars = leaves(&tape, inputs);
    let output = f(&tape, &Inputs::new(&vars));
    let out_shape = output.shape();
    let n_out: usize = out_shape.iter().product();
    let mut blocks: Vec<Vec<ArrayD<T>>> = vars
        .iter()
        .map(|a| {
            vars.iter()
                .map(|b| {
                    let shape: Vec<usize> = out_shape
                        .iter()
                        .chain(&a.shape())
                        .chain(&b.shape())
                        .copied()
                        .collect();
                    ArrayD::zeros(shape)
                })
                .collect()
        })
        .collect();
    let mut seed = ArrayD::zeros(IxDyn(&out_shape));
    for o in 0..n_out {
        set_flat(&mut seed, o, T::one());
        let grads = tape.grad_with_seed(output, seed.clone(), &vars);
        set_flat(&mut seed, o, T::zero());
        for (row, &g) in blocks.iter_mut().zip(&grads) {
            for (block, part) in row.iter_mut().zip(rows_of_backward(g, &vars)) {
                let len = part.len();
                let dst = block
                    .as_slice_mut()
                    .expect("a fresh array in standard layout");
                for (d, s) in dst[o * len..(o + 1) * len].iter_mut().zip(part.iter()) {
                    *d = *s;
                }
            }
        }
    }
    blocks
}

/// Panics naming `op` unless `output` is 0-D or 1-D.
#[track_caller]
fn check_vector<T: Float>(op: &str, output: Var<'_, T>) {
    let shape = output.shape();
    if shape.len() > 1 {
        panic!("{op}: f must return a scalar or a vector, got shape {shape:?}");
    }
}

/// The Jacobian of a function of one vector `x` (`[n]`) with a vector (`[m]`) or scalar
/// output, as an `[m, n]` matrix (`[1, n]` for a scalar): [`jacobian`] for the case where
/// `ndarray`'s `dot` and `t` are wanted on the result. `f` reads its input as `v[0]`. One
/// backward pass per output element.
///
/// Panics naming the op if `f` returns more than one axis.
///
/// ```
/// use ndarray::array;
/// use tapegrad_autograd::functional::jacobian_matrix;
///
/// // f(x) = A x: the Jacobian is A.
/// let a = array![[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]];
/// let j = jacobian_matrix(|tape, v| tape.constant(a.clone().into_dyn()).matmul(v[0]), &array![1.0, -1.0]);
/// assert_eq!(j, a);
/// assert_eq!(j.dot(&array![1.0, 1.0]), array![3.0, 7.0, 11.0]);
/// ```
#[track_caller]
pub fn jacobian_matrix<'env, T: Float, F>(f: F, x: &Array1<T>) -> Array2<T>
where
    F: for<'t> Fn(&'t Tape<'t, T>, &Inputs<'t, 'env, T>) -> Var<'t, T>,
{
    let tape = Tape::new();
    let vars = leaves(&tape, &[x.clone().into_dyn()]);
    let output = f(&tape, &Inputs::new(&vars));
    check_vector("jacobian_matrix", output);
    let n_out = output.shape().iter().product::<usize>();
    let block = rows_of_backward(output, &vars).remove(0);
    block
        .into_shape_with_order((n_out, x.len()))
        .expect("a fresh array in standard layout")
}

/// The Hessian of a scalar function of one vector `x` (`[n]`), as an `[n, n]` matrix:
/// [`hessian`] for the case where `ndarray`'s `dot` is wanted on the result (a Newton step
/// solves `H s = ∇f`). `f` reads its input as `v[0]`. One recorded backward pass, then one
/// backward pass per element of `x`.
///
/// Panics naming the op if `f` does not return one element.
///
/// ```
/// use ndarray::array;
/// use tapegrad_autograd::functional::hessian_matrix;
///
/// // f(x) = Σ x³: H = diag(6x).
/// let h = hessian_matrix(|_t, v| v[0].powi(3).sum(), &array![1.0, -2.0]);
/// assert_eq!(h.dot(&array![1.0, 1.0]), array![6.0, -12.0]);
/// ```
#[track_caller]
pub fn hessian_matrix<'env, T: Float, F>(f: F, x: &Array1<T>) -> Array2<T>
where
    F: for<'t> Fn(&'t Tape<'t, T>, &Inputs<'t, 'env, T>) -> Var<'t, T>,
{
    let tape = Tape::new();
    let vars = leaves(&tape, &[x.clone().into_dyn()]);
    let output = f(&tape, &Inputs::new(&vars));
    check_scalar("hessian_matrix", output);
    let gradient = tape.grad(output, &vars)[0];
    rows_of_backward(gradient, &vars)
        .remove(0)
        .into_dimensionality::<Ix2>()
        .expect("an [n, n] block")
}
