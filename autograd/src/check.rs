//! `gradcheck`: analytic gradients against central finite differences, in `f64`.

use ndarray::ArrayD;

use crate::{Inputs, Tape, Var};

/// Settings for [`gradcheck`].
#[derive(Clone, Debug)]
pub struct GradcheckOptions {
    /// Finite-difference step.
    pub eps: f64,
    /// Absolute tolerance.
    pub atol: f64,
    /// Relative tolerance (of the numeric value).
    pub rtol: f64,
    /// Check at most this many elements per input (a random subset beyond it).
    pub max_elements: usize,
    /// Seed for the output weighting and the element subset.
    pub seed: u64,
}

impl Default for GradcheckOptions {
    /// `eps` 1e-6, `atol` 1e-7, `rtol` 1e-5, up to 4,096 elements per input.
    fn default() -> Self {
        GradcheckOptions {
            eps: 1e-6,
            atol: 1e-7,
            rtol: 1e-5,
            max_elements: 4096,
            seed: 0x5eed,
        }
    }
}

impl GradcheckOptions {
    /// The fixed weights `w`, uniform in `[0.5, 1.5)` (positive, away from zero) and drawn
    /// from [`seed`](GradcheckOptions::seed), with which a checker reduces an output of
    /// `shape` to the scalar `Σ wᵢ yᵢ`, so that one backward pass checks the whole
    /// vector-Jacobian product. ([`gradcheck`] weighs a one-element output by 1 instead.)
    ///
    /// ```
    /// use tapegrad_autograd::GradcheckOptions;
    ///
    /// let options = GradcheckOptions::default();
    /// let w = options.output_weights(&[2, 3]);
    /// assert_eq!(w.shape(), &[2, 3]);
    /// assert!(w.iter().all(|&w| (0.5..1.5).contains(&w)));
    /// assert_eq!(w, options.output_weights(&[2, 3]));
    /// ```
    pub fn output_weights(&self, shape: &[usize]) -> ArrayD<f64> {
        let mut rng = SplitMix(self.seed);
        ArrayD::from_shape_simple_fn(shape, || rng.weight())
    }
}

/// A gradient that disagrees with its finite-difference estimate.
#[derive(Clone, Debug, PartialEq)]
pub struct GradcheckError {
    /// Which input (position in the `inputs` slice).
    pub input: usize,
    /// The element's index in that input.
    pub element: Vec<usize>,
    /// The gradient from backward.
    pub analytic: f64,
    /// The central-difference estimate.
    pub numeric: f64,
}

impl std::fmt::Display for GradcheckError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "gradcheck failed for input {} ", self.input)?;
        write_mismatch(f, &self.element, self.analytic, self.numeric)
    }
}

impl std::error::Error for GradcheckError {}

/// One element of an array whose analytic gradient disagrees with its central-difference
/// estimate, or is not finite (from [`CentralDifferences::check_array`]).
///
/// It displays as `at element [i, j]: analytic …, numeric … (difference …)`, the end of a
/// checker's message, which names the array in front of it.
#[derive(Clone, Debug, PartialEq)]
pub struct GradientMismatch {
    /// The element's index in the array.
    pub element: Vec<usize>,
    /// The gradient from backward.
    pub analytic: f64,
    /// The central-difference estimate.
    pub numeric: f64,
}

impl std::fmt::Display for GradientMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write_mismatch(f, &self.element, self.analytic, self.numeric)
    }
}

/// The part of a gradcheck message that describes the element and both values.
fn write_mismatch(
    f: &mut std::fmt::Formatter<'_>,
    element: &[usize],
    analytic: f64,
    numeric: f64,
) -> std::fmt::Result {
    write!(
        f,
        "at element {:?}: analytic {:.12e}, numeric {:.12e} (difference {:.3e})",
        element,
        analytic,
        numeric,
        (analytic - numeric).abs()
    )
}

/// A small deterministic generator (SplitMix64) for weights and subsets, independent of any
/// caller's random streams.
struct SplitMix(u64);

impl SplitMix {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [0.5, 1.5): positive, away from zero.
    fn weight(&mut self) -> f64 {
        0.5 + (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The finite-difference half of [`gradcheck`], one array at a time, for checkers that
/// perturb their arrays themselves (`tapegrad_nn::module::gradcheck_module` perturbs a
/// module's input and, in place, its parameters).
///
/// The arrays are checked in turn; where one has more than
/// [`max_elements`](GradcheckOptions::max_elements) elements, a random subset of that many is
/// checked, drawn from one stream seeded by [`seed`](GradcheckOptions::seed), so a check is
/// reproducible.
///
/// ```
/// use ndarray::array;
/// use tapegrad_autograd::{CentralDifferences, GradcheckOptions};
///
/// // f(x) = Σ xᵢ³, whose gradient is 3xᵢ².
/// let mut x = array![0.5, -1.0, 2.0].into_dyn();
/// let right = x.mapv(|v| 3.0 * v * v);
/// let wrong = x.mapv(|v| 2.0 * v * v);
/// let mut shifted = |element: &[usize], delta: f64| {
///     let original = x[element];
///     x[element] = original + delta;
///     let value = x.mapv(|v| v * v * v).sum();
///     x[element] = original;
///     value
/// };
///
/// let options = GradcheckOptions::default();
/// let mut differences = CentralDifferences::new(&options);
/// differences.check_array(&right, &mut shifted).unwrap();
/// let mismatch = differences.check_array(&wrong, &mut shifted).unwrap_err();
/// assert_eq!(mismatch.element, vec![0]);
/// assert_eq!(mismatch.analytic, 0.5);
/// assert!((mismatch.numeric - 0.75).abs() < 1e-6);
/// assert!(mismatch.to_string().starts_with("at element [0]: analytic 5.0"));
/// ```
pub struct CentralDifferences<'o> {
    options: &'o GradcheckOptions,
    rng: SplitMix,
}

impl<'o> CentralDifferences<'o> {
    /// A checker with `options`' step, tolerances and element subsets.
    pub fn new(options: &'o GradcheckOptions) -> Self {
        CentralDifferences {
            options,
            rng: SplitMix(options.seed ^ 0xa5a5_a5a5),
        }
    }

    /// Checks `analytic`, the gradient of a scalar objective with respect to one array (of
    /// `analytic`'s shape), against central finite differences:
    /// `|analytic − numeric| ≤ atol + rtol·|numeric|`, element by element (or a random subset
    /// of [`max_elements`](GradcheckOptions::max_elements) of them).
    ///
    /// `shifted(element, delta)` returns the objective with that element of the array moved
    /// by `delta` (`+eps`, then `−eps`), and puts the element back afterwards.
    ///
    /// # Errors
    ///
    /// The first element whose analytic gradient is off, or not finite.
    pub fn check_array<F>(
        &mut self,
        analytic: &ArrayD<f64>,
        mut shifted: F,
    ) -> Result<(), GradientMismatch>
    where
        F: FnMut(&[usize], f64) -> f64,
    {
        let options = self.options;
        let n = analytic.len();
        let elements: Vec<usize> = if n <= options.max_elements {
            (0..n).collect()
        } else {
            (0..options.max_elements)
                .map(|_| (self.rng.next_u64() % n as u64) as usize)
                .collect()
        };
        for flat in elements {
            let element = nth_index(analytic.shape(), flat);
            let plus = shifted(&element, options.eps);
            let minus = shifted(&element, -options.eps);
            let numeric = (plus - minus) / (2.0 * options.eps);
            let got = analytic[element.as_slice()];
            let ok = (got - numeric).abs() <= options.atol + options.rtol * numeric.abs();
            if !ok || !got.is_finite() {
                return Err(GradientMismatch {
                    element,
                    analytic: got,
                    numeric,
                });
            }
        }
        Ok(())
    }
}

/// Checks the gradients of `f` at `inputs` against central finite differences:
/// `|analytic − numeric| ≤ atol + rtol·|numeric|` for every element (or a random subset of
/// `max_elements` per input).
///
/// `f` records its computation on the tape it is given, from the input variables
/// ([`Inputs`]: `v[0]`, `v[1]`, ...), and may borrow what it captures — a layer, a
/// parameter, a target array — for the tape's lifetime. A non-scalar result is reduced with
/// fixed random weights (`Σ wᵢ yᵢ`), which checks the whole vector-Jacobian product.
///
/// ```
/// use ndarray::array;
/// use tapegrad_autograd::{gradcheck, GradcheckOptions};
///
/// let x = array![[0.3, -1.2], [2.0, 0.7]].into_dyn();
/// gradcheck(|_tape, v| (v[0].sin() * v[0]).sum(), &[x], &GradcheckOptions::default()).unwrap();
/// ```
///
/// A layer, written once for any [`Float`](crate::Float) and checked in `f64`, first and
/// second order ([`gradgradcheck`]), with respect to its input (`tapegrad_nn`'s
/// `gradcheck_module` perturbs its parameters too):
///
/// ```
/// use ndarray::array;
/// use tapegrad_autograd::{Float, GradcheckOptions, Param, Var, gradcheck, gradgradcheck};
///
/// /// `tanh(x W + b)`.
/// struct Affine<T: Float> {
///     w: Param<T>,
///     b: Param<T>,
/// }
///
/// impl<T: Float> Affine<T> {
///     fn forward<'t>(&'t self, x: Var<'t, T>) -> Var<'t, T> {
///         let tape = x.tape();
///         (x.matmul(tape.param(&self.w)) + tape.param(&self.b)).tanh()
///     }
/// }
///
/// let layer = Affine {
///     w: Param::new("w", array![[0.5, -1.0, 0.3], [2.0, 0.25, -0.7]].into_dyn()),
///     b: Param::new("b", array![0.1, -0.2, 0.05].into_dyn()),
/// };
/// let x = array![[0.3, -1.2], [2.0, 0.7]].into_dyn();
/// let options = GradcheckOptions::default();
/// gradcheck(|_tape, v| layer.forward(v[0]).sum(), &[x.clone()], &options).unwrap();
/// gradgradcheck(|_tape, v| layer.forward(v[0]), &[x], &options).unwrap();
/// ```
pub fn gradcheck<'env, F>(
    f: F,
    inputs: &[ArrayD<f64>],
    options: &GradcheckOptions,
) -> Result<(), GradcheckError>
where
    F: for<'t> Fn(&'t Tape<'t, f64>, &Inputs<'t, 'env, f64>) -> Var<'t, f64>,
{
    let mut weights: Option<ArrayD<f64>> = None;
    let mut evaluate = |values: &[ArrayD<f64>], want_grads: bool| -> (f64, Vec<ArrayD<f64>>) {
        let tape = Tape::new();
        let vars: Vec<Var<'_, f64>> = values.iter().map(|v| tape.var(v.clone())).collect();
        let out = f(&tape, &Inputs::new(&vars));
        let w = weights.get_or_insert_with(|| {
            let shape = out.shape();
            if shape.iter().product::<usize>() == 1 {
                ArrayD::ones(shape)
            } else {
                options.output_weights(&shape)
            }
        });
        let scalar = (out * tape.constant(w.clone())).sum();
        let value = scalar.item();
        if !want_grads {
            return (value, Vec::new());
        }
        let grads = scalar.backward();
        let gs = vars
            .iter()
            .map(|v| {
                grads
                    .get(*v)
                    .cloned()
                    .unwrap_or_else(|| ArrayD::zeros(v.shape()))
            })
            .collect();
        (value, gs)
    };
    let (_, analytic) = evaluate(inputs, true);
    let mut differences = CentralDifferences::new(options);
    let mut values: Vec<ArrayD<f64>> = inputs.to_vec();
    for (i, analytic) in analytic.iter().enumerate() {
        differences
            .check_array(analytic, |element, delta| {
                let original = values[i][element];
                values[i][element] = original + delta;
                let (value, _) = evaluate(&values, false);
                values[i][element] = original;
                value
            })
            .map_err(|mismatch| GradcheckError {
                input: i,
                element: mismatch.element,
                analytic: mismatch.analytic,
                numeric: mismatch.numeric,
            })?;
    }
    Ok(())
}

/// Checks second derivatives, as PyTorch's `gradgradcheck`: the gradients that
/// [`Tape::grad`] records for `f` are themselves differentiated and compared with central
/// finite differences of those gradients.
///
/// With `w` random weights of `f`'s output shape (the seed, as a variable) and `uᵢ` fixed
/// random weights of each input's shape, the scalar `G(x, w) = Σᵢ ⟨uᵢ, (wᵀ J)ᵢ⟩` is built from
/// `tape.grad` and checked with [`gradcheck`]: its gradient with respect to the inputs holds
/// the Hessian-vector products of `f`, and with respect to `w` the Jacobian-vector product
/// `J u`. On failure, [`GradcheckError::input`] is the input's position, or `inputs.len()`
/// for the seed `w`.
///
/// ```
/// use ndarray::array;
/// use tapegrad_autograd::{GradcheckOptions, gradgradcheck};
///
/// let x = array![[0.3, -1.2], [2.0, 0.7]].into_dyn();
/// gradgradcheck(|_tape, v| v[0].tanh() * v[0], &[x], &GradcheckOptions::default()).unwrap();
/// ```
///
/// # Errors
///
/// The first element, of an input or of the seed, whose second derivative disagrees.
pub fn gradgradcheck<'env, F>(
    f: F,
    inputs: &[ArrayD<f64>],
    options: &GradcheckOptions,
) -> Result<(), GradcheckError>
where
    F: for<'t> Fn(&'t Tape<'t, f64>, &Inputs<'t, 'env, f64>) -> Var<'t, f64>,
{
    let output_shape = {
        let tape = Tape::new();
        let vars: Vec<Var<'_, f64>> = inputs.iter().map(|x| tape.constant(x.clone())).collect();
        f(&tape, &Inputs::new(&vars)).shape()
    };
    // Independent weights per input, from streams apart from gradcheck's own.
    let input_weights: Vec<ArrayD<f64>> = inputs
        .iter()
        .enumerate()
        .map(|(i, x)| {
            let stream = GradcheckOptions {
                seed: options.seed ^ (0x9e37_79b9 * (i as u64 + 1)),
                ..options.clone()
            };
            stream.output_weights(x.shape())
        })
        .collect();
    let seed = GradcheckOptions {
        seed: !options.seed,
        ..options.clone()
    }
    .output_weights(&output_shape);
    let mut with_seed = inputs.to_vec();
    with_seed.push(seed);
    let n = inputs.len();
    gradcheck(
        |tape, vars| {
            let (xs, w) = (&vars.vars()[..n], vars[n]);
            let vjps = tape.grad_with_seed_var(f(tape, &Inputs::new(xs)), w, xs);
            let mut total = tape.scalar(0.0);
            for (g, u) in vjps.iter().zip(&input_weights) {
                total = total + (*g * tape.constant(u.clone())).sum();
            }
            total
        },
        &with_seed,
        options,
    )
}

/// The multi-index of the `flat`-th element in row-major order.
fn nth_index(shape: &[usize], mut flat: usize) -> Vec<usize> {
    let mut index = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        index[d] = flat % shape[d];
        flat /= shape[d];
    }
    index
}
