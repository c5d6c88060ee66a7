//! The pooling layers: [`MaxPool2d`], [`AvgPool2d`] and [`GlobalAvgPool2d`].

use rand::rngs::StdRng;
use tapegrad_autograd::{Float, Pair, Pool2dOptions, Var};

use crate::module::{InvalidInputShape, Module};
use crate::onnx::{ExportError, OnnxGraph, OnnxValue, attr};

/// [`Module::check_input_shape`] of a pooling layer `kind`: inputs `(channels, height,
/// width)` whose padded height and width are at least the kernel's.
fn check_pooled(
    kind: &str,
    input_shape: &[usize],
    options: &Pool2dOptions,
) -> Result<(), InvalidInputShape> {
    let (kernel, padding) = (options.kernel, options.padding);
    match *input_shape {
        [_, h, w] if h + 2 * padding[0] >= kernel[0] && w + 2 * padding[1] >= kernel[1] => Ok(()),
        _ => Err(InvalidInputShape::new(
            kind,
            format!(
                "(channels, height, width), the padded height and width at least the kernel \
                 {kernel:?}"
            ),
            input_shape,
        )),
    }
}

/// `MaxPool` or `AveragePool` (`op`) over windows of `options`, after checking the input
/// shape: the rule of the two pooling layers.
fn export_pool<T: Float>(
    kind: &str,
    op: &str,
    options: &Pool2dOptions,
    graph: &mut OnnxGraph<T>,
    x: &OnnxValue,
) -> Result<OnnxValue, ExportError> {
    check_pooled(kind, &x.shape, options)?;
    let ints = |a: [usize; 2]| a.map(|v| v as i64);
    let [ph, pw] = ints(options.padding);
    let mut attributes = vec![
        attr::ints("kernel_shape", &ints(options.kernel)),
        attr::ints("strides", &ints(options.stride.unwrap_or(options.kernel))),
        attr::ints("pads", &[ph, pw, ph, pw]),
        attr::int("ceil_mode", i64::from(options.ceil_mode)),
    ];
    if op == "AveragePool" {
        let include = i64::from(options.count_include_pad);
        attributes.push(attr::int("count_include_pad", include));
    }
    let y = graph.node(op, &[&x.name], attributes);
    let layer = if op == "MaxPool" {
        "MaxPool2d"
    } else {
        "AvgPool2d"
    };
    let shape = pooled_shape(layer, &crate::module::layer_name(kind), &x.shape, options);
    Ok(OnnxValue::new(y, shape))
}

/// The output shape `(channels, out_height, out_width)` of a pooling of inputs of shape
/// `(channels, height, width)` (floor rounding, PyTorch's sizes); panics naming the layer
/// for invalid settings.
#[track_caller]
fn pooled_shape(
    layer: &str,
    name: &str,
    input_shape: &[usize],
    options: &Pool2dOptions,
) -> Vec<usize> {
    let &[channels, h, w] = input_shape else {
        panic!(
            "{layer}::build: layer `{name}` needs inputs of shape (channels, height, width), \
             got {input_shape:?} (without the batch axis)"
        )
    };
    let (kernel, padding) = (options.kernel, options.padding);
    let stride = options.stride.unwrap_or(kernel);
    assert!(
        !kernel.contains(&0) && !stride.contains(&0),
        "{layer}::build: layer `{name}`: kernel {kernel:?} and stride {stride:?} must be at least 1"
    );
    let out = [0, 1].map(|a| {
        assert!(
            padding[a] <= kernel[a] / 2 && [h, w][a] + 2 * padding[a] >= kernel[a],
            "{layer}::build: layer `{name}`: kernel {kernel:?} with padding {padding:?} does not \
             fit the input {input_shape:?} (padding at most half the kernel, kernel at most the \
             padded input)"
        );
        ([h, w][a] + 2 * padding[a] - kernel[a]) / stride[a] + 1
    });
    vec![channels, out[0], out[1]]
}

/// Max pooling over images `(batch, channels, height, width)` with [`Var::max_pool2d`]:
/// each window's maximum, padded with −∞. The stride defaults to the window (Keras' and
/// PyTorch's default); no parameters.
///
/// ```
/// use rand::{rngs::StdRng, SeedableRng};
/// use tapegrad_nn::layers::MaxPool2d;
/// use tapegrad_nn::Module;
///
/// let mut pool = MaxPool2d::new(2);
/// let shape = Module::<f32>::build(&mut pool, &[16, 32, 32], &mut StdRng::seed_from_u64(0));
/// assert_eq!(shape, vec![16, 16, 16]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaxPool2d {
    options: Pool2dOptions,
}

impl MaxPool2d {
    /// A `kernel` window (one number or `[h, w]`), stride = kernel, no padding.
    pub fn new(kernel: impl Into<Pair>) -> Self {
        MaxPool2d {
            options: Pool2dOptions::new(kernel),
        }
    }

    /// Sets the stride (one number or `[h, w]`; default the kernel).
    pub fn stride(mut self, stride: impl Into<Pair>) -> Self {
        self.options = self.options.stride(stride);
        self
    }

    /// Sets the padding on each side (one number or `[h, w]`, at most half the kernel).
    pub fn padding(mut self, padding: impl Into<Pair>) -> Self {
        self.options = self.options.padding(padding);
        self
    }

    /// The pooling's window, stride and padding.
    pub fn options(&self) -> &Pool2dOptions {
        &self.options
    }
}

/// Average pooling over images `(batch, channels, height, width)` with
/// [`Var::avg_pool2d`]: each window's mean, zero padded and divided by the full window
/// (`count_include_pad`, PyTorch's default). The stride defaults to the window; no
/// parameters.
///
/// ```
/// use rand::{rngs::StdRng, SeedableRng};
/// use tapegrad_nn::layers::AvgPool2d;
/// use tapegrad_nn::Module;
///
/// let mut pool = AvgPool2d::new(3).stride(2).padding(1);
/// let shape = Module::<f32>::build(&mut pool, &[8, 9, 9], &mut StdRng::seed_from_u64(0));
/// assert_eq!(shape, vec![8, 5, 5]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AvgPool2d {
    options: Pool2dOptions,
}

impl AvgPool2d {
    /// A `kernel` window (one number or `[h, w]`), stride = kernel, no padding.
    pub fn new(kernel: impl Into<Pair>) -> Self {
        AvgPool2d {
            options: Pool2dOptions::new(kernel),
        }
    }

    /// Sets the stride (one number or `[h, w]`; default the kernel).
    pub fn stride(mut self, stride: impl Into<Pair>) -> Self {
        self.options = self.options.stride(stride);
        self
    }

    /// Sets the padding on each side (one number or `[h, w]`, at most half the kernel).
    pub fn padding(mut self, padding: impl Into<Pair>) -> Self {
        self.options = self.options.padding(padding);
        self
    }

    /// Whether a border window's divisor counts its padding (default `true`) or only the
    /// input elements it covers.
    pub fn count_include_pad(mut self, count_include_pad: bool) -> Self {
        self.options = self.options.count_include_pad(count_include_pad);
        self
    }

    /// The pooling's window, stride, padding and divisor.
    pub fn options(&self) -> &Pool2dOptions {
        &self.options
    }
}

/// The mean of each channel over its height and width, with
/// [`Var::global_avg_pool2d`]: `(batch, channels, height, width)` → `(batch, channels)`
/// (Keras' `GlobalAveragePooling2D`); no parameters.
///
/// ```
/// use rand::{rngs::StdRng, SeedableRng};
/// use tapegrad_nn::layers::GlobalAvgPool2d;
/// use tapegrad_nn::Module;
///
/// let mut pool = GlobalAvgPool2d::new();
/// let shape = Module::<f32>::build(&mut pool, &[64, 7, 7], &mut StdRng::seed_from_u64(0));
/// assert_eq!(shape, vec![64]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobalAvgPool2d {}

impl GlobalAvgPool2d {
    /// A global average pooling layer.
    pub fn new() -> Self {
        GlobalAvgPool2d {}
    }
}

impl Default for GlobalAvgPool2d {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Float> Module<T> for MaxPool2d {
    #[track_caller]
    fn forward<'t>(&'t self, x: Var<'t, T>) -> Var<'t, T> {
        x.max_pool2d(&self.options)
    }

    fn check_input_shape(&self, input_shape: &[usize]) -> Result<(), InvalidInputShape> {
        check_pooled("max_pool2d", input_shape, &self.options)
    }

    #[track_caller]
    fn build(&mut self, input_shape: &[usize], _rng: &mut StdRng) -> Vec<usize> {
        pooled_shape(
            "MaxPool2d",
            &crate::module::layer_name("max_pool2d"),
            input_shape,
            &self.options,
        )
    }

    fn export_onnx(
        &self,
        graph: &mut OnnxGraph<T>,
        x: &OnnxValue,
    ) -> Result<OnnxValue, ExportError> {
        export_pool("max_pool2d", "MaxPool", &self.options, graph, x)
    }

    fn kind(&self) -> &'static str {
        "max_pool2d"
    }
}

impl<T: Float> Module<T> for AvgPool2d {
    #[track_caller]
    fn forward<'t>(&'t self, x: Var<'t, T>) -> Var<'t, T> {
        x.avg_pool2d(&self.options)
    }

    fn check_input_shape(&self, input_shape: &[usize]) -> Result<(), InvalidInputShape> {
        check_pooled("avg_pool2d", input_shape, &self.options)
    }

    #[track_caller]
    fn build(&mut self, input_shape: &[usize], _rng: &mut StdRng) -> Vec<usize> {
        pooled_shape(
            "AvgPool2d",
            &crate::module::layer_name("avg_pool2d"),
            input_shape,
            &self.options,
        )
    }

    fn export_onnx(
        &self,
        graph: &mut OnnxGraph<T>,
        x: &OnnxValue,
    ) -> Result<OnnxValue, ExportError> {
        export_pool("avg_pool2d", "AveragePool", &self.options, graph, x)
    }

    fn kind(&self) -> &'static str {
        "avg_pool2d"
    }
}

impl<T: Float> Module<T> for GlobalAvgPool2d {
    #[track_caller]
    fn forward<'t>(&'t self, x: Var<'t, T>) -> Var<'t, T> {
        x.global_avg_pool2d()
    }

    /// Inputs `(channels, height, width)`.
    fn check_input_shape(&self, input_shape: &[usize]) -> Result<(), InvalidInputShape> {
        if input_shape.len() != 3 {
            let expected = "(channels, height, width)";
            return Err(InvalidInputShape::new(
                "global_avg_pool2d",
                expected,
                input_shape,
            ));
        }
        Ok(())
    }

    #[track_caller]
    fn build(&mut self, input_shape: &[usize], _rng: &mut StdRng) -> Vec<usize> {
        let &[channels, _, _] = input_shape else {
            panic!(
                "GlobalAvgPool2d::build: layer `{}` needs inputs of shape (channels, height, \
                 width), got {input_shape:?} (without the batch axis)",
                crate::module::layer_name("global_avg_pool2d")
            )
        };
        vec![channels]
    }

    /// `GlobalAveragePool`, then `Flatten`: `(batch, channels)`.
    fn export_onnx(
        &self,
        graph: &mut OnnxGraph<T>,
        x: &OnnxValue,
    ) -> Result<OnnxValue, ExportError> {
        Module::<T>::check_input_shape(self, &x.shape)?;
        let pooled = graph.node("GlobalAveragePool", &[&x.name], vec![]);
        let y = graph.node("Flatten", &[&pooled], vec![attr::int("axis", 1)]);
        Ok(OnnxValue::new(y, vec![x.shape[0]]))
    }

    fn kind(&self) -> &'static str {
        "global_avg_pool2d"
    }
}
