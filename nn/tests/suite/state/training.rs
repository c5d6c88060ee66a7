//! BatchNorm's running statistics through `Model` (fit updates them; validation, evaluate
//! and predict do not) and optimizers (which never see or change buffers).

use ndarray::array;
use tapegrad_autograd::Tape;
use tapegrad_nn::Module;
use tapegrad_nn::layers::{BatchNorm, Dense, Sequential};
use tapegrad_nn::model::FitOptions;
use tapegrad_optim::{Adam, Optimizer, Sgd};

use super::{bn_model, buffer_values, data, param_values};

// ---- train/eval through Model ----

#[test]
fn fit_updates_running_statistics_and_evaluate_and_predict_do_not() {
    let (x, y) = data(40);
    let mut model = bn_model(1);
    let initial = buffer_values(&model.buffers());
    let history = model
        .fit(
            &x,
            &y,
            FitOptions::default().epochs(3).batch_size(8).verbose(0),
        )
        .unwrap();
    assert_eq!(history.epochs(), 3);
    let trained = buffer_values(&model.buffers());
    assert_ne!(trained[0], initial[0], "fit updates the running mean");
    assert_ne!(trained[1], initial[1], "fit updates the running variance");
    assert!(
        !model.module().is_training(),
        "fit leaves the model in eval mode"
    );

    model.evaluate(&x, &y, 8).unwrap();
    let first = model.predict(&x, 7).unwrap();
    let second = model.predict(&x, 40).unwrap();
    assert_eq!(buffer_values(&model.buffers()), trained);
    // Eval mode: each sample's output does not depend on the rest of its batch.
    assert!((&first - &second).iter().all(|d| d.abs() < 1e-12));
}

#[test]
fn validation_during_fit_does_not_update_running_statistics() {
    // One epoch of one batch, then validation: the running statistics move exactly once.
    let (x, y) = data(16);
    let mut with_validation = bn_model(2);
    let mut without = bn_model(2);
    let options = || {
        FitOptions::default()
            .epochs(1)
            .batch_size(16)
            .shuffle(false)
            .verbose(0)
    };
    with_validation
        .fit(
            &x,
            &y,
            options().validation_data(x.clone().into_dyn(), y.clone().into_dyn()),
        )
        .unwrap();
    without.fit(&x, &y, options()).unwrap();
    assert_eq!(
        buffer_values(&with_validation.buffers()),
        buffer_values(&without.buffers())
    );
}

// ---- optimizers ----

#[test]
fn optimizers_never_see_or_change_buffers() {
    let mut model = Sequential::<f64>::new()
        .add(Dense::new(3))
        .add(BatchNorm::new())
        .with_input_shape(&[2]);
    model.set_training(false);
    // Distinctive running statistics.
    for (i, b) in model.buffers_mut().into_iter().enumerate() {
        b.value_mut().fill(0.25 + i as f64);
    }
    let before = buffer_values(&model.buffers());
    let mut optimizers: Vec<Box<dyn Optimizer<f64>>> = vec![
        Box::new(Sgd::new(0.1).unwrap()),
        Box::new(Adam::new(0.1).unwrap()),
    ];
    for optimizer in &mut optimizers {
        for _ in 0..3 {
            let params_before = param_values(&model);
            let grads = {
                let tape = Tape::new();
                let out = model.forward(tape.constant(array![[1.0, -2.0], [0.5, 3.0]].into_dyn()));
                out.square().sum().backward()
            };
            assert_eq!(grads.num_params(), 4, "kernel, bias, gamma, beta");
            optimizer.step(model.params_mut(), &grads).unwrap();
            assert_ne!(param_values(&model), params_before);
        }
    }
    assert!(
        model.params().iter().all(|p| !p.name().contains("running")),
        "buffers are not parameters"
    );
    assert_eq!(buffer_values(&model.buffers()), before);
}
