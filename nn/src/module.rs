//! The [`Module`] trait every layer and model implements, and [`gradcheck_module`], which
//! checks a module's gradients (input and parameters) against finite differences.

use ndarray::ArrayViewD;
use rand::rngs::StdRng;
use tapegrad_autograd::{Float, Grads, Param, Var};

use crate::buffer::Buffer;
use crate::io::{self, IncompatibleKeys, IoError};
use crate::onnx::{ExportError, OnnxGraph, OnnxValue};

mod gradcheck;
mod register;
mod visitor;

pub use gradcheck::{ModuleGradcheckError, gradcheck_module};
pub use register::UnregisteredParams;
pub use visitor::{Entry, EntryMut, Visitor, VisitorMut, assign_paths};

/// A layer or a model: a function of a batch, recorded on the input's tape, with its own
/// trainable [`Param`]s and, for some layers, non-trainable [`Buffer`]s (state saved in
/// checkpoints but never optimized, such as BatchNorm's running statistics).
///
/// Only [`forward`](Module::forward) is required. A layer with parameters registers them,
/// and its buffers and child layers, under a local name (`"scale"`) with one line,
/// [`register!`](crate::register), which writes [`visit`](Module::visit) and
/// [`visit_mut`](Module::visit_mut); the container it sits in gives the path
/// (`"block_1.scale"`, the name a checkpoint stores it under, as a PyTorch `state_dict` key),
/// so a layer never names itself. A parameter the forward pass uses but the layer does not
/// register would never train: [`Model::fit`](crate::model::Model::fit) refuses it
/// ([`check_registered`](Module::check_registered)).
/// [`build`](Module::build) creates parameters that depend on the input shape (`Dense`'s
/// kernel); a layer whose parameters exist from `new` keeps the default, which returns the
/// shape unchanged. A layer that takes only some input shapes says which in
/// [`check_input_shape`](Module::check_input_shape), so that a model reports a wrong one as
/// a typed error. Every module saves and loads its state (its parameters and buffers, by
/// path: PyTorch's `state_dict`) with [`save`](Module::save), [`load`](Module::load) and
/// [`load_non_strict`](Module::load_non_strict).
///
/// ```
/// use tapegrad_autograd::{Param, Var};
/// use tapegrad_nn::module::Module;
///
/// /// `y = x * scale`, one learned scale per feature.
/// struct Scale(Param<f64>);
///
/// impl Module<f64> for Scale {
///     fn forward<'t>(&'t self, x: Var<'t, f64>) -> Var<'t, f64> {
///         x * x.tape().param(&self.0)
///     }
///     tapegrad_nn::register!(f64; param 0 as "scale");
/// }
///
/// let mut layer = Scale(Param::new("scale", ndarray::ArrayD::ones(vec![3])));
/// let x = ndarray::array![[1.0, -2.0, 0.5], [0.3, 0.1, -0.7]].into_dyn();
/// tapegrad_nn::module::gradcheck_module(&mut layer, &x, &Default::default()).unwrap();
/// assert_eq!(layer.named_params()[0].0, "scale");
/// ```
///
/// A layer made of layers registers them as `module` fields, which prefixes their names
/// with the field's, builds them in [`build`](Module::build) and calls them in `forward`
/// ([`Residual`](crate::layers::Residual) writes `x + f(x)` for any `f`). Train/eval mode
/// reaches the children by default, through `visit_mut`:
///
/// ```
/// use rand::rngs::StdRng;
/// use tapegrad_autograd::Var;
/// use tapegrad_nn::layers::{Activation, Dense, Sequential};
/// use tapegrad_nn::module::Module;
///
/// /// `relu(x · W1) · W2 + x`: a two-layer residual block.
/// struct Block {
///     hidden: Dense<f32>,
///     out: Dense<f32>,
/// }
///
/// impl Module<f32> for Block {
///     fn forward<'t>(&'t self, x: Var<'t, f32>) -> Var<'t, f32> {
///         x + self.out.forward(self.hidden.forward(x))
///     }
///     fn build(&mut self, shape: &[usize], rng: &mut StdRng) -> Vec<usize> {
///         let hidden = self.hidden.build(shape, rng);
///         self.out.build(&hidden, rng)
///     }
///     tapegrad_nn::register!(f32; module hidden, module out);
/// }
///
/// let block = || Block {
///     hidden: Dense::new(8).activation(Activation::Relu),
///     out: Dense::new(4),
/// };
/// let model = Sequential::new().add(block()).add(block()).with_input_shape(&[4]);
/// let names: Vec<&str> = model.params().iter().map(|p| p.name()).collect();
/// assert_eq!(names[..3], ["block_0.hidden.kernel", "block_0.hidden.bias", "block_0.out.kernel"]);
/// assert_eq!(names[4], "block_1.hidden.kernel");
/// ```
pub trait Module<T: Float> {
    /// Records the forward pass of a batch on `x`'s tape (first axis is the batch).
    fn forward<'t>(&'t self, x: Var<'t, T>) -> Var<'t, T>;

    /// Creates the parameters that depend on the input shape `input_shape` (without the
    /// batch axis) and returns the output shape (without the batch axis). Called once, by
    /// the container or [`Model`](crate::model::Model), before the first forward; `rng`
    /// seeds the initializers. By default: nothing to create, the shape is kept.
    fn build(&mut self, input_shape: &[usize], rng: &mut StdRng) -> Vec<usize> {
        let _ = rng;
        input_shape.to_vec()
    }

    /// [`build`](Module::build) for an input shape that may be wrong: the shape is checked
    /// first ([`check_input_shape`](Module::check_input_shape)), and a wrong one is the typed
    /// error instead of `build`'s panic. [`Model`](crate::model::Model) builds through it;
    /// [`Sequential`](crate::layers::Sequential) checks every layer for the shape it is given,
    /// so a later layer's requirement is an error too.
    fn try_build(
        &mut self,
        input_shape: &[usize],
        rng: &mut StdRng,
    ) -> Result<Vec<usize>, InvalidInputShape> {
        self.check_input_shape(input_shape)?;
        Ok(self.build(input_shape, rng))
    }

    /// Hands each parameter, buffer and child module to `v` under its local name, in a
    /// fixed order (the order of [`params`](Module::params) and checkpoints). None by default.
    /// [`register!`](crate::register) writes it and [`visit_mut`](Module::visit_mut) from
    /// one list of fields; write both by hand only for names computed at run time.
    fn visit<'a>(&'a self, v: &mut Visitor<'a, '_, T>) {
        let _ = v;
    }

    /// [`visit`](Module::visit), mutably: the same names in the same order.
    fn visit_mut<'a>(&'a mut self, v: &mut VisitorMut<'a, '_, T>) {
        let _ = v;
    }

    /// Train mode (dropout active, batch statistics and running-statistic updates in
    /// BatchNorm) or eval mode. By default, passes the mode to the child modules of
    /// [`visit_mut`](Module::visit_mut); layers with a mode of their own override it.
    fn set_training(&mut self, training: bool) {
        self.visit_mut(&mut VisitorMut::children(&mut |_, child| {
            child.set_training(training)
        }));
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

    /// Checks that the module can be built for samples of shape `input_shape` (without the
    /// batch axis), so that [`Model`](crate::model::Model) reports a wrong input shape as a
    /// typed error instead of the panic of [`build`](Module::build) (e.g. 2-D samples given
    /// to a [`Conv2d`](crate::layers::Conv2d), which takes `(channels, height, width)`).
    /// Accepts every shape by default; the built-in layers with a shape requirement check
    /// it, and [`Sequential`](crate::layers::Sequential) asks its first layer.
    ///
    /// # Errors
    ///
    /// The layer, the shape it takes and the shape given, as an [`InvalidInputShape`].
    fn check_input_shape(&self, input_shape: &[usize]) -> Result<(), InvalidInputShape> {
        let _ = input_shape;
        Ok(())
    }

    /// Checks that every parameter with a gradient in `grads` (every parameter the forward
    /// pass used) is one the module registers in its visitors: a parameter left out of
    /// [`visit`](Module::visit) records and back-propagates like any other but is never
    /// handed to the optimizer, so it silently never trains.
    /// [`Model::fit`](crate::model::Model::fit) checks its first step with it; a hand loop
    /// calls it once after its first `backward`.
    ///
    /// ```
    /// use tapegrad_autograd::{Param, Tape, Var};
    /// use tapegrad_nn::module::Module;
    ///
    /// struct Forgotten(Param<f64>);
    ///
    /// impl Module<f64> for Forgotten {
    ///     fn forward<'t>(&'t self, x: Var<'t, f64>) -> Var<'t, f64> {
    ///         x * x.tape().param(&self.0)
    ///     }
    ///     // no `register!(f64; param 0)`: `scale` is not registered
    /// }
    ///
    /// let layer = Forgotten(Param::new("scale", ndarray::ArrayD::ones(vec![3])));
    /// let tape = Tape::new();
    /// let loss = layer.forward(tape.constant(ndarray::ArrayD::ones(vec![2, 3]))).sum();
    /// let err = layer.check_registered(&loss.backward()).unwrap_err();
    /// assert_eq!(err.shapes, [vec![3]]);
    /// ```
    fn check_registered(&self, grads: &Grads<T>) -> Result<(), UnregisteredParams> {
        register::check_registered(self, grads)
    }

    /// The layer's kind, e.g. "dense", "dropout": a [`Sequential`](crate::layers::Sequential)
    /// names its layers `<kind>_<rank>`. By default the type's name (`my_crate::ResBlock`
    /// gives layers named `res_block_0`, ...).
    fn kind(&self) -> &'static str {
        std::any::type_name::<Self>()
    }

    /// The input and output shapes (without the batch axis) the module was built for, if
    /// it records them ([`Sequential`](crate::layers::Sequential) does, once built);
    /// `None` by default. [`Model::new`](crate::model::Model::new) checks inputs against
    /// them.
    fn built_shapes(&self) -> Option<(&[usize], &[usize])> {
        None
    }

    /// Appends the module's forward pass, in inference form (no dropout, BatchNorm with its
    /// running statistics), to an ONNX graph: reads the batch `input` (its name in the graph
    /// and the shape of one sample), adds nodes with [`OnnxGraph::node`] and the module's
    /// parameters as initializers with [`OnnxGraph::param`], and returns the output and its
    /// sample shape. Every built-in layer has a rule; by default a module has none, and the
    /// export fails with [`ExportError::Unsupported`] naming it. See [`crate::onnx`] for the
    /// format and an example of a custom layer's rule.
    ///
    /// # Errors
    ///
    /// [`ExportError::Unsupported`] for a module without a rule (by default), or a child's
    /// error; [`ExportError::NotBuilt`] when the parameters do not exist yet.
    fn export_onnx(
        &self,
        graph: &mut OnnxGraph<T>,
        input: &OnnxValue,
    ) -> Result<OnnxValue, ExportError> {
        let _ = (graph, input);
        Err(ExportError::unsupported(self.kind()))
    }

    /// The trainable parameters with their paths (`"dense_0.kernel"`), in visit order.
    fn named_params(&self) -> Vec<(String, &Param<T>)> {
        let mut out = Vec::new();
        self.visit(&mut Visitor::new(&mut |path, entry| {
            if let Entry::Param(p) = entry {
                out.push((path.to_string(), p));
            }
        }));
        out
    }

    /// The trainable parameters, in visit order.
    fn params(&self) -> Vec<&Param<T>> {
        let mut out = Vec::new();
        self.visit(&mut Visitor::unnamed(&mut |_, entry| {
            if let Entry::Param(p) = entry {
                out.push(p);
            }
        }));
        out
    }

    /// The trainable parameters, mutably (optimizers, loading weights), in the order of
    /// [`params`](Module::params).
    fn params_mut(&mut self) -> Vec<&mut Param<T>> {
        let mut count = 0;
        self.visit(&mut Visitor::unnamed(&mut |_, entry| {
            count += usize::from(matches!(entry, Entry::Param(_)));
        }));
        let mut out = Vec::with_capacity(count);
        self.visit_mut(&mut VisitorMut::unnamed(&mut |_, entry| {
            if let EntryMut::Param(p) = entry {
                out.push(p);
            }
        }));
        out
    }

    /// The non-trainable state ([`Buffer`]s, e.g. BatchNorm's running statistics), in visit
    /// order: saved in checkpoints beside the parameters, never given to optimizers.
    fn buffers(&self) -> Vec<&Buffer<T>> {
        let mut out = Vec::new();
        self.visit(&mut Visitor::unnamed(&mut |_, entry| {
            if let Entry::Buffer(b) = entry {
                out.push(b);
            }
        }));
        out
    }

    /// The buffers, mutably (loading checkpoints), in the order of
    /// [`buffers`](Module::buffers).
    fn buffers_mut(&mut self) -> Vec<&mut Buffer<T>> {
        let mut out = Vec::new();
        self.visit_mut(&mut VisitorMut::unnamed(&mut |_, entry| {
            if let EntryMut::Buffer(b) = entry {
                out.push(b);
            }
        }));
        out
    }

    /// The number of trainable scalars.
    fn num_params(&self) -> usize {
        self.params().iter().map(|p| p.len()).sum()
    }

    /// The number of scalars in the buffers (Keras' "non-trainable params"; a summary's
    /// "Param #" column counts them with the trainable ones, as Keras does).
    fn num_non_trainable(&self) -> usize {
        self.buffers().iter().map(|b| b.len()).sum()
    }

    /// Saves the module's state to `path` in the safetensors format, atomically (PyTorch's
    /// `torch.save(module.state_dict(), path)`): every parameter and every buffer, each
    /// under its path (`dense_0.kernel`, `batch_norm_0.running_mean`; see
    /// [`assign_paths`]). The format and the atomic write are described in [`crate::io`].
    ///
    /// ```
    /// use tapegrad_nn::layers::{BatchNorm, Dense, Sequential};
    /// use tapegrad_nn::Module;
    ///
    /// let dir = std::env::temp_dir().join(format!("tapegrad-module-save-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// let path = dir.join("mlp.safetensors");
    ///
    /// let mlp = || Sequential::<f32>::new().add(Dense::new(4)).add(BatchNorm::new());
    /// let a = mlp().seed(1).with_input_shape(&[3]);
    /// a.save(&path)?;
    ///
    /// let mut b = mlp().seed(2).with_input_shape(&[3]);
    /// b.load(&path)?; // strict: every parameter and buffer, nothing else
    /// assert_eq!(b.params()[0].value(), a.params()[0].value());
    /// assert_eq!(b.buffers().len(), 2); // running_mean, running_var
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), tapegrad_nn::io::IoError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`io::save_state`]: [`IoError::DuplicateName`], [`IoError::Io`] (any file
    /// previously at `path` is then left untouched).
    fn save(&self, path: impl AsRef<std::path::Path>) -> Result<(), IoError>
    where
        Self: Sized,
    {
        io::save_state(path, &self.params(), &self.buffers())
    }

    /// Loads a state saved by [`save`](Module::save) (or any safetensors file with the same
    /// names, shapes and element type), strictly (PyTorch's `load_state_dict(state)`):
    /// every parameter and buffer needs its tensor, and the file holds no other. The module
    /// must be built. All or nothing: on error, nothing changes.
    ///
    /// # Errors
    ///
    /// [`IoError::NotBuilt`] (the module has no parameters or buffers yet, the file has
    /// tensors), [`IoError::Io`] (missing or unreadable file), [`IoError::Format`] (corrupt
    /// file), [`IoError::MissingTensor`], [`IoError::MissingBuffer`],
    /// [`IoError::UnexpectedTensor`], [`IoError::ShapeMismatch`], [`IoError::StateMismatch`]
    /// (several of those), [`IoError::DtypeMismatch`], [`IoError::DuplicateName`].
    fn load(&mut self, path: impl AsRef<std::path::Path>) -> Result<(), IoError>
    where
        Self: Sized,
    {
        io::load_module_state(path.as_ref(), self, true).map(|_| ())
    }

    /// Loads the tensors of `path` that match a parameter or buffer by path, and returns
    /// the names left out (PyTorch's `load_state_dict(state, strict=False)`): the
    /// parameters and buffers the file lacks keep their values, the file's other tensors
    /// are ignored. Shapes and element types must still match. All or nothing: on error,
    /// nothing changes.
    ///
    /// ```
    /// use tapegrad_nn::layers::{Dense, Sequential};
    /// use tapegrad_nn::Module;
    ///
    /// let dir = std::env::temp_dir().join(format!("tapegrad-non-strict-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// let path = dir.join("backbone.safetensors");
    ///
    /// // A one-layer backbone, loaded into a model with a new head.
    /// Sequential::<f32>::new().add(Dense::new(8)).with_input_shape(&[4]).save(&path)?;
    /// let mut model = Sequential::<f32>::new().add(Dense::new(8)).add(Dense::new(2));
    /// model = model.with_input_shape(&[4]);
    /// let keys = model.load_non_strict(&path)?;
    /// assert_eq!(keys.missing, ["dense_1.bias", "dense_1.kernel"]);
    /// assert!(keys.unexpected.is_empty());
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), tapegrad_nn::io::IoError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`IoError::Io`], [`IoError::Format`], [`IoError::ShapeMismatch`],
    /// [`IoError::StateMismatch`] (several mis-shaped tensors), [`IoError::DtypeMismatch`],
    /// [`IoError::DuplicateName`].
    fn load_non_strict(
        &mut self,
        path: impl AsRef<std::path::Path>,
    ) -> Result<IncompatibleKeys, IoError>
    where
        Self: Sized,
    {
        io::load_module_state(path.as_ref(), self, false)
    }
}

impl<T: Float, M: Module<T> + ?Sized> Module<T> for Box<M> {
    fn forward<'t>(&'t self, x: Var<'t, T>) -> Var<'t, T> {
        (**self).forward(x)
    }
    fn build(&mut self, input_shape: &[usize], rng: &mut StdRng) -> Vec<usize> {
        (**self).build(input_shape, rng)
    }
    fn visit<'a>(&'a self, v: &mut Visitor<'a, '_, T>) {
        (**self).visit(v)
    }
    fn visit_mut<'a>(&'a mut self, v: &mut VisitorMut<'a, '_, T>) {
        (**self).visit_mut(v)
    }
    fn set_training(&mut self, training: bool) {
        (**self).set_training(training)
    }
    fn check_input(&self, x: ArrayViewD<'_, T>) -> Result<(), InvalidInput> {
        (**self).check_input(x)
    }
    fn check_input_shape(&self, input_shape: &[usize]) -> Result<(), InvalidInputShape> {
        (**self).check_input_shape(input_shape)
    }
    fn try_build(
        &mut self,
        input_shape: &[usize],
        rng: &mut StdRng,
    ) -> Result<Vec<usize>, InvalidInputShape> {
        (**self).try_build(input_shape, rng)
    }
    fn kind(&self) -> &'static str {
        (**self).kind()
    }
    fn built_shapes(&self) -> Option<(&[usize], &[usize])> {
        (**self).built_shapes()
    }
    fn export_onnx(
        &self,
        graph: &mut OnnxGraph<T>,
        input: &OnnxValue,
    ) -> Result<OnnxValue, ExportError> {
        (**self).export_onnx(graph, input)
    }
}

/// The path of the layer running (see [`tapegrad_autograd::scope`]), or `kind` outside any
/// container: how a layer names itself in its panics.
pub(crate) fn layer_name(kind: &str) -> String {
    tapegrad_autograd::scope::scope_path().unwrap_or_else(|| kind.to_string())
}

/// An input element a module cannot take (from [`Module::check_input`]): e.g. an embedding
/// index that is not an integer in range.
#[derive(Clone, PartialEq, thiserror::Error)]
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

/// An input shape a module cannot be built for (from [`Module::check_input_shape`]).
#[derive(Clone, PartialEq, thiserror::Error)]
#[error("layer `{layer}` takes inputs of shape {expected} (without the batch axis), got {found:?}")]
pub struct InvalidInputShape {
    /// The layer's name.
    pub layer: String,
    /// The shape the layer takes, in words (e.g. `(channels, height, width)`, `(.., 16)`).
    pub expected: String,
    /// The shape given (without the batch axis).
    pub found: Vec<usize>,
}

impl InvalidInputShape {
    /// The error for layer `kind` (named by its path when a container builds it) given
    /// `found` instead of `expected`.
    pub(crate) fn new(kind: &str, expected: impl Into<String>, found: &[usize]) -> Self {
        InvalidInputShape {
            layer: layer_name(kind),
            expected: expected.into(),
            found: found.to_vec(),
        }
    }
}
