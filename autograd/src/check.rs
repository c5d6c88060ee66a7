//! `gradcheck`: analytic gradients against central finite differences, in `f64`.

use ndarray::ArrayD;

use crate::{Tape, Var};

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
        write!(
            f,
            "gradcheck failed for input {} at element {:?}: analytic {:.12e}, numeric {:.12e} (difference {:.3e})",
            self.input,
            self.element,
            self.analytic,
            self.numeric,
            (self.analytic - self.numeric).abs()
        )
    }
}

impl std::error::Error for GradcheckError {}

/// A small deterministic generator (SplitMix64) for weights and subsets.
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

/// Checks the gradients of `f` at `inputs` against central finite differences:
/// `|analytic − numeric| ≤ atol + rtol·|numeric|` for every element (or a random subset of
/// `max_elements` per input).
///
/// `f` records its computation on the tape it is given, from the input variables. A
/// non-scalar result is reduced with fixed random weights (`Σ wᵢ yᵢ`), which checks the
/// whole vector-Jacobian product.
///
/// ```
/// use ndarray::array;
/// use tapegrad_autograd::{gradcheck, GradcheckOptions};
///
/// let x = array![[0.3, -1.2], [2.0, 0.7]].into_dyn();
/// gradcheck(|_tape, v| (v[0].sin() * v[0]).sum(), &[x], &GradcheckOptions::default()).unwrap();
/// ```
pub fn gradcheck<F>(
    f: F,
    inputs: &[ArrayD<f64>],
    options: &GradcheckOptions,
) -> Result<(), GradcheckError>
where
    F: for<'t> Fn(&'t Tape<'t, f64>, &[Var<'t, f64>]) -> Var<'t, f64>,
{
    let mut weights: Option<ArrayD<f64>> = None;
    let mut evaluate = |values: &[ArrayD<f64>], want_grads: bool| -> (f64, Vec<ArrayD<f64>>) {
        let tape = Tape::new();
        let vars: Vec<Var<'_, f64>> = values.iter().map(|v| tape.var(v.clone())).collect();
        let out = f(&tape, &vars);
        let w = weights.get_or_insert_with(|| {
            let mut rng = SplitMix(options.seed);
            let shape = out.shape();
            if shape.iter().product::<usize>() == 1 {
                ArrayD::ones(shape)
            } else {
                ArrayD::from_shape_simple_fn(shape, || rng.weight())
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
    let mut rng = SplitMix(options.seed ^ 0xa5a5_a5a5);
    let mut values: Vec<ArrayD<f64>> = inputs.to_vec();
    for (i, input) in inputs.iter().enumerate() {
        let n = input.len();
        let elements: Vec<usize> = if n <= options.max_elements {
            (0..n).collect()
        } else {
            (0..options.max_elements)
                .map(|_| (rng.next_u64() % n as u64) as usize)
                .collect()
        };
        for flat in elements {
            let element = nth_index(input.shape(), flat);
            let original = input[element.as_slice()];
            values[i][element.as_slice()] = original + options.eps;
            let (plus, _) = evaluate(&values, false);
            values[i][element.as_slice()] = original - options.eps;
            let (minus, _) = evaluate(&values, false);
            values[i][element.as_slice()] = original;
            let numeric = (plus - minus) / (2.0 * options.eps);
            let got = analytic[i][element.as_slice()];
            let ok = (got - numeric).abs() <= options.atol + options.rtol * numeric.abs();
            if !ok || !got.is_finite() {
                return Err(GradcheckError {
                    input: i,
                    element,
                    analytic: got,
                    numeric,
                });
            }
        }
    }
    Ok(())
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
