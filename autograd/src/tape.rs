//! The tape: an arena of recorded nodes, the `Var` handles that point into it, and the
//! reverse sweep that turns it into gradients.
//!
//! The arena ([`crate::arena`]) is in recording order, which is already a topological order:
//! backward is a single loop from the output down, with no recursion and no sorting.
//!
//! Cost model: a node is 88 bytes; bound parameters are borrowed; a computed array is boxed
//! with its buffer; a one-element value (a loss, a scalar in a custom formula, every link of a
//! scalar chain) is stored inline, and its forward and backward never touch ndarray or the
//! allocator (`benches/tape.rs` measures it).

use std::cell::{Cell, OnceCell, Ref, RefCell};
use std::fmt::Write as _;
use std::panic::Location;
use std::sync::atomic::{AtomicU64, Ordering};

use ndarray::ArrayD;
use smallvec::SmallVec;

use crate::arena::Arena;
use crate::grads::Grads;
use crate::operand::Arr;
use crate::ops::{self, Op};
use crate::scalar::single;
use crate::{Float, Param, ParamId};

/// A node's value: owned for computed values, borrowed for bound parameters (never
/// copied), or held inline when it is a single element.
pub(crate) enum Value<'t, T> {
    /// Boxed, so that a node stays small (a fraction of a cache line's worth of bytes to
    /// move and to sweep over).
    Owned(Box<ArrayD<T>>),
    Borrowed(&'t ArrayD<T>),
    /// One element (its shape is `ndim` ones), stored without a heap buffer: scalar-heavy
    /// graphs record and differentiate these without touching ndarray. The array form is
    /// built only if an array kernel asks for it, and then kept.
    One {
        value: T,
        ndim: usize,
        array: OnceCell<Box<ArrayD<T>>>,
    },
}

impl<T: Float> Value<'_, T> {
    /// A computed or given array: inline if it holds one element.
    #[inline]
    pub(crate) fn owned(array: ArrayD<T>) -> Self {
        match single(&array) {
            Some(value) => Value::one_element(value, array.ndim()),
            None => Value::Owned(Box::new(array)),
        }
    }

    /// A one-element value of `ndim` dimensions.
    #[inline]
    pub(crate) fn one_element(value: T, ndim: usize) -> Self {
        Value::One {
            value,
            ndim,
            array: OnceCell::new(),
        }
    }

    /// The value as an array.
    #[inline]
    pub(crate) fn array(&self) -> &ArrayD<T> {
        match self {
            Value::Owned(a) => a,
            Value::Borrowed(a) => a,
            Value::One { value, ndim, array } => {
                array.get_or_init(|| Box::new(ArrayD::from_elem(vec![1; *ndim], *value)))
            }
        }
    }

    /// The element, if the value has exactly one.
    #[inline]
    pub(crate) fn one(&self) -> Option<T> {
        match self {
            Value::One { value, .. } => Some(*value),
            Value::Owned(a) => single(a),
            Value::Borrowed(a) => single(a),
        }
    }

    /// The number of dimensions.
    #[inline]
    pub(crate) fn ndim(&self) -> usize {
        match self {
            Value::One { ndim, .. } => *ndim,
            Value::Owned(a) => a.ndim(),
            Value::Borrowed(a) => a.ndim(),
        }
    }

    /// The shape.
    #[inline]
    pub(crate) fn shape(&self) -> SmallVec<[usize; 4]> {
        match self {
            Value::One { ndim, .. } => smallvec::smallvec![1; *ndim],
            Value::Owned(a) => SmallVec::from_slice(a.shape()),
            Value::Borrowed(a) => SmallVec::from_slice(a.shape()),
        }
    }
}

/// One recorded operation: its value, how it was computed, and where.
pub(crate) struct Node<'t, T> {
    pub(crate) value: Value<'t, T>,
    pub(crate) op: Op<T>,
    pub(crate) requires_grad: bool,
    pub(crate) location: &'static Location<'static>,
}

/// The tape's arena of nodes, in recording order.
pub(crate) type Nodes<'t, T> = Arena<Node<'t, T>>;

/// The recording of a computation, from which gradients are derived.
///
/// A tape is cheap to create; the usual pattern is one tape per training step, dropped at
/// the end of the step (so memory stays flat however long training runs). Its lifetime
/// `'t` is the lifetime of the parameters bound to it with [`Tape::param`]: they are
/// borrowed, not copied, and cannot be modified until the tape is gone.
///
/// ```
/// use ndarray::arr0;
/// use tapegrad_autograd::Tape;
///
/// let tape = Tape::<f64>::new();
/// let x = tape.var(arr0(3.0).into_dyn());
/// let y = x.powi(3);                      // y = x³
/// let dy = tape.grad(y, &[x])[0];         // 3x², itself a Var
/// let d2y = tape.grad(dy, &[x])[0];       // 6x
/// assert_eq!(d2y.item(), 18.0);
/// ```
pub struct Tape<'t, T: Float = f32> {
    id: u64,
    nodes: RefCell<Nodes<'t, T>>,
    bound_params: RefCell<Vec<(ParamId, usize)>>,
    grad_enabled: Cell<bool>,
    anomaly: Cell<bool>,
}

/// A handle to a value recorded on a [`Tape`]: small and `Copy`, so expressions read like
/// maths (`(x * w + b).tanh().sum()`).
pub struct Var<'t, T: Float = f32> {
    pub(crate) tape: &'t Tape<'t, T>,
    pub(crate) index: usize,
}

impl<T: Float> Clone for Var<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T: Float> Copy for Var<'_, T> {}

impl<T: Float> std::fmt::Debug for Var<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let nodes = self.tape.nodes.borrow();
        let node = &nodes[self.index];
        write!(
            f,
            "Var#{}({}, shape {:?}, requires_grad: {})",
            self.index,
            node.op.name(),
            node.value.array().shape(),
            node.requires_grad
        )
    }
}

impl<T: Float> Default for Tape<'_, T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'t, T: Float> Tape<'t, T> {
    /// An empty tape with gradient recording on and anomaly mode off.
    pub fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Tape {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            nodes: RefCell::new(Arena::new()),
            bound_params: RefCell::new(Vec::new()),
            grad_enabled: Cell::new(true),
            anomaly: Cell::new(false),
        }
    }

    /// A leaf that requires a gradient (like `torch.tensor(..., requires_grad=True)`).
    #[track_caller]
    pub fn var(&'t self, value: ArrayD<T>) -> Var<'t, T> {
        let requires_grad = self.grad_enabled.get();
        self.push(Value::owned(value), Op::Leaf, requires_grad)
    }

    /// A leaf that never gets a gradient (inputs, targets, masks).
    #[track_caller]
    pub fn constant(&'t self, value: ArrayD<T>) -> Var<'t, T> {
        self.push(Value::owned(value), Op::Leaf, false)
    }

    /// A leaf that never gets a gradient, borrowing `value` instead of copying it (inputs
    /// and targets fed to a training step: the batch is not copied into the tape). The
    /// array must outlive the tape, like a bound [`Param`].
    ///
    /// ```
    /// use ndarray::array;
    /// use tapegrad_autograd::{Param, Tape};
    ///
    /// let x = array![[1.0_f32, 2.0]].into_dyn(); // a batch, owned by the caller
    /// let w = Param::new("w", array![[0.5_f32], [-1.0]].into_dyn());
    /// let tape = Tape::new();
    /// let input = tape.constant_ref(&x);          // borrowed: no copy of the batch
    /// let loss = input.matmul(tape.param(&w)).sum();
    /// assert!(!input.requires_grad());
    /// assert_eq!(loss.item(), -1.5);
    /// let grads = loss.backward();
    /// assert_eq!(grads.param(&w).unwrap(), &array![[1.0], [2.0]].into_dyn());
    /// ```
    #[track_caller]
    pub fn constant_ref(&'t self, value: &'t ArrayD<T>) -> Var<'t, T> {
        self.push(Value::Borrowed(value), Op::Leaf, false)
    }

    /// A 0-dimensional constant.
    #[track_caller]
    pub fn scalar(&'t self, value: T) -> Var<'t, T> {
        self.constant(ndarray::arr0(value).into_dyn())
    }

    /// Binds a parameter without copying its data. Binding the same parameter twice
    /// returns the same variable, so its gradient is one sum.
    #[track_caller]
    pub fn param(&'t self, param: &'t Param<T>) -> Var<'t, T> {
        if let Some(&(_, index)) = self
            .bound_params
            .borrow()
            .iter()
            .find(|(id, _)| *id == param.id())
        {
            return Var { tape: self, index };
        }
        // Always trainable (as in PyTorch): the binding is reused, so one made inside
        // `no_grad` must still get gradients outside it; ops under `no_grad` record none.
        let requires_grad = true;
        let var = self.push(
            Value::Borrowed(param.value()),
            Op::Param(param.id()),
            requires_grad,
        );
        self.bound_params.borrow_mut().push((param.id(), var.index));
        var
    }

    /// The number of recorded nodes.
    pub fn len(&self) -> usize {
        self.nodes.borrow().len()
    }

    /// Whether nothing has been recorded.
    pub fn is_empty(&self) -> bool {
        self.nodes.borrow().is_empty()
    }

    /// Bytes held by the values the tape owns (bound parameters are not counted: they are
    /// borrowed), plus the arena itself.
    pub fn memory_bytes(&self) -> usize {
        let nodes = self.nodes.borrow();
        let values: usize = nodes
            .iter()
            .map(|n| match &n.value {
                Value::Owned(a) => a.len() * std::mem::size_of::<T>(),
                Value::Borrowed(_) => 0,
                Value::One { array, .. } => {
                    (1 + array.get().map_or(0, |a| a.len())) * std::mem::size_of::<T>()
                }
            })
            .sum();
        values + nodes.capacity() * std::mem::size_of::<Node<'t, T>>()
    }

    /// Runs `f` with gradient recording off: every value it computes is a constant.
    /// The previous setting is restored however `f` ends, a panic included.
    pub fn no_grad<R>(&self, f: impl FnOnce() -> R) -> R {
        /// Puts the recording flag back when dropped (on return or unwind).
        struct Restore<'a>(&'a Cell<bool>, bool);
        impl Drop for Restore<'_> {
            fn drop(&mut self) {
                self.0.set(self.1);
            }
        }
        let _restore = Restore(&self.grad_enabled, self.grad_enabled.replace(false));
        f()
    }

    /// Whether operations currently record gradients.
    pub fn is_grad_enabled(&self) -> bool {
        self.grad_enabled.get()
    }

    /// Turns anomaly mode on or off. When on, every forward value and every gradient is
    /// checked for NaN and infinity, and the first one found panics with the op's name and
    /// the source line that recorded it.
    pub fn set_anomaly_detection(&self, enabled: bool) {
        self.anomaly.set(enabled);
    }

    /// Whether anomaly mode is on.
    pub fn anomaly_detection(&self) -> bool {
        self.anomaly.get()
    }

    /// Records a computed value whose inputs' `requires_grad` the caller has already
    /// combined into `inputs_require_grad`.
    #[track_caller]
    #[inline]
    pub(crate) fn push_computed(
        &'t self,
        value: ArrayD<T>,
        op: Op<T>,
        inputs_require_grad: bool,
    ) -> Var<'t, T> {
        let requires_grad = inputs_require_grad && self.grad_enabled.get();
        self.push(Value::owned(value), op, requires_grad)
    }

    /// Records a computed one-element value (see [`Value::One`]).
    #[track_caller]
    #[inline]
    pub(crate) fn push_one(
        &'t self,
        value: T,
        ndim: usize,
        op: Op<T>,
        inputs_require_grad: bool,
    ) -> Var<'t, T> {
        let requires_grad = inputs_require_grad && self.grad_enabled.get();
        self.push(Value::one_element(value, ndim), op, requires_grad)
    }

    /// Records a node and returns its handle.
    #[track_caller]
    #[inline]
    pub(crate) fn push(
        &'t self,
        value: Value<'t, T>,
        op: Op<T>,
        requires_grad: bool,
    ) -> Var<'t, T> {
        let location = Location::caller();
        if self.anomaly.get() && !value.one().is_some_and(|v| v.is_finite()) {
            check_finite(value.array(), || {
                format!(
                    "anomaly: the forward value of `{}` recorded at {location} contains NaN or infinity",
                    op.name()
                )
            });
        }
        let mut nodes = self.nodes.borrow_mut();
        let index = nodes.push(Node {
            value,
            op,
            requires_grad,
            location,
        });
        Var { tape: self, index }
    }

    /// Records the result of an op whose inputs are `inputs`: it requires a gradient when
    /// recording is on and any input does.
    #[track_caller]
    pub(crate) fn record(&'t self, value: ArrayD<T>, op: Op<T>) -> Var<'t, T> {
        let requires_grad = self.grad_enabled.get() && {
            let nodes = self.nodes.borrow();
            match &op {
                Op::Binary(_, a, b) | Op::MatMul(a, b) => {
                    nodes[*a].requires_grad || nodes[*b].requires_grad
                }
                Op::Unary(_, a) => nodes[*a].requires_grad,
                op => op.inputs().iter().any(|&i| nodes[i].requires_grad),
            }
        };
        self.push(Value::owned(value), op, requires_grad)
    }

    pub(crate) fn nodes(&self) -> Ref<'_, Nodes<'t, T>> {
        self.nodes.borrow()
    }

    /// Removes every node recorded after the first `len` (scratch work of a custom op's
    /// first-order backward).
    pub(crate) fn truncate(&self, len: usize) {
        self.nodes.borrow_mut().truncate(len);
    }

    #[track_caller]
    pub(crate) fn check_same_tape(&self, other: &Tape<'t, T>, op: &str) {
        assert!(
            std::ptr::eq(self, other),
            "{op}: the operands were recorded on different tapes"
        );
    }

    /// Gradients of `output` with respect to `inputs`, recorded on this tape as new
    /// variables, so they can be differentiated again (Hessian-vector products, gradient
    /// penalties, Newton's method). `output` must be a scalar (0-d or one element).
    ///
    /// An input that `output` does not depend on gets a zero gradient.
    #[track_caller]
    pub fn grad(&'t self, output: Var<'t, T>, inputs: &[Var<'t, T>]) -> Vec<Var<'t, T>> {
        self.seed_for(output, None); // checks that `output` has one element
        self.grad_with_seed(output, ArrayD::ones(output.shape()), inputs)
    }

    /// Like [`Tape::grad`], with an explicit seed (vector-Jacobian product) of `output`'s shape.
    #[track_caller]
    pub fn grad_with_seed(
        &'t self,
        output: Var<'t, T>,
        seed: ArrayD<T>,
        inputs: &[Var<'t, T>],
    ) -> Vec<Var<'t, T>> {
        for input in inputs {
            self.check_same_tape(input.tape, "Tape::grad");
        }
        let seed = self.constant(self.seed_for(output, Some(seed)).expect("a given seed"));
        let lowest = inputs.iter().map(|x| x.index).min().unwrap_or(output.index);
        let grads = ops::sweep_vars(self, output.index, seed, lowest);
        inputs
            .iter()
            .map(|x| match grads.get(x.index).copied().flatten() {
                Some(g) => g,
                None => self.constant(ArrayD::zeros(x.shape())),
            })
            .collect()
    }

    /// The seed of a backward sweep from `output`: the given array, checked against the
    /// output's shape, or `None` for the gradient 1 of a one-element output (kept as a
    /// number: a scalar loss's sweep starts without allocating).
    #[track_caller]
    fn seed_for(&self, output: Var<'t, T>, seed: Option<ArrayD<T>>) -> Option<ArrayD<T>> {
        let shape = output.shape();
        match seed {
            Some(seed) => {
                assert_eq!(
                    seed.shape(),
                    &shape[..],
                    "backward: the seed gradient has shape {:?} but the output has shape {:?}",
                    seed.shape(),
                    shape
                );
                Some(seed)
            }
            None => {
                assert!(
                    shape.iter().product::<usize>() == 1,
                    "backward: the output has shape {shape:?}; backward without a seed needs a \
                     scalar output (reduce it with .sum() or .mean(), or pass a seed of that shape \
                     with backward_with_seed)"
                );
                None
            }
        }
    }

    /// Writes the graph that leads to `output` in Graphviz DOT: one box per op with its
    /// shape, parameters in green, leaves needing gradients in blue, constants in grey.
    pub fn to_dot(&self, output: Var<'t, T>) -> String {
        let nodes = self.nodes.borrow();
        let mut reachable = vec![false; output.index + 1];
        reachable[output.index] = true;
        for i in (0..=output.index).rev() {
            if reachable[i] {
                for &j in nodes[i].op.inputs().iter() {
                    reachable[j] = true;
                }
            }
        }
        let mut dot = String::from(
            "digraph tape {\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];\n",
        );
        for (i, node) in nodes.iter().enumerate().take(output.index + 1) {
            if !reachable[i] {
                continue;
            }
            let color = match (&node.op, node.requires_grad) {
                (Op::Param(_), _) => "palegreen",
                (Op::Leaf, true) => "lightblue",
                (Op::Leaf, false) => "lightgrey",
                _ => "white",
            };
            let _ = writeln!(
                dot,
                "  n{i} [label=\"#{i} {}\\n{:?}\", style=filled, fillcolor={color}];",
                node.op.name(),
                node.value.array().shape()
            );
            for &j in node.op.inputs().iter() {
                let _ = writeln!(dot, "  n{j} -> n{i};");
            }
        }
        dot.push_str("}\n");
        dot
    }
}

impl<'t, T: Float> Var<'t, T> {
    /// The tape this variable lives on.
    pub fn tape(&self) -> &'t Tape<'t, T> {
        self.tape
    }

    /// Its position in the tape's arena.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Its shape.
    pub fn shape(&self) -> Vec<usize> {
        self.tape.nodes.borrow()[self.index].value.shape().to_vec()
    }

    /// Its number of dimensions.
    pub fn ndim(&self) -> usize {
        self.tape.nodes.borrow()[self.index].value.ndim()
    }

    /// A copy of its value.
    pub fn value(&self) -> ArrayD<T> {
        self.tape.nodes.borrow()[self.index].value.array().clone()
    }

    /// Runs `f` on its value without copying it.
    pub fn with_value<R>(&self, f: impl FnOnce(&ArrayD<T>) -> R) -> R {
        f(self.tape.nodes.borrow()[self.index].value.array())
    }

    /// The value of a one-element variable.
    #[track_caller]
    pub fn item(&self) -> T {
        // No closure here: closures drop `#[track_caller]`'s location.
        let nodes = self.tape.nodes.borrow();
        if let Some(v) = nodes[self.index].value.one() {
            return v;
        }
        let a = nodes[self.index].value.array();
        assert!(
            a.len() == 1,
            "item: the variable has shape {:?}, not a single element",
            a.shape()
        );
        *a.iter().next().unwrap()
    }

    /// Whether a gradient flows to this variable.
    pub fn requires_grad(&self) -> bool {
        self.tape.nodes.borrow()[self.index].requires_grad
    }

    /// The same value as a constant: gradients stop here.
    #[track_caller]
    pub fn detach(self) -> Var<'t, T> {
        let value = self.value();
        self.tape.constant(value)
    }

    /// The gradients of this scalar with respect to every variable and parameter that
    /// needs one, in one reverse sweep.
    ///
    /// Panics if the variable has more than one element: use
    /// [`backward_with_seed`](Var::backward_with_seed) for a vector-Jacobian product.
    #[track_caller]
    pub fn backward(self) -> Grads<T> {
        let seed = self.tape.seed_for(self, None);
        ops::sweep_arrays(self.tape, self.index, seed)
    }

    /// Backward with an explicit seed gradient of this variable's shape.
    #[track_caller]
    pub fn backward_with_seed(self, seed: ArrayD<T>) -> Grads<T> {
        let seed = self.tape.seed_for(self, Some(seed));
        ops::sweep_arrays(self.tape, self.index, seed)
    }

    pub(crate) fn tape_id(&self) -> u64 {
        self.tape.id
    }

    /// Runs `f` on the value as an array operand (a borrowed view).
    pub(crate) fn with_arr<R>(&self, f: impl FnOnce(Arr<'_, T>) -> R) -> R {
        let nodes = self.tape.nodes.borrow();
        f(Arr::Ref(nodes[self.index].value.array()))
    }
}

impl<T: Float> Tape<'_, T> {
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    pub(crate) fn bound_params(&self) -> Ref<'_, Vec<(ParamId, usize)>> {
        self.bound_params.borrow()
    }
}

/// Panics with `message()` if `array` holds a NaN or an infinity.
#[track_caller]
pub(crate) fn check_finite<T: Float>(array: &ArrayD<T>, message: impl FnOnce() -> String) {
    if array.iter().any(|v| !v.is_finite()) {
        panic!("{}", message());
    }
}
