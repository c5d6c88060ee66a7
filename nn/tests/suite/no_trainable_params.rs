//! `fit` on a model with no trainable parameters: a typed error (a custom layer that does
//! not register its parameters trains nothing), unless allowed for a frozen model.

use ndarray::{ArrayD, array};
use tapegrad_autograd::{Param, Var};
use tapegrad_nn::Module;
use tapegrad_nn::layers::{Dense, Sequential};
use tapegrad_nn::model::{FitError, FitOptions, Loss, Model};
use tapegrad_optim::Sgd;

/// `y = x * scale`, with the mistake under test: no `register!`, so the model does not see
/// `scale`.
struct UnregisteredScale(Param<f32>);

impl Module<f32> for UnregisteredScale {
    fn forward<'t>(&'t self, x: Var<'t, f32>) -> Var<'t, f32> {
        x * x.tape().param(&self.0)
    }
}

fn quiet() -> FitOptions<f32> {
    FitOptions::default().epochs(3).verbose(0)
}

#[test]
fn fit_without_trainable_parameters_is_an_error_unless_allowed() {
    let xs = array![[1.0_f32], [2.0], [3.0]];
    let ys = xs.mapv(|x| 2.0 * x);
    let scale = || UnregisteredScale(Param::new("scale", ArrayD::ones(vec![1])));

    let mut model = Model::new(Sequential::new().add(scale()));
    model.compile(Sgd::new(0.1).unwrap(), Loss::mse(), &[]);
    let err = model.fit(&xs, &ys, quiet()).unwrap_err();
    assert!(matches!(err, FitError::NoTrainableParams), "{err}");
    assert_eq!(
        err.to_string(),
        "the model has no trainable parameters, so `fit` would train nothing: a custom layer \
         must register each parameter and child layer (`tapegrad_nn::register!(T; param \
         weight, module dense, …)` writes its `visit` and `visit_mut`); for a frozen model, \
         pass `FitOptions::allow_no_trainable(true)`"
    );

    // Allowed: fit runs (the loss cannot change) and evaluate works as before.
    let history = model
        .fit(&xs, &ys, quiet().allow_no_trainable(true))
        .unwrap();
    assert_eq!(history.epochs(), 3);
    assert_eq!(history.loss()[0], history.loss()[2]);
    assert!(model.evaluate(&xs, &ys, 8).is_ok());

    // A model with parameters is unaffected.
    let mut dense = Model::new(Sequential::new().add(Dense::new(1)));
    dense.compile(Sgd::new(0.01).unwrap(), Loss::mse(), &[]);
    assert!(dense.fit(&xs, &ys, quiet()).is_ok());
}
