//! A stack of modules applied in order, with a Keras-style summary.

use std::fmt::Write as _;
use std::sync::Arc;

use ndarray::ArrayViewD;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tapegrad_autograd::scope::in_scope;
use tapegrad_autograd::{Float, Var};

use crate::module::{InvalidInput, InvalidInputShape, Module, Visitor, VisitorMut, assign_paths};
use crate::onnx::{ExportError, OnnxGraph, OnnxValue};

/// The seed a [`Sequential`] builds itself with when none is given.
pub const DEFAULT_SEED: u64 = 0;

/// Layers applied one after the other (Keras' `Sequential`, PyTorch's `nn.Sequential`).
///
/// Each layer added is named after its [kind](Module::kind) and its rank among the layers of
/// that kind (`dense_0`, `dense_1`, `dropout_0`, ...; a layer of type `ResBlock` with the
/// default kind is `res_block_0`), and its parameters and buffers by their path from the
/// model (`dense_0.kernel`, `dense_0.bias`, `batch_norm_0.running_mean`,
/// `res_block_0.conv.kernel`): the names checkpoints store. A shape panic raised inside a
/// layer's forward pass names that path (`... in layer 'dense_1'`).
///
/// The input shape (without the batch axis) is given up front with
/// [`with_input_shape`](Sequential::with_input_shape), which builds the layers at once (and
/// any layer added later as it is added), or later through [`Module::build`] — `Model`
/// calls it with the shape of the first batch it sees when the model is not built yet.
/// The initial values depend only on the seed and the layers, not on when building
/// happens.
///
/// A `Sequential` is itself a [`Module`], so models nest; a nested model's layers are
/// named inside it (`sequential_0.dense_0.kernel`).
///
/// ```
/// use ndarray::Array2;
/// use tapegrad_autograd::Tape;
/// use tapegrad_nn::layers::{Activation, Dense, Dropout, Sequential};
/// use tapegrad_nn::Module;
///
/// let model = Sequential::<f32>::new()
///     .add(Dense::new(128).activation(Activation::Relu))
///     .add(Dropout::new(0.2))
///     .add(Dense::new(10))
///     .seed(42)
///     .with_input_shape(&[784]);
/// assert_eq!(model.output_shape(), Some(&[10][..]));
/// assert_eq!(model.num_params(), 784 * 128 + 128 + 128 * 10 + 10);
/// let names: Vec<&str> = model.params().iter().map(|p| p.name()).collect();
/// assert_eq!(names, ["dense_0.kernel", "dense_0.bias", "dense_1.kernel", "dense_1.bias"]);
///
/// let tape = Tape::new();
/// let x = tape.constant(Array2::<f32>::zeros((32, 784)).into_dyn());
/// let logits = model.forward(x);
/// assert_eq!(logits.shape(), vec![32, 10]);
/// ```
pub struct Sequential<T: Float> {
    layers: Vec<Box<dyn Module<T>>>,
    /// The layers' names (`dense_0`), built once: the scopes their forward runs in.
    names: Vec<Arc<str>>,
    /// Output shape of each layer, once built.
    output_shapes: Vec<Vec<usize>>,
    input_shape: Option<Vec<usize>>,
    /// The generator later additions are built with (set when the model is built).
    rng: Option<StdRng>,
    seed: u64,
    training: bool,
    name: String,
}

impl<T: Float> Sequential<T> {
    /// An empty model named `"sequential"`, in train mode, with seed [`DEFAULT_SEED`].
    pub fn new() -> Self {
        Sequential {
            layers: Vec::new(),
            names: Vec::new(),
            output_shapes: Vec::new(),
            input_shape: None,
            rng: None,
            seed: DEFAULT_SEED,
            training: true,
            name: "sequential".to_string(),
        }
    }

    /// Appends a layer (builder form of [`push`](Sequential::push)).
    // Keras' name for it; `Sequential` is not a number, so `std::ops::Add` would mislead.
    #[allow(clippy::should_implement_trait)]
    #[track_caller]
    pub fn add(mut self, layer: impl Module<T> + 'static) -> Self {
        self.push(layer);
        self
    }

    /// Appends a layer: names it, puts it in the model's train/eval mode, and builds it
    /// right away if the model is built.
    #[track_caller]
    pub fn push(&mut self, layer: impl Module<T> + 'static) {
        let mut layer: Box<dyn Module<T>> = Box::new(layer);
        let kind = kind_name(layer.kind());
        let rank = self
            .layers
            .iter()
            .filter(|l| kind_name(l.kind()) == kind)
            .count();
        let name: Arc<str> = format!("{kind}_{rank}").into();
        layer.set_training(self.training);
        if let Some(rng) = &mut self.rng {
            let input = self
                .output_shapes
                .last()
                .or(self.input_shape.as_ref())
                .expect("a built model has an input shape")
                .clone();
            let output = in_scope(&name, || layer.build(&input, rng));
            self.output_shapes.push(output);
        }
        self.layers.push(layer);
        self.names.push(name);
        if self.rng.is_some() {
            assign_paths(self);
        }
    }

    /// Sets the seed the model builds itself with (default [`DEFAULT_SEED`]); a model that
    /// is already built is rebuilt from it (fresh parameters).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        if let Some(shape) = self.input_shape.clone() {
            self.build_seeded(&shape);
        }
        self
    }

    /// Gives the input shape (without the batch axis) and builds every layer now, from the
    /// model's seed.
    #[track_caller]
    pub fn with_input_shape(mut self, input_shape: &[usize]) -> Self {
        self.build_seeded(input_shape);
        self
    }

    #[track_caller]
    fn build_seeded(&mut self, input_shape: &[usize]) {
        let mut rng = StdRng::seed_from_u64(self.seed);
        Module::build(self, input_shape, &mut rng);
    }

    /// Whether the layers are built (their parameters exist).
    pub fn is_built(&self) -> bool {
        self.input_shape.is_some()
    }

    /// The input shape without the batch axis, once built.
    pub fn input_shape(&self) -> Option<&[usize]> {
        self.input_shape.as_deref()
    }

    /// The output shape without the batch axis, once built.
    pub fn output_shape(&self) -> Option<&[usize]> {
        self.input_shape.as_ref()?;
        Some(
            self.output_shapes
                .last()
                .or(self.input_shape.as_ref())
                .expect("checked"),
        )
    }

    /// The output shape of each layer (without the batch axis), once built.
    pub fn layer_output_shapes(&self) -> Option<&[Vec<usize>]> {
        self.input_shape.as_ref()?;
        Some(&self.output_shapes)
    }

    /// The layers, in order.
    pub fn layers(&self) -> &[Box<dyn Module<T>>] {
        &self.layers
    }

    /// The layers' names (`dense_0`, ...), in order: the first segment of their parameters'
    /// paths.
    pub fn layer_names(&self) -> Vec<&str> {
        self.names.iter().map(|n| &**n).collect()
    }

    /// The layers, mutably.
    pub fn layers_mut(&mut self) -> &mut [Box<dyn Module<T>>] {
        &mut self.layers
    }

    /// The number of layers.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// Whether the model has no layer.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// Whether the model is in train mode.
    pub fn is_training(&self) -> bool {
        self.training
    }

    /// A Keras-style table of the layers: name and type, output shape (the batch axis shown
    /// as `None`) and number of parameters, then the totals. As in Keras, a layer's
    /// "Param #" counts its buffers too (BatchNorm's running statistics), and the totals
    /// split them out as "Non-trainable params". Before the model is built, shapes and
    /// counts are shown as `?`.
    ///
    /// ```
    /// use tapegrad_nn::layers::{Activation, Dense, Dropout, Flatten, Sequential};
    ///
    /// let model = Sequential::<f32>::new()
    ///     .add(Flatten::new())
    ///     .add(Dense::new(128).activation(Activation::Relu))
    ///     .add(Dropout::new(0.2))
    ///     .add(Dense::new(10))
    ///     .with_input_shape(&[28, 28]);
    /// print!("{}", model.summary());
    /// assert_eq!(
    ///     model.summary(),
    ///     r#"Model: "sequential"
    /// _________________________________________________________________
    /// Layer (type)                 Output Shape              Param #
    /// =================================================================
    /// flatten_0 (Flatten)          (None, 784)               0
    /// _________________________________________________________________
    /// dense_0 (Dense)              (None, 128)               100480
    /// _________________________________________________________________
    /// dropout_0 (Dropout)          (None, 128)               0
    /// _________________________________________________________________
    /// dense_1 (Dense)              (None, 10)                1290
    /// =================================================================
    /// Total params: 101,770
    /// Trainable params: 101,770
    /// Non-trainable params: 0
    /// _________________________________________________________________
    /// "#
    /// );
    /// ```
    pub fn summary(&self) -> String {
        let built = self.is_built();
        let rows: Vec<[String; 3]> = self
            .layers
            .iter()
            .enumerate()
            .map(|(i, layer)| {
                let name = &self.names[i];
                let shape = match self.output_shapes.get(i) {
                    Some(shape) if built => format_shape(shape),
                    _ => "?".to_string(),
                };
                let count = if built {
                    (layer.num_params() + layer.num_non_trainable()).to_string()
                } else {
                    "?".to_string()
                };
                (
                    format!("{name} ({})", type_column(layer.kind())),
                    shape,
                    count,
                )
            })
            .map(|(a, b, c)| [a, b, c])
            .collect();
        // Keras' column stops for sequential models (29, 55, 65 of 65), widened to fit.
        let widest = |column: usize, minimum: usize| {
            rows.iter()
                .map(|r| r[column].chars().count() + 1)
                .fold(minimum, usize::max)
        };
        let widths = [widest(0, 29), widest(1, 26), widest(2, 10)];
        let line_length: usize = widths.iter().sum();
        let row = |fields: [&str; 3]| {
            let mut line = String::new();
            for (field, width) in fields.iter().zip(widths) {
                let _ = write!(line, "{field:width$}");
            }
            line.trim_end().to_string() + "\n"
        };

        let mut out = format!("Model: \"{}\"\n", self.name);
        out += &"_".repeat(line_length);
        out += "\n";
        out += &row(["Layer (type)", "Output Shape", "Param #"]);
        out += &"=".repeat(line_length);
        out += "\n";
        for (i, [name, shape, count]) in rows.iter().enumerate() {
            if i > 0 {
                out += &"_".repeat(line_length);
                out += "\n";
            }
            out += &row([name, shape, count]);
        }
        out += &"=".repeat(line_length);
        out += "\n";
        if built {
            let (trainable, frozen) = (self.num_params(), self.num_non_trainable());
            let total = group_thousands(trainable + frozen);
            let _ = writeln!(out, "Total params: {total}");
            let _ = writeln!(out, "Trainable params: {}", group_thousands(trainable));
            let _ = writeln!(out, "Non-trainable params: {}", group_thousands(frozen));
        } else {
            out += "Total params: ? (not built: give an input shape or call build)\n";
        }
        out += &"_".repeat(line_length);
        out += "\n";
        out
    }
}

impl<T: Float> Default for Sequential<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Float> std::fmt::Debug for Sequential<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let layers: Vec<String> = self
            .names
            .iter()
            .zip(&self.layers)
            .map(|(name, l)| format!("{name} ({})", kind_name(l.kind())))
            .collect();
        f.debug_struct("Sequential")
            .field("name", &self.name)
            .field("layers", &layers)
            .field("input_shape", &self.input_shape)
            .field("training", &self.training)
            .finish()
    }
}

impl<T: Float> Module<T> for Sequential<T> {
    /// Applies the layers in order. Panics if the model is not built or if `x`'s shape
    /// (without the batch axis) is not the model's input shape.
    #[track_caller]
    fn forward<'t>(&'t self, x: Var<'t, T>) -> Var<'t, T> {
        let Some(input_shape) = &self.input_shape else {
            panic!(
                "Sequential::forward: model `{}` is not built; give its input shape with \
                 `.with_input_shape(&[..])` or call `build(input_shape, rng)` first \
                 (Model::fit builds it from the first batch)",
                self.name
            )
        };
        let matches = {
            let a = x.value();
            a.ndim() >= 1 && a.shape()[1..] == input_shape[..]
        };
        if !matches {
            panic!(
                "Sequential::forward: model `{}` was built for inputs of shape (batch, {}), got shape {:?}",
                self.name,
                input_shape
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                x.shape()
            );
        }
        // Without gradient recording, each layer's input but the model's own is freed once
        // the layer has run (`free_once_used`).
        self.layers
            .iter()
            .zip(&self.names)
            .fold(x, |h, (layer, name)| {
                let next = in_scope(name, || layer.forward(h));
                if h.index() != x.index() {
                    super::free_once_used(h, next);
                }
                next
            })
    }

    /// Builds every layer in order (fresh parameters), each for the previous one's output
    /// shape, and returns the last output shape.
    fn build(&mut self, input_shape: &[usize], rng: &mut StdRng) -> Vec<usize> {
        let mut shape = input_shape.to_vec();
        self.output_shapes.clear();
        for (layer, name) in self.layers.iter_mut().zip(&self.names) {
            shape = in_scope(name, || layer.build(&shape, rng));
            self.output_shapes.push(shape.clone());
        }
        self.input_shape = Some(input_shape.to_vec());
        self.rng = Some(rng.clone());
        assign_paths(self);
        shape
    }

    /// Checks and builds every layer in order, each for the previous one's output shape: the
    /// first layer whose shape is wrong is the error, named by its path. The model is then
    /// unbuilt (its earlier layers are built again, with fresh parameters, by the next build).
    fn try_build(
        &mut self,
        input_shape: &[usize],
        rng: &mut StdRng,
    ) -> Result<Vec<usize>, InvalidInputShape> {
        let mut shape = input_shape.to_vec();
        self.output_shapes.clear();
        self.input_shape = None;
        for (layer, name) in self.layers.iter_mut().zip(&self.names) {
            // Inside the layer's scope, its error names it by its path.
            shape = in_scope(name, || layer.try_build(&shape, rng))?;
            self.output_shapes.push(shape.clone());
        }
        self.input_shape = Some(input_shape.to_vec());
        self.rng = Some(rng.clone());
        assign_paths(self);
        Ok(shape)
    }

    fn built_shapes(&self) -> Option<(&[usize], &[usize])> {
        Some((self.input_shape()?, self.output_shape()?))
    }

    fn visit<'a>(&'a self, v: &mut Visitor<'a, '_, T>) {
        for (name, layer) in self.names.iter().zip(&self.layers) {
            v.module(name, layer);
        }
    }

    fn visit_mut<'a>(&'a mut self, v: &mut VisitorMut<'a, '_, T>) {
        for (name, layer) in self.names.iter().zip(&mut self.layers) {
            v.module(name, layer);
        }
    }

    /// Asks the first layer (the only one that sees the raw input).
    fn check_input(&self, x: ArrayViewD<'_, T>) -> Result<(), InvalidInput> {
        match self.layers.first() {
            Some(first) => first.check_input(x).map_err(|mut e| {
                e.layer = self.names[0].to_string();
                e
            }),
            None => Ok(()),
        }
    }

    /// Asks the first layer (the only one that sees the model's input shape); a later
    /// layer's requirement depends on the shapes the layers before it make, and is checked
    /// by [`try_build`](Module::try_build).
    fn check_input_shape(&self, input_shape: &[usize]) -> Result<(), InvalidInputShape> {
        match self.layers.first() {
            Some(first) => first.check_input_shape(input_shape).map_err(|mut e| {
                e.layer = self.names[0].to_string();
                e
            }),
            None => Ok(()),
        }
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
        for layer in &mut self.layers {
            layer.set_training(training);
        }
    }

    /// Each layer's rule in order, its nodes named after the layer (`dense_0/MatMul`).
    fn export_onnx(
        &self,
        graph: &mut OnnxGraph<T>,
        input: &OnnxValue,
    ) -> Result<OnnxValue, ExportError> {
        crate::onnx::sequential(self, graph, input)
    }

    fn kind(&self) -> &'static str {
        "sequential"
    }
}

/// `(None, 28, 28)`, with `None` for the batch axis (`(None,)` for a scalar per example,
/// as Python writes a 1-tuple).
fn format_shape(shape: &[usize]) -> String {
    if shape.is_empty() {
        return "(None,)".to_string();
    }
    let mut s = String::from("(None");
    for d in shape {
        let _ = write!(s, ", {d}");
    }
    s.push(')');
    s
}

/// A kind as a layer name's stem: `"dense"` stays, a type name (`my_crate::ResBlock<f32>`,
/// the default [`Module::kind`]) becomes `res_block`.
fn kind_name(kind: &str) -> String {
    let short = short_type(kind);
    let mut out = String::with_capacity(short.len() + 2);
    for (i, c) in short.chars().enumerate() {
        if c.is_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `my_crate::ResBlock<f32>` → `ResBlock`; `dense` stays.
fn short_type(kind: &str) -> &str {
    let base = kind.split('<').next().unwrap_or(kind);
    base.rsplit("::").next().unwrap_or(base)
}

/// The type column of the summary: `layer_norm` → `LayerNorm`, `my_crate::ResBlock<f32>` →
/// `ResBlock`.
fn type_column(kind: &str) -> String {
    camel_case(&kind_name(kind))
}

/// `layer_norm` → `LayerNorm`.
fn camel_case(kind: &str) -> String {
    kind.split('_')
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect(),
                None => String::new(),
            }
        })
        .collect()
}

/// `101770` → `101,770`.
fn group_thousands(n: usize) -> String {
    let digits = n.to_string();
    // The leading group has 1 to 3 digits, every later one exactly 3.
    let lead = match digits.len() % 3 {
        0 => 3.min(digits.len()),
        r => r,
    };
    let mut out = digits[..lead].to_string();
    for group in digits.as_bytes()[lead..].chunks(3) {
        out.push(',');
        out.push_str(std::str::from_utf8(group).expect("ASCII digits"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(format_shape(&[]), "(None,)");
        assert_eq!(format_shape(&[28, 28]), "(None, 28, 28)");
        assert_eq!(camel_case("layer_norm"), "LayerNorm");
        assert_eq!(camel_case("dense"), "Dense");
        assert_eq!(kind_name("dense"), "dense");
        assert_eq!(kind_name("my_crate::blocks::ResBlock<f32>"), "res_block");
        assert_eq!(type_column("my_crate::ResBlock<f32>"), "ResBlock");
        assert_eq!(type_column("max_pool2d"), "MaxPool2d");
        assert_eq!(group_thousands(0), "0");
        assert_eq!(group_thousands(999), "999");
        assert_eq!(group_thousands(1000), "1,000");
        assert_eq!(group_thousands(101_770), "101,770");
        assert_eq!(group_thousands(1_234_567), "1,234,567");
    }
}
