//! The per-feature gain `gamma` and offset `beta` of the normalization layers
//! ([`LayerNorm`](super::LayerNorm), [`BatchNorm`](super::BatchNorm)).

use ndarray::ArrayD;
use tapegrad_autograd::{Float, Param};

use crate::module::{Visitor, VisitorMut};

/// `gamma` (starts at one) and `beta` (starts at zero), both `None` before building.
#[derive(Clone, Debug)]
pub(crate) struct GainOffset<T: Float> {
    pub(crate) gamma: Option<Param<T>>,
    pub(crate) beta: Option<Param<T>>,
}

impl<T: Float> GainOffset<T> {
    /// Not built yet.
    pub(crate) fn empty() -> Self {
        GainOffset {
            gamma: None,
            beta: None,
        }
    }

    /// `features` ones and `features` zeros: the identity transform.
    pub(crate) fn identity(features: usize) -> Self {
        GainOffset {
            gamma: Some(Param::new("gamma", ArrayD::ones(vec![features]))),
            beta: Some(Param::new("beta", ArrayD::zeros(vec![features]))),
        }
    }

    /// Reports `gamma` and `beta`.
    pub(crate) fn visit<'a>(&'a self, v: &mut Visitor<'a, '_, T>) {
        v.param("gamma", self.gamma.as_ref());
        v.param("beta", self.beta.as_ref());
    }

    /// Reports `gamma` and `beta`, mutably.
    pub(crate) fn visit_mut<'a>(&'a mut self, v: &mut VisitorMut<'a, '_, T>) {
        v.param("gamma", self.gamma.as_mut());
        v.param("beta", self.beta.as_mut());
    }
}
