//! Batch normalization over the channel axis (axis 1), with running statistics.

use ndarray::{ArrayD, IxDyn, Zip};
use rand::rngs::StdRng;
use tapegrad_autograd::{Float, Param, Var};

use super::gain_offset::GainOffset;
use crate::buffer::Buffer;
use crate::module::{InvalidInputShape, Module, Visitor, VisitorMut};
use crate::onnx::{ExportError, OnnxGraph, OnnxValue, attr};

/// Batch normalization (PyTorch's `BatchNorm1d` / `BatchNorm2d`, Keras'
/// `BatchNormalization(axis=1)`): each channel — axis 1 of inputs `[N, C]`, `[N, C, L]` or
/// `[N, C, H, W]`, chosen from the input rank when the layer is built — is normalized, then
/// scaled by a learned `gamma` (starts at ones) and shifted by a learned `beta` (starts at
/// zeros), both of shape `(C,)` and named like [`LayerNorm`](super::LayerNorm)'s
/// (`batch_norm_0.gamma`, `batch_norm_0.beta`).
///
/// - **Train mode** (a new layer's, and during `fit`): `(x − mean) / √(var + eps)` with the
///   mean and the biased variance of the batch over every axis but the channel one, built
///   from autograd ops (so its gradients come from theirs). Each call also updates the
///   running statistics with PyTorch's formula `running = (1 − momentum)·running +
///   momentum·batch`, using the unbiased batch variance (`n / (n − 1)` times the biased
///   one, `n` values per channel). With `n = 1` the unbiased variance is undefined, so the
///   running variance is left as it is (PyTorch raises an error instead).
/// - **Eval mode** (`evaluate`, `predict`): `(x − running_mean) / √(running_var + eps)`;
///   nothing is updated.
///
/// The running statistics are [`Buffer`]s named like PyTorch's state-dict keys
/// (`batch_norm_0.running_mean`, `batch_norm_0.running_var`; starting at zeros and ones):
/// saved in checkpoints, never trained. `forward` takes `&self`, so the update goes through
/// the buffers' interior mutability ([`Buffer::set`]).
///
/// Defaults as PyTorch's: `momentum = 0.1` (Keras' `momentum=0.99` is PyTorch's 0.01),
/// `eps = 1e-5`.
///
/// ```
/// use ndarray::{array, Array2};
/// use rand::{rngs::StdRng, SeedableRng};
/// use tapegrad_autograd::Tape;
/// use tapegrad_nn::layers::BatchNorm;
/// use tapegrad_nn::Module;
///
/// let mut bn = BatchNorm::<f64>::new().momentum(0.5);
/// assert_eq!(bn.build(&[2], &mut StdRng::seed_from_u64(0)), vec![2]);
/// assert_eq!((bn.num_params(), bn.num_non_trainable()), (4, 4));
///
/// let x = array![[1.0, 10.0], [3.0, 30.0]].into_dyn();
/// {
///     let tape = Tape::new();
///     let y = bn.forward(tape.var(x.clone())).to_array();
///     assert!((y[[0, 0]] + 1.0).abs() < 1e-4 && (y[[1, 1]] - 1.0).abs() < 1e-4);
/// }
/// // running_mean = 0.5 · 0 + 0.5 · batch mean; running_var uses the unbiased variance.
/// assert_eq!(*bn.running_mean().unwrap().value(), array![1.0, 10.0].into_dyn());
/// assert_eq!(*bn.running_var().unwrap().value(), array![1.5, 100.5].into_dyn());
///
/// Module::<f64>::set_training(&mut bn, false); // eval: the running statistics
/// let tape = Tape::new();
/// let y = bn.forward(tape.var(x)).to_array();
/// assert!((y[[1, 0]] - (3.0 - 1.0) / (1.5_f64 + 1e-5).sqrt()).abs() < 1e-12);
/// ```
#[derive(Clone, Debug)]
pub struct BatchNorm<T: Float> {
    momentum: f64,
    eps: f64,
    affine: GainOffset<T>,
    running_mean: Option<Buffer<T>>,
    running_var: Option<Buffer<T>>,
    /// The input rank (with the batch axis) the layer was built for.
    rank: Option<usize>,
    training: bool,
}

impl<T: Float> BatchNorm<T> {
    /// Batch normalization with `momentum = 0.1` and `eps = 1e-5`, in train mode; the
    /// number of channels and the input rank are taken from the input shape at build.
    pub fn new() -> Self {
        BatchNorm {
            momentum: 0.1,
            eps: 1e-5,
            affine: GainOffset::empty(),
            running_mean: None,
            running_var: None,
            rank: None,
            training: true,
        }
    }

    /// Sets the weight of the batch statistics in the running ones, in `[0, 1]`
    /// (PyTorch's convention).
    #[track_caller]
    pub fn momentum(mut self, momentum: f64) -> Self {
        assert!(
            (0.0..=1.0).contains(&momentum),
            "BatchNorm::momentum: momentum must be in [0, 1], got {momentum}"
        );
        self.momentum = momentum;
        self
    }

    /// Sets the `eps` added to the variance (must be positive).
    #[track_caller]
    pub fn eps(mut self, eps: f64) -> Self {
        assert!(eps > 0.0, "BatchNorm::eps: eps must be positive, got {eps}");
        self.eps = eps;
        self
    }

    /// The gain, shape `(C,)` (`None` before building).
    pub fn gamma(&self) -> Option<&Param<T>> {
        self.affine.gamma.as_ref()
    }

    /// The offset, shape `(C,)` (`None` before building).
    pub fn beta(&self) -> Option<&Param<T>> {
        self.affine.beta.as_ref()
    }

    /// The running mean, shape `(C,)` (`None` before building).
    pub fn running_mean(&self) -> Option<&Buffer<T>> {
        self.running_mean.as_ref()
    }

    /// The running (unbiased) variance, shape `(C,)` (`None` before building).
    pub fn running_var(&self) -> Option<&Buffer<T>> {
        self.running_var.as_ref()
    }

    /// Whether the layer is in train mode (batch statistics, running-statistic updates).
    pub fn is_training(&self) -> bool {
        self.training
    }
}

impl<T: Float> Default for BatchNorm<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Float> Module<T> for BatchNorm<T> {
    /// Normalizes `x` per channel (axis 1); in train mode, also updates the running
    /// statistics. Panics if the layer is not built, or if `x` does not have the rank and
    /// number of channels it was built for.
    #[track_caller]
    fn forward<'t>(&'t self, x: Var<'t, T>) -> Var<'t, T> {
        let (Some(gamma), Some(beta), Some(running_mean), Some(running_var), Some(rank)) = (
            &self.affine.gamma,
            &self.affine.beta,
            &self.running_mean,
            &self.running_var,
            self.rank,
        ) else {
            panic!(
                "BatchNorm::forward: layer `{}` is not built; call build(input_shape, rng) first \
                 (Sequential and Model do this)",
                crate::module::layer_name("batch_norm")
            )
        };
        let channels = gamma.len();
        let shape = x.shape();
        if shape.len() != rank || shape[1] != channels {
            panic!(
                "BatchNorm::forward: layer `{}` was built for inputs of rank {rank} with {channels} \
                 channel{} on axis 1, got shape {shape:?}",
                crate::module::layer_name("batch_norm"),
                if channels == 1 { "" } else { "s" }
            );
        }
        let tape = x.tape();
        // Per-channel arrays broadcast against x as (C, 1, ..., 1).
        let mut channel_shape = vec![channels];
        channel_shape.resize(rank - 1, 1);
        let (gamma, beta) = (tape.param(gamma), tape.param(beta));
        let (gamma, beta) = if rank > 2 {
            (gamma.reshape(&channel_shape), beta.reshape(&channel_shape))
        } else {
            (gamma, beta)
        };
        let as_channels = |a: &ArrayD<T>| {
            a.to_shape(IxDyn(&channel_shape))
                .expect("C values")
                .into_owned()
        };

        let normalized = if self.training {
            let axes: Vec<isize> = std::iter::once(0).chain(2..rank as isize).collect();
            let mean = x.mean_axes(&axes, true);
            let centered = x - mean;
            let variance = centered.square().mean_axes(&axes, true);
            let normalized = centered / variance.add_scalar(T::from_f64(self.eps)).sqrt();

            // running = (1 − momentum)·running + momentum·batch, with the unbiased variance.
            let n = shape.iter().product::<usize>() / channels;
            let m = T::from_f64(self.momentum);
            let keep = T::one() - m;
            let per_channel = |v: Var<'t, T>| {
                v.to_array()
                    .into_shape_with_order(IxDyn(&[channels]))
                    .expect("one value per channel")
            };
            let blend = |running: &Buffer<T>, batch: ArrayD<T>| {
                let updated = Zip::from(&*running.value())
                    .and(&batch)
                    .map_collect(|&r, &b| keep * r + m * b);
                running.set(updated);
            };
            blend(running_mean, per_channel(mean));
            if n > 1 {
                let correction = T::from_f64(n as f64 / (n - 1) as f64);
                blend(running_var, per_channel(variance).mapv(|v| v * correction));
            }
            normalized
        } else {
            let mean = tape.constant(as_channels(&running_mean.value()));
            let std = tape.constant(
                as_channels(&running_var.value()).mapv(|v| (v + T::from_f64(self.eps)).sqrt()),
            );
            (x - mean) / std
        };
        normalized * gamma + beta
    }

    /// Inputs `(C,)`, `(C, L)` or `(C, H, W)` with at least one channel.
    fn check_input_shape(&self, input_shape: &[usize]) -> Result<(), InvalidInputShape> {
        if !(1..=3).contains(&input_shape.len()) || input_shape[0] == 0 {
            let expected = "(C,), (C, L) or (C, H, W)";
            return Err(InvalidInputShape::new("batch_norm", expected, input_shape));
        }
        Ok(())
    }

    /// Creates `gamma`, `beta` and the running statistics for the `C` channels of inputs
    /// `(C,)`, `(C, L)` or `(C, H, W)` (without the batch axis).
    #[track_caller]
    fn build(&mut self, input_shape: &[usize], _rng: &mut StdRng) -> Vec<usize> {
        if let Err(e) = Module::<T>::check_input_shape(self, input_shape) {
            panic!("BatchNorm::build: {e}")
        }
        let c = input_shape[0];
        self.affine = GainOffset::identity(c);
        self.running_mean = Some(Buffer::new("running_mean", ArrayD::zeros(vec![c])));
        self.running_var = Some(Buffer::new("running_var", ArrayD::ones(vec![c])));
        self.rank = Some(input_shape.len() + 1);
        input_shape.to_vec()
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
    }

    /// `BatchNormalization` in inference form (the running statistics), whatever the mode.
    fn export_onnx(
        &self,
        graph: &mut OnnxGraph<T>,
        x: &OnnxValue,
    ) -> Result<OnnxValue, ExportError> {
        Module::<T>::check_input_shape(self, &x.shape)?;
        let (Some(gamma), Some(beta), Some(mean), Some(var)) = (
            &self.affine.gamma,
            &self.affine.beta,
            &self.running_mean,
            &self.running_var,
        ) else {
            return Err(ExportError::not_built("batch_norm"));
        };
        let (gamma, beta) = (graph.param(gamma), graph.param(beta));
        let (mean, var) = (graph.buffer(mean), graph.buffer(var));
        let y = graph.node(
            "BatchNormalization",
            &[&x.name, &gamma, &beta, &mean, &var],
            vec![attr::float("epsilon", self.eps)],
        );
        Ok(OnnxValue::new(y, x.shape.clone()))
    }

    fn visit<'a>(&'a self, v: &mut Visitor<'a, '_, T>) {
        self.affine.visit(v);
        v.buffer("running_mean", self.running_mean.as_ref());
        v.buffer("running_var", self.running_var.as_ref());
    }

    fn visit_mut<'a>(&'a mut self, v: &mut VisitorMut<'a, '_, T>) {
        self.affine.visit_mut(v);
        v.buffer("running_mean", self.running_mean.as_mut());
        v.buffer("running_var", self.running_var.as_mut());
    }

    fn kind(&self) -> &'static str {
        "batch_norm"
    }
}
