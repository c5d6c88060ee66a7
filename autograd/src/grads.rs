//! The result of a backward sweep.

use std::collections::HashMap;
use std::ops::Index;

use ndarray::ArrayD;

use crate::{Float, Param, ParamId, Var};

/// Gradients computed by [`Var::backward`]: one array per leaf variable and bound parameter
/// that the output depends on.
///
/// Parameters' gradients are keyed by [`ParamId`], so they outlive the tape and feed an
/// optimizer after it is gone. Gradients of intermediate values are not kept (as in
/// PyTorch); use [`Tape::grad`](crate::Tape::grad) to get the gradient of any variable.
#[derive(Clone, Debug, Default)]
pub struct Grads<T> {
    tape_id: u64,
    /// Gradients of leaf variables that are not parameters, by arena index.
    by_node: HashMap<usize, ArrayD<T>>,
    /// Gradients of parameters.
    by_param: HashMap<ParamId, ArrayD<T>>,
    /// Arena index of each bound parameter, so `grads[var]` works for parameters too.
    param_nodes: HashMap<usize, ParamId>,
}

impl<T: Float> Grads<T> {
    /// An empty set of gradients (to fill by hand with [`Grads::insert`], e.g. to feed an
    /// optimizer gradients computed elsewhere).
    pub fn new() -> Self {
        Grads {
            tape_id: 0,
            by_node: HashMap::new(),
            by_param: HashMap::new(),
            param_nodes: HashMap::new(),
        }
    }

    pub(crate) fn from_sweep(
        tape_id: u64,
        mut by_node: HashMap<usize, ArrayD<T>>,
        bound_params: &[(ParamId, usize)],
    ) -> Self {
        let mut by_param = HashMap::with_capacity(bound_params.len());
        let mut param_nodes = HashMap::with_capacity(bound_params.len());
        for &(id, index) in bound_params {
            if let Some(g) = by_node.remove(&index) {
                by_param.insert(id, g);
                param_nodes.insert(index, id);
            }
        }
        Grads {
            tape_id,
            by_node,
            by_param,
            param_nodes,
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
        match self.param_nodes.get(&var.index) {
            Some(id) => self.by_param.get(id),
            None => self.by_node.get(&var.index),
        }
    }

    /// The gradient of a parameter, if the output depends on it.
    pub fn param(&self, param: &Param<T>) -> Option<&ArrayD<T>> {
        self.by_param.get(&param.id())
    }

    /// The gradient of the parameter with this id.
    pub fn by_id(&self, id: ParamId) -> Option<&ArrayD<T>> {
        self.by_param.get(&id)
    }

    /// The gradient of the parameter with this id, mutably (for clipping in place).
    pub fn by_id_mut(&mut self, id: ParamId) -> Option<&mut ArrayD<T>> {
        self.by_param.get_mut(&id)
    }

    /// Sets (replaces) the gradient of a parameter.
    pub fn insert(&mut self, id: ParamId, grad: ArrayD<T>) {
        self.by_param.insert(id, grad);
    }

    /// Removes and returns the gradient of a parameter.
    pub fn remove(&mut self, id: ParamId) -> Option<ArrayD<T>> {
        self.by_param.remove(&id)
    }

    /// The parameters' gradients, in no particular order.
    pub fn params(&self) -> impl Iterator<Item = (ParamId, &ArrayD<T>)> {
        self.by_param.iter().map(|(id, g)| (*id, g))
    }

    /// The parameters' gradients, mutably.
    pub fn params_mut(&mut self) -> impl Iterator<Item = (ParamId, &mut ArrayD<T>)> {
        self.by_param.iter_mut().map(|(id, g)| (*id, g))
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
            match self.by_param.get_mut(&id) {
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
                None => {
                    self.by_param.insert(id, g.clone());
                }
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
