//! Replays the PyTorch reference files in the workspace's `tests/data/optim/` (copied from `shared/golden/optim/`):
//! optimizer trajectories, learning-rate schedules and gradient clipping.
//!
//! Each optimizer step must agree with PyTorch (float64) to 1e-10 relative plus 1e-12
//! absolute. Trajectories are also replayed in `f32` (to a float32 tolerance) and resumed
//! from a `state_dict` checkpoint taken part-way.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use ndarray::ArrayD;
use serde::Deserialize;
use serde_json::Value;
use tapegrad_autograd::{Float, Grads, Param};
use tapegrad_optim::clip::{clip_grad_norm, clip_grad_value};
use tapegrad_optim::schedules::{
    CosineAnnealingLr, ExponentialLr, LinearWarmup, LrSchedule, MultiStepLr, StepLr,
};
use tapegrad_optim::{AdagradConfig, AdamConfig, AdamWConfig, Optimizer, RmsPropConfig, SgdConfig};

const REL: f64 = 1e-10;
const ABS: f64 = 1e-12;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/optim")
}

fn read(file: &str) -> String {
    let path = data_dir().join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

#[derive(Deserialize)]
struct Trajectory {
    name: String,
    optimizer: String,
    config: BTreeMap<String, Value>,
    params: Vec<ParamSpec>,
    steps: Vec<Step>,
}

#[derive(Deserialize)]
struct ParamSpec {
    name: String,
    shape: Vec<usize>,
    init: Vec<f64>,
}

#[derive(Deserialize)]
struct Step {
    grads: BTreeMap<String, Option<Vec<f64>>>,
    params_after: BTreeMap<String, Vec<f64>>,
}

fn load_trajectory(file: &str) -> Trajectory {
    serde_json::from_str(&read(file)).unwrap_or_else(|e| panic!("parsing {file}: {e}"))
}

/// Builds the optimizer a golden file describes, refusing any PyTorch option it does not
/// model (so a new golden file cannot silently test something else).
fn build<T: Float>(t: &Trajectory) -> Box<dyn Optimizer<T>> {
    let cfg = &t.config;
    let num = |key: &str| -> f64 {
        cfg.get(key)
            .and_then(Value::as_f64)
            .unwrap_or_else(|| panic!("{}: config `{key}` missing or not a number", t.name))
    };
    let flag = |key: &str| -> bool {
        cfg.get(key)
            .and_then(Value::as_bool)
            .unwrap_or_else(|| panic!("{}: config `{key}` missing or not a bool", t.name))
    };
    let betas = || -> (f64, f64) {
        let b = cfg["betas"].as_array().expect("betas is a list");
        (b[0].as_f64().unwrap(), b[1].as_f64().unwrap())
    };
    // PyTorch flags that must keep their default for the files to mean what we replay.
    for (key, default) in [
        ("maximize", false),
        ("capturable", false),
        ("differentiable", false),
    ] {
        if let Some(v) = cfg.get(key) {
            assert_eq!(
                v.as_bool(),
                Some(default),
                "{}: `{key}` is not supported",
                t.name
            );
        }
    }
    let known: &[&str] = match t.optimizer.as_str() {
        "SGD" => &["lr", "momentum", "dampening", "weight_decay", "nesterov"],
        "Adam" | "AdamW" => &[
            "lr",
            "betas",
            "eps",
            "weight_decay",
            "amsgrad",
            "decoupled_weight_decay",
        ],
        "RMSprop" => &["lr", "momentum", "alpha", "eps", "centered", "weight_decay"],
        "Adagrad" => &[
            "lr",
            "lr_decay",
            "eps",
            "weight_decay",
            "initial_accumulator_value",
        ],
        other => panic!("{}: unknown optimizer {other}", t.name),
    };
    for key in cfg.keys() {
        let ignored = [
            "maximize",
            "capturable",
            "differentiable",
            "foreach",
            "fused",
        ];
        assert!(
            known.contains(&key.as_str()) || ignored.contains(&key.as_str()),
            "{}: unknown config key `{key}`",
            t.name
        );
    }
    let opt: Box<dyn Optimizer<T>> = match t.optimizer.as_str() {
        "SGD" => Box::new(
            SgdConfig::new(num("lr"))
                .momentum(num("momentum"))
                .dampening(num("dampening"))
                .weight_decay(num("weight_decay"))
                .nesterov(flag("nesterov"))
                .build()
                .unwrap(),
        ),
        "Adam" | "AdamW" => {
            let decoupled =
                t.optimizer == "AdamW" || cfg.get("decoupled_weight_decay") == Some(&true.into());
            let (b1, b2) = betas();
            if decoupled {
                Box::new(
                    AdamWConfig::new(num("lr"))
                        .betas(b1, b2)
                        .eps(num("eps"))
                        .weight_decay(num("weight_decay"))
                        .amsgrad(flag("amsgrad"))
                        .build()
                        .unwrap(),
                )
            } else {
                Box::new(
                    AdamConfig::new(num("lr"))
                        .betas(b1, b2)
                        .eps(num("eps"))
                        .weight_decay(num("weight_decay"))
                        .amsgrad(flag("amsgrad"))
                        .build()
                        .unwrap(),
                )
            }
        }
        "RMSprop" => Box::new(
            RmsPropConfig::new(num("lr"))
                .alpha(num("alpha"))
                .eps(num("eps"))
                .weight_decay(num("weight_decay"))
                .momentum(num("momentum"))
                .centered(flag("centered"))
                .build()
                .unwrap(),
        ),
        "Adagrad" => Box::new(
            AdagradConfig::new(num("lr"))
                .lr_decay(num("lr_decay"))
                .eps(num("eps"))
                .weight_decay(num("weight_decay"))
                .initial_accumulator_value(num("initial_accumulator_value"))
                .build()
                .unwrap(),
        ),
        other => panic!("{}: unknown optimizer {other}", t.name),
    };
    let want_name =
        if t.optimizer == "Adam" && cfg.get("decoupled_weight_decay") == Some(&true.into()) {
            "AdamW"
        } else {
            t.optimizer.as_str()
        };
    assert_eq!(opt.name(), want_name);
    opt
}

fn array<T: Float>(shape: &[usize], values: &[f64]) -> ArrayD<T> {
    ArrayD::from_shape_vec(
        shape.to_vec(),
        values.iter().map(|&v| <T as Float>::from_f64(v)).collect(),
    )
    .expect("golden values match their shape")
}

fn fresh_params<T: Float>(t: &Trajectory) -> Vec<Param<T>> {
    t.params
        .iter()
        .map(|p| Param::new(p.name.clone(), array(&p.shape, &p.init)))
        .collect()
}

fn grads_of<T: Float>(t: &Trajectory, params: &[Param<T>], step: &Step) -> Grads<T> {
    let mut grads = Grads::new();
    for (spec, p) in t.params.iter().zip(params) {
        match step.grads.get(&spec.name) {
            Some(Some(g)) => grads.insert(p.id(), array(&spec.shape, g)),
            Some(None) => {} // no gradient this step
            None => panic!(
                "{}: a step lacks the gradient entry of `{}`",
                t.name, spec.name
            ),
        }
    }
    grads
}

fn assert_close(what: &str, got: f64, want: f64, rel: f64, abs: f64) {
    let err = (got - want).abs();
    assert!(
        err <= rel * want.abs() + abs,
        "{what}: got {got:e}, want {want:e} (error {err:e})"
    );
}

fn check_step<T: Float>(
    t: &Trajectory,
    i: usize,
    params: &[Param<T>],
    step: &Step,
    rel: f64,
    abs: f64,
) {
    for (spec, p) in t.params.iter().zip(params) {
        let want = &step.params_after[&spec.name];
        assert_eq!(p.shape(), &spec.shape[..]);
        for (k, (got, want)) in p.value().iter().zip(want).enumerate() {
            let what = format!("{} step {i} {}[{k}]", t.name, spec.name);
            assert_close(&what, Float::to_f64(*got), *want, rel, abs);
        }
    }
}

fn run_steps<T: Float>(
    t: &Trajectory,
    opt: &mut dyn Optimizer<T>,
    params: &mut [Param<T>],
    range: std::ops::Range<usize>,
    rel: f64,
    abs: f64,
) {
    for i in range {
        let step = &t.steps[i];
        let grads = grads_of(t, params, step);
        opt.step(params.iter_mut(), &grads)
            .unwrap_or_else(|e| panic!("{} step {i}: {e}", t.name));
        check_step(t, i, params, step, rel, abs);
    }
}

/// Replays a trajectory from `init` through every step, in f64 and in f32.
fn replay(file: &str) {
    let t = load_trajectory(file);
    assert!(!t.steps.is_empty(), "{file}: no steps");
    let mut opt = build::<f64>(&t);
    let mut params = fresh_params::<f64>(&t);
    run_steps(&t, opt.as_mut(), &mut params, 0..t.steps.len(), REL, ABS);

    // Parameters that went without a gradient at some step still have their state, and
    // their step counters count only the steps in which they had a gradient.
    for (spec, p) in t.params.iter().zip(&params) {
        let steps_with_grad = t
            .steps
            .iter()
            .filter(|s| matches!(s.grads.get(&spec.name), Some(Some(_))))
            .count() as u64;
        let state = opt.param_state(p.id()).expect("state after steps");
        assert_eq!(
            state.step, steps_with_grad,
            "{file}: {} step count",
            spec.name
        );
    }

    // Same trajectory in f32, to single-precision accuracy.
    let mut opt = build::<f32>(&t);
    let mut params = fresh_params::<f32>(&t);
    run_steps(&t, opt.as_mut(), &mut params, 0..t.steps.len(), 2e-5, 2e-6);

    resume(&t);
}

/// Stops part-way, saves the state by name, rebuilds everything (fresh ids, as in a new
/// process) and finishes the trajectory: it must match PyTorch's as if never interrupted.
fn resume(t: &Trajectory) {
    for split in [
        1,
        t.steps.len() / 2 - 1,
        t.steps.len() / 2,
        t.steps.len() - 1,
    ] {
        let mut opt = build::<f64>(t);
        let mut params = fresh_params::<f64>(t);
        run_steps(t, opt.as_mut(), &mut params, 0..split, REL, ABS);
        let refs: Vec<&Param<f64>> = params.iter().collect();
        let checkpoint = opt.state_dict(&refs).unwrap();
        for spec in &t.params {
            assert!(
                checkpoint.contains_key(&format!("{}.step", spec.name)),
                "{}: no step counter for {}",
                t.name,
                spec.name
            );
        }

        let mut resumed = build::<f64>(t);
        let mut params2: Vec<Param<f64>> = params
            .iter()
            .map(|p| Param::new(p.name(), p.value().clone()))
            .collect();
        let refs2: Vec<&Param<f64>> = params2.iter().collect();
        resumed.load_state_dict(&refs2, &checkpoint).unwrap();
        assert_eq!(resumed.state_dict(&refs2).unwrap(), checkpoint);
        run_steps(
            t,
            resumed.as_mut(),
            &mut params2,
            split..t.steps.len(),
            REL,
            ABS,
        );
    }
}

macro_rules! golden_trajectories {
    ($($test:ident => $file:literal,)*) => {
        $(
            #[test]
            fn $test() {
                replay($file);
            }
        )*

        const TRAJECTORY_FILES: &[&str] = &[$($file),*];
    };
}

golden_trajectories! {
    sgd_plain => "sgd_plain.json",
    sgd_momentum => "sgd_momentum.json",
    sgd_dampening => "sgd_dampening.json",
    sgd_nesterov => "sgd_nesterov.json",
    sgd_weight_decay => "sgd_weight_decay.json",
    adam_default => "adam_default.json",
    adam_amsgrad => "adam_amsgrad.json",
    adam_weight_decay => "adam_weight_decay.json",
    adamw_default => "adamw_default.json",
    rmsprop_default => "rmsprop_default.json",
    rmsprop_centered_momentum => "rmsprop_centered_momentum.json",
    adagrad_default => "adagrad_default.json",
}

/// Every file in `tests/data/optim/` is replayed by some test: a new golden file cannot be
/// forgotten.
#[test]
fn every_golden_file_is_replayed() {
    let on_disk: BTreeSet<String> = std::fs::read_dir(data_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".json"))
        .collect();
    let covered: BTreeSet<String> = TRAJECTORY_FILES
        .iter()
        .chain(&["schedules.json", "clipping.json"])
        .map(|s| s.to_string())
        .collect();
    assert_eq!(on_disk, covered);
    // The trajectory files name themselves after their test.
    for file in TRAJECTORY_FILES {
        let t = load_trajectory(file);
        assert_eq!(format!("{}.json", t.name), *file);
    }
}

/// The copies in `tests/data/optim/` are the reference files: when the shared golden
/// directory is beside the repository (`../shared/golden/optim`), they must be identical
/// to it.
#[test]
fn test_data_matches_the_shared_golden_files() {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/golden/optim");
    let Ok(entries) = std::fs::read_dir(&shared) else {
        return; // not available here; the copies are authoritative
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let name = path.file_name().unwrap().to_str().unwrap();
            let ours = std::fs::read(data_dir().join(name)).unwrap_or_else(|_| {
                panic!(
                    "tests/data/optim/{name} is missing: copy it from {}",
                    path.display()
                )
            });
            assert!(
                ours == std::fs::read(&path).unwrap(),
                "tests/data/optim/{name} differs from {}",
                path.display()
            );
        }
    }
}

#[derive(Deserialize)]
struct ScheduleCase {
    name: String,
    base_lr: f64,
    lrs: Vec<f64>,
}

#[test]
fn schedules_match_pytorch() {
    let cases: Vec<ScheduleCase> = serde_json::from_str(&read("schedules.json")).unwrap();
    let mut seen = BTreeSet::new();
    for case in &cases {
        let base = case.base_lr;
        let schedule: Box<dyn LrSchedule> = match case.name.as_str() {
            "step" => Box::new(StepLr::new(base, 3, 0.5).unwrap()),
            "multistep" => Box::new(MultiStepLr::new(base, &[2, 5, 9], 0.1).unwrap()),
            "exponential" => Box::new(ExponentialLr::new(base, 0.9).unwrap()),
            "cosine" => Box::new(CosineAnnealingLr::new(base, 10, 0.001).unwrap()),
            "linear_warmup" => Box::new(LinearWarmup::new(base, 0.1, 4).unwrap()),
            "warmup_then_cosine" => Box::new(
                LinearWarmup::new(base, 0.2, 3)
                    .unwrap()
                    .then(3, CosineAnnealingLr::new(base, 8, 0.0).unwrap())
                    .unwrap(),
            ),
            other => panic!("unknown schedule case {other}"),
        };
        for (epoch, want) in case.lrs.iter().enumerate() {
            let what = format!("{} epoch {epoch}", case.name);
            assert_close(&what, schedule.lr(epoch), *want, REL, ABS);
        }
        seen.insert(case.name.as_str());
    }
    assert_eq!(seen.len(), 6, "every schedule case is checked");
}

#[derive(Deserialize)]
struct ClipCase {
    kind: String,
    max_norm: Option<f64>,
    clip_value: Option<f64>,
    grads: BTreeMap<String, Vec<f64>>,
    total_norm: Option<f64>,
    clipped: BTreeMap<String, Vec<f64>>,
}

#[test]
fn clipping_matches_pytorch() {
    let cases: Vec<ClipCase> = serde_json::from_str(&read("clipping.json")).unwrap();
    assert!(cases.iter().any(|c| c.kind == "norm") && cases.iter().any(|c| c.kind == "value"));
    for (i, case) in cases.iter().enumerate() {
        // Named gradients become gradients of fresh parameters.
        let params: BTreeMap<&str, Param<f64>> = case
            .grads
            .iter()
            .map(|(name, g)| (name.as_str(), Param::new(name, array(&[g.len()], g))))
            .collect();
        let mut grads = Grads::<f64>::new();
        for (name, g) in &case.grads {
            grads.insert(params[name.as_str()].id(), array(&[g.len()], g));
        }
        match case.kind.as_str() {
            "norm" => {
                let total =
                    clip_grad_norm(params.values(), &mut grads, case.max_norm.unwrap()).unwrap();
                assert_close(
                    &format!("case {i} total norm"),
                    total,
                    case.total_norm.unwrap(),
                    REL,
                    ABS,
                );
            }
            "value" => {
                clip_grad_value(params.values(), &mut grads, case.clip_value.unwrap()).unwrap()
            }
            other => panic!("unknown clipping kind {other}"),
        }
        for (name, want) in &case.clipped {
            let got = &grads[&params[name.as_str()]];
            for (k, (got, want)) in got.iter().zip(want).enumerate() {
                assert_close(&format!("case {i} {name}[{k}]"), *got, *want, REL, ABS);
            }
        }
    }
}
