//! The code every optimizer shares, generated for each: the [`Optimizer`](crate::Optimizer)
//! methods besides `step_dyn`, the constructors of an optimizer and its config, and the
//! builder setters of a config.

/// Implements every method of [`Optimizer`](crate::Optimizer) for `$opt<T>`: `step_dyn` calls
/// the optimizer's own `update` through [`Float::call`](tapegrad_autograd::Float::call), so
/// its update rule is compiled in this crate for `f32` and `f64` (not in the crates that
/// use it); `name` returns `$name`; `lr` and `set_lr` read and write the `lr` field of the
/// optimizer's `config` field; the state methods delegate to the `StateStore` in its `state`
/// field (its checkpoints through the `FloatFn`s of `state.rs`).
macro_rules! common_optimizer_methods {
    ($opt:ident, $name:literal) => {
        fn step_dyn(
            &mut self,
            params: &mut dyn Iterator<Item = &mut tapegrad_autograd::Param<T>>,
            grads: &tapegrad_autograd::Grads<T>,
        ) -> Result<(), $crate::OptimError> {
            /// `update` of each element type (`'i` borrows the iterator of parameters, `'p`
            /// the parameters).
            struct Update<'i, 'p>(std::marker::PhantomData<(&'i (), &'p ())>);
            impl<'i, 'p: 'i> tapegrad_autograd::FloatFn for Update<'i, 'p> {
                type Args<'a, T: tapegrad_autograd::Float> = (
                    &'a mut $opt<T>,
                    &'i mut dyn Iterator<Item = &'p mut tapegrad_autograd::Param<T>>,
                    &'a tapegrad_autograd::Grads<T>,
                );
                type Output<'a, T: tapegrad_autograd::Float> = Result<(), $crate::OptimError>;
                fn f32<'a>((opt, params, grads): Self::Args<'a, f32>) -> Self::Output<'a, f32> {
                    opt.update(params, grads)
                }
                fn f64<'a>((opt, params, grads): Self::Args<'a, f64>) -> Self::Output<'a, f64> {
                    opt.update(params, grads)
                }
            }
            T::call::<Update<'_, '_>>((self, params, grads))
        }

        fn name(&self) -> &'static str {
            $name
        }

        fn lr(&self) -> f64 {
            self.config.lr
        }

        fn set_lr(&mut self, lr: f64) -> Result<(), $crate::OptimError> {
            $crate::error::valid_lr(lr)?;
            self.config.lr = lr;
            Ok(())
        }

        fn reset(&mut self) {
            self.state.reset();
        }

        fn state_len(&self) -> usize {
            self.state.len()
        }

        fn param_state(&self, id: tapegrad_autograd::ParamId) -> Option<$crate::ParamState<'_, T>> {
            self.state.view(id)
        }

        fn state_dict(
            &self,
            params: &[&tapegrad_autograd::Param<T>],
        ) -> Result<std::collections::BTreeMap<String, ndarray::ArrayD<T>>, $crate::OptimError> {
            T::call::<$crate::state::StateDict>((&self.state, params))
        }

        fn load_state_dict(
            &mut self,
            params: &[&tapegrad_autograd::Param<T>],
            state: &std::collections::BTreeMap<String, ndarray::ArrayD<T>>,
        ) -> Result<(), $crate::OptimError> {
            T::call::<$crate::state::LoadStateDict>((&mut self.state, params, state))
        }
    };
}
pub(crate) use common_optimizer_methods;

/// The constructors that every optimizer `$opt<T>` (a struct with the fields
/// `config: $config` and `state: StateStore<T>`) and its config have in the same form:
/// `$config::new(lr)` (the [`Default`] with learning rate `lr`), the `lr` setter,
/// `$config::build`, and `$opt::new(lr)`, `$opt::with_config(config)` and `$opt::config()`.
///
/// The config provides `validate(&self)` and `state_keys(&self)` (the names of the buffers
/// each parameter gets with this configuration).
macro_rules! optimizer_constructors {
    ($opt:ident, $config:ident) => {
        impl $config {
            /// PyTorch's defaults with learning rate `lr`.
            pub fn new(lr: f64) -> Self {
                $config {
                    lr,
                    ..$config::default()
                }
            }

            $crate::macros::setters! {
                /// Sets the learning rate.
                lr: f64,
            }

            /// Validates the hyper-parameters and builds the optimizer.
            ///
            /// # Errors
            ///
            /// [`OptimError::InvalidHyperParameter`] if a hyper-parameter is invalid.
            pub fn build<T: tapegrad_autograd::Float>(
                &self,
            ) -> Result<$opt<T>, $crate::OptimError> {
                $opt::with_config(self.clone())
            }
        }

        impl<T: tapegrad_autograd::Float> $opt<T> {
            #[doc = concat!(
                "[`", stringify!($opt), "`] with PyTorch's defaults ([`", stringify!($config),
                "::default`]) and learning rate `lr`."
            )]
            ///
            /// # Errors
            ///
            /// [`OptimError::InvalidHyperParameter`] if `lr` is negative or not finite.
            pub fn new(lr: f64) -> Result<Self, $crate::OptimError> {
                Self::with_config($config::new(lr))
            }

            #[doc = concat!("[`", stringify!($opt), "`] with these hyper-parameters.")]
            ///
            /// # Errors
            ///
            /// [`OptimError::InvalidHyperParameter`] if a hyper-parameter is invalid.
            pub fn with_config(config: $config) -> Result<Self, $crate::OptimError> {
                config.validate()?;
                let state = $crate::state::StateStore::new(config.state_keys());
                Ok($opt { config, state })
            }

            $crate::optimizer::step_method!();

            /// Its hyper-parameters (`lr` is the current learning rate).
            pub fn config(&self) -> &$config {
                &self.config
            }
        }
    };
}
pub(crate) use optimizer_constructors;

/// Builder setters of a config struct: for each `/// doc  field: Type`, a
/// `pub fn field(mut self, field: Type) -> Self` that sets the field of that name.
macro_rules! setters {
    ($($(#[$doc:meta])* $field:ident: $ty:ty),* $(,)?) => {
        $(
            $(#[$doc])*
            pub fn $field(mut self, $field: $ty) -> Self {
                self.$field = $field;
                self
            }
        )*
    };
}
pub(crate) use setters;
