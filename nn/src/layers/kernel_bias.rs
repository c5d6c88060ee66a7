//! The kernel and optional bias that [`Dense`](super::Dense) and [`Conv2d`](super::Conv2d)
//! create when built, and how both hand them to a visitor.

use rand::rngs::StdRng;
use tapegrad_autograd::{Float, Param};

use crate::init::Initializer;
use crate::module::{Visitor, VisitorMut};

/// A layer's weights: `kernel`, and `bias` unless the layer has none; both `None` before
/// building.
#[derive(Clone, Debug)]
pub(crate) struct KernelBias<T: Float> {
    pub(crate) kernel: Option<Param<T>>,
    pub(crate) bias: Option<Param<T>>,
}

impl<T: Float> KernelBias<T> {
    /// Not built yet.
    pub(crate) fn empty() -> Self {
        KernelBias {
            kernel: None,
            bias: None,
        }
    }

    /// Draws a kernel of `kernel_shape` from `kernel_init`, then (with `bias`) a bias of
    /// `bias_len` values from its initializer, in that order from `rng`.
    pub(crate) fn init(
        kernel_shape: &[usize],
        kernel_init: &Initializer,
        bias: Option<(usize, &Initializer)>,
        rng: &mut StdRng,
    ) -> Self {
        let kernel = Param::new("kernel", kernel_init.init::<T, _>(kernel_shape, rng));
        let bias = bias.map(|(len, init)| Param::new("bias", init.init::<T, _>(&[len], rng)));
        KernelBias {
            kernel: Some(kernel),
            bias,
        }
    }

    /// Reports `kernel` and `bias`.
    pub(crate) fn visit<'a>(&'a self, v: &mut Visitor<'a, '_, T>) {
        v.param("kernel", self.kernel.as_ref());
        v.param("bias", self.bias.as_ref());
    }

    /// Reports `kernel` and `bias`, mutably.
    pub(crate) fn visit_mut<'a>(&'a mut self, v: &mut VisitorMut<'a, '_, T>) {
        v.param("kernel", self.kernel.as_mut());
        v.param("bias", self.bias.as_mut());
    }
}
