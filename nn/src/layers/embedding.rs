//! Embedding lookups: integer indices to learned vectors.

use ndarray::{ArrayD, ArrayViewD, Axis, Dimension, s};
use rand::rngs::StdRng;
use tapegrad_autograd::{Float, Param, Shape, Var, memory};

use crate::init::Initializer;
use crate::module::{InvalidInput, Module};
use crate::onnx::{ExportError, OnnxGraph, OnnxValue, attr};

/// A table of `num_embeddings` learned vectors of length `dim` (PyTorch's `nn.Embedding`,
/// Keras' `Embedding`): inputs `[N, L]` (or any shape `[N, ...]`) of integer indices,
/// stored as floats of the model's element type, become `[N, L, dim]`, each index replaced
/// by its row of the table.
///
/// The lookup is [`Var::index_select`] on the table (the parameter `embedding_0.embeddings`,
/// Keras' name, shape `(num_embeddings, dim)`), so an index that appears several times in a
/// batch accumulates the gradients of all its uses into its row. The table starts as
/// PyTorch's, `N(0, 1)` ([`Initializer::Normal`]); change it with
/// [`initializer`](Embedding::initializer).
///
/// With [`padding_idx`](Embedding::padding_idx) (PyTorch's `padding_idx`) one row is
/// padding: it starts at zeros and its gradient is always zero, so training never moves it;
/// its stored value (zeros, or whatever was loaded) is output as is.
///
/// An index that is not an integer in `0..num_embeddings` is a panic of
/// [`forward`](Module::forward) naming the layer, the index and its position; through
/// [`Model`](crate::model::Model)'s `fit`, `evaluate` and `predict` it is a typed
/// [`FitError::InvalidInput`](crate::model::FitError::InvalidInput) instead (when the
/// embedding is the model's first layer, which checks the raw input: see
/// [`Module::check_input`]).
///
/// ```
/// use ndarray::array;
/// use rand::{rngs::StdRng, SeedableRng};
/// use tapegrad_autograd::Tape;
/// use tapegrad_nn::layers::Embedding;
/// use tapegrad_nn::Module;
///
/// let mut embedding = Embedding::<f32>::new(1000, 64);
/// assert_eq!(embedding.build(&[12], &mut StdRng::seed_from_u64(0)), vec![12, 64]);
/// assert_eq!(embedding.num_params(), 64_000);
///
/// let tape = Tape::new();
/// let tokens = tape.constant(array![[3.0, 3.0, 7.0], [0.0, 999.0, 3.0]].into_dyn());
/// let y = embedding.forward(tokens);
/// assert_eq!(y.shape(), vec![2, 3, 64]);
/// let grads = y.sum().backward();
/// let table_grad = grads.param(embedding.embeddings().unwrap()).unwrap();
/// assert_eq!(table_grad[[3, 0]], 3.0); // index 3 is used three times
/// assert_eq!(table_grad[[1, 0]], 0.0);
/// ```
#[derive(Clone, Debug)]
pub struct Embedding<T: Float> {
    num_embeddings: usize,
    dim: usize,
    initializer: Initializer,
    padding_idx: Option<usize>,
    table: Option<Param<T>>,
}

impl<T: Float> Embedding<T> {
    /// A table of `num_embeddings` vectors of length `dim`, initialized `N(0, 1)`. Panics
    /// if either is 0.
    #[track_caller]
    pub fn new(num_embeddings: usize, dim: usize) -> Self {
        assert!(
            num_embeddings > 0 && dim > 0,
            "Embedding::new: num_embeddings and dim must be at least 1, got {num_embeddings} \
             and {dim}"
        );
        Embedding {
            num_embeddings,
            dim,
            initializer: Initializer::Normal {
                mean: 0.0,
                std: 1.0,
            },
            padding_idx: None,
            table: None,
        }
    }

    /// Makes row `index` the padding row (PyTorch's `padding_idx`): it is initialized to
    /// zeros, and no gradient reaches it — positions holding `index` output the stored row
    /// through a constant. Set before building. Panics if `index` is not in
    /// `0..num_embeddings`.
    ///
    /// ```
    /// use ndarray::{array, s};
    /// use rand::{rngs::StdRng, SeedableRng};
    /// use tapegrad_autograd::Tape;
    /// use tapegrad_nn::layers::Embedding;
    /// use tapegrad_nn::Module;
    ///
    /// let mut embedding = Embedding::<f64>::new(5, 2).padding_idx(0);
    /// embedding.build(&[3], &mut StdRng::seed_from_u64(0));
    /// let tape = Tape::new();
    /// let y = embedding.forward(tape.constant(array![[0.0, 2.0, 0.0]].into_dyn()));
    /// assert_eq!(y.to_array().slice(s![0, 0, ..]), array![0.0, 0.0]);
    /// let grads = y.sum().backward();
    /// let table_grad = grads.param(embedding.embeddings().unwrap()).unwrap();
    /// assert_eq!(table_grad.slice(s![0, ..]), array![0.0, 0.0]); // the padding row never moves
    /// assert_eq!(table_grad.slice(s![2, ..]), array![1.0, 1.0]);
    /// ```
    #[track_caller]
    pub fn padding_idx(mut self, index: usize) -> Self {
        assert!(
            index < self.num_embeddings,
            "Embedding::padding_idx: index {index} is not in 0..{}",
            self.num_embeddings
        );
        self.padding_idx = Some(index);
        self
    }

    /// Sets how the table is initialized (default `N(0, 1)`). Set before building.
    pub fn initializer(mut self, initializer: Initializer) -> Self {
        self.initializer = initializer;
        self
    }

    /// The number of vectors (valid indices are `0..num_embeddings`).
    pub fn num_embeddings(&self) -> usize {
        self.num_embeddings
    }

    /// The length of each vector.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The table, shape `(num_embeddings, dim)` (`None` before building).
    pub fn embeddings(&self) -> Option<&Param<T>> {
        self.table.as_ref()
    }

    /// The first element of `x` that is not an integer index in range: its position and
    /// value.
    fn first_invalid(&self, x: &ArrayViewD<'_, T>) -> Option<(Vec<usize>, f64)> {
        x.indexed_iter().find_map(|(position, &v)| {
            let v = Float::to_f64(v);
            let valid = v.fract() == 0.0 && v >= 0.0 && v < self.num_embeddings as f64;
            (!valid).then(|| (position.slice().to_vec(), v))
        })
    }

    fn expected(&self) -> String {
        format!("an integer index in 0..{}", self.num_embeddings)
    }
}

impl<T: Float> Module<T> for Embedding<T> {
    /// Looks up every index of `x`. Panics if the layer is not built, or at the first index
    /// that is not an integer in `0..num_embeddings` (naming it and its position).
    #[track_caller]
    fn forward<'t>(&'t self, x: Var<'t, T>) -> Var<'t, T> {
        let Some(table) = &self.table else {
            panic!(
                "Embedding::forward: layer `{}` is not built; call build(input_shape, rng) first \
                 (Sequential and Model do this)",
                crate::module::layer_name("embedding")
            )
        };
        let (indices, shape) = {
            let a = x.value();
            if let Some((position, value)) = self.first_invalid(&a.view()) {
                panic!(
                    "Embedding::forward: layer `{}` got {value} at position {position:?} of its \
                     input, which is not {}",
                    crate::module::layer_name("embedding"),
                    self.expected()
                );
            }
            // From the buffer pool, and given back to it below.
            let mut indices = memory::vec(a.len());
            indices.extend(a.iter().map(|&v| Float::to_f64(v) as usize));
            (indices, Shape::new(a.shape()))
        };
        let mut out_shape = shape;
        out_shape.push(self.dim);
        let tape = x.tape();
        let rows = tape.param(table).index_select(0, &indices);
        let rows = match self.padding_idx {
            Some(pad) if indices.contains(&pad) => {
                // Padding positions take the stored row as a constant: the same value, and
                // `where_` sends them no gradient, so the row's gradient is exactly zero.
                let mask: Vec<T> = indices
                    .iter()
                    .map(|&i| if i == pad { T::one() } else { T::zero() })
                    .collect();
                let mask =
                    ArrayD::from_shape_vec(vec![indices.len(), 1], mask).expect("one per index");
                let row = table
                    .value()
                    .slice(s![pad..pad + 1, ..])
                    .to_owned()
                    .into_dyn();
                Var::where_(tape.constant(mask), tape.constant(row), rows)
            }
            _ => rows,
        };
        memory::recycle(indices);
        rows.reshape(&out_shape)
    }

    fn check_input(&self, x: ArrayViewD<'_, T>) -> Result<(), InvalidInput> {
        match self.first_invalid(&x) {
            Some((position, value)) => Err(InvalidInput {
                layer: crate::module::layer_name("embedding"),
                position,
                value,
                expected: self.expected(),
            }),
            None => Ok(()),
        }
    }

    /// Creates the table; the output adds an axis of length `dim` to the input shape.
    fn build(&mut self, input_shape: &[usize], rng: &mut StdRng) -> Vec<usize> {
        let mut table = self.initializer.init(&[self.num_embeddings, self.dim], rng);
        if let Some(pad) = self.padding_idx {
            table.index_axis_mut(Axis(0), pad).fill(T::zero());
        }
        self.table = Some(Param::new("embeddings", table));
        let mut out = input_shape.to_vec();
        out.push(self.dim);
        out
    }

    /// `Gather` of the table's rows, the float indices cast to `INT64` first.
    fn export_onnx(
        &self,
        graph: &mut OnnxGraph<T>,
        x: &OnnxValue,
    ) -> Result<OnnxValue, ExportError> {
        let table = self
            .table
            .as_ref()
            .ok_or_else(|| ExportError::not_built("embedding"))?;
        let table = graph.param(table);
        let int64 = crate::onnx::proto::INT64;
        let indices = graph.node("Cast", &[&x.name], vec![attr::int("to", int64.into())]);
        let y = graph.node("Gather", &[&table, &indices], vec![attr::int("axis", 0)]);
        let mut shape = x.shape.clone();
        shape.push(self.dim);
        Ok(OnnxValue::new(y, shape))
    }

    crate::register!(T; param table as "embeddings");

    fn kind(&self) -> &'static str {
        "embedding"
    }
}
