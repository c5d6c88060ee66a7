//! The Keras-style training API: [`Model`] wraps a [`Module`], is
//! [`compile`](Model::compile)d with an optimizer, a [`Loss`] and [`Metric`]s, then
//! [`fit`](Model::fit), [`evaluate`](Model::evaluate)d and used to
//! [`predict`](Model::predict).
//!
//! The line fit of the "hello world" of deep learning: learn `y = 5x + 1` from six points with
//! one dense unit, plain SGD and the mean squared error, for 500 epochs.
//!
//! ```
//! use ndarray::array;
//! use tapegrad_nn::layers::{Dense, Sequential};
//! use tapegrad_nn::model::{FitOptions, Loss, Model};
//! use tapegrad_optim::Sgd;
//!
//! let xs = array![[-1.0_f32], [0.0], [1.0], [2.0], [3.0], [4.0]];
//! let ys = array![[-4.0_f32], [1.0], [6.0], [11.0], [16.0], [21.0]];
//!
//! let mut model = Model::new(Sequential::new().add(Dense::new(1)));
//! model.compile(Sgd::new(0.01)?, Loss::mse(), &[]);
//! let history = model.fit(&xs, &ys, FitOptions::default().epochs(500).verbose(0))?;
//!
//! let y = model.predict(&array![[10.0_f32]], 32)?;
//! assert!((y[[0, 0]] - 51.0).abs() < 0.2, "predicted {}", y[[0, 0]]);
//! assert_eq!(history.epochs(), 500);
//! assert!(history.loss()[499] < history.loss()[0]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The same training, written by hand on the tape, is what `fit` runs for every batch. The
//! tape lives in a block that ends with the gradients: the recorded graph borrows the
//! parameters (`tape.param`), so the optimizer may change them only once the tape is gone,
//! and `Grads` outlive it.
//!
//! ```
//! use ndarray::array;
//! use tapegrad_autograd::Tape;
//! use tapegrad_nn::layers::{Dense, Sequential};
//! use tapegrad_nn::{Module, losses};
//! use tapegrad_optim::Sgd;
//!
//! let mut module = Sequential::new().add(Dense::new(1)).with_input_shape(&[1]);
//! let mut optimizer = Sgd::new(0.01)?;
//! let (batch_x, batch_y) = (array![[1.0_f32], [2.0]].into_dyn(), array![[6.0_f32], [11.0]].into_dyn());
//! let grads = {
//!     let tape = Tape::new();
//!     let out = module.forward(tape.constant(batch_x));
//!     let loss = losses::mse(out, tape.constant(batch_y));
//!     loss.backward()
//! }; // the tape is dropped here: the parameters may change again
//! optimizer.step(module.params_mut(), &grads)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Data conventions: samples are rows (axis 0) of `x` and `y`. A 1-D `x` is a column of
//! scalar samples (shape `(n,)` is read as `(n, 1)`), and so is a 1-D `y` when the model's
//! output has one value per sample, as in Keras. Epochs and batches are numbered from 0.
mod backup;
mod dist;
mod error;
mod eval;
mod fit;
mod float_fns;
mod loss;
mod metric;
mod options;
mod prepare;
mod progress;
mod train;

use std::fmt;
use std::path::Path;

use ndarray::{ArrayBase, ArrayD, ArrayViewD, Data, Dimension};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tapegrad_autograd::{Float, Param, Tape};
use tapegrad_optim::Optimizer;

pub use self::error::{DataRole, FitError};
pub use self::loss::{Loss, LossFn};
pub use self::options::{Evaluation, FitOptions, SchedulePer};
pub use crate::metrics::Metric;

use self::dist::agree;
use self::eval::{evaluate_batches, predict_batches};
use self::prepare::{as_rows, rows_of};
use crate::communicator::{Communicator, SingleProcess};
use crate::io::IoError;
use crate::layers::Sequential;
#[cfg(doc)]
use crate::losses;
use crate::module::Module;

struct Compiled<T: Float> {
    optimizer: Box<dyn Optimizer<T> + Send>,
    loss: Loss<T>,
    metrics: Vec<Metric>,
}

/// A module with an optimizer, a loss and metrics: the Keras `Model` workflow.
///
/// The module is built (its weights created) on the first [`fit`](Model::fit) from the shape
/// of `x` and the options' seed, or explicitly with [`build`](Model::build). Outside `fit`
/// (and during `fit`'s validation) the module is in inference mode
/// ([`Module::set_training`]`(false)`: no dropout, BatchNorm normalizes with its running
/// statistics and leaves them alone), so [`predict`](Model::predict) and
/// [`evaluate`](Model::evaluate) are deterministic and change nothing.
///
/// See the [module documentation](self) for the tour.
pub struct Model<T: Float = f32, M: Module<T> + ?Sized = Sequential<T>> {
    input_shape: Option<Vec<usize>>,
    output_shape: Option<Vec<usize>>,
    compiled: Option<Compiled<T>>,
    /// Built before it was wrapped, for an input shape not known yet.
    prebuilt: bool,
    /// Whether `evaluate` and `predict` check their data for NaN and infinities.
    check_finite: bool,
    /// Last, so that a `&mut Model<T, M>` is a `&mut Model<T, dyn Module<T>>`: `fit`,
    /// `evaluate`, `predict` and `build` run on that, compiled once per float type in this
    /// crate (see `float_fns.rs`), whatever the module.
    module: M,
}

impl<T: Float, M: Module<T> + fmt::Debug> fmt::Debug for Model<T, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Model")
            .field("module", &self.module)
            .field("input_shape", &self.input_shape)
            .field("output_shape", &self.output_shape)
            .field(
                "optimizer",
                &self.compiled.as_ref().map(|c| c.optimizer.name()),
            )
            .field("loss", &self.compiled.as_ref().map(|c| c.loss.name()))
            .field("metrics", &self.compiled.as_ref().map(|c| &c.metrics))
            .finish()
    }
}

impl<T: Float, M: Module<T>> Model<T, M> {
    /// Wraps a module (normally a [`Sequential`] stack; any [`Module`] works) and puts it in
    /// inference mode.
    ///
    /// A module that is not built yet is built by the first [`fit`](Model::fit) (or by
    /// [`build`](Model::build)). A [`Sequential`] that is already built (with
    /// [`Sequential::with_input_shape`]) keeps its weights, and its input shape is used to
    /// check inputs (as any module's [`Module::built_shapes`]). Any other module that
    /// already has parameters is taken as built too, for the sample shape of the first data
    /// it is given.
    ///
    /// Names every parameter and buffer by its path in the module (see
    /// [`assign_paths`](crate::module::assign_paths)); panics if two share a path.
    #[track_caller]
    pub fn new(mut module: M) -> Self {
        module.set_training(false);
        crate::module::assign_paths(&mut module);
        let (input_shape, output_shape) = match module.built_shapes() {
            Some((input, output)) => (Some(input.to_vec()), Some(output.to_vec())),
            None => (None, None),
        };
        let prebuilt = input_shape.is_none() && !module.params().is_empty();
        Model {
            module,
            input_shape,
            output_shape,
            compiled: None,
            prebuilt,
            check_finite: true,
        }
    }

    /// Sets the optimizer, the loss and the metrics. Compiling again replaces all three
    /// (and so the optimizer's state) but keeps the weights.
    ///
    /// `loss` is a [`Loss`] (`Loss::mse()`, or `Loss::new("name", |p, t| ...)` for a
    /// closure), a function of [`losses`] (`losses::mse`), or your own function
    /// `fn(Var<'t, T>, Var<'t, T>) -> Var<'t, T>`.
    pub fn compile(
        &mut self,
        optimizer: impl Optimizer<T> + Send + 'static,
        loss: impl Into<Loss<T>>,
        metrics: &[Metric],
    ) {
        self.compiled = Some(Compiled {
            optimizer: Box::new(optimizer),
            loss: loss.into(),
            metrics: metrics.to_vec(),
        });
    }

    /// Whether [`compile`](Model::compile) was called.
    pub fn is_compiled(&self) -> bool {
        self.compiled.is_some()
    }

    /// Builds the module for samples of shape `input_shape` (without the batch axis),
    /// initializing its weights from `seed`, and returns the output shape per sample.
    ///
    /// Building an already built model for the same input shape does nothing (the weights
    /// are kept). For a module that was built before [`Model::new`] wrapped it (and does not
    /// report its shapes through [`Module::built_shapes`], as a [`Sequential`] does), this
    /// only records the input shape: the weights are kept and `seed` is unused.
    ///
    /// # Errors
    ///
    /// [`FitError::InputShape`] if the model is already built for another input shape,
    /// [`FitError::InvalidInputShape`] if the module cannot be built for it (see
    /// [`Module::check_input_shape`]).
    pub fn build(&mut self, input_shape: &[usize], seed: u64) -> Result<Vec<usize>, FitError> {
        T::call::<float_fns::Build>((self, input_shape, seed))
    }
}

impl<T: Float> Model<T, dyn Module<T> + '_> {
    pub(super) fn ensure_built(
        &mut self,
        input_shape: &[usize],
        seed: u64,
        data: DataRole,
    ) -> Result<Vec<usize>, FitError> {
        match (&self.input_shape, &self.output_shape) {
            (Some(built), Some(output)) => {
                if built.as_slice() == input_shape {
                    Ok(output.clone())
                } else {
                    Err(FitError::InputShape {
                        data,
                        expected: built.clone(),
                        found: input_shape.to_vec(),
                    })
                }
            }
            _ if self.prebuilt => {
                self.check_input_shape(input_shape, data)?;
                // Built elsewhere: take the shape as given, and find the output shape with
                // one sample of zeros.
                let mut shape = vec![1];
                shape.extend_from_slice(input_shape);
                let tape = Tape::new();
                let output = tape.no_grad(|| {
                    let out = self.module.forward(tape.constant(ArrayD::zeros(shape)));
                    out.value().shape().get(1..).map(<[usize]>::to_vec)
                });
                let output = output.ok_or(FitError::OutputRows {
                    expected: 1,
                    found: 0,
                })?;
                self.input_shape = Some(input_shape.to_vec());
                self.output_shape = Some(output.clone());
                Ok(output)
            }
            _ => {
                let mut rng = StdRng::seed_from_u64(seed);
                let output = self
                    .module
                    .try_build(input_shape, &mut rng)
                    .map_err(|source| FitError::InvalidInputShape { data, source })?;
                crate::module::assign_paths(&mut self.module);
                self.module.set_training(false);
                self.input_shape = Some(input_shape.to_vec());
                self.output_shape = Some(output.clone());
                Ok(output)
            }
        }
    }

    /// [`Module::check_input_shape`] as a [`FitError::InvalidInputShape`] about `data`.
    fn check_input_shape(&self, input_shape: &[usize], data: DataRole) -> Result<(), FitError> {
        self.module
            .check_input_shape(input_shape)
            .map_err(|source| FitError::InvalidInputShape { data, source })
    }
}

impl<T: Float, M: Module<T>> Model<T, M> {
    /// Whether the model is built.
    pub fn is_built(&self) -> bool {
        self.input_shape.is_some()
    }

    /// The input shape per sample (without the batch axis), once built.
    pub fn input_shape(&self) -> Option<&[usize]> {
        self.input_shape.as_deref()
    }

    /// The output shape per sample (without the batch axis), once built.
    pub fn output_shape(&self) -> Option<&[usize]> {
        self.output_shape.as_deref()
    }

    /// The wrapped module.
    pub fn module(&self) -> &M {
        &self.module
    }

    /// The wrapped module, mutably. (If you switch it to training mode, switch it back
    /// before `predict` and `evaluate`.)
    pub fn module_mut(&mut self) -> &mut M {
        &mut self.module
    }

    /// Unwraps the module, in eval mode (as the model keeps it outside `fit`: no dropout,
    /// BatchNorm uses its running statistics); call [`Module::set_training`]`(true)` to
    /// train it by hand.
    pub fn into_module(self) -> M {
        self.module
    }

    /// The model's parameters, in the module's order.
    pub fn params(&self) -> Vec<&Param<T>> {
        self.module.params()
    }

    /// The compiled optimizer.
    pub fn optimizer(&self) -> Option<&(dyn Optimizer<T> + Send)> {
        self.compiled.as_ref().map(|c| &*c.optimizer)
    }

    /// The compiled optimizer, mutably (e.g. to set its learning rate between fits).
    pub fn optimizer_mut(&mut self) -> Option<&mut (dyn Optimizer<T> + Send)> {
        match &mut self.compiled {
            Some(c) => Some(&mut *c.optimizer),
            None => None,
        }
    }

    /// The compiled loss.
    pub fn loss(&self) -> Option<&Loss<T>> {
        self.compiled.as_ref().map(|c| &c.loss)
    }

    /// The compiled metrics.
    pub fn metrics(&self) -> &[Metric] {
        self.compiled.as_ref().map_or(&[], |c| &c.metrics)
    }

    /// The model's buffers (non-trainable state such as BatchNorm's running statistics),
    /// in the module's order.
    pub fn buffers(&self) -> Vec<&crate::Buffer<T>> {
        self.module.buffers()
    }

    /// Saves the weights to `path` in the safetensors format, atomically: each parameter
    /// and each buffer (the module's state, like a PyTorch `state_dict`) as a tensor named
    /// by its path (`dense_0.kernel`, `batch_norm_0.running_mean`). See [`crate::io`].
    ///
    /// # Errors
    ///
    /// As [`Module::save`].
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), IoError> {
        self.module.save(path)
    }

    /// Writes the model to `path` as an ONNX file for inference (see [`crate::onnx`]): its
    /// input shape is the one the model was built for, with a dynamic batch axis, and its
    /// initializers are named as [`save`](Model::save) names the tensors.
    ///
    /// ```
    /// use tapegrad_nn::layers::{Activation, Dense, Flatten, Sequential};
    /// use tapegrad_nn::model::Model;
    ///
    /// let mut model = Model::new(
    ///     Sequential::<f32>::new().add(Flatten::new()).add(Dense::new(10).activation(Activation::Softmax)),
    /// );
    /// model.build(&[28, 28], 0)?;
    /// let path = std::env::temp_dir().join(format!("tapegrad-model-onnx-{}.onnx", std::process::id()));
    /// model.export_onnx(&path)?;
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ExportError::UnknownInputShape`](crate::onnx::ExportError::UnknownInputShape) when
    /// the model is not built; otherwise as [`onnx::export`](crate::onnx::export).
    pub fn export_onnx(&self, path: impl AsRef<Path>) -> Result<(), crate::onnx::ExportError> {
        let input_shape = self
            .input_shape
            .as_deref()
            .ok_or(crate::onnx::ExportError::UnknownInputShape)?;
        crate::onnx::export(&self.module, input_shape, path)
    }

    /// Loads weights saved by [`save`](Model::save) (or any safetensors file with the same
    /// names, shapes and dtype): every parameter and every buffer must be in the file. The
    /// model must be built. Nothing changes on error. (The module's own
    /// [`Module::load_non_strict`] loads a partial file.)
    ///
    /// # Errors
    ///
    /// [`IoError::NotBuilt`] if the model is not built (its parameters do not exist yet);
    /// otherwise as [`Module::load`]: e.g. [`IoError::MissingBuffer`] naming a buffer the
    /// file lacks.
    pub fn load(&mut self, path: impl AsRef<Path>) -> Result<(), IoError> {
        let path = path.as_ref();
        if !self.is_built() && !self.prebuilt {
            return Err(IoError::NotBuilt {
                path: path.to_path_buf(),
            });
        }
        self.module.load(path)
    }

    /// Whether [`evaluate`](Model::evaluate) and [`predict`](Model::predict) check their data
    /// for NaN and infinite values first (default `true`; a value found is a
    /// [`FitError::NonFinite`] naming the data and the value's index). The check reads every value
    /// once; turn it off for speed when the data is known to be finite. (`fit` has its own
    /// switch, [`FitOptions::check_finite`].)
    pub fn set_check_finite(&mut self, check: bool) {
        self.check_finite = check;
    }

    /// The mean loss and the metrics of the model on `x` and `y`, in batches of
    /// `batch_size`, without recording gradients.
    ///
    /// # Errors
    ///
    /// [`FitError::NotCompiled`], [`FitError::NotBuilt`], [`FitError::InvalidBatchSize`],
    /// and the data errors of [`fit`](Model::fit), [`FitError::NonFinite`] included (see
    /// [`set_check_finite`](Model::set_check_finite)).
    pub fn evaluate<SX, SY, DX, DY>(
        &self,
        x: &ArrayBase<SX, DX>,
        y: &ArrayBase<SY, DY>,
        batch_size: usize,
    ) -> Result<Evaluation, FitError>
    where
        SX: Data<Elem = T>,
        SY: Data<Elem = T>,
        DX: Dimension,
        DY: Dimension,
    {
        self.evaluate_with(x, y, batch_size, &SingleProcess)
    }

    /// [`evaluate`](Model::evaluate) shared among the ranks of `comm`: every rank calls it
    /// with the same data and weights, evaluates its share of the rows
    /// ([`shard`](crate::communicator::shard)), and every rank returns the loss and metrics
    /// over all the rows (sums of losses, metric numerators and counts over the ranks). An
    /// error on one rank is an error on every rank ([`FitError::RankFailed`] on the others).
    ///
    /// # Errors
    ///
    /// Those of [`evaluate`](Model::evaluate), [`FitError::Communication`],
    /// [`FitError::RankFailed`].
    pub fn evaluate_with<SX, SY, DX, DY>(
        &self,
        x: &ArrayBase<SX, DX>,
        y: &ArrayBase<SY, DY>,
        batch_size: usize,
        comm: &dyn Communicator,
    ) -> Result<Evaluation, FitError>
    where
        SX: Data<Elem = T>,
        SY: Data<Elem = T>,
        DX: Dimension,
        DY: Dimension,
    {
        let (x, y) = (x.view().into_dyn(), y.view().into_dyn());
        T::call::<float_fns::Evaluate>((self, x, y, batch_size, comm))
    }

    /// The model's outputs for `x` (samples along axis 0), computed in batches of
    /// `batch_size` under [`Tape::no_grad`] on a fresh tape per batch (nothing is recorded
    /// for gradients; memory stays bounded by one batch).
    ///
    /// # Errors
    ///
    /// [`FitError::NotBuilt`], [`FitError::InvalidBatchSize`], [`FitError::EmptyDataset`],
    /// [`FitError::InputShape`], [`FitError::InvalidInput`], [`FitError::OutputRows`],
    /// [`FitError::NonFinite`] (see [`set_check_finite`](Model::set_check_finite)).
    pub fn predict<S, D>(
        &self,
        x: &ArrayBase<S, D>,
        batch_size: usize,
    ) -> Result<ArrayD<T>, FitError>
    where
        S: Data<Elem = T>,
        D: Dimension,
    {
        T::call::<float_fns::Predict>((self, x.view().into_dyn(), batch_size))
    }
}

impl<T: Float> Model<T, dyn Module<T> + '_> {
    /// [`Model::evaluate_with`] of views.
    pub(super) fn evaluate_views(
        &self,
        x: ArrayViewD<'_, T>,
        y: ArrayViewD<'_, T>,
        batch_size: usize,
        comm: &dyn Communicator,
    ) -> Result<Evaluation, FitError> {
        let setup = (|| {
            if self.compiled.is_none() {
                return Err(FitError::NotCompiled);
            }
            if batch_size == 0 {
                return Err(FitError::InvalidBatchSize);
            }
            let data = self.prepare(
                x.view().into_dyn(),
                y.view().into_dyn(),
                DataRole::Evaluation,
            )?;
            if self.check_finite {
                check_finite(&x.view().into_dyn(), DataRole::Evaluation, "x")?;
                check_finite(&y.view().into_dyn(), DataRole::Evaluation, "y")?;
            }
            let metrics = self.resolve_metrics(&data.target_shape)?;
            let loss = &self.compiled.as_ref().ok_or(FitError::NotCompiled)?.loss;
            Ok((data, metrics, loss))
        })();
        let (data, mut metrics, loss) = agree(comm, setup)?;
        let value = evaluate_batches(&self.module, loss, &mut metrics, &data, batch_size, comm)?;
        Ok(Evaluation {
            loss: value,
            metrics: metrics.iter().map(|m| (m.name, m.value())).collect(),
        })
    }

    /// [`Model::predict`] of a view.
    pub(super) fn predict_view(
        &self,
        x: ArrayViewD<'_, T>,
        batch_size: usize,
    ) -> Result<ArrayD<T>, FitError> {
        if batch_size == 0 {
            return Err(FitError::InvalidBatchSize);
        }
        let x = as_rows(x.view().into_dyn());
        if self.input_shape.is_none() {
            return Err(FitError::NotBuilt);
        }
        let n = rows_of(&x);
        if n == 0 {
            return Err(FitError::EmptyDataset {
                data: DataRole::Prediction,
            });
        }
        self.check_inputs(&x, DataRole::Prediction)?;
        if self.check_finite {
            check_finite(&x, DataRole::Prediction, "x")?;
        }
        predict_batches(&self.module, &x.as_standard_layout().view(), batch_size)
    }
}

/// The index in an array of `shape` of its `flat`-th element in row-major order.
fn multi_index(shape: &[usize], mut flat: usize) -> Vec<usize> {
    let mut index = vec![0; shape.len()];
    for (i, &len) in index.iter_mut().zip(shape).rev() {
        *i = flat % len;
        flat /= len;
    }
    index
}

/// The first NaN or infinity of `a` (samples along axis 0), as [`FitError::NonFinite`].
fn check_finite<T: Float>(
    a: &ArrayViewD<'_, T>,
    data: DataRole,
    part: &'static str,
) -> Result<(), FitError> {
    match a.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => Err(FitError::NonFinite {
            data,
            part,
            index: multi_index(a.shape(), i),
            value: a
                .iter()
                .nth(i)
                .map_or(f64::NAN, |v| <T as Float>::to_f64(*v)),
        }),
    }
}
