//! The 2-D convolution layer.

use ndarray::{ArrayD, IxDyn};
use rand::rngs::StdRng;
use tapegrad_autograd::{Conv2dOptions, Float, Pair, Param, Var};

use super::Activation;
use super::kernel_bias::KernelBias;
use crate::init::Initializer;
use crate::module::{InvalidInputShape, Module, Visitor, VisitorMut};
use crate::onnx::{ExportError, OnnxGraph, OnnxValue, attr};

/// How a [`Conv2d`] pads its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    /// No padding (Keras' and PyTorch's default).
    Valid,
    /// The output has the input's height and width (stride 1 only, as in PyTorch): a total
    /// of `dilation·(k − 1)` zeros per axis, the odd one at the bottom or right.
    Same,
    /// This many zeros on each side, `[h, w]`.
    Explicit([usize; 2]),
}

impl From<usize> for Padding {
    /// `Explicit([n, n])`.
    fn from(n: usize) -> Self {
        Padding::Explicit([n, n])
    }
}

impl From<[usize; 2]> for Padding {
    /// `Explicit(hw)`.
    fn from(hw: [usize; 2]) -> Self {
        Padding::Explicit(hw)
    }
}

/// A 2-D convolution over images `(batch, channels, height, width)` (channels first, as in
/// PyTorch): `activation(conv2d(x, kernel) + bias)`, with [`Var::conv2d`]'s semantics.
///
/// Keras' constructor (`Conv2d::new(filters, kernel_size)`) with PyTorch's layout and
/// initialization: the kernel has shape `(filters, channels / groups, kh, kw)` and the bias
/// `(filters,)`, both drawn from `U(−1/√fan_in, 1/√fan_in)` with
/// `fan_in = channels / groups · kh · kw` (PyTorch's default, `kaiming_uniform(a = √5)`);
/// stride 1, no padding, dilation 1, one group, no activation by default. The input shape
/// given to [`build`](Module::build) is `(channels, height, width)`, without the batch axis.
///
/// ```
/// use ndarray::ArrayD;
/// use rand::{rngs::StdRng, SeedableRng};
/// use tapegrad_autograd::Tape;
/// use tapegrad_nn::layers::{Activation, Conv2d, Padding};
/// use tapegrad_nn::Module;
///
/// let mut layer = Conv2d::<f32>::new(16, 3).padding(Padding::Same).activation(Activation::Relu);
/// assert_eq!(layer.build(&[3, 32, 32], &mut StdRng::seed_from_u64(0)), vec![16, 32, 32]);
/// assert_eq!(layer.kernel().unwrap().shape(), &[16, 3, 3, 3]);
/// assert_eq!(layer.num_params(), 448); // 16 · 3 · 3 · 3 + 16
///
/// let tape = Tape::new();
/// let y = layer.forward(tape.constant(ArrayD::zeros(vec![8, 3, 32, 32])));
/// assert_eq!(y.shape(), vec![8, 16, 32, 32]);
/// ```
#[derive(Clone, Debug)]
pub struct Conv2d<T: Float> {
    filters: usize,
    kernel_size: [usize; 2],
    stride: [usize; 2],
    padding: Padding,
    dilation: [usize; 2],
    groups: usize,
    use_bias: bool,
    activation: Activation,
    weights: KernelBias<T>,
}

impl<T: Float> Conv2d<T> {
    /// A layer of `filters` output channels and a `kernel_size` window (one number or
    /// `[kh, kw]`), with the defaults above. Panics if `filters` or a kernel size is 0.
    #[track_caller]
    pub fn new(filters: usize, kernel_size: impl Into<Pair>) -> Self {
        let kernel_size = kernel_size.into().0;
        assert!(filters > 0, "Conv2d::new: filters must be at least 1");
        assert!(
            !kernel_size.contains(&0),
            "Conv2d::new: kernel size {kernel_size:?} has a zero"
        );
        Conv2d {
            filters,
            kernel_size,
            stride: [1, 1],
            padding: Padding::Valid,
            dilation: [1, 1],
            groups: 1,
            use_bias: true,
            activation: Activation::Linear,
            weights: KernelBias::empty(),
        }
    }

    /// Sets the stride (one number or `[h, w]`; default 1).
    pub fn stride(mut self, stride: impl Into<Pair>) -> Self {
        self.stride = stride.into().0;
        self
    }

    /// Sets the padding: [`Padding::Valid`] (default), [`Padding::Same`], or explicit
    /// zeros on each side (`Padding::Explicit([h, w])`, or one number or a pair).
    pub fn padding(mut self, padding: impl Into<Padding>) -> Self {
        self.padding = padding.into();
        self
    }

    /// Sets the dilation (one number or `[h, w]`; default 1).
    pub fn dilation(mut self, dilation: impl Into<Pair>) -> Self {
        self.dilation = dilation.into().0;
        self
    }

    /// Sets the number of channel groups (default 1; the channels = groups for a depthwise
    /// convolution). Both the input channels and `filters` must be multiples of it.
    pub fn groups(mut self, groups: usize) -> Self {
        self.groups = groups;
        self
    }

    /// Whether the layer has a bias (default `true`). Set before building.
    pub fn use_bias(mut self, use_bias: bool) -> Self {
        self.use_bias = use_bias;
        if !use_bias {
            self.weights.bias = None;
        }
        self
    }

    /// Applies `activation` to the output.
    pub fn activation(mut self, activation: Activation) -> Self {
        self.activation = activation;
        self
    }

    /// The number of output channels.
    pub fn filters(&self) -> usize {
        self.filters
    }

    /// The kernel, shape `(filters, channels / groups, kh, kw)` (`None` before building).
    pub fn kernel(&self) -> Option<&Param<T>> {
        self.weights.kernel.as_ref()
    }

    /// The bias, shape `(filters,)` (`None` before building or without a bias).
    pub fn bias(&self) -> Option<&Param<T>> {
        self.weights.bias.as_ref()
    }

    /// Whether [`build`](Module::build) has created the parameters.
    pub fn is_built(&self) -> bool {
        self.weights.kernel.is_some()
    }

    /// The padding `[h, w]` on the top and left, and the extra zero row and column at the
    /// bottom and right that `Same` needs when its total padding is odd.
    fn padding_sizes(&self) -> ([usize; 2], [usize; 2]) {
        match self.padding {
            Padding::Valid => ([0, 0], [0, 0]),
            Padding::Explicit(p) => (p, [0, 0]),
            Padding::Same => {
                let total = [0, 1].map(|a| self.dilation[a] * (self.kernel_size[a] - 1));
                (total.map(|t| t / 2), total.map(|t| t % 2))
            }
        }
    }

    /// The output's height and width for an input of `hw` (checked: the kernel fits in
    /// the padded input).
    fn output_hw(&self, hw: [usize; 2]) -> [usize; 2] {
        let (pad, extra) = self.padding_sizes();
        [0, 1].map(|a| {
            let extent = self.dilation[a] * (self.kernel_size[a] - 1) + 1;
            let padded = hw[a] + 2 * pad[a] + extra[a];
            (padded - extent) / self.stride[a] + 1
        })
    }

    fn options(&self) -> Conv2dOptions {
        Conv2dOptions::default()
            .stride(self.stride)
            .padding(self.padding_sizes().0)
            .dilation(self.dilation)
            .groups(self.groups)
    }
}

impl<T: Float> Module<T> for Conv2d<T> {
    /// `activation(conv2d(x, kernel) + bias)` on `x` of shape `(batch, channels, h, w)`.
    #[track_caller]
    fn forward<'t>(&'t self, x: Var<'t, T>) -> Var<'t, T> {
        let Some(kernel) = &self.weights.kernel else {
            panic!(
                "Conv2d::forward: layer `{}` is not built; call build(input_shape, rng) first \
                 (Sequential and Model do this)",
                crate::module::layer_name("conv2d")
            )
        };
        let tape = x.tape();
        let mut x = x;
        // `Same` with an odd total padding: the extra zeros at the bottom and right.
        let (_, extra) = self.padding_sizes();
        for (axis, &n) in extra.iter().enumerate() {
            if n > 0 {
                let mut shape = x.shape();
                shape[2 + axis] = n;
                let zeros = tape.constant(ArrayD::zeros(IxDyn(&shape)));
                x = Var::concat(&[x, zeros], 2 + axis as isize);
            }
        }
        let bias = self.weights.bias.as_ref().map(|b| tape.param(b));
        let (kernel, options) = (tape.param(kernel), self.options());
        // Without gradient recording, the bias and `relu` are applied in the convolution's
        // output pass; with it, `relu` is its own primitive.
        match self.activation {
            Activation::Relu => x.conv2d_relu(kernel, bias, &options),
            activation => activation.apply_to_pre_activation(x.conv2d(kernel, bias, &options)),
        }
    }

    /// Inputs of shape `(channels, height, width)` whose height and width, padded, are at
    /// least the kernel's extent (dilation included).
    fn check_input_shape(&self, input_shape: &[usize]) -> Result<(), InvalidInputShape> {
        let (pad, extra) = self.padding_sizes();
        let fits = |a: usize, n: usize| {
            self.dilation[a] * (self.kernel_size[a] - 1) < n + 2 * pad[a] + extra[a]
        };
        match *input_shape {
            [_, h, w] if fits(0, h) && fits(1, w) => Ok(()),
            _ => Err(InvalidInputShape::new(
                "conv2d",
                format!(
                    "(channels, height, width), the padded height and width at least the \
                     kernel {:?} (dilation {:?})",
                    self.kernel_size, self.dilation
                ),
                input_shape,
            )),
        }
    }

    /// Creates the kernel and bias for inputs of shape `(channels, height, width)` and
    /// returns the output shape `(filters, out_height, out_width)`. Panics, naming the layer,
    /// for another rank, channels or filters not divisible by `groups`, a zero stride or
    /// dilation, a kernel larger than the padded input, or `Same` padding with a stride
    /// other than 1.
    #[track_caller]
    fn build(&mut self, input_shape: &[usize], rng: &mut StdRng) -> Vec<usize> {
        let name = &crate::module::layer_name("conv2d");
        if let Err(e) = Module::<T>::check_input_shape(self, input_shape) {
            panic!("Conv2d::build: {e}")
        }
        let &[channels, h, w] = input_shape else {
            unreachable!("checked: the input has rank 3")
        };
        let groups = self.groups;
        assert!(
            groups > 0 && channels.is_multiple_of(groups) && self.filters.is_multiple_of(groups),
            "Conv2d::build: layer `{name}`: {channels} input channel{} and {} filter{} must both \
             be multiples of groups {groups}",
            if channels == 1 { "" } else { "s" },
            self.filters,
            if self.filters == 1 { "" } else { "s" },
        );
        assert!(
            !self.stride.contains(&0) && !self.dilation.contains(&0),
            "Conv2d::build: layer `{name}`: stride {:?} and dilation {:?} must be at least 1",
            self.stride,
            self.dilation
        );
        assert!(
            !(self.padding == Padding::Same && self.stride != [1, 1]),
            "Conv2d::build: layer `{name}`: padding Same is not supported with stride {:?} \
             (as in PyTorch); use Padding::Explicit",
            self.stride
        );
        let output_hw = self.output_hw([h, w]);
        let [kh, kw] = self.kernel_size;
        let fan_in = channels / groups * kh * kw;
        let bound = 1.0 / (fan_in as f64).sqrt();
        let uniform = Initializer::Uniform {
            low: -bound,
            high: bound,
        };
        let shape = [self.filters, channels / groups, kh, kw];
        self.weights = KernelBias::init(
            &shape,
            &uniform,
            self.use_bias.then_some((self.filters, &uniform)),
            rng,
        );
        vec![self.filters, output_hw[0], output_hw[1]]
    }

    /// `Conv` (`Same` padding's odd extra row and column at the bottom and right, as in
    /// the forward pass), then the activation.
    fn export_onnx(
        &self,
        graph: &mut OnnxGraph<T>,
        x: &OnnxValue,
    ) -> Result<OnnxValue, ExportError> {
        Module::<T>::check_input_shape(self, &x.shape)?;
        let kernel = self
            .kernel()
            .ok_or_else(|| ExportError::not_built("conv2d"))?;
        let kernel = graph.param(kernel);
        let bias = self.bias().map(|b| graph.param(b));
        let mut inputs = vec![x.name.as_str(), &kernel];
        inputs.extend(bias.as_deref());
        let (pad, extra) = self.padding_sizes();
        let ints = |a: [usize; 2]| a.map(|v| v as i64);
        let [top, left] = ints(pad);
        let [bottom, right] = ints([pad[0] + extra[0], pad[1] + extra[1]]);
        let attributes = vec![
            attr::ints("kernel_shape", &ints(self.kernel_size)),
            attr::ints("strides", &ints(self.stride)),
            attr::ints("pads", &[top, left, bottom, right]),
            attr::ints("dilations", &ints(self.dilation)),
            attr::int("group", self.groups as i64),
        ];
        let z = graph.node("Conv", &inputs, attributes);
        let [h, w] = self.output_hw([x.shape[1], x.shape[2]]);
        let shape = vec![self.filters, h, w];
        Ok(OnnxValue::new(graph.activation(&z, self.activation), shape))
    }

    fn visit<'a>(&'a self, v: &mut Visitor<'a, '_, T>) {
        self.weights.visit(v);
    }

    fn visit_mut<'a>(&'a mut self, v: &mut VisitorMut<'a, '_, T>) {
        self.weights.visit_mut(v);
    }

    fn kind(&self) -> &'static str {
        "conv2d"
    }
}
