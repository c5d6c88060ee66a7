//! [`register!`](crate::register): one list of a module's fields that writes both of its
//! visitors, so a field cannot be registered in one and forgotten in the other.

/// Writes a module's [`visit`](crate::Module::visit) and
/// [`visit_mut`](crate::Module::visit_mut) from one list of its fields, inside an
/// `impl Module<T> for …` block: PyTorch's `register_parameter` / `register_buffer` /
/// `register_module`, once per field.
///
/// The list starts with the float type, then one entry per field, each `kind field` or
/// `kind field as "name"` (the name in paths and checkpoints; the field's own name by
/// default; a tuple struct's field `0` needs `as`):
///
/// | kind | field type | reported as |
/// |---|---|---|
/// | `param` | `Param<T>` or `Option<Param<T>>` | a trainable parameter (`None` is skipped) |
/// | `buffer` | `Buffer<T>` or `Option<Buffer<T>>` | a non-trainable buffer (`None` is skipped) |
/// | `module` | any `Module<T>` | a child: its entries under `name.` |
/// | `modules` | a `Vec` (or slice) of modules | children `name.0`, `name.1`, … (PyTorch's `ModuleList`) |
///
/// A forward pass that uses a parameter the module does not register is an error in
/// [`Model::fit`](crate::model::Model::fit) (`FitError::UnregisteredParams`), and in a
/// hand loop through [`Module::check_registered`](crate::Module::check_registered).
///
/// ```
/// use rand::rngs::StdRng;
/// use tapegrad_autograd::{Param, Var};
/// use tapegrad_nn::layers::{Activation, Dense};
/// use tapegrad_nn::module::Module;
///
/// /// `scale · out(relu(hidden(x)))` with one learned scale per output.
/// struct Block {
///     hidden: Dense<f64>,
///     out: Dense<f64>,
///     scale: Param<f64>,
/// }
///
/// impl Module<f64> for Block {
///     fn forward<'t>(&'t self, x: Var<'t, f64>) -> Var<'t, f64> {
///         self.out.forward(self.hidden.forward(x)) * x.tape().param(&self.scale)
///     }
///     fn build(&mut self, shape: &[usize], rng: &mut StdRng) -> Vec<usize> {
///         let hidden = self.hidden.build(shape, rng);
///         self.out.build(&hidden, rng)
///     }
///     tapegrad_nn::register!(f64; module hidden, module out as "proj", param scale);
/// }
///
/// let mut block = Block {
///     hidden: Dense::new(8).activation(Activation::Relu),
///     out: Dense::new(2),
///     scale: Param::new("scale", ndarray::ArrayD::ones(vec![2])),
/// };
/// block.build(&[3], &mut rand::SeedableRng::seed_from_u64(0));
/// let names: Vec<_> = block.named_params().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["hidden.kernel", "hidden.bias", "proj.kernel", "proj.bias", "scale"]);
/// ```
///
/// A layer generic in its float type names it the same way (`register!(T; …)`); fields
/// that need another walk (a name computed at run time, a field inside a field) are
/// written by hand with [`Visitor`](crate::module::Visitor) and
/// [`VisitorMut`](crate::module::VisitorMut).
#[macro_export]
macro_rules! register {
    ($t:ty; $($kind:ident $field:tt $(as $name:literal)?),* $(,)?) => {
        fn visit<'a>(&'a self, v: &mut $crate::module::Visitor<'a, '_, $t>) {
            $($crate::register!(@entry v, $kind, $crate::register!(@name $field $($name)?), &self.$field);)*
        }
        fn visit_mut<'a>(&'a mut self, v: &mut $crate::module::VisitorMut<'a, '_, $t>) {
            $($crate::register!(@entry v, $kind, $crate::register!(@name $field $($name)?), &mut self.$field);)*
        }
    };
    (@name $field:tt) => { ::core::stringify!($field) };
    (@name $field:tt $name:literal) => { $name };
    (@entry $v:ident, param, $name:expr, $field:expr) => { $v.param($name, $field) };
    (@entry $v:ident, buffer, $name:expr, $field:expr) => { $v.buffer($name, $field) };
    (@entry $v:ident, module, $name:expr, $field:expr) => { $v.module($name, $field) };
    (@entry $v:ident, modules, $name:expr, $field:expr) => { $v.modules($name, $field) };
    (@entry $v:ident, $kind:ident, $name:expr, $field:expr) => {
        ::core::compile_error!(::core::concat!(
            "register!: `", ::core::stringify!($kind),
            "` is not a kind of field: write param, buffer, module or modules"
        ))
    };
}

use tapegrad_autograd::{Float, Grads};

use super::{Entry, Module, Visitor};

/// Parameters a forward pass used that the module does not register (from
/// [`Module::check_registered`]): no optimizer would ever update them.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error(
    "the forward pass used {} parameter(s) of shape(s) {shapes:?} that the module does not \
     register: they would never be trained. List every parameter, buffer and child layer in \
     the module's visitors (`tapegrad_nn::register!(T; param weight, module dense, …)` writes \
     both), or record a value that is not meant to train with `tape.constant_ref`",
    shapes.len()
)]
pub struct UnregisteredParams {
    /// The shape of each unregistered parameter (its gradient's shape), in tape order.
    pub shapes: Vec<Vec<usize>>,
}

/// The parameters with a gradient in `grads` that `module` does not report in its visitors.
pub(super) fn check_registered<T: Float, M: Module<T> + ?Sized>(
    module: &M,
    grads: &Grads<T>,
) -> Result<(), UnregisteredParams> {
    let mut registered = Vec::new();
    module.visit(&mut Visitor::new(&mut |_, entry| {
        if let Entry::Param(p) = entry {
            registered.push(p.id());
        }
    }));
    let shapes: Vec<Vec<usize>> = grads
        .params()
        .filter(|(id, _)| !registered.contains(id))
        .map(|(_, g)| g.shape().to_vec())
        .collect();
    if shapes.is_empty() {
        Ok(())
    } else {
        Err(UnregisteredParams { shapes })
    }
}
