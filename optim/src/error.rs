//! [`OptimError`], everything that can go wrong in this crate, and the checks of
//! hyper-parameters that produce it.

/// Everything that can go wrong when building or running an optimizer, a schedule or a clip.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum OptimError {
    /// A gradient holds a NaN or an infinite value. The message suggests anomaly detection,
    /// which names the op that produced the first one.
    #[error(
        "the gradient of parameter `{param}` contains NaN or infinite values \
         (to find the op that produced them, record the step with \
         `tape.set_anomaly_detection(true)`: it panics at the first NaN or infinity, naming the op \
         and your source line)"
    )]
    NonFiniteGradient {
        /// The parameter's name.
        param: String,
    },
    /// A gradient's shape differs from its parameter's.
    #[error(
        "the gradient of parameter `{param}` has shape {grad_shape:?}, \
         but the parameter has shape {param_shape:?}"
    )]
    ShapeMismatch {
        /// The parameter's name.
        param: String,
        /// The parameter's shape.
        param_shape: Vec<usize>,
        /// The gradient's shape.
        grad_shape: Vec<usize>,
    },
    /// A hyper-parameter is out of its valid range.
    #[error("invalid hyper-parameter `{name}` = {value}: {reason}")]
    InvalidHyperParameter {
        /// The hyper-parameter's name (as in PyTorch).
        name: &'static str,
        /// The rejected value.
        value: f64,
        /// What the valid values are.
        reason: &'static str,
    },
    /// A state dict has some, but not all, of a parameter's entries.
    #[error("the state of parameter `{param}` is missing entry `{key}`")]
    MissingState {
        /// The parameter's name.
        param: String,
        /// The missing key (e.g. `"dense_0.kernel.exp_avg"`).
        key: String,
    },
    /// A state buffer's shape does not fit its parameter.
    #[error("optimizer state `{key}` has shape {found:?}, expected {expected:?}")]
    StateShapeMismatch {
        /// The state entry (e.g. `"dense_0.kernel.exp_avg"`).
        key: String,
        /// The shape it must have.
        expected: Vec<usize>,
        /// The shape it has.
        found: Vec<usize>,
    },
    /// A state dict entry matches no parameter.
    #[error(
        "optimizer state `{key}` matches no parameter of this optimizer \
         (unknown parameter name, or state of another kind of optimizer)"
    )]
    UnexpectedState {
        /// The entry's key.
        key: String,
    },
    /// A state dict entry has an invalid value.
    #[error("invalid optimizer state `{key}`: {reason}")]
    InvalidState {
        /// The entry's key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Two parameters passed to `state_dict`/`load_state_dict` share a name.
    #[error("two parameters are named `{name}`: state is keyed by name, names must be unique")]
    DuplicateParamName {
        /// The shared name.
        name: String,
    },
}

pub(crate) fn invalid(name: &'static str, value: f64, reason: &'static str) -> OptimError {
    OptimError::InvalidHyperParameter {
        name,
        value,
        reason,
    }
}

/// `value` must be finite and `>= 0`.
pub(crate) fn non_negative(name: &'static str, value: f64) -> Result<(), OptimError> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(invalid(name, value, "must be finite and >= 0"))
    }
}

/// `value` must lie in `[0, 1)`.
pub(crate) fn in_unit_open(name: &'static str, value: f64) -> Result<(), OptimError> {
    if (0.0..1.0).contains(&value) {
        Ok(())
    } else {
        Err(invalid(name, value, "must be in [0, 1)"))
    }
}

/// `value` must lie in `[0, 1]`.
pub(crate) fn in_unit_closed(name: &'static str, value: f64) -> Result<(), OptimError> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(invalid(name, value, "must be in [0, 1]"))
    }
}

/// `lr` must be a valid learning rate: finite and `>= 0`.
pub(crate) fn valid_lr(lr: f64) -> Result<(), OptimError> {
    non_negative("lr", lr)
}
