//! [`gradcheck_module`]: a module's gradients (input and parameters) against finite
//! differences.

use ndarray::ArrayD;
use tapegrad_autograd::{CentralDifferences, GradcheckOptions, GradientMismatch, Tape};

use super::Module;

/// A module gradient that disagrees with its finite-difference estimate (from
/// [`gradcheck_module`]).
#[derive(Clone, PartialEq)]
pub struct ModuleGradcheckError {
    /// What was differentiated: `"input"` or the parameter's path (e.g. `"dense_0.kernel"`).
    pub target: String,
    /// The element of that array, its gradient from backward and the central-difference
    /// estimate.
    pub mismatch: GradientMismatch,
}

impl std::fmt::Display for ModuleGradcheckError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "gradcheck_module failed for {} {}",
            self.target, self.mismatch
        )
    }
}

impl std::error::Error for ModuleGradcheckError {}

/// Checks a built module's gradients — with respect to its input `x` and to every
/// parameter — against central finite differences, with the tolerance of
/// [`tapegrad_autograd::gradcheck`]: `|analytic − numeric| ≤ atol + rtol·|numeric|`.
///
/// The output is reduced with fixed random weights in `[0.5, 1.5)` (`Σ wᵢ yᵢ`,
/// [`GradcheckOptions::output_weights`]), which checks the whole vector-Jacobian product.
/// Each array is compared by the autograd checker's [`CentralDifferences`], with the same
/// element subsets. Parameters are perturbed in place and restored.
/// The module must be deterministic: check dropout in eval mode (its train-mode mask is
/// redrawn at each call).
///
/// [`tapegrad_autograd::gradcheck`] and [`gradgradcheck`](tapegrad_autograd::gradgradcheck)
/// check a layer with respect to its inputs (any number of them, first and second order:
/// `gradcheck(|_tape, v| layer.forward(v[0]), &[x], &options)`); this function checks the
/// gradients of its parameters as well, which it perturbs in place.
///
/// # Errors
///
/// The first element (of the input, then of each parameter in [`Module::params`] order)
/// whose analytic gradient is off, or not finite.
pub fn gradcheck_module<M: Module<f64> + ?Sized>(
    module: &mut M,
    x: &ArrayD<f64>,
    options: &GradcheckOptions,
) -> Result<(), ModuleGradcheckError> {
    let mut weights: Option<ArrayD<f64>> = None;
    // The weighted sum of the outputs, and optionally the gradients of the input and params.
    let mut evaluate = |module: &M, x: &ArrayD<f64>, want_grads: bool| {
        let tape = Tape::new();
        let input = tape.var(x.clone());
        let out = module.forward(input);
        let w = weights.get_or_insert_with(|| options.output_weights(&out.shape()));
        let scalar = (out * tape.constant(w.clone())).sum();
        let value = scalar.item();
        if !want_grads {
            return (value, Vec::new());
        }
        let grads = scalar.backward();
        let mut all = vec![
            grads
                .get(input)
                .cloned()
                .unwrap_or_else(|| ArrayD::zeros(x.shape())),
        ];
        for p in module.params() {
            all.push(
                grads
                    .param(p)
                    .cloned()
                    .unwrap_or_else(|| ArrayD::zeros(p.shape())),
            );
        }
        (value, all)
    };

    let (_, analytic) = evaluate(module, x, true);
    let mut differences = CentralDifferences::new(options);

    // The input.
    let mut perturbed = x.clone();
    differences
        .check_array(&analytic[0], |element, delta| {
            let original = perturbed[element];
            perturbed[element] = original + delta;
            let (value, _) = evaluate(module, &perturbed, false);
            perturbed[element] = original;
            value
        })
        .map_err(|mismatch| ModuleGradcheckError {
            target: "input".to_string(),
            mismatch,
        })?;

    // Each parameter, perturbed in place.
    for (p, analytic) in analytic[1..].iter().enumerate() {
        differences
            .check_array(analytic, |element, delta| {
                let original = module.params()[p].value()[element];
                module.params_mut()[p].value_mut()[element] = original + delta;
                let (value, _) = evaluate(module, x, false);
                module.params_mut()[p].value_mut()[element] = original;
                value
            })
            .map_err(|mismatch| ModuleGradcheckError {
                target: module.named_params()[p].0.clone(),
                mismatch,
            })?;
    }
    Ok(())
}
