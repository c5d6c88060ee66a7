//! `FitOptions::lr_schedule`: `fit` drives the optimizer's rate exactly as a hand-written
//! loop with a `Scheduler` does, per batch or per epoch.

use std::sync::{Arc, Mutex};

use ndarray::{Array2, ArrayD, array};
use tapegrad_autograd::{Grads, Param, ParamId};
use tapegrad_nn::layers::{Dense, Sequential};
use tapegrad_nn::model::{FitError, FitOptions, Loss, Model, SchedulePer};
use tapegrad_optim::schedules::{
    CosineAnnealingLr, LinearWarmup, LrSchedule, Scheduler, SequentialLr,
};
use tapegrad_optim::{OptimError, Optimizer, ParamState, Sgd};

/// SGD that records the learning rate of every step it takes.
struct Recording {
    sgd: Sgd<f32>,
    lrs: Arc<Mutex<Vec<f64>>>,
}

impl Optimizer<f32> for Recording {
    fn name(&self) -> &'static str {
        "Recording"
    }
    fn step_dyn(
        &mut self,
        params: &mut dyn Iterator<Item = &mut Param<f32>>,
        grads: &Grads<f32>,
    ) -> Result<(), OptimError> {
        self.lrs.lock().unwrap().push(self.sgd.lr());
        self.sgd.step(params, grads)
    }
    fn lr(&self) -> f64 {
        Optimizer::lr(&self.sgd)
    }
    fn set_lr(&mut self, lr: f64) -> Result<(), OptimError> {
        self.sgd.set_lr(lr)
    }
    fn reset(&mut self) {
        Optimizer::reset(&mut self.sgd)
    }
    fn state_len(&self) -> usize {
        self.sgd.state_len()
    }
    fn param_state(&self, id: ParamId) -> Option<ParamState<'_, f32>> {
        self.sgd.param_state(id)
    }
    fn state_dict(
        &self,
        params: &[&Param<f32>],
    ) -> Result<std::collections::BTreeMap<String, ArrayD<f32>>, OptimError> {
        self.sgd.state_dict(params)
    }
    fn load_state_dict(
        &mut self,
        params: &[&Param<f32>],
        state: &std::collections::BTreeMap<String, ArrayD<f32>>,
    ) -> Result<(), OptimError> {
        self.sgd.load_state_dict(params, state)
    }
}

/// A line model whose optimizer records its rates, and the record.
fn recording_model() -> (Model<f32>, Arc<Mutex<Vec<f64>>>) {
    let lrs = Arc::new(Mutex::new(Vec::new()));
    let mut model = Model::new(Sequential::new().add(Dense::new(1)));
    let sgd = Sgd::new(0.5).unwrap();
    model.compile(
        Recording {
            sgd,
            lrs: Arc::clone(&lrs),
        },
        Loss::mse(),
        &[],
    );
    (model, lrs)
}

/// 10 samples: with batches of 3, four steps per epoch.
fn data() -> (Array2<f32>, Array2<f32>) {
    let x = Array2::from_shape_fn((10, 1), |(i, _)| i as f32 / 10.0);
    let y = x.mapv(|x| 2.0 * x - 1.0);
    (x, y)
}

/// Five steps of warm-up, then cosine annealing (built afresh for `fit` and the hand loop).
fn warmup_then_cosine() -> SequentialLr {
    LinearWarmup::new(0.1, 0.1, 5)
        .unwrap()
        .then(5, CosineAnnealingLr::new(0.1, 7, 0.0).unwrap())
        .unwrap()
}

/// The rates of `steps` optimizer steps in a hand-written loop that steps the scheduler
/// after each optimizer step, and the rate left set at the end.
fn hand_loop(schedule: impl LrSchedule, steps: usize, steps_per_unit: usize) -> (Vec<f64>, f64) {
    let mut w = Param::new("w", array![1.0_f32].into_dyn());
    let mut opt = Sgd::new(0.5).unwrap();
    let mut scheduler = Scheduler::new(schedule, &mut opt).unwrap();
    let mut lrs = Vec::new();
    for step in 0..steps {
        let mut grads = Grads::new();
        grads.insert(w.id(), array![0.5_f32].into_dyn());
        lrs.push(opt.lr());
        opt.step([&mut w], &grads).unwrap();
        if (step + 1) % steps_per_unit == 0 {
            scheduler.step(&mut opt).unwrap();
        }
    }
    (lrs, opt.lr())
}

fn options() -> FitOptions<f32> {
    FitOptions::default().verbose(0).epochs(3).batch_size(3)
}

#[test]
fn a_per_batch_warmup_in_fit_sets_the_rates_of_the_hand_loop() {
    let (x, y) = data();
    let (mut model, lrs) = recording_model();
    model
        .fit(
            &x,
            &y,
            options().lr_schedule(warmup_then_cosine(), SchedulePer::Batch),
        )
        .unwrap();
    let (want, last) = hand_loop(warmup_then_cosine(), 12, 1);
    assert_eq!(*lrs.lock().unwrap(), want);
    assert_eq!(model.optimizer().unwrap().lr(), last);
    // The warm-up really is per batch: five rising rates, then the cosine.
    assert!((want[0] - 0.01).abs() < 1e-12 && (want[5] - 0.1).abs() < 1e-12);
    assert!(want[..6].windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn a_per_epoch_schedule_in_fit_sets_the_rates_of_the_hand_loop() {
    let (x, y) = data();
    let (mut model, lrs) = recording_model();
    let schedule = warmup_then_cosine();
    model
        .fit(
            &x,
            &y,
            options().lr_schedule(warmup_then_cosine(), SchedulePer::Epoch),
        )
        .unwrap();
    let (want, last) = hand_loop(&schedule, 12, 4);
    assert_eq!(*lrs.lock().unwrap(), want);
    assert_eq!(want[..4], [schedule.lr(0); 4]);
    assert_eq!(want[8..], [schedule.lr(2); 4]);
    assert_eq!(model.optimizer().unwrap().lr(), last);
}

/// A schedule that gives NaN from step 6 on.
struct Broken;

impl LrSchedule for Broken {
    fn lr(&self, step: usize) -> f64 {
        if step < 6 { 0.01 } else { f64::NAN }
    }
}

#[test]
fn an_invalid_rate_from_the_schedule_stops_fit_with_an_error() {
    let (x, y) = data();
    let (mut model, _) = recording_model();
    let err = model
        .fit(&x, &y, options().lr_schedule(Broken, SchedulePer::Batch))
        .unwrap_err();
    match err {
        FitError::Optimizer {
            epoch: 1,
            batch: 1,
            source: OptimError::InvalidHyperParameter { name: "lr", .. },
        } => {}
        other => panic!("expected the schedule's error at epoch 1, batch 1, got {other:?}"),
    }
}
