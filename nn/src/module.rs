//! The [`Module`] trait every layer and model implements, and [`gradcheck_module`], which
//! checks a module's gradients (input and parameters) against finite differences.

use ndarray::{ArrayD, ArrayViewD};
use rand::rngs::StdRng;
use tapegrad_autograd::{
    CentralDifferences, Float, GradcheckOptions, GradientMismatch, Param, Tape, Var,
};

use crate::buffer::Buffer;

/// A layer or a model: a function of a batch, recorded on the input's tape, with its own
/// trainable [`Param`]s and, for some layers, non-trainable [`Buffer`]s (state saved in
/// checkpoints but never optimized, such as BatchNorm's running statistics: see
/// [`buffers`](Module::buffers)).
///
/// The life of a module: it is created with its hyper-parameters only (`Dense::new(10)`),
/// named by the [`Sequential`](crate::layers::Sequential) it is added to, then built once for
/// an input shape ([`build`](Module::build) creates and initializes its parameters), and
/// then called any number of times ([`forward`](Module::forward)), each time on a fresh tape.
///
/// A custom layer implements the trait with ops on [`Var`]s only
/// (no backward code), and can be checked with [`gradcheck_module`]:
///
/// ```
/// use rand::rngs::StdRng;
/// use tapegrad_autograd::{Float, GradcheckOptions, Param, Var};
/// use tapegrad_nn::module::{gradcheck_module, Module};
///
/// /// `y = x * scale`, one learned scale per feature.
/// struct Scale<T: Float> {
///     scale: Option<Param<T>>,
///     name: String,
/// }
///
/// impl<T: Float> Module<T> for Scale<T> {
///     fn forward<'t>(&'t self, x: Var<'t, T>) -> Var<'t, T> {
///         x * x.tape().param(self.scale.as_ref().expect("built"))
///     }
///     fn build(&mut self, input_shape: &[usize], _rng: &mut StdRng) -> Vec<usize> {
///         let ones = ndarray::ArrayD::from_elem(input_shape, T::one());
///         self.scale = Some(Param::new(format!("{}.scale", self.name), ones));
///         input_shape.to_vec()
///     }
///     fn params(&self) -> Vec<&Param<T>> {
///         self.scale.iter().collect()
///     }
///     fn params_mut(&mut self) -> Vec<&mut Param<T>> {
///         self.scale.iter_mut().collect()
///     }
///     fn kind(&self) -> &'static str {
///         "scale"
///     }
///     fn set_name(&mut self, name: &str) {
///         self.name = name.to_string();
///         if let Some(p) = &mut self.scale {
///             p.set_name(format!("{name}.scale"));
///         }
///     }
///     fn name(&self) -> &str {
///         &self.name
///     }
/// }
///
/// let mut layer = Scale::<f64> { scale: None, name: "scale".into() };
/// let mut rng = rand::SeedableRng::seed_from_u64(0);
/// assert_eq!(layer.build(&[3], &mut rng), vec![3]);
/// let x = ndarray::array![[1.0, -2.0, 0.5], [0.3, 0.1, -0.7]].into_dyn();
/// gradcheck_module(&mut layer, &x, &GradcheckOptions::default()).unwrap();
/// ```
pub trait Module<T: Float> {
    /// Records the forward pass of a batch on `x`'s tape (first axis is the batch).
    fn forward<'t>(&'t self, x: Var<'t, T>) -> Var<'t, T>;

    /// Creates parameters for inputs of shape `input_shape` (without the batch axis) and
    /// returns the output shape (without the batch axis). Called once, by `Sequential`/`Model`,
    /// before the first forward; `rng` seeds the initializers.
    fn build(&mut self, input_shape: &[usize], rng: &mut StdRng) -> Vec<usize>;

    /// The trainable parameters, in a fixed order.
    fn params(&self) -> Vec<&Param<T>>;

    /// The trainable parameters, mutably (optimizers, loading weights), in the order of
    /// [`params`](Module::params).
    fn params_mut(&mut self) -> Vec<&mut Param<T>>;

    /// The non-trainable state ([`Buffer`]s, e.g. BatchNorm's running statistics), in a
    /// fixed order: saved in checkpoints beside the parameters, never given to optimizers.
    /// None by default.
    fn buffers(&self) -> Vec<&Buffer<T>> {
        Vec::new()
    }

    /// The buffers, mutably (loading checkpoints), in the order of
    /// [`buffers`](Module::buffers). None by default.
    fn buffers_mut(&mut self) -> Vec<&mut Buffer<T>> {
        Vec::new()
    }

    /// Train mode (dropout active, batch statistics and running-statistic updates in
    /// BatchNorm) or eval mode.
    fn set_training(&mut self, training: bool) {
        let _ = training;
    }

    /// Checks a batch of raw inputs (first axis is the batch) for values the module cannot
    /// take, so that [`Model`](crate::model::Model) reports them as a typed error instead of
    /// the panic of [`forward`](Module::forward) (e.g. [`Embedding`](crate::layers::Embedding)
    /// indices that are not integers in range). Accepts everything by default;
    /// [`Sequential`](crate::layers::Sequential) asks its first layer.
    ///
    /// # Errors
    ///
    /// The first invalid element, as an [`InvalidInput`].
    fn check_input(&self, x: ArrayViewD<'_, T>) -> Result<(), InvalidInput> {
        let _ = x;
        Ok(())
    }

    /// The layer's kind for names and summaries, e.g. "dense", "dropout".
    fn kind(&self) -> &'static str;

    /// Sets the layer's name (Sequential calls this: "dense_0", "dense_1", "dropout_0" ...
    /// counting per kind) and renames its params (`"<name>.kernel"`, `"<name>.bias"`,
    /// `"<name>.gamma"`, `"<name>.beta"`) and buffers (`"<name>.running_mean"`).
    fn set_name(&mut self, name: &str);

    /// The layer's name.
    fn name(&self) -> &str;

    /// The number of trainable scalars.
    fn num_params(&self) -> usize {
        self.params().iter().map(|p| p.len()).sum()
    }

    /// The number of scalars in the buffers (Keras' "non-trainable params"; a summary's
    /// "Param #" column counts them with the trainable ones, as Keras does).
    fn num_non_trainable(&self) -> usize {
        self.buffers().iter().map(|b| b.len()).sum()
    }

    /// The input and output shapes (without the batch axis) the module was built for, if
    /// it records them ([`Sequential`](crate::layers::Sequential) does, once built);
    /// `None` by default. [`Model::new`](crate::model::Model::new) checks inputs against
    /// them.
    fn built_shapes(&self) -> Option<(&[usize], &[usize])> {
        None
    }
}

impl<T: Float, M: Module<T> + ?Sized> Module<T> for Box<M> {
    fn forward<'t>(&'t self, x: Var<'t, T>) -> Var<'t, T> {
        (**self).forward(x)
    }
    fn build(&mut self, input_shape: &[usize], rng: &mut StdRng) -> Vec<usize> {
        (**self).build(input_shape, rng)
    }
    fn params(&self) -> Vec<&Param<T>> {
        (**self).params()
    }
    fn params_mut(&mut self) -> Vec<&mut Param<T>> {
        (**self).params_mut()
    }
    fn buffers(&self) -> Vec<&Buffer<T>> {
        (**self).buffers()
    }
    fn buffers_mut(&mut self) -> Vec<&mut Buffer<T>> {
        (**self).buffers_mut()
    }
    fn set_training(&mut self, training: bool) {
        (**self).set_training(training)
    }
    fn check_input(&self, x: ArrayViewD<'_, T>) -> Result<(), InvalidInput> {
        (**self).check_input(x)
    }
    fn kind(&self) -> &'static str {
        (**self).kind()
    }
    fn set_name(&mut self, name: &str) {
        (**self).set_name(name)
    }
    fn name(&self) -> &str {
        (**self).name()
    }
    fn num_params(&self) -> usize {
        (**self).num_params()
    }
    fn num_non_trainable(&self) -> usize {
        (**self).num_non_trainable()
    }
    fn built_shapes(&self) -> Option<(&[usize], &[usize])> {
        (**self).built_shapes()
    }
}

/// An input element a module cannot take (from [`Module::check_input`]): e.g. an embedding
/// index that is not an integer in range.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("layer `{layer}` cannot take input {value} at position {position:?}: {expected}")]
pub struct InvalidInput {
    /// The layer's name.
    pub layer: String,
    /// The element's position in the batch (its first coordinate is the sample).
    pub position: Vec<usize>,
    /// The element.
    pub value: f64,
    /// What the layer takes, in words (e.g. "an integer index in 0..1000").
    pub expected: String,
}

/// A module gradient that disagrees with its finite-difference estimate (from
/// [`gradcheck_module`]).
#[derive(Clone, Debug, PartialEq)]
pub struct ModuleGradcheckError {
    /// What was differentiated: `"input"` or the parameter's name (e.g. `"dense_0.kernel"`).
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
/// `tapegrad_autograd::gradcheck` cannot do this job: its function is called with tapes of
/// every lifetime, so it could only bind parameters that live forever.
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
                target: module.params()[p].name().to_string(),
                mismatch,
            })?;
    }
    Ok(())
}
