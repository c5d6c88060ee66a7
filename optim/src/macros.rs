//! The code every optimizer shares, generated for each: the [`Optimizer`](crate::Optimizer)
//! methods besides `step_dyn`, the constructors of an optimizer and its config, and the
//! builder setters of a config.

/// Implements every method of [`Optimizer`](crate::Optimizer) but `step_dyn`, which all
/// optimizers share: `name` returns `$name`; `lr` and `set_lr` read and write the `lr` field
/// of the optimizer's `config` field; the state methods delegate to the `StateStore` in its
/// `state` field.
macro_rules! common_optimizer_methods {
    ($name:literal) => {
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
            self.state.state_dict(params)
        }

        fn load_state_dict(
            &mut self,
            params: &[&tapegrad_autograd::Param<T>],
            state: &std::collections::BTreeMap<String, ndarray::ArrayD<T>>,
        ) -> Result<(), $crate::OptimError> {
            self.state.load_state_dict(params, state)
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
