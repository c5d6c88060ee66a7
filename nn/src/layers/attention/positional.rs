//! Learned positional embeddings added to a sequence.

use rand::rngs::StdRng;
use tapegrad_autograd::{Float, Param, Var};

use crate::init::Initializer;
use crate::module::{InvalidInputShape, Module};
use crate::onnx::{ExportError, OnnxGraph, OnnxValue};

/// A learned position embedding: a table `weight` `[max_len, dim]` (initialized `N(0, 1)`,
/// as PyTorch's `nn.Embedding`) whose first `T` rows are added to an input `[N, T, dim]`,
/// row `t` to position `t` of every sample: GPT-2's `wpe(arange(T))` added to the token
/// embeddings, in one op.
///
/// A sequence longer than `max_len` is a panic naming the layer and both lengths.
///
/// ```
/// use rand::{rngs::StdRng, SeedableRng};
/// use tapegrad_autograd::Tape;
/// use tapegrad_nn::layers::PositionalEmbedding;
/// use tapegrad_nn::Module;
///
/// let mut positions = PositionalEmbedding::<f64>::new(16, 8);
/// positions.build(&[5, 8], &mut StdRng::seed_from_u64(0));
/// assert_eq!(positions.named_params()[0].0, "weight");
/// let tape = Tape::new();
/// let x = tape.var(ndarray::ArrayD::zeros(ndarray::IxDyn(&[2, 5, 8])));
/// let y = positions.forward(x).to_array();
/// let table = positions.weight().unwrap().value();
/// assert_eq!(y[[1, 4, 3]], table[[4, 3]]);
/// ```
#[derive(Clone, Debug)]
pub struct PositionalEmbedding<T: Float> {
    max_len: usize,
    dim: usize,
    weight: Option<Param<T>>,
}

impl<T: Float> PositionalEmbedding<T> {
    /// A table for sequences of up to `max_len` positions of `dim` features. Panics if
    /// either is 0.
    #[track_caller]
    pub fn new(max_len: usize, dim: usize) -> Self {
        assert!(
            max_len > 0 && dim > 0,
            "PositionalEmbedding::new: max_len and dim must be at least 1, got {max_len} and \
             {dim}"
        );
        PositionalEmbedding {
            max_len,
            dim,
            weight: None,
        }
    }

    /// The longest sequence the table covers.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// The table, `[max_len, dim]` (`None` before building).
    pub fn weight(&self) -> Option<&Param<T>> {
        self.weight.as_ref()
    }

    /// Creates the table, `N(0, 1)`, without an input shape.
    pub fn init(&mut self, rng: &mut StdRng) {
        let normal = Initializer::Normal {
            mean: 0.0,
            std: 1.0,
        };
        self.weight = Some(Param::new(
            "weight",
            normal.init(&[self.max_len, self.dim], rng),
        ));
    }

    /// Panics naming the layer unless `shape` (`[..., T, dim]`) fits the table.
    #[track_caller]
    fn check(&self, op: &str, shape: &[usize], rank: usize) {
        let name = || crate::module::layer_name("positional_embedding");
        assert!(
            shape.len() == rank && shape[rank - 1] == self.dim,
            "PositionalEmbedding::{op}: layer `{}` takes inputs [N, T, {}], got shape \
             {shape:?}{}",
            name(),
            self.dim,
            if rank == 2 {
                " (without the batch axis)"
            } else {
                ""
            }
        );
        let t = shape[rank - 2];
        assert!(
            t <= self.max_len,
            "PositionalEmbedding::{op}: layer `{}` has {} positions, got a sequence of \
             length {t}",
            name(),
            self.max_len
        );
    }
}

impl<T: Float> Module<T> for PositionalEmbedding<T> {
    /// `x + weight[..T]` for `x` `[N, T, dim]`. Panics if `T > max_len`.
    #[track_caller]
    fn forward<'t>(&'t self, x: Var<'t, T>) -> Var<'t, T> {
        let Some(weight) = &self.weight else {
            panic!(
                "PositionalEmbedding::forward: layer `{}` is not built; call build(input_shape, \
                 rng) first (Sequential and Model do this)",
                crate::module::layer_name("positional_embedding")
            )
        };
        let shape = x.shape();
        self.check("forward", &shape, 3);
        let table = x.tape().param(weight);
        let t = shape[1];
        if t == self.max_len {
            x + table
        } else {
            x + table.slice(0, 0, t)
        }
    }

    /// Inputs of shape `[T, dim]` with `T <= max_len` (without the batch axis).
    fn check_input_shape(&self, input_shape: &[usize]) -> Result<(), InvalidInputShape> {
        match *input_shape {
            [t, dim] if dim == self.dim && t <= self.max_len => Ok(()),
            _ => Err(InvalidInputShape::new(
                "positional_embedding",
                format!("[T, {}] with T at most {}", self.dim, self.max_len),
                input_shape,
            )),
        }
    }

    /// Creates the table; the input is `[T, dim]` with `T <= max_len`, the output keeps its
    /// shape.
    #[track_caller]
    fn build(&mut self, input_shape: &[usize], rng: &mut StdRng) -> Vec<usize> {
        self.check("build", input_shape, 2);
        self.init(rng);
        input_shape.to_vec()
    }

    /// `Add` of the table's first `T` rows (`Slice`).
    fn export_onnx(
        &self,
        graph: &mut OnnxGraph<T>,
        x: &OnnxValue,
    ) -> Result<OnnxValue, ExportError> {
        Module::<T>::check_input_shape(self, &x.shape)?;
        let weight = self
            .weight()
            .ok_or_else(|| ExportError::not_built("positional_embedding"))?;
        let mut table = graph.param(weight);
        let t = x.shape[0];
        if t < self.max_len {
            let (starts, ends, axes) =
                (graph.ints(&[0]), graph.ints(&[t as i64]), graph.ints(&[0]));
            table = graph.node("Slice", &[&table, &starts, &ends, &axes], vec![]);
        }
        let y = graph.node("Add", &[&x.name, &table], vec![]);
        Ok(OnnxValue::new(y, x.shape.clone()))
    }

    crate::register!(T; param weight);

    fn kind(&self) -> &'static str {
        "positional_embedding"
    }
}
