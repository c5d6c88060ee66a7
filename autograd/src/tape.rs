//! The tape: the arena of recorded nodes, and how values get onto it (leaves, bound
//! parameters, recorded ops), with gradient recording (`no_grad`), anomaly mode and DOT
//! output.

use std::cell::{Cell, Ref, RefCell};
use std::fmt::Write as _;
use std::panic::Location;
use std::sync::atomic::{AtomicU64, Ordering};

use ndarray::ArrayD;

use crate::arena::Arena;
use crate::graph::{Node, Nodes, Op, Value};
use crate::kernels::pool::PooledVec;
use crate::{Float, Param, ParamId, Var};

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
    bound_params: RefCell<PooledVec<(ParamId, usize)>>,
    grad_enabled: Cell<bool>,
    anomaly: Cell<bool>,
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
            bound_params: RefCell::new(PooledVec::new()),
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
        self.push(Value::borrowed(value), Op::Leaf, false)
    }

    /// Frees `var`'s value now rather than when the tape is dropped: for a value nothing
    /// reads again, such as an inference pipeline's intermediate once the next stage has
    /// used it (`nn`'s `Sequential` does this under `no_grad`, so a forward pass keeps one
    /// layer's input and output alive, not every layer's). Reading the value afterwards,
    /// through `var` or through an op recorded on it, panics and says so.
    ///
    /// Panics if `var` requires a gradient (the backward pass may read it; parameters
    /// always do), or if a value of this tape is borrowed (`Var::value`) at the time.
    ///
    /// ```
    /// use ndarray::array;
    /// use tapegrad_autograd::Tape;
    ///
    /// let tape = Tape::<f32>::new();
    /// let (x, y) = tape.no_grad(|| {
    ///     let x = tape.constant(array![1.0, -2.0].into_dyn()).exp();
    ///     (x, x.relu())
    /// });
    /// let before = tape.memory_bytes();
    /// tape.release_value(x);
    /// assert_eq!(tape.memory_bytes(), before - 2 * size_of::<f32>());
    /// assert_eq!(y.to_array(), array![1.0_f32.exp(), (-2.0_f32).exp()].into_dyn());
    /// ```
    #[track_caller]
    pub fn release_value(&self, var: Var<'t, T>) {
        self.check_same_tape(var.tape, "release_value");
        let mut nodes = self.nodes.borrow_mut();
        let node = &mut nodes[var.index];
        assert!(
            !node.requires_grad,
            "Tape::release_value: the value of a variable that requires a gradient is kept \
             for the backward pass"
        );
        node.value = Value::Released;
    }

    /// A 0-dimensional constant (held as a number: no array is built).
    #[track_caller]
    pub fn scalar(&'t self, value: T) -> Var<'t, T> {
        self.push(Value::one_of_rank(value, 0), Op::Leaf, false)
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
            Value::borrowed(param.value()),
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
                Value::Borrowed(_) | Value::BorrowedOne { .. } | Value::Released => 0,
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
        self.push(Value::one_of_rank(value, ndim), op, requires_grad)
    }

    /// Records the elementwise op `op()` of inputs `a` and `b` (the same index for an op of
    /// one input) as a number when each holds one element: `f` of their elements, with the
    /// larger of their ranks. Returns `None`, recording nothing, when an input has more
    /// elements. The arena is borrowed once, and neither ndarray nor the allocator is
    /// involved. The op is built where it is used (a few scalars), so it is written straight
    /// into the arena rather than built on the stack and copied.
    #[track_caller]
    #[inline(always)]
    pub(crate) fn record_one_element(
        &'t self,
        a: usize,
        b: usize,
        op: impl Fn() -> Op<T>,
        f: impl FnOnce(T, T) -> T,
    ) -> Option<Var<'t, T>> {
        let location = Location::caller();
        let Ok(mut nodes) = self.nodes.try_borrow_mut() else {
            recording_while_borrowed(op(), location)
        };
        let (na, nb) = (&nodes[a], &nodes[b]);
        let (Some((x, rank_a)), Some((y, rank_b))) =
            (na.value.one_and_rank(), nb.value.one_and_rank())
        else {
            return None;
        };
        let ndim = rank_a.max(rank_b);
        let requires_grad = (na.requires_grad || nb.requires_grad) && self.grad_enabled.get();
        let value = f(x, y);
        let index = nodes.push_with(|| {
            Node::new(
                Value::one_element(value, ndim),
                op(),
                requires_grad,
                location,
            )
        });
        if self.anomaly.get() {
            let node = &nodes[index];
            check_forward(&node.value, &node.op, location);
        }
        Some(Var { tape: self, index })
    }

    /// Records a node and returns its handle.
    #[track_caller]
    #[inline(always)]
    pub(crate) fn push(
        &'t self,
        value: Value<'t, T>,
        op: Op<T>,
        requires_grad: bool,
    ) -> Var<'t, T> {
        let location = Location::caller();
        if self.anomaly.get() {
            check_forward(&value, &op, location);
        }
        let Ok(mut nodes) = self.nodes.try_borrow_mut() else {
            recording_while_borrowed(op, location)
        };
        let index = nodes.push_with(|| Node::new(value, op, requires_grad, location));
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
    #[inline]
    pub(crate) fn check_same_tape(&self, other: &Tape<'t, T>, op: &str) {
        if !std::ptr::eq(self, other) {
            different_tapes(op)
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
            let color = match (&*node.op, node.requires_grad) {
                (Op::Param(_), _) => "palegreen",
                (Op::Leaf, true) => "lightblue",
                (Op::Leaf, false) => "lightgrey",
                _ => "white",
            };
            // A value freed (`release_value`) or never stored (a fused pre-activation).
            let shape = match node.value {
                Value::Released => "(not kept)".to_string(),
                ref value => format!("{:?}", value.shape().as_slice()),
            };
            let _ = writeln!(
                dot,
                "  n{i} [label=\"#{i} {}\\n{shape}\", style=filled, fillcolor={color}];",
                node.op.name(),
            );
            for &j in node.op.inputs().iter() {
                let _ = writeln!(dot, "  n{j} -> n{i};");
            }
        }
        dot.push_str("}\n");
        dot
    }
}

impl<T: Float> Tape<'_, T> {
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    pub(crate) fn bound_params(&self) -> Ref<'_, [(ParamId, usize)]> {
        Ref::map(self.bound_params.borrow(), |p| &p[..])
    }
}

/// Anomaly mode's check of a forward value: panics if it holds a NaN or an infinity.
#[cold]
#[inline(never)]
fn check_forward<T: Float>(value: &Value<'_, T>, op: &Op<T>, location: &Location<'_>) {
    if !value.one().is_some_and(|v| v.is_finite()) {
        check_finite(value.array(), || {
            format!(
                "anomaly: the forward value of `{}` recorded at {location} contains NaN or infinity",
                op.name()
            )
        });
    }
}

/// The panic of recording on a tape while one of its values is borrowed.
#[cold]
#[inline(never)]
fn recording_while_borrowed<T: Float>(op: Op<T>, location: &Location<'_>) -> ! {
    panic!(
        "`{}` recorded at {location} while a `Var::value()` borrow of this tape is alive: drop \
         it first, or copy the value with `to_array()`",
        op.name()
    )
}

/// The panic of an op whose operands were recorded on different tapes.
#[cold]
#[inline(never)]
#[track_caller]
fn different_tapes(op: &str) -> ! {
    panic!("{op}: the operands were recorded on different tapes")
}

/// Panics with `message()` if `array` holds a NaN or an infinity.
#[track_caller]
pub(crate) fn check_finite<T: Float>(array: &ArrayD<T>, message: impl FnOnce() -> String) {
    if array.iter().any(|v| !v.is_finite()) {
        panic!("{}", message());
    }
}
