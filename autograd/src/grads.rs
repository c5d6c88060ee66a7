//! The result of a backward sweep.

use std::ops::Index;

use ndarray::ArrayD;

use crate::kernels::pool::{Pooled, PooledVec, copy, recycle_array};
use crate::{Float, Param, ParamId, Var};

/// Gradients computed by [`Var::backward`]: one array per leaf variable and bound parameter
/// that the output depends on.
///
/// Parameters' gradients are keyed by [`ParamId`], so they outlive the tape and feed an
/// optimizer after it is gone. Gradients of intermediate values are not kept (as in
/// PyTorch); use [`Tape::grad`](crate::Tape::grad) to get the gradient of any variable.
///
/// Dropping it gives its arrays back to the calling thread's buffer pool
/// ([`memory`](crate::memory)), where the next step's backward pass finds them.
#[derive(Clone, Debug, Default)]
pub struct Grads<T> {
    tape_id: u64,
    /// Gradients of leaf variables that are not parameters, by arena index.
    by_node: PooledVec<(usize, Pooled<T>)>,
    /// Gradients of parameters, with the arena index of their variable (`usize::MAX` for
    /// gradients inserted by hand). Models have tens of parameters, not thousands: a
    /// linear scan beats hashing here.
    by_param: PooledVec<(ParamId, usize, Pooled<T>)>,
}

impl<T: Float> Grads<T> {
    /// An empty set of gradients (to fill by hand with [`Grads::insert`], e.g. to feed an
    /// optimizer gradients computed elsewhere).
    pub fn new() -> Self {
        Grads {
            tape_id: 0,
            by_node: PooledVec::new(),
            by_param: PooledVec::new(),
        }
    }

    pub(crate) fn from_sweep(
        tape_id: u64,
        mut leaves: PooledVec<(usize, ArrayD<T>)>,
        bound_params: &[(ParamId, usize)],
    ) -> Self {
        let mut by_node = PooledVec::with_capacity(leaves.len());
        let mut by_param = PooledVec::with_capacity(bound_params.len());
        for (index, g) in leaves.drain(..) {
            let g = Pooled::new(g);
            match bound_params.iter().find(|(_, i)| *i == index) {
                Some(&(id, _)) => by_param.push((id, index, g)),
                None => by_node.push((index, g)),
            }
        }
        Grads {
            tape_id,
            by_node,
            by_param,
        }
    }

    /// The gradient of a leaf variable (or a bound parameter's variable), if the output
    /// depends on it.
    #[track_caller]
    pub fn get(&self, var: Var<'_, T>) -> Option<&ArrayD<T>> {
        assert!(
            var.tape_id() == self.tape_id,
            "Grads::get: this variable was recorded on another tape than these gradients"
        );
        let index = var.index;
        self.by_param
            .iter()
            .find(|(_, i, _)| *i == index)
            .map(|(_, _, g)| &**g)
            .or_else(|| {
                self.by_node
                    .iter()
                    .find(|(i, _)| *i == index)
                    .map(|(_, g)| &**g)
            })
    }

    /// The gradient of a parameter, if the output depends on it: `None` otherwise, where
    /// [`Tape::grad`](crate::Tape::grad) gives a zero `Var` (see the crate docs).
    pub fn param(&self, param: &Param<T>) -> Option<&ArrayD<T>> {
        self.by_id(param.id())
    }

    /// The gradient of the parameter with this id.
    pub fn by_id(&self, id: ParamId) -> Option<&ArrayD<T>> {
        self.by_param
            .iter()
            .find(|(p, _, _)| *p == id)
            .map(|(_, _, g)| &**g)
    }

    /// The gradient of the parameter with this id, mutably (for clipping in place).
    pub fn by_id_mut(&mut self, id: ParamId) -> Option<&mut ArrayD<T>> {
        self.by_param
            .iter_mut()
            .find(|(p, _, _)| *p == id)
            .map(|(_, _, g)| &mut **g)
    }

    /// Sets (replaces) the gradient of a parameter.
    pub fn insert(&mut self, id: ParamId, grad: ArrayD<T>) {
        match self.by_id_mut(id) {
            Some(g) => recycle_array(std::mem::replace(g, grad)),
            None => self.by_param.push((id, usize::MAX, Pooled::new(grad))),
        }
    }

    /// Removes and returns the gradient of a parameter.
    pub fn remove(&mut self, id: ParamId) -> Option<ArrayD<T>> {
        let position = self.by_param.iter().position(|(p, _, _)| *p == id)?;
        Some(self.by_param.swap_remove(position).2.into_array())
    }

    /// The parameters' gradients, in no particular order.
    pub fn params(&self) -> impl Iterator<Item = (ParamId, &ArrayD<T>)> {
        self.by_param.iter().map(|(id, _, g)| (*id, &**g))
    }

    /// The parameters' gradients, mutably.
    pub fn params_mut(&mut self) -> impl Iterator<Item = (ParamId, &mut ArrayD<T>)> {
        self.by_param.iter_mut().map(|(id, _, g)| (*id, &mut **g))
    }

    /// The number of parameters with a gradient.
    pub fn num_params(&self) -> usize {
        self.by_param.len()
    }

    /// Adds `other`'s parameter gradients into these (gradient accumulation over
    /// micro-batches).
    #[track_caller]
    pub fn accumulate(&mut self, other: &Grads<T>) {
        for (id, g) in other.params() {
            match self.by_id_mut(id) {
                Some(mine) => {
                    assert_eq!(
                        mine.shape(),
                        g.shape(),
                        "Grads::accumulate: gradient shapes {:?} and {:?} differ",
                        mine.shape(),
                        g.shape()
                    );
                    *mine += g;
                }
                None => self.insert(id, copy(g)),
            }
        }
    }
}

impl<T: Float> Index<Var<'_, T>> for Grads<T> {
    type Output = ArrayD<T>;

    #[track_caller]
    fn index(&self, var: Var<'_, T>) -> &ArrayD<T> {
        self.get(var).unwrap_or_else(|| {
            panic!(
                "Grads[var]: no gradient for variable #{} (it is not a leaf the output depends on)",
                var.index
            )
        })
    }
}

impl<T: Float> Index<&Param<T>> for Grads<T> {
    type Output = ArrayD<T>;

    #[track_caller]
    fn index(&self, param: &Param<T>) -> &ArrayD<T> {
        self.param(param).unwrap_or_else(|| {
            panic!(
                "Grads[param]: no gradient for parameter `{}` (the output does not depend on it)",
                param.name()
            )
        })
    }
}
